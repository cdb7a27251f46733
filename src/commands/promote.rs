//! `weaver promote`: the gates, the pinned changes and the targets' plans as a pull request's
//! Markdown body (or JSON, schema in docs/src/reference/json-output.md), after the commit on a
//! new branch. Exit 0 when there is nothing to promote, 2 when a promotion is (or, with
//! `--dry-run`, would be) written, 1 when a gate failed or on an error.

use std::process::ExitCode;

use super::{Ui, block_on, connect_options, write_stdout};
use crate::action::Context;
use crate::action::fleet::EnvironmentSelection;
use crate::action::promote::{PromoteOptions, promote};
use crate::cli::{GlobalArgs, PromoteArgs, PromoteFormat};
use crate::error::{Error, Result};
use crate::report;
use crate::report::json::PromoteReport;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &PromoteArgs) -> Result<ExitCode> {
    if args.to.is_empty() && args.env_selectors.is_empty() {
        return Err(Error::new(
            "no target environment: give --to ENV (several, or a glob such as prod-*) or --env-selector SELECTOR",
        )
        .with_help("a target is an environment with a `promotion:` saying what it takes from which"));
    }
    let options = PromoteOptions {
        repo: global.repo.clone(),
        targets: EnvironmentSelection {
            envs: args.to.clone(),
            selectors: args.env_selectors.clone(),
            wave: args.wave,
            shard: None,
        },
        connect: connect_options(&args.cluster),
        concurrency: args.concurrency,
        keys: crate::action::Keys::Search(args.identity.identity.clone()),
        dry_run: args.dry_run,
        branch: args.branch.clone(),
        rev: None,
        author: None,
        record_key: crate::secrets::record_key::RecordKey::from_environment()?,
        charts: crate::source::charts::Archives::Machine,
    };
    let promotions = block_on(promote(&options, Context { redactor: &ui.redactor, on: &|p| ui.progress(p) }))?;
    let provenance = crate::git::provenance(&global.repo, Some("HEAD"))?;
    let report = PromoteReport::new(&promotions, provenance.as_ref(), &ui.redactor);
    let body = report::markdown::promotion(&report, &ui.redactor, report::markdown::GITHUB_COMMENT_LIMIT);
    if let Some(path) = &args.body_file {
        std::fs::write(path, ui.redactor.redact(&body).as_bytes())
            .map_err(|err| Error::io("write the body file", path, err))?;
    }
    let text = match args.output {
        PromoteFormat::Markdown => body,
        PromoteFormat::Json => report::json::to_text(&report),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    if let Some((branch, commit)) = &promotions.commit {
        ui.status(&format!("promotion committed on branch `{branch}` ({})", &commit[..8]));
    }
    let failed: Vec<String> = promotions.targets.iter().flat_map(|t| t.refusals()).collect();
    if !failed.is_empty() {
        return Err(Error::new(format!("promotion refused, nothing written:\n  {}", failed.join("\n  ")))
            .with_help("each gate's evidence is in the body above; promote again once the source passes"));
    }
    let changed = promotions.targets.iter().any(|t| !t.changes.is_empty());
    Ok(if changed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
