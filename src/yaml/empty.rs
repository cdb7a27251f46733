//! Where a YAML stream leaves a mapping value empty (`key:` and nothing after it). Read, that is
//! `null` like a `null` spelled out, but kustomize's kyaml tells the two apart: its strategic
//! merge clears the first and keeps the second (see `patch::strategic::clear_empty_values`).

use granit_parser::{Event, Parser, ScalarStyle};

/// For each document of `text` that is not null (the documents [`super::documents`] returns),
/// the JSON pointers of its empty mapping values. Nothing when the text has none, or when it
/// cannot be read event by event (reading it reports the error) or has keys that are not
/// scalars.
pub(crate) fn empty_values(text: &str) -> Vec<Vec<String>> {
    if !text.lines().any(|line| line.trim_end().ends_with(':')) {
        return Vec::new();
    }
    walk(text).unwrap_or_default()
}

enum Frame {
    /// A mapping, and the key whose value comes next (none: a key comes next).
    Map(Option<String>),
    /// A sequence, and the index of its next item.
    Seq(usize),
}

fn walk(text: &str) -> Option<Vec<Vec<String>>> {
    let options = granit_parser::options! { emit_comments: false };
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut out = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    // The pointer tokens of the open collections below the root.
    let mut path: Vec<String> = Vec::new();
    let mut empties: Vec<String> = Vec::new();
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
                empties.clear();
                null_document = false;
            }
            Event::DocumentEnd => {
                if !null_document {
                    out.push(std::mem::take(&mut empties));
                }
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
                        if empty && matches!(frames.last(), Some(Frame::Map(_))) {
                            empties.push(pointer(&path, &token));
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
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_found_by_pointer_and_spelled_out_nulls_are_not() {
        let text = "a:\n  b:\n  c: null\n  d: ~\n  'e/f':\nlist:\n- x:\n  y: 1\n- [1, 2]\n- z:\n";
        assert_eq!(empty_values(text), vec![vec!["/a/b", "/a/e~1f", "/list/0/x", "/list/2/z"]]);
    }

    #[test]
    fn documents_are_counted_as_they_are_read_null_ones_left_out() {
        let text = "a: 1\n---\n---\nnull\n---\nb:\n---\n- c:\n";
        assert_eq!(empty_values(text), vec![vec![], vec!["/b".to_string()], vec!["/0/c".to_string()]]);
    }

    #[test]
    fn a_text_without_them_or_with_keys_that_are_not_scalars_has_none() {
        assert!(empty_values("a: 1\nb: [x]\n").is_empty());
        assert!(empty_values("? [a]\n: 1\nb:\n").is_empty());
    }
}
