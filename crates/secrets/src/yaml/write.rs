//! Writing secrets YAML with its comments: go-yaml v3's layout with sops' indent of 4; strings
//! are written by the shared emitter with go-yaml v3's quoting ([`Quoting::GoYamlV3`]).

use crate::tree::{Item, Mapping, Sequence, Value};
use weaver_yaml::emit::push_indent;
use weaver_yaml::emit::{Quoting, write_inline_string, write_string};

pub(crate) fn emit(docs: &[Mapping]) -> String {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if has_entries(doc) {
            emit_map(&mut out, doc, 0, 4, None);
        } else {
            for item in doc {
                if let Item::Comment(text) = item {
                    line(&mut out, 0, &format!("#{text}"));
                }
            }
            out.push_str("{}\n");
        }
    }
    out
}

fn has_entries<K>(items: &[Item<K>]) -> bool {
    items.iter().any(|i| matches!(i, Item::Entry { .. }))
}

fn line(out: &mut String, col: usize, text: &str) {
    push_indent(out, col);
    out.push_str(text);
    out.push('\n');
}

/// Keys at `key_col`, nested content at `child_col`. In a sequence item (`dash` is the dash's
/// column) the first entry shares the `- ` line and comments before it go above that line.
fn emit_map(out: &mut String, items: &Mapping, key_col: usize, child_col: usize, mut dash: Option<usize>) {
    for item in items {
        match item {
            Item::Comment(text) => line(out, dash.unwrap_or(key_col), &format!("#{text}")),
            Item::Entry { key, value, comment } => {
                match dash.take() {
                    Some(col) => {
                        push_indent(out, col);
                        out.push_str("- ");
                    }
                    None => push_indent(out, key_col),
                }
                write_inline_string(out, key, Quoting::GoYamlV3);
                out.push(':');
                emit_value(out, value, comment.as_deref(), child_col, child_col + 4);
            }
        }
    }
}

fn emit_seq(out: &mut String, items: &Sequence, dash_col: usize) {
    for item in items {
        match item {
            Item::Comment(text) => line(out, dash_col, &format!("#{text}")),
            Item::Entry { value: Value::Map(map), comment, .. } if has_entries(map) => {
                // A collection item has no line of its own to carry a comment: put it above.
                if let Some(text) = comment {
                    line(out, dash_col, &format!("#{text}"));
                }
                emit_map(out, map, dash_col + 2, dash_col + 4, Some(dash_col));
            }
            Item::Entry { value: value @ Value::Seq(seq), comment, .. } if has_entries(seq) => {
                if let Some(text) = comment {
                    line(out, dash_col, &format!("#{text}"));
                }
                push_indent(out, dash_col);
                out.push('-');
                emit_value(out, value, None, dash_col + 4, dash_col + 4);
            }
            Item::Entry { value, comment, .. } => {
                push_indent(out, dash_col);
                out.push('-');
                emit_value(out, value, comment.as_deref(), dash_col + 4, dash_col + 4);
            }
        }
    }
}

/// Writes what follows `key:` or `-`: an inline scalar (or block scalar), or a newline and an
/// indented collection at `child_col` (mapping children at `grandchild_col`).
fn emit_value(out: &mut String, value: &Value, comment: Option<&str>, child_col: usize, grandchild_col: usize) {
    let suffix = comment.map(|c| format!(" #{c}")).unwrap_or_default();
    match value {
        Value::Map(items) if has_entries(items) => {
            out.push_str(&suffix);
            out.push('\n');
            emit_map(out, items, child_col, grandchild_col, None);
        }
        Value::Seq(items) if has_entries(items) => {
            out.push_str(&suffix);
            out.push('\n');
            emit_seq(out, items, child_col);
        }
        // Empty collections have no block form; comments inside them go after the line.
        Value::Map(items) => {
            out.push_str(&format!(" {{}}{suffix}\n"));
            emit_comments(out, items, child_col);
        }
        Value::Seq(items) => {
            out.push_str(&format!(" []{suffix}\n"));
            emit_comments(out, items, child_col);
        }
        Value::Str(s) => {
            out.push(' ');
            write_string(out, s, Quoting::GoYamlV3, Some(child_col), &suffix);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline_scalar(scalar));
            out.push_str(&suffix);
            out.push('\n');
        }
    }
}

fn emit_comments<K>(out: &mut String, items: &[Item<K>], col: usize) {
    for item in items {
        if let Item::Comment(text) = item {
            line(out, col, &format!("#{text}"));
        }
    }
}

fn inline_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => ".nan".into(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        // Debug keeps a `.0` or an exponent, so the value reads back as a float.
        Value::Float(f) => format!("{f:?}"),
        Value::Str(_) | Value::Map(_) | Value::Seq(_) => unreachable!("strings and collections are written apart"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Item<String> {
        Item::Entry { key: key.into(), value: Value::Str(value.into()), comment: None }
    }

    /// Strings the render emitter would not write plain are quoted here too: a plain `=` is
    /// YAML 1.1's value key (PyYAML refuses the file), `1.2.3` a number to some YAML 1.1
    /// readers, a no-break space easily trimmed. The rest keeps go-yaml's choices: double
    /// quotes for what reads as another type, or as YAML 1.1's base-60 number.
    #[test]
    fn plain_only_where_the_shared_rule_allows() {
        let doc = vec![
            entry("version", "1.2.3"),
            entry("eq", "="),
            entry("nbsp", "a\u{a0}"),
            entry("word", "yes"),
            entry("port", "8080"),
            entry("date", "2024-01-01x"),
            entry("image", "nginx:1.25"),
            entry("said", "it's"),
            entry("sexagesimal", "1:20"),
        ];
        let expected = "version: '1.2.3'\neq: '='\nnbsp: 'a\u{a0}'\nword: \"yes\"\nport: \"8080\"\n\
                        date: \"2024-01-01x\"\nimage: nginx:1.25\nsaid: it's\nsexagesimal: \"1:20\"\n";
        assert_eq!(emit(&[doc]), expected);
    }

    /// Multi-line text in a literal block, with its comment after the header, unless its first
    /// line is indented (no indentation indicator); a tab in double quotes.
    #[test]
    fn blocks_and_tabs() {
        let mut block = entry("block", "a\n\n  b\n\n");
        if let Item::Entry { comment, .. } = &mut block {
            *comment = Some(" note".into());
        }
        let doc = vec![block, entry("indented", " a\nb"), entry("tab", "a\tb"), entry("lines", "a\tb\nc")];
        let expected =
            "block: |+ # note\n    a\n\n      b\n\nindented: \" a\\nb\"\ntab: \"a\\tb\"\nlines: |-\n    a\tb\n    c\n";
        assert_eq!(emit(&[doc]), expected);
    }

    /// go-yaml v3's choice for the words it reads as booleans or nulls, and YAML 1.1's booleans,
    /// as it spells them (double quotes); the shared rule's for other spellings (single quotes).
    #[test]
    fn words_are_quoted_as_go_yaml_spells_them() {
        let words = ["yes", "Off", "y", "N", "True", "Null", "yEs", "nULL", "tRUE", "yess"];
        let doc: Vec<Item<String>> = words.iter().map(|word| entry(word, word)).collect();
        let expected = "\"yes\": \"yes\"\n\"Off\": \"Off\"\n\"y\": \"y\"\n\"N\": \"N\"\n\"True\": \"True\"\n\
                        \"Null\": \"Null\"\n'yEs': 'yEs'\n'nULL': 'nULL'\n'tRUE': 'tRUE'\nyess: yess\n";
        assert_eq!(emit(&[doc]), expected);
    }
}
