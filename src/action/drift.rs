//! Drift: what changed in the cluster since each selected release's last deployed revision.
//! Nothing is rendered or decrypted: the environment only says which releases live where.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde_json::Value;

use super::render::{IfEmpty, Selection, select};
use super::{OnProgress, connect_sharing, phase, tell_retries};
use crate::cluster::observe::{Unlabelled, list_live, recorded_target};
use crate::cluster::{ConnectOptions, SharedServers};
use crate::drift::{Report, compare_release};
use crate::error::Result;
use crate::manifest::ObjectKey;
use crate::release_record;

#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub selection: Selection,
    pub connect: ConnectOptions,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// What the environments of a fleet share per API server (requests in flight, discovery).
    pub servers: Option<SharedServers>,
}

/// Compares each selected release's last deployed revision with the cluster: one LIST of
/// Secrets per release namespace (the records), then one LIST per (resource, namespace) the
/// records name, all with weaver's release label. Only reads.
pub async fn drift(options: &DriftOptions, on: OnProgress<'_>) -> Result<Report> {
    let selected = select(&options.selection, IfEmpty::Warn, on)?;
    let environment = &selected.env.name;
    let cluster =
        connect_sharing(options.connect.clone(), options.servers.as_ref(), &selected.env, "comparing with", on).await?;
    let started = Instant::now();
    let releases = selected.releases();
    let names: Vec<(&str, &str)> = releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
    let live =
        list_live(&cluster, BTreeSet::new(), &names, environment, options.concurrency, &Unlabelled::new()).await?;
    let by_key: HashMap<ObjectKey, &Value> =
        live.objects.iter().filter(|o| !release_record::is_record(o)).map(|o| (ObjectKey::of(o), o)).collect();
    let releases = releases
        .iter()
        .map(|release| {
            let record = live.records.get(&release.name);
            compare_release(release, record, &by_key, |manifest| {
                recorded_target(&cluster, manifest, &release.namespace).map(|target| target.namespace)
            })
        })
        .collect();
    phase(on, "observe and compare", started);
    tell_retries(&cluster, on);
    Ok(Report {
        environment: environment.clone(),
        context: cluster.info.context.clone(),
        server: cluster.info.server.clone(),
        releases,
    })
}
