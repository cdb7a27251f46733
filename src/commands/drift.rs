//! `weaver drift`: what changed in the cluster since each release's last deployed revision, as
//! text, JUnit XML, or a report (JSON, schema in docs/src/reference/json-output.md; HTML: `crate::report`).

use std::process::ExitCode;

use super::{Style, Ui, block_on, connect_options, write_stdout};
use crate::action::drift::{DriftOptions, drift};
use crate::cli::{DriftArgs, DriftFormat, GlobalArgs};
use crate::drift::{ObjectDrift, ReleaseDrift, Report, State};
use crate::error::Result;
use crate::report::{self, drift_lines};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DriftArgs) -> Result<ExitCode> {
    let options = DriftOptions {
        selection: super::selection(global, &args.select),
        connect: connect_options(&args.cluster),
        concurrency: args.concurrency,
    };
    let report = block_on(drift(&options, &|p| ui.progress(p)))?;
    for release in &report.releases {
        match &release.revision {
            Some(revision) => ui.info(&format!(
                "release `{}`: revision {} of {}{}",
                release.name,
                revision.number,
                revision.time,
                revision.commit.as_ref().map_or_else(String::new, |c| format!(", commit {c}"))
            )),
            // Not installed and never deployed is as it should be.
            None if release.installed => ui.warn(&report::no_record(release, &report.environment)),
            None => {}
        }
    }
    let text = match args.output {
        DriftFormat::Text => text_report(ui, &report),
        DriftFormat::Json => report::json::to_text(&report::json::DriftReport::new(&report)),
        DriftFormat::Junit => report::junit::junit_report(&report),
        DriftFormat::Html => report::html::drift(&report, &ui.redactor),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    Ok(if report.has_drift() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `apps/v1 Deployment shop/web`
fn object_name(object: &ObjectDrift) -> String {
    crate::report::object_name(&object.api_version, &object.key)
}

/// `~ apps/v1 Deployment shop/web (release web, revision 3)`
fn header(object: &ObjectDrift, release: &ReleaseDrift) -> String {
    let sign = match object.state {
        State::Drifted => "~",
        State::Missing => "-",
        State::InSync => "=",
    };
    let revision = release.revision.as_ref().map_or_else(String::new, |r| format!(", revision {}", r.number));
    format!("{sign} {} (release {}{revision})", object_name(object), release.name)
}

fn text_report(ui: &Ui, report: &Report) -> String {
    let color = ui.color_stdout;
    let mut out = String::new();
    for release in &report.releases {
        for object in release.objects.iter().filter(|o| o.state != State::InSync) {
            let style = if object.state == State::Missing { Style::Red } else { Style::Yellow };
            out.push_str(&ui.paint(color, style, &ui.paint(color, Style::Bold, &header(object, release))));
            out.push('\n');
            for (what, values) in drift_lines(object) {
                match values {
                    None => out.push_str(&format!("    {what}\n")),
                    Some((recorded, live)) => out.push_str(&format!(
                        "    {what}: {} → {}\n",
                        ui.paint(color, Style::Green, &recorded),
                        ui.paint(color, Style::Red, &live)
                    )),
                }
            }
        }
    }
    let summary = report.summary();
    out.push_str(&format!("{} drifted, {} missing, {} in sync", summary.drifted, summary.missing, summary.in_sync));
    match summary.releases_without_record {
        0 => {}
        1 => out.push_str("; 1 release without a deployed revision"),
        n => out.push_str(&format!("; {n} releases without a deployed revision")),
    }
    out.push('\n');
    out
}
