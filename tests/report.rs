//! `weaver diff -o markdown|html|json` as reports: golden pages of the demo (offline, with
//! `--live-from`), the comment size limit, provenance, no secret in any format, and the HTML
//! page as a real browser sees it.

use crate::common;

use std::path::Path;

use common::browser::{chromium, dom, shared_screenshot, text_of};
use common::{Repo, project_root};
use serde_json::Value;

/// The demo's dev environment against the shipped `kubectl get` fixture (web scaled to 3,
/// LOG_LEVEL changed).
fn demo_diff(repo: &Repo, format: &str) -> String {
    let fixture = project_root().join("tests/fixtures/live-dev.yaml");
    let run = repo.weaver(&["diff", "--env", "dev", "--live-from", fixture.to_str().unwrap(), "-o", format]);
    run.success().to_string()
}

/// Golden files are tests/golden/diff-dev.<ext>; WEAVER_UPDATE_GOLDEN=1 rewrites them (review
/// the diff before committing), as for the render goldens.
fn assert_golden(name: &str, output: &str) {
    let golden = project_root().join("tests/golden").join(name);
    if std::env::var("WEAVER_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&golden, output).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
    assert!(
        output == expected,
        "the output differs from {}; rerun with WEAVER_UPDATE_GOLDEN=1 and review:\n{output}",
        golden.display()
    );
}

#[test]
fn golden_markdown_and_html_plans_of_the_demo() {
    let repo = Repo::demo();
    let markdown = demo_diff(&repo, "markdown");
    assert_golden("diff-dev.md", &markdown);
    assert!(markdown.contains("| `web` | 0 | 2 | 0 | 2 |"), "{markdown}");
    assert!(markdown.contains("```diff\n"), "{markdown}");
    assert_eq!(demo_diff(&repo, "markdown"), markdown, "the same plan gives the same comment");
    let html = demo_diff(&repo, "html");
    assert_golden("diff-dev.html", &html);
    assert_eq!(demo_diff(&repo, "html"), html);
}

/// The values of the demo's dev secrets, as decrypted and as base64: in a Secret they must
/// come out as markers, and planted into a ConfigMap the redactor must catch them.
#[test]
fn no_secret_value_appears_in_any_report() {
    let repo = Repo::demo();
    let template = project_root().join("charts/web-app/templates/configmap.yaml");
    let planted = std::fs::read_to_string(template).unwrap().replace(
        "\ndata:\n",
        "\ndata:\n  PLANTED: {{ secrets.web.apiKey | quote }}\n  PLANTED_MARKUP: \"<b>{{ secrets.web.sessionSecret }}</b>&\"\n",
    );
    repo.write("charts/web-app/templates/configmap.yaml", &planted);
    let rendered = repo.weaver(&["render", "--env", "dev", "--show-secrets"]).success().to_string();
    let secret = weaver_yaml::documents(Path::new("render"), &rendered)
        .unwrap()
        .into_iter()
        .find(|o| o["kind"] == "Secret")
        .unwrap();
    let mut values = Vec::new();
    for value in secret["stringData"].as_object().unwrap().values() {
        use base64::Engine;
        let plain = value.as_str().unwrap().to_string();
        values.push(base64::engine::general_purpose::STANDARD.encode(&plain));
        values.push(plain);
    }
    assert_eq!(values.len(), 6);
    for format in ["markdown", "html", "json", "text"] {
        let output = demo_diff(&repo, format);
        assert!(output.contains("PLANTED"), "the planted ConfigMap keys are in the {format} plan:\n{output}");
        for value in &values {
            assert!(!output.contains(value.as_str()), "a secret value leaked into -o {format}:\n{output}");
        }
        assert!(output.contains("redacted:"), "the planted values are redacted in -o {format}:\n{output}");
    }
}

/// A decrypted value that YAML single-quotes (it starts with `!`) and that holds characters JSON
/// escapes (a quote, a backslash) is redacted before the JSON report escapes the diff: escaped
/// twice, it no longer reads as any form the redactor knows.
#[test]
fn a_secret_json_would_escape_is_redacted_in_every_report() {
    let repo = Repo::demo();
    let value = r#"!q"uo'te\back-7c1e"#;
    let file = repo.path().join("secrets/extra.yaml");
    std::fs::write(&file, format!("extra:\n  odd: '{}'\n", value.replace('\'', "''"))).unwrap();
    let recipient = common::demo::DEMO_RECIPIENT;
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write(
        "environments/dev.yaml",
        &dev.replace("secrets: [secrets/dev.yaml]", "secrets: [secrets/dev.yaml, secrets/extra.yaml]"),
    );
    let template = project_root().join("charts/web-app/templates/configmap.yaml");
    let planted = std::fs::read_to_string(template)
        .unwrap()
        .replace("\ndata:\n", "\ndata:\n  PLANTED: {{ secrets.extra.odd | tojson }}\n");
    repo.write("charts/web-app/templates/configmap.yaml", &planted);
    let escaped = serde_json::to_string(value).unwrap();
    for format in ["markdown", "html", "json", "text"] {
        let output = demo_diff(&repo, format);
        assert!(output.contains("PLANTED"), "the planted key is in the {format} plan:\n{output}");
        // Its tail, which no escaping changes, stands for any form of it.
        for leaked in [value, &escaped[1..escaped.len() - 1], "back-7c1e"] {
            assert!(!output.contains(leaked), "the value leaked into -o {format} as {leaked}:\n{output}");
        }
    }
}

/// A ConfigMap of `keys` entries of 100 characters each, created (nothing is live).
fn big_plan_repo(keys: usize) -> Repo {
    let repo = Repo::minimal();
    let mut template = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
    for i in 0..keys {
        template.push_str(&format!("  key{i:05}: {}\n", "x".repeat(100)));
    }
    repo.write("charts/app/templates/big.yaml", &template).write("live.yaml", "");
    repo
}

#[test]
fn a_plan_past_the_comment_limit_keeps_its_summary_and_says_what_was_cut() {
    let repo = big_plan_repo(1000);
    let live = repo.path().join("live.yaml");
    let run = repo.weaver(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap(), "-o", "markdown"]);
    let text = run.success();
    assert!(text.chars().count() <= 65_536, "{} characters", text.chars().count());
    assert!(text.contains("**2 to create, 0 to update, 0 to delete, 0 unchanged**"), "{text}");
    assert!(text.contains("| `app` | 2 | 0 | 0 | 0 |"), "{text}");
    assert!(
        text.contains(
            "> **1 of 2 diffs cut** (the largest) to keep this comment under 65536 characters: `v1 ConfigMap apps/big`."
        ),
        "{text}"
    );
    assert!(text.contains("<code>+ v1 ConfigMap apps/big</code> (release <code>app</code>) +1010 −0</summary>\n\n_Diff cut to fit the comment"), "{text}");
    // The small object keeps its diff.
    assert!(text.contains("+  greeting: hello\n"), "{text}");

    // Under the limit nothing is cut.
    let repo = big_plan_repo(100);
    let live = repo.path().join("live.yaml");
    let text = repo.weaver(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap(), "-o", "markdown"]);
    assert!(!text.success().contains("cut"), "{}", text.stdout);
}

#[test]
fn json_says_the_commit_rendered_from_and_each_objects_line_counts() {
    let repo = Repo::minimal();
    // Live: the rendered ConfigMap with another greeting.
    let rendered = repo.weaver(&["render", "--env", "dev"]).success().replace("greeting: hello", "greeting: hi");
    repo.write("live.yaml", &rendered);
    let git = common::git::init(repo.path());
    let commit = common::git::commit_all(&git, "first").to_string();
    let live = repo.path().join("live.yaml");
    let plan = |extra: &[&str]| -> Value {
        let mut args = vec!["diff", "--env", "dev", "--live-from", live.to_str().unwrap(), "-o", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(repo.weaver(&args).success()).unwrap()
    };
    let clean = plan(&[]);
    assert_eq!(
        (&clean["environment"], &clean["commit"], &clean["dirty"]),
        (&"dev".into(), &commit.clone().into(), &false.into())
    );
    let object = &clean["objects"][0];
    assert_eq!(object["action"], "update");
    assert_eq!(object["lines"], serde_json::json!({"added": 1, "removed": 1}), "{object}");
    assert_eq!(object["changes"], serde_json::json!([{"path": "data.greeting", "op": "replace"}]));

    repo.write("charts/app/values.yaml", "greeting: hey\n");
    let dirty = plan(&[]);
    assert_eq!((&dirty["commit"], &dirty["dirty"]), (&commit.clone().into(), &true.into()));
    let at_rev = plan(&["--rev", "HEAD"]);
    assert_eq!((&at_rev["commit"], &at_rev["dirty"]), (&commit.into(), &false.into()));

    let outside = Repo::minimal();
    outside.write("live.yaml", "");
    let live = outside.path().join("live.yaml");
    let run = outside.weaver(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap(), "-o", "json"]);
    let plan: Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!((&plan["commit"], &plan["dirty"]), (&Value::Null, &Value::Null));
    assert_eq!(plan["objects"][0]["lines"], serde_json::json!({"added": 11, "removed": 0}));
}

#[test]
fn the_html_plan_renders_in_a_real_browser() {
    let browser = chromium();
    if !common::interop_available("chromium (apt-get install chromium)", browser.is_some()) {
        return;
    }
    let browser = browser.unwrap();
    let repo = Repo::demo();
    let html = demo_diff(&repo, "html");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains(" src="), "self-contained");
    let scratch = tempfile::tempdir().unwrap();
    let page = scratch.path().join("plan.html");
    std::fs::write(&page, &html).unwrap();
    let dom = dom(&browser, &format!("file://{}", page.display()));
    for (id, count) in [("count-create", "0"), ("count-update", "2"), ("count-delete", "0"), ("count-unchanged", "40")]
    {
        assert_eq!(text_of(&dom, id), count, "#{id}");
    }
    assert_eq!(dom.matches("<details class=\"object\" data-action=\"update\">").count(), 2, "{dom}");
    assert!(dom.contains("<span class=\"add\">+  <span class=\"k\">replicas</span>: 1</span>"), "{dom}");
    assert!(dom.contains("<span class=\"del\">-  <span class=\"k\">replicas</span>: 3</span>"), "{dom}");
    for secret in ["dev-api-key-4f1c9a7e", "ZGV2LWFwaS1rZXktNGYxYzlhN2U="] {
        assert!(!dom.contains(secret), "a secret value is in the page");
    }
    // A screenshot for people to look at; kept under target/ when the test passes.
    let shot = project_root().join("target/report-screenshots/diff-dev.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    shared_screenshot(&browser, &format!("file://{}", page.display()), (1280, 2000), &shot);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // Straight to file descriptor 2: libtest hides what `eprintln!` writes in passing tests.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "screenshot of the HTML plan: {}", shot.display());
}
