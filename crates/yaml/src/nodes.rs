//! Typed reading of configuration files (environments) in the YAML subset of `super::subset`,
//! as serde-saphyr reads them, `Spanned` positions included: a 10,000-release environment is
//! read several times faster. Anything the reader is unsure of — a scalar in a form other than
//! the common ones for a typed field, an enum written as a mapping, any error — makes it give
//! up, and the caller reads the text with serde-saphyr, whose result or located error stands.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::Value;

use super::subset::{Build, Pos};

/// A node of a document, with where it starts; plain scalars keep their text, for the field's
/// type to decide what it is.
#[derive(Debug)]
pub(crate) enum Node<'t> {
    /// An entry with no value.
    Null(Pos),
    Plain(&'t str, Pos),
    /// A quoted or block scalar.
    Str(String, Pos),
    Seq(Vec<Node<'t>>, Pos),
    Map(Vec<(String, Node<'t>)>, Pos),
}

impl Node<'_> {
    fn pos(&self) -> Pos {
        match self {
            Node::Null(at) | Node::Plain(_, at) | Node::Str(_, at) | Node::Seq(_, at) | Node::Map(_, at) => *at,
        }
    }

    /// A null as serde-saphyr's `Option` and unit see one: no value, or a plain `~`, `null`.
    fn is_null(&self) -> bool {
        match self {
            Node::Null(_) => true,
            Node::Plain(text, _) => *text == "~" || text.eq_ignore_ascii_case("null"),
            _ => false,
        }
    }

    /// The text of a scalar, quoted or not.
    fn text(&self) -> Option<&str> {
        match self {
            Node::Plain(text, _) => Some(text),
            Node::Str(text, _) => Some(text),
            _ => None,
        }
    }
}

/// The newtype name serde-saphyr's `Spanned<T>` asks a deserializer for.
pub(crate) const SPANNED: &str = "__yaml_spanned";

/// Builds [`Node`]s.
pub(crate) struct Nodes;

impl<'t> Build<'t> for Nodes {
    type Out = Node<'t>;
    type Map = Vec<(String, Node<'t>)>;
    fn plain(&self, text: &'t str, at: Pos) -> Option<Node<'t>> {
        Some(Node::Plain(text, at))
    }
    fn string(&self, text: String, at: Pos) -> Node<'t> {
        Node::Str(text, at)
    }
    fn null(&self, at: Pos) -> Node<'t> {
        Node::Null(at)
    }
    fn seq(&self, items: Vec<Node<'t>>, at: Pos) -> Node<'t> {
        Node::Seq(items, at)
    }
    fn new_map(&self) -> Self::Map {
        Vec::new()
    }
    fn insert(&self, map: &mut Self::Map, key: String, value: Node<'t>) -> Option<()> {
        // Configuration mappings are small: a scan is cheaper than hashing.
        if map.iter().any(|(k, _)| *k == key) {
            return None;
        }
        map.push((key, value));
        Some(())
    }
    fn map(&self, map: Self::Map, at: Pos) -> Option<Node<'t>> {
        Some(Node::Map(map, at))
    }
}

/// `T` from the one document of `text`, as serde-saphyr with `options` would read it; `None`
/// when the text leaves the subset or the reader is unsure.
pub fn read<T: DeserializeOwned>(text: &str, options: &serde_saphyr::Options) -> Option<T> {
    let node = document(text)?;
    let lines: Vec<&str> = text.lines().collect();
    T::deserialize(NodeDe { node: &node, lines: &lines, options }).ok()
}

/// The one document of `text` as positioned nodes, or `None` when the text leaves the subset or
/// holds other than one document.
fn document(text: &str) -> Option<Node<'_>> {
    let mut documents = super::subset::stream(text, Nodes)?.into_iter().flatten();
    let node = documents.next()?;
    documents.next().is_none().then_some(node)
}

/// Why the reader gave up; never shown (serde-saphyr reads the text again).
#[derive(Debug)]
struct GiveUp;

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to serde-saphyr")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'n, 't> {
    node: &'n Node<'t>,
    lines: &'n [&'t str],
    options: &'n serde_saphyr::Options,
}

impl<'n, 't> NodeDe<'n, 't> {
    fn with(self, node: &'n Node<'t>) -> Self {
        NodeDe { node, ..self }
    }

    /// serde-saphyr's location of the node: line and column from 1, the column in characters.
    fn location(self) -> (u32, u32) {
        let at = self.node.pos();
        let line = self.lines.get(at.line).copied().unwrap_or("");
        let column = line.get(..at.col).map_or(at.col, |before| before.chars().count());
        (at.line as u32 + 1, column as u32 + 1)
    }

    fn plain_number<T: std::str::FromStr>(self) -> Result<T, GiveUp> {
        match self.node {
            Node::Plain(text, _) if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                text.parse().map_err(|_| GiveUp)
            }
            _ => Err(GiveUp),
        }
    }
}

macro_rules! integers {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
            visitor.$visit(self.plain_number::<$ty>()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_, '_> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Null(_) => visitor.visit_unit(),
            Node::Plain(text, _) => match super::subset::resolve(text, self.options).ok_or(GiveUp)? {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(b),
                Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => visitor.visit_u64(u),
                    (None, Some(i), _) => visitor.visit_i64(i),
                    (None, None, Some(f)) => visitor.visit_f64(f),
                    _ => Err(GiveUp),
                },
                Value::String(s) => visitor.visit_string(s),
                _ => Err(GiveUp),
            },
            Node::Str(text, _) => visitor.visit_str(text),
            Node::Seq(items, _) => visitor.visit_seq(SeqDeserializer::new(items.iter().map(|n| self.with(n)))),
            Node::Map(entries, _) => {
                visitor.visit_map(MapDeserializer::new(entries.iter().map(|(k, v)| (k.as_str(), self.with(v)))))
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node.text() {
            Some("true") => visitor.visit_bool(true),
            Some("false") => visitor.visit_bool(false),
            _ => Err(GiveUp),
        }
    }

    integers!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64
    );

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.node {
            node if node.is_null() => Err(GiveUp),
            Node::Plain(text, _) => visitor.visit_str(text),
            Node::Str(text, _) => visitor.visit_str(text),
            _ => Err(GiveUp),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.node.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.node.is_null() { visitor.visit_unit() } else { Err(GiveUp) }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, GiveUp> {
        if name == SPANNED {
            let (line, column) = self.location();
            visitor.visit_newtype_struct(MapAccessDeserializer::new(SpannedAccess::new(self, line, column)))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        match self.node {
            Node::Plain(..) | Node::Str(..) if !self.node.is_null() => {
                visitor.visit_enum(self.node.text().ok_or(GiveUp)?.into_deserializer())
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        f32 f64 i128 u128 char bytes byte_buf unit_struct seq tuple tuple_struct map struct
    }
}

impl<'de> IntoDeserializer<'de, GiveUp> for NodeDe<'_, '_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// serde-saphyr's `Spanned<T>` reads itself from a struct of a marker, the value, and where the
/// value is referenced and defined (the same place, without aliases): the entries of that
/// struct for `value`, at 1-based `line` and `column` (in characters). For any deserializer
/// that reads positioned YAML (see [`MapAccessDeserializer`]).
///
/// [`MapAccessDeserializer`]: serde::de::value::MapAccessDeserializer
pub(crate) struct SpannedAccess<D> {
    value: Option<D>,
    line: u32,
    column: u32,
    state: u8,
}

impl<D> SpannedAccess<D> {
    pub(crate) fn new(value: D, line: u32, column: u32) -> Self {
        SpannedAccess { value: Some(value), line, column, state: 0 }
    }
}

impl<'de, D: de::Deserializer<'de>> de::MapAccess<'de> for SpannedAccess<D> {
    type Error = D::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, D::Error> {
        let key = match self.state {
            0 => "__serde_saphyr_private_spanned",
            1 => "value",
            2 => "referenced",
            3 => "defined",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, D::Error> {
        self.state += 1;
        match self.state {
            1 => seed.deserialize(true.into_deserializer()),
            2 => seed.deserialize(self.value.take().ok_or_else(|| de::Error::custom("the value is read once"))?),
            // A location as serde-saphyr's `Location` reads itself: `line` and `column`.
            _ => seed.deserialize(MapDeserializer::new([("line", self.line), ("column", self.column)].into_iter())),
        }
    }
}
