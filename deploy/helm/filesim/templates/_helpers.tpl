{{/*
Names and labels. Every object of a server is named <release>-<server>, which is also what
`filesim k8s render --release` assumes for the Service names.
*/}}
{{- define "filesim.serverName" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{- printf "%s-%s" $root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "filesim.topologyName" -}}
{{- printf "%s-topology" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "filesim.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Selector labels of one server: list $root $server (a resolved server). */}}
{{- define "filesim.selectorLabels" -}}
{{- $root := index . 0 -}}{{- $s := index . 1 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $s.topology.name }}
{{- end -}}

{{- define "filesim.labels" -}}
{{- $root := index . 0 -}}{{- $s := index . 1 -}}
{{ include "filesim.selectorLabels" . }}
app.kubernetes.io/part-of: filesim
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
simulator.protocol: nfs
simulator.nas-role: {{ $s.topology.role }}
{{- end -}}

{{/*
The resolved servers, as YAML {servers: [...]}; each item has
  topology: the server exactly as the topology model resolves it (model defaults, then the
            profile's sync defaults for its role, then what the values set) plus its node_port;
  k8s:      containerPort, nodePort, serviceType, clusterIP, resources, initSync, sidecar.
Use: (include "filesim.resolved" . | fromYaml).servers
*/}}
{{- define "filesim.resolved" -}}
{{- $root := . -}}
{{- $model := include "filesim.modelDefaults" . | fromYaml -}}
{{- $profiles := include "filesim.profileDefaults" . | fromYaml -}}
{{- $profile := get $profiles .Values.profile -}}
{{- $servers := list -}}
{{- range $i, $s := .Values.servers -}}
  {{- $givenExport := $s.export | default dict -}}
  {{- $export := dict -}}
  {{- range $k, $v := $model.export -}}
    {{- $_ := set $export $k (ternary (get $givenExport $k) $v (hasKey $givenExport $k)) -}}
  {{- end -}}
  {{- $givenSync := $s.sync | default dict -}}
  {{- $roleSync := get $profile $s.role | default dict -}}
  {{- $sync := dict -}}
  {{- range $k, $v := $model.sync -}}
    {{- $d := ternary (get $roleSync $k) $v (hasKey $roleSync $k) -}}
    {{- $_ := set $sync $k (ternary (get $givenSync $k) $d (hasKey $givenSync $k)) -}}
  {{- end -}}
  {{- $nodePort := int (ternary $s.node_port (add $root.Values.service.nodePortBase $i) (hasKey $s "node_port")) -}}
  {{- $topo := dict "name" $s.name "role" $s.role "fsid" $s.fsid "export" $export "sync" $sync "node_port" $nodePort -}}
  {{- $_ := set $topo "enabled" (ternary $s.enabled true (hasKey $s "enabled")) -}}
  {{- $_ := set $topo "storage" ($s.storage | default $model.storage) -}}
  {{- range $k := list "folder" "host" "port" "faults" -}}
    {{- if hasKey $s $k }}{{ $_ := set $topo $k (get $s $k) }}{{ end -}}
  {{- end -}}
  {{- $active := and (eq $topo.storage "mirror") (ne $sync.direction "none") -}}
  {{- $service := $s.service | default dict -}}
  {{- $k8s := dict
        "containerPort" (int ($s.port | default $root.Values.nfsPort))
        "nodePort" $nodePort
        "serviceType" ($service.type | default $root.Values.service.type)
        "clusterIP" ($service.clusterIP | default "")
        "resources" ($s.resources | default $root.Values.resources)
        "initSync" (and $active $sync.initial)
        "sidecar" (and $active $sync.continuous) -}}
  {{- $servers = append $servers (dict "topology" $topo "k8s" $k8s) -}}
{{- end -}}
{{- toYaml (dict "servers" $servers) -}}
{{- end -}}

{{/*
What JSON schema cannot say: names, fsids, ports and NodePorts unique across servers (the
topology model's own rule, plus the NodePorts the chart assigns). Fails the render with a
message that names both servers.
*/}}
{{- define "filesim.validate" -}}
{{- $servers := (include "filesim.resolved" . | fromYaml).servers -}}
{{- range $field := list "name" "fsid" "port" "node_port" -}}
  {{- $seen := dict -}}
  {{- range $s := $servers -}}
    {{- if hasKey $s.topology $field -}}
      {{- $value := toString (get $s.topology $field) -}}
      {{- if hasKey $seen $value -}}
        {{- fail (printf "servers: %s %s is used by both %q and %q; each server needs its own %s" $field $value (get $seen $value) $s.topology.name $field) -}}
      {{- end -}}
      {{- $_ := set $seen $value $s.topology.name -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- if not (.Values.servers) -}}
  {{- fail "servers: a topology needs at least one server" -}}
{{- end -}}
{{- end -}}
