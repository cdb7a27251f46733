//! The document model shared by plaintext and encrypted files.
//!
//! It mirrors sops' tree: ordered mappings with string keys, sequences, scalars, and comments
//! kept as items of the mapping or sequence they appear in (a comment's encryption path is its
//! container's path, so the container matters, not its exact position).

use std::fmt;

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

pub(crate) fn mapping_to_json(items: &Mapping) -> serde_json::Value {
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
