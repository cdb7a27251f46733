//! Keys that a mapping of a YAML stream writes twice. The readers keep the last value, as helm's
//! go-yaml v2 does, silently: a values file with `tag:` twice deploys whichever came last, so
//! weaver warns of each (see `action::render`).

use granit_parser::{Event, Parser};

/// A key written again in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Where the key is, `image.tag` or `env[1].name`.
    pub path: String,
    /// The 1-based lines of the first and of the repeated key.
    pub first_line: usize,
    pub line: usize,
}

enum Frame {
    /// A mapping: its keys with their lines, and the key whose value comes next (none: a key).
    Map { keys: Vec<(String, usize)>, key: Option<String> },
    /// A sequence and the index of its next item.
    Seq(usize),
}

/// The repeated keys of every document of `text`, in order; none when it cannot be read event
/// by event (reading it reports the error) or has a key that is not a scalar.
pub fn duplicate_keys(text: &str) -> Vec<DuplicateKey> {
    let options = granit_parser::options! { emit_comments: false };
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut found = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    // The path of each open collection below the root, as `a.b[2]`.
    let mut paths: Vec<String> = Vec::new();
    while let Some(next) = parser.next_event() {
        let Ok((event, span)) = next else { return Vec::new() };
        let line = span.start.line();
        if let Some(Frame::Map { keys, key: key @ None }) = frames.last_mut() {
            match event {
                Event::Scalar(name, ..) => {
                    let path = match paths.last() {
                        Some(parent) if !parent.is_empty() => format!("{parent}.{name}"),
                        _ => name.to_string(),
                    };
                    match keys.iter().find(|(k, _)| *k == name) {
                        Some(&(_, first_line)) if name != "<<" => found.push(DuplicateKey { path, first_line, line }),
                        _ => keys.push((name.to_string(), line)),
                    }
                    *key = Some(name.to_string());
                    continue;
                }
                Event::MappingEnd => {}
                _ => return Vec::new(),
            }
        }
        let here = match frames.last() {
            Some(Frame::Map { key: Some(key), .. }) => match paths.last() {
                Some(parent) if !parent.is_empty() => format!("{parent}.{key}"),
                _ => key.clone(),
            },
            Some(Frame::Seq(index)) => format!("{}[{index}]", paths.last().map_or("", String::as_str)),
            _ => String::new(),
        };
        match event {
            Event::DocumentStart(..) => {
                frames.clear();
                paths.clear();
            }
            Event::MappingStart(..) => {
                frames.push(Frame::Map { keys: Vec::new(), key: None });
                paths.push(here);
            }
            Event::SequenceStart(..) => {
                frames.push(Frame::Seq(0));
                paths.push(here);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                frames.pop();
                paths.pop();
                value_done(&mut frames);
            }
            Event::Scalar(..) | Event::Alias(_) => value_done(&mut frames),
            _ => {}
        }
    }
    found
}

fn value_done(frames: &mut [Frame]) {
    match frames.last_mut() {
        Some(Frame::Map { key, .. }) => *key = None,
        Some(Frame::Seq(index)) => *index += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, usize, usize)> {
        duplicate_keys(text).into_iter().map(|d| (d.path, d.first_line, d.line)).collect()
    }

    #[test]
    fn repeated_keys_with_their_paths_and_lines() {
        let text =
            "image:\n  repository: r\n  tag: a\n  tag: b\nreplicas: 1\nenv:\n  - name: A\n    name: B\nreplicas: 2\n";
        assert_eq!(found(text), [("image.tag".into(), 3, 4), ("env[0].name".into(), 7, 8), ("replicas".into(), 5, 9)]);
    }

    #[test]
    fn the_same_key_in_other_mappings_or_documents_and_merge_keys_are_not_repeats() {
        assert!(found("a:\n  x: 1\nb:\n  x: 2\nl:\n  - x: 1\n  - x: 2\n").is_empty());
        assert!(found("x: 1\n---\nx: 2\n").is_empty());
        assert!(found("base: &b {x: 1}\nm:\n  <<: *b\n  <<: *b\n").is_empty());
        assert!(found("a: [1\n").is_empty(), "unreadable text is its reader's to report");
    }
}
