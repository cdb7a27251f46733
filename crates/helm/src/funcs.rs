//! helm's own template functions (pkg/engine/funcs.go and engine.go): `include`, `tpl`,
//! `required`, `fail`, `toYaml`, `toYamlPretty`, `fromYaml`, `fromYamlArray`, `toJson`,
//! `fromJson`, `fromJsonArray`, `toToml`, `fromToml`, `lookup` (see [`super::lookup`]). (`getHostByName` without DNS, as `helm template` has it,
//! is sprig's.)

use std::collections::HashMap;
use std::sync::Arc;

use gotemplate::{Ctx, ErrorKind, FuncError, Function, Map, Numbers, Templates, Type, Value};

use super::lookup::{Live, Query};

/// Markers helm wraps `required` and `fail` messages in, to find them in a wrapped error.
pub const ERR_START: &str = "HELM_ERR_START";
pub const ERR_END: &str = "HELM_ERR_END";

/// helm's limit on nested `include`s of one template.
const RECURSION_MAX: usize = 1000;

/// What helm's functions keep during one release's render: how many `include`s of each
/// template are running (as helm counts them), and what `lookup` reads.
#[derive(Default)]
pub struct RenderState {
    include_depth: HashMap<String, usize>,
    /// The release being rendered, which `lookup` reports its misses for.
    release: String,
    live: Arc<Live>,
}

impl RenderState {
    pub fn new(release: &str, live: Arc<Live>) -> RenderState {
        RenderState { include_depth: HashMap::new(), release: release.to_string(), live }
    }
}

/// Adds helm's functions, replacing any of the same name (helm's map overrides sprig's).
pub fn register(set: &mut Templates) {
    set.add_function("include", Function::new(&[Type::String, Type::Any], include));
    set.add_function("tpl", Function::new(&[Type::String, Type::Any], tpl));
    set.add_function(
        "required",
        Function::new(&[Type::String, Type::Any], |_, args| match &args[1] {
            Value::Nil => Err(wrapped(args[0].as_str().unwrap_or_default())),
            Value::String(s) if s.is_empty() => Err(wrapped(args[0].as_str().unwrap_or_default())),
            other => Ok(other.clone()),
        }),
    );
    set.add_function(
        "fail",
        Function::new(&[Type::String], |_, args| Err(wrapped(args[0].as_str().unwrap_or_default()))),
    );
    set.add_function("toYaml", Function::new(&[Type::Any], |_, args| Ok(Value::from(to_yaml(&args[0])?))));
    set.add_function("toYamlPretty", Function::new(&[Type::Any], |_, args| Ok(Value::from(to_yaml_pretty(&args[0])?))));
    set.add_function("fromYaml", Function::new(&[Type::String], |_, args| Ok(from_yaml(str_arg(args)))));
    set.add_function("fromYamlArray", Function::new(&[Type::String], |_, args| Ok(from_yaml_array(str_arg(args)))));
    set.add_function(
        "toJson",
        Function::new(&[Type::Any], |_, args| Ok(Value::from(to_json(&args[0])?.unwrap_or_default()))),
    );
    set.add_function("fromJson", Function::new(&[Type::String], |_, args| Ok(from_json(str_arg(args)))));
    set.add_function("fromJsonArray", Function::new(&[Type::String], |_, args| Ok(from_json_array(str_arg(args)))));
    set.add_function("toToml", Function::new(&[Type::Any], |_, args| Ok(Value::from(super::toml::encode(&args[0])?))));
    set.add_function(
        "fromToml",
        Function::new(&[Type::String], |_, args| Ok(super::toml::decode(str_arg(args)).unwrap_or_else(error_map))),
    );
    set.add_function("lookup", Function::new(&[Type::String, Type::String, Type::String, Type::String], lookup));
}

fn str_arg(args: &[Value]) -> &str {
    args[0].as_str().unwrap_or_default()
}

fn wrapped(message: &str) -> FuncError {
    FuncError::new(format!("{ERR_START}{message}{ERR_END}"))
}

/// `lookup apiVersion kind namespace name`, from the render's [`Live`] snapshot.
fn lookup(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
    let Some(state) = ctx.state::<RenderState>() else { return Ok(Value::Map(Map::new())) };
    let arg = |i: usize| args[i].as_str().unwrap_or_default();
    let query = Query { api_version: arg(0), kind: arg(1), namespace: arg(2), name: arg(3) };
    let found = state.live.lookup(&state.release, &query).map_err(FuncError::new)?;
    Ok(unstructured(&found))
}

/// A looked-up object as client-go's unstructured content: integers are `int64`.
fn unstructured(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int64(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::Array(items) => Value::from(items.iter().map(unstructured).collect::<Vec<_>>()),
        serde_json::Value::Object(map) => {
            Value::Map(Map::from_iter(map.iter().map(|(k, v)| (k.clone(), unstructured(v)))))
        }
        other => Value::from_json(other, Numbers::Float64),
    }
}

fn include(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
    let name = str_arg(args).to_string();
    if let Some(state) = ctx.state::<RenderState>() {
        let count = state.include_depth.entry(name.clone()).or_insert(0);
        if *count > RECURSION_MAX {
            return Err(FuncError::new(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )));
        }
        *count += 1;
    }
    let result = ctx.execute_template(&name, args[1].clone());
    if let Some(state) = ctx.state::<RenderState>()
        && let Some(count) = state.include_depth.get_mut(&name)
    {
        *count -= 1;
    }
    Ok(Value::from(result?))
}

fn tpl(ctx: &mut Ctx<'_>, args: &[Value]) -> Result<Value, FuncError> {
    let text = str_arg(args).to_string();
    let quoted = gotemplate::strconv::quote(&text, false);
    // helm names the text after the root template ("gotpl").
    match ctx.execute_text("gotpl", &text, args[1].clone()) {
        Ok(out) => Ok(Value::from(out.replace("<no value>", ""))),
        Err(e) if e.kind() == ErrorKind::Parse => Err(FuncError::wrap(format!("cannot parse template {quoted}: "), e)),
        Err(e) => Err(FuncError::wrap(format!("error during tpl function execution for {quoted}: "), e)),
    }
}

/// helm's `toYaml`: sigs.k8s.io/yaml's output without its last newline; "" when Go cannot
/// marshal the value, an error when it nests deeper than [`gotemplate::MAX_NESTING`] levels.
pub fn to_yaml(value: &Value) -> Result<String, FuncError> {
    Ok(match sprig::json::lenient(value)? {
        // `Node::from_json` reads an integral float as go-yaml reads what encoding/json wrote of
        // it (an integer below 1e21), so the JSON form goes to it as it is.
        Some(json) => {
            let text = weaver_yaml::helm::to_string(&weaver_yaml::helm::Node::from_json(&json));
            text.strip_suffix('\n').unwrap_or(&text).to_string()
        }
        None => String::new(),
    })
}

/// helm's `toYamlPretty`: go-yaml v3's encoder (indent 2) on the value itself, not its JSON form,
/// so float64s stay floats (`1e+06`); without its last newline; an error for data nested deeper
/// than [`gotemplate::MAX_NESTING`] levels (a map holding itself).
pub fn to_yaml_pretty(value: &Value) -> Result<String, FuncError> {
    let text = weaver_yaml::helm::to_string_v3(&yaml_v3_node(value, 0)?);
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

/// The node go-yaml v3 makes of a value: keys in its order, other types (structs) as their
/// encoded (JSON) form.
fn yaml_v3_node(value: &Value, depth: usize) -> Result<weaver_yaml::helm::Node, FuncError> {
    use weaver_yaml::helm::{Flavor, Node, natural_order};
    if depth > gotemplate::MAX_NESTING {
        return Err(FuncError::too_deep());
    }
    Ok(match value {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Int(*i),
        Value::Float(f) => Node::Float(*f),
        Value::String(s) => Node::Str(s.to_string()),
        // Loops rather than iterator adapters: each level's stack frame stays small.
        Value::List(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for item in items.iter() {
                nodes.push(yaml_v3_node(item, depth + 1)?);
            }
            Node::Seq(nodes)
        }
        Value::Map(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map.entries() {
                entries.push((k, yaml_v3_node(&v, depth + 1)?));
            }
            entries.sort_by(|a, b| natural_order(&a.0, &b.0, Flavor::V3));
            Node::Map(entries)
        }
        Value::Object(object) => match object.underlying() {
            Some(inner) => yaml_v3_node(&inner, depth + 1)?,
            None => Node::Str(object.display()),
        },
    })
}

fn from_yaml(text: &str) -> Value {
    match weaver_yaml::helm::from_str(text) {
        Ok(None | Some(serde_json::Value::Null)) => Value::Map(Map::new()),
        Ok(Some(json @ serde_json::Value::Object(_))) => Value::from_json(&json, Numbers::Float64),
        Ok(Some(other)) => error_map(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&other)
        )),
        Err(e) => error_map(format!("error converting YAML to JSON: yaml: {e}")),
    }
}

fn from_yaml_array(text: &str) -> Value {
    match weaver_yaml::helm::from_str(text) {
        Ok(None | Some(serde_json::Value::Null)) => Value::from(Vec::new()),
        Ok(Some(json @ serde_json::Value::Array(_))) => Value::from_json(&json, Numbers::Float64),
        Ok(Some(other)) => Value::from(vec![Value::from(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_type(&other)
        ))]),
        Err(e) => Value::from(vec![Value::from(format!("error converting YAML to JSON: yaml: {e}"))]),
    }
}

fn from_json(text: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Null) => Value::Map(Map::new()),
        Ok(json @ serde_json::Value::Object(_)) => Value::from_json(&json, Numbers::Float64),
        Ok(other) => error_map(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&other)
        )),
        Err(e) => error_map(weaver_core::error::json_reason(&e)),
    }
}

fn from_json_array(text: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Null) => Value::from(Vec::new()),
        Ok(json @ serde_json::Value::Array(_)) => Value::from_json(&json, Numbers::Float64),
        Ok(other) => Value::from(vec![Value::from(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_type(&other)
        ))]),
        Err(e) => Value::from(vec![Value::from(weaver_core::error::json_reason(&e))]),
    }
}

fn error_map(message: String) -> Value {
    Value::Map(Map::from_iter([("Error".to_string(), Value::from(message))]))
}

fn json_type(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// encoding/json's `Marshal` (see `sprig::json`): None when Go cannot marshal the value (helm's
/// `toJson` gives ""), an error when it nests deeper than [`gotemplate::MAX_NESTING`] levels.
pub fn to_json(value: &Value) -> Result<Option<String>, FuncError> {
    Ok(sprig::json::lenient(value)?.and_then(|json| sprig::json::marshal(&json, sprig::json::Style::Compact)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_test_support::cases as helm_cases;

    /// tests/funcs.txt: cases of helm's own functions, with helm 3.17.1's output.
    fn table() -> Vec<(helm_cases::Mode, helm_cases::Case)> {
        helm_cases::parse(include_str!("../tests/funcs.txt"))
    }

    /// helm's function map: sprig's, then helm's own.
    fn helm_functions(set: &mut Templates) {
        sprig::register(set);
        register(set);
    }

    #[test]
    fn table_cases_render_as_helm_does() {
        helm_cases::check_table(&table(), 10, |mode, case| {
            helm_cases::render_with(mode, case, helm_functions, &mut RenderState::default())
        });
    }

    /// Runs helm (WEAVER_HELM or on PATH); skipped, saying so, without it.
    #[test]
    fn helm_renders_every_case_as_the_table_says() {
        helm_cases::check_with_helm("weaver-funcs", &table());
    }

    #[test]
    fn json_like_go() {
        let v = Value::from_json(&serde_json::json!({"b": [1, 1.5, 1e21, 1e-7, "<&>"], "a": null}), Numbers::Float64);
        assert_eq!(to_json(&v).unwrap().unwrap(), r#"{"a":null,"b":[1,1.5,1e+21,1e-7,"\u003c\u0026\u003e"]}"#);
    }

    #[test]
    fn pretty_yaml_like_go_yaml_v3() {
        let v = Value::from_json(
            &serde_json::json!({"l": [1, [2, 3], {"b": [4]}], "n": 1e6, "1a": 1, "1_": 2, "t": "a\tb", "lt": "x\ty\nz"}),
            Numbers::Float64,
        );
        assert_eq!(
            to_yaml_pretty(&v).unwrap(),
            "1a: 1\n\"1_\": 2\nl:\n  - 1\n  - - 2\n    - 3\n  - b:\n      - 4\nlt: |-\n  x\ty\n  z\n\"n\": 1e+06\nt: \"a\\tb\""
        );
        assert_eq!(to_yaml_pretty(&Value::from("word ".repeat(30))).unwrap().lines().count(), 1, "v3 never folds");
    }

    /// helm's functions of a value nested 200,000 levels deep, as a template's loop builds one: the
    /// encoders fail naming the bound (a recursive walk overflows the test thread's stack within a
    /// few thousand levels), and the value drops without recursing.
    #[test]
    fn encoders_of_a_deep_value_fail_naming_the_bound() {
        let mut set = Templates::new("gotpl");
        helm_functions(&mut set);
        let deep =
            (0..200_000).fold(Value::Map(Map::new()), |inner, _| Value::Map(Map::from_iter([("a".into(), inner)])));
        let data = Value::Map(Map::from_iter([("d".to_string(), deep)]));
        let bound = format!("value nested deeper than {} levels", gotemplate::MAX_NESTING);
        for function in ["toYaml", "toYamlPretty", "toJson", "toToml", "mustToJson"] {
            set.parse("t", &format!("{{{{ {function} .d }}}}")).unwrap();
            let error = set.execute("t", &data).unwrap_err().to_string();
            assert!(error.ends_with(&format!("error calling {function}: {bound}")), "{function}: {error}");
        }
        set.parse("t", "{{ .d.YAML }}").unwrap();
        let values = Value::Map(Map::from_iter([(
            "d".to_string(),
            super::super::builtins::Values::value(Map::from_iter([("d".to_string(), data.clone())])),
        )]));
        let error = set.execute("t", &values).unwrap_err().to_string();
        assert!(error.ends_with(&format!("error calling YAML: {bound}")), "{error}");
    }

    /// Within the bound the encoders write the whole value, on a test thread's stack in a debug build.
    #[test]
    fn encoders_within_the_bound_write_the_whole_value() {
        let mut set = Templates::new("gotpl");
        helm_functions(&mut set);
        let levels = gotemplate::MAX_NESTING - 1;
        let deep =
            (0..levels).fold(Value::Map(Map::new()), |inner, _| Value::Map(Map::from_iter([("a".into(), inner)])));
        let data = Value::Map(Map::from_iter([("d".to_string(), deep)]));
        for (function, level) in [("toYaml", "a:"), ("toYamlPretty", "a:"), ("toJson", "\"a\":"), ("toToml", "[a")] {
            set.parse("t", &format!("{{{{ {function} .d }}}}")).unwrap();
            let text = set.execute("t", &data).unwrap();
            assert_eq!(text.matches(level).count(), levels, "{function}");
        }
    }

    /// Parsed text nests only as deep as the parsers allow: deeper text is an error, not a value.
    #[test]
    fn parsing_deeply_nested_text_is_an_error() {
        let json = format!("{}{}", "{\"a\":".repeat(200_000), "}".repeat(200_000));
        assert!(from_json(&json).to_go_string().starts_with("map[Error:"));
        let yaml = format!("{}1{}", "{a: ".repeat(200_000), "}".repeat(200_000));
        assert!(from_yaml(&yaml).to_go_string().starts_with("map[Error:"));
    }

    #[test]
    fn yaml_like_helm() {
        let v = Value::from_json(&serde_json::json!({"big": 1e16, "f": 0.5, "s": "yes", "n": 1}), Numbers::Float64);
        assert_eq!(to_yaml(&v).unwrap(), "big: 10000000000000000\nf: 0.5\n\"n\": 1\ns: \"yes\"");
    }
}
