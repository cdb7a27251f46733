//! `weaver drift -o junit`: JUnit XML for CI dashboards (GitLab, Jenkins…).

use super::{drift_lines, escape_markup, missing_message, no_record, object_name};
use weaver_plan::release::drift::{ReleaseDrift, ReleaseState, Report, State};

/// Text for XML content: markup characters escaped, and characters XML 1.0 cannot carry at
/// all (most control characters) replaced.
fn xml_text(text: &str) -> String {
    escape_markup(&xml_chars(text), None)
}

/// `text` with the characters XML 1.0 cannot carry replaced by U+FFFD.
fn xml_chars(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Text for a double-quoted XML attribute; whitespace escaped so parsers keep it.
fn xml_attr(text: &str) -> String {
    escape_markup(&xml_chars(text), Some("&apos;")).replace('\n', "&#10;").replace('\r', "&#13;").replace('\t', "&#9;")
}

/// JUnit XML: a testsuite per release, a testcase per object of its last deployed revision, a
/// `<failure>` listing the drifted paths (or saying it is missing), and a skipped testcase for
/// a release without a deployed revision.
pub fn junit_report(report: &Report) -> String {
    let summary = report.summary();
    let skipped = |r: &ReleaseDrift| usize::from(r.state() == ReleaseState::NoRecord);
    let total: usize = report.releases.iter().map(cases).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
        xml_attr(&format!("weaver drift {}", report.environment)),
        summary.drifted + summary.missing,
        summary.releases_without_record,
    ));
    for release in &report.releases {
        let suite = format!("{}/{}", report.environment, release.name);
        let failures = release.objects.iter().filter(|o| o.state != State::InSync).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\">\n",
            xml_attr(&suite),
            cases(release),
            skipped(release),
        ));
        let mut properties = vec![
            ("environment", report.environment.clone()),
            ("release", release.name.clone()),
            ("namespace", release.namespace.clone()),
            ("context", report.context.clone()),
        ];
        if let Some(revision) = &release.revision {
            properties.push(("revision", revision.number.to_string()));
            properties.push(("revisionTime", revision.time.clone()));
            if let Some(commit) = &revision.commit {
                properties.push(("commit", commit.clone()));
            }
        }
        out.push_str("    <properties>\n");
        for (name, value) in properties {
            out.push_str(&format!("      <property name=\"{name}\" value=\"{}\"/>\n", xml_attr(&value)));
        }
        out.push_str("    </properties>\n");
        out.push_str(&testcases(report, release));
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// JUnit XML of a fleet: a testsuite per environment, its testcases those of
/// [`junit_report`] (classname `<environment>/<release>`); an environment that failed is a
/// testsuite of one testcase with an `<error>`.
pub fn fleet_junit(results: &[(&str, Result<&Report, String>)]) -> String {
    let reports = results.iter().filter_map(|(_, r)| r.as_ref().ok().copied());
    let failures: usize = reports.clone().map(|r| r.summary().drifted + r.summary().missing).sum();
    let skipped: usize = reports.clone().map(|r| r.summary().releases_without_record).sum();
    let all_cases = |r: &Report| -> usize { r.releases.iter().map(cases).sum() };
    let errors = results.iter().filter(|(_, r)| r.is_err()).count();
    let total: usize = reports.map(all_cases).sum::<usize>() + errors;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"weaver drift\" tests=\"{total}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\">\n"
    ));
    for (env, result) in results {
        match result {
            Ok(report) => {
                let summary = report.summary();
                out.push_str(&format!(
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
                    xml_attr(env),
                    all_cases(report),
                    summary.drifted + summary.missing,
                    summary.releases_without_record
                ));
                out.push_str("    <properties>\n");
                for (name, value) in
                    [("environment", &report.environment), ("context", &report.context), ("server", &report.server)]
                {
                    out.push_str(&format!("      <property name=\"{name}\" value=\"{}\"/>\n", xml_attr(value)));
                }
                out.push_str("    </properties>\n");
                for release in &report.releases {
                    out.push_str(&testcases(report, release));
                }
            }
            Err(error) => {
                out.push_str(&format!(
                    "  <testsuite name=\"{0}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n    <testcase classname=\"{0}\" name=\"drift\">\n      <error message=\"{1}\"/>\n    </testcase>\n",
                    xml_attr(env),
                    xml_attr(error)
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// How many testcases a release has: one per object, or a skipped one without a revision.
fn cases(release: &ReleaseDrift) -> usize {
    release.objects.len() + usize::from(release.state() == ReleaseState::NoRecord)
}

/// A release's testcases (classname `<environment>/<release>`): one per object of its last
/// deployed revision, or a skipped one when it has none.
fn testcases(report: &Report, release: &ReleaseDrift) -> String {
    let mut out = String::new();
    let suite = format!("{}/{}", report.environment, release.name);
    {
        let testcase =
            |name: &str| format!("    <testcase classname=\"{}\" name=\"{}\"", xml_attr(&suite), xml_attr(name));
        if release.state() == ReleaseState::NoRecord {
            out.push_str(&testcase("deployed revision"));
            out.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml_attr(&no_record(release, &report.environment))
            ));
        }
        for object in &release.objects {
            out.push_str(&testcase(&object_name(&object.api_version, &object.key)));
            // What ignoreDifferences kept out, as the case's output.
            let dry_run = report.correction.is_some_and(|c| c.dry_run);
            let notes: Vec<String> = crate::report::ignored_note(object.ignored)
                .into_iter()
                .chain(object.correction.as_ref().map(|c| crate::report::correction_note(c, dry_run).0))
                .collect();
            let ignored = match notes.is_empty() {
                true => String::new(),
                false => format!("\n      <system-out>{}</system-out>", xml_text(&notes.join("\n"))),
            };
            match object.state {
                State::InSync if ignored.is_empty() => out.push_str("/>\n"),
                State::InSync => out.push_str(&format!(">{ignored}\n    </testcase>\n")),
                State::Missing => out.push_str(&format!(
                    ">\n      <failure type=\"missing\" message=\"{}\"/>{ignored}\n    </testcase>\n",
                    xml_attr(&missing_message(object))
                )),
                State::Drifted => {
                    let revision = release.revision.as_ref().map_or(0, |r| r.number);
                    let count = object.changes.len();
                    let message =
                        format!("{count} field{} drifted since revision {revision}", if count == 1 { "" } else { "s" });
                    let body: Vec<String> = drift_lines(object)
                        .into_iter()
                        .map(|(path, values)| match values {
                            Some((recorded, live)) => format!("{path}: {recorded} → {live}"),
                            None => path,
                        })
                        .collect();
                    out.push_str(&format!(
                        ">\n      <failure type=\"drift\" message=\"{}\">{}</failure>{ignored}\n    </testcase>\n",
                        xml_attr(&message),
                        xml_text(&body.join("\n"))
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weaver_core::manifest::ObjectKey;
    use weaver_plan::diff::ChangeOp;
    use weaver_plan::release::drift::{FieldDrift, ObjectDrift, Revision};

    #[test]
    fn xml_escapes_markup_quotes_whitespace_in_attributes_and_illegal_characters() {
        assert_eq!(xml_text("a<b>&c \"d\" 'e'\n"), "a&lt;b&gt;&amp;c \"d\" 'e'\n");
        assert_eq!(xml_attr("a<b>&c \"d\" 'e'\n\t"), "a&lt;b&gt;&amp;c &quot;d&quot; &apos;e&apos;&#10;&#9;");
        assert_eq!(xml_text("bell\u{7}esc\u{1b}nul\u{0}"), "bell\u{FFFD}esc\u{FFFD}nul\u{FFFD}");
    }

    #[test]
    fn junit_has_a_suite_per_release_and_a_case_per_object() {
        let object = |name: &str, state, changes| ObjectDrift {
            api_version: "v1".into(),
            key: ObjectKey::of(&json!({"kind": "ConfigMap", "metadata": {"namespace": "ns", "name": name}})),
            state,
            changes,
            reason: None,
            ignored: 0,
            correction: None,
        };
        let change = FieldDrift {
            path: "data[\"a<b\"]".into(),
            op: ChangeOp::Replace,
            recorded: Some(json!("x & y")),
            live: Some(json!("</failure>")),
            redacted: false,
        };
        let release = |name: &str, revision: Option<u32>, objects| ReleaseDrift {
            name: name.into(),
            namespace: "ns".into(),
            installed: true,
            revision: revision.map(|number| Revision { number, time: "t".into(), commit: None, dirty: None }),
            objects,
            correction: None,
        };
        let report = Report {
            environment: "dev".into(),
            context: "ctx\"1".into(),
            server: "s".into(),
            releases: vec![
                release(
                    "web",
                    Some(4),
                    vec![
                        object("a", State::InSync, Vec::new()),
                        object("b", State::Drifted, vec![change]),
                        object("c", State::Missing, Vec::new()),
                    ],
                ),
                release("redis", None, Vec::new()),
            ],
            correction: None,
        };
        let xml = junit_report(&report);
        assert!(
            xml.contains(
                "<testsuites name=\"weaver drift dev\" tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<testsuite name=\"dev/web\" tests=\"3\" failures=\"2\" errors=\"0\" skipped=\"0\">"));
        assert!(xml.contains("<property name=\"context\" value=\"ctx&quot;1\"/>"));
        assert!(xml.contains("<testcase classname=\"dev/web\" name=\"v1 ConfigMap ns/a\"/>"));
        assert!(xml.contains(
            "<failure type=\"drift\" message=\"1 field drifted since revision 4\">data[\"a&lt;b\"]: \"x &amp; y\" → \"&lt;/failure&gt;\"</failure>"
        ), "{xml}");
        assert!(xml.contains("<failure type=\"missing\" message=\"missing from the cluster\"/>"));
        assert!(xml.contains("<testsuite name=\"dev/redis\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\">"));
        assert!(xml.contains("<skipped message=\"release `redis` has no deployed revision"));
        let fleet = fleet_junit(&[("dev", Ok(&report)), ("prod", Err("cannot <connect>".to_string()))]);
        assert!(
            fleet.contains("<testsuites name=\"weaver drift\" tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\">"),
            "{fleet}"
        );
        assert!(fleet.contains("  <testsuite name=\"dev\" tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\">"));
        assert!(fleet.contains("    <testcase classname=\"dev/web\" name=\"v1 ConfigMap ns/a\"/>"));
        assert!(fleet.contains(
            "  <testsuite name=\"prod\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">\n    <testcase classname=\"prod\" name=\"drift\">\n      <error message=\"cannot &lt;connect&gt;\"/>"
        ), "{fleet}");
        assert_eq!(fleet.matches("<testsuite ").count(), 2, "a testsuite per environment: {fleet}");
    }
}
