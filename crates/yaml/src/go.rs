//! Files that Go programs read with sigs.k8s.io/yaml into a struct (kustomize's kustomization
//! and transformer configurations), read into serde types with the same semantics:
//! sigs.k8s.io/yaml converts the YAML to JSON with go-yaml v2's typing (YAML 1.1: `yes` is a
//! boolean, `010` is octal 8, `1.10` is the number 1.1; a key that is a number or a boolean
//! becomes its text), then `encoding/json` decodes that into the struct. A value's JSON type
//! must be its field's: a number or a boolean is no string (`namespace: 123` is refused), a
//! quoted `"3"` no number, a quoted `"true"` no boolean. A null leaves the field empty, a
//! number without a fraction (`3.0`) is an integer, and a key matches a field whatever its
//! case (`configMapgenerator` is `configMapGenerator`).

use std::path::Path;

use serde::de::value::{MapAccessDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;

use super::nodes::{SPANNED, SpannedAccess};
use crate::helm::Positions;
use weaver_core::error::{Error, Location, Result};

/// `value` (sigs.k8s.io/yaml's JSON of the file `path`, whose nodes are at `positions`) decoded
/// into `T` as `encoding/json` decodes it; an error names the line, the field and what it
/// expected, as "<what>: …".
pub(crate) fn decode<T: DeserializeOwned>(path: &Path, value: &Value, positions: &Positions, what: &str) -> Result<T> {
    let root = GoDe { value, pointer: String::new(), field: String::new(), positions };
    T::deserialize(root).map_err(|e| {
        let (line, column) = position(positions, e.pointer.as_deref().unwrap_or_default(), e.at_key);
        let field = if e.field.is_empty() { String::new() } else { format!("`{}`: ", e.field) };
        Error::at(Location::at(path, line as u64, column as u64), format!("{what}: {field}{}", e.message))
    })
}

/// Where the node at `pointer` (its key, when `at_key`) is written, or the nearest node around
/// it (a key merged in with `<<` has no position of its own); 0 for none.
fn position(positions: &Positions, pointer: &str, at_key: bool) -> (usize, usize) {
    let table = if at_key { &positions.keys } else { &positions.values };
    let mut at = pointer;
    loop {
        if let Some(&found) = table.get(at).or_else(|| positions.values.get(at)) {
            return found;
        }
        match at.rsplit_once('/') {
            Some((parent, _)) => at = parent,
            None => return (0, 0),
        }
    }
}

/// A decoding error, with the node it is about (once known) and the field it names.
#[derive(Debug)]
pub(crate) struct DecodeError {
    message: String,
    pointer: Option<String>,
    field: String,
    /// About the key of the node (an unknown field), not its value.
    at_key: bool,
}

impl DecodeError {
    /// The error, about the node at `pointer` (the field `field`) unless a node within it
    /// raised it.
    fn within(mut self, pointer: &str, field: &str, at_key: bool) -> Self {
        if self.pointer.is_none() {
            self.pointer = Some(pointer.to_string());
            self.field = field.to_string();
            self.at_key = at_key;
        }
        self
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        DecodeError { message: message.to_string(), pointer: None, field: String::new(), at_key: false }
    }
}

/// What a JSON value is, in the words of the file's author (never the value itself).
fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One node of the JSON, where it is and which field it fills.
#[derive(Clone)]
struct GoDe<'v> {
    value: &'v Value,
    /// Its JSON pointer, for its position.
    pointer: String,
    /// Its field as messages name it: `images[0].newTag`.
    field: String,
    positions: &'v Positions,
}

impl<'v> GoDe<'v> {
    fn child(&self, token: &str, field: String, value: &'v Value) -> GoDe<'v> {
        let pointer = format!("{}/{}", self.pointer, crate::events::pointer_token(token));
        GoDe { value, pointer, field, positions: self.positions }
    }

    fn item(&self, index: usize, value: &'v Value) -> GoDe<'v> {
        self.child(&index.to_string(), format!("{}[{index}]", self.field), value)
    }

    fn entry(&self, key: &str, value: &'v Value) -> GoDe<'v> {
        let field = if self.field.is_empty() { key.to_string() } else { format!("{}.{key}", self.field) };
        self.child(key, field, value)
    }

    /// The node's errors, and its children's, placed (see [`DecodeError::within`]).
    fn placed<T>(&self, result: std::result::Result<T, DecodeError>) -> std::result::Result<T, DecodeError> {
        result.map_err(|e| e.within(&self.pointer, &self.field, false))
    }

    fn expected(&self, what: &str) -> DecodeError {
        let hint = match self.value {
            Value::Bool(_) | Value::Number(_) if what == "a string" => " (quote it)",
            Value::String(_) if what != "a string" => " (unquote it)",
            _ => "",
        };
        de::Error::custom(format!("expected {what}{hint}, found {}", found(self.value)))
    }

    /// An integer field's value: a JSON number that `strconv.ParseInt` reads, as written by
    /// sigs.k8s.io/yaml (a float without a fraction is written as an integer, up to 1e21).
    fn integer<V: Visitor<'v>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_i64(0),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => visitor.visit_i64(i),
                (None, Some(u), _) => visitor.visit_u64(u),
                (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => visitor.visit_i64(f as i64),
                _ => Err(self.expected("a whole number")),
            },
            _ => Err(self.expected("a whole number")),
        };
        self.placed(result)
    }

    fn entries(&self, map: &'v serde_json::Map<String, Value>, fields: Option<&[&'static str]>) -> GoMap<'v> {
        // `encoding/json` prefers the field spelled as the key, else one whatever its case.
        let named: Vec<(&str, &String, &Value)> = map
            .iter()
            .map(|(key, value)| {
                let name = fields
                    .and_then(|fields| {
                        fields
                            .iter()
                            .find(|f| *f == key)
                            .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(key)))
                    })
                    .map_or(key.as_str(), |f| *f);
                (name, key, value)
            })
            .collect();
        // It sets a field for each key in the order sigs.k8s.io/yaml writes them, sorted: of
        // keys naming one field (`namespace`, `Namespace`), the last in that order wins.
        let entries = named
            .iter()
            .filter(|(name, key, _)| !named.iter().any(|(other, later, _)| other == name && later > key))
            .map(|(name, key, value)| (*name, self.entry(key, value)))
            .collect::<Vec<_>>();
        GoMap { entries: entries.into_iter(), value: None, field: self.field.clone() }
    }
}

impl<'de> IntoDeserializer<'de, DecodeError> for GoDe<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for GoDe<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, f) => visitor.visit_f64(f.unwrap_or_default()),
            },
            Value::String(s) => visitor.visit_str(s),
            Value::Array(_) => return self.deserialize_seq(visitor),
            Value::Object(_) => return self.deserialize_map(visitor),
        };
        self.placed(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_bool(false),
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.expected("true or false")),
        };
        self.placed(result)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.integer(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_f64(0.0),
            Value::Number(n) => visitor.visit_f64(n.as_f64().unwrap_or_default()),
            _ => Err(self.expected("a number")),
        };
        self.placed(result)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_str(""),
            Value::String(s) => visitor.visit_str(s),
            _ => Err(self.expected("a string")),
        };
        self.placed(result)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        if self.value.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = if self.value.is_null() { visitor.visit_unit() } else { Err(self.expected("null")) };
        self.placed(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DecodeError> {
        if name != SPANNED {
            return visitor.visit_newtype_struct(self);
        }
        let (line, column) = position(self.positions, &self.pointer, false);
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        visitor.visit_newtype_struct(MapAccessDeserializer::new(SpannedAccess::new(self, at(line), at(column))))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            // `encoding/json` leaves a list that is null empty.
            Value::Null => visitor.visit_seq(SeqDeserializer::new(std::iter::empty::<GoDe>())),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter().enumerate().map(|(i, item)| self.item(i, item)));
                visitor.visit_seq(&mut seq).and_then(|value| seq.end().map(|()| value))
            }
            _ => Err(self.expected("a list")),
        };
        self.placed(result)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => {
                visitor.visit_map(GoMap { entries: Vec::new().into_iter(), value: None, field: self.field.clone() })
            }
            Value::Object(map) => visitor.visit_map(self.entries(map, None)),
            _ => Err(self.expected("a mapping")),
        };
        self.placed(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => {
                visitor.visit_map(GoMap { entries: Vec::new().into_iter(), value: None, field: self.field.clone() })
            }
            Value::Object(map) => visitor.visit_map(self.entries(map, Some(fields))),
            _ => Err(self.expected("a mapping")),
        };
        self.placed(result)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::String(s) => visitor.visit_enum(StrDeserializer::<DecodeError>::new(s)),
            _ => Err(self.expected("a string")),
        };
        self.placed(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf
    }
}

/// A mapping's entries: each key (the field it names, for a struct) and its value.
struct GoMap<'v> {
    entries: std::vec::IntoIter<(&'v str, GoDe<'v>)>,
    value: Option<GoDe<'v>>,
    /// The mapping's field, which an unknown key is about.
    field: String,
}

impl<'de> de::MapAccess<'de> for GoMap<'de> {
    type Error = DecodeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, DecodeError> {
        let Some((name, value)) = self.entries.next() else { return Ok(None) };
        // An unknown key is about the mapping's field, where the key is written.
        let key = seed
            .deserialize(StrDeserializer::<DecodeError>::new(name))
            .map_err(|e| e.within(&value.pointer, &self.field, true))?;
        self.value = Some(value);
        Ok(Some(key))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> std::result::Result<V::Value, DecodeError> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("a value without its key"))?;
        let (pointer, field) = (value.pointer.clone(), value.field.clone());
        seed.deserialize(value).map_err(|e| e.within(&pointer, &field, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_saphyr::Spanned;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Fields {
        name: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        count: Option<i64>,
        enabled: Option<bool>,
        items: Option<Vec<Spanned<Item>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Item {
        new_tag: String,
    }

    fn read(text: &str) -> Result<Fields> {
        let (value, positions) = crate::helm::from_str_positioned(text).unwrap();
        decode(Path::new("f.yaml"), &value.unwrap_or_default(), &positions, "invalid f")
    }

    fn error(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn a_value_of_another_json_type_than_its_field_is_an_error_at_its_line_naming_the_field() {
        assert_eq!(
            error("name: 123\n"),
            "f.yaml:1:7: invalid f: `name`: expected a string (quote it), found an integer"
        );
        // YAML 1.1 booleans, and octal numbers.
        assert_eq!(
            error("name: yes\n"),
            "f.yaml:1:7: invalid f: `name`: expected a string (quote it), found a boolean"
        );
        assert_eq!(
            error("name: 0o17\n"),
            "f.yaml:1:7: invalid f: `name`: expected a string (quote it), found an integer"
        );
        assert_eq!(error("name: [a]\n"), "f.yaml:1:7: invalid f: `name`: expected a string, found a list");
        assert_eq!(
            error("labels:\n  a: b\n  x: 1.5\n"),
            "f.yaml:3:6: invalid f: `labels.x`: expected a string (quote it), found a number"
        );
        assert_eq!(
            error("count: \"3\"\n"),
            "f.yaml:1:8: invalid f: `count`: expected a whole number (unquote it), found a string"
        );
        assert_eq!(error("count: 3.5\n"), "f.yaml:1:8: invalid f: `count`: expected a whole number, found a number");
        assert_eq!(
            error("enabled: \"true\"\n"),
            "f.yaml:1:10: invalid f: `enabled`: expected true or false (unquote it), found a string"
        );
        assert_eq!(
            error("items:\n  - newTag: a\n  - newTag: 1.10\n"),
            "f.yaml:3:13: invalid f: `items[1].newTag`: expected a string (quote it), found a number"
        );
        assert_eq!(error("items:\n  - {}\n"), "f.yaml:2:5: invalid f: `items[0]`: missing field `newTag`");
        let unknown = error("labels: {}\nnameX: a\n");
        assert!(unknown.starts_with("f.yaml:2:1: invalid f: unknown field `nameX`"), "{unknown}");
    }

    #[test]
    fn values_are_what_encoding_json_makes_of_sigs_k8s_io_yaml() {
        let fields = read(
            "Name: web\nLABELS: {a: \"1\", 1: b, yes: c, d: }\ncount: 010\nenabled: on\nitems:\n  - newtag: \"1.10\"\n  - newTag: ~\n",
        )
        .unwrap();
        assert_eq!(fields.name.as_deref(), Some("web"));
        let labels: BTreeMap<String, String> =
            [("a", "1"), ("1", "b"), ("true", "c"), ("d", "")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        assert_eq!(fields.labels, Some(labels));
        assert_eq!(fields.count, Some(8));
        assert_eq!(fields.enabled, Some(true));
        let items = fields.items.unwrap();
        assert_eq!((items[0].value.new_tag.as_str(), items[0].referenced.line()), ("1.10", 6));
        assert_eq!((items[1].value.new_tag.as_str(), items[1].referenced.column()), ("", 5));
        // A float without a fraction is an integer, as sigs.k8s.io/yaml writes it; a null none.
        assert_eq!(read("count: 3.0\n").unwrap().count, Some(3));
        assert_eq!(read("count: 1e1\n").unwrap().count, Some(10));
        assert_eq!(read("count: ~\n").unwrap().count, None);
    }
}
