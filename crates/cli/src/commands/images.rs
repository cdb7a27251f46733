//! `weaver images check` and `weaver images update`: what the registries hold for the
//! environments' `imageUpdates:`, and the new tags written as pins (JSON schema in
//! docs/src/reference/json-output.md). Credentials come from the docker and helm registry
//! configs, as for OCI charts. Exit 0 when nothing is new, 2 when a tag is (or, for update, was
//! written), 1 on an error.

use std::process::ExitCode;

use serde::Serialize;

use super::{Ui, block_on, proposal, table, write_proposal, write_stdout};
use crate::cli::{GlobalArgs, ImagesCheckArgs, ImagesCommand, ImagesUpdateArgs, StatusFormat};
use weaver_core::error::Result;
use weaver_engine::action::Context;
use weaver_engine::action::images::{CheckOptions, Checks, EnvironmentCheck, ImageCheck, Update, UpdateOptions};
use weaver_engine::action::promote::PinChange;
use weaver_engine::report::json::{self, DiffReport};
use weaver_engine::report::{DiffContext, markdown};
use weaver_source::charts::http::Machine;
use weaver_source::images::Registries;

pub fn run(global: &GlobalArgs, ui: &Ui, command: &ImagesCommand) -> Result<ExitCode> {
    let machine = Machine::load(|key| std::env::var(key).ok())?;
    let registries = std::sync::Arc::new(Registries::new(
        machine,
        "the docker and helm registry configs (`docker login`, $DOCKER_CONFIG) or the credentials file",
    ));
    match command {
        ImagesCommand::Check(args) => check(global, ui, args, &registries),
        ImagesCommand::Update(args) => update(global, ui, args, registries),
    }
}

fn check(global: &GlobalArgs, ui: &Ui, args: &ImagesCheckArgs, registries: &Registries) -> Result<ExitCode> {
    let options = CheckOptions {
        repo: global.repo.clone(),
        environments: super::environment_selection(&args.environments),
        rev: None,
        concurrency: args.concurrency,
    };
    let checks = weaver_engine::action::images::check(&options, registries)?;
    let text = match args.output {
        StatusFormat::Json => json::to_text(&CheckReport { schema_version: 1, checks: &checks }),
        StatusFormat::Text => {
            checks.environments.iter().map(|e| environment_text(ui, e)).collect::<Vec<_>>().join("\n")
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(if checks.has_new() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `weaver images check -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckReport<'a> {
    schema_version: u32,
    #[serde(flatten)]
    checks: &'a Checks,
}

/// An environment's images: a row per image, then why each other tag was not taken.
fn environment_text(ui: &Ui, check: &EnvironmentCheck) -> String {
    let mut rows = vec![["IMAGE", "POLICY", "PINNED", "NEWEST", ""].map(String::from).to_vec()];
    for image in &check.images {
        rows.push(vec![
            image.image.clone(),
            image.policy.clone(),
            pinned(image),
            image.newest.clone().unwrap_or_else(|| "none allowed".to_string()),
            if image.new { "new".to_string() } else { String::new() },
        ]);
    }
    let mut text = format!("{} ({})\n", check.environment, check.file);
    text.push_str(&table(ui, &rows));
    for image in &check.images {
        let mut why = vec![format!("{} tags", image.tags)];
        if image.older > 0 {
            why.push(format!("{} older", image.older));
        }
        why.extend(image.skipped.iter().chain(&image.passed_over).map(ToString::to_string));
        text.push_str(&format!("  {}: {}\n", image.image, why.join("; ")));
        if let (Some(newest), Some(signer)) = (&image.newest, &image.signed_by) {
            text.push_str(&format!("  {}: {newest} is signed by {signer}\n", image.image));
        }
        if let Some(why) = &image.held_back {
            text.push_str(&format!("  {}: not proposed: {why}\n", image.image));
        }
    }
    text
}

/// The pin, or each release's where they differ.
fn pinned(image: &ImageCheck) -> String {
    let mut pins: Vec<&Option<String>> = image.current.values().collect();
    pins.dedup();
    match pins.as_slice() {
        [one] => one.as_deref().unwrap_or("none").to_string(),
        _ => image
            .current
            .iter()
            .map(|(release, pin)| format!("{release}={}", pin.as_deref().unwrap_or("none")))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn update(
    global: &GlobalArgs,
    ui: &Ui,
    args: &ImagesUpdateArgs,
    registries: std::sync::Arc<Registries>,
) -> Result<ExitCode> {
    let options = UpdateOptions { environment: args.env.clone(), proposal: proposal(global, &args.proposal) };
    let update = block_on(weaver_engine::action::images::update(
        &options,
        registries,
        Context::new(&ui.redactor, &|p| ui.progress(p)),
    ))?;
    let provenance = weaver_git::provenance(&global.repo, Some("HEAD"))?;
    let report = UpdateReport::new(&update, provenance.as_ref(), &ui.redactor);
    write_proposal(ui, &args.proposal, body(&report, &ui.redactor), || json::to_text(&report))?;
    if let Some((branch, commit)) = &update.commit {
        ui.status(&format!("image pins committed on branch `{branch}` ({})", &commit[..8]));
    }
    Ok(if update.changes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// `weaver images update -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateReport<'a> {
    schema_version: u32,
    dry_run: bool,
    /// The new branch and its commit; null when nothing was written.
    branch: Option<&'a str>,
    commit: Option<&'a str>,
    #[serde(flatten)]
    check: &'a EnvironmentCheck,
    changes: &'a [PinChange],
    /// The environment's plan with the new pins, as `weaver diff -o json` writes it; null when
    /// nothing is new.
    plan: Option<DiffReport<'a>>,
    requests: u64,
}

impl<'a> UpdateReport<'a> {
    fn new(
        update: &'a Update,
        provenance: Option<&'a weaver_git::Provenance>,
        redactor: &weaver_secrets::Redactor,
    ) -> UpdateReport<'a> {
        let environment = &update.check.environment;
        UpdateReport {
            schema_version: 1,
            dry_run: update.dry_run,
            branch: update.commit.as_ref().map(|(branch, _)| branch.as_str()),
            commit: update.commit.as_ref().map(|(_, commit)| commit.as_str()),
            check: &update.check,
            changes: &update.changes,
            plan: update.plan.as_ref().map(|planned| {
                let context = DiffContext { environment, mode: "client", provenance, base: None };
                DiffReport::new(&planned.plan, &context, redactor)
            }),
            requests: update.requests,
        }
    }
}

/// The pull request's body: what is new, the pins, and the plan, as `weaver promote` writes it.
fn body(report: &UpdateReport, redactor: &weaver_secrets::Redactor) -> String {
    let check = report.check;
    let mut out = format!("## Image updates for `{}`\n\n", check.environment);
    out.push_str(&match (report.changes.is_empty(), report.branch) {
        (true, _) => format!("Nothing new: `{}` pins the newest tag each policy allows.\n\n", check.environment),
        (false, Some(branch)) => format!("`{}` is written on branch `{branch}`.\n\n", check.file),
        (false, None) => format!("`{}` would be written.\n\n", check.file),
    });
    out.push_str("### Images\n\n| image | policy | newest allowed | tags |\n|---|---|---|---|\n");
    for image in &check.images {
        let newest = image.newest.as_deref().map_or("none allowed".to_string(), markdown::code_cell);
        out.push_str(&format!(
            "| {} | {} | {newest} | {} |\n",
            markdown::code_cell(&image.image),
            markdown::code_cell(&image.policy),
            image.tags
        ));
    }
    out.push('\n');
    out.push_str(&super::pinned_changes(report.changes, redactor));
    if let Some(plan) = &report.plan {
        out.push_str(&markdown::diff(plan, redactor, markdown::GITHUB_COMMENT_LIMIT));
    }
    out
}
