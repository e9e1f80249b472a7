{{/*
Generated from filesim's topology model; do not edit. After a change to the model:
  filesim k8s schema --write deploy/helm/filesim
The chart resolves each server as filesim does: these model defaults, then its
profile's sync defaults for its role, then what the values set.
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
  allowed_clients:
  - 0.0.0.0/0
  - ::/0
  nfs4_lease_s: 15
  nfs4_grace_s: 15
  max_connections: 1024
  idle_timeout_s: 300
  backend: auto
  fileids: auto
sync:
  direction: both
  continuous: true
  initial: true
  mirror_deletes: true
  settle_ms: 100
  stall_s: 5.0
  rescan_interval_s: 60.0
  conflict: newer-wins
  watcher: auto
  poll_interval_s: 1.0
  backend: auto
  ignore:
  - .DS_Store
  - ._*
  - .Spotlight-V100
  - .Trashes
  - .fseventsd
  - Thumbs.db
  - desktop.ini
  - ~$*
  - .~lock.*#
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

{{/* Linux mount options for a server; the argument is its port. */}}
{{- define "filesim.mountOptions" -}}
vers=3,proto=tcp,port={{ . }},mountport={{ . }},mountproto=tcp,nolock
{{- end -}}
