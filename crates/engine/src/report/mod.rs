//! Reports of plans (`weaver diff`) and drift (`weaver drift`) for machines and for people:
//! JSON for pipelines, Markdown for pull-request comments, HTML for a browser. The commands
//! choose the format; these modules only format what the plan and drift types hold. `json` also
//! holds the `-o json` documents of `apply`, `rollback`, `history`, `changed`, `envs`, `status`,
//! `sync` and the fleets'.

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use json::{DiffHook, DiffReport, ObjectIdentity};
use weaver_git::Provenance;
use weaver_helm::hooks::Event;
use weaver_plan::diff::{ChangeOp, SECRET_CHANGED_MARKER, SECRET_MARKER};
use weaver_plan::plan::{Action, ObjectPlan};
use weaver_plan::release::drift::{Correction, CorrectionResult, FieldDrift, ObjectDrift, ReleaseDrift, State};

/// What a diff report says besides the plan itself.
#[derive(Debug, Clone, Copy)]
pub struct DiffContext<'a> {
    pub environment: &'a str,
    /// `client` or `server`.
    pub mode: &'a str,
    /// The commit the releases were rendered from; None outside git.
    pub provenance: Option<&'a Provenance>,
    /// `--base`: the commit whose render the plan compares with (full SHA); None against a
    /// cluster or a file.
    pub base: Option<&'a str>,
}

/// What every format of a plan says of an object labelled as another environment's.
pub fn owner_note(owner: &weaver_plan::plan::Owner) -> String {
    format!(
        "owned by environment `{}` (release {}): an apply takes it only with --take-ownership",
        owner.environment, owner.release
    )
}

/// What every format says of an object whose apply would meet another manager's field.
pub fn conflict_note(conflict: &str) -> String {
    format!("conflict (apply needs --force-conflicts): {conflict}")
}

/// What a report says of a changed object beside its diff, in this order: its conflict and its
/// owner (warnings: an apply does not take it as it is), then the field changes
/// `ignoreDifferences` kept out.
pub fn object_notes(object: &json::DiffObject) -> Vec<Note> {
    let mut notes = Vec::new();
    notes.extend(object.conflict.as_deref().map(|conflict| Note::Warning(conflict_note(conflict))));
    notes.extend(object.owner.as_ref().map(|owner| Note::Warning(owner_note(owner))));
    notes.extend(ignored_note(object.ignored).map(Note::Info));
    notes
}

/// A note of [`object_notes`].
pub enum Note {
    Warning(String),
    Info(String),
}

/// What text reports say of an object whose field changes `ignoreDifferences` kept out; None
/// for none.
pub fn ignored_note(ignored: usize) -> Option<String> {
    match ignored {
        0 => None,
        1 => Some("1 field change ignored (ignoreDifferences)".to_string()),
        n => Some(format!("{n} field changes ignored (ignoreDifferences)")),
    }
}

/// What a drift correction did about an object, in text reports, and whether it failed.
pub fn correction_note(correction: &Correction, dry_run: bool) -> (String, bool) {
    let why = correction.message.as_deref().map_or_else(String::new, |m| format!(": {m}"));
    let dry = if dry_run { " (server dry run)" } else { "" };
    match correction.result {
        CorrectionResult::Corrected => (format!("corrected{dry}{why}"), false),
        CorrectionResult::Unchanged => (format!("nothing to correct once the lock was held{why}"), false),
        CorrectionResult::Failed => (format!("correction failed{why}"), true),
        CorrectionResult::NotApplied => (format!("not corrected{why}"), true),
    }
}

/// What a drift correction recorded or failed to do for `release`; None where it did not run.
pub fn correction_line(release: &ReleaseDrift, dry_run: bool) -> Option<String> {
    let (Some(correction), Some(corrected)) = (&release.correction, &release.revision) else { return None };
    let name = &release.name;
    Some(match (&correction.error, correction.revision) {
        (Some(error), Some(revision)) => {
            format!("release {name}: correction failed, recorded as failed revision {revision}: {error}")
        }
        (Some(error), None) => format!("release {name}: correction failed: {error}"),
        (None, Some(revision)) => {
            format!("release {name}: revision {revision} records the correction of revision {}", corrected.number)
        }
        (None, None) if dry_run => format!(
            "release {name}: revision {} would be put back (server dry run: nothing was changed)",
            corrected.number
        ),
        (None, None) => format!("release {name}: nothing was sent, no revision recorded"),
    })
}

/// `+`, `~`, `-` or `=`: the sign of an action in every format.
pub fn action_sign(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Unchanged => "=",
    }
}

/// `» hook pre-install batch/v1 Job shop/migrate (release web, weight -5): runs before the
/// release's objects`: a hook an apply runs, for the text, Markdown and HTML plans.
pub fn hook_line(hook: &DiffHook) -> String {
    let when: Vec<String> = hook
        .runs
        .iter()
        .map(|event| {
            let pre = matches!(event, Event::PreInstall | Event::PreUpgrade | Event::PreDelete | Event::PreRollback);
            format!("{event} ({} the release's objects)", if pre { "before" } else { "after" })
        })
        .collect();
    format!(
        "» hook {} (release {}, weight {}): runs at {}",
        hook.object.name(),
        hook.release,
        hook.weight,
        when.join(", then ")
    )
}

/// What a plan says once per release it adopts from Helm, before any object: the release, the
/// Helm release and revision, what the apply does to its objects, and what it leaves.
pub fn adoption_lines(report: &DiffReport) -> Vec<String> {
    let mut lines = Vec::new();
    for adoption in &report.adoptions {
        let status =
            if adoption.helm_status == "deployed" { String::new() } else { format!(", {}", adoption.helm_status) };
        lines.push(format!(
            "release `{}` will be adopted from Helm release `{}` (revision {}{status}): its {} object(s) Helm installed take weaver's labels, and their fields move from field manager `{}` to `{}` (applied with force, for this release only)",
            adoption.release, adoption.helm_release, adoption.helm_revision, adoption.objects, weaver_plan::release::adopt::HELM_MANAGER, weaver_core::manifest::MANAGER
        ));
        if !adoption.not_rendered.is_empty() {
            let names: Vec<String> = adoption.not_rendered.iter().map(ObjectIdentity::name).collect();
            lines.push(format!(
                "release `{}`: {} object(s) Helm installed are not rendered, and are left as they are (weaver prunes only what it applied): {}",
                adoption.release,
                names.len(),
                names.join(", ")
            ));
        }
    }
    lines
}

/// `, 2 hooks to run`, or nothing when no hook runs.
pub fn hooks_summary(report: &DiffReport) -> String {
    match report.hooks.iter().filter(|h| !h.runs.is_empty()).count() {
        0 => String::new(),
        1 => ", 1 hook to run".to_string(),
        n => format!(", {n} hooks to run"),
    }
}

/// The object's YAML before and after the apply (empty where it does not exist).
pub fn yaml_pair(object: &ObjectPlan) -> (String, String) {
    let yaml = |v: &Option<Value>| v.as_ref().map(weaver_yaml::to_yaml_string).unwrap_or_default();
    (yaml(&object.before), yaml(&object.after))
}

/// One object's unified diff (three lines of context) and how many lines it adds and removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDiff {
    pub text: String,
    pub added: usize,
    pub removed: usize,
}

/// The diff of a changed object; None for an unchanged one (nothing to show).
pub fn object_diff(object: &ObjectPlan) -> Option<ObjectDiff> {
    if object.action == Action::Unchanged {
        return None;
    }
    let (before, after) = yaml_pair(object);
    let diff = TextDiff::from_lines(&before, &after);
    let count = |tag| diff.iter_all_changes().filter(|c| c.tag() == tag).count();
    Some(ObjectDiff {
        text: diff.unified_diff().context_radius(3).to_string(),
        added: count(ChangeTag::Insert),
        removed: count(ChangeTag::Delete),
    })
}

/// How a line of a unified diff is shown: `add`, `del`, `hunk` (its header) or `ctx`.
pub fn diff_line_class(line: &str) -> &'static str {
    match line.as_bytes().first() {
        Some(b'+') => "add",
        Some(b'-') => "del",
        Some(b'@') => "hunk",
        _ => "ctx",
    }
}

/// One line of a side-by-side diff: its class (as [`diff_line_class`] says) and its text
/// without the sign.
pub type Side = (&'static str, String);

/// A row of a side-by-side diff: the line before and the line after (None where that side has
/// none); a hunk's header spans both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideBySide {
    pub before: Option<Side>,
    pub after: Option<Side>,
}

/// The unified diff `text` side by side: context on both sides, each run of removed lines
/// beside the added lines that follow it (what replaced them), line for line.
pub fn side_by_side(text: &str) -> Vec<SideBySide> {
    let side = |line: &str| -> Side {
        let class = diff_line_class(line);
        (class, if class == "hunk" { line.to_string() } else { line.get(1..).unwrap_or_default().to_string() })
    };
    let mut rows = Vec::new();
    let (mut removed, mut added): (Vec<Side>, Vec<Side>) = (Vec::new(), Vec::new());
    let flush = |removed: &mut Vec<Side>, added: &mut Vec<Side>, rows: &mut Vec<SideBySide>| {
        let (mut before, mut after) = (removed.drain(..), added.drain(..));
        loop {
            match (before.next(), after.next()) {
                (None, None) => break,
                (before, after) => rows.push(SideBySide { before, after }),
            }
        }
    };
    for line in text.lines() {
        match diff_line_class(line) {
            "del" if added.is_empty() => removed.push(side(line)),
            "del" => {
                flush(&mut removed, &mut added, &mut rows);
                removed.push(side(line));
            }
            "add" => added.push(side(line)),
            _ => {
                flush(&mut removed, &mut added, &mut rows);
                rows.push(SideBySide { before: Some(side(line)), after: Some(side(line)) });
            }
        }
    }
    flush(&mut removed, &mut added, &mut rows);
    rows
}

/// A value on one line: JSON, so `"1"` and `1` differ, shortened past 100 characters.
fn show(value: &Value) -> String {
    const MAX: usize = 100;
    let text = value.to_string();
    if text.chars().count() <= MAX { text } else { format!("{}…", text.chars().take(MAX).collect::<String>()) }
}

/// `(recorded, live)` as shown: Secret values as diff's markers, a removed field as `(removed)`.
fn drift_sides(change: &FieldDrift) -> (String, String) {
    let removed = "(removed)".to_string();
    match (change.redacted, change.op) {
        (true, ChangeOp::Remove) => (SECRET_MARKER.to_string(), removed),
        (true, _) => (SECRET_MARKER.to_string(), SECRET_CHANGED_MARKER.to_string()),
        (false, _) => {
            (change.recorded.as_ref().map_or_else(String::new, show), change.live.as_ref().map_or(removed, show))
        }
    }
}

/// The lines under a drifted object's header: each drifted path with its `(recorded, live)`
/// values, or why the object is missing.
pub fn drift_lines(object: &ObjectDrift) -> Vec<(String, Option<(String, String)>)> {
    match object.state {
        State::Missing => vec![(missing_message(object), None)],
        _ => object.changes.iter().map(|c| (c.path.clone(), Some(drift_sides(c)))).collect(),
    }
}

pub fn missing_message(object: &ObjectDrift) -> String {
    match &object.reason {
        Some(reason) => format!("missing from the cluster: {reason}"),
        None => "missing from the cluster".to_string(),
    }
}

/// Text for HTML content and double-quoted attributes.
fn html_escape(text: &str) -> String {
    escape_markup(text, Some("&#39;"))
}

/// `&`, `<` and `>` as entities, and with `apostrophe` (how to write `'`) both quotes too, for
/// double- or single-quoted attributes: the one escaping of the HTML and XML reports.
fn escape_markup(text: &str, apostrophe: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match (c, apostrophe) {
            ('&', _) => out.push_str("&amp;"),
            ('<', _) => out.push_str("&lt;"),
            ('>', _) => out.push_str("&gt;"),
            ('"', Some(_)) => out.push_str("&quot;"),
            ('\'', Some(apostrophe)) => out.push_str(apostrophe),
            (c, _) => out.push(c),
        }
    }
    out
}

/// Why a release has nothing to compare.
pub fn no_record(release: &weaver_plan::release::drift::ReleaseDrift, environment: &str) -> String {
    format!(
        "release `{}` has no deployed revision of environment `{environment}` in namespace {}: nothing to compare (never applied, or its release records were deleted)",
        release.name, release.namespace
    )
}

/// `apps/v1 Deployment shop/web`, `v1 Namespace shop`: an object as every command names it.
pub fn object_name(api_version: &str, key: &weaver_core::manifest::ObjectKey) -> String {
    named(api_version, &key.kind, key.namespace.as_deref(), &key.name)
}

fn named(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{api_version} {kind} {ns}/{name}"),
        None => format!("{api_version} {kind} {name}"),
    }
}

impl json::ObjectIdentity<'_> {
    /// The object as [`object_name`] names it.
    pub fn name(&self) -> String {
        named(&self.api_version, &self.kind, self.namespace.as_deref(), &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_side_by_side_pairs_what_was_removed_with_what_replaced_it() {
        let text =
            "@@ -1,4 +1,4 @@\n spec:\n-  replicas: 1\n-  paused: true\n+  replicas: 2\n   image: a\n+  added: x\n";
        let row = |before: Option<(&'static str, &str)>, after: Option<(&'static str, &str)>| SideBySide {
            before: before.map(|(c, t)| (c, t.to_string())),
            after: after.map(|(c, t)| (c, t.to_string())),
        };
        assert_eq!(
            side_by_side(text),
            [
                row(Some(("hunk", "@@ -1,4 +1,4 @@")), Some(("hunk", "@@ -1,4 +1,4 @@"))),
                row(Some(("ctx", "spec:")), Some(("ctx", "spec:"))),
                row(Some(("del", "  replicas: 1")), Some(("add", "  replicas: 2"))),
                row(Some(("del", "  paused: true")), None),
                row(Some(("ctx", "  image: a")), Some(("ctx", "  image: a"))),
                row(None, Some(("add", "  added: x"))),
            ]
        );
    }
}
