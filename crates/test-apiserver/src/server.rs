//! The HTTP layer: hyper 1 over plain TCP, authentication and authorization,
//! the request log, fault injection and streaming watches.

use crate::cluster::auth::User;
use crate::cluster::{ApiRequest, ApiResponse, Cluster, WatchSpec};
use crate::error::ApiError;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// One request as the server saw it, in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (percent-encoded, without `?`).
    pub query: String,
    pub field_manager: Option<String>,
    /// `dryRun=All` in the query or a DeleteOptions body.
    pub dry_run: bool,
    pub content_type: Option<String>,
    /// The authenticated user (`fake-user`, `other-user`, `system:serviceaccount:NS:NAME`
    /// for a TokenRequest token, or `system:anonymous`; empty when the token was refused).
    pub user: String,
    /// The HTTP status the server answered with.
    pub status: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Answer with this status code and the matching `Status` body.
    Status(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
}

/// A fault for the next `count` requests whose method matches (`*` for any)
/// and whose path starts with `path_prefix` (query string excluded).
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub count: usize,
    pub action: FaultAction,
}

impl Fault {
    pub fn status(method: &str, path_prefix: &str, code: u16) -> Fault {
        Fault { method: method.into(), path_prefix: path_prefix.into(), count: 1, action: FaultAction::Status(code) }
    }

    pub fn delay(method: &str, path_prefix: &str, delay: Duration) -> Fault {
        Fault { method: method.into(), path_prefix: path_prefix.into(), count: 1, action: FaultAction::Delay(delay) }
    }

    /// Applies the fault to this many matching requests (default 1).
    pub fn times(mut self, count: usize) -> Fault {
        self.count = count;
        self
    }
}

pub(crate) struct Shared {
    pub cluster: Mutex<Cluster>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Vec<Fault>>,
    /// Wakes watches after writes.
    pub changed: Notify,
    /// The static users, by bearer token.
    pub tokens: HashMap<String, User>,
    /// Requests being handled now, and the most there were at once.
    pub in_flight: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
    /// Connections accepted (each a TLS handshake on a real server).
    pub connections: AtomicUsize,
    /// Whether the server is stopped ([`crate::TestApiServer::stop`]).
    pub down: tokio::sync::watch::Sender<bool>,
}

/// Counts a request in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn start(shared: &'a Shared) -> InFlight<'a> {
        let now = shared.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, AtomicOrdering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

/// Locks ignoring poisoning: a panicking test must not take the server down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Body = BoxBody<Bytes, Infallible>;

/// A response body fed by a channel (watch streams).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn full(bytes: Vec<u8>) -> Body {
    http_body_util::Full::new(Bytes::from(bytes)).boxed()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves `listener` until `shutdown`. On a `trusted` listener a request without credentials is
/// the admin's (`fake-user`), as on kube-apiserver's insecure port (removed in 1.20): client-go
/// (kubectl, helm) sends no credentials to a plain-HTTP server, and this fake has no TLS.
///
/// While [`Shared::down`] says so, it serves nothing, as a killed kube-apiserver: the listening
/// socket is closed (connections are refused) and every open connection dropped, requests in
/// flight and watches included; then it listens again on the same address.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
    trusted: bool,
) {
    let address = listener.local_addr().expect("local address");
    let mut listener = Some(listener);
    let mut connections = tokio::task::JoinSet::new();
    let mut down = shared.down.subscribe();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Ok(()) = down.changed() => {
                if *down.borrow_and_update() {
                    listener = None;
                    connections.abort_all();
                } else if listener.is_none() {
                    listener = Some(rebind(address).await);
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = async { listener.as_ref().expect("listening").accept().await }, if listener.is_some() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.connections.fetch_add(1, AtomicOrdering::SeqCst);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req, trusted));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

/// Listens on `address` again. The port was ours a moment ago; the connections just dropped
/// linger in TIME_WAIT, which the listener's SO_REUSEADDR (tokio sets it) lets it bind past.
async fn rebind(address: std::net::SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(address).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot listen on {address} again")
}

/// The headers of API Priority and Fairness: the UIDs of the FlowSchema and PriorityLevel a
/// request was classified in (the fake has one of each).
const PRIORITY_AND_FAIRNESS: [(&str, &str); 2] = [
    ("X-Kubernetes-PF-FlowSchema-UID", "00000000-0000-0000-0000-00000000f10e"),
    ("X-Kubernetes-PF-PriorityLevel-UID", "00000000-0000-0000-0000-00000000f1e1"),
];

fn respond(r: ApiResponse) -> Response<Body> {
    let mut builder = Response::builder()
        .status(r.status)
        .header("Content-Type", &r.content_type)
        .header("Cache-Control", "no-cache, private");
    // As a server with API Priority and Fairness (on by default since 1.20) classifies every
    // request: clients such as the operator read these to leave rate limiting to the server.
    for (name, uid) in PRIORITY_AND_FAIRNESS {
        builder = builder.header(name, uid);
    }
    for w in &r.warnings {
        builder = builder.header("Warning", format!("299 - {w:?}"));
    }
    if let Some(s) = r.retry_after() {
        builder = builder.header("Retry-After", s.to_string());
    }
    builder.body(full(r.body)).expect("valid response")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, trusted: bool) -> Result<Response<Body>, Infallible> {
    let _in_flight = InFlight::start(&shared);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let raw_query = parts.uri.query().unwrap_or_default().to_string();
    let query: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect();
    let user = match header("authorization").as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
        Some(token) => shared.tokens.get(token).cloned().or_else(|| lock(&shared.cluster).authenticate(token)),
        None if trusted => shared.tokens.get(crate::TOKEN).cloned(),
        None => Some(User::anonymous()),
    };
    let impersonating = header("impersonate-user");
    let user = match (user, impersonating) {
        (Some(user), Some(name)) => {
            let groups: Vec<String> = parts
                .headers
                .get_all("impersonate-group")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(String::from)
                .collect();
            match lock(&shared.cluster).impersonate(&user, &name, &groups) {
                Ok(as_user) => Some(as_user),
                Err(err) => return Ok(respond(ApiResponse::error(&err))),
            }
        }
        (user, _) => user,
    };
    let api = ApiRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        content_type: header("content-type"),
        accept: header("accept"),
        user_agent: header("user-agent").unwrap_or_default(),
        user: user.clone().unwrap_or_else(|| User::new("", &[])),
        body,
    };
    let delete_dry_run = api.method == "DELETE"
        && serde_json::from_slice::<serde_json::Value>(&api.body)
            .ok()
            .and_then(|v| v["dryRun"].as_array().map(|d| d.iter().any(|x| x == "All")))
            .unwrap_or(false);
    let mut record = RequestRecord {
        method: api.method.clone(),
        path: api.path.clone(),
        query: raw_query,
        field_manager: api.param("fieldManager").map(String::from),
        dry_run: api.param("dryRun") == Some("All") || delete_dry_run,
        content_type: api.content_type.clone(),
        user: api.user.name.clone(),
        status: 0,
    };
    let fault = {
        let mut faults = lock(&shared.faults);
        let hit = faults.iter_mut().find(|f| {
            f.count > 0 && (f.method == "*" || f.method == api.method) && api.path.starts_with(&f.path_prefix)
        });
        hit.map(|f| {
            f.count -= 1;
            f.action.clone()
        })
    };
    let response = match (fault, user) {
        (Some(FaultAction::Status(code)), _) => respond(ApiResponse::error(&ApiError::injected(code))),
        (_, None) => respond(ApiResponse::error(&ApiError::unauthorized())),
        (delay, Some(_)) => {
            if let Some(FaultAction::Delay(d)) = delay {
                tokio::time::sleep(d).await;
            }
            let watch = {
                let cluster = lock(&shared.cluster);
                cluster.authorize(&api).and_then(|()| cluster.watch_spec(&api))
            };
            match watch {
                Ok(Some(spec)) => watch_response(shared.clone(), spec),
                Err(e) => respond(ApiResponse::error(&e)),
                Ok(None) => {
                    let (result, changed) = {
                        let mut cluster = lock(&shared.cluster);
                        let before = cluster.resource_version();
                        let result = cluster.handle(&api);
                        (result, cluster.resource_version() != before)
                    };
                    if changed {
                        shared.changed.notify_waiters();
                    }
                    respond(result.unwrap_or_else(|e| ApiResponse::error(&e)))
                }
            }
        }
    };
    record.status = response.status().as_u16();
    lock(&shared.log).push(record);
    Ok(response)
}

/// A chunked stream of watch events (one JSON object per line) until the
/// client goes away or `timeoutSeconds` passes.
fn watch_response(shared: Arc<Shared>, spec: WatchSpec) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(spec.timeout_seconds);
        let mut rv = spec.since;
        loop {
            let notified = shared.changed.notified();
            let (events, end) = match lock(&shared.cluster).watch_events(&spec, rv) {
                Ok((events, newest)) => {
                    rv = newest;
                    (events, false)
                }
                Err(error) => (vec![error], true),
            };
            for e in events {
                let mut line = e.to_string().into_bytes();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            if end {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(BoxBody::new(ChannelBody(rx)))
        .expect("valid response")
}
