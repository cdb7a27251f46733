//! Status: the health of each object of the selected releases' last applied revisions, as
//! the cluster has it now. Nothing is rendered or decrypted: the records say which objects
//! each release has, `crate::cluster::ready` what healthy means (with the environment's
//! `healthChecks`). Only reads, the same LISTs as drift (and, for `weaver ui`, those of the
//! objects they own).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::drift::{DriftOptions, by_key, place, recorded_live};
use super::render::{IfEmpty, select};
use super::{OnProgress, Progress, connect_sharing, phase, tell_retries};
use crate::cluster::{ManagedFields, Readiness, readiness};
use crate::error::Result;
use crate::manifest::ListTarget;
use crate::release::record::{Record, Wanted};
use crate::release::status::{Health, Report, owned_by, release_health};

/// Status reads what drift reads: the selection, how to connect, how many requests at once.
pub type StatusOptions = DriftOptions;

/// What objects of the release namespaces can own others and be owned: a Deployment's
/// ReplicaSets, their Pods, a CronJob's Jobs and theirs. `weaver ui` draws them under their owners.
const DEPENDENT_KINDS: [(&str, &str); 3] = [("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("batch/v1", "Job")];

/// The health of each selected release's last deployed objects.
pub async fn status(options: &StatusOptions, on: OnProgress<'_>) -> Result<Report> {
    Ok(judged(options, false, on).await?.0)
}

/// [`status`], with the records it read (each release's last applied), by release name.
pub async fn status_with_records(
    options: &StatusOptions,
    on: OnProgress<'_>,
) -> Result<(Report, HashMap<String, Record>)> {
    judged(options, false, on).await
}

/// [`status`], each object with the live objects it owns (of [`DEPENDENT_KINDS`], in the
/// release namespaces: one more LIST per kind and namespace), judged by the same rules.
pub async fn status_with_dependents(options: &StatusOptions, on: OnProgress<'_>) -> Result<Report> {
    Ok(judged(options, true, on).await?.0)
}

async fn judged(
    options: &StatusOptions,
    with_dependents: bool,
    on: OnProgress<'_>,
) -> Result<(Report, HashMap<String, Record>)> {
    let selected = select(&options.selection, IfEmpty::Warn, on)?;
    let cluster =
        connect_sharing(options.connect.clone(), options.servers.as_ref(), &selected.env, "reading health in", on)
            .await?;
    let started = Instant::now();
    let releases = selected.releases();
    // The last apply's objects, deployed or not: a wait that failed left them in the cluster.
    // Health rules (CEL) may read any field of the objects.
    let managed_fields = ManagedFields::Parsed;
    let live =
        recorded_live(&cluster, &releases, &selected.env.name, Wanted::Applied, managed_fields, options.concurrency)
            .await?;
    let by_key = by_key(&live);
    let others = match with_dependents {
        true => {
            let namespaces: BTreeSet<&str> = releases.iter().map(|r| r.namespace.as_str()).collect();
            let targets: BTreeSet<ListTarget> = DEPENDENT_KINDS
                .iter()
                .filter(|(api_version, kind)| cluster.resolve(api_version, kind).is_ok())
                .flat_map(|(api_version, kind)| {
                    namespaces.iter().map(|ns| ListTarget {
                        api_version: api_version.to_string(),
                        kind: kind.to_string(),
                        namespace: Some(ns.to_string()),
                    })
                })
                .collect();
            // The tree is an addition to the health: one the user may not list (no `list pods`)
            // costs only the tree.
            match cluster.list_each(&targets, None, options.concurrency).await {
                Ok(listed) => listed.into_iter().flat_map(|(_, listed)| listed.items).collect(),
                Err(err) => {
                    on(Progress::Warning(format!("objects' dependents not shown: {err}")));
                    Vec::new()
                }
            }
        }
        false => Vec::new(),
    };
    let owned = owned_by(&others);
    let releases = releases
        .iter()
        .map(|release| {
            let record = live.records.get(&release.name);
            release_health(
                release,
                record,
                &by_key,
                &owned,
                |manifest| place(&cluster, manifest, release),
                |object| health(readiness(object, &release.health_checks)),
            )
        })
        .collect();
    phase(on, "observe", started);
    tell_retries(&cluster, on);
    let report = Report {
        environment: selected.env.name.clone(),
        context: cluster.info.context.clone(),
        server: cluster.info.server.clone(),
        releases,
    };
    Ok((report, live.records))
}

/// A wait's readiness as health: ready is healthy, pending progressing.
fn health(readiness: Readiness) -> (Health, Option<String>) {
    match readiness {
        Readiness::Ready => (Health::Healthy, None),
        Readiness::Pending(why) => (Health::Progressing, Some(why)),
        Readiness::Failed(why) => (Health::Failed, Some(why)),
        Readiness::Unknown(why) => (Health::Unknown, Some(why)),
    }
}
