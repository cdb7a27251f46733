//! `weaver drift`: what changed in the cluster since each release's last deployed revision, as
//! text, JUnit XML, or a report (JSON, schema in docs/src/reference/json-output.md; HTML: `crate::report`);
//! for a fleet, each environment's, after a summary.

use std::process::ExitCode;

use super::progress::ApplyProgress;
use super::{Environments, Style, Ui, block_on, connect_options, write_stdout};
use crate::action::Context;
use crate::action::apply::Settings;
use crate::action::drift::{CorrectOptions, Corrected, DriftOptions, correct as correct_drift, drift};
use crate::action::fleet::{self, FleetContext, Outcome};
use crate::cli::{DriftArgs, DriftFormat, GlobalArgs};
use crate::cluster::SharedServers;
use crate::drift::{ObjectDrift, ReleaseDrift, Report, State};
use crate::error::{Error, Result};
use crate::report::json::{DriftReport, FleetReport};
use crate::report::{self, drift_lines};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DriftArgs) -> Result<ExitCode> {
    let options = |env: &str, servers: Option<SharedServers>| DriftOptions {
        selection: super::selection(global, &args.select, env),
        connect: connect_options(&args.cluster),
        concurrency: args.concurrency,
        servers,
    };
    let environments = match super::environments(global, &args.select)? {
        Environments::One(env) if args.correct => return correct(ui, args, options(&env, None)),
        Environments::One(env) => return one(ui, args, &options(&env, None)),
        Environments::Fleet(environments) => environments,
    };
    if args.correct {
        return Err(super::one_environment_only(
            "--correct corrects one environment",
            &environments,
            "select one environment with --env NAME; each environment's correction takes its own lock",
        ));
    }
    // Environments that reach one server share its budget of requests in flight, and discovery.
    let servers = SharedServers::new(args.concurrency);
    let options = |env: &str| options(env, Some(servers.clone()));
    if args.output == DriftFormat::Html {
        return Err(super::one_environment_only(
            "-o html shows one environment",
            &environments,
            "select one environment with --env NAME, or use -o json or -o junit for a fleet",
        ));
    }
    let reports = fleet::drift(
        &environments,
        options,
        FleetContext { redactor: &ui.redactor, on: &|env, p| ui.fleet_progress(env, p) },
    );
    for report in reports.iter().filter_map(|o| o.result.as_ref().ok()) {
        tell_revisions(ui, report, true);
    }
    let results: Vec<(&str, std::result::Result<&Report, String>)> = reports
        .iter()
        .map(|o| (o.environment.as_str(), o.result.as_ref().map_err(|err| super::error_text(ui, err))))
        .collect();
    let text = match args.output {
        DriftFormat::Json => {
            report::json::to_text(&FleetReport::new(&results, |r, _| DriftReport::new(r), |r| r.has_drift()))
        }
        DriftFormat::Junit => report::junit::fleet_junit(&results),
        _ => fleet_text(ui, &reports),
    };
    super::report_failures(ui, &reports);
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    let drifted = reports.iter().any(|o| o.result.as_ref().is_ok_and(Report::has_drift));
    Ok(super::fleet_exit_code(&reports, drifted))
}

/// One environment, as `weaver drift --env NAME` always showed it.
fn one(ui: &Ui, args: &DriftArgs, options: &DriftOptions) -> Result<ExitCode> {
    let report = block_on(drift(options, &|p| ui.progress(p)))?;
    write_report(ui, args, &report)?;
    Ok(if report.has_drift() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// One environment's report, in the format asked.
fn write_report(ui: &Ui, args: &DriftArgs, report: &Report) -> Result<()> {
    tell_revisions(ui, report, false);
    let text = match args.output {
        DriftFormat::Text => text_report(ui, report),
        DriftFormat::Json => report::json::to_text(&DriftReport::new(report)),
        DriftFormat::Junit => report::junit::junit_report(report),
        DriftFormat::Html => report::html::drift(report, &ui.redactor),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())
}

/// `drift --correct`: the drift found, what the correction did about it, in the format asked.
/// Exit 1 when a correction failed (after the report), else 2 when drift was found, else 0.
fn correct(ui: &Ui, args: &DriftArgs, drift: DriftOptions) -> Result<ExitCode> {
    let settings = Settings {
        dry_run: args.dry_run,
        wait: false,
        timeout: args.timeout,
        // Putting back what someone changed by hand takes the field back from them, as an
        // apply with --force-conflicts does; ignoreDifferences keeps the fields of owners.
        force_conflicts: true,
        prune: false,
        concurrency: args.concurrency,
        lock_timeout: args.lock_timeout,
    };
    let progress = ApplyProgress::quiet(ui, &settings);
    let options = CorrectOptions { drift, settings };
    let Corrected { report, applied } = block_on(correct_drift(
        &options,
        Context { redactor: &ui.redactor, on: &|p| progress.on(p) },
        &progress.interrupted,
    ))?;
    write_report(ui, args, &report)?;
    if let Some(lost) = applied.and_then(|a| a.lock_lost) {
        return Err(lost);
    }
    if report.correction.is_some_and(|c| c.failed) {
        return Err(Error::new(format!("the drift correction of environment `{}` failed", report.environment))
            .with_help("the report says which objects were not corrected, and why; the others were"));
    }
    Ok(if report.has_drift() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Which revision each release is compared with (-v, naming the environment in a fleet), and
/// which have none.
fn tell_revisions(ui: &Ui, report: &Report, fleet: bool) {
    let environment = if fleet { format!("environment `{}`, ", report.environment) } else { String::new() };
    for release in &report.releases {
        match &release.revision {
            Some(revision) => ui.info(&format!(
                "{environment}release `{}`: revision {} of {}{}",
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
}

/// A fleet's drift as text: a summary table, then each environment's drift as one
/// environment's shows it.
fn fleet_text(ui: &Ui, reports: &[Outcome<Report>]) -> String {
    let mut rows = vec![["ENVIRONMENT", "DRIFTED", "MISSING", "IN SYNC", "RESULT"].map(String::from).to_vec()];
    for outcome in reports {
        rows.push(match &outcome.result {
            Ok(report) => {
                let s = report.summary();
                let result = if report.has_drift() { "drift" } else { "in sync" };
                [&outcome.environment, &s.drifted.to_string(), &s.missing.to_string(), &s.in_sync.to_string(), result]
                    .map(String::from)
                    .to_vec()
            }
            Err(_) => [&outcome.environment, "-", "-", "-", "failed"].map(String::from).to_vec(),
        });
    }
    let mut out = super::fleet_heading(ui, reports, "drifted", Report::has_drift);
    out.push_str(&super::table(ui, &rows));
    for outcome in reports {
        out.push_str(&super::fleet_section(ui, &outcome.environment));
        match &outcome.result {
            Ok(report) => out.push_str(&text_report(ui, report)),
            Err(_) => out.push_str("failed: the error is on standard error\n"),
        }
    }
    out
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
        for object in release.objects.iter().filter(|o| o.state != State::InSync || o.ignored > 0) {
            let style = match object.state {
                State::Missing => Style::Red,
                State::Drifted => Style::Yellow,
                State::InSync => Style::Dim,
            };
            out.push_str(&ui.paint(color, style, &ui.paint(color, Style::Bold, &header(object, release))));
            out.push('\n');
            if let Some(note) = crate::report::ignored_note(object.ignored) {
                out.push_str(&ui.paint(color, Style::Dim, &format!("    {note}")));
                out.push('\n');
            }
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
            if let Some(correction) = &object.correction {
                let (note, failed) = report::correction_note(correction, report.correction.is_some_and(|c| c.dry_run));
                let style = if failed { Style::Red } else { Style::Green };
                out.push_str(&format!("    {}\n", ui.paint(color, style, &note)));
            }
        }
    }
    let dry_run = report.correction.is_some_and(|c| c.dry_run);
    for line in report.releases.iter().filter_map(|r| report::correction_line(r, dry_run)) {
        out.push_str(&line);
        out.push('\n');
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
