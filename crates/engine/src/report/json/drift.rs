//! `weaver drift -o json`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use weaver_core::manifest::ObjectKey;
use weaver_plan::release::drift::{
    Correction, CorrectionRun, FieldDrift, ObjectDrift, ReleaseCorrection, ReleaseDrift, ReleaseState, Report,
    Revision as ComparedRevision, State, Summary as DriftSummary,
};

use super::ObjectIdentity;

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
    pub(super) fn new(revision: &'a weaver_plan::release::drift::Revision) -> Self {
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
