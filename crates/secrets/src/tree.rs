//! The document model shared by plaintext and encrypted files.
//!
//! It mirrors sops' tree: ordered mappings with string keys, sequences, scalars, and comments
//! kept as items of the mapping or sequence they appear in (a comment's encryption path is its
//! container's path, so the container matters, not its exact position).

use std::fmt;
use std::path::Path;

use super::SecretsError;
use super::{json, yaml};

pub type Mapping = Vec<Item<String>>;
pub type Sequence = Vec<Item<()>>;

#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Map(Mapping),
    Seq(Sequence),
}

/// An item of a mapping (`K = String`) or a sequence (`K = ()`).
#[derive(Clone, PartialEq)]
pub enum Item<K> {
    Entry {
        key: K,
        value: Value,
        /// A comment on the same line (`key: value # comment`), text after the `#`.
        comment: Option<String>,
    },
    /// An own-line comment, text after the `#`.
    Comment(String),
}

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

impl Value {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Map(m) => mapping_to_json(m),
            Value::Seq(s) => J::Array(
                s.iter()
                    .filter_map(|item| match item {
                        Item::Entry { value, .. } => Some(value.to_json()),
                        Item::Comment(_) => None,
                    })
                    .collect(),
            ),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Map(_) => "mapping",
            Value::Seq(_) => "sequence",
        }
    }
}

fn mapping_to_json(items: &Mapping) -> serde_json::Value {
    serde_json::Value::Object(
        items
            .iter()
            .filter_map(|item| match item {
                Item::Entry { key, value, .. } => Some((key.clone(), value.to_json())),
                Item::Comment(_) => None,
            })
            .collect(),
    )
}

// Debug output never shows scalars or comments: trees hold plaintext and must be safe to log.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Map(items) => f.debug_map().entries(entries(items)).finish(),
            Value::Seq(items) => f.debug_list().entries(entries(items).map(|(_, v)| v)).finish(),
            scalar => write!(f, "<{}>", scalar.type_name()),
        }
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

fn entries<K>(items: &[Item<K>]) -> impl Iterator<Item = (&K, &Value)> {
    items.iter().filter_map(|item| match item {
        Item::Entry { key, value, .. } => Some((key, value)),
        Item::Comment(_) => None,
    })
}

/// Where a leaf sits: map keys (the encryption path) and sequence indexes (for messages).
#[derive(Default)]
pub(crate) struct TreePath(Vec<Segment>);

enum Segment {
    Key(String),
    Index(usize),
}

impl TreePath {
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
    }

    /// sops' additional data: map keys joined with `:` plus a trailing `:`; list items share
    /// their list's path.
    pub(crate) fn aad(&self) -> String {
        aad_of(self.keys())
    }

    /// `a.b[2].c`, for messages.
    pub(crate) fn display(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() { "(top level)".into() } else { out }
    }
}

pub(crate) fn aad_of<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let mut aad = String::new();
    for key in keys {
        aad.push_str(key);
        aad.push(':');
    }
    if aad.is_empty() {
        aad.push(':');
    }
    aad
}

/// A leaf of the walk: a non-null scalar, or a comment's text.
pub(crate) enum Leaf<'a> {
    Value(&'a mut Value),
    Comment(&'a mut String),
}

/// Visits leaves in document order, as sops does: a line comment before its entry's value,
/// nulls skipped (sops neither encrypts nor hashes them).
pub(crate) fn walk_leaves<E>(
    docs: &mut [Mapping],
    visit: &mut impl FnMut(Leaf<'_>, &TreePath) -> Result<(), E>,
) -> Result<(), E> {
    for doc in docs {
        walk_items(doc, &mut TreePath::default(), visit)?;
    }
    Ok(())
}

trait PathKey {
    /// The mapping key; `None` for sequence items.
    fn key(&self) -> Option<&str>;
}

impl PathKey for String {
    fn key(&self) -> Option<&str> {
        Some(self)
    }
}

impl PathKey for () {
    fn key(&self) -> Option<&str> {
        None
    }
}

fn walk_items<K: PathKey, E>(
    items: &mut [Item<K>],
    path: &mut TreePath,
    visit: &mut impl FnMut(Leaf<'_>, &TreePath) -> Result<(), E>,
) -> Result<(), E> {
    let mut index = 0;
    for item in items {
        match item {
            Item::Comment(text) => visit(Leaf::Comment(text), path)?,
            Item::Entry { key, value, comment } => {
                if let Some(text) = comment {
                    visit(Leaf::Comment(text), path)?;
                }
                path.0.push(match key.key() {
                    Some(k) => Segment::Key(k.to_owned()),
                    None => Segment::Index(index),
                });
                index += 1;
                match value {
                    Value::Map(m) => walk_items(m, path, visit)?,
                    Value::Seq(s) => walk_items(s, path, visit)?,
                    Value::Null => {}
                    scalar => visit(Leaf::Value(scalar), path)?,
                }
                path.0.pop();
            }
        }
    }
    Ok(())
}

/// The encryption paths of every mapping and sequence, top level first.
pub(crate) fn container_aads(docs: &[Mapping]) -> Vec<String> {
    fn collect<K: PathKey>(items: &[Item<K>], keys: &mut Vec<String>, out: &mut Vec<String>) {
        let aad = aad_of(keys.iter().map(String::as_str));
        if !out.contains(&aad) {
            out.push(aad);
        }
        for item in items {
            if let Item::Entry { key, value, .. } = item {
                let pushed = key.key().map(|k| keys.push(k.to_owned())).is_some();
                match value {
                    Value::Map(m) => collect(m, keys, out),
                    Value::Seq(s) => collect(s, keys, out),
                    _ => {}
                }
                if pushed {
                    keys.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        collect(doc, &mut Vec::new(), &mut out);
    }
    out
}
