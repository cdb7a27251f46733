//! The EnvironmentSync controller's and webhook receiver's metrics, served on the operator's
//! `/metrics` beside ConfigMapSync's (the crate's `telemetry` registers them, prefixed
//! `environmentsync_`): reconcile and fetch durations, reconcile errors by reason, bytes fetched, objects applied, and
//! webhook requests by outcome.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::plan::Work;
use super::status::Outcome;
use weaver_source::Fetched;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileResult {
    /// The Ready condition's reason: ReconciliationSucceeded, ApplyFailed, GitFetchFailed, …
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileError {
    /// `controller::Error::reason`: StatusWriteFailed.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookOutcome {
    outcome: &'static str,
}

/// Cheap to clone: clones count into the same metrics.
#[derive(Clone)]
pub struct Metrics {
    reconcile_duration: Family<ReconcileResult, Histogram, fn() -> Histogram>,
    reconcile_errors: Family<ReconcileError, Counter>,
    fetch_duration: Histogram,
    fetch_bytes: Counter,
    objects_applied: Counter,
    webhook_requests: Family<WebhookOutcome, Counter>,
}

/// 0.1 s to about 3.5 min: a reconcile applies, and may wait for what it applied.
fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconcile_duration: Family::new_with_constructor(reconcile_buckets),
            reconcile_errors: Family::default(),
            // 50 ms to about 100 s.
            fetch_duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            fetch_bytes: Counter::default(),
            objects_applied: Counter::default(),
            webhook_requests: Family::default(),
        }
    }
}

impl Metrics {
    /// Serves these metrics from `registry` (prefix it `environmentsync`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconcile took, by the Ready condition's reason",
            self.reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed (retried, backing off), by reason",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "git_fetch_duration_seconds",
            "How long a fetch of a source took",
            self.fetch_duration.clone(),
        );
        registry.register("git_fetch_bytes", "Bytes received fetching sources", self.fetch_bytes.clone());
        registry.register(
            "objects_applied",
            "Objects created, configured or pruned by applies",
            self.objects_applied.clone(),
        );
        registry.register("webhook_requests", "Webhook requests by outcome", self.webhook_requests.clone());
    }

    pub fn reconciled(&self, outcome: &Outcome, took: Duration) {
        let result = ReconcileResult { result: outcome.ready().1.to_string() };
        self.reconcile_duration.get_or_create(&result).observe(took.as_secs_f64());
        // A drift reconcile's environments, and those of a plan waiting for approval, are the
        // last apply's, carried over: counted then.
        if let Outcome::Done(done) = outcome
            && done.work == Work::Apply
            && done.pending.is_none()
        {
            let changed = done
                .environments
                .iter()
                .map(|e| u64::from(e.created) + u64::from(e.configured) + u64::from(e.pruned))
                .sum();
            self.objects_applied.inc_by(changed);
        }
    }

    /// A reconcile failed with `reason` (`controller::Error::reason`).
    pub fn reconcile_failed(&self, reason: &'static str) {
        self.reconcile_errors.get_or_create(&ReconcileError { reason }).inc();
    }

    pub fn fetched(&self, fetched: &Fetched) {
        self.fetch_duration.observe(fetched.duration.as_secs_f64());
        self.fetch_bytes.inc_by(fetched.bytes_received);
    }

    /// A webhook request answered: `outcome` is `accepted`, `ping`, `unauthorized`, …
    pub fn webhook_request(&self, outcome: &'static str) {
        self.webhook_requests.get_or_create(&WebhookOutcome { outcome }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::api::EnvironmentStatus;
    use crate::gitops::api::Reason;
    use crate::gitops::status::Done;

    fn done(work: Work) -> Outcome {
        let env = |name: &str, created, configured, pruned| EnvironmentStatus {
            name: name.into(),
            result: "Applied".into(),
            created,
            configured,
            pruned,
            unchanged: 7,
            ..EnvironmentStatus::default()
        };
        let environments = vec![env("dev", 2, 1, 0), env("prod", 0, 3, 1)];
        Outcome::Done(Done::new("a".repeat(40), work, environments))
    }

    #[test]
    fn reconciles_are_timed_by_reason_and_only_applies_count_objects() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(registry.sub_registry_with_prefix("environmentsync"));
        metrics.reconciled(&done(Work::Apply), Duration::from_millis(300));
        // A drift reconcile carries the last apply's counts over: not counted again.
        metrics.reconciled(&done(Work::ReportDrift), Duration::from_millis(300));
        let failed = Outcome::Failed { reason: Reason::GitFetchFailed, message: String::new(), revision: None };
        metrics.reconciled(&failed, Duration::from_secs(1));
        metrics.webhook_request("accepted");
        metrics.reconcile_failed("StatusWriteFailed");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("environmentsync_objects_applied_total 7\n"), "{text}");
        let count = |result: &str| format!("environmentsync_reconcile_duration_seconds_count{{result=\"{result}\"}}");
        assert!(text.contains(&format!("{} 2\n", count("ReconciliationSucceeded"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", count("GitFetchFailed"))), "{text}");
        assert!(text.contains("environmentsync_webhook_requests_total{outcome=\"accepted\"} 1\n"), "{text}");
        assert!(text.contains("environmentsync_reconcile_errors_total{reason=\"StatusWriteFailed\"} 1\n"), "{text}");
        assert!(text.contains("environmentsync_git_fetch_bytes_total 0\n"), "{text}");
        assert!(text.contains("environmentsync_git_fetch_duration_seconds_count 0\n"), "{text}");
    }
}
