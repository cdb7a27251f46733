//! The ConfigMapSync status, per the API conventions: a `Ready` condition (True, or False with a
//! CamelCase reason and a message the tenant can act on, from the first reconcile on),
//! `observedGeneration`, one line per target, and no phases. A condition keeps its
//! `lastTransitionTime` while its status stays the same. kstatus's `Stalled=True` joins Ready
//! False when no retry can help, only a change by someone (see `stalled`): readers that
//! wait (`weaver status`, `apply --wait`, kstatus, Flux) then stop waiting.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::api::{ConfigMapSyncStatus, SyncReason, TargetReason, TargetStatus};
use super::plan::Settled;
use crate::conditions;

/// How one target ended in a reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Written this time, or already equal to the source.
    Synced,
    /// No write was needed or allowed, for this reason.
    Settled(Settled),
    /// The ServiceAccount may not write there (the API server's message).
    Forbidden(String),
    /// Any other failure (the API server's message).
    Failed(String),
}

/// Why the whole ConfigMapSync cannot sync, before any target is looked at.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    /// The ServiceAccount (its name) does not exist.
    ServiceAccountNotFound(String),
    /// The API server refused the operator a token for the account (its message).
    TokenRequestFailed { account: String, message: String },
    /// The account may not read the source (the message its own request would get).
    SourceForbidden(String),
}

impl Blocked {
    /// The Ready condition's reason and message.
    fn reason_and_message(&self) -> (SyncReason, String) {
        match self {
            Blocked::ServiceAccountNotFound(name) => (
                SyncReason::ServiceAccountNotFound,
                format!(
                    "ServiceAccount {name} does not exist in this namespace; create it or name another in spec.serviceAccountName"
                ),
            ),
            Blocked::TokenRequestFailed { account, message } => (
                SyncReason::TokenRequestFailed,
                format!(
                    "the operator cannot get a token for ServiceAccount {account}, so nothing is written: {message}; \
                     the operator's own ClusterRole needs create on serviceaccounts/token"
                ),
            ),
            Blocked::SourceForbidden(message) => (
                SyncReason::SourceForbidden,
                format!(
                    "the ServiceAccount may not read the source, so nothing is copied: {message}; \
                     grant it get on the source ConfigMap in this namespace"
                ),
            ),
        }
    }
}

use crate::conditions::{READY, STALLED};

fn condition(status: &str, reason: &SyncReason, message: String, generation: Option<i64>, now: &Time) -> Condition {
    conditions::condition(READY, status == "True", reason, message, generation, now)
}

fn carry_transition(new: Condition, previous: Option<&ConfigMapSyncStatus>) -> Condition {
    conditions::carry_transition(new, previous.map_or(&[][..], |p| &p.conditions))
}

/// The condition while the finalizer cannot delete every target.
pub fn cleanup_failed(generation: Option<i64>, why: &str, now: &Time) -> Condition {
    condition(
        "False",
        &SyncReason::CleanupFailed,
        format!("the ConfigMapSync is kept until its targets are deleted: {why}"),
        generation,
        now,
    )
}

/// The status after a reconcile.
pub fn after_reconcile(
    generation: Option<i64>,
    source_found: bool,
    blocked: Option<&Blocked>,
    outcomes: &BTreeMap<String, Outcome>,
    previous: Option<&ConfigMapSyncStatus>,
    now: &Time,
) -> ConfigMapSyncStatus {
    let targets: Vec<TargetStatus> = outcomes
        .iter()
        .map(|(namespace, outcome)| {
            let (synced, reason, message) = match outcome {
                Outcome::Synced | Outcome::Settled(Settled::InSync) => (true, TargetReason::Synced, None),
                Outcome::Settled(Settled::Conflict) => (
                    false,
                    TargetReason::Conflict,
                    Some("a ConfigMap of that name exists and is not managed by this ConfigMapSync".to_string()),
                ),
                Outcome::Settled(Settled::NamespaceNotFound) => {
                    (false, TargetReason::NamespaceNotFound, Some(format!("namespace {namespace} does not exist")))
                }
                Outcome::Settled(Settled::NamespaceTerminating) => (
                    false,
                    TargetReason::NamespaceTerminating,
                    Some(format!("namespace {namespace} is being deleted; nothing is written there")),
                ),
                Outcome::Settled(Settled::SourceNotFound) => (false, TargetReason::SourceNotFound, None),
                Outcome::Forbidden(message) | Outcome::Settled(Settled::Forbidden(message)) => {
                    (false, TargetReason::Forbidden, Some(message.clone()))
                }
                Outcome::Failed(message) => (false, TargetReason::Failed, Some(message.clone())),
            };
            TargetStatus { namespace: namespace.clone(), synced, reason: Some(reason), message }
        })
        .collect();
    let synced = targets.iter().filter(|t| t.synced).count();
    let total = targets.len();
    let (status, reason, message) = match blocked {
        Some(blocked) => {
            let (reason, message) = blocked.reason_and_message();
            ("False", reason, message)
        }
        None if !source_found => (
            "False",
            SyncReason::SourceNotFound,
            "the source ConfigMap does not exist; targets are left as they are".into(),
        ),
        None if synced == total => ("True", SyncReason::Synced, format!("{synced}/{total} targets in sync")),
        None => ("False", SyncReason::TargetsNotSynced, format!("{synced}/{total} targets in sync")),
    };
    let ready = condition(status, &reason, message, generation, now);
    let stalled = stalled(blocked, &targets)
        .map(|message| conditions::condition(STALLED, true, &reason, message, generation, now));
    ConfigMapSyncStatus {
        observed_generation: generation,
        conditions: std::iter::once(ready).chain(stalled).map(|c| carry_transition(c, previous)).collect(),
        targets,
        targets_in_sync: Some(format!("{synced}/{total}")),
    }
}

/// Target reasons only a change cures: the tenant's RBAC (Forbidden), a ConfigMap of the
/// name that someone else manages (Conflict). A missing or terminating namespace, a missing
/// source and other failures may come right by themselves.
const STALLING: [TargetReason; 2] = [TargetReason::Forbidden, TargetReason::Conflict];

/// The Stalled message, when the sync as a whole is blocked or every target not in sync is
/// so for a reason in [`STALLING`]; None while something may still come right by itself.
fn stalled(blocked: Option<&Blocked>, targets: &[TargetStatus]) -> Option<String> {
    if let Some(blocked) = blocked {
        return Some(blocked.reason_and_message().1);
    }
    let unsynced: Vec<&TargetStatus> = targets.iter().filter(|t| !t.synced).collect();
    let stuck = |t: &&TargetStatus| t.reason.as_ref().is_some_and(|r| STALLING.contains(r));
    if unsynced.is_empty() || !unsynced.iter().all(stuck) {
        return None;
    }
    let named: Vec<String> = unsynced
        .iter()
        .map(|t| format!("{} ({})", t.namespace, t.reason.as_ref().map_or("", |r| r.as_str())))
        .collect();
    Some(format!(
        "no retry syncs target(s) {}: the ServiceAccount's RBAC or the ConfigMap in the way must change; \
         status.targets says why for each",
        named.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn ready_when_every_target_is_synced_and_reasons_per_target_otherwise() {
        let outcomes = BTreeMap::from([
            ("a".to_string(), Outcome::Synced),
            ("b".to_string(), Outcome::Forbidden("configmaps is forbidden".into())),
            ("c".to_string(), Outcome::Settled(Settled::Conflict)),
        ]);
        let status = after_reconcile(Some(3), true, None, &outcomes, None, &time(10));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.targets_in_sync.as_deref(), Some("1/3"));
        let ready = &status.conditions[0];
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "TargetsNotSynced"));
        assert_eq!(status.targets[1].reason.as_ref().map(|r| r.as_str()), Some("Forbidden"));
        assert_eq!(status.targets[1].message.as_deref(), Some("configmaps is forbidden"));
        assert_eq!(status.targets[2].reason.as_ref().map(|r| r.as_str()), Some("Conflict"));
        // Forbidden and Conflict need a change: Stalled, for kstatus and `weaver status`.
        let stalled = &status.conditions[1];
        assert_eq!((stalled.type_.as_str(), stalled.status.as_str()), ("Stalled", "True"));
        assert_eq!(
            stalled.message,
            "no retry syncs target(s) b (Forbidden), c (Conflict): the ServiceAccount's RBAC or the ConfigMap in the \
             way must change; status.targets says why for each"
        );
        // A failure that may pass is retried, not Stalled.
        let mut passing = outcomes.clone();
        passing.insert("d".to_string(), Outcome::Failed("connection reset".into()));
        let status = after_reconcile(Some(3), true, None, &passing, None, &time(10));
        assert_eq!(status.conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), ["Ready"]);

        let all = BTreeMap::from([("a".to_string(), Outcome::Synced)]);
        let status = after_reconcile(Some(3), true, None, &all, None, &time(10));
        assert_eq!(
            (status.conditions[0].status.as_str(), status.conditions[0].message.as_str()),
            ("True", "1/1 targets in sync")
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let synced = BTreeMap::from([("a".to_string(), Outcome::Synced)]);
        let first = after_reconcile(Some(1), true, None, &synced, None, &time(10));
        let again = after_reconcile(Some(1), true, None, &synced, Some(&first), &time(20));
        assert_eq!(again, first, "an unchanged status is equal, so no status write is needed");
        let failed = BTreeMap::from([("a".to_string(), Outcome::Failed("boom".into()))]);
        let changed = after_reconcile(Some(1), true, None, &failed, Some(&first), &time(30));
        assert_eq!(changed.conditions[0].last_transition_time, time(30));
    }

    #[test]
    fn a_missing_service_account_or_source_is_not_ready_with_its_reason() {
        let blocked = Blocked::ServiceAccountNotFound("syncer".into());
        let status = after_reconcile(Some(1), true, Some(&blocked), &BTreeMap::new(), None, &time(1));
        assert_eq!(status.conditions[0].reason, "ServiceAccountNotFound");
        assert_eq!(
            (status.conditions[1].type_.as_str(), status.conditions[1].reason.as_str()),
            ("Stalled", "ServiceAccountNotFound")
        );
        let status = after_reconcile(Some(1), false, None, &BTreeMap::new(), None, &time(1));
        assert_eq!(status.conditions[0].reason, "SourceNotFound");
        assert_eq!(status.conditions.len(), 1, "a source may be created: not Stalled");
        let blocked = Blocked::SourceForbidden("configmaps \"settings\" is forbidden".into());
        let status = after_reconcile(Some(1), true, Some(&blocked), &BTreeMap::new(), None, &time(1));
        let ready = &status.conditions[0];
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "SourceForbidden"));
        assert!(
            ready.message.contains("configmaps \"settings\" is forbidden") && ready.message.contains("grant it get")
        );
    }
}
