//! A direct loader for the YAML that templates and tools write: block mappings and sequences,
//! one-line flow collections, plain and quoted scalars (wrapped over lines too, as go-yaml and
//! controller-gen write long strings in CRDs), literal block scalars (`|`), comments and `---`
//! separators. serde-saphyr's general deserializer spends most of a large
//! render on such text (hundreds of instructions a byte); this reads it about ten times faster.
//!
//! It gives up (`None`) on anything outside that subset — anchors, aliases, tags, folded
//! (`>`) scalars, escaped line breaks, complex keys, directives, tabs outside literal blocks, duplicate keys — and
//! on anything it cannot be sure of; the caller then parses the text with serde-saphyr as before.
//! So the result is serde-saphyr's either way, and every error still comes from serde-saphyr
//! with its line and column. Plain scalars other than the commonest forms (words, decimal
//! integers, `true`, `false`, `null`, `~`) are resolved by serde-saphyr itself, with the
//! caller's options (YAML 1.1 booleans or strict ones, legacy octal), one scalar at a time.

use serde_json::{Map, Number, Value};

/// Every document of `text` as serde-saphyr with `options` would give it, or `None` when the
/// text leaves the subset. Empty documents (and the text before a first `---`) are `Null`, for
/// the caller to drop as it drops serde-saphyr's.
pub(crate) fn documents(text: &str, options: &serde_saphyr::Options) -> Option<Vec<Value>> {
    let documents = stream(text, Values { options })?;
    Some(documents.into_iter().map(|doc| doc.unwrap_or(Value::Null)).collect())
}

/// Every document of `text` as `build` makes them (`None` for an empty one), or `None` when the
/// text leaves the subset.
pub(crate) fn stream<'t, B: Build<'t>>(text: &'t str, build: B) -> Option<Vec<Option<B::Out>>> {
    // In blocks of bytes without an early exit, so that the compiler vectorises the scan.
    let control = |b: u8| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f;
    if text.as_bytes().chunks(64).any(|chunk| chunk.iter().fold(false, |seen, &b| seen | control(b)))
        || has_special_char(text)
    {
        return None;
    }
    let lines = lines(text);
    let kinds: Vec<Line> = lines.iter().map(|line| Line::of(line)).collect();
    let tabs = memchr::memchr(b'\t', text.as_bytes()).is_some();
    let loader = Loader { lines: &lines, kinds: &kinds, tabs, build };
    let mut documents = Vec::new();
    let mut start = 0;
    for (index, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("---") {
            if !rest.is_empty() && !rest.starts_with(' ') {
                continue; // `---x` is a plain scalar, which a document cannot start with here
            }
            if !is_blank_or_comment(rest) {
                return None; // `--- value`
            }
            documents.push(loader.document(start, index)?);
            start = index + 1;
        } else if line.starts_with("...") || line.starts_with('%') {
            return None;
        }
    }
    documents.push(loader.document(start, lines.len())?);
    Some(documents)
}

/// The lines of `text` (which holds no `\r`: see [`stream`]) as [`str::lines`] splits them,
/// found with a vectorised search: most lines of a chart's output are short, and a search per
/// line costs more than the line.
fn lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::with_capacity(text.len() / 32);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
        lines.push(&text[start..end]);
        start = end + 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Characters YAML refuses or treats specially: C1 controls, the byte order mark, non-characters,
/// and the line separators YAML 1.1 knows.
fn is_special_char(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{9f}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{2028}' | '\u{2029}')
}

/// Whether `text` holds a [`is_special_char`]: each is encoded starting with one of three bytes
/// (`C2` for C1 controls, `E2` for the line separators, `EF` for the others), found with a
/// vectorised search where decoding every character of a long text was not.
fn has_special_char(text: &str) -> bool {
    // None of the three is a continuation byte: each hit starts a character.
    memchr::memchr3_iter(0xc2, 0xe2, 0xef, text.as_bytes())
        .any(|at| text[at..].chars().next().is_some_and(is_special_char))
}

/// Deeper nesting is left to serde-saphyr, whose budget refuses it with an error.
const MAX_DEPTH: usize = 100;

/// Where a node starts: its line and byte column, from 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// What the loader makes of what it reads: JSON values ([`Values`]) or nodes that keep their
/// positions and plain scalars' text, for typed reading (`nodes::Nodes`).
pub(crate) trait Build<'t> {
    type Out;
    type Map;
    /// A plain scalar; `None` when it cannot be resolved here.
    fn plain(&self, text: &'t str, at: Pos) -> Option<Self::Out>;
    /// A quoted or block scalar.
    fn string(&self, text: String, at: Pos) -> Self::Out;
    /// An entry with no value.
    fn null(&self, at: Pos) -> Self::Out;
    fn seq(&self, items: Vec<Self::Out>, at: Pos) -> Self::Out;
    fn new_map(&self) -> Self::Map;
    /// `None` for a duplicate key (or [`Build::map`] finds it).
    fn insert(&self, map: &mut Self::Map, key: String, value: Self::Out) -> Option<()>;
    /// `None` for a duplicate key.
    fn map(&self, map: Self::Map, at: Pos) -> Option<Self::Out>;
}

/// A mapping's entries as read, made into a JSON map of exactly their number: a map grown
/// entry by entry keeps up to twice the room it needs, and rendered objects are mostly maps.
/// `None` for a duplicate key.
pub(crate) fn exact_map(entries: Vec<(String, Value)>) -> Option<Map<String, Value>> {
    let mut map = Map::with_capacity(entries.len());
    for (key, value) in entries {
        if map.insert(key, value).is_some() {
            return None;
        }
    }
    Some(map)
}

struct Loader<'a, 't, B> {
    lines: &'a [&'t str],
    /// Each line's kind, found once: the loader looks at most lines several times.
    kinds: &'a [Line],
    /// Whether any line holds a tab (which the subset leaves to the full parser): most texts
    /// have none, and then no line is searched for one.
    tabs: bool,
    build: B,
}

#[derive(Clone, Copy, PartialEq)]
enum Line {
    Blank,
    Comment,
    /// Content after this many spaces.
    Content(usize),
}

impl Line {
    fn of(text: &str) -> Line {
        let indent = indentation(text);
        match text.as_bytes().get(indent) {
            None => Line::Blank,
            Some(b'#') => Line::Comment,
            Some(_) => Line::Content(indent),
        }
    }
}

/// A line's indentation (spaces), eight bytes at a time: a CRD's lines are indented by dozens.
fn indentation(line: &str) -> usize {
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let bytes = line.as_bytes();
    let mut at = 0;
    while let Some(eight) = bytes[at..].first_chunk::<8>() {
        // In memory order whatever the byte order: the first byte that is no space is the lowest
        // set byte of a little-endian reading.
        let other = u64::from_le_bytes(*eight) ^ SPACES;
        if other != 0 {
            return at + (other.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + bytes[at..].iter().position(|&b| b != b' ').unwrap_or(bytes.len() - at)
}

fn is_blank_or_comment(text: &str) -> bool {
    let rest = &text[indentation(text)..];
    rest.is_empty() || (rest.starts_with('#') && (rest.len() < text.len() || text.starts_with('#')))
}

impl<'t, B: Build<'t>> Loader<'_, 't, B> {
    /// The next line at or after `from` (before `end`) holding content, with its indentation.
    fn next_content(&self, from: usize, end: usize) -> Option<(usize, usize)> {
        (from..end).find_map(|i| match self.kinds[i] {
            Line::Content(indent) => Some((i, indent)),
            Line::Blank | Line::Comment => None,
        })
    }

    /// The document between lines `start` and `end`: `Some(None)` when it holds nothing.
    fn document(&self, start: usize, end: usize) -> Option<Option<B::Out>> {
        let Some((line, indent)) = self.next_content(start, end) else { return Some(None) };
        let (value, next) = self.block(line, indent, end, None, 0)?;
        // Anything after the root node is a second root: not this subset (nor valid YAML).
        match self.next_content(next, end) {
            None => Some(Some(value)),
            Some(_) => None,
        }
    }

    /// The block node whose content starts at column `col` of line `line`; `parent` is the
    /// indentation of the collection holding it (for literal blocks). Returns the node and the
    /// first line after it.
    fn block(
        &self,
        line: usize,
        col: usize,
        end: usize,
        parent: Option<usize>,
        depth: usize,
    ) -> Option<(B::Out, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let text = self.lines[line];
        if self.tabs && text.contains('\t') {
            return None;
        }
        let content = &text[col..];
        if content == "-" || content.starts_with("- ") {
            return self.sequence(line, col, end, depth);
        }
        if key(content)?.is_some() {
            return self.mapping(line, col, end, depth);
        }
        let (value, next) = self.inline_value(line, col, end, parent.unwrap_or(0), depth)?;
        Some((value, next))
    }

    fn sequence(&self, mut line: usize, col: usize, end: usize, depth: usize) -> Option<(B::Out, usize)> {
        let start = Pos { line, col };
        let mut items = Vec::new();
        loop {
            let text = self.lines[line];
            let after = &text[col + 1..];
            let item_col = col + 1 + indentation(after);
            let (item, next) = if is_blank_or_comment(after) {
                self.value_below(line + 1, col, end, false, Pos { line, col: col + 1 }, depth)?
            } else {
                self.block(line, item_col, end, Some(col), depth + 1)?
            };
            items.push(item);
            match self.next_content(next, end) {
                Some((l, indent)) if indent == col => {
                    let content = &self.lines[l][col..];
                    if content == "-" || content.starts_with("- ") {
                        line = l;
                    } else {
                        return Some((self.build.seq(items, start), next));
                    }
                }
                Some((_, indent)) if indent > col => return None,
                _ => return Some((self.build.seq(items, start), next)),
            }
        }
    }

    fn mapping(&self, mut line: usize, col: usize, end: usize, depth: usize) -> Option<(B::Out, usize)> {
        let start = Pos { line, col };
        let mut map = self.build.new_map();
        loop {
            let text = self.lines[line];
            if self.tabs && text.contains('\t') {
                return None;
            }
            let (name, after_colon) = key(&text[col..])?.map(|(k, rest)| (k, col + rest))?;
            let rest = &text[after_colon..];
            let value_col = after_colon + indentation(rest);
            let (value, next) = if is_blank_or_comment(rest) {
                self.value_below(line + 1, col, end, true, Pos { line, col: after_colon }, depth)?
            } else {
                self.inline_value(line, value_col, end, col, depth + 1)?
            };
            self.build.insert(&mut map, name, value)?; // a duplicate key: serde-saphyr's error
            match self.next_content(next, end) {
                Some((l, indent)) if indent == col => {
                    let content = &self.lines[l][col..];
                    if content == "-" || content.starts_with("- ") {
                        return None; // a sequence entry among keys
                    }
                    line = l;
                }
                Some((_, indent)) if indent > col => return None,
                _ => return Some((self.build.map(map, start)?, next)),
            }
        }
    }

    /// The value of an entry with nothing after its `:` or `-`: a node on the lines below,
    /// indented more than the collection at `col` (or, under a key, a sequence at `col`), else null.
    fn value_below(
        &self,
        from: usize,
        col: usize,
        end: usize,
        under_key: bool,
        empty: Pos,
        depth: usize,
    ) -> Option<(B::Out, usize)> {
        match self.next_content(from, end) {
            Some((l, indent)) if indent > col => self.block(l, indent, end, Some(col), depth + 1),
            Some((l, indent))
                if under_key && indent == col && {
                    let content = &self.lines[l][col..];
                    content == "-" || content.starts_with("- ")
                } =>
            {
                self.sequence(l, col, end, depth + 1)
            }
            _ => Some((self.build.null(empty), from)),
        }
    }

    /// A node written on one line from column `col` (a scalar or a flow collection), or a
    /// literal block scalar starting there; `parent` is the indentation of the collection
    /// holding it. Returns it and the next line.
    fn inline_value(
        &self,
        line: usize,
        col: usize,
        end: usize,
        parent: usize,
        depth: usize,
    ) -> Option<(B::Out, usize)> {
        let text = &self.lines[line][col..];
        let at = Pos { line, col };
        match text.as_bytes().first()? {
            b'|' => self.literal(line, col, end, parent),
            b'[' | b'{' => {
                let (value, used) = self.flow(text, at, depth)?;
                rest_is_comment(&text[used..])?;
                Some((value, line + 1))
            }
            b'"' | b'\'' => {
                let (value, last, used) = self.quoted_lines(line, col, end, parent)?;
                rest_is_comment(&self.lines[last][used..])?;
                Some((self.build.string(value, at), last + 1))
            }
            _ => {
                let scalar = plain(text, false)?;
                let commented = text[scalar.len()..].trim_start_matches(' ').starts_with('#');
                match self.continued_plain(scalar, line + 1, end, parent, commented)? {
                    Some((folded, next)) => Some((self.build.string(folded, at), next)),
                    None => Some((self.build.plain(scalar, at)?, line + 1)),
                }
            }
        }
    }

    /// A plain scalar that goes on over the lines from `from` indented past `parent` (as go-yaml
    /// wraps long strings), folded: a line break becomes a space, each empty line a break.
    /// `Some(None)` when no line continues `first`; `None` when a continuation leaves the subset.
    fn continued_plain(
        &self,
        first: &str,
        from: usize,
        end: usize,
        parent: usize,
        commented: bool,
    ) -> Option<Option<(String, usize)>> {
        let mut folded: Option<String> = None;
        let (mut line, mut next, mut empty) = (from, from, 0);
        let mut ended = commented;
        while line < end {
            let text = self.lines[line];
            let indent = match self.kinds[line] {
                Line::Blank => {
                    empty += 1;
                    line += 1;
                    continue;
                }
                Line::Comment => break,
                Line::Content(indent) if indent <= parent => break,
                Line::Content(indent) => indent,
            };
            let content = &text[indent..];
            // After a comment nothing continues the scalar (YAML refuses the line); a timestamp
            // may hold spaces (`2001-12-14 21:59:43`), and a tab is the parser's to judge.
            if ended || (self.tabs && text.contains('\t')) || first.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            let scalar = plain_text(content, false)?;
            ended = scalar.len() < content.trim_end_matches(' ').len();
            let out = folded.get_or_insert_with(|| first.to_string());
            if empty == 0 {
                out.push(' ');
            }
            out.extend(std::iter::repeat_n('\n', empty));
            out.push_str(scalar);
            empty = 0;
            line += 1;
            next = line;
        }
        Some(folded.map(|folded| (folded, next)))
    }

    /// A quoted scalar from column `col` of `line`, closed there or on a line below indented
    /// past `parent` (controller-gen wraps long descriptions so), folded as YAML folds flow
    /// scalars: a line's trailing and the next line's leading spaces go, a line break becomes a
    /// space, each empty line a break. Returns its value, the line it closes on and the byte just
    /// past its closing quote. An escaped line break, or a line indented no more than `parent`
    /// (which go-yaml accepts and YAML refuses), is left to the parsers.
    fn quoted_lines(&self, line: usize, col: usize, end: usize, parent: usize) -> Option<(String, usize, usize)> {
        let quote = self.lines[line].as_bytes()[col];
        let mut out = String::new();
        let (mut line, mut start) = (line, col + 1);
        loop {
            // A quote is not a space: trimming keeps the closing quote, if this line holds it.
            let piece = self.lines[line][start..].trim_end_matches(' ');
            if let Some(used) = quoted_part(piece, quote, &mut out)? {
                return Some((out, line, start + used));
            }
            let mut empty = 0;
            loop {
                line += 1;
                if line >= end {
                    return None;
                }
                let text = self.lines[line];
                let indent = indentation(text);
                if indent == text.len() {
                    empty += 1;
                } else if indent <= parent {
                    return None;
                } else {
                    start = indent;
                    break;
                }
            }
            if empty == 0 {
                out.push(' ');
            }
            out.extend(std::iter::repeat_n('\n', empty));
        }
    }

    /// `|`, `|-` or `|+` and the lines below it, indented past `parent`.
    fn literal(&self, line: usize, col: usize, end: usize, parent: usize) -> Option<(B::Out, usize)> {
        let header = &self.lines[line][col..];
        let (chomp, comment) = match header.as_bytes().get(1) {
            Some(b'-') => ('-', &header[2..]),
            Some(b'+') => ('+', &header[2..]),
            _ => ('c', &header[1..]),
        };
        if !comment.is_empty() && !comment.starts_with(' ') || !is_blank_or_comment(comment) {
            return None; // an indentation indicator, or text after the header
        }
        let first = (line + 1..end).find(|&i| self.kinds[i] != Line::Blank)?;
        let indent = indentation(self.lines[first]);
        if indent <= parent {
            return None; // an empty block scalar: rare enough to leave to serde-saphyr
        }
        let mut body = String::new();
        let mut next = line + 1;
        while next < end {
            let text = self.lines[next];
            let spaces = indentation(text);
            if spaces == text.len() {
                if spaces > indent {
                    return None; // spaces past the indentation on an empty line: leave it
                }
                body.push('\n');
            } else if spaces >= indent {
                body.push_str(&text[indent..]);
                body.push('\n');
            } else {
                if text.trim_start_matches(' ').starts_with('\t') {
                    return None;
                }
                break;
            }
            next += 1;
        }
        let content = body.trim_end_matches('\n').len();
        match chomp {
            '-' => body.truncate(content),
            'c' => body.truncate(if content == 0 { 0 } else { content + 1 }),
            _ => {}
        }
        Some((self.build.string(body, Pos { line, col }), next))
    }

    /// A flow collection at the start of `text` (at `at`): its value and the bytes it used.
    fn flow(&self, text: &'t str, at: Pos, depth: usize) -> Option<(B::Out, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let bytes = text.as_bytes();
        let close = if bytes[0] == b'[' { b']' } else { b'}' };
        let mut i = 1;
        let mut items = Vec::new();
        let mut map = self.build.new_map();
        let mut entries = 0;
        loop {
            i += indentation(&text[i..]);
            if bytes.get(i) == Some(&close) && entries == 0 {
                break;
            }
            entries += 1;
            if close == b'}' {
                let (name, used) = flow_key(&text[i..])?;
                i += used;
                i += indentation(&text[i..]);
                let (value, used) = self.flow_node(&text[i..], Pos { col: at.col + i, ..at }, depth + 1)?;
                i += used;
                self.build.insert(&mut map, name, value)?;
            } else {
                let (value, used) = self.flow_node(&text[i..], Pos { col: at.col + i, ..at }, depth + 1)?;
                items.push(value);
                i += used;
            }
            i += indentation(&text[i..]);
            match bytes.get(i)? {
                b',' => i += 1,
                &b if b == close => break,
                _ => return None,
            }
        }
        let value = if close == b']' { self.build.seq(items, at) } else { self.build.map(map, at)? };
        Some((value, i + 1))
    }

    /// A node inside a flow collection (at `at`): its value and the bytes it used.
    fn flow_node(&self, text: &'t str, at: Pos, depth: usize) -> Option<(B::Out, usize)> {
        match text.as_bytes().first()? {
            b'[' | b'{' => self.flow(text, at, depth),
            b'"' | b'\'' => quoted(text).map(|(s, used)| (self.build.string(s, at), used)),
            _ => {
                let scalar = plain(text, true)?;
                // `[a: b]` is a one-pair mapping; `{a}` a key without value: leave both.
                let after = &text[scalar.len()..];
                if after.trim_start_matches(' ').starts_with(':') {
                    return None;
                }
                Some((self.build.plain(scalar, at)?, scalar.len()))
            }
        }
    }
}

/// A flow mapping's key and its `:`.
fn flow_key(text: &str) -> Option<(String, usize)> {
    let (name, used) = match text.as_bytes().first()? {
        b'"' | b'\'' => quoted(text)?,
        _ => {
            let scalar = plain(text, true)?;
            (plain_key(scalar)?, scalar.len())
        }
    };
    let spaces = indentation(&text[used..]);
    (text.as_bytes().get(used + spaces) == Some(&b':')).then_some((name, used + spaces + 1))
}

/// Builds JSON values, resolving plain scalars as serde-saphyr with `options` would.
struct Values<'o> {
    options: &'o serde_saphyr::Options,
}

impl<'t> Build<'t> for Values<'_> {
    type Out = Value;
    type Map = Vec<(String, Value)>;
    fn plain(&self, text: &'t str, _: Pos) -> Option<Value> {
        resolve(text, self.options)
    }
    fn string(&self, text: String, _: Pos) -> Value {
        Value::String(text)
    }
    fn null(&self, _: Pos) -> Value {
        Value::Null
    }
    fn seq(&self, mut items: Vec<Value>, _: Pos) -> Value {
        items.shrink_to_fit(); // as for maps (see exact_map)
        Value::Array(items)
    }
    fn new_map(&self) -> Self::Map {
        Vec::new()
    }
    fn insert(&self, map: &mut Self::Map, key: String, value: Value) -> Option<()> {
        map.push((key, value));
        Some(())
    }
    fn map(&self, map: Self::Map, _: Pos) -> Option<Value> {
        exact_map(map).map(Value::Object)
    }
}

/// A plain scalar's value: the common forms here, the rest by serde-saphyr with `options`.
pub(crate) fn resolve(scalar: &str, options: &serde_saphyr::Options) -> Option<Value> {
    let bytes = scalar.as_bytes();
    match bytes[0] {
        b'0'..=b'9' if bytes.iter().all(u8::is_ascii_digit) && (bytes[0] != b'0' || bytes.len() == 1) => {
            if bytes.len() <= 19 {
                return Some(Value::Number(Number::from(scalar.parse::<u64>().ok()?)));
            }
        }
        b'-' if bytes.len() > 1
            && bytes.len() <= 19
            && bytes[1] != b'0'
            && bytes[1..].iter().all(u8::is_ascii_digit) =>
        {
            return Some(Value::Number(Number::from(scalar.parse::<i64>().ok()?)));
        }
        b'a'..=b'z' | b'A'..=b'Z' => match scalar {
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            "null" => return Some(Value::Null),
            _ if !is_special_word(scalar) => return Some(Value::String(scalar.to_string())),
            _ => {}
        },
        b'~' if bytes.len() == 1 => return Some(Value::Null),
        // Alone, these would read as document markers.
        b'-' | b'.' if scalar.starts_with("---") || scalar.starts_with("...") => {
            return Some(Value::String(scalar.to_string()));
        }
        b'0'..=b'9' | b'-' | b'+' | b'.' => {}
        _ => return Some(Value::String(scalar.to_string())),
    }
    // Floats, other radices, YAML 1.1 booleans, null spellings: serde-saphyr decides.
    match serde_saphyr::from_str_with_options::<Value>(scalar, options.clone()).ok()? {
        value @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => Some(value),
        _ => None,
    }
}

/// Words some YAML reader resolves to something other than a string: booleans and nulls in
/// any case, and infinities and NaNs as Rust's float parser spells them.
fn is_special_word(word: &str) -> bool {
    crate::resolve::is_word_in_any_case(word)
        || ["inf", "infinity", "nan"].iter().any(|float| float.eq_ignore_ascii_case(word))
}

/// Nothing but spaces and a comment (which needs a space before its `#`).
fn rest_is_comment(rest: &str) -> Option<()> {
    if rest.is_empty() || (rest.starts_with(' ') && is_blank_or_comment(rest)) { Some(()) } else { None }
}

/// The key of a block mapping entry at the start of `content`, with the offset just past its
/// `:`; `Some(None)` when the line is not a mapping entry; `None` when it cannot be read here.
fn key(content: &str) -> Option<Option<(String, usize)>> {
    let bytes = content.as_bytes();
    match bytes[0] {
        b'"' | b'\'' => {
            let mut name = String::new();
            // Not closed on this line: no key (keys are one line), maybe a multi-line value.
            let Some(used) = quoted_part(&content[1..], bytes[0], &mut name)? else { return Some(None) };
            let used = used + 1;
            let spaces = indentation(&content[used..]);
            let after = used + spaces;
            if bytes.get(after) == Some(&b':') && matches!(bytes.get(after + 1), None | Some(b' ')) {
                return Some(Some((name, after + 1)));
            }
            Some(None)
        }
        b'?' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`' | b'>' => None,
        b'[' | b'{' | b'#' | b'|' => Some(None),
        _ => {
            let mut previous = b' ';
            for (i, &b) in bytes.iter().enumerate() {
                match b {
                    b'#' if previous == b' ' => return Some(None),
                    b':' if matches!(bytes.get(i + 1), None | Some(b' ')) => {
                        let name = content[..i].trim_end_matches(' ');
                        if name.is_empty() || name.len() > 1024 {
                            return None;
                        }
                        return Some(Some((plain_key(name)?, i + 1)));
                    }
                    _ => {}
                }
                previous = b;
            }
            Some(None)
        }
    }
}

/// A plain key as a string, when serde-saphyr would surely read it so: words that are not
/// booleans, nulls or numbers, and not the merge key `<<`.
fn plain_key(name: &str) -> Option<String> {
    let first = name.as_bytes()[0];
    let plain_word = first.is_ascii_alphabetic() && !is_special_word(name);
    let other = !first.is_ascii_alphanumeric() && !matches!(first, b'-' | b'+' | b'.' | b'~' | b'<' | b':' | b'?');
    (plain_word || other).then(|| name.to_string())
}

/// A plain scalar at the start of `text`. In a block (`flow` false) it fills the rest of the
/// line up to a comment, and is refused when it holds `: ` (a mapping where none may be); in a
/// flow collection it ends at a flow indicator or `:` before one, and a comment is refused.
fn plain(text: &str, flow: bool) -> Option<&str> {
    if starts_with_indicator(text.as_bytes()) {
        return None;
    }
    plain_text(text, flow)
}

/// [`plain`] past its first character: where a plain scalar's line continues it, an indicator
/// (`- `, `[`, `&`…) is text.
fn plain_text(text: &str, flow: bool) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut end = text.len();
    let mut previous = b'x';
    for (i, &b) in bytes.iter().enumerate() {
        let ends_key = match bytes.get(i + 1) {
            None | Some(b' ') => true,
            Some(b',' | b']' | b'}' | b'[' | b'{') => flow,
            _ => false,
        };
        match b {
            b',' | b'[' | b']' | b'{' | b'}' if flow => {
                end = i;
                break;
            }
            b'#' if previous == b' ' && !flow => {
                end = i;
                break;
            }
            b'#' if previous == b' ' => return None,
            b':' if ends_key && flow => {
                end = i;
                break;
            }
            b':' if ends_key => return None,
            _ => {}
        }
        previous = b;
    }
    let scalar = text[..end].trim_end_matches(' ');
    (!scalar.is_empty()).then_some(scalar)
}

fn starts_with_indicator(bytes: &[u8]) -> bool {
    match bytes.first() {
        None => true,
        Some(b'-' | b'?' | b':') => matches!(bytes.get(1), None | Some(b' ')) || bytes[0] != b'-',
        Some(
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@'
            | b'`',
        ) => true,
        Some(_) => false,
    }
}

/// A quoted scalar at the start of `text`, closed on the same line: its value and the bytes it
/// used. Escapes outside the common ones, and surrogates, are left to serde-saphyr.
fn quoted(text: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let used = quoted_part(&text[1..], text.as_bytes()[0], &mut out)??;
    Some((out, used + 1))
}

/// Reads `text`, the rest of a line inside a scalar quoted by `quote`, onto `out`: `Some(Some(n))`
/// when it closes, `n` bytes in (with the quote); `Some(None)` when the line ends inside it;
/// `None` for what is left to serde-saphyr (a tab, an uncommon escape, a surrogate, a
/// backslash ending the line).
fn quoted_part(text: &str, quote: u8, out: &mut String) -> Option<Option<usize>> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\t' => return None,
            '\'' if quote == b'\'' => {
                if text[i + 1..].starts_with('\'') {
                    out.push('\'');
                    chars.next();
                } else {
                    return Some(Some(i + 1));
                }
            }
            '"' if quote == b'"' => return Some(Some(i + 1)),
            '\\' if quote == b'"' => {
                let (_, escape) = chars.next()?;
                let hex = |chars: &mut std::str::CharIndices, n: usize| -> Option<char> {
                    let mut code = 0u32;
                    for _ in 0..n {
                        code = code * 16 + chars.next()?.1.to_digit(16)?;
                    }
                    char::from_u32(code)
                };
                out.push(match escape {
                    '\\' => '\\',
                    '"' => '"',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'e' => '\u{1b}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    ' ' => ' ',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    Some(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    fn saphyr(text: &str) -> Option<Vec<Value>> {
        serde_saphyr::from_str_multiple_with_options(text, crate::options()).ok()
    }

    /// The subset's reading of `text` (its non-empty documents), checked against serde-saphyr's.
    fn agreed(text: &str) -> Option<Vec<Value>> {
        let fast: Option<Vec<Value>> =
            documents(text, &crate::options()).map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect());
        if let Some(docs) = &fast {
            let docs: Vec<&Value> = docs.iter().collect();
            let reference =
                saphyr(text).unwrap_or_else(|| panic!("the subset read what serde-saphyr refuses:\n{text}"));
            let reference: Vec<&Value> = reference.iter().filter(|d| !d.is_null()).collect();
            assert_eq!(docs, reference, "for:\n{text}");
        }
        fast
    }

    #[test]
    fn indentation_counts_the_leading_spaces_of_lines_of_every_length() {
        for spaces in 0..40 {
            for rest in ["", "a", "\t", "- x", "é", " "] {
                for tail in 0..10 {
                    let line = format!("{}{rest}{}", " ".repeat(spaces), "b".repeat(tail));
                    let expected = line.bytes().position(|b| b != b' ').unwrap_or(line.len());
                    assert_eq!(indentation(&line), expected, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn lines_are_split_as_str_lines_splits_them() {
        for text in ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n\n", "\n\na"] {
            assert_eq!(lines(text), text.lines().collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn manifests_as_templates_write_them_are_read_directly() {
        let text = "\
# Source: x
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the name
  labels: {app: web, tier: 'front', \"q\": \"a\\tb\"}
  annotations:
    checksum/config: 3f2a
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    spec:
      containers:
      - name: app
        image: \"registry/x:1.0\"
        args: [--port, '8080', -v, 1]
        env:
          - name: A
            value: 'it''s'
          -   name: B
              value:
        ports:
          - containerPort: 8080
            protocol: TCP
      - name: sidecar
        command:
        - sh
        - -c
        - |
          echo a
            indented

          echo b
---
apiVersion: v1
kind: ConfigMap
data:
  keep: |+
    x

  strip: |-
    y
  empty: ''
  nothing:
  enabled: true
  count: -12
  url: http://a:80/b
...";
        assert!(documents(text, &crate::options()).is_none(), "`...` is left to serde-saphyr");
        let text = text.trim_end_matches("...");
        let docs = agreed(text).expect("read directly");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][1]["command"][2],
            "echo a\n  indented\n\necho b\n"
        );
        assert_eq!(docs[1]["data"]["keep"], "x\n\n");
    }

    #[test]
    fn wrapped_plain_scalars_are_folded() {
        let text = "a:\n  description: A long\n    text - wrapped\n\n    [here]\n  b: 1\n- x\n";
        assert!(agreed(text).is_none(), "a sequence entry among keys");
        let docs = agreed(&text[..text.len() - 4]).expect("read directly");
        assert_eq!(docs[0]["a"]["description"], "A long text - wrapped\n[here]");
        assert_eq!(docs[0]["a"]["b"], 1);
        let docs = agreed("- one\n  two # c\n- three\n").expect("read directly");
        assert_eq!(docs[0], serde_json::json!(["one two", "three"]));
    }

    #[test]
    fn wrapped_quoted_scalars_are_folded() {
        // As controller-gen wraps a CRD's long descriptions.
        let text =
            "a:\n  description: 'The name, i.e:  \n    tls'''\n  b: \"x\n\n    \\u00e9 \"  # c\n- \"one\n  two\"\n";
        assert!(agreed(text).is_none(), "a sequence entry among keys");
        let docs = agreed(&text[..text.len() - 14]).expect("read directly");
        assert_eq!(docs[0]["a"]["description"], "The name, i.e: tls'");
        assert_eq!(docs[0]["a"]["b"], "x\né ");
        let docs = agreed("- \"one\n  two\"\n- '\n\n  '\n").expect("read directly");
        assert_eq!(docs[0], serde_json::json!(["one two", "\n"]));
    }

    #[test]
    fn scalars_resolve_as_serde_saphyr_resolves_them() {
        for scalar in [
            "1",
            "0",
            "-3",
            "012",
            "0x1F",
            "0o17",
            "1_000",
            "+5",
            "1.5",
            "-.5",
            "1e3",
            ".inf",
            "-.Inf",
            ".nan",
            "yes",
            "No",
            "ON",
            "True",
            "FALSE",
            "Null",
            "NULL",
            "~",
            "y",
            "n",
            "inf",
            "nan",
            "infinity",
            "Infinity",
            "INF",
            "NaN",
            "info",
            "inform",
            "nanny",
            "Nano",
            "infinity2",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1:2",
            "a b",
            "@x",
            "-",
            "-x",
            "12345678901234567890",
            "3.0.1",
            "v1",
            "é",
            "1e400",
        ] {
            let text = format!("a: {scalar}\nb: [{scalar}]\n");
            agreed(&text);
        }
    }

    #[test]
    fn what_the_subset_does_not_read_is_left_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: >\n  folded\n",
            "a: \"two \\\n  lines\"\n",
            "a:\n  b: 'under\n  indented'\n",
            "a: 'not closed\n  at all\n",
            "? complex\n: key\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\na: 2\n",
            "<<: {a: 1}\n",
            "a:\tb\n",
            "--- text\n",
            "a: [1,\n 2]\n",
            "a: |2\n   x\n",
            "a: b: c\n",
            "- a\nb: c\n",
        ] {
            assert!(documents(text, &crate::options()).is_none(), "read directly:\n{text}");
        }
    }

    #[test]
    fn nesting_past_the_limit_is_left_to_serde_saphyr() {
        let deep = format!("a: {}{}\n", "[".repeat(MAX_DEPTH + 5), "]".repeat(MAX_DEPTH + 5));
        assert!(documents(&deep, &crate::options()).is_none());
        let deep: String = (0..MAX_DEPTH + 5).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(documents(&deep, &crate::options()).is_none());
    }

    /// A node as templates write them, in the syntax the subset reads and some it leaves,
    /// indented by `indent` under its parent (`key:` or `-`).
    pub(crate) fn manifest_like() -> impl Strategy<Value = String> {
        const SCALARS: &[&str] = &[
            "web",
            "a b",
            "8080",
            "0",
            "-1",
            "1.5",
            "true",
            "false",
            "null",
            "~",
            "yes",
            "Off",
            "0x1f",
            "012",
            "1e3",
            "'q''s'",
            "\"d\\\"q\"",
            "\"\\u00e9\\t\"",
            "''",
            "\"\"",
            "http://a:1/b",
            "a#b",
            "é",
            "[]",
            "{}",
            "[a, 'b', 1]",
            "{k: v, 'q': 2}",
            "[{a: 1}, [b]]",
            "--x",
            "---",
            "...x",
            "@x",
            "a: b",
            "- x",
            "&a x",
            "*a",
            "!!str 1",
            ">\n  folded",
            "multi\n  line",
            "multi\n  line\n\n  - para # c",
            "multi\n  [line\n\n\n  & more",
            "wrapped # c\n  line",
            "two\n  a: b",
            "2001-12-14\n  21:59:43.10",
            "'wrapped\n  quote'",
            "'trailing  \n    spaces ''q'''",
            "\"dq\n  two\n\n  \\u00e9 \\\\\n\n\n  # three\"",
            "\"escaped \\\n  break\"",
            "'\n  '",
            "'open\n  a: b",
            "'x\n  y' z",
        ];
        const KEYS: &[&str] =
            &["name", "app.kubernetes.io/name", "'quoted'", "\"dq\"", "a b", "1", "y", "<<", "_x", "$ref"];
        let scalar = proptest::sample::select(SCALARS).prop_map(str::to_string);
        let literal = (
            proptest::sample::select(&["|", "|-", "|+", "| # c"][..]),
            proptest::collection::vec(proptest::sample::select(&["x", "  y", "", "# z", "a: b", "- c"][..]), 1..4),
        )
            .prop_map(|(header, lines)| {
                format!(
                    "{header}\n{}",
                    lines
                        .iter()
                        .map(|l| if l.is_empty() { String::new() } else { format!("  {l}") })
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
        let leaf = prop_oneof![4 => scalar, 1 => literal];
        leaf.prop_recursive(4, 40, 5, |inner| {
            let key = proptest::sample::select(KEYS);
            let comment = proptest::sample::select(&["", "", "", "  # note", "\n# between", "\n"][..]);
            prop_oneof![
                proptest::collection::vec((key, inner.clone(), comment.clone()), 1..4).prop_map(|entries| {
                    let lines: Vec<String> = entries
                        .iter()
                        .map(|(k, v, c)| {
                            if v.contains('\n') && !v.starts_with('|') && !v.starts_with('>') {
                                format!("{k}:{c}\n  {}", v.replace('\n', "\n  "))
                            } else {
                                format!("{k}: {}{c}", v.replace('\n', "\n  "))
                            }
                        })
                        .collect();
                    lines.join("\n")
                }),
                (proptest::collection::vec((inner, comment), 1..4), any::<bool>()).prop_map(|(items, wide)| {
                    let pad = if wide { "   " } else { " " };
                    let indent = " ".repeat(pad.len() + 1);
                    items
                        .iter()
                        .map(|(v, c)| format!("-{pad}{}{c}", v.replace('\n', &format!("\n{indent}"))))
                        .collect::<Vec<_>>()
                        .join("\n")
                }),
            ]
        })
    }

    /// The agreement test means something only if the subset reads much of what it is given.
    #[test]
    fn the_subset_reads_most_manifest_like_text() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = manifest_like();
        let read = (0..1000)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                agreed(&format!("---\n{text}\n")).is_some()
            })
            .count();
        assert!(read >= 300, "only {read} of 1000 read directly");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Whatever the subset reads, it reads as serde-saphyr does.
        #[test]
        fn the_subset_agrees_with_serde_saphyr(text in weaver_arbitrary::arbitrary_yaml()) {
            agreed(&text);
        }

        /// The same on text shaped like rendered manifests, where the subset reads most of it;
        /// under keys, as documents, indented or not.
        #[test]
        fn the_subset_agrees_with_serde_saphyr_on_manifests(docs in proptest::collection::vec((manifest_like(), any::<bool>()), 1..3)) {
            let text: String = docs
                .iter()
                .map(|(doc, under_key)| if *under_key { format!("---\nroot:\n  {}\n", doc.replace('\n', "\n  ")) } else { format!("---\n{doc}\n") })
                .collect();
            agreed(&text);
        }
    }
}
