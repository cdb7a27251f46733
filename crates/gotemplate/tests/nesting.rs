//! Values nested as deep as a template can build them (Go allows millions of levels): dropping,
//! printing, comparing and converting them never overflows the thread's stack. The tests run on
//! the test harness's threads (2 MiB of stack), where a recursive walk of a debug build overflows
//! within a few thousand levels, so each one at 200,000 levels fails without the bound it tests.

use std::sync::Arc;

use gotemplate::{MAX_NESTING, Map, Object, Templates, ToJsonError, Value};

const DEEP: usize = 200_000;

/// `levels` values, each `wrap` of the one before, around an empty map.
fn nested(levels: usize, wrap: impl Fn(Value) -> Value) -> Value {
    (0..levels).fold(Value::Map(Map::new()), |inner, _| wrap(inner))
}

fn in_map(inner: Value) -> Value {
    Value::Map(Map::from_iter([("a".to_string(), inner)]))
}

fn in_list(inner: Value) -> Value {
    Value::from(vec![Value::Int(1), inner])
}

/// An object holding a value, as sprig's typed slices (`chunk`'s `[][]interface {}`) do.
#[derive(Debug)]
struct Holder(Value);

impl Object for Holder {
    fn type_name(&self) -> &str {
        "[][]interface {}"
    }
    fn underlying(&self) -> Option<Value> {
        Some(self.0.clone())
    }
    fn take_values(&mut self, out: &mut Vec<Value>) {
        out.push(std::mem::take(&mut self.0));
    }
}

#[test]
fn deeply_nested_maps_lists_and_objects_drop_without_recursing() {
    drop(nested(DEEP, in_map));
    drop(nested(DEEP, in_list));
    drop(nested(DEEP, |inner| in_list(in_map(inner))));
    drop(nested(DEEP, |inner| Value::Object(Arc::new(Holder(in_list(inner))))));
}

#[test]
fn a_deep_value_shared_by_two_handles_is_taken_apart_by_the_last() {
    let value = nested(DEEP, in_map);
    let Value::Map(outer) = &value else { panic!("a map") };
    let inner = outer.get("a").expect("the next level");
    drop(value);
    // The first level is gone; the rest, still held, is intact, then dropped in turn.
    let Value::Map(second) = &inner else { panic!("a map") };
    assert!(second.contains_key("a"));
    drop(inner);
}

#[test]
fn debug_output_of_a_deep_list_stops_at_the_bound() {
    let shown = format!("{:?}", nested(DEEP, in_list));
    assert!(shown.starts_with("List([Int(1), List([Int(1), "), "{}", &shown[..60]);
    assert_eq!(shown.matches("List([").count(), MAX_NESTING);
    assert!(shown.contains("List(len 2)"));
}

#[test]
fn json_of_a_deep_value_is_an_error_naming_the_bound() {
    let error = nested(DEEP, in_map).to_json().unwrap_err();
    assert_eq!(error, ToJsonError::TooDeep);
    assert_eq!(error.to_string(), format!("json: value nested deeper than {MAX_NESTING} levels"));
    // Within the bound, the whole value converts.
    let json = nested(MAX_NESTING, in_map).to_json().unwrap();
    assert_eq!(json.to_string().matches("\"a\"").count(), MAX_NESTING);
}

#[test]
fn templates_print_and_compare_deep_values_without_overflowing() {
    let mut set = Templates::new("gotpl");
    set.parse("print", "{{ .d }}").unwrap();
    set.parse("eq", "{{ eq .d .d }}").unwrap();
    let data = Value::Map(Map::from_iter([("d".to_string(), nested(DEEP, in_map))]));
    let printed = set.execute("print", &data).unwrap();
    assert!(printed.starts_with("map[a:map[a:"), "{}", &printed[..40]);
    assert_eq!(printed.matches("map[").count(), MAX_NESTING + 2, "printing stops at the bound");
    let error = set.execute("eq", &data).unwrap_err().to_string();
    assert!(error.contains("error calling eq: non-comparable type map[a:map[a:"), "{}", &error[..200]);
}
