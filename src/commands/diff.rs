//! `weaver diff`: what an apply would change, as a readable diff, or a report (JSON, Markdown,
//! HTML: `crate::report`); for a fleet, each environment's, after a summary.

use std::process::ExitCode;

use similar::{ChangeTag, TextDiff};

use super::{Environments, Style, Ui, block_on, connect_options, write_stdout};
use crate::action::Context;
use crate::action::fleet::{self, FleetContext, Outcome};
use crate::action::plan::{Against, PlanOptions, Planned, plan};
use crate::cli::{DiffArgs, DiffFormat, GlobalArgs};
use crate::cluster::SharedServers;
use crate::diff::{Action, ObjectPlan, Plan};
use crate::error::Result;
use crate::report::json::{DiffReport, FleetReport};
use crate::report::{self, DiffContext};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DiffArgs) -> Result<ExitCode> {
    let options = |env: &str, servers: Option<SharedServers>| PlanOptions {
        render: super::render_options(global, &args.render, env, &args.identity),
        against: match &args.live_from {
            Some(path) => Against::File(path.clone()),
            None => Against::Cluster(connect_options(&args.cluster)),
        },
        server_side: args.server_side,
        concurrency: args.concurrency,
        prune_releases: args.prune_releases,
        servers,
    };
    let environments = match super::environments(global, &args.render.select)? {
        Environments::One(env) => return one(global, ui, args, &options(&env, None)),
        Environments::Fleet(environments) => environments,
    };
    // Environments that reach one server share its budget of requests in flight, and discovery.
    let servers = SharedServers::new(args.concurrency);
    let options = |env: &str| options(env, Some(servers.clone()));
    if args.output == DiffFormat::Html {
        return Err(super::one_environment_only(
            "-o html shows one environment",
            &environments,
            "select one environment with --env NAME, or use -o markdown or -o json for a fleet",
        ));
    }
    let planned = fleet::plan(
        &environments,
        options,
        FleetContext { redactor: &ui.redactor, on: &|env, p| ui.fleet_progress(env, p) },
    );
    // The environments that failed are told of even when a collision stops the others.
    super::report_failures(ui, &planned);
    fleet::refuse_collisions(&planned)?;
    let mode = if args.server_side { "server" } else { "client" };
    let text = match args.output {
        DiffFormat::Text => fleet_text(ui, &planned),
        _ => {
            let provenance = crate::git::provenance(&global.repo, args.render.select.source.rev.as_deref())?;
            let results = fleet_results(ui, &planned);
            if args.output == DiffFormat::Json {
                let report = FleetReport::new(
                    &results,
                    |planned, environment| {
                        let context = DiffContext { environment, mode, provenance: provenance.as_ref() };
                        DiffReport::new(&planned.plan, &context, &ui.redactor)
                    },
                    |planned| planned.plan.has_changes(),
                );
                report::json::to_text(&report)
            } else {
                let plans: Vec<(&str, std::result::Result<&Plan, &str>)> = results
                    .iter()
                    .map(|(env, result)| (*env, result.as_ref().map(|p| &p.plan).map_err(|e| e.as_str())))
                    .collect();
                report::markdown::fleet_diff(
                    &plans,
                    mode,
                    provenance.as_ref(),
                    &ui.redactor,
                    report::markdown::GITHUB_COMMENT_LIMIT,
                )
            }
        }
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    let changes = planned.iter().any(|o| o.result.as_ref().is_ok_and(|p| p.plan.has_changes()));
    Ok(super::fleet_exit_code(&planned, args.exit_code && changes))
}

/// Each environment's plan, or its error as the reports show it.
fn fleet_results<'a>(
    ui: &Ui,
    planned: &'a [Outcome<Planned>],
) -> Vec<(&'a str, std::result::Result<&'a Planned, String>)> {
    planned
        .iter()
        .map(|o| (o.environment.as_str(), o.result.as_ref().map_err(|err| super::error_text(ui, err))))
        .collect()
}

/// A fleet's plans as text: a summary table, then each environment's plan as one
/// environment's diff shows it.
fn fleet_text(ui: &Ui, planned: &[Outcome<Planned>]) -> String {
    let mut rows =
        vec![["ENVIRONMENT", "CREATE", "UPDATE", "DELETE", "UNCHANGED", "RESULT"].map(String::from).to_vec()];
    for outcome in planned {
        rows.push(match &outcome.result {
            Ok(planned) => {
                let s = planned.plan.summary();
                let result = if planned.plan.has_changes() { "changes" } else { "no changes" };
                [
                    &outcome.environment,
                    &s.create.to_string(),
                    &s.update.to_string(),
                    &s.delete.to_string(),
                    &s.unchanged.to_string(),
                    result,
                ]
                .map(String::from)
                .to_vec()
            }
            Err(_) => [&outcome.environment, "-", "-", "-", "-", "failed"].map(String::from).to_vec(),
        });
    }
    let mut out = super::fleet_heading(ui, planned, "with changes", |p: &Planned| p.plan.has_changes());
    out.push_str(&super::table(ui, &rows));
    for outcome in planned {
        out.push_str(&super::fleet_section(ui, &outcome.environment));
        match &outcome.result {
            Ok(planned) => out.push_str(&text_plan(ui, &planned.plan)),
            Err(_) => out.push_str("failed: the error is on standard error\n"),
        }
    }
    out
}

/// One environment, as `weaver diff --env NAME` always showed it.
fn one(global: &GlobalArgs, ui: &Ui, args: &DiffArgs, options: &PlanOptions) -> Result<ExitCode> {
    let Planned { env, plan, .. } =
        block_on(plan(options, Context { redactor: &ui.redactor, on: &|p| ui.progress(p) }))?;
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
    for object in plan.objects.iter().filter(|o| o.action != Action::Unchanged || o.ignored > 0) {
        let style = match object.action {
            Action::Create => Style::Green,
            Action::Delete => Style::Red,
            Action::Unchanged => Style::Dim,
            Action::Update => Style::Yellow,
        };
        out.push_str(&ui.paint(color, style, &ui.paint(color, Style::Bold, &header(object))));
        out.push('\n');
        if let Some(note) = report::ignored_note(object.ignored) {
            out.push_str(&ui.paint(color, Style::Dim, &format!("  {note}")));
            out.push('\n');
        }
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
