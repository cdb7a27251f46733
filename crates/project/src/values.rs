//! Values merging, as helm does it: maps merge key by key, anything else replaces, and a
//! `null` in the override removes the key.

use std::path::Path;

use serde_json::{Map, Value};

use crate::source::{PathRef, Source, utf8};
use weaver_core::error::{Error, Location, Result};

/// The values file `file` lists (`what` says where: "values file", "file of variables"), read
/// and parsed as a layer of values: how an environment's `valuesFiles` are read; a release's are
/// read at render time through [`layer`], after decryption or templating.
pub fn read_layer(source: &dyn Source, file: &PathRef, what: &str) -> Result<Map<String, Value>> {
    let Some(bytes) = source.read_named(&file.path, &file.at, what)? else {
        return Err(source.missing(&file.path, &file.at, what));
    };
    let text = utf8(&file.path, bytes)?;
    layer(file, what, weaver_yaml::from_str::<Option<Value>>(&file.path, &text)?)
}

/// A values file's parsed content as a layer of values: nothing for an empty file; an error for
/// one SOPS encrypted and not decrypted (its values would be `ENC[…]`) or not a mapping.
pub fn layer(file: &PathRef, what: &str, parsed: Option<Value>) -> Result<Map<String, Value>> {
    match parsed {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) if is_sops_encrypted(&map) => Err(Error::at(
            file.at.clone(),
            format!("{what} {} is encrypted with SOPS and was not decrypted", file.path.display()),
        )),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => {
            Err(Error::at(Location::file(Path::new(&file.path)), "must be a mapping of values at the top level"))
        }
    }
}

/// Whether a document's top level is SOPS's: its values are `ENC[…]` text until decrypted.
pub fn is_sops_encrypted(document: &Map<String, Value>) -> bool {
    document.get("sops").is_some_and(Value::is_object)
}

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

/// Combines two layers of overrides (a base environment's release `values`, then a child's) into
/// one, keeping every `null`: the combined layer is merged over lower layers later (chart
/// defaults, valuesFiles), whose keys those nulls must still delete.
pub fn merge_overrides(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(base_map)), Value::Object(overlay_map)) => merge_overrides(base_map, overlay_map),
            (_, value) => {
                base.insert(key, value);
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
    fn combined_overrides_keep_their_nulls_for_the_layers_below() {
        let mut base = json!({"a": {"x": 1}, "b": 2, "c": 3}).as_object().unwrap().clone();
        let child = json!({"a": {"y": null}, "b": null, "d": {"e": null}}).as_object().unwrap().clone();
        merge_overrides(&mut base, child);
        assert_eq!(Value::Object(base.clone()), json!({"a": {"x": 1, "y": null}, "b": null, "c": 3, "d": {"e": null}}));
        let out = merged(json!({"a": {"y": 1, "z": 1}, "b": 1, "d": {"e": 1, "f": 1}}), Value::Object(base));
        assert_eq!(out, json!({"a": {"x": 1, "z": 1}, "c": 3, "d": {"f": 1}}));
    }

    #[test]
    fn map_replaces_scalar() {
        let out = merged(json!({"a": 1}), json!({"a": {"b": 2}}));
        assert_eq!(out, json!({"a": {"b": 2}}));
    }
}
