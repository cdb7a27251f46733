//! `weaver apply -o json` and `weaver rollback -o json`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weaver_plan::release::record::Status;
use weaver_secrets::redact::Redactor;

use super::ObjectIdentity;
use crate::apply::{ApplyOptions, Outcome, Report as ApplyResults, Totals};

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
    /// Server messages are redacted here, before JSON escapes them (see [`super::DiffReport::new`]).
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
pub(super) fn helm_records<'a>(
    records: &'a crate::apply::HelmRecords,
    redactor: &Redactor,
) -> Cow<'a, crate::apply::HelmRecords> {
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
