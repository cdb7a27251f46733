//! `weaver diff`: what an apply would change, as a readable diff or a JSON plan.

use std::process::ExitCode;

use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

use super::{Style, Ui, block_on, connect_options, write_stdout};
use crate::action::Context;
use crate::action::plan::{Against, PlanOptions, Planned, plan};
use crate::cli::{DiffArgs, GlobalArgs, ListFormat};
use crate::diff::{Action, ObjectPlan, Plan};
use crate::error::Result;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DiffArgs) -> Result<ExitCode> {
    let options = PlanOptions {
        render: super::render_options(global, &args.select, &args.identity),
        against: match &args.live_from {
            Some(path) => Against::File(path.clone()),
            None => Against::Cluster(connect_options(&args.cluster)),
        },
        server_side: args.server_side,
        concurrency: args.concurrency,
    };
    let Planned { env, plan } = block_on(plan(&options, Context { redactor: &ui.redactor, on: &|p| ui.progress(p) }))?;
    let text = match args.output {
        ListFormat::Text => text_plan(ui, &plan),
        ListFormat::Json => {
            let mode = if args.server_side { "server" } else { "client" };
            let mut text = serde_json::to_string_pretty(&json_plan(&plan, &env.name, mode)).expect("plans serialize");
            text.push('\n');
            text
        }
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    Ok(if args.exit_code && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `~ apps/v1 Deployment shop/web (release web)`
fn header(object: &ObjectPlan) -> String {
    let sign = match object.action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Unchanged => "=",
    };
    format!("{sign} {} (release {})", super::object_name(&object.api_version, &object.key), object.release)
}

/// The object's YAML before and after the apply (empty where it does not exist).
fn yaml_pair(object: &ObjectPlan) -> (String, String) {
    let yaml = |v: &Option<Value>| v.as_ref().map(crate::yaml::to_yaml_string).unwrap_or_default();
    (yaml(&object.before), yaml(&object.after))
}

/// The unified diff of one object's YAML, with three lines of context.
fn unified(object: &ObjectPlan) -> String {
    let (before, after) = yaml_pair(object);
    TextDiff::from_lines(&before, &after).unified_diff().context_radius(3).to_string()
}

fn text_plan(ui: &Ui, plan: &Plan) -> String {
    let color = ui.color_stdout;
    let mut out = String::new();
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
        let (before, after) = yaml_pair(object);
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
    let summary = plan.summary();
    out.push_str(&format!(
        "{} to create, {} to update, {} to delete, {} unchanged\n",
        summary.create, summary.update, summary.delete, summary.unchanged
    ));
    out
}

/// The JSON plan; its schema is documented in the README ("Diff → JSON output").
fn json_plan(plan: &Plan, environment: &str, mode: &str) -> Value {
    let objects: Vec<Value> = plan
        .objects
        .iter()
        .map(|object| {
            json!({
                "action": object.action,
                "release": object.release,
                "apiVersion": object.api_version,
                "kind": object.key.kind,
                "namespace": object.key.namespace,
                "name": object.key.name,
                "changes": object.changes,
                "conflict": object.conflict,
                "diff": (object.action != Action::Unchanged).then(|| unified(object)),
            })
        })
        .collect();
    json!({
        "schemaVersion": 1,
        "environment": environment,
        "mode": mode,
        "summary": plan.summary(),
        "objects": objects,
    })
}
