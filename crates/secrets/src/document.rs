//! A secrets file parsed: its format (the extension decides, as in sops) and its documents, read
//! and written by each format's module (`yaml`, `json`) as the tree of `tree`.

use std::fmt;
use std::path::Path;

use super::SecretsError;
use super::tree::{Item, Mapping, Value, mapping_to_json};
use super::{json, yaml};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// sops' rule: the extension decides. `.age` files are not SOPS files; see `decrypt_file`.
    pub fn from_path(path: &Path) -> Result<Format, SecretsError> {
        let what = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => return Ok(Format::Yaml),
            Some("json") => return Ok(Format::Json),
            Some("age") => "writing a whole-file .age file (weaver only decrypts them; use the age CLI)",
            _ => "this file type (expected .yaml, .yml or .json, or .age to decrypt)",
        };
        Err(SecretsError::Unsupported { path: path.to_owned(), what: what.into() })
    }
}

/// A parsed secrets file: one mapping per YAML document (JSON has exactly one).
#[derive(Clone, PartialEq)]
pub struct Document {
    pub(crate) format: Format,
    pub(crate) docs: Vec<Mapping>,
}

impl Document {
    /// Parses `text` in the format `path`'s extension names; `path` also labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<Document, SecretsError> {
        Document::parse_as(path, text, Format::from_path(path)?)
    }

    pub fn parse_as(path: &Path, text: &str, format: Format) -> Result<Document, SecretsError> {
        let docs = match format {
            Format::Yaml => yaml::parse(path, text)?,
            Format::Json => vec![json::parse(path, text)?],
        };
        Ok(Document { format, docs })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The mappings, one per YAML document.
    pub fn docs(&self) -> &[Mapping] {
        &self.docs
    }

    /// Renders in the document's own format, the way sops writes it.
    pub fn render(&self) -> String {
        self.render_as(self.format)
    }

    pub fn render_as(&self, format: Format) -> String {
        match format {
            Format::Yaml => yaml::emit(&self.docs),
            Format::Json => json::emit(&self.docs),
        }
    }

    /// The values without comments: the mapping, or an array of mappings for a multi-document
    /// YAML file. Non-finite floats become null (JSON has no representation for them).
    pub fn to_json(&self) -> serde_json::Value {
        match self.docs.as_slice() {
            [one] => mapping_to_json(one),
            many => serde_json::Value::Array(many.iter().map(mapping_to_json).collect()),
        }
    }

    /// Whether any document has a top-level `sops` key (the SOPS metadata block).
    pub(crate) fn has_sops_key(&self) -> bool {
        self.docs.iter().any(|doc| doc.iter().any(|item| matches!(item, Item::Entry { key, .. } if key == "sops")))
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("format", &self.format)
            .field("docs", &self.docs.iter().map(|d| Value::Map(d.clone())).collect::<Vec<_>>())
            .finish()
    }
}
