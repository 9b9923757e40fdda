{{/* The name of every object: the release name (one gateway per release). */}}
{{- define "gatehouse.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.labels" -}}
app: {{ include "gatehouse.fullname" . }}
app.kubernetes.io/name: gatehouse
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gatehouse.selector" -}}
app: {{ include "gatehouse.fullname" . }}
{{- end -}}

{{- define "gatehouse.tokenSecret" -}}
{{- if .Values.gateway.existingSecret -}}
{{ .Values.gateway.existingSecret }}
{{- else -}}
{{ include "gatehouse.fullname" . }}-token
{{- end -}}
{{- end -}}
