//! A node's fields read as what weaver takes (text, a boolean, a value, a map, a list), or
//! left out with their line.

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::super::node::{Key, Node, line};
use super::{Convert, LeftOut};

impl Convert<'_> {
    /// Lists what is left out at `line` of the rendered text being converted.
    pub(super) fn leave(&mut self, line: u64, what: impl Into<String>, why: impl Into<String>) {
        let at = self.ctx.source_line(line);
        self.left_out.push(LeftOut { file: self.ctx.file.clone(), line: at, what: what.into(), why: why.into() });
    }

    /// Notes that the file at `path` (as written, relative to the imported helmfile's
    /// directory), named at `line` of the rendered text being converted as `what`, is the
    /// helmfile's: the import must not write over it.
    pub(super) fn name_file(&mut self, line: u64, what: &str, path: &str) {
        if let Some(repository_path) = self.files.repository_path(path) {
            let at = self.ctx.source_line(line);
            let role = LeftOut { file: self.ctx.file.clone(), line: at, what: what.to_string(), why: String::new() };
            self.named.push((repository_path.to_string_lossy().replace('\\', "/"), role));
        }
    }

    /// A scalar's text, or `None` (listed) when it is not a scalar.
    pub(super) fn text(&mut self, node: &Spanned<Node>, what: &str) -> Option<String> {
        let text = match &node.value {
            Node::Scalar(Value::String(s)) => s.clone(),
            Node::Scalar(other) => other.to_string(),
            _ => {
                self.leave(line(node), what.to_string(), "expected a single value");
                return None;
            }
        };
        Some(text)
    }

    pub(super) fn bool(&mut self, node: &Spanned<Node>, what: &str) -> Option<bool> {
        match &node.value {
            Node::Scalar(Value::Bool(b)) => Some(*b),
            _ => {
                let text = self.text(node, what)?;
                self.leave(line(node), format!("{what}: `{text}`"), "expected true or false");
                None
            }
        }
    }

    /// The node as a value.
    pub(super) fn value(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        Some(match &node.value {
            Node::Null => Value::Null,
            Node::Scalar(v) => v.clone(),
            Node::List(items) => Value::Array(items.iter().filter_map(|item| self.value(item, what)).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let inner = format!("{what} `{}`", key.value.0);
                    if let Some(v) = self.value(value, &inner) {
                        map.insert(key.value.0.clone(), v);
                    }
                }
                Value::Object(map)
            }
        })
    }

    pub(super) fn map(&mut self, node: &Spanned<Node>, what: &str) -> Option<Map<String, Value>> {
        match self.value(node, what)? {
            Value::Object(map) => Some(map),
            Value::Null => Some(Map::new()),
            _ => {
                self.leave(line(node), what.to_string(), "expected a mapping");
                None
            }
        }
    }

    pub(super) fn list<'n>(&mut self, node: &'n Spanned<Node>, what: &str) -> &'n [Spanned<Node>] {
        match &node.value {
            Node::List(items) => items,
            Node::Null => &[],
            _ => {
                self.leave(line(node), what.to_string(), "expected a list");
                &[]
            }
        }
    }

    pub(super) fn entries<'n>(&mut self, node: &'n Spanned<Node>, what: &str) -> &'n [(Spanned<Key>, Spanned<Node>)] {
        match &node.value {
            Node::Map(entries) => entries,
            Node::Null => &[],
            _ => {
                self.leave(line(node), what.to_string(), "expected a mapping");
                &[]
            }
        }
    }
}
