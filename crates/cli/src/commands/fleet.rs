//! A fleet's report in every format, and its exit code: what `diff`, `drift` and `apply` print
//! for a fleet, and what `report merge` prints of the shards' reports it combined. Both make a
//! [`AnyFleetReport`] (the `-o json` document) and hand it here, so a merged fleet reads exactly
//! as the fleet run in one go would. Also one environment's plan and drift as text, which the
//! fleet's text shows per environment.

use std::process::ExitCode;

use super::{Style, Ui, write_stdout};
use weaver_core::error::{Error, Result};
use weaver_engine::report::json::{AnyFleetReport, DiffReport, DriftReport, FleetApplyState, FleetReport, to_text};
use weaver_engine::report::{self, drift_lines};
use weaver_plan::plan::Action;
use weaver_plan::release::drift::{ObjectDrift, ReleaseDrift, Report, State};

/// The formats of a fleet's report; each command offers those that suit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FleetFormat {
    Text,
    Json,
    Markdown,
    Junit,
    /// A page shows one environment: no fleet has it.
    Html,
}

impl FleetFormat {
    fn name(self) -> &'static str {
        match self {
            FleetFormat::Text => "text",
            FleetFormat::Json => "json",
            FleetFormat::Markdown => "markdown",
            FleetFormat::Junit => "junit",
            FleetFormat::Html => "html",
        }
    }
}

/// Writes `fleet` to stdout in `format`, redacted. The errors of its failed environments are
/// the caller's to print (the text says they are on standard error).
pub(crate) fn write(ui: &Ui, fleet: &AnyFleetReport, format: FleetFormat) -> Result<()> {
    let text = match (fleet, format) {
        (AnyFleetReport::Diff(fleet), FleetFormat::Json) => to_text(fleet),
        (AnyFleetReport::Drift(fleet), FleetFormat::Json) => to_text(fleet),
        (AnyFleetReport::Apply(fleet), FleetFormat::Json) => to_text(fleet),
        (AnyFleetReport::Diff(fleet), FleetFormat::Text) => diff_text(ui, fleet),
        (AnyFleetReport::Diff(fleet), FleetFormat::Markdown) => {
            report::markdown::fleet_diff(fleet, &ui.redactor, report::markdown::GITHUB_COMMENT_LIMIT)
        }
        (AnyFleetReport::Drift(fleet), FleetFormat::Text) => drift_text(ui, fleet),
        (AnyFleetReport::Drift(fleet), FleetFormat::Junit) => {
            let reports: Vec<(&str, std::result::Result<Report, String>)> = fleet
                .environments
                .iter()
                .map(|e| (e.environment.as_ref(), outcome(&e.report, &e.error).map(DriftReport::to_drift)))
                .collect();
            let results: Vec<(&str, std::result::Result<&Report, String>)> =
                reports.iter().map(|(env, r)| (*env, r.as_ref().map_err(Clone::clone))).collect();
            report::junit::fleet_junit(&results)
        }
        (AnyFleetReport::Apply(fleet), FleetFormat::Text) => apply_text(ui, fleet),
        (fleet, format) => {
            let command = fleet.command().as_str();
            let formats = match fleet {
                AnyFleetReport::Diff(_) => "text, json or markdown",
                AnyFleetReport::Drift(_) => "text, json or junit",
                AnyFleetReport::Apply(_) => "text or json",
            };
            return Err(Error::new(format!("-o {} does not show {command} reports", format.name()))
                .with_help(format!("a fleet's {command} report is shown as {formats}")));
        }
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())
}

/// A fleet's exit code: 1 when an environment failed (or, for apply, did not apply), else 2
/// when `changes` are asked for and some environment has changes or drift, else 0.
pub(crate) fn exit_code(fleet: &AnyFleetReport, changes: bool) -> ExitCode {
    let (summary, apply) = match fleet {
        AnyFleetReport::Diff(fleet) => (&fleet.summary, false),
        AnyFleetReport::Drift(fleet) => (&fleet.summary, false),
        AnyFleetReport::Apply(fleet) => (&fleet.summary, true),
    };
    let not_applied = summary.apply.as_ref().is_some_and(|a| a.applied != summary.environments);
    if summary.failed > 0 || (apply && not_applied) {
        ExitCode::from(1)
    } else if changes && !apply && summary.changed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// An environment's report, or its error.
fn outcome<'r, R>(report: &'r Option<R>, error: &Option<std::borrow::Cow<str>>) -> std::result::Result<&'r R, String> {
    report.as_ref().ok_or_else(|| error.as_deref().unwrap_or("no report").to_string())
}

/// The first line of a fleet's text: `3 environments: 1 with changes, 1 failed`.
pub(crate) fn heading<R>(ui: &Ui, fleet: &FleetReport<R>, changed: &str) -> String {
    let s = &fleet.summary;
    let line = format!("{} environments: {} {changed}, {} failed", s.environments, s.changed, s.failed);
    format!("{}\n", ui.paint(ui.color_stdout, Style::Bold, &line))
}

/// Each environment's part of a fleet's text, under a line naming it: `text` of its report,
/// or, where it failed, a pointer to its error.
pub(crate) fn sections<'a, R: 'a>(
    ui: &Ui,
    environments: impl Iterator<Item = (&'a str, Option<R>)>,
    text: impl Fn(R) -> String,
) -> String {
    let mut out = String::new();
    for (env, report) in environments {
        out.push_str(&format!("\n{}\n", ui.paint(ui.color_stdout, Style::Bold, &format!("=== environment {env} ==="))));
        match report {
            Some(report) => out.push_str(&text(report)),
            None => out.push_str("failed: the error is on standard error\n"),
        }
    }
    out
}

/// The environments of `fleet` with their reports, for [`sections`].
fn parts<'f, R>(fleet: &'f FleetReport<R>) -> impl Iterator<Item = (&'f str, Option<&'f R>)> {
    fleet.environments.iter().map(|env| (env.environment.as_ref(), env.report.as_ref()))
}

/// A fleet's plans as text: a summary table, then each environment's plan as one
/// environment's diff shows it.
fn diff_text(ui: &Ui, fleet: &FleetReport<DiffReport>) -> String {
    let mut rows =
        vec![["ENVIRONMENT", "CREATE", "UPDATE", "DELETE", "UNCHANGED", "RESULT"].map(String::from).to_vec()];
    for env in &fleet.environments {
        let name = env.environment.to_string();
        rows.push(match &env.report {
            Some(report) => {
                let s = report.summary;
                let result = if report.has_changes() { "changes" } else { "no changes" };
                vec![
                    name,
                    s.create.to_string(),
                    s.update.to_string(),
                    s.delete.to_string(),
                    s.unchanged.to_string(),
                    result.to_string(),
                ]
            }
            None => [name.as_str(), "-", "-", "-", "-", "failed"].map(String::from).to_vec(),
        });
    }
    let mut out = heading(ui, fleet, "with changes");
    out.push_str(&super::table(ui, &rows));
    out.push_str(&sections(ui, parts(fleet), |report| plan_text(ui, report)));
    out
}

/// A fleet's drift as text: a summary table, then each environment's drift as one
/// environment's shows it.
fn drift_text(ui: &Ui, fleet: &FleetReport<DriftReport>) -> String {
    let mut rows = vec![["ENVIRONMENT", "DRIFTED", "MISSING", "IN SYNC", "RESULT"].map(String::from).to_vec()];
    for env in &fleet.environments {
        let name = env.environment.to_string();
        rows.push(match &env.report {
            Some(report) => {
                let s = report.summary;
                let result = if report.drifted { "drift" } else { "in sync" };
                vec![name, s.drifted.to_string(), s.missing.to_string(), s.in_sync.to_string(), result.to_string()]
            }
            None => [name.as_str(), "-", "-", "-", "failed"].map(String::from).to_vec(),
        });
    }
    let mut out = heading(ui, fleet, "drifted");
    out.push_str(&super::table(ui, &rows));
    out.push_str(&sections(ui, parts(fleet), |report| drift_report_text(ui, &report.to_drift())));
    out
}

fn state_word(state: FleetApplyState) -> &'static str {
    match state {
        FleetApplyState::Applied => "applied",
        FleetApplyState::Failed => "failed",
        FleetApplyState::Interrupted => "interrupted",
        FleetApplyState::Skipped => "skipped",
        FleetApplyState::NotStarted => "not started",
    }
}

/// A fleet apply as text: how many environments ended how, then a table of the environments
/// in the order they were applied.
fn apply_text(ui: &Ui, fleet: &FleetReport<weaver_engine::report::json::ApplyReport>) -> String {
    let counts = fleet.summary.apply.as_ref().map_or([0; 4], |a| [a.applied, a.interrupted, a.skipped, a.not_started]);
    let dry_run = fleet.environments.iter().filter_map(|e| e.report.as_ref()).any(|r| r.dry_run);
    let dry = if dry_run { " (server dry run: nothing was changed)" } else { "" };
    let heading = format!(
        "{} environments: {} applied, {} failed, {} interrupted, {} skipped, {} not started{dry}",
        fleet.summary.environments, counts[0], fleet.summary.failed, counts[1], counts[2], counts[3],
    );
    let mut rows = vec![
        ["ENVIRONMENT", "WAVE", "RESULT", "CREATED", "CONFIGURED", "UNCHANGED", "PRUNED", "FAILED", "NOTE"]
            .map(String::from)
            .to_vec(),
    ];
    for env in &fleet.environments {
        let counts = match &env.report {
            Some(report) => {
                let t = report.summary;
                [t.created, t.configured, t.unchanged, t.pruned, t.failed].map(|n| n.to_string())
            }
            None => ["-", "-", "-", "-", "-"].map(String::from),
        };
        let (wave, state, reason) = match &env.apply {
            Some(a) => (a.wave.to_string(), state_word(a.state), a.reason.as_deref().unwrap_or_default()),
            None => (String::new(), "", ""),
        };
        let mut row = vec![env.environment.to_string(), wave, state.to_string()];
        row.extend(counts);
        row.push(reason.to_string());
        rows.push(row);
    }
    format!("{}\n{}", ui.paint(ui.color_stdout, Style::Bold, &heading), super::table(ui, &rows))
}

/// `~ apps/v1 Deployment shop/web (release web)`
fn header(object: &weaver_engine::report::json::DiffObject) -> String {
    format!("{} {} (release {})", report::action_sign(object.action), object.object.name(), object.release)
}

/// One environment's plan as text: each changed object's unified diff, coloured on a TTY, then
/// the hooks that run and the totals.
pub(crate) fn plan_text(ui: &Ui, plan: &DiffReport) -> String {
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
        if let Some(owner) = &object.owner {
            out.push_str(&ui.paint(color, Style::Yellow, &format!("! {}", report::owner_note(owner))));
            out.push('\n');
        }
        if let Some(conflict) = &object.conflict {
            out.push_str(&ui.paint(color, Style::Yellow, &format!("! {}", report::conflict_note(conflict))));
            out.push('\n');
        }
        // The unified diff's lines: hunk headers, then context, removed and added lines.
        for line in object.diff.as_deref().unwrap_or_default().lines() {
            let style = match line.chars().next() {
                Some('@') => Some(Style::Cyan),
                Some('-') => Some(Style::Red),
                Some('+') => Some(Style::Green),
                _ => None,
            };
            out.push_str(&match style {
                Some(style) => ui.paint(color, style, line),
                None => line.to_string(),
            });
            out.push('\n');
        }
    }
    for hook in plan.hooks.iter().filter(|h| !h.runs.is_empty()) {
        out.push_str(&ui.paint(color, Style::Cyan, &ui.paint(color, Style::Bold, &report::hook_line(hook))));
        out.push('\n');
    }
    let summary = plan.summary;
    let adopted = plan.objects.iter().filter(|o| o.adopted).count();
    let adopted = if adopted > 0 { format!("; {adopted} adopted from Helm") } else { String::new() };
    let owned = plan.objects.iter().filter(|o| o.owner.is_some()).count();
    let owned = if owned > 0 { format!("; {owned} owned by another environment") } else { String::new() };
    out.push_str(&format!(
        "{} to create, {} to update, {} to delete, {} unchanged{adopted}{owned}{}\n",
        summary.create,
        summary.update,
        summary.delete,
        summary.unchanged,
        report::hooks_summary(plan)
    ));
    out
}

/// `~ apps/v1 Deployment shop/web (release web, revision 3)`
fn drift_header(object: &ObjectDrift, release: &ReleaseDrift) -> String {
    let sign = match object.state {
        State::Drifted => "~",
        State::Missing => "-",
        State::InSync => "=",
    };
    let revision = release.revision.as_ref().map_or_else(String::new, |r| format!(", revision {}", r.number));
    let name = weaver_engine::report::object_name(&object.api_version, &object.key);
    format!("{sign} {name} (release {}{revision})", release.name)
}

/// One environment's drift as text: each drifted or missing object with its fields, what a
/// correction did, then the totals.
pub(crate) fn drift_report_text(ui: &Ui, report: &Report) -> String {
    let color = ui.color_stdout;
    let mut out = String::new();
    for release in &report.releases {
        for object in release.objects.iter().filter(|o| o.state != State::InSync || o.ignored > 0) {
            let style = match object.state {
                State::Missing => Style::Red,
                State::Drifted => Style::Yellow,
                State::InSync => Style::Dim,
            };
            out.push_str(&ui.paint(color, style, &ui.paint(color, Style::Bold, &drift_header(object, release))));
            out.push('\n');
            if let Some(note) = weaver_engine::report::ignored_note(object.ignored) {
                out.push_str(&ui.paint(color, Style::Dim, &format!("    {note}")));
                out.push('\n');
            }
            for (what, values) in drift_lines(object) {
                match values {
                    None => out.push_str(&format!("    {what}\n")),
                    Some((recorded, live)) => out.push_str(&format!(
                        "    {what}: {} → {}\n",
                        ui.paint(color, Style::Green, &recorded),
                        ui.paint(color, Style::Red, &live)
                    )),
                }
            }
            if let Some(correction) = &object.correction {
                let (note, failed) = report::correction_note(correction, report.correction.is_some_and(|c| c.dry_run));
                let style = if failed { Style::Red } else { Style::Green };
                out.push_str(&format!("    {}\n", ui.paint(color, style, &note)));
            }
        }
    }
    let dry_run = report.correction.is_some_and(|c| c.dry_run);
    for line in report.releases.iter().filter_map(|r| report::correction_line(r, dry_run)) {
        out.push_str(&line);
        out.push('\n');
    }
    let summary = report.summary();
    out.push_str(&format!("{} drifted, {} missing, {} in sync", summary.drifted, summary.missing, summary.in_sync));
    match summary.releases_without_record {
        0 => {}
        1 => out.push_str("; 1 release without a deployed revision"),
        n => out.push_str(&format!("; {n} releases without a deployed revision")),
    }
    out.push('\n');
    out
}
