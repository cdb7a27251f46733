//! `weaver diff -o html` and `weaver drift -o html`: one self-contained page (inline CSS, no
//! script, no external asset) with a summary bar, a count per action and a collapsible block
//! per object. Every piece of text is redacted, then escaped.

use super::json::DiffReport;
use super::{Note, action_sign, drift_lines, html_escape, object_name};
use weaver_plan::plan::Action;
use weaver_plan::release::drift::{ReleaseState, Report, State};
use weaver_secrets::Redactor;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1f2328}\
h1{font-size:1.4em}.meta{color:#59636e}\
.bar{display:flex;height:12px;border-radius:6px;overflow:hidden;background:#eaeef2;margin:1em 0 .5em}\
.counts{display:flex;gap:1.5em;margin-bottom:1.5em}.counts b{font-size:1.2em}\
.create,.bar .create{background:#2da44e}.update,.bar .update,.drifted,.bar .drifted{background:#d4a72c}\
.delete,.bar .delete,.missing,.bar .missing{background:#cf222e}.unchanged,.bar .unchanged,.in-sync,.bar .in-sync{background:#8c959f}\
.counts span{padding:.2em .6em;border-radius:4px;color:#fff}\
details{border:1px solid #d0d7de;border-radius:6px;margin:.5em 0}\
summary{cursor:pointer;padding:.4em .8em;font-family:ui-monospace,monospace;background:#f6f8fa}\
.tag{display:inline-block;min-width:1.2em;text-align:center;border-radius:3px;color:#fff;margin-right:.4em}\
pre{margin:0;padding:.5em 0;overflow-x:auto;font:12px/1.45 ui-monospace,monospace}\
pre span{display:block;padding:0 .8em;white-space:pre}\
.add{background:#dafbe1}.del{background:#ffebe9}.hunk{color:#0550ae;background:#ddf4ff}.ctx{color:#1f2328}\
.k{color:#8250df}.note{color:#59636e;padding:.4em .8em}.conflict{color:#9a6700;padding:.4em .8em}\
h2{font-size:1.1em;margin-top:1.5em}\
";

/// One action or state: its CSS class, the words after its count, and the count.
struct Count<'a> {
    class: &'a str,
    label: &'a str,
    count: usize,
}

fn page(title: &str, meta: &[String], counts: &[Count], body: &str) -> String {
    let total: usize = counts.iter().map(|c| c.count).sum::<usize>().max(1);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for line in meta {
        out.push_str(&format!("<p class=\"meta\">{line}</p>\n"));
    }
    out.push_str("<div class=\"bar\" id=\"bar\">");
    for c in counts.iter().filter(|c| c.count > 0) {
        // Whole tenths of a percent: the same page for the same plan.
        let width = c.count * 1000 / total;
        out.push_str(&format!(
            "<div class=\"{}\" style=\"width:{}.{}%\" title=\"{} {}\"></div>",
            c.class,
            width / 10,
            width % 10,
            c.count,
            c.label
        ));
    }
    out.push_str("</div>\n<div class=\"counts\" id=\"counts\">");
    for c in counts {
        out.push_str(&format!("<span class=\"{0}\"><b id=\"count-{0}\">{1}</b> {2}</span>", c.class, c.count, c.label));
    }
    out.push_str("</div>\n");
    out.push_str(body);
    out.push_str("</body>\n</html>\n");
    out
}

/// A diff line by line, each classed as added, removed, context or hunk header; a YAML key at
/// the start of a line is classed as a key.
fn diff_lines(text: &str) -> String {
    let mut out = String::from("<pre>");
    for line in text.lines() {
        let class = super::diff_line_class(line);
        out.push_str(&format!("<span class=\"{class}\">{}</span>", highlight(line, class)));
    }
    out.push_str("</pre>\n");
    out
}

/// `+  name: web` with `name` classed as a key.
fn highlight(line: &str, class: &str) -> String {
    if class == "hunk" || line.is_empty() {
        return html_escape(line);
    }
    let (sign, rest) = line.split_at(1);
    let indent = rest.len() - rest.trim_start_matches([' ', '-']).len();
    let (lead, body) = rest.split_at(indent);
    match body.find(':').filter(|&i| body[i + 1..].is_empty() || body[i + 1..].starts_with(' ')) {
        Some(i) if !body.starts_with(['"', '\'', '{', '[']) => format!(
            "{}<span class=\"k\">{}</span>{}",
            html_escape(&format!("{sign}{lead}")),
            html_escape(&body[..i]),
            html_escape(&body[i..])
        ),
        _ => html_escape(line),
    }
}

/// The plan as a page.
pub fn diff(report: &DiffReport, redactor: &Redactor) -> String {
    let esc = |text: &str| html_escape(&redactor.redact(text));
    let title = format!("weaver diff: {}", esc(&report.environment));
    let mut meta = Vec::new();
    if let Some(commit) = &report.commit {
        let dirty = if report.dirty == Some(true) { " with uncommitted changes" } else { "" };
        meta.push(format!("Rendered from commit <code>{}</code>{dirty}, {} mode.", esc(commit), esc(&report.mode)));
    }
    let summary = report.summary;
    let counts = [
        Count { class: "create", label: "to create", count: summary.create },
        Count { class: "update", label: "to update", count: summary.update },
        Count { class: "delete", label: "to delete", count: summary.delete },
        Count { class: "unchanged", label: "unchanged", count: summary.unchanged },
    ];
    let mut body = String::new();
    if !report.has_changes() {
        body.push_str("<p class=\"note\">No changes.</p>\n");
    }
    let running: Vec<String> = report
        .hooks
        .iter()
        .filter(|h| !h.runs.is_empty())
        .map(|h| format!("<li><code>{}</code></li>", esc(&super::hook_line(h))))
        .collect();
    if !running.is_empty() {
        body.push_str(&format!(
            "<h2>Hooks</h2>\n<p class=\"note\">Run by the apply, not kept as objects.</p>\n<ul id=\"hooks\">{}</ul>\n",
            running.concat()
        ));
    }
    for object in report.objects.iter().filter(|o| o.action != Action::Unchanged) {
        let class = match object.action {
            Action::Create => "create",
            Action::Delete => "delete",
            _ => "update",
        };
        body.push_str(&format!(
            "<details class=\"object\" data-action=\"{class}\"><summary><span class=\"tag {class}\">{}</span>{} (release {}) +{} −{}</summary>\n",
            action_sign(object.action),
            esc(&object.object.name()),
            esc(&object.release),
            object.lines.added,
            object.lines.removed
        ));
        for note in crate::report::object_notes(object) {
            body.push_str(&match note {
                Note::Warning(text) => format!("<p class=\"conflict\">{}</p>\n", esc(&text)),
                Note::Info(text) => format!("<p class=\"note\">{}</p>\n", esc(&text)),
            });
        }
        body.push_str(&diff_lines(&redactor.redact(object.diff.as_deref().unwrap_or_default())));
        body.push_str("</details>\n");
    }
    page(&title, &meta, &counts, &body)
}

/// The drift report as a page: a section per release, a block per drifted or missing object.
pub fn drift(report: &Report, redactor: &Redactor) -> String {
    let esc = |text: &str| html_escape(&redactor.redact(text));
    let title = format!("weaver drift: {}", esc(&report.environment));
    let meta = vec![format!("Context <code>{}</code> ({}).", esc(&report.context), esc(&report.server))];
    let summary = report.summary();
    let counts = [
        Count { class: "drifted", label: "drifted", count: summary.drifted },
        Count { class: "missing", label: "missing", count: summary.missing },
        Count { class: "in-sync", label: "in sync", count: summary.in_sync },
    ];
    let mut body = String::new();
    for release in &report.releases {
        let revision = release.revision.as_ref().map_or_else(String::new, |r| {
            let commit = r.commit.as_ref().map_or_else(String::new, |c| format!(", commit <code>{}</code>", esc(c)));
            format!(": revision {} of {}{commit}", r.number, esc(&r.time))
        });
        body.push_str(&format!("<h2>Release {}{revision}</h2>\n", esc(&release.name)));
        if release.state() == ReleaseState::NoRecord {
            body.push_str("<p class=\"note\">No deployed revision: nothing to compare.</p>\n");
            continue;
        }
        let in_sync = release.objects.iter().filter(|o| o.state == State::InSync).count();
        for object in release.objects.iter().filter(|o| o.state != State::InSync) {
            let (class, sign) = if object.state == State::Missing { ("missing", "-") } else { ("drifted", "~") };
            body.push_str(&format!(
                "<details class=\"object\" data-state=\"{class}\"><summary><span class=\"tag {class}\">{sign}</span>{}</summary>\n<pre>",
                esc(&object_name(&object.api_version, &object.key))
            ));
            if let Some(note) = crate::report::ignored_note(object.ignored) {
                body.push_str(&format!("<span class=\"ctx\">{}</span>", esc(&note)));
            }
            if let Some(correction) = &object.correction {
                let (note, failed) =
                    crate::report::correction_note(correction, report.correction.is_some_and(|c| c.dry_run));
                let class = if failed { "del" } else { "add" };
                body.push_str(&format!("<span class=\"{class}\">{}</span>", esc(&note)));
            }
            for (what, values) in drift_lines(object) {
                match values {
                    None => body.push_str(&format!("<span class=\"ctx\">{}</span>", esc(&what))),
                    Some((recorded, live)) => body.push_str(&format!(
                        "<span class=\"ctx\"><span class=\"k\">{}</span></span><span class=\"del\">- {}</span><span class=\"add\">+ {}</span>",
                        esc(&what),
                        esc(&recorded),
                        esc(&live)
                    )),
                }
            }
            body.push_str("</pre>\n</details>\n");
        }
        let ignored: usize = release.objects.iter().filter(|o| o.state == State::InSync).map(|o| o.ignored).sum();
        let ignored =
            crate::report::ignored_note(ignored).map_or_else(String::new, |note| format!(" Among them: {note}."));
        body.push_str(&format!("<p class=\"note\">{in_sync} in sync.{ignored}</p>\n"));
        if let Some(line) = crate::report::correction_line(release, report.correction.is_some_and(|c| c.dry_run)) {
            body.push_str(&format!("<p class=\"note\">{}</p>\n", esc(&line)));
        }
    }
    page(&title, &meta, &counts, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DiffContext;
    use serde_json::json;
    use weaver_core::manifest::ObjectKey;
    use weaver_plan::plan::{ObjectPlan, Plan};

    /// Escaping first would turn `p<&w` into `p&lt;&amp;w`, which the redactor no longer finds.
    #[test]
    fn values_are_redacted_before_they_are_escaped() {
        let redactor = Redactor::new();
        redactor.register("pass<&word-9f2e");
        let key = ObjectKey { group: String::new(), kind: "ConfigMap".into(), namespace: None, name: "c".into() };
        let object = ObjectPlan {
            after: Some(json!({"data": {"k": "pass<&word-9f2e"}})),
            ..ObjectPlan::new("app", "v1".into(), key, Action::Create)
        };
        let context = DiffContext { environment: "dev", mode: "client", provenance: None, base: None };
        let plan = Plan { objects: vec![object], ..Plan::default() };
        let html = diff(&DiffReport::new(&plan, &context, &redactor), &redactor);
        assert!(!html.contains("word-9f2e"), "{html}");
        assert!(html.contains("<span class=\"k\">k</span>: &lt;redacted:"), "{html}");
    }

    #[test]
    fn lines_are_classed_and_keys_marked_and_everything_escaped() {
        let html = diff_lines("@@ -1,2 +1,2 @@\n a: <b>\n-  name: x&y\n+  - image: \"a:b\"\n+  plain\n");
        assert_eq!(
            html,
            "<pre><span class=\"hunk\">@@ -1,2 +1,2 @@</span>\
             <span class=\"ctx\"> <span class=\"k\">a</span>: &lt;b&gt;</span>\
             <span class=\"del\">-  <span class=\"k\">name</span>: x&amp;y</span>\
             <span class=\"add\">+  - <span class=\"k\">image</span>: &quot;a:b&quot;</span>\
             <span class=\"add\">+  plain</span></pre>\n"
        );
    }
}
