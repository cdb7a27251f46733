//! Values merging, as helm does it: maps merge key by key, anything else replaces, and a
//! `null` in the override removes the key.

use serde_json::{Map, Value};

pub fn deep_merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match value {
            Value::Null => {
                base.remove(&key);
            }
            Value::Object(overlay_map) => match base.get_mut(&key) {
                Some(Value::Object(base_map)) => deep_merge(base_map, overlay_map),
                _ => {
                    base.insert(key, Value::Object(strip_nulls(overlay_map)));
                }
            },
            other => {
                base.insert(key, other);
            }
        }
    }
}

/// A null inside a newly added map has nothing to delete; dropping it keeps "null removes" true
/// at every depth.
fn strip_nulls(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::Object(m) => (k, Value::Object(strip_nulls(m))),
            other => (k, other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(base: Value, overlay: Value) -> Value {
        let (Value::Object(mut b), Value::Object(o)) = (base, overlay) else { unreachable!() };
        deep_merge(&mut b, o);
        Value::Object(b)
    }

    #[test]
    fn maps_merge_and_scalars_replace() {
        let out = merged(json!({"a": {"x": 1, "y": 2}, "b": 1}), json!({"a": {"y": 3, "z": 4}, "b": "s"}));
        assert_eq!(out, json!({"a": {"x": 1, "y": 3, "z": 4}, "b": "s"}));
    }

    #[test]
    fn lists_replace_whole() {
        let out = merged(json!({"l": [1, 2, 3]}), json!({"l": [9]}));
        assert_eq!(out, json!({"l": [9]}));
    }

    #[test]
    fn null_removes_key_at_any_depth() {
        let out = merged(
            json!({"a": {"x": 1, "y": 2}, "b": 1}),
            json!({"a": {"x": null}, "b": null, "c": {"d": null, "e": 1}}),
        );
        assert_eq!(out, json!({"a": {"y": 2}, "c": {"e": 1}}));
    }

    #[test]
    fn map_replaces_scalar() {
        let out = merged(json!({"a": 1}), json!({"a": {"b": 2}}));
        assert_eq!(out, json!({"a": {"b": 2}}));
    }
}
