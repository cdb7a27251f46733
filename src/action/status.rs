//! Status: the health of each object of the selected releases' last applied revisions, as
//! the cluster has it now. Nothing is rendered or decrypted: the records say which objects
//! each release has, `crate::cluster::ready` what healthy means (with the environment's
//! `healthChecks`). Only reads, the same LISTs as drift.

use std::time::Instant;

use super::drift::{DriftOptions, by_key, place, recorded_live};
use super::render::{IfEmpty, select};
use super::{OnProgress, connect_sharing, phase, tell_retries};
use crate::cluster::{ManagedFields, Readiness, readiness};
use crate::error::Result;
use crate::release::record::Wanted;
use crate::release::status::{Health, Report, release_health};

/// Status reads what drift reads: the selection, how to connect, how many requests at once.
pub type StatusOptions = DriftOptions;

/// The health of each selected release's last deployed objects.
pub async fn status(options: &StatusOptions, on: OnProgress<'_>) -> Result<Report> {
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
    let releases = releases
        .iter()
        .map(|release| {
            let record = live.records.get(&release.name);
            release_health(
                release,
                record,
                &by_key,
                |manifest| place(&cluster, manifest, release),
                |object| health(readiness(object, &release.health_checks)),
            )
        })
        .collect();
    phase(on, "observe", started);
    tell_retries(&cluster, on);
    Ok(Report {
        environment: selected.env.name.clone(),
        context: cluster.info.context.clone(),
        server: cluster.info.server.clone(),
        releases,
    })
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
