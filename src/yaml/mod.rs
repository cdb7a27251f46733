//! YAML in and out. Input goes through serde-saphyr (a maintained successor of the archived
//! serde_yaml) so that every error has a line and column; output goes through `emit`, which
//! quotes whatever a YAML 1.1 reader (kubectl, helm) would read differently.

pub mod emit;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Location, Result};

pub use emit::{to_yaml_string, write_yaml};

/// weaver's parser settings: messages carry the line and column, never a source snippet
/// (it would span lines, and could show a secret).
pub(crate) fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options
}

/// serde-saphyr appends " at line L, column C"; weaver puts the location in front instead.
fn located(path: &Path, err: serde_saphyr::Error, what: &str) -> Error {
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    // Parser jargon, in the words of the file's author.
    let message = message
        .replace("expected sequence start", "expected a list")
        .replace("expected mapping start", "expected a mapping");
    let location = match err.location() {
        Some(loc) => Location::at(path, loc.line(), loc.column()),
        None => Location::file(path),
    };
    Error::at(location, format!("{what}: {message}"))
}

/// Deserializes one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| located(path, e, "invalid YAML"))
}

/// Like `from_str`, for configuration files whose schema errors read better as "invalid <what>".
pub fn from_str_as<T: DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<T> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| located(path, e, what))
}

/// Parses a multi-document stream; empty documents are dropped, as kubectl and helm do.
/// The parser's anti-abuse budget is scaled to the input, so that a `kubectl get -o yaml` of
/// thousands of objects reads, while alias bombs stay bounded.
pub fn documents(path: &Path, text: &str) -> Result<Vec<Value>> {
    let mut options = options();
    let mut budget = options.budget.clone().unwrap_or_default();
    // Each node or event needs at least a byte or two of input; documents at least `---\n`.
    budget.max_documents = budget.max_documents.max(text.len() / 4);
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len() * 2);
    options.budget = Some(budget);
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| located(path, e, "invalid YAML"))?;
    Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect())
}
