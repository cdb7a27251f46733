//! Whether a replica of the operator is ready (`/readyz`): a follower once it waits for the
//! leader Lease (a healthy standby); a leader, or a replica run without election, once the
//! watch of every controller it runs has listed. Each controller says so of its own cache, so
//! `--controllers=environmentsync` alone is ready once EnvironmentSyncs are listed. And whether
//! it is alive (`/healthz`, [`Liveness`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Cheap to clone: clones share one state.
#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Waiting for the leader Lease, which another replica holds.
    standby: bool,
    /// The caches of the controllers running, by what they hold, and whether each has listed.
    caches: BTreeMap<&'static str, bool>,
}

impl Readiness {
    /// Set by the leader election: true while another replica leads.
    pub fn set_standby(&self, standby: bool) {
        self.state().standby = standby;
    }

    /// Set by a controller: false when it starts watching `cache` ("ConfigMapSync"), true once
    /// the watch has listed.
    pub fn set_synced(&self, cache: &'static str, synced: bool) {
        self.state().caches.insert(cache, synced);
    }

    /// None when ready; else why not, for the probe's answer.
    pub fn not_ready(&self) -> Option<String> {
        let state = self.state();
        let waiting: Vec<&str> = state.caches.iter().filter(|(_, synced)| !**synced).map(|(cache, _)| *cache).collect();
        match (state.caches.is_empty(), waiting.is_empty()) {
            (false, true) => None,
            (false, false) => Some(format!("the {} cache has not synced yet", waiting.join(" and "))),
            (true, _) if state.standby => None,
            (true, _) => Some("no controller runs yet: the replica is starting or campaigning".to_string()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a replica is alive (`/healthz`): it is while what it serves runs. A server that
/// stopped for good (the web UI's listener failed) says why here, and the kubelet's liveness
/// probe then restarts the Pod, which serves it again. Cheap to clone: clones share one state.
#[derive(Clone, Default)]
pub struct Liveness(Arc<Mutex<BTreeMap<&'static str, String>>>);

impl Liveness {
    /// `what` ("the web UI") stopped, for `why`.
    pub fn stopped(&self, what: &'static str, why: String) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(what, why);
    }

    /// None when alive; else what stopped and why, for the probe's answer.
    pub fn not_alive(&self) -> Option<String> {
        let stopped = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let lines: Vec<String> = stopped.iter().map(|(what, why)| format!("{what} stopped: {why}")).collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_running_controllers_cache_listed_or_as_a_standby() {
        let readiness = Readiness::default();
        assert!(readiness.not_ready().is_some(), "starting");
        readiness.set_standby(true);
        assert_eq!(readiness.not_ready(), None, "a follower is a healthy standby");

        // Only EnvironmentSyncs: ready once they are listed, whatever ConfigMapSyncs do.
        let readiness = Readiness::default();
        readiness.set_synced("EnvironmentSync", false);
        assert_eq!(readiness.not_ready().as_deref(), Some("the EnvironmentSync cache has not synced yet"));
        readiness.set_synced("EnvironmentSync", true);
        assert_eq!(readiness.not_ready(), None);

        // Both: each must have listed.
        readiness.set_synced("ConfigMapSync", false);
        assert_eq!(readiness.not_ready().as_deref(), Some("the ConfigMapSync cache has not synced yet"));
        readiness.set_synced("ConfigMapSync", true);
        assert_eq!(readiness.not_ready(), None);
    }
}
