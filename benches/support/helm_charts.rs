//! Generated Helm charts, for the helm bench without a corpus of real ones: `web` (a Deployment,
//! Service, ConfigMap, ServiceAccount and Ingress, with a vendored subchart `cache` that reads a
//! global) and `cron` (CronJobs and a Secret). They use what real charts lean on most: helpers
//! defined in `_helpers.tpl` and included, `toYaml | nindent`, `range`, `if`/`with`, `default`,
//! `required`, `.Files.Get`, `tpl`, a checksum of another template and `.Capabilities`.

use std::path::Path;

const WEB: &[(&str, &str)] = &[
    (
        "Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.2.3\nappVersion: \"2.0\"\ndependencies:\n  - name: cache\n    version: 0.1.0\n    condition: cache.enabled\n",
    ),
    (
        "values.yaml",
        r#"replicaCount: 2
image:
  repository: registry.example.com/web
  tag: ""
  pullPolicy: IfNotPresent
serviceAccount:
  create: true
  annotations: {}
podAnnotations:
  prometheus.io/scrape: "true"
service:
  type: ClusterIP
  port: 80
ingress:
  enabled: true
  className: nginx
  hosts:
    - host: web.example.com
      paths: [/, /api]
    - host: www.example.com
      paths: [/]
resources:
  limits: {cpu: 500m, memory: 256Mi}
  requests: {cpu: 100m, memory: 128Mi}
env:
  LOG_LEVEL: info
  REGION: eu-west-1
  FEATURE_FLAGS: "a,b,c"
extraConfig: |
  release = {{ .Release.Name }}
  namespace = {{ .Release.Namespace }}
nodeSelector: {}
tolerations:
  - key: dedicated
    operator: Equal
    value: web
    effect: NoSchedule
global:
  storageClass: fast
cache:
  enabled: true
"#,
    ),
    (
        "templates/_helpers.tpl",
        r#"{{- define "web.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "web.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "web.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "web.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "web.selectorLabels" -}}
app.kubernetes.io/name: {{ include "web.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
"#,
    ),
    (
        "templates/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "web.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "web.selectorLabels" . | nindent 8 }}
    spec:
      serviceAccountName: {{ include "web.fullname" . }}
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          env:
            {{- range $name, $value := .Values.env }}
            - name: {{ $name }}
              value: {{ $value | quote }}
            {{- end }}
          volumeMounts:
            - name: config
              mountPath: /etc/web
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
      volumes:
        - name: config
          configMap:
            name: {{ include "web.fullname" . }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"#,
    ),
    (
        "templates/service.yaml",
        r#"apiVersion: v1
kind: Service
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      name: http
  selector:
    {{- include "web.selectorLabels" . | nindent 4 }}
"#,
    ),
    (
        "templates/configmap.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
data:
  app.conf: |
    {{- .Files.Get "files/app.conf" | nindent 4 }}
  extra.conf: |
    {{- tpl .Values.extraConfig . | nindent 4 }}
"#,
    ),
    ("files/app.conf", "listen = 8080\nworkers = 4\n"),
    (
        "templates/serviceaccount.yaml",
        r#"{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
"#,
    ),
    (
        "templates/ingress.yaml",
        r#"{{- if .Values.ingress.enabled -}}
{{- $fullName := include "web.fullname" . -}}
apiVersion: {{ if semverCompare ">=1.19-0" .Capabilities.KubeVersion.GitVersion }}networking.k8s.io/v1{{ else }}networking.k8s.io/v1beta1{{ end }}
kind: Ingress
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  rules:
    {{- range .Values.ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ . }}
            pathType: Prefix
            backend:
              service:
                name: {{ $fullName }}
                port:
                  number: {{ $.Values.service.port }}
          {{- end }}
    {{- end }}
{{- end }}
"#,
    ),
    ("charts/cache/Chart.yaml", "apiVersion: v2\nname: cache\nversion: 0.1.0\n"),
    ("charts/cache/values.yaml", "size: 1Gi\nimage: redis:7\nglobal:\n  storageClass: standard\n"),
    (
        "charts/cache/templates/statefulset.yaml",
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-cache
spec:
  serviceName: {{ .Release.Name }}-cache
  selector:
    matchLabels: {app: {{ .Release.Name }}-cache}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-cache}
    spec:
      containers:
        - name: cache
          image: {{ .Values.image }}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        storageClassName: {{ .Values.global.storageClass }}
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: {{ .Values.size }}
"#,
    ),
];

const CRON: &[(&str, &str)] = &[
    ("Chart.yaml", "apiVersion: v2\nname: cron\nversion: 0.4.0\n"),
    (
        "values.yaml",
        r#"image: registry.example.com/jobs:1.0
schedule: "*/15 * * * *"
jobs:
  - name: report
    args: [report, --daily]
  - name: cleanup
    schedule: "0 3 * * *"
    args: [cleanup]
  - name: sync
    args: [sync, --all]
    env: {TARGET: s3://bucket}
credentials:
  user: jobs
  password: s3cr3t
"#,
    ),
    (
        "templates/_helpers.tpl",
        r#"{{- define "cron.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
"#,
    ),
    (
        "templates/secret.yaml",
        r#"apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-credentials
  labels:
    {{- include "cron.labels" . | nindent 4 }}
type: Opaque
data:
  {{- range $key, $value := .Values.credentials }}
  {{ $key }}: {{ $value | b64enc }}
  {{- end }}
"#,
    ),
    (
        "templates/cronjobs.yaml",
        r#"{{- range .Values.jobs }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ printf "%s-%s" $.Release.Name .name | trunc 52 }}
  labels:
    {{- include "cron.labels" $ | nindent 4 }}
spec:
  schedule: {{ .schedule | default $.Values.schedule | quote }}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: {{ .name }}
              image: {{ required "image is required" $.Values.image }}
              args:
                {{- toYaml .args | nindent 16 }}
              envFrom:
                - secretRef:
                    name: {{ $.Release.Name }}-credentials
              {{- with .env }}
              env:
                {{- range $k, $v := . }}
                - name: {{ $k }}
                  value: {{ $v | quote }}
                {{- end }}
              {{- end }}
{{- end }}
"#,
    ),
];

/// Writes `copies` charts into `dir`, one per subdirectory (`web-000`, `cron-001`, …): a corpus
/// laid out as tools/helm_corpus.py builds one.
pub fn generate(dir: &Path, copies: usize) {
    for i in 0..copies {
        let (kind, files) = if i % 2 == 0 { ("web", WEB) } else { ("cron", CRON) };
        let chart = dir.join(format!("{kind}-{i:03}"));
        for (path, text) in files {
            let file = chart.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
    }
}
