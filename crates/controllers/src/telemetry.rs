//! What the operator tells its surroundings over HTTP: `/healthz` (`liveness`: what it serves runs),
//! `/readyz` (`readiness`: once the cache of every controller run has synced; a follower
//! waiting for the leader Lease is ready too, as a healthy standby) and `/metrics` in Prometheus' text format:
//! reconciles, failed reconciles, reconcile duration, and targets by state; and, in the same
//! registry, the EnvironmentSync controller's (`gitops::telemetry`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::gitops::telemetry::Metrics as EnvironmentSyncMetrics;
use weaver_api::configmap_sync::ConfigMapSyncStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetState {
    /// A target's reason: Synced, Forbidden, Conflict, NamespaceNotFound, …
    state: String,
}

/// The operator's metrics and readiness, shared by the controller and the HTTP endpoints.
pub struct Telemetry {
    registry: Registry,
    reconciles: Counter,
    failures: Counter,
    duration: Histogram,
    targets: Family<TargetState, Gauge>,
    /// Target states per ConfigMapSync (`namespace/name`), summed into `targets`.
    states: Mutex<HashMap<String, BTreeMap<String, i64>>>,
    /// What `/readyz` answers.
    pub readiness: crate::readiness::Readiness,
    /// What `/healthz` answers.
    pub liveness: crate::readiness::Liveness,
    /// The EnvironmentSync controller's and webhook receiver's, for them to count into.
    pub environmentsync: EnvironmentSyncMetrics,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut root = Registry::default();
        let environmentsync = EnvironmentSyncMetrics::default();
        environmentsync.register(root.sub_registry_with_prefix("environmentsync"));
        let registry = root.sub_registry_with_prefix("configmapsync");
        let reconciles = Counter::default();
        let failures = Counter::default();
        // 5 ms to about 10 s.
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let targets = Family::<TargetState, Gauge>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed and are retried", failures.clone());
        registry.register("reconcile_duration_seconds", "How long a reconcile took", duration.clone());
        registry.register("targets", "Target namespaces by state, over every ConfigMapSync", targets.clone());
        Telemetry {
            registry: root,
            reconciles,
            failures,
            duration,
            targets,
            states: Mutex::new(HashMap::new()),
            readiness: Default::default(),
            liveness: Default::default(),
            environmentsync,
        }
    }
}

impl Telemetry {
    pub fn reconciled(&self, took: Duration, failed: bool) {
        self.reconciles.inc();
        if failed {
            self.failures.inc();
        }
        self.duration.observe(took.as_secs_f64());
    }

    /// The targets of one ConfigMapSync, as its status says them; `None` once it is gone.
    pub fn set_targets(&self, sync: &str, status: Option<&ConfigMapSyncStatus>) {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = totals(&states);
        match status {
            Some(status) => {
                let mut counts = BTreeMap::new();
                for target in &status.targets {
                    *counts.entry(target.reason.as_ref().map_or_else(String::new, ToString::to_string)).or_insert(0) +=
                        1;
                }
                states.insert(sync.to_string(), counts);
            }
            None => {
                states.remove(sync);
            }
        }
        let after = totals(&states);
        // A state no target is in any more goes, rather than keep its last value. Each series is
        // set or removed in place (no clearing), so a scrape meanwhile never misses one.
        for state in before.into_keys().filter(|state| !after.contains_key(state)) {
            self.targets.remove(&TargetState { state });
        }
        for (state, count) in after {
            self.targets.get_or_create(&TargetState { state }).set(count);
        }
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Targets by state, over every ConfigMapSync.
fn totals(states: &HashMap<String, BTreeMap<String, i64>>) -> BTreeMap<String, i64> {
    let mut totals = BTreeMap::new();
    for (state, count) in states.values().flatten() {
        *totals.entry(state.clone()).or_insert(0) += count;
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_api::configmap_sync::TargetStatus;

    fn status(reasons: &[&str]) -> ConfigMapSyncStatus {
        let targets = reasons
            .iter()
            .enumerate()
            .map(|(i, reason)| TargetStatus {
                namespace: format!("ns{i}"),
                synced: *reason == "Synced",
                reason: Some((*reason).into()),
                message: None,
            })
            .collect();
        ConfigMapSyncStatus { targets, ..ConfigMapSyncStatus::default() }
    }

    #[test]
    fn targets_are_summed_by_state_over_every_configmapsync() {
        let telemetry = Telemetry::default();
        telemetry.set_targets("a/one", Some(&status(&["Synced", "Forbidden"])));
        telemetry.set_targets("b/two", Some(&status(&["Synced", "Synced"])));
        telemetry.reconciled(Duration::from_millis(20), false);
        telemetry.reconciled(Duration::from_millis(20), true);
        let text = telemetry.encode();
        assert!(text.contains("configmapsync_targets{state=\"Synced\"} 3"), "{text}");
        assert!(text.contains("configmapsync_targets{state=\"Forbidden\"} 1"), "{text}");
        assert!(text.contains("configmapsync_reconciles_total 2"), "{text}");
        assert!(text.contains("configmapsync_reconcile_errors_total 1"), "{text}");
        assert!(text.contains("configmapsync_reconcile_duration_seconds_count 2"), "{text}");
        telemetry.set_targets("a/one", None);
        let text = telemetry.encode();
        assert!(!text.contains("state=\"Forbidden\""), "{text}");
        assert!(text.contains("configmapsync_targets{state=\"Synced\"} 2"), "{text}");
    }
}
