//! `weaver drift`: what changed in the cluster since each release's last deployed revision, as
//! text, JUnit XML, or a report (JSON, schema in docs/src/reference/json-output.md; HTML: `weaver_engine::report`);
//! for a fleet, each environment's, after a summary.

use std::process::ExitCode;

use super::fleet::FleetFormat;
use super::progress::ApplyProgress;
use super::{Environments, Ui, block_on, write_stdout};
use crate::cli::{DriftArgs, DriftFormat, GlobalArgs};
use weaver_cluster::SharedServers;
use weaver_core::error::{Error, Result};
use weaver_engine::action::Context;
use weaver_engine::action::apply::Settings;
use weaver_engine::action::drift::{CorrectOptions, Corrected, DriftOptions, correct as correct_drift, drift};
use weaver_engine::action::fleet::{self, FleetContext};
use weaver_engine::report;
use weaver_engine::report::json::{AnyFleetReport, DriftReport, FleetCommand, FleetReport};
use weaver_plan::release::drift::Report;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DriftArgs) -> Result<ExitCode> {
    let options = |env: &str, servers: Option<SharedServers>| {
        super::drift_options(global, (&args.select, &args.cluster, args.concurrency), env, servers)
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
    let servers = SharedServers::new(args.concurrency)?;
    let options = |env: &str| options(env, Some(servers.clone()));
    if args.output == DriftFormat::Html {
        return Err(super::one_environment_only(
            "-o html shows one environment",
            &environments,
            "select one environment with --env NAME, or use -o json or -o junit for a fleet",
        ));
    }
    let reports =
        fleet::drift(&environments, options, FleetContext::new(&ui.redactor, &|env, p| ui.fleet_progress(env, p)));
    for report in reports.iter().filter_map(|o| o.result.as_ref().ok()) {
        tell_revisions(ui, report, true);
    }
    let provenance = weaver_git::provenance(&global.repo, args.select.source.rev.as_deref())?;
    let results = super::fleet_results(ui, &reports);
    let report = AnyFleetReport::Drift(FleetReport::new(
        FleetCommand::Drift,
        provenance.as_ref(),
        &results,
        |r, _| DriftReport::new(r),
        |r| r.drifted,
    ));
    let format = match args.output {
        DriftFormat::Text => FleetFormat::Text,
        DriftFormat::Json => FleetFormat::Json,
        DriftFormat::Junit => FleetFormat::Junit,
        DriftFormat::Html => FleetFormat::Html,
    };
    super::report_failures(ui, &reports);
    super::fleet::write(ui, &report, format)?;
    Ok(super::fleet::exit_code(&report, true))
}

/// One environment, as `weaver drift --env NAME` always showed it.
fn one(ui: &Ui, args: &DriftArgs, options: &DriftOptions) -> Result<ExitCode> {
    let report = block_on(drift(options, Context::new(&ui.redactor, &|p| ui.progress(p))))?;
    write_report(ui, args, &report)?;
    Ok(if report.has_drift() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// One environment's report, in the format asked.
fn write_report(ui: &Ui, args: &DriftArgs, report: &Report) -> Result<()> {
    tell_revisions(ui, report, false);
    let text = match args.output {
        DriftFormat::Text => super::fleet::drift_report_text(ui, report),
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
        lock_lease: weaver_cluster::DEFAULT_LEASE_DURATION,
        plan_check: None,
        record_key: None,
        applier: None,
        // What another environment took since is its own now: a correction never takes it back.
        take_ownership: false,
    };
    let progress = ApplyProgress::quiet(ui, &settings);
    let options = CorrectOptions { drift, settings };
    let Corrected { report, applied } = block_on(correct_drift(
        &options,
        Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
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
