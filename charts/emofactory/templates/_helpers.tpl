{{/* Names and labels, one place for every template. */}}
{{- define "emofactory.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "emofactory.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "emofactory.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "emofactory.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: emofactory
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "vad") */}}
{{- define "emofactory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emofactory.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "emofactory.natsUrl" -}}
{{- if .Values.nats.enabled -}}nats://{{ .Release.Name }}-nats:4222{{- else -}}{{ required "nats.url is required when nats.enabled=false" .Values.nats.url }}{{- end -}}
{{- end -}}

{{- define "emofactory.natsMonitoring" -}}
{{- if .Values.keda.monitoringEndpoint -}}{{ .Values.keda.monitoringEndpoint }}{{- else if .Values.nats.enabled -}}{{ .Release.Name }}-nats:8222{{- else -}}{{ required "keda.monitoringEndpoint is required with an external NATS" "" }}{{- end -}}
{{- end -}}

{{- define "emofactory.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}{{ .Release.Name }}-minio:9000{{- else -}}{{ required "minio.endpoint is required when minio.enabled=false" .Values.minio.endpoint }}{{- end -}}
{{- end -}}

{{- define "emofactory.s3Secret" -}}
{{- if .Values.minio.existingSecret -}}{{ .Values.minio.existingSecret }}{{- else if .Values.minio.enabled -}}{{ .Release.Name }}-minio{{- else -}}{{ required "minio.existingSecret is required for an external S3 endpoint" "" }}{{- end -}}
{{- end -}}

{{- define "emofactory.authSecret" -}}
{{- .Values.global.authSecret | default (printf "%s-auth" .Release.Name) -}}
{{- end -}}

{{/* A probe of the gRPC port: kubelet's gRPC health check, or TCP where the port speaks TLS. */}}
{{- define "emofactory.probe" -}}
{{- if .Values.tls.existingSecret -}}
tcpSocket: {port: grpc}
{{- else -}}
grpc: {port: {{ .Values.grpcPort }}}
{{- end -}}
{{- end -}}

{{/* The environment every emofactory container gets (names are EMO_<SECTION>__<FIELD>). */}}
{{- define "emofactory.commonEnv" -}}
- name: EMO_CONFIG
  value: /etc/emofactory/config.yaml
- name: EMO_BUS__URL
  value: {{ include "emofactory.natsUrl" . | quote }}
{{- if .Values.provision.enabled }}
- name: EMO_BUS__TOPOLOGY
  value: /etc/emofactory/jetstream.yaml
{{- end }}
- name: EMO_STORE__ENDPOINT
  value: {{ include "emofactory.s3Endpoint" . | quote }}
- name: EMO_STORE__BUCKET
  value: {{ .Values.minio.bucket | quote }}
- name: EMO_STORE__SECURE
  value: {{ .Values.minio.secure | quote }}
- name: EMO_STORE__REGION
  value: {{ .Values.minio.region | quote }}
{{- if .Values.nats.existingSecret }}
- name: EMO_BUS__USER
  valueFrom: {secretKeyRef: {name: {{ .Values.nats.existingSecret }}, key: user}}
- name: EMO_BUS__PASSWORD
  valueFrom: {secretKeyRef: {name: {{ .Values.nats.existingSecret }}, key: password}}
{{- else }}
- name: EMO_BUS__USER
  valueFrom: {secretKeyRef: {name: {{ include "emofactory.authSecret" . }}, key: nats-user}}
- name: EMO_BUS__PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "emofactory.authSecret" . }}, key: nats-password}}
{{- end }}
{{- if .Values.nats.tls.existingSecret }}
- name: EMO_BUS__TLS_CA
  value: /etc/emofactory-nats-tls/ca.crt
{{- if .Values.nats.tls.clientCertificate }}
- name: EMO_BUS__TLS_CERT
  value: /etc/emofactory-nats-tls/tls.crt
- name: EMO_BUS__TLS_KEY
  value: /etc/emofactory-nats-tls/tls.key
{{- end }}
{{- end }}
- name: EMO_SERVER__AUTH_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "emofactory.authSecret" . }}, key: grpc-token}}
{{- if .Values.tls.existingSecret }}
- name: EMO_SERVER__TLS_CERT
  value: /etc/emofactory-tls/tls.crt
- name: EMO_SERVER__TLS_KEY
  value: /etc/emofactory-tls/tls.key
{{- if .Values.tls.mutualTLS }}
- name: EMO_SERVER__TLS_CLIENT_CA
  value: /etc/emofactory-tls/ca.crt
{{- end }}
{{- end }}
- name: EMO_STORE__ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ include "emofactory.s3Secret" . }}, key: access-key}}
- name: EMO_STORE__SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ include "emofactory.s3Secret" . }}, key: secret-key}}
- name: EMO_MODELS__BACKEND
  value: {{ .Values.models.backend | quote }}
{{- if .Values.triton.enabled }}
- name: EMO_MODELS__TRITON_URL
  value: {{ printf "%s-triton:8001" (include "emofactory.fullname" .) | quote }}
{{- end }}
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp
{{- range $name, $value := .Values.models.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "emofactory.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ .Values.serviceAccount.name | default (include "emofactory.fullname" .) }}{{- else -}}{{ .Values.serviceAccount.name | default "default" }}{{- end -}}
{{- end -}}

{{/* A pod's scheduling: (dict "root" $ "own" <a service's scheduling block, or empty>). */}}
{{- define "emofactory.scheduling" -}}
{{- $v := .root.Values }}
{{- $own := .own | default dict }}
{{- with (hasKey $own "nodeSelector" | ternary $own.nodeSelector $v.nodeSelector) }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey $own "tolerations" | ternary $own.tolerations $v.tolerations) }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey $own "affinity" | ternary $own.affinity $v.affinity) }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey $own "topologySpreadConstraints" | ternary $own.topologySpreadConstraints $v.topologySpreadConstraints) }}
topologySpreadConstraints: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (hasKey $own "priorityClassName" | ternary $own.priorityClassName $v.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
