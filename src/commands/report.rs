//! `weaver report merge`: the shards' JSON reports of a fleet combined (`action::report`), then
//! shown as the fleet run in one go shows its report, with its exit code.

use std::process::ExitCode;

use super::Ui;
use super::fleet::FleetFormat;
use crate::action::report::merge;
use crate::cli::{ReportCommand, ReportFormat};
use crate::error::{Error, Result};
use crate::report::json::{AnyFleetReport, FleetReport};

pub fn run(ui: &Ui, command: &ReportCommand) -> Result<ExitCode> {
    let ReportCommand::Merge(args) = command;
    let fleet = merge(&args.files)?;
    // As a fleet run prints them: its environments' errors on standard error.
    fn failures<R>(ui: &Ui, fleet: &FleetReport<R>) {
        for env in fleet.environments.iter().filter(|e| e.report.is_none()) {
            // The report holds the error as `error_text` wrote it: the message, then its help.
            let text = env.error.as_deref().unwrap_or("no report");
            let error = match text.split_once("\nhelp: ") {
                Some((message, help)) => Error::new(message).with_help(help),
                None => Error::new(text),
            };
            super::report_error(ui, &error.context(format!("environment `{}`", env.environment)));
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
