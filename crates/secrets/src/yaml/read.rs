//! Reading secrets YAML with its comments.
//!
//! Walks the stream as `weaver_yaml`'s other readers do ([`Walk`], which says whether a scalar
//! is a key or a value), with comments kept as events with their position. Scalars resolve the
//! way sops' YAML library (go-yaml v3) resolves them, so a value hashes into the MAC exactly as
//! sops hashes it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use base64::Engine;
use serde_saphyr::granit_parser::{Event, Placement, ScalarStyle, Span, StructureStyle, Tag};

use crate::SecretsError;
use crate::tree::{Item, Mapping, Sequence, Value};
use weaver_yaml::events::{Role, Step, Unwalkable, Walk};
use weaver_yaml::resolve::{self as go_yaml, Dialect, Resolved};

const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<Mapping>, SecretsError> {
    let mut builder = Builder {
        path,
        lines: text.lines().collect(),
        stack: Vec::new(),
        docs: Vec::new(),
        loose: Vec::new(),
        anchors: HashMap::new(),
    };
    let mut walk = Walk::keeping_comments(text);
    while let Some(step) = walk.step() {
        match step {
            Ok(step) => builder.step(step)?,
            Err(Unwalkable::Scan(e)) => {
                return Err(SecretsError::Parse {
                    path: path.to_owned(),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    message: e.info(),
                });
            }
            Err(Unwalkable::ComplexKey(span)) => {
                return Err(builder.error(&span, "complex mapping keys are not supported".into()));
            }
        }
    }
    Ok(builder.finish())
}

struct Builder<'t> {
    path: &'t Path,
    lines: Vec<&'t str>,
    stack: Vec<Frame>,
    docs: Vec<Mapping>,
    /// Own-line comments outside any root mapping (before a document's content).
    loose: Vec<String>,
    anchors: HashMap<usize, Value>,
}

struct Frame {
    container: Container,
    /// Column of a block collection's keys or dashes; `None` for flow collections.
    indent: Option<usize>,
    anchor: usize,
    /// Comments that belong to this collection but sit after the child still being read
    /// (a comment at this frame's indentation that arrives before the child's end event).
    after: Vec<String>,
}

enum Container {
    Map { items: Mapping, keys: HashSet<String>, pending: Option<PendingKey> },
    Seq(Sequence),
}

/// A mapping key whose value has not been read yet.
struct PendingKey {
    key: String,
    comment: Option<String>,
    /// Own-line comments between the key and its value.
    between: Vec<LooseComment>,
}

struct LooseComment {
    text: String,
    line: usize,
    col: usize,
}

impl Container {
    fn push_comment(&mut self, text: String) {
        match self {
            Container::Map { items, .. } => items.push(Item::Comment(text)),
            Container::Seq(items) => items.push(Item::Comment(text)),
        }
    }

    /// The line-comment slot of the last entry, if the last item is an entry without one.
    fn last_entry_comment(&mut self) -> Option<&mut Option<String>> {
        let slot = match self {
            Container::Map { items, .. } => match items.last_mut() {
                Some(Item::Entry { comment, .. }) => comment,
                _ => return None,
            },
            Container::Seq(items) => match items.last_mut() {
                Some(Item::Entry { comment, .. }) => comment,
                _ => return None,
            },
        };
        slot.is_none().then_some(slot)
    }
}

impl Builder<'_> {
    fn error(&self, span: &Span, message: String) -> SecretsError {
        SecretsError::Parse {
            path: self.path.to_owned(),
            line: span.start.line(),
            column: span.start.col() + 1,
            message,
        }
    }

    fn step(&mut self, Step { event, span, role }: Step<'_>) -> Result<(), SecretsError> {
        match (role, event) {
            (_, Event::Comment(text, placement)) => self.comment(text.into_owned(), placement, &span),
            (Role::Key, Event::Scalar(raw, style, _, tag)) => {
                let key = resolve(raw.into_owned(), style, tag.as_deref()).map_err(|m| self.error(&span, m))?;
                self.key(key, &span)?
            }
            // go-yaml takes an alias as a key; sops' files have no use for one.
            (Role::Key, _) => return Err(self.error(&span, "an alias as a key is not supported; write the key".into())),
            (Role::Node, Event::Scalar(raw, style, anchor, tag)) => {
                let value = resolve(raw.into_owned(), style, tag.as_deref()).map_err(|m| self.error(&span, m))?;
                self.node(value, anchor, &span)?
            }
            (Role::Node, Event::Alias(id)) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.error(&span, "alias to an unknown anchor".into()))?;
                self.node(value, 0, &span)?
            }
            (Role::Node, Event::MappingStart(style, anchor, _)) => self.open(true, style, anchor, &span)?,
            (Role::Node, Event::SequenceStart(style, anchor, _)) => self.open(false, style, anchor, &span)?,
            (Role::End, _) => self.close(&span)?,
            _ => {}
        }
        Ok(())
    }

    /// A mapping's key (the walk names keys only inside a mapping).
    fn key(&mut self, key: Value, span: &Span) -> Result<(), SecretsError> {
        // sops (like go-yaml) only supports string keys; the key text is not secret.
        let Value::Str(key) = key else {
            return Err(self.error(span, format!("this key is a {}, not a string; quote it", key.type_name())));
        };
        let Some(Frame { container: Container::Map { keys, pending, .. }, .. }) = self.stack.last_mut() else {
            unreachable!("a key stands in a mapping");
        };
        if !keys.insert(key.clone()) {
            return Err(self.error(span, format!("duplicate key `{key}`")));
        }
        *pending = Some(PendingKey { key, comment: None, between: Vec::new() });
        Ok(())
    }

    /// A complete value: the root of an empty document, or the next child of the top frame.
    fn node(&mut self, value: Value, anchor: usize, span: &Span) -> Result<(), SecretsError> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        if self.stack.is_empty() {
            return match value {
                // An empty document (`---` alone, or only comments).
                Value::Null => {
                    self.docs.push(self.loose.drain(..).map(Item::Comment).collect());
                    Ok(())
                }
                _ => Err(self.error(span, "the top level must be a mapping".into())),
            };
        }
        let line = span.start.line();
        let frame = self.stack.last_mut().expect("checked above");
        match &mut frame.container {
            Container::Map { items, pending, .. } => {
                let p = pending.take().expect("the walk gives each value its key first");
                let (before, after): (Vec<_>, Vec<_>) = p.between.into_iter().partition(|c| c.line < line);
                items.extend(before.into_iter().map(|c| Item::Comment(c.text)));
                items.push(Item::Entry { key: p.key, value, comment: p.comment });
                items.extend(after.into_iter().map(|c| Item::Comment(c.text)));
            }
            Container::Seq(items) => items.push(Item::Entry { key: (), value, comment: None }),
        }
        for text in std::mem::take(&mut frame.after) {
            frame.container.push_comment(text);
        }
        Ok(())
    }

    fn open(&mut self, is_map: bool, style: StructureStyle, anchor: usize, span: &Span) -> Result<(), SecretsError> {
        let indent = match style {
            StructureStyle::Flow => None,
            StructureStyle::Block if is_map => Some(span.start.col()),
            // The event points after `- `; the dash starts the line.
            StructureStyle::Block => Some(self.first_column(span.start.line())),
        };
        let mut container = if is_map {
            Container::Map { items: Vec::new(), keys: HashSet::new(), pending: None }
        } else {
            Container::Seq(Vec::new())
        };
        match self.stack.last_mut() {
            None if !is_map => {
                return Err(self.error(span, "the top level must be a mapping".into()));
            }
            None => {
                for text in self.loose.drain(..) {
                    container.push_comment(text);
                }
            }
            Some(Frame { container: Container::Map { items, pending, .. }, .. }) => {
                let p = pending.as_mut().expect("the walk gives each value its key first");
                // Comments between `key:` and an indented collection belong to the collection.
                for c in p.between.drain(..) {
                    if indent.is_some_and(|i| c.col >= i) {
                        container.push_comment(c.text);
                    } else {
                        items.push(Item::Comment(c.text));
                    }
                }
            }
            Some(_) => {}
        }
        self.stack.push(Frame { container, indent, anchor, after: Vec::new() });
        Ok(())
    }

    fn close(&mut self, span: &Span) -> Result<(), SecretsError> {
        let frame = self.stack.pop().expect("the parser balances start and end events");
        let value = match frame.container {
            Container::Map { items, .. } => Value::Map(items),
            Container::Seq(items) => Value::Seq(items),
        };
        if self.stack.is_empty() {
            let Value::Map(items) = value else { unreachable!("open() rejects root sequences") };
            self.docs.push(items);
            return Ok(());
        }
        self.node(value, frame.anchor, span)
    }

    fn comment(&mut self, text: String, placement: Placement, span: &Span) {
        if placement == Placement::Right {
            // A same-line comment belongs to the key just read, or to the last entry.
            if let Some(frame) = self.stack.last_mut() {
                let slot = match &mut frame.container {
                    Container::Map { pending: Some(p), .. } => {
                        (p.comment.is_none() && p.between.is_empty()).then_some(&mut p.comment)
                    }
                    container => container.last_entry_comment(),
                };
                if let Some(slot) = slot {
                    *slot = Some(text);
                    return;
                }
            }
        }
        let (line, col) = (span.start.line(), span.start.col());
        let Some(top) = self.stack.len().checked_sub(1) else {
            self.loose.push(text);
            return;
        };
        // An own-line comment belongs to the innermost block collection whose indentation is
        // not deeper than the comment's column: that decides its encryption path.
        let target = if self.stack[top].indent.is_none() {
            top
        } else {
            (0..=top)
                .rev()
                .find(|&i| {
                    self.stack[i].indent.is_some_and(|ind| ind <= col) && !self.leaves_indentless_sequence(i, line, col)
                })
                .unwrap_or(0)
        };
        if target != top {
            self.stack[target].after.push(text);
            return;
        }
        match &mut self.stack[top].container {
            Container::Map { pending: Some(p), .. } => p.between.push(LooseComment { text, line, col }),
            container => container.push_comment(text),
        }
    }

    /// For a sequence written at its parent key's indentation (`key:\n- a`), a comment at that
    /// column belongs to the sequence only if the next content line is another `- ` item.
    fn leaves_indentless_sequence(&self, frame: usize, line: usize, col: usize) -> bool {
        let is_indentless = matches!(self.stack[frame].container, Container::Seq(_))
            && frame > 0
            && self.stack[frame - 1].indent == self.stack[frame].indent;
        if !is_indentless {
            return false;
        }
        let next_is_item = self
            .lines
            .iter()
            .skip(line)
            .find(|l| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('#')
            })
            .is_some_and(|l| {
                let t = l.trim_start();
                first_column_of(l) == col && (t == "-" || t.starts_with("- "))
            });
        !next_is_item
    }

    fn first_column(&self, line: usize) -> usize {
        self.lines.get(line - 1).map_or(0, |l| first_column_of(l))
    }

    fn finish(mut self) -> Vec<Mapping> {
        // Comments after the last document stay with it.
        match self.docs.last_mut() {
            Some(last) => last.extend(self.loose.drain(..).map(Item::Comment)),
            None => self.docs.push(self.loose.drain(..).map(Item::Comment).collect()),
        }
        self.docs
    }
}

fn first_column_of(line: &str) -> usize {
    line.chars().take_while(|&c| c == ' ').count()
}

/// Resolves a scalar as go-yaml v3 decodes it into an `interface{}` (what sops does).
fn resolve(raw: String, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let Some(tag) = tag else {
        return Ok(if style == ScalarStyle::Plain { resolve_plain(&raw) } else { Value::Str(raw) });
    };
    if tag.handle() != CORE_TAG_PREFIX {
        // go-yaml leaves scalars with unknown tags as strings.
        return Ok(Value::Str(raw));
    }
    let resolved = resolve_plain(&raw);
    match (tag.suffix(), resolved) {
        ("str", _) => Ok(Value::Str(raw)),
        ("null", v @ Value::Null) | ("bool", v @ Value::Bool(_)) | ("int", v @ Value::Int(_)) => Ok(v),
        ("float", v @ Value::Float(_)) => Ok(v),
        ("float", Value::Int(i)) => Ok(Value::Float(i as f64)),
        ("binary", _) => {
            let compact: String = raw.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(Value::Str)
                .ok_or_else(|| "!!binary value is not base64-encoded UTF-8 text".into())
        }
        (suffix @ ("null" | "bool" | "int" | "float"), v) => {
            Err(format!("a {} cannot be tagged !!{suffix}", v.type_name()))
        }
        (suffix, _) => Err(format!("tag !!{suffix} is not supported on a scalar")),
    }
}

/// go-yaml v3's resolution of an untagged plain scalar (`weaver_yaml::resolve`).
fn resolve_plain(s: &str) -> Value {
    match go_yaml::resolve(s, Dialect::GoYamlV3) {
        Resolved::Str => Value::Str(s.to_owned()),
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Int(i),
        // go-yaml v3 reads a number past i64 as unsigned; sops' tree holds it (and hashes it)
        // as a float.
        Resolved::Uint(u) => Value::Float(u as f64),
        Resolved::Float(f) => Value::Float(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// go-yaml v3's resolution, which decides what sops hashes and encrypts.
    #[test]
    fn plain_scalars_resolve_like_go_yaml() {
        let cases: &[(&str, Value)] = &[
            ("42", Value::Int(42)),
            ("+12", Value::Int(12)),
            ("-0x1F", Value::Int(-31)),
            ("0o17", Value::Int(15)),
            ("012", Value::Int(10)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("08", Value::Float(8.0)),
            ("1e3", Value::Float(1000.0)),
            (".5", Value::Float(0.5)),
            ("1.", Value::Float(1.0)),
            ("-.inf", Value::Float(f64::NEG_INFINITY)),
            ("99999999999999999999", Value::Float(1e20)),
            ("True", Value::Bool(true)),
            ("~", Value::Null),
            ("", Value::Null),
        ];
        for (text, expected) in cases {
            assert_eq!(&resolve_plain(text), expected, "{text}");
        }
        for text in ["yes", "off", "0x", "1.2.3", "2021-01-01", "12:30", "+", "-", ".", "e3", "1e", "0b2", "TRue"] {
            assert_eq!(resolve_plain(text), Value::Str(text.to_owned()), "{text}");
        }
    }
}
