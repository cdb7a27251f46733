//! The controller's web UI (issue 56): the fleet page of 40 EnvironmentSyncs, each in a
//! namespace of its own with a plan of 250 releases waiting (40 environments × 250 releases),
//! served from the controller's watch (`SyncCache`), to a user signed in with a ServiceAccount's
//! token (target: ≤ 200 ms a view).
//!
//! Reported: the first view, which asks the API server one SubjectAccessReview per
//! EnvironmentSync; the median of the views after it, whose answers are remembered (for
//! `ACCESS_AGE`, 10 s: the views run well within it); this process's CPU per view (the UI
//! server and the bench's HTTP client; on the fake, the fake's work too); the requests each view
//! sent (on the fake: none is a LIST). Against the in-process fake, or the current context of
//! `WEAVER_BENCH_KUBECONFIG=FILE` (it creates namespace `ui-fleet-<pid>` and ClusterRole and
//! ClusterRoleBinding `ui-fleet-<pid>`, and deletes them when done), where it also reports the
//! API server's CPU and, the server on this machine, the least the median view can take.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;

const ENVIRONMENTS: usize = 40;
const RELEASES: usize = 250;
/// Views timed after the first.
const VIEWS: usize = 20;

fn main() {
    let (fake, kubeconfig) = support::cluster();
    println!("against {}", support::cluster_name(&fake, &kubeconfig));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = support::client(&runtime, &kubeconfig);
    let name = format!("ui-fleet-{}", std::process::id());
    let token = runtime.block_on(viewer(&client, &name));

    let syncs = (0..ENVIRONMENTS).map(|i| sync(&format!("{name}-{i:02}")));
    let syncs = weaver_cluster::SyncCache::of(syncs);
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connect = weaver_cluster::ConnectOptions {
        kubeconfig: Some(kubeconfig.clone().into()),
        context: None,
        request_timeout: Duration::from_secs(30),
        retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
        given: None,
    };
    let ui = weaver_cli::commands::operator::UiServing {
        syncs,
        gitops: None,
        sign_in: weaver_cli::commands::operator::UiSignIn::tokens_only(Duration::from_secs(60)),
        limits: Default::default(),
    };
    runtime.spawn(weaver_cli::commands::operator::serve_ui(
        connect,
        client.clone(),
        ui,
        listener,
        std::future::pending(),
    ));

    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let session = sign_in(&agent, &url, &token);
    let view = || {
        let mut response = agent.get(format!("{url}/")).header("Cookie", &session).call().unwrap();
        assert_eq!(response.status(), 200);
        let page = response.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
        assert_eq!(page.matches("id=\"sync-").count(), ENVIRONMENTS, "every EnvironmentSync shown");
    };
    let requests = || fake.as_ref().map(|server| server.requests());

    let before = requests().map(|r| r.len());
    let (cpu, started) = (process_cpu(), Instant::now());
    view();
    let (first, first_cpu) = (started.elapsed(), process_cpu() - cpu);
    let first_requests = requests().zip(before).map(|(log, before)| log.len() - before);

    let server = fake.is_none().then(|| support::ServerCpu::start(&kubeconfig)).flatten();
    let before = requests().map(|r| r.len());
    let cpu = process_cpu();
    let times = support::times_of(VIEWS, view);
    let cpu = (process_cpu() - cpu) / VIEWS as u32;
    let server_cpu = server.as_ref().and_then(|server| server.spent()).map(|spent| spent / VIEWS as u32);
    let median = times[VIEWS / 2];
    let lists =
        requests().map(|log| log.iter().filter(|r| r.method == "GET" && r.path.contains("environmentsyncs")).count());
    let warm_requests = requests().zip(before).map(|(log, before)| (log.len() - before) / VIEWS);

    println!(
        "fleet page, {ENVIRONMENTS} environments × {RELEASES} releases, from the controller's cache: first view {} \
         (CPU {}{}), then median {} of {VIEWS} (fastest {}, slowest {}), this process's CPU {} a view{}{}; load average {}",
        support::ms(first),
        support::ms(first_cpu),
        first_requests.map(|n| format!(", {n} requests to the API server")).unwrap_or_default(),
        support::ms(median),
        support::ms(times[0]),
        support::ms(times[VIEWS - 1]),
        support::ms(cpu),
        warm_requests.map(|n| format!(", {n} requests a view")).unwrap_or_default(),
        lists.map(|n| format!(", {n} reads of EnvironmentSyncs in all")).unwrap_or_default(),
        support::load_average()
    );
    if let Some(server_cpu) = server_cpu {
        let local = server.as_ref().is_some_and(|server| server.local);
        println!(
            "the API server's CPU {} a view{}",
            support::ms(server_cpu),
            if local {
                format!(
                    ": with it on this machine, the median view cannot take under {} on {} cores",
                    support::ms((cpu + server_cpu) / support::cores()),
                    support::cores()
                )
            } else {
                String::new()
            }
        );
    }
    assert!(median <= Duration::from_millis(200), "the fleet page took {} (target ≤ 200 ms)", support::ms(median));
    runtime.block_on(clean_up(&client, &name));
}

/// ServiceAccount `viewer` of namespace `name`, which may get EnvironmentSyncs everywhere (a
/// ClusterRole and binding of that name): a TokenRequest token of it.
async fn viewer(client: &kube::Client, name: &str) -> String {
    let create = |api_version: &str, kind: &str, plural: &str, namespace: Option<&str>, object: serde_json::Value| {
        let api = support::api(client, api_version, kind, plural, namespace);
        async move { api.create(&Default::default(), &serde_json::from_value(object).unwrap()).await.unwrap() }
    };
    create("v1", "Namespace", "namespaces", None, json!({"metadata": {"name": name}})).await;
    create("v1", "ServiceAccount", "serviceaccounts", Some(name), json!({"metadata": {"name": "viewer"}})).await;
    let rbac = "rbac.authorization.k8s.io/v1";
    let rules = json!([{"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"], "verbs": ["get"]}]);
    create(rbac, "ClusterRole", "clusterroles", None, json!({"metadata": {"name": name}, "rules": rules})).await;
    let binding = json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": name}]});
    create(rbac, "ClusterRoleBinding", "clusterrolebindings", None, binding).await;
    // A new binding takes a moment to apply on a real server: the first view is timed after.
    let user = format!("system:serviceaccount:{name}:viewer");
    let groups = ["system:serviceaccounts", "system:authenticated"];
    let review: k8s_openapi::api::authorization::v1::SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": user, "groups": groups, "resourceAttributes": {
            "namespace": name, "verb": "get", "group": "weaver.example.com", "resource": "environmentsyncs"}}}))
    .unwrap();
    let reviews: kube::Api<k8s_openapi::api::authorization::v1::SubjectAccessReview> = kube::Api::all(client.clone());
    while !reviews.create(&Default::default(), &review).await.unwrap().status.is_some_and(|s| s.allowed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(client.clone(), name);
    let request = serde_json::from_value(json!({"spec": {}})).unwrap();
    let issued = accounts.create_token_request("viewer", &Default::default(), &request).await.unwrap();
    issued.status.and_then(|status| status.token).expect("a token")
}

async fn clean_up(client: &kube::Client, name: &str) {
    let rbac = "rbac.authorization.k8s.io/v1";
    for (api_version, kind, plural) in [
        (rbac, "ClusterRoleBinding", "clusterrolebindings"),
        (rbac, "ClusterRole", "clusterroles"),
        ("v1", "Namespace", "namespaces"),
    ] {
        let _ = support::api(client, api_version, kind, plural, None).delete(name, &Default::default()).await;
    }
}

/// An EnvironmentSync of `namespace` whose plan of 250 releases waits for approval.
fn sync(namespace: &str) -> weaver_controllers::gitops::EnvironmentSync {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let releases: Vec<_> = (0..RELEASES)
        .map(|i| json!({"environment": namespace, "release": format!("release-{i:03}"), "create": 1, "update": 2, "delete": 0}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "fleet", "namespace": namespace, "generation": 1, "labels": {"tier": "prod"}},
        "spec": {"source": {"url": "https://git.example.org/fleet.git", "ref": {"branch": "main"}}, "environments": [namespace], "approval": "Manual"},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "AwaitingApproval", "message": "a plan waits",
                "observedGeneration": 1, "lastTransitionTime": "2025-01-01T00:00:00Z"}],
            "lastAttemptedRevision": commit,
            "lastAppliedRevision": commit,
            "pendingPlan": {"digest": format!("sha256:{}", "1".repeat(64)), "revision": commit, "releases": releases},
            "environments": [{"name": namespace, "revision": commit, "result": "AwaitingApproval", "created": 0, "configured": 0,
                "unchanged": RELEASES, "pruned": 0, "failed": 0}],
            "history": [{"revision": commit, "time": "2025-01-01T00:00:00Z", "result": "ReconciliationSucceeded", "message": "applied", "durationSeconds": 1.5}],
        },
    }))
    .unwrap()
}

/// Signs in as a browser does; the session cookie.
fn sign_in(agent: &ureq::Agent, url: &str, token: &str) -> String {
    let cookie = |response: &ureq::http::Response<ureq::Body>| {
        let set = response.headers().get("set-cookie").expect("a cookie").to_str().unwrap();
        set.split(';').next().unwrap().to_string()
    };
    let mut page = agent.get(format!("{url}/sign-in")).call().unwrap();
    let anonymous = cookie(&page);
    let body = page.body_mut().read_to_string().unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a CSRF token") + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    let signed = agent
        .post(format!("{url}/sign-in"))
        .header("Origin", url)
        .header("Cookie", &anonymous)
        .send_form([("csrf", csrf), ("token", token)])
        .unwrap();
    assert_eq!(signed.status(), 303, "signed in");
    cookie(&signed)
}

/// This process's CPU time so far (user and system).
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}
