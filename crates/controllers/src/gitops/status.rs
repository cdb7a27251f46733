//! The EnvironmentSync status after a reconcile, following kstatus: `Ready` (True, or False
//! with a CamelCase reason and a message that says what to do), `Reconciling` while the
//! controller retries, `Stalled` when only a change of the spec can help, `observedGeneration`,
//! the revisions, one entry per environment and the last reconciles. Built from the outcome
//! alone, so an unchanged outcome gives an equal status and no write. While an apply runs, the
//! status says so ([`working`]): Ready is Unknown until the apply's outcome is known.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::api::{
    ApprovalRecord, ArtifactStatus, DriftSummary, EnvironmentResult, EnvironmentStatus, EnvironmentSync,
    EnvironmentSyncStatus, HistoryEntry, ImageUpdatesStatus, PendingPlan, PreviewStatus, PromotionStatus, PushReason,
    Reason, WindowHold,
};
use super::plan::{self, Work};
use crate::conditions::{
    IMAGES_UPDATED, PROMOTED, READY, RECONCILING, STALLED, WATCH_REFUSED, carry_transition, condition,
};

/// Failures of the source no retry cures, only a change (its Secret, the URL or branch in the
/// spec, the server's key, the artifact pushed to the tag): kstatus's `Stalled`, so that readers that wait (`weaver status`,
/// `apply --wait`, kstatus, Flux) stop waiting. Unreachable servers and timeouts may pass.
fn stalling(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::GitAuthenticationFailed
            | Reason::GitHostKeyMismatch
            | Reason::GitRefNotFound
            | Reason::ArtifactNotFound
            | Reason::ArtifactInvalid
            | Reason::InvalidSourceUrl
    )
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Suspended: the status stays as it was.
    Suspended,
    /// The spec cannot be acted on until it changes.
    Invalid { reason: Reason, message: String },
    /// Nothing was applied (the source, its credentials, the selection): the cluster stays at
    /// the last applied revision.
    Failed { reason: Reason, message: String, revision: Option<String> },
    /// A dependency is not ready (for this revision, once fetched) yet.
    Waiting { revision: Option<String>, message: String },
    /// Every selected environment was looked at.
    Done(Done),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub revision: String,
    pub work: Work,
    /// One entry per selected environment, by name.
    pub environments: Vec<EnvironmentStatus>,
    pub pending: Option<PendingPlan>,
    pub drift: Option<DriftSummary>,
    /// The auto-promotion run after it, when one was due (boxed: most reconciles have none).
    pub promotion: Option<Box<Promoted>>,
    /// The image update run after it, when one was due.
    pub images: Option<Box<ImagesUpdated>>,
    /// The approved plan it applied (`approval: Manual`), and who approved it when (boxed, as
    /// the two below: most reconciles have none).
    pub approval: Option<Box<ApprovalRecord>>,
    /// The window that held its apply back (`spec.windows`): nothing was applied.
    pub held: Option<Box<WindowHold>>,
    /// The failed environments that failed in their render (their templates, values, charts),
    /// not their apply, by name: Ready's reason is `RenderFailed` when no other failed.
    pub unrendered: BTreeSet<String>,
    /// The OCI artifact pulled (`spec.source.oci`): its tag, digest and signer.
    pub artifact: Option<Box<ArtifactStatus>>,
    /// The previews (`spec.previews`) this reconcile looked at.
    pub previews: Option<Box<Previewed>>,
}

/// What a reconcile did of `spec.previews`: each preview's status, sorted by name, what the
/// Events say of the previews first applied and those pruned, and whether some were left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Previewed {
    pub previews: Vec<PreviewStatus>,
    pub created: Vec<String>,
    pub pruned: Vec<String>,
    /// Some were left for the next reconcile: the previews' time (`spec.timeout`) ran out.
    pub unfinished: bool,
}

impl Done {
    /// `work` done at `revision` on `environments`, and nothing more: no plan waits, no drift
    /// summary, no push, no approval, no window held it, no artifact or preview told of.
    pub fn new(revision: String, work: Work, environments: Vec<EnvironmentStatus>) -> Done {
        Done {
            revision,
            work,
            environments,
            pending: None,
            drift: None,
            promotion: None,
            images: None,
            approval: None,
            held: None,
            unrendered: BTreeSet::new(),
            artifact: None,
            previews: None,
        }
    }
}

/// A pushing run's outcome (an auto-promotion's or an image update's): its condition, and
/// its part of the status.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed<S> {
    /// True: pushed, or nothing to push; False: a gate failed, or an error.
    pub passed: bool,
    pub reason: PushReason,
    pub message: String,
    pub status: S,
    /// The commit this run pushed.
    pub pushed: Option<String>,
}

/// An auto-promotion's outcome: the `Promoted` condition, and the status's `promotion`.
pub type Promoted = Pushed<PromotionStatus>;
/// An image update's outcome: the `ImagesUpdated` condition, and the status's `imageUpdates`.
pub type ImagesUpdated = Pushed<ImageUpdatesStatus>;

impl<S> Pushed<S> {
    /// A run that pushed nothing: passed (nothing to push) or not (a gate failed, an error).
    pub fn unpushed(passed: bool, reason: impl Into<PushReason>, message: String, status: S) -> Pushed<S> {
        Pushed { passed, reason: reason.into(), message, status, pushed: None }
    }

    /// Its condition, of type `type_`.
    fn condition(&self, type_: &str, generation: Option<i64>, now: &Time) -> Condition {
        condition(type_, self.passed, &self.reason, self.message.clone(), generation, now)
    }
}

impl Outcome {
    /// The Ready condition's reason and message, and whether it is True.
    pub fn ready(&self) -> (bool, Reason, String) {
        match self {
            Outcome::Suspended => (false, Reason::Suspended, String::new()),
            Outcome::Invalid { reason, message } | Outcome::Failed { reason, message, .. } => {
                (false, reason.clone(), message.clone())
            }
            Outcome::Waiting { message, .. } => (false, Reason::DependencyNotReady, message.clone()),
            Outcome::Done(done) => {
                let failed: Vec<&EnvironmentStatus> = done
                    .environments
                    .iter()
                    .filter(|e| matches!(e.result, EnvironmentResult::Failed | EnvironmentResult::Skipped))
                    .collect();
                if let Some(first) = failed.first() {
                    let names: Vec<&str> = failed.iter().map(|e| e.name.as_str()).collect();
                    let message = format!(
                        "environment(s) {} failed at {}: {}",
                        names.join(", "),
                        plan::short(&done.revision),
                        first.message.as_deref().unwrap_or("see status.environments")
                    );
                    // Those skipped only follow one that failed.
                    let mut failures = failed.iter().filter(|e| e.result == EnvironmentResult::Failed).peekable();
                    let unrendered = failures.peek().is_some() && failures.all(|e| done.unrendered.contains(&e.name));
                    let reason = if unrendered { Reason::RenderFailed } else { Reason::ApplyFailed };
                    return (false, reason, message);
                }
                let held = done.held.as_ref().map(|held| match &held.until {
                    Some(until) => format!("{} holds applies and approvals until {until}", held.reason),
                    None => format!("{} holds applies and approvals, and no opening was found ahead", held.reason),
                });
                if let Some(pending) = done
                    .pending
                    .as_ref()
                    .filter(|_| done.environments.iter().any(|e| e.result == EnvironmentResult::AwaitingApproval))
                {
                    let message = format!(
                        "the plan of {} waits for approval: set spec.approvedPlan to {} (weaver sync approve){}",
                        plan::short(&done.revision),
                        pending.digest,
                        held.map(|held| format!("; {held}")).unwrap_or_default()
                    );
                    return (false, Reason::AwaitingApproval, message);
                }
                if let Some(held) = held {
                    let message = format!("{held}: revision {} is applied then", plan::short(&done.revision));
                    return (false, Reason::WindowClosed, message);
                }
                let message = format!(
                    "applied revision {} to {} environment(s)",
                    plan::short(&done.revision),
                    done.environments.len()
                );
                (true, Reason::ReconciliationSucceeded, message)
            }
        }
    }

    /// The history entry of this reconcile, if it is worth one: a reconcile that only found
    /// everything in sync (or waits) adds none.
    fn history(&self) -> Option<(String, Reason, Option<String>)> {
        let (_, reason, message) = self.ready();
        match self {
            Outcome::Failed { revision: Some(revision), .. } => Some((revision.clone(), reason, Some(message))),
            Outcome::Done(done) if done.work != Work::ReportDrift || reason != Reason::ReconciliationSucceeded => {
                Some((done.revision.clone(), reason, Some(message)))
            }
            _ => None,
        }
    }
}

/// What a reconcile is doing while it applies: the revision, and a message naming the
/// environment and what the apply waits for (another holder of its lock).
#[derive(Debug, Clone, PartialEq)]
pub struct Working {
    pub revision: String,
    pub message: String,
}

/// `previous` (the status as last written) while `working` goes on, as kstatus reads work in
/// progress: Reconciling True and Ready Unknown, both with reason `Progressing` and the
/// message; the revision is the last attempted one. Nothing else changes: the last applied
/// revision stays what the cluster is known to hold.
pub fn working(
    sync: &EnvironmentSync,
    previous: &EnvironmentSyncStatus,
    working: &Working,
    now: &Time,
) -> EnvironmentSyncStatus {
    let generation = sync.metadata.generation;
    let progressing = |type_| {
        let mut condition = condition(type_, true, &Reason::Progressing, working.message.clone(), generation, now);
        if type_ == READY {
            condition.status = "Unknown".into();
        }
        carry_transition(condition, &previous.conditions)
    };
    EnvironmentSyncStatus {
        observed_generation: generation,
        conditions: [progressing(READY), progressing(RECONCILING)]
            .into_iter()
            .chain(previous.conditions.iter().filter(|c| c.type_ == PROMOTED || c.type_ == IMAGES_UPDATED).cloned())
            .collect(),
        last_attempted_revision: Some(working.revision.clone()),
        ..previous.clone()
    }
}

/// The status of `sync` after a reconcile that ended in `outcome` at `now` and took `took`
/// seconds; `request` is the reconcile-requested-at value it handled.
pub fn after(
    sync: &EnvironmentSync,
    outcome: &Outcome,
    request: Option<String>,
    now: &Time,
    took: f64,
) -> EnvironmentSyncStatus {
    let previous = sync.status.clone().unwrap_or_default();
    if *outcome == Outcome::Suspended {
        // Seen, and nothing else said: the conditions stay those of the last reconcile.
        return EnvironmentSyncStatus { observed_generation: sync.metadata.generation, ..previous };
    }
    let generation = sync.metadata.generation;
    let (ready, reason, message) = outcome.ready();
    let mut conditions: Vec<Condition> = vec![condition(READY, ready, &reason, message.clone(), generation, now)];
    let retrying = Reason::ProgressingWithRetry;
    match outcome {
        Outcome::Invalid { .. } => conditions.push(condition(STALLED, true, &reason, message, generation, now)),
        // Retried all the same (a Secret or the server may be fixed), but no retry alone helps.
        Outcome::Failed { reason, .. } if stalling(reason) => {
            conditions.push(condition(STALLED, true, reason, message, generation, now))
        }
        Outcome::Failed { .. } | Outcome::Waiting { .. } => {
            conditions.push(condition(RECONCILING, true, &retrying, message, generation, now))
        }
        Outcome::Done(done) if !ready && done.pending.is_none() => {
            conditions.push(condition(RECONCILING, true, &retrying, message, generation, now))
        }
        _ => {}
    }
    // The last promotion's and image update's conditions stay until the next says otherwise.
    let done = match outcome {
        Outcome::Done(done) => Some(done),
        _ => None,
    };
    let kept = |type_: &str| previous.conditions.iter().find(|c| c.type_ == type_).cloned();
    conditions.extend(match done.and_then(|d| d.promotion.as_ref()) {
        Some(promoted) => Some(promoted.condition(PROMOTED, generation, now)),
        None => kept(PROMOTED),
    });
    conditions.extend(match done.and_then(|d| d.images.as_ref()) {
        Some(updated) => Some(updated.condition(IMAGES_UPDATED, generation, now)),
        None => kept(IMAGES_UPDATED),
    });
    let conditions = conditions.into_iter().map(|c| carry_transition(c, &previous.conditions)).collect();
    let mut status = EnvironmentSyncStatus {
        observed_generation: generation,
        conditions,
        last_handled_reconcile_at: request.or(previous.last_handled_reconcile_at.clone()),
        ..previous.clone()
    };
    match outcome {
        // What held the last apply back is no news past a failure or a wait.
        Outcome::Failed { revision, .. } => {
            status.last_attempted_revision = revision.clone().or(status.last_attempted_revision);
            status.held = None;
        }
        Outcome::Waiting { revision, .. } => {
            status.last_attempted_revision = revision.clone().or(status.last_attempted_revision);
            status.held = None;
        }
        Outcome::Done(done) => {
            status.last_attempted_revision = Some(done.revision.clone());
            status.environments = done.environments.clone();
            // Held by a window, nothing was applied: a spec changed since the last apply (its
            // generation) is still to apply when the window opens, at the same commit too.
            if done.held.is_none()
                && done
                    .environments
                    .iter()
                    .all(|e| e.result.is_applied() && e.revision.as_deref() == Some(&done.revision))
            {
                status.last_applied_revision = Some(done.revision.clone());
                status.last_applied_generation = generation;
            }
            status.pending_plan = done.pending.clone();
            status.held = done.held.as_deref().cloned();
            if done.drift.is_some() {
                status.drift = done.drift.clone();
            }
            if let Some(promoted) = &done.promotion {
                status.promotion = Some(promoted.status.clone());
            }
            if let Some(updated) = &done.images {
                status.image_updates = Some(updated.status.clone());
            }
            if let Some(artifact) = &done.artifact {
                status.artifact = Some(artifact.as_ref().clone());
            }
            if let Some(previewed) = &done.previews {
                status.previews = previewed.previews.clone();
            }
            let ready = done.environments.iter().filter(|e| e.result.is_applied()).count();
            status.environments_ready = Some(format!("{ready}/{}", done.environments.len()));
        }
        Outcome::Invalid { .. } | Outcome::Suspended => {}
    }
    if let Some((revision, result, message)) = outcome.history() {
        let newest = previous.history.first();
        // A retry failing the same way is one entry, not five.
        if newest.is_none_or(|h| h.revision != revision || h.result != result) {
            let (approval, signed_by) = match outcome {
                Outcome::Done(done) => (
                    done.approval.as_deref().cloned(),
                    done.artifact.as_ref().and_then(|artifact| artifact.signed_by.clone()),
                ),
                _ => (None, None),
            };
            let time = now.0.to_string();
            let entry = HistoryEntry { revision, time, result, message, duration_seconds: took, approval, signed_by };
            status.history = plan::with_history(&previous, entry);
        }
    }
    status
}

/// `status` (as [`after`] made it, from `previous`) with the WatchRefused condition when
/// `refused` names watches the account may not make (a sentence each), without it when none.
pub fn with_refused_watches(
    mut status: EnvironmentSyncStatus,
    refused: &[String],
    previous: &EnvironmentSyncStatus,
    now: &Time,
) -> EnvironmentSyncStatus {
    status.conditions.retain(|c| c.type_ != WATCH_REFUSED);
    if !refused.is_empty() {
        let refusal =
            condition(WATCH_REFUSED, true, &Reason::Forbidden, refused.join("; "), status.observed_generation, now);
        status.conditions.push(carry_transition(refusal, &previous.conditions));
    }
    status
}

/// `2 drifted, 1 missing`, or `none`.
pub fn drift_summary(drifted: u32, missing: u32) -> DriftSummary {
    let summary = match (drifted, missing) {
        (0, 0) => "none".to_string(),
        (d, 0) => format!("{d} drifted"),
        (0, m) => format!("{m} missing"),
        (d, m) => format!("{d} drifted, {m} missing"),
    };
    DriftSummary { drifted, missing, summary }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::api::{EnvironmentSyncSpec, PushOutcome};

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn sync() -> EnvironmentSync {
        let spec: EnvironmentSyncSpec = serde_json::from_value(serde_json::json!({
            "source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}},
            "environments": ["dev", "prod"],
            "serviceAccountName": "deployer",
        }))
        .unwrap();
        let mut sync = EnvironmentSync::new("shop", spec);
        sync.metadata.generation = Some(4);
        sync
    }

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn env(name: &str, result: &str) -> EnvironmentStatus {
        EnvironmentStatus {
            name: name.into(),
            revision: Some(COMMIT.into()),
            result: result.into(),
            ..Default::default()
        }
    }

    fn done(work: Work, environments: Vec<EnvironmentStatus>) -> Outcome {
        Outcome::Done(Done::new(COMMIT.into(), work, environments))
    }

    #[test]
    fn a_window_holding_the_apply_says_which_and_until_when_and_an_awaited_approval_says_it_too() {
        let held = WindowHold {
            reason: "deny window \"0 22 * * *\" (UTC, 8h)".into(),
            until: Some("2026-11-28T06:00:00Z".into()),
        };
        let Outcome::Done(applied) = done(Work::Apply, vec![env("dev", "Applied")]) else { unreachable!() };
        let outcome = Outcome::Done(Done { held: Some(Box::new(held.clone())), ..applied.clone() });
        let (ready, reason, message) = outcome.ready();
        assert_eq!((ready, reason), (false, Reason::WindowClosed));
        assert_eq!(
            message,
            "deny window \"0 22 * * *\" (UTC, 8h) holds applies and approvals until 2026-11-28T06:00:00Z: revision \
             0123456789ab is applied then"
        );
        let mut before = sync();
        before.metadata.generation = Some(4);
        before.status = Some(EnvironmentSyncStatus { last_applied_generation: Some(3), ..Default::default() });
        let status = after(&before, &outcome, None, &time(1), 0.0);
        assert_eq!(status.held, Some(held.clone()));
        // Nothing was applied: the spec's new generation is still to apply when the window opens.
        assert_eq!((status.last_applied_generation, status.last_applied_revision.as_deref()), (Some(3), None));
        // A failure after it says nothing of the window any more.
        let failed = Outcome::Failed { reason: Reason::GitFetchFailed, message: "down".into(), revision: None };
        let before = EnvironmentSync { status: Some(status), ..sync() };
        assert_eq!(after(&before, &failed, None, &time(2), 0.0).held, None);
        // Waiting for an approval, the message says the window holds that too.
        let pending = PendingPlan { digest: "sha256:abc".into(), revision: COMMIT.into(), releases: Vec::new() };
        let awaiting = Outcome::Done(Done {
            environments: vec![env("dev", "AwaitingApproval")],
            pending: Some(pending),
            held: Some(Box::new(WindowHold { until: None, ..held })),
            ..applied
        });
        let (_, reason, message) = awaiting.ready();
        assert_eq!(reason, "AwaitingApproval");
        assert!(
            message.ends_with(
                "; deny window \"0 22 * * *\" (UTC, 8h) holds applies and approvals, and no opening was found ahead"
            ),
            "{message}"
        );
    }

    fn condition_of<'a>(status: &'a EnvironmentSyncStatus, type_: &str) -> Option<(&'a str, &'a str)> {
        status.conditions.iter().find(|c| c.type_ == type_).map(|c| (c.status.as_str(), c.reason.as_str()))
    }

    #[test]
    fn a_refused_watch_is_one_condition_kept_while_refused_and_gone_once_granted() {
        let refused =
            ["ServiceAccount app/deployer may not watch configmaps in namespace app (403 Forbidden: no)".to_string()];
        let previous = EnvironmentSyncStatus::default();
        let outcome = done(Work::Apply, vec![env("dev", "Applied"), env("prod", "Applied")]);
        let status = after(&sync(), &outcome, None, &time(1), 0.1);
        let first = with_refused_watches(status.clone(), &refused, &previous, &time(1));
        let refusals: Vec<_> = first.conditions.iter().filter(|c| c.type_ == WATCH_REFUSED).collect();
        assert_eq!(refusals.len(), 1, "{:?}", first.conditions);
        assert_eq!((refusals[0].status.as_str(), refusals[0].reason.as_str()), ("True", "Forbidden"));
        assert_eq!(refusals[0].message, refused[0]);
        // Still refused later: the same condition, its transition kept (no write needed).
        let again = with_refused_watches(status.clone(), &refused, &first, &time(2));
        assert_eq!(again.conditions, first.conditions);
        // Granted: gone; and Ready is untouched throughout.
        let granted = with_refused_watches(status.clone(), &[], &first, &time(3));
        assert!(granted.conditions.iter().all(|c| c.type_ != WATCH_REFUSED));
        assert_eq!(granted.conditions, status.conditions);
    }

    #[test]
    fn applied_everywhere_is_ready_at_the_revision() {
        let mut s = sync();
        let status =
            after(&s, &done(Work::Apply, vec![env("dev", "Applied"), env("prod", "Unchanged")]), None, &time(1), 2.0);
        assert_eq!(condition_of(&status, READY), Some(("True", "ReconciliationSucceeded")));
        assert_eq!(condition_of(&status, RECONCILING), None);
        assert_eq!(status.last_applied_revision.as_deref(), Some(COMMIT));
        assert_eq!(status.environments_ready.as_deref(), Some("2/2"));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(status.history.len(), 1);
        // The next interval finds it in sync: an equal status, so nothing is written.
        s.status = Some(status.clone());
        let again = after(
            &s,
            &done(Work::ReportDrift, vec![env("dev", "Applied"), env("prod", "Unchanged")]),
            None,
            &time(300),
            0.1,
        );
        assert_eq!(again, status);
    }

    #[test]
    fn a_failure_keeps_the_last_applied_revision_and_retries() {
        let mut s = sync();
        s.status = Some(after(
            &s,
            &done(Work::Apply, vec![env("dev", "Applied"), env("prod", "Applied")]),
            None,
            &time(1),
            1.0,
        ));
        let failed = Outcome::Failed {
            reason: Reason::GitUnreachable,
            message: "cannot reach https://git.example.org/shop.git".into(),
            revision: None,
        };
        let status = after(&s, &failed, None, &time(2), 1.0);
        assert_eq!(condition_of(&status, READY), Some(("False", "GitUnreachable")));
        assert_eq!(condition_of(&status, RECONCILING), Some(("True", "ProgressingWithRetry")));
        assert_eq!(condition_of(&status, STALLED), None, "an unreachable server may come back");
        assert_eq!(status.last_applied_revision.as_deref(), Some(COMMIT));
        // A host key or credentials that do not match: only a change helps, Stalled (and retried).
        let host_key = Outcome::Failed {
            reason: Reason::GitHostKeyMismatch,
            message: "git.example.org's host key is not in known_hosts".into(),
            revision: None,
        };
        let stalled = after(&s, &host_key, None, &time(2), 1.0);
        assert_eq!(condition_of(&stalled, READY), Some(("False", "GitHostKeyMismatch")));
        assert_eq!(condition_of(&stalled, STALLED), Some(("True", "GitHostKeyMismatch")));
        assert_eq!(condition_of(&stalled, RECONCILING), None);
        let mut partly = env("prod", "Failed");
        partly.message = Some("configmaps \"x\" is forbidden".into());
        let status = after(&s, &done(Work::Apply, vec![env("dev", "Applied"), partly]), None, &time(3), 1.0);
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "ApplyFailed");
        assert!(ready.message.contains("prod") && ready.message.contains("forbidden"), "{}", ready.message);
        assert_eq!(status.environments_ready.as_deref(), Some("1/2"));
    }

    #[test]
    fn a_failure_is_a_render_failure_only_when_every_failed_environment_failed_in_its_render() {
        let failed = |name: &str| EnvironmentStatus { message: Some(format!("{name} broke")), ..env(name, "Failed") };
        let reason = |environments: Vec<EnvironmentStatus>, unrendered: &[&str]| {
            let Outcome::Done(done) = done(Work::Apply, environments) else { unreachable!() };
            let unrendered = unrendered.iter().map(|name| name.to_string()).collect();
            Outcome::Done(Done { unrendered, ..done }).ready().1
        };
        // prod is skipped after dev, which did not render.
        assert_eq!(reason(vec![failed("dev"), env("prod", "Skipped")], &["dev"]), Reason::RenderFailed);
        assert_eq!(reason(vec![failed("dev"), failed("prod")], &["dev", "prod"]), Reason::RenderFailed);
        // One rendered and failed in its apply: an apply failure.
        assert_eq!(reason(vec![failed("dev"), failed("prod")], &["dev"]), Reason::ApplyFailed);
        assert_eq!(reason(vec![failed("dev"), env("prod", "Applied")], &[]), Reason::ApplyFailed);
        // Skipped only (held back): nothing failed to render.
        assert_eq!(reason(vec![env("dev", "Skipped")], &[]), Reason::ApplyFailed);
        let status = after(
            &sync(),
            &Outcome::Done(Done {
                unrendered: ["dev".to_string()].into(),
                ..Done::new(COMMIT.into(), Work::Apply, vec![failed("dev")])
            }),
            None,
            &time(1),
            0.1,
        );
        assert_eq!(condition_of(&status, READY), Some(("False", "RenderFailed")));
        assert_eq!(condition_of(&status, RECONCILING), Some(("True", "ProgressingWithRetry")));
        assert_eq!(status.history[0].result, Reason::RenderFailed);
    }

    #[test]
    fn an_invalid_spec_is_stalled_and_a_retry_failing_alike_adds_no_history() {
        let s = sync();
        let invalid = Outcome::Invalid { reason: Reason::ServiceAccountRequired, message: "set it".into() };
        let status = after(&s, &invalid, None, &time(1), 0.0);
        assert_eq!(condition_of(&status, STALLED), Some(("True", "ServiceAccountRequired")));
        let failed = |t| Outcome::Failed {
            reason: Reason::RenderFailed,
            message: format!("try {t}"),
            revision: Some(COMMIT.into()),
        };
        let mut s = sync();
        s.status = Some(after(&s, &failed(1), None, &time(1), 0.0));
        let status = after(&s, &failed(2), None, &time(2), 0.0);
        assert_eq!(status.history.len(), 1);
        assert_eq!(status.conditions[0].last_transition_time, time(1), "the transition time stays");
    }

    #[test]
    fn a_pending_plan_waits_for_approval_without_retrying() {
        let s = sync();
        let pending = PendingPlan { digest: "sha256:abc".into(), revision: COMMIT.into(), releases: Vec::new() };
        let outcome = Outcome::Done(Done {
            pending: Some(pending),
            ..Done::new(COMMIT.into(), Work::Apply, vec![env("dev", "AwaitingApproval")])
        });
        let status = after(&s, &outcome, Some("now".into()), &time(1), 0.5);
        assert_eq!(condition_of(&status, READY), Some(("False", "AwaitingApproval")));
        assert_eq!(condition_of(&status, RECONCILING), None);
        assert!(status.conditions[0].message.contains("sha256:abc"));
        assert_eq!(status.last_applied_revision, None);
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("now"));
    }

    #[test]
    fn an_apply_in_progress_is_reconciling_and_not_ready_until_it_ends() {
        let mut s = sync();
        s.status = Some(after(&s, &done(Work::Apply, vec![env("dev", "Applied")]), None, &time(1), 1.0));
        let next = "fedcba9876543210fedcba9876543210fedcba98";
        let applying =
            Working { revision: next.into(), message: "applying revision fedcba9 to environment `dev`".into() };
        let status = working(&s, s.status.as_ref().unwrap(), &applying, &time(2));
        assert_eq!(condition_of(&status, READY), Some(("Unknown", "Progressing")));
        assert_eq!(condition_of(&status, RECONCILING), Some(("True", "Progressing")));
        assert_eq!(status.conditions[0].message, applying.message);
        assert_eq!(status.conditions[0].last_transition_time, time(2));
        assert_eq!(status.last_attempted_revision.as_deref(), Some(next));
        assert_eq!(status.last_applied_revision.as_deref(), Some(COMMIT), "still what the cluster holds");
        assert_eq!(status.history.len(), 1);
        // Waiting for the lock changes the message, not when the conditions turned.
        let waiting = Working { message: format!("{}: waiting for the lock", applying.message), ..applying };
        let status = working(&s, &status, &waiting, &time(3));
        assert_eq!(status.conditions[0].message, waiting.message);
        assert_eq!(status.conditions[0].last_transition_time, time(2));
    }

    #[test]
    fn a_promotions_condition_stays_until_the_next_promotion_and_leaves_ready_alone() {
        let mut s = sync();
        let refused = Promoted {
            passed: false,
            reason: PushOutcome::GatesFailed.into(),
            message: "nothing pushed: prod from staging: gate `soak` failed".into(),
            status: PromotionStatus {
                push: crate::gitops::api::PushStatus { last_attempt_time: "t1".into(), ..Default::default() },
                ..Default::default()
            },
            pushed: None,
        };
        let Outcome::Done(mut promoting) = done(Work::Apply, vec![env("dev", "Applied")]) else { unreachable!() };
        promoting.promotion = Some(Box::new(refused));
        let status = after(&s, &Outcome::Done(promoting), None, &time(1), 1.0);
        assert_eq!(condition_of(&status, READY), Some(("True", "ReconciliationSucceeded")));
        assert_eq!(condition_of(&status, PROMOTED), Some(("False", "GatesFailed")));
        assert_eq!(status.promotion.as_ref().map(|p| p.push.last_attempt_time.as_str()), Some("t1"));
        s.status = Some(status.clone());
        // A reconcile that promoted nothing (not due), and an apply in progress, keep it.
        let status = after(&s, &done(Work::ReportDrift, vec![env("dev", "Applied")]), None, &time(2), 0.1);
        assert_eq!(condition_of(&status, PROMOTED), Some(("False", "GatesFailed")));
        assert_eq!(status.conditions.iter().find(|c| c.type_ == PROMOTED).unwrap().last_transition_time, time(1));
        let applying = Working { revision: COMMIT.into(), message: "applying".into() };
        let status = working(&s, &status, &applying, &time(3));
        assert_eq!(condition_of(&status, PROMOTED), Some(("False", "GatesFailed")));
    }

    #[test]
    fn drift_is_summarised_for_kubectl_get() {
        assert_eq!(drift_summary(0, 0).summary, "none");
        assert_eq!(drift_summary(2, 1).summary, "2 drifted, 1 missing");
        assert_eq!(drift_summary(0, 3).summary, "3 missing");
    }
}
