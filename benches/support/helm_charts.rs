//! Generated Helm charts, for the helm bench without a corpus of real ones: `web` (a Deployment,
//! Service, ConfigMap, ServiceAccount and Ingress, with a vendored subchart `cache` that reads a
//! global) and `cron` (CronJobs and a Secret). They use what real charts lean on most: helpers
//! defined in `_helpers.tpl` and included, `toYaml | nindent`, `range`, `if`/`with`, `default`,
//! `required`, `.Files.Get`, `tpl`, a checksum of another template and `.Capabilities`. And `app`,
//! shaped like the charts that cost most to render: a library subchart of many helper files
//! (`common`, as bitnami's), most of whose helpers a render never calls but every render parses,
//! chains of `include`s through it, `tpl` over values, and large values (hundreds of settings,
//! rendered with `toYaml`).

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

/// The library chart's helper files, and the helpers each defines (as bitnami's `common`: 30
/// files of 8 helpers).
const LIBRARY_FILES: usize = 30;
const HELPERS_PER_FILE: usize = 8;

const APP_TEMPLATES: &[(&str, &str)] = &[
    (
        "templates/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "common.names.fullname" . }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {{- include "common.labels.matchLabels" . | nindent 6 }}
  template:
    metadata:
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
      labels: {{- include "common.labels.standard" . | nindent 8 }}
    spec:
      {{- include "common.images.pullSecrets" . | nindent 6 }}
      containers:
        - name: app
          image: {{ include "common.images.image" . }}
          env:
            {{- range $name, $value := .Values.env }}
            - name: {{ $name | upper }}
              value: {{ tpl (toString $value) $ | quote }}
            {{- end }}
          {{- if .Values.resources }}
          resources: {{- include "common.tplvalues.render" (dict "value" .Values.resources "context" $) | nindent 12 }}
          {{- end }}
      {{- with .Values.affinity }}
      affinity: {{- include "common.tplvalues.render" (dict "value" . "context" $) | nindent 8 }}
      {{- end }}
"#,
    ),
    (
        "templates/configmap.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "common.names.fullname" . }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
data:
  settings.yaml: |
    {{- include "common.tplvalues.render" (dict "value" .Values.settings "context" $) | nindent 4 }}
  {{- range $i, $rule := .Values.rules }}
  rule-{{ $i }}.yaml: {{ toYaml $rule | quote }}
  {{- end }}
"#,
    ),
    (
        "templates/service.yaml",
        r#"apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.names.fullname" . }}
  labels: {{- include "common.labels.standard" . | nindent 4 }}
spec:
  ports:
    {{- range .Values.ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
    {{- end }}
  selector: {{- include "common.labels.matchLabels" . | nindent 4 }}
"#,
    ),
];

/// The library chart `common`: the helpers `app` calls (names, labels, images,
/// tplvalues, each through others), then filler helpers it never calls.
fn library() -> Vec<(String, String)> {
    let mut files = vec![
        ("charts/common/Chart.yaml".to_string(), "apiVersion: v2\nname: common\nversion: 2.0.0\ntype: library\n".to_string()),
        (
            "charts/common/templates/_names.tpl".to_string(),
            r#"{{- define "common.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "common.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "common.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "common.names.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}
"#
            .to_string(),
        ),
        (
            "charts/common/templates/_labels.tpl".to_string(),
            r#"{{- define "common.labels.standard" -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
helm.sh/chart: {{ include "common.names.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ include "common.tplvalues.render" (dict "value" . "context" $) }}
{{- end }}
{{- end -}}
{{- define "common.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
"#
            .to_string(),
        ),
        (
            "charts/common/templates/_images.tpl".to_string(),
            r#"{{- define "common.images.image" -}}
{{- $registry := .Values.image.registry -}}
{{- if .Values.global }}{{- if .Values.global.imageRegistry }}{{- $registry = .Values.global.imageRegistry -}}{{- end -}}{{- end -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- define "common.images.pullSecrets" -}}
{{- $secrets := list -}}
{{- range .Values.image.pullSecrets }}{{- $secrets = append $secrets . -}}{{- end -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets | uniq }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
"#
            .to_string(),
        ),
        (
            "charts/common/templates/_tplvalues.tpl".to_string(),
            r#"{{- define "common.tplvalues.render" -}}
{{- $value := typeIs "string" .value | ternary .value (.value | toYaml) }}
{{- if contains "{{" (toJson .value) }}
  {{- tpl $value .context }}
{{- else }}
    {{- $value }}
{{- end }}
{{- end -}}
"#
            .to_string(),
        ),
    ];
    for file in 0..LIBRARY_FILES {
        let mut text = String::new();
        for helper in 0..HELPERS_PER_FILE {
            let next = (helper + 1) % HELPERS_PER_FILE;
            text.push_str(&format!(
                r#"{{{{/*
Helper {helper} of file {file}: what a library's helpers do, called by none of this chart's templates.
*/}}}}
{{{{- define "common.f{file}.h{helper}" -}}}}
{{{{- $value := default (dict) (index .Values "f{file}") -}}}}
{{{{- if and $value (hasKey $value "h{helper}") -}}}}
{{{{- include "common.f{file}.h{next}" (dict "Values" .Values "Release" .Release) | nindent 2 -}}}}
{{{{- else if .Values.global -}}}}
{{{{- printf "%s-%d" (.Release.Name | lower | trunc 20) {helper} | replace "_" "-" | quote -}}}}
{{{{- else -}}}}
{{{{- toYaml (pick .Values "image" "resources") | indent 4 -}}}}
{{{{- end -}}}}
{{{{- end -}}}}
"#
            ));
        }
        files.push((format!("charts/common/templates/_helpers{file:02}.tpl"), text));
    }
    files
}

/// `app`'s values: a few hundred settings, env variables and rules.
fn app_values() -> String {
    let mut values = String::from(
        "image:\n  registry: registry.example.com\n  repository: team/app\n  tag: \"\"\n  pullSecrets: [pull-a, pull-b]\n\
         replicaCount: 3\ncommonLabels:\n  team: platform\n  tier: \"{{ .Release.Namespace }}\"\n\
         resources:\n  limits: {cpu: \"1\", memory: 1Gi}\n  requests: {cpu: 200m, memory: 256Mi}\n\
         affinity:\n  podAntiAffinity:\n    preferredDuringSchedulingIgnoredDuringExecution:\n\
         \x20     - weight: 100\n        podAffinityTerm:\n          topologyKey: kubernetes.io/hostname\n\
         \x20         labelSelector:\n            matchLabels:\n              app.kubernetes.io/instance: \"{{ .Release.Name }}\"\n\
         ports:\n  - {name: http, port: 80}\n  - {name: metrics, port: 9090}\n",
    );
    values.push_str("env:\n");
    for i in 0..60 {
        values.push_str(&format!("  setting_{i}: \"value-{i}-{{{{ .Release.Name }}}}\"\n"));
    }
    values.push_str("settings:\n");
    for section in 0..20 {
        values.push_str(&format!("  section{section}:\n"));
        for key in 0..15 {
            values.push_str(&format!(
                "    key{key}: {{enabled: {}, limit: {}, name: \"s{section}-k{key}\"}}\n",
                key % 2 == 0,
                key * 100
            ));
        }
    }
    values.push_str("rules:\n");
    for rule in 0..40 {
        values.push_str(&format!(
            "  - {{alert: Rule{rule}, expr: \"rate(errors_total[5m]) > {rule}\", for: 5m, labels: {{severity: warning}}}}\n"
        ));
    }
    values
}

/// Writes `copies` charts into `dir`, one per subdirectory (`web-000`, `cron-001`, `app-002`, …):
/// a corpus laid out as tools/helm_corpus.py builds one.
pub fn generate(dir: &Path, copies: usize) {
    let write = |chart: &Path, path: &str, text: &str| {
        let file = chart.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    for i in 0..copies {
        let kind = ["web", "cron", "app"][i % 3];
        let chart = dir.join(format!("{kind}-{i:03}"));
        match kind {
            "web" => WEB.iter().for_each(|(path, text)| write(&chart, path, text)),
            "cron" => CRON.iter().for_each(|(path, text)| write(&chart, path, text)),
            _ => {
                write(
                    &chart,
                    "Chart.yaml",
                    "apiVersion: v2\nname: app\nversion: 3.1.0\nappVersion: \"3.1\"\ndependencies:\n  - name: common\n    version: 2.x.x\n",
                );
                write(&chart, "values.yaml", &app_values());
                APP_TEMPLATES.iter().for_each(|(path, text)| write(&chart, path, text));
                library().iter().for_each(|(path, text)| write(&chart, path, text));
            }
        }
    }
}
