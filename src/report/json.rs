//! The JSON reports of `weaver diff` and `weaver drift`. Their schemas are documented in the
//! README ("Diff → JSON output", "Drift → JSON output"): these types are that schema, so fields
//! may be added within a schema version, never renamed or removed.

use serde::Serialize;

use super::{DiffContext, object_diff};
use crate::diff::{Action, Change, Plan, Summary as PlanSummary};
use crate::drift::{FieldDrift, ReleaseState, Report, State, Summary as DriftSummary};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub mode: &'a str,
    /// The full SHA of the commit rendered from (`--rev`'s, else HEAD's); null outside git.
    pub commit: Option<&'a str>,
    /// Whether the working tree differed from `commit` (never under `--rev`); null outside git.
    pub dirty: Option<bool>,
    pub summary: PlanSummary,
    pub objects: Vec<DiffObject<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffObject<'a> {
    pub action: Action,
    pub release: &'a str,
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub changes: &'a [Change],
    /// The lines `diff` adds and removes (both 0 when unchanged).
    pub lines: LineCounts,
    pub conflict: Option<&'a str>,
    pub diff: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LineCounts {
    pub added: usize,
    pub removed: usize,
}

impl<'a> DiffReport<'a> {
    pub fn new(plan: &'a Plan, context: &DiffContext<'a>) -> DiffReport<'a> {
        let objects = plan
            .objects
            .iter()
            .map(|object| {
                let diff = object_diff(object);
                DiffObject {
                    action: object.action,
                    release: &object.release,
                    api_version: &object.api_version,
                    kind: &object.key.kind,
                    namespace: object.key.namespace.as_deref(),
                    name: &object.key.name,
                    changes: &object.changes,
                    lines: diff
                        .as_ref()
                        .map_or_else(LineCounts::default, |d| LineCounts { added: d.added, removed: d.removed }),
                    conflict: object.conflict.as_deref(),
                    diff: diff.map(|d| d.text),
                }
            })
            .collect();
        DiffReport {
            schema_version: 1,
            environment: context.environment,
            mode: context.mode,
            commit: context.provenance.map(|p| p.commit.as_str()),
            dirty: context.provenance.map(|p| p.dirty),
            summary: plan.summary(),
            objects,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport<'a> {
    pub schema_version: u32,
    pub environment: &'a str,
    pub cluster: Cluster<'a>,
    pub drifted: bool,
    pub summary: DriftSummary,
    pub releases: Vec<DriftRelease<'a>>,
}

#[derive(Debug, Serialize)]
pub struct Cluster<'a> {
    pub context: &'a str,
    pub server: &'a str,
}

#[derive(Debug, Serialize)]
pub struct DriftRelease<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub installed: bool,
    pub state: ReleaseState,
    pub revision: Option<DriftRevision<'a>>,
    pub objects: Vec<DriftObject<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DriftRevision<'a> {
    pub number: u32,
    pub time: &'a str,
    pub commit: Option<&'a str>,
    pub dirty: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftObject<'a> {
    pub state: State,
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub reason: Option<&'a str>,
    pub changes: &'a [FieldDrift],
}

impl<'a> DriftReport<'a> {
    pub fn new(report: &'a Report) -> DriftReport<'a> {
        let releases = report
            .releases
            .iter()
            .map(|release| DriftRelease {
                release: &release.name,
                namespace: &release.namespace,
                installed: release.installed,
                state: release.state(),
                revision: release.revision.as_ref().map(|r| DriftRevision {
                    number: r.number,
                    time: &r.time,
                    commit: r.commit.as_deref(),
                    dirty: r.dirty,
                }),
                objects: release
                    .objects
                    .iter()
                    .map(|object| DriftObject {
                        state: object.state,
                        api_version: &object.api_version,
                        kind: &object.key.kind,
                        namespace: object.key.namespace.as_deref(),
                        name: &object.key.name,
                        reason: object.reason.as_deref(),
                        changes: &object.changes,
                    })
                    .collect(),
            })
            .collect();
        DriftReport {
            schema_version: 1,
            environment: &report.environment,
            cluster: Cluster { context: &report.context, server: &report.server },
            drifted: report.has_drift(),
            summary: report.summary(),
            releases,
        }
    }
}

/// Pretty JSON with a final newline.
pub fn to_text(report: &impl Serialize) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}
