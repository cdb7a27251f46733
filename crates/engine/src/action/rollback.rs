//! Rollback: re-apply a recorded revision of a release, pruning what it did not have, and
//! record the result as a new revision that says it is a rollback.

use std::path::PathBuf;

use super::apply::{Applied, Locked, Settings, apply_options, execute};
use super::{Context, Progress, connect_sharing, open_project, release};
use crate::observe::release_records;
use weaver_cluster::ConnectOptions;
use weaver_core::error::{Error, Result};
use weaver_core::manifest::Manifest;
use weaver_plan::release::record::{Record, RecordedObject, Status, secret_name};
use weaver_project::Release;
use weaver_project::RenderedRelease;

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub repo: PathBuf,
    /// The commit whose environment is read (the controller's: what its EnvironmentSync
    /// applied); None: the working tree.
    pub rev: Option<String>,
    pub env: String,
    pub release: String,
    /// The revision to re-apply; the one deployed before the current one when None.
    pub revision: Option<u32>,
    pub connect: ConnectOptions,
    pub settings: Settings,
    /// The connections to share (`weaver ui`'s, whose views then see the rollback's writes).
    pub servers: Option<weaver_cluster::SharedServers>,
}

/// Re-applies the revision. `cx.interrupted` (Ctrl-C) stops starting new work.
pub async fn rollback(options: &RollbackOptions, cx: Context<'_>) -> Result<Applied> {
    let Context { redactor, on, .. } = cx;
    let env = open_project(&options.repo, options.rev.as_deref())?.environment(&options.env)?;
    let release = release(&env, &options.release)?;
    let connect = options.connect.clone().retrying_within(options.settings.timeout);
    let cluster = connect_sharing(connect, options.servers.as_ref(), &env, "applying to", on).await?;
    let records = release_records(&cluster, release, &env.name).await?;
    let current = records.iter().rev().find(|r| r.status == Status::Deployed);
    let target = match options.revision {
        Some(revision) => records.iter().find(|r| r.revision == revision).ok_or_else(|| {
            let known: Vec<String> = records.iter().map(|r| r.revision.to_string()).collect();
            Error::new(format!("release `{}` has no recorded revision {revision}", release.name)).with_help(
                if known.is_empty() {
                    "it has no records yet".to_string()
                } else {
                    format!("its revisions: {}", known.join(", "))
                },
            )
        })?,
        // The one deployed before the current one: failed revisions never were. A drift
        // correction re-applied the revision it corrected, so it is that revision, not a
        // newer one to go back from, nor one to go back to.
        None => records
            .iter()
            .rev()
            .filter(|r| current.is_none_or(|c| r.revision < corrected_base(&records, c)))
            .find(|r| r.status == Status::Superseded && r.correction_of.is_none())
            .ok_or_else(|| {
                Error::new(format!("release `{}` has no earlier deployed revision to roll back to", release.name))
                    .with_help("`weaver history` lists its revisions; name one to re-apply it")
            })?,
    };
    if target.status == Status::Failed {
        on(Progress::Warning(format!(
            "revision {} failed when it was applied; re-applying all of it",
            target.revision
        )));
    }
    target.register_secret_values(redactor);
    let rendered = recorded_release(release, target);
    let provenance = target.commit.clone().map(|commit| (commit, target.dirty.unwrap_or(false)));
    let mut apply_options = apply_options(&env, &options.settings, provenance, Some(target.revision));
    apply_options.sensitive = target.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
    let desired = async { Ok(Locked { releases: vec![rendered], options: apply_options, looked_up: Vec::new() }) };
    execute(&cluster, &env, &options.settings, desired, cx).await
}

/// A recorded revision of `release` as a rendered release: its objects and hooks, to re-apply
/// (rollback, drift correction) with the environment's `ignoreDifferences` rules of today, so
/// that it fights the fields' owners no more than an apply.
pub(super) fn recorded_release(release: &Release, record: &Record) -> RenderedRelease {
    let source = PathBuf::from(format!("record {}", secret_name(&release.name, record.revision, 0)));
    let recorded = |objects: &[serde_json::Value]| -> Vec<Manifest> {
        objects
            .iter()
            .map(|object| Manifest {
                release: release.name.clone(),
                source: source.clone(),
                document: 0,
                object: object.clone(),
                patched_by: Vec::new(),
            })
            .collect()
    };
    // The revision's hooks come back with it: a rollback runs its pre- and post-rollback
    // hooks, and a later removal its delete hooks.
    RenderedRelease {
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        chart: release.chart.clone(),
        chart_meta: record.chart.clone(),
        installed: true,
        manifests: recorded(&record.manifests),
        hooks: recorded(&record.hooks),
        warnings: Vec::new(),
        ignore_differences: release.ignore_differences.clone(),
        values: record.values.clone(),
    }
}

/// The revision `record` stands for: the one it corrected (through corrections of
/// corrections), or its own.
fn corrected_base(records: &[Record], record: &Record) -> u32 {
    let mut base = record;
    while let Some(corrected) = base.correction_of.and_then(|n| records.iter().find(|r| r.revision == n)) {
        base = corrected;
    }
    base.correction_of.unwrap_or(base.revision)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn a_correction_stands_for_the_revision_it_corrected() {
        let record = |revision: u32, correction_of: Option<u32>| Record {
            revision,
            correction_of,
            ..crate::action::recorded(Vec::new())
        };
        // 1 and 2 applied, 3 corrected 2, 4 corrected 3.
        let records = [record(1, None), record(2, None), record(3, Some(2)), record(4, Some(3))];
        assert_eq!(corrected_base(&records, &records[1]), 2);
        assert_eq!(corrected_base(&records, &records[2]), 2);
        assert_eq!(corrected_base(&records, &records[3]), 2);
        // The corrected revision is no longer kept: the correction still names it.
        assert_eq!(corrected_base(&records[2..], &records[3]), 2);
    }
}
