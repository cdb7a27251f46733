//! The case table shared by the table test and the helm interop test, and the helm-like functions the
//! cases call, written on the crate's public API as helm's engine layer will be.

#![allow(dead_code)] // each test crate uses part of this module

use std::collections::HashMap;

use gotemplate::{Ctx, ErrorKind, FuncError, Function, Map, MissingKey, Numbers, Templates, Type, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// missingkey=zero and "<no value>" removed, as helm's engine renders.
    Helm,
    /// Go's defaults.
    Go,
    /// missingkey=error.
    Strict,
}

#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub mode: Mode,
    pub values: serde_json::Value,
    pub template: String,
    pub expected: Result<String, String>,
}

pub const TABLE: &str = include_str!("../cases/table.txt");

/// The template name cases are parsed under.
pub const CASE_TEMPLATE: &str = "c";

pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut current: Option<(String, Mode, String)> = None;
    let mut section = "";
    let mut buf: Vec<&str> = Vec::new();
    let mut template = String::new();
    let mut expected: Option<Result<String, String>> = None;
    let mut finish = |current: &mut Option<(String, Mode, String)>,
                      template: &mut String,
                      expected: &mut Option<Result<String, String>>| {
        if let Some((name, mode, values)) = current.take() {
            let values = serde_json::from_str(&values).unwrap_or_else(|e| panic!("case {name}: values: {e}"));
            let expected = expected.take().unwrap_or_else(|| panic!("case {name}: no expectation"));
            cases.push(Case { name, mode, values, template: std::mem::take(template), expected });
        }
    };
    let flush =
        |section: &str, buf: &mut Vec<&str>, template: &mut String, expected: &mut Option<Result<String, String>>| {
            let text = buf.join("\n");
            buf.clear();
            match section {
                "template" => *template = text,
                "output" => *expected = Some(Ok(text)),
                "error" => *expected = Some(Err(text)),
                _ => {}
            }
        };
    for line in TABLE.split('\n') {
        if let Some(name) = line.strip_prefix("### ") {
            flush(section, &mut buf, &mut template, &mut expected);
            finish(&mut current, &mut template, &mut expected);
            current = Some((name.to_string(), Mode::Helm, "{}".to_string()));
            section = "head";
            continue;
        }
        let Some(case) = current.as_mut() else { continue };
        if let Some(next) = line.strip_prefix("--- ") {
            flush(section, &mut buf, &mut template, &mut expected);
            section = match next {
                "template" => "template",
                "output" => "output",
                "error" => "error",
                other => panic!("case {}: unknown section {other}", case.0),
            };
            continue;
        }
        if section == "head" {
            if let Some(mode) = line.strip_prefix("mode: ") {
                case.1 = match mode {
                    "helm" => Mode::Helm,
                    "go" => Mode::Go,
                    "strict" => Mode::Strict,
                    other => panic!("case {}: unknown mode {other}", case.0),
                };
            } else if let Some(values) = line.strip_prefix("values: ") {
                case.2 = values.to_string();
            }
            continue;
        }
        buf.push(line);
    }
    flush(section, &mut buf, &mut template, &mut expected);
    finish(&mut current, &mut template, &mut expected);
    // The blank line separating cases ends each last section.
    for case in &mut cases {
        match &mut case.expected {
            Ok(text) | Err(text) => {
                if text.ends_with('\n') {
                    text.pop();
                }
            }
        }
    }
    cases
}

/// helm's include recursion guard: counts per template name, for one render.
#[derive(Default)]
pub struct IncludeDepth(HashMap<String, usize>);

fn include(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
    let name = args[0].as_str().unwrap_or_default().to_string();
    if let Some(depth) = ctx.state::<IncludeDepth>() {
        let count = depth.0.entry(name.clone()).or_insert(0);
        if *count > 1000 {
            return Err(FuncError::new(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )));
        }
        *count += 1;
    }
    let result = ctx.execute_template(&name, args[1].clone());
    if let Some(depth) = ctx.state::<IncludeDepth>()
        && let Some(count) = depth.0.get_mut(&name)
    {
        *count -= 1;
    }
    Ok(Value::from(result?))
}

fn tpl(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
    let text = args[0].as_str().unwrap_or_default().to_string();
    let quoted = gotemplate::gofmt::quote(&text, false);
    match ctx.execute_text("gotpl", &text, args[1].clone()) {
        Ok(out) => Ok(Value::from(out.replace("<no value>", ""))),
        Err(e) if e.kind() == ErrorKind::Parse => Err(FuncError::wrap(format!("cannot parse template {quoted}: "), e)),
        Err(e) => Err(FuncError::wrap(format!("error during tpl function execution for {quoted}: "), e)),
    }
}

/// A set with the cases' functions, as helm configures one.
pub fn templates(mode: Mode) -> Templates {
    let mut set = Templates::new("gotpl");
    set.set_missing_key(match mode {
        Mode::Helm => MissingKey::Zero,
        Mode::Go => MissingKey::Default,
        Mode::Strict => MissingKey::Error,
    });
    set.add_function(
        "upper",
        Function::new(&[Type::String], |_, a| Ok(Value::from(a[0].as_str().unwrap_or_default().to_uppercase()))),
    );
    set.add_function(
        "repeat",
        Function::new(&[Type::Int, Type::String], |_, a| {
            let count = a[0].as_int().unwrap_or_default().max(0) as usize;
            Ok(Value::from(a[1].as_str().unwrap_or_default().repeat(count)))
        }),
    );
    set.add_function(
        "add",
        Function::variadic(&[], Type::Any, |_, a| {
            let sum = a.iter().fold(0i64, |sum, v| match v {
                Value::Int(i) | Value::Int64(i) => sum + i,
                Value::Float(f) => sum + *f as i64,
                _ => sum,
            });
            Ok(Value::Int64(sum))
        }),
    );
    set.add_function("list", Function::variadic(&[], Type::Any, |_, a| Ok(Value::from(a.to_vec()))));
    set.add_function(
        "dict",
        Function::variadic(&[], Type::Any, |_, a| {
            let map = Map::new();
            for pair in a.chunks_exact(2) {
                map.insert(pair[0].to_go_string(), pair[1].clone());
            }
            Ok(Value::Map(map))
        }),
    );
    set.add_function(
        "set",
        Function::new(&[Type::Map, Type::String, Type::Any], |_, a| {
            let Value::Map(map) = &a[0] else { return Err(FuncError::new("assignment to entry in nil map")) };
            map.insert(a[1].as_str().unwrap_or_default(), a[2].clone());
            Ok(a[0].clone())
        }),
    );
    set.add_function("include", Function::new(&[Type::String, Type::Any], include));
    set.add_function("tpl", Function::new(&[Type::String, Type::Any], tpl));
    set
}

/// Renders a case as helm would render a chart file holding the case's template.
pub fn render(case: &Case) -> Result<String, String> {
    let mut set = templates(case.mode);
    set.parse(CASE_TEMPLATE, &case.template).map_err(|e| e.to_string())?;
    let values = Value::from_json(&case.values, Numbers::Float64);
    let data = Value::Map(Map::from_iter([("Values".to_string(), values)]));
    let out = set.execute_with_state(CASE_TEMPLATE, &data, &mut IncludeDepth::default()).map_err(|e| e.to_string())?;
    Ok(if case.mode == Mode::Helm { out.replace("<no value>", "") } else { out })
}
