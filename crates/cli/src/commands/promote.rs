//! `weaver promote`: the gates, the pinned changes and the targets' plans as a pull request's
//! Markdown body (or JSON, schema in docs/src/reference/json-output.md), after the commit on a
//! new branch. Exit 0 when there is nothing to promote, 2 when a promotion is (or, with
//! `--dry-run`, would be) written, 1 when a gate failed or on an error.

use std::process::ExitCode;

use super::{Ui, block_on, proposal, write_proposal};
use crate::cli::{GlobalArgs, PromoteArgs};
use serde::Serialize;
use weaver_core::error::{Error, Result};
use weaver_engine::action::Context;
use weaver_engine::action::fleet::EnvironmentSelection;
use weaver_engine::action::promote::{PromoteOptions, Proposal, promote};
use weaver_engine::action::promote::{Promotions, TargetPromotion};
use weaver_engine::report::json::{self, DiffReport};
use weaver_engine::report::{DiffContext, markdown};
use weaver_secrets::Redactor;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &PromoteArgs) -> Result<ExitCode> {
    if args.to.is_empty() && args.filter.env_selectors.is_empty() {
        return Err(Error::new(
            "no target environment: give --to ENV (several, or a glob such as prod-*) or --env-selector SELECTOR",
        )
        .with_help("a target is an environment with a `promotion:` saying what it takes from which"));
    }
    let options = PromoteOptions {
        targets: EnvironmentSelection {
            envs: args.to.clone(),
            selectors: args.filter.env_selectors.clone(),
            wave: args.filter.wave,
            shard: None,
            max_file_bytes: None,
        },
        record_key: weaver_secrets::record_key::RecordKey::from_environment()?,
        proposal: Proposal { rev: args.source.rev.clone(), ..proposal(global, &args.proposal) },
    };
    let promotions = block_on(promote(&options, Context::new(&ui.redactor, &|p| ui.progress(p))))?;
    let provenance = weaver_git::provenance(&global.repo, Some(args.source.rev.as_deref().unwrap_or("HEAD")))?;
    let report = PromoteReport::new(&promotions, provenance.as_ref(), &ui.redactor);
    let body = body(&report, &ui.redactor, markdown::GITHUB_COMMENT_LIMIT);
    write_proposal(ui, &args.proposal, body, || json::to_text(&report))?;
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

/// `weaver promote -o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromoteReport<'a> {
    pub schema_version: u32,
    pub dry_run: bool,
    /// The new branch and its commit; null when nothing was written.
    pub branch: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub targets: Vec<PromoteTarget<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromoteTarget<'a> {
    #[serde(flatten)]
    pub promotion: &'a TargetPromotion,
    /// Whether every gate passed.
    pub passed: bool,
    /// The target's plan with the change, as `weaver diff -o json` writes it; null when
    /// nothing changes or a gate failed.
    pub plan: Option<DiffReport<'a>>,
}

impl<'a> PromoteReport<'a> {
    pub fn new(
        promotions: &'a Promotions,
        provenance: Option<&'a weaver_git::Provenance>,
        redactor: &weaver_secrets::Redactor,
    ) -> PromoteReport<'a> {
        let targets = promotions
            .targets
            .iter()
            .map(|target| PromoteTarget {
                promotion: target,
                passed: target.passed(),
                plan: target.plan.as_ref().map(|planned| {
                    let context =
                        DiffContext { environment: &target.environment, mode: "client", provenance, base: None };
                    DiffReport::new(&planned.plan, &context, redactor)
                }),
            })
            .collect();
        PromoteReport {
            schema_version: 1,
            dry_run: promotions.dry_run,
            branch: promotions.commit.as_ref().map(|(branch, _)| branch.as_str()),
            commit: promotions.commit.as_ref().map(|(_, commit)| commit.as_str()),
            targets,
        }
    }
}

/// `weaver promote`'s pull-request body: per target, the gates with their evidence, the pinned
/// changes, and the target's plan as `weaver diff -o markdown` writes it (the plans share the size limit).
fn body(report: &PromoteReport, redactor: &Redactor, limit: usize) -> String {
    let mut out = String::new();
    let plans = report.targets.iter().filter(|t| t.plan.is_some()).count().max(1);
    for target in &report.targets {
        let promotion = target.promotion;
        out.push_str(&format!("## Promote `{}` → `{}`\n\n", promotion.from, promotion.environment));
        out.push_str(&match (target.passed, promotion.changes.is_empty()) {
            (false, _) => "**Refused: a gate failed.**\n\n".to_string(),
            (true, true) => {
                format!("Nothing to promote: `{}` has what `{}` applied.\n\n", promotion.environment, promotion.from)
            }
            (true, false) => match report.branch {
                Some(branch) => format!("Every gate passed: `{}` is written on branch `{branch}`.\n\n", promotion.file),
                None => format!("Every gate passed: `{}` would be written.\n\n", promotion.file),
            },
        });
        out.push_str("### Gates\n\n");
        for gate in &promotion.gates {
            let expression =
                gate.expression.as_deref().map(|e| format!(" `{}`", e.replace('`', "'"))).unwrap_or_default();
            let verdict = if gate.passed { "✅ pass" } else { "❌ fail" };
            out.push_str(&format!("- **{}**{expression}: {verdict}\n", gate.gate));
            for line in &gate.evidence {
                out.push_str(&format!("  - {}\n", markdown::escape(&redactor.redact(line))));
            }
        }
        out.push('\n');
        out.push_str(&super::pinned_changes(&promotion.changes, redactor));
        if let Some(plan) = &target.plan {
            out.push_str(&markdown::diff(plan, redactor, limit / plans));
        }
    }
    out
}
