{{/*
Base name of every object: the release name when it contains "lanyard" (release `lanyard` gives
the names of deploy/overlays), else <release>-lanyard. At most 50 characters, so that the longest
derived name (<fullname>-webhook-tls, <fullname>-self-signed) stays a valid DNS label.
*/}}
{{- define "lanyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains "lanyard" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-lanyard" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The webhook Service, whose DNS names the serving certificate carries. */}}
{{- define "lanyard.webhookServiceName" -}}
{{- include "lanyard.fullname" . }}-webhook
{{- end -}}

{{/* The Secret of the serving certificate (self-signed: written by lanyard; cert-manager: by cert-manager). */}}
{{- define "lanyard.tlsSecretName" -}}
{{- if eq .Values.certMode "secret" -}}
{{- required "certMode secret needs existingSecret.name: the Secret holding tls.crt and tls.key" .Values.existingSecret.name -}}
{{- else -}}
{{- include "lanyard.fullname" . }}-webhook-tls
{{- end -}}
{{- end -}}

{{/* lanyard serve --cert-mode for certMode. */}}
{{- define "lanyard.certModeFlag" -}}
{{- if eq .Values.certMode "secret" -}}
files
{{- else if or (eq .Values.certMode "self-signed") (eq .Values.certMode "cert-manager") -}}
{{- .Values.certMode -}}
{{- else -}}
{{- fail (printf "certMode %q: must be self-signed, cert-manager or secret" .Values.certMode) -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels of the lanyard pods: the ones of deploy/base, without the release, so that a
Deployment installed with kustomize can be taken over by the chart (spec.selector is immutable).
One release per namespace.
*/}}
{{- define "lanyard.selectorLabels" -}}
app.kubernetes.io/name: lanyard
app.kubernetes.io/component: webhook
{{- end -}}

{{/*
Labels of every object: deploy/base's (app.kubernetes.io/name, app.kubernetes.io/part-of), Helm's
(helm.sh/chart, app.kubernetes.io/managed-by, app.kubernetes.io/instance,
app.kubernetes.io/version), then commonLabels, which never replace the chart's own.
Argument: dict "ctx" $ "extra" (labels of this object, which win over both).
*/}}
{{- define "lanyard.labels" -}}
{{- $ctx := .ctx -}}
{{- $base := dict
  "app.kubernetes.io/name" "lanyard"
  "app.kubernetes.io/part-of" "lanyard"
  "helm.sh/chart" (printf "%s-%s" $ctx.Chart.Name $ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-")
  "app.kubernetes.io/managed-by" $ctx.Release.Service
  "app.kubernetes.io/instance" $ctx.Release.Name
  "app.kubernetes.io/version" ($ctx.Chart.AppVersion | trunc 63 | trimSuffix "-")
-}}
{{- toYaml (merge (dict) (.extra | default dict) $base ($ctx.Values.commonLabels | default dict)) -}}
{{- end -}}

{{/*
metadata of an object: name, namespace (the release's, for namespaced kinds), labels and
annotations (this object's, then commonAnnotations).
Argument: dict "ctx" $ "name" NAME ["namespaced" true] ["labels" DICT] ["annotations" DICT]
*/}}
{{- define "lanyard.metadata" -}}
{{- $ctx := .ctx -}}
name: {{ .name }}
{{- if .namespaced }}
namespace: {{ $ctx.Release.Namespace }}
{{- end }}
labels:
  {{- include "lanyard.labels" (dict "ctx" $ctx "extra" .labels) | nindent 2 }}
{{- with merge (dict) (.annotations | default dict) ($ctx.Values.commonAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount subject of the bindings. */}}
{{- define "lanyard.subject" -}}
- kind: ServiceAccount
  name: {{ include "lanyard.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
