//! Drift: what changed in the cluster since each selected release's last deployed revision.
//! Nothing is rendered or decrypted: the environment only says which releases live where.

use std::time::Instant;

use super::render::{IfEmpty, Selection, select};
use super::{OnProgress, connect, phase};
use crate::cluster::ConnectOptions;
use crate::drift::Report;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub selection: Selection,
    pub connect: ConnectOptions,
    /// Requests in flight at once.
    pub concurrency: usize,
}

pub async fn drift(options: &DriftOptions, on: OnProgress<'_>) -> Result<Report> {
    let selected = select(&options.selection, IfEmpty::Warn, on)?;
    let cluster = connect(options.connect.clone(), &selected.env, "comparing with", on).await?;
    let started = Instant::now();
    let report = crate::drift::check(&cluster, &selected.env.name, &selected.releases(), options.concurrency).await;
    phase(on, "observe and compare", started);
    report
}
