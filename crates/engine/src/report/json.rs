//! The JSON reports (`-o json`) of `diff`, `drift`, `apply` and `rollback`, `history`, `changed`,
//! `envs` and `status`. Their schemas are documented in the book (docs/src/reference/json-output.md,
//! and docs/src/concepts/records.md for history): these types are that schema, so fields may
//! be added within a schema version, never renamed or removed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DiffContext, object_diff};
use crate::apply::{ApplyOptions, Outcome, Report as ApplyResults, Totals};
use weaver_core::manifest::ObjectKey;
use weaver_git::{ChangeSet, Comparison, Revision};
use weaver_plan::diff::{Action, Change, Plan, Summary as PlanSummary};
use weaver_plan::release::drift::{
    Correction, CorrectionRun, FieldDrift, ObjectDrift, ReleaseCorrection, ReleaseDrift, ReleaseState, Report,
    Revision as ComparedRevision, State, Summary as DriftSummary,
};
use weaver_plan::release::record::{Record, Status};
use weaver_plan::release::status::{self, Health, Summary as StatusSummary};
use weaver_project::{Environment, Release};
use weaver_secrets::redact::Redactor;

/// An object as every report names it: `apiVersion`, `kind`, `namespace` (null for
/// cluster-scoped kinds) and `name`, in that order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity<'a> {
    pub api_version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    pub name: Cow<'a, str>,
}

impl<'a> ObjectIdentity<'a> {
    fn new(api_version: &'a str, key: &'a weaver_core::manifest::ObjectKey) -> Self {
        ObjectIdentity {
            api_version: api_version.into(),
            kind: (&key.kind).into(),
            namespace: key.namespace.as_deref().map(Cow::Borrowed),
            name: (&key.name).into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport<'a> {
    pub schema_version: u32,
    pub environment: Cow<'a, str>,
    pub mode: Cow<'a, str>,
    /// The full SHA of the commit rendered from (`--rev`'s, else HEAD's); null outside git.
    pub commit: Option<Cow<'a, str>>,
    /// Whether the working tree differed from `commit` (never under `--rev`); null outside git.
    pub dirty: Option<bool>,
    /// `--base`: the commit whose render the objects are compared with, in place of a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Cow<'a, str>>,
    pub summary: PlanSummary,
    pub objects: Vec<DiffObject<'a>>,
    /// Helm hooks: run by an apply around their release's objects, never created, updated
    /// or pruned as objects.
    pub hooks: Vec<DiffHook<'a>>,
    /// The releases an apply adopts from the Helm release of the same name.
    pub adoptions: Vec<DiffAdoption<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffAdoption<'a> {
    pub release: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub helm_release: Cow<'a, str>,
    pub helm_revision: u32,
    pub helm_status: Cow<'a, str>,
    /// How many of the release's objects Helm installed (each has `"adopted": true`).
    pub objects: usize,
    /// Objects Helm installed for it that the release does not render: left in place.
    pub not_rendered: Vec<ObjectIdentity<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffHook<'a> {
    pub release: Cow<'a, str>,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub events: Cow<'a, [weaver_helm::hooks::Event]>,
    pub weight: i64,
    pub delete_policies: Cow<'a, [weaver_helm::hooks::DeletePolicy]>,
    /// The events of this apply that run it; empty when it does not run.
    pub runs: Cow<'a, [weaver_helm::hooks::Event]>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffObject<'a> {
    pub action: Action,
    pub release: Cow<'a, str>,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub changes: Cow<'a, [Change]>,
    /// The lines `diff` adds and removes (both 0 when unchanged).
    pub lines: LineCounts,
    pub conflict: Option<String>,
    pub diff: Option<String>,
    /// Helm installed it and the apply takes it over (see `adoptions`): sent, with force,
    /// even when `unchanged`.
    pub adopted: bool,
    /// Field changes `ignoreDifferences` kept out of `changes` (an apply sends the live values).
    pub ignored: usize,
    /// The live object is labelled as another environment's: an apply refuses the plan unless
    /// it takes ownership (`--take-ownership`). Absent when it is not.
    #[serde(rename = "ownedBy", default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<weaver_plan::diff::plan::Owner>,
}

impl DiffReport<'_> {
    /// Whether an apply would change something: an object to create, update or delete, or to
    /// take over from Helm.
    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(|o| o.action != Action::Unchanged || o.adopted)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct LineCounts {
    pub added: usize,
    pub removed: usize,
}

impl<'a> DiffReport<'a> {
    /// Texts are redacted here, before JSON escapes them: an escaped secret (a quote or a
    /// backslash in it) no longer reads as the value the redactor knows.
    pub fn new(plan: &'a Plan, context: &DiffContext<'a>, redactor: &Redactor) -> DiffReport<'a> {
        let objects = plan
            .objects
            .iter()
            .map(|object| {
                let diff = object_diff(object);
                DiffObject {
                    action: object.action,
                    release: (&object.release).into(),
                    object: ObjectIdentity::new(&object.api_version, &object.key),
                    changes: (&object.changes).into(),
                    lines: diff
                        .as_ref()
                        .map_or_else(LineCounts::default, |d| LineCounts { added: d.added, removed: d.removed }),
                    conflict: object.conflict.as_deref().map(|c| redactor.redact(c).into_owned()),
                    diff: diff.map(|d| redactor.redact(&d.text).into_owned()),
                    adopted: object.adopt,
                    ignored: object.ignored,
                    owner: object.owner.clone(),
                }
            })
            .collect();
        DiffReport {
            schema_version: 1,
            environment: context.environment.into(),
            mode: context.mode.into(),
            commit: context.provenance.map(|p| p.commit.as_str().into()),
            dirty: context.provenance.map(|p| p.dirty),
            base: context.base.map(Cow::Borrowed),
            summary: plan.summary(),
            objects,
            hooks: plan
                .hooks
                .iter()
                .map(|h| DiffHook {
                    release: (&h.release).into(),
                    object: ObjectIdentity::new(&h.api_version, &h.key),
                    events: (&h.events).into(),
                    weight: h.weight,
                    delete_policies: (&h.delete_policies).into(),
                    runs: (&h.runs).into(),
                })
                .collect(),
            adoptions: plan
                .adoptions
                .iter()
                .filter(|a| !a.adopted_before)
                .map(|a| DiffAdoption {
                    release: (&a.release).into(),
                    namespace: (&a.namespace).into(),
                    helm_release: (&a.helm.name).into(),
                    helm_revision: a.helm.revision,
                    helm_status: (&a.helm.status).into(),
                    objects: a.objects,
                    not_rendered: a
                        .left
                        .iter()
                        .map(|(api_version, key)| ObjectIdentity::new(api_version, key))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport<'a> {
    pub schema_version: u32,
    pub environment: Cow<'a, str>,
    pub cluster: Cluster<'a>,
    pub drifted: bool,
    pub summary: DriftSummary,
    pub releases: Vec<DriftRelease<'a>>,
    /// `drift --correct`: `{dryRun, failed}`; null without it.
    pub correction: Option<CorrectionRun>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Cluster<'a> {
    pub context: Cow<'a, str>,
    pub server: Cow<'a, str>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DriftRelease<'a> {
    pub release: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub installed: bool,
    pub state: ReleaseState,
    pub revision: Option<DriftRevision<'a>>,
    pub objects: Vec<DriftObject<'a>>,
    /// `drift --correct`, for a release that drifted: `{revision, error}`, the revision that
    /// records the correction (null on a dry run) and why it failed.
    pub correction: Option<Cow<'a, ReleaseCorrection>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DriftRevision<'a> {
    pub number: u32,
    pub time: Cow<'a, str>,
    pub commit: Option<Cow<'a, str>>,
    pub dirty: Option<bool>,
}

impl<'a> DriftRevision<'a> {
    fn new(revision: &'a weaver_plan::release::drift::Revision) -> Self {
        DriftRevision {
            number: revision.number,
            time: (&revision.time).into(),
            commit: revision.commit.as_deref().map(Cow::Borrowed),
            dirty: revision.dirty,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftObject<'a> {
    pub state: State,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub reason: Option<Cow<'a, str>>,
    pub changes: Cow<'a, [FieldDrift]>,
    /// Drifted fields `ignoreDifferences` kept out of `changes`.
    pub ignored: usize,
    /// `drift --correct`, for a drifted or missing object: `{result, message}`.
    pub correction: Option<Cow<'a, Correction>>,
}

impl<'a> DriftReport<'a> {
    pub fn new(report: &'a Report) -> DriftReport<'a> {
        let releases = report
            .releases
            .iter()
            .map(|release| DriftRelease {
                release: (&release.name).into(),
                namespace: (&release.namespace).into(),
                installed: release.installed,
                state: release.state(),
                revision: release.revision.as_ref().map(DriftRevision::new),
                objects: release
                    .objects
                    .iter()
                    .map(|object| DriftObject {
                        state: object.state,
                        object: ObjectIdentity::new(&object.api_version, &object.key),
                        reason: object.reason.as_deref().map(Cow::Borrowed),
                        changes: (&object.changes).into(),
                        ignored: object.ignored,
                        correction: object.correction.as_ref().map(Cow::Borrowed),
                    })
                    .collect(),
                correction: release.correction.as_ref().map(Cow::Borrowed),
            })
            .collect();
        DriftReport {
            schema_version: 1,
            environment: (&report.environment).into(),
            cluster: Cluster { context: (&report.context).into(), server: (&report.server).into() },
            drifted: report.has_drift(),
            summary: report.summary(),
            releases,
            correction: report.correction,
        }
    }
}

impl DriftReport<'_> {
    /// The drift the document was made from, as a report read back (`weaver report merge`)
    /// is formatted: every field the formats show is in the document.
    pub fn to_drift(&self) -> Report {
        let object = |o: &DriftObject| ObjectDrift {
            api_version: o.object.api_version.to_string(),
            key: ObjectKey {
                group: weaver_core::manifest::api_group(&o.object.api_version).to_string(),
                kind: o.object.kind.to_string(),
                namespace: o.object.namespace.as_deref().map(str::to_string),
                name: o.object.name.to_string(),
            },
            state: o.state,
            changes: o.changes.to_vec(),
            reason: o.reason.as_deref().map(str::to_string),
            ignored: o.ignored,
            correction: o.correction.as_deref().cloned(),
        };
        Report {
            environment: self.environment.to_string(),
            context: self.cluster.context.to_string(),
            server: self.cluster.server.to_string(),
            releases: self
                .releases
                .iter()
                .map(|r| ReleaseDrift {
                    name: r.release.to_string(),
                    namespace: r.namespace.to_string(),
                    installed: r.installed,
                    revision: r.revision.as_ref().map(|r| ComparedRevision {
                        number: r.number,
                        time: r.time.to_string(),
                        commit: r.commit.as_deref().map(str::to_string),
                        dirty: r.dirty,
                    }),
                    objects: r.objects.iter().map(object).collect(),
                    correction: r.correction.as_deref().cloned(),
                })
                .collect(),
            correction: self.correction,
        }
    }
}

/// `weaver status -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub cluster: Cluster<'a>,
    /// The worst health of any object (healthy without objects).
    pub health: Health,
    pub summary: StatusSummary,
    pub releases: Vec<StatusRelease<'a>>,
}

#[derive(Debug, Serialize)]
pub struct StatusRelease<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub installed: bool,
    /// The worst health of its objects; null without a recorded revision.
    pub health: Option<Health>,
    pub revision: Option<StatusRevision<'a>>,
    pub objects: Vec<StatusObject<'a>>,
}

/// The revision read: the last applied, `deployed` or `failed`.
#[derive(Debug, Serialize)]
pub struct StatusRevision<'a> {
    #[serde(flatten)]
    pub revision: DriftRevision<'a>,
    pub status: Status,
}

#[derive(Debug, Serialize)]
pub struct StatusObject<'a> {
    pub health: Health,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    /// Why it is not healthy; null when it is.
    pub reason: Option<&'a str>,
    /// What it owns, for `weaver ui` (`weaver status` lists none, and writes no such field).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<StatusObject<'a>>,
}

impl<'a> StatusObject<'a> {
    fn new(object: &'a status::ObjectHealth) -> StatusObject<'a> {
        StatusObject {
            health: object.health,
            object: ObjectIdentity::new(&object.api_version, &object.key),
            reason: object.reason.as_deref(),
            dependents: object.dependents.iter().map(StatusObject::new).collect(),
        }
    }
}

impl<'a> StatusReport<'a> {
    pub fn new(report: &'a status::Report) -> StatusReport<'a> {
        let releases = report
            .releases
            .iter()
            .map(|release| StatusRelease {
                release: &release.name,
                namespace: &release.namespace,
                installed: release.installed,
                health: release.revision.as_ref().map(|_| release.health().unwrap_or(Health::Healthy)),
                revision: release.revision.as_ref().map(|(revision, status)| StatusRevision {
                    revision: DriftRevision::new(revision),
                    status: *status,
                }),
                objects: release.objects.iter().map(StatusObject::new).collect(),
            })
            .collect();
        StatusReport {
            schema_version: 1,
            environment: &report.environment,
            cluster: Cluster { context: (&report.context).into(), server: (&report.server).into() },
            health: report.health(),
            summary: report.summary(),
            releases,
        }
    }
}

/// `weaver sync get -o json` (and `-o yaml`): EnvironmentSyncs as the controller left them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport<'a> {
    pub schema_version: u32,
    /// Where they were looked for; null with `-A`.
    pub namespace: Option<&'a str>,
    /// Every one listed is Ready at its generation (exit code 0).
    pub ready: bool,
    pub syncs: Vec<SyncEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEntry<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `metadata.creationTimestamp`, RFC 3339.
    pub created: Option<String>,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// The Ready condition's status: `True`, `False` or `Unknown`.
    pub ready: &'a str,
    /// Ready is True and the controller has seen the current generation.
    pub up_to_date: bool,
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    pub reconciling: bool,
    pub stalled: bool,
    pub suspended: bool,
    /// `Automatic` or `Manual`.
    pub approval: weaver_api::environment_sync::Approval,
    pub approved_plan: Option<&'a str>,
    pub url: &'a str,
    /// The commit every selected environment was last applied at.
    pub revision: Option<&'a str>,
    pub attempted_revision: Option<&'a str>,
    pub last_handled_reconcile_at: Option<&'a str>,
    /// `ready/selected`.
    pub environments_ready: Option<&'a str>,
    pub drift: Option<&'a weaver_api::environment_sync::DriftSummary>,
    pub environments: &'a [weaver_api::environment_sync::EnvironmentStatus],
    pub pending_plan: Option<&'a weaver_api::environment_sync::PendingPlan>,
    pub history: &'a [weaver_api::environment_sync::HistoryEntry],
}

impl<'a> SyncReport<'a> {
    /// `syncs`, each with its state (`weaver_api::environment_sync::state`).
    pub fn new(
        namespace: Option<&'a str>,
        syncs: &'a [(weaver_api::environment_sync::EnvironmentSync, weaver_api::environment_sync::State)],
    ) -> SyncReport<'a> {
        let entries = syncs
            .iter()
            .map(|(sync, state)| {
                let status = sync.status.as_ref();
                let empty: &[_] = &[];
                SyncEntry {
                    namespace: sync.metadata.namespace.as_deref().unwrap_or_default(),
                    name: sync.metadata.name.as_deref().unwrap_or_default(),
                    created: sync.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
                    generation: sync.metadata.generation,
                    observed_generation: status.and_then(|s| s.observed_generation),
                    ready: &state.ready,
                    up_to_date: state.up_to_date,
                    reason: state.reason.as_deref(),
                    message: state.message.as_deref(),
                    reconciling: state.reconciling,
                    stalled: state.stalled,
                    suspended: sync.spec.suspend,
                    approval: sync.spec.approval.unwrap_or_default(),
                    approved_plan: sync.spec.approved_plan.as_deref(),
                    url: &sync.spec.source.url,
                    revision: status.and_then(|s| s.last_applied_revision.as_deref()),
                    attempted_revision: status.and_then(|s| s.last_attempted_revision.as_deref()),
                    last_handled_reconcile_at: status.and_then(|s| s.last_handled_reconcile_at.as_deref()),
                    environments_ready: status.and_then(|s| s.environments_ready.as_deref()),
                    drift: status.and_then(|s| s.drift.as_ref()),
                    environments: status.map_or(empty, |s| &s.environments),
                    pending_plan: status.and_then(|s| s.pending_plan.as_ref()),
                    history: status.map_or(&[], |s| &s.history),
                }
            })
            .collect();
        SyncReport {
            schema_version: 1,
            namespace,
            ready: syncs.iter().all(|(_, state)| state.up_to_date),
            syncs: entries,
        }
    }
}

/// `weaver apply -o json` and `weaver rollback -o json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport<'a> {
    pub schema_version: u32,
    pub environment: Cow<'a, str>,
    pub dry_run: bool,
    pub commit: Option<Cow<'a, str>>,
    pub dirty: Option<bool>,
    pub interrupted: bool,
    pub failed: bool,
    pub summary: Totals,
    /// Requests sent more than once because the server failed, refused or throttled them.
    pub retried_requests: u64,
    /// The holder the environment's lock was taken from: it stopped without letting go, so
    /// its apply did not finish. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lock_taken_over: Option<crate::apply::LockTakenOver>,
    pub releases: Vec<ApplyRelease<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyRelease<'a> {
    pub name: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub revision: Option<u32>,
    pub status: Option<Status>,
    pub rollback_of: Option<u32>,
    pub error: Option<String>,
    pub objects: Vec<ApplyObject<'a>>,
    pub hooks: Vec<ApplyHook<'a>>,
    /// The Helm release of the same name this release adopts (or adopted before, and only its
    /// records were left); null when there is none.
    pub helm: Option<ApplyHelm<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyHelm<'a> {
    pub release: Cow<'a, str>,
    pub revision: u32,
    pub adopted_before: bool,
    /// Objects taken over from field manager `helm` by this apply.
    pub taken: usize,
    /// Objects Helm installed that were to be taken over and were not.
    pub not_taken: usize,
    /// Objects Helm installed that the release does not render (left in place).
    pub not_rendered: usize,
    /// What became of its record Secrets: `{"state": "kept"}`, `{"state": "deleted",
    /// "secrets": [...]}`, `{"state": "not-deleted", "reason": ...}` or `{"state": "failed",
    /// "error": ..., "secrets": [the ones deleted]}`.
    pub records: Cow<'a, crate::apply::HelmRecords>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyHook<'a> {
    pub event: weaver_helm::hooks::Event,
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub weight: i64,
    pub result: weaver_plan::release::record::HookOutcome,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyObject<'a> {
    #[serde(flatten)]
    pub object: ObjectIdentity<'a>,
    pub result: Outcome,
    pub message: Option<String>,
    /// Field changes `ignoreDifferences` kept out: the live values were sent for them.
    pub ignored: usize,
}

impl<'a> ApplyReport<'a> {
    /// Server messages are redacted here, before JSON escapes them (see [`DiffReport::new`]).
    pub fn new(report: &'a ApplyResults, options: &'a ApplyOptions, redactor: &Redactor) -> ApplyReport<'a> {
        let releases = report
            .releases
            .iter()
            .map(|release| ApplyRelease {
                name: (&release.name).into(),
                namespace: (&release.namespace).into(),
                revision: release.revision,
                status: release.status,
                rollback_of: release.rollback_of,
                error: release.error.as_deref().map(|e| redactor.redact(e).into_owned()),
                objects: release
                    .objects
                    .iter()
                    .map(|o| ApplyObject {
                        object: ObjectIdentity::new(&o.api_version, &o.key),
                        result: o.outcome,
                        message: o.message.as_deref().map(|m| redactor.redact(m).into_owned()),
                        ignored: o.ignored,
                    })
                    .collect(),
                hooks: release
                    .hooks
                    .iter()
                    .map(|h| ApplyHook {
                        event: h.event,
                        object: ObjectIdentity::new(&h.api_version, &h.key),
                        weight: h.weight,
                        result: h.outcome,
                        message: h.message.as_deref().map(|m| redactor.redact(m).into_owned()),
                    })
                    .collect(),
                helm: release.helm.as_ref().map(|h| ApplyHelm {
                    release: (&h.helm.name).into(),
                    revision: h.helm.revision,
                    adopted_before: h.adopted_before,
                    taken: h.taken,
                    not_taken: h.not_taken,
                    not_rendered: h.left,
                    records: helm_records(&h.records, redactor),
                }),
            })
            .collect();
        ApplyReport {
            schema_version: 1,
            environment: (&options.environment).into(),
            dry_run: options.dry_run,
            commit: options.commit.as_deref().map(Cow::Borrowed),
            dirty: options.dirty,
            interrupted: report.interrupted,
            failed: report.failed(),
            summary: report.totals(),
            retried_requests: report.retried_requests,
            lock_taken_over: report.lock_taken_over.clone(),
            releases,
        }
    }
}

/// A Helm release's records as a report shows them: why they were not deleted may quote the
/// release's error, a server message.
fn helm_records<'a>(records: &'a crate::apply::HelmRecords, redactor: &Redactor) -> Cow<'a, crate::apply::HelmRecords> {
    use crate::apply::HelmRecords;
    match records {
        HelmRecords::NotDeleted { reason } => match redactor.redact(reason) {
            Cow::Owned(reason) => Cow::Owned(HelmRecords::NotDeleted { reason }),
            Cow::Borrowed(_) => Cow::Borrowed(records),
        },
        HelmRecords::Failed { error, secrets } => match redactor.redact(error) {
            Cow::Owned(error) => Cow::Owned(HelmRecords::Failed { error, secrets: secrets.clone() }),
            Cow::Borrowed(_) => Cow::Borrowed(records),
        },
        HelmRecords::Kept | HelmRecords::Deleted { .. } => Cow::Borrowed(records),
    }
}

/// `weaver history -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub release: &'a str,
    pub namespace: &'a str,
    pub revisions: Vec<HistoryRevision<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRevision<'a> {
    pub revision: u32,
    pub status: Status,
    pub time: &'a str,
    pub commit: Option<&'a str>,
    pub dirty: Option<bool>,
    /// Who applied it (`alice@build-7 pid 4242`, `EnvironmentSync team/shop`); null in records
    /// written before weaver kept it.
    pub applied_by: Option<&'a str>,
    pub rollback_of: Option<u32>,
    /// The revision a drift correction (`weaver drift --correct`) put back; null otherwise.
    pub correction_of: Option<u32>,
    /// The values flags the revision was applied with (`apply --allow-overrides`), their
    /// values left out (`--set image.tag=…`); the record holds them as given.
    pub overrides: Vec<String>,
    /// The chart applied (`{name, version, appVersion}`); null in records written before
    /// weaver kept it, and for kustomizations.
    pub chart: Option<&'a weaver_project::chart::ChartMeta>,
    /// How many objects the revision has, and how many of them its apply got into the cluster.
    pub objects: usize,
    pub applied: usize,
    /// The Helm hooks the revision's apply ran, in order, and how each ended.
    pub hook_runs: &'a [weaver_plan::release::record::HookRun],
    /// The Helm release whose objects the revision took over (`{helmRelease, helmRevision}`),
    /// or null.
    pub adopted_from: Option<&'a weaver_plan::release::record::AdoptedFrom>,
    /// The objects the revision took from other environments (`apply --take-ownership`):
    /// `{apiVersion, kind, namespace, name, environment, release}` each, the environment and
    /// release it was labelled with before.
    pub taken_from: &'a [weaver_plan::release::record::TakenFrom],
}

impl<'a> HistoryReport<'a> {
    pub fn new(env: &'a Environment, release: &'a Release, records: &'a [Record]) -> HistoryReport<'a> {
        HistoryReport {
            schema_version: 1,
            environment: &env.name,
            release: &release.name,
            namespace: &release.namespace,
            revisions: records
                .iter()
                .map(|r| HistoryRevision {
                    revision: r.revision,
                    status: r.status,
                    time: &r.time,
                    commit: r.commit.as_deref(),
                    dirty: r.dirty,
                    applied_by: r.applied_by.as_deref(),
                    rollback_of: r.rollback_of,
                    correction_of: r.correction_of,
                    overrides: r.overrides.iter().map(|flag| weaver_render::overrides::brief(flag)).collect(),
                    chart: r.chart.as_ref(),
                    objects: r.objects.len(),
                    applied: r.objects.iter().filter(|o| o.applied).count(),
                    hook_runs: &r.hook_runs,
                    adopted_from: r.adopted_from.as_ref(),
                    taken_from: &r.taken_from,
                })
                .collect(),
        }
    }
}

/// `weaver changed -o json`.
#[derive(Debug, Serialize)]
pub struct ChangedReport<'a> {
    pub base: ChangedBase<'a>,
    pub head: ChangedHead<'a>,
    /// The environments of `releases`, sorted.
    pub environments: Vec<&'a str>,
    pub releases: Vec<ChangedRelease<'a>>,
    pub unattributed: &'a [PathBuf],
}

#[derive(Debug, Serialize)]
pub struct ChangedBase<'a> {
    pub rev: &'a str,
    pub commit: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedHead<'a> {
    /// Null for the working tree.
    pub rev: Option<&'a str>,
    /// Null for the working tree of a repository with no commit yet.
    pub commit: Option<String>,
    pub working_tree: bool,
}

#[derive(Debug, Serialize)]
pub struct ChangedRelease<'a> {
    pub environment: &'a str,
    pub release: &'a str,
    pub status: &'static str,
    pub paths: &'a [PathBuf],
}

impl<'a> ChangedReport<'a> {
    pub fn new(comparison: &'a Comparison, changes: &'a ChangeSet) -> ChangedReport<'a> {
        let commit = |r: &Revision| r.commit.to_string();
        let head = match &comparison.head {
            Some(head) => ChangedHead { rev: Some(&head.spec), commit: Some(commit(head)), working_tree: false },
            None => ChangedHead {
                rev: None,
                commit: comparison.working_tree_commit.as_ref().map(commit),
                working_tree: true,
            },
        };
        ChangedReport {
            base: ChangedBase { rev: &comparison.base.spec, commit: commit(&comparison.base) },
            head,
            environments: changes.environments(),
            releases: changes
                .releases
                .iter()
                .map(|r| ChangedRelease {
                    environment: &r.environment,
                    release: &r.release,
                    status: r.status.as_str(),
                    paths: &r.paths,
                })
                .collect(),
            unattributed: &changes.unattributed,
        }
    }
}

/// `weaver envs -o json`.
#[derive(Debug, Serialize)]
pub struct EnvsReport<'a> {
    pub environments: Vec<EnvsEnvironment<'a>>,
}

#[derive(Debug, Serialize)]
pub struct EnvsEnvironment<'a> {
    pub name: &'a str,
    #[serde(rename = "abstract")]
    pub is_abstract: bool,
    /// The environment it extends directly (its file's stem), if any.
    pub extends: Option<Cow<'a, str>>,
    /// `labels`, inherited through `extends`: what `--env-selector` matches.
    pub labels: &'a BTreeMap<String, String>,
    pub context: Option<&'a str>,
    pub namespace: &'a str,
    pub releases: Vec<EnvsRelease<'a>>,
    /// `wave` and `needs`: when a fleet apply applies it.
    pub wave: i32,
    pub needs: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct EnvsRelease<'a> {
    pub name: &'a str,
    pub chart: &'a str,
    pub namespace: &'a str,
    pub needs: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub installed: bool,
}

impl<'a> EnvsReport<'a> {
    pub fn new(environments: &'a [Environment]) -> EnvsReport<'a> {
        let environments = environments
            .iter()
            .map(|e| EnvsEnvironment {
                name: &e.name,
                is_abstract: e.is_abstract,
                extends: e.files.get(1).and_then(|f| f.file_stem()).map(|s| s.to_string_lossy()),
                labels: &e.labels,
                context: e.context.as_deref(),
                namespace: &e.namespace,
                releases: e
                    .releases
                    .iter()
                    .map(|r| EnvsRelease {
                        name: &r.name,
                        chart: &r.chart,
                        namespace: &r.namespace,
                        needs: &r.needs,
                        labels: &r.labels,
                        installed: r.installed,
                    })
                    .collect(),
                wave: e.wave,
                needs: e.needs.iter().map(|(name, _)| name.as_str()).collect(),
            })
            .collect();
        EnvsReport { environments }
    }
}

/// `diff -o json`, `drift -o json` and `apply -o json` of a fleet: each environment's document
/// as one environment's run prints it, or its error.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport<'a, R> {
    pub schema_version: u32,
    /// The command that made it: `weaver report merge` combines only reports of one command.
    pub command: FleetCommand,
    /// The full SHA of the commit the environments were selected (and rendered) from; null
    /// outside git. `weaver report merge` combines only reports of one commit.
    pub commit: Option<Cow<'a, str>>,
    /// Whether the working tree differed from `commit`; null outside git.
    pub dirty: Option<bool>,
    pub summary: FleetSummary,
    pub environments: Vec<FleetEnvironment<'a, R>>,
}

/// Which command's fleet a [`FleetReport`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetCommand {
    Diff,
    Drift,
    Apply,
    Status,
}

impl FleetCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetCommand::Diff => "diff",
            FleetCommand::Drift => "drift",
            FleetCommand::Apply => "apply",
            FleetCommand::Status => "status",
        }
    }
}

/// A fleet's document of any of the commands that make one: what a fleet run prints with
/// `-o json`, and what `weaver report merge` reads and combines.
#[derive(Debug)]
pub enum AnyFleetReport<'a> {
    Diff(FleetReport<'a, DiffReport<'a>>),
    Drift(FleetReport<'a, DriftReport<'a>>),
    Apply(FleetReport<'a, ApplyReport<'a>>),
}

impl AnyFleetReport<'_> {
    pub fn command(&self) -> FleetCommand {
        match self {
            AnyFleetReport::Diff(_) => FleetCommand::Diff,
            AnyFleetReport::Drift(_) => FleetCommand::Drift,
            AnyFleetReport::Apply(_) => FleetCommand::Apply,
        }
    }
}

/// The commit a fleet's reports name, from the repository's provenance.
fn commit_of(provenance: Option<&weaver_git::Provenance>) -> (Option<Cow<'_, str>>, Option<bool>) {
    (provenance.map(|p| Cow::Borrowed(p.commit.as_str())), provenance.map(|p| p.dirty))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetSummary {
    pub environments: usize,
    /// Environments with changes (diff), drift (drift), or that changed something (apply).
    pub changed: usize,
    pub failed: usize,
    /// A fleet apply's other counts; absent from diff and drift.
    #[serde(flatten)]
    pub apply: Option<FleetApplySummary>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetApplySummary {
    pub applied: usize,
    pub interrupted: usize,
    pub skipped: usize,
    pub not_started: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetEnvironment<'a, R> {
    pub environment: Cow<'a, str>,
    /// How the environment of a fleet apply ended; absent from diff and drift.
    #[serde(flatten)]
    pub apply: Option<FleetApplyEnvironment<'a>>,
    /// Why the environment has no report (redacted); null when it has one.
    pub error: Option<Cow<'a, str>>,
    pub report: Option<R>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FleetApplyEnvironment<'a> {
    pub wave: i32,
    /// Its `needs`, as its file says: of those selected, the environments it was applied after.
    pub needs: Vec<Cow<'a, str>>,
    pub state: FleetApplyState,
    /// Why it was skipped or not started; null otherwise.
    pub reason: Option<Cow<'a, str>>,
}

/// How an environment of a fleet apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FleetApplyState {
    /// Applied completely (its waits passed, with --wait).
    Applied,
    /// Its apply failed, or some of it did (see its report).
    Failed,
    /// Interrupted (SIGINT, SIGTERM): it stopped as an interrupted apply does.
    Interrupted,
    /// Not started: it needs an environment (or one of an earlier wave) that did not apply.
    Skipped,
    /// Not started: the run was interrupted, or stopped by --fail-fast.
    NotStarted,
}

impl<'a, R> FleetReport<'a, R> {
    /// A fleet apply's document: each environment with how it ended, its report (null when it
    /// did not start or failed before applying) and its error.
    pub fn of_apply(
        environments: Vec<FleetEnvironment<'a, R>>,
        changed: usize,
        provenance: Option<&'a weaver_git::Provenance>,
    ) -> FleetReport<'a, R> {
        let count = |state| environments.iter().filter(|e| e.apply.as_ref().is_some_and(|a| a.state == state)).count();
        let (commit, dirty) = commit_of(provenance);
        FleetReport {
            schema_version: 1,
            command: FleetCommand::Apply,
            commit,
            dirty,
            summary: FleetSummary {
                environments: environments.len(),
                changed,
                failed: count(FleetApplyState::Failed),
                apply: Some(FleetApplySummary {
                    applied: count(FleetApplyState::Applied),
                    interrupted: count(FleetApplyState::Interrupted),
                    skipped: count(FleetApplyState::Skipped),
                    not_started: count(FleetApplyState::NotStarted),
                }),
            },
            environments,
        }
    }
}

impl<'a, R> FleetReport<'a, R> {
    /// `results`: each environment's result, or its error as shown; `report` makes the
    /// document of a result, `changed` says whether it changes something.
    pub fn new<T>(
        command: FleetCommand,
        provenance: Option<&'a weaver_git::Provenance>,
        results: &'a [(&'a str, std::result::Result<T, String>)],
        report: impl Fn(&'a T, &'a str) -> R,
        changed: impl Fn(&R) -> bool,
    ) -> FleetReport<'a, R> {
        let (commit, dirty) = commit_of(provenance);
        let environments: Vec<FleetEnvironment<'a, R>> = results
            .iter()
            .map(|(environment, result)| FleetEnvironment {
                environment: (*environment).into(),
                apply: None,
                error: result.as_ref().err().map(Cow::from),
                report: result.as_ref().ok().map(|r| report(r, environment)),
            })
            .collect();
        FleetReport {
            schema_version: 1,
            command,
            commit,
            dirty,
            summary: FleetSummary {
                environments: environments.len(),
                changed: environments.iter().filter(|e| e.report.as_ref().is_some_and(&changed)).count(),
                failed: environments.iter().filter(|e| e.report.is_none()).count(),
                apply: None,
            },
            environments,
        }
    }
}

/// Pretty JSON with a final newline.
pub fn to_text(report: &impl Serialize) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}
