{{/* Partials for the chart's templates: `include "weaver.NAME" .` (the root context). */}}

{{/* The chart's name as its labels say it: nameOverride, else the chart's. */}}
{{- define "weaver.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* The labels of the operator's pods, which its Deployment, Services, PodDisruptionBudget,
   NetworkPolicy, ServiceMonitor and topology spread select them by. A Deployment's selector
   cannot change: a release moved from the configmapsync-operator chart keeps its own with
   nameOverride: configmapsync-operator. */}}
{{- define "weaver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weaver.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* The operator's own ServiceAccount: serviceAccount.name, else the release's name. */}}
{{- define "weaver.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default .Release.Name -}}
{{- end }}

{{/* The image: image.tag, else the chart's appVersion (a binary installs its own version). */}}
{{- define "weaver.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}

{{/* The name of the ClusterRole and ClusterRoleBinding: cluster-wide, so the namespace's too. */}}
{{- define "weaver.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace .Release.Name -}}
{{- end }}

{{/* An Ingress to the Service `service` (its port named `port`) for `path`, from the settings
   `settings` (host, className, tlsSecretName, plainHTTP, annotations) of the values at `at`:
   TLS from the Secret named, or refused without one unless plainHTTP says TLS ends before the
   Ingress, since what crosses it (`carries`) must not go in clear. Its argument is a dict of
   those and `root`, the root context. */}}
{{- define "weaver.ingress" -}}
{{- $settings := .settings -}}
{{- if not (or $settings.tlsSecretName $settings.plainHTTP) -}}
{{- fail (printf "%s.host %s is served without TLS: %s would cross the network in clear; name the kubernetes.io/tls Secret in %s.tlsSecretName, or set %s.plainHTTP: true where TLS ends before the Ingress (a load balancer in front terminates it)" .at $settings.host .carries .at .at) -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .service }}
  namespace: {{ .root.Release.Namespace }}
  labels: {{- include "weaver.selectorLabels" .root | nindent 4 }}
{{- with $settings.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
{{- end }}
spec:
{{- with $settings.className }}
  ingressClassName: {{ . | quote }}
{{- end }}
{{- with $settings.tlsSecretName }}
  tls:
    - hosts: [{{ $settings.host | quote }}]
      secretName: {{ . | quote }}
{{- end }}
  rules:
    - host: {{ $settings.host | quote }}
      http:
        paths:
          - path: {{ .path }}
            pathType: Prefix
            backend:
              service:
                name: {{ .service }}
                port:
                  name: {{ .port }}
{{- end }}
