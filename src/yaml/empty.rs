//! Where a YAML stream leaves a mapping value empty (`key:` and nothing after it). Read, that is
//! `null` like a `null` spelled out, but kustomize's kyaml tells the two apart: its strategic
//! merge clears the first and keeps the second (see `patch::strategic::clear_empty_values`).

/// For each document of `text` that is not null (the documents [`super::documents`] returns),
/// the JSON pointers of its empty mapping values. Nothing when the text has none, or when it
/// cannot be read event by event (reading it reports the error) or has keys that are not
/// scalars.
pub(crate) fn empty_values(text: &str) -> Vec<Vec<String>> {
    if !text.lines().any(|line| line.trim_end().ends_with(':')) {
        return Vec::new();
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    let documents = super::scalars::walk(
        text,
        |_, _, empty| empty,
        |scalar| {
            if scalar.in_mapping {
                if out.len() <= scalar.document {
                    out.resize_with(scalar.document + 1, Vec::new);
                }
                out[scalar.document].push(scalar.pointer);
            }
        },
    );
    match documents {
        Some(documents) => {
            out.resize_with(documents, Vec::new);
            out
        }
        None => Vec::new(),
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
