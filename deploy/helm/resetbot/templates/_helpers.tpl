{{/* The chart's name, and the release's full name for its objects. */}}
{{- define "resetbot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "resetbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "resetbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "resetbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "resetbot.labels" -}}
{{ include "resetbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "resetbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "resetbot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "resetbot.secretName" -}}
{{- default (include "resetbot.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "resetbot.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
resetbot.secretKeys: the keys of the Secret the bot reads, as a JSON list: the
two Slack tokens always, and the optional settings that are set (chart-made
Secret) or listed in secrets.existingSecretKeys (an existing one).
*/}}
{{- define "resetbot.secretKeys" -}}
{{- $keys := list "SLACK_BOT_TOKEN" "SLACK_APP_TOKEN" -}}
{{- $s := .Values.secrets -}}
{{- if $s.existingSecret -}}
{{- range $s.existingSecretKeys -}}
{{- if not (has . (list "REDIS_URL" "LDAP_BIND_PASSWORD" "AWS_SECRET_ACCESS_KEY" "STATE_KEY")) -}}
{{- fail (printf "secrets.existingSecretKeys: %q is not one of REDIS_URL, LDAP_BIND_PASSWORD, AWS_SECRET_ACCESS_KEY, STATE_KEY" .) -}}
{{- end -}}
{{- $keys = append $keys . -}}
{{- end -}}
{{- else -}}
{{- if $s.redisURL }}{{ $keys = append $keys "REDIS_URL" }}{{ end -}}
{{- if $s.ldapBindPassword }}{{ $keys = append $keys "LDAP_BIND_PASSWORD" }}{{ end -}}
{{- if $s.awsSecretAccessKey }}{{ $keys = append $keys "AWS_SECRET_ACCESS_KEY" }}{{ end -}}
{{- if $s.stateKey }}{{ $keys = append $keys "STATE_KEY" }}{{ end -}}
{{- end -}}
{{- toJson $keys -}}
{{- end -}}

{{/* resetbot.validate fails the render with what to fix. */}}
{{- define "resetbot.validate" -}}
{{- $keys := include "resetbot.secretKeys" . | fromJsonArray -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (or .Values.config.REDIS_URL (has "REDIS_URL" $keys))) -}}
{{- fail (printf "replicaCount is %d, and more than one replica needs Redis: set secrets.redisURL (or config.REDIS_URL, or list REDIS_URL in secrets.existingSecretKeys). Without it each replica would keep its own embedded store, and Slack would hand a click to a replica that never saw its request." (int .Values.replicaCount)) -}}
{{- end -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.slackBotToken }}{{ fail "secrets.slackBotToken is required (the bot token, xoxb-...), or name a Secret of your own in secrets.existingSecret" }}{{ end -}}
{{- if not .Values.secrets.slackAppToken }}{{ fail "secrets.slackAppToken is required (the app-level token, xapp-...), or name a Secret of your own in secrets.existingSecret" }}{{ end -}}
{{- end -}}
{{- if not (has .Values.secrets.mode (list "files" "env")) -}}
{{- fail (printf "secrets.mode %q must be files (mounted, NAME_FILE) or env (secretKeyRef)" .Values.secrets.mode) -}}
{{- end -}}
{{- range $k := list "SLACK_BOT_TOKEN" "SLACK_APP_TOKEN" "LDAP_BIND_PASSWORD" "AWS_SECRET_ACCESS_KEY" "STATE_KEY" -}}
{{- if hasKey $.Values.config $k -}}
{{- fail (printf "config.%s is a secret: put it in secrets (or in secrets.existingSecret), not in config" $k) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) -}}
{{- fail "serviceMonitor.enabled needs service.enabled: the ServiceMonitor scrapes the Service" -}}
{{- end -}}
{{- end -}}
