//! `weaver import helmfile [FILE]` and `weaver import flux [PATH]`: environment files from a
//! helmfile or a Flux repository. Prints the files
//! written on stdout, and on stderr what was not converted, one `FILE:LINE` line each; exits 2
//! when something was left out.

use std::process::ExitCode;

use super::Ui;
use crate::cli::{GlobalArgs, ImportCommand};
use weaver_core::error::Result;
use weaver_engine::action::import::{ImportFluxOptions, ImportOptions, import_flux, import_helmfile};

pub fn run(global: &GlobalArgs, ui: &Ui, command: &ImportCommand) -> Result<ExitCode> {
    let report = match command {
        ImportCommand::Helmfile(args) => import_helmfile(&ImportOptions {
            repo: global.repo.clone(),
            helmfile: args.file.clone(),
            force: args.replace.force,
        })?,
        ImportCommand::Flux(args) => import_flux(&ImportFluxOptions {
            repo: global.repo.clone(),
            path: args.path.clone(),
            force: args.replace.force,
            clusters: args.clusters.clone(),
        })?,
    };
    let mut out = String::new();
    for file in &report.written {
        out.push_str(&format!("wrote {}\n", file.display()));
    }
    super::write_stdout(out.as_bytes())?;
    for line in &report.notes {
        ui.status(line);
    }
    for line in &report.left_out {
        ui.status(&format!("not converted: {line}"));
    }
    if !report.remote_charts.is_empty() {
        ui.status(&format!(
            "next: `weaver charts lock` pins the remote charts ({}) in charts.lock and pulls them",
            report.remote_charts.join(", ")
        ));
    }
    if report.left_out.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    ui.status(&format!(
        "{} {} not converted (listed above): edit the environment files for what you need of {}",
        report.left_out.len(),
        if report.left_out.len() == 1 { "thing was" } else { "things were" },
        if report.left_out.len() == 1 { "it" } else { "them" },
    ));
    Ok(ExitCode::from(2))
}
