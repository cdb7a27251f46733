//! `weaver diff -o markdown`: a plan for a pull-request comment. A summary (totals and a table
//! per release) always comes first and is never cut; then a collapsible block per changed
//! object with its diff. Past the size limit the largest diffs are cut first, with a note that
//! names them. The same plan always gives the same text, so a bot can update its comment.

use std::collections::BTreeMap;

use super::action_sign;
use super::json::{DiffObject, DiffReport, FleetReport};
use super::{Note, html_escape};
use weaver_plan::plan::{Action, Summary};
use weaver_secrets::Redactor;

/// GitHub refuses comments longer than this (in characters).
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// What replaces a diff that was cut.
const CUT: &str = "_Diff cut to fit the comment; `weaver diff` shows it._\n";

/// How many cut objects the note names; the rest are counted.
const NAMED: usize = 20;

/// One changed object: its header, and its diff as a fenced block (which may be cut).
struct Block {
    name: String,
    summary: String,
    diff: String,
    cut: bool,
}

impl Block {
    fn text(&self) -> String {
        let body = if self.cut { CUT } else { &self.diff };
        format!("<details><summary>{}</summary>\n\n{body}\n</details>\n\n", self.summary)
    }

    /// The length of [`Block::text`] in characters, cut or not.
    fn length(&self, cut: bool) -> usize {
        let frame = "<details><summary></summary>\n\n\n</details>\n\n".len();
        frame + self.summary.chars().count() + if cut { CUT.chars().count() } else { self.diff.chars().count() }
    }
}

/// The plan as Markdown, at most `limit` characters unless the summary alone is longer.
/// Every piece of text is redacted before it is measured and escaped.
pub fn diff(report: &DiffReport, redactor: &Redactor, limit: usize) -> String {
    let summary = summary(report);
    let mut blocks: Vec<Block> =
        report.objects.iter().filter(|o| o.action != Action::Unchanged).map(|o| block(o, redactor)).collect();
    // Largest first; ties in plan order, so the cut is deterministic.
    let mut by_size: Vec<usize> = (0..blocks.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(blocks[i].diff.len()), i));
    let mut length = summary.chars().count() + blocks.iter().map(|b| b.length(false)).sum::<usize>();
    let (mut cut, mut shown) = (0, blocks.len());
    let mut note = String::new();
    while length + note.chars().count() > limit {
        if cut < by_size.len() {
            let block = &mut blocks[by_size[cut]];
            length -= block.length(false) - block.length(true);
            block.cut = true;
            cut += 1;
        } else if shown > 0 {
            // Every diff is cut and it is still too long: leave out whole blocks, last first.
            shown -= 1;
            length -= blocks[shown].length(true);
        } else {
            break;
        }
        note = cut_note(&blocks, &by_size[..cut], blocks.len() - shown, limit);
    }
    let mut out = summary;
    out.push_str(&note);
    for block in &blocks[..shown] {
        out.push_str(&block.text());
    }
    out
}

/// A fleet's plans: a table of each environment's totals, then a collapsible section per
/// environment that changes something or failed, holding its plan as [`diff`] writes it (or
/// its error). At most `limit` characters unless the table alone is longer: each section gets
/// an equal share of what the table leaves, and what a smaller one does not use goes to the
/// larger ones.
pub fn fleet_diff(fleet: &FleetReport<DiffReport>, redactor: &Redactor, limit: usize) -> String {
    let plans: Vec<(&str, Result<&DiffReport, &str>)> = fleet
        .environments
        .iter()
        .map(|e| (e.environment.as_ref(), e.report.as_ref().ok_or(e.error.as_deref().unwrap_or_default())))
        .collect();
    let mut out = format!("### weaver diff: {} environments\n\n", plans.len());
    // Every environment of a fleet is planned in one mode: the first report says which.
    let first = plans.iter().find_map(|(_, plan)| plan.ok());
    let mode = first.map_or("client", |report| &report.mode);
    let base = first.and_then(|report| report.base.as_deref());
    out.push_str(&rendered_from(fleet.commit.as_deref(), fleet.dirty, mode, base));
    out.push_str("| Environment | Create | Update | Delete | Unchanged |\n| :-- | --: | --: | --: | --: |\n");
    for (env, plan) in &plans {
        out.push_str(&match plan {
            Ok(report) => {
                let c = report.summary;
                format!("| `{env}` | {} | {} | {} | {} |\n", c.create, c.update, c.delete, c.unchanged)
            }
            Err(_) => format!("| `{env}` | failed | | | |\n"),
        });
    }
    out.push('\n');
    let section = |env: &str, plan: &Result<&DiffReport, &str>, limit: usize| -> String {
        let (title, body) = match plan {
            Ok(report) => {
                let c = report.summary;
                let title = format!("{} to create, {} to update, {} to delete", c.create, c.update, c.delete);
                (title, diff(report, redactor, limit.saturating_sub(SECTION_FRAME + env.len() + 60)))
            }
            Err(error) => {
                ("failed".to_string(), format!("```\n{}\n```\n", redactor.redact(error).replace("```", "'''")))
            }
        };
        format!("<details><summary><code>{}</code>: {title}</summary>\n\n{body}\n</details>\n\n", html_escape(env))
    };
    let shown: Vec<(usize, &str, &Result<&DiffReport, &str>)> = plans
        .iter()
        .enumerate()
        .filter(|(_, (_, plan))| plan.as_ref().map_or(true, |p| p.has_changes()))
        .map(|(i, (env, plan))| (i, *env, plan))
        .collect();
    let mut texts: Vec<(usize, String)> =
        shown.iter().map(|&(i, env, plan)| (i, section(env, plan, usize::MAX))).collect();
    let length = |text: &str| text.chars().count();
    if length(&out) + texts.iter().map(|(_, t)| length(t)).sum::<usize>() > limit {
        // Smallest first: each takes at most its share of what is left.
        texts.sort_by_key(|(i, text)| (length(text), *i));
        let mut left = limit.saturating_sub(length(&out));
        let count = texts.len();
        for (done, (i, text)) in texts.iter_mut().enumerate() {
            let share = left / (count - done);
            if length(text) > share {
                let (_, env, plan) = shown.iter().find(|(j, ..)| j == i).expect("a shown section");
                *text = section(env, plan, share);
            }
            left = left.saturating_sub(length(text));
        }
        texts.sort_by_key(|(i, _)| *i);
    }
    for (_, text) in texts {
        out.push_str(&text);
    }
    out
}

/// What [`fleet_diff`]'s frame of a section takes besides the environment's name and totals.
const SECTION_FRAME: usize = "<details><summary><code></code>: </summary>\n\n\n</details>\n\n".len();

/// `Rendered from commit `…`, client mode.`, when rendered from a commit.
fn rendered_from(commit: Option<&str>, dirty: Option<bool>, mode: &str, base: Option<&str>) -> String {
    let dirty = if dirty == Some(true) { " with uncommitted changes" } else { "" };
    match (commit, base) {
        (Some(commit), Some(base)) => format!(
            "Rendered from commit `{commit}`{dirty}, compared with the render of commit `{base}` (no cluster).\n\n"
        ),
        (Some(commit), None) => format!("Rendered from commit `{commit}`{dirty}, {mode} mode.\n\n"),
        (None, _) => String::new(),
    }
}

/// Totals, then a table row per release (plan order).
fn summary(report: &DiffReport) -> String {
    let mut out = format!("### weaver diff: `{}`\n\n", report.environment);
    out.push_str(&rendered_from(report.commit.as_deref(), report.dirty, &report.mode, report.base.as_deref()));
    let total = report.summary;
    out.push_str(&format!(
        "**{} to create, {} to update, {} to delete, {} unchanged{}**\n\n",
        total.create,
        total.update,
        total.delete,
        total.unchanged,
        super::hooks_summary(report)
    ));
    for line in super::adoption_lines(report) {
        out.push_str(&format!("- {line}\n"));
    }
    if !report.adoptions.is_empty() {
        out.push('\n');
    }
    let mut order: Vec<&str> = Vec::new();
    let mut releases: BTreeMap<&str, Summary> = BTreeMap::new();
    for object in &report.objects {
        let counts = releases.entry(&object.release).or_insert_with(|| {
            order.push(&object.release);
            Summary::default()
        });
        match object.action {
            Action::Create => counts.create += 1,
            Action::Update => counts.update += 1,
            Action::Delete => counts.delete += 1,
            Action::Unchanged => counts.unchanged += 1,
        }
    }
    if !order.is_empty() {
        out.push_str("| Release | Create | Update | Delete | Unchanged |\n| :-- | --: | --: | --: | --: |\n");
        for release in order {
            let c = releases[release];
            out.push_str(&format!("| `{release}` | {} | {} | {} | {} |\n", c.create, c.update, c.delete, c.unchanged));
        }
        out.push('\n');
    }
    let running: Vec<String> =
        report.hooks.iter().filter(|h| !h.runs.is_empty()).map(|h| format!("- `{}`\n", super::hook_line(h))).collect();
    if !running.is_empty() {
        out.push_str(&format!("Hooks (run by the apply, not kept as objects):\n{}\n", running.concat()));
    }
    if !report.has_changes() {
        out.push_str("No changes.\n");
    }
    out
}

fn block(object: &DiffObject, redactor: &Redactor) -> Block {
    let name = redactor.redact(&object.object.name()).into_owned();
    let mut summary = format!(
        "<code>{} {}</code> (release <code>{}</code>) +{} −{}",
        action_sign(object.action),
        html_escape(&name),
        html_escape(&object.release),
        object.lines.added,
        object.lines.removed
    );
    for note in crate::report::object_notes(object) {
        summary.push_str(&match note {
            Note::Warning(text) => format!(" ⚠ {}", html_escape(&redactor.redact(&text))),
            Note::Info(text) => format!(" · {text}"),
        });
    }
    let text = redactor.redact(object.diff.as_deref().unwrap_or_default());
    Block { name, summary, diff: fenced(&text), cut: false }
}

/// Text in a Markdown body, `&`, `<` and `>` as entities (GitHub renders a body's HTML).
pub fn escape(text: &str) -> String {
    super::escape_markup(text, None)
}

/// `text` as a code span in a table cell: its fence longer than any backtick run in it (a
/// space inside where it begins or ends with one), `|` escaped and line breaks as spaces, so
/// that no value can end the span, the cell or the row.
pub fn code_cell(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ").replace('|', "\\|");
    let fence = "`".repeat(longest_backticks(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// A fenced `diff` block whose fence is longer than any backtick run in the text.
fn fenced(text: &str) -> String {
    let fence = "`".repeat(longest_backticks(text).max(2) + 1);
    format!("{fence}diff\n{text}{fence}\n")
}

/// The longest run of backticks in `text`: a fence around it must be longer.
fn longest_backticks(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Says which diffs were cut (the first [`NAMED`], largest first) and how many objects were
/// left out entirely.
fn cut_note(blocks: &[Block], cut: &[usize], left_out: usize, limit: usize) -> String {
    let mut names: Vec<String> =
        cut.iter().take(NAMED).map(|&i| format!("`{}`", blocks[i].name.replace('`', "'"))).collect();
    if cut.len() > NAMED {
        names.push(format!("and {} more", cut.len() - NAMED));
    }
    let mut note = format!(
        "> **{} of {} diffs cut** (the largest) to keep this comment under {limit} characters: {}.",
        cut.len(),
        blocks.len(),
        names.join(", ")
    );
    if left_out > 0 {
        note.push_str(&format!(" The last {left_out} changed objects are not listed."));
    }
    note.push_str(" Run `weaver diff` to see everything.\n\n");
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DiffContext;
    use crate::report::json::FleetCommand;
    use serde_json::json;
    use weaver_core::manifest::ObjectKey;
    use weaver_plan::plan::{ObjectPlan, Plan};

    fn config_map(name: &str, lines: usize) -> ObjectPlan {
        let data: serde_json::Map<String, serde_json::Value> =
            (0..lines).map(|i| (format!("key{i:05}"), json!("value"))).collect();
        let key = ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
        };
        ObjectPlan {
            after: Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": data})),
            ..ObjectPlan::new("app", "v1".into(), key, Action::Create)
        }
    }

    /// The plan's Markdown, as `diff -o markdown` writes it for environment `dev`.
    fn diff(plan: &Plan, limit: usize) -> String {
        let context = DiffContext { environment: "dev", mode: "client", provenance: None, base: None };
        super::diff(&DiffReport::new(plan, &context, &Redactor::new()), &Redactor::new(), limit)
    }

    #[test]
    fn under_the_limit_nothing_is_cut() {
        let plan = Plan { objects: vec![config_map("small", 3), config_map("<b>", 2)], ..Plan::default() };
        let text = diff(&plan, GITHUB_COMMENT_LIMIT);
        assert!(text.contains("**2 to create, 0 to update, 0 to delete, 0 unchanged**"), "{text}");
        assert!(text.contains("| `app` | 2 | 0 | 0 | 0 |"), "{text}");
        assert!(text.contains("<code>+ v1 ConfigMap ns/&lt;b&gt;</code>"), "names are escaped: {text}");
        assert!(
            text.contains("```diff\n@@ -0,0 +1,6 @@\n+apiVersion: v1\n+kind: ConfigMap\n+data:\n+  key00000: value\n"),
            "{text}"
        );
        assert!(!text.contains("cut"), "{text}");
    }

    #[test]
    fn the_largest_diffs_are_cut_first_and_the_summary_stays() {
        let plan = Plan {
            objects: vec![config_map("small", 3), config_map("big", 500), config_map("mid", 100)],
            ..Plan::default()
        };
        let full = diff(&plan, usize::MAX);
        let limit = full.chars().count() - 100;
        let text = diff(&plan, limit);
        assert!(text.chars().count() <= limit, "{} > {limit}", text.chars().count());
        assert!(text.starts_with("### weaver diff: `dev`\n\n**3 to create"), "{text}");
        assert!(text.contains("> **1 of 3 diffs cut** (the largest) to keep this comment under"), "{text}");
        assert!(text.contains("`v1 ConfigMap ns/big`."), "{text}");
        assert!(text.contains("_Diff cut to fit the comment; `weaver diff` shows it._"), "{text}");
        assert!(text.contains("+  key00099: value"), "mid is kept: {text}");
        // A limit below even the cut blocks leaves blocks out, never the summary.
        let text = diff(&plan, 100);
        assert!(text.contains("| `app` | 3 | 0 | 0 | 0 |"), "{text}");
        assert!(text.contains("The last 3 changed objects are not listed."), "{text}");
        assert!(!text.contains("<details>"), "{text}");
    }

    #[test]
    fn thousands_of_objects_fit_with_a_bounded_note() {
        let objects: Vec<ObjectPlan> = (0..3000).map(|i| config_map(&format!("cm{i:04}"), 3)).collect();
        let text = diff(&Plan { objects, ..Plan::default() }, GITHUB_COMMENT_LIMIT);
        assert!(text.chars().count() <= GITHUB_COMMENT_LIMIT, "{}", text.chars().count());
        assert!(text.contains("| `app` | 3000 | 0 | 0 | 0 |"));
        assert!(text.contains("`v1 ConfigMap ns/cm0019`, and 2980 more."), "{}", &text[..2000]);
        assert!(text.contains(" changed objects are not listed."));
    }

    #[test]
    fn a_fleet_has_a_table_then_a_section_per_environment_within_the_limit() {
        let small = Plan { objects: vec![config_map("small", 3)], ..Plan::default() };
        let big = Plan { objects: (0..40).map(|i| config_map(&format!("big{i}"), 200)).collect(), ..Plan::default() };
        let unchanged = Plan::default();
        let results = [
            ("dev", Ok(small)),
            ("prod", Ok(big)),
            ("qa", Ok(unchanged)),
            ("broken", Err("cannot `read`".to_string())),
        ];
        let fleet = FleetReport::new(
            FleetCommand::Diff,
            None,
            &results,
            |plan, environment| {
                let context = DiffContext { environment, mode: "client", provenance: None, base: None };
                DiffReport::new(plan, &context, &Redactor::new())
            },
            DiffReport::has_changes,
        );
        let full = fleet_diff(&fleet, &Redactor::new(), usize::MAX);
        assert!(
            full.starts_with(
                "### weaver diff: 4 environments\n\n| Environment | Create | Update | Delete | Unchanged |\n"
            ),
            "{full}"
        );
        assert!(
            full.contains("| `prod` | 40 | 0 | 0 | 0 |\n| `qa` | 0 | 0 | 0 | 0 |\n| `broken` | failed | | | |\n"),
            "{full}"
        );
        assert!(
            full.contains("<details><summary><code>broken</code>: failed</summary>\n\n```\ncannot `read`\n```\n"),
            "{full}"
        );
        assert!(!full.contains("<code>qa</code>"), "an environment without changes has no section: {full}");
        let limit = 20_000;
        assert!(full.chars().count() > limit);
        let cut = fleet_diff(&fleet, &Redactor::new(), limit);
        assert!(cut.chars().count() <= limit, "{} > {limit}", cut.chars().count());
        // The small environment keeps its diff; the big one's are cut.
        assert!(cut.contains("+  key00002: value"), "{cut}");
        assert!(cut.contains("diffs cut** (the largest)"), "{cut}");
    }

    #[test]
    fn a_code_cell_holds_pipes_backticks_and_line_breaks() {
        assert_eq!(code_cell("1.0@sha256:ab"), "`1.0@sha256:ab`");
        assert_eq!(code_cell("a|b`c"), "``a\\|b`c``");
        assert_eq!(code_cell("`x\n| y"), "`` `x \\| y ``");
        let row = format!("| {} |", code_cell("v1` | **bold** | `"));
        assert_eq!(row.matches(" | ").count(), 0, "{row}");
    }

    #[test]
    fn a_fence_outlasts_backticks_in_the_diff() {
        assert_eq!(fenced("+a ```` b\n"), "`````diff\n+a ```` b\n`````\n");
        assert_eq!(fenced("+a\n"), "```diff\n+a\n```\n");
    }
}
