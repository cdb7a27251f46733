//! String functions: sprig's strings.go, the Go standard library functions it exposes directly, and
//! the helpers it takes from Masterminds/goutils and huandu/xstrings (v1.5.0).

use gotemplate::{FuncError, Function, Templates, Type, Value};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::go::{self, MAX_LEN, too_large};
use crate::{int_arg, str_arg};

pub(crate) fn register(t: &mut Templates) {
    let s1 = |f: fn(&str) -> String| Function::new(&[Type::String], move |_, a| Ok(Value::from(f(str_arg(a, 0)))));
    t.add_function("trim", s1(|s| s.trim_matches(is_space).to_string()));
    t.add_function("upper", s1(to_upper));
    t.add_function("lower", s1(to_lower));
    t.add_function("title", s1(title));
    t.add_function("untitle", s1(untitle));
    t.add_function("nospace", s1(delete_white_space));
    t.add_function("initials", s1(initials));
    t.add_function("swapcase", s1(swap_case));
    t.add_function("shuffle", s1(shuffle));
    t.add_function("snakecase", s1(|s| camel_case_to_lower_case(s, '_')));
    t.add_function("kebabcase", s1(|s| camel_case_to_lower_case(s, '-')));
    t.add_function("camelcase", s1(to_pascal_case));

    t.add_function(
        "abbrev",
        Function::new(&[Type::Int, Type::String], |_, a| Ok(Value::from(abbrev(int_arg(a, 0), str_arg(a, 1))))),
    );
    t.add_function(
        "abbrevboth",
        Function::new(&[Type::Int, Type::Int, Type::String], |_, a| {
            Ok(Value::from(abbrevboth(int_arg(a, 0), int_arg(a, 1), str_arg(a, 2))))
        }),
    );
    t.add_function(
        "trunc",
        Function::new(&[Type::Int, Type::String], |_, a| Ok(Value::from(trunc(int_arg(a, 0), str_arg(a, 1))?))),
    );
    t.add_function(
        "substr",
        Function::new(&[Type::Int, Type::Int, Type::String], |_, a| {
            Ok(Value::from(substring(int_arg(a, 0), int_arg(a, 1), str_arg(a, 2))?))
        }),
    );
    t.add_function(
        "repeat",
        Function::new(&[Type::Int, Type::String], |_, a| Ok(Value::from(repeat(str_arg(a, 1), int_arg(a, 0))?))),
    );
    let cut = |f: fn(&str, &str) -> String| {
        Function::new(&[Type::String, Type::String], move |_, a| Ok(Value::from(f(str_arg(a, 0), str_arg(a, 1)))))
    };
    // sprig swaps the arguments so the string can be piped in: "$foo" | trimAll "$".
    t.add_function("trimall", cut(|set, s| s.trim_matches(|c| set.contains(c)).to_string()));
    t.add_function("trimAll", cut(|set, s| s.trim_matches(|c| set.contains(c)).to_string()));
    t.add_function("trimSuffix", cut(|suffix, s| s.strip_suffix(suffix).unwrap_or(s).to_string()));
    t.add_function("trimPrefix", cut(|prefix, s| s.strip_prefix(prefix).unwrap_or(s).to_string()));
    let test = |f: fn(&str, &str) -> bool| {
        Function::new(&[Type::String, Type::String], move |_, a| Ok(Value::Bool(f(str_arg(a, 1), str_arg(a, 0)))))
    };
    t.add_function("contains", test(|s, sub| s.contains(sub)));
    t.add_function("hasPrefix", test(|s, prefix| s.starts_with(prefix)));
    t.add_function("hasSuffix", test(|s, suffix| s.ends_with(suffix)));

    for (name, letters, digits) in
        [("randAlphaNum", true, true), ("randAlpha", true, false), ("randNumeric", false, true)]
    {
        t.add_function(
            name,
            Function::new(&[Type::Int], move |_, a| Ok(Value::from(random_string(int_arg(a, 0), letters, digits)?))),
        );
    }
    t.add_function("randAscii", Function::new(&[Type::Int], |_, a| Ok(Value::from(random_ascii(int_arg(a, 0))?))));

    t.add_function(
        "wrap",
        Function::new(&[Type::Int, Type::String], |_, a| {
            Ok(Value::from(wrap(str_arg(a, 1), int_arg(a, 0), "", false)))
        }),
    );
    t.add_function(
        "wrapWith",
        Function::new(&[Type::Int, Type::String, Type::String], |_, a| {
            Ok(Value::from(wrap(str_arg(a, 2), int_arg(a, 0), str_arg(a, 1), true)))
        }),
    );
    t.add_function(
        "quote",
        Function::variadic(&[], Type::Any, |_, a| {
            let quoted: Vec<String> =
                a.iter().filter(|v| !v.is_nil()).map(|v| gotemplate::strconv::quote(&go::strval(v), false)).collect();
            Ok(Value::from(quoted.join(" ")))
        }),
    );
    t.add_function(
        "squote",
        Function::variadic(&[], Type::Any, |_, a| {
            let quoted: Vec<String> =
                a.iter().filter(|v| !v.is_nil()).map(|v| format!("'{}'", go::sprint(v))).collect();
            Ok(Value::from(quoted.join(" ")))
        }),
    );
    t.add_function(
        "cat",
        Function::variadic(&[], Type::Any, |_, a| {
            let parts: Vec<String> = a.iter().filter(|v| !v.is_nil()).map(go::sprint).collect();
            Ok(Value::from(parts.join(" ")))
        }),
    );
    t.add_function(
        "indent",
        Function::new(&[Type::Int, Type::String], |_, a| Ok(Value::from(indent(int_arg(a, 0), str_arg(a, 1))?))),
    );
    t.add_function(
        "nindent",
        Function::new(&[Type::Int, Type::String], |_, a| {
            Ok(Value::from(format!("\n{}", indent(int_arg(a, 0), str_arg(a, 1))?)))
        }),
    );
    t.add_function(
        "replace",
        Function::new(&[Type::String, Type::String, Type::String], |_, a| {
            Ok(Value::from(replace(str_arg(a, 2), str_arg(a, 0), str_arg(a, 1))?))
        }),
    );
    t.add_function(
        "plural",
        Function::new(&[Type::String, Type::String, Type::Int], |_, a| {
            Ok(Value::from(if int_arg(a, 2) == 1 { str_arg(a, 0) } else { str_arg(a, 1) }))
        }),
    );
    t.add_function("toString", Function::new(&[Type::Any], |_, a| Ok(Value::from(go::strval(&a[0])))));
    t.add_function(
        "splitList",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(go::strings(split_n(str_arg(a, 1), str_arg(a, 0), -1).into_iter().map(str::to_string)))
        }),
    );
    t.add_function(
        "split",
        Function::new(&[Type::String, Type::String], |_, a| Ok(numbered(split_n(str_arg(a, 1), str_arg(a, 0), -1)))),
    );
    t.add_function(
        "splitn",
        Function::new(&[Type::String, Type::Int, Type::String], |_, a| {
            Ok(numbered(split_n(str_arg(a, 2), str_arg(a, 0), int_arg(a, 1))))
        }),
    );
    t.add_function("toStrings", Function::new(&[Type::Any], |_, a| Ok(go::strings(strslice(&a[0])))));
    t.add_function(
        "join",
        Function::new(&[Type::String, Type::Any], |_, a| Ok(Value::from(strslice(&a[1]).join(str_arg(a, 0))))),
    );
    t.add_function(
        "sortAlpha",
        Function::new(&[Type::Any], |_, a| {
            let mut items = match go::slice_items(&a[0]) {
                Some(_) => strslice(&a[0]),
                None => vec![go::strval(&a[0])],
            };
            items.sort_unstable();
            Ok(go::strings(items))
        }),
    );
}

/// Go's unicode.IsSpace.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// unicode.ToUpper on each rune: the simple (one rune) mapping, so "ß" stays as it is.
fn to_upper(s: &str) -> String {
    s.chars().map(upper_rune).collect()
}

fn to_lower(s: &str) -> String {
    s.chars().map(lower_rune).collect()
}

fn upper_rune(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower_rune(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// strings.Title: the first letter of each word upper-cased; words start after separators.
fn title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            is_space(c)
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) { upper_rune(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// goutils.Uncapitalize: the first letter after whitespace lower-cased.
fn untitle(s: &str) -> String {
    let mut next = true;
    s.chars()
        .map(|c| {
            if is_space(c) {
                next = true;
                c
            } else if next {
                next = false;
                lower_rune(c)
            } else {
                c
            }
        })
        .collect()
}

/// goutils.SwapCase: upper and title case to lower, lower to upper.
fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            let is_title = !c.is_uppercase() && !c.is_lowercase() && lower_rune(c) != c && upper_rune(c) != c;
            if c.is_uppercase() || is_title {
                lower_rune(c)
            } else if c.is_lowercase() {
                upper_rune(c)
            } else {
                c
            }
        })
        .collect()
}

/// Whether a byte, read as a Latin-1 rune, is unicode.IsSpace.
fn byte_is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// goutils.DeleteWhiteSpace, which walks bytes and writes each kept byte as a rune: when it removes
/// anything, non-ASCII text comes out re-encoded as if it were Latin-1, as in Go.
fn delete_white_space(s: &str) -> String {
    if !s.bytes().any(byte_is_space) {
        return s.to_string();
    }
    s.bytes().filter(|b| !byte_is_space(*b)).map(char::from).collect()
}

/// goutils.Initials: the first byte of each whitespace-separated word, written as a rune.
fn initials(s: &str) -> String {
    let mut out = String::new();
    let mut last_was_gap = true;
    for b in s.bytes() {
        if byte_is_space(b) {
            last_was_gap = true;
        } else if last_was_gap {
            out.push(char::from(b));
            last_was_gap = false;
        }
    }
    out
}

fn shuffle(s: &str) -> String {
    let mut runes: Vec<char> = s.chars().collect();
    runes.shuffle(&mut rand::thread_rng());
    runes.into_iter().collect()
}

/// sprig's abbrev: goutils.Abbreviate, with widths under 4 leaving the string as it is.
fn abbrev(width: i64, s: &str) -> String {
    if width < 4 {
        return s.to_string();
    }
    abbreviate_full(s, 0, width).unwrap_or_default()
}

fn abbrevboth(left: i64, right: i64, s: &str) -> String {
    if right < 4 || left > 0 && right < 7 {
        return s.to_string();
    }
    abbreviate_full(s, left, right).unwrap_or_default()
}

/// goutils.AbbreviateFull, on bytes as Go slices strings.
fn abbreviate_full(s: &str, offset: i64, max_width: i64) -> Option<String> {
    let bytes = s.as_bytes();
    let len = bytes.len() as i64;
    if s.is_empty() {
        return Some(String::new());
    }
    if max_width < 4 {
        return None;
    }
    if len <= max_width {
        return Some(s.to_string());
    }
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return Some(format!("{}...", lossy(&bytes[..(max_width - 3) as usize])));
    }
    if max_width < 7 {
        return None;
    }
    if offset + max_width - 3 < len {
        let rest = abbreviate_full(&lossy(&bytes[offset as usize..]), 0, max_width - 3)?;
        return Some(format!("...{rest}"));
    }
    Some(format!("...{}", lossy(&bytes[(len - (max_width - 3)) as usize..])))
}

fn trunc(c: i64, s: &str) -> Result<String, FuncError> {
    let len = s.len() as i64;
    if c < 0 && len + c > 0 {
        return go::slice_str(s, len + c, len);
    }
    if c >= 0 && len > c {
        return go::slice_str(s, 0, c);
    }
    Ok(s.to_string())
}

fn substring(start: i64, end: i64, s: &str) -> Result<String, FuncError> {
    let len = s.len() as i64;
    if start < 0 {
        return go::slice_str(s, 0, end);
    }
    if end < 0 || end > len {
        return go::slice_str(s, start, len);
    }
    go::slice_str(s, start, end)
}

fn repeat(s: &str, count: i64) -> Result<String, FuncError> {
    if count < 0 {
        return Err(FuncError::new("strings: negative Repeat count"));
    }
    if (s.len() as u128) * (count as u128) > MAX_LEN as u128 {
        return Err(too_large("repeat"));
    }
    Ok(s.repeat(count as usize))
}

fn indent(spaces: i64, s: &str) -> Result<String, FuncError> {
    let pad = repeat(" ", spaces)?;
    let lines = s.matches('\n').count() as u128;
    if (pad.len() as u128) * (lines + 1) + s.len() as u128 > MAX_LEN as u128 {
        return Err(too_large("indent"));
    }
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// strings.Replace(s, old, new, -1); an empty `old` inserts `new` around every rune, as Rust does too.
fn replace(s: &str, old: &str, new: &str) -> Result<String, FuncError> {
    let matches = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() };
    if (matches as u128) * (new.len() as u128) + s.len() as u128 > MAX_LEN as u128 {
        return Err(too_large("replace"));
    }
    Ok(s.replace(old, new))
}

/// goutils.CryptoRandom over ' '..='z' keeping letters and/or digits.
fn random_string(count: i64, letters: bool, digits: bool) -> Result<String, FuncError> {
    if count <= 0 {
        // goutils fails on negative counts and sprig drops the error: an empty string.
        return Ok(String::new());
    }
    if count as u64 > MAX_LEN as u64 {
        return Err(too_large("random string"));
    }
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(count as usize);
    while out.len() < count as usize {
        let c = char::from(rng.gen_range(b' '..=b'z'));
        if letters && c.is_ascii_alphabetic() || digits && c.is_ascii_digit() {
            out.push(c);
        }
    }
    Ok(out)
}

/// goutils.CryptoRandomAscii: printable ASCII, ' '..='~'.
fn random_ascii(count: i64) -> Result<String, FuncError> {
    if count <= 0 {
        return Ok(String::new());
    }
    if count as u64 > MAX_LEN as u64 {
        return Err(too_large("randAscii"));
    }
    let mut rng = rand::thread_rng();
    Ok((0..count).map(|_| char::from(rng.gen_range(b' '..=b'~'))).collect())
}

/// goutils.WrapCustom, on bytes as Go slices strings (only spaces break lines).
fn wrap(s: &str, wrap_length: i64, new_line: &str, wrap_long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let new_line = if new_line.is_empty() { "\n" } else { new_line };
    let wrap_length = wrap_length.max(1) as usize;
    let bytes = s.as_bytes();
    let len = bytes.len();
    let mut offset = 0;
    let mut out: Vec<u8> = Vec::new();
    while len - offset > wrap_length {
        if bytes[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = wrap_length + offset + 1;
        let space = bytes[offset..end].iter().rposition(|b| *b == b' ');
        if let Some(space) = space.map(|i| i + offset) {
            out.extend_from_slice(&bytes[offset..space]);
            out.extend_from_slice(new_line.as_bytes());
            offset = space + 1;
        } else if wrap_long_words {
            out.extend_from_slice(&bytes[offset..wrap_length + offset]);
            out.extend_from_slice(new_line.as_bytes());
            offset += wrap_length;
        } else {
            let end = wrap_length + offset;
            match bytes[end..].iter().position(|b| *b == b' ') {
                None => {
                    out.extend_from_slice(&bytes[offset..]);
                    offset = len;
                }
                Some(index) => {
                    let space = index + end;
                    out.extend_from_slice(&bytes[offset..space]);
                    out.extend_from_slice(new_line.as_bytes());
                    offset = space + 1;
                }
            }
        }
    }
    out.extend_from_slice(&bytes[offset..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// strings.SplitN: n < 0 all parts, n == 0 none; an empty separator splits between runes.
fn split_n<'a>(s: &'a str, sep: &str, n: i64) -> Vec<&'a str> {
    if n == 0 {
        return Vec::new();
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    if sep.is_empty() {
        let mut parts: Vec<&str> = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            if parts.len() + 1 == limit {
                parts.push(rest);
                return parts;
            }
            let width = rest.chars().next().map_or(1, char::len_utf8);
            parts.push(&rest[..width]);
            rest = &rest[width..];
        }
        return parts;
    }
    s.splitn(limit, sep).collect()
}

/// sprig's split and splitn results: a map[string]string keyed "_0", "_1", ...
fn numbered(parts: Vec<&str>) -> Value {
    go::string_map(parts.into_iter().enumerate().map(|(i, part)| (format!("_{i}"), part.to_string())))
}

/// sprig's strslice: a slice's non-nil elements as strings, nil as none, anything else as one string.
pub(crate) fn strslice(value: &Value) -> Vec<String> {
    match go::slice_items(value) {
        Some(items) => items.iter().filter(|v| !v.is_nil()).map(go::strval).collect(),
        None if value.is_nil() => Vec::new(),
        None => vec![go::strval(value)],
    }
}

/// xstrings.ToPascalCase (v1.5.0's toCamelCase with isBig): words separated by space, `_` and `-`.
fn to_pascal_case(s: &str) -> String {
    let is_connector = |c: char| c == '-' || c == '_' || is_space(c);
    let mut chars = s.chars();
    let mut out = String::new();
    let mut r0 = None;
    let mut first_upper = false;
    for c in chars.by_ref() {
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = Some(upper_rune(c));
            break;
        }
        out.push(c);
    }
    let Some(mut r0) = r0 else { return out };
    for c in chars {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper_rune(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower_rune(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Word {
    Invalid,
    Number,
    UpperCase,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' isAlphabet: a letter that is not a CJK ideograph.
fn is_alphabet(c: char) -> bool {
    if !c.is_alphabetic() {
        return false;
    }
    !matches!(c, '\u{4E00}'..='\u{9FCC}' | '\u{3400}'..='\u{4D85}' | '\u{20000}'..='\u{2B81D}')
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || is_space(c)
}

/// unicode.IsPunct for ASCII and the common Unicode punctuation (Rust has no P category test).
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, '!' | '"' | '#' | '%' | '&' | '\'' | '(' | ')' | '*' | ',' | '-' | '.' | '/' | ':' | ';')
            || matches!(c, '?' | '@' | '[' | '\\' | ']' | '_' | '{' | '}');
    }
    matches!(c, '\u{00A1}' | '\u{00A7}' | '\u{00AB}' | '\u{00B6}' | '\u{00B7}' | '\u{00BB}' | '\u{00BF}')
        || ('\u{2010}'..='\u{2027}').contains(&c)
        || ('\u{2030}'..='\u{205E}').contains(&c)
        || ('\u{3001}'..='\u{3003}').contains(&c)
        || ('\u{3008}'..='\u{3011}').contains(&c)
}

/// xstrings' nextWord: the type of the next word, the word, and what follows it.
fn next_word(s: &str) -> (Word, &str, &str) {
    let Some(first) = s.chars().next() else { return (Word::Invalid, "", "") };
    let mut offset = first.len_utf8();
    let mut rest = &s[offset..];
    let take_while = |offset: &mut usize, rest: &mut &str, keep: &dyn Fn(char) -> bool| {
        while let Some(c) = rest.chars().next() {
            if !keep(c) {
                break;
            }
            *offset += c.len_utf8();
            *rest = &rest[c.len_utf8()..];
        }
    };
    let kind = if is_connector(first) {
        take_while(&mut offset, &mut rest, &is_connector);
        Word::Connector
    } else if is_punct(first) {
        take_while(&mut offset, &mut rest, &is_punct);
        Word::Punct
    } else if first.is_uppercase() {
        match rest.chars().next() {
            Some(c) if c.is_uppercase() => {
                let mut prev_size = c.len_utf8();
                offset += prev_size;
                rest = &rest[prev_size..];
                let mut last = c;
                while let Some(c) = rest.chars().next() {
                    last = c;
                    if !c.is_uppercase() {
                        break;
                    }
                    prev_size = c.len_utf8();
                    offset += prev_size;
                    rest = &rest[prev_size..];
                }
                // "HTTPStatus" is "HTTP" then "Status": the last capital starts the next word.
                if !rest.is_empty() && is_alphabet(last) {
                    offset -= prev_size;
                }
            }
            Some(c) if is_alphabet(c) => {
                offset += c.len_utf8();
                rest = &rest[c.len_utf8()..];
                take_while(&mut offset, &mut rest, &|c| is_alphabet(c) && !c.is_uppercase());
            }
            _ => {}
        }
        Word::UpperCase
    } else if is_alphabet(first) {
        take_while(&mut offset, &mut rest, &|c| is_alphabet(c) && !c.is_uppercase());
        Word::Alphabet
    } else if first.is_numeric() {
        take_while(&mut offset, &mut rest, &char::is_numeric);
        Word::Number
    } else {
        take_while(&mut offset, &mut rest, &|c| !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c)));
        Word::Other
    };
    (kind, &s[..offset], &s[offset..])
}

fn push_lower(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::UpperCase && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(connector);
        } else {
            out.push(lower_rune(c));
        }
    }
}

/// xstrings v1.5.0's camelCaseToLowerCase (ToSnakeCase with '_', ToKebabCase with '-').
fn camel_case_to_lower_case(s: &str, connector: char) -> String {
    let mut out = String::new();
    if s.is_empty() {
        return out;
    }
    let (mut wt, mut word, mut remaining) = next_word(s);
    while !remaining.is_empty() {
        if wt != Word::Connector {
            push_lower(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, remaining) = next_word(remaining);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    out.push(connector);
                }
            }
            Word::Connector => push_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                if remaining.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word, remaining) = next_word(remaining);
                // A number followed by anything but letters belongs to the previous word: "Bld4Floor".
                if wt != Word::Alphabet {
                    push_lower(&mut out, Word::Number, last, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                // Lower-case letters after a number start a new word with it: "HTTP2xx" → "http_2xx".
                out.push(connector);
                push_lower(&mut out, Word::Number, last, connector);
                while wt == Word::Alphabet || wt == Word::Number {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word, remaining) = next_word(remaining);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    out.push(connector);
                }
            }
        }
    }
    push_lower(&mut out, wt, word, connector);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xstrings_samples() {
        for (input, snake) in [
            ("FirstName", "first_name"),
            ("HTTPServer", "http_server"),
            ("NoHTTPS", "no_https"),
            ("GO_PATH", "go_path"),
            ("GO PATH", "go_path"),
            ("GO-PATH", "go_path"),
            ("http2xx", "http_2xx"),
            ("HTTP20xOK", "http_20x_ok"),
            ("Duration2m3s", "duration_2m3s"),
            ("Bld4Floor3rd", "bld4_floor_3rd"),
        ] {
            assert_eq!(camel_case_to_lower_case(input, '_'), snake, "{input}");
        }
        for (input, pascal) in [
            ("some_words", "SomeWords"),
            ("http_server", "HttpServer"),
            ("no_https", "NoHttps"),
            ("_complex__case_", "_Complex_Case_"),
            ("some words", "SomeWords"),
            ("GOLANG_IS_GREAT", "GolangIsGreat"),
        ] {
            assert_eq!(to_pascal_case(input), pascal, "{input}");
        }
    }
}
