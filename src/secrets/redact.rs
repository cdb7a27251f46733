//! The program's one mechanism for keeping decrypted values out of output.
//!
//! Every decrypted value is registered; any text shown to a user (diffs, logs, errors from
//! other layers) goes through [`Redactor::redact`], which replaces each registered value with
//! `<redacted:XXXXXXXX>` (the first 8 hex digits of the value's SHA-256, so equal values are
//! recognisable and a changed value shows a different marker without revealing either).
//!
//! Rule for short values: values shorter than [`MIN_LEN`] characters are not registered.
//! Replacing `1`, `true` or `yes` everywhere would make output unreadable and protects nothing:
//! such values are guessable anyway. Secret `data`/`stringData` values are masked structurally
//! by the diff layer regardless of length. Booleans and nulls are never registered.
//!
//! Besides each value, its standard base64 encoding (templates often `b64encode`), its JSON
//! string escaping (JSON output) and, for multi-line values, each trimmed line (templates
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
        if value.chars().count() < MIN_LEN {
            return;
        }
        let mut forms = vec![value.to_owned(), base64::engine::general_purpose::STANDARD.encode(value)];
        let json = serde_json::to_string(value).expect("strings always serialise");
        forms.push(json[1..json.len() - 1].to_owned());
        if value.contains('\n') {
            forms.extend(value.lines().map(|l| l.trim().to_owned()));
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        for form in forms {
            if form.chars().count() >= MIN_LEN && inner.known.insert(form.clone()) {
                inner.patterns.push(form);
                inner.matcher = None;
            }
        }
    }

    /// Registers every string and number leaf of a tree (keys are not secret).
    pub fn register_tree(&self, tree: &serde_json::Value) {
        match tree {
            serde_json::Value::String(s) => self.register(s),
            serde_json::Value::Number(n) => self.register(&n.to_string()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| self.register_tree(v)),
            serde_json::Value::Object(map) => map.values().for_each(|v| self.register_tree(v)),
            serde_json::Value::Bool(_) | serde_json::Value::Null => {}
        }
    }

    /// `text` with every registered value replaced by its marker; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(matcher) = self.matcher() else {
            return Cow::Borrowed(text);
        };
        if matcher.automaton.is_match(text) {
            Cow::Owned(matcher.automaton.replace_all(text, &matcher.markers))
        } else {
            Cow::Borrowed(text)
        }
    }

    fn matcher(&self) -> Option<Arc<Matcher>> {
        if let Some(matcher) = &self.inner.read().unwrap_or_else(PoisonError::into_inner).matcher {
            return Some(matcher.clone());
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

/// Replaces the values of a Secret's `data` (base64) and `stringData` with markers of the
/// plaintext, so output can still tell which keys changed without showing any value.
pub fn redact_secret_object(object: &mut serde_json::Value) {
    let is_secret = object.get("kind").and_then(|k| k.as_str()) == Some("Secret")
        && object.get("apiVersion").and_then(|v| v.as_str()) == Some("v1");
    if !is_secret {
        return;
    }
    for (field, base64_encoded) in [("data", true), ("stringData", false)] {
        let Some(serde_json::Value::Object(entries)) = object.get_mut(field) else { continue };
        for value in entries.values_mut() {
            let Some(text) = value.as_str() else { continue };
            let plain = if base64_encoded {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|_| text.to_string())
            } else {
                text.to_string()
            };
            *value = serde_json::Value::String(marker(&plain));
        }
    }
}
