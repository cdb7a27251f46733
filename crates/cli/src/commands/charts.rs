//! `weaver charts lock|fetch`: pin remote Helm charts in charts.lock, pull them into the cache.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{ChartsCommand, GlobalArgs};
use weaver_core::error::Result;
use weaver_engine::action::charts::{ChartsOptions, ChartsReport, fetch, lock};
use weaver_source::charts::Outcome;

pub fn run(global: &GlobalArgs, ui: &Ui, command: &ChartsCommand) -> Result<ExitCode> {
    let on = |progress: weaver_engine::action::Progress<'_>| ui.progress(progress);
    let report = match command {
        ChartsCommand::Lock(args) => {
            lock(&ChartsOptions { repo: global.repo.clone(), rev: None, update: args.update }, &on)?
        }
        ChartsCommand::Fetch(args) => {
            let options = ChartsOptions { repo: global.repo.clone(), rev: args.source.rev.clone(), update: false };
            fetch(&options, &on)?
        }
    };
    super::write_stdout(format(ui, &report).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn format(ui: &Ui, report: &ChartsReport) -> String {
    if report.charts.is_empty() {
        return "no release names a remote chart\n".to_string();
    }
    // Who signed each provenance file, when a repository checks them (`verify: true`).
    let signed = report.charts.iter().any(|c| c.signed_by.is_some());
    let mut header = ["CHART", "VERSION", "DIGEST", "STATUS", "RELEASES"].map(String::from).to_vec();
    if signed {
        header.push("SIGNED BY".into());
    }
    let mut rows = vec![header];
    for status in &report.charts {
        let outcome = match status.outcome {
            Outcome::Resolved => "resolved",
            Outcome::Pulled => "pulled",
            Outcome::Cached => "cached",
        };
        let asked = match status.chart.version.as_str() {
            "" => status.chart.reference(),
            version => format!("{}@{version}", status.chart.reference()),
        };
        let digest: String = status.digest.chars().take("sha256:".len() + 12).collect();
        let mut row = vec![asked, status.version.clone(), digest, outcome.into(), status.releases.join(",")];
        if signed {
            row.push(status.signed_by.clone().unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let mut text = super::table(ui, &rows);
    if report.lock_written {
        text.push_str(&format!("wrote {}\n", weaver_source::charts::LOCK_FILE));
    }
    text.push_str(&format!("chart cache: {}\n", report.cache.display()));
    text
}
