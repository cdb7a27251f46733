//! Regular expression functions (sprig's regex.go) with Go's RE2 syntax and semantics on Rust's
//! `regex`: Perl classes (`\d`, `\w`, `\s`, `\b`) are ASCII-only as in Go, `[` is literal inside a
//! class, `\Q...\E` quotes, and compile errors are reported in Go's words.

use gotemplate::{FuncError, Function, Templates, Type, Value};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use regex_syntax::ast::ErrorKind;

use crate::go;
use crate::{int_arg, str_arg};

pub(crate) fn register(t: &mut Templates) {
    t.add_function(
        "regexMatch",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(Value::Bool(compile(str_arg(a, 0)).is_ok_and(|re| re.is_match(str_arg(a, 1)))))
        }),
    );
    t.add_function(
        "mustRegexMatch",
        Function::new(&[Type::String, Type::String], |_, a| {
            Ok(Value::Bool(compile(str_arg(a, 0)).map_err(FuncError::new)?.is_match(str_arg(a, 1))))
        }),
    );
    // The plain variants use regexp.MustCompile, whose panic text differs from the error's.
    for (name, must) in [("regexFindAll", false), ("mustRegexFindAll", true)] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::String, Type::Int], move |_, a| {
                let re = regex(str_arg(a, 0), must)?;
                Ok(go::strings(
                    find_all(&re, str_arg(a, 1), int_arg(a, 2))
                        .into_iter()
                        .map(|(s, e)| str_arg(a, 1)[s..e].to_string()),
                ))
            }),
        );
    }
    for (name, must) in [("regexFind", false), ("mustRegexFind", true)] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::String], move |_, a| {
                let re = regex(str_arg(a, 0), must)?;
                Ok(Value::from(re.find(str_arg(a, 1)).map_or("", |m| m.as_str())))
            }),
        );
    }
    for (name, must) in [("regexReplaceAll", false), ("mustRegexReplaceAll", true)] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::String, Type::String], move |_, a| {
                let re = regex(str_arg(a, 0), must)?;
                Ok(Value::from(replace_all(&re, str_arg(a, 1), str_arg(a, 2), true)))
            }),
        );
    }
    for (name, must) in [("regexReplaceAllLiteral", false), ("mustRegexReplaceAllLiteral", true)] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::String, Type::String], move |_, a| {
                let re = regex(str_arg(a, 0), must)?;
                Ok(Value::from(replace_all(&re, str_arg(a, 1), str_arg(a, 2), false)))
            }),
        );
    }
    for (name, must) in [("regexSplit", false), ("mustRegexSplit", true)] {
        t.add_function(
            name,
            Function::new(&[Type::String, Type::String, Type::Int], move |_, a| {
                let re = regex(str_arg(a, 0), must)?;
                Ok(go::strings(split(&re, str_arg(a, 0), str_arg(a, 1), int_arg(a, 2))))
            }),
        );
    }
    t.add_function(
        "regexQuoteMeta",
        Function::new(&[Type::String], |_, a| {
            let mut out = String::new();
            for c in str_arg(a, 0).chars() {
                if r"\.+*?()|[]{}^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(Value::from(out))
        }),
    );
}

/// regexp.Compile (`must`) or regexp.MustCompile's panic.
fn regex(pattern: &str, must: bool) -> Result<Regex, FuncError> {
    compile(pattern).map_err(|e| {
        if must {
            FuncError::new(e)
        } else {
            let quoted = if gotemplate::strconv::can_backquote(pattern) {
                format!("`{pattern}`")
            } else {
                gotemplate::strconv::quote(pattern, false)
            };
            FuncError::new(format!("regexp: Compile({quoted}): {e}"))
        }
    })
}

/// Compiles Go syntax, or returns Go's error text. Charts call `regexReplaceAll` and friends with
/// a handful of literal patterns, once per object or per list item: each pattern is compiled once
/// per process (a `Regex` clone shares the compiled program), as building its automaton costs
/// far more than a match. Patterns built from values could be endless: the cache is emptied when
/// it holds `CACHED_PATTERNS`.
fn compile(pattern: &str) -> Result<Regex, String> {
    const CACHED_PATTERNS: usize = 1024;
    static COMPILED: LazyLock<Mutex<HashMap<String, Result<Regex, String>>>> = LazyLock::new(Default::default);
    if let Some(compiled) = COMPILED.lock().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return compiled.clone();
    }
    let compiled = compile_uncached(pattern);
    let mut cache = COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHED_PATTERNS {
        cache.clear();
    }
    cache.insert(pattern.to_string(), compiled.clone());
    compiled
}

fn compile_uncached(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    let regex = Regex::new(&translated).map_err(|e| go_error(&translated, &e))?;
    if let Ok(ast) = regex_syntax::ast::parse::Parser::new().parse(&translated)
        && let Some(span) = nested_repetition(&ast)
    {
        return Err(syntax_error("invalid nested repetition operator", &translated[span]));
    }
    Ok(regex)
}

/// Go rejects a repetition applied directly to a repetition (`a**`, `a+?+`): the span of both
/// operators. Rust accepts them.
fn nested_repetition(ast: &regex_syntax::ast::Ast) -> Option<std::ops::Range<usize>> {
    use regex_syntax::ast::Ast;
    match ast {
        Ast::Repetition(outer) => {
            if let Ast::Repetition(inner) = &*outer.ast {
                return Some(inner.op.span.start.offset..outer.op.span.end.offset);
            }
            nested_repetition(&outer.ast)
        }
        Ast::Group(group) => nested_repetition(&group.ast),
        Ast::Concat(concat) => concat.asts.iter().find_map(nested_repetition),
        Ast::Alternation(alternation) => alternation.asts.iter().find_map(nested_repetition),
        _ => None,
    }
}

fn syntax_error(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

/// Rewrites Go syntax into Rust's where they differ.
fn translate(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    let mut in_class = false;
    let mut class_start = 0;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let Some((_, next)) = chars.next() else {
                    return Err(syntax_error("trailing backslash at end of expression", ""));
                };
                if next == 'Q' && !in_class {
                    let rest = &pattern[i + 2..];
                    let (quoted, consumed) = match rest.find(r"\E") {
                        Some(end) => (&rest[..end], end + 2),
                        None => (rest, rest.len()),
                    };
                    out.push_str(&regex::escape(quoted));
                    for _ in 0..quoted.chars().count() + consumed - quoted.len() {
                        chars.next();
                    }
                    continue;
                }
                let replacement = match (next, in_class) {
                    ('d', false) => "[0-9]",
                    ('D', false) => "[^0-9]",
                    ('w', false) => "[0-9A-Za-z_]",
                    ('W', false) => "[^0-9A-Za-z_]",
                    ('s', false) => r"[\t\n\f\r ]",
                    ('S', false) => r"[^\t\n\f\r ]",
                    ('b', false) => r"(?-u:\b)",
                    ('B', false) => r"(?-u:\B)",
                    ('d', true) => "0-9",
                    ('w', true) => "0-9A-Za-z_",
                    ('s', true) => r"\t\n\f\r ",
                    ('D', true) => "[:^digit:]",
                    ('W', true) => "[:^word:]",
                    ('S', true) => "[:^space:]",
                    _ => {
                        out.push('\\');
                        out.push(next);
                        continue;
                    }
                };
                out.push_str(replacement);
                // In Go a '-' after a Perl class in a class is a literal (`[\w-.]`); in Rust it
                // would start a range from the class's last character.
                if in_class && chars.peek().is_some_and(|(_, n)| *n == '-') {
                    chars.next();
                    out.push_str(r"\-");
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = i;
                out.push('[');
                // A leading ']' (after an optional '^') is a literal in both syntaxes.
                if chars.peek().is_some_and(|(_, n)| *n == '^') {
                    chars.next();
                    out.push('^');
                }
                if chars.peek().is_some_and(|(_, n)| *n == ']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            '[' if in_class => {
                if pattern[i..].starts_with("[:") && pattern[i + 2..].contains(":]") {
                    let end = i + 2 + pattern[i + 2..].find(":]").unwrap_or(0) + 2;
                    out.push_str(&pattern[i..end]);
                    while chars.peek().is_some_and(|(j, _)| *j < end) {
                        chars.next();
                    }
                } else {
                    out.push_str(r"\[");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            // In Go a `{` that starts no counted repetition is a literal (`\$__env{[^}]+}`, in
            // grafana's chart); Rust refuses it, or reads `{,n}` as one.
            '{' if !in_class && !starts_repeat(&pattern[i..]) => out.push_str(r"\{"),
            other => out.push(other),
        }
    }
    if in_class {
        return Err(syntax_error("missing closing ]", &pattern[class_start..]));
    }
    Ok(out)
}

/// Whether `s` starts with a counted repetition as Go's parser reads one: `{n}`, `{n,}`, `{n,m}`.
fn starts_repeat(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('{') else { return false };
    let digits = |t: &str| t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let min = digits(rest);
    if min == 0 {
        return false;
    }
    let rest = &rest[min..];
    let rest = rest.strip_prefix(',').map_or(rest, |r| &r[digits(r)..]);
    rest.starts_with('}')
}

/// Go's text for a pattern Rust rejected, from the parser's error kind.
fn go_error(pattern: &str, error: &regex::Error) -> String {
    let Some(e) = regex_syntax::ast::parse::Parser::new().parse(pattern).err() else {
        return match error {
            regex::Error::CompiledTooBig(_) => syntax_error("expression too large", pattern),
            _ => syntax_error("invalid or unsupported Perl syntax", pattern),
        };
    };
    let span = e.span();
    let text = pattern.get(span.start.offset..span.end.offset).unwrap_or_default();
    let from_start = pattern.get(span.start.offset..).unwrap_or_default();
    match e.kind() {
        ErrorKind::GroupUnclosed => syntax_error("missing closing )", pattern),
        ErrorKind::GroupUnopened => syntax_error("unexpected )", pattern),
        ErrorKind::ClassUnclosed => syntax_error("missing closing ]", from_start),
        ErrorKind::ClassRangeInvalid => syntax_error("invalid character class range", text),
        ErrorKind::RepetitionMissing => {
            // Go shows the operator: one character, or a counted repetition up to its brace.
            let operator = match from_start.chars().next() {
                Some('{') => from_start.find('}').map_or(from_start, |end| &from_start[..=end]),
                Some(c) => &from_start[..c.len_utf8()],
                None => "",
            };
            syntax_error("missing argument to repetition operator", operator)
        }
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountDecimalEmpty
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::DecimalInvalid => syntax_error("invalid repeat count", text),
        ErrorKind::EscapeUnexpectedEof => syntax_error("trailing backslash at end of expression", ""),
        ErrorKind::EscapeUnrecognized | ErrorKind::EscapeHexInvalid | ErrorKind::EscapeHexEmpty => {
            syntax_error("invalid escape sequence", text)
        }
        ErrorKind::GroupNameInvalid | ErrorKind::GroupNameEmpty | ErrorKind::GroupNameUnexpectedEof => {
            syntax_error("invalid named capture", text)
        }
        ErrorKind::NestLimitExceeded(_) => syntax_error("expression nests too deeply", pattern),
        _ => syntax_error("invalid or unsupported Perl syntax", text),
    }
}

/// Regexp.FindAllStringIndex(s, n): n < 0 finds all.
fn find_all(re: &Regex, s: &str, n: i64) -> Vec<(usize, usize)> {
    let limit = if n < 0 { usize::MAX } else { n as usize };
    re.find_iter(s).take(limit).map(|m| (m.start(), m.end())).collect()
}

/// ReplaceAllString (`$1`, `${name}` expanded) or ReplaceAllLiteralString.
fn replace_all(re: &Regex, s: &str, replacement: &str, expand: bool) -> String {
    if expand {
        re.replace_all(s, replacement).into_owned()
    } else {
        re.replace_all(s, regex::NoExpand(replacement)).into_owned()
    }
}

/// Regexp.Split(s, n).
fn split(re: &Regex, pattern: &str, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !pattern.is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut parts = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for (start, stop) in find_all(re, s, n) {
        if n > 0 && parts.len() as i64 == n - 1 {
            break;
        }
        end = start;
        if stop != 0 {
            parts.push(s[begin..end].to_string());
        }
        begin = stop;
    }
    if end != s.len() {
        parts.push(s[begin..].to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::compile;

    #[test]
    fn a_cached_pattern_compiles_and_fails_as_the_first_time() {
        for _ in 0..2 {
            let digits = compile(r"^\d+$").unwrap();
            assert!(digits.is_match("123") && !digits.is_match("١٢٣"), "Go's \\d is ASCII");
            assert!(compile(r"^[a-z]+$").unwrap().is_match("abc"), "another pattern is not the cached one");
            assert_eq!(compile("a**").unwrap_err(), "error parsing regexp: invalid nested repetition operator: `**`");
        }
    }
}
