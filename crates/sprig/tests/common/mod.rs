//! The case table shared by the table test and the helm interop test.

#![allow(dead_code)] // each test crate uses part of this module

use gotemplate::{Map, MissingKey, Numbers, Templates, Value};

#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub values: serde_json::Value,
    pub template: String,
    pub expected: Result<String, String>,
}

pub const TABLE: &str = include_str!("../cases/sprig.txt");

/// The template name cases are parsed under.
pub const CASE_TEMPLATE: &str = "c";

/// Parses the table: "### name", optional "values: JSON", then "--- template" and "--- output" or
/// "--- error" sections (see the file's header).
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut name: Option<String> = None;
    let mut values = String::from("{}");
    let mut section = "";
    let mut template = String::new();
    let mut expected: Option<Result<String, String>> = None;
    let mut buf: Vec<&str> = Vec::new();
    let flush =
        |section: &str, buf: &mut Vec<&str>, template: &mut String, expected: &mut Option<Result<String, String>>| {
            let mut text = buf.join("\n");
            buf.clear();
            match section {
                "template" => *template = text,
                "output" | "error" => {
                    // The blank line separating cases ends each last section.
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    *expected = Some(if section == "output" { Ok(text) } else { Err(text) });
                }
                _ => {}
            }
        };
    let mut finish = |name: &mut Option<String>,
                      values: &mut String,
                      template: &mut String,
                      expected: &mut Option<Result<String, String>>| {
        if let Some(name) = name.take() {
            let parsed = serde_json::from_str(values).unwrap_or_else(|e| panic!("case {name}: values: {e}"));
            let expected = expected.take().unwrap_or_else(|| panic!("case {name}: no expectation"));
            cases.push(Case { name, values: parsed, template: std::mem::take(template), expected });
        }
        *values = String::from("{}");
    };
    for line in TABLE.split('\n') {
        if let Some(next) = line.strip_prefix("### ") {
            flush(section, &mut buf, &mut template, &mut expected);
            finish(&mut name, &mut values, &mut template, &mut expected);
            name = Some(next.to_string());
            section = "head";
            continue;
        }
        let Some(current) = &name else { continue };
        if let Some(next) = line.strip_prefix("--- ") {
            flush(section, &mut buf, &mut template, &mut expected);
            section = match next {
                "template" => "template",
                "output" => "output",
                "error" => "error",
                other => panic!("case {current}: unknown section {other}"),
            };
            continue;
        }
        if section == "head" {
            if let Some(v) = line.strip_prefix("values: ") {
                values = v.to_string();
            }
            continue;
        }
        buf.push(line);
    }
    flush(section, &mut buf, &mut template, &mut expected);
    finish(&mut name, &mut values, &mut template, &mut expected);
    cases
}

/// A set configured as helm's engine configures one, with sprig's functions.
pub fn templates() -> Templates {
    let mut set = Templates::new("gotpl");
    set.set_missing_key(MissingKey::Zero);
    sprig::register(&mut set);
    set
}

/// Renders a case as helm renders a chart file holding the case's template.
pub fn render(case: &Case) -> Result<String, String> {
    let mut set = templates();
    set.parse(CASE_TEMPLATE, &case.template).map_err(|e| e.to_string())?;
    let values = Value::from_json(&case.values, Numbers::Float64);
    let data = Value::Map(Map::from_iter([("Values".to_string(), values)]));
    let out = set.execute(CASE_TEMPLATE, &data).map_err(|e| e.to_string())?;
    Ok(out.replace("<no value>", ""))
}
