//! YAML in and out. Input goes through serde-saphyr (a maintained successor of the archived
//! serde_yaml) so that every error has a line and column; output goes through `emit`, which
//! quotes whatever a YAML 1.1 reader (kubectl, helm) would read differently.

pub mod duplicates;
pub mod emit;
pub mod empty;
pub mod events;
pub(crate) mod folded;
pub(crate) mod go;
pub mod helm;
pub mod nodes;
pub mod resolve;
pub mod scalars;
pub(crate) mod subset;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use weaver_core::error::{Error, Location, Result};

pub use emit::{to_yaml_string, write_yaml};

/// weaver's parser settings: messages carry the line and column, never a source snippet
/// (it would span lines, and could show a secret); comments are not kept, so any number of
/// comment lines may stand before a key (kept, they are buffered against a limit of 96).
pub fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.emit_comments = false;
    options
}

/// serde-saphyr's error in weaver's words: the location in front (serde-saphyr appends
/// " at line L, column C"), no library advice, and never a scalar of the file (serde's
/// "invalid type: string \"…\"" would show a token of a kubeconfig or a value of a Secret).
fn located(path: &Path, text: &str, err: serde_saphyr::Error, what: &str) -> Error {
    use serde_saphyr::Error as E;
    let err = err.without_snippet();
    let location = match err.location() {
        Some(loc) => Location::at(path, loc.line(), loc.column()),
        None => Location::file(path),
    };
    let message = match err {
        E::DuplicateMappingKey { key: Some(key), location } => {
            match first_definition(text, key, location.line() as usize, location.column() as usize) {
                Some(first) => format!("duplicate key `{key}` (first defined at line {first})"),
                None => format!("duplicate key `{key}`"),
            }
        }
        E::DuplicateMappingKey { key: None, .. } => "duplicate key".to_string(),
        E::InvalidScalar { ty, .. } => format!("expected {}", expected_scalar(ty)),
        E::InvalidBooleanStrict { .. } => "expected true or false".to_string(),
        E::NullIntoString { .. } => "expected a string, found null".to_string(),
        E::SerdeInvalidType { unexpected, expected, .. } | E::SerdeInvalidValue { unexpected, expected, .. } => {
            format!("expected {expected}, found {}", kind_of(unexpected))
        }
        other => {
            let text = other.to_string();
            let message = match text.rfind(" at line ") {
                Some(i) => &text[..i],
                None => &text,
            };
            // Parser jargon, in the words of the file's author.
            message
                .replace("expected sequence start", "expected a list")
                .replace("expected mapping start", "expected a mapping")
                .replace("expected string scalar", "expected a string")
        }
    };
    Error::at(location, format!("{what}: {message}"))
}

/// A Rust scalar type in the words of the file's author.
fn expected_scalar(ty: &str) -> String {
    match ty {
        "bool" => "true or false".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "char" => "a single character".to_string(),
        _ if ty.starts_with('u') && ty[1..].parse::<u8>().is_ok() => "a whole number, not negative".to_string(),
        _ if ty.starts_with('i') && ty[1..].parse::<u8>().is_ok() => "a whole number".to_string(),
        other => format!("a {other}"),
    }
}

/// `string "hunter2"` → `a string`: what serde found, without the value itself.
fn kind_of(unexpected: &str) -> String {
    let kind = unexpected.split([' ', '"', '`', '\'']).next().unwrap_or(unexpected);
    match kind {
        "integer" | "enum" => format!("an {kind}"),
        "floating" => "a number".to_string(),
        "unit" => "null".to_string(),
        "map" => "a mapping".to_string(),
        "" | "Option" => "a value".to_string(),
        _ => format!("a {kind}"),
    }
}

/// The line where a block mapping first defines `key`, for a duplicate at `line`:`column`
/// (serde-saphyr only reports the second one). Searches upwards for the same key at the same
/// column, stopping at the enclosing mapping.
fn first_definition(text: &str, key: &str, line: usize, column: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    for n in (1..line.min(lines.len() + 1)).rev() {
        let raw = lines[n - 1];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut col = raw.len() - trimmed.len() + 1;
        let mut content = trimmed;
        while let Some(rest) = content.strip_prefix("- ") {
            let rest_trimmed = rest.trim_start();
            col += content.len() - rest_trimmed.len();
            content = rest_trimmed;
        }
        if col < column {
            return None;
        }
        let name = content.split(':').next().unwrap_or("").trim().trim_matches(['"', '\'']);
        if col == column && name == key && content.contains(':') {
            return Some(n);
        }
    }
    None
}

/// Deserializes one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    from_str_as(path, text, "invalid YAML")
}

/// Like `from_str`, for configuration files whose schema errors read better as `invalid <what>`.
/// Text in the common subset is read directly ([`nodes`]); the rest, and every error, by
/// serde-saphyr.
pub fn from_str_as<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<T> {
    let options = options();
    if let Some(value) = nodes::read(text, &options) {
        return Ok(value);
    }
    serde_saphyr::from_str_with_options(text, options).map_err(|e| located(path, text, e, what))
}

/// [`from_str_as`] for files Go programs read with sigs.k8s.io/yaml into a struct
/// (kustomize's): go-yaml v2's types, then `encoding/json`'s rules (see `go`). The text is
/// first read as every configuration file is, for its syntax errors and duplicate keys.
pub fn from_str_as_go<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<T> {
    go_with(path, text, what, options())
}

/// [`from_str_as_go`] as sigs.k8s.io/yaml's `Unmarshal` (not `UnmarshalStrict`) reads: of two
/// equal keys of one mapping the later's value is kept, as kustomize reads a kustomization.
pub fn from_str_as_go_last_key_wins<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<T> {
    let mut options = options();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    go_with(path, text, what, options)
}

fn go_with<T: DeserializeOwned>(path: &Path, text: &str, what: &str, options: serde_saphyr::Options) -> Result<T> {
    if nodes::read::<serde::de::IgnoredAny>(text, &options).is_none() {
        serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(text, options)
            .map_err(|e| located(path, text, e, what))?;
    }
    let (value, positions) = crate::helm::from_str_positioned(text).map_err(|e| {
        let location = e.line.map_or_else(|| Location::file(path), |line| Location::at(path, line as u64, 0));
        Error::at(location, format!("{what}: {}", e.message))
    })?;
    go::decode(path, &value.unwrap_or_default(), &positions, what)
}

/// Every document of a configuration file that may hold several (a kubeconfig), as `T`.
pub fn documents_as<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<Vec<T>> {
    documents_as_with(path, text, what, options())
}

/// [`documents_as`] with go-yaml v3's types, as [`documents_kyaml`] reads them: helmfile v1's
/// files (`on:` and `n` stay strings, `0777` is octal).
pub fn documents_as_kyaml<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<Vec<T>> {
    documents_as_with(path, text, what, kyaml_options())
}

fn documents_as_with<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    what: &str,
    options: serde_saphyr::Options,
) -> Result<Vec<T>> {
    serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| located(path, text, e, what))
}

/// Parses a multi-document stream; empty documents are dropped, as kubectl and helm do.
/// The parser's anti-abuse budget is scaled to the input, so that a `kubectl get -o yaml` of
/// thousands of objects reads, while alias bombs stay bounded.
pub fn documents(path: &Path, text: &str) -> Result<Vec<Value>> {
    documents_with(path, text, options())
}

/// [`documents`] as kustomize's kyaml (go-yaml v3) reads them: only `true` and `false` are
/// booleans (`yes` is a string), and `0755` is octal, as in `defaultMode: 0755`.
pub fn documents_kyaml(path: &Path, text: &str) -> Result<Vec<Value>> {
    let mut docs = documents_with(path, text, kyaml_options())?;
    empty::as_kyaml_reads(text, &mut docs, false);
    Ok(docs)
}

/// [`documents_kyaml`] as a kustomize build reads its resources: folded scalars as the build
/// ends up with them (see `folded`), and the JSON pointers of each document's empty mapping
/// values (which a strategic merge clears: see [`empty`]), from one read of the text's events.
pub fn documents_kustomize(path: &Path, text: &str) -> Result<(Vec<Value>, Vec<Vec<String>>)> {
    let mut docs = documents_with(path, text, kyaml_options())?;
    let empty = empty::as_kyaml_reads(text, &mut docs, true);
    Ok((docs, empty))
}

fn kyaml_options() -> serde_saphyr::Options {
    let mut options = options();
    options.strict_booleans = true;
    options.legacy_octal_numbers = true;
    options
}

fn documents_with(path: &Path, text: &str, options: serde_saphyr::Options) -> Result<Vec<Value>> {
    let mut docs = parsed_documents(path, text, options)?;
    end_unbroken_block_scalar(text, &mut docs);
    Ok(docs)
}

/// A block scalar that runs to the end of input without a line break (the last value of a
/// patch inlined with `|-`) ends without one in go-yaml, as YAML says; granit-parser gives it
/// one. The last value of the last document is that scalar when it ends in the file's last
/// line followed by a line break that the file does not have (a quoted or plain scalar cannot
/// end in a raw line break).
pub fn end_unbroken_block_scalar(text: &str, docs: &mut [Value]) {
    if text.ends_with('\n') {
        return;
    }
    let last_line = text.rsplit('\n').next().unwrap_or_default().trim_start();
    if last_line.trim().is_empty() {
        return;
    }
    let Some(mut value) = docs.last_mut() else { return };
    loop {
        value = match value {
            Value::Object(map) => match map.values_mut().last() {
                Some(last) => last,
                None => return,
            },
            Value::Array(items) => match items.last_mut() {
                Some(last) => last,
                None => return,
            },
            _ => break,
        };
    }
    if let Value::String(scalar) = value
        && scalar.strip_suffix('\n').is_some_and(|body| body.ends_with(last_line))
    {
        scalar.pop();
    }
}

fn parsed_documents(path: &Path, text: &str, mut options: serde_saphyr::Options) -> Result<Vec<Value>> {
    if let Some(docs) = subset::documents(text, &options) {
        return Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect());
    }
    let mut budget = options.budget.clone().unwrap_or_default();
    // Each node or event needs at least a byte or two of input; documents at least `---\n`.
    budget.max_documents = budget.max_documents.max(text.len() / 4);
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len() * 2);
    options.budget = Some(budget);
    let under_indented_at = |e: &serde_saphyr::Error| {
        let location = e.location().filter(|_| e.to_string().contains(UNDER_INDENTED))?;
        usize::try_from(location.line()).ok()
    };
    let docs: Vec<Value> =
        leniently(text, |text| serde_saphyr::from_str_multiple_with_options(text, options.clone()), under_indented_at)
            .map_err(|e| located(path, text, e, "invalid YAML"))?;
    Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect())
}

/// granit-parser's refusal of a quoted scalar's continuation line indented no more than the
/// mapping that holds the scalar, which YAML 1.2 forbids and go-yaml accepts.
pub(crate) const UNDER_INDENTED: &str = "invalid indentation in multiline quoted scalar";

/// Reads `text` with `read`, as leniently as go-yaml: a quoted scalar whose continuation lines
/// are under-indented (CRDs generated with long single-quoted descriptions have them) is read
/// again with those lines indented enough. Folding drops a continuation line's leading spaces,
/// so the value is the same.
/// `under_indented_at` gives the (1-based) line of an error that is that refusal.
pub(crate) fn leniently<T, E>(
    text: &str,
    read: impl Fn(&str) -> std::result::Result<T, E>,
    under_indented_at: impl Fn(&E) -> Option<usize>,
) -> std::result::Result<T, E> {
    let mut indented: Option<String> = None;
    loop {
        let current = indented.as_deref().unwrap_or(text);
        match read(current) {
            // Each round indents at least one line more: the error moves on or is final.
            Err(e) => match under_indented_at(&e).and_then(|line| indent_continuation(current, line)) {
                Some(next) => indented = Some(next),
                None => return Err(e),
            },
            result => return result,
        }
    }
}

/// `text` with the continuation lines of the quoted scalar that line `line` (1-based)
/// continues indented one space more than the line the scalar starts on; None when there is
/// no such scalar or nothing to indent.
fn indent_continuation(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bad = line.checked_sub(1).filter(|&bad| bad < lines.len())?;
    let (start, quote) = (0..bad).rev().find_map(|i| opening_quote(lines[i]).map(|quote| (i, quote)))?;
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let wanted = indent(lines[start]) + 1;
    let mut out = String::with_capacity(text.len() + 256);
    let mut changed = false;
    let mut open = true;
    for (i, l) in lines.iter().enumerate() {
        if i > start && open {
            if !l.trim().is_empty() && indent(l) < wanted {
                emit::push_indent(&mut out, wanted - indent(l));
                changed = true;
            }
            open = closing(l, quote).is_none();
        }
        out.push_str(l);
    }
    changed.then_some(out)
}

/// The quote (`'` or `"`) of a quoted scalar that starts on `line` as a value (`key: '…`,
/// `- "…`) and does not end on it.
fn opening_quote(line: &str) -> Option<char> {
    let mut rest = line.trim_start();
    while let Some(item) = rest.strip_prefix("- ") {
        rest = item.trim_start();
    }
    if !rest.starts_with(['\'', '"']) {
        rest = rest.split_once(": ")?.1.trim_start();
    }
    let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    closing(&rest[1..], quote).is_none().then_some(quote)
}

/// Where the scalar quoted by `quote` ends in `text` (which follows its opening quote or a line
/// break inside it): `''` is a quote in a single-quoted scalar, `\` escapes in a double-quoted one.
fn closing(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            '\'' if quote == '\'' && chars.peek().is_some_and(|&(_, next)| next == '\'') => {
                chars.next();
            }
            c if c == quote => return Some(at),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        from_str::<T>(Path::new("f.yaml"), text).unwrap_err().to_string()
    }

    #[test]
    fn a_duplicate_key_names_both_lines_in_weavers_words() {
        let text = "a: 1\nb:\n  c: 1\n  # note\n  d: 2\n  c: 3\n";
        assert_eq!(error::<Value>(text), "f.yaml:6:3: invalid YAML: duplicate key `c` (first defined at line 3)");
        let text = "items:\n  - name: x\n    name: y\n";
        assert_eq!(error::<Value>(text), "f.yaml:3:5: invalid YAML: duplicate key `name` (first defined at line 2)");
    }

    #[test]
    fn long_comment_blocks_are_skipped() {
        let text = format!("a:\n{}  b: 1\n", "  # commented-out example\n".repeat(500));
        assert_eq!(from_str::<Value>(Path::new("f.yaml"), &text).unwrap(), serde_json::json!({"a": {"b": 1}}));
    }

    #[test]
    fn a_type_error_says_what_was_found_but_not_the_value() {
        assert_eq!(kind_of("string \"SEEDTOKEN-4f1c9a7e\""), "a string");
        assert_eq!(kind_of("integer `5`"), "an integer");
        assert_eq!(kind_of("floating point `1.5`"), "a number");
        assert_eq!(
            error::<Vec<u32>>("- SEEDTOKEN-4f1c9a7e\n"),
            "f.yaml:1:3: invalid YAML: expected a whole number, not negative"
        );
        assert_eq!(error::<Vec<String>>("- [a]\n"), "f.yaml:1:3: invalid YAML: expected a string");
    }

    #[test]
    fn a_block_scalar_at_the_end_of_input_without_a_line_break_ends_without_one() {
        use serde_json::json;
        let read = |text: &str| documents(Path::new("f.yaml"), text).unwrap();
        assert_eq!(read("a: |\n  x\n  }]"), vec![json!({"a": "x\n}]"})]);
        assert_eq!(read("- op: add\n  value: >\n    one\n    two"), vec![json!([{"op": "add", "value": "one two"}])]);
        // With the line break, or when the last value is not a block scalar, nothing changes.
        assert_eq!(read("a: |\n  x\n  }]\n"), vec![json!({"a": "x\n}]\n"})]);
        assert_eq!(read("a: |\n  x\nb: \"x\\n\""), vec![json!({"a": "x\n", "b": "x\n"})]);
        assert_eq!(read("a: |\n  x\n  # comment"), vec![json!({"a": "x\n# comment"})]);
    }
}
