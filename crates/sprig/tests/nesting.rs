//! Values nested 200,000 levels deep, as a template's loop builds them: every function that walks
//! a value (copies, comparisons, merges, encoders) fails naming the bound instead of overflowing
//! the stack, and building, keeping and dropping such a value works. The harness's threads have
//! 2 MiB of stack, where a debug build's recursion overflows within a few thousand levels.

use crate::common;

use gotemplate::{MAX_NESTING, Map, Value};

const DEEP: usize = 200_000;

/// A chain of `levels` maps, each holding the next under "a", built as a template would.
fn nested_maps(levels: usize) -> Value {
    (0..levels).fold(Value::Map(Map::new()), |inner, _| Value::Map(Map::from_iter([("a".to_string(), inner)])))
}

/// `.d` and `.e`, two distinct chains `levels` deep.
fn data(levels: usize) -> Value {
    Value::Map(Map::from_iter([("d".to_string(), nested_maps(levels)), ("e".to_string(), nested_maps(levels))]))
}

fn render(template: &str, data: &Value) -> Result<String, String> {
    let mut set = common::templates();
    set.parse("t", template).map_err(|e| e.to_string())?;
    set.execute("t", data).map_err(|e| e.to_string())
}

#[test]
fn building_and_dropping_a_deep_value_in_a_template_works() {
    let dicts = r#"{{- $d := dict }}{{ range until 200000 }}{{ $d = dict "a" $d }}{{ end }}{{ len $d }}"#;
    assert_eq!(render(dicts, &Value::Nil).unwrap(), "1");
    let lists = r#"{{- $d := list }}{{ range until 200000 }}{{ $d = list $d }}{{ end }}{{ len $d }}"#;
    assert_eq!(render(lists, &Value::Nil).unwrap(), "1");
    // chunk's `[][]interface {}` is an object holding its lists.
    let chunks = r#"{{- $d := list }}{{ range until 200000 }}{{ $d = chunk 1 (list $d) }}{{ end }}{{ typeOf $d }}"#;
    assert_eq!(render(chunks, &Value::Nil).unwrap(), "[][]interface {}");
}

#[test]
fn walks_of_a_deep_value_fail_naming_the_bound() {
    let bound = format!("value nested deeper than {MAX_NESTING} levels");
    // Each call fails before it changes anything (merges stop before their first insert).
    let data = data(DEEP);
    for (function, call) in [
        ("deepCopy", "deepCopy .d"),
        ("mustDeepCopy", "mustDeepCopy .d"),
        ("deepEqual", "deepEqual .d .e"),
        ("merge", "merge .d .e"),
        ("mustMerge", "mustMerge .d .e"),
        ("mergeOverwrite", "mergeOverwrite .d .e"),
        ("mustMergeOverwrite", "mustMergeOverwrite .d .e"),
        ("uniq", "uniq (list .d .e)"),
        ("has", "has .d (list .e)"),
        ("without", "without (list .d) .e"),
        ("toPrettyJson", "toPrettyJson .d"),
        ("mustToPrettyJson", "mustToPrettyJson .d"),
        ("mustToJson", "mustToJson .d"),
        ("toRawJson", "toRawJson .d"),
        ("mustToRawJson", "mustToRawJson .d"),
    ] {
        let error = render(&format!("{{{{ {call} }}}}"), &data).expect_err(call);
        assert!(error.ends_with(&format!("error calling {function}: {bound}")), "{call}: {error}");
    }
}

#[test]
fn walks_within_the_bound_go_all_the_way() {
    let levels = MAX_NESTING - 1;
    let data = data(levels);
    assert_eq!(render("{{ deepEqual .d .e }} {{ deepEqual (deepCopy .d) .e }}", &data).unwrap(), "true true");
    assert_eq!(render("{{ len (uniq (list .d .e)) }} {{ has .d (list .e) }}", &data).unwrap(), "1 true");
    let json = render("{{ mustToJson (mergeOverwrite .d .e) }}", &data).unwrap();
    assert_eq!(json.matches(r#"{"a":"#).count(), levels);
}
