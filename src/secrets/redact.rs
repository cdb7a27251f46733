//! The program's one mechanism for keeping decrypted values out of output.
//!
//! Every decrypted value is registered; any text shown to a user (diffs, logs, errors from
//! other layers) goes through [`Redactor::redact`], which replaces each registered value with
//! `<redacted:XXXXXXXX>` (the first 8 hex digits of the value's SHA-256, so equal values are
//! recognisable and a changed value shows a different marker without revealing either).
//!
//! Two ways in: [`Redactor::redact`] for text (errors, logs), and [`Redactor::redact_value`] for
//! object trees before they are serialised (render output), which cannot be fooled by how the
//! serialiser quotes or escapes a string.
//!
//! Rule for short values: strings of 2 or 3 characters are matched only as whole words (not
//! inside longer words); single characters and numbers of fewer than [`MIN_LEN`] digits are not
//! matched in text, as replacing every `1` or `80` would make output unreadable. In trees, a
//! string that *equals* a decrypted value is replaced whatever its length. Secret
//! `data`/`stringData` values are masked structurally regardless of length. Booleans and nulls
//! are never registered.
//!
//! Besides each value, its standard base64 encoding (templates often `b64encode`), its JSON
//! and YAML single-quoted escapings and, for multi-line values, each trimmed line (templates
//! re-indent them with `indent`/`nindent`) are registered; lines shorter than [`MIN_LEN`] are
//! skipped like short values.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use sha2::{Digest, Sha256};

/// Values shorter than this (in characters) are not redacted; see the module docs.
pub const MIN_LEN: usize = 4;

/// The marker shown in place of `value`.
pub fn marker(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("<redacted:{}>", &hex::encode(digest)[..8])
}

/// Shared, cheap to clone (an `Arc`), usable from any thread.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    patterns: Vec<String>,
    known: HashSet<String>,
    /// Every registered value as it was decrypted, whatever its length.
    exact: HashSet<String>,
    /// Strings of 2 to MIN_LEN-1 characters, matched in text only as whole words.
    short: Vec<String>,
    /// Built on first use after a registration.
    matcher: Option<Arc<Matcher>>,
}

struct Matcher {
    automaton: AhoCorasick,
    markers: Vec<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a value and the forms it commonly takes in output.
    pub fn register(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.exact.insert(value.to_owned());
        let length = value.chars().count();
        if length < MIN_LEN {
            // A short number is not matched in text, whether it came as a number or a string:
            // every `12` of a report (a revision, a count) would go, and JSON with it.
            let number = value.bytes().all(|b| b.is_ascii_digit());
            if length >= 2 && !number && !inner.short.iter().any(|v| v == value) {
                inner.short.push(value.to_owned());
            }
            return;
        }
        let mut forms = vec![value.to_owned(), base64::engine::general_purpose::STANDARD.encode(value)];
        let json = serde_json::to_string(value).expect("strings always serialise");
        forms.push(json[1..json.len() - 1].to_owned());
        forms.push(value.replace('\'', "''"));
        if value.contains('\n') {
            forms.extend(value.lines().map(|l| l.trim().to_owned()));
        }
        for form in forms {
            if form.chars().count() >= MIN_LEN && inner.known.insert(form.clone()) {
                inner.patterns.push(form);
                inner.matcher = None;
            }
        }
    }

    /// Whether nothing was registered, so there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).exact.is_empty()
    }

    /// Registers every string and number leaf of a tree (keys are not secret). Numbers shorter
    /// than MIN_LEN digits (ports, counts) are not secrets worth hiding every `1` or `80` for.
    pub fn register_tree(&self, tree: &serde_json::Value) {
        match tree {
            serde_json::Value::String(s) => self.register(s),
            serde_json::Value::Number(n) if n.to_string().len() >= MIN_LEN => self.register(&n.to_string()),
            serde_json::Value::Number(_) => {}
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.register_tree(v)),
            serde_json::Value::Object(map) => map.values().for_each(|v| self.register_tree(v)),
            serde_json::Value::Bool(_) | serde_json::Value::Null => {}
        }
    }

    /// Registers the values of a Secret's `data` (each as its decoded text, or as the base64
    /// text when it does not decode to UTF-8) and `stringData`.
    pub fn register_secret_data(&self, secret: &serde_json::Value) {
        let data = secret.get("data").and_then(serde_json::Value::as_object);
        for value in data.into_iter().flat_map(|d| d.values()).filter_map(serde_json::Value::as_str) {
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(crate::manifest::unwrapped_base64(value)).ok();
            match decoded.and_then(|bytes| String::from_utf8(bytes).ok()) {
                Some(plain) => self.register(&plain),
                None => self.register(value),
            }
        }
        if let Some(plain) = secret.get("stringData") {
            self.register_tree(plain);
        }
    }

    /// `text` with every registered value replaced by its marker; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = match self.matcher() {
            Some(matcher) if matcher.automaton.is_match(text) => {
                Cow::Owned(matcher.automaton.replace_all(text, &matcher.markers))
            }
            _ => Cow::Borrowed(text),
        };
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        for value in &inner.short {
            if let Some(replaced) = replace_whole_words(&out, value) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    /// Redacts a tree in place: a string or number leaf equal to a registered value becomes
    /// its marker (any length); registered values inside longer strings are replaced as in
    /// [`Redactor::redact`]. Returns how many leaves changed.
    pub fn redact_value(&self, value: &mut serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(s) => match self.redacted_string(s) {
                Some(redacted) => {
                    *s = redacted;
                    1
                }
                None => 0,
            },
            serde_json::Value::Number(n) => match self.redacted_number(n) {
                Some(redacted) => {
                    *value = serde_json::Value::String(redacted);
                    1
                }
                None => 0,
            },
            serde_json::Value::Array(items) => items.iter_mut().map(|v| self.redact_value(v)).sum(),
            serde_json::Value::Object(map) => map.values_mut().map(|v| self.redact_value(v)).sum(),
            serde_json::Value::Bool(_) | serde_json::Value::Null => 0,
        }
    }

    /// Whether [`Redactor::redact_value`] would change any leaf of `value`, without copying it.
    pub fn finds_in(&self, value: &serde_json::Value) -> bool {
        if self.is_empty() {
            return false;
        }
        match value {
            serde_json::Value::String(s) => self.redacted_string(s).is_some(),
            serde_json::Value::Number(n) => self.redacted_number(n).is_some(),
            serde_json::Value::Array(items) => items.iter().any(|v| self.finds_in(v)),
            serde_json::Value::Object(map) => map.values().any(|v| self.finds_in(v)),
            serde_json::Value::Bool(_) | serde_json::Value::Null => false,
        }
    }

    /// A string leaf as redaction leaves it, when that differs: a marker for a whole decrypted
    /// value, else the string with the decrypted values inside it masked.
    fn redacted_string(&self, s: &str) -> Option<String> {
        if self.inner.read().unwrap_or_else(PoisonError::into_inner).exact.contains(s) {
            return Some(marker(s));
        }
        match self.redact(s) {
            Cow::Owned(redacted) if redacted != s => Some(redacted),
            _ => None,
        }
    }

    /// A number leaf that is a decrypted value, as its marker.
    fn redacted_number(&self, n: &serde_json::Number) -> Option<String> {
        let text = n.to_string();
        self.inner.read().unwrap_or_else(PoisonError::into_inner).exact.contains(&text).then(|| marker(&text))
    }

    fn matcher(&self) -> Option<Arc<Matcher>> {
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(matcher) = &inner.matcher {
                return Some(matcher.clone());
            }
            if inner.patterns.is_empty() {
                return None;
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.patterns.is_empty() {
            return None;
        }
        if inner.matcher.is_none() {
            // Leftmost-longest: where registered values overlap, the longest one is replaced
            // whole, so no fragment of it survives.
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&inner.patterns)
                .expect("literal patterns always build");
            let markers = inner.patterns.iter().map(|p| marker(p)).collect();
            inner.matcher = Some(Arc::new(Matcher { automaton, markers }));
        }
        inner.matcher.clone()
    }
}

/// `text` with each occurrence of `word` that is not part of a longer word replaced by its
/// marker, or `None` when there is none.
fn replace_whole_words(text: &str, word: &str) -> Option<String> {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::new();
    let mut last = 0;
    for (at, _) in text.match_indices(word) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if at >= last && !is_word(before) && !is_word(after) {
            out.push_str(&text[last..at]);
            out.push_str(&marker(word));
            last = at + word.len();
        }
    }
    (last > 0).then(|| out + &text[last..])
}

/// Replaces the values of a Secret's `data` (base64) and `stringData` with markers of the
/// plaintext, so output can still tell which keys changed without showing any value. Returns how
/// many values it replaced.
pub fn redact_secret_object(object: &mut serde_json::Value) -> usize {
    let is_secret = object.get("kind").and_then(|k| k.as_str()) == Some("Secret")
        && object.get("apiVersion").and_then(|v| v.as_str()) == Some("v1");
    if !is_secret {
        return 0;
    }
    let mut replaced = 0;
    for (field, base64_encoded) in [("data", true), ("stringData", false)] {
        let Some(serde_json::Value::Object(entries)) = object.get_mut(field) else { continue };
        for value in entries.values_mut() {
            let Some(text) = value.as_str() else { continue };
            let plain = if base64_encoded {
                base64::engine::general_purpose::STANDARD
                    .decode(crate::manifest::unwrapped_base64(text))
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|_| text.to_string())
            } else {
                text.to_string()
            };
            *value = serde_json::Value::String(marker(&plain));
            replaced += 1;
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated Secret's value longer than 51 bytes is base64 in lines of 70, as kustomize
    /// writes it: its plaintext is what is registered and marked, as for one line.
    #[test]
    fn wrapped_base64_values_are_decoded_as_the_server_decodes_them() {
        let plain = "x".repeat(52);
        let wrapped = format!("{}eA\n==\n", "eHh4".repeat(17));
        let mut secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": wrapped}});
        let redactor = Redactor::new();
        redactor.register_secret_data(&secret);
        assert_eq!(redactor.redact(&format!("token {plain}")), format!("token {}", marker(&plain)));
        assert_eq!(redact_secret_object(&mut secret), 1);
        assert_eq!(secret["data"]["k"], marker(&plain));
    }
}
