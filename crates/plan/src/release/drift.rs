//! Drift (the book's concepts/drift.md): what changed in the cluster out of band since each release's last
//! deployed revision. The release record holds every object exactly as weaver applied it; each
//! recorded field is compared with the live object:
//! - a recorded field whose live value differs, or that is gone, is drift;
//! - a recorded object that is not live is missing;
//! - fields weaver never set (server defaults, other managers' additions, status) are not
//!   looked at, and lists merged by key (containers by name, ports by containerPort+protocol…)
//!   are compared element by element, for the recorded elements only, and by order: recorded
//!   elements that come in another order live are drift at the list's path (as in `diff`, since
//!   an apply restores the order), elements others added in between are not.
//!
//! A recorded field absent from the live object is drift unless the `weaver` field manager
//! still owns it: the API server stores some applied values as absent (Go's `omitempty` drops
//! `readOnly: false`, `stdin: false`, empty maps), and keeps them in the applier's
//! `managedFields`, whereas a field someone removed leaves every manager's field set. Quantities
//! are compared by value (`0.5` and `500m`, `1024Mi` and `1Gi`), as the server canonicalizes
//! them.
//!
//! No templates are rendered and no age key is needed: the record is the reference, so this runs
//! with read-only credentials. Secret values never leave this module: a drifted path under a
//! Secret's `data` carries no value, only `redacted: true`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::ignore::{respect, rules_for};
use crate::diff::{
    ChangeOp, FieldSet, as_stored, element_path, field_path, is_secret, normalize, set_element_path, sort_keys,
};
use crate::release::record::Record;
use weaver_core::manifest::{MANAGER, ObjectKey};
use weaver_patch::merge_keys::{self, ListStrategy};
use weaver_project::Release;

/// One recorded field whose live value differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDrift {
    /// `spec.replicas`, `spec.template.spec.containers[name=web].image`, `data.API_KEY`.
    pub path: String,
    /// `replace`: live has another value; `remove`: live lacks the field.
    pub op: ChangeOp,
    /// The value weaver applied; None for a Secret value.
    pub recorded: Option<Value>,
    /// The live value; None when removed, and for a Secret value.
    pub live: Option<Value>,
    /// Whether the values are withheld because they are a Secret's.
    pub redacted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    InSync,
    Drifted,
    Missing,
}

/// One object of the compared revision.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDrift {
    pub api_version: String,
    pub key: ObjectKey,
    pub state: State,
    /// For drifted objects: the fields that differ.
    pub changes: Vec<FieldDrift>,
    /// For missing objects, why, when weaver knows more than "not found".
    pub reason: Option<String>,
    /// How many drifted fields `ignoreDifferences` kept out of `changes`.
    pub ignored: usize,
    /// What `drift --correct` did about it; None without `--correct`, and for an object in sync.
    pub correction: Option<Correction>,
}

/// What a drift correction did about one drifted or missing object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub result: CorrectionResult,
    /// Why it failed or was not applied.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorrectionResult {
    /// Applied again (a dry run: the server accepted it).
    Corrected,
    /// Nothing to send once the lock was held: put back meanwhile, or only fields an apply
    /// leaves alone differ.
    Unchanged,
    Failed,
    NotApplied,
}

/// What a drift correction did about one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseCorrection {
    /// The revision that records the correction (none on a dry run, or when nothing was sent).
    pub revision: Option<u32>,
    /// Why the release's correction failed or did not run.
    pub error: Option<String>,
}

/// The revision a release is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: u32,
    pub time: String,
    pub commit: Option<String>,
    pub dirty: Option<bool>,
}

impl Revision {
    pub fn of(record: &Record) -> Revision {
        Revision {
            number: record.revision,
            time: record.time.clone(),
            commit: record.commit.clone(),
            dirty: record.dirty,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseState {
    InSync,
    Drifted,
    /// No deployed revision of this environment in the release namespace: nothing to compare.
    NoRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseDrift {
    pub name: String,
    pub namespace: String,
    /// The environment's `installed`: a release that is not installed and has no record is as
    /// it should be.
    pub installed: bool,
    /// The last deployed revision; None when there is none.
    pub revision: Option<Revision>,
    /// The revision's objects in apply order.
    pub objects: Vec<ObjectDrift>,
    /// What `drift --correct` did; None without it, and for a release that had not drifted.
    pub correction: Option<ReleaseCorrection>,
}

impl ReleaseDrift {
    pub fn state(&self) -> ReleaseState {
        if self.revision.is_none() {
            ReleaseState::NoRecord
        } else if self.objects.iter().any(|o| o.state != State::InSync) {
            ReleaseState::Drifted
        } else {
            ReleaseState::InSync
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub drifted: usize,
    pub missing: usize,
    pub in_sync: usize,
    pub releases_without_record: usize,
}

/// Drift of the selected releases of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub environment: String,
    /// The kubeconfig context and server that were checked.
    pub context: String,
    pub server: String,
    pub releases: Vec<ReleaseDrift>,
    /// `drift --correct` ran (or, with `--dry-run`, asked the server): the releases and objects
    /// it corrected say so.
    pub correction: Option<CorrectionRun>,
}

/// How a drift correction ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionRun {
    pub dry_run: bool,
    /// Some object or release could not be corrected.
    pub failed: bool,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for release in &self.releases {
            if release.revision.is_none() {
                summary.releases_without_record += 1;
            }
            for object in &release.objects {
                match object.state {
                    State::InSync => summary.in_sync += 1,
                    State::Drifted => summary.drifted += 1,
                    State::Missing => summary.missing += 1,
                }
            }
        }
        summary
    }

    /// Whether any object drifted or is missing (exit code 2).
    pub fn has_drift(&self) -> bool {
        self.releases.iter().any(|r| r.state() == ReleaseState::Drifted)
    }
}

/// Compares one release's record with `live` objects. `place` says where the cluster keeps a
/// recorded object: `Some(namespace)` (None for cluster-scoped kinds), or None when the
/// cluster does not serve its kind.
pub fn compare_release(
    release: &Release,
    record: Option<&Record>,
    live: &HashMap<ObjectKey, &Value>,
    place: impl Fn(&Value) -> Option<Option<String>>,
) -> ReleaseDrift {
    let mut drift = ReleaseDrift {
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        installed: release.installed,
        revision: None,
        objects: Vec::new(),
        correction: None,
    };
    let Some(record) = record else { return drift };
    drift.revision = Some(Revision::of(record));
    for recorded in recorded_objects(record, live, place) {
        let RecordedObject { manifest, sensitive, api_version, key, live } = recorded;
        let object = match live {
            Found::Unserved => ObjectDrift {
                reason: Some(unserved(&api_version, &key.kind)),
                api_version,
                key,
                state: State::Missing,
                changes: Vec::new(),
                ignored: 0,
                correction: None,
            },
            Found::Missing => ObjectDrift {
                api_version,
                key,
                state: State::Missing,
                changes: Vec::new(),
                reason: None,
                ignored: 0,
                correction: None,
            },
            Found::Live(live) => {
                let rules = rules_for(&release.ignore_differences, key.borrowed());
                // The record with live values where the rules ignore fields: what an
                // apply of it would send, as for a desired object.
                let (mut changes, ignored) = match respect(&rules, manifest, live, Some(manifest)) {
                    None => (object_drift(manifest, live), 0),
                    Some(respected) => {
                        let changes = object_drift(&respected, live);
                        let all = object_drift(manifest, live);
                        let ignored = all.iter().filter(|c| !changes.iter().any(|k| k.path == c.path)).count();
                        (changes, ignored)
                    }
                };
                if sensitive {
                    changes.iter_mut().for_each(withhold_value);
                }
                let state = if changes.is_empty() { State::InSync } else { State::Drifted };
                ObjectDrift { api_version, key, state, changes, reason: None, ignored, correction: None }
            }
        };
        drift.objects.push(object);
    }
    drift
}

/// An applied object of a release record, and where the cluster has it.
pub struct RecordedObject<'a> {
    pub manifest: &'a Value,
    /// A Secret's, whose values are withheld.
    pub sensitive: bool,
    pub api_version: String,
    /// Its key, with the namespace the cluster keeps it in.
    pub key: ObjectKey,
    pub live: Found<'a>,
}

pub enum Found<'a> {
    /// The cluster does not serve its kind.
    Unserved,
    Missing,
    Live(&'a Value),
}

/// The applied objects of `record`, each with its object in `live`. `place` says where the
/// cluster keeps a recorded object: `Some(namespace)` (None for cluster-scoped kinds), or None
/// when the cluster does not serve its kind. Drift and status read records the same way.
pub fn recorded_objects<'a>(
    record: &'a Record,
    live: &'a HashMap<ObjectKey, &'a Value>,
    place: impl Fn(&Value) -> Option<Option<String>> + 'a,
) -> impl Iterator<Item = RecordedObject<'a>> {
    record.applied_manifests().map(move |(manifest, sensitive)| {
        let mut key = ObjectKey::of(manifest);
        let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
        let live = match place(manifest) {
            None => Found::Unserved,
            Some(namespace) => {
                key.namespace = namespace;
                live.get(&key).map_or(Found::Missing, |object| Found::Live(object))
            }
        };
        RecordedObject { manifest, sensitive, api_version, key, live }
    })
}

/// Why a recorded object cannot be live.
pub fn unserved(api_version: &str, kind: &str) -> String {
    format!("the cluster does not serve {api_version} {kind}")
}

/// Keeps the path of a change but none of its values.
fn withhold_value(change: &mut FieldDrift) {
    change.recorded = None;
    change.live = None;
    change.redacted = true;
}

/// The recorded fields of `recorded` (an object as weaver applied it) whose value in `live`
/// differs, in key order. Values under a Secret's `data` are withheld.
pub fn object_drift(recorded: &Value, live: &Value) -> Vec<FieldDrift> {
    let recorded = normalize(as_stored(recorded.clone()));
    let owned = FieldSet::applied_by(live, MANAGER);
    // The walk reads only the recorded fields, which normalizing left out of the recorded side
    // as it would have of the live one (status, the server's metadata): the live object is read
    // as it is, not copied, and only the values reported are put in key order.
    let walker = Walker {
        api_version: recorded.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
        kind: recorded.get("kind").and_then(Value::as_str).unwrap_or_default(),
    };
    let owned = match &owned {
        Some(set) => Owned::Set(set),
        None => Owned::Unknown,
    };
    let mut out = Vec::new();
    walker.walk(&recorded, live, owned, &mut Vec::new(), "", &mut out);
    for change in &mut out {
        if let Some(live) = &mut change.live {
            sort_keys(live);
        }
    }
    if is_secret(&recorded) {
        out.iter_mut().filter(|c| is_secret_value(&c.path)).for_each(withhold_value);
    }
    out
}

/// A path at or under a Secret's `data` (`stringData` is folded into it before comparing).
fn is_secret_value(path: &str) -> bool {
    ["data", "stringData"]
        .iter()
        .any(|field| path.strip_prefix(field).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '['])))
}

/// What the `weaver` field manager owns at a point of the object.
#[derive(Clone, Copy)]
enum Owned<'s> {
    /// The live object has no `weaver` apply entry in managedFields (reset, or written by an
    /// older weaver): fall back to Go's `omitempty` rule.
    Unknown,
    /// Owned, with this subtree.
    Set(&'s FieldSet),
    /// Not owned (any more).
    No,
}

impl<'s> Owned<'s> {
    fn field(self, name: &str) -> Owned<'s> {
        match self {
            // Owned whole (an atomic struct): what is inside is not listed.
            Owned::Set(set) if set.is_leaf() => Owned::Unknown,
            Owned::Set(set) => set.field(name).map_or(Owned::No, Owned::Set),
            other => other,
        }
    }

    fn element(self, keys: &[merge_keys::MergeKey], item: &Value) -> Owned<'s> {
        match self {
            Owned::Set(set) if set.is_leaf() => Owned::Unknown,
            Owned::Set(set) => set.element(keys, item).map_or(Owned::No, Owned::Set),
            other => other,
        }
    }
}

struct Walker<'k> {
    api_version: &'k str,
    kind: &'k str,
}

/// Maps whose keys are data, not struct fields: an empty value there is a value.
const MAP_FIELDS: &[&str] = &["data", "binaryData", "labels", "annotations", "matchLabels", "nodeSelector", "selector"];

/// A built-in kind's resource lists, whose quantities the API server keeps to a milli.
const QUANTITY_MAPS: &[&str] = &[
    "requests",
    "limits",
    "capacity",
    "hard",
    "allocatable",
    "overhead",
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

impl Walker<'_> {
    fn walk<'v>(
        &self,
        recorded: &'v Value,
        live: &'v Value,
        owned: Owned,
        schema: &mut Vec<&'v str>,
        path: &str,
        out: &mut Vec<FieldDrift>,
    ) {
        match (recorded, live) {
            (Value::Object(recorded), Value::Object(live)) => {
                let in_map = schema.last().is_some_and(|parent| MAP_FIELDS.contains(parent));
                for (name, value) in recorded {
                    let here = field_path(path, name);
                    let owned = owned.field(name);
                    schema.push(name);
                    match live.get(name) {
                        Some(live) => self.walk(value, live, owned, schema, &here, out),
                        None if stored_as_absent(value, owned, in_map) => {}
                        None => out.push(removed(here, value)),
                    }
                    schema.pop();
                }
            }
            (Value::Array(items), Value::Array(live_items)) => {
                match merge_keys::list_strategy(self.api_version, self.kind, schema) {
                    ListStrategy::Merge { keys } if items.iter().all(|i| merge_keys::element_key(keys, i).is_ok()) => {
                        let id = |item: &Value| merge_keys::element_key(keys, item).ok();
                        let ids = |items: &[Value]| items.iter().map(id).collect::<Vec<_>>();
                        if merge_keys::reordered(&ids(items), &ids(live_items)) {
                            // The keys only: the order is what drifted, and values are shown
                            // where they differ.
                            let keys_of = |items: &[Value]| -> Value {
                                items.iter().map(|item| element_keys(keys, item)).collect()
                            };
                            out.push(replaced(path, &keys_of(items), &keys_of(live_items)));
                        }
                        for item in items {
                            let here = element_path(path, keys, item);
                            match live_items.iter().find(|l| id(l) == id(item)) {
                                Some(live) => self.walk(item, live, owned.element(keys, item), schema, &here, out),
                                None => out.push(removed(here, item)),
                            }
                        }
                    }
                    ListStrategy::MergePrimitives => {
                        if merge_keys::reordered(items, live_items) {
                            out.push(replaced(path, recorded, live));
                        }
                        for item in items.iter().filter(|i| !live_items.contains(i)) {
                            out.push(removed(set_element_path(path, item), item));
                        }
                    }
                    // Atomic: the list as a whole, its elements allowed what the server adds.
                    _ => {
                        let same = items.len() == live_items.len()
                            && items.iter().zip(live_items).all(|(item, live)| {
                                let mut changes = Vec::new();
                                self.walk(item, live, Owned::Unknown, schema, "", &mut changes);
                                changes.is_empty()
                            });
                        if !same {
                            out.push(replaced(path, recorded, live));
                        }
                    }
                }
            }
            _ if recorded == live => {}
            _ if self.same_quantity(schema, recorded, live) => {}
            _ => out.push(replaced(path, recorded, live)),
        }
    }

    /// Whether two scalars are the same resource quantity written differently.
    fn same_quantity(&self, schema: &[&str], recorded: &Value, live: &Value) -> bool {
        let parent = schema.len().checked_sub(2).map(|i| schema[i]);
        // A resource list is kept to a milli, other quantities (`sizeLimit`) to a nano.
        let scale = match parent.is_some_and(|p| QUANTITY_MAPS.contains(&p)) {
            true => weaver_quantity::MILLI,
            false if schema.last().is_some_and(|f| *f == "sizeLimit") => weaver_quantity::NANO,
            false => return false,
        };
        quantity(recorded, scale).is_some_and(|q| Some(q) == quantity(live, scale))
    }
}

/// Whether a recorded value missing from the live object is how the server stores it, rather
/// than a removal: weaver still owns it, or (without ownership data) it is a zero value that
/// Go's `omitempty` drops. Empty maps and lists always are.
fn stored_as_absent(value: &Value, owned: Owned, in_map: bool) -> bool {
    let empty = matches!(value, Value::Null)
        || matches!(value, Value::Object(m) if m.is_empty())
        || matches!(value, Value::Array(a) if a.is_empty());
    empty
        || match owned {
            Owned::Set(_) => true,
            Owned::No => false,
            Owned::Unknown => !in_map && is_zero(value),
        }
}

/// Go's zero values: what `omitempty` leaves out.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.values().all(is_zero),
    }
}

/// `{"name": "A"}`, `{"containerPort": 80, "protocol": "TCP"}`: an element's key fields.
fn element_keys(keys: &[merge_keys::MergeKey], item: &Value) -> Value {
    let values = merge_keys::element_key(keys, item).unwrap_or_default();
    keys.iter().map(|k| k.field.to_string()).zip(values).collect::<serde_json::Map<_, _>>().into()
}

fn removed(path: String, recorded: &Value) -> FieldDrift {
    FieldDrift { path, op: ChangeOp::Remove, recorded: Some(recorded.clone()), live: None, redacted: false }
}

fn replaced(path: &str, recorded: &Value, live: &Value) -> FieldDrift {
    FieldDrift {
        path: path.to_string(),
        op: ChangeOp::Replace,
        recorded: Some(recorded.clone()),
        live: Some(live.clone()),
        redacted: false,
    }
}

/// A scalar as a resource quantity's value as stored at precision `scale`
/// (`weaver_quantity::value`), a number as its text.
fn quantity(value: &Value, scale: i32) -> Option<(i128, i32)> {
    match value {
        Value::String(s) => weaver_quantity::value(s, scale),
        Value::Number(n) => weaver_quantity::value(&n.to_string(), scale),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn paths(changes: &[FieldDrift]) -> Vec<(&str, ChangeOp)> {
        changes.iter().map(|c| (c.path.as_str(), c.op)).collect()
    }

    fn recorded_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "empty": ""}, "annotations": {}},
            "spec": {"replicas": 2, "template": {"spec": {
                "hostNetwork": false,
                "tolerations": [{"key": "spot", "operator": "Exists"}],
                "containers": [{"name": "web", "image": "nginx:1", "stdin": false,
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}}]}}}
        })
    }

    /// What the server stores after weaver applied `recorded_deployment`: defaults added, zero
    /// values of omitempty fields dropped, quantities canonical, other managers' fields.
    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9", "generation": 3,
                "labels": {"app": "web", "empty": "", "added-by-someone": "x"},
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "managedFields": [{"manager": "weaver", "operation": "Apply", "apiVersion": "apps/v1", "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}, "f:empty": {}}},
                    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:hostNetwork": {}, "f:tolerations": {},
                        "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}, "f:stdin": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                            "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                            "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}}}}}}}}]},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10, "template": {"spec": {
                "dnsPolicy": "ClusterFirst",
                "tolerations": [{"key": "spot", "operator": "Exists"}],
                "containers": [
                    {"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "added"}],
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "injected-sidecar", "image": "envoy"}
                ]}}},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn defaults_other_managers_omitted_zero_values_and_canonical_quantities_are_not_drift() {
        assert_eq!(object_drift(&recorded_deployment(), &live_deployment()), Vec::new());
    }

    #[test]
    fn changed_and_removed_fields_and_elements_are_drift() {
        let mut live = live_deployment();
        live["spec"]["replicas"] = json!(5);
        live["metadata"]["labels"].as_object_mut().unwrap().shift_remove("app");
        let web = &mut live["spec"]["template"]["spec"]["containers"][0];
        web["image"] = json!("nginx:2");
        web["env"] = json!([{"name": "B", "value": "added"}]);
        web["resources"]["requests"]["cpu"] = json!("600m");
        // Someone removed the label and the env var: weaver no longer owns them.
        let fields = &mut live["metadata"]["managedFields"][0]["fieldsV1"];
        fields["f:metadata"]["f:labels"].as_object_mut().unwrap().shift_remove("f:app");
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            .as_object_mut()
            .unwrap()
            .shift_remove("f:env");
        let changes = object_drift(&recorded_deployment(), &live);
        assert_eq!(
            paths(&changes),
            vec![
                ("metadata.labels.app", ChangeOp::Remove),
                ("spec.replicas", ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].env[name=A]", ChangeOp::Remove),
                ("spec.template.spec.containers[name=web].image", ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].resources.requests.cpu", ChangeOp::Replace),
            ]
        );
        let replicas = &changes[1];
        assert_eq!((replicas.recorded.clone(), replicas.live.clone()), (Some(json!(2)), Some(json!(5))));
        assert_eq!(changes[0].recorded, Some(json!("web")));
        assert_eq!(changes[0].live, None);
    }

    #[test]
    fn a_removed_field_weaver_no_longer_owns_is_drift_even_when_false() {
        let mut recorded = recorded_deployment();
        recorded["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(false);
        // Removed by someone else: it left weaver's field set (and the object).
        let changes = object_drift(&recorded, &live_deployment());
        assert_eq!(paths(&changes), vec![("spec.template.spec.automountServiceAccountToken", ChangeOp::Remove)]);
    }

    #[test]
    fn without_managed_fields_zero_values_of_struct_fields_may_be_absent_but_map_entries_may_not() {
        let mut live = live_deployment();
        live["metadata"].as_object_mut().unwrap().shift_remove("managedFields");
        assert_eq!(object_drift(&recorded_deployment(), &live), Vec::new());
        live["metadata"]["labels"].as_object_mut().unwrap().shift_remove("empty");
        assert_eq!(
            paths(&object_drift(&recorded_deployment(), &live)),
            vec![("metadata.labels.empty", ChangeOp::Remove)]
        );
    }

    #[test]
    fn atomic_lists_change_as_a_whole_and_may_gain_defaults_inside_elements() {
        let mut live = live_deployment();
        live["spec"]["template"]["spec"]["tolerations"][0]["effect"] = json!("");
        live["spec"]["template"]["spec"]["tolerations"][0]["tolerationSeconds"] = json!(30);
        assert_eq!(object_drift(&recorded_deployment(), &live), Vec::new(), "fields added inside elements");
        live["spec"]["template"]["spec"]["tolerations"] =
            json!([{"key": "spot", "operator": "Exists"}, {"key": "gpu"}]);
        let changes = object_drift(&recorded_deployment(), &live);
        assert_eq!(paths(&changes), vec![("spec.template.spec.tolerations", ChangeOp::Replace)]);
        assert_eq!(changes[0].recorded, Some(json!([{"key": "spot", "operator": "Exists"}])));
    }

    #[test]
    fn secret_values_are_never_carried() {
        let recorded = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
            "stringData": {"password": "hunter2", "gone": "bye"}, "data": {"user": "YWRtaW4="}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
            "data": {"password": "b3RoZXI=", "user": "YWRtaW4="}});
        let changes = object_drift(&recorded, &live);
        assert_eq!(paths(&changes), vec![("data.gone", ChangeOp::Remove), ("data.password", ChangeOp::Replace)]);
        assert!(changes.iter().all(|c| c.redacted && c.recorded.is_none() && c.live.is_none()));
        let emptied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"});
        let changes = object_drift(&recorded, &emptied);
        assert_eq!(paths(&changes), vec![("data", ChangeOp::Remove)]);
        assert!(changes[0].redacted && changes[0].recorded.is_none());
        let text = serde_json::to_string(&object_drift(&recorded, &live)).unwrap();
        for value in ["hunter2", "aHVudGVyMg==", "b3RoZXI=", "bye"] {
            assert!(!text.contains(value), "{text}");
        }
    }

    #[test]
    fn quantities_compare_by_value() {
        let q = |v: Value| quantity(&v, weaver_quantity::NANO);
        assert_eq!(q(json!("0.5")), q(json!("500m")));
        assert_eq!(q(json!("1024Mi")), q(json!("1Gi")));
        assert_eq!(q(json!(1)), q(json!("1000m")));
        assert_eq!(q(json!("1e3")), q(json!("1k")));
        assert_eq!(q(json!("0")), q(json!("0Gi")));
        assert_ne!(q(json!("1G")), q(json!("1Gi")));
        assert_ne!(q(json!("100m")), q(json!("1")));
        for bad in [json!("abc"), json!("1.2.3"), json!("."), json!("1X"), json!(true)] {
            assert_eq!(q(bad.clone()), None, "{bad}");
        }
        // Only where quantities live: elsewhere "1k" and "1000" are different strings.
        let recorded =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"n": "1000"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"n": "1k"}});
        assert_eq!(paths(&object_drift(&recorded, &live)), vec![("data.n", ChangeOp::Replace)]);
        // Every resource list of a LimitRange is kept to a milli, its request ratio too.
        let limits = |ratio: &str| {
            json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
                "spec": {"limits": [{"type": "Container", "maxLimitRequestRatio": {"cpu": ratio}}]}})
        };
        assert_eq!(paths(&object_drift(&limits("1.5001"), &limits("1501m"))), vec![]);
        assert_eq!(paths(&object_drift(&limits("1.5"), &limits("2"))).len(), 1);
    }

    #[test]
    fn finalizers_are_a_set() {
        let recorded =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "b"]}});
        let live =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["c", "a"]}});
        assert_eq!(paths(&object_drift(&recorded, &live)), vec![("metadata.finalizers[b]", ChangeOp::Remove)]);
    }

    #[test]
    fn recorded_elements_in_another_order_are_drift_and_elements_added_between_them_are_not() {
        let with_env = |names: &[&str]| {
            let env: Vec<Value> = names.iter().map(|n| json!({"name": n, "value": "v"})).collect();
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": names},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "env": env}]}}}})
        };
        let recorded = with_env(&["A", "B", "C"]);
        assert_eq!(object_drift(&recorded, &with_env(&["A", "X", "B", "C"])), vec![]);
        let changes = object_drift(&recorded, &with_env(&["C", "A", "B"]));
        assert_eq!(
            paths(&changes),
            vec![
                ("metadata.finalizers", ChangeOp::Replace),
                ("spec.template.spec.containers[name=web].env", ChangeOp::Replace)
            ]
        );
        assert_eq!(changes[1].recorded, Some(json!([{"name": "A"}, {"name": "B"}, {"name": "C"}])));
        assert_eq!(changes[1].live, Some(json!([{"name": "C"}, {"name": "A"}, {"name": "B"}])));
    }

    /// A release of chart `app` in namespace `shop`, for tests.
    pub(crate) fn release(name: &str) -> Release {
        let nowhere = weaver_core::error::Location::file("");
        Release {
            name: name.into(),
            chart: "app".into(),
            kustomize: None,
            generated_resources: Vec::new(),
            remote: None,
            namespace: "shop".into(),
            create_namespace: true,
            needs: Vec::new(),
            labels: Default::default(),
            values: Default::default(),
            values_files: Vec::new(),
            secrets: Vec::new(),
            substitute: Default::default(),
            substitute_from: Vec::new(),
            load_restrictions: Default::default(),
            installed: true,
            patches: Vec::new(),
            ignore_differences: Vec::new(),
            health_checks: Vec::new(),
            images: Default::default(),
            at: nowhere.clone(),
            chart_at: nowhere,
        }
    }

    #[test]
    fn a_release_compares_its_applied_objects_and_reports_missing_ones() {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"a": "1"}});
        let gone = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": "shop"}});
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        let never =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "never", "namespace": "shop"}});
        let record = Record {
            revision: 3,
            commit: Some("abc".into()),
            dirty: Some(false),
            objects: vec![crate::release::record::RecordedObject {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("shop".into()),
                name: "never".into(),
                applied: false,
                sensitive: false,
            }],
            ..Record::of_manifests(vec![config.clone(), gone, widget, never])
        };
        let live_config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"a": "2"}});
        let live: HashMap<ObjectKey, &Value> = [(ObjectKey::of(&live_config), &live_config)].into_iter().collect();
        let place = |m: &Value| {
            (m["kind"] == "ConfigMap")
                .then(|| m.pointer("/metadata/namespace").and_then(Value::as_str).map(String::from))
        };
        let drift = compare_release(&release("web"), Some(&record), &live, place);
        assert_eq!(drift.state(), ReleaseState::Drifted);
        assert_eq!(drift.revision.as_ref().unwrap().number, 3);
        let states: Vec<(&str, State, Option<&str>)> =
            drift.objects.iter().map(|o| (o.key.name.as_str(), o.state, o.reason.as_deref())).collect();
        assert_eq!(
            states,
            vec![
                ("c", State::Drifted, None),
                ("gone", State::Missing, None),
                ("w", State::Missing, Some("the cluster does not serve example.com/v1 Widget")),
            ]
        );
        assert_eq!(paths(&drift.objects[0].changes), vec![("data.a", ChangeOp::Replace)]);

        let none = compare_release(&release("redis"), None, &live, place);
        assert_eq!(none.state(), ReleaseState::NoRecord);
        assert!(none.objects.is_empty());
        let report = Report {
            environment: "dev".into(),
            context: "c".into(),
            server: "s".into(),
            releases: vec![drift, none],
            correction: None,
        };
        assert_eq!(report.summary(), Summary { drifted: 1, missing: 2, in_sync: 0, releases_without_record: 1 });
        assert!(report.has_drift());
    }
}
