//! The three-way diff (DESIGN.md "Three-way diff"): for every object in desired ∪ last-applied,
//! whether an apply would create, update, delete or leave it, and which fields change.
//!
//! Client mode merges here: merged = live − (fields weaver set last time that desired no
//! longer sets) + desired, lists merged by their merge keys; the object changes when
//! normalize(live) ≠ normalize(merged). Server mode (`cluster` plans) asks the API server for
//! a dry-run apply of every object that client mode finds changed. Secret values never leave
//! this module: they are replaced by markers once the comparison is done.

mod fields;
mod paths;
pub mod plan;

use serde_json::{Map, Value};

pub use fields::{FieldSet, Kind};
pub use paths::{Change, ChangeOp, changes};
pub(crate) use paths::{element_path, field_path, set_element_path};
pub use plan::{Action, ObjectPlan, Plan, Summary};

use crate::manifest::MANAGER;
use crate::patch::merge_keys::{self, ListStrategy};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// A Secret value in diff output. The changed side says so, so a diff shows which keys changed.
pub const SECRET_MARKER: &str = "<redacted>";
pub const SECRET_CHANGED_MARKER: &str = "<redacted, changed>";

/// An object as the API server stores it: `null`s dropped (they set nothing) and a Secret's
/// `stringData` folded into base64 `data`.
pub fn as_stored(object: &Value) -> Value {
    let mut object = object.clone();
    drop_nulls(&mut object);
    if is_secret(&object)
        && let Some(Value::Object(string_data)) = object.as_object_mut().and_then(|o| o.shift_remove("stringData"))
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let map = object.as_object_mut().expect("checked above");
        let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(data) = data {
            for (key, value) in string_data {
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                data.insert(key, Value::String(b64.encode(text)));
            }
        }
    }
    object
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

pub fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// What an apply of `desired` (prepared) would leave, computed on the client.
/// `last_applied` is the prepared object from the release record; without one, the fields
/// the `weaver` manager applied (from `live`'s managedFields) stand in for it.
pub fn client_merge(desired: &Value, live: &Value, last_applied: Option<&Value>) -> Value {
    let kind = Kind {
        api_version: desired.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
        kind: desired.get("kind").and_then(Value::as_str).unwrap_or_default(),
    };
    let owned = match last_applied {
        Some(last) => Some(FieldSet::of_object(last, kind)),
        None => FieldSet::applied_by(live, MANAGER),
    };
    let mut merged = live.clone();
    if let Some(owned) = owned {
        owned.remove_unwanted(&mut merged, desired, kind);
    }
    // Desired carries no patch directives and no nulls, so a strategic merge is a plain
    // overlay with lists merged by key; it cannot fail on an object.
    if crate::patch::strategic::merge(&mut merged, desired, kind.api_version, kind.kind).is_err() {
        merged = desired.clone();
    }
    drop_empty_where_absent(&mut merged, live);
    align_with_live(&mut merged, live, last_applied, kind, &mut Vec::new());
    merged
}

/// Lists as the server leaves them. Keyed lists keep the live order. An atomic list (say a
/// StatefulSet's `volumeClaimTemplates`) is replaced whole by desired, which lacks what the
/// server defaulted inside its elements: where every desired element is contained in the live
/// element at its position, the live list is what the apply leaves, unless the record shows the
/// desired list itself changed since the last apply.
fn align_with_live<'v>(
    merged: &mut Value,
    live: &'v Value,
    last_applied: Option<&'v Value>,
    kind: Kind,
    path: &mut Vec<&'v str>,
) {
    match (merged, live) {
        (Value::Object(merged), Value::Object(live)) => {
            for (key, live_value) in live {
                if let Some(value) = merged.get_mut(key) {
                    path.push(key);
                    align_with_live(value, live_value, last_applied.and_then(|l| l.get(key)), kind, path);
                    path.pop();
                }
            }
        }
        (merged @ Value::Array(_), Value::Array(live_items)) => match kind.list(path) {
            ListStrategy::Merge { keys } => {
                let Value::Array(items) = merged else { return };
                let id = |item: &Value| merge_keys::element_key(keys, item).ok();
                // Server-side apply keeps the live order of existing elements and appends new
                // ones; a strategic merge may not, and order alone must not read as a change.
                let live_position = |item: &Value| {
                    let item_id = id(item);
                    live_items.iter().position(|l| item_id.is_some() && id(l) == item_id).unwrap_or(usize::MAX)
                };
                items.sort_by_key(|item| live_position(item));
                for item in items {
                    let Some(item_id) = id(item) else { continue };
                    let Some(live_item) = live_items.iter().find(|l| id(l).as_ref() == Some(&item_id)) else {
                        continue;
                    };
                    let last = last_applied
                        .and_then(Value::as_array)
                        .and_then(|list| list.iter().find(|l| id(l).as_ref() == Some(&item_id)));
                    align_with_live(item, live_item, last, kind, path);
                }
            }
            ListStrategy::MergePrimitives => {}
            ListStrategy::Atomic => {
                let unchanged_since_last = last_applied.is_none_or(|last| last == &*merged);
                if unchanged_since_last && contained(merged, live) {
                    *merged = live.clone();
                }
            }
        },
        _ => {}
    }
}

/// Whether every field of `part` is in `whole` with the same value (lists element-wise).
fn contained(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p.iter().all(|(k, v)| w.get(k).is_some_and(|wv| contained(v, wv))),
        (Value::Array(p), Value::Array(w)) => p.len() == w.len() && p.iter().zip(w).all(|(pv, wv)| contained(pv, wv)),
        _ => part == whole,
    }
}

/// The API server drops empty maps and lists (Go's `omitempty`); one the chart writes must not
/// show as a change against a live object that simply lacks it.
fn drop_empty_where_absent(merged: &mut Value, live: &Value) {
    match (merged, live) {
        (Value::Object(merged), Value::Object(live)) => {
            merged.retain(|key, value| live.contains_key(key) || !is_empty_collection(value));
            for (key, value) in merged.iter_mut() {
                if let Some(live_value) = live.get(key) {
                    drop_empty_where_absent(value, live_value);
                }
            }
        }
        (Value::Array(merged), Value::Array(live)) if merged.len() == live.len() => {
            for (m, l) in merged.iter_mut().zip(live) {
                drop_empty_where_absent(m, l);
            }
        }
        _ => {}
    }
}

fn is_empty_collection(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.is_empty()) || matches!(value, Value::Array(a) if a.is_empty())
}

/// Removes what the server maintains rather than the user (status, managedFields,
/// resourceVersion, uid, creationTimestamp, generation, kubectl's last-applied annotation)
/// and sorts keys, so that key order never shows as a change.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        map.shift_remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for field in ["managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"] {
                meta.shift_remove(field);
            }
            if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
                annotations.shift_remove(LAST_APPLIED);
                if annotations.is_empty() {
                    meta.shift_remove("annotations");
                }
            }
        }
    }
    sort_keys(&mut object);
    object
}

fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// Replaces Secret values on both sides with markers; the `after` side says `changed` where the
/// value differs, so the diff shows which keys changed but never a value (nor a hash of one).
pub fn redact_secret_values(before: Option<&mut Value>, after: Option<&mut Value>) {
    let before_data: Option<Map<String, Value>> =
        before.as_deref().and_then(|b| b.get("data")).and_then(Value::as_object).cloned();
    for side in [before, after].into_iter().flatten() {
        if !is_secret(side) {
            continue;
        }
        for field in ["data", "stringData"] {
            let Some(Value::Object(entries)) = side.get_mut(field) else { continue };
            for (key, value) in entries.iter_mut() {
                let unchanged = before_data.as_ref().is_none_or(|b| b.get(key).is_none_or(|old| old == value));
                *value = Value::String(if unchanged { SECRET_MARKER } else { SECRET_CHANGED_MARKER }.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "generation": 2,
                "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log", "env": [{"name": "A", "value": "1"}]}]}}},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn server_defaults_and_system_fields_are_not_changes() {
        let desired = as_stored(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}
        }));
        let live = live_deployment();
        let merged = client_merge(&desired, &live, Some(&desired));
        assert_eq!(normalize(&merged), normalize(&live));
    }

    #[test]
    fn a_field_dropped_from_desired_is_removed_only_if_weaver_set_it() {
        let last = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}});
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        let merged = normalize(&client_merge(&desired, &live_deployment(), Some(&last)));
        assert!(merged["spec"].get("replicas").is_none(), "replicas was weaver's and is gone");
        assert!(merged["spec"]["template"]["spec"]["containers"][0].get("env").is_none());
        assert_eq!(merged["spec"]["revisionHistoryLimit"], 10, "a server default stays");
    }

    #[test]
    fn string_data_is_compared_as_the_server_stores_it() {
        let desired = as_stored(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}));
        assert_eq!(desired["data"], json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="}));
        assert!(desired.get("stringData").is_none());
    }

    #[test]
    fn secret_markers_say_which_keys_changed_and_never_a_value() {
        let mut before = json!({"apiVersion": "v1", "kind": "Secret", "data": {"same": "YQ==", "changed": "Yg==", "removed": "Yw=="}});
        let mut after =
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"same": "YQ==", "changed": "ZA==", "added": "ZQ=="}});
        redact_secret_values(Some(&mut before), Some(&mut after));
        assert_eq!(before["data"], json!({"same": SECRET_MARKER, "changed": SECRET_MARKER, "removed": SECRET_MARKER}));
        assert_eq!(
            after["data"],
            json!({"same": SECRET_MARKER, "changed": SECRET_CHANGED_MARKER, "added": SECRET_MARKER})
        );
    }
}
