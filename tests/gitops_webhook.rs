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
        runtime.spawn(weaver_controllers::gitops::webhook::serve(hooks, client, metrics, std::future::pending()));
        runtime.spawn(weaver_controllers::endpoints::serve(endpoints, telemetry, std::future::pending()));
        Receiver { runtime: Some(runtime), hooks: addresses.0, endpoints: addresses.1 }
    }

    /// The status code and body of a POST of `body` to `path`, with `headers` besides the usual.
    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut head =
            format!("POST {path} HTTP/1.1\r\nHost: weaver\r\nConnection: close\r\nContent-Type: application/json\r\n");
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
            head += &format!("Content-Length: {}\r\n", body.len());
        }
        for (name, value) in headers {
            head += &format!("{name}: {value}\r\n");
        }
        exchange(self.hooks, format!("{head}\r\n{body}"))
    }

    fn get(&self, address: SocketAddr, path: &str) -> (u16, String) {
        exchange(address, format!("GET {path} HTTP/1.1\r\nHost: weaver\r\nConnection: close\r\n\r\n"))
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

fn exchange(address: SocketAddr, request: String) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

fn environment_sync(namespace: &str, name: &str, secret: Option<&str>) -> Value {
    let mut sync = json!({
        "apiVersion": "weaver.example.com/v1alpha1",
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

/// The annotation a request for a reconcile sets, if any.
fn requested(cluster: &TestCluster, sync: &Value) -> Option<String> {
    let live = cluster.get(sync).expect("the EnvironmentSync exists");
    live["metadata"]["annotations"][RECONCILE_REQUESTED_AT].as_str().map(String::from)
}

#[test]
fn a_proven_push_requests_a_reconcile_and_anything_else_is_refused_and_counted() {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let ns = cluster.namespace("hook");
    let token = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    cluster.create(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shop-webhook", "namespace": ns},
        "data": {"token": token},
    }));
    let shop = environment_sync(&ns, "shop", Some("shop-webhook"));
    cluster.create(&shop);
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
    // Unknown, without a webhook, or not a hook at all: one answer.
    for path in [format!("/hook/{ns}/nothing"), format!("/hook/{ns}/quiet"), "/hook/shop".into(), "/".into()] {
        let (status, body) = receiver.post(&path, &github, PUSH);
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
    // A webhook whose Secret is missing answers as no webhook does (names are not probed); the
    // operator's log says which Secret.
    let (status, body) = receiver.post(&format!("/hook/{ns}/lost"), &github, PUSH);
    assert_eq!(status, 404, "{body}");
    assert_eq!(requested(&cluster, &shop), Some(second), "no refused request changed the annotation");
    assert_eq!(requested(&cluster, &environment_sync(&ns, "quiet", None)), None);

    let counts = [
        ("accepted", 2),
        ("unauthorized", 4),
        ("not_found", 5),
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
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let ns = cluster.namespace("hook");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN}\r\n"));
    cluster.create(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shop-webhook", "namespace": ns},
        "data": {"token": token},
    }));
    let shop = environment_sync(&ns, "shop", Some("shop-webhook"));
    cluster.create(&shop);
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
