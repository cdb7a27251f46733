//! `weaver status -o json`.

use serde::Serialize;
use weaver_plan::release::record::Status;
use weaver_plan::release::status::{self, Health, Summary as StatusSummary};

use super::{Cluster, DriftRevision, ObjectIdentity};

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
