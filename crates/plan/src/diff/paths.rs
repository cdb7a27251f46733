//! The field paths that differ between two versions of an object, for `-o json` and drift:
//! `spec.replicas`, `spec.template.spec.containers[name=web].image`,
//! `metadata.labels["app.kubernetes.io/name"]`. Lists with merge keys are compared element by
//! element, and their order at the list's path; other lists change as a whole.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use weaver_patch::merge_keys::{self, ListStrategy, MergeKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub op: ChangeOp,
}

/// Every path where `after` differs from `before`, in document order.
pub fn changes(before: &Value, after: &Value, kind: Kind) -> Vec<Change> {
    let mut out = Vec::new();
    walk(before, after, kind, &mut Vec::new(), String::new(), &mut out);
    out
}

/// The object kind that decides list strategies.
#[derive(Clone, Copy)]
pub struct Kind<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
}

impl Kind<'_> {
    pub(super) fn list(&self, path: &[&str]) -> ListStrategy {
        merge_keys::list_strategy(self.api_version, self.kind, path)
    }
}

/// `prefix.name`, or `prefix["name"]` for a key that is not a plain word.
pub(crate) fn field_path(prefix: &str, name: &str) -> String {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, prefix.is_empty()) {
        (true, true) => name.to_string(),
        (true, false) => format!("{prefix}.{name}"),
        (false, _) => format!("{prefix}[{}]", Value::String(name.to_string())),
    }
}

fn scalar(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

/// `path[name=web]`, `path[containerPort=80,protocol=TCP]`: an element of a list merged by `keys`.
pub(crate) fn element_path(path: &str, keys: &[MergeKey], item: &Value) -> String {
    let values = merge_keys::element_key(keys, item).unwrap_or_default();
    let parts: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{}={}", k.field, scalar(v))).collect();
    format!("{path}[{}]", parts.join(","))
}

/// `path[value]`: an element of a list of scalars kept as a set (`metadata.finalizers[x]`).
pub(crate) fn set_element_path(path: &str, value: &Value) -> String {
    format!("{path}[{}]", scalar(value))
}

/// The first element of a list merged by key (or of a set) that lacks a key field or repeats
/// an earlier element, which server-side apply rejects, as (what is wrong, the list's keys).
/// The three-way diff could not line such a list up with the live one either.
pub fn key_problem(object: &Value, kind: Kind) -> Option<(String, String)> {
    key_problem_at(object, kind, &mut Vec::new(), &mut Vec::new())
}

/// One step from an object's root, for a path written only when there is a problem to name.
enum Step<'v> {
    Field(&'v str),
    Element(&'static [MergeKey], &'v Value),
}

fn path_of(steps: &[Step]) -> String {
    steps.iter().fold(String::new(), |path, step| match step {
        Step::Field(name) => field_path(&path, name),
        Step::Element(keys, item) => element_path(&path, keys, item),
    })
}

/// `schema` holds the field names down to `value` (what list strategies are looked up by),
/// `steps` the way there.
fn key_problem_at<'v>(
    value: &'v Value,
    kind: Kind,
    schema: &mut Vec<&'v str>,
    steps: &mut Vec<Step<'v>>,
) -> Option<(String, String)> {
    match value {
        Value::Object(map) => map.iter().find_map(|(name, child)| {
            schema.push(name);
            steps.push(Step::Field(name));
            let problem = key_problem_at(child, kind, schema, steps);
            schema.pop();
            steps.pop();
            problem
        }),
        Value::Array(items) => match merge_keys::list_strategy(kind.api_version, kind.kind, schema) {
            ListStrategy::Merge { keys } => {
                let described = || format!("`{}`", merge_keys::describe_keys(keys));
                let mut seen = HashSet::new();
                for (index, item) in items.iter().enumerate() {
                    match merge_keys::element_key(keys, item) {
                        Err(field) => {
                            let path = path_of(steps);
                            return Some((format!("element {} of {path} has no `{field}`", index + 1), described()));
                        }
                        Ok(id) => {
                            if !seen.insert(id) {
                                let twice = element_path(&path_of(steps), keys, item);
                                return Some((format!("{twice} appears twice"), described()));
                            }
                        }
                    }
                    steps.push(Step::Element(keys, item));
                    let problem = key_problem_at(item, kind, schema, steps);
                    steps.pop();
                    if problem.is_some() {
                        return problem;
                    }
                }
                None
            }
            ListStrategy::MergePrimitives => {
                let mut seen = HashSet::new();
                let twice = items.iter().find(|item| !seen.insert(*item))?;
                Some((format!("{} appears twice", set_element_path(&path_of(steps), twice)), "value".to_string()))
            }
            ListStrategy::Atomic => None,
        },
        _ => None,
    }
}

fn walk<'v>(
    before: &'v Value,
    after: &'v Value,
    kind: Kind,
    schema: &mut Vec<&'v str>,
    path: String,
    out: &mut Vec<Change>,
) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (name, old) in b {
                let new = a.get(name);
                if new == Some(old) {
                    continue; // no path to write
                }
                let here = field_path(&path, name);
                schema.push(name);
                match new {
                    Some(new) => walk(old, new, kind, schema, here, out),
                    None => out.push(Change { path: here, op: ChangeOp::Remove }),
                }
                schema.pop();
            }
            for name in a.keys().filter(|name| !b.contains_key(*name)) {
                out.push(Change { path: field_path(&path, name), op: ChangeOp::Add });
            }
        }
        (Value::Array(b), Value::Array(a)) => match merge_keys::list_strategy(kind.api_version, kind.kind, schema) {
            ListStrategy::Merge { keys } => {
                let ids = |items: &[Value]| -> Vec<Option<Vec<Value>>> {
                    items.iter().map(|item| merge_keys::element_key(keys, item).ok()).collect()
                };
                let (ids_b, ids_a) = (ids(b), ids(a));
                if merge_keys::reordered(&ids_b, &ids_a) {
                    out.push(Change { path: path.clone(), op: ChangeOp::Replace });
                }
                // The first element of each identity, as a search from the front finds it.
                let mut a_by_id: HashMap<&Vec<Value>, &Value> = HashMap::new();
                for (id, new) in ids_a.iter().zip(a) {
                    if let Some(id) = id {
                        a_by_id.entry(id).or_insert(new);
                    }
                }
                let b_ids: HashSet<&Vec<Value>> = ids_b.iter().flatten().collect();
                let label = |item: &Value| element_path(&path, keys, item);
                for (old, id) in b.iter().zip(&ids_b) {
                    match id.as_ref().and_then(|id| a_by_id.get(id)) {
                        Some(new) => walk(old, new, kind, schema, label(old), out),
                        None => out.push(Change { path: label(old), op: ChangeOp::Remove }),
                    }
                }
                for (new, _) in a.iter().zip(&ids_a).filter(|(_, id)| !id.as_ref().is_some_and(|id| b_ids.contains(id)))
                {
                    out.push(Change { path: label(new), op: ChangeOp::Add });
                }
            }
            ListStrategy::MergePrimitives => {
                if merge_keys::reordered(b, a) {
                    out.push(Change { path: path.clone(), op: ChangeOp::Replace });
                }
                let (in_a, in_b): (HashSet<&Value>, HashSet<&Value>) = (a.iter().collect(), b.iter().collect());
                for old in b.iter().filter(|v| !in_a.contains(v)) {
                    out.push(Change { path: set_element_path(&path, old), op: ChangeOp::Remove });
                }
                for new in a.iter().filter(|v| !in_b.contains(v)) {
                    out.push(Change { path: set_element_path(&path, new), op: ChangeOp::Add });
                }
            }
            ListStrategy::Atomic => out.push(Change { path, op: ChangeOp::Replace }),
        },
        _ => out.push(Change { path, op: ChangeOp::Replace }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: Kind = Kind { api_version: "apps/v1", kind: "Deployment" };

    fn paths(before: Value, after: Value) -> Vec<(String, ChangeOp)> {
        changes(&before, &after, DEPLOYMENT).into_iter().map(|c| (c.path, c.op)).collect()
    }

    #[test]
    fn names_keyed_elements_and_quotes_odd_keys() {
        let before = json!({"metadata": {"labels": {"app.kubernetes.io/name": "a"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a", "args": ["x"]}, {"name": "old"}]}}}});
        let after = json!({"metadata": {"labels": {"app.kubernetes.io/name": "b"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "b", "args": ["y"]}, {"name": "new"}]}}}});
        assert_eq!(
            paths(before, after),
            vec![
                (r#"metadata.labels["app.kubernetes.io/name"]"#.to_string(), ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].image".to_string(), ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].args".to_string(), ChangeOp::Replace),
                ("spec.template.spec.containers[name=old]".to_string(), ChangeOp::Remove),
                ("spec.template.spec.containers[name=new]".to_string(), ChangeOp::Add),
                ("spec.replicas".to_string(), ChangeOp::Add),
            ]
        );
    }

    #[test]
    fn a_reordered_keyed_list_or_set_is_replaced_at_its_path() {
        let env = |names: &[&str]| -> Value {
            let env: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": "v"})).collect();
            json!({"metadata": {"finalizers": names},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "env": env}]}}}})
        };
        assert_eq!(
            paths(env(&["A", "B", "C"]), env(&["C", "A", "B"])),
            vec![
                ("metadata.finalizers".to_string(), ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].env".to_string(), ChangeOp::Replace),
            ]
        );
        assert_eq!(
            paths(env(&["A", "B"]), env(&["A", "D", "B"])),
            vec![
                ("metadata.finalizers[D]".to_string(), ChangeOp::Add),
                ("spec.template.spec.containers[name=web].env[name=D]".to_string(), ChangeOp::Add),
            ]
        );
    }

    #[test]
    fn a_keyed_element_without_its_key_or_repeated_is_a_problem() {
        let env = |env: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": env}]}}}});
        let problem = |object: Value| key_problem(&object, DEPLOYMENT).map(|(what, keys)| format!("{what}; {keys}"));
        assert_eq!(problem(env(json!([{"name": "A"}, {"name": "B"}]))), None);
        assert_eq!(
            problem(env(json!([{"name": "A"}, {"value": "1"}]))).as_deref(),
            Some("element 2 of spec.template.spec.containers[name=web].env has no `name`; `name`")
        );
        assert_eq!(
            problem(env(json!([{"name": "A"}, {"name": "A"}]))).as_deref(),
            Some("spec.template.spec.containers[name=web].env[name=A] appears twice; `name`")
        );
        assert_eq!(
            problem(json!({"metadata": {"finalizers": ["a", "b", "a"]}})).as_deref(),
            Some("metadata.finalizers[a] appears twice; value")
        );
    }

    #[test]
    fn ports_are_keyed_by_number_and_protocol() {
        let port = |n: u16, proto: &str| json!({"containerPort": n, "protocol": proto});
        let before =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [port(53, "UDP")]}]}}}});
        let after = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [port(53, "UDP"), port(53, "TCP")]}]}}}});
        assert_eq!(
            paths(before, after),
            vec![(
                "spec.template.spec.containers[name=c].ports[containerPort=53,protocol=TCP]".to_string(),
                ChangeOp::Add
            )]
        );
    }
}
