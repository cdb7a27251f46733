//! The three-way diff (the book's concepts/diff.md): whether an object as desired differs from
//! the live one given what weaver applied last, and which fields change (`crate::plan` decides
//! from it, for every object in desired ∪ last-applied, whether an apply would create, update,
//! delete or leave it).
//!
//! Client mode merges here: merged = live − (fields weaver set last time that desired no
//! longer sets) + desired, lists merged by their merge keys and ordered as server-side apply
//! orders them; the object changes when normalize(live) ≠ normalize(merged). Server mode (`cluster` plans) asks the API server for
//! a dry-run apply of every object that client mode finds changed. Secret values never leave
//! this module: they are replaced by markers once the comparison is done.

mod fields;
pub mod ignore;
mod paths;

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde_json::{Map, Value};

pub use fields::FieldSet;
pub use paths::{Change, ChangeOp, Kind, changes, key_problem};
pub(crate) use paths::{element_path, field_path, set_element_path};

use weaver_core::manifest::MANAGER;
use weaver_patch::merge_keys::{self, ListStrategy};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// A Secret value in diff output. The changed side says so, so a diff shows which keys changed.
pub const SECRET_MARKER: &str = "<redacted>";
pub const SECRET_CHANGED_MARKER: &str = "<redacted, changed>";

/// An object as the API server stores it: `null`s dropped (they set nothing), base64 values
/// on one line (as kustomize's generators wrap them, the server returns them unwrapped) and a
/// Secret's `stringData` folded into base64 `data`.
pub fn as_stored(mut object: Value) -> Value {
    drop_nulls(&mut object);
    weaver_kube_schema::integral_floats(&mut object);
    let base64_field = match (object["apiVersion"].as_str(), object["kind"].as_str()) {
        (Some("v1"), Some("Secret")) => Some("data"),
        (Some("v1"), Some("ConfigMap")) => Some("binaryData"),
        _ => None,
    };
    if let Some(Value::Object(values)) = base64_field.and_then(|field| object.get_mut(field)) {
        for value in values.values_mut() {
            if let Value::String(text) = value
                && text.contains(['\n', '\r'])
            {
                *text = weaver_core::manifest::unwrapped_base64(text);
            }
        }
    }
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
    let mut merged = weaver_patch::strategic::merged(merged, desired, kind.api_version, kind.kind)
        .unwrap_or_else(|_| desired.clone());
    drop_empty_where_absent(&mut merged, live);
    let sides = Sides { live, desired: Some(desired), last_applied };
    align_with_live(&mut merged, sides, kind, &mut Vec::new());
    merged
}

/// Whether an apply of `desired` leaves `live` exactly as it is, decided without merging: when
/// no field of weaver's is to be removed (`desired` is what weaver applied last, or without a
/// record, it still sets every field the `weaver` manager owns in `live`) and every field it
/// sets is already in `live` with that value, [`client_merge`] returns `live` itself.
/// Lists take the merge's own rules: keyed lists element by element with the same keys in the
/// same order (nothing to reorder, no element added), sets of scalars equal and without
/// duplicates (the merge would drop one), atomic lists element-wise contained (the merge keeps
/// live's then, server defaults and all). `false` only means "merge to find out": a directive,
/// a `null`, another order, an element live lacks or a record that differs all take the merge.
pub fn applies_unchanged(desired: &Value, live: &Value, last_applied: Option<&Value>, kind: Kind) -> bool {
    // The cheap walk first: a changed object fails it, and then goes on to the merge, which
    // reads the managed fields itself.
    applied_within(desired, live, kind, Some(&mut Vec::new()))
        && match last_applied {
            // Not merely every field kept: with a record, an atomic list desired differently
            // from the last apply is the desired one after the merge, not the live one.
            Some(last) => desired == last,
            None => FieldSet::applied_by(live, MANAGER).is_none_or(|owned| owned.all_wanted(desired, kind)),
        }
}

/// Whether every field of `desired` is in `live` with the same value, as the merge matches them.
/// `path` (the field names down to here, what list strategies are looked up by) is None inside
/// an atomic list, where elements are compared by position only.
fn applied_within<'v>(desired: &'v Value, live: &Value, kind: Kind, mut path: Option<&mut Vec<&'v str>>) -> bool {
    match (desired, live) {
        (Value::Object(desired), Value::Object(live)) => desired.iter().all(|(key, value)| {
            // A directive (`$patch`, `$retainKeys`, ...) or a null means more than its value.
            if key.starts_with('$') || value.is_null() {
                return false;
            }
            let Some(live_value) = live.get(key) else { return false };
            match path.as_deref_mut() {
                Some(path) => {
                    path.push(key);
                    let within = applied_within(value, live_value, kind, Some(&mut *path));
                    path.pop();
                    within
                }
                None => applied_within(value, live_value, kind, None),
            }
        }),
        (Value::Array(desired), Value::Array(live)) if desired.len() == live.len() => {
            let Some(path) = path else {
                return desired.iter().zip(live).all(|(d, l)| applied_within(d, l, kind, None));
            };
            match kind.list(path) {
                ListStrategy::Merge { keys } => desired.iter().zip(live).all(|(d, l)| {
                    let id = merge_keys::element_key(keys, d);
                    id.is_ok() && id == merge_keys::element_key(keys, l) && applied_within(d, l, kind, Some(&mut *path))
                }),
                ListStrategy::MergePrimitives => {
                    desired == live && desired.iter().enumerate().all(|(at, item)| !desired[..at].contains(item))
                }
                ListStrategy::Atomic => desired.iter().zip(live).all(|(d, l)| applied_within(d, l, kind, None)),
            }
        }
        (Value::Array(_), _) => false,
        _ => desired == live,
    }
}

/// The same field of the live, desired and last applied objects.
#[derive(Clone, Copy)]
struct Sides<'v> {
    live: &'v Value,
    desired: Option<&'v Value>,
    last_applied: Option<&'v Value>,
}

impl<'v> Sides<'v> {
    /// The field `key` of each side, if live has it.
    fn field(self, key: &str) -> Option<Sides<'v>> {
        Some(Sides {
            live: self.live.get(key)?,
            desired: self.desired.and_then(|d| d.get(key)),
            last_applied: self.last_applied.and_then(|l| l.get(key)),
        })
    }

    /// Each side's list elements by identity (the first of each), for [`Elements::get`].
    fn elements<K: Hash + Eq>(self, id: impl Fn(&Value) -> Option<K>) -> Elements<'v, K> {
        let index = |list: Option<&'v Value>| {
            let mut by_id = HashMap::new();
            for element in list.and_then(Value::as_array).into_iter().flatten() {
                if let Some(element_id) = id(element) {
                    by_id.entry(element_id).or_insert(element);
                }
            }
            by_id
        };
        Elements { live: index(Some(self.live)), desired: index(self.desired), last_applied: index(self.last_applied) }
    }
}

/// The elements of the same list of the live, desired and last applied objects, by identity.
struct Elements<'v, K> {
    live: HashMap<K, &'v Value>,
    desired: HashMap<K, &'v Value>,
    last_applied: HashMap<K, &'v Value>,
}

impl<'v, K: Hash + Eq> Elements<'v, K> {
    /// The element of each side whose identity is `id`, if live has it.
    fn get(&self, id: &K) -> Option<Sides<'v>> {
        Some(Sides {
            live: self.live.get(id)?,
            desired: self.desired.get(id).copied(),
            last_applied: self.last_applied.get(id).copied(),
        })
    }
}

/// Lists as the server leaves them. Keyed lists and sets come in the order server-side apply
/// gives them ([`applied_order`]). An atomic list (say a StatefulSet's `volumeClaimTemplates`)
/// is replaced whole by desired, which lacks what the server defaulted inside its elements:
/// where every desired element is contained in the live element at its position, the live list
/// is what the apply leaves, unless the record shows the desired list itself changed since the
/// last apply.
fn align_with_live<'v>(merged: &mut Value, sides: Sides<'v>, kind: Kind, path: &mut Vec<&'v str>) {
    match (merged, sides.live) {
        (Value::Object(merged), Value::Object(live)) => {
            for key in live.keys() {
                if let (Some(value), Some(inner)) = (merged.get_mut(key), sides.field(key)) {
                    path.push(key);
                    align_with_live(value, inner, kind, path);
                    path.pop();
                }
            }
        }
        (merged @ Value::Array(_), Value::Array(_)) => match kind.list(path) {
            ListStrategy::Merge { keys } => {
                let Value::Array(items) = merged else { return };
                let id = |item: &Value| merge_keys::element_key(keys, item).ok();
                sort_as_applied(items, sides, id);
                let elements = sides.elements(id);
                for item in items {
                    if let Some(inner) = id(item).and_then(|item_id| elements.get(&item_id)) {
                        align_with_live(item, inner, kind, path);
                    }
                }
            }
            ListStrategy::MergePrimitives => {
                let Value::Array(items) = merged else { return };
                sort_as_applied(items, sides, |item: &Value| Some(item.clone()));
            }
            ListStrategy::Atomic => {
                let unchanged_since_last = sides.last_applied.is_none_or(|last| last == &*merged);
                if unchanged_since_last && contained(merged, sides.live) {
                    *merged = sides.live.clone();
                }
            }
        },
        _ => {}
    }
}

/// Sorts the elements of a merged list (each live or desired) in the order server-side apply
/// leaves them, given each element's identity.
fn sort_as_applied<K: Hash + Eq>(items: &mut [Value], sides: Sides, id: impl Fn(&Value) -> Option<K>) {
    let ids = |list: Option<&Value>| -> Option<Vec<K>> {
        list.and_then(Value::as_array).map_or(Some(Vec::new()), |items| items.iter().map(&id).collect())
    };
    // An element without its key fields is an error the server reports; leave such a list be.
    let (Some(live), Some(desired)) = (ids(Some(sides.live)), ids(sides.desired)) else { return };
    if live == desired {
        return; // the merge left the list in this order (the usual case: nothing reordered)
    }
    let mut positions: HashMap<&K, usize> = HashMap::new();
    for (at, item_id) in applied_order(&live, &desired).into_iter().enumerate() {
        positions.entry(item_id).or_insert(at);
    }
    let position = |item: &Value| id(item).and_then(|item_id| positions.get(&item_id).copied());
    items.sort_by_cached_key(|item| position(item).unwrap_or(usize::MAX));
}

/// The order of the elements of a list merged by server-side apply, by identity, from the live
/// list's and the applied list's: structured-merge-diff's `visitListItems` (v4.2+, Kubernetes
/// 1.24+). Elements both hold come in the applied order; one only live has comes out where the
/// walk over live reaches it, one only applied has right after its applied predecessor. (Up to
/// 1.23 the live order was kept and new elements appended.)
fn applied_order<'k, K: Hash + Eq>(live: &'k [K], applied: &'k [K]) -> Vec<&'k K> {
    let in_live: HashSet<&K> = live.iter().collect();
    let in_applied: HashSet<&K> = applied.iter().collect();
    let mut shared = applied.iter().filter(|k| in_live.contains(k));
    let mut next_shared = shared.next();
    let mut out: Vec<&K> = Vec::with_capacity(live.len().max(applied.len()));
    let mut emitted: HashSet<&K> = HashSet::new();
    let (mut l, mut a) = (0, 0);
    while l < live.len() || a < applied.len() {
        if l < live.len() && a < applied.len() {
            if live[l] == applied[a] {
                out.push(&applied[a]);
                emitted.insert(&applied[a]);
                l += 1;
                a += 1;
                next_shared = shared.next();
                continue;
            }
            if in_applied.contains(&live[l]) && next_shared.is_some_and(|n| *n != live[l]) {
                l += 1; // shared, but not its turn yet
                continue;
            }
        }
        if l < live.len() {
            if !in_applied.contains(&live[l]) {
                out.push(&live[l]);
                emitted.insert(&live[l]);
                l += 1;
                continue;
            } else if emitted.contains(&live[l]) {
                l += 1; // already merged; the next applied element still comes in this round
            }
        }
        if a < applied.len() {
            out.push(&applied[a]);
            emitted.insert(&applied[a]);
            if next_shared.is_some_and(|n| *n == applied[a]) {
                next_shared = shared.next();
            }
            a += 1;
        }
    }
    out
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
pub fn normalize(mut object: Value) -> Value {
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

/// Every map of `value`, at any depth, in key order.
pub fn sort_keys(value: &mut Value) {
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

    #[test]
    fn floats_without_a_fraction_are_stored_as_integers() {
        let stored = as_stored(serde_json::json!({"spec": {"minimum": 0.0, "ratio": 1.5, "sizes": [2.0, 3]}}));
        assert_eq!(stored["spec"], serde_json::json!({"minimum": 0, "ratio": 1.5, "sizes": [2, 3]}));
        assert_eq!(stored["spec"]["minimum"].to_string(), "0");
    }

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
        let desired = as_stored(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}
        }));
        let live = live_deployment();
        let merged = client_merge(&desired, &live, Some(&desired));
        assert_eq!(normalize(merged), normalize(live));
    }

    #[test]
    fn a_field_dropped_from_desired_is_removed_only_if_weaver_set_it() {
        let last = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}}});
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        let merged = normalize(client_merge(&desired, &live_deployment(), Some(&last)));
        assert!(merged["spec"].get("replicas").is_none(), "replicas was weaver's and is gone");
        assert!(merged["spec"]["template"]["spec"]["containers"][0].get("env").is_none());
        assert_eq!(merged["spec"]["revisionHistoryLimit"], 10, "a server default stays");
    }

    fn with_env(names: &[&str]) -> Value {
        let env: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": n.to_lowercase()})).collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1", "env": env}]}}}})
    }

    fn env_names(object: &Value) -> Vec<&str> {
        let env = object["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
        env.iter().map(|e| e["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn a_keyed_list_takes_the_applied_order_as_server_side_apply_does_since_1_24() {
        let abc = with_env(&["A", "B", "C"]);
        let merged = client_merge(&with_env(&["C", "A", "B"]), &abc, Some(&abc));
        assert_eq!(env_names(&merged), ["C", "A", "B"]);
        assert_ne!(normalize(merged), normalize(abc.clone()), "a reorder is a change");
        // Another manager's X, between A and B, goes first: the walk over live reaches it while
        // A and B wait for their applied turn, after C.
        let live = with_env(&["A", "X", "B", "C"]);
        assert_eq!(env_names(&client_merge(&with_env(&["C", "A", "B"]), &live, Some(&abc))), ["X", "C", "A", "B"]);
        // Where the applied order is the live one, other managers' elements stay where they are.
        let ab = with_env(&["A", "B"]);
        let live = with_env(&["A", "X", "B"]);
        assert_eq!(normalize(client_merge(&ab, &live, Some(&ab))), normalize(live));
    }

    #[test]
    fn applied_order_follows_structured_merge_diff() {
        let order = |live: &[&'static str], applied: &[&'static str]| -> Vec<&'static str> {
            applied_order(live, applied).into_iter().copied().collect()
        };
        assert_eq!(order(&["A", "B", "C"], &["C", "A", "B"]), ["C", "A", "B"]);
        assert_eq!(order(&["A", "B", "C"], &["D", "A", "B", "C"]), ["D", "A", "B", "C"]);
        assert_eq!(order(&["A", "B", "C"], &["A", "D", "B"]), ["A", "D", "B", "C"]);
        assert_eq!(order(&["A", "X", "B", "C"], &["C", "A", "B"]), ["X", "C", "A", "B"]);
        assert_eq!(order(&["A", "B", "X"], &["B", "A"]), ["B", "X", "A"]);
        // A live duplicate already merged lets the next applied element through first.
        assert_eq!(order(&["A", "A", "Y"], &["A", "Z"]), ["A", "Z", "Y"]);
    }

    #[test]
    fn string_data_is_compared_as_the_server_stores_it() {
        let desired = as_stored(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}));
        assert_eq!(desired["data"], json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="}));
        assert!(desired.get("stringData").is_none());
    }

    /// kustomize's generators wrap base64 in lines of 70; the server returns it on one line.
    #[test]
    fn wrapped_base64_is_compared_as_the_server_stores_it() {
        let secret = as_stored(json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "eHh4\neA==\n"}}));
        assert_eq!(secret["data"]["k"], "eHh4eA==");
        let config = as_stored(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "data": {"text": "a\nb\n"}, "binaryData": {"bin": "/w==\n"}}));
        assert_eq!(config["binaryData"]["bin"], "/w==");
        assert_eq!(config["data"]["text"], "a\nb\n");
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

    /// The shortcut's answer and the merge's (whether `normalize(merged) == normalize(live)`),
    /// for `desired` against `live` with `last` applied; the shortcut may only ever say
    /// "unchanged" where the merge does.
    fn shortcut_and_merge(desired: &Value, live: &Value, last: Option<&Value>) -> (bool, bool) {
        let kind =
            Kind { api_version: desired["apiVersion"].as_str().unwrap(), kind: desired["kind"].as_str().unwrap() };
        let shortcut = applies_unchanged(desired, live, last, kind);
        let merged = client_merge(desired, live, last);
        let unchanged = normalize(merged.clone()) == normalize(live.clone());
        if shortcut {
            assert_eq!(merged, *live, "the shortcut said unchanged, so the merge must give live itself");
        }
        (shortcut, unchanged)
    }

    fn desired_deployment() -> Value {
        as_stored(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1",
                "env": [{"name": "A", "value": "1"}]}]}}}
        }))
    }

    /// `fields` as the `weaver` manager's Apply entry of `object`'s managedFields, with another
    /// manager's entry beside it.
    fn with_managed_fields(mut object: Value, weaver: Value, other: Value) -> Value {
        object["metadata"]["managedFields"] = json!([
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": other},
            {"manager": "weaver", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": weaver},
        ]);
        object
    }

    fn weaver_fields() -> Value {
        json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {
            "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}, "f:env": {
                "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}})
    }

    #[test]
    fn an_unchanged_object_takes_the_shortcut_with_server_defaults_live() {
        let desired = desired_deployment();
        assert_eq!(shortcut_and_merge(&desired, &live_deployment(), Some(&desired)), (true, true));
        // Without a record, the fields weaver owns in managedFields say nothing is removed.
        let live = with_managed_fields(live_deployment(), weaver_fields(), json!({"f:spec": {"f:paused": {}}}));
        assert_eq!(shortcut_and_merge(&desired, &live, None), (true, true));
        // Neither a record nor managedFields: nothing is removed either.
        assert_eq!(shortcut_and_merge(&desired, &live_deployment(), None), (true, true));
    }

    #[test]
    fn a_field_removed_from_desired_takes_the_merge() {
        let desired = desired_deployment();
        let mut fewer = desired.clone();
        fewer["spec"].as_object_mut().unwrap().shift_remove("replicas");
        // The record says weaver set replicas last time: the apply removes it.
        assert_eq!(shortcut_and_merge(&fewer, &live_deployment(), Some(&desired)), (false, false));
        // So do the fields weaver owns, without a record.
        let live = with_managed_fields(live_deployment(), weaver_fields(), json!({}));
        assert_eq!(shortcut_and_merge(&fewer, &live, None), (false, false));
        // An element of a keyed list, too.
        let mut no_env = desired.clone();
        no_env["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().shift_remove("env");
        assert_eq!(shortcut_and_merge(&no_env, &live, None), (false, false));
    }

    #[test]
    fn a_field_of_another_manager_stays_and_one_desired_otherwise_takes_the_merge() {
        let desired = desired_deployment();
        // kubectl set `paused`, which weaver does not set: the apply leaves it.
        let mut live = with_managed_fields(live_deployment(), weaver_fields(), json!({"f:spec": {"f:paused": {}}}));
        live["spec"]["paused"] = json!(true);
        assert_eq!(shortcut_and_merge(&desired, &live, Some(&desired)), (true, true));
        assert_eq!(shortcut_and_merge(&desired, &live, None), (true, true));
        // kubectl scaled to 5 what weaver sets to 2: the apply takes it back.
        live["spec"]["replicas"] = json!(5);
        assert_eq!(shortcut_and_merge(&desired, &live, Some(&desired)), (false, false));
        assert_eq!(shortcut_and_merge(&desired, &live, None), (false, false));
    }

    #[test]
    fn drift_and_a_changed_desired_object_take_the_merge() {
        let desired = desired_deployment();
        let mut drifted = live_deployment();
        drifted["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_eq!(shortcut_and_merge(&desired, &drifted, Some(&desired)), (false, false));
        let mut added = live_deployment();
        added["metadata"]["labels"].as_object_mut().unwrap().shift_remove("app");
        assert_eq!(shortcut_and_merge(&desired, &added, Some(&desired)), (false, false));
        // A new desired value the live object already has (someone set it by hand): the
        // record differs, so the merge decides (and finds nothing to do).
        let mut last = desired.clone();
        last["spec"]["replicas"] = json!(3);
        assert_eq!(shortcut_and_merge(&desired, &live_deployment(), Some(&last)), (false, true));
    }

    #[test]
    fn a_reordered_or_differently_keyed_list_takes_the_merge() {
        let (ab, ba) = (with_env(&["A", "B"]), with_env(&["B", "A"]));
        assert_eq!(shortcut_and_merge(&ab, &ab, Some(&ab)), (true, true));
        assert_eq!(shortcut_and_merge(&ba, &ab, Some(&ba)), (false, false));
        assert_eq!(shortcut_and_merge(&ba, &ab, None), (false, false));
        // Another manager's element in the list: the shortcut leaves it to the merge.
        assert_eq!(shortcut_and_merge(&ab, &with_env(&["A", "X", "B"]), Some(&ab)), (false, true));
        // `{containerPort: 80}` is the TCP port: a live UDP port 80 is another element.
        let port = |ports: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "ports": ports}]}}}})
        };
        let desired = port(json!([{"containerPort": 80}]));
        assert_eq!(
            shortcut_and_merge(&desired, &port(json!([{"containerPort": 80, "protocol": "TCP"}])), None),
            (true, true)
        );
        assert_eq!(
            shortcut_and_merge(&desired, &port(json!([{"containerPort": 80, "protocol": "UDP"}])), None),
            (false, false)
        );
    }

    #[test]
    fn sets_atomic_lists_directives_and_nulls_agree_with_the_merge() {
        let finalizers = |list: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": list}});
        let ab = finalizers(json!(["a", "b"]));
        assert_eq!(shortcut_and_merge(&ab, &ab, Some(&ab)), (true, true));
        // The merge keeps one of a duplicated element.
        let twice = finalizers(json!(["a", "a"]));
        assert_eq!(shortcut_and_merge(&twice, &twice, Some(&twice)), (false, false));
        // An atomic list whose elements the server completed stays as live has it, when it is
        // what weaver applied last; otherwise the desired list replaces it.
        let claims = |spec: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": spec}]}})
        };
        let desired = claims(json!({"resources": {"requests": {"storage": "1Gi"}}}));
        let live = claims(json!({"resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}));
        assert_eq!(shortcut_and_merge(&desired, &live, Some(&desired)), (true, true));
        let before = claims(json!({"resources": {"requests": {"storage": "2Gi"}}}));
        assert_eq!(shortcut_and_merge(&desired, &live, Some(&before)), (false, false));
        // A directive or a null means more than its value.
        let mut directive = desired_deployment();
        directive["spec"]["$retainKeys"] = json!(["replicas", "template"]);
        let mut live = live_deployment();
        live["spec"]["$retainKeys"] = directive["spec"]["$retainKeys"].clone();
        assert!(!shortcut_and_merge(&directive, &live, None).0);
        let mut null = desired_deployment();
        null["spec"]["paused"] = Value::Null;
        let mut live = live_deployment();
        live["spec"]["paused"] = Value::Null;
        assert!(!shortcut_and_merge(&null, &live, None).0);
    }

    /// A Deployment from generated parts: env elements by name with their values, replicas,
    /// and whether the server defaulted `imagePullPolicy`.
    fn generated_deployment(env: &[(u8, u8)], replicas: Option<u8>, defaulted: bool) -> Value {
        let env: Vec<Value> =
            env.iter().map(|(name, value)| json!({"name": format!("E{name}"), "value": value.to_string()})).collect();
        let mut container = json!({"name": "web", "image": "nginx:1", "env": env});
        if defaulted {
            container["imagePullPolicy"] = json!("IfNotPresent");
        }
        let mut object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [container]}}}});
        if let Some(replicas) = replicas {
            object["spec"]["replicas"] = json!(replicas);
        }
        object
    }

    /// Env lists of distinct names (a desired list with a name twice is refused before any
    /// merge), in any order, with one of two values each.
    fn generated_env() -> impl proptest::strategy::Strategy<Value = Vec<(u8, u8)>> {
        use proptest::prelude::*;
        proptest::collection::vec((0u8..4, 0u8..2), 0..4).prop_map(|mut env| {
            let mut seen = std::collections::HashSet::new();
            env.retain(|(name, _)| seen.insert(*name));
            env
        })
    }

    proptest::proptest! {
        #[test]
        fn the_shortcut_says_unchanged_only_where_the_merge_leaves_live_as_it_is(
            desired_env in generated_env(),
            live_env in generated_env(),
            last_env in generated_env(),
            replicas in proptest::option::of(1u8..3),
            live_replicas in proptest::option::of(1u8..3),
            defaulted in proptest::bool::ANY,
            record in 0u8..4,
            owned_env in generated_env(),
            owned_replicas in proptest::bool::ANY,
        ) {
            let desired = generated_deployment(&desired_env, replicas, false);
            let mut live = generated_deployment(&live_env, live_replicas, defaulted);
            let other = generated_deployment(&last_env, replicas, false);
            let last = match record {
                0 | 3 => None,
                1 => Some(&desired),
                _ => Some(&other),
            };
            if record == 3 {
                // No record: what weaver owns in managedFields says what the merge removes.
                let env: serde_json::Map<String, Value> = owned_env
                    .iter()
                    .map(|(name, _)| {
                        let key = format!("k:{{\"name\":\"E{name}\"}}");
                        (key, json!({".": {}, "f:name": {}, "f:value": {}}))
                    })
                    .collect();
                let mut spec = json!({"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {}, "f:name": {}, "f:image": {}, "f:env": env}}}}});
                if owned_replicas {
                    spec["f:replicas"] = json!({});
                }
                live = with_managed_fields(live, json!({"f:spec": spec}), json!({}));
            }
            // `shortcut_and_merge` asserts that a shortcut's "unchanged" is the merge's.
            let (shortcut, unchanged) = shortcut_and_merge(&desired, &live, last);
            proptest::prop_assert!(!shortcut || unchanged);
            // Equal objects, with the record saying so, always take it.
            if desired_env == live_env && replicas == live_replicas && record == 1 {
                proptest::prop_assert!(shortcut);
            }
        }
    }
}
