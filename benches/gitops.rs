//! The EnvironmentSync controller (issue 54) as it runs: the release binary, `weaver operator
//! run --controllers environmentsync`, as a ServiceAccount of its own, pulling from git's
//! smart-HTTP backend on loopback (weaver-test-support's `git_http`), applying as each namespace's tenant
//! ServiceAccount `deployer`.
//! 1. Push to applied: one EnvironmentSync of one environment of 250 releases (a ConfigMap
//!    each), applied; then commits changing all 250, each followed by a requested reconcile (the
//!    annotation the webhook sets), timed until Ready at the new commit, beside the reconcile's
//!    own duration (`status.history[0].durationSeconds`). Target on a real server: ≤ 3 s.
//! 2. Nothing new, by source: 20 EnvironmentSyncs of 20 ConfigMaps each from git, then 20 from
//!    an OCI artifact of the same repository (`weaver push artifact` into Debian's
//!    docker-registry on loopback), each kind alone: one interval and a fifth with nothing new,
//!    the operator's CPU, its requests to the API server and to the source (git's smart-HTTP
//!    requests; the registry's from its log) and the objects written (target 0).
//! 3. Steady state: N EnvironmentSyncs (`WEAVER_BENCH_SYNCS`, 250,500,1000) of 20 ConfigMaps
//!    each (two releases of ten), N environments of ONE repository, over 10 namespaces with a
//!    tenant account each, on `WEAVER_BENCH_INTERVAL` (60s). The sizes grow one set-up: each
//!    size adds EnvironmentSyncs and starts the operator again, timed until all are Ready; then
//!    one interval and a fifth is measured: the controller's CPU (target ≤ 0.25 cores) and RSS
//!    (≤ 500 MB), writes (target 0: resourceVersions of every ConfigMap, Secret and
//!    EnvironmentSync), LISTs of ConfigMaps and Secrets (target 0) and reads of the remote's refs
//!    (`GET …/info/refs`: target one per interval). Then at the largest size, 4 shards (4
//!    operators with `--shard`, each EnvironmentSync labelled with one of 4), in total.
//! 4. Drift noticed, at the largest size: a ConfigMap changed by another field manager, timed
//!    until the EnvironmentSync's `status.drift.drifted` is 1 and an Event DriftDetected tells
//!    (target ≤ 5 s); then with `correctDrift: true`, another changed, timed until put back
//!    (target ≤ 10 s).
//!
//! 5. Previews, nothing new: one EnvironmentSync whose `spec.previews` matches
//!    [`PREVIEW_BRANCHES`] branches (100), each preview (one ConfigMap, in a namespace of its own)
//!    Ready at its branch's head; then one interval and a fifth with no push: the reconciles, the
//!    git requests by kind (`GET …/info/refs`, `POST …/git-upload-pack`) per reconcile, the API
//!    requests, the objects written (target 0) and the controller's CPU.
//!
//! Every figure comes with the operator's CPU (/proc/PID/stat) and the cores it used, its peak
//! and current RSS (VmHWM, VmRSS), its requests by verb and resource (the fake's log, by the
//! operator's and tenants' users; on a real server `apiserver_request_total`, which counts every
//! client of the server, other workers' too) and the load average; on a real server on this
//! machine, the least the wall time can be with the server's CPU spread over the shared cores.
//! Runs against the in-process fake, or the current context of `WEAVER_BENCH_KUBECONFIG=FILE`
//! (namespaces `bench-gitops-<pid>*` and ClusterRoles `bench-gitops-<pid>-*`, deleted at the
//! end). `WEAVER_BENCH_QPS`, `WEAVER_BENCH_BURST` (unset: the operator's default) and
//! `WEAVER_BENCH_CONCURRENT` (4: the chart's) are the operator's; `WEAVER_BENCH_OPERATOR_LOG`
//! its `RUST_LOG` (warn); `WEAVER_BENCH_SCENARIOS` which run (`push,sources,steady,previews`, the
//! default: all; steady includes drift noticed).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use weaver_test_support::{git, git_http};

const GROUP_VERSION: &str = "weaver.example.com/v1beta1";
const SHARD_LABEL: &str = "weaver.example.com/shard";
const SHARDS: usize = 4;
const TENANT_NAMESPACES: usize = 10;
const PUSH_RELEASES: usize = 250;
const PUSH_RUNS: usize = 3;
/// Each steady-state environment: two releases of chart `ten`, ten ConfigMaps each.
const FLEET_RELEASES: [&str; 2] = ["a", "b"];
const CONFIGMAPS_PER_RELEASE: usize = 10;
const LIMIT: Duration = Duration::from_secs(3600);
/// Scenario 2's EnvironmentSyncs of each kind of source (20 ConfigMaps each).
const SOURCE_SYNCS: usize = 20;
/// The tenant namespaces of scenarios 1, 2 and 5, after the prefix.
const SCENARIO_NAMESPACES: [&str; 4] = ["push", "git", "oci", "previews"];
/// Scenario 5's branches matching `spec.previews.branches`, each with a preview.
const PREVIEW_BRANCHES: usize = 100;

fn env_text(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

struct Bench {
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
    fake: Option<weaver_test_apiserver::TestApiServer>,
    kubeconfig: String,
    /// `bench-gitops-<pid>`: the operator's namespace, and the prefix of every name made.
    prefix: String,
}

impl Bench {
    fn api(&self, api_version: &str, kind: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
        support::api(&self.client, api_version, kind, plural, namespace)
    }

    fn api_of(&self, object: &Value, plural: &str) -> (Api<DynamicObject>, String) {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).map(String::from);
        let api = self.api(
            &text("/apiVersion").unwrap(),
            &text("/kind").unwrap(),
            plural,
            text("/metadata/namespace").as_deref(),
        );
        (api, text("/metadata/name").unwrap())
    }

    /// Server-side applies `object` (field manager `bench`, forced).
    fn apply(&self, plural: &str, object: Value) {
        let (api, name) = self.api_of(&object, plural);
        let params = PatchParams::apply("bench").force();
        self.runtime
            .block_on(api.patch(&name, &params, &Patch::Apply(&object)))
            .unwrap_or_else(|e| panic!("apply {plural} {name}: {e}"));
    }

    /// A merge patch of `object` (its apiVersion, kind and name) as field manager `manager`.
    fn merge_patch(&self, plural: &str, object: &Value, patch: Value, manager: &str) {
        let (api, name) = self.api_of(object, plural);
        let params = PatchParams { field_manager: Some(manager.into()), ..Default::default() };
        self.runtime
            .block_on(api.patch(&name, &params, &Patch::Merge(&patch)))
            .unwrap_or_else(|e| panic!("patch {plural} {name}: {e}"));
    }

    fn get(&self, plural: &str, object: &Value) -> Value {
        let (api, name) = self.api_of(object, plural);
        let live = self.runtime.block_on(api.get(&name)).unwrap_or_else(|e| panic!("get {plural} {name}: {e}"));
        serde_json::to_value(live).unwrap()
    }

    fn list(&self, api_version: &str, kind: &str, plural: &str, namespace: Option<&str>, selector: &str) -> Vec<Value> {
        let api = self.api(api_version, kind, plural, namespace);
        let params = match selector {
            "" => ListParams::default(),
            selector => ListParams::default().labels(selector),
        };
        let list = self.runtime.block_on(api.list(&params)).unwrap();
        list.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()
    }

    fn syncs(&self, selector: &str) -> Vec<Value> {
        self.list(GROUP_VERSION, "EnvironmentSync", "environmentsyncs", None, selector)
    }

    fn wait_until(&self, what: &str, poll: Duration, mut done: impl FnMut(&Bench) -> bool) -> Duration {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < LIMIT, "{what}: not done after {LIMIT:?}");
            std::thread::sleep(poll);
        }
        started.elapsed()
    }

    fn tenant_namespaces(&self) -> Vec<String> {
        (0..TENANT_NAMESPACES).map(|t| format!("{}-t{t}", self.prefix)).collect()
    }

    /// Whose requests are the operator's: its own account and the tenants'.
    fn operator_user(&self, user: &str) -> bool {
        user.starts_with(&format!("system:serviceaccount:{}", self.prefix))
    }

    /// Requests so far by "VERB resource": the fake's log of the operator's users, or a real
    /// server's `apiserver_request_total` (every client's).
    fn requests(&self) -> BTreeMap<String, u64> {
        let mut count = BTreeMap::new();
        match &self.fake {
            Some(server) => {
                for request in server.requests().iter().filter(|r| self.operator_user(&r.user)) {
                    *count.entry(verb_and_resource(&request.method, &request.path, &request.query)).or_default() += 1;
                }
            }
            None => {
                let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
                let text = self.runtime.block_on(self.client.request_text(request)).expect("the server's /metrics");
                for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
                    let label = |name: &str| {
                        let start = line.find(&format!(",{name}=\"")).or_else(|| line.find(&format!("{{{name}=\"")))?;
                        line[start + name.len() + 3..].split('"').next()
                    };
                    let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else { continue };
                    let resource = match label("subresource") {
                        Some(sub) if !sub.is_empty() => format!("{resource}/{sub}"),
                        _ => resource.to_string(),
                    };
                    let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
                    *count.entry(format!("{verb} {resource}")).or_default() += value;
                }
            }
        }
        count
    }

    fn server_cpu(&self) -> Option<support::ServerCpu<'_>> {
        match self.fake {
            Some(_) => None,
            None => support::ServerCpu::start(&self.kubeconfig),
        }
    }
}

/// The verb (as `apiserver_request_total` names it) and resource of a request to the fake.
fn verb_and_resource(method: &str, path: &str, query: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match parts.as_slice() {
        ["api", _, rest @ ..] | ["apis", _, _, rest @ ..] => rest,
        _ => return format!("{method} discovery"),
    };
    let rest = match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, named) = match rest {
        [] => return format!("{method} discovery"),
        [resource] => (resource.to_string(), false),
        [resource, _] => (resource.to_string(), true),
        [resource, _, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let verb = match method {
        "GET" if query.contains("watch=true") || query.contains("watch=1") => "WATCH",
        "GET" if named => "GET",
        "GET" => "LIST",
        "POST" => "CREATE",
        "PUT" => "UPDATE",
        other => other,
    };
    format!("{verb} {resource}")
}

/// What `after` counts more than `before`, nonzero only.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(key, n)| (key.clone(), n - before.get(key).copied().unwrap_or(0).min(*n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The requests that weaver's controller sends, as one line (a real server's are every
/// client's, so only the resources it uses are shown).
fn requests_line(requests: &BTreeMap<String, u64>, fake: bool) -> String {
    const RESOURCES: &[&str] = &[
        "configmaps",
        "secrets",
        "leases",
        "environmentsyncs",
        "environmentsyncs/status",
        "events",
        "serviceaccounts/token",
        "namespaces",
        "discovery",
    ];
    let shown: Vec<String> = requests
        .iter()
        .filter(|(key, _)| fake || key.split(' ').nth(1).is_some_and(|r| RESOURCES.contains(&r)))
        .map(|(key, n)| format!("{key} {n}"))
        .collect();
    let whose = if fake { "the operator's and tenants'" } else { "server-wide, every client's" };
    format!("requests ({whose}): {}", if shown.is_empty() { "none".to_string() } else { shown.join(", ") })
}

/// LISTs of ConfigMaps and Secrets.
fn lists(requests: &BTreeMap<String, u64>) -> u64 {
    ["LIST configmaps", "LIST secrets"].iter().map(|key| requests.get(*key).copied().unwrap_or(0)).sum()
}

/// `objects` and every ConfigMap and Secret (the release records) of `namespaces`, each as
/// "Kind/namespace/name" and its resourceVersion.
fn resource_versions<'a>(
    bench: &Bench,
    mut objects: Vec<Value>,
    namespaces: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, String> {
    for ns in namespaces {
        objects.extend(bench.list("v1", "ConfigMap", "configmaps", Some(ns), ""));
        objects.extend(bench.list("v1", "Secret", "secrets", Some(ns), ""));
    }
    objects
        .iter()
        .map(|o| {
            let key = format!("{}/{}/{}", o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]);
            (key, o["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// "N of M objects written", naming the first five written: those of `before` whose
/// resourceVersion `after` does not have.
fn written(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> String {
    let changed: Vec<&str> =
        before.iter().filter(|(key, v)| after.get(*key) != Some(*v)).map(|(k, _)| k.as_str()).collect();
    let named = match changed.is_empty() {
        true => String::new(),
        false => format!(" ({})", changed.iter().take(5).copied().collect::<Vec<_>>().join(", ")),
    };
    format!("{} of {} objects written{named}", changed.len(), before.len())
}

/// Ready at `commit`, at the EnvironmentSync's current generation.
fn ready_at(sync: &Value, commit: &str) -> bool {
    let ready = sync
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    ready
        && sync.pointer("/status/lastAppliedRevision").and_then(Value::as_str) == Some(commit)
        && sync.pointer("/status/observedGeneration") == sync.pointer("/metadata/generation")
}

/// The operator processes measured together: their CPU, memory and metrics summed.
struct Operators(Vec<support::Operator>);

impl Operators {
    fn cpu(&self) -> Duration {
        self.0.iter().map(support::Operator::cpu).sum()
    }

    fn memory(&self) -> String {
        let peak: u64 = self.0.iter().map(support::Operator::peak_rss).sum();
        let now: u64 = self.0.iter().map(support::Operator::rss).sum();
        format!("peak RSS {:.1} MB, RSS {:.1} MB", peak as f64 / 1e6, now as f64 / 1e6)
    }

    fn reconciles(&self) -> f64 {
        self.0.iter().map(|o| o.metric("environmentsync_reconcile_duration_seconds_count")).sum()
    }

    /// The time the reconciles so far took, together.
    fn reconciling(&self) -> Duration {
        Duration::from_secs_f64(self.0.iter().map(|o| o.metric("environmentsync_reconcile_duration_seconds_sum")).sum())
    }
}

/// CPU over a wall time, and the cores it kept busy.
fn cpu_line(cpu: Duration, wall: Duration) -> String {
    format!("controller CPU {:.2} s ({:.2} cores)", cpu.as_secs_f64(), cpu.as_secs_f64() / wall.as_secs_f64().max(1e-3))
}

/// The API server's CPU over a wall time, and where it shares this machine, the least that wall
/// time can be: the controller's CPU and the server's spread over every core (etcd's and the
/// other workers' left out: a lower bound).
fn server_line(server: &Option<support::ServerCpu>, controller: Duration) -> String {
    let Some(server) = server else { return String::new() };
    let Some(spent) = server.spent() else { return String::new() };
    let line = format!("; the API server's CPU {}", support::ms(spent));
    match server.local {
        true => format!(
            "{line}: sharing this machine, no less than {} on {} cores",
            support::ms((controller + spent) / support::cores()),
            support::cores()
        ),
        false => line,
    }
}

/// A repository served over smart HTTP, with a working tree to commit in.
struct Repository {
    git: git2::Repository,
    work: PathBuf,
    url: String,
}

impl Repository {
    fn new(root: &Path, name: &str, base: &str) -> Repository {
        let work = root.join(name);
        let git = git::init(&work);
        git.set_head("refs/heads/main").unwrap();
        Repository { git, work, url: format!("{base}/{name}") }
    }

    fn write(&self, path: &str, text: &str) {
        let full = self.work.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    fn commit(&self, message: &str) -> String {
        git::commit_all(&self.git, message).to_string()
    }
}

fn environment_sync(name: &str, namespace: &str, labels: Value, url: &str, environment: &str, interval: &str) -> Value {
    json!({
        "apiVersion": GROUP_VERSION, "kind": "EnvironmentSync",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"source": {"url": url, "ref": {"branch": "main"}}, "environments": [environment],
                 "serviceAccountName": "deployer", "interval": interval},
    })
}

fn main() {
    if let Some(missing) = git_http::http_backend_missing() {
        println!("not run: {missing}");
        return;
    }
    let (fake, kubeconfig) = support::cluster();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = support::client(&runtime, &kubeconfig);
    let prefix = format!("bench-gitops-{}", std::process::id());
    let bench = Bench { client, runtime, fake, kubeconfig, prefix };
    let mut sizes: Vec<usize> = env_text("WEAVER_BENCH_SYNCS", "250,500,1000")
        .split(',')
        .map(|n| n.trim().parse().expect("WEAVER_BENCH_SYNCS: numbers separated by commas"))
        .collect();
    sizes.sort_unstable();
    let interval_text = env_text("WEAVER_BENCH_INTERVAL", "60s");
    let interval = Duration::from_secs(
        interval_text.trim_end_matches('s').parse().expect("WEAVER_BENCH_INTERVAL: seconds, as 60s"),
    );
    println!(
        "against {}, on {} cores (load average {}); operator --kube-api-qps {} --kube-api-burst {} --concurrent {}",
        support::cluster_name(&bench.fake, &bench.kubeconfig),
        support::cores(),
        support::load_average(),
        env_text("WEAVER_BENCH_QPS", "(unset)"),
        env_text("WEAVER_BENCH_BURST", "(unset)"),
        env_text("WEAVER_BENCH_CONCURRENT", "4"),
    );

    let scratch = tempfile::tempdir().unwrap();
    let git_root = scratch.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    let git = git_http::GitHttpServer::start(&git_root, git_http::Options::default());
    set_up(&bench);
    let operator_kubeconfig = scratch.path().join("operator.kubeconfig");
    support::account_kubeconfig(
        &bench.client,
        &bench.runtime,
        &bench.kubeconfig,
        &bench.prefix,
        "operator",
        &operator_kubeconfig,
    );
    let log = scratch.path().join("operator.log");
    let start = |selector: &str, shard: Option<&str>, cache: &str| {
        let metrics = format!("127.0.0.1:{}", support::free_port());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut command = Command::new(support::WEAVER);
        command
            .args(["operator", "run", "--controllers", "environmentsync", "-l", selector, "--metrics-addr", &metrics])
            .args(
                std::env::var("WEAVER_BENCH_QPS").map(|qps| ["--kube-api-qps".to_string(), qps]).into_iter().flatten(),
            )
            .args(
                std::env::var("WEAVER_BENCH_BURST").map(|n| ["--kube-api-burst".to_string(), n]).into_iter().flatten(),
            )
            .args(["--concurrent", &env_text("WEAVER_BENCH_CONCURRENT", "4")])
            .arg("--git-cache-dir")
            .arg(scratch.path().join(cache))
            .arg("--kubeconfig")
            .arg(&operator_kubeconfig)
            .args(shard.map(|shard| ["--shard", shard]).into_iter().flatten())
            .env("RUST_LOG", env_text("WEAVER_BENCH_OPERATOR_LOG", "warn"))
            .stdout(Stdio::null())
            .stderr(log);
        support::Operator { child: command.spawn().unwrap(), metrics }
    };

    let scenarios = env_text("WEAVER_BENCH_SCENARIOS", "push,sources,steady,previews");
    let runs = |name: &str| scenarios.split(',').any(|s| s.trim() == name);
    if runs("push") {
        push_to_applied(&bench, &git_root, &git, &start);
    }
    if runs("sources") {
        nothing_new_by_source(&bench, &git_root, &git, &start, &interval_text, interval);
    }
    if runs("steady") {
        steady_state(&bench, &git_root, &git, &start, &sizes, &interval_text, interval);
    }
    if runs("previews") {
        previews_nothing_new(&bench, &git_root, &git, &start, &interval_text, interval);
    }

    clean_up(&bench);
    let operator_log = std::fs::read_to_string(&log).unwrap_or_default();
    if !operator_log.trim().is_empty() {
        println!(
            "operator warnings (first 20 lines):\n{}",
            operator_log.lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
}

/// The CRD; the operator's namespace and ServiceAccount, which may do anything; the tenants'
/// namespaces, each with ServiceAccount `deployer` that may do anything there and read
/// namespaces.
fn set_up(bench: &Bench) {
    bench.apply("customresourcedefinitions", weaver_controllers::gitops::crd());
    bench.wait_until("the CRD to be established", Duration::from_millis(250), |b| {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "metadata": {"name": "environmentsyncs.weaver.example.com"}});
        let crd = b.get("customresourcedefinitions", &crd);
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
    });
    let prefix = &bench.prefix;
    let rbac = "rbac.authorization.k8s.io/v1";
    let role_ref =
        |kind: &str, name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    bench.apply("namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": prefix}}));
    bench.apply(
        "serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "operator", "namespace": prefix}}),
    );
    bench.apply(
        "clusterroles",
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": format!("{prefix}-operator")},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    );
    bench.apply(
        "clusterrolebindings",
        json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": format!("{prefix}-operator")},
               "roleRef": role_ref("ClusterRole", &format!("{prefix}-operator")),
               "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": prefix}]}),
    );
    let mut tenants = bench.tenant_namespaces();
    tenants.extend(SCENARIO_NAMESPACES.map(|name| format!("{prefix}-{name}")));
    for ns in &tenants {
        bench.apply("namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        bench.apply(
            "serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": ns}}),
        );
        bench.apply(
            "roles",
            json!({"apiVersion": rbac, "kind": "Role", "metadata": {"name": "deployer", "namespace": ns},
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        );
        bench.apply(
            "rolebindings",
            json!({"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": "deployer", "namespace": ns},
                   "roleRef": role_ref("Role", "deployer"),
                   "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}),
        );
    }
    bench.apply(
        "clusterroles",
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": format!("{prefix}-namespaces")},
               "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]}),
    );
    let subjects: Vec<Value> =
        tenants.iter().map(|ns| json!({"kind": "ServiceAccount", "name": "deployer", "namespace": ns})).collect();
    bench.apply(
        "clusterrolebindings",
        json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": format!("{prefix}-namespaces")},
               "roleRef": role_ref("ClusterRole", &format!("{prefix}-namespaces")), "subjects": subjects}),
    );
    // The previews' account makes their namespaces and writes in them (the previews guide).
    bench.apply(
        "clusterroles",
        json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": format!("{prefix}-previews")},
               "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create", "delete"]},
                         {"apiGroups": ["", "coordination.k8s.io", "events.k8s.io"],
                          "resources": ["configmaps", "secrets", "leases", "events"], "verbs": ["*"]}]}),
    );
    bench.apply(
        "clusterrolebindings",
        json!({"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": format!("{prefix}-previews")},
               "roleRef": role_ref("ClusterRole", &format!("{prefix}-previews")),
               "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": format!("{prefix}-previews")}]}),
    );
}

/// Scenario 5: one EnvironmentSync of environment `main` (one ConfigMap) whose previews
/// (environment `preview`, one ConfigMap) are [`PREVIEW_BRANCHES`] branches, each at a commit of
/// its own; once every preview is Ready, one interval and a fifth with nothing new.
fn previews_nothing_new(
    bench: &Bench,
    git_root: &Path,
    git: &git_http::GitHttpServer,
    start: &dyn Fn(&str, Option<&str>, &str) -> support::Operator,
    interval_text: &str,
    interval: Duration,
) {
    let namespace = format!("{}-previews", bench.prefix);
    let repo = Repository::new(git_root, "previews", &git.base);
    repo.write("charts/one/chart.yaml", "name: one\nversion: 1.0.0\n");
    repo.write(
        "charts/one/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  greeting: {{ values.greeting }}\n",
    );
    repo.write(
        "environments/main.yaml",
        &format!(
            "namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n  - name: app\n    chart: one\n"
        ),
    );
    // The namespace is the preview's: the controller replaces it.
    repo.write("environments/preview.yaml", "namespace: preview\nreleases:\n  - name: app\n    chart: one\n");
    // Each branch at a commit of its own (main's history, one greeting each).
    for i in 0..PREVIEW_BRANCHES {
        repo.write("charts/one/values.yaml", &format!("greeting: branch-{i:03}\n"));
        let commit = git2::Oid::from_str(&repo.commit(&format!("branch {i}"))).unwrap();
        repo.git.reference(&format!("refs/heads/preview/b{i:03}"), commit, true, "a preview's branch").unwrap();
    }
    repo.write("charts/one/values.yaml", "greeting: main\n");
    let commit = repo.commit("main");
    let label = format!("{}-previews", std::process::id());
    let selector = format!("bench-gitops={label}");
    let mut sync =
        environment_sync("previews", &namespace, json!({"bench-gitops": label}), &repo.url, "main", interval_text);
    sync["spec"]["previews"] = json!({"branches": "preview/*", "environment": "preview",
        "namespace": format!("{}-pv-{{name}}", bench.prefix), "max": PREVIEW_BRANCHES});
    bench.apply("environmentsyncs", sync.clone());
    let operators = Operators(vec![start(selector.as_str(), None, "cache-previews")]);
    let all_ready = |live: &Value| {
        let previews = live.pointer("/status/previews").and_then(Value::as_array);
        ready_at(live, &commit)
            && previews.is_some_and(|p| p.len() == PREVIEW_BRANCHES && p.iter().all(|p| p["state"] == "Ready"))
    };
    let cold = bench.wait_until("every preview Ready", Duration::from_millis(250), |b| {
        all_ready(&b.get("environmentsyncs", &sync))
    });
    let preview_namespaces: Vec<String> =
        (0..PREVIEW_BRANCHES).map(|i| format!("{}-pv-b{i:03}", bench.prefix)).collect();
    // The sync, and every ConfigMap and Secret of its namespace and the previews'.
    let versions = |b: &Bench| {
        resource_versions(b, vec![b.get("environmentsyncs", &sync)], preview_namespaces.iter().chain([&namespace]))
    };
    let (refs, packs) = ("GET /previews/info/refs", "POST /previews/git-upload-pack");
    let before = versions(bench);
    let (cpu, requests, server) = (operators.cpu(), bench.requests(), bench.server_cpu());
    let (reconciles, reconciling) = (operators.reconciles(), operators.reconciling());
    let (ref_reads, pack_posts) = (git.count(refs), git.count(packs));
    let started = Instant::now();
    std::thread::sleep(interval + interval / 5);
    let (spent, wall) = (operators.cpu() - cpu, started.elapsed());
    let (reconciles, reconciling) = (operators.reconciles() - reconciles, operators.reconciling() - reconciling);
    let (ref_reads, pack_posts) = (git.count(refs) - ref_reads, git.count(packs) - pack_posts);
    let requests = delta(&requests, &bench.requests());
    let after = versions(bench);
    let live = bench.get("environmentsyncs", &sync);
    assert!(all_ready(&live), "the previews after the interval: {:#}", live["status"]);
    let per = |n: usize| n as f64 / reconciles.max(1.0);
    println!(
        "previews, nothing new: 1 EnvironmentSync with {PREVIEW_BRANCHES} previews Ready (set up in {}), interval {interval_text}, {} s: {} reconciles ({} each, the controller's metric); git requests {} ({ref_reads} GET info/refs, {pack_posts} POST git-upload-pack: {:.1} and {:.1} a reconcile); {}; {}; {}{}; {}; load average {}",
        support::ms(cold),
        wall.as_secs(),
        reconciles,
        support::ms(reconciling.div_f64(reconciles.max(1.0))),
        ref_reads + pack_posts,
        per(ref_reads),
        per(pack_posts),
        written(&before, &after),
        requests_line(&requests, bench.fake.is_some()),
        cpu_line(spent, wall),
        server_line(&server, spent),
        operators.memory(),
        support::load_average()
    );
}

/// Scenario 1: a commit changing all 250 releases of one environment, from the requested
/// reconcile to Ready at that commit.
fn push_to_applied(
    bench: &Bench,
    git_root: &Path,
    git: &git_http::GitHttpServer,
    start: &dyn Fn(&str, Option<&str>, &str) -> support::Operator,
) {
    let namespace = format!("{}-push", bench.prefix);
    let repo = Repository::new(git_root, "push", &git.base);
    repo.write("charts/one/chart.yaml", "name: one\nversion: 1.0.0\n");
    repo.write("charts/one/values.yaml", "greeting: hello-0\n");
    repo.write(
        "charts/one/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  greeting: {{ values.greeting }}\n  release: {{ release.name }}\n",
    );
    let mut env = format!("namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n");
    for i in 0..PUSH_RELEASES {
        env.push_str(&format!("  - name: p-{i:04}\n    chart: one\n"));
    }
    repo.write("environments/push.yaml", &env);
    let mut commit = repo.commit("push: first");

    let selector = format!("bench-gitops={}-push", std::process::id());
    let labels = json!({"bench-gitops": format!("{}-push", std::process::id())});
    // An hour's interval: only the requested reconciles apply.
    let sync = environment_sync("push", &namespace, labels, &repo.url, "push", "1h");
    let operators = Operators(vec![start(selector.as_str(), None, "cache-push")]);
    let (cpu, requests, server) = (operators.cpu(), bench.requests(), bench.server_cpu());
    bench.apply("environmentsyncs", sync.clone());
    let first = bench.wait_until("the first apply of 250 releases", Duration::from_millis(100), |b| {
        ready_at(&b.get("environmentsyncs", &sync), &commit)
    });
    let spent = operators.cpu() - cpu;
    println!(
        "push: first apply of {PUSH_RELEASES} releases: Ready in {}; {}{}; {}; {}; load average {}",
        support::ms(first),
        cpu_line(spent, first),
        server_line(&server, spent),
        operators.memory(),
        requests_line(&delta(&requests, &bench.requests()), bench.fake.is_some()),
        support::load_average()
    );

    for run in 1..=PUSH_RUNS {
        repo.write("charts/one/values.yaml", &format!("greeting: hello-{run}\n"));
        commit = repo.commit(&format!("push: change {run}"));
        let (cpu, requests, server) = (operators.cpu(), bench.requests(), bench.server_cpu());
        let asked = format!("bench-push-{run}");
        let annotation = json!({"metadata": {"annotations": {"weaver.example.com/reconcile-requested-at": asked}}});
        let started = Instant::now();
        bench.merge_patch("environmentsyncs", &sync, annotation, "bench");
        let mut live = Value::Null;
        bench.wait_until("the pushed commit applied", Duration::from_millis(50), |b| {
            live = b.get("environmentsyncs", &sync);
            ready_at(&live, &commit) && live.pointer("/status/lastHandledReconcileAt") == Some(&json!(asked))
        });
        let took = started.elapsed();
        let spent = operators.cpu() - cpu;
        let reconcile = live.pointer("/status/history/0/durationSeconds").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let configured = live.pointer("/status/environments/0/configured").cloned().unwrap_or(Value::Null);
        println!(
            "push to applied, run {run}: {} changed, Ready at the new commit in {} (the reconcile's own duration {:.0} ms); {}{}; {}; {}; load average {}",
            configured,
            support::ms(took),
            reconcile * 1000.0,
            cpu_line(spent, took),
            server_line(&server, spent),
            operators.memory(),
            requests_line(&delta(&requests, &bench.requests()), bench.fake.is_some()),
            support::load_average()
        );
    }
}

/// Scenario 2: nothing new, from git and from an OCI artifact of the same repository
/// (`weaver push artifact`, in Debian's docker-registry on loopback): for each kind alone,
/// [`SOURCE_SYNCS`] EnvironmentSyncs of 20 ConfigMaps each, applied and settled, then one
/// interval and a fifth measured: the operator's CPU, its requests to the API server and to the
/// source (git's smart-HTTP requests; the registry's, from its log), and the objects written.
fn nothing_new_by_source(
    bench: &Bench,
    git_root: &Path,
    git: &git_http::GitHttpServer,
    start: &dyn Fn(&str, Option<&str>, &str) -> support::Operator,
    interval_text: &str,
    interval: Duration,
) {
    if !Path::new(weaver_test_support::registry::BINARY).exists() {
        println!("sources: not run: no {} (apt-get install docker-registry)", weaver_test_support::registry::BINARY);
        return;
    }
    let registry_dir = tempfile::tempdir().unwrap();
    let registry_log = registry_dir.path().join("registry.log");
    let port = support::free_port();
    let mut registry = weaver_test_support::registry::serve(
        registry_dir.path(),
        std::net::Ipv4Addr::LOCALHOST,
        port,
        "",
        "info",
        Some(&registry_log),
    );
    // The registry's requests so far, as `METHOD kind` (manifests, blobs, tags).
    let registry_requests = || -> BTreeMap<String, u64> {
        let mut count = BTreeMap::new();
        for line in std::fs::read_to_string(&registry_log).unwrap_or_default().lines() {
            if !line.contains("response completed") {
                continue;
            }
            let field = |name: &str| line.split(&format!("{name}=")).nth(1).and_then(|rest| rest.split(' ').next());
            let (Some(method), Some(uri)) = (field("http.request.method"), field("http.request.uri")) else { continue };
            let kind =
                ["manifests", "blobs", "tags"].into_iter().find(|k| uri.contains(&format!("/{k}/"))).unwrap_or("other");
            *count.entry(format!("{method} {kind}")).or_default() += 1;
        }
        count
    };

    let prefix = &bench.prefix;
    let repo = Repository::new(git_root, "sources", &git.base);
    repo.write("charts/ten/chart.yaml", "name: ten\nversion: 1.0.0\n");
    for k in 0..CONFIGMAPS_PER_RELEASE {
        repo.write(
            &format!("charts/ten/templates/configmap-{k:02}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ release.name }}}}-{k:02}\ndata:\n  index: \"{k}\"\n"),
        );
    }
    let environment = |kind: &str, i: usize| format!("{kind}-{i:02}");
    for kind in ["git", "oci"] {
        for i in 0..SOURCE_SYNCS {
            let ns = format!("{prefix}-{kind}");
            let mut text = format!("namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n");
            for release in FLEET_RELEASES {
                text.push_str(&format!("  - name: {kind}{i:02}-{release}\n    chart: ten\n"));
            }
            repo.write(&format!("environments/{}.yaml", environment(kind, i)), &text);
        }
    }
    let commit = repo.commit("sources");
    let artifact = format!("127.0.0.1:{port}/bench/sources");
    let pushed = support::run(
        Command::new(support::WEAVER)
            .args(["push", "artifact", &format!("oci://{artifact}:main"), "--plain-http", "-o", "json"])
            .current_dir(&repo.work),
    );
    assert!(pushed.output.status.success(), "weaver push artifact: {}", String::from_utf8_lossy(&pushed.output.stderr));
    let digest =
        serde_json::from_slice::<Value>(&pushed.output.stdout).unwrap()["digest"].as_str().unwrap().to_string();

    for kind in ["git", "oci"] {
        let (revision, source) = match kind {
            "git" => (commit.as_str(), json!({"url": repo.url, "ref": {"branch": "main"}})),
            _ => {
                (digest.as_str(), json!({"oci": {"url": format!("oci://{artifact}"), "tag": "main", "insecure": true}}))
            }
        };
        let label = format!("{}-{kind}", std::process::id());
        let selector = format!("bench-gitops={label}");
        for i in 0..SOURCE_SYNCS {
            let mut sync = environment_sync(
                &environment(kind, i),
                &format!("{prefix}-{kind}"),
                json!({"bench-gitops": label}),
                "",
                &environment(kind, i),
                interval_text,
            );
            sync["spec"]["source"] = source.clone();
            bench.apply("environmentsyncs", sync);
        }
        let operators = Operators(vec![start(selector.as_str(), None, &format!("cache-{kind}"))]);
        let cold = bench.wait_until("every EnvironmentSync of the source settled", Duration::from_millis(250), |b| {
            let all = b.syncs(&selector);
            all.len() == SOURCE_SYNCS
                && all
                    .iter()
                    .all(|s| ready_at(s, revision) && s.pointer("/status/drift/summary") == Some(&json!("none")))
        });
        let (cpu, requests, server) = (operators.cpu(), bench.requests(), bench.server_cpu());
        let (reconciles, git_requests, registry_before) = (operators.reconciles(), git.count(""), registry_requests());
        let written = |b: &Bench| -> Vec<String> {
            let mut all = b.syncs(&selector);
            all.extend(b.list("v1", "ConfigMap", "configmaps", Some(&format!("{prefix}-{kind}")), ""));
            all.iter().map(|o| o["metadata"]["resourceVersion"].to_string()).collect()
        };
        let before = written(bench);
        let started = Instant::now();
        std::thread::sleep(interval + interval / 5);
        let (spent, wall) = (operators.cpu() - cpu, started.elapsed());
        let after = written(bench);
        let source_requests = match kind {
            "git" => format!("git requests {}", git.count("") - git_requests),
            _ => {
                let counted = delta(&registry_before, &registry_requests());
                let shown: Vec<String> = counted.iter().map(|(k, n)| format!("{k} {n}")).collect();
                format!("registry requests: {}", if shown.is_empty() { "none".into() } else { shown.join(", ") })
            }
        };
        println!(
            "nothing new, {kind} source, {SOURCE_SYNCS} EnvironmentSyncs × 20 ConfigMaps, interval {interval_text} (settled {} after the operator started), {} s: {}{}; {}; {} reconciles; {} of {} objects written; {source_requests}; {}; load average {}",
            support::ms(cold),
            wall.as_secs(),
            cpu_line(spent, wall),
            server_line(&server, spent),
            operators.memory(),
            operators.reconciles() - reconciles,
            before.iter().zip(&after).filter(|(a, b)| a != b).count() + after.len().abs_diff(before.len()),
            before.len(),
            requests_line(&delta(&requests, &bench.requests()), bench.fake.is_some()),
            support::load_average()
        );
    }
    let _ = registry.kill();
    let _ = registry.wait();
}

/// Scenarios 3 and 4.
fn steady_state(
    bench: &Bench,
    git_root: &Path,
    git: &git_http::GitHttpServer,
    start: &dyn Fn(&str, Option<&str>, &str) -> support::Operator,
    sizes: &[usize],
    interval_text: &str,
    interval: Duration,
) {
    let Some(&largest) = sizes.last() else { return };
    let namespaces = bench.tenant_namespaces();
    let repo = Repository::new(git_root, "fleet", &git.base);
    repo.write("charts/ten/chart.yaml", "name: ten\nversion: 1.0.0\n");
    repo.write("charts/ten/values.yaml", "tier: bench\n");
    for k in 0..CONFIGMAPS_PER_RELEASE {
        repo.write(
            &format!("charts/ten/templates/configmap-{k:02}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ release.name }}}}-{k:02}\ndata:\n  index: \"{k}\"\n  tier: {{{{ values.tier }}}}\n"),
        );
    }
    let environment = |i: usize| format!("env-{i:04}");
    let namespace = |i: usize| namespaces[i % TENANT_NAMESPACES].clone();
    for i in 0..largest {
        let ns = namespace(i);
        let mut text = format!("namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n");
        for release in FLEET_RELEASES {
            text.push_str(&format!("  - name: e{i:04}-{release}\n    chart: ten\n"));
        }
        repo.write(&format!("environments/{}.yaml", environment(i)), &text);
    }
    let commit = repo.commit("fleet");
    let refs = "GET /fleet/info/refs";
    let label = format!("{}-fleet", std::process::id());
    let selector = format!("bench-gitops={label}");
    let sync_of = |i: usize| {
        let labels = json!({"bench-gitops": label, SHARD_LABEL: format!("s{}", i % SHARDS)});
        environment_sync(&environment(i), &namespace(i), labels, &repo.url, &environment(i), interval_text)
    };
    let objects_per_sync = FLEET_RELEASES.len() * CONFIGMAPS_PER_RELEASE;

    // Every ConfigMap, Secret (the release records) and EnvironmentSync, by resourceVersion.
    let versions = |b: &Bench| resource_versions(b, b.syncs(&selector), &namespaces);
    // Measures one interval and a fifth, with nothing to do.
    let measure = |what: &str, operators: &Operators| {
        let before = versions(bench);
        let (cpu, requests, server, reads, reconciles) =
            (operators.cpu(), bench.requests(), bench.server_cpu(), git.count(refs), operators.reconciles());
        let window = interval + interval / 5;
        let started = Instant::now();
        std::thread::sleep(window);
        let (spent, wall) = (operators.cpu() - cpu, started.elapsed());
        let server = server.and_then(|s| s.spent());
        let (reads, reconciles) = (git.count(refs) - reads, operators.reconciles() - reconciles);
        let requests = delta(&requests, &bench.requests());
        let memory = operators.memory();
        let after = versions(bench);
        println!(
            "{what}, {} s: {}; {memory}; {reconciles} reconciles; {}; {} LISTs of ConfigMaps and Secrets; {reads} reads of the remote's refs ({:.1} an interval); {}{}; load average {}",
            wall.as_secs(),
            cpu_line(spent, wall),
            written(&before, &after),
            lists(&requests),
            reads as f64 * interval.as_secs_f64() / wall.as_secs_f64(),
            requests_line(&requests, bench.fake.is_some()),
            server
                .map(|s| format!(
                    "; the API server's CPU {:.2} cores (everyone's work)",
                    s.as_secs_f64() / wall.as_secs_f64()
                ))
                .unwrap_or_default(),
            support::load_average()
        );
    };
    let settled = |b: &Bench, n: usize| {
        let all = b.syncs(&selector);
        all.len() == n
            && all.iter().all(|s| ready_at(s, &commit) && s.pointer("/status/drift/summary") == Some(&json!("none")))
    };

    let mut created = 0;
    let mut operators = Operators(Vec::new());
    for &n in sizes {
        operators.0.clear();
        let started = Instant::now();
        for i in created..n {
            bench.apply("environmentsyncs", sync_of(i));
        }
        let made = started.elapsed();
        let (requests, server, reads) = (bench.requests(), bench.server_cpu(), git.count(refs));
        operators = Operators(vec![start(selector.as_str(), None, "cache-single")]);
        let cold = bench.wait_until("every EnvironmentSync Ready", Duration::from_secs(1), |b| {
            let all = b.syncs(&selector);
            all.len() == n && all.iter().all(|s| ready_at(s, &commit))
        });
        let spent = operators.cpu();
        println!(
            "steady state, {n} EnvironmentSyncs × {objects_per_sync} ConfigMaps: {} new ones created in {}, then the operator started: all Ready in {} ({} reconciles, {} reads of the remote's refs); {}{}; {}; {}; load average {}",
            n - created,
            support::ms(made),
            support::ms(cold),
            operators.reconciles(),
            git.count(refs) - reads,
            cpu_line(spent, cold),
            server_line(&server, spent),
            operators.memory(),
            requests_line(&delta(&requests, &bench.requests()), bench.fake.is_some()),
            support::load_average()
        );
        created = n;
        // The first interval after an apply looks at drift and says so (`drift: none`) once.
        let first_look =
            bench.wait_until("every EnvironmentSync's first look at drift", Duration::from_secs(1), |b| settled(b, n));
        println!("steady state, {n}: every first look at drift done {} later", support::ms(first_look));
        measure(&format!("steady state, {n} EnvironmentSyncs, one operator, interval {interval_text}"), &operators);
    }

    drift_noticed(bench, &namespace(0), &environment(0));

    // The same EnvironmentSyncs over 4 shards.
    operators.0.clear();
    let (requests, reads) = (bench.requests(), git.count(refs));
    let started = Instant::now();
    operators = Operators(
        (0..SHARDS)
            .map(|s| start(selector.as_str(), Some(format!("s{s}").as_str()), format!("cache-s{s}").as_str()))
            .collect(),
    );
    let restarted = bench.wait_until("every EnvironmentSync reconciled by its shard", Duration::from_secs(1), |_| {
        operators.reconciles() >= largest as f64
    });
    bench.wait_until("every EnvironmentSync settled", Duration::from_secs(1), |b| settled(b, largest));
    let spent = operators.cpu();
    println!(
        "steady state, {largest} EnvironmentSyncs over {SHARDS} shards: each reconciled once {} after the operators started ({} reads of the remote's refs); {}; {}; {}; load average {}",
        support::ms(restarted),
        git.count(refs) - reads,
        cpu_line(spent, started.elapsed()),
        operators.memory(),
        requests_line(&delta(&requests, &bench.requests()), bench.fake.is_some()),
        support::load_average()
    );
    measure(
        &format!("steady state, {largest} EnvironmentSyncs, {SHARDS} shards in total, interval {interval_text}"),
        &operators,
    );
}

/// Scenario 4: one of the steady state's ConfigMaps changed by hand, with the operator running.
fn drift_noticed(bench: &Bench, namespace: &str, name: &str) {
    let sync = json!({"apiVersion": GROUP_VERSION, "kind": "EnvironmentSync", "metadata": {"name": name, "namespace": namespace}});
    let config_map = |n: usize| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("e{}-a-{n:02}", name.trim_start_matches("env-")), "namespace": namespace}})
    };
    let told = |b: &Bench| {
        b.list("events.k8s.io/v1", "Event", "events", Some(namespace), "")
            .iter()
            .any(|e| e["regarding"]["name"] == name && e["reason"] == "DriftDetected")
    };
    let started = Instant::now();
    bench.merge_patch("configmaps", &config_map(0), json!({"data": {"index": "by hand"}}), "bench-kubectl");
    let (mut reported, mut event) = (None, None);
    bench.wait_until("the drift reported", Duration::from_millis(100), |b| {
        let live = b.get("environmentsyncs", &sync);
        if reported.is_none() && live.pointer("/status/drift/drifted").and_then(Value::as_u64).unwrap_or(0) >= 1 {
            reported = Some(started.elapsed());
        }
        if event.is_none() && told(b) {
            event = Some(started.elapsed());
        }
        reported.is_some() && event.is_some()
    });
    println!(
        "drift noticed: a ConfigMap changed by hand, in status.drift after {}, the Event DriftDetected after {}; load average {}",
        support::ms(reported.unwrap()),
        support::ms(event.unwrap()),
        support::load_average()
    );

    bench.merge_patch("environmentsyncs", &sync, json!({"spec": {"correctDrift": true}}), "bench");
    let back = |b: &Bench, n: usize| b.get("configmaps", &config_map(n))["data"]["index"] == json!(n.to_string());
    let first = bench.wait_until("the drift corrected", Duration::from_millis(100), |b| back(b, 0));
    bench.merge_patch("configmaps", &config_map(1), json!({"data": {"index": "by hand again"}}), "bench-kubectl");
    let corrected = bench.wait_until("the second drift put back", Duration::from_millis(100), |b| back(b, 1));
    println!(
        "drift corrected: with correctDrift set, the first change put back {} after the spec changed; another ConfigMap changed by hand then, put back in {}; load average {}",
        support::ms(first),
        support::ms(corrected),
        support::load_average()
    );
}

/// Deletes the namespaces (and so everything in them) and the cluster-wide RBAC made here.
fn clean_up(bench: &Bench) {
    let prefix = &bench.prefix;
    let mut namespaces = bench.tenant_namespaces();
    namespaces.extend(SCENARIO_NAMESPACES.map(|name| format!("{prefix}-{name}")));
    namespaces.extend((0..PREVIEW_BRANCHES).map(|i| format!("{prefix}-pv-b{i:03}")));
    namespaces.push(prefix.clone());
    let api = bench.api("v1", "Namespace", "namespaces", None);
    for ns in &namespaces {
        let _ = bench.runtime.block_on(api.delete(ns, &DeleteParams::default()));
    }
    let rbac = "rbac.authorization.k8s.io/v1";
    for suffix in ["operator", "namespaces", "previews"] {
        let name = format!("{prefix}-{suffix}");
        for (kind, plural) in [("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings")] {
            let _ = bench.runtime.block_on(bench.api(rbac, kind, plural, None).delete(&name, &DeleteParams::default()));
        }
    }
}
