//! Keys that a mapping of a YAML stream writes twice. The readers keep the last value, as helm's
//! go-yaml v2 does, silently: a values file with `tag:` twice deploys whichever came last, so
//! weaver warns of each (see `action::render`).

use granit_parser::Event;

use super::events::{Role, Step, Token, Walk};

/// A key written again in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Where the key is, `image.tag` or `env[1].name`.
    pub path: String,
    /// The 1-based lines of the first and of the repeated key.
    pub first_line: usize,
    pub line: usize,
}

/// The repeated keys of every document of `text`, in order (an alias key is its anchor's text);
/// none when it cannot be read event by event (reading it reports the error) or has a key that
/// is neither a scalar nor an alias of one.
pub fn duplicate_keys(text: &str) -> Vec<DuplicateKey> {
    let mut walk = Walk::new(text);
    let mut found = Vec::new();
    // The keys of each open mapping, with their lines (a sequence's entry stays empty).
    let mut keys: Vec<Vec<(String, usize)>> = Vec::new();
    while let Some(step) = walk.step() {
        let Ok(Step { event, span, role }) = step else { return Vec::new() };
        match (role, event) {
            (Role::Key, _) => {
                let (Some(name), Some(mapping)) = (walk.key(), keys.last_mut()) else { continue };
                let line = span.start.line();
                match mapping.iter().find(|(key, _)| *key == name) {
                    Some(&(_, first_line)) if name != "<<" => {
                        found.push(DuplicateKey { path: dotted(walk.path(), name), first_line, line });
                    }
                    _ => mapping.push((name.to_string(), line)),
                }
            }
            (Role::Node, Event::MappingStart(..) | Event::SequenceStart(..)) => keys.push(Vec::new()),
            (Role::End, _) => {
                keys.pop();
            }
            (_, Event::DocumentStart(..)) => keys.clear(),
            _ => {}
        }
    }
    found
}

/// `image.tag`, `env[1].name`: the path of `key` in the mapping at `path`.
fn dotted(path: &[Token], key: &str) -> String {
    let mut out = String::new();
    for token in path {
        match token {
            Token::Key(name) if out.is_empty() => out.push_str(name),
            Token::Key(name) => {
                out.push('.');
                out.push_str(name);
            }
            Token::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
    out
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
        assert_eq!(
            found("a: &k x\nm:\n  x: 1\n  *k : 2\n"),
            [("m.x".into(), 3, 4)],
            "an alias key is its anchor's text"
        );
    }
}
