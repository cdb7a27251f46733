//! A generated large repository, for the render benchmarks and the tests that need its size.

use std::path::Path;

/// A repository of `releases` releases of one weaver chart (a ConfigMap, a Deployment and a
/// Service each) in environment `bench`, whose values differ per release.
pub fn generate_repo(dir: &Path, releases: usize) {
    generate_repo_in(dir, releases, "bench");
}

/// [`generate_repo`] with chart `svc` a Helm chart rendering the same objects (Go templates).
#[allow(dead_code)] // the render benchmark's: this file is shared with benches/support
pub fn generate_helm_repo(dir: &Path, releases: usize) {
    let write = |path: &str, text: &str| write(dir, path, text);
    write("charts/svc/Chart.yaml", "apiVersion: v2\nname: svc\nversion: 1.0.0\n");
    write(
        "charts/svc/values.yaml",
        "image: registry.example.com/svc\ntag: '1.0'\nreplicas: 1\nport: 8080\nsettings: {}\n",
    );
    write(
        "charts/svc/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n{{- range $k, $v := .Values.settings }}\n  {{ $k }}: {{ $v | quote }}\n{{- end }}\n",
    );
    write(
        "charts/svc/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n    metadata:\n      labels: {app: {{ .Release.Name }}}\n      annotations:\n        checksum/config: {{ .Values.settings | toJson | sha256sum }}\n    spec:\n      containers:\n        - name: app\n          image: \"{{ .Values.image }}:{{ .Values.tag }}\"\n          ports:\n            - containerPort: {{ .Values.port }}\n              protocol: TCP\n          envFrom:\n            - configMapRef: {name: {{ .Release.Name }}}\n",
    );
    write(
        "charts/svc/templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  clusterIP: None\n  selector: {app: {{ .Release.Name }}}\n  ports:\n    - port: 80\n      protocol: TCP\n      targetPort: {{ .Values.port }}\n",
    );
    write("environments/bench.yaml", &environment(releases, "bench"));
}

/// [`generate_repo`] with the environment's releases in `namespace`.
pub fn generate_repo_in(dir: &Path, releases: usize, namespace: &str) {
    write_chart(dir);
    write(dir, "environments/bench.yaml", &environment(releases, namespace));
}

/// A fleet: environments `env-00`, `env-01`, … of `releases` releases each (as
/// [`generate_repo`]'s), environment `env-NN` in namespace `fleet-NN`, labelled `fleet: bench`.
#[allow(dead_code)] // the fleet benchmark's: this file is shared with benches/support
pub fn generate_fleet(dir: &Path, environments: usize, releases: usize) {
    generate_fleet_in(dir, environments, releases, "fleet");
}

/// [`generate_fleet`] with environment `env-NN` in namespace `<prefix>-NN`.
pub fn generate_fleet_in(dir: &Path, environments: usize, releases: usize, prefix: &str) {
    write_chart(dir);
    for i in 0..environments {
        let text = format!("labels: {{fleet: bench}}\n{}", environment(releases, &format!("{prefix}-{i:02}")));
        write(dir, &format!("environments/env-{i:02}.yaml"), &text);
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

/// Chart `svc`: a ConfigMap, a Deployment and a Service.
fn write_chart(dir: &Path) {
    let write = |path: &str, text: &str| write(dir, path, text);
    write("charts/svc/chart.yaml", "name: svc\nversion: 1.0.0\n");
    write(
        "charts/svc/values.yaml",
        "image: registry.example.com/svc\ntag: '1.0'\nreplicas: 1\nport: 8080\nsettings: {}\n",
    );
    write(
        "charts/svc/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n{% for k, v in values.settings | items %}\n  {{ k }}: {{ v | quote }}\n{% endfor %}\n",
    );
    write(
        "charts/svc/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ release.name }}\nspec:\n  replicas: {{ values.replicas }}\n  selector:\n    matchLabels: {app: {{ release.name }}}\n  template:\n    metadata:\n      labels: {app: {{ release.name }}}\n      annotations:\n        checksum/config: {{ values.settings | tojson | sha256 }}\n    spec:\n      containers:\n        - name: app\n          image: \"{{ values.image }}:{{ values.tag }}\"\n          ports:\n            - containerPort: {{ values.port }}\n              protocol: TCP\n          envFrom:\n            - configMapRef: {name: {{ release.name }}}\n",
    );
    write(
        "charts/svc/templates/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ release.name }}\nspec:\n  clusterIP: None\n  selector: {app: {{ release.name }}}\n  ports:\n    - port: 80\n      protocol: TCP\n      targetPort: {{ values.port }}\n",
    );
}

/// An environment file of `releases` releases of chart `svc` in `namespace`.
fn environment(releases: usize, namespace: &str) -> String {
    let mut env = format!("namespace: {namespace}\nreleases:\n");
    for i in 0..releases {
        env.push_str(&format!(
            "  - name: svc-{i:04}\n    chart: svc\n    values:\n      replicas: {}\n      port: {}\n      tag: '1.{}'\n      settings: {{ LOG_LEVEL: info, SHARD: '{i}', REGION: eu-{} }}\n",
            1 + i % 3,
            8000 + i % 100,
            i % 7,
            i % 4
        ));
    }
    env
}
