//! The webhook receiver (`weaver operator run --webhook-addr`): a git host's push to `POST
//! /hook/<namespace>/<name>` asks for a reconcile of that EnvironmentSync at once. Proven with
//! the token of its `spec.webhook.secretRef`, by GitHub's `X-Hub-Signature-256` or GitLab's
//! `X-Gitlab-Token`, the request sets the `RECONCILE_REQUESTED_AT` annotation to the time, as
//! Flux's Receiver annotates its targets; the controller's watch does the rest. Each request is
//! counted by outcome and logged in one line; the token and the body never are.
//!
//! A caller without the token learns nothing of which EnvironmentSyncs exist: an absent one, one
//! without `spec.webhook`, one whose Secret is missing and a wrong token all answer 401 with one
//! body, none sooner than `UNVERIFIED_FLOOR` after its body arrived (the API reads that tell
//! them apart take less), and a client that failed `FAILURE_BURST` times is answered 429 before
//! any API read until it earns a try back (one a second). Behind an Ingress the client is the one
//! `X-Forwarded-For` names, from proxies the operator trusts (`--webhook-trusted-proxies`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use kube::api::{Api, Patch, PatchParams};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::api::EnvironmentSync;
use super::plan::RECONCILE_REQUESTED_AT;
use super::reconcile::credentials::{secret, value};
use super::telemetry::Metrics;
use crate::http::{BodyError, Limits, read_body};
use crate::proxy::{Cidr, client_address};
use weaver_cluster::api_message;
use weaver_secrets::hmac::HmacSha256;

/// The field manager of the annotation the receiver sets, as `kubectl annotate` is one: the
/// object's managedFields show that the webhook asked for the reconcile.
pub const FIELD_MANAGER: &str = "weaver-webhook";

/// The largest body read: a push event is tens of kilobytes.
pub const MAX_BODY: usize = 1 << 20;

/// The least time an unverified request takes from its body's arrival to its answer: more than
/// the reads of an EnvironmentSync and its Secret take, so that answers do not tell by their
/// time which of them exist.
pub const UNVERIFIED_FLOOR: Duration = Duration::from_millis(250);

/// How many unverified requests a client may make before it is answered 429; it earns one back
/// each `FAILURE_REFILL`. A request that verifies gives back the try it took, so a git host with
/// the right token never runs out (governor, which the UI's sign-in limit uses, gives nothing
/// back: hence a bucket of our own).
pub const FAILURE_BURST: u32 = 20;
pub const FAILURE_REFILL: Duration = Duration::from_secs(1);

/// How a request was answered, as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A reconcile was requested.
    Accepted,
    /// GitHub's `ping` on creating the webhook: verified, nothing requested.
    Ping,
    /// Not proven with the token, or no such EnvironmentSync, or one without `spec.webhook` or
    /// its Secret: the same answer, so names cannot be probed.
    Unauthorized,
    /// Not `/hook/<namespace>/<name>`.
    NotFound,
    MethodNotAllowed,
    TooLarge,
    /// The body did not arrive within the server's body timeout.
    TimedOut,
    /// The client failed too often lately.
    Throttled,
    /// Too many bodies are being read at once.
    Busy,
    /// The receiver could not do its part; the log says why.
    Failed,
}

impl Answer {
    fn outcome(self) -> &'static str {
        match self {
            Answer::Accepted => "accepted",
            Answer::Ping => "ping",
            Answer::Unauthorized => "unauthorized",
            Answer::NotFound => "not_found",
            Answer::MethodNotAllowed => "method_not_allowed",
            Answer::TooLarge => "too_large",
            Answer::TimedOut => "timed_out",
            Answer::Throttled => "throttled",
            Answer::Busy => "busy",
            Answer::Failed => "failed",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Answer::Accepted => StatusCode::ACCEPTED,
            Answer::Ping => StatusCode::OK,
            Answer::Unauthorized => StatusCode::UNAUTHORIZED,
            Answer::NotFound => StatusCode::NOT_FOUND,
            Answer::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Answer::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Answer::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Answer::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Answer::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Answer::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(self) -> &'static str {
        match self {
            Answer::Accepted => "accepted: a reconcile is requested\n",
            Answer::Ping => "pong: pushes will request a reconcile\n",
            Answer::Unauthorized => {
                "not verified: X-Hub-Signature-256 (GitHub) or X-Gitlab-Token (GitLab) must match the token \
                 of the spec.webhook.secretRef of an EnvironmentSync with a webhook\n"
            }
            Answer::NotFound => "not a webhook: POST /hook/<namespace>/<name>\n",
            Answer::MethodNotAllowed => "only POST is served\n",
            Answer::TooLarge => "the body is over 1 MiB\n",
            Answer::TimedOut => "the body did not arrive in time\n",
            Answer::Throttled => "too many unverified requests from this address: try again later\n",
            Answer::Busy => "the receiver is reading as many bodies as it will: try again later\n",
            Answer::Failed => "the receiver failed; the operator's log says why\n",
        }
    }
}

/// Serves within `limits` until `shutdown` completes, reading and annotating EnvironmentSyncs
/// with `client`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    client: kube::Client,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let limits = settings.limits.clone();
    let receiver = Arc::new(Receiver {
        client,
        metrics,
        failures: Failures::default(),
        bodies: Arc::new(Semaphore::new(settings.bodies_in_flight.div_ceil(1024))),
        settings,
    });
    crate::http::serve(listener, None, limits, move |request| answer(receiver.clone(), request), shutdown).await
}

/// How the receiver serves.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    /// The proxies in front (an Ingress controller's pods) whose `X-Forwarded-For` names the
    /// client the throttle counts; from any other peer, the peer is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// The bytes of bodies read at once before any is verified (each counted as its declared
    /// length, or `MAX_BODY`): past it a request is answered 503.
    pub bodies_in_flight: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        // 64 MiB whatever the number of connections (1024 bodies of 1 MiB would be a GiB).
        Settings { limits: Limits::default(), trusted_proxies: Vec::new(), bodies_in_flight: 64 << 20 }
    }
}

struct Receiver {
    client: kube::Client,
    metrics: Metrics,
    failures: Failures,
    bodies: Arc<Semaphore>,
    settings: Settings,
}

async fn answer(receiver: Arc<Receiver>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let (answer, why) = receive(&receiver, request).await;
    let outcome = answer.outcome();
    receiver.metrics.webhook_request(outcome);
    match why {
        Some(why) => tracing::warn!(%path, outcome, "webhook request: {why}"),
        None => tracing::info!(%path, outcome, "webhook request"),
    }
    let mut response = Response::builder().status(answer.status()).header(CONTENT_TYPE, "text/plain; charset=utf-8");
    if answer == Answer::MethodNotAllowed {
        response = response.header(ALLOW, "POST");
    }
    if matches!(answer, Answer::Throttled | Answer::Busy) {
        response = response.header(RETRY_AFTER, FAILURE_REFILL.as_secs().max(1));
    }
    // A status and static headers always make a valid response.
    Ok(response.body(Full::new(answer.body().into())).expect("a valid response"))
}

/// The answer to `request`, and for a failure what the operator should know.
async fn receive(receiver: &Receiver, request: Request<Incoming>) -> (Answer, Option<String>) {
    let Some((namespace, name)) = target(request.uri().path()) else { return (Answer::NotFound, None) };
    let (namespace, name) = (namespace.to_string(), name.to_string());
    if request.method() != Method::POST {
        return (Answer::MethodNotAllowed, None);
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|n| n.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return (Answer::TooLarge, None);
    }
    let peer = request.extensions().get::<SocketAddr>().map(SocketAddr::ip);
    let client =
        peer.map(|peer| throttled_as(client_address(peer, request.headers(), &receiver.settings.trusted_proxies)));
    // A try is spent before any API read, and given back once the request verifies: requests
    // at once from one client cannot all pass a check that counts only the ones finished.
    if client.is_some_and(|client| !receiver.failures.take(client)) {
        return (Answer::Throttled, None);
    }
    let kib = declared.map_or(MAX_BODY, |n| n as usize).div_ceil(1024).max(1);
    let Ok(_reading) = receiver.bodies.clone().try_acquire_many_owned(kib as u32) else {
        // Turned away unread: nothing was tried, so nothing is spent.
        if let Some(client) = client {
            receiver.failures.give_back(client);
        }
        let busy = format!("{} KiB of bodies are being read already", receiver.settings.bodies_in_flight / 1024);
        return (Answer::Busy, Some(busy));
    };
    // The body first, whatever the target: its time is the client's, the same for every name.
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_BODY, &receiver.settings.limits).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => return (Answer::TooLarge, None),
        Err(BodyError::TimedOut(_)) => return (Answer::TimedOut, None),
        Err(err) => return (Answer::Failed, Some(err.to_string())),
    };
    let arrived = Instant::now();
    let (answer, why) = verify_and_request(&receiver.client, &namespace, &name, &parts.headers, &body).await;
    match answer {
        Answer::Accepted | Answer::Ping => {
            if let Some(client) = client {
                receiver.failures.give_back(client);
            }
        }
        // An API read that failed may tell which namespaces the controller can read: no sooner.
        _ => tokio::time::sleep_until((arrived + UNVERIFIED_FLOOR).into()).await,
    }
    (answer, why)
}

/// The address a client is throttled as: an IPv6 client by its /64, the block one host is
/// usually given (a fresh address per request would be a fresh bucket).
fn throttled_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Whether `headers` and `body` prove a push to EnvironmentSync `namespace`/`name`, and if so
/// the reconcile requested.
async fn verify_and_request(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Answer, Option<String>) {
    let syncs: Api<EnvironmentSync> = Api::namespaced(client.clone(), namespace);
    let sync = match syncs.get_opt(name).await {
        Ok(Some(sync)) => sync,
        Ok(None) => return (Answer::Unauthorized, Some(format!("no EnvironmentSync {namespace}/{name}"))),
        Err(err) => {
            return (
                Answer::Failed,
                Some(format!("cannot read EnvironmentSync {namespace}/{name}: {}", api_message(&err))),
            );
        }
    };
    let Some(webhook) = &sync.spec.webhook else {
        return (Answer::Unauthorized, Some(format!("EnvironmentSync {namespace}/{name} has no spec.webhook")));
    };
    let secret_name = &webhook.secret_ref.name;
    // Read with the controller's own client, not the tenant's account as the reconcile reads
    // its Secrets: the request is anonymous until this token verifies it, and a token for the
    // tenant's account would be asked for on behalf of anyone who can reach the receiver. The
    // Secret is the one the EnvironmentSync names in its own namespace.
    // Without a usable token the answer is the one for a wrong token, so that a caller cannot
    // tell which names have one; the log says what to mend.
    let token = match secret(client, namespace, secret_name, "spec.webhook.secretRef").await {
        // Without trailing whitespace: `kubectl create secret --from-file` keeps a file's final
        // newline, which no git host sends with the token.
        Ok(secret) => {
            value(&secret, "token").map(|token| token.trim_end().to_string()).filter(|token| !token.is_empty())
        }
        Err((_, message)) => return (Answer::Unauthorized, Some(message)),
    };
    let Some(token) = token else {
        let why = format!(
            "Secret {namespace}/{secret_name} (spec.webhook.secretRef) has no `token`; add the webhook's secret under `token`"
        );
        return (Answer::Unauthorized, Some(why));
    };
    if !verified(headers, body, &token) {
        return (Answer::Unauthorized, None);
    }
    if headers.get("x-github-event").is_some_and(|event| event == "ping") {
        return (Answer::Ping, None);
    }
    let now = jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: now}}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
    match syncs.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => (Answer::Accepted, None),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            (Answer::Unauthorized, Some(format!("EnvironmentSync {namespace}/{name} was deleted")))
        }
        Err(err) => (
            Answer::Failed,
            Some(format!(
                "cannot annotate EnvironmentSync {namespace}/{name}: {}; the controller needs patch on environmentsyncs",
                api_message(&err)
            )),
        ),
    }
}

/// Unverified requests by client address, as token buckets of `FAILURE_BURST` refilled one
/// each `FAILURE_REFILL`.
#[derive(Default)]
struct Failures {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Failures {
    /// The most addresses remembered: past it the full buckets are forgotten, and if none is,
    /// all (a flood from many addresses must not grow the map without end).
    const MAX_CLIENTS: usize = 10_000;

    fn tries_left(bucket: &(f64, Instant), now: Instant) -> f64 {
        let earned = now.saturating_duration_since(bucket.1).as_secs_f64() / FAILURE_REFILL.as_secs_f64();
        (bucket.0 + earned).min(f64::from(FAILURE_BURST))
    }

    /// Spends one of `client`'s tries; false when none is left.
    fn take(&self, client: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= Self::MAX_CLIENTS && !buckets.contains_key(&client) {
            buckets.retain(|_, bucket| Self::tries_left(bucket, now) < f64::from(FAILURE_BURST));
            if buckets.len() >= Self::MAX_CLIENTS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(client).or_insert((f64::from(FAILURE_BURST), now));
        let left = Self::tries_left(bucket, now);
        if left < 1.0 {
            return false;
        }
        *bucket = (left - 1.0, now);
        true
    }

    /// Gives back the try a request that verified spent.
    fn give_back(&self, client: IpAddr) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = buckets.get_mut(&client) {
            *bucket = ((Self::tries_left(bucket, now) + 1.0).min(f64::from(FAILURE_BURST)), now);
        }
    }
}

/// The namespace and name of `/hook/<namespace>/<name>`; anything else, or what no object can
/// be named, is none.
fn target(path: &str) -> Option<(&str, &str)> {
    let (namespace, name) = path.strip_prefix("/hook/")?.split_once('/')?;
    let label = |s: &str| {
        (1..=63).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let subdomain = |s: &str| (1..=253).contains(&s.len()) && s.split('.').all(label);
    (label(namespace) && subdomain(name)).then_some((namespace, name))
}

/// Whether `headers` prove the sender knows `token`: GitHub's HMAC-SHA256 of `body` keyed with
/// it, or GitLab's copy of it. Only the first present is looked at.
fn verified(headers: &HeaderMap, body: &[u8], token: &str) -> bool {
    if let Some(signature) = headers.get("x-hub-signature-256") {
        let given =
            signature.to_str().ok().and_then(|s| s.strip_prefix("sha256=")).and_then(|hex| hex::decode(hex).ok());
        return given.is_some_and(|given| given.ct_eq(&HmacSha256::new(token.as_bytes()).mac(body)).into());
    }
    if let Some(given) = headers.get("x-gitlab-token") {
        // Compared as digests, so the time taken tells nothing of the token's length either.
        return Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(token.as_bytes())).into();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (hyper::header::HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    /// GitHub's own example ("Validating webhook deliveries"), which
    /// `printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"` agrees with.
    #[test]
    fn a_github_signature_verifies_as_github_documents_it() {
        let (token, body) = ("It's a Secret to Everybody", b"Hello, World!");
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verified(&headers(&[("x-hub-signature-256", signature)]), body, token));
        assert!(!verified(&headers(&[("x-hub-signature-256", signature)]), b"Hello, World?", token));
        assert!(!verified(&headers(&[("x-hub-signature-256", signature)]), body, "another token"));
        let unprefixed = signature.trim_start_matches("sha256=");
        assert!(!verified(&headers(&[("x-hub-signature-256", unprefixed)]), body, token));
        assert!(!verified(&headers(&[("x-hub-signature-256", "sha256=zz")]), body, token));
        // A wrong signature is not rescued by a right GitLab token.
        let both = headers(&[("x-hub-signature-256", "sha256=00"), ("x-gitlab-token", token)]);
        assert!(!verified(&both, body, token));
    }

    #[test]
    fn a_gitlab_token_must_equal_the_secrets() {
        assert!(verified(&headers(&[("x-gitlab-token", "s3cret")]), b"{}", "s3cret"));
        assert!(!verified(&headers(&[("x-gitlab-token", "s3cre")]), b"{}", "s3cret"));
        assert!(!verified(&headers(&[]), b"{}", "s3cret"));
    }

    #[test]
    fn a_client_failing_past_the_burst_is_throttled_until_it_earns_a_try_back() {
        let failures = Failures::default();
        let (client, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..FAILURE_BURST {
            assert!(failures.take(client));
        }
        assert!(!failures.take(client), "the burst is spent");
        assert!(failures.take(other), "each address has its own");
        // A request that verified gives its try back.
        failures.give_back(client);
        assert!(failures.take(client));
        assert!(!failures.take(client));
        // Three refills later, three tries are back.
        let earlier = Instant::now() - FAILURE_REFILL * 3;
        failures.buckets.lock().unwrap().insert(client, (0.0, earlier));
        let left = Failures::tries_left(&failures.buckets.lock().unwrap()[&client], Instant::now());
        assert!((3.0..3.5).contains(&left), "{left}");
        assert!(failures.take(client));
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttled_as(a), throttled_as(b));
        assert_ne!(throttled_as(a), throttled_as(elsewhere));
        assert_eq!(throttled_as("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn only_hook_paths_naming_a_possible_object_are_targets() {
        assert_eq!(target("/hook/apps/shop"), Some(("apps", "shop")));
        assert_eq!(target("/hook/apps/shop.v2"), Some(("apps", "shop.v2")));
        for path in ["/hook/apps", "/hook/apps/", "/hook/apps/shop/x", "/hook/Apps/shop", "/hooks/apps/shop", "/"] {
            assert_eq!(target(path), None, "{path}");
        }
    }
}
