//! The program's one mechanism for keeping decrypted values out of output.
//!
//! Every decrypted value is registered; any text shown to a user (diffs, logs, errors from
//! other layers) goes through [`Redactor::redact`], which replaces each registered value with
//! `<redacted:XXXXXXXX>`: the first 8 hex digits of an HMAC-SHA256 of the replaced text under a
//! secret key, so that a marker cannot be used to confirm a guessed value (an unkeyed digest of
//! a weak password can be brute-forced). An environment's markers are keyed by its age
//! identities ([`Redactor::keyed`], [`crate::Identities::marker_key`]): stable from run
//! to run for whoever holds them, so a marker changes exactly when its value does. Without an
//! identity the key is drawn at random for each [`Redactor`] (each run).
//!
//! Two ways in: [`Redactor::redact`] for text (errors, logs), and [`Redactor::redact_value`] for
//! object trees before they are serialised (render output), which cannot be fooled by how the
//! serialiser quotes or escapes a string. In a tree, a string or number leaf *equal* to a
//! registered value becomes its marker whatever the value; any other string leaf is redacted as
//! text. Secret `data`/`stringData` values are masked structurally whatever they hold
//! ([`Redactor::redact_secret_object`]). Booleans and nulls are never registered.
//!
//! What is matched in text depends on the value:
//!
//! - *Strong* values (at least [`STRONG_LEN`] characters, and neither only ASCII digits nor only
//!   lowercase ASCII letters) are matched anywhere, and through the transformations templates
//!   apply: their exact forms (the value, its standard base64, its JSON and YAML single-quoted
//!   escapings), and any span whose letters and digits, lowercased, are the value's letters and
//!   digits, lowercased (case changes, `replace` of separators, quoting and escaping); when that
//!   folded form has fewer than [`STRONG_LEN`] characters only the exact forms are matched.
//! - *Weak* values (a port, `default`, a short word) are not secrets in practice, and matching
//!   them inside words rewrote other objects' names and ports: they are matched only as a whole
//!   token, preceded by the start of the text, whitespace, a quote, a bracket, `,`, `;`, `=` or `:`
//!   and followed by its end, whitespace, a quote, a bracket, `,`, `;`, `@`, `&` or `\`. So
//!   `user:q7z` and `port: 8080` are matched, `default-token`, `defaults` and `http://x:8080/path`
//!   are not. Single characters and numbers of fewer than [`MIN_LEN`] digits are not matched in
//!   text at all, as replacing every `1` or `80` would make output unreadable.
//! - Base64: every token of at least [`MIN_BASE64_TOKEN`] characters of the standard or URL-safe
//!   alphabet (with its `=` padding) is decoded; when the decoded text holds a registered value,
//!   matched by these same rules (to a depth of [`MAX_BASE64_DEPTH`] encodings), the whole token
//!   is replaced. That catches `printf "%s:%s" user .Values.key | b64enc` (basic auth, a
//!   dockerconfigjson `auth`) and `b64enc | b64enc`. A token is decoded at the first of its 4
//!   alignments that gives text (the others of text's base64 give bytes that are not); when none
//!   does (binary data, a prefix that is not base64 of the same text), a strong value is found
//!   there as it was decrypted, not through case or separators; a weak value only in a token
//!   that decodes to text.
//!
//! Not detected: a hash or an encryption of a value, a part of it, other encodings (hex,
//! base32), letters replaced or reordered, a weak value in base64 sharing its token with other
//! characters, a strong one under more than one level of such base64. Everything detected is
//! replaced where it stands, so nothing detected needs an object refused. For multi-line values
//! each trimmed line is also registered as a value of its own (templates re-indent them with
//! `indent`/`nindent`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::AhoCorasick;
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use rand::rngs::OsRng;

use crate::hmac::HmacSha256;

/// Numbers of fewer digits, and single characters, are not matched in text; see the module docs.
pub const MIN_LEN: usize = 4;
/// Values shorter than this (in characters) are weak, matched in text only as whole tokens.
pub const STRONG_LEN: usize = 8;
/// Base64 tokens shorter than this are not decoded (the base64 of 4 bytes is 8 characters).
pub const MIN_BASE64_TOKEN: usize = 8;
/// How many base64 encodings deep a value is looked for (`b64enc | b64enc | b64enc`).
pub const MAX_BASE64_DEPTH: usize = 3;

/// Padding is stripped before decoding, and a token cut at an alignment may end mid-byte.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireNone)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Shared, cheap to clone (an `Arc`), usable from any thread. Clones share the registered
/// values and the marker key; [`Redactor::keyed`] shares the values under another key.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
    key: Arc<HmacSha256>,
}

impl Default for Redactor {
    fn default() -> Redactor {
        let mut key = [0; 32];
        OsRng.fill_bytes(&mut key);
        Redactor { inner: Arc::default(), key: Arc::new(HmacSha256::new(&key)) }
    }
}

#[derive(Default)]
struct Inner {
    /// Every registered value as it was decrypted, whatever its length.
    exact: HashSet<String>,
    /// Strong values' exact forms, matched anywhere.
    strong: Patterns,
    /// Strong values folded (see [`fold`]), matched in folded text.
    folded: Patterns,
    /// Weak values and their escapings, matched as whole tokens.
    weak: Patterns,
    /// Built on first use after a registration.
    matcher: Option<Arc<Matcher>>,
}

#[derive(Default)]
struct Patterns {
    list: Vec<String>,
    known: HashSet<String>,
}

impl Patterns {
    /// Adds `pattern`; whether it is new.
    fn add(&mut self, pattern: String) -> bool {
        let new = self.known.insert(pattern.clone());
        if new {
            self.list.push(pattern);
        }
        new
    }

    /// An automaton reporting every match, overlapping ones included: where registered values
    /// overlap, the union of their spans is replaced, so no fragment of either survives.
    fn automaton(&self) -> Option<AhoCorasick> {
        (!self.list.is_empty()).then(|| AhoCorasick::new(&self.list).expect("literal patterns always build"))
    }
}

struct Matcher {
    strong: Option<AhoCorasick>,
    folded: Option<AhoCorasick>,
    weak: Option<AhoCorasick>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// This redactor's registered values (present and future) with markers keyed by `key`:
    /// an environment's, derived from its identities.
    pub fn keyed(&self, key: [u8; 32]) -> Redactor {
        Redactor { inner: Arc::clone(&self.inner), key: Arc::new(HmacSha256::new(&key)) }
    }

    /// The marker shown in place of `value` under this redactor's key.
    pub fn marker(&self, value: &str) -> String {
        format!("<redacted:{}>", &hex::encode(self.key.mac(value.as_bytes()))[..8])
    }

    /// Registers a value and the forms it commonly takes in output.
    pub fn register(&self, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if !inner.exact.insert(value.to_owned()) {
            return;
        }
        inner.add(value);
        if value.contains('\n') {
            value.lines().for_each(|line| inner.add(line.trim()));
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
                base64::engine::general_purpose::STANDARD.decode(weaver_core::manifest::unwrapped_base64(value)).ok();
            match decoded.and_then(|bytes| String::from_utf8(bytes).ok()) {
                Some(plain) => self.register(&plain),
                None => self.register(value),
            }
        }
        if let Some(plain) = secret.get("stringData") {
            self.register_tree(plain);
        }
    }

    /// `err`'s message with its location, then `help: …`, with every value known here replaced:
    /// how a report, a status or an event quotes an error.
    pub fn error(&self, err: &weaver_core::Error) -> String {
        let text = match &err.help {
            Some(help) => format!("{err}\nhelp: {help}"),
            None => err.to_string(),
        };
        self.redact(&text).into_owned()
    }

    /// `text` with every registered value replaced by a marker; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(matcher) = self.matcher() else { return Cow::Borrowed(text) };
        let spans = matcher.spans(text, 0);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for span in spans {
            out.push_str(&text[last..span.start]);
            out.push_str(&self.marker(&text[span.clone()]));
            last = span.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
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
            return Some(self.marker(s));
        }
        match self.redact(s) {
            Cow::Owned(redacted) => Some(redacted),
            Cow::Borrowed(_) => None,
        }
    }

    /// A number leaf that is a decrypted value, as its marker.
    fn redacted_number(&self, n: &serde_json::Number) -> Option<String> {
        let text = n.to_string();
        self.inner.read().unwrap_or_else(PoisonError::into_inner).exact.contains(&text).then(|| self.marker(&text))
    }

    /// Replaces the values of a Secret's `data` (base64) and `stringData` with markers of the
    /// plaintext, whatever they hold, so output can still tell which keys changed without
    /// showing any value. Returns how many values it replaced.
    pub fn redact_secret_object(&self, object: &mut serde_json::Value) -> usize {
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
                        .decode(weaver_core::manifest::unwrapped_base64(text))
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_else(|_| text.to_string())
                } else {
                    text.to_string()
                };
                *value = serde_json::Value::String(self.marker(&plain));
                replaced += 1;
            }
        }
        replaced
    }

    fn matcher(&self) -> Option<Arc<Matcher>> {
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(matcher) = &inner.matcher {
                return Some(matcher.clone());
            }
            if inner.is_unmatched() {
                return None;
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.is_unmatched() {
            return None;
        }
        if inner.matcher.is_none() {
            let matcher = Matcher {
                strong: inner.strong.automaton(),
                folded: inner.folded.automaton(),
                weak: inner.weak.automaton(),
            };
            inner.matcher = Some(Arc::new(matcher));
        }
        inner.matcher.clone()
    }
}

impl Inner {
    /// Whether no registered value is matched in text (none, or only single characters and
    /// short numbers).
    fn is_unmatched(&self) -> bool {
        self.strong.list.is_empty() && self.weak.list.is_empty()
    }

    /// Adds the patterns `value` is matched by in text; see the module docs.
    fn add(&mut self, value: &str) {
        let length = value.chars().count();
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        if length < 2 || (digits && length < MIN_LEN) {
            return;
        }
        let json = serde_json::to_string(value).expect("strings always serialise");
        let json = &json[1..json.len() - 1];
        // Go's encoding/json (Helm's toJson) also escapes `<`, `>` and `&`.
        let go_json = json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
        let forms = [value.to_owned(), json.to_owned(), go_json, value.replace('\'', "''")];
        let weak = length < STRONG_LEN || digits || value.bytes().all(|b| b.is_ascii_lowercase());
        let mut new = false;
        if weak {
            for form in forms {
                new |= self.weak.add(form);
            }
        } else {
            for form in forms.into_iter().chain([base64::engine::general_purpose::STANDARD.encode(value)]) {
                new |= self.strong.add(form);
            }
            let folded = fold(value);
            if folded.chars().count() >= STRONG_LEN {
                new |= self.folded.add(folded);
            }
        }
        if new {
            self.matcher = None;
        }
    }
}

impl Matcher {
    /// The byte ranges of `text` to replace, sorted, overlapping ones merged. `depth` counts the
    /// base64 encodings `text` was found under.
    fn spans(&self, text: &str, depth: usize) -> Vec<Range<usize>> {
        let mut spans = self.strong_spans(text);
        if let Some(weak) = &self.weak {
            let tokens = weak.find_overlapping_iter(text).filter(|m| is_token(text, m.range()));
            spans.extend(tokens.map(|m| m.range()));
        }
        if depth < MAX_BASE64_DEPTH && text.len() >= MIN_BASE64_TOKEN {
            spans.extend(
                base64_tokens(text)
                    .filter(|(token, engine)| self.in_base64(&text[token.clone()], engine, depth))
                    .map(|(token, _)| token),
            );
        }
        merge(spans)
    }

    /// The spans of strong values and their transformations.
    fn strong_spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut spans = Vec::new();
        if let Some(strong) = &self.strong {
            spans.extend(strong.find_overlapping_iter(text).map(|m| m.range()));
        }
        // An ASCII text folds to at most its own length: shorter than every folded value, it
        // holds none (most of a manifest's strings: names, labels, small numbers).
        let long_enough = |folded: &AhoCorasick| !text.is_ascii() || text.len() >= folded.min_pattern_len();
        if let Some(folded) = self.folded.as_ref().filter(|folded| long_enough(folded)) {
            let folded_text = fold(text);
            // Where each folded byte came from is worked out only for a text that holds a value:
            // most hold none, and the map is many times the text's size.
            if folded.is_match(&folded_text) {
                let origin = fold_origins(text);
                let found = folded.find_overlapping_iter(&folded_text);
                spans.extend(found.map(|m| origin[m.start()].start..origin[m.end() - 1].end));
            }
        }
        spans
    }

    /// Whether a base64 token decodes to something holding a registered value.
    fn in_base64(&self, token: &str, engine: &GeneralPurpose, depth: usize) -> bool {
        let digits = token.trim_end_matches('=');
        for skip in 0..4 {
            let Some(part) = digits.get(skip..) else { return false };
            // A length of 4n+1 is never base64: the last character is of a byte not all there.
            let part = &part[..part.len() - usize::from(part.len() % 4 == 1)];
            let Ok(bytes) = engine.decode(part) else { continue };
            match String::from_utf8(bytes) {
                // Text: this alignment is the token's own (another one of text's base64 decodes
                // to bytes that are not), so the others need no look.
                Ok(decoded) if skip == 0 && is_text(&decoded) => return !self.spans(&decoded, depth + 1).is_empty(),
                Ok(decoded) if is_text(&decoded) => return !self.strong_spans(&decoded).is_empty(),
                // Bytes that are not text (binary data, or another alignment of text's base64)
                // are searched for a value as it was encrypted, not through text's
                // transformations (case, separators).
                Ok(decoded) if self.strong.as_ref().is_some_and(|s| s.is_match(&decoded)) => return true,
                Err(e) if self.strong.as_ref().is_some_and(|s| s.is_match(e.as_bytes())) => return true,
                Ok(_) | Err(_) => {}
            }
        }
        false
    }
}

/// `text` lowercased with only its letters and digits kept.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.bytes().filter(u8::is_ascii_alphanumeric).map(|b| char::from(b.to_ascii_lowercase())).collect();
    }
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// For each byte of [`fold`]`(text)`, the range of the character of `text` it came from.
fn fold_origins(text: &str) -> Vec<Range<usize>> {
    let mut origin = Vec::new();
    for (at, c) in text.char_indices().filter(|(_, c)| c.is_alphanumeric()) {
        let folded: usize = c.to_lowercase().map(char::len_utf8).sum();
        origin.extend(std::iter::repeat_n(at..at + c.len_utf8(), folded));
    }
    origin
}

/// Whether `span` of `text` stands as a whole token; see the module docs.
fn is_token(text: &str, span: Range<usize>) -> bool {
    let separates = |c: char| c.is_whitespace() || "'\"`()[]{}<>,;".contains(c);
    let before = text[..span.start].chars().next_back();
    let after = text[span.end..].chars().next();
    before.is_none_or(|c| separates(c) || c == '=' || c == ':')
        && after.is_none_or(|c| separates(c) || c == '@' || c == '&' || c == '\\')
}

/// Decoded base64 that is text (no control characters but whitespace), not binary data in which
/// a short value would turn up by chance.
fn is_text(decoded: &str) -> bool {
    !decoded.chars().any(|c| c.is_control() && !c.is_whitespace())
}

/// The maximal runs of the standard and of the URL-safe base64 alphabet in `text`, with their
/// `=` padding, of at least [`MIN_BASE64_TOKEN`] characters, each with the engine to decode it.
fn base64_tokens(text: &str) -> impl Iterator<Item = (Range<usize>, &'static GeneralPurpose)> {
    let bytes = text.as_bytes();
    [(STANDARD_DIGIT, &STANDARD), (URL_SAFE_DIGIT, &URL_SAFE)].into_iter().flat_map(move |(alphabet, engine)| {
        let in_alphabet = move |b: &u8| BASE64_DIGITS[usize::from(*b)] & alphabet != 0;
        let mut at = 0;
        std::iter::from_fn(move || {
            loop {
                let start = at + bytes[at..].iter().position(in_alphabet)?;
                let run = bytes[start..].iter().take_while(|b| in_alphabet(b)).count();
                let padding = bytes[start + run..].iter().take_while(|b| **b == b'=').count();
                at = start + run + padding;
                // A run of letters and digits only is the same run in both alphabets: once is enough.
                let seen = alphabet == URL_SAFE_DIGIT
                    && bytes[start..start + run].iter().all(|b| BASE64_DIGITS[usize::from(*b)] & STANDARD_DIGIT != 0);
                if run + padding >= MIN_BASE64_TOKEN && !seen {
                    return Some((start..at, engine));
                }
            }
        })
    })
}

/// [`BASE64_DIGITS`]' bits: a digit of the standard alphabet (letters, digits, `+` and `/`), of
/// the URL-safe one (letters, digits, `-` and `_`).
const STANDARD_DIGIT: u8 = 1;
const URL_SAFE_DIGIT: u8 = 2;

/// Which base64 alphabets each byte is a digit of: a table, as [`base64_tokens`] asks it of every
/// byte of every string redacted.
static BASE64_DIGITS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() {
            table[b] = STANDARD_DIGIT | URL_SAFE_DIGIT;
        }
        b += 1;
    }
    table[b'+' as usize] = STANDARD_DIGIT;
    table[b'/' as usize] = STANDARD_DIGIT;
    table[b'-' as usize] = URL_SAFE_DIGIT;
    table[b'_' as usize] = URL_SAFE_DIGIT;
    table
};

/// `spans` sorted, with overlapping ones merged.
fn merge(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.sort_by_key(|s| s.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start < last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

#[cfg(test)]
mod tests {

    /// A generated Secret's value longer than 51 bytes is base64 in lines of 70, as kustomize
    /// writes it: its plaintext is what is registered and marked, as for one line.
    #[test]
    fn wrapped_base64_values_are_decoded_as_the_server_decodes_them() {
        let plain = "x".repeat(52);
        let wrapped = format!("{}eA\n==\n", "eHh4".repeat(17));
        let mut secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": wrapped}});
        let redactor = Redactor::new();
        redactor.register_secret_data(&secret);
        assert_eq!(redactor.redact(&format!("token {plain}")), format!("token {}", redactor.marker(&plain)));
        assert_eq!(redactor.redact_secret_object(&mut secret), 1);
        assert_eq!(secret["data"]["k"], redactor.marker(&plain));
    }
    use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    use super::*;

    /// An unkeyed digest lets anyone confirm a guessed password from a marker; keyed by run, equal
    /// values still show equal markers within a run.
    #[test]
    fn markers_are_equal_within_a_run_and_differ_across_runs_and_from_an_unkeyed_digest() {
        let (one, other) = (Redactor::new(), Redactor::new());
        assert_eq!(one.marker("hunter2"), one.clone().marker("hunter2"));
        assert_ne!(one.marker("hunter2"), one.marker("hunter3"));
        assert_ne!(one.marker("hunter2"), other.marker("hunter2"));
        // Keyed alike, two runs' markers are equal; another key gives others.
        let (keyed, other_keyed) = (one.keyed([7; 32]), other.keyed([7; 32]));
        assert_eq!(keyed.marker("hunter2"), other_keyed.marker("hunter2"));
        assert_ne!(keyed.marker("hunter2"), one.keyed([8; 32]).marker("hunter2"));
        // The keyed redactor shares the values registered through either.
        keyed.register("hunter2-Zq8xLm");
        assert_eq!(one.redact("pw hunter2-Zq8xLm"), format!("pw {}", one.marker("hunter2-Zq8xLm")));
        assert_eq!(keyed.redact("pw hunter2-Zq8xLm"), format!("pw {}", other_keyed.marker("hunter2-Zq8xLm")));
        let unkeyed = format!("<redacted:{}>", &hex::encode(Sha256::digest("hunter2"))[..8]);
        assert_ne!(one.marker("hunter2"), unkeyed);
        let mut secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "data": {"p": "aHVudGVyMg=="}});
        one.redact_secret_object(&mut secret);
        assert_eq!(secret["data"]["p"], one.marker("hunter2"));
    }

    fn redactor(values: &[&str]) -> Redactor {
        let r = Redactor::new();
        values.iter().for_each(|v| r.register(v));
        r
    }

    #[track_caller]
    fn assert_hidden(r: &Redactor, text: &str, hidden: &[&str]) {
        let out = r.redact(text);
        for part in hidden {
            assert!(!out.contains(part), "{part:?} survived in {out:?}");
        }
        let mut tree = serde_json::json!({"data": {"k": text}});
        r.redact_value(&mut tree);
        for part in hidden {
            assert!(!tree["data"]["k"].as_str().unwrap().contains(part), "{part:?} survived in {tree}");
        }
    }

    /// The issue's holes: `| upper`, `| replace "-" "_"`, quoting and escaping.
    #[test]
    fn a_strong_value_is_found_whatever_its_case_and_separators() {
        let r = redactor(&["Sk-live_4f1c.9a7e"]);
        assert_hidden(&r, "KEY=SK-LIVE_4F1C.9A7E;", &["SK-LIVE_4F1C.9A7E", "4F1C"]);
        assert_hidden(&r, "key: sk_live_4f1c_9a7e\n", &["sk_live_4f1c_9a7e", "4f1c"]);
        assert_eq!(r.redact("KEY=SK-LIVE_4F1C.9A7E;"), format!("KEY={};", r.marker("SK-LIVE_4F1C.9A7E")));
        // Fewer than STRONG_LEN letters and digits: only its exact forms.
        let r = redactor(&["a-b-c-d-e-f"]);
        assert_eq!(r.redact("A-B-C-D-E-F abcdef"), "A-B-C-D-E-F abcdef");
    }

    #[test]
    fn base64_of_any_text_holding_a_value_is_found_to_three_encodings() {
        let secret = "Passw0rd-Jm3s9x";
        let r = redactor(&[secret, "q7z"]);
        let once = B64.encode(secret);
        let twice = B64.encode(&once);
        let thrice = B64.encode(&twice);
        let basic = B64.encode(format!("admin:{secret}"));
        let url_safe = URL_SAFE_NO_PAD.encode(format!("{{\"user\":\"admin\",\"pass\":\"{}\"}}", secret.to_uppercase()));
        for encoded in [&once, &twice, &thrice, &basic, &url_safe] {
            assert_eq!(r.redact(&format!("x {encoded} y")), format!("x {} y", r.marker(encoded)), "{encoded}");
        }
        // A prefix that is not part of the encoding (`Basic`, a path) shifts its alignment.
        assert_hidden(&r, &format!("path/to{basic}"), &[&basic]);
        // A weak value in the basic-auth pair of a dockerconfigjson, itself encoded.
        let auth = B64.encode("admin:q7z");
        let config = format!(r#"{{"auths":{{"registry.example":{{"auth":"{auth}"}}}}}}"#);
        assert_hidden(&r, &config, &[&auth]);
        assert_hidden(&r, &B64.encode(&config), &[&B64.encode(&config)]);
        // Base64 of text without a registered value, and binary data, are left.
        let other = B64.encode("admin:another-password");
        assert_eq!(r.redact(&other), other);
        let binary = B64.encode([0x71, 0x37, 0x7a, 0x00, 0x20, 0x71, 0x37, 0x7a, 0x01]);
        assert_eq!(r.redact(&binary), binary);
    }

    /// What a whole-file SOPS document holds besides secrets (a port, `default`, `values`) is
    /// masked only where it stands whole.
    #[test]
    fn weak_values_are_matched_only_as_whole_values_or_tokens() {
        let r = redactor(&["8080", "default", "values", "q7z"]);
        for kept in [
            "http://web:8080/healthz",
            "default-token-x7",
            "namespace: default-x",
            "defaults",
            "environments/values/web-dev.yaml",
            "q7z2",
        ] {
            assert_eq!(r.redact(kept), kept);
            assert!(!r.finds_in(&serde_json::json!({"name": kept})), "{kept}");
        }
        let d = r.marker("default");
        assert_eq!(r.redact("namespace: default\n"), format!("namespace: {d}\n"));
        assert_eq!(r.redact("user:q7z@db port=8080"), format!("user:{}@db port={}", r.marker("q7z"), r.marker("8080")));
        assert_eq!(r.redact(r#"["default","x"]"#), format!(r#"["{d}","x"]"#));
        let mut tree = serde_json::json!({"namespace": "default", "port": 8080, "name": "default-token"});
        assert_eq!(r.redact_value(&mut tree), 2);
        assert_eq!(tree, serde_json::json!({"namespace": d, "port": r.marker("8080"), "name": "default-token"}));
    }

    /// A transformation a template may apply to a value.
    type Transformation = (&'static str, fn(&str) -> String);

    fn transformations() -> Vec<Transformation> {
        vec![
            ("as it is", |s| s.to_owned()),
            ("upper", |s| s.to_uppercase()),
            ("lower", |s| s.to_lowercase()),
            ("replace - _", |s| s.replace('-', "_")),
            ("replace _ . -", |s| s.replace(['_', '.'], "-")),
            ("quote", |s| serde_json::to_string(s).unwrap()),
            ("yaml quote", |s| format!("'{}'", s.replace('\'', "''"))),
            ("json in json", |s| serde_json::to_string(&serde_json::json!({ "k": s }).to_string()).unwrap()),
            ("b64enc", |s| B64.encode(s)),
            ("b64enc twice", |s| B64.encode(B64.encode(s))),
            ("printf user:%s | b64enc", |s| B64.encode(format!("user:{s}"))),
            ("upper | b64enc", |s| B64.encode(s.to_uppercase())),
            ("url-safe b64 of json", |s| URL_SAFE_NO_PAD.encode(serde_json::json!({ "auth": s }).to_string())),
        ]
    }

    proptest! {
        /// Over generated strong values and the transformations above, embedded in other text:
        /// neither the value nor its transformed form survives, in text or in a tree.
        #[test]
        fn no_strong_value_survives_a_template_transformation(
            letters in "[A-Za-z0-9]{8,30}",
            symbols in proptest::collection::vec((0usize..40, "[-_.:/+=\"' ]"), 0..6),
            transformation in 0usize..13,
            before in "[a-z =:]{0,12}",
            after in "[a-z ,;]{0,12}",
        ) {
            let mut secret = letters.clone();
            for (at, symbol) in symbols {
                let at = secret.char_indices().nth(at % secret.len()).map_or(0, |(i, _)| i);
                secret.insert_str(at, &symbol);
            }
            prop_assume!(secret.trim() == secret);
            prop_assume!(!letters.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
            let (name, transform) = transformations()[transformation];
            let transformed = transform(&secret);
            let text = format!("{before} {transformed} {after}");
            let r = redactor(&[&secret]);
            let out = r.redact(&text);
            prop_assert!(!out.contains(&transformed) && !out.contains(&secret), "{name}: {text:?} -> {out:?}");
            prop_assert!(!out.contains(&letters), "{name}: {text:?} -> {out:?}");
            let mut tree = serde_json::json!({"data": {"k": text, "whole": transformed}});
            r.redact_value(&mut tree);
            let tree = tree.to_string();
            prop_assert!(!tree.contains(&transformed) && !tree.contains(&letters), "{name}: {tree}");
        }
    }
}
