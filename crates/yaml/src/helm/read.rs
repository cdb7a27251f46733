//! Reading as helm reads: sigs.k8s.io/yaml over go-yaml v2; the common subset directly, the
//! rest through granit-parser's events.

use crate::events::{self, Role, Step, Unwalkable, Walk};
use crate::resolve::{Dialect, Resolved, resolve};
use crate::subset;
use granit_parser::{Event, ScalarStyle};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;

use super::YamlError;

/// Reads the first document of `text` as sigs.k8s.io/yaml's `Unmarshal` does into
/// `interface{}`: `None` for an empty document. Integers stay integers here; helm's values turn
/// every number into a float64 afterwards (JSON), which is the caller's choice.
pub fn from_str(text: &str) -> Result<Option<Json>, YamlError> {
    let mut value = from_str_line_ended(text)?;
    end_unbroken_block_scalar(text, &mut value);
    Ok(value)
}

/// [`from_str`] of `text` as if a line break ended it: as helm reads each manifest of a chart's
/// output, which it trims and then writes followed by one (a block scalar ending the manifest
/// keeps its line break).
pub fn from_str_line_ended(text: &str) -> Result<Option<Json>, YamlError> {
    // One implicit document in the common subset reads directly (see `subset`).
    match subset::stream(text, GoValues) {
        Some(mut documents) if documents.len() == 1 => Ok(documents.pop().flatten()),
        _ => crate::leniently(text, load_first, under_indented_at),
    }
}

/// A block scalar ending the text without a line break ends without one, as go-yaml reads it
/// (see [`crate::end_unbroken_block_scalar`]): in the first document when it is the only one.
fn end_unbroken_block_scalar(text: &str, first: &mut Option<Json>) {
    if let Some(value) = first
        && !text.contains("\n---")
    {
        crate::end_unbroken_block_scalar(text, std::slice::from_mut(value));
    }
}

pub(super) fn load_first(text: &str) -> Result<Option<Json>, YamlError> {
    load_first_with(Loader::new(text)).map(|(value, _)| value)
}

/// Where the nodes of a document are, by JSON pointer: each value's, and each mapping key's
/// (under its value's pointer), as 1-based line and column (in characters).
#[derive(Debug, Default)]
pub struct Positions {
    pub values: HashMap<String, (usize, usize)>,
    pub keys: HashMap<String, (usize, usize)>,
}

/// [`from_str`] with where each node is written, for messages about the values: always read
/// by the full loader (the subset reader keeps no positions).
pub fn from_str_positioned(text: &str) -> Result<(Option<Json>, Positions), YamlError> {
    crate::leniently(
        text,
        |text| {
            let mut loader = Loader::new(text);
            loader.positions = Some(Positions::default());
            let (mut value, positions) = load_first_with(loader)?;
            end_unbroken_block_scalar(text, &mut value);
            Ok((value, positions))
        },
        under_indented_at,
    )
}

/// The first document's value, and the positions `loader` recorded.
pub(super) fn load_first_with(mut loader: Loader) -> Result<(Option<Json>, Positions), YamlError> {
    loop {
        match loader.next()? {
            None | Some((Event::StreamEnd, _)) => return Ok((None, loader.positions.unwrap_or_default())),
            Some((Event::DocumentStart(..), _)) => break,
            Some(_) => {}
        }
    }
    let value = match loader.next()? {
        Some((Event::DocumentEnd, _)) | None => None,
        Some((event, line)) => Some(loader.node(event, line)?),
    };
    Ok((value, loader.positions.unwrap_or_default()))
}

/// Every non-empty document of a stream (a CRD file may hold several).
pub fn documents(text: &str) -> Result<Vec<Json>, YamlError> {
    let mut documents = match subset::stream(text, GoValues) {
        Some(documents) => documents.into_iter().flatten().filter(|value| !value.is_null()).collect(),
        None => crate::leniently(text, load_documents, under_indented_at)?,
    };
    crate::end_unbroken_block_scalar(text, &mut documents);
    Ok(documents)
}

pub(super) fn load_documents(text: &str) -> Result<Vec<Json>, YamlError> {
    let mut loader = Loader::new(text);
    let mut out = Vec::new();
    while let Some((event, _)) = loader.next()? {
        if !matches!(event, Event::DocumentStart(..)) {
            continue;
        }
        match loader.expect_next()? {
            (Event::DocumentEnd, _) => {}
            (event, line) => {
                let value = loader.node(event, line)?;
                if !value.is_null() {
                    out.push(value);
                }
            }
        }
        loader.anchors.clear();
    }
    Ok(out)
}

pub(super) fn under_indented_at(e: &YamlError) -> Option<usize> {
    e.line.filter(|_| e.message.contains(crate::UNDER_INDENTED))
}

/// Builds JSON values from text in the common YAML subset (`crate::subset`), which
/// leaves anchors, tags, merge keys, duplicate keys and other keys than words to [`Loader`];
/// scalars resolve as [`scalar`] resolves them, and one it refuses (a NaN) is left too.
pub(super) struct GoValues;

impl<'t> subset::Build<'t> for GoValues {
    type Out = Json;
    type Map = Vec<(String, Json)>;
    fn plain(&self, text: &'t str, _: subset::Pos) -> Option<Json> {
        scalar(text, ScalarStyle::Plain, None, 0).ok()
    }
    fn string(&self, text: String, _: subset::Pos) -> Json {
        Json::String(text)
    }
    fn null(&self, _: subset::Pos) -> Json {
        Json::Null
    }
    fn seq(&self, mut items: Vec<Json>, _: subset::Pos) -> Json {
        items.shrink_to_fit(); // as for maps (see subset::exact_map)
        Json::Array(items)
    }
    fn new_map(&self) -> Self::Map {
        Vec::new()
    }
    fn insert(&self, map: &mut Self::Map, key: String, value: Json) -> Option<()> {
        map.push((key, value));
        Some(())
    }
    fn map(&self, map: Self::Map, _: subset::Pos) -> Option<Json> {
        subset::exact_map(map).map(Json::Object)
    }
}

pub(super) struct Loader<'a> {
    /// The events, each with the path of its node: a key's value goes under the key as read
    /// ([`Walk::name_key`]).
    walk: Walk<'a>,
    anchors: HashMap<usize, Json>,
    depth: usize,
    /// Nodes copied by aliases so far.
    aliased: usize,
    /// Where the nodes are, when asked for ([`from_str_positioned`]), recorded as the walk steps
    /// on each.
    positions: Option<Positions>,
    /// The column of the event `next` read last.
    column: usize,
}

/// How many nodes aliases may copy in one stream.
pub(super) const MAX_ALIASED: usize = 1_000_000;

pub(super) fn size(value: &Json) -> usize {
    match value {
        Json::Array(items) => 1 + items.iter().map(size).sum::<usize>(),
        Json::Object(map) => 1 + map.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// How deep collections may nest: a file of `[[[[…` must be an error, not a stack overflow.
pub(super) const MAX_DEPTH: usize = 500;
/// The stack left below which a level continues on a new segment ([`Loader::node`]), and its size.
const RED_ZONE: usize = 64 << 10;
const STACK_GROWTH: usize = 1 << 20;

impl<'a> Loader<'a> {
    fn new(text: &'a str) -> Self {
        Loader { walk: Walk::new(text), anchors: HashMap::new(), depth: 0, aliased: 0, positions: None, column: 0 }
    }

    /// The next event and its line, the position of a node recorded when asked for.
    fn next(&mut self) -> Result<Option<(Event<'a>, usize)>, YamlError> {
        match self.walk.step() {
            None => Ok(None),
            Some(Ok(Step { event, span, role })) => {
                self.column = span.start.col();
                let line = span.start.line();
                if role == Role::Node
                    && let Some(positions) = &mut self.positions
                {
                    positions.values.insert(events::pointer(self.walk.path()), (line, self.column + 1));
                }
                Ok(Some((event, line)))
            }
            Some(Err(Unwalkable::Scan(e))) => Err(YamlError { message: e.info(), line: Some(e.marker().line()) }),
            Some(Err(Unwalkable::ComplexKey(span))) => Err(YamlError {
                message: "unsupported map key (a null, list or map)".into(),
                line: Some(span.start.line()),
            }),
        }
    }

    fn expect_next(&mut self) -> Result<(Event<'a>, usize), YamlError> {
        self.next()?.ok_or_else(|| YamlError { message: "unexpected end of the document".into(), line: None })
    }

    fn node(&mut self, event: Event<'a>, line: usize) -> Result<Json, YamlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(YamlError { message: format!("nested deeper than {MAX_DEPTH} levels"), line: Some(line) });
        }
        // Each level takes kilobytes of stack (more in a debug build): past a few hundred a
        // render thread's 2 MiB would overflow before MAX_DEPTH refuses the text, so the stack
        // grows onto the heap as it runs low.
        let result = stacker::maybe_grow(RED_ZONE, STACK_GROWTH, || self.node_at_depth(event, line));
        self.depth -= 1;
        result
    }

    fn node_at_depth(&mut self, event: Event<'a>, line: usize) -> Result<Json, YamlError> {
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| t.suffix().to_string());
                (scalar(&text, style, tag.as_deref(), line)?, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.expect_next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, line) => items.push(self.node(event, line)?),
                    }
                }
                (Json::Array(items), anchor)
            }
            Event::MappingStart(_, anchor, _) => (self.mapping(line)?, anchor),
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    message: "unknown anchor referenced by an alias".into(),
                    line: Some(line),
                })?;
                // Aliases of aliases grow exponentially (a "billion laughs"): go-yaml refuses
                // excessive aliasing, and so does this.
                self.aliased += size(&value);
                if self.aliased > MAX_ALIASED {
                    return Err(YamlError { message: "document contains excessive aliasing".into(), line: Some(line) });
                }
                return Ok(value);
            }
            _ => return Err(YamlError { message: "unexpected YAML event".into(), line: Some(line) }),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    /// A mapping's entries; `<<` merges maps (or a list of maps) under the explicit keys, as
    /// go-yaml v2 does, and a later duplicate key replaces an earlier one.
    fn mapping(&mut self, line: usize) -> Result<Json, YamlError> {
        let mut map = Map::new();
        let mut merged = Map::new();
        loop {
            let (key_event, key_line) = self.expect_next()?;
            if matches!(key_event, Event::MappingEnd) {
                break;
            }
            // `<<`, plain, untagged or tagged `!!merge` (as YAML 1.1 tools write it).
            let is_merge = matches!(&key_event, Event::Scalar(text, ScalarStyle::Plain, _, tag)
                if text == "<<" && tag.as_ref().is_none_or(|t| t.suffix() == "merge"));
            let key_column = self.column;
            let key = self.node(key_event, key_line)?;
            let key = key_string(key, key_line)?;
            if let Some(positions) = &mut self.positions {
                let pointer = format!("{}/{}", events::pointer(self.walk.path()), events::pointer_token(&key));
                positions.keys.insert(pointer, (key_line, key_column + 1));
            }
            // Mostly the key reads as written: the walk has its token already.
            if self.walk.key() != Some(key.as_str()) {
                self.walk.name_key(key.clone());
            }
            let (value_event, value_line) = self.expect_next()?;
            let value = self.node(value_event, value_line)?;
            if is_merge {
                let sources = match value {
                    Json::Array(items) => items,
                    other => vec![other],
                };
                for source in sources.into_iter().rev() {
                    let Json::Object(source) = source else {
                        return Err(YamlError {
                            message: "map merge requires map or sequence of maps as the value".into(),
                            line: Some(value_line),
                        });
                    };
                    merged.extend(source);
                }
                continue;
            }
            map.insert(key, value);
        }
        for (key, value) in merged {
            map.entry(key).or_insert(value);
        }
        let _ = line;
        Ok(Json::Object(map))
    }
}

/// sigs.k8s.io/yaml's conversion of a map key to a JSON object key.
pub(super) fn key_string(key: Json, line: usize) -> Result<String, YamlError> {
    match key {
        Json::String(s) => Ok(s),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Number(n) if n.is_i64() => Ok(n.to_string()),
        // go-yaml formats float keys at 32 bits.
        Json::Number(n) => Ok(gotemplate::strconv::format_float_bits(n.as_f64().unwrap_or(0.0), 'g', None, 32)),
        _ => Err(YamlError { message: "unsupported map key (a null, list or map)".into(), line: Some(line) }),
    }
}

/// A scalar as go-yaml v2 resolves it, converted to JSON.
pub(super) fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>, line: usize) -> Result<Json, YamlError> {
    let plain = style == ScalarStyle::Plain;
    let resolved = match tag {
        Some("str") => Resolved::Str,
        Some("binary") => Resolved::Str,
        Some(_) | None if plain || tag.is_some() => resolve(text, Dialect::GoYamlV2),
        _ => Resolved::Str,
    };
    resolved.into_json(text).map_err(|f| YamlError {
        message: format!("json: unsupported value: {}", gotemplate::strconv::format_float(f, 'g', None)),
        line: Some(line),
    })
}
