//! The value scalars of a YAML stream with where they are (document and JSON pointer) and how
//! they were written (plain, quoted, block): what a parsed `Value` forgets. Used for fields a
//! file leaves empty (`super::empty`) and for how a kustomization's `${var}` was written
//! (`crate::kustomize::substitute`).

use granit_parser::{Event, Parser, ScalarStyle};

/// A scalar that is a value in a document (not a key, not a document that is one scalar).
pub struct Scalar<'v> {
    /// The document, counting only those that are not null (the documents
    /// [`super::documents`] returns), from 0.
    pub document: usize,
    /// Its JSON pointer in the document.
    pub pointer: String,
    pub value: &'v str,
    pub style: ScalarStyle,
    /// Whether it is a mapping's value (else a sequence's item).
    pub in_mapping: bool,
    /// Where it is written: its bytes in the text (a quoted one's with or without its quotes,
    /// as the parser gives them), and its line (1-based).
    pub bytes: Option<std::ops::Range<usize>>,
    pub line: usize,
}

enum Frame {
    /// A mapping, and the key whose value comes next (none: a key comes next).
    Map(Option<String>),
    /// A sequence, and the index of its next item.
    Seq(usize),
}

/// Calls `visit` for each value scalar that `want` (its value, style, and whether it is empty:
/// `key:` and nothing after it) selects; returns how many documents are not null. `None` when
/// the text cannot be read event by event (reading it reports the error) or has keys that are
/// not scalars.
pub fn walk(
    text: &str,
    want: impl Fn(&str, ScalarStyle, bool) -> bool,
    mut visit: impl FnMut(Scalar),
) -> Option<usize> {
    let options = granit_parser::options! { emit_comments: false };
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut documents = 0;
    let mut frames: Vec<Frame> = Vec::new();
    // The pointer tokens of the open collections below the root.
    let mut path: Vec<String> = Vec::new();
    let mut null_document = false;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.ok()?;
        // The token of the value this event starts, under its parent.
        let token = match frames.last() {
            Some(Frame::Map(Some(key))) => Some(key.clone()),
            Some(Frame::Seq(index)) => Some(index.to_string()),
            Some(Frame::Map(None)) => match &event {
                Event::Scalar(key, ..) => {
                    frames.pop();
                    frames.push(Frame::Map(Some(key.to_string())));
                    continue;
                }
                Event::MappingEnd => None,
                _ => return None,
            },
            None => None,
        };
        match event {
            Event::DocumentStart(..) => {
                frames.clear();
                path.clear();
                null_document = false;
            }
            Event::DocumentEnd if !null_document => {
                documents += 1;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                path.extend(token);
                frames.push(if matches!(event, Event::MappingStart(..)) { Frame::Map(None) } else { Frame::Seq(0) });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                frames.pop();
                if !frames.is_empty() {
                    path.pop();
                    value_done(&mut frames);
                }
            }
            Event::Scalar(value, style, _, tag) => {
                // The parser gives an empty value as `~`, over no text at all.
                let empty = span.start.index() == span.end.index() && style == ScalarStyle::Plain && tag.is_none();
                match token {
                    Some(token) => {
                        if want(&value, style, empty) {
                            let in_mapping = matches!(frames.last(), Some(Frame::Map(_)));
                            let pointer = pointer(&path, &token);
                            let bytes = span.start.byte_offset().zip(span.end.byte_offset()).map(|(a, b)| a..b);
                            let line = span.start.line();
                            visit(Scalar {
                                document: documents,
                                pointer,
                                value: &value,
                                style,
                                in_mapping,
                                bytes,
                                line,
                            });
                        }
                        value_done(&mut frames);
                    }
                    None => {
                        null_document = style == ScalarStyle::Plain
                            && tag.is_none()
                            && matches!(&*value, "" | "~" | "null" | "Null" | "NULL");
                    }
                }
            }
            Event::Alias(_) => value_done(&mut frames),
            _ => {}
        }
    }
    Some(documents)
}

/// The line (from 1) where the value at `pointer` of `document` (counted as in [`walk`]) is
/// written: a scalar's own, a collection's first scalar's.
pub fn line_of(text: &str, document: usize, pointer: &str) -> Option<usize> {
    let mut line = None;
    walk(
        text,
        |_, _, _| true,
        |scalar| {
            let at_or_under =
                scalar.pointer.strip_prefix(pointer).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if line.is_none() && scalar.document == document && at_or_under {
                line = Some(scalar.line);
            }
        },
    )?;
    line
}

fn value_done(frames: &mut [Frame]) {
    match frames.last_mut() {
        Some(Frame::Map(key)) => *key = None,
        Some(Frame::Seq(index)) => *index += 1,
        None => {}
    }
}

fn pointer(path: &[String], last: &str) -> String {
    let mut out = String::new();
    for token in path.iter().map(String::as_str).chain([last]) {
        out.push('/');
        out.push_str(&token.replace('~', "~0").replace('/', "~1"));
    }
    out
}
