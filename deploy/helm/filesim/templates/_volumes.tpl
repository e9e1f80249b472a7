{{/* The mounts every container of a server pod shares. */}}
{{- define "filesim.volumeMounts" -}}
- name: simulator-data
  mountPath: /simulator-data
- name: state
  mountPath: /var/lib/filesim
- name: topology
  mountPath: /etc/filesim
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}
