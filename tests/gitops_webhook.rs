//! The EnvironmentSync webhook receiver (`weaver operator run --webhook-addr`), run in-process
//! against the fake API server or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`: a push
//! proven with the token sets the reconcile-requested-at annotation, anything else leaves it, and
//! every answer is counted on /metrics. No controller runs: the annotation is the receiver's
//! whole effect. Signatures are hard-coded, computed with
//! `printf '%s' BODY | openssl dgst -sha256 -hmac webhook-token-for-tests`.

use crate::common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use common::cluster::TestCluster;
use serde_json::{Value, json};
use weaver_controllers::gitops::plan::RECONCILE_REQUESTED_AT;

const MANAGER: &str = "gitops-webhook-test";
const TOKEN: &str = "webhook-token-for-tests";
const PUSH: &str = r#"{"ref":"refs/heads/main"}"#;
const PUSH_SIGNATURE: &str = "sha256=a32963182b968fa1b1f23a452bbc5f83296d0aab05a2bd27cb682dde811188e5";
const PING: &str = r#"{"zen":"Design for failure."}"#;
const PING_SIGNATURE: &str = "sha256=85cb8f55f90e419814de0ef6a304f3bf7bc3cc6edfbcab2385a79f3d7d8d28b8";

/// The receiver and the operator's /metrics, on a runtime of their own.
struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    hooks: SocketAddr,
    endpoints: SocketAddr,
}

impl Receiver {
    fn start(cluster: &TestCluster) -> Receiver {
        let settings = weaver_controllers::gitops::webhook::Settings {
            trusted_proxies: vec!["127.0.0.3".parse().unwrap()],
            ..Default::default()
        };
        Receiver::start_with(cluster, settings)
    }

    fn start_with(cluster: &TestCluster, settings: weaver_controllers::gitops::webhook::Settings) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let kubeconfig = cluster.kubeconfig().to_path_buf();
        let client = runtime.block_on(async {
            let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
            kube::Client::try_from(config).unwrap()
        });
        let telemetry = Arc::new(weaver_controllers::telemetry::Telemetry::default());
        let listen = || runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let (hooks, endpoints) = (listen(), listen());
        let addresses = (hooks.local_addr().unwrap(), endpoints.local_addr().unwrap());
        let metrics = telemetry.environmentsync.clone();
        let limits = settings.limits.clone();
        let webhook =
            weaver_controllers::gitops::webhook::serve(hooks, settings, client, metrics, std::future::pending());
        runtime.spawn(webhook);
        runtime.spawn(weaver_controllers::endpoints::serve(endpoints, limits, telemetry, std::future::pending()));
        Receiver { runtime: Some(runtime), hooks: addresses.0, endpoints: addresses.1 }
    }

    /// The status code and body of a POST of `body` to `path`, with `headers` besides the usual.
    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        exchange(std::net::TcpStream::connect(self.hooks).unwrap(), request(path, headers, body))
    }

    /// The same from the loopback address `source`.
    fn post_from(&self, source: std::net::IpAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let stream = self.runtime.as_ref().unwrap().block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(source, 0)).unwrap();
            socket.connect(self.hooks).await.unwrap().into_std().unwrap()
        });
        stream.set_nonblocking(false).unwrap();
        exchange(stream, request(path, headers, body))
    }

    fn get(&self, address: SocketAddr, path: &str) -> (u16, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: weaver\r\nConnection: close\r\n\r\n");
        exchange(std::net::TcpStream::connect(address).unwrap(), request)
    }

    /// `environmentsync_webhook_requests_total` by outcome, as /metrics says it.
    fn counted(&self, outcome: &str) -> u64 {
        let (status, metrics) = self.get(self.endpoints, "/metrics");
        assert_eq!(status, 200, "{metrics}");
        let series = format!("environmentsync_webhook_requests_total{{outcome=\"{outcome}\"}} ");
        metrics.lines().find_map(|line| line.strip_prefix(&series)).map_or(0, |n| n.trim().parse().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A POST of `body` to `path`, with `headers` besides the usual.
fn request(path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: weaver\r\nConnection: close\r\nContent-Type: application/json\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    format!("{head}\r\n{body}")
}

fn exchange(mut stream: std::net::TcpStream, request: String) -> (u16, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

fn environment_sync(namespace: &str, name: &str, secret: Option<&str>) -> Value {
    let mut sync = json!({
        "apiVersion": "weaver.example.com/v1beta1",
        "kind": "EnvironmentSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"url": "https://git.example.com/shop.git", "ref": {"branch": "main"}},
            "environments": ["dev"],
        },
    });
    if let Some(secret) = secret {
        sync["spec"]["webhook"] = json!({"secretRef": {"name": secret}});
    }
    sync
}

/// A cluster with the EnvironmentSync CRD, a namespace, and in it the EnvironmentSync `shop`
/// whose webhook's Secret `shop-webhook` holds `token`.
fn hooked(token: &str) -> (TestCluster, String, Value) {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let ns = cluster.namespace("hook");
    let token = base64::engine::general_purpose::STANDARD.encode(token);
    cluster.create(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shop-webhook", "namespace": ns},
        "data": {"token": token},
    }));
    let shop = environment_sync(&ns, "shop", Some("shop-webhook"));
    cluster.create(&shop);
    (cluster, ns, shop)
}

/// The annotation a request for a reconcile sets, if any.
fn requested(cluster: &TestCluster, sync: &Value) -> Option<String> {
    let live = cluster.get(sync).expect("the EnvironmentSync exists");
    live["metadata"]["annotations"][RECONCILE_REQUESTED_AT].as_str().map(String::from)
}

#[test]
fn a_proven_push_requests_a_reconcile_and_anything_else_is_refused_and_counted() {
    let (cluster, ns, shop) = hooked(TOKEN);
    cluster.create(&environment_sync(&ns, "quiet", None));
    cluster.create(&environment_sync(&ns, "lost", Some("no-such-secret")));
    let receiver = Receiver::start(&cluster);
    let hook = format!("/hook/{ns}/shop");

    // GitHub: the body's HMAC-SHA256 under the token.
    let github = [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", PUSH_SIGNATURE)];
    let (status, body) = receiver.post(&hook, &github, PUSH);
    assert_eq!(status, 202, "{body}");
    let first = requested(&cluster, &shop).expect("the annotation is set");
    first.parse::<jiff::Timestamp>().unwrap_or_else(|err| panic!("{first} is not RFC 3339: {err}"));
    // Set by the webhook's own field manager, as `kubectl annotate` sets it by kubectl's.
    let live = cluster.get(&shop).unwrap();
    let annotation = format!("f:{RECONCILE_REQUESTED_AT}");
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["fieldsV1"]["f:metadata"]["f:annotations"].get(&annotation).is_some())
        .filter_map(|entry| entry["manager"].as_str())
        .collect();
    assert_eq!(managers, [weaver_controllers::gitops::webhook::FIELD_MANAGER], "{live:#}");

    // GitLab: the token itself.
    let (status, body) = receiver.post(&hook, &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", TOKEN)], PUSH);
    assert_eq!(status, 202, "{body}");
    let second = requested(&cluster, &shop).expect("the annotation is set");
    assert_ne!(second, first, "a new request is a new value");

    // Refused: nothing changes.
    let forged = "sha256=a32963182b968fa1b1f23a452bbc5f83296d0aab05a2bd27cb682dde811188e6";
    for headers in [&[("X-Hub-Signature-256", forged)][..], &[("X-Gitlab-Token", "guess")], &[]] {
        let (status, body) = receiver.post(&hook, headers, PUSH);
        assert_eq!(status, 401, "{headers:?}: {body}");
    }
    let (status, _) = receiver.post(&hook, &[("X-Hub-Signature-256", PUSH_SIGNATURE)], &format!("{PUSH} "));
    assert_eq!(status, 401, "a signature of another body");
    // Not a hook at all.
    for path in ["/hook/shop", "/"] {
        let (status, body) = receiver.post(path, &github, PUSH);
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = receiver.get(receiver.hooks, &hook);
    assert_eq!(status, 405);
    let oversize = (1 << 20) + 1;
    let (status, _) = receiver.post(&hook, &[("Content-Length", &oversize.to_string())], "");
    assert_eq!(status, 413);
    // GitHub's ping on creating the webhook: verified, then answered without a reconcile.
    let ping = [("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", PING_SIGNATURE)];
    let (status, body) = receiver.post(&hook, &ping, PING);
    assert_eq!(status, 200, "{body}");
    // Unknown, without a webhook, with its Secret missing, or a wrong token: one answer, with one
    // body, none sooner than the floor, so names cannot be probed; the operator's log says which.
    let (_, wrong_token) = receiver.post(&hook, &[("X-Gitlab-Token", "guess")], PUSH);
    for name in ["nothing", "quiet", "lost", "shop"] {
        let started = std::time::Instant::now();
        let (status, body) = receiver.post(&format!("/hook/{ns}/{name}"), &[("X-Gitlab-Token", "guess")], PUSH);
        let took = started.elapsed();
        assert_eq!((status, &body), (401, &wrong_token), "{name}");
        assert!(took >= weaver_controllers::gitops::webhook::UNVERIFIED_FLOOR, "{name}: answered in {took:?}");
    }
    assert_eq!(requested(&cluster, &shop), Some(second), "no refused request changed the annotation");
    assert_eq!(requested(&cluster, &environment_sync(&ns, "quiet", None)), None);
    let counts = [
        ("accepted", 2),
        ("unauthorized", 9),
        ("not_found", 2),
        ("method_not_allowed", 1),
        ("too_large", 1),
        ("ping", 1),
        ("failed", 0),
    ];
    for (outcome, count) in counts {
        assert_eq!(receiver.counted(outcome), count, "{outcome}");
    }
}

/// A Secret made with `kubectl create secret generic --from-file=token=FILE` keeps the file's
/// final newline, which no git host sends: the token is the value without trailing whitespace.
#[test]
fn a_token_secret_with_a_trailing_newline_verifies_pushes() {
    let (cluster, ns, shop) = hooked(&format!("{TOKEN}\r\n"));
    let receiver = Receiver::start(&cluster);
    let hook = format!("/hook/{ns}/shop");

    let github = [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", PUSH_SIGNATURE)];
    let (status, body) = receiver.post(&hook, &github, PUSH);
    assert_eq!(status, 202, "{body}");
    let first = requested(&cluster, &shop).expect("the annotation is set");
    let (status, body) = receiver.post(&hook, &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", TOKEN)], PUSH);
    assert_eq!(status, 202, "{body}");
    assert_ne!(requested(&cluster, &shop), Some(first));
    // Still the token, not a prefix of it.
    let (status, _) = receiver.post(&hook, &[("X-Gitlab-Token", &TOKEN[..TOKEN.len() - 1])], PUSH);
    assert_eq!(status, 401);
}

/// A client that failed verification `FAILURE_BURST` times is answered 429 before the receiver
/// reads anything from the API server; a git host with the token from another address is not.
#[test]
fn a_client_failing_too_often_is_throttled_before_any_api_read() {
    use weaver_controllers::gitops::webhook::FAILURE_BURST;
    let (cluster, ns, shop) = hooked(TOKEN);
    let receiver = Receiver::start(&cluster);
    // Each guess waits out the floor: ask them side by side.
    let guesses: Vec<u16> = std::thread::scope(|scope| {
        let guess = |i: u32| {
            let receiver = &receiver;
            let path = format!("/hook/{ns}/guess-{i}");
            scope.spawn(move || receiver.post(&path, &[("X-Gitlab-Token", "guess")], PUSH).0)
        };
        let asked: Vec<_> = (0..FAILURE_BURST).map(guess).collect();
        asked.into_iter().map(|asked| asked.join().unwrap()).collect()
    });
    assert!(guesses.iter().all(|&status| status == 401), "{guesses:?}");
    let reads_before = cluster.fake("counting the receiver's API reads").map(|fake| reads_of(fake, &ns));
    let (status, body) = receiver.post(&format!("/hook/{ns}/shop"), &[("X-Gitlab-Token", TOKEN)], PUSH);
    assert_eq!(status, 429, "{body}");
    if let (Some(fake), Some(before)) = (cluster.fake("counting the receiver's API reads"), reads_before) {
        assert_eq!(reads_of(fake, &ns), before, "a throttled request reads nothing");
    }
    // The git host, from another address, still gets through.
    let elsewhere = "127.0.0.2".parse().unwrap();
    let (status, body) = receiver.post_from(elsewhere, &format!("/hook/{ns}/shop"), &[("X-Gitlab-Token", TOKEN)], PUSH);
    assert_eq!(status, 202, "{body}");
    // Behind a trusted proxy (127.0.0.3), the client is the one it forwards: the spent one is
    // still throttled, another is not.
    let proxy = "127.0.0.3".parse().unwrap();
    let forwarded = |client: &'static str| [("X-Gitlab-Token", TOKEN), ("X-Forwarded-For", client)];
    let (status, _) = receiver.post_from(proxy, &format!("/hook/{ns}/shop"), &forwarded("127.0.0.1"), PUSH);
    assert_eq!(status, 429);
    let (status, body) = receiver.post_from(proxy, &format!("/hook/{ns}/shop"), &forwarded("198.51.100.7"), PUSH);
    assert_eq!(status, 202, "{body}");
    assert!(requested(&cluster, &shop).is_some());
}

/// The requests the fake API server received for `namespace`'s objects.
fn reads_of(fake: &weaver_test_apiserver::TestApiServer, namespace: &str) -> usize {
    fake.requests().iter().filter(|request| request.path.contains(&format!("/namespaces/{namespace}/"))).count()
}

/// Bodies are read within a budget of bytes at once, whoever sends them: past it a request is
/// answered 503 before its body is read (1,024 connections of 1 MiB bodies would be a GiB).
#[test]
fn bodies_past_the_budget_read_at_once_are_answered_busy() {
    let (cluster, ns, _) = hooked(TOKEN);
    let settings = weaver_controllers::gitops::webhook::Settings { bodies_in_flight: 1024, ..Default::default() };
    let receiver = Receiver::start_with(&cluster, settings);
    // One body of 1,000 bytes, of which 10 arrive: it holds the whole budget while it is read.
    // (A request read before it takes the budget first, and the slow one is turned away: then
    // again, with a new slow one.)
    let head = format!("POST /hook/{ns}/shop HTTP/1.1\r\nHost: weaver\r\nContent-Length: 1000\r\n\r\n0123456789");
    let (slow, busy) = common::eventually("a slow body holding the budget", || {
        let mut slow = std::net::TcpStream::connect(receiver.hooks).unwrap();
        slow.write_all(head.as_bytes()).unwrap();
        let (status, body) = receiver.post(&format!("/hook/{ns}/shop"), &[("X-Gitlab-Token", TOKEN)], PUSH);
        if status == 503 { Ok((slow, body)) } else { Err(format!("{status}: {body}")) }
    });
    assert!(busy.contains("try again later"), "{busy}");
    // Turned away unread, they spend none of the client's tries.
    for _ in 0..weaver_controllers::gitops::webhook::FAILURE_BURST + 1 {
        let (status, _) = receiver.post(&format!("/hook/{ns}/shop"), &[("X-Gitlab-Token", "guess")], PUSH);
        assert_eq!(status, 503);
    }
    drop(slow);
    let accepted = common::eventually("the budget given back", || {
        let (status, body) = receiver.post(&format!("/hook/{ns}/shop"), &[("X-Gitlab-Token", TOKEN)], PUSH);
        if status == 202 { Ok(body) } else { Err(format!("{status}: {body}")) }
    });
    assert!(accepted.starts_with("accepted"));
}
