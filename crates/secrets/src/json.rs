//! JSON reading and writing for secrets files (no comments in JSON).

use std::path::Path;

use serde::Serialize;

use super::SecretsError;
use super::tree::{Item, Mapping, Value};

pub(crate) fn parse(path: &Path, text: &str) -> Result<Mapping, SecretsError> {
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let message = weaver_core::error::json_reason(&e);
        SecretsError::Parse { path: path.to_owned(), line: e.line(), column: e.column(), message }
    })?;
    match from_json(parsed) {
        Value::Map(items) => Ok(items),
        other => Err(SecretsError::Parse {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: format!("the top level must be an object, not a {}", other.type_name()),
        }),
    }
}

fn from_json(value: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
        J::String(s) => Value::Str(s),
        J::Array(items) => {
            Value::Seq(items.into_iter().map(|v| Item::Entry { key: (), value: from_json(v), comment: None }).collect())
        }
        J::Object(map) => Value::Map(
            map.into_iter().map(|(key, v)| Item::Entry { key, value: from_json(v), comment: None }).collect(),
        ),
    }
}

/// Tab-indented, as sops writes JSON.
pub(crate) fn emit(docs: &[Mapping]) -> String {
    let value = Value::Map(docs.iter().flatten().cloned().collect()).to_json();
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
    value.serialize(&mut serializer).expect("serialising a JSON value into memory cannot fail");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}
