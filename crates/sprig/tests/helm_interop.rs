//! Renders every case of cases/sprig.txt with a real `helm template` (v3.17.1: $WEAVER_HELM, else
//! `helm` on PATH) and compares with the table. Skipped, saying so, when helm is missing, unless
//! WEAVER_REQUIRE_INTEROP=1.
//!
//! Each case becomes `templates/_case_N.tpl` of a chart whose values are the case's; a second file
//! renders it with `include`, removes `<no value>` (as helm does to a file's output) and base64-encodes
//! it, so any text survives helm's YAML handling. Cases that fail get a chart of their own; the others
//! share one per distinct values.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Case;

const CHART: &str = "t";

fn helm_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEAVER_HELM") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("helm")).find(|p| p.is_file())
}

fn case_file(i: usize) -> String {
    format!("{CHART}/templates/_case_{i}.tpl")
}

/// The case's expected error as helm words it for the chart built here.
fn helm_error(i: usize, expected: &str) -> String {
    // helm's engine rewrites `fail`'s error to "execution error at (FILE:LINE:COL): MESSAGE".
    if let Some((_, message)) = expected.split_once("error calling fail: ") {
        return format!("): {message}");
    }
    let file = case_file(i);
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
fn helm_renders_every_case_as_the_table_says() {
    let Some(helm) = helm_binary() else {
        let reason = "sprig helm interop test skipped: no helm binary on PATH (or at $WEAVER_HELM)";
        if std::env::var("WEAVER_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{reason}, and WEAVER_REQUIRE_INTEROP=1");
        }
        println!("{reason}");
        eprintln!("{reason}");
        return;
    };
    let cases = common::cases();
    let root = std::env::temp_dir().join(format!("sprig-helm-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    let indexed: Vec<(usize, &Case)> = cases.iter().enumerate().collect();
    let (alone, shared): (Vec<_>, Vec<_>) = indexed.iter().partition(|(_, c)| c.expected.is_err());
    // Cases sharing a chart share its values: only cases with equal values group.
    let mut groups: Vec<(serde_json::Value, Vec<(usize, &Case)>)> = Vec::new();
    for &(i, case) in shared {
        match groups.iter_mut().find(|(values, _)| *values == case.values) {
            Some((_, members)) => members.push((i, case)),
            None => groups.push((case.values.clone(), vec![(i, case)])),
        }
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for (values, members) in alone.iter().map(|(i, c)| (c.values.clone(), vec![(*i, *c)])).chain(groups) {
        let dir = root.join(format!("chart-{}", members[0].0));
        write_chart(&dir, &members, &values);
        match helm_template(&helm, &dir) {
            Ok(outputs) => {
                for (i, case) in &members {
                    compared += 1;
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
                compared += 1;
                match &case.expected {
                    Err(expected) if members.len() == 1 && stderr.contains(&helm_error(i, expected)) => {}
                    _ => failures
                        .push(format!("case {:?}: helm failed: {stderr}, table says {:?}", case.name, case.expected)),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("{compared} cases compared with helm");
    assert!(failures.is_empty(), "{} of {compared} cases differ from helm:\n{}", failures.len(), failures.join("\n"));
}
