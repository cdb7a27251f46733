//! Client-side rate limiting, as client-go's `rest.Config` has with QPS and Burst: kube's client
//! has none, and an operator reconciling thousands of objects after a restart must not flood the
//! API server (whose priority and fairness would otherwise queue the flood or answer 429).
//! [`SharedServers`]: the budget of requests in flight the environments of a fleet share per
//! server, so that 20 environments in one cluster do not send 20 times one apply's requests,
//! and one client per context there, so that they reuse each other's connections.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tower::limit::GlobalConcurrencyLimitLayer;

use super::Discovered;

/// Threads of the runtime that drives the shared clients' connections: TLS and HTTP framing,
/// while each environment parses what it reads on its own thread.
const IO_THREADS: usize = 2;

/// A budget of requests: `qps` a second on average, up to `burst` at once. Every client built
/// with one budget shares it.
#[derive(Clone)]
pub struct RequestRate {
    limiter: Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RequestRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRate").finish_non_exhaustive()
    }
}

impl RequestRate {
    /// None unless `qps` is a positive number of requests a second and `burst` at least 1.
    pub fn new(qps: f64, burst: u32) -> Option<RequestRate> {
        let period = Duration::try_from_secs_f64(1.0 / qps).ok()?;
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?);
        let clock = DefaultClock::default();
        Some(RequestRate { limiter: Arc::new(RateLimiter::direct_with_clock(quota, clock.clone())), clock })
    }

    /// A client whose every request (a watch counts once, when it starts) waits for the budget.
    pub fn client(&self, config: kube::Config) -> Result<kube::Client, kube::Error> {
        Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(self).build())
    }
}

impl<S> tower::Layer<S> for RequestRate {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited { inner, rate: self.clone(), wait: None, permitted: false }
    }
}

/// client-go's budget that Flux's controllers keep (kube-api-qps, kube-api-burst), for a
/// server without API Priority and Fairness.
const DEFAULT_QPS: f64 = 50.0;
const DEFAULT_BURST: u32 = 300;

/// The operator's budget of requests: as `qps` and `burst` say when either is given (the other
/// at its default); otherwise none when the server runs API Priority and Fairness, which
/// queues and sheds load itself, fairly between clients (SIG API Machinery's advice, which
/// controller-runtime (#3119) and Flux (fluxcd/pkg#269) follow); otherwise 50 a second, 300 at
/// once.
/// A push that changes 250 releases writes 750 times: within 50 a second it waits 9 s for the
/// budget, without it under 2 s. Whether the server runs it is read off its answer to
/// `/livez/ping` (the `X-Kubernetes-PF-*` headers every classified request gets).
pub async fn operator_budget(
    config: &kube::Config,
    qps: Option<f64>,
    burst: Option<u32>,
) -> (Option<RequestRate>, Budgeted) {
    let (qps, burst, budgeted) = match (qps, burst) {
        (None, None) => match priority_and_fairness(config).await {
            Ok(true) => return (None, Budgeted::ByTheServer),
            Ok(false) => (DEFAULT_QPS, DEFAULT_BURST, Budgeted::ByDefault { unknown: None }),
            // The server did not answer yet: the careful choice, for as long as the operator runs.
            Err(err) => (DEFAULT_QPS, DEFAULT_BURST, Budgeted::ByDefault { unknown: Some(err.to_string()) }),
        },
        (qps, burst) => (qps.unwrap_or(DEFAULT_QPS), burst.unwrap_or(DEFAULT_BURST), Budgeted::AsGiven),
    };
    (RequestRate::new(qps, burst), budgeted)
}

/// Why the operator's requests have the budget they have, for its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Budgeted {
    /// The server runs API Priority and Fairness and no budget was asked for: none.
    ByTheServer,
    /// The server does not, or `unknown` says why that could not be told: client-go's.
    ByDefault { unknown: Option<String> },
    /// `--kube-api-qps` or `--kube-api-burst`.
    AsGiven,
}

/// Whether the server classifies requests by API Priority and Fairness.
async fn priority_and_fairness(config: &kube::Config) -> Result<bool, kube::Error> {
    let client = kube::Client::try_from(config.clone())?;
    let request = hyper::Request::get("/livez/ping").body(Vec::new()).map_err(kube::Error::HttpError)?;
    // Any answer tells, a refusal too: the server classifies before it authorizes.
    let answer = client.send(request.map(kube::client::Body::from)).await?;
    Ok(answer.headers().contains_key("x-kubernetes-pf-flowschema-uid"))
}

/// A service that is ready only once the budget allows one more request. (kube's client puts a
/// buffer in front of it, so callers queue there rather than spin.)
pub struct RateLimited<S> {
    inner: S,
    rate: RequestRate,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A request was allowed and not yet sent.
    permitted: bool,
}

impl<S: tower::Service<R>, R> tower::Service<R> for RateLimited<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.permitted {
            if let Some(wait) = &mut self.wait {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            match self.rate.limiter.check() {
                Ok(()) => self.permitted = true,
                Err(not_until) => {
                    let delay = not_until.wait_time_from(self.rate.clock.now());
                    self.wait = Some(Box::pin(tokio::time::sleep(delay)));
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.permitted = false;
        self.inner.call(request)
    }
}

/// What the clusters of one run that reach the same API server (the same server URL, whatever
/// the context or user) share: `in_flight` requests at once between them, discovery, read
/// once, and a client (with its pool of connections) per context. Clones share it all.
#[derive(Clone)]
pub struct SharedServers {
    in_flight: usize,
    servers: Arc<Mutex<HashMap<String, Arc<Server>>>>,
    /// Each server's discovery, read once: by the run's clones, not by [`SharedServers::again`]'s.
    discovered: Arc<Mutex<HashMap<String, Discovery>>>,
    /// Where the shared clients' connections live (see [`OnRuntime`]).
    io: Arc<IoRuntime>,
    /// Where LISTs of weaver's objects are answered from watches, when they are (see
    /// [`SharedServers::watching`]).
    live: Option<super::LiveCache>,
}

/// A runtime of its own for the connections of shared clients. A fleet runs each environment on
/// a runtime of its thread, which ends with the environment: connections opened there would
/// die with it, and the others sharing them would fail mid-request.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the runtime is only taken when dropped").handle()
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // The last clone may go in an environment's async code, where a blocking shutdown panics.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs each request of the service it wraps on `runtime`: the request's connection (and the
/// task that drives it) is opened there, whichever runtime the caller runs on.
#[derive(Clone)]
pub(super) struct OnRuntime {
    pub(super) runtime: tokio::runtime::Handle,
}

impl<S> tower::Layer<S> for OnRuntime {
    type Service = OnRuntimeService<S>;

    fn layer(&self, inner: S) -> OnRuntimeService<S> {
        OnRuntimeService { inner, runtime: self.runtime.clone() }
    }
}

pub(super) struct OnRuntimeService<S> {
    inner: S,
    runtime: tokio::runtime::Handle,
}

impl<S, R> tower::Service<R> for OnRuntimeService<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, tower::BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tower::BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let running = self.runtime.spawn(self.inner.call(request));
        Box::pin(async move {
            match running.await {
                Ok(answer) => answer.map_err(Into::into),
                Err(stopped) => Err(stopped.into()),
            }
        })
    }
}

/// A server's discovery, read by the first to ask.
pub(super) type Discovery = Arc<tokio::sync::OnceCell<Arc<Discovered>>>;

/// One server's share.
pub(super) struct Server {
    pub in_flight: GlobalConcurrencyLimitLayer,
    /// By context and request timeout (all a run's settings that shape a client): environments
    /// that connect alike send their requests over the same connections, where each client
    /// would open (and the server accept, with a TLS handshake each) connections of its own.
    clients: Mutex<HashMap<(String, Duration), kube::Client>>,
    /// The clients watches run over, by context.
    watch_clients: Mutex<HashMap<String, kube::Client>>,
    io: Arc<IoRuntime>,
}

impl Server {
    /// The client of `context` with `timeout`: the first to ask builds it from `config`, within
    /// this server's budget of requests in flight, its connections on the shared runtime.
    pub fn client(&self, context: &str, timeout: Duration, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (context.to_string(), timeout);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        // kube's client starts a task in front of the service, which must outlive this caller's
        // runtime as the connections do.
        let _on_shared = self.io.handle().enter();
        let client = kube::client::ClientBuilder::try_from(config)?
            .with_layer(&self.in_flight)
            .with_layer(&OnRuntime { runtime: self.io.handle().clone() })
            .build();
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The client of `context` that watches run over: its connections on the shared runtime,
    /// as [`Server::client`]'s, but outside the budget of requests in flight (a watch would hold
    /// its share for as long as it runs) and reading as long as a watch may idle.
    pub fn watch_client(&self, context: &str, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let mut clients = self.watch_clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(context) {
            return Ok(client.clone());
        }
        let _on_shared = self.io.handle().enter();
        let client = kube::client::ClientBuilder::try_from(super::config::for_watching(config))?
            .with_layer(&OnRuntime { runtime: self.io.handle().clone() })
            .build();
        clients.insert(context.to_string(), client.clone());
        Ok(client)
    }
}

impl SharedServers {
    /// Each server takes `in_flight` requests at once (at least 1) from all the clusters.
    ///
    /// # Errors
    /// The threads that drive the shared connections cannot be started (the system refuses
    /// threads).
    pub fn new(in_flight: usize) -> weaver_core::error::Result<SharedServers> {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("weaver-io")
            .enable_all()
            .build()
            .map_err(|err| {
                weaver_core::error::Error::new(format!("cannot start the threads of the cluster connections: {err}"))
            })?;
        let io = Arc::new(IoRuntime(Some(io)));
        Ok(SharedServers {
            in_flight: in_flight.max(1),
            servers: Arc::default(),
            discovered: Arc::default(),
            io,
            live: None,
        })
    }

    /// These servers, with LISTs answered from watches (see `live`; any LIST, from a watch of
    /// weaver's objects or of the LIST's own selector), started by the first such LIST and kept
    /// while read, on this share's runtime: for a reader that reads the same objects again and
    /// again (`weaver ui`'s page views), each as the context it connects as.
    pub fn watching(self) -> SharedServers {
        let live = super::LiveCache::running_on(Some(self.io.handle().clone()), super::live::Scope::All);
        SharedServers { live: Some(live), ..self }
    }

    /// The watches LISTs are answered from, if any.
    pub(super) fn live(&self) -> Option<&super::LiveCache> {
        self.live.as_ref()
    }

    /// What another run shares with this one: the requests in flight, the clients and their
    /// connections (no TLS handshake again), not discovery, which it reads again (`weaver ui`'s
    /// page views: each sees the kinds the cluster serves when it is read).
    pub fn again(&self) -> SharedServers {
        SharedServers { discovered: Arc::default(), ..self.clone() }
    }

    /// The discovery of the server at `url`, for this run.
    pub(super) fn discovery(&self, url: &str) -> Discovery {
        let mut discovered = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(discovered.entry(url.to_string()).or_default())
    }

    pub(super) fn server(&self, url: &str) -> Arc<Server> {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        let server = servers.entry(url.to_string()).or_insert_with(|| {
            Arc::new(Server {
                in_flight: GlobalConcurrencyLimitLayer::new(self.in_flight),
                clients: Mutex::default(),
                watch_clients: Mutex::default(),
                io: Arc::clone(&self.io),
            })
        });
        Arc::clone(server)
    }
}

impl std::fmt::Debug for SharedServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("SharedServers")
            .field("in_flight", &self.in_flight)
            .field("servers", &servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_budget_needs_a_positive_rate_and_burst() {
        assert!(RequestRate::new(20.0, 30).is_some());
        assert!(RequestRate::new(0.5, 1).is_some());
        for (qps, burst) in [(0.0, 30), (-1.0, 30), (f64::NAN, 30), (f64::INFINITY, 30), (20.0, 0)] {
            assert!(RequestRate::new(qps, burst).is_none(), "qps {qps} burst {burst}");
        }
    }

    /// Requests past the burst wait for the rate: 5 at once, then 5 more at 50 a second take
    /// about 100 ms (counted on the limiter, not timed against a deadline).
    #[tokio::test]
    async fn requests_past_the_burst_wait_for_the_rate() {
        let rate = RequestRate::new(50.0, 5).unwrap();
        let mut service = tower::Layer::layer(&rate, tower::service_fn(|n: u32| async move { Ok::<_, ()>(n) }));
        let started = Instant::now();
        let mut sent = Vec::new();
        for n in 0..10 {
            std::future::poll_fn(|cx| tower::Service::poll_ready(&mut service, cx)).await.unwrap();
            sent.push((tower::Service::call(&mut service, n).await.unwrap(), started.elapsed()));
        }
        assert_eq!(sent.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        // The first five went without waiting for the limiter; the sixth had to.
        assert!(rate.limiter.check().is_err(), "the budget is spent");
        assert!(sent[9].1 >= Duration::from_millis(80), "10 requests at 50/s with a burst of 5 took {:?}", sent[9].1);
    }
}
