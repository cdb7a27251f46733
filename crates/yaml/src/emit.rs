//! Deterministic block-style YAML emitter for `serde_json::Value`, and the strings of
//! `weaver-secrets`' sops writer (which lays out its own tree, with comments).
//!
//! The output must mean the same thing to YAML 1.1 readers (kubectl, helm,
//! PyYAML) and YAML 1.2 core-schema readers, so scalar quoting is deliberately
//! conservative: a string is written plain only when neither schema could read
//! it as anything other than that exact string.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

use crate::resolve::{Dialect, is_word_in_any_case, writes_plain};

/// Whose quoting a string gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Plain only where every YAML 1.1 and 1.2 reader reads the text back; else single quotes
    /// where they can hold it, else double; multi-line values as literal blocks.
    Portable,
    /// sops files: the portable rule, but go-yaml v3's double quotes for what it would read as
    /// another type (or YAML 1.1 readers as a boolean, a merge key or a date) and for a tab, and
    /// no literal block that needs an indentation indicator.
    GoYamlV3,
}

/// Writes `value` as one block-style YAML document (no leading `---`), ending in a newline.
pub fn to_yaml_string(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_yaml(&mut out, value);
    out
}

/// Appends the same text to `out` (used on hot paths to avoid reallocations).
pub fn write_yaml(out: &mut String, value: &serde_json::Value) {
    match value {
        Value::Object(map) if !map.is_empty() => write_map(out, map, 0),
        Value::Array(seq) if !seq.is_empty() => write_seq(out, seq, 0),
        // Top-level scalars stay on one line: the indentation a block scalar's
        // indicator is relative to is -1 per the spec but 0 in libyaml/PyYAML.
        _ => write_scalar(out, value, None),
    }
}

/// YAML caps implicit keys at 1024 characters; longer keys need `? key`.
/// Comparing bytes (>= chars) keeps this on the safe side.
const MAX_IMPLICIT_KEY_LEN: usize = 1024;

/// Writes the entries of a non-empty map whose first key starts at the cursor
/// (already indented, or right after `- `) and whose other keys sit at `indent`.
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            push_indent(out, indent);
        }
        let start = out.len();
        write_inline_string(out, key, Quoting::Portable);
        if out.len() - start > MAX_IMPLICIT_KEY_LEN {
            out.insert_str(start, "? ");
            out.push('\n');
            push_indent(out, indent);
        }
        out.push(':');
        match value {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                push_indent(out, indent + 2);
                write_map(out, child, indent + 2);
            }
            // kubectl style: sequence items line up with their parent key.
            Value::Array(child) if !child.is_empty() => {
                out.push('\n');
                push_indent(out, indent);
                write_seq(out, child, indent);
            }
            _ => {
                out.push(' ');
                write_scalar(out, value, Some(indent));
            }
        }
    }
}

/// Writes the items of a non-empty sequence; the first `- ` starts at the
/// cursor, later ones at `indent`.
fn write_seq(out: &mut String, seq: &[Value], indent: usize) {
    for (i, item) in seq.iter().enumerate() {
        if i > 0 {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(child) if !child.is_empty() => write_map(out, child, indent + 2),
            Value::Array(child) if !child.is_empty() => write_seq(out, child, indent + 2),
            _ => write_scalar(out, item, Some(indent)),
        }
    }
}

/// Writes a scalar (or empty collection) and ends the line. `block_indent` is
/// the indentation of the owning key or `-`; `None` forbids block scalars.
fn write_scalar(out: &mut String, value: &Value, block_indent: Option<usize>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => return write_string(out, s, Quoting::Portable, block_indent.map(|indent| indent + 2), ""),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
    out.push('\n');
}

fn write_number(out: &mut String, n: &Number) {
    let start = out.len();
    // Writing into a String cannot fail.
    let _ = write!(out, "{n}");
    if !n.is_f64() {
        return;
    }
    // Floats print like `1e300` or `1.5e-7`; YAML 1.1 only reads a float when
    // the mantissa has a `.` and the exponent a sign (`1.0e+300`).
    let exp = out[start..].find(['e', 'E']).map(|i| start + i);
    let mut mantissa_end = exp.unwrap_or(out.len());
    if !out[start..mantissa_end].contains('.') {
        out.insert_str(mantissa_end, ".0");
        mantissa_end += 2;
    }
    if exp.is_some() && !matches!(out.as_bytes().get(mantissa_end + 1), Some(b'+' | b'-')) {
        out.insert(mantissa_end + 1, '+');
    }
}

enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The style `quoting` wants for `s`; a literal block only if `allow_literal`.
fn choose_style(s: &str, allow_literal: bool, quoting: Quoting) -> Style {
    let style = portable_style(s, allow_literal);
    match (quoting, style) {
        (Quoting::GoYamlV3, Style::Plain | Style::Single) if s.contains('\t') || go_yaml_v3_quotes(s) => Style::Double,
        (Quoting::GoYamlV3, Style::Literal) if needs_indentation_indicator(s) => Style::Double,
        (_, style) => style,
    }
}

/// What go-yaml v3 would not write plain ([`writes_plain`]), and for YAML 1.1 readers the merge
/// key and anything starting like a date (`YYYY-`), so that no reader sees a timestamp.
fn go_yaml_v3_quotes(s: &str) -> bool {
    let b = s.as_bytes();
    let date_like = b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    !writes_plain(s, Dialect::GoYamlV3) || s == "<<" || date_like
}

/// Picks the simplest style that reads back as exactly `s` under both YAML 1.1
/// and 1.2, in one pass over the characters.
fn portable_style(s: &str, allow_literal: bool) -> Style {
    // Most keys and many values are words like `apiVersion`, `app.kubernetes.io/name` or
    // `nginx-1`: plain unless reserved, decided without the character loop below.
    let bytes = s.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
    {
        return if is_reserved_word(s) { Style::Single } else { Style::Plain };
    }
    let Some(first) = s.chars().next() else {
        return Style::Single;
    };
    let mut plain = !matches!(
        first,
        '-' | '?' | ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>'
            | '\'' | '"' | '%' | '@' | '`' | ' '
    ) && !s.ends_with([' ', ':'])
        // `...` at the start of a line can end the document.
        && !s.starts_with("...");
    // Only spaces, tabs and newlines: such text has no line to anchor a block scalar.
    let blank = bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n'));
    // Only characters that occur in YAML 1.1/1.2 ints, floats and timestamps.
    let numeric_chars = bytes.iter().all(|&b| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'x' | b'X' | b'o' | b'O' | b't' | b'T' | b'z' | b'Z' | b'_' | b'.' | b':' | b'+' | b'-' | b' '
            )
    });
    let mut has_newline = false;
    // Byte by byte, past the bytes no case below is about (most of a long description): a
    // character beyond ASCII is looked at once, at its first byte, and no byte of one is `:`,
    // `#` or any other ASCII byte tested here.
    for (at, &b) in bytes.iter().enumerate() {
        if !STYLE_BYTES[usize::from(b)] {
            continue;
        }
        match b {
            b'\n' => has_newline = true,
            // PyYAML ends plain scalars at tabs.
            b'\t' => plain = false,
            b':' => plain &= bytes.get(at + 1) != Some(&b' '),
            b'#' => plain &= at == 0 || bytes[at - 1] != b' ',
            0..=0x08 | 0x0b..=0x1f | 0x7f => return Style::Double,
            _ => {
                let c = s[at..].chars().next().unwrap_or_default();
                if needs_escape(c) {
                    return Style::Double;
                }
                // Non-ASCII spaces (NBSP, U+3000...) are content to YAML but easily
                // trimmed by other tools; quoting makes them visible.
                plain &= !c.is_whitespace();
            }
        }
    }
    if has_newline {
        return if allow_literal && !blank { Style::Literal } else { Style::Double };
    }
    if plain && !is_reserved_word(s) && !looks_numeric(s, numeric_chars) { Style::Plain } else { Style::Single }
}

/// The bytes [`portable_style`] looks at: controls, `:`, `#` and the first byte of a character
/// beyond ASCII.
static STYLE_BYTES: [bool; 256] = {
    let mut bytes = [false; 256];
    let mut b = 0;
    while b < 256 {
        bytes[b] = b < 0x20 || b == 0x7f || b >= 0xc0 || b == b':' as usize || b == b'#' as usize;
        b += 1;
    }
    bytes
};

/// Bare words some YAML 1.1 or 1.2 reader resolves to a bool, null, merge key (`<<`) or value
/// key (`=`); words in any case, which over-quotes oddities like `nULL` but never under-quotes.
fn is_reserved_word(s: &str) -> bool {
    matches!(s, "~" | "=" | "<<") || is_word_in_any_case(s)
}

/// Whether some reader might take `s` as a number or timestamp. Rather than
/// mirror every schema's regexes, anything that starts like a number and uses
/// only number/timestamp characters is treated as one (`1.2.3` and `0755` are
/// numbers to some YAML 1.1 readers; `100m` and `10Gi` stay plain).
fn looks_numeric(s: &str, numeric_chars: bool) -> bool {
    let rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    match rest.as_bytes().first() {
        Some(b'0'..=b'9') => numeric_chars,
        Some(b'.') => numeric_chars || rest.eq_ignore_ascii_case(".inf") || rest.eq_ignore_ascii_case(".nan"),
        _ => false,
    }
}

/// Characters that must be escaped: C0/C1 controls other than tab and newline,
/// YAML 1.1 line breaks (NEL is also C1, LS, PS), the BOM and non-characters.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
            | '\u{fffe}' | '\u{ffff}'
    )
}

/// Writes `s` on a single line (keys, top-level scalars).
pub fn write_inline_string(out: &mut String, s: &str, quoting: Quoting) {
    write_quoted_or_plain(out, s, choose_style(s, false, quoting));
}

/// Writes `s` as a value whose `key: ` or `- ` is written, then `comment` (nothing, or ` #…`),
/// and ends the line; as a literal block with its lines at `block_indent`, if given and it fits.
pub fn write_string(out: &mut String, s: &str, quoting: Quoting, block_indent: Option<usize>, comment: &str) {
    match (choose_style(s, block_indent.is_some(), quoting), block_indent) {
        // The literal writes its own line breaks.
        (Style::Literal, Some(indent)) => write_literal(out, s, indent, comment),
        (style, _) => {
            write_quoted_or_plain(out, s, style);
            out.push_str(comment);
            out.push('\n');
        }
    }
}

fn write_quoted_or_plain(out: &mut String, s: &str, style: Style) {
    match style {
        Style::Plain => out.push_str(s),
        Style::Single => {
            out.push('\'');
            for (i, part) in s.split('\'').enumerate() {
                if i > 0 {
                    out.push_str("''");
                }
                out.push_str(part);
            }
            out.push('\'');
        }
        // Literal only comes back when the caller allowed it and handles it
        // itself; a single-line fallback is still correct.
        Style::Double | Style::Literal => write_double_quoted(out, s),
    }
}

/// A YAML double-quoted scalar; also used where YAML is edited as text, since it is valid for
/// any reader.
pub fn write_double_quoted(out: &mut String, s: &str) {
    gotemplate::strconv::write_quoted(out, s, |out, c| match c {
        c if needs_escape(c) => {
            let code = u32::from(c);
            let _ = if code <= 0xff { write!(out, "\\x{code:02X}") } else { write!(out, "\\u{code:04X}") };
        }
        c => out.push(c),
    });
}

/// Whether a literal block of `s` needs an indentation indicator: readers infer the indentation
/// from the first non-empty line, which would swallow its leading whitespace.
fn needs_indentation_indicator(s: &str) -> bool {
    s.trim_start_matches('\n').starts_with([' ', '\t'])
}

/// Writes a `|` block scalar (header, then `comment`, on its line) with content lines at
/// `content_indent`.
fn write_literal(out: &mut String, s: &str, content_indent: usize, comment: &str) {
    out.push('|');
    // Our content is always 2 deeper than the owner (the key or `-` column, which is what
    // readers measure from).
    if needs_indentation_indicator(s) {
        out.push('2');
    }
    let body = s.trim_end_matches('\n');
    let trailing_newlines = s.len() - body.len();
    match trailing_newlines {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    out.push_str(comment);
    out.push('\n');
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, content_indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // Kept (`|+`) final newlines beyond the first are empty lines.
    for _ in 1..trailing_newlines {
        out.push('\n');
    }
}

/// `n` spaces, a slice at a time: char by char, indenting was a tenth of the instructions of
/// a chart of large CRDs.
pub fn push_indent(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let part = left.min(SPACES.len());
        out.push_str(&SPACES[..part]);
        left -= part;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    /// Checks `s` renders as `expected` at top level, as a map value, as a
    /// sequence item and as a key.
    fn check_scalar(s: &str, expected: &str) {
        assert_eq!(to_yaml_string(&json!(s)), format!("{expected}\n"), "top level {s:?}");
        assert_eq!(to_yaml_string(&json!({ "k": s })), format!("k: {expected}\n"), "value {s:?}");
        assert_eq!(to_yaml_string(&json!([s])), format!("- {expected}\n"), "item {s:?}");
        let mut map = Map::new();
        map.insert(s.to_owned(), json!("v"));
        assert_eq!(to_yaml_string(&Value::Object(map)), format!("{expected}: v\n"), "key {s:?}");
    }

    /// Checks each string renders as `expected` as the value of key `k`.
    fn check_values(cases: &[(&str, &str)]) {
        for (s, expected) in cases {
            assert_eq!(to_yaml_string(&json!({ "k": s })), *expected, "{s:?}");
        }
    }

    fn single_quoted(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    const BOOL_AND_NULL_WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "true",
        "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "12",
        "1_000",
        "+12",
        "-3",
        "0x1F",
        "0X1f",
        "0o17",
        "0755",
        "0b101",
        "-0b1",
        "1:20",
        "190:20:30",
        "1.5",
        "1e3",
        "1E3",
        ".5",
        "1.",
        "-1.5e-3",
        ".inf",
        "-.Inf",
        "+.INF",
        ".nan",
        ".NaN",
        ".NAN",
        "1_000.5",
        "6.8523015e+5",
        "685.230_15e+03",
        "190:20:30.15",
        "1.2.3",
        "...",
        "0.",
        "+1",
        "1 000",
    ];
    const TIMESTAMPS: &[&str] = &[
        "2024-01-01",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14T21:59:43.10Z",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-14 21:59:43",
        "2002-1-2T3:04:05",
    ];
    const INDICATOR_STARTS: &[&str] = &[
        "-x",
        "- x",
        "--port=80",
        "?x",
        "? x",
        ":x",
        ",x",
        "[x]",
        "]x",
        "{{ .x }}",
        "}x",
        "#x",
        "&anchor",
        "*alias",
        "!tag",
        "|x",
        ">x",
        "'x",
        "\"x",
        "%x",
        "@x",
        "`x`",
        "---",
        "... x",
    ];
    const SPACING: &[&str] =
        &[" lead", "trail ", "a: b", "a:", "key:", "a #b", "a\tb", "\ttab", "\u{a0}nbsp", "x\u{3000}"];
    const PLAIN: &[&str] = &[
        "web",
        "nginx:1.25",
        "http://example.com/a#frag",
        "100m",
        "10Gi",
        "v1.2.3",
        "a:b",
        "a#b",
        "a - b",
        "foo bar",
        "it's",
        "a,b[0]{x}",
        "app.kubernetes.io/name",
        "~x",
        "yes!",
        "Ontario",
        "nullable",
        "e3",
        "_1",
        "+",
        "x-y",
        ".hidden",
        "<<x",
        "==",
        "ünïcødé",
        "🚀 launch",
        "日本語",
        "a'b\"c",
        "a\\b",
        "C:\\dir",
    ];

    #[test]
    fn reserved_words_are_single_quoted() {
        // In any case: some reader might not care.
        for s in BOOL_AND_NULL_WORDS.iter().chain(&["=", "<<", "", "yEs", "nULL", "oN", "tRUE"]) {
            check_scalar(s, &single_quoted(s));
        }
    }

    #[test]
    fn numbers_and_timestamps_are_single_quoted() {
        for s in NUMBERS.iter().chain(TIMESTAMPS) {
            check_scalar(s, &single_quoted(s));
        }
    }

    #[test]
    fn indicators_and_spacing_are_single_quoted() {
        for s in INDICATOR_STARTS.iter().chain(SPACING) {
            check_scalar(s, &single_quoted(s));
        }
        check_scalar("'quoted'", "'''quoted'''");
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in PLAIN {
            check_scalar(s, s);
        }
    }

    #[test]
    fn unrepresentable_characters_are_double_quoted() {
        let cases = [
            ("a\rb", r#""a\rb""#),
            ("a\u{0}b", r#""a\x00b""#),
            ("bell\u{7}", r#""bell\x07""#),
            ("\u{1b}[0m", r#""\x1B[0m""#),
            ("del\u{7f}", r#""del\x7F""#),
            ("nel\u{85}", r#""nel\x85""#),
            ("ls\u{2028}ps\u{2029}", r#""ls\u2028ps\u2029""#),
            ("\u{feff}bom", r#""\uFEFFbom""#),
            ("\u{ffff}", r#""\uFFFF""#),
            ("q\"b\\\t\u{1}ü", "\"q\\\"b\\\\\\t\\x01ü\""),
        ];
        for (s, expected) in cases {
            check_scalar(s, expected);
        }
    }

    #[test]
    fn multi_line_keys_and_top_level_strings_are_double_quoted() {
        assert_eq!(to_yaml_string(&json!("a\nb")), "\"a\\nb\"\n");
        assert_eq!(to_yaml_string(&json!({ "a\nb": 1 })), "\"a\\nb\": 1\n");
    }

    #[test]
    fn multi_line_values_that_cannot_be_literal_are_double_quoted() {
        check_values(&[
            ("\n", "k: \"\\n\"\n"),
            (" \n\t\n", "k: \" \\n\\t\\n\"\n"),
            ("a\r\nb", "k: \"a\\r\\nb\"\n"),
            ("a\nb\u{7}", "k: \"a\\nb\\x07\"\n"),
        ]);
    }

    #[test]
    fn literal_block_chomping() {
        check_values(&[
            ("a\nb", "k: |-\n  a\n  b\n"),
            ("a\nb\n", "k: |\n  a\n  b\n"),
            ("a\nb\n\n", "k: |+\n  a\n  b\n\n"),
            ("a\n\nb", "k: |-\n  a\n\n  b\n"),
        ]);
        assert_eq!(to_yaml_string(&json!({ "k": "a\n\n\n", "z": 1 })), "k: |+\n  a\n\n\nz: 1\n");
    }

    #[test]
    fn literal_block_indentation_indicator() {
        check_values(&[
            (" a\nb", "k: |2-\n   a\n  b\n"),
            ("\n  a\n", "k: |2\n\n    a\n"),
            ("\tx\ny\n\n", "k: |2+\n  \tx\n  y\n\n"),
            ("  \nx", "k: |2-\n    \n  x\n"),
            // Later indented lines and trailing spaces need nothing special.
            ("a \n  b\n", "k: |\n  a \n    b\n"),
        ]);
    }

    #[test]
    fn literal_blocks_follow_their_owner_indentation() {
        let doc = json!({ "a": { "b": ["x\ny", { "c": " p\nq\n" }, ["r\ns"]] } });
        let expected = "\
a:
  b:
  - |-
    x
    y
  - c: |2
       p
      q
  - - |-
      r
      s
";
        assert_eq!(to_yaml_string(&doc), expected);
    }

    #[test]
    fn kubernetes_layout() {
        let doc = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web", "labels": { "app": "web", "on": "yes" }, "annotations": {} },
            "spec": {
                "replicas": 3,
                "template": { "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.25",
                        "args": ["--port", "8080"],
                        "ports": [{ "containerPort": 80 }],
                        "env": [],
                        "resources": { "limits": { "cpu": "500m", "memory": "128Mi" } },
                    }],
                    "nodeSelector": null,
                    "hostNetwork": false,
                }},
            },
        });
        let expected = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    'on': 'yes'
  annotations: {}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.25
        args:
        - '--port'
        - '8080'
        ports:
        - containerPort: 80
        env: []
        resources:
          limits:
            cpu: 500m
            memory: 128Mi
      nodeSelector: null
      hostNetwork: false
";
        assert_eq!(to_yaml_string(&doc), expected);
    }

    #[test]
    fn keys_keep_insertion_order() {
        assert_eq!(to_yaml_string(&json!({ "z": 1, "a": 2, "m": 3 })), "z: 1\na: 2\nm: 3\n");
    }

    #[test]
    fn nested_sequences_and_empty_collections() {
        let doc = json!([[1, [2, 3]], [], {}, [{}], [{ "a": [] }], null, true]);
        let expected = "- - 1\n  - - 2\n    - 3\n- []\n- {}\n- - {}\n- - a: []\n- null\n- true\n";
        assert_eq!(to_yaml_string(&doc), expected);
        assert_eq!(to_yaml_string(&json!({})), "{}\n");
        assert_eq!(to_yaml_string(&json!([])), "[]\n");
        assert_eq!(to_yaml_string(&json!(null)), "null\n");
        assert_eq!(to_yaml_string(&json!(false)), "false\n");
    }

    #[test]
    fn numbers() {
        let cases = [
            (json!(0), "0"),
            (json!(-7), "-7"),
            (json!(i64::MIN), "-9223372036854775808"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(1.0), "1.0"),
            (json!(-0.0), "-0.0"),
            (json!(0.1), "0.1"),
            (json!(1e15), "1000000000000000.0"),
            (json!(1e16), "1.0e+16"),
            (json!(-1e300), "-1.0e+300"),
            (json!(1.5e-7), "1.5e-7"),
            (json!(1.2345678901234567e20), "1.2345678901234567e+20"),
        ];
        for (value, expected) in cases {
            assert_eq!(to_yaml_string(&value), format!("{expected}\n"));
        }
    }

    #[test]
    fn long_keys_use_explicit_entries() {
        let at_limit = "k".repeat(MAX_IMPLICIT_KEY_LEN);
        let over = "k".repeat(MAX_IMPLICIT_KEY_LEN + 1);
        let mut map = Map::new();
        map.insert(at_limit.clone(), json!(1));
        map.insert(over.clone(), json!({ "a": ["b"] }));
        let expected = format!("{at_limit}: 1\n? {over}\n:\n  a:\n  - b\n");
        assert_eq!(to_yaml_string(&Value::Object(map)), expected);
    }

    #[test]
    fn write_yaml_appends() {
        let mut out = String::from("---\n");
        write_yaml(&mut out, &json!({ "a": 1 }));
        assert_eq!(out, "---\na: 1\n");
    }

    /// Pieces the generated strings are made of: characters with meaning to
    /// YAML scanners plus fragments of reserved words, numbers and timestamps.
    const FUZZ_PIECES: &[&str] = &[
        "a",
        "Z",
        "0",
        "1",
        "9",
        ".",
        "-",
        "+",
        "_",
        ":",
        " ",
        " ",
        "#",
        "'",
        "\"",
        "\\",
        "\n",
        "\n",
        "\t",
        "\r",
        "\u{0}",
        "\u{85}",
        "\u{2028}",
        "\u{feff}",
        "\u{a0}",
        "ü",
        "🚀",
        "e",
        "x",
        "y",
        "n",
        "o",
        "~",
        "=",
        "<",
        "!",
        "&",
        "*",
        "|",
        ">",
        "{",
        "}",
        "[",
        "]",
        ",",
        "?",
        "%",
        "@",
        "`",
        "T",
        "yes",
        "null",
        "true",
        "Off",
        "0x",
        "0o",
        "1:2",
        "2024-01-01",
        ".inf",
        "---",
        "...",
    ];

    /// Deterministic pseudo-random strings (no `rand` dependency needed).
    fn fuzz_strings(count: usize) -> Vec<String> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % bound as u64) as usize
        };
        (0..count).map(|_| (0..next(7)).map(|_| FUZZ_PIECES[next(FUZZ_PIECES.len())]).collect()).collect()
    }

    fn interop_document() -> Value {
        let mut strings: Vec<String> = [BOOL_AND_NULL_WORDS, NUMBERS, TIMESTAMPS, INDICATOR_STARTS, SPACING, PLAIN]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect();
        strings.extend(
            [
                "",
                "=",
                "<<",
                "a\nb",
                "a\nb\n",
                "a\nb\n\n\n",
                " a\nb",
                "\n  a\n",
                "\tx\ny",
                "  \nx",
                "a \n  b\n",
                "x\n   ",
                "\n",
                "a\r\nb",
                "\u{1b}[0m\n",
                "nel\u{85}",
                "ls\u{2028}",
                "\u{feff}bom",
                "ünïcødé\n🚀\n",
                "# not a comment\n- not an item\n",
                "'single'\n\"double\"",
            ]
            .map(String::from),
        );
        strings.extend([
            "k".repeat(MAX_IMPLICIT_KEY_LEN),
            "k".repeat(MAX_IMPLICIT_KEY_LEN + 1),
            "ü".repeat(600),
            "long line\n".repeat(50),
        ]);
        strings.extend(fuzz_strings(3000));

        let as_keys: Map<String, Value> = strings.iter().map(|s| (s.clone(), json!(s))).collect();
        let nested: Vec<Value> =
            strings.iter().map(|s| json!({ s.clone(): { "v": s, "l": [s, [s], { s.clone(): s }] } })).collect();
        json!({
            "strings": strings,
            "as_keys": as_keys,
            "nested": nested,
            // serde_json's default float parser is not always correctly rounded
            // (e.g. 1.2345678901234567e20), so only exactly-parsed floats here.
            "numbers": [0, -1, i64::MIN, u64::MAX, 1.0, -0.0, 0.1, 1e15, 1e16, -1e300, 1.5e-7, 5e-324, 1.25e20],
            "bools": [true, false],
            "nulls": [null, { "k": null }],
            "empty": { "map": {}, "list": [], "in_list": [{}, []] },
            "deep": [[[[{ "a": [[{ "b": "c\nd" }]] }]]]],
        })
    }

    /// Feeds `yaml` to a Python YAML reader and parses its JSON dump. Returns
    /// `None` (after saying why) when the reader is unavailable, unless
    /// `WEAVER_REQUIRE_INTEROP=1` demands it.
    fn python_load(module: &str, pip_package: &str, script: &str, yaml: &str) -> Option<Value> {
        let available = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !available {
            let reason = format!("python3 module `{module}` is not available (pip install {pip_package})");
            assert!(std::env::var("WEAVER_REQUIRE_INTEROP").as_deref() != Ok("1"), "{reason}");
            // Written to the real stderr so the skip shows without --nocapture.
            let _ = writeln!(std::io::stderr(), "skipping YAML interop test: {reason}");
            return None;
        }
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        // A write error means python3 died early; its stderr explains why.
        let _ = child.stdin.take().expect("stdin").write_all(yaml.as_bytes());
        let output = child.wait_with_output().expect("wait for python3");
        assert!(
            output.status.success(),
            "{module} could not load the emitted YAML as JSON-compatible data:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(serde_json::from_slice(&output.stdout).expect("python3 printed JSON"))
    }

    fn assert_round_trip(module: &str, pip_package: &str, script: &str) {
        let doc = interop_document();
        let yaml = to_yaml_string(&doc);
        let Some(loaded) = python_load(module, pip_package, script, &yaml) else {
            return;
        };
        // Serialized comparison so key order and int-vs-float matter too.
        let (want, got) = (serde_json::to_string(&doc).unwrap(), serde_json::to_string(&loaded).unwrap());
        if want != got {
            let want_lines = serde_json::to_string_pretty(&doc).unwrap();
            let got_lines = serde_json::to_string_pretty(&loaded).unwrap();
            let (w, g) =
                want_lines.lines().zip(got_lines.lines()).find(|(w, g)| w != g).unwrap_or(("<length differs>", ""));
            panic!("{module} read back different data; first difference:\n want: {w}\n  got: {g}");
        }
    }

    #[test]
    fn yaml_1_1_round_trip_pyyaml() {
        assert_round_trip(
            "yaml",
            "pyyaml",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.buffer.read())))",
        );
    }

    #[test]
    fn yaml_1_2_round_trip_ruamel() {
        assert_round_trip(
            "ruamel.yaml",
            "ruamel.yaml",
            "import sys, json\nfrom ruamel.yaml import YAML\n\
             print(json.dumps(YAML(typ='safe', pure=True).load(sys.stdin.buffer.read())))",
        );
    }
}
