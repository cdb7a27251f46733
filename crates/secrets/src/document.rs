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

    /// Sets the string at `key` (`app.password`, or sops's `["app"]["tls.crt"]` for keys that
    /// hold a dot) to `value`, making the mappings on the way that are missing; `path` labels
    /// errors. Whether the value changed. A file of several YAML documents, a part of the path
    /// that is not a mapping, and a key holding a mapping or a sequence are refused: only single
    /// values are set.
    pub fn set(&mut self, path: &Path, key: &str, value: &str) -> Result<bool, SecretsError> {
        let refused = |reason: String| SecretsError::KeyPath { path: path.to_owned(), key: key.to_owned(), reason };
        let parts = key_path(key).map_err(refused)?;
        let [doc] = self.docs.as_mut_slice() else {
            return Err(refused(format!(
                "the file holds {} YAML documents; weaver secrets set works on a file of one (use weaver secrets edit)",
                self.docs.len()
            )));
        };
        if parts[0] == "sops" {
            return Err(refused("`sops` is the SOPS metadata block, not a value".into()));
        }
        let (last, above) = parts.split_last().expect("a key path has a part");
        let mut mapping = doc;
        for (depth, part) in above.iter().enumerate() {
            let at = entry(mapping, part, || Value::Map(Vec::new()));
            mapping = match at {
                Value::Map(inner) => inner,
                other => {
                    let what = parts[..=depth].join(".");
                    return Err(refused(format!("`{what}` is a {}, not a mapping", other.type_name())));
                }
            };
        }
        let at = entry(mapping, last, || Value::Null);
        match at {
            Value::Str(old) if old == value => Ok(false),
            Value::Map(_) | Value::Seq(_) => Err(refused(format!(
                "it holds a {}: weaver secrets set replaces single values only (use weaver secrets edit)",
                at.type_name()
            ))),
            _ => {
                *at = Value::Str(value.to_owned());
                Ok(true)
            }
        }
    }

    /// Whether any document has a top-level `sops` key (the SOPS metadata block).
    pub(crate) fn has_sops_key(&self) -> bool {
        self.docs.iter().any(|doc| doc.iter().any(|item| matches!(item, Item::Entry { key, .. } if key == "sops")))
    }
}

/// The value of `key` in `mapping`, added at its end as `new()` when missing.
fn entry<'m>(mapping: &'m mut Mapping, key: &str, new: impl FnOnce() -> Value) -> &'m mut Value {
    let is_key = |item: &Item<String>| matches!(item, Item::Entry { key: k, .. } if k == key);
    if !mapping.iter().any(is_key) {
        mapping.push(Item::Entry { key: key.to_owned(), value: new(), comment: None });
    }
    mapping
        .iter_mut()
        .find_map(|item| match item {
            Item::Entry { key: k, value, .. } if k == key => Some(value),
            _ => None,
        })
        .expect("an entry of that key, added when missing")
}

/// The mapping keys of a key path: `app.password` (a key per dot), or sops's `["app"]["tls.crt"]`
/// (JSON strings in brackets) for keys that hold a dot. The reason when it is neither.
fn key_path(text: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = match text.strip_prefix('[') {
        None => text.split('.').map(str::to_owned).collect(),
        Some(_) => {
            let mut parts = Vec::new();
            let mut rest = text;
            while let Some(inside) = rest.strip_prefix('[') {
                let mut stream = serde_json::Deserializer::from_str(inside).into_iter::<String>();
                let part = match stream.next() {
                    Some(Ok(part)) => part,
                    _ => {
                        return Err(
                            "expected `[\"key\"]` parts, each key a JSON string (sequences are not indexed)".into()
                        );
                    }
                };
                rest = inside[stream.byte_offset()..].trim_start();
                rest = rest.strip_prefix(']').ok_or("expected `]` after a key in brackets")?;
                parts.push(part);
            }
            if !rest.is_empty() {
                return Err(format!("unexpected `{rest}` after the last `[\"key\"]`"));
            }
            parts
        }
    };
    if parts.iter().any(String::is_empty) {
        return Err(
            "an empty key: write the path as `app.password`, or `[\"app\"][\"tls.crt\"]` for keys with dots".into()
        );
    }
    Ok(parts)
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("format", &self.format)
            .field("docs", &self.docs.iter().map(|d| Value::Map(d.clone())).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, key: &str, value: &str) -> Result<(bool, String), String> {
        let path = Path::new("s.yaml");
        let mut doc = Document::parse(path, text).unwrap();
        let changed = doc.set(path, key, value).map_err(|err| err.to_string())?;
        Ok((changed, doc.render()))
    }

    #[test]
    fn set_replaces_a_value_or_adds_it_with_the_mappings_on_its_way() {
        let text = "# keep\napp:\n    password: old # why\n    port: 5432\n";
        assert_eq!(set(text, "app.password", "new"), Ok((true, text.replace("old", "new"))));
        assert_eq!(set(text, "app.password", "old"), Ok((false, text.to_string())));
        assert_eq!(set(text, "app.port", "5433"), Ok((true, text.replace("5432", "\"5433\""))));
        let added = set(text, r#"["db"]["tls.crt"]"#, "x\ny\n").unwrap();
        assert_eq!(added, (true, format!("{text}db:\n    tls.crt: |\n        x\n        y\n")));
    }

    #[test]
    fn set_refuses_what_is_no_single_value_naming_the_key() {
        let text = "app:\n    password: old\n    hosts: [a]\n";
        let refused = |key: &str| set(text, key, "v").unwrap_err();
        assert_eq!(
            refused("app.password.x"),
            "s.yaml: key `app.password.x`: `app.password` is a string, not a mapping"
        );
        assert_eq!(
            refused("app"),
            "s.yaml: key `app`: it holds a mapping: weaver secrets set replaces single values only (use weaver secrets edit)"
        );
        assert!(refused("app.hosts").contains("it holds a sequence"));
        assert!(refused("app..x").contains("an empty key"));
        assert!(refused(r#"["app"]["x""#).contains("expected `]`"));
        assert!(refused(r#"["app"][0]"#).contains("each key a JSON string"));
        assert!(refused("sops.mac").contains("the SOPS metadata block"));
        let two = set("a: 1\n---\nb: 2\n", "a", "v").unwrap_err();
        assert!(two.contains("the file holds 2 YAML documents"), "{two}");
    }
}
