//! Go's view of template values, as sprig's reflection-based functions see them: type and kind
//! names, emptiness, deep equality, `fmt`'s `%v`, spf13/cast's conversions and strconv's parsers.

use std::sync::Arc;

use gotemplate::{FuncError, Object, Value};

/// A Go value whose type the engine's [`Value`] does not name: `[]string`, `[]int`,
/// `map[string]string`, `[][]interface {}`. It behaves as its underlying list or map (range, index,
/// len, printing, JSON) and reports its own type to `typeOf` and to parameter type checks.
#[derive(Debug)]
pub struct Typed {
    type_name: &'static str,
    value: Value,
}

impl Object for Typed {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn underlying(&self) -> Option<Value> {
        Some(self.value.clone())
    }

    fn take_values(&mut self, out: &mut Vec<Value>) {
        out.push(std::mem::take(&mut self.value));
    }
}

pub fn typed(type_name: &'static str, value: Value) -> Value {
    Value::Object(Arc::new(Typed { type_name, value }))
}

/// A Go `[]string`.
pub fn strings(items: impl IntoIterator<Item = String>) -> Value {
    typed("[]string", Value::List(items.into_iter().map(Value::from).collect()))
}

/// A Go `[]int`.
pub fn ints(items: impl IntoIterator<Item = i64>) -> Value {
    typed("[]int", Value::List(items.into_iter().map(Value::Int).collect()))
}

/// A Go `map[string]string`.
pub fn string_map(entries: impl IntoIterator<Item = (String, String)>) -> Value {
    typed("map[string]string", Value::Map(entries.into_iter().map(|(k, v)| (k, Value::from(v))).collect()))
}

/// The value itself, or what an [`Object`] is made of.
pub fn underlying(value: &Value) -> Value {
    match value {
        Value::Object(o) => o.underlying().unwrap_or_else(|| value.clone()),
        other => other.clone(),
    }
}

/// The elements of a slice (`[]interface{}` or a typed slice), as reflection's `Len`/`Index` see them.
pub fn slice_items(value: &Value) -> Option<Arc<[Value]>> {
    match underlying(value) {
        Value::List(ref items) => Some(items.clone()),
        _ => None,
    }
}

/// `reflect.Kind.String()` of the value (`invalid` for nil).
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) if o.type_name().starts_with('*') => "ptr",
        Value::Object(o) if let Some(kind) = o.kind() => kind,
        Value::Object(o) => match o.underlying() {
            Some(Value::Object(_)) | None => "struct",
            Some(inner) => kind(&inner),
        },
    }
}

/// `%T` of the value.
pub fn type_name(value: &Value) -> String {
    value.type_name().to_string()
}

/// sprig's `empty`: nil, false, 0, and empty strings, slices and maps; structs never are.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::Int64(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Object(o) => match o.underlying() {
            Some(inner @ (Value::List(_) | Value::Map(_) | Value::String(_) | Value::Int(_) | Value::Float(_))) => {
                is_empty(&inner)
            }
            _ => false,
        },
    }
}

/// `reflect.DeepEqual`: same dynamic types, equal contents (NaN is unequal to itself); an error
/// past [`gotemplate::MAX_NESTING`] levels. The pairs still to compare are a stack of its own, not
/// recursion: the frames of a recursive walk 1000 levels deep overflow a debug build's thread.
pub fn deep_equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let mut pending = vec![(a.clone(), b.clone(), 0)];
    while let Some((a, b, depth)) = pending.pop() {
        if depth > gotemplate::MAX_NESTING {
            return Err(FuncError::too_deep());
        }
        let equal = match (&a, &b) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::String(x), Value::String(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                // Reversed, so the first elements are compared first, as Go does.
                pending.extend(x.iter().zip(y.iter()).rev().map(|(x, y)| (x.clone(), y.clone(), depth + 1)));
                x.len() == y.len()
            }
            (Value::Map(x), Value::Map(y)) if x.ptr_eq(y) => true,
            (Value::Map(x), Value::Map(y)) => {
                let (x, y) = (x.entries(), y.entries());
                let same_keys = x.len() == y.len() && x.iter().zip(y.iter()).all(|((kx, _), (ky, _))| kx == ky);
                pending.extend(x.into_iter().zip(y).rev().map(|((_, x), (_, y))| (x, y, depth + 1)));
                same_keys
            }
            (Value::Object(x), Value::Object(y)) if x.type_name() != y.type_name() => false,
            (Value::Object(x), Value::Object(y)) if Arc::ptr_eq(x, y) => true,
            (Value::Object(x), Value::Object(y)) => match (x.underlying(), y.underlying()) {
                (Some(ux), Some(uy)) => {
                    pending.push((ux, uy, depth + 1));
                    true
                }
                _ => x.display() == y.display(),
            },
            _ => false,
        };
        if !equal {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `fmt.Sprint(v)`.
pub fn sprint(value: &Value) -> String {
    gotemplate::gofmt::sprint(std::slice::from_ref(value))
}

/// sprig's `strval`: strings as they are, Stringers' `String()`, anything else as `%v` prints it.
pub fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => sprint(other),
    }
}

/// A Go float64 → int64 conversion as amd64 does it: out of range and NaN give the minimum int64.
pub fn float_to_int(f: f64) -> i64 {
    // 2^63 as a float: the first value past int64's range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) { i64::MIN } else { f as i64 }
}

/// spf13/cast's `ToInt64` (and `ToInt`, the same on 64-bit machines): 0 for what it cannot convert.
pub fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => float_to_int(*f),
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_int(trim_zero_decimal(s), 0).unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast's `ToFloat64`.
pub fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => parse_float(s).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// cast's trimZeroDecimal: "1.000" → "1", anything else unchanged.
fn trim_zero_decimal(s: &str) -> &str {
    let bytes = s.as_bytes();
    let mut found_zero = false;
    for i in (1..=bytes.len()).rev() {
        match bytes[i - 1] {
            b'.' if found_zero => return &s[..i - 1],
            b'.' => {}
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// strconv.ParseInt(s, base, 64); base 0 reads Go's prefixes (0x, 0o, 0b, 0) and underscores.
pub fn parse_int(s: &str, base: u32) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(digits, base)?;
    if negative {
        if magnitude > 1u64 << 63 {
            return None;
        }
        Some((magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// strconv.ParseUint(s, base, 64).
pub fn parse_uint(s: &str, base: u32) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let base0 = base == 0;
    let (base, digits) = if base0 {
        match bytes {
            [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &bytes[2..]),
            [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &bytes[2..]),
            [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &bytes[2..]),
            [b'0', ..] => (8, &bytes[1..]),
            _ => (10, bytes),
        }
    } else {
        (base, bytes)
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        if c == b'_' && base0 {
            underscores = true;
            continue;
        }
        let d = char::from(c).to_digit(36)?;
        if d >= base {
            return None;
        }
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    Some(n)
}

/// strconv's underscoreOK: underscores only between digits or after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let mut bytes = s.as_bytes();
    if let [b'-' | b'+', rest @ ..] = bytes {
        bytes = rest;
    }
    let mut saw = b'^';
    let mut hex = false;
    if let [b'0', p, rest @ ..] = bytes
        && matches!(p.to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = p.eq_ignore_ascii_case(&b'x');
        saw = b'0';
        bytes = rest;
    }
    for &c in bytes {
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// strconv.ParseFloat(s, 64) for decimal syntax, infinities and NaN; out-of-range values fail as in Go.
pub fn parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special && !body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() && !special {
        return None;
    }
    Some(f)
}

/// What `mustX` and panicking sprig functions report for Go runtime panics, as text/template's
/// recover shows them.
pub fn runtime_error(message: &str) -> FuncError {
    FuncError::new(format!("runtime error: {message}"))
}

/// The nil-pointer panic of `reflect.TypeOf(nil).Kind()`, which most list functions hit on nil.
pub fn nil_kind_error() -> FuncError {
    runtime_error("invalid memory address or nil pointer dereference")
}

/// Go's `s[start:end]` on bytes, with its panic messages; a cut through a UTF-8 sequence shows as
/// U+FFFD since strings here are always valid UTF-8.
pub fn slice_str(s: &str, start: i64, end: i64) -> Result<String, FuncError> {
    let len = s.len() as i64;
    if end < 0 {
        return Err(runtime_error(&format!("slice bounds out of range [:{end}]")));
    }
    if end > len {
        return Err(runtime_error(&format!("slice bounds out of range [:{end}] with length {len}")));
    }
    if start < 0 || start > end {
        return Err(runtime_error(&format!("slice bounds out of range [{start}:{end}]")));
    }
    Ok(String::from_utf8_lossy(&s.as_bytes()[start as usize..end as usize]).into_owned())
}

/// A bound on what one function may allocate: Go would try and exhaust memory; this reports an error.
pub const MAX_LEN: usize = 1 << 27;

pub fn too_large(what: &str) -> FuncError {
    FuncError::new(format!("{what}: result too large (over {MAX_LEN} elements)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_reads_go_syntax() {
        assert_eq!(parse_int("0x1F", 0), Some(31));
        assert_eq!(parse_int("017", 0), Some(15));
        assert_eq!(parse_int("0o17", 0), Some(15));
        assert_eq!(parse_int("0b101", 0), Some(5));
        assert_eq!(parse_int("1_000", 0), Some(1000));
        assert_eq!(parse_int("1__0", 0), None);
        assert_eq!(parse_int("0x_1F", 0), Some(31));
        assert_eq!(parse_int("-9223372036854775808", 0), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808", 0), None);
        assert_eq!(parse_int("0", 0), Some(0));
        assert_eq!(parse_int("", 0), None);
        assert_eq!(parse_int("12a", 10), None);
        assert_eq!(trim_zero_decimal("3.000"), "3");
        assert_eq!(trim_zero_decimal("3.5"), "3.5");
    }
}
