{{/* Labels on every object's metadata: the kustomize base's, the values' commonLabels and Helm's own. */}}
{{- define "orchestrator.metaLabels" -}}
app.kubernetes.io/part-of: orchestrator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's identifying labels (selectors and pod template), as in k8s/base. */}}
{{- define "orchestrator.selectorLabels" -}}
app.kubernetes.io/name: orchestrator
app.kubernetes.io/component: operator
{{- end }}

{{/* The sync controller's (its own Deployment and ServiceAccount). */}}
{{- define "orchestrator.syncSelectorLabels" -}}
app.kubernetes.io/name: orchestrator
app.kubernetes.io/component: sync-controller
{{- end }}

{{- define "orchestrator.syncLabels" -}}
{{ include "orchestrator.syncSelectorLabels" . }}
{{ include "orchestrator.metaLabels" . }}
{{- end }}

{{- define "orchestrator.labels" -}}
{{ include "orchestrator.selectorLabels" . }}
{{ include "orchestrator.metaLabels" . }}
{{- end }}

{{- define "orchestrator.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{/* The namespaces served in namespace-scoped mode, checked: DNS labels, no duplicates. */}}
{{- define "orchestrator.watchNamespaces" -}}
{{- $seen := dict -}}
{{- range .Values.watchNamespaces -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (toString .)) -}}
{{- fail (printf "watchNamespaces: %q is not a namespace name (a DNS label: lower-case letters, digits and '-', at most 63)" (toString .)) -}}
{{- end -}}
{{- if hasKey $seen . -}}
{{- fail (printf "watchNamespaces: %q is listed twice" .) -}}
{{- end -}}
{{- $_ := set $seen . true -}}
{{- end -}}
{{- end }}
