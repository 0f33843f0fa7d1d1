{{/* Chart name, overridable with nameOverride. */}}
{{- define "flint.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object's name: RELEASE-flint, or just RELEASE when the
release name already contains the chart name. Kept to 50 characters so the
"-manager"/"-gateway" suffixes still fit in a 63-character DNS label.
*/}}
{{- define "flint.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "flint.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "flint.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: flint
{{- /*
app.kubernetes.io/managed-by is Helm here; on agent pods the manager sets it
to "flint", which is what the NetworkPolicy selects on.
*/}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "manager"). */}}
{{- define "flint.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flint.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The flint image, tag defaulting to the chart's appVersion. */}}
{{- define "flint.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The sidecar image: manager.sidecar.image, else the flint image. */}}
{{- define "flint.sidecarImage" -}}
{{- default (include "flint.image" .) .Values.manager.sidecar.image }}
{{- end }}

{{- define "flint.managerServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-manager" (include "flint.fullname" .)) .Values.serviceAccount.managerName }}
{{- else }}
{{- default "default" .Values.serviceAccount.managerName }}
{{- end }}
{{- end }}

{{- define "flint.gatewayServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "flint.fullname" .)) .Values.serviceAccount.gatewayName }}
{{- else }}
{{- default "default" .Values.serviceAccount.gatewayName }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the manager and the gateway. */}}
{{- define "flint.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/*
The gateway's URL as clients reach it: gateway.publicURL, else the in-cluster
URL of its Service (what agents' status.url shows by default).
*/}}
{{- define "flint.gatewayURL" -}}
{{- if .Values.gateway.publicURL }}
{{- .Values.gateway.publicURL | trimSuffix "/" }}
{{- else }}
{{- $host := printf "%s-gateway.%s.svc" (include "flint.fullname" .) .Release.Namespace }}
{{- if eq (int .Values.gateway.service.port) 80 }}
{{- printf "http://%s" $host }}
{{- else }}
{{- printf "http://%s:%d" $host (int .Values.gateway.service.port) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The shared Secrets (package internal/bootstrap): the manager creates each
at start-up when missing and never changes it; gateways mount them.
*/}}
{{- define "flint.controlTokenSecret" -}}
{{- default (printf "%s-control-token" (include "flint.fullname" .)) .Values.secrets.controlToken }}
{{- end }}
{{- define "flint.sessionKeysSecret" -}}
{{- default (printf "%s-session-keys" (include "flint.fullname" .)) .Values.secrets.sessionKeys }}
{{- end }}
{{- define "flint.gatewayTokenSecret" -}}
{{- default (printf "%s-gateway-token" (include "flint.fullname" .)) .Values.secrets.gatewayToken }}
{{- end }}
{{/*
Sidecar TLS (sidecarTLS.enabled): the CA Secret and the bundle ConfigMap
the manager creates in the release namespace, named per release so two
releases keep their own CA.
*/}}
{{- define "flint.sidecarCASecret" -}}
{{- default (printf "%s-sidecar-ca" (include "flint.fullname" .)) .Values.sidecarTLS.caSecret }}
{{- end }}
{{- define "flint.sidecarCABundle" -}}
{{- printf "%s-sidecar-ca-bundle" (include "flint.fullname" .) }}
{{- end }}
{{- define "flint.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "flint.fullname" .)) .Values.gateway.auth.apiKeysSecret.name }}
{{- end }}

{{/*
Seconds in a Go duration such as 5s, 1m30s or 500ms, rounded up (for
terminationGracePeriodSeconds); values.schema.json admits only these forms.
*/}}
{{- define "flint.seconds" -}}
{{- $total := 0.0 }}
{{- range $part := regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" . -1 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $part }}
{{- $unit := trimPrefix $num $part }}
{{- $n := float64 $num }}
{{- if eq $unit "ms" }}{{ $total = addf $total (divf $n 1000) }}
{{- else if eq $unit "s" }}{{ $total = addf $total $n }}
{{- else if eq $unit "m" }}{{ $total = addf $total (mulf $n 60) }}
{{- else }}{{ $total = addf $total (mulf $n 3600) }}
{{- end }}
{{- end }}
{{- ceil $total | int }}
{{- end }}

{{/*
Scheduling of a component's pods; call with (dict "ctx" $ "component" NAME
"v" .Values.NAME). Without topologySpreadConstraints or affinity of their
own, replicas spread over nodes (and zones where nodes have them) as far as
the scheduler can: losing one node then takes one replica, not all.
*/}}
{{- define "flint.scheduling" -}}
{{- with .v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml .v.topologySpreadConstraints | nindent 2 }}
{{- else if not .v.affinity }}
topologySpreadConstraints:
  {{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "flint.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}
