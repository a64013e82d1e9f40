{{- define "cipulse.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cipulse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cipulse.labels" -}}
app.kubernetes.io/name: {{ include "cipulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cipulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cipulse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cipulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cipulse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The permissions the operator needs, shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "cipulse.monitorRules" -}}
- apiGroups: ["cipulse.io"]
  resources: ["cicdmonitors"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["cipulse.io"]
  resources: ["cicdmonitors/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end -}}
