//! `weaver status`: the health of each release's objects, as a table or a report (JSON, schema
//! in docs/src/reference/json-output.md); for a fleet, a summary then each environment's.
//! Exit 0 when every object is healthy, 2 when one is progressing or unknown, 1 when one failed
//! (or an environment could not be read).

use std::process::ExitCode;

use super::{Environments, Ui, block_on, write_stdout};
use crate::cli::{GlobalArgs, StatusArgs, StatusFormat};
use weaver_cluster::SharedServers;
use weaver_core::error::{Error, Result};
use weaver_engine::action::fleet::{self, FleetContext, Outcome};
use weaver_engine::action::status::status;
use weaver_engine::report::json::{FleetCommand, FleetReport, StatusReport};
use weaver_engine::report::{self, object_name};
use weaver_plan::release::status::{Health, Report};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &StatusArgs) -> Result<ExitCode> {
    let options = |env: &str, servers: Option<SharedServers>| {
        super::drift_options(global, (&args.select, &args.cluster, args.concurrency), env, servers)
    };
    let environments = match super::environments(global, &args.select)? {
        Environments::One(env) => {
            let report = block_on(status(&options(&env, None), &|p| ui.progress(p)))?;
            tell_revisions(ui, &report, false);
            let text = match args.output {
                StatusFormat::Text => text_report(ui, &report),
                StatusFormat::Json => report::json::to_text(&StatusReport::new(&report)),
            };
            write_stdout(ui.redactor.redact(&text).as_bytes())?;
            return exit_code(report.health(), 1);
        }
        Environments::Fleet(environments) => environments,
    };
    // Environments that reach one server share its budget of requests in flight, and discovery.
    let servers = SharedServers::new(args.concurrency)?;
    let reports = fleet::status(
        &environments,
        |env| options(env, Some(servers.clone())),
        FleetContext::new(&ui.redactor, &|env, p| ui.fleet_progress(env, p)),
    );
    for report in reports.iter().filter_map(|o| o.result.as_ref().ok()) {
        tell_revisions(ui, report, true);
    }
    let provenance = weaver_git::provenance(&global.repo, args.select.source.rev.as_deref())?;
    let results = super::fleet_results(ui, &reports);
    let fleet = FleetReport::new(
        FleetCommand::Status,
        provenance.as_ref(),
        &results,
        |r, _| StatusReport::new(r),
        |r| r.health != Health::Healthy,
    );
    let text = match args.output {
        StatusFormat::Json => report::json::to_text(&fleet),
        StatusFormat::Text => fleet_text(ui, &reports, &fleet),
    };
    super::report_failures(ui, &reports);
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    let failed = reports.iter().filter(|o| o.result.is_err()).count();
    let worst = reports.iter().filter_map(|o| o.result.as_ref().ok()).map(Report::health).max();
    exit_code(if failed > 0 { Health::Failed } else { worst.unwrap_or(Health::Healthy) }, reports.len())
}

/// 0 healthy, 2 progressing or unknown, 1 failed: an error naming what failed, after the report.
fn exit_code(health: Health, environments: usize) -> Result<ExitCode> {
    match health {
        Health::Healthy => Ok(ExitCode::SUCCESS),
        Health::Progressing | Health::Unknown => Ok(ExitCode::from(2)),
        Health::Failed if environments > 1 => {
            Err(Error::new("some environments have failed objects, or could not be read")
                .with_help("the report says which objects failed, and why"))
        }
        Health::Failed => Err(Error::new("some objects failed")
            .with_help("the report says which, and why; `kubectl describe` shows their events")),
    }
}

/// Warns of the releases that have no revision (naming the environment in a fleet); one not
/// installed and never applied is as it should be. Says which revision is read, with -v.
fn tell_revisions(ui: &Ui, report: &Report, fleet: bool) {
    let environment = if fleet { format!("environment `{}`, ", report.environment) } else { String::new() };
    for release in &report.releases {
        match &release.revision {
            Some((revision, status)) => ui.info(&format!(
                "{environment}release `{}`: revision {} ({}) of {}",
                release.name,
                revision.number,
                status.as_str(),
                revision.time
            )),
            None if release.installed => ui.warn(&format!(
                "{environment}release `{}` has no revision of environment `{}` in namespace {}: nothing to check (never applied, or its release records were deleted)",
                release.name, report.environment, release.namespace
            )),
            None => {}
        }
    }
}

fn health_word(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::Progressing => "progressing",
        Health::Unknown => "unknown",
        Health::Failed => "failed",
    }
}

/// One environment's objects as a table, then a summary line.
fn text_report(ui: &Ui, report: &Report) -> String {
    let mut rows = vec![["RELEASE", "OBJECT", "HEALTH", "REASON"].map(String::from).to_vec()];
    for release in &report.releases {
        for object in &release.objects {
            rows.push(vec![
                release.name.clone(),
                object_name(&object.api_version, &object.key),
                health_word(object.health).to_string(),
                object.reason.clone().unwrap_or_default(),
            ]);
        }
    }
    let mut out = if rows.len() > 1 { super::table(ui, &rows) } else { String::new() };
    let s = report.summary();
    out.push_str(&format!(
        "{} healthy, {} progressing, {} unknown, {} failed",
        s.healthy, s.progressing, s.unknown, s.failed
    ));
    match s.releases_without_record {
        0 => {}
        1 => out.push_str("; 1 release without a revision"),
        n => out.push_str(&format!("; {n} releases without a revision")),
    }
    out.push('\n');
    out
}

/// A fleet's health as text: a summary table, then each environment's table.
fn fleet_text(ui: &Ui, reports: &[Outcome<Report>], fleet: &FleetReport<StatusReport>) -> String {
    let mut rows =
        vec![["ENVIRONMENT", "HEALTHY", "PROGRESSING", "UNKNOWN", "FAILED", "HEALTH"].map(String::from).to_vec()];
    for outcome in reports {
        rows.push(match &outcome.result {
            Ok(report) => {
                let s = report.summary();
                let counts = [s.healthy, s.progressing, s.unknown, s.failed].map(|n| n.to_string());
                std::iter::once(outcome.environment.clone())
                    .chain(counts)
                    .chain([health_word(report.health()).to_string()])
                    .collect()
            }
            Err(_) => [&outcome.environment, "-", "-", "-", "-", "error"].map(String::from).to_vec(),
        });
    }
    let mut out = super::fleet::heading(ui, fleet, "not healthy");
    out.push_str(&super::table(ui, &rows));
    let parts = reports.iter().map(|o| (o.environment.as_str(), o.result.as_ref().ok()));
    out.push_str(&super::fleet::sections(ui, parts, |report| text_report(ui, report)));
    out
}
