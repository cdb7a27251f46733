//! The ConfigMapSync operator at scale: 200 ConfigMapSyncs × 10 target namespaces (2,000
//! targets) converging from a cold start, one source change reaching its targets, reconciles
//! that find every target in sync (after the target namespaces are relabelled, and after the
//! operator restarts), and a quiet minute in steady state. Reports the times, the reconciles,
//! the operator's API requests per reconcile (the fake's request log; a real server's
//! `apiserver_request_total`, lists and watches apart), the writes in steady state
//! (resourceVersions of every target and ConfigMapSync, compared before and after) and the
//! operator's peak memory.
//!
//! The operator is the release binary, `weaver operator run`, as a ServiceAccount of its own;
//! every target is written as the tenant's ServiceAccount `syncer`. Against the in-process fake,
//! or the current context of `WEAVER_BENCH_KUBECONFIG=FILE` (a scratch cluster: it creates
//! namespaces `bench-cms*` and deletes them at the end). `WEAVER_BENCH_SYNCS` (200),
//! `WEAVER_BENCH_TARGETS` (10), `WEAVER_BENCH_QPS` and `WEAVER_BENCH_BURST` (the operator's
//! defaults, 50 and 300) and `WEAVER_BENCH_STEADY_SECS` (60) scale it; `WEAVER_BENCH_OPERATOR_LOG`
//! is the operator's `RUST_LOG` (warn).

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};
use support::Operator;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
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
        support::api(&self.client, api_version, kind, plural, namespace)
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
        let api = self.api("weaver.example.com/v1beta1", "ConfigMapSync", "configmapsyncs", Some(NS));
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

/// The operator's requests so far, lists and watches apart from the rest (reads of one object,
/// writes, token requests, reviews): from the fake's log, by the operator's users, or from a real
/// server's `apiserver_request_total` for the resources the operator uses (the bench itself only
/// lists and watches while it measures, and patches namespaces, which are left out).
#[derive(Clone, Copy, Default, Debug)]
struct Requests {
    lists_and_watches: u64,
    others: u64,
}

impl std::ops::Sub for Requests {
    type Output = Requests;
    fn sub(self, before: Requests) -> Requests {
        Requests {
            lists_and_watches: self.lists_and_watches - before.lists_and_watches,
            others: self.others - before.others,
        }
    }
}

const OPERATOR_RESOURCES: &[&str] = &[
    "configmaps",
    "configmapsyncs",
    "serviceaccounts",
    "subjectaccessreviews",
    "events",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
];

fn count_requests(bench: &Bench, fake: &Option<weaver_test_apiserver::TestApiServer>, users: &[String]) -> Requests {
    let mut count = Requests::default();
    match fake {
        Some(server) => {
            for request in server.requests().iter().filter(|r| users.contains(&r.user)) {
                let last = request.path.rsplit('/').next().unwrap_or_default();
                if request.method == "GET" && (OPERATOR_RESOURCES.contains(&last) || last == "namespaces") {
                    count.lists_and_watches += 1;
                } else {
                    count.others += 1;
                }
            }
        }
        None => {
            let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
            let text = bench.runtime.block_on(bench.client.request_text(request)).expect("the server's /metrics");
            for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
                let label = |name: &str| {
                    let start = line.find(&format!("{name}=\"")).map(|i| i + name.len() + 2)?;
                    line[start..].split('"').next()
                };
                let Some(resource) = label("resource") else { continue };
                if !OPERATOR_RESOURCES.contains(&resource) {
                    continue;
                }
                let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
                match label("verb") {
                    Some("LIST" | "WATCH" | "WATCHLIST") => count.lists_and_watches += value,
                    _ => count.others += value,
                }
            }
        }
    }
    count
}

fn per_reconcile(requests: Requests, reconciles: f64) -> String {
    format!(
        "{} requests ({:.2} a reconcile) besides {} lists and watches",
        requests.others,
        requests.others as f64 / reconciles.max(1.0),
        requests.lists_and_watches
    )
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
    bench.apply("customresourcedefinitions", weaver_controllers::configmapsync::crd());
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
            json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync",
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
    let operator_kubeconfig = scratch.path().join("operator.kubeconfig");
    support::account_kubeconfig(&bench.client, &bench.runtime, &kubeconfig, NS, "operator", &operator_kubeconfig);

    let log = scratch.path().join("operator.log");
    let start_operator = || {
        let metrics = format!("127.0.0.1:{}", support::free_port());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        Operator {
            child: Command::new(support::WEAVER)
                .args(["operator", "run", "-l", SELECTOR, "--metrics-addr", &metrics])
                .args(["--kube-api-qps", &qps, "--kube-api-burst", &burst])
                .arg("--kubeconfig")
                .arg(&operator_kubeconfig)
                .env("RUST_LOG", std::env::var("WEAVER_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
            metrics,
        }
    };
    // The operator's own account and the tenant's, whose token writes every target.
    let operator_users = [format!("system:serviceaccount:{NS}:operator"), format!("system:serviceaccount:{NS}:syncer")];
    let requests = |b: &Bench| count_requests(b, &fake, &operator_users);
    let before_cold = requests(&bench);
    let operator = start_operator();
    let expected = format!("{targets}/{targets}");
    let in_sync = |b: &Bench| {
        let all = b.syncs();
        all.len() == syncs
            && all.iter().all(|s| s.pointer("/status/targetsInSync").and_then(Value::as_str) == Some(&expected))
    };
    let limit = Duration::from_secs(1800);
    let cold = bench.wait_until("convergence from a cold start", limit, in_sync);
    let reconciles = operator.metric("configmapsync_reconciles_total");
    println!(
        "cold start: all {} targets in sync after {}; {reconciles} reconciles; {}",
        syncs * targets,
        support::ms(cold),
        per_reconcile(requests(&bench) - before_cold, reconciles)
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

    // Reconciles that find every target in sync: each target namespace relabelled (the
    // namespace watch reconciles every ConfigMapSync naming it), then the operator restarted
    // (every ConfigMapSync reconciled once more, with a new token and new reviews).
    let reconciled_since = |o: &Operator, before: f64, at_least: f64| {
        let done = o.metric("configmapsync_reconciles_total") - before;
        (done >= at_least).then_some(done)
    };
    let before = (requests(&bench), operator.metric("configmapsync_reconciles_total"));
    for (i, ns) in target_names.iter().enumerate() {
        let api = bench.api("v1", "Namespace", "namespaces", None);
        let patch = json!({"metadata": {"labels": {"bench-touch": i.to_string()}}});
        bench.runtime.block_on(api.patch(ns, &PatchParams::default(), &Patch::Merge(&patch))).unwrap();
    }
    bench.wait_until("reconciles after the relabel", limit, |_| {
        reconciled_since(&operator, before.1, syncs as f64).is_some()
    });
    // Late reconciles of the same relabels.
    std::thread::sleep(Duration::from_secs(2));
    let relabelled = operator.metric("configmapsync_reconciles_total") - before.1;
    println!(
        "in sync, namespaces relabelled: {relabelled} reconciles; {}",
        per_reconcile(requests(&bench) - before.0, relabelled)
    );

    drop(operator);
    let before_restart = requests(&bench);
    let operator = start_operator();
    bench.wait_until("every ConfigMapSync reconciled after a restart", limit, |_| {
        reconciled_since(&operator, 0.0, syncs as f64).is_some()
    });
    std::thread::sleep(Duration::from_secs(2));
    let restarted = operator.metric("configmapsync_reconciles_total");
    println!(
        "in sync, operator restarted: {restarted} reconciles; {}",
        per_reconcile(requests(&bench) - before_restart, restarted)
    );
    let mut operator = operator;

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
    let api = bench.api("weaver.example.com/v1beta1", "ConfigMapSync", "configmapsyncs", Some(NS));
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
