//! Folded block scalars (`>`) as kustomize reads them. kyaml keeps a node's style, and a
//! kustomize build writes each resource out once with go-yaml v3 and reads it back. go-yaml's
//! folded emitter decides whether a line break needs an extra one (so that it is not folded into
//! a space) by the first character of the whole value rather than of the next line
//! (`yaml_emitter_write_folded_scalar`: `k := 0`). So for a value that does not start with a
//! space, a more-indented line after a line break, and the trailing breaks, get one more line
//! break than YAML gives them; for one that does, lines that YAML keeps apart are folded. Users'
//! clusters hold kustomize's value, so weaver reads what kustomize does.

/// `value` written as go-yaml v3 writes a folded scalar, and read back: what a build ends up
/// with for a folded scalar read as `value` (`super::documents_kustomize` reads them so).
pub(crate) fn reread(value: &str) -> String {
    let blank = |c: char| c == ' ' || c == '\t';
    // go-yaml looks past the value's leading line breaks: a blank (or nothing) there means no
    // extra breaks at all.
    let extra_breaks = value.trim_start_matches('\n').chars().next().is_some_and(|c| !blank(c));
    let mut block = String::new();
    let mut previous: Option<&str> = None;
    for line in value.split('\n') {
        if let Some(previous) = previous {
            if extra_breaks && !previous.is_empty() && !previous.starts_with(blank) {
                block.push('\n');
            }
            block.push('\n');
        }
        if !line.is_empty() {
            block.push_str("  ");
            block.push_str(line);
        }
        previous = Some(line);
    }
    // The value's own last line break ends the block; without one, the document's does.
    if !value.ends_with('\n') {
        block.push('\n');
    }
    let indicator = if value.starts_with([' ', '\t', '\n']) { "2" } else { "" };
    let chomping = match value.strip_suffix('\n') {
        None => "-",
        Some(rest) if rest.is_empty() || rest.ends_with('\n') => "+",
        Some(_) => "",
    };
    let document = format!("x: >{indicator}{chomping}\n{block}");
    match crate::documents_kyaml(std::path::Path::new("folded"), &document) {
        Ok(docs) => docs.first().and_then(|d| d["x"].as_str()).map_or_else(|| value.to_string(), str::to_string),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// The values `kubectl kustomize` 1.32 (kustomize v5.5.0) gives these folded scalars.
    #[test]
    fn folded_scalars_read_as_kustomize_reads_them() {
        let text = "\
one: >-\n  a\n  b\n\n    more\n  c
two: >-\n  a\n\n    more\n  c
twoblank: >-\n  a\n\n\n    more\n  c
keep: >+\n  a\n\n    more\n  c\n
clip: >\n  a\n\n    more\n  c
start: >2-\n    more\n  a
end: >-\n  a\n\n    more
after: >-\n  a\n    more\n\n  b
mid: >-\n  a\n\n    more\n    more2\n\n  b
plain: >-\n  a\n  b\n\n  c
indented: >2-\n    x\n  y\n  z
";
        let (docs, _) = crate::documents_kustomize(std::path::Path::new("t"), text).unwrap();
        let expected = serde_json::json!({
            "one": "a b\n\n\n  more\nc",
            "two": "a\n\n\n  more\nc",
            "twoblank": "a\n\n\n\n  more\nc",
            "keep": "a\n\n\n  more\nc\n\n\n",
            "clip": "a\n\n\n  more\nc\n",
            "start": "  more\na",
            "end": "a\n\n\n  more",
            "after": "a\n\n  more\n\nb",
            "mid": "a\n\n\n  more\n  more2\n\nb",
            "plain": "a b\nc",
            "indented": "  x\ny z",
        });
        assert_eq!(docs[0], expected);
    }
}
