{{- define "gatehouse-control.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse-control.labels" -}}
app: {{ include "gatehouse-control.fullname" . }}
app.kubernetes.io/name: gatehouse-control
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gatehouse-control.selector" -}}
app: {{ include "gatehouse-control.fullname" . }}
{{- end -}}

{{- define "gatehouse-control.scheme" -}}
{{- if .Values.tls.existingSecret }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}
