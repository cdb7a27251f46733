//! `weaver diff`: what an apply would change, as a readable diff, or a report (JSON, Markdown,
//! HTML: `crate::report`).

use std::process::ExitCode;

use similar::{ChangeTag, TextDiff};

use super::{Style, Ui, block_on, connect_options, write_stdout};
use crate::action::Context;
use crate::action::plan::{Against, PlanOptions, Planned, plan};
use crate::cli::{DiffArgs, DiffFormat, GlobalArgs};
use crate::diff::{Action, ObjectPlan, Plan};
use crate::error::Result;
use crate::report::{self, DiffContext};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DiffArgs) -> Result<ExitCode> {
    let options = PlanOptions {
        render: super::render_options(global, &args.render, &args.identity),
        against: match &args.live_from {
            Some(path) => Against::File(path.clone()),
            None => Against::Cluster(connect_options(&args.cluster)),
        },
        server_side: args.server_side,
        concurrency: args.concurrency,
        prune_releases: args.prune_releases,
    };
    let Planned { env, plan } = block_on(plan(&options, Context { redactor: &ui.redactor, on: &|p| ui.progress(p) }))?;
    let text = match args.output {
        DiffFormat::Text => text_plan(ui, &plan),
        format => {
            let provenance = crate::git::provenance(&global.repo, args.render.select.source.rev.as_deref())?;
            let mode = if args.server_side { "server" } else { "client" };
            let context = DiffContext { environment: &env.name, mode, provenance: provenance.as_ref() };
            match format {
                DiffFormat::Json => {
                    report::json::to_text(&report::json::DiffReport::new(&plan, &context, &ui.redactor))
                }
                DiffFormat::Markdown => {
                    report::markdown::diff(&plan, &context, &ui.redactor, report::markdown::GITHUB_COMMENT_LIMIT)
                }
                _ => report::html::diff(&plan, &context, &ui.redactor),
            }
        }
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    Ok(if args.exit_code && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `~ apps/v1 Deployment shop/web (release web)`
fn header(object: &ObjectPlan) -> String {
    let name = report::object_name(&object.api_version, &object.key);
    format!("{} {name} (release {})", report::action_sign(object.action), object.release)
}

fn text_plan(ui: &Ui, plan: &Plan) -> String {
    let color = ui.color_stdout;
    let mut out = String::new();
    for line in report::adoption_lines(plan) {
        out.push_str(&ui.paint(color, Style::Cyan, &ui.paint(color, Style::Bold, &line)));
        out.push('\n');
    }
    for object in plan.objects.iter().filter(|o| o.action != Action::Unchanged) {
        let style = match object.action {
            Action::Create => Style::Green,
            Action::Delete => Style::Red,
            _ => Style::Yellow,
        };
        out.push_str(&ui.paint(color, style, &ui.paint(color, Style::Bold, &header(object))));
        out.push('\n');
        if let Some(conflict) = &object.conflict {
            out.push_str(&ui.paint(
                color,
                Style::Yellow,
                &format!("! conflict (apply needs --force-conflicts): {conflict}"),
            ));
            out.push('\n');
        }
        let (before, after) = report::yaml_pair(object);
        let diff = TextDiff::from_lines(&before, &after);
        for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
            out.push_str(&ui.paint(color, Style::Cyan, &hunk.header().to_string()));
            out.push('\n');
            for change in hunk.iter_changes() {
                let (sign, style) = match change.tag() {
                    ChangeTag::Delete => ('-', Some(Style::Red)),
                    ChangeTag::Insert => ('+', Some(Style::Green)),
                    ChangeTag::Equal => (' ', None),
                };
                let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
                out.push_str(&match style {
                    Some(style) => ui.paint(color, style, &line),
                    None => line,
                });
                out.push('\n');
            }
        }
    }
    for hook in plan.hooks.iter().filter(|h| !h.runs.is_empty()) {
        out.push_str(&ui.paint(color, Style::Cyan, &ui.paint(color, Style::Bold, &report::hook_line(hook))));
        out.push('\n');
    }
    let summary = plan.summary();
    let adopted = plan.objects.iter().filter(|o| o.adopt).count();
    let adopted = if adopted > 0 { format!("; {adopted} adopted from Helm") } else { String::new() };
    out.push_str(&format!(
        "{} to create, {} to update, {} to delete, {} unchanged{adopted}{}\n",
        summary.create,
        summary.update,
        summary.delete,
        summary.unchanged,
        report::hooks_summary(plan)
    ));
    out
}
