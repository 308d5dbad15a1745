{{/* The prefix of every object's name: config/default's "nodeagentset-" becomes "<fullname>-". */}}
{{- define "nodeagentset.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object: config/default's, with Helm's instead of kustomize's managed-by. */}}
{{- define "nodeagentset.labels" -}}
app.kubernetes.io/name: nodeagentset
app.kubernetes.io/part-of: nodeagentset
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/* The manager's pods: the Deployment's selector, the Service's, the PDB's and the anti-affinity's. */}}
{{- define "nodeagentset.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: nodeagentset
{{- end -}}

{{/* repository:tag, or repository:tag@digest when a digest pins it. */}}
{{- define "nodeagentset.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "nodeagentset.serviceAccountName" -}}
{{- include "nodeagentset.fullname" . }}-controller-manager
{{- end -}}
