//! Field sets: which fields weaver set last time, so that the three-way merge can remove the
//! ones the new desired state no longer sets. They come from the release record's last-applied
//! object or, before any record exists, from the `weaver` manager's `managedFields` entry, which
//! is exactly what server-side apply itself uses to decide what to remove.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::paths::{Kind, field_path, set_element_path};
use weaver_patch::merge_keys::{self, ListStrategy, MergeKey};

/// One step into an object, as `managedFields` (FieldsV1) writes them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// `f:name`, a map field.
    Field(String),
    /// `k:{"name":"web"}`, a list element identified by its merge key fields.
    Key(Map<String, Value>),
    /// `v:"x"`, an element of a list of scalars kept as a set.
    Value(Value),
}

/// A tree of owned fields; a node without children is owned whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    children: Vec<(Step, FieldSet)>,
}

impl FieldSet {
    /// Parses a FieldsV1 tree (`{"f:spec": {"f:replicas": {}}}`); unknown entries (`i:` indices,
    /// `.`) carry nothing the merge needs.
    pub fn from_fields_v1(fields: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        let Some(map) = fields.as_object() else { return set };
        for (entry, child) in map {
            let step = if let Some(name) = entry.strip_prefix("f:") {
                Step::Field(name.to_string())
            } else if let Some(key) = entry.strip_prefix("k:") {
                match serde_json::from_str::<Map<String, Value>>(key) {
                    Ok(key) => Step::Key(key),
                    Err(_) => continue,
                }
            } else if let Some(value) = entry.strip_prefix("v:") {
                match serde_json::from_str(value) {
                    Ok(value) => Step::Value(value),
                    Err(_) => continue,
                }
            } else {
                continue;
            };
            set.children.push((step, FieldSet::from_fields_v1(child)));
        }
        set
    }

    /// The fields `weaver` owns by apply, from an object's `metadata.managedFields`.
    pub fn applied_by(object: &Value, manager: &str) -> Option<FieldSet> {
        let entries = managed_fields(object);
        let entry = entries.iter().find(|e| {
            e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").is_none_or(|s| s.as_str().unwrap_or_default().is_empty())
        })?;
        Some(FieldSet::from_fields_v1(entry.get("fieldsV1")?))
    }

    /// The fields each of `managers` owns in an object, by any operation, of the object or a
    /// subresource (an autoscaler writes `spec.replicas` through `scale`).
    pub fn managed_by(object: &Value, managers: &[String]) -> Vec<FieldSet> {
        managed_fields(object)
            .iter()
            .filter(|e| e.get("manager").and_then(Value::as_str).is_some_and(|m| managers.iter().any(|w| w == m)))
            .filter_map(|e| Some(FieldSet::from_fields_v1(e.get("fieldsV1")?)))
            .collect()
    }

    /// Every owned field that nothing below it is listed for, as the steps down to it.
    pub(super) fn leaves(&self) -> Vec<Vec<&Step>> {
        let mut out = Vec::new();
        self.collect_leaves(&mut Vec::new(), &mut out);
        out
    }

    fn collect_leaves<'s>(&'s self, here: &mut Vec<&'s Step>, out: &mut Vec<Vec<&'s Step>>) {
        for (step, child) in &self.children {
            here.push(step);
            match child.is_leaf() {
                true => out.push(here.clone()),
                false => child.collect_leaves(here, out),
            }
            here.pop();
        }
    }

    /// Each owned leaf as drift and `-o json` write paths: `spec.replicas`,
    /// `spec.template.spec.containers[name=web].image`, `metadata.finalizers[x]`.
    pub fn field_paths(&self) -> Vec<String> {
        let scalar = |value: &Value| value.as_str().map_or_else(|| value.to_string(), str::to_string);
        self.leaves()
            .into_iter()
            .map(|steps| {
                steps.into_iter().fold(String::new(), |path, step| match step {
                    Step::Field(name) => field_path(&path, name),
                    Step::Key(key) => {
                        let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect();
                        format!("{path}[{}]", parts.join(","))
                    }
                    Step::Value(value) => set_element_path(&path, value),
                })
            })
            .collect()
    }

    /// Whether nothing below this point is listed: a field owned whole (a scalar, or an
    /// atomic map or list).
    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }

    /// The owned part of map field `name`, when it is owned.
    pub fn field(&self, name: &str) -> Option<&FieldSet> {
        self.children.iter().find_map(|(step, child)| matches!(step, Step::Field(f) if f == name).then_some(child))
    }

    /// The owned part of `item`, an element of a list merged by `keys`, when it is owned.
    pub fn element(&self, keys: &[MergeKey], item: &Value) -> Option<&FieldSet> {
        self.children.iter().find_map(|(step, child)| match step {
            Step::Key(key) if matches_key(item, key, keys) => Some(child),
            _ => None,
        })
    }

    /// Whether `value`, an element of a list of scalars kept as a set, is owned.
    pub fn has_value(&self, value: &Value) -> bool {
        self.children.iter().any(|(step, _)| matches!(step, Step::Value(v) if v == value))
    }

    /// Every field an object sets, lists split by their merge keys as the API server would.
    pub fn of_object(object: &Value, kind: Kind) -> FieldSet {
        FieldSet::walk(object, kind, &mut Vec::new())
    }

    fn walk<'v>(value: &'v Value, kind: Kind, path: &mut Vec<&'v str>) -> FieldSet {
        let mut set = FieldSet::default();
        let Value::Object(map) = value else { return set };
        for (name, child) in map {
            path.push(name);
            let child_set = match child {
                Value::Object(_) => FieldSet::walk(child, kind, path),
                Value::Array(items) => match kind.list(path) {
                    ListStrategy::Merge { keys } => FieldSet {
                        children: items
                            .iter()
                            .filter_map(|item| {
                                let key = key_map(keys, item)?;
                                Some((Step::Key(key), FieldSet::walk(item, kind, path)))
                            })
                            .collect(),
                    },
                    ListStrategy::MergePrimitives => FieldSet {
                        children: items.iter().map(|item| (Step::Value(item.clone()), FieldSet::default())).collect(),
                    },
                    ListStrategy::Atomic => FieldSet::default(),
                },
                _ => FieldSet::default(),
            };
            path.pop();
            set.children.push((Step::Field(name.clone()), child_set));
        }
        set
    }

    /// Removes from `merged` every owned field that `desired` no longer has.
    pub fn remove_unwanted(&self, merged: &mut Value, desired: &Value, kind: Kind) {
        self.prune(merged, Some(desired), kind, &mut Vec::new());
    }

    /// Whether `desired` still sets every owned field, so that [`FieldSet::remove_unwanted`]
    /// removes nothing.
    pub fn all_wanted(&self, desired: &Value, kind: Kind) -> bool {
        self.wanted_within(desired, kind, &mut Vec::new())
    }

    fn wanted_within<'s>(&'s self, desired: &Value, kind: Kind, path: &mut Vec<&'s str>) -> bool {
        self.children.iter().all(|(step, child)| {
            let Some(wanted) = wanted(step, Some(desired), kind, path) else { return false };
            match step {
                Step::Field(name) => {
                    path.push(name);
                    let all = child.wanted_within(wanted, kind, path);
                    path.pop();
                    all
                }
                Step::Key(_) => child.wanted_within(wanted, kind, path),
                Step::Value(_) => true,
            }
        })
    }

    fn prune<'s>(&'s self, merged: &mut Value, desired: Option<&Value>, kind: Kind, path: &mut Vec<&'s str>) {
        for (step, child) in &self.children {
            match step {
                Step::Field(name) => {
                    let Value::Object(map) = merged else { continue };
                    match wanted(step, desired, kind, path) {
                        None => {
                            map.shift_remove(name);
                        }
                        Some(wanted) if !child.children.is_empty() => {
                            if let Some(slot) = map.get_mut(name) {
                                path.push(name);
                                child.prune(slot, Some(wanted), kind, path);
                                path.pop();
                            }
                        }
                        Some(_) => {}
                    }
                }
                Step::Key(key) => {
                    let Value::Array(items) = merged else { continue };
                    let keys = list_keys(kind, path);
                    match wanted(step, desired, kind, path) {
                        None => items.retain(|item| !matches_key(item, key, keys)),
                        Some(wanted) => {
                            if let Some(item) = items.iter_mut().find(|i| matches_key(i, key, keys)) {
                                child.prune(item, Some(wanted), kind, path);
                            }
                        }
                    }
                }
                Step::Value(value) => {
                    let Value::Array(items) = merged else { continue };
                    if wanted(step, desired, kind, path).is_none() {
                        items.retain(|item| item != value);
                    }
                }
            }
        }
    }
}

/// What `desired` (at `path`) has of the owned `step`: the map field, the list element with
/// that key, or the set's value; None when the merge removes what `step` names.
fn wanted<'d>(step: &Step, desired: Option<&'d Value>, kind: Kind, path: &[&str]) -> Option<&'d Value> {
    match step {
        Step::Field(name) => desired?.get(name).filter(|v| !v.is_null()),
        Step::Key(key) => {
            let keys = list_keys(kind, path);
            desired?.as_array()?.iter().find(|item| matches_key(item, key, keys))
        }
        Step::Value(value) => desired?.as_array()?.iter().find(|item| *item == value),
    }
}

/// The entries of an object's `metadata.managedFields`: the array, or the array's JSON text
/// where a LIST kept it so (`cluster::ManagedFields::Text`), parsed here.
fn managed_fields(object: &Value) -> Cow<'_, [Value]> {
    match object.pointer("/metadata/managedFields") {
        Some(Value::Array(entries)) => Cow::Borrowed(entries),
        Some(Value::String(text)) => Cow::Owned(serde_json::from_str(text).unwrap_or_default()),
        _ => Cow::Borrowed(&[]),
    }
}

/// The merge keys of the list at `path`; none for a list not merged by key.
pub(super) fn list_keys(kind: Kind, path: &[&str]) -> &'static [MergeKey] {
    match kind.list(path) {
        ListStrategy::Merge { keys } => keys,
        _ => &[],
    }
}

/// The merge key of a list element as a FieldsV1 `k:` map, defaults filled in.
fn key_map(keys: &[MergeKey], item: &Value) -> Option<Map<String, Value>> {
    let values = merge_keys::element_key(keys, item).ok()?;
    Some(keys.iter().zip(values).map(|(k, v)| (k.field.to_string(), v)).collect())
}

/// Whether a list element is the one a `k:` step names (key fields absent from the element
/// take their API default, e.g. port `protocol: TCP`).
fn matches_key(item: &Value, key: &Map<String, Value>, keys: &[MergeKey]) -> bool {
    key.iter().all(|(field, expected)| {
        let default = keys.iter().find(|k| k.field == field).and_then(|k| k.default).map(Value::from);
        item.get(field).filter(|v| !v.is_null()).or(default.as_ref()) == Some(expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: Kind = Kind { api_version: "apps/v1", kind: "Deployment" };

    #[test]
    fn managed_fields_kept_as_their_json_text_give_the_same_owned_fields() {
        let fields = json!([
            {"manager": "weaver", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:b": {}}}}
        ]);
        let array = json!({"metadata": {"managedFields": fields}});
        let text = json!({"metadata": {"managedFields": fields.to_string()}});
        let weaver = |object: &Value| FieldSet::applied_by(object, "weaver").map(|set| format!("{set:?}"));
        assert!(weaver(&text).is_some_and(|set| set.contains("\"a\"") && !set.contains("\"b\"")));
        assert_eq!(weaver(&text), weaver(&array));
        let kubectl = |object: &Value| format!("{:?}", FieldSet::managed_by(object, &["kubectl".to_string()]));
        assert!(kubectl(&text).contains("\"b\""));
        assert_eq!(kubectl(&text), kubectl(&array));
        assert_eq!(weaver(&json!({"metadata": {}})), None);
    }

    #[test]
    fn paths_name_each_owned_leaf_as_drift_writes_them() {
        let set = FieldSet::from_fields_v1(&json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}}));
        assert_eq!(
            set.field_paths(),
            ["metadata.finalizers[x]", "spec.replicas", "spec.template.spec.containers[name=web].image"]
        );
    }

    #[test]
    fn managed_fields_and_last_applied_give_the_same_set() {
        let last_applied = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}
        ]}}}});
        let fields_v1 = json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
            }}
        }}}}});
        assert_eq!(
            FieldSet::of_object(&last_applied, DEPLOYMENT).canonical(),
            FieldSet::from_fields_v1(&fields_v1).canonical()
        );
    }

    #[test]
    fn looks_up_owned_fields_elements_and_set_values() {
        let set = FieldSet::from_fields_v1(&json!({"f:metadata": {"f:finalizers": {"v:\"f1\"": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:stdin": {}}}}}}}));
        let spec = set.field("spec").and_then(|s| s.field("template")).and_then(|t| t.field("spec")).unwrap();
        let keys = match DEPLOYMENT.list(&["spec", "template", "spec", "containers"]) {
            ListStrategy::Merge { keys } => keys,
            other => panic!("{other:?}"),
        };
        let web = spec.field("containers").unwrap().element(keys, &json!({"name": "web", "image": "x"})).unwrap();
        assert!(web.field("stdin").is_some());
        assert!(web.field("image").is_none());
        assert!(spec.field("containers").unwrap().element(keys, &json!({"name": "other"})).is_none());
        let finalizers = set.field("metadata").unwrap().field("finalizers").unwrap();
        assert!(finalizers.has_value(&json!("f1")));
        assert!(!finalizers.has_value(&json!("f2")));
    }

    #[test]
    fn removes_owned_fields_and_elements_no_longer_desired_and_keeps_the_rest() {
        let owned = FieldSet::of_object(
            &json!({"metadata": {"labels": {"a": "1", "gone": "x"}, "finalizers": ["f1", "f2"]}, "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "args": ["-v"]},
                {"name": "sidecar", "image": "envoy"}
            ]}}}}),
            DEPLOYMENT,
        );
        let mut merged = json!({"metadata": {"labels": {"a": "1", "gone": "x", "theirs": "y"}, "finalizers": ["f1", "f2", "f3"]},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "args": ["-v"], "terminationMessagePath": "/dev/termination-log"},
            {"name": "sidecar", "image": "envoy"}
        ]}}}});
        let desired = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["f1"]},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        owned.remove_unwanted(&mut merged, &desired, DEPLOYMENT);
        assert_eq!(
            merged,
            json!({"metadata": {"labels": {"a": "1", "theirs": "y"}, "finalizers": ["f1", "f3"]},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx", "terminationMessagePath": "/dev/termination-log"}
            ]}}}})
        );
    }

    impl FieldSet {
        /// Sorted, so sets built in different orders compare equal.
        fn canonical(&self) -> Vec<String> {
            let mut out = Vec::new();
            self.paths(String::new(), &mut out);
            out.sort();
            out
        }

        fn paths(&self, prefix: String, out: &mut Vec<String>) {
            for (step, child) in &self.children {
                let here = format!(
                    "{prefix}/{}",
                    match step {
                        Step::Field(f) => f.clone(),
                        Step::Key(k) => serde_json::to_string(k).unwrap(),
                        Step::Value(v) => v.to_string(),
                    }
                );
                out.push(here.clone());
                child.paths(here, out);
            }
        }
    }
}
