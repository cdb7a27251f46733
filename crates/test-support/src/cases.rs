//! The case-table harness of weaver-gotemplate's, weaver-sprig's and weaver-helm's tests: the
//! case-file parser, rendering a case with a crate's functions, the table check, and the check of a
//! table with a real `helm template`. Each crate supplies its case file and its functions.
//!
//! Case files: "### name" starts a case. Optional lines "mode: helm|go|strict" (default helm:
//! missingkey=zero and `<no value>` removed from the output, as helm's engine does; go: Go's defaults;
//! strict: missingkey=error) and "values: JSON" (the case's .Values; numbers are float64 as in helm).
//! Then "--- template" and "--- output" or "--- error", each followed by its text: the lines up to the
//! next marker, joined by newlines (an empty last line means the text ends with a newline). The blank
//! line separating cases ends each output or error: one trailing newline of those texts is dropped.
//! Lines before the first case are the file's header. The case template is named "c".
//!
//! Helm interop: helm v3.17.1 is $WEAVER_HELM, else `helm` on PATH; without it the check is skipped,
//! saying why, unless WEAVER_REQUIRE_INTEROP=1 makes that a failure. Each helm-mode case becomes
//! `templates/_case_N.tpl` of a chart whose values are the case's; a second file renders it with
//! `include`, removes `<no value>` (as helm does to a file's output) and base64-encodes it, so any text
//! survives helm's YAML handling. Cases that fail or define templates get a chart of their own; the
//! others share one per distinct values.

use std::any::Any;
use std::path::{Path, PathBuf};

use gotemplate::{Map, MissingKey, Numbers, Templates, Value};

use crate::skip;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// missingkey=zero and `<no value>` removed, as helm's engine renders.
    Helm,
    /// Go's defaults.
    Go,
    /// missingkey=error.
    Strict,
}

#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub values: serde_json::Value,
    pub template: String,
    pub expected: Result<String, String>,
}

impl Case {
    /// The case with each proper prefix of its template (cut between characters), expecting
    /// nothing: truncated templates reach every lexer and parser error path.
    pub fn prefixes(&self) -> impl Iterator<Item = Case> + '_ {
        self.template.char_indices().skip(1).map(|(end, _)| Case {
            name: self.name.clone(),
            values: self.values.clone(),
            template: self.template[..end].to_string(),
            expected: Ok(String::new()),
        })
    }
}

/// The template name cases are parsed under.
pub const CASE_TEMPLATE: &str = "c";

/// Every case of a case file, with its mode.
pub fn parse(table: &str) -> Vec<(Mode, Case)> {
    let mut lines = table.split('\n').peekable();
    while lines.next_if(|line| !line.starts_with("### ")).is_some() {}
    let mut cases = Vec::new();
    while let Some(line) = lines.next() {
        let name = line["### ".len()..].to_string();
        let body: Vec<&str> = std::iter::from_fn(|| lines.next_if(|line| !line.starts_with("### "))).collect();
        let markers: Vec<usize> = (0..body.len()).filter(|&i| body[i].starts_with("--- ")).collect();
        let (mut mode, mut values) = (Mode::Helm, "{}");
        for line in &body[..markers.first().copied().unwrap_or(body.len())] {
            if let Some(m) = line.strip_prefix("mode: ") {
                mode = match m {
                    "helm" => Mode::Helm,
                    "go" => Mode::Go,
                    "strict" => Mode::Strict,
                    other => panic!("case {name}: unknown mode {other}"),
                };
            } else if let Some(v) = line.strip_prefix("values: ") {
                values = v;
            }
        }
        let (mut template, mut expected) = (String::new(), None);
        for (k, &at) in markers.iter().enumerate() {
            let mut text = body[at + 1..markers.get(k + 1).copied().unwrap_or(body.len())].join("\n");
            let section = &body[at]["--- ".len()..];
            if section != "template" && text.ends_with('\n') {
                text.pop();
            }
            match section {
                "template" => template = text,
                "output" => expected = Some(Ok(text)),
                "error" => expected = Some(Err(text)),
                other => panic!("case {name}: unknown section {other}"),
            }
        }
        let values = serde_json::from_str(values).unwrap_or_else(|e| panic!("case {name}: values: {e}"));
        let expected = expected.unwrap_or_else(|| panic!("case {name}: no expectation"));
        cases.push((mode, Case { name, values, template, expected }));
    }
    cases
}

/// A set configured as `mode` says, with the functions `register` adds.
pub fn templates_with(mode: Mode, register: fn(&mut Templates)) -> Templates {
    let mut set = Templates::new("gotpl");
    set.set_missing_key(match mode {
        Mode::Helm => MissingKey::Zero,
        Mode::Go => MissingKey::Default,
        Mode::Strict => MissingKey::Error,
    });
    register(&mut set);
    set
}

/// Renders a case as helm would render a chart file holding the case's template (in helm mode);
/// `state` is the render's state for the functions.
pub fn render_with(
    mode: Mode,
    case: &Case,
    register: fn(&mut Templates),
    state: &mut (dyn Any + Send),
) -> Result<String, String> {
    render_in(templates_with(mode, register), mode, case, state)
}

/// Renders a case as [`render_with`] does, in `set`: one [`templates_with`] made, or a copy of one.
pub fn render_in(mut set: Templates, mode: Mode, case: &Case, state: &mut (dyn Any + Send)) -> Result<String, String> {
    set.parse(CASE_TEMPLATE, &case.template).map_err(|e| e.to_string())?;
    let values = Value::from_json(&case.values, Numbers::Float64);
    let data = Value::Map(Map::from_iter([("Values".to_string(), values)]));
    let out = set.execute_with_state(CASE_TEMPLATE, &data, state).map_err(|e| e.to_string())?;
    Ok(if mode == Mode::Helm { out.replace("<no value>", "") } else { out })
}

/// Asserts that every case renders as the table says, and that the table has at least `min` cases.
/// The cases render on every core: a few (key generation) take most of the time.
pub fn check_table(cases: &[(Mode, Case)], min: usize, render: impl Fn(Mode, &Case) -> Result<String, String> + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut failures: Vec<(usize, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|first| {
                let render = &render;
                scope.spawn(move || {
                    let mine = cases.iter().enumerate().skip(first).step_by(threads);
                    mine.filter_map(|(i, (mode, case))| {
                        let got = render(*mode, case);
                        (got != case.expected).then(|| {
                            (i, format!("case {:?}\n  want: {:?}\n  got:  {:?}", case.name, case.expected, got))
                        })
                    })
                    .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a table worker panicked")).collect()
    });
    failures.sort_by_key(|(i, _)| *i);
    let failures: Vec<String> = failures.into_iter().map(|(_, failure)| failure).collect();
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(cases.len() >= min, "the table has {} cases", cases.len());
}

/// helm: $WEAVER_HELM, else `helm` on PATH; or why there is none.
fn helm_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WEAVER_HELM") {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("WEAVER_HELM={} is not a file", path.display())) };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("helm"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no helm binary: WEAVER_HELM is unset and PATH has no helm".to_string())
}

const CHART: &str = "t";

/// helm processes run at once.
const HELM_PROCESSES: usize = 4;

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
    if let Some(rest) = expected.strip_prefix(&format!("template: {CASE_TEMPLATE}:"))
        && let Some((line, message)) = rest.split_once(": ")
        && line.parse::<usize>().is_ok()
    {
        // A parse error: helm keeps the location and the last ": "-separated part of the message.
        let last = message.rsplit(": ").next().unwrap_or(message);
        // "unclosed action started at c:2" names the template too.
        let last = last.replace(&format!("at {CASE_TEMPLATE}:"), &format!("at {file}:"));
        return format!("parse error at ({file}:{line}): {last}");
    }
    expected
        .replace(&format!("template: {CASE_TEMPLATE}:"), &format!("template: {file}:"))
        .replace(&format!("executing \"{CASE_TEMPLATE}\""), &format!("executing \"{file}\""))
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
    let output = crate::helm::command(helm, &home).args(["template", "rel"]).arg(dir).output().expect("run helm");
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

/// Renders the helm-mode cases with a real `helm template` and asserts that helm agrees with the
/// table. `suite` names the temporary charts' directory.
#[track_caller]
pub fn check_with_helm(suite: &str, cases: &[(Mode, Case)]) {
    let helm = helm_binary();
    if !skip::interop_or_skip(helm.as_ref().err().map(String::as_str)) {
        return;
    }
    let helm = helm.expect("helm");
    let root = std::env::temp_dir().join(format!("{suite}-helm-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    let helm_cases = cases.iter().enumerate().filter(|(_, (mode, _))| *mode == Mode::Helm);
    let own_chart = |c: &Case| c.expected.is_err() || c.template.contains("define") || c.template.contains("block");
    let (alone, shared): (Vec<_>, Vec<_>) = helm_cases.map(|(i, (_, c))| (i, c)).partition(|(_, c)| own_chart(c));
    // Cases sharing a chart share its values: only cases with equal values group.
    let mut groups: Vec<(serde_json::Value, Vec<(usize, &Case)>)> = Vec::new();
    for (i, case) in shared {
        match groups.iter_mut().find(|(values, _)| *values == case.values) {
            Some((_, members)) => members.push((i, case)),
            None => groups.push((case.values.clone(), vec![(i, case)])),
        }
    }
    let charts: Vec<(serde_json::Value, Vec<(usize, &Case)>)> =
        alone.into_iter().map(|(i, c)| (c.values.clone(), vec![(i, c)])).chain(groups).collect();
    // A few helm processes at once: each spends much of its time starting up.
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Each chart's index, and its cases' renders by index (or helm's error).
    type Rendered = (usize, Result<Vec<(usize, String)>, String>);
    let rendered: Vec<Rendered> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..HELM_PROCESSES)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((values, members)) = charts.get(n) else { return done };
                        let dir = root.join(format!("chart-{}", members[0].0));
                        write_chart(&dir, members, values);
                        done.push((n, helm_template(&helm, &dir)));
                    }
                })
            })
            .collect();
        let mut all: Vec<_> = workers.into_iter().flat_map(|w| w.join().expect("a helm worker panicked")).collect();
        all.sort_by_key(|(n, _)| *n);
        all
    });
    let mut failures = Vec::new();
    let mut compared = 0;
    for ((_, members), (_, result)) in charts.iter().zip(rendered) {
        match result {
            Ok(outputs) => {
                for (i, case) in members {
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
