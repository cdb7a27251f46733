//! helm's `toToml` and `fromToml` (BurntSushi/toml v1.4). The encoder's layout, which the `toml`
//! crate does not reproduce (it indents nested tables by two spaces per level and writes every
//! float with a decimal point), is written out here for the values templates hold; decoding is
//! BurntSushi's lexer and parser (`burntsushi`), so that a malformed text gets helm's error.

mod burntsushi;

use gotemplate::{FuncError, MAX_NESTING, Value};

/// `fromToml`'s map: integers are int64, floats float64, date-times `time.Time` (local ones in
/// BurntSushi's "datetime-local", "date-local" and "time-local" zones); or the error helm puts
/// under `Error` (`toml: line 3 (last key "a"): …`).
pub fn decode(text: &str) -> Result<Value, String> {
    burntsushi::decode(text)
}

/// The TOML text, or the encoder's error message (helm prints that instead); an error for a value
/// nested deeper than [`MAX_NESTING`] levels, which Go would encode.
pub fn encode(value: &Value) -> Result<String, FuncError> {
    let mut encoder = Encoder { out: String::new() };
    let result = match resolve(value) {
        Value::Map(_) => encoder.table_body(&[], &resolve(value)),
        Value::Nil => Ok(()),
        _ => Err("toml: top-level values must be Go maps or structs".into()),
    };
    match result {
        Ok(()) => Ok(encoder.out),
        Err(Refused::Unsupported(message)) => Ok(message),
        Err(Refused::TooDeep) => Err(FuncError::too_deep()),
    }
}

/// Why a value was not encoded: what BurntSushi's encoder refuses, in its words, or nesting
/// deeper than this encoder follows.
enum Refused {
    Unsupported(String),
    TooDeep,
}

impl From<&str> for Refused {
    fn from(message: &str) -> Refused {
        Refused::Unsupported(message.to_string())
    }
}

fn resolve(value: &Value) -> Value {
    match value {
        Value::Object(object) => object.underlying().unwrap_or(Value::Nil),
        other => other.clone(),
    }
}

fn is_table(value: &Value) -> bool {
    matches!(resolve(value), Value::Map(_))
}

fn is_table_array(value: &Value) -> bool {
    matches!(resolve(value), Value::List(ref items) if !items.is_empty() && items.iter().all(is_table))
}

struct Encoder {
    out: String,
}

fn bare(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn quoted_key(key: &str) -> String {
    if bare(key) { key.to_string() } else { quote(key) }
}

fn path(keys: &[String]) -> String {
    keys.iter().map(|k| quoted_key(k)).collect::<Vec<_>>().join(".")
}

fn indent(keys: &[String]) -> String {
    "  ".repeat(keys.len().saturating_sub(1))
}

fn quote(s: &str) -> String {
    let mut out = String::new();
    gotemplate::strconv::write_quoted(&mut out, s, |out, c| match c {
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04X}", c as u32)),
        c => out.push(c),
    });
    out
}

impl Encoder {
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    /// A map's entries: plain values first, then tables and arrays of tables, each group sorted.
    /// `key` is the table's path, as deep as the table is nested.
    fn table_body(&mut self, key: &[String], map: &Value) -> Result<(), Refused> {
        let Value::Map(map) = map else { return Ok(()) };
        if key.len() > MAX_NESTING {
            return Err(Refused::TooDeep);
        }
        let (mut direct, mut sub): (Vec<_>, Vec<_>) =
            map.entries().into_iter().partition(|(_, v)| !is_table(v) && !is_table_array(v));
        direct.sort_by(|a, b| a.0.cmp(&b.0));
        sub.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in direct.into_iter().chain(sub) {
            let value = resolve(&value);
            if value.is_nil() {
                continue;
            }
            let mut child = key.to_vec();
            child.push(name.clone());
            if let Value::List(items) = &value
                && is_table_array(&value)
            {
                for item in items.iter() {
                    self.newline();
                    self.out.push_str(&format!("{}[[{}]]", indent(&child), path(&child)));
                    self.newline();
                    self.table_body(&child, &resolve(item))?;
                }
            } else if let Value::Map(_) = value {
                if child.len() == 1 {
                    self.newline();
                }
                self.out.push_str(&format!("{}[{}]", indent(&child), path(&child)));
                self.newline();
                self.table_body(&child, &value)?;
            } else {
                self.out.push_str(&format!("{}{} = ", indent(&child), quoted_key(&name)));
                self.element(&value, key.len() + 1)?;
                self.newline();
            }
        }
        Ok(())
    }

    fn element(&mut self, value: &Value, depth: usize) -> Result<(), Refused> {
        if depth > MAX_NESTING {
            return Err(Refused::TooDeep);
        }
        match &resolve(value) {
            Value::Nil => return Err("toml: cannot encode a nil value".into()),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Int64(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) if f.is_nan() => self.out.push_str("nan"),
            Value::Float(f) if f.is_infinite() => self.out.push_str(if *f < 0.0 { "-inf" } else { "+inf" }),
            Value::Float(f) => {
                let text = gotemplate::strconv::format_float(*f, 'f', None);
                self.out.push_str(&text);
                if !text.contains('.') {
                    self.out.push_str(".0");
                }
            }
            Value::String(s) => self.out.push_str(&quote(s)),
            Value::List(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if resolve(item).is_nil() {
                        return Err("toml: cannot encode array with nil element".into());
                    }
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.element(item, depth + 1)?;
                }
                self.out.push(']');
            }
            Value::Map(map) => {
                self.out.push('{');
                let mut entries = map.entries();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let entries: Vec<_> = entries.into_iter().filter(|(_, v)| !resolve(v).is_nil()).collect();
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&format!("{} = ", quoted_key(k)));
                    self.element(v, depth + 1)?;
                }
                self.out.push('}');
            }
            Value::Object(_) => return Err("toml: unsupported type".into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_go_types_and_reports_errors_with_their_line() {
        let v = decode("a = 1\nb = 1.5\n[t]\nl = [1, 'x']\n[[arr]]\nk = true\n").unwrap();
        assert_eq!(
            v.to_json().unwrap(),
            serde_json::json!({"a": 1, "arr": [{"k": true}], "b": 1.5, "t": {"l": [1, "x"]}})
        );
        let Value::Map(map) = &v else { panic!("a map") };
        assert_eq!(map.get("a").unwrap().type_name(), "int64");
        assert_eq!(map.get("b").unwrap().type_name(), "float64");
        let err = decode("a = 1\n[t]\nb = \n").unwrap_err();
        assert!(err.starts_with("toml: line 4 (last key \"t.b\"): expected value but found "), "{err}");
    }

    #[test]
    fn burntsushi_layout() {
        let v = Value::from_json(
            &serde_json::json!({"a": 1, "b": {"c": "x", "d": {"e": true}}, "l": [1, 2], "t": [{"n": "q"}]}),
            gotemplate::Numbers::Float64,
        );
        assert_eq!(
            encode(&v).unwrap(),
            "a = 1.0\nl = [1.0, 2.0]\n\n[b]\n  c = \"x\"\n  [b.d]\n    e = true\n\n[[t]]\n  n = \"q\"\n"
        );
    }
}
