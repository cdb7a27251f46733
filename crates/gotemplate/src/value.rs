//! The values templates see: the Go types helm's data takes (`map[string]interface{}`, `[]interface{}`,
//! `float64`, `string`, `bool`, `nil`) plus `int`/`int64` for literals and function results, and
//! [`Object`] for the Go structs and named types of the layers above (`.Chart`, `.Files`, `.Capabilities`).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::funcs::Function;

/// A template value. Cloning is cheap: strings, lists and maps are reference counted.
///
/// `Value` is `Send + Sync`, so values built once (chart defaults, capabilities) can be shared across
/// rendering threads; a [`Map`] is a shared handle with Go's reference semantics.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's untyped `nil` (an invalid `reflect.Value`): missing data, `nil` in YAML.
    #[default]
    Nil,
    Bool(bool),
    /// Go `int`: template integer literals, `len`, most function results.
    Int(i64),
    /// Go `int64`: sprig's arithmetic returns it; behaves as `Int` except for its type name.
    Int64(i64),
    /// Go `float64`: every number read from YAML or JSON values.
    Float(f64),
    String(Arc<str>),
    /// Go `[]interface{}`. Immutable: Go code never changes a slice it did not make.
    List(Arc<[Value]>),
    /// Go `map[string]interface{}`, shared and mutable in place.
    Map(Map),
    /// Any other Go type: structs with fields and methods, named types with methods.
    Object(Arc<dyn Object>),
}

/// A Go value of a type this crate does not model: a struct (fields), a type with methods, or a
/// named slice/map/string type (`underlying`). Methods are found before fields, as in Go.
///
/// `Any` lets the functions that made an object recognize it when a template hands it back
/// (sprig's `date` takes the `time.Time` that `now` returned): upcast `&dyn Object` to `&dyn Any`
/// and downcast.
pub trait Object: Any + Send + Sync + fmt::Debug {
    /// Go's name of the type, as `%T` and error messages print it (`chart.Metadata`, `*chartutil.Capabilities`).
    fn type_name(&self) -> &str;
    /// A field (or map entry) by name; `None` makes "can't evaluate field NAME in type TYPE".
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    /// A method by name, with the receiver already bound.
    fn method(&self, _name: &str) -> Option<Function> {
        None
    }
    /// The slice, map or string the type is made of, for `range`, `len`, `index`, comparisons and printing.
    fn underlying(&self) -> Option<Value> {
        None
    }
    /// The `map[string]interface{}` a named map type is made of (helm's `type Values
    /// map[string]interface{}`): functions taking a `map[string]interface{}` get this map itself,
    /// as Go's assignability lets them. Other types (`map[string][]byte`, structs) are not.
    fn as_map(&self) -> Option<Map> {
        None
    }
    /// Go's reflect kind when `underlying` does not tell it: `Some("struct")` for a struct whose
    /// `underlying` is only its encoded form (what `toJson` writes).
    fn kind(&self) -> Option<&'static str> {
        None
    }
    /// What `{{ value }}` prints when it is not what fmt prints: the result of a `String()`
    /// method with a pointer receiver, which the template printer reaches (a field of a struct
    /// behind a pointer is addressable) but a function given a copy (`quote`, `printf`) does not.
    fn printed(&self) -> Option<String> {
        None
    }
    /// Moves the values the object holds into `out`, leaving it empty: dropping a value nested
    /// through objects (sprig's `chunk` result inside a list inside another) must not recurse.
    /// Called only on an object about to be dropped; one holding no [`Value`] need not implement it.
    fn take_values(&mut self, _out: &mut Vec<Value>) {}
    /// A Go `string` whose bytes are not UTF-8 (a binary file read into a string): its text, with
    /// U+FFFD for each invalid sequence, and its bytes. Functions taking a `string` accept it and
    /// see the text; those that encode or hash bytes (`b64enc`, `sha256sum`) see the bytes.
    fn go_string(&self) -> Option<(&str, &[u8])> {
        None
    }
    /// What fmt's `%v` and `%s` print: the result of a `String()` method, or Go's struct formatting.
    fn display(&self) -> String {
        match self.underlying() {
            Some(value) => crate::gofmt::sprint(&[value]),
            None => format!("{{{}}}", self.type_name()),
        }
    }
}

/// A shared, mutable `map[string]interface{}`; clones are the same map, as in Go.
///
/// Keys are kept sorted, which is the order Go's `range`, fmt and encoding/json use. Every method takes
/// the lock only for its own duration and never calls out while holding it, so a map that contains
/// itself, or a function merging a map into itself, cannot deadlock.
#[derive(Clone, Default)]
pub struct Map(Arc<RwLock<BTreeMap<String, Value>>>);

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn from_entries(entries: BTreeMap<String, Value>) -> Map {
        Map(Arc::new(RwLock::new(entries)))
    }

    // A poisoned lock only means another thread panicked mid-update of a plain BTreeMap, which
    // leaves it consistent; the data is still usable.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Value>> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Value>> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    /// Sets `key`, returning the previous value.
    pub fn insert(&self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.write().insert(key.into(), value)
    }

    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn keys(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// A sorted snapshot of the entries; later changes to the map do not affect it.
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Whether both handles are the same map (Go's pointer equality of maps).
    pub fn ptr_eq(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A new map with the same entries (shallow: nested maps stay shared).
    pub fn shallow_copy(&self) -> Map {
        Map::from_entries(self.read().clone())
    }
}

/// Dropping a value takes apart the lists, maps and objects only it holds with a stack of its own,
/// so a value nested as deep as a template can build it (Go allows millions of levels) does not
/// overflow the thread's stack as the derived, recursive drop would.
impl Drop for Value {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut value) = pending.pop() {
            value.take_children(&mut pending);
            // `value` drops here holding no nested list, map or object of its own.
        }
    }
}

impl Value {
    /// Moves this value's nested lists, maps and objects into `out` when nothing else shares it.
    fn take_children(&mut self, out: &mut Vec<Value>) {
        let take_nested = |value: &mut Value| {
            if matches!(value, Value::List(_) | Value::Map(_) | Value::Object(_)) {
                out.push(std::mem::take(value));
            }
        };
        match self {
            Value::List(items) => {
                if let Some(items) = Arc::get_mut(items) {
                    items.iter_mut().for_each(take_nested);
                }
            }
            Value::Map(map) => {
                if let Some(entries) = Arc::get_mut(&mut map.0) {
                    let entries = entries.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
                    entries.values_mut().for_each(take_nested);
                }
            }
            Value::Object(object) => {
                if let Some(object) = Arc::get_mut(object) {
                    object.take_values(out);
                }
            }
            _ => {}
        }
    }
}

/// Lists are shown to [`MAX_NESTING`] levels (maps show their length, objects their type), so
/// debugging output of a deeply nested value does not overflow the stack either.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Nested(self, 0).fmt(f)
    }
}

struct Nested<'a>(&'a Value, usize);

impl fmt::Debug for Nested<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Nested(value, depth) = *self;
        match value {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Value::Int64(i) => f.debug_tuple("Int64").field(i).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(x).finish(),
            Value::String(s) => f.debug_tuple("String").field(s).finish(),
            Value::List(items) if depth >= MAX_NESTING => write!(f, "List(len {})", items.len()),
            Value::List(items) => f.debug_tuple("List").field(&ListItems(items, depth + 1)).finish(),
            Value::Map(map) => map.fmt(f),
            Value::Object(object) => f.debug_tuple("Object").field(&object.type_name()).finish(),
        }
    }
}

struct ListItems<'a>(&'a [Value], usize);

impl fmt::Debug for ListItems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|item| Nested(item, self.1))).finish()
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Entries are not printed: values may be secrets, and a map may contain itself.
        write!(f, "Map(len {})", self.len())
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        Map::from_entries(iter.into_iter().collect())
    }
}

/// How numbers are read by [`Value::from_json`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// Every number is a `float64`, as helm's values are (YAML → JSON → `interface{}`).
    Float64,
    /// Integers that fit `int64` stay integers (`int`), others are `float64`.
    KeepIntegers,
}

impl Value {
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(items: impl Into<Arc<[Value]>>) -> Value {
        Value::List(items.into())
    }

    /// Go's name of the value's dynamic type, as `%T` prints it.
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(object) => object.type_name(),
        }
    }

    /// Go template truth: false, 0, nil, and empty strings, lists and maps are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.underlying().is_none_or(|u| u.is_true()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Object(object) => object.go_string().map(|(text, _)| text),
            _ => None,
        }
    }

    /// The bytes of a string, as Go holds them (see [`Object::go_string`]).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::String(s) => Some(s.as_bytes()),
            Value::Object(object) => object.go_string().map(|(_, bytes)| bytes),
            _ => None,
        }
    }

    /// A Go `string` of these bytes: a [`Value::String`] when they are UTF-8, else a string
    /// that keeps them (see [`Object::go_string`]).
    pub fn string_from_bytes(bytes: &[u8]) -> Value {
        match std::str::from_utf8(bytes) {
            Ok(text) => Value::from(text),
            Err(_) => Value::Object(Arc::new(BinaryString {
                text: String::from_utf8_lossy(bytes).into(),
                bytes: bytes.into(),
            })),
        }
    }

    /// The integer of an `int` or `int64`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Int64(i) => Some(*i),
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The value as fmt's `%v` prints it (`map[a:1]`, `[x y]`, `1e+06`, `<nil>`).
    pub fn to_go_string(&self) -> String {
        crate::gofmt::sprint(std::slice::from_ref(self))
    }

    /// Converts JSON data. Objects keep their keys (sorted, as Go maps are).
    pub fn from_json(json: &serde_json::Value, numbers: Numbers) -> Value {
        match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match (numbers, n.as_i64()) {
                (Numbers::KeepIntegers, Some(i)) => Value::Int(i),
                // serde_json yields f64 for every number when asked (u64 beyond i64 included).
                _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.as_str().into()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(|v| Value::from_json(v, numbers)).collect())
            }
            serde_json::Value::Object(entries) => {
                Value::Map(entries.iter().map(|(k, v)| (k.clone(), Value::from_json(v, numbers))).collect())
            }
        }
    }

    /// Converts to JSON as Go's encoding/json would marshal the value: map keys sorted, floats that are
    /// integers written without a fraction. Objects convert through their underlying value or become null.
    /// Fails on non-finite floats and on data nested deeper than [`MAX_NESTING`] (a map containing itself).
    pub fn to_json(&self) -> Result<serde_json::Value, ToJsonError> {
        self.to_json_at(0)
    }

    fn to_json_at(&self, depth: usize) -> Result<serde_json::Value, ToJsonError> {
        if depth > MAX_NESTING {
            return Err(ToJsonError::TooDeep);
        }
        Ok(match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) | Value::Int64(i) => serde_json::Value::from(*i),
            Value::Float(f) => {
                if !f.is_finite() {
                    return Err(ToJsonError::NonFinite);
                }
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    serde_json::Value::from(*f as i64)
                } else {
                    serde_json::Number::from_f64(*f).map(serde_json::Value::Number).ok_or(ToJsonError::NonFinite)?
                }
            }
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(|v| v.to_json_at(depth + 1)).collect::<Result<_, _>>()?)
            }
            Value::Map(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map.entries() {
                    out.insert(k, v.to_json_at(depth + 1)?);
                }
                serde_json::Value::Object(out)
            }
            Value::Object(object) => match object.underlying() {
                Some(value) => value.to_json_at(depth + 1)?,
                None => serde_json::Value::Null,
            },
        })
    }
}

pub use crate::error::MAX_NESTING;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToJsonError {
    NonFinite,
    TooDeep,
}

impl fmt::Display for ToJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToJsonError::NonFinite => f.write_str("json: unsupported value: a non-finite float"),
            ToJsonError::TooDeep => write!(f, "json: value nested deeper than {MAX_NESTING} levels"),
        }
    }
}

impl std::error::Error for ToJsonError {}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s.into())
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Map(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_shared_handles() {
        let m = Map::new();
        let alias = m.clone();
        alias.insert("a", Value::Int(1));
        assert_eq!(m.get("a").and_then(|v| v.as_int()), Some(1));
        assert!(m.ptr_eq(&alias));
        assert!(!m.ptr_eq(&m.shallow_copy()));
    }

    #[test]
    fn a_map_containing_itself_neither_deadlocks_nor_overflows() {
        let m = Map::new();
        m.insert("self", Value::Map(m.clone()));
        // Merging a map into itself: entries() releases the lock before inserts take it.
        for (k, v) in m.entries() {
            m.insert(k, v);
        }
        assert_eq!(Value::Map(m.clone()).to_json(), Err(ToJsonError::TooDeep));
        assert!(Value::Map(m.clone()).to_go_string().starts_with("map[self:map[self:"));
        m.remove("self"); // breaks the cycle so the test does not leak
    }

    #[test]
    fn json_numbers_are_float64_unless_asked() {
        let json = serde_json::json!({"n": 1000000, "s": "x", "l": [1, null]});
        let v = Value::from_json(&json, Numbers::Float64);
        assert_eq!(v.to_go_string(), "map[l:[1 <nil>] n:1e+06 s:x]");
        let v = Value::from_json(&json, Numbers::KeepIntegers);
        assert_eq!(v.to_go_string(), "map[l:[1 <nil>] n:1000000 s:x]");
        assert_eq!(v.to_json().ok(), Some(json));
    }
}

/// A Go `string` holding bytes that are not UTF-8 (see [`Object::go_string`]).
#[derive(Debug)]
struct BinaryString {
    text: Arc<str>,
    bytes: Arc<[u8]>,
}

impl Object for BinaryString {
    fn type_name(&self) -> &str {
        "string"
    }
    fn underlying(&self) -> Option<Value> {
        Some(Value::String(self.text.clone()))
    }
    fn go_string(&self) -> Option<(&str, &[u8])> {
        Some((&self.text, &self.bytes))
    }
}
