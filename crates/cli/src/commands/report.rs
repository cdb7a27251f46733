//! `weaver report merge`: the shards' JSON reports of a fleet combined (`action::report`), then
//! shown as the fleet run in one go shows its report, with its exit code.

use std::process::ExitCode;

use super::Ui;
use super::fleet::FleetFormat;
use crate::cli::{ReportCommand, ReportFormat};
use weaver_core::error::{Error, Result};
use weaver_engine::action::report::merge;
use weaver_engine::report::json::{AnyFleetReport, FleetReport};

pub fn run(ui: &Ui, command: &ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Merge(args) = command;
    let fleet = merge(&args.files)?;
    // As a fleet run prints them: its environments' errors on standard error. Every error, not
    // only those of environments without a report: a fleet apply's environment that failed
    // while applying has both, and one skipped or not started has neither.
    fn failures<R>(ui: &Ui, fleet: &FleetReport<R>) {
        for env in &fleet.environments {
            // The report holds the error as `error_text` wrote it: the message, then its help.
            let Some(text) = env.error.as_deref() else { continue };
            let error = match text.split_once("\nhelp: ") {
                Some((message, help)) => Error::new(message).with_help(help),
                None => Error::new(text),
            };
            // A fleet apply's errors name their environment already, as the run printed them;
            // diff's and drift's are the environment's own, which the run printed after its name.
            let error = match env.apply {
                Some(_) => error,
                None => error.context(format!("environment `{}`", env.environment)),
            };
            super::report_error(ui, &error);
        }
    }
    match &fleet {
        AnyFleetReport::Diff(f) => failures(ui, f),
        AnyFleetReport::Drift(f) => failures(ui, f),
        AnyFleetReport::Apply(f) => failures(ui, f),
    }
    let format = match args.output {
        ReportFormat::Text => FleetFormat::Text,
        ReportFormat::Json => FleetFormat::Json,
        ReportFormat::Markdown => FleetFormat::Markdown,
        ReportFormat::Junit => FleetFormat::Junit,
    };
    super::fleet::write(ui, &fleet, format)?;
    Ok(super::fleet::exit_code(&fleet, true))
}
