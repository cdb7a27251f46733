//! A YAML stream event by event, each event with where it is: granit-parser's events (those
//! serde-saphyr reads with), each said to be a mapping's key, a node (a document's root, a
//! mapping's value, a sequence's item) or the end of a collection, with the path of the node.
//! The readers that need what a parsed value forgets (how a scalar was written and where, a key
//! written twice) walk this, rather than each keep frames of its own.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScanError, Span, StrInput};

/// What an event is where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A scalar (or an alias of one) that is a mapping's key; [`Walk::path`] is the mapping's.
    Key,
    /// A scalar, an alias or a collection's start that is a node: a document's root, a mapping's
    /// value or a sequence's item; [`Walk::path`] is the node's.
    Node,
    /// A collection's end; [`Walk::path`] is the collection's.
    End,
    /// A stream's or a document's start or end.
    Other,
}

/// One token of a node's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Key(String),
    Index(usize),
}

/// An event of the stream, where it is.
pub struct Step<'t> {
    pub event: Event<'t>,
    pub span: Span,
    pub role: Role,
}

/// Why a stream cannot be walked: the parser refused it (reading it reports the error), or a
/// key (at the span) is neither a scalar nor an alias of one, which no path can name.
#[derive(Debug)]
pub enum Unwalkable {
    Scan(ScanError),
    ComplexKey(Span),
}

/// The walk over a stream's events.
pub struct Walk<'t> {
    parser: Parser<'t, StrInput<'t>>,
    frames: Vec<Frame>,
    /// The path of the node or collection the last step was in (see [`Role`]).
    path: Vec<Token>,
    /// Whether the last node stepped on is a mapping's value.
    in_mapping: bool,
    /// The text of each anchored scalar, for an alias written as a key.
    anchored: HashMap<usize, String>,
}

struct Frame {
    /// A mapping's key whose value comes next (none: a key comes next), or a sequence's next
    /// index.
    next: Next,
    /// How long the path is to the collection itself.
    depth: usize,
}

enum Next {
    Map(Option<String>),
    Seq(usize),
}

impl<'t> Walk<'t> {
    /// Comments are not events here: no lookahead limit on how many may precede a key.
    pub fn new(text: &'t str) -> Self {
        Self::with_parser(text, granit_parser::options! { emit_comments: false })
    }

    /// A walk whose comments are events too ([`Event::Comment`], with where they stand on their
    /// line; [`Role::Other`]), for a reader that keeps them (sops' files). The parser looks ahead
    /// for a key past at most 96 comment lines.
    pub fn keeping_comments(text: &'t str) -> Self {
        Self::with_parser(text, granit_parser::options! { emit_comments: true })
    }

    fn with_parser(text: &'t str, options: granit_parser::Options) -> Self {
        Walk {
            parser: Parser::new_from_str_with_options(text, options),
            frames: Vec::new(),
            path: Vec::new(),
            in_mapping: false,
            anchored: HashMap::new(),
        }
    }

    /// The key the last step was (a [`Role::Key`]): its text, or its anchor's for an alias.
    pub fn key(&self) -> Option<&str> {
        match self.frames.last() {
            Some(Frame { next: Next::Map(key), .. }) => key.as_deref(),
            _ => None,
        }
    }

    /// Names the key the last step was (a [`Role::Key`]) as its reader resolved it, for its
    /// value's path: go-yaml v2 reads the key `0x10` as `16`.
    pub fn name_key(&mut self, token: String) {
        if let Some(Frame { next: Next::Map(key @ Some(_)), .. }) = self.frames.last_mut() {
            *key = Some(token);
        }
    }

    /// The path of the last step's node, key's mapping or ended collection (see [`Role`]);
    /// empty at a document's root.
    pub fn path(&self) -> &[Token] {
        &self.path
    }

    /// Whether the last [`Role::Node`] stepped on is a mapping's value (else an item or a root).
    pub fn in_mapping(&self) -> bool {
        self.in_mapping
    }

    /// The next event where it is; `None` at the stream's end.
    pub fn step(&mut self) -> Option<Result<Step<'t>, Unwalkable>> {
        let (event, span) = match self.parser.next_event()? {
            Ok(next) => next,
            Err(err) => return Some(Err(Unwalkable::Scan(err))),
        };
        // What the last scalar node added to the path goes: the path is the open collection's.
        self.path.truncate(self.frames.last().map_or(0, |frame| frame.depth));
        let is_node =
            matches!(event, Event::Scalar(..) | Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..));
        if let Event::Scalar(text, _, anchor, _) = &event
            && *anchor != 0
        {
            self.anchored.insert(*anchor, text.to_string());
        }
        let at_key = matches!(self.frames.last(), Some(Frame { next: Next::Map(None), .. }));
        let key_text = match &event {
            Event::Scalar(text, ..) if at_key => Some(text.to_string()),
            Event::Alias(id) if at_key => self.anchored.get(id).cloned(),
            _ => None,
        };
        let role = match (self.frames.last_mut(), &event) {
            (Some(Frame { next: Next::Map(key @ None), .. }), Event::Scalar(..) | Event::Alias(_))
                if key_text.is_some() =>
            {
                *key = key_text;
                Role::Key
            }
            (Some(Frame { next: Next::Map(None), .. }), _) if is_node => {
                return Some(Err(Unwalkable::ComplexKey(span)));
            }
            (frame, _) if is_node => {
                self.in_mapping = matches!(frame, Some(Frame { next: Next::Map(_), .. }));
                match frame.map(|frame| &mut frame.next) {
                    Some(Next::Map(key)) => self.path.push(Token::Key(key.take().unwrap_or_default())),
                    Some(Next::Seq(index)) => {
                        self.path.push(Token::Index(*index));
                        *index += 1;
                    }
                    None => {}
                }
                let next = match event {
                    Event::MappingStart(..) => Some(Next::Map(None)),
                    Event::SequenceStart(..) => Some(Next::Seq(0)),
                    _ => None,
                };
                if let Some(next) = next {
                    self.frames.push(Frame { next, depth: self.path.len() });
                }
                Role::Node
            }
            (_, Event::MappingEnd | Event::SequenceEnd) => {
                self.frames.pop();
                Role::End
            }
            (_, Event::DocumentStart(..)) => {
                self.frames.clear();
                self.path.clear();
                Role::Other
            }
            _ => Role::Other,
        };
        Some(Ok(Step { event, span, role }))
    }
}

/// `path` as a JSON pointer.
pub fn pointer(path: &[Token]) -> String {
    let mut out = String::new();
    for token in path {
        out.push('/');
        match token {
            Token::Key(key) => out.push_str(&pointer_token(key)),
            Token::Index(index) => out.push_str(&index.to_string()),
        }
    }
    out
}

/// `key` as a JSON pointer token (RFC 6901: `~` is `~0`, `/` is `~1`).
pub(crate) fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step's role, pointer and (for scalars) text.
    fn steps(text: &str) -> Vec<(Role, String, String)> {
        let mut walk = Walk::new(text);
        let mut out = Vec::new();
        while let Some(step) = walk.step() {
            let step = step.expect("walkable");
            let scalar = match &step.event {
                Event::Scalar(text, ..) => text.to_string(),
                _ => String::new(),
            };
            if step.role != Role::Other {
                out.push((step.role, pointer(walk.path()), scalar));
            }
        }
        out
    }

    #[test]
    fn keys_nodes_and_ends_are_placed_by_their_paths() {
        let (k, n, e) = (Role::Key, Role::Node, Role::End);
        let s = |role, pointer: &str, text: &str| (role, pointer.to_string(), text.to_string());
        assert_eq!(
            steps("a:\n  b: 1\n  c: [x, {d: 2}]\ne/f: 3\n"),
            [
                s(n, "", ""),
                s(k, "", "a"),
                s(n, "/a", ""),
                s(k, "/a", "b"),
                s(n, "/a/b", "1"),
                s(k, "/a", "c"),
                s(n, "/a/c", ""),
                s(n, "/a/c/0", "x"),
                s(n, "/a/c/1", ""),
                s(k, "/a/c/1", "d"),
                s(n, "/a/c/1/d", "2"),
                s(e, "/a/c/1", ""),
                s(e, "/a/c", ""),
                s(e, "/a", ""),
                s(k, "", "e/f"),
                s(n, "/e~1f", "3"),
                s(e, "", ""),
            ]
        );
    }

    #[test]
    fn each_document_starts_at_the_root_and_complex_keys_cannot_be_walked() {
        let roots: Vec<String> = steps("a: 1\n---\n- b\n").into_iter().map(|(_, pointer, _)| pointer).collect();
        assert_eq!(roots, ["", "", "/a", "", "", "/0", ""]);
        let mut walk = Walk::new("? [a]\n: 1\n");
        let failed = std::iter::from_fn(|| walk.step()).find_map(Result::err);
        assert!(matches!(failed, Some(Unwalkable::ComplexKey(_))), "{failed:?}");
    }

    #[test]
    fn an_alias_of_a_scalar_is_a_key_and_a_named_key_is_its_values_token() {
        let keys: Vec<(Role, String, String)> =
            steps("a: &k x\nm:\n  *k : 1\n").into_iter().filter(|(role, ..)| *role == Role::Key).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let mut walk = Walk::new("0x10: v\n");
        let mut pointers = Vec::new();
        while let Some(step) = walk.step() {
            let step = step.expect("walkable");
            if step.role == Role::Key {
                walk.name_key("16".to_string());
            } else if step.role == Role::Node {
                pointers.push(pointer(walk.path()));
            }
        }
        assert_eq!(pointers, ["", "/16"]);
        let mut walk = Walk::new("a: &c [1]\n*c : 2\n");
        let failed = std::iter::from_fn(|| walk.step()).find_map(Result::err);
        assert!(matches!(failed, Some(Unwalkable::ComplexKey(_))), "an alias of a list is no key: {failed:?}");
    }
}
