{{- define "proliferate.name" -}}
{{- printf "%s-%s" .Release.Name (.service | replace "_" "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "proliferate.addresses" -}}
{{- $root := .root -}}
{{- range $name, $_ := $root.Values.services }}
- name: {{ upper $name }}_GRPC_ADDRESS
  value: {{ printf "%s-%s:%d" $root.Release.Name ($name | replace "_" "-") (int $root.Values.grpcPort) | quote }}
{{- end }}
{{- end -}}
