//! A generated large repository for benchmarks: one chart (ConfigMap, Deployment, Service) and
//! an environment `bench` with N releases whose values differ per release.
#![allow(dead_code)] // each bench uses a different subset

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../tests/common/git.rs"]
pub mod git;

pub const WEAVER: &str = env!("CARGO_BIN_EXE_weaver");

pub fn generate_repo(dir: &Path, releases: usize) {
    let write = |path: &str, text: &str| {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    };
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
    let mut env = String::from("namespace: bench\nreleases:\n");
    for i in 0..releases {
        env.push_str(&format!(
            "  - name: svc-{i:04}\n    chart: svc\n    values:\n      replicas: {}\n      port: {}\n      tag: '1.{}'\n      settings: {{ LOG_LEVEL: info, SHARD: '{i}', REGION: eu-{} }}\n",
            1 + i % 3,
            8000 + i % 100,
            i % 7,
            i % 4
        ));
    }
    write("environments/bench.yaml", &env);
}

/// Peak resident memory of the largest child waited for so far, in bytes.
pub fn children_peak_rss() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}

/// Runs weaver `runs` times; returns the sorted wall times and the last stdout.
pub fn time_weaver(args: &[&str], runs: usize) -> (Vec<Duration>, Vec<u8>) {
    let mut times = Vec::with_capacity(runs);
    let mut stdout = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new(WEAVER).args(args).output().expect("run weaver");
        times.push(started.elapsed());
        assert!(out.status.success(), "weaver {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        stdout = out.stdout;
    }
    times.sort();
    (times, stdout)
}

pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The generated repository of `WEAVER_BENCH_RELEASES` (default 1,000) releases, and the
/// cluster to run against: the current context of `WEAVER_BENCH_KUBECONFIG`, or else the
/// in-process fake (returned, so its request log can be read).
pub fn setup() -> (tempfile::TempDir, Option<weaver_test_apiserver::TestApiServer>, String) {
    let releases: usize = std::env::var("WEAVER_BENCH_RELEASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    generate_repo(dir.path(), releases);
    let (fake, kubeconfig) = cluster();
    println!("against {}", cluster_name(&fake, &kubeconfig));
    (dir, fake, kubeconfig)
}

/// The current context of `WEAVER_BENCH_KUBECONFIG`, or else the in-process fake (returned, so
/// its request log can be read), and the kubeconfig's path.
pub fn cluster() -> (Option<weaver_test_apiserver::TestApiServer>, String) {
    let fake = std::env::var_os("WEAVER_BENCH_KUBECONFIG").is_none().then(weaver_test_apiserver::TestApiServer::start);
    let kubeconfig = match &fake {
        Some(server) => server.kubeconfig_path().to_str().unwrap().to_string(),
        None => std::env::var("WEAVER_BENCH_KUBECONFIG").unwrap(),
    };
    (fake, kubeconfig)
}

pub fn cluster_name<'a>(fake: &Option<weaver_test_apiserver::TestApiServer>, kubeconfig: &'a str) -> &'a str {
    if fake.is_some() { "the in-process fake" } else { kubeconfig }
}
