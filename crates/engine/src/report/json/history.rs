//! `weaver history -o json`.

use serde::Serialize;
use weaver_plan::release::record::{Record, Status};
use weaver_project::{Environment, Release};

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
