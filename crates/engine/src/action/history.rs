//! History: a release's recorded revisions, and what each changed.

use super::{OnProgress, connect, open_project, release};
use crate::observe::release_records;
use weaver_cluster::ConnectOptions;
use weaver_core::error::Result;
use weaver_plan::plan::Plan;
use weaver_plan::plan::between_revisions;
use weaver_plan::release::record::Record;
use weaver_project::{Environment, Release};

/// Which release's history.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub repo: std::path::PathBuf,
    /// The commit the environment is read at; None: the working tree.
    pub rev: Option<String>,
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
    let env = open_project(&options.repo, options.rev.as_deref())?.environment(&options.env)?;
    let release = release(&env, &options.release)?.clone();
    let cluster = connect(options.connect.clone(), &env, "reading from", on).await?;
    let records = release_records(&cluster, &release, &env.name).await?;
    Ok(History { env, release, records })
}

/// What each of `records` (oldest first) changed against the revision before it, the first
/// against nothing, in the same order: the objects each applied, planned as an apply of them
/// over the previous revision's (Secret values and decrypted values redacted as a plan
/// redacts them; see [`between_revisions`]).
pub fn changes(records: &[Record]) -> Vec<Plan> {
    let mut previous: Option<&Record> = None;
    records
        .iter()
        .map(|record| {
            let before = previous.into_iter().flat_map(Record::applied_manifests);
            let plan = between_revisions(&record.release, before, record.applied_manifests());
            previous = Some(record);
            plan
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard, Repo, failure};
    use weaver_plan::plan::Summary;

    fn options(repo: &Repo, release: &str, connect: ConnectOptions) -> HistoryOptions {
        HistoryOptions { repo: repo.path(), rev: None, env: "dev".into(), release: release.into(), connect }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_history_lists_each_revision_and_what_it_changed() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        fixture.repo.greet("hi");
        fixture.apply().await;
        let history =
            history(&options(&fixture.repo, "web", fixture.connect()), Heard::default().cx().on).await.unwrap();
        assert_eq!((history.env.name.as_str(), history.release.name.as_str()), ("dev", "web"));
        assert_eq!(history.records.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);
        let summaries: Vec<Summary> = changes(&history.records).iter().map(Plan::summary).collect();
        assert_eq!(
            summaries,
            [Summary { create: 2, ..Summary::default() }, Summary { update: 1, unchanged: 1, ..Summary::default() }]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_release_the_environment_lacks_is_named_with_those_it_has() {
        let fixture = Fixture::start().await;
        let options = options(&fixture.repo, "api", fixture.connect());
        let message = failure(history(&options, Heard::default().cx().on).await);
        assert_eq!(message, "environment `dev` has no release `api` (help: its releases: web)");
    }
}
