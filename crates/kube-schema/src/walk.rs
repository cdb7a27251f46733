//! The walker: one object against one compiled schema, collecting every problem with its path
//! and a message worded as the API server words it.

use std::fmt::Write;

use base64::Engine;
use serde_json::Value;

use super::apimachinery::{self, NameRule, StringMap};
use super::schema::{Builtins, Extra, Format, Id, Node, Schemas, Type};

/// One problem in an object: where (`spec.template.spec.containers[0].name`, as the API server
/// writes paths) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
    /// An undeclared field (which the API server prunes, warns about or refuses, as
    /// `fieldValidation` says), rather than a value the schema refuses.
    pub unknown: bool,
}

pub(crate) struct Walker<'a> {
    pub builtins: &'a Builtins,
    /// Whether messages may quote the object's values (never a Secret's).
    pub echo: bool,
    pub issues: Vec<Issue>,
}

/// How a value is shown in a message: quoted as the API server does, or hidden.
fn shown(value: &Value, echo: bool) -> String {
    if !echo {
        return "\"[redacted]\"".to_string();
    }
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Walker<'_> {
    fn issue(&mut self, path: &str, message: String) {
        self.issues.push(Issue { path: path.to_string(), message, unknown: false });
    }

    /// `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`
    fn wrong_type(&mut self, path: &str, expected: &str, value: &Value) {
        let found = json_type(value);
        self.issue(
            path,
            format!("{path}: Invalid value: \"{found}\": {path} in body must be of type {expected}: \"{found}\""),
        );
    }

    /// A whole object (the root of a built-in kind, or of a custom resource when `custom`:
    /// its apiVersion, kind and metadata are the API server's, whatever the CRD declares).
    pub fn object(&mut self, schemas: &Schemas, id: Id, value: &Value, custom: bool) {
        let mut path = String::new();
        if custom {
            self.embedded_fields(schemas, id, value, &mut path);
        } else {
            self.value(schemas, id, value, &mut path);
        }
    }

    /// An embedded resource (or a custom resource's root): apiVersion, kind and metadata
    /// (ObjectMeta) besides what the schema declares.
    fn embedded_fields(&mut self, schemas: &Schemas, id: Id, value: &Value, path: &mut String) {
        let Value::Object(map) = value else { return self.wrong_type(path, "object", value) };
        let builtins = self.builtins;
        for key in ["apiVersion", "kind"] {
            match map.get(key) {
                Some(Value::String(text)) if !text.is_empty() => {}
                None | Some(Value::Null) => {
                    let at = join(path, key);
                    self.issue(&at, format!("{at}: Required value: must not be empty"));
                }
                Some(Value::String(_)) => {
                    let at = join(path, key);
                    self.issue(&at, format!("{at}: Required value: must not be empty"));
                }
                Some(other) => self.wrong_type(&join(path, key), "string", other),
            }
        }
        if let Some(meta) = map.get("metadata") {
            let len = path.len();
            push_key(path, "metadata");
            self.value(&builtins.schemas, builtins.object_meta, meta, path);
            path.truncate(len);
        }
        self.fields(schemas, id, value, path, &["apiVersion", "kind", "metadata"]);
    }

    fn value(&mut self, schemas: &Schemas, id: Id, value: &Value, path: &mut String) {
        let node = schemas.node(id);
        if let Some(deferred) = node.definition {
            let compiled = deferred.compiled();
            return self.value(&compiled.schemas, compiled.root, value, path);
        }
        // Decoding drops nulls in built-in kinds; a custom resource's typed field takes one
        // only if `nullable` (a real 1.32 server refuses `spec.x: null` otherwise).
        if value.is_null() {
            if let (true, Some(ty)) = (node.null_refused, node.ty) {
                self.wrong_type(path, ty.name(), value);
                self.enumeration(node, value, path);
            }
            return;
        }
        if node.int_or_string {
            match value {
                Value::String(text) if node.quantity && weaver_quantity::canonicalize(text).is_none() => {
                    let message = format!(
                        "{path}: Invalid value: {}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        shown(value, self.echo)
                    );
                    self.issue(path, message);
                }
                Value::String(_) => {}
                // A quantity may be any number (`cpu: 0.5`); an int-or-string only an integer.
                Value::Number(n) if node.quantity || !n.is_f64() => {}
                _ => self.wrong_type(path, "integer,string", value),
            }
            return;
        }
        if node.embedded {
            return self.embedded_fields(schemas, id, value, path);
        }
        let Some(ty) = node.ty else {
            if value.is_object() && !node.properties.is_empty() {
                self.fields(schemas, id, value, path, &[]);
            }
            return;
        };
        let fits = match (ty, value) {
            (Type::Object, Value::Object(_)) | (Type::Array, Value::Array(_)) => true,
            (Type::String, Value::String(_)) | (Type::Boolean, Value::Bool(_)) => true,
            (Type::Number, Value::Number(_)) => true,
            // The server's decoders take a float with an integral value (`1e+06`, which
            // go-yaml writes for a million) as an integer.
            (Type::Integer, Value::Number(n)) => integer(n).is_some(),
            _ => false,
        };
        if !fits {
            return self.wrong_type(path, ty.name(), value);
        }
        self.enumeration(node, value, path);
        match value {
            Value::Object(map) => {
                if let Some(kind) = node.string_map {
                    self.string_map(kind, map, path);
                }
                self.fields(schemas, id, value, path, &[])
            }
            Value::Array(items) => {
                if let Some(item_id) = node.items {
                    let len = path.len();
                    for (index, item) in items.iter().enumerate() {
                        let _ = write!(path, "[{index}]");
                        self.value(schemas, item_id, item, path);
                        path.truncate(len);
                    }
                }
            }
            Value::String(text) => self.format(node.format, text, value, path),
            Value::Number(n)
                if node.format == Some(Format::Int32) && integer(n).is_none_or(|n| i32::try_from(n).is_err()) =>
            {
                let message = format!("{path}: Invalid value: {n}: {path} in body must be of type int32: {n}");
                self.issue(path, message);
            }
            _ => {}
        }
    }

    fn format(&mut self, format: Option<Format>, text: &str, value: &Value, path: &str) {
        let (valid, name) = match format {
            // Go's base64 decoder skips line breaks.
            Some(Format::Byte) => {
                let compact: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
                (base64::engine::general_purpose::STANDARD.decode(compact).is_ok(), "byte")
            }
            Some(Format::DateTime) => (text.parse::<jiff::Timestamp>().is_ok(), "date-time"),
            _ => return,
        };
        if !valid {
            let shown = shown(value, self.echo);
            self.issue(path, format!("{path}: Invalid value: {shown}: {path} in body must be of type {name}: {shown}"));
        }
    }

    /// An object's fields: declared ones against their schema, others against
    /// `additionalProperties`, or unknown; then the required ones. `implicit` fields were
    /// checked by the caller.
    fn fields(&mut self, schemas: &Schemas, id: Id, value: &Value, path: &mut String, implicit: &[&str]) {
        let Value::Object(map) = value else { return };
        let node = schemas.node(id);
        let len = path.len();
        for (key, child) in map {
            if implicit.contains(&key.as_str()) {
                continue;
            }
            let child_id = match (node.properties.get(key), node.extra) {
                (Some(&child_id), _) => child_id,
                (None, Extra::Schema(child_id)) => child_id,
                (None, Extra::Any) => continue,
                (None, Extra::None) => {
                    let at = join(path, key);
                    self.issues.push(Issue { message: format!("unknown field \"{at}\""), path: at, unknown: true });
                    continue;
                }
            };
            push_key(path, key);
            self.value(schemas, child_id, child, path);
            path.truncate(len);
        }
        for key in &node.required {
            // A missing field with a default is filled in before the check.
            let defaulted = node.properties.get(key).is_some_and(|&child| schemas.node(child).default);
            if !map.contains_key(key) && !defaulted {
                let at = join(path, key);
                self.issue(&at, format!("{at}: Required value"));
            }
        }
    }
}

impl Walker<'_> {
    /// A value outside the node's `enum` (or a built-in field's fixed set).
    fn enumeration(&mut self, node: &Node, value: &Value, path: &str) {
        if !node.enumeration.is_empty()
            && !node.enumeration.contains(value)
            && (!node.empty_allowed || value.as_str() != Some(""))
        {
            let supported: Vec<String> = node.enumeration.iter().map(|v| shown(v, true)).collect();
            let message = format!(
                "{path}: Unsupported value: {}: supported values: {}",
                shown(value, self.echo),
                supported.join(", ")
            );
            self.issue(path, message);
        }
    }

    /// The name (and namespace) of a whole object of `kind` in API group `group`, as
    /// `ValidateObjectMeta` checks them with the kind's name rule.
    pub fn name(&mut self, group: &str, kind: &str, object: &Value) {
        let meta = &object["metadata"];
        let checks = [("metadata.name", NameRule::of(group, kind)), ("metadata.namespace", NameRule::Dns1123Label)];
        for (path, rule) in checks {
            let field = path.trim_start_matches("metadata.");
            let Some(value) = meta[field].as_str().filter(|value| !value.is_empty()) else { continue };
            for error in rule.errors(value) {
                self.issue(path, format!("{path}: Invalid value: {value:?}: {error}"));
            }
        }
    }

    /// Labels (keys and values) or annotations (keys, and their total size), as
    /// `ValidateLabels` and `ValidateAnnotations` check them.
    fn string_map(&mut self, kind: StringMap, map: &serde_json::Map<String, Value>, path: &str) {
        let mut size = 0;
        for (key, value) in map {
            let checked = match kind {
                StringMap::Labels => key.clone(),
                StringMap::Annotations => key.to_lowercase(),
            };
            for error in apimachinery::qualified_name_errors(&checked) {
                self.issue(path, format!("{path}: Invalid value: {key:?}: {error}"));
            }
            let Value::String(text) = value else { continue };
            size += key.len() + text.len();
            if kind == StringMap::Labels {
                for error in apimachinery::label_value_errors(text) {
                    self.issue(path, format!("{path}: Invalid value: {}: {error}", shown(value, self.echo)));
                }
            }
        }
        if kind == StringMap::Annotations && size > apimachinery::TOTAL_ANNOTATION_SIZE_LIMIT {
            let limit = apimachinery::TOTAL_ANNOTATION_SIZE_LIMIT;
            self.issue(path, format!("{path}: Too long: may not be more than {limit} bytes"));
        }
    }
}

/// A JSON number as an integer, when it is one: an integer, or a float with an integral value.
fn integer(n: &serde_json::Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1e30).then_some(f as i128)
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}
