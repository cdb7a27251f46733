//! Where a YAML stream leaves a mapping value empty (`key:` and nothing after it). Read, that is
//! `null` like a `null` spelled out, but kustomize's kyaml tells the two apart: its strategic
//! merge clears the first and keeps the second (see `patch::strategic::clear_empty_values`). In
//! a flow mapping (`{a: , b: 1}`, `{a}`) an empty value is cleared by a strategic merge as well,
//! but a build without one writes it as the empty string (`kubectl kustomize` prints `a: ""`;
//! helm-controller gets `""`). A kustomize build's reading finds them, and its folded scalars
//! (`super::folded`), in one walk of the events.

use granit_parser::ScalarStyle;
use serde_json::Value;

/// For each document of `text` that is not null (the documents [`super::documents`] returns),
/// the JSON pointers of its empty mapping values. Nothing when the text has none, or when it
/// cannot be read event by event (reading it reports the error) or has keys that are neither
/// scalars nor aliases of them. Those of flow mappings are among them, though a build reads them as the empty
/// string (`as_kyaml_reads`).
pub fn empty_values(text: &str) -> Vec<Vec<String>> {
    match may_have_empty_values(text) {
        true => pointers(found_in(text, true, false).empties),
        false => Vec::new(),
    }
}

/// What kyaml's reading of `text` keeps that its values (`docs`, as `super::documents_kyaml`
/// reads them) lack, from one read of its events: each empty value of a flow mapping is set to
/// the empty string; for a kustomize build (`build`) each folded scalar is set to the value the
/// build ends up with ([`super::folded`]), and the empty values of each document (as
/// [`empty_values`] finds them) are returned.
pub(crate) fn as_kyaml_reads(text: &str, docs: &mut [Value], build: bool) -> Vec<Vec<String>> {
    let empties = if build { may_have_empty_values(text) } else { text.contains('{') };
    let folded = build && text.contains('>');
    if !empties && !folded {
        return Vec::new();
    }
    let Found { empties: found, folded } = found_in(text, empties, folded);
    for (document, pointer, value) in folded {
        if let Some(Value::String(field)) = docs.get_mut(document).and_then(|doc| doc.pointer_mut(&pointer)) {
            *field = value;
        }
    }
    for (doc, empties) in docs.iter_mut().zip(&found) {
        for (pointer, _) in empties.iter().filter(|(_, in_flow)| *in_flow) {
            if let Some(value @ Value::Null) = doc.pointer_mut(pointer) {
                *value = Value::String(String::new());
            }
        }
    }
    pointers(found)
}

fn pointers(found: Vec<Vec<(String, bool)>>) -> Vec<Vec<String>> {
    found.into_iter().map(|doc| doc.into_iter().map(|(pointer, _)| pointer).collect()).collect()
}

/// A block mapping's empty value ends its line; a flow mapping's needs a `{`.
fn may_have_empty_values(text: &str) -> bool {
    text.contains('{') || text.lines().any(|line| line.trim_end().ends_with(':'))
}

/// What one read of a text's events finds.
struct Found {
    /// The empty mapping values of each document: their pointers, and whether each is in a flow
    /// mapping.
    empties: Vec<Vec<(String, bool)>>,
    /// Each folded scalar's document, pointer and value as kustomize reads it.
    folded: Vec<(usize, String, String)>,
}

/// The empty mapping values of `text` if `empties` (none when the walk fails), and its folded
/// scalars if `folded` (those before a failure too).
fn found_in(text: &str, empties: bool, folded: bool) -> Found {
    // An empty value is given where its key ends (at its `:`, if any): in a flow mapping what
    // follows is `,` or `}` (or `]`, a pair in a flow sequence), in a block one the line's end
    // or a comment.
    let in_flow = |bytes: &Option<std::ops::Range<usize>>| {
        bytes.as_ref().and_then(|b| text.get(b.start..)).is_some_and(|rest| {
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            rest.trim_start_matches([' ', '\t', '\n', '\r']).starts_with([',', '}', ']'])
        })
    };
    let mut out: Vec<Vec<(String, bool)>> = Vec::new();
    let mut folded_found = Vec::new();
    let documents = super::scalars::walk(
        text,
        |_, style, empty| (empties && empty) || (folded && style == ScalarStyle::Folded),
        |scalar| {
            if scalar.style == ScalarStyle::Folded {
                folded_found.push((scalar.document, scalar.pointer, super::folded::reread(scalar.value)));
            } else if scalar.in_mapping {
                if out.len() <= scalar.document {
                    out.resize_with(scalar.document + 1, Vec::new);
                }
                let flow = in_flow(&scalar.bytes);
                out[scalar.document].push((scalar.pointer, flow));
            }
        },
    );
    match documents {
        Some(documents) => {
            out.resize_with(documents, Vec::new);
            Found { empties: out, folded: folded_found }
        }
        None => Found { empties: Vec::new(), folded: folded_found },
    }
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
    fn an_empty_value_of_a_flow_mapping_is_the_empty_string_to_kyaml_and_empty_to_a_merge() {
        let text = "block:\n  a:\nflow: {a: , b: 1, c, d: {e: }}\nseq: [{a: }, x]\nspaced: {\n  a:\n  , b: 2}\n";
        assert_eq!(
            empty_values(text),
            vec![vec!["/block/a", "/flow/a", "/flow/c", "/flow/d/e", "/seq/0/a", "/spaced/a"]]
        );
        // A flow mapping alone, no line ending in `:`.
        assert_eq!(empty_values("---\n{\n  a: {b: , c: 1},\n}\n"), vec![vec!["/a/b"]]);
        let mut docs = vec![serde_json::json!({"block": {"a": null}, "flow": {"a": null, "b": 1, "c": null,
            "d": {"e": null}}, "seq": [{"a": null}, "x"], "spaced": {"a": null, "b": 2}})];
        as_kyaml_reads(text, &mut docs, false);
        assert_eq!(
            docs[0],
            serde_json::json!({"block": {"a": null}, "flow": {"a": "", "b": 1, "c": "", "d": {"e": ""}},
                "seq": [{"a": ""}, "x"], "spaced": {"a": "", "b": 2}})
        );
    }

    /// A build's reading finds empty values and folded scalars in one walk; kyaml's alone
    /// leaves folded scalars as YAML reads them.
    #[test]
    fn a_build_reads_empty_values_and_folded_scalars_at_once() {
        let text = "a:\nb: {c: }\nd: >-\n  x\n\n    y\n";
        let (docs, empty) = crate::documents_kustomize(std::path::Path::new("t"), text).unwrap();
        assert_eq!(docs, vec![serde_json::json!({"a": null, "b": {"c": ""}, "d": "x\n\n\n  y"})]);
        assert_eq!(empty, vec![vec!["/a", "/b/c"]]);
        let docs = crate::documents_kyaml(std::path::Path::new("t"), text).unwrap();
        assert_eq!(docs, vec![serde_json::json!({"a": null, "b": {"c": ""}, "d": "x\n\n  y"})]);
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
