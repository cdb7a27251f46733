//! History: a release's recorded revisions.

use super::{OnProgress, connect, open_project, release};
use crate::cluster::ConnectOptions;
use crate::cluster::observe::release_records;
use crate::error::Result;
use crate::project::{Environment, Release};
use crate::release::record::Record;

/// Which release's history.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub repo: std::path::PathBuf,
    pub env: String,
    pub release: String,
    pub connect: ConnectOptions,
}

pub struct History {
    pub env: Environment,
    pub release: Release,
    /// Its records, oldest first.
    pub records: Vec<Record>,
}

pub async fn history(options: &HistoryOptions, on: OnProgress<'_>) -> Result<History> {
    let env = open_project(&options.repo, None)?.environment(&options.env)?;
    let release = release(&env, &options.release)?.clone();
    let cluster = connect(options.connect.clone(), &env, "reading from", on).await?;
    let records = release_records(&cluster, &release, &env.name).await?;
    Ok(History { env, release, records })
}
