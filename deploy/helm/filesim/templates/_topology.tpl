{{/*
Data copied from the topology model (src/filesim/topology/model.py and profiles.py). The chart
tests render the topology ConfigMap and check that filesim parses it back to exactly the
topology it resolves itself, for both profiles, so a drift here fails CI.
*/}}
{{- define "filesim.modelDefaults" -}}
storage: mirror
export:
  path: /data
  readonly: false
  sync: false
  root_squash: false
  anon_uid: 65534
  anon_gid: 65534
  allowed_clients: ["0.0.0.0/0", "::/0"]
sync:
  direction: both
  continuous: true
  initial: true
  mirror_deletes: true
  settle_ms: 100
  rescan_interval_s: 60.0
  conflict: newer-wins
  watcher: auto
  poll_interval_s: 1.0
{{- end -}}

{{- define "filesim.profileDefaults" -}}
default:
  input: {direction: both, continuous: true, initial: true, mirror_deletes: true}
  output: {direction: both, continuous: true, initial: true, mirror_deletes: true}
  backup: {direction: folder-to-export, continuous: true, initial: true, mirror_deletes: true}
seed:
  input: {direction: folder-to-export, continuous: false, initial: true, mirror_deletes: true}
  output: {direction: export-to-folder, continuous: true, initial: true, mirror_deletes: false}
  backup: {direction: folder-to-export, continuous: false, initial: true, mirror_deletes: false}
{{- end -}}
