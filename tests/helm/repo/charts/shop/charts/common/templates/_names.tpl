{{- define "common.name" -}}{{ .Release.Name }}-widget{{- end -}}
