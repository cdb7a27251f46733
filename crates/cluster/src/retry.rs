//! Retrying requests that failed for a reason that may pass: the server was overloaded (429),
//! failed or was briefly unavailable (5xx), the connection dropped or was refused (the server
//! restarting, a load balancer moving it), or the answer took longer than the request timeout.
//! Anything else (validation, not found, conflicts, credentials, permissions) is returned at once.
//!
//! This is the only retry layer: `config` turns off kube's own (which retries 429/503/504 up to
//! 15 times, waiting up to minutes in all). Retries are bounded by time, not by a count: a
//! server that restarts takes every request in flight down at once, for as long as it takes to
//! come back, so each request keeps trying, with jittered exponential backoff, until the
//! [`RetryPolicy::budget`] has passed since it was first sent. The budget also bounds the
//! outage as the whole client sees it: once every request has failed for a whole budget (no
//! answer in between), a failing request is not retried any more, so a run against a dead
//! server ends about one budget after the server died, not one budget per request.

use std::future::Future;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::ClusterInfo;
use super::error::{chain_mentions, humanize, request_error, timed_out};
use weaver_core::error::Error;
use weaver_net::retry::RetryPolicy;

/// How long requests may keep failing before weaver gives up, by default (`--retry-budget`).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// The wait after `failed` attempts, the last of which failed with `err`: the policy's jittered
/// backoff, or what a 429 asks for (`retryAfterSeconds`) when longer, up to the cap.
fn delay(policy: &RetryPolicy, failed: u32, err: &kube::Error) -> Duration {
    let asked = match err {
        kube::Error::Api(status) if status.code == 429 => {
            status.details.as_ref().map_or(0, |details| details.retry_after_seconds)
        }
        _ => 0,
    };
    policy.delay(failed, Duration::from_secs(asked.into()))
}

/// The retry policy of one client, and what its requests learn together: since when the server
/// has failed every request, and how many requests had to be retried. Clones share both.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub policy: RetryPolicy,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Requests sent more than once.
    retried: AtomicU64,
    /// When a request last failed with no answer since; None once the server answers.
    failing_since: Mutex<Option<Instant>>,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy) -> Retrier {
        Retrier { policy, shared: Arc::default() }
    }

    /// How many requests were sent more than once so far.
    pub(crate) fn retried(&self) -> u64 {
        self.shared.retried.load(Ordering::Relaxed)
    }

    fn failing_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.shared.failing_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `attempt` until it succeeds, fails with an error that is not [`retryable`], or the
    /// budget is spent (see the module's header). Only for requests that are safe to repeat:
    /// reads, server-side apply, deletes (a repeat of one that landed gets 404), creates (409
    /// AlreadyExists) and writes guarded by a resourceVersion (409 Conflict).
    pub(crate) async fn run<T, F, Fut>(&self, attempt: F) -> Result<T, GaveUp>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.run_when(retryable, attempt).await
    }

    /// [`Retrier::run`], retrying only the errors `should_retry` accepts.
    pub(crate) async fn run_when<T, F, Fut>(
        &self,
        should_retry: fn(&kube::Error) -> bool,
        mut attempt: F,
    ) -> Result<T, GaveUp>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts == 2 {
                self.shared.retried.fetch_add(1, Ordering::Relaxed);
            }
            let error = match attempt().await {
                Ok(value) => {
                    *self.failing_since() = None;
                    return Ok(value);
                }
                Err(error) if should_retry(&error) => error,
                Err(error) => {
                    // An answer, if an unwelcome one: the server is up.
                    if matches!(error, kube::Error::Api(_)) {
                        *self.failing_since() = None;
                    }
                    return Err(GaveUp { error, attempts, elapsed: started.elapsed(), outage: None });
                }
            };
            let now = Instant::now();
            let failing_since = *self.failing_since().get_or_insert(now);
            let deadline = started.min(failing_since) + self.policy.budget;
            if now >= deadline {
                let outage = (failing_since < started).then(|| now - failing_since);
                return Err(GaveUp { error, attempts, elapsed: started.elapsed(), outage });
            }
            // The last attempt goes at the deadline rather than not at all.
            tokio::time::sleep(delay(&self.policy, attempts, &error).min(deadline - now)).await;
        }
    }
}

/// A request that failed for good, and how long it was tried.
#[derive(Debug)]
pub(crate) struct GaveUp {
    pub error: kube::Error,
    pub attempts: u32,
    /// Since the first attempt was sent.
    pub elapsed: Duration,
    /// How long every request had been failing, when that, not this request's own time, spent
    /// the budget.
    pub outage: Option<Duration>,
}

impl GaveUp {
    /// [`request_error`]'s message, saying how long it was tried when more than once, or why it
    /// was not retried.
    pub(crate) fn into_error(self, doing: &str, cluster: &ClusterInfo) -> Error {
        let tried = match (self.attempts, self.outage) {
            (_, Some(outage)) => format!(
                " (tried {} time(s); requests have failed for {}, longer than the retry budget of {})",
                self.attempts,
                humanize(outage),
                humanize(cluster.retry_budget)
            ),
            (1, None) => String::new(),
            (attempts, None) => format!(" (tried {attempts} times in {})", humanize(self.elapsed)),
        };
        let retried = !tried.is_empty() && retryable(&self.error);
        let error = request_error(self.error, doing, cluster);
        let help = match (retried, error.help) {
            (true, Some(help)) => Some(format!("{help}; --retry-budget gives the server longer to come back")),
            (true, None) => Some("--retry-budget gives the server longer to come back".to_string()),
            (false, help) => help,
        };
        Error { message: format!("{}{tried}", error.message), help, ..error }
    }
}

/// Whether a request that failed this way may succeed if sent again: a [`transient_answer`],
/// or a connection that was reset, refused or timed out. A refused connection counts because
/// weaver has reached the cluster before (discovery, see [`super::Cluster::connect`]): the
/// server is restarting or a load balancer is moving it.
pub(crate) fn retryable(err: &kube::Error) -> bool {
    transient_answer(err) || connection_lost(err)
}

/// The server answered, with an error that may pass: 429 Too Many Requests, or a 5xx other
/// than 501 Not Implemented and the 500 server-side apply answers for fields the schema does
/// not have (the same request always gets it).
pub(crate) fn transient_answer(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => match status.code {
            429 => true,
            501 => false,
            500 => !status.message.starts_with("failed to create typed patch object"),
            code => (500..600).contains(&code),
        },
        _ => false,
    }
}

fn connection_lost(err: &kube::Error) -> bool {
    let transport = matches!(err, kube::Error::HyperError(_) | kube::Error::Service(_));
    transport
        && (timed_out(err)
            || chain_mentions(err, |e| {
                e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    // An io::Error wrapping another (the TLS connector wraps a reset during the
                    // handshake in one of kind Other) hides it from `source()`: unwrap it here.
                    std::iter::successors(Some(io), |io| io.get_ref()?.downcast_ref::<std::io::Error>()).any(|io| {
                        matches!(
                            io.kind(),
                            ErrorKind::ConnectionReset
                                | ErrorKind::ConnectionAborted
                                | ErrorKind::ConnectionRefused
                                | ErrorKind::BrokenPipe
                                | ErrorKind::UnexpectedEof
                                | ErrorKind::NotConnected
                        )
                    })
                })
                // hyper's words for a connection the server closed mid-answer; no io::Error says so.
                || e.to_string().contains("connection closed before message completed")
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure(message, "").with_code(code).boxed())
    }

    fn io_error(kind: ErrorKind) -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::new(kind, "io")))
    }

    #[test]
    fn transient_failures_are_retried_and_the_rest_are_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(retryable(&answer(code, "busy")), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422, 501] {
            assert!(!retryable(&answer(code, "no")), "{code}");
        }
        let unknown_field = answer(
            500,
            "failed to create typed patch object (/v1, Kind=ConfigMap) x: .y: field not declared in schema",
        );
        assert!(!retryable(&unknown_field));
        for kind in
            [ErrorKind::ConnectionReset, ErrorKind::ConnectionRefused, ErrorKind::BrokenPipe, ErrorKind::TimedOut]
        {
            assert!(retryable(&io_error(kind)), "{kind:?}");
        }
        assert!(!retryable(&io_error(ErrorKind::InvalidData)), "TLS and other protocol errors do not pass");
        // As hyper-rustls reports a connection reset during the TLS handshake.
        let reset = std::io::Error::from(ErrorKind::ConnectionReset);
        let wrapped = kube::Error::Service(Box::new(std::io::Error::other(reset)));
        assert!(retryable(&wrapped));
        let serde = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(!retryable(&kube::Error::SerdeError(serde)));
    }

    #[test]
    fn only_server_answers_are_transient_answers() {
        assert!(transient_answer(&answer(503, "unavailable")));
        assert!(!transient_answer(&io_error(ErrorKind::ConnectionRefused)));
        assert!(!transient_answer(&io_error(ErrorKind::TimedOut)));
    }

    #[test]
    fn a_429_waits_as_long_as_the_server_asks_up_to_the_cap() {
        let policy = RetryPolicy::within(DEFAULT_RETRY_BUDGET);
        // As the apiserver's flow control sends it.
        let asking = |seconds: u32| {
            let status = serde_json::json!({"kind": "Status", "status": "Failure", "code": 429,
                "reason": "TooManyRequests", "details": {"retryAfterSeconds": seconds}});
            kube::Error::Api(serde_json::from_value(status).unwrap())
        };
        assert_eq!(delay(&policy, 1, &asking(1)), Duration::from_secs(1));
        assert_eq!(delay(&policy, 1, &asking(3600)), policy.cap);
        assert!(delay(&policy, 1, &asking(0)) <= policy.backoff(1), "no Retry-After: plain backoff");
    }

    /// A request that keeps failing, on tokio's paused clock: how many times it is sent and
    /// how long it took (virtual time).
    async fn failing_for_good(retrier: &Retrier, error: fn() -> kube::Error) -> (u32, Duration, GaveUp) {
        let started = Instant::now();
        let mut calls = 0;
        let result: Result<(), GaveUp> = retrier
            .run(|| {
                calls += 1;
                async move { Err(error()) }
            })
            .await;
        (calls, started.elapsed(), result.unwrap_err())
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_failing_request_is_retried_until_the_budget_is_spent_and_no_longer() {
        let retrier = Retrier::new(RetryPolicy::within(Duration::from_secs(60)));
        let (calls, took, gave_up) = failing_for_good(&retrier, || answer(503, "unavailable")).await;
        assert_eq!(took, Duration::from_secs(60), "the last attempt goes at the deadline");
        // 0.1–0.2, 0.2–0.4, … up to 5 s each: at least 60 / 5 attempts, at most a few more.
        assert!((12..=26).contains(&calls), "{calls} attempts");
        assert_eq!((gave_up.attempts, gave_up.elapsed, gave_up.outage), (calls, took, None));
        assert_eq!(retrier.retried(), 1, "one request retried");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn once_every_request_has_failed_for_a_budget_new_ones_are_not_retried() {
        let retrier = Retrier::new(RetryPolicy::within(Duration::from_secs(10)));
        let _ = failing_for_good(&retrier, || io_error(ErrorKind::ConnectionRefused)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        // The server still refuses: a run against a dead server ends, not one budget per request.
        let (calls, took, gave_up) = failing_for_good(&retrier, || io_error(ErrorKind::ConnectionRefused)).await;
        assert_eq!((calls, took), (1, Duration::ZERO));
        assert_eq!(gave_up.outage, Some(Duration::from_secs(15)));
        let info = ClusterInfo {
            context: "c".into(),
            server: "https://s".into(),
            request_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(10),
        };
        let error = gave_up.into_error("applying ConfigMap a/b", &info);
        assert!(
            error
                .message
                .ends_with("(tried 1 time(s); requests have failed for 15s, longer than the retry budget of 10s)"),
            "{}",
            error.message
        );
        assert!(error.help.unwrap().ends_with("--retry-budget gives the server longer to come back"));
        // An answer, even a 404, says the server is back: failing requests are retried again.
        let _ = retrier.run(|| async { Err::<(), _>(answer(404, "not found")) }).await;
        let (calls, _, _) = failing_for_good(&retrier, || answer(503, "unavailable")).await;
        assert!(calls > 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_blip_shorter_than_the_budget_is_ridden_out_by_every_request_in_flight() {
        let retrier = Retrier::new(RetryPolicy::within(Duration::from_secs(60)));
        let back_at = Instant::now() + Duration::from_secs(10);
        let request = || {
            retrier.run(|| async move {
                match Instant::now() >= back_at {
                    true => Ok(()),
                    false => Err(io_error(ErrorKind::ConnectionReset)),
                }
            })
        };
        let results = futures::future::join_all((0..32).map(|_| request())).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(retrier.retried(), 32);
        assert!(Instant::now() <= back_at + retrier.policy.cap, "picked up within one backoff of the server's return");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_permanent_error_is_returned_at_once() {
        let retrier = Retrier::new(RetryPolicy::within(DEFAULT_RETRY_BUDGET));
        let mut calls = 0;
        let result: Result<(), GaveUp> = retrier
            .run(|| {
                calls += 1;
                let code = if calls < 3 { 500 } else { 409 };
                async move { Err(answer(code, "x")) }
            })
            .await;
        assert_eq!((calls, result.unwrap_err().attempts), (3, 3));
        assert_eq!(retrier.retried(), 1);
    }

    /// Requests through `Cluster`, against the fake API server and its injected faults.
    mod against_the_fake {
        use serde_json::json;
        use weaver_test_apiserver::{Fault, TestApiServer};

        use super::*;
        use crate::{Cluster, ConnectOptions, ListTarget};

        const PATH: &str = "/api/v1/namespaces/default/configmaps/retried";

        async fn connect(server: &TestApiServer, request_timeout: Duration) -> Cluster {
            let options = ConnectOptions {
                kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
                context: None,
                request_timeout,
                retry_budget: Duration::from_secs(1),
                given: None,
            };
            let mut cluster = Cluster::connect(&options).await.unwrap_or_else(|e| panic!("{e}"));
            cluster.retry.policy.base = Duration::from_millis(10);
            cluster.retry.policy.cap = Duration::from_millis(50);
            cluster
        }

        async fn apply(cluster: &Cluster) -> Result<serde_json::Value, crate::ApplyError> {
            let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "retried", "namespace": "default"}, "data": {"k": "v"}});
            let served = cluster.resolve("v1", "ConfigMap").ok().unwrap();
            cluster.apply(&object, &served, false, false).await
        }

        fn patches(server: &TestApiServer) -> usize {
            server.requests().iter().filter(|r| r.method == "PATCH" && r.path == PATH).count()
        }

        #[tokio::test(flavor = "current_thread")]
        async fn an_apply_that_fails_twice_succeeds_on_the_third_attempt() {
            let server = TestApiServer::start();
            let cluster = connect(&server, Duration::from_secs(10)).await;
            server.inject(Fault::status("PATCH", PATH, 500).times(2));
            let applied = apply(&cluster).await.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(applied["data"]["k"], "v");
            assert_eq!(patches(&server), 3);
        }

        #[tokio::test(flavor = "current_thread")]
        async fn an_apply_that_keeps_failing_gives_up_after_the_budget_naming_the_object() {
            let server = TestApiServer::start();
            let cluster = connect(&server, Duration::from_secs(10)).await;
            // 503 is one kube's own retry layer would repeat: the count proves it is off.
            server.inject(Fault::status("PATCH", PATH, 503).times(10_000));
            let Err(crate::ApplyError::Other(err)) = apply(&cluster).await else { panic!("applied") };
            let message = err.to_string();
            assert!(message.starts_with("applying ConfigMap default/retried: the server answered 503"), "{message}");
            // For the 1 s budget, 10–50 ms apart.
            let patches = patches(&server);
            assert!(patches > 10, "{patches} attempts");
            assert!(message.ends_with(&format!("(tried {patches} times in 1s)")), "{message}");
            assert_eq!(cluster.retried_requests(), 1);
        }

        #[tokio::test(flavor = "current_thread")]
        async fn a_conflict_is_not_retried() {
            let server = TestApiServer::start();
            let cluster = connect(&server, Duration::from_secs(10)).await;
            server.inject(Fault::status("PATCH", PATH, 409).times(50));
            assert!(matches!(apply(&cluster).await, Err(crate::ApplyError::Conflict(_))));
            assert_eq!(patches(&server), 1);
        }

        #[tokio::test(flavor = "current_thread")]
        async fn an_answer_slower_than_the_request_timeout_is_retried() {
            let server = TestApiServer::start();
            let cluster = connect(&server, Duration::from_millis(500)).await;
            // An answer that would take a minute: only abandoning it at the request timeout
            // and retrying gets the apply done within the bound.
            server.inject(Fault::delay("PATCH", PATH, Duration::from_secs(60)));
            let applying = tokio::time::timeout(Duration::from_secs(15), apply(&cluster));
            let applied = applying.await.expect("the slow answer was abandoned").unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(applied["data"]["k"], "v");
        }

        #[tokio::test(flavor = "current_thread")]
        async fn a_throttled_list_is_retried() {
            let server = TestApiServer::start();
            let cluster = connect(&server, Duration::from_secs(10)).await;
            server.inject(Fault::status("GET", "/api/v1/namespaces/default/configmaps", 429).times(2));
            let target =
                ListTarget { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: Some("default".into()) };
            let listed = cluster
                .list(&[target].into(), "", crate::ManagedFields::Parsed, 1)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(listed.iter().any(|o| o["metadata"]["name"] == "kube-root-ca.crt"));
        }

        #[tokio::test(flavor = "current_thread")]
        async fn discovery_starts_again_when_a_group_vanishes_midway() {
            let server = TestApiServer::start();
            // No aggregated discovery (as before 1.26), then one group gone between the group
            // list and its read, as when a CRD is deleted meanwhile.
            server.inject(Fault::status("GET", "/apis", 404));
            server.inject(Fault::status("GET", "/apis/apps/v1", 404));
            let cluster = connect(&server, Duration::from_secs(10)).await;
            assert!(cluster.resolve("apps/v1", "Deployment").is_ok());
            let reads = server.requests().iter().filter(|r| r.path == "/apis/apps/v1").count();
            assert!(reads >= 2, "the vanished group was read {reads} time(s)");
        }
    }
}
