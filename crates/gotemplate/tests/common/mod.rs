//! cases/table.txt for the table test and the helm interop test (through the harness
//! weaver-test-support's `cases`, shared with weaver-sprig and weaver-helm), and the helm-like functions the cases call, written on the
//! crate's public API as helm's engine layer will be.

use std::collections::HashMap;

use gotemplate::{Ctx, ErrorKind, FuncError, Function, Map, Templates, Type, Value};

pub use weaver_test_support::cases as helm_cases;

pub use helm_cases::{Case, Mode};

pub const TABLE: &str = include_str!("../cases/table.txt");

/// The table's cases, with their modes.
pub fn cases() -> Vec<(Mode, Case)> {
    helm_cases::parse(TABLE)
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
    let quoted = gotemplate::strconv::quote(&text, false);
    match ctx.execute_text("gotpl", &text, args[1].clone()) {
        Ok(out) => Ok(Value::from(out.replace("<no value>", ""))),
        Err(e) if e.kind() == ErrorKind::Parse => Err(FuncError::wrap(format!("cannot parse template {quoted}: "), e)),
        Err(e) => Err(FuncError::wrap(format!("error during tpl function execution for {quoted}: "), e)),
    }
}

/// A set with the cases' functions, as helm configures one.
pub fn templates(mode: Mode) -> Templates {
    helm_cases::templates_with(mode, register)
}

/// Renders a case as helm would render a chart file holding the case's template.
pub fn render(mode: Mode, case: &Case) -> Result<String, String> {
    helm_cases::render_with(mode, case, register, &mut IncludeDepth::default())
}

/// The helm-like functions: sprig's and helm's signatures, just enough behavior for the cases.
fn register(set: &mut Templates) {
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
}
