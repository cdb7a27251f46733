//! `weaver history`: a release's recorded revisions.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde_json::json;

use super::{Ui, block_on, open_project, table, write_stdout};
use crate::cli::{GlobalArgs, HistoryArgs, ListFormat};
use crate::cluster::{Cluster, ListTarget};
use crate::error::{Error, Result};
use crate::manifest::LABEL_RELEASE;
use crate::project::{Environment, Release};
use crate::release_record::{self, Record, Status};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &HistoryArgs) -> Result<ExitCode> {
    let env = open_project(global, None)?.environment(&args.env)?;
    let release = release(&env, &args.release)?;
    let records = block_on(async {
        let cluster = super::apply::connect(&args.cluster, ui, &env).await?;
        records_of(&cluster, release, &env).await
    })?;
    let text = match args.output {
        ListFormat::Json => {
            let revisions: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "revision": r.revision,
                        "status": r.status.as_str(),
                        "time": r.time,
                        "commit": r.commit,
                        "dirty": r.dirty,
                        "rollbackOf": r.rollback_of,
                        "objects": r.objects.len(),
                        "applied": r.objects.iter().filter(|o| o.applied).count(),
                    })
                })
                .collect();
            let value = json!({
                "schemaVersion": 1,
                "environment": env.name,
                "release": release.name,
                "namespace": release.namespace,
                "revisions": revisions,
            });
            serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n"
        }
        ListFormat::Text if records.is_empty() => {
            format!("release `{}` has no recorded revision in namespace {}\n", release.name, release.namespace)
        }
        ListFormat::Text => {
            let mut rows =
                vec![["REVISION", "STATUS", "TIME", "COMMIT", "OBJECTS", "DESCRIPTION"].map(String::from).to_vec()];
            rows.extend(records.iter().map(|r| {
                vec![
                    r.revision.to_string(),
                    r.status.as_str().to_string(),
                    r.time.clone(),
                    commit_text(r),
                    objects_text(r),
                    description(r),
                ]
            }));
            table(ui, &rows)
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn commit_text(record: &Record) -> String {
    match (&record.commit, record.dirty) {
        (Some(commit), Some(true)) => format!("{} (dirty)", &commit[..commit.len().min(12)]),
        (Some(commit), _) => commit[..commit.len().min(12)].to_string(),
        (None, _) => "-".to_string(),
    }
}

fn objects_text(record: &Record) -> String {
    let applied = record.objects.iter().filter(|o| o.applied).count();
    if applied == record.objects.len() {
        applied.to_string()
    } else {
        format!("{applied} of {} applied", record.objects.len())
    }
}

fn description(record: &Record) -> String {
    match (record.rollback_of, record.status) {
        (Some(revision), _) => format!("rollback to {revision}"),
        (None, Status::Failed) => "apply failed".to_string(),
        (None, _) => "apply".to_string(),
    }
}

/// The release `name` of `env`, or an error listing the ones it has.
pub(super) fn release<'a>(env: &'a Environment, name: &str) -> Result<&'a Release> {
    env.release(name).ok_or_else(|| {
        let known: Vec<&str> = env.releases.iter().map(|r| r.name.as_str()).collect();
        Error::new(format!("environment `{}` has no release `{name}`", env.name))
            .with_help(format!("its releases: {}", known.join(", ")))
    })
}

/// The release's complete records for `env`, oldest first (one Secrets LIST).
pub(super) async fn records_of(cluster: &Cluster, release: &Release, env: &Environment) -> Result<Vec<Record>> {
    let target =
        ListTarget { api_version: "v1".into(), kind: "Secret".into(), namespace: Some(release.namespace.clone()) };
    let selector = format!("{LABEL_RELEASE}={}", release.name);
    let secrets = cluster.list(&BTreeSet::from([target]), &selector, 1).await?;
    Ok(release_record::from_secrets(&secrets)?.into_iter().filter(|r| r.environment == env.name).collect())
}
