//! Client-side rate limiting, as client-go's `rest.Config` has with QPS and Burst: kube's client
//! has none, and an operator reconciling thousands of objects after a restart must not flood the
//! API server (whose priority and fairness would otherwise queue the flood or answer 429).

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

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
        // Five went at once, the other five at the rate: at least 80 ms (a lower bound holds
        // however loaded the machine; whether the budget is spent afterwards does not, since a
        // pause after the last refills it).
        assert!(sent[9].1 >= Duration::from_millis(80), "10 requests at 50/s with a burst of 5 took {:?}", sent[9].1);
    }
}
