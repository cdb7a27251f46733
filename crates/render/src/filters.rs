//! The filters and functions helm users expect, on top of minijinja's builtins.
//!
//! Where helm and Jinja disagree, weaver follows helm for the names helm users type:
//! `indent(n)` indents every line including the first (Jinja's skips it), `nindent(n)` adds a
//! leading newline, `default(x)` replaces undefined, none and empty strings/lists/maps (but not
//! `false` or `0`: helm's treatment of those is a well-known trap). Messages raised here never
//! include the values they were given: those may be decrypted secrets.

use std::sync::Arc;

use base64::Engine as _;
use minijinja::value::{Object, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use sha2::Digest;

pub fn register(env: &mut Environment<'static>) {
    env.set_formatter(yaml_formatter);
    env.add_filter("toyaml", toyaml);
    env.add_filter("tojson", tojson);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("sha256", sha256);
    env.add_filter("indent", indent);
    env.add_filter("nindent", nindent);
    env.add_filter("quote", quote);
    env.add_filter("required", required);
    env.add_filter("default", default);
    env.add_function("fail", fail);
}

/// `{{ x }}` prints booleans and none the way YAML (and helm) spell them: `true`, `false`,
/// `null`, not Python's `True`/`None`.
fn yaml_formatter(out: &mut minijinja::Output, state: &mut State<'_, '_>, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Bool => out.write_str(if value.is_true() { "true" } else { "false" }).map_err(Error::from),
        ValueKind::None => out.write_str("null").map_err(Error::from),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn to_json(value: &Value) -> Result<serde_json::Value, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

/// YAML for embedding under a key (pair with `nindent`); no trailing newline, as helm's toYaml.
fn toyaml(value: Value) -> Result<String, Error> {
    let mut text = weaver_yaml::to_yaml_string(&to_json(&value)?);
    text.truncate(text.trim_end_matches('\n').len());
    Ok(text)
}

/// Compact JSON, keys in the order the value has them.
fn tojson(value: Value) -> Result<String, Error> {
    Ok(to_json(&value)?.to_string())
}

fn as_text(value: &Value, filter: &str) -> Result<String, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(Error::from(ErrorKind::UndefinedError)),
        ValueKind::String | ValueKind::Number | ValueKind::Bool => Ok(value.to_string()),
        ValueKind::Bytes => Ok(String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned()),
        kind => Err(invalid(format!("{filter} expects a string, got {kind}"))),
    }
}

fn b64encode(value: Value) -> Result<String, Error> {
    if let Some(bytes) = value.as_bytes().filter(|_| value.kind() == ValueKind::Bytes) {
        return Ok(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(as_text(&value, "b64encode")?))
}

fn b64decode(value: Value) -> Result<String, Error> {
    let text = as_text(&value, "b64decode")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| invalid("b64decode: the value is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| invalid("b64decode: the decoded bytes are not UTF-8 text"))
}

fn sha256(value: Value) -> Result<String, Error> {
    Ok(hex::encode(sha2::Sha256::digest(as_text(&value, "sha256")?.as_bytes())))
}

/// Indents every non-empty line by `width` spaces; empty lines stay empty so block scalars
/// keep their content.
fn indent(value: Value, width: usize) -> Result<String, Error> {
    // A typo like `indent(40000000000)` would otherwise abort weaver allocating the padding.
    const MAX_WIDTH: usize = 1024;
    if width > MAX_WIDTH {
        return Err(invalid(format!("indent: width {width} is too large (at most {MAX_WIDTH})")));
    }
    let text = as_text(&value, "indent")?;
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(text.len() + width * 4);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    Ok(out)
}

fn nindent(value: Value, width: usize) -> Result<String, Error> {
    Ok(format!("\n{}", indent(value, width)?))
}

/// A double-quoted YAML (and JSON) string of the value's text.
fn quote(value: Value) -> Result<String, Error> {
    let text = if value.is_none() { String::new() } else { as_text(&value, "quote")? };
    Ok(serde_json::Value::String(text).to_string())
}

fn is_empty(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::String => value.as_str().is_some_and(str::is_empty),
        ValueKind::Seq | ValueKind::Map => value.len() == Some(0),
        _ => false,
    }
}

/// `values.x | required("x is required")`: fails the render with the author's message.
fn required(value: Value, message: Option<String>) -> Result<Value, Error> {
    if is_empty(&value) {
        Err(invalid(message.unwrap_or_else(|| "a required value is missing".to_string())))
    } else {
        Ok(value)
    }
}

fn default(value: Value, fallback: Option<Value>) -> Value {
    if is_empty(&value) { fallback.unwrap_or_else(|| Value::from("")) } else { value }
}

/// `fail("message")`: stops rendering with the author's message.
fn fail(message: String) -> Result<Value, Error> {
    Err(invalid(message))
}

/// `files.get(path)`: a file of the chart, relative to the chart directory.
#[derive(Debug)]
pub struct ChartFiles {
    pub chart: String,
    pub files: Arc<std::collections::BTreeMap<String, String>>,
}

impl Object for ChartFiles {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let [path] = args else {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "files.get takes one argument: a path relative to the chart",
            ));
        };
        let path = path.as_str().ok_or_else(|| invalid("files.get expects a string path"))?;
        let path = path.trim_start_matches("./");
        self.files.get(path).map(|text| Value::from(text.as_str())).ok_or_else(|| {
            invalid(format!(
                "files.get: no file `{path}` in chart `{}` (templates/ and crds/ are not readable this way)",
                self.chart
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> Result<String, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        register(&mut env);
        env.render_str(template, ctx)
    }

    #[test]
    fn helm_style_indent_and_nindent() {
        let ctx = minijinja::context! { v => "a: 1\n\nb: 2" };
        assert_eq!(render("{{ v | indent(2) }}", ctx.clone()).unwrap(), "  a: 1\n\n  b: 2");
        assert_eq!(render("x:{{ v | nindent(4) }}", ctx).unwrap(), "x:\n    a: 1\n\n    b: 2");
    }

    #[test]
    fn toyaml_and_tojson_keep_values() {
        let ctx = minijinja::context! { v => minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"b": ["on", 1], "a": "yes"}))) };
        assert_eq!(render("{{ v | toyaml }}", ctx.clone()).unwrap(), "a: 'yes'\nb:\n- 'on'\n- 1");
        assert_eq!(render("{{ v | tojson }}", ctx).unwrap(), r#"{"a":"yes","b":["on",1]}"#);
    }

    #[test]
    fn base64_and_sha256() {
        let ctx = minijinja::context! { v => "hello" };
        assert_eq!(render("{{ v | b64encode }}", ctx.clone()).unwrap(), "aGVsbG8=");
        assert_eq!(render("{{ 'aGVsbG8=' | b64decode }}", ctx.clone()).unwrap(), "hello");
        assert_eq!(
            render("{{ v | sha256 }}", ctx).unwrap(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let err = render("{{ 'not base64!' | b64decode }}", Value::UNDEFINED).unwrap_err();
        assert_eq!(err.detail(), Some("b64decode: the value is not valid base64"));
    }

    #[test]
    fn quote_escapes_for_yaml() {
        let ctx = minijinja::context! { v => "say \"hi\"\n" , n => 3 };
        assert_eq!(render("{{ true }} {{ false }} {{ none }}", Value::UNDEFINED).unwrap(), "true false null");
        assert_eq!(render("{{ v | quote }} {{ n | quote }}", ctx).unwrap(), r#""say \"hi\"\n" "3""#);
    }

    #[test]
    fn required_default_and_fail() {
        let ctx = minijinja::context! { values => minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"a": "", "b": false, "c": "x"}))) };
        let err = render("{{ values.a | required('a is required') }}", ctx.clone()).unwrap_err();
        assert_eq!(err.detail(), Some("a is required"));
        let err = render("{{ values.missing | required('missing is required') }}", ctx.clone()).unwrap_err();
        assert_eq!(err.detail(), Some("missing is required"));
        assert_eq!(render("{{ values.c | required('c') }}", ctx.clone()).unwrap(), "x");
        assert_eq!(
            render(
                "{{ values.missing | default('d') }}-{{ values.a | default('e') }}-{{ values.b | default(true) }}",
                ctx.clone()
            )
            .unwrap(),
            "d-e-false"
        );
        let err = render("{{ fail('stop here') }}", ctx).unwrap_err();
        assert_eq!(err.detail(), Some("stop here"));
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let err = render(
            "{{ values.nope }}",
            minijinja::context! { values => minijinja::Value::from(minijinja::value::Serde(serde_json::json!({}))) },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }
}
