//! The ConfigMapSync operator at scale: 200 ConfigMapSyncs × 10 target namespaces (2,000
//! targets) converging from a cold start, one source change reaching its targets, and a quiet
//! minute in steady state. Reports the times, the reconciles, the API requests per reconcile
//! (on the fake, from its request log), the writes in steady state (resourceVersions of every
//! target and ConfigMapSync, compared before and after) and the operator's peak memory.
//!
//! The operator is the release binary, `weaver operator run`, as a ServiceAccount of its own;
//! every target is written as the tenant's ServiceAccount `syncer`. Against the in-process fake,
//! or the current context of `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it creates
//! namespaces `bench-cms*` and deletes them at the end). `WEAVER_BENCH_SYNCS` (200),
//! `WEAVER_BENCH_TARGETS` (10), `WEAVER_BENCH_QPS` and `WEAVER_BENCH_BURST` (the operator's
//! defaults, 50 and 300) and `WEAVER_BENCH_STEADY_SECS` (60) scale it.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const NS: &str = "bench-cms";
const SELECTOR: &str = "bench=cms";

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench {
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
}

impl Bench {
    fn api(&self, api_version: &str, kind: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Server-side applies `object` (field manager `bench`, forced).
    fn apply(&self, plural: &str, object: Value) {
        let api_version = object["apiVersion"].as_str().unwrap().to_string();
        let kind = object["kind"].as_str().unwrap().to_string();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let namespace = object["metadata"]["namespace"].as_str().map(String::from);
        let api = self.api(&api_version, &kind, plural, namespace.as_deref());
        let params = PatchParams::apply("bench").force();
        self.runtime
            .block_on(api.patch(&name, &params, &Patch::Apply(&object)))
            .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }

    fn syncs(&self) -> Vec<Value> {
        let api = self.api("weaver.example.com/v1alpha1", "ConfigMapSync", "configmapsyncs", Some(NS));
        let list = self.runtime.block_on(api.list(&ListParams::default().labels(SELECTOR))).unwrap();
        list.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()
    }

    fn target_copies(&self, targets: usize) -> Vec<Value> {
        let mut copies = Vec::new();
        for t in 0..targets {
            let api = self.api("v1", "ConfigMap", "configmaps", Some(&format!("{NS}-t{t}")));
            let list = self.runtime.block_on(api.list(&ListParams::default())).unwrap();
            copies.extend(list.items.into_iter().map(|o| serde_json::to_value(o).unwrap()));
        }
        copies.retain(|c| c["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("src-")));
        copies
    }

    fn wait_until(&self, what: &str, limit: Duration, mut done: impl FnMut(&Bench) -> bool) -> Duration {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < limit, "{what}: not done after {limit:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
        started.elapsed()
    }
}

/// The operator process; killed when dropped.
struct Operator {
    child: Child,
    metrics: String,
}

impl Operator {
    /// Peak resident memory so far (VmHWM), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).map(|v| v.trim().trim_end_matches(" kB"));
        kb.and_then(|kb| kb.trim().parse::<u64>().ok()).unwrap_or(0) * 1024
    }

    fn metric(&self, name: &str) -> f64 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics).expect("the operator's metrics");
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix(name).and_then(|rest| rest.split_whitespace().last()))
            .filter_map(|v| v.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn main() {
    let syncs: usize = env_number("WEAVER_BENCH_SYNCS", 200);
    let targets: usize = env_number("WEAVER_BENCH_TARGETS", 10);
    let qps: String = env_number("WEAVER_BENCH_QPS", "50".to_string());
    let burst: String = env_number("WEAVER_BENCH_BURST", "300".to_string());
    let steady: u64 = env_number("WEAVER_BENCH_STEADY_SECS", 60);
    let (fake, kubeconfig) = support::cluster();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let bench = Bench { client, runtime };
    let scratch = tempfile::tempdir().unwrap();

    // The CRD, as `weaver operator crd` prints it.
    bench.apply("customresourcedefinitions", weaver::operator::crd());
    bench.wait_until("the CRD to be established", Duration::from_secs(30), |b| {
        let api = b.api("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", None);
        let crd = b.runtime.block_on(api.get("configmapsyncs.weaver.example.com")).unwrap();
        let crd = serde_json::to_value(crd).unwrap();
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
    });

    // The tenant: its namespace, the sources, the ServiceAccount `syncer` that may write
    // ConfigMaps in the targets; the operator's own ServiceAccount, which may do anything.
    let namespaces: Vec<String> =
        std::iter::once(NS.to_string()).chain((0..targets).map(|t| format!("{NS}-t{t}"))).collect();
    for ns in &namespaces {
        bench.apply("namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    for account in ["operator", "syncer"] {
        bench.apply(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": NS}}),
        );
    }
    let rbac = "rbac.authorization.k8s.io/v1";
    bench.apply(
        "clusterroles",
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "bench-cms-operator"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    );
    bench.apply(
        "clusterrolebindings",
        json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": "bench-cms-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-cms-operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": NS}]}),
    );
    bench.apply(
        "clusterroles",
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "bench-cms-writer"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update", "delete"]}]}),
    );
    for ns in &namespaces {
        bench.apply(
            "rolebindings",
            json!({"apiVersion": rbac, "kind": "RoleBinding",
            "metadata": {"name": "bench-cms-writer", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-cms-writer"},
            "subjects": [{"kind": "ServiceAccount", "name": "syncer", "namespace": NS}]}),
        );
    }
    let target_names: Vec<String> = (0..targets).map(|t| format!("{NS}-t{t}")).collect();
    let started = Instant::now();
    for i in 0..syncs {
        let name = format!("src-{i:04}");
        bench.apply(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
            "data": {"index": i.to_string(), "payload": "x".repeat(512)}}),
        );
        bench.apply(
            "configmapsyncs",
            json!({"apiVersion": "weaver.example.com/v1alpha1", "kind": "ConfigMapSync",
            "metadata": {"name": name, "namespace": NS, "labels": {"bench": "cms"}},
            "spec": {"source": {"name": name}, "targetNamespaces": target_names, "serviceAccountName": "syncer"}}),
        );
    }
    println!(
        "against {}: {syncs} ConfigMapSyncs × {targets} targets, set up in {}",
        support::cluster_name(&fake, &kubeconfig),
        support::ms(started.elapsed())
    );

    // The operator's kubeconfig: its ServiceAccount's token.
    let cluster_entry = {
        let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let current = config.current_context.clone().unwrap();
        let context = config.contexts.iter().find(|c| c.name == current).unwrap().context.clone().unwrap();
        config.clusters.iter().find(|c| c.name == context.cluster).unwrap().cluster.clone().unwrap()
    };
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(bench.client.clone(), NS);
    let request = serde_json::from_value(json!({"spec": {"expirationSeconds": 7200}})).unwrap();
    let token =
        bench.runtime.block_on(accounts.create_token_request("operator", &PostParams::default(), &request)).unwrap();
    let operator_kubeconfig = scratch.path().join("operator.kubeconfig");
    std::fs::write(
        &operator_kubeconfig,
        serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "bench", "cluster": cluster_entry}],
            "users": [{"name": "operator", "user": {"token": token.status.unwrap().token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "bench", "user": "operator"}}],
            "current-context": "operator",
        }))
        .unwrap(),
    )
    .unwrap();

    if let Some(server) = &fake {
        server.clear_requests();
    }
    let metrics = format!("127.0.0.1:{}", free_port());
    let log = scratch.path().join("operator.log");
    let mut operator = Operator {
        child: Command::new(support::WEAVER)
            .args(["operator", "run", "-l", SELECTOR, "--metrics-addr", &metrics])
            .args(["--kube-api-qps", &qps, "--kube-api-burst", &burst])
            .arg("--kubeconfig")
            .arg(&operator_kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        metrics,
    };
    let expected = format!("{targets}/{targets}");
    let in_sync = |b: &Bench| {
        let all = b.syncs();
        all.len() == syncs
            && all.iter().all(|s| s.pointer("/status/targetsInSync").and_then(Value::as_str) == Some(&expected))
    };
    // The operator's own account and the tenant's, whose token writes every target.
    let operator_users = [format!("system:serviceaccount:{NS}:operator"), format!("system:serviceaccount:{NS}:syncer")];
    let limit = Duration::from_secs(1800);
    let cold = bench.wait_until("convergence from a cold start", limit, in_sync);
    let reconciles = operator.metric("configmapsync_reconciles_total");
    let requests = fake.as_ref().map(|server| {
        let log = server.requests();
        let ours: Vec<_> = log.iter().filter(|r| operator_users.contains(&r.user)).collect();
        let writes = ours.iter().filter(|r| r.method != "GET").count();
        format!("{} requests ({:.1} a reconcile), {writes} writes", ours.len(), ours.len() as f64 / reconciles)
    });
    println!(
        "cold start: all {} targets in sync after {}; {reconciles} reconciles; {}",
        syncs * targets,
        support::ms(cold),
        requests.unwrap_or_else(|| "requests not counted on a real cluster".into())
    );

    // One source changes: its copies follow.
    let copies_of = |b: &Bench, value: &str| {
        b.target_copies(targets)
            .iter()
            .filter(|c| c["metadata"]["name"] == "src-0000" && c["data"]["index"] == value)
            .count()
    };
    bench.apply(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "src-0000", "namespace": NS},
        "data": {"index": "changed", "payload": "x".repeat(512)}}),
    );
    let change =
        bench.wait_until("a source change to reach its targets", limit, |b| copies_of(b, "changed") == targets);
    println!("a source change reached its {targets} targets in {}", support::ms(change));
    // Let the change's own reconciles finish before the quiet period.
    bench.wait_until("convergence after the change", limit, in_sync);

    // Steady state: nothing to do, so nothing written.
    let versions = |b: &Bench| -> BTreeMap<String, String> {
        b.target_copies(targets)
            .into_iter()
            .chain(b.syncs())
            .map(|o| {
                let key = format!("{}/{}/{}", o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]);
                (key, o["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string())
            })
            .collect()
    };
    let before = versions(&bench);
    if let Some(server) = &fake {
        server.clear_requests();
    }
    std::thread::sleep(Duration::from_secs(steady));
    let after = versions(&bench);
    let changed = before.iter().filter(|(key, version)| after.get(*key) != Some(*version)).count();
    let steady_requests = fake.as_ref().map(|server| {
        let writes = server.requests().iter().filter(|r| r.method != "GET" && operator_users.contains(&r.user)).count();
        format!(", {writes} write requests")
    });
    println!(
        "steady state, {steady} s: {changed} of {} objects changed{}",
        before.len(),
        steady_requests.unwrap_or_default()
    );
    println!("operator peak RSS {:.1} MB", operator.peak_rss() as f64 / 1e6);

    // Clean up with the operator still running (each ConfigMapSync's finalizer needs it).
    let api = bench.api("weaver.example.com/v1alpha1", "ConfigMapSync", "configmapsyncs", Some(NS));
    bench
        .runtime
        .block_on(api.delete_collection(&DeleteParams::default(), &ListParams::default().labels(SELECTOR)))
        .unwrap();
    bench.wait_until("the ConfigMapSyncs to go", limit, |b| b.syncs().is_empty());
    operator.child.kill().ok();
    for ns in &namespaces {
        let api = bench.api("v1", "Namespace", "namespaces", None);
        let _ = bench.runtime.block_on(api.delete(ns, &DeleteParams::default()));
    }
    for (plural, kind, name) in [
        ("clusterroles", "ClusterRole", "bench-cms-operator"),
        ("clusterroles", "ClusterRole", "bench-cms-writer"),
        ("clusterrolebindings", "ClusterRoleBinding", "bench-cms-operator"),
    ] {
        let _ = bench.runtime.block_on(bench.api(rbac, kind, plural, None).delete(name, &DeleteParams::default()));
    }
    let operator_log = std::fs::read_to_string(&log).unwrap_or_default();
    if !operator_log.trim().is_empty() {
        println!("operator warnings:\n{}", operator_log.lines().take(20).collect::<Vec<_>>().join("\n"));
    }
}
