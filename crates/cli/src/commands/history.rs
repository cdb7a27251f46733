//! `weaver history`: a release's recorded revisions.

use std::process::ExitCode;

use super::{Ui, block_on, connect_options, table, write_stdout};
use crate::cli::{GlobalArgs, HistoryArgs, ListFormat};
use weaver_core::error::Result;
use weaver_engine::action::history::{History, HistoryOptions, history};
use weaver_engine::report::json::{HistoryReport, to_text};
use weaver_plan::release::record::{Record, Status};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &HistoryArgs) -> Result<ExitCode> {
    let options = HistoryOptions {
        repo: global.repo.clone(),
        rev: None,
        env: args.env.clone(),
        release: args.release.clone(),
        connect: connect_options(&args.cluster),
    };
    let History { env, release, records } = block_on(history(&options, &|p| ui.progress(p)))?;
    let text = match args.output {
        ListFormat::Json => to_text(&HistoryReport::new(&env, &release, &records)),
        ListFormat::Text if records.is_empty() => {
            format!("release `{}` has no recorded revision in namespace {}\n", release.name, release.namespace)
        }
        ListFormat::Text => {
            let header = ["REVISION", "STATUS", "TIME", "CHART", "APP VERSION", "COMMIT", "OBJECTS", "DESCRIPTION"];
            let mut rows = vec![header.map(String::from).to_vec()];
            rows.extend(records.iter().map(|r| {
                let chart = r.chart.as_ref();
                vec![
                    r.revision.to_string(),
                    r.status.as_str().to_string(),
                    r.time.clone(),
                    chart.map_or_else(|| "-".to_string(), |c| format!("{}-{}", c.name, c.version)),
                    chart.and_then(|c| c.app_version.clone()).unwrap_or_else(|| "-".to_string()),
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
    let what = match (record.rollback_of, record.correction_of, record.status) {
        (Some(revision), _, _) => format!("rollback to {revision}"),
        (None, Some(revision), Status::Failed) => format!("drift correction of {revision} failed"),
        (None, Some(revision), _) => format!("drift correction of {revision}"),
        (None, None, Status::Failed) => "apply failed".to_string(),
        (None, None, _) => "apply".to_string(),
    };
    match &record.adopted_from {
        Some(helm) => format!("{what}, adopting Helm release {} (revision {})", helm.helm_release, helm.helm_revision),
        None => what,
    }
}
