//! The value scalars of a YAML stream with where they are (document and JSON pointer) and how
//! they were written (plain, quoted, block): what a parsed `Value` forgets. Used for fields a
//! file leaves empty (`super::empty`) and for how a kustomization's `${var}` was written
//! (`weaver_kustomize::substitute`).

use granit_parser::{Event, ScalarStyle};

use super::events::{Role, Step, Walk, pointer};
use super::resolve::{Dialect, Resolved, resolve};

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

/// Calls `visit` for each value scalar that `want` (its value, style, and whether it is empty:
/// `key:` and nothing after it) selects; returns how many documents are not null. `None` when
/// the text cannot be read event by event (reading it reports the error) or has keys that are
/// neither scalars nor aliases of them.
pub fn walk(
    text: &str,
    want: impl Fn(&str, ScalarStyle, bool) -> bool,
    mut visit: impl FnMut(Scalar),
) -> Option<usize> {
    let mut walk = Walk::new(text);
    let mut documents = 0;
    let mut null_document = false;
    while let Some(step) = walk.step() {
        let Step { event, span, role } = step.ok()?;
        match event {
            Event::DocumentStart(..) => null_document = false,
            Event::DocumentEnd if !null_document => documents += 1,
            Event::Scalar(value, style, _, tag) if role == Role::Node && walk.path().is_empty() => {
                null_document = style == ScalarStyle::Plain
                    && tag.is_none()
                    && resolve(&value, Dialect::GoYamlV3) == Resolved::Null;
            }
            Event::Scalar(value, style, _, tag) if role == Role::Node => {
                // The parser gives an empty value as `~`, over no text at all.
                let empty = span.start.index() == span.end.index() && style == ScalarStyle::Plain && tag.is_none();
                if want(&value, style, empty) {
                    visit(Scalar {
                        document: documents,
                        pointer: pointer(walk.path()),
                        value: &value,
                        style,
                        in_mapping: walk.in_mapping(),
                        bytes: span.start.byte_offset().zip(span.end.byte_offset()).map(|(a, b)| a..b),
                        line: span.start.line(),
                    });
                }
            }
            _ => {}
        }
    }
    Some(documents)
}

/// The line (from 1) each document that is not null starts at (its root node's), in the
/// order [`super::documents`] returns them; `None` as for [`walk`].
pub fn document_lines(text: &str) -> Option<Vec<usize>> {
    let mut walk = Walk::new(text);
    let (mut lines, mut start, mut null_document) = (Vec::new(), 0, false);
    while let Some(step) = walk.step() {
        let Step { event, span, role } = step.ok()?;
        let root = role == Role::Node && walk.path().is_empty();
        match event {
            Event::DocumentStart(..) => null_document = false,
            Event::DocumentEnd if !null_document => lines.push(start),
            Event::Scalar(value, style, _, tag) if root => {
                start = span.start.line();
                null_document = style == ScalarStyle::Plain
                    && tag.is_none()
                    && resolve(&value, Dialect::GoYamlV3) == Resolved::Null;
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if root => start = span.start.line(),
            _ => {}
        }
    }
    Some(lines)
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
