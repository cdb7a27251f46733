//! Applying a plan to the cluster. Releases go in `needs` order, independent ones in parallel;
//! each release's objects go in apply phases (the book's concepts/apply.md), in parallel within a phase, with
//! CRDs Established before any custom resource. Then readiness (`--wait`), prune, and the
//! release record. Nothing here prints: the caller hears about progress through [`Event`]s and
//! gets a [`Report`] that says, object by object, what was and was not done.

mod hooks;
mod records;

pub use hooks::HookResult;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};

use crate::schedule::{NotRun, Schedule};

use crate::observe::Live;
use weaver_cluster::{ApplyError, Cluster, ObjectRef, ServedKind, WaitOutcome, WaitProgress};
use weaver_core::error::Error;
use weaver_core::manifest::{ObjectKey, Phase, phase};
use weaver_plan::plan::{Action, ObjectPlan, Plan};
use weaver_plan::release::adopt::HelmRelease;
use weaver_plan::release::record::{AdoptedFrom, HookOutcome, Records, Status, TakenFrom};
use weaver_project::HealthCheck;
use weaver_project::RenderedRelease;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub environment: String,
    /// The environment's lock namespace, labelled on the records written.
    pub lock_namespace: String,
    /// Who applies, recorded in each revision.
    pub applied_by: String,
    /// A server-side dry run: nothing is written, not even a record.
    pub dry_run: bool,
    pub force_conflicts: bool,
    pub prune: bool,
    pub concurrency: usize,
    /// Wait for readiness of what was applied.
    pub wait: bool,
    /// Bounds each release's waiting (CRDs Established, readiness).
    pub timeout: Duration,
    /// Each release's `healthChecks` (the environment's among them), by release name: what
    /// ready means for the kinds they name.
    pub health_checks: HashMap<String, Vec<HealthCheck>>,
    /// Where the applied definition came from, for the record.
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    /// The revision a rollback re-applies.
    pub rollback_of: Option<u32>,
    /// A drift correction: each release's last deployed revision is re-applied (its record
    /// says which), and no hook runs.
    pub correction: bool,
    /// The values flags (`--set …`) the chart releases were rendered with, as given.
    pub overrides: Vec<String>,
    /// Objects holding a decrypted value, recorded as `sensitive`.
    pub sensitive: HashSet<ObjectKey>,
    /// Delete the record Secrets of the Helm release a release adopted, once it applied.
    pub forget_helm_release: bool,
    /// Apply objects labelled as another environment's, which are otherwise refused before
    /// anything is written (see `Plan::refuse_taking`): they become this environment's.
    pub take_ownership: bool,
    /// The key that signs each record written (`WEAVER_RECORD_KEY_FILE`), if any.
    pub record_key: Option<weaver_secrets::record_key::RecordKey>,
}

/// One release to apply.
#[derive(Debug, Clone)]
pub struct ReleaseInput<'r> {
    pub rendered: &'r RenderedRelease,
    /// Releases of this run that must be applied first.
    pub needs: Vec<String>,
    pub create_namespace: bool,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// No longer desired, but left in place (`--no-prune`).
    Kept,
    Failed,
    NotApplied,
}

#[derive(Debug, Clone)]
pub struct ObjectResult {
    pub release: String,
    pub api_version: String,
    pub key: ObjectKey,
    pub outcome: Outcome,
    /// Why it failed or was not applied, or a note on a success.
    pub message: Option<String>,
    /// How many field changes `ignoreDifferences` kept out: the apply sent the live values.
    pub ignored: usize,
}

#[derive(Debug, Clone)]
pub struct ReleaseResult {
    pub name: String,
    pub namespace: String,
    /// The revision recorded, if any (none on a dry run or when nothing changed).
    pub revision: Option<u32>,
    pub status: Option<Status>,
    pub rollback_of: Option<u32>,
    /// Why the release failed or was not applied.
    pub error: Option<String>,
    pub objects: Vec<ObjectResult>,
    /// The hooks this apply ran (or did not run), in order.
    pub hooks: Vec<HookResult>,
    /// The Helm release it adopts (or adopted before, when only its records were left).
    pub helm: Option<HelmAdoption>,
}

/// What an apply did about the Helm release its release adopts (`weaver_plan::release::adopt`).
#[derive(Debug, Clone)]
pub struct HelmAdoption {
    pub helm: HelmRelease,
    /// Weaver had applied the release before: there was nothing left to take over.
    pub adopted_before: bool,
    /// Objects Helm installed that this apply took over (applied with force).
    pub taken: usize,
    /// Objects Helm installed that were to be taken over and were not (failed, not applied).
    pub not_taken: usize,
    /// Objects Helm installed (of the kinds the release renders) that the release no longer
    /// renders: left in place, still Helm's.
    pub left: usize,
    pub records: HelmRecords,
}

/// What became of the Helm release's record Secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum HelmRecords {
    /// Left in place (no `--forget-helm-release`).
    Kept,
    /// Deleted, every revision (or, on a dry run, would be).
    Deleted { secrets: Vec<String> },
    /// Not deleted, although asked: the release did not apply completely.
    NotDeleted { reason: String },
    /// Deleting failed part-way: these were deleted, the rest were not.
    Failed { error: String, secrets: Vec<String> },
}

impl ReleaseResult {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Progress, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    NamespaceCreated(&'a str),
    Object(&'a ObjectResult),
    /// A hook is created and waited for.
    HookStarted {
        release: &'a str,
        event: weaver_helm::hooks::Event,
        key: &'a ObjectKey,
    },
    /// A hook is done, failed, or was not run.
    Hook(&'a HookResult),
    /// Waiting for CRDs to be Established or objects to be ready.
    WaitStarted {
        release: &'a str,
    },
    WaitProgress {
        release: &'a str,
        progress: &'a WaitProgress<'a>,
    },
    WaitFinished {
        release: &'a str,
        outcome: &'a WaitOutcome,
    },
    Release(&'a ReleaseResult),
}

/// Everything an apply did, release by release.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub releases: Vec<ReleaseResult>,
    pub interrupted: bool,
    /// Requests sent more than once because the server failed, refused or throttled them
    /// (discovery, the lock, reads and writes since connecting): a blip the apply rode out.
    pub retried_requests: u64,
    /// The holder this apply took the environment's lock from, which had stopped renewing it
    /// without letting go: the apply it was making did not finish.
    pub lock_taken_over: Option<LockTakenOver>,
}

/// An apply's lock, taken from a holder that stopped without letting go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockTakenOver {
    pub holder: String,
    /// When it last renewed the lock (RFC 3339).
    pub renewed: String,
}

impl std::fmt::Display for LockTakenOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the lock was taken over from {}, which stopped renewing it at {} without letting go: its apply did not \
             finish (stopped, killed, out of memory or cut off from the server)",
            self.holder, self.renewed
        )
    }
}

/// The counts an apply ends with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub created: usize,
    pub configured: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub kept: usize,
    pub failed: usize,
    pub not_applied: usize,
    /// Helm hooks that ran to completion, failed, or were not run.
    pub hooks_succeeded: usize,
    pub hooks_failed: usize,
    pub hooks_not_run: usize,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for object in self.releases.iter().flat_map(|r| &r.objects) {
            let count = match object.outcome {
                Outcome::Created => &mut totals.created,
                Outcome::Configured => &mut totals.configured,
                Outcome::Unchanged => &mut totals.unchanged,
                Outcome::Pruned => &mut totals.pruned,
                Outcome::Kept => &mut totals.kept,
                Outcome::Failed => &mut totals.failed,
                Outcome::NotApplied => &mut totals.not_applied,
            };
            *count += 1;
        }
        for hook in self.releases.iter().flat_map(|r| &r.hooks) {
            let count = match hook.outcome {
                HookOutcome::Succeeded => &mut totals.hooks_succeeded,
                HookOutcome::Failed => &mut totals.hooks_failed,
                HookOutcome::NotRun => &mut totals.hooks_not_run,
            };
            *count += 1;
        }
        totals
    }

    pub fn failed(&self) -> bool {
        self.interrupted || self.releases.iter().any(ReleaseResult::failed)
    }
}

/// What one run shares between its releases.
struct Run<'a> {
    cluster: &'a Cluster,
    options: &'a ApplyOptions,
    /// Each release's record Secrets, by (namespace, release), as observed before the apply.
    records: HashMap<(&'a str, &'a str), Vec<&'a Value>>,
    /// Each release's newest deployed record, as observed before the apply.
    last_deployed: &'a Records,
    /// The releases adopted from Helm.
    adoptions: Vec<&'a weaver_plan::plan::Adoption>,
    permits: Semaphore,
    interrupted: &'a AtomicBool,
    on_event: &'a (dyn Fn(Event<'_>) + Sync),
    /// Kinds of CRDs this run established, which discovery (run before) did not know.
    new_kinds: Mutex<HashMap<(String, String), ServedKind>>,
    /// Each release namespace's state, found (or the namespace created) once for all the
    /// releases in it, however many start at once.
    namespaces: Mutex<HashMap<String, Arc<OnceCell<NamespaceState>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamespaceState {
    Exists,
    /// Missing; a dry run would create it.
    WouldCreate,
    /// Missing, and the release does not create it.
    Missing,
}

/// Applies `plan` (made from `releases` against `live`). Never fails as a whole once started:
/// failures are in the report, object by object.
pub async fn apply(
    cluster: &Cluster,
    releases: Vec<ReleaseInput<'_>>,
    plan: &Plan,
    live: &Live,
    options: &ApplyOptions,
    interrupted: &AtomicBool,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Report {
    let run = Run {
        cluster,
        options,
        records: records::by_release(&live.objects),
        last_deployed: &live.records,
        adoptions: plan.adoptions.iter().collect(),
        permits: Semaphore::new(options.concurrency.max(1)),
        interrupted,
        on_event,
        new_kinds: Mutex::default(),
        namespaces: Mutex::default(),
    };
    let mut by_release: HashMap<&str, Vec<&ObjectPlan>> = HashMap::new();
    for object in &plan.objects {
        by_release.entry(object.release.as_str()).or_default().push(object);
    }
    // Each release waits for the releases it needs among these; the others this run does not apply.
    let index: HashMap<&str, usize> = releases.iter().enumerate().map(|(i, r)| (r.rendered.name.as_str(), i)).collect();
    let blockers: Vec<Vec<usize>> = releases
        .iter()
        .map(|r| r.needs.iter().filter_map(|need| index.get(need.as_str()).copied()).collect())
        .collect();
    let objects_of =
        |input: &ReleaseInput<'_>| by_release.get(input.rendered.name.as_str()).cloned().unwrap_or_default();
    let run = &run;
    let schedule = Schedule { blockers: &blockers, parallel: usize::MAX };
    let ran = schedule
        .run(
            |_| interrupted.load(Ordering::SeqCst).then(|| "the apply was interrupted before it started".to_string()),
            |i| {
                let objects = objects_of(&releases[i]);
                let input = &releases[i];
                async move { run.release(input, &objects).await }
            },
            |i, why| {
                let why = match why {
                    NotRun::Blocked { by, .. } => {
                        format!("it needs release `{}`, which failed", releases[by].rendered.name)
                    }
                    NotRun::Held(why) => why,
                };
                run.skip(&releases[i], &objects_of(&releases[i]), why)
            },
            |result| result.failed().then_some("failed"),
            |_, result| (run.on_event)(Event::Release(result)),
        )
        .await;
    let mut results: Vec<Option<ReleaseResult>> = ran.results.into_iter().map(Some).collect();
    Report {
        releases: ran.order.iter().filter_map(|&i| results[i].take()).collect(),
        interrupted: interrupted.load(Ordering::SeqCst),
        retried_requests: cluster.retried_requests(),
        lock_taken_over: None,
    }
}

/// The objects of `planned` that another environment owned and `results` says were applied.
fn taken_from(planned: &[&ObjectPlan], results: &[ObjectResult]) -> Vec<TakenFrom> {
    let applied: HashSet<&ObjectKey> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Created | Outcome::Configured))
        .map(|r| &r.key)
        .collect();
    let taken = planned.iter().filter(|o| applied.contains(&o.key));
    taken
        .filter_map(|o| {
            let owner = o.owner.as_ref()?;
            Some(TakenFrom {
                api_version: o.api_version.clone(),
                kind: o.key.kind.clone(),
                namespace: o.key.namespace.clone(),
                name: o.key.name.clone(),
                environment: owner.environment.clone(),
                release: owner.release.clone(),
            })
        })
        .collect()
}

/// What an apply says of an object it took from another environment.
fn taken_note(object: &ObjectPlan) -> Option<String> {
    let owner = object.owner.as_ref()?;
    Some(format!("taken from environment `{}` (release {})", owner.environment, owner.release))
}

fn result_of(object: &ObjectPlan, outcome: Outcome, message: Option<String>) -> ObjectResult {
    ObjectResult {
        release: object.release.clone(),
        api_version: object.api_version.clone(),
        key: object.key.clone(),
        outcome,
        message,
        ignored: object.ignored,
    }
}

/// An error as one line: the message, then how to fix it.
fn describe(err: &Error) -> String {
    match &err.help {
        Some(help) => format!("{err} ({help})"),
        None => err.to_string(),
    }
}

fn phase_of(object: &ObjectPlan) -> Phase {
    phase(&object.api_version, &object.key.kind)
}

impl Run<'_> {
    fn emit(&self, result: &ObjectResult) {
        (self.on_event)(Event::Object(result));
    }

    /// A release that is not applied at all: every object says why.
    fn skip(&self, input: &ReleaseInput<'_>, objects: &[&ObjectPlan], why: String) -> ReleaseResult {
        let objects = objects.iter().map(|o| result_of(o, Outcome::NotApplied, Some(why.clone()))).collect();
        ReleaseResult {
            name: input.rendered.name.clone(),
            namespace: input.rendered.namespace.clone(),
            revision: None,
            status: None,
            rollback_of: self.options.rollback_of,
            helm: self.adoption(&input.rendered.name).map(|adoption| HelmAdoption {
                helm: adoption.helm.clone(),
                adopted_before: adoption.adopted_before,
                taken: 0,
                not_taken: adoption.objects,
                left: adoption.left.len(),
                records: match self.options.forget_helm_release {
                    true => {
                        HelmRecords::NotDeleted { reason: format!("release `{}` was not applied", input.rendered.name) }
                    }
                    false => HelmRecords::Kept,
                },
            }),
            error: Some(format!("not applied: {why}")),
            objects,
            hooks: Vec::new(),
        }
    }

    async fn release(&self, input: &ReleaseInput<'_>, objects: &[&ObjectPlan]) -> ReleaseResult {
        let name = &input.rendered.name;
        // An object adopted from Helm is sent even when nothing else changes: the apply takes
        // its fields over from Helm's manager and labels it as weaver's.
        let mut changes: Vec<&ObjectPlan> = objects
            .iter()
            .copied()
            .filter(|o| matches!(o.action, Action::Create | Action::Update) || o.adopt)
            .collect();
        changes.sort_by_key(|o| phase_of(o));
        let mut removals: Vec<&ObjectPlan> = objects.iter().copied().filter(|o| o.action == Action::Delete).collect();
        removals.sort_by_key(|o| std::cmp::Reverse(phase_of(o)));

        let key = (input.rendered.namespace.as_str(), name.as_str());
        let secrets = self.records.get(&key).map_or(&[][..], Vec::as_slice);
        let history =
            records::History::of(secrets, self.last_deployed.get(name).map(|r| &**r), input, &self.options.environment);
        let mut results: Vec<ObjectResult> = objects
            .iter()
            .filter(|o| o.action == Action::Unchanged && !o.adopt)
            .map(|o| result_of(o, Outcome::Unchanged, None))
            .collect();
        let mut error = None;

        // What the release's record holds: the desired objects as the plan prepared them, and
        // the hooks as the server stores them.
        let desired: Vec<&Value> = objects.iter().filter_map(|o| o.desired.as_deref()).collect();
        let hooks: Vec<Value> =
            input.rendered.hooks.iter().map(|h| weaver_plan::diff::as_stored(h.object.clone())).collect();
        let writes =
            !changes.is_empty() || !removals.is_empty() || history.needs_record(&desired, &hooks, self.options);
        if writes && let Err(err) = self.ensure_namespace(input).await {
            error = Some(describe(&err));
        }
        // Hooks run when the release changes: as `helmfile apply` upgrades only releases
        // with a diff. Removing a release runs the hooks its last record kept.
        // A release adopted from Helm is deployed already, as the plan says.
        let lifecycle = weaver_helm::hooks::Lifecycle::of(
            input.rendered.installed,
            history.last_deployed().is_some() || self.adoption(&input.rendered.name).is_some(),
            self.options.rollback_of.is_some(),
        );
        let running: &[Value] = match (writes, lifecycle) {
            // A correction puts objects back; it is no install, upgrade or rollback.
            _ if self.options.correction => &[],
            (false, _) => &[],
            (true, weaver_helm::hooks::Lifecycle::Delete) => {
                history.last_deployed().map_or(&[][..], |r| r.hooks.as_slice())
            }
            (true, _) => &hooks,
        };
        let [before, after] = lifecycle.events();
        let (mut hook_results, failed) = match &error {
            None => self.run_hooks(name, before, running).await,
            Some(why) => (self.hooks_not_run(name, before, running, why), None),
        };
        error = error.or(failed);
        // Apply phase by phase; a failure stops the release before its next phase.
        for batch in changes.chunk_by(|a, b| phase_of(a) == phase_of(b)) {
            if let Some(why) = &error {
                results.extend(batch.iter().map(|o| self.not_applied(o, why)));
                continue;
            }
            let outcomes = self.told_in_order(batch.iter().map(|o| self.apply_object(o)).collect()).await;
            let failures = outcomes.iter().filter(|r| r.outcome == Outcome::Failed).count();
            let interrupted = outcomes.iter().any(|r| r.outcome == Outcome::NotApplied);
            results.extend(outcomes);
            if failures > 0 {
                error = Some(format!("{failures} object(s) failed to apply"));
            } else if interrupted {
                error = Some("the apply was interrupted".to_string());
            } else if phase_of(batch[0]) == Phase::CustomResourceDefinitions
                && let Err(err) = self.establish(name, batch).await
            {
                error = Some(describe(&err));
            }
        }

        if error.is_none() && self.options.wait && !self.options.dry_run {
            // Without an error, every change was created or configured.
            if let Err(err) = self.wait_ready(name, &changes).await {
                error = Some(describe(&err));
            }
        }

        // Prune only after everything desired is in place (and ready, with --wait), in reverse
        // phase order; what is not pruned stays in the record, so a later apply prunes it.
        let mut kept = Vec::new();
        for batch in removals.chunk_by(|a, b| phase_of(a) == phase_of(b)) {
            let outcomes: Vec<ObjectResult> = match &error {
                Some(why) => batch.iter().map(|o| self.not_applied(o, &format!("not pruned: {why}"))).collect(),
                None if !self.options.prune => batch
                    .iter()
                    .map(|o| {
                        let why = "no longer desired; kept because of --no-prune";
                        let result = result_of(o, Outcome::Kept, Some(why.into()));
                        self.emit(&result);
                        result
                    })
                    .collect(),
                None => self.told_in_order(batch.iter().map(|o| self.prune_object(o)).collect()).await,
            };
            if let Some(failed) = outcomes.iter().find(|r| r.outcome == Outcome::Failed) {
                error = Some(format!("pruning failed: {}", failed.message.clone().unwrap_or_default()));
            }
            kept.extend(
                outcomes
                    .iter()
                    .filter(|r| r.outcome == Outcome::Kept || r.outcome == Outcome::Failed)
                    .map(|r| r.key.clone()),
            );
            results.extend(outcomes);
        }

        let (ran, failed) = match &error {
            None => self.run_hooks(name, after, running).await,
            Some(why) => (self.hooks_not_run(name, after, running, why), None),
        };
        hook_results.extend(ran);
        error = error.or(failed);

        let mut result = ReleaseResult {
            name: name.clone(),
            namespace: input.rendered.namespace.clone(),
            revision: None,
            status: None,
            rollback_of: self.options.rollback_of,
            error,
            objects: results,
            hooks: hook_results,
            helm: None,
        };
        let adoption = self.adoption(name);
        if !self.options.dry_run {
            let mut record = history.next_record(&desired, &hooks, &result, &kept, self.options);
            if let (Some(record), Some(adoption)) = (record.as_mut(), adoption.filter(|a| !a.adopted_before)) {
                record.adopted_from = Some(AdoptedFrom {
                    helm_release: adoption.helm.name.clone(),
                    helm_revision: adoption.helm.revision,
                });
            }
            if let Some(record) = record.as_mut() {
                record.taken_from = taken_from(objects, &result.objects);
            }
            if let Some(record) = record {
                // The record's requests go one after another, holding one permit.
                let permit = self.permits.acquire().await.expect("the semaphore is never closed");
                let written = history.write(self.cluster, &record).await;
                drop(permit);
                if let Err(err) = written {
                    let recorded = format!("revision {} could not be recorded: {}", record.revision, describe(&err));
                    result.error = Some(match result.error.take() {
                        Some(first) => format!("{first}; {recorded}"),
                        None => recorded,
                    });
                } else {
                    result.revision = Some(record.revision);
                    result.status = Some(record.status);
                }
            }
        }
        if let Some(adoption) = adoption {
            let helm = self.finish_adoption(adoption, objects, &result).await;
            if let HelmRecords::Failed { error, .. } = &helm.records {
                result.error =
                    Some(format!("deleting the records of Helm release `{}` failed: {error}", helm.helm.name));
            }
            result.helm = Some(helm);
        }
        result
    }

    fn adoption(&self, release: &str) -> Option<&weaver_plan::plan::Adoption> {
        self.adoptions.iter().copied().find(|a| a.release == release)
    }

    /// Says what the apply took over from the Helm release `adoption` names and, with
    /// `--forget-helm-release`, deletes its records: only once the release applied completely
    /// (and was recorded), since a rerun after a failure must still find what Helm installed.
    async fn finish_adoption(
        &self,
        adoption: &weaver_plan::plan::Adoption,
        objects: &[&ObjectPlan],
        result: &ReleaseResult,
    ) -> HelmAdoption {
        let adopted: HashSet<&ObjectKey> = objects.iter().filter(|o| o.adopt).map(|o| &o.key).collect();
        let taken = result
            .objects
            .iter()
            .filter(|o| adopted.contains(&o.key) && matches!(o.outcome, Outcome::Configured | Outcome::Created))
            .count();
        let records = if !self.options.forget_helm_release {
            HelmRecords::Kept
        } else if let Some(error) = &result.error {
            HelmRecords::NotDeleted { reason: format!("release `{}` did not apply completely: {error}", result.name) }
        } else {
            self.forget(&adoption.helm).await
        };
        HelmAdoption {
            helm: adoption.helm.clone(),
            adopted_before: adoption.adopted_before,
            taken,
            not_taken: adopted.len() - taken,
            left: adoption.left.len(),
            records,
        }
    }

    /// Deletes every record Secret of `helm` (a server dry run with `--dry-run`).
    async fn forget(&self, helm: &HelmRelease) -> HelmRecords {
        let Ok(served) = self.cluster.resolve("v1", "Secret") else {
            return HelmRecords::NotDeleted { reason: "the cluster does not serve v1 Secret".into() };
        };
        let mut deleted = Vec::new();
        for secret in &helm.secrets {
            let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
            match self.cluster.delete(&served, Some(&helm.namespace), secret, self.options.dry_run).await {
                Ok(_) => deleted.push(secret.clone()),
                Err(err) => return HelmRecords::Failed { error: describe(&err), secrets: deleted },
            }
        }
        HelmRecords::Deleted { secrets: deleted }
    }

    /// Runs a phase's objects at once (the permits bound how many) and tells each result in the
    /// phase's order, as soon as it and those before it are done: what an apply prints is the
    /// same whichever request the server answers first.
    async fn told_in_order<F: std::future::Future<Output = ObjectResult>>(
        &self,
        mut done: futures::stream::FuturesOrdered<F>,
    ) -> Vec<ObjectResult> {
        use futures::StreamExt;
        let mut results = Vec::with_capacity(done.len());
        while let Some(result) = done.next().await {
            self.emit(&result);
            results.push(result);
        }
        results
    }

    /// An object not sent, told at once (it waits on no request).
    fn not_applied(&self, object: &ObjectPlan, why: &str) -> ObjectResult {
        let result = result_of(object, Outcome::NotApplied, Some(why.to_string()));
        self.emit(&result);
        result
    }

    /// How the cluster serves an object's kind, including kinds of CRDs established this run.
    fn served(&self, api_version: &str, kind: &str) -> Option<ServedKind> {
        self.cluster.resolve(api_version, kind).ok().or_else(|| {
            self.new_kinds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&(api_version.to_string(), kind.to_string()))
                .cloned()
        })
    }

    /// Applies one object; the result is not told here (`told_in_order` tells it).
    async fn apply_object(&self, object: &ObjectPlan) -> ObjectResult {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        if self.interrupted.load(Ordering::SeqCst) {
            return result_of(object, Outcome::NotApplied, Some("the apply was interrupted".into()));
        }
        let desired = object.to_send().expect("creates and updates are desired");
        let Some(served) = self.served(&object.api_version, &object.key.kind) else {
            let why = format!("the cluster does not serve {} {}", object.api_version, object.key.kind);
            return result_of(object, Outcome::Failed, Some(why));
        };
        let applied = if object.action == Action::Create { Outcome::Created } else { Outcome::Configured };
        let options = self.options;
        if options.dry_run && self.cluster.resolve(&object.api_version, &object.key.kind).is_err() {
            let why = "its CRD is created by this apply, so the dry run could not validate it";
            return result_of(object, applied, Some(why.to_string()));
        }
        let force = options.force_conflicts || object.adopt;
        match self.cluster.apply(desired, &served, options.dry_run, force).await {
            Ok(_) => result_of(object, applied, taken_note(object)),
            Err(ApplyError::Conflict(message)) => result_of(
                object,
                Outcome::Failed,
                Some(format!(
                    "{message} (another field manager owns these fields: rerun with --force-conflicts to take them)"
                )),
            ),
            Err(ApplyError::NotFound(message)) => {
                let namespace = object.key.namespace.as_deref().unwrap_or_default();
                let state = self
                    .namespaces
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(namespace)
                    .and_then(|cell| cell.get().copied());
                match state {
                    Some(NamespaceState::WouldCreate) => result_of(
                        object,
                        applied,
                        Some(format!("namespace {namespace} does not exist yet, so the dry run could not validate it")),
                    ),
                    Some(NamespaceState::Missing) => result_of(
                        object,
                        Outcome::Failed,
                        Some(format!(
                            "namespace {namespace} does not exist, and the release has createNamespace: false"
                        )),
                    ),
                    _ => result_of(object, Outcome::Failed, Some(message)),
                }
            }
            Err(ApplyError::Other(err)) => result_of(object, Outcome::Failed, Some(describe(&err))),
        }
    }

    /// Deletes one pruned object; the result is not told here (`told_in_order` tells it).
    async fn prune_object(&self, object: &ObjectPlan) -> ObjectResult {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        if self.interrupted.load(Ordering::SeqCst) {
            return result_of(object, Outcome::NotApplied, Some("not pruned: the apply was interrupted".into()));
        }
        match self.served(&object.api_version, &object.key.kind) {
            // A kind the cluster no longer serves has no objects left to delete.
            None => result_of(object, Outcome::Pruned, Some("its kind is no longer served".into())),
            Some(served) => {
                let namespace = object.key.namespace.as_deref();
                match self.cluster.delete(&served, namespace, &object.key.name, self.options.dry_run).await {
                    Ok(_) => result_of(object, Outcome::Pruned, None),
                    Err(err) => result_of(object, Outcome::Failed, Some(describe(&err))),
                }
            }
        }
    }

    /// Makes sure the release namespace exists, creating it unless the release opted out. The
    /// first release of a namespace finds out (and says when it is missing); the others wait
    /// for its answer.
    async fn ensure_namespace(&self, input: &ReleaseInput<'_>) -> weaver_core::Result<()> {
        let namespace = &input.rendered.namespace;
        let cell = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(namespace.clone())
            .or_default()
            .clone();
        let mut first = false;
        let state = *cell
            .get_or_try_init(|| {
                first = true;
                self.namespace_state(input)
            })
            .await?;
        if first && state == NamespaceState::Missing {
            return Err(Error::new(format!(
                "namespace {namespace} does not exist, and release `{}` has createNamespace: false",
                input.rendered.name
            ))
            .with_help("create the namespace, or let weaver create it (remove createNamespace: false)"));
        }
        Ok(())
    }

    async fn namespace_state(&self, input: &ReleaseInput<'_>) -> weaver_core::Result<NamespaceState> {
        let namespace = &input.rendered.namespace;
        let served = self
            .cluster
            .resolve("v1", "Namespace")
            .map_err(|_| Error::new("the cluster does not serve v1 Namespace"))?;
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        Ok(if self.cluster.get(&served, None, namespace).await?.is_some() {
            NamespaceState::Exists
        } else if !input.create_namespace {
            NamespaceState::Missing
        } else if self.options.dry_run {
            NamespaceState::WouldCreate
        } else {
            create_namespace(self.cluster, &served, namespace).await?;
            (self.on_event)(Event::NamespaceCreated(namespace));
            NamespaceState::Exists
        })
    }

    /// Waits until the CRDs just applied are Established, then learns their kinds.
    async fn establish(&self, release: &str, crds: &[&ObjectPlan]) -> weaver_core::Result<()> {
        // A dry run creates no CRD, so there is nothing to wait for; its kinds are still
        // learnt, so their resources are reported rather than taken for unknown kinds.
        if !self.options.dry_run {
            self.wait_ready(release, crds).await?;
        }
        for crd in crds {
            let desired = crd.desired.as_ref().expect("applied CRDs are desired");
            self.new_kinds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(weaver_cluster::served_kinds_of_crd(desired));
        }
        Ok(())
    }

    /// Waits until `objects` are ready (`--timeout`), or says which are not and why. Ctrl-C
    /// ends the wait.
    async fn wait_ready(&self, release: &str, objects: &[&ObjectPlan]) -> weaver_core::Result<()> {
        let targets: Vec<(ObjectRef, ServedKind)> = objects
            .iter()
            .filter_map(|o| {
                let served = self.served(&o.api_version, &o.key.kind)?;
                Some((ObjectRef::of(o.desired.as_ref()?), served))
            })
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        (self.on_event)(Event::WaitStarted { release });
        let checks = self.options.health_checks.get(release).map_or(&[][..], Vec::as_slice);
        let waiting =
            self.cluster.wait_ready(&targets, checks, self.options.timeout, self.options.concurrency, |progress| {
                (self.on_event)(Event::WaitProgress { release, progress })
            });
        let outcome = tokio::select! {
            outcome = waiting => outcome?,
            () = interruption(self.interrupted) => {
                return Err(Error::new("the apply was interrupted while waiting for readiness"));
            }
        };
        (self.on_event)(Event::WaitFinished { release, outcome: &outcome });
        outcome.error().map_or(Ok(()), Err)
    }
}

/// Creates namespace `namespace` (`served`: the cluster's v1 Namespace), as an apply creates a
/// release's.
async fn create_namespace(cluster: &Cluster, served: &ServedKind, namespace: &str) -> weaver_core::Result<()> {
    let object = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    match cluster.apply(&object, served, false, false).await {
        Ok(_) => Ok(()),
        Err(ApplyError::Conflict(m) | ApplyError::NotFound(m)) => {
            Err(Error::new(format!("creating namespace {namespace}: {m}")))
        }
        Err(ApplyError::Other(err)) => Err(err),
    }
}

/// Makes the namespace of environment `env`'s lock when it is missing and a release of the
/// environment that creates its namespace goes there (`weaver init` keeps an environment's lock
/// in its own namespace, which its first apply makes); told as the apply tells the namespaces
/// it creates. Anything else missing is left for the lock to name.
pub async fn ensure_lock_namespace(
    cluster: &Cluster,
    env: &weaver_project::environment::Environment,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> weaver_core::Result<()> {
    let namespace = env.lock_namespace.as_str();
    if !env.releases.iter().any(|r| r.namespace == namespace && r.create_namespace && r.installed) {
        return Ok(());
    }
    let Ok(served) = cluster.resolve("v1", "Namespace") else { return Ok(()) };
    if cluster.get(&served, None, namespace).await?.is_none() {
        create_namespace(cluster, &served, namespace).await?;
        on_event(Event::NamespaceCreated(namespace));
    }
    Ok(())
}

/// Resolves once the apply is interrupted (Ctrl-C, SIGTERM).
pub async fn interruption(interrupted: &AtomicBool) {
    while !interrupted.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `work`, an action whose own flag is `own`, with `own` set once `by` is: the caller's stop
/// (Ctrl-C, SIGTERM) reaches it, while what sets `own` alone (an apply that lost its lock)
/// stops no other action `by` reaches.
pub async fn interrupted_by<T>(by: &AtomicBool, own: &AtomicBool, work: impl Future<Output = T>) -> T {
    let stopping = async {
        interruption(by).await;
        own.store(true, Ordering::SeqCst);
        std::future::pending::<std::convert::Infallible>().await
    };
    tokio::select! {
        done = work => done,
        never = stopping => match never {},
    }
}
