{{/* The name of every object: the release's, or release-driftwood when it does not say driftwood. */}}
{{- define "driftwood.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selects this release's pods (the kustomize base selects by name alone: one per namespace). */}}
{{- define "driftwood.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "driftwood.labels" -}}
{{ include "driftwood.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag (the appVersion by default). */}}
{{- define "driftwood.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap's data: the user's settings, the sidecar's address and, with credentials, their options and files before the user's own. */}}
{{- define "driftwood.config" -}}
{{- $config := dict -}}
{{- range $name, $value := .Values.config -}}
{{- $_ := set $config $name (toString $value) -}}
{{- end -}}
{{- $_ := set $config "DRIFTWOOD_HTTP_ADDR" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- with .Values.kafkaCredentials -}}
{{- if .secretName -}}
{{- $files := printf "sasl.username=%s/username;sasl.password=%s/password" .mountPath .mountPath -}}
{{- $_ := set $config "DRIFTWOOD_KAFKA_OPTIONS" (compact (list .options (get $config "DRIFTWOOD_KAFKA_OPTIONS")) | join ";") -}}
{{- $_ := set $config "DRIFTWOOD_KAFKA_OPTION_FILES" (compact (list $files (get $config "DRIFTWOOD_KAFKA_OPTION_FILES")) | join ";") -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
