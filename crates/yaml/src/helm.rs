//! YAML as helm reads and writes it: sigs.k8s.io/yaml over go-yaml v2. Reading resolves plain
//! scalars by YAML 1.1's rules (`yes`/`on` are booleans, `0777` is octal, `1_000` an integer,
//! timestamps stay strings) and converts the first document to JSON; writing (`toYaml`) reproduces
//! go-yaml v2's emitter: sorted keys in its "natural" order, indentless lists under keys, its
//! quoting rules, literal blocks for multi-line strings and plain scalars folded after column 80.
//! `toYamlPretty` writes with go-yaml v3's encoder (indent 2) instead: [`to_string_v3`].
//!
//! No Rust crate reproduces go-yaml v2 (serde_yaml and serde-saphyr emit YAML 1.2 with other
//! quoting and no folding), so both directions are written here on granit-parser's events (the
//! parser serde-saphyr uses).

use crate::resolve::{Dialect, Resolved, resolve};
use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value as Json};

use crate::subset;

/// A YAML syntax or conversion error: the message and its 1-based line, when known.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads the first document of `text` as sigs.k8s.io/yaml's `Unmarshal` does into
/// `interface{}`: `None` for an empty document. Integers stay integers here; helm's values turn
/// every number into a float64 afterwards (JSON), which is the caller's choice.
pub fn from_str(text: &str) -> Result<Option<Json>, YamlError> {
    // One implicit document in the common subset reads directly (see `subset`).
    if let Some(mut documents) = subset::stream(text, GoValues)
        && documents.len() == 1
    {
        return Ok(documents.pop().flatten());
    }
    crate::leniently(text, load_first, under_indented_at)
}

fn load_first(text: &str) -> Result<Option<Json>, YamlError> {
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
            load_first_with(loader)
        },
        under_indented_at,
    )
}

/// The first document's value, and the positions `loader` recorded.
fn load_first_with(mut loader: Loader) -> Result<(Option<Json>, Positions), YamlError> {
    loop {
        match loader.next()? {
            None | Some((Event::StreamEnd, _)) => return Ok((None, loader.positions.unwrap_or_default())),
            Some((Event::DocumentStart(..), _)) => break,
            Some(_) => {}
        }
    }
    let value = match loader.next()? {
        Some((Event::DocumentEnd, _)) | None => None,
        Some((event, line)) => {
            loader.record_value(line);
            Some(loader.node(event, line)?)
        }
    };
    Ok((value, loader.positions.unwrap_or_default()))
}

/// Every non-empty document of a stream (a CRD file may hold several).
pub fn documents(text: &str) -> Result<Vec<Json>, YamlError> {
    if let Some(documents) = subset::stream(text, GoValues) {
        return Ok(documents.into_iter().flatten().filter(|value| !value.is_null()).collect());
    }
    crate::leniently(text, load_documents, under_indented_at)
}

fn load_documents(text: &str) -> Result<Vec<Json>, YamlError> {
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

fn under_indented_at(e: &YamlError) -> Option<usize> {
    e.line.filter(|_| e.message.contains(crate::UNDER_INDENTED))
}

/// Builds JSON values from text in the common YAML subset (`crate::subset`), which
/// leaves anchors, tags, merge keys, duplicate keys and other keys than words to [`Loader`];
/// scalars resolve as [`scalar`] resolves them, and one it refuses (a NaN) is left too.
struct GoValues;

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

struct Loader<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Json>,
    depth: usize,
    /// Nodes copied by aliases so far.
    aliased: usize,
    /// Where the nodes are, when asked for ([`from_str_positioned`]): the pointer tokens of the
    /// node being read, and the column of the event `next` read last.
    positions: Option<Positions>,
    path: Vec<String>,
    column: usize,
}

/// How many nodes aliases may copy in one stream.
const MAX_ALIASED: usize = 1_000_000;

fn size(value: &Json) -> usize {
    match value {
        Json::Array(items) => 1 + items.iter().map(size).sum::<usize>(),
        Json::Object(map) => 1 + map.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// How deep collections may nest: a file of `[[[[…` must be an error, not a stack overflow.
const MAX_DEPTH: usize = 500;

impl<'a> Loader<'a> {
    fn new(text: &'a str) -> Self {
        // Comments are presentation, not data: not emitted, so no lookahead limit on how many
        // comment lines may precede a key (charts' values.yaml have long commented blocks).
        let options = granit_parser::options! { emit_comments: false };
        Loader {
            parser: Parser::new_from_str_with_options(text, options),
            anchors: HashMap::new(),
            depth: 0,
            aliased: 0,
            positions: None,
            path: Vec::new(),
            column: 0,
        }
    }

    /// The pointer of the node being read.
    fn pointer(&self) -> String {
        self.path.iter().map(|token| format!("/{}", crate::go::pointer_token(token))).collect()
    }

    /// Records that the node being read starts on `line`, at the event read last.
    fn record_value(&mut self, line: usize) {
        let pointer = self.positions.is_some().then(|| self.pointer());
        if let (Some(positions), Some(pointer)) = (&mut self.positions, pointer) {
            positions.values.insert(pointer, (line, self.column + 1));
        }
    }

    /// Reads the child `token` of the node being read, recording where it is when asked to.
    fn child(&mut self, token: String, event: Event<'a>, line: usize) -> Result<Json, YamlError> {
        if self.positions.is_none() {
            return self.node(event, line);
        }
        self.path.push(token);
        self.record_value(line);
        let value = self.node(event, line);
        self.path.pop();
        value
    }

    fn next(&mut self) -> Result<Option<(Event<'a>, usize)>, YamlError> {
        match self.parser.next_event() {
            None => Ok(None),
            Some(Ok((event, span))) => {
                self.column = span.start.col();
                Ok(Some((event, span.start.line())))
            }
            Some(Err(e)) => Err(YamlError { message: e.info(), line: Some(e.marker().line()) }),
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
        let result = self.node_at_depth(event, line);
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
                        (event, line) => items.push(self.child(items.len().to_string(), event, line)?),
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
            let pointer =
                self.positions.is_some().then(|| format!("{}/{}", self.pointer(), crate::go::pointer_token(&key)));
            if let (Some(positions), Some(pointer)) = (&mut self.positions, pointer) {
                positions.keys.insert(pointer, (key_line, key_column + 1));
            }
            let (value_event, value_line) = self.expect_next()?;
            let value = self.child(key.clone(), value_event, value_line)?;
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
fn key_string(key: Json, line: usize) -> Result<String, YamlError> {
    match key {
        Json::String(s) => Ok(s),
        Json::Bool(b) => Ok(b.to_string()),
        Json::Number(n) if n.is_i64() => Ok(n.to_string()),
        // go-yaml formats float keys at 32 bits.
        Json::Number(n) => Ok(gotemplate::gofmt::format_float_bits(n.as_f64().unwrap_or(0.0), 'g', None, 32)),
        _ => Err(YamlError { message: "unsupported map key (a null, list or map)".into(), line: Some(line) }),
    }
}

/// A scalar as go-yaml v2 resolves it, converted to JSON.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>, line: usize) -> Result<Json, YamlError> {
    let plain = style == ScalarStyle::Plain;
    let resolved = match tag {
        Some("str") => Resolved::Str,
        Some("binary") => Resolved::Str,
        Some(_) | None if plain || tag.is_some() => resolve(text, Dialect::GoYamlV2),
        _ => Resolved::Str,
    };
    Ok(match resolved {
        Resolved::Str => Json::String(text.to_string()),
        Resolved::Null => Json::Null,
        Resolved::Bool(b) => Json::Bool(b),
        Resolved::Int(i) => Json::from(i),
        Resolved::Uint(u) => Json::from(u),
        Resolved::Float(f) => Json::Number(Number::from_f64(f).ok_or_else(|| YamlError {
            message: format!("json: unsupported value: {}", gotemplate::gofmt::format_float(f, 'g', None)),
            line: Some(line),
        })?),
    })
}

/// A value as go-yaml v2 sees it after sigs.k8s.io/yaml's JSON round trip.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in go-yaml's key order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The node JSON data becomes: objects' keys sorted as go-yaml sorts them.
    pub fn from_json(json: &Json) -> Node {
        match json {
            Json::Null => Node::Null,
            Json::Bool(b) => Node::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Node::Int(i),
                (None, Some(u)) => Node::Uint(u),
                _ => Node::from_float(n.as_f64().unwrap_or(0.0)),
            },
            Json::String(s) => Node::Str(s.clone()),
            Json::Array(items) => Node::Seq(items.iter().map(Node::from_json).collect()),
            Json::Object(map) => {
                let mut entries: Vec<(String, Node)> =
                    map.iter().map(|(k, v)| (k.clone(), Node::from_json(v))).collect();
                entries.sort_by(|a, b| natural_order(&a.0, &b.0, Flavor::V2));
                Node::Map(entries)
            }
        }
    }

    /// A float64 after encoding/json wrote it and go-yaml read it back: integral values that
    /// JSON writes without an exponent come back as integers.
    pub fn from_float(f: f64) -> Node {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
            if f >= i64::MIN as f64 && f < i64::MAX as f64 {
                return Node::Int(f as i64);
            }
            if f >= 0.0 && f < u64::MAX as f64 {
                return Node::Uint(f as u64);
            }
        }
        Node::Float(f)
    }
}

/// go-yaml's key order (`keyList.Less`): runs of digits compare as numbers, and a letter
/// sorts after anything that is not one (in v3, before it when the common prefix ends in a digit).
pub fn natural_order(a: &str, b: &str, flavor: Flavor) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let less = |a: &str, b: &str| -> bool {
        let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let digit = |c: char| c.is_ascii_digit();
        let mut digits = false;
        for i in 0..ar.len().min(br.len()) {
            if ar[i] == br[i] {
                digits = ar[i].is_numeric();
                continue;
            }
            let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
            if al && bl {
                return ar[i] < br[i];
            }
            if al || bl {
                return if digits && flavor == Flavor::V3 { al } else { bl };
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if ar[i] == '0' || br[i] == '0' {
                let mut j = i;
                while j > 0 && digit(ar[j - 1]) {
                    j -= 1;
                    if ar[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < ar.len() && digit(ar[ai]) {
                an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
                ai += 1;
            }
            let mut bi = i;
            while bi < br.len() && digit(br[bi]) {
                bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return ar[i] < br[i];
        }
        ar.len() < br.len()
    };
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Which go-yaml writes: v2 (`Marshal`, under sigs.k8s.io/yaml) or v3 (an `Encoder` with
/// `SetIndent(2)`). v3 indents lists under keys, never folds long lines, orders keys slightly
/// differently, and lets tabs into literal blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V2,
    V3,
}

/// go-yaml v2's `Marshal` of `node`, ending in a newline.
pub fn to_string(node: &Node) -> String {
    emit(node, Flavor::V2)
}

/// go-yaml v3's `Encoder.Encode` of `node` with indent 2, ending in a newline; `node`'s maps
/// must be in v3's key order ([`natural_order`] with [`Flavor::V3`]).
pub fn to_string_v3(node: &Node) -> String {
    emit(node, Flavor::V3)
}

fn emit(node: &Node, flavor: Flavor) -> String {
    let mut emitter = Emitter { out: String::new(), column: 0, indent: -1, whitespace: true, indention: true, flavor };
    emitter.node(node, Context::Root);
    if !emitter.out.ends_with('\n') {
        emitter.out.push('\n');
    }
    emitter.out
}

const BEST_INDENT: i64 = 2;
const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Root,
    SequenceItem,
    MappingKey,
    MappingValue,
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The state of libyaml's emitter that block-style output needs.
struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    whitespace: bool,
    indention: bool,
    flavor: Flavor,
}

impl Emitter {
    /// The column past which a space may become a line break: none in v3 (its width is -1).
    fn best_width(&self) -> usize {
        match self.flavor {
            Flavor::V2 => BEST_WIDTH,
            Flavor::V3 => usize::MAX,
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) -> i64 {
        let saved = self.indent;
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
        saved
    }

    fn node(&mut self, node: &Node, context: Context) {
        match node {
            Node::Seq(items) if items.is_empty() => self.flow_empty("[]"),
            Node::Map(entries) if entries.is_empty() => self.flow_empty("{}"),
            Node::Seq(items) => {
                let indentless = self.flavor == Flavor::V2 && context == Context::MappingValue && !self.indention;
                let saved = self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Context::SequenceItem);
                }
                self.indent = saved;
            }
            Node::Map(entries) => {
                let saved = self.increase_indent(false, false);
                for (key, value) in entries {
                    self.write_indent();
                    self.string(key, Context::MappingKey);
                    self.write_indicator(":", false, false, false);
                    self.node(value, Context::MappingValue);
                }
                self.indent = saved;
            }
            Node::Null => self.scalar("null", Style::Plain, context),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, context),
            Node::Int(i) => self.scalar(&i.to_string(), Style::Plain, context),
            Node::Uint(u) => self.scalar(&u.to_string(), Style::Plain, context),
            Node::Float(f) => {
                let text = match gotemplate::gofmt::format_float(*f, 'g', None).as_str() {
                    "+Inf" => ".inf".to_string(),
                    "-Inf" => "-.inf".to_string(),
                    "NaN" => ".nan".to_string(),
                    other => other.to_string(),
                };
                self.scalar(&text, Style::Plain, context)
            }
            Node::Str(s) => self.string(s, context),
        }
    }

    fn flow_empty(&mut self, text: &str) {
        let saved = self.increase_indent(true, false);
        self.write_indicator(&text[..1], true, true, false);
        self.write_indicator(&text[1..], false, false, false);
        self.indent = saved;
    }

    /// go-yaml's `stringv`: plain unless the text would read back as something else (or a
    /// base 60 float), literal when it has a newline.
    fn string(&mut self, s: &str, context: Context) {
        let can_plain =
            !s.is_empty() && resolve(s, Dialect::GoYamlV2) == Resolved::Str && !is_base60_float(s) && !is_timestamp(s);
        let style = if s.contains('\n') {
            Style::Literal
        } else if can_plain {
            Style::Plain
        } else {
            Style::Double
        };
        self.scalar(s, style, context)
    }

    fn scalar(&mut self, value: &str, requested: Style, context: Context) {
        let analysis = Analysis::of(value, self.flavor);
        let simple_key = context == Context::MappingKey;
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!analysis.block_plain_allowed || (value.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let saved = self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::Single => self.write_single(value, allow_breaks),
            Style::Double => self.write_double(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        self.write_folding(value, allow_breaks, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_single(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        self.write_folding(value, allow_breaks, true);
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The text of a plain or single-quoted scalar (libyaml's two loops, which differ only in
    /// these points): a space past the best width becomes a line break, line breaks are
    /// doubled; a quoted scalar never folds at its first or last character and doubles `'`.
    fn write_folding(&mut self, value: &str, allow_breaks: bool, single_quoted: bool) {
        let chars: Vec<char> = value.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inside = !single_quoted || (i > 0 && i < chars.len() - 1);
                if allow_breaks
                    && !spaces
                    && self.column > self.best_width()
                    && inside
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                breaks = self.write_text(c, breaks);
                if !breaks {
                    spaces = false;
                    if single_quoted && c == '\'' {
                        self.put('\'');
                    }
                }
            }
        }
    }

    /// One character of a scalar's text other than a folded space: a line break, after which
    /// the text is indented, or a character, indented first if it follows breaks (`breaks`).
    /// Returns whether it was a break.
    fn write_text(&mut self, c: char, breaks: bool) -> bool {
        if is_break(c) {
            self.write_break(c);
            self.indention = true;
            return true;
        }
        if breaks {
            self.write_indent();
        }
        self.put(c);
        self.indention = false;
        false
    }

    fn write_double(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    other => {
                        let v = other as u32;
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{v:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width() && i > 0 && i < chars.len() - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let chomp = match chars.len() {
            0 => Some("-"),
            n if !is_break(chars[n - 1]) => Some("-"),
            1 => Some("+"),
            n if is_break(chars[n - 2]) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            breaks = self.write_text(c, breaks);
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `is_printable`: tab and carriage return are not, nor anything beyond the BMP.
fn is_printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

/// What libyaml's `yaml_emitter_analyze_scalar` decides about a scalar (block context).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(value: &str, flavor: Flavor) -> Analysis {
        if value.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = value.chars().collect();
        let mut block_indicators = value.starts_with("---") || value.starts_with("...");
        let (mut line_breaks, mut special, mut tabs) = (false, false, false);
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
            (false, false, false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let last = chars.len() - 1;
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = i == last || matches!(chars[i + 1], ' ' | '\t');
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                        block_indicators = true
                    }
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            // v3 tells tabs apart: they rule out plain and single-quoted styles, not literal blocks.
            if c == '\t' && flavor == Flavor::V3 {
                tabs = true;
            } else if !is_printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= i == last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                leading_break |= i == 0;
                trailing_break |= i == last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = matches!(c, ' ' | '\t') || is_break(c);
        }
        let mut analysis = Analysis {
            multiline: line_breaks,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            analysis.block_plain_allowed = false;
        }
        if trailing_space {
            analysis.block_allowed = false;
        }
        if break_space {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || tabs || special {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || special {
            analysis.block_allowed = false;
        }
        if line_breaks || block_indicators {
            analysis.block_plain_allowed = false;
        }
        analysis
    }
}

/// go-yaml v2's `isBase60Float`: `1:20` reads as sexagesimal in YAML 1.1, so it is quoted.
/// go-yaml v2's `parseTimestamp`: whether `time.Parse` reads `s` with one of YAML's layouts
/// (`2006-1-2T15:4:5.999999999Z07:00`, its lower-case `t` form, `2006-1-2 15:4:5.999999999`,
/// `2006-1-2`), so a plain scalar of that text would be a timestamp, not a string.
fn is_timestamp(s: &str) -> bool {
    // `^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})|
    // [ ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?)?$`, read by hand: compiling the pattern cost more
    // than the rest of a small chart's render. Go's digits are ASCII. Every run of digits ends
    // at a non-digit, so taking as many as allowed never misses a match.
    let mut text = Cursor(s.as_bytes());
    let Some(year) = text.number(4, 4) else { return false };
    let (Some(month), Some(day)) = (text.after(b'-', 1, 2), text.after(b'-', 1, 2)) else { return false };
    let mut clock = None;
    if let Some(separator @ (b'T' | b't' | b' ')) = text.next_if(|b| matches!(b, b'T' | b't' | b' ')) {
        let (Some(hour), Some(minute), Some(second)) =
            (text.number(1, 2), text.after(b':', 1, 2), text.after(b':', 1, 2))
        else {
            return false;
        };
        if text.next_if(|b| b == b'.').is_some() && text.number(1, usize::MAX).is_none() {
            return false;
        }
        if separator != b' ' {
            let zoned = match text.next_if(|b| matches!(b, b'Z' | b'+' | b'-')) {
                Some(b'Z') => true,
                Some(_) => text.number(2, 2).is_some() && text.after(b':', 2, 2).is_some(),
                None => false,
            };
            if !zoned {
                return false;
            }
        }
        clock = Some((hour, minute, second));
    }
    if !text.0.is_empty() {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    let clock = clock.is_none_or(|(hour, minute, second)| hour < 24 && minute < 60 && second < 60);
    (1..=days).contains(&day) && clock
}

/// What is left of a text being read.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn next_if(&mut self, wanted: impl Fn(u8) -> bool) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        wanted(first).then(|| {
            self.0 = rest;
            first
        })
    }

    /// A run of `min` to `max` ASCII digits (as many as there are, up to `max`), as a number
    /// (`u32::MAX` past it).
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self.0.iter().take(max).take_while(|b| b.is_ascii_digit()).count();
        if n < min {
            return None;
        }
        let (digits, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(digits.iter().fold(0u32, |v, d| v.saturating_mul(10).saturating_add(u32::from(d - b'0'))))
    }

    /// `separator`, then `min` to `max` digits.
    fn after(&mut self, separator: u8, min: usize, max: usize) -> Option<u32> {
        self.next_if(|b| b == separator)?;
        self.number(min, max)
    }
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (body, _) = t.split_once('.').map_or((t, None), |(b, f)| (b, Some(f)));
    if let Some((_, frac)) = t.split_once('.')
        && !frac.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return false;
    }
    let mut parts = body.split(':');
    let Some(head) = parts.next() else { return false };
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        /// What the common subset reads, it reads as the go-yaml loader does.
        #[test]
        fn the_subset_reads_as_the_loader(text in weaver_arbitrary::arbitrary_yaml()) {
            if let Some(documents) = subset::stream(&text, GoValues) {
                let direct: Vec<Json> = documents.into_iter().flatten().filter(|v| !v.is_null()).collect();
                proptest::prop_assert_eq!(Ok(direct), load_documents(&text), "{}", text);
            }
        }

        /// The same on text shaped like rendered manifests, most of which the subset reads.
        #[test]
        fn the_subset_reads_manifests_as_the_loader(doc in crate::subset::tests::manifest_like()) {
            let text = format!("---\n{doc}\n");
            if let Some(documents) = subset::stream(&text, GoValues) {
                let direct: Vec<Json> = documents.into_iter().flatten().filter(|v| !v.is_null()).collect();
                proptest::prop_assert_eq!(Ok(direct), load_documents(&text), "{}", text);
            }
        }
    }
    use serde_json::json;

    fn yaml(json: Json) -> String {
        to_string(&Node::from_json(&json))
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let values =
            from_str("a: yes\nb: on\nc: 0777\nd: 1_000\ne: 08\nf: 2001-12-14\ng: ~\nh: '1'\ni: 0x1F\nj: 1e3\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            values,
            json!({"a": true, "b": true, "c": 511, "d": 1000, "e": 8.0, "f": "2001-12-14", "g": null, "h": "1", "i": 31, "j": 1000.0})
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let err =
            std::thread::Builder::new().stack_size(2 << 20).spawn(move || from_str(&deep)).unwrap().join().unwrap();
        assert!(err.is_err());
    }

    #[test]
    fn a_billion_laughs_is_an_error() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in
            ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            text.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
        }
        assert_eq!(from_str(&text).unwrap_err().message, "document contains excessive aliasing");
    }

    #[test]
    fn long_comment_blocks_are_skipped() {
        let text = format!("a:\n{}  b: 1\n", "  # commented-out example\n".repeat(500));
        assert_eq!(from_str(&text).unwrap().unwrap(), json!({"a": {"b": 1}}));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let values = from_str("base: &b {x: 1, z: 2}\nderived:\n  <<: *b\n  z: 3\n").unwrap().unwrap();
        assert_eq!(values["derived"], json!({"x": 1, "z": 3}));
        let tagged = from_str("base: &b {x: 1}\nderived:\n  !!merge <<: *b\n  w: 2\n").unwrap().unwrap();
        assert_eq!(tagged["derived"], json!({"x": 1, "w": 2}));
        // YAML 1.1: `y` and `n` are booleans, even as keys.
        assert_eq!(from_str("y: 1\nn: 2\n").unwrap().unwrap(), json!({"true": 1, "false": 2}));
    }

    #[test]
    fn emits_like_go_yaml_v2() {
        assert_eq!(yaml(json!({"b": [1, "two", {"c": null}], "a": {}})), "a: {}\nb:\n- 1\n- two\n- c: null\n");
        assert_eq!(
            yaml(json!({"s": ["true", "", "1:20", "a: b", " x", "#c", "x #c", "é"]})),
            "s:\n- \"true\"\n- \"\"\n- \"1:20\"\n- 'a: b'\n- ' x'\n- '#c'\n- 'x #c'\n- é\n"
        );
        assert_eq!(
            yaml(json!({"m": "line1\nline2\n", "nn": "x\n\n", "o": "a\tb", "y": 1, "p": [[1, 2]]})),
            "m: |\n  line1\n  line2\nnn: |+\n  x\n\no: \"a\\tb\"\np:\n- - 1\n  - 2\n\"y\": 1\n"
        );
        assert_eq!(yaml(json!({"a10": 1, "a9": 2, "a_": 3, "aB": 4})), "a_: 3\na9: 2\na10: 1\naB: 4\n");
        assert_eq!(yaml(json!(1.5e20)), "1.5e+20\n");
        // Dates and times read back as timestamps, so they are quoted; what time.Parse refuses is not.
        assert_eq!(
            yaml(json!([
                "2020-09-07",
                "2020-9-7",
                "2020-09-07T10:00:00Z",
                "2020-09-07t10:00:00.5+02:00",
                "2020-09-07 10:00:00"
            ])),
            "- \"2020-09-07\"\n- \"2020-9-7\"\n- \"2020-09-07T10:00:00Z\"\n- \"2020-09-07t10:00:00.5+02:00\"\n- \"2020-09-07 10:00:00\"\n"
        );
        assert_eq!(
            yaml(json!(["2020-09", "2020-09-07x", "2020-13-45", "2021-02-29"])),
            "- 2020-09\n- 2020-09-07x\n- 2020-13-45\n- 2021-02-29\n"
        );
        assert_eq!(yaml(json!(3.0)), "3\n");
    }

    /// The hand-written reader says yes to what go-yaml's layouts, written as a pattern, match
    /// (the calendar and clock checks aside, which both share).
    #[test]
    fn timestamps_are_read_as_the_layout_pattern_reads_them() {
        let pattern = regex::Regex::new(
            r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})| [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?)?$",
        )
        .unwrap();
        let date = ["2020-1-2", "2020-01-02", "202-01-02", "2020-001-02", "2020-01", "2020-01-2x"];
        let clock = ["", "T1:2:3", "t10:20:30", " 10:20:30", "T10:20", " 1:2:3.", "T1:2:3.45", " 1:2:3.45", "T1:2:345"];
        let zone = ["", "Z", "+02:00", "-2:00", "+02:0", "z", "+0200", " "];
        for d in date {
            for c in clock {
                for z in zone {
                    let case = format!("{d}{c}{z}");
                    assert_eq!(is_timestamp(&case), pattern.is_match(&case), "{case:?}");
                }
            }
        }
    }

    #[test]
    fn long_plain_strings_fold_after_column_80() {
        let words = "word ".repeat(20);
        let out = yaml(json!({ "k": words.trim_end() }));
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with("  word"), "{out}");
    }

    #[test]
    fn under_indented_quoted_continuations_read_as_go_yaml_reads_them() {
        // As a CRD generator writes long descriptions, and a template writes a quoted value.
        let crd =
            "properties:\n  kind:\n    description: 'Kind is a string\n    value: it''s folded.'\n    type: string\n";
        assert_eq!(
            documents(crd).unwrap(),
            [
                serde_json::json!({"properties": {"kind": {"description": "Kind is a string value: it's folded.", "type": "string"}}})
            ]
        );
        let env = "env:\n  - name: OPTS\n    value: \"\n    -Da=b \\\"c\\\"\n      \"\n  - name: B\n    value: x\n";
        let value = from_str(env).unwrap().unwrap();
        assert_eq!(value["env"][0]["value"], " -Da=b \"c\" ");
        assert_eq!(value["env"][1]["value"], "x");
        // Anything else under-indented is still an error, with its line.
        let error = documents("a:\n  b: 'x\n").unwrap_err();
        assert_eq!(error.line, Some(3), "{error}");
    }
}
