//! A YAML node that keeps the line of every key and item, so that what an import leaves out is
//! named by where the parser found it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A YAML node with the line of every key and item, so that whatever is left out can be named
/// by its line.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Scalar(Value),
    List(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
}

/// A mapping key, whatever scalar it is written as.
#[derive(Debug, Clone)]
pub(crate) struct Key(pub String);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Node, E> {
                Ok(serde_json::Number::from_f64(v)
                    .map_or(Node::Scalar(Value::String(v.to_string())), |n| Node::Scalar(Value::Number(n))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Key>>()? {
                    entries.push((key, map.next_value::<Spanned<Node>>()?));
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match Node::deserialize(deserializer)? {
            Node::Scalar(Value::String(s)) => Ok(Key(s)),
            Node::Scalar(other) => Ok(Key(other.to_string())),
            Node::Null => Ok(Key("null".to_string())),
            _ => Err(de::Error::custom("expected a scalar mapping key")),
        }
    }
}

/// The line a span starts on.
pub(crate) fn line<T>(spanned: &Spanned<T>) -> u64 {
    spanned.referenced.line()
}

impl Node {
    /// The node at a JSON pointer (`/spec/patches/0`), as [`Value::pointer`] walks a value.
    pub(crate) fn at<'n>(node: &'n Spanned<Node>, pointer: &str) -> Option<&'n Spanned<Node>> {
        let mut current = node;
        for step in pointer.split('/').skip(1) {
            let step = step.replace("~1", "/").replace("~0", "~");
            current = match &current.value {
                Node::Map(entries) => &entries.iter().find(|(k, _)| k.value.0 == step)?.1,
                Node::List(items) => items.get(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// The line of a key (its own line, not its value's), or of an item, at a JSON pointer.
    pub(crate) fn line_of(node: &Spanned<Node>, pointer: &str) -> Option<u64> {
        let (parent, last) = pointer.rsplit_once('/')?;
        let last = last.replace("~1", "/").replace("~0", "~");
        match &Node::at(node, parent)?.value {
            Node::Map(entries) => entries.iter().find(|(k, _)| k.value.0 == last).map(|(k, _)| line(k)),
            Node::List(items) => items.get(last.parse::<usize>().ok()?).map(line),
            _ => None,
        }
    }

    /// The line of the first string scalar under `node` that contains `needle`.
    pub(crate) fn line_containing(node: &Spanned<Node>, needle: &str) -> Option<u64> {
        match &node.value {
            Node::Scalar(Value::String(text)) if text.contains(needle) => Some(line(node)),
            Node::Map(entries) => entries.iter().find_map(|(_, value)| Node::line_containing(value, needle)),
            Node::List(items) => items.iter().find_map(|item| Node::line_containing(item, needle)),
            _ => None,
        }
    }
}
