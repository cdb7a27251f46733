//! Go's encoding/json output, which sprig's and helm's JSON functions give: map keys sorted,
//! floats as Go writes them (`0.000004`, `1e+21`, `1e-7`: decimal in [1e-6, 1e21), else an
//! exponent without a leading zero), HTML characters escaped unless asked not to, and
//! `MarshalIndent(v, "", "  ")`'s layout. serde_json writes floats otherwise (`4e-6`, `1e21`).

use serde_json::Value;

/// How the text is laid out and escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// json.Marshal: HTML characters escaped.
    Compact,
    /// json.MarshalIndent(v, "", "  ").
    Pretty,
    /// An Encoder with SetEscapeHTML(false).
    Raw,
}

/// The value as encoding/json writes it; None for NaN or an infinity, which Go refuses.
pub fn marshal(json: &Value, style: Style) -> Option<String> {
    let mut out = String::new();
    write(json, style, 0, &mut out)?;
    Some(out)
}

fn write(json: &Value, style: Style, depth: usize, out: &mut String) -> Option<()> {
    let newline = |out: &mut String, depth: usize| {
        if style == Style::Pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    match json {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&go_float(n.as_f64()?)?),
        },
        Value::String(s) => write_string(s, style != Style::Raw, out),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write(item, style, depth + 1, out)?;
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_string(key, style != Style::Raw, out);
                out.push_str(if style == Style::Pretty { ": " } else { ":" });
                write(&map[key], style, depth + 1, out)?;
            }
            newline(out, depth);
            out.push('}');
        }
    }
    Some(())
}

/// The JSON that helm's and sprig's lenient encoders (`toJson`, `toYaml`, `toPrettyJson`) write,
/// or None when Go cannot encode the value (a NaN), for which they give "". A value nested deeper
/// than [`gotemplate::MAX_NESTING`] levels, which Go would encode, is an error rather than "".
pub fn lenient(value: &gotemplate::Value) -> Result<Option<Value>, gotemplate::FuncError> {
    match value.to_json() {
        Ok(json) => Ok(Some(json)),
        Err(gotemplate::ToJsonError::TooDeep) => Err(gotemplate::FuncError::too_deep()),
        Err(gotemplate::ToJsonError::NonFinite) => Ok(None),
    }
}

/// A float64 as encoding/json writes it.
fn go_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Exponents from 21 up have two digits already; `e-07` loses its zero.
        let text = gotemplate::strconv::format_float(f, 'e', None);
        return Some(match text.split_once("e-0") {
            Some((m, e)) => format!("{m}e-{e}"),
            None => text,
        });
    }
    Some(gotemplate::strconv::format_float(f, 'f', None))
}

fn write_string(s: &str, escape_html: bool, out: &mut String) {
    gotemplate::strconv::write_quoted(out, s, |out, c| match c {
        // Go 1.22 and later (helm 3.17 is built with 1.23).
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
        '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_keys_and_escapes_as_go_writes_them() {
        let value = json!({"b": [1, 1.5, 0.000004, 1e20, 1e21, 1e-7, "<&>"], "a": null});
        assert_eq!(
            marshal(&value, Style::Compact).unwrap(),
            r#"{"a":null,"b":[1,1.5,0.000004,100000000000000000000,1e+21,1e-7,"\u003c\u0026\u003e"]}"#
        );
        assert_eq!(marshal(&json!({"k": "<a>"}), Style::Raw).unwrap(), r#"{"k":"<a>"}"#);
        assert_eq!(
            marshal(&json!({"a": [1, {}], "b": [], "c": {"d": 0.5}}), Style::Pretty).unwrap(),
            "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": [],\n  \"c\": {\n    \"d\": 0.5\n  }\n}"
        );
    }
}
