//! No decrypted value of the demo in any output of any command (issue 53): every command a user
//! runs on the demo's dev environment, in each of its output formats, before and after an apply,
//! with a Secret and a ConfigMap changed by hand, at every verbosity. Only `secrets decrypt`,
//! whose job it is, and `render --show-secrets` print them.

use crate::common;

use base64::Engine;
use common::demo::Demo;
use serde_json::{Value, json};

/// The demo's decrypted dev secrets, and the forms an output could carry them in.
pub(crate) fn decrypted_forms(demo: &Demo) -> Vec<String> {
    decrypted_forms_in(demo.repo.path())
}

/// The decrypted secrets of `secrets/dev.yaml` in the repository at `dir` (the demo's), and the
/// forms an output could carry them in.
pub(crate) fn decrypted_forms_in(dir: &std::path::Path) -> Vec<String> {
    let text = common::weaver_in(dir, &["secrets", "decrypt", "secrets/dev.yaml"], &[]).success().to_string();
    let tree: Value = serde_saphyr::from_str(&text).unwrap();
    let mut values = Vec::new();
    fn leaves(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
            Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
            _ => {}
        }
    }
    leaves(&tree, &mut values);
    assert!(values.len() >= 4, "{values:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = Vec::new();
    for value in values {
        forms.push(b64.encode(&value));
        forms.push(value.to_uppercase());
        forms.push(value);
    }
    // The database password inside the URL.
    forms.push("dev-db-Vq7x2".to_string());
    forms
}

/// `weaver ARGS` on the demo: with the test cluster's kubeconfig for the commands that talk to one.
fn run(demo: &Demo, args: &[&str]) -> common::Run {
    let command = args.iter().find(|a| !a.starts_with('-')).copied().unwrap_or_default();
    match command {
        "render" | "envs" | "changed" | "secrets" => demo.repo.weaver(args),
        _ => demo.weaver(args),
    }
}

#[track_caller]
fn assert_clean(forms: &[String], what: &str, run: &common::Run) {
    for form in forms {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!text.contains(form.as_str()), "`{what}` printed a decrypted value on {stream}:\n{text}");
        }
    }
}

#[test]
fn no_decrypted_value_of_the_demo_reaches_any_output() {
    let demo = Demo::new();
    let forms = decrypted_forms(&demo);
    let shown = run(&demo, &["render", "--env", "dev", "--show-secrets"]);
    assert!(shown.success().contains("dev-api-key-4f1c9a7e"), "the forms looked for are the ones rendered");
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["render", "--env", "dev"],
        vec!["-vv", "render", "--env", "dev"],
        vec!["render", "--env", "dev", "-r", "web", "--set", "replicas=abc"],
        vec!["envs"],
        vec!["changed", "--base", "HEAD"],
    ];
    let diffs = [
        vec!["diff", "--env", "dev"],
        vec!["-vv", "diff", "--env", "dev", "--server-side"],
        vec!["diff", "--env", "dev", "-o", "json"],
        vec!["diff", "--env", "dev", "-o", "markdown"],
        vec!["diff", "--env", "dev", "-o", "html"],
    ];
    commands.extend(diffs.iter().cloned());
    commands.push(vec!["-vv", "apply", "--env", "dev"]);
    commands.push(vec!["apply", "--env", "dev", "-o", "json"]);
    for args in &commands {
        assert_clean(&forms, &args.join(" "), &run(&demo, args));
    }
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0, "the demo applied");

    // By hand: a Secret value and a ConfigMap changed, so that diff and drift show both.
    let ns = demo.ns.clone();
    demo.cluster.merge_patch(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secrets", "namespace": ns}}),
        &json!({"data": {"API_KEY": base64::engine::general_purpose::STANDARD.encode("hand-edited-key-9x")}}),
        "kubectl-edit",
    );
    assert_eq!(demo.weaver(&["drift", "--env", "dev"]).code, 2, "the Secret edited by hand is drift");
    let mut after: Vec<Vec<&str>> = diffs.to_vec();
    after.extend([
        vec!["drift", "--env", "dev"],
        vec!["-vv", "drift", "--env", "dev", "-o", "json"],
        vec!["drift", "--env", "dev", "-o", "junit"],
        vec!["drift", "--env", "dev", "-o", "html"],
        vec!["history", "--env", "dev", "web"],
        vec!["history", "--env", "dev", "web", "-o", "json"],
        vec!["status", "--env", "dev"],
        vec!["status", "--env", "dev", "-o", "json"],
        vec!["-vv", "drift", "--env", "dev", "--correct"],
        vec!["rollback", "--env", "dev", "web", "1", "--dry-run"],
        vec!["-vv", "rollback", "--env", "dev", "web", "1", "-o", "json"],
    ]);
    for args in &after {
        assert_clean(&forms, &args.join(" "), &run(&demo, args));
    }
}
