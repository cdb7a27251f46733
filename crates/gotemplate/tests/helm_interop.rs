//! Renders the helm-mode cases of cases/table.txt with a real `helm template` (v3.17.1 at
//! /opt/helm/helm, or $WEAVER_HELM) and compares with the table and this crate. Skipped, saying so,
//! when helm is missing, unless WEAVER_REQUIRE_INTEROP=1.
//!
//! Each case becomes `templates/_case_N.tpl` of a chart whose values are the case's; a second file
//! renders it with `include`, removes `<no value>` (as helm does to a file's output) and base64-encodes
//! it, so any text survives helm's YAML handling. Cases that fail or define templates get a chart of
//! their own; the others share one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Case, Mode};

const CHART: &str = "t";

fn helm_binary() -> Option<PathBuf> {
    let path = std::env::var_os("WEAVER_HELM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/helm/helm"));
    path.is_file().then_some(path)
}

fn case_file(i: usize) -> String {
    format!("{CHART}/templates/_case_{i}.tpl")
}

/// The case's expected error as helm would word it for the chart built here.
fn helm_error(i: usize, expected: &str) -> String {
    let file = case_file(i);
    if let Some(rest) = expected.strip_prefix(&format!("template: {}:", common::CASE_TEMPLATE))
        && let Some((line, message)) = rest.split_once(": ")
        && line.parse::<usize>().is_ok()
    {
        // A parse error: helm keeps the location and the last ": "-separated part of the message.
        let last = message.rsplit(": ").next().unwrap_or(message);
        // "unclosed action started at c:2" names the template too.
        let last = last.replace(&format!("at {}:", common::CASE_TEMPLATE), &format!("at {file}:"));
        return format!("parse error at ({file}:{line}): {last}");
    }
    expected
        .replace(&format!("template: {}:", common::CASE_TEMPLATE), &format!("template: {file}:"))
        .replace(&format!("executing \"{}\"", common::CASE_TEMPLATE), &format!("executing \"{file}\""))
}

fn write_chart(dir: &Path, cases: &[(usize, &Case)], values: &serde_json::Value) {
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).expect("chart directory");
    std::fs::write(dir.join("Chart.yaml"), format!("apiVersion: v2\nname: {CHART}\nversion: 0.1.0\n"))
        .expect("Chart.yaml");
    std::fs::write(dir.join("values.yaml"), values.to_string()).expect("values.yaml");
    for (i, case) in cases {
        std::fs::write(templates.join(format!("_case_{i}.tpl")), &case.template).expect("case template");
        let out =
            format!("out: {{{{ include {:?} . | replace \"<no value>\" \"\" | b64enc | quote }}}}\n", case_file(*i));
        std::fs::write(templates.join(format!("out_{i}.yaml")), out).expect("output template");
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else { continue };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Runs helm on the chart; outputs by case number, or helm's error text.
fn helm_template(helm: &Path, dir: &Path) -> Result<Vec<(usize, String)>, String> {
    let home = dir.join(".helm-home");
    let output = Command::new(helm)
        .args(["template", "rel"])
        .arg(dir)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut results = Vec::new();
    let mut current = None;
    for line in stdout.lines() {
        if let Some(source) = line.strip_prefix(&format!("# Source: {CHART}/templates/out_")) {
            current = source.strip_suffix(".yaml").and_then(|n| n.parse::<usize>().ok());
        } else if let (Some(i), Some(encoded)) = (current, line.strip_prefix("out: ")) {
            let decoded = base64_decode(encoded.trim_matches('"'));
            results.push((i, String::from_utf8_lossy(&decoded).into_owned()));
            current = None;
        }
    }
    Ok(results)
}

#[test]
fn helm_renders_the_helm_cases_as_the_table_says() {
    let Some(helm) = helm_binary() else {
        let reason = "helm interop test skipped: no helm binary at /opt/helm/helm (or $WEAVER_HELM)";
        if std::env::var("WEAVER_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{reason}, and WEAVER_REQUIRE_INTEROP=1");
        }
        println!("{reason}");
        eprintln!("{reason}");
        return;
    };
    let cases = common::cases();
    let helm_cases: Vec<(usize, &Case)> = cases.iter().enumerate().filter(|(_, c)| c.mode == Mode::Helm).collect();
    let root = std::env::temp_dir().join(format!("gotemplate-helm-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    let mut failures = Vec::new();
    let own_chart = |c: &Case| c.expected.is_err() || c.template.contains("define") || c.template.contains("block");
    let (alone, shared): (Vec<_>, Vec<_>) = helm_cases.iter().partition(|(_, c)| own_chart(c));

    // Cases sharing a chart share its values: one case's values each, so only cases with equal values group.
    let mut groups: Vec<(serde_json::Value, Vec<(usize, &Case)>)> = Vec::new();
    for &(i, case) in shared {
        match groups.iter_mut().find(|(values, _)| *values == case.values) {
            Some((_, members)) => members.push((i, case)),
            None => groups.push((case.values.clone(), vec![(i, case)])),
        }
    }
    for (values, members) in alone.iter().map(|(i, c)| (c.values.clone(), vec![(*i, *c)])).chain(groups) {
        let dir = root.join(format!("chart-{}", members[0].0));
        write_chart(&dir, &members, &values);
        match helm_template(&helm, &dir) {
            Ok(outputs) => {
                for (i, case) in &members {
                    let got = outputs.iter().find(|(n, _)| n == i).map(|(_, out)| out.clone());
                    if case.expected.as_deref().ok() != got.as_deref() {
                        failures.push(format!(
                            "case {:?}: helm rendered {got:?}, table says {:?}",
                            case.name, case.expected
                        ));
                    }
                }
            }
            Err(stderr) => {
                let (i, case) = members[0];
                match &case.expected {
                    Err(expected) if members.len() == 1 && stderr.contains(&helm_error(i, expected)) => {}
                    _ => failures
                        .push(format!("case {:?}: helm failed: {stderr}, table says {:?}", case.name, case.expected)),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "{} cases differ from helm:\n{}", failures.len(), failures.join("\n"));
}
