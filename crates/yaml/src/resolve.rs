//! How go-yaml resolves an untagged plain scalar, in its two dialects: v2 (Helm's, through
//! sigs.k8s.io/yaml: YAML 1.1's `yes`/`no`/`on`/`off` booleans, binary literals) and v3 (sops'
//! and kustomize's kyaml: only `true`/`false`). Both read numbers as Go's `strconv` does, with
//! go-yaml's float syntax: `_` dropped, an integer past i64 unsigned, a float past f64's range
//! not a number at all (`ParseFloat` fails on it), so a string.

/// Which go-yaml resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// go-yaml v2, as Helm reads values and templates' output.
    GoYamlV2,
    /// go-yaml v3, as sops reads (and hashes) a file's values and kustomize's kyaml resolves a
    /// scalar it creates.
    GoYamlV3,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    Str,
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Resolved {
    /// The scalar as JSON (`text` itself for a string), or the float JSON cannot hold (`.inf`,
    /// `.nan`): each reader decides what that is (helm's fails as `json.Marshal` does, kyaml's
    /// keeps the text).
    pub fn into_json(self, text: &str) -> Result<serde_json::Value, f64> {
        use serde_json::Value;
        Ok(match self {
            Resolved::Str => Value::String(text.to_string()),
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::from(i),
            Resolved::Uint(u) => Value::from(u),
            Resolved::Float(f) => serde_json::Number::from_f64(f).map(Value::Number).ok_or(f)?,
        })
    }
}

/// The words YAML readers take for a boolean or a null rather than a string, in lower case:
/// YAML 1.2's three, then YAML 1.1's other booleans, which go-yaml v2 reads and v3 does not.
/// The one list of them: each writer's quoting and the subset reader ask [`is_yaml_1_1_boolean`]
/// or [`is_word_in_any_case`].
const WORDS: [(&str, Resolved); 9] = [
    ("true", Resolved::Bool(true)),
    ("false", Resolved::Bool(false)),
    ("null", Resolved::Null),
    ("y", Resolved::Bool(true)),
    ("yes", Resolved::Bool(true)),
    ("on", Resolved::Bool(true)),
    ("n", Resolved::Bool(false)),
    ("no", Resolved::Bool(false)),
    ("off", Resolved::Bool(false)),
];
/// How many of [`WORDS`] YAML 1.2 (and go-yaml v3) reads as other than strings.
const YAML_1_2_WORDS: usize = 3;

/// The index in [`WORDS`] of the word `text` spells as go-yaml spells them: in lower case,
/// capitalised or in upper case (`yes`, `Yes`, `YES`; not `yEs`).
fn go_yaml_word(text: &str) -> Option<usize> {
    let t = text.as_bytes();
    if t.is_empty() || t.len() > 5 {
        return None;
    }
    WORDS.iter().position(|(word, _)| {
        let w = word.as_bytes();
        t.len() == w.len()
            && t[0].eq_ignore_ascii_case(&w[0])
            && (t[1..] == w[1..]
                || (t[0].is_ascii_uppercase() && t[1..].iter().zip(&w[1..]).all(|(a, b)| *a == b.to_ascii_uppercase())))
    })
}

/// Whether `text` is one of YAML 1.1's booleans that YAML 1.2 reads as a string (`yes`, `Off`,
/// `n`), as go-yaml spells them: v2 reads it as a boolean, and v3's encoder quotes it for v2's
/// sake (`isOldBool`).
pub fn is_yaml_1_1_boolean(text: &str) -> bool {
    go_yaml_word(text).is_some_and(|index| index >= YAML_1_2_WORDS)
}

/// Whether `text` spells, in any case, a word some YAML reader takes for a boolean or a null
/// (`yEs` and `nULL` too): for a writer or reader that must be sure a word is a string to
/// every reader.
pub fn is_word_in_any_case(text: &str) -> bool {
    text.len() <= 5 && WORDS.iter().any(|(word, _)| word.eq_ignore_ascii_case(text))
}

/// What an untagged plain scalar is, as `dialect`'s `resolve` decides.
pub fn resolve(text: &str, dialect: Dialect) -> Resolved {
    if let Some(index) = go_yaml_word(text)
        && (index < YAML_1_2_WORDS || dialect == Dialect::GoYamlV2)
    {
        return WORDS[index].1;
    }
    match text {
        "" | "~" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match (text.as_bytes()[0], dialect) {
        // v2 hands such text to strconv.ParseFloat and v3 checks its float syntax first: for a
        // text that starts with `.` the two accept the same.
        (b'.', _) => match yaml_style_float(text) {
            true => parse_float(text).map_or(Resolved::Str, Resolved::Float),
            false => Resolved::Str,
        },
        // Timestamps (YYYY-…) stay strings: they never parse as numbers below.
        (b'0'..=b'9' | b'+' | b'-', _) => {
            let plain = text.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Resolved::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Resolved::Uint(u);
            }
            if yaml_style_float(&plain)
                && let Some(f) = parse_float(&plain)
            {
                return Resolved::Float(f);
            }
            // go-yaml's own reading of a prefix with the sign after it (`0b-101`, `0b+1`; and
            // in v3, `0o-17`): the digits after the prefix as strconv reads a signed number.
            let octal = (dialect == Dialect::GoYamlV3).then_some(("0o", 8));
            for (prefix, radix) in [("0b", 2)].into_iter().chain(octal) {
                if let Some(digits) = plain.strip_prefix(prefix) {
                    if let Ok(i) = i64::from_str_radix(digits, radix) {
                        return Resolved::Int(i);
                    }
                    if let Ok(u) = u64::from_str_radix(digits, radix) {
                        return Resolved::Uint(u);
                    }
                } else if let Some(digits) = plain.strip_prefix('-').and_then(|rest| rest.strip_prefix(prefix))
                    && let Ok(i) = i64::from_str_radix(&format!("-{digits}"), radix)
                {
                    return Resolved::Int(i);
                }
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// `strconv.ParseFloat(text, 64)` of a text of float syntax: none past f64's range, where Go's
/// fails (`ErrRange`) and Rust's gives an infinity.
fn parse_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// strconv.ParseInt(s, 0, 64): a sign, then `0x`, `0o`, `0b` or a leading `0` (octal) prefix.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_uint(body)?;
    if negative {
        if magnitude == 1 << 63 { Some(i64::MIN) } else { i64::try_from(magnitude).ok().map(|m| -m) }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// strconv.ParseUint(s, 0, 64).
fn go_parse_uint(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Whether go-yaml's writer (`stringv`) writes `s` plain: only when its reader reads the text
/// back as that string, and never a text YAML 1.1 reads as a base-60 float, a boolean (v3's
/// `isOldBool`) or a timestamp. Else a quoted style, which the emitter picks. The one rule of
/// each dialect: helm's `toYaml` and `toYamlPretty`, and the strings of sops' files.
pub fn writes_plain(s: &str, dialect: Dialect) -> bool {
    !s.is_empty()
        && resolve(s, dialect) == Resolved::Str
        && !is_yaml_1_1_boolean(s)
        && !is_base60_float(s)
        && !is_timestamp(s)
}

/// go-yaml's `parseTimestamp`: whether `time.Parse` reads `s` with one of YAML's layouts
/// (`2006-1-2T15:4:5.999999999Z07:00`, its lower-case `t` form, `2006-1-2 15:4:5.999999999`,
/// `2006-1-2`), so a plain scalar of that text would be a timestamp, not a string.
pub(crate) fn is_timestamp(s: &str) -> bool {
    // `^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})|
    // [ ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?)?$`, read by hand: compiling the pattern cost more
    // than the rest of a small chart's render. Go's digits are ASCII. Every run of digits ends
    // at a non-digit, so taking as many as allowed never misses a match.
    let mut text = Cursor(s.as_bytes());
    let Some(year) = text.number(4, 4) else { return false };
    let (Some(month), Some(day)) = (text.after(b'-', 1, 2), text.after(b'-', 1, 2)) else { return false };
    let mut clock = None;
    if let Some(separator @ (b'T' | b't' | b' ')) = text.next_if(|b| matches!(b, b'T' | b't' | b' ')) {
        let (Some(hour), Some(minute), Some(second)) =
            (text.number(1, 2), text.after(b':', 1, 2), text.after(b':', 1, 2))
        else {
            return false;
        };
        if text.next_if(|b| b == b'.').is_some() && text.number(1, usize::MAX).is_none() {
            return false;
        }
        if separator != b' ' {
            let zoned = match text.next_if(|b| matches!(b, b'Z' | b'+' | b'-')) {
                Some(b'Z') => true,
                Some(_) => text.number(2, 2).is_some() && text.after(b':', 2, 2).is_some(),
                None => false,
            };
            if !zoned {
                return false;
            }
        }
        clock = Some((hour, minute, second));
    }
    if !text.0.is_empty() {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    let clock = clock.is_none_or(|(hour, minute, second)| hour < 24 && minute < 60 && second < 60);
    (1..=days).contains(&day) && clock
}

/// What is left of a text being read.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn next_if(&mut self, wanted: impl Fn(u8) -> bool) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        wanted(first).then(|| {
            self.0 = rest;
            first
        })
    }

    /// A run of `min` to `max` ASCII digits (as many as there are, up to `max`), as a number
    /// (`u32::MAX` past it).
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self.0.iter().take(max).take_while(|b| b.is_ascii_digit()).count();
        if n < min {
            return None;
        }
        let (digits, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(digits.iter().fold(0u32, |v, d| v.saturating_mul(10).saturating_add(u32::from(d - b'0'))))
    }

    /// `separator`, then `min` to `max` digits.
    fn after(&mut self, separator: u8, min: usize, max: usize) -> Option<u32> {
        self.next_if(|b| b == separator)?;
        self.number(min, max)
    }
}

/// go-yaml's `isBase60Float`: `1:20` reads as sexagesimal in YAML 1.1, so its writers quote it.
fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (body, _) = t.split_once('.').map_or((t, None), |(b, f)| (b, Some(f)));
    if let Some((_, frac)) = t.split_once('.')
        && !frac.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return false;
    }
    let mut parts = body.split(':');
    let Some(head) = parts.next() else { return false };
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dialects differ on YAML 1.1's booleans and v3's octal fallback; both read the rest
    /// alike.
    #[test]
    fn the_dialects_differ_on_yaml_1_1_booleans_and_an_octal_fallback_only() {
        use Dialect::{GoYamlV2 as V2, GoYamlV3 as V3};
        for word in ["yes", "On", "n", "OFF", "y"] {
            assert!(matches!(resolve(word, V2), Resolved::Bool(_)), "{word}");
            assert_eq!(resolve(word, V3), Resolved::Str, "{word}");
        }
        // v3 also reads an octal prefix with the sign after it; v2 has no such fallback.
        assert_eq!(resolve("0o+17", V3), Resolved::Int(15));
        assert_eq!(resolve("0o-17", V3), Resolved::Int(-15));
        assert_eq!(resolve("0o+17", V2), Resolved::Str);
        for (text, both) in [
            ("18446744073709551615", Resolved::Uint(u64::MAX)),
            ("9_223_372_036_854_775_808", Resolved::Uint(1 << 63)),
            ("18446744073709551616", Resolved::Float(1.8446744073709552e19)),
            ("1__0", Resolved::Int(10)),
            ("1_0.5", Resolved::Float(10.5)),
            // Past f64's range: no number (helm's `kindOf` says string; kubectl kustomize keeps it plain).
            ("1e400", Resolved::Str),
            ("-1e400", Resolved::Str),
            ("1e-400", Resolved::Float(0.0)),
            ("0b-101", Resolved::Int(-5)),
            ("-0b101", Resolved::Int(-5)),
            ("0x1F", Resolved::Int(31)),
            ("012", Resolved::Int(10)),
            ("1_000", Resolved::Int(1000)),
            ("08", Resolved::Float(8.0)),
            (".5", Resolved::Float(0.5)),
            ("1e3", Resolved::Float(1000.0)),
            ("TRUE", Resolved::Bool(true)),
            ("~", Resolved::Null),
            ("2021-01-01", Resolved::Str),
            ("1.2.3", Resolved::Str),
        ] {
            assert_eq!(resolve(text, V2), both, "{text} (v2)");
            assert_eq!(resolve(text, V3), both, "{text} (v3)");
        }
    }

    /// go-yaml reads a word in three spellings only; the cautious check takes any.
    #[test]
    fn words_are_read_as_go_yaml_spells_them() {
        use Dialect::{GoYamlV2 as V2, GoYamlV3 as V3};
        for (text, v2, v3) in [
            ("Yes", Resolved::Bool(true), Resolved::Str),
            ("OFF", Resolved::Bool(false), Resolved::Str),
            ("Y", Resolved::Bool(true), Resolved::Str),
            ("TRUE", Resolved::Bool(true), Resolved::Bool(true)),
            ("Null", Resolved::Null, Resolved::Null),
            ("yEs", Resolved::Str, Resolved::Str),
            ("tRUE", Resolved::Str, Resolved::Str),
            ("nULL", Resolved::Str, Resolved::Str),
        ] {
            assert_eq!((resolve(text, V2), resolve(text, V3)), (v2, v3), "{text}");
        }
        // go-yaml v3's `isOldBool`, word for word.
        for word in ["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"] {
            assert!(is_yaml_1_1_boolean(word), "{word}");
        }
        assert!(!["true", "Null", "yEs", "yess", ""].iter().any(|word| is_yaml_1_1_boolean(word)));
        assert!(["yEs", "nULL", "oN", "TRUE", "y"].iter().all(|word| is_word_in_any_case(word)));
        assert!(!["~", "yess", "nil", ""].iter().any(|word| is_word_in_any_case(word)));
    }

    #[test]
    fn a_resolved_scalar_is_json_but_for_a_float_json_cannot_hold() {
        use serde_json::json;
        let json = |text: &str| resolve(text, Dialect::GoYamlV3).into_json(text);
        assert_eq!(json("1__0"), Ok(json!(10)));
        assert_eq!(json("9223372036854775808"), Ok(json!(9223372036854775808u64)));
        assert_eq!(json("1_0.5"), Ok(json!(10.5)));
        assert_eq!(json("~"), Ok(json!(null)));
        assert_eq!(json("True"), Ok(json!(true)));
        assert_eq!(json("1e400"), Ok(json!("1e400")));
        assert_eq!(json(".inf"), Err(f64::INFINITY));
        assert!(json(".nan").is_err_and(f64::is_nan));
    }
}
