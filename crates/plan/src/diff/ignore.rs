//! `ignoreDifferences` applied to objects (the rules themselves: `weaver_project::ignore`).
//!
//! A rule's pointers and managers name *places*: concrete fields of one object, list elements
//! identified as server-side apply identifies them (by merge key, from the one table in
//! `weaver_patch::merge_keys`; a set's element by its value; an atomic list's by position).
//! [`respect`] makes what an apply sends take the live value at every such place, as Argo CD's
//! `RespectIgnoreDifferences` does, so the apply neither fights the field's owner nor, where
//! weaver was its only manager, makes server-side apply remove it; diff and drift compare that
//! object, so an ignored field is never reported either.

use serde_json::{Map, Value};

use super::fields::{Step, list_keys};
use super::{FieldSet, Kind};
use weaver_core::manifest::{MANAGER, ObjectKeyRef};
use weaver_patch::merge_keys::{self, ListStrategy};
use weaver_project::IgnoreRule;
use weaver_project::ignore::selector;

/// One step down to a concrete field.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    /// An element of a list merged by key, by its key's values (defaults filled in).
    Key(Vec<Value>),
    /// An element of a set of scalars (`finalizers`).
    Member(Value),
    /// An element of a list replaced whole, by position.
    Index(usize),
}

type Place = Vec<Seg>;

/// The rules of `rules` that select the object `key` names.
pub fn rules_for<'r>(rules: &'r [IgnoreRule], key: ObjectKeyRef<'_>) -> Vec<&'r IgnoreRule> {
    rules.iter().filter(|rule| rule.selects(key)).collect()
}

/// `desired` as an apply sends it to the existing `live` object under `rules`: at every place
/// they ignore, live's value where desired sets the field or weaver set it last
/// (`last_applied`, else weaver's managedFields), and no value where live has none (inside
/// what live has: a new list element keeps its fields). None when
/// that is `desired` itself. A place that is nowhere is no error: rules guard against fields
/// others may add.
pub fn respect(rules: &[&IgnoreRule], desired: &Value, live: &Value, last_applied: Option<&Value>) -> Option<Value> {
    if rules.is_empty() {
        return None;
    }
    let kind = Kind {
        api_version: desired.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
        kind: desired.get("kind").and_then(Value::as_str).unwrap_or_default(),
    };
    let places = places(rules, [desired, live].into_iter().chain(last_applied), live, kind);
    if places.is_empty() {
        return None;
    }
    let owned = match last_applied {
        Some(_) => None,
        None => FieldSet::applied_by(live, MANAGER),
    };
    let weavers = |place: &[Seg]| {
        get(desired, place, kind).is_some()
            || match last_applied {
                Some(last) => get(last, place, kind).is_some(),
                None => owned.as_ref().is_some_and(|owned| owns(owned, place, kind)),
            }
    };
    let mut sent = desired.clone();
    let mut gone = Vec::new();
    for place in &places {
        match get(live, place, kind) {
            Some(value) if weavers(place) => set(&mut sent, place, value.clone(), kind),
            Some(_) => {}
            // Only inside what is live: a new element (a container being added) is sent whole.
            None if get(live, &place[..place.len() - 1], kind).is_some() => gone.push(place),
            None => {}
        }
    }
    // Last first: elements of a list are found in order, and removing one by position moves
    // those after it.
    for place in gone.into_iter().rev() {
        remove(&mut sent, place, kind);
    }
    (sent != *desired).then_some(sent)
}

/// Every place the rules name in `objects` (pointers) and in `live` (managers' fields), once.
fn places<'v>(rules: &[&IgnoreRule], objects: impl Iterator<Item = &'v Value>, live: &Value, kind: Kind) -> Vec<Place> {
    let mut out: Vec<Place> = Vec::new();
    for object in objects {
        for pointer in rules.iter().flat_map(|rule| &rule.pointers) {
            resolve(&pointer.steps, object, kind, &mut Vec::new(), &mut Vec::new(), &mut out);
        }
    }
    for rule in rules.iter().filter(|rule| !rule.managers.is_empty()) {
        for set in FieldSet::managed_by(live, &rule.managers) {
            out.extend(set.leaves().iter().filter_map(|leaf| place_of(leaf, kind)));
        }
    }
    // Managers can own thousands of leaves: once each, in linear time (`Value` has no `Hash`).
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    out.retain(|place| seen.insert(format!("{place:?}")));
    out
}

/// The places in `value` that pointer `steps` address.
fn resolve<'s>(
    steps: &'s [String],
    value: &Value,
    kind: Kind,
    names: &mut Vec<&'s str>,
    here: &mut Place,
    out: &mut Vec<Place>,
) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(here.clone());
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(child) = map.get(step) {
                here.push(Seg::Field(step.clone()));
                names.push(step);
                resolve(rest, child, kind, names, here, out);
                names.pop();
                here.pop();
            }
        }
        Value::Array(items) => {
            let strategy = kind.list(names);
            for (at, item) in items.iter().enumerate().filter(|(at, item)| addresses(step, *at, item, strategy)) {
                let seg = match strategy {
                    ListStrategy::Merge { keys } => match merge_keys::element_key(keys, item) {
                        Ok(key) => Seg::Key(key),
                        Err(_) => continue,
                    },
                    ListStrategy::MergePrimitives => Seg::Member(item.clone()),
                    ListStrategy::Atomic => Seg::Index(at),
                };
                here.push(seg);
                resolve(rest, item, kind, names, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// Whether pointer step `step` addresses element `at` (`item`) of a list: `*`, its index,
/// `field=value,…` (a key field the element leaves out takes its default, as `protocol: TCP`),
/// or a set's element by its value.
fn addresses(step: &str, at: usize, item: &Value, strategy: ListStrategy) -> bool {
    if step == "*" {
        return true;
    }
    if step.bytes().all(|b| b.is_ascii_digit()) {
        return step.parse() == Ok(at);
    }
    if let Some(pairs) = selector(step) {
        let keys = match strategy {
            ListStrategy::Merge { keys } => keys,
            _ => &[],
        };
        return pairs.iter().all(|(field, wanted)| match item.get(field).filter(|v| !v.is_null()) {
            Some(Value::String(text)) => text == wanted,
            Some(value @ (Value::Number(_) | Value::Bool(_))) => {
                serde_json::from_str(wanted).ok().as_ref() == Some(value)
            }
            Some(_) => false,
            None => keys.iter().any(|k| k.field == *field && k.default == Some(*wanted)),
        });
    }
    strategy == ListStrategy::MergePrimitives && item.as_str() == Some(step)
}

/// A managedFields leaf as a place; None for an element of a list weaver does not key so.
fn place_of(leaf: &[&Step], kind: Kind) -> Option<Place> {
    let mut names: Vec<&str> = Vec::new();
    let mut place = Vec::with_capacity(leaf.len());
    for step in leaf {
        place.push(match step {
            Step::Field(name) => {
                names.push(name);
                Seg::Field(name.clone())
            }
            Step::Key(fields) => {
                let keys = list_keys(kind, &names);
                if keys.is_empty() {
                    return None;
                }
                let values = keys.iter().map(|k| fields.get(k.field).cloned().or_else(|| k.default.map(Value::from)));
                Seg::Key(values.collect::<Option<Vec<_>>>()?)
            }
            Step::Value(value) => Seg::Member(value.clone()),
        });
    }
    Some(place)
}

/// Where `seg` is in `items`, a list at field path `names`.
fn position(items: &[Value], seg: &Seg, kind: Kind, names: &[&str]) -> Option<usize> {
    match seg {
        Seg::Key(key) => {
            let keys = list_keys(kind, names);
            items.iter().position(|item| merge_keys::element_key(keys, item).is_ok_and(|k| k == *key))
        }
        Seg::Member(value) => items.iter().position(|item| item == value),
        Seg::Index(at) => (*at < items.len()).then_some(*at),
        Seg::Field(_) => None,
    }
}

fn get<'v>(value: &'v Value, place: &[Seg], kind: Kind) -> Option<&'v Value> {
    let mut names: Vec<&str> = Vec::new();
    let mut at = value;
    for seg in place {
        at = match (at, seg) {
            (Value::Object(map), Seg::Field(name)) => {
                names.push(name);
                map.get(name)?
            }
            (Value::Array(items), seg) => &items[position(items, seg, kind, &names)?],
            _ => return None,
        };
    }
    Some(at)
}

/// Sets the field at `place`; maps on the way are made, list elements are not (a field of an
/// element `object` lacks is not set).
fn set(object: &mut Value, place: &[Seg], value: Value, kind: Kind) {
    let Some((last, parents)) = place.split_last() else { return };
    let Some((at, names)) = parent(object, parents, kind, true) else { return };
    match (at, last) {
        (Value::Object(map), Seg::Field(name)) => {
            map.insert(name.clone(), value);
        }
        (Value::Array(items), seg) => match position(items, seg, kind, &names) {
            Some(index) => items[index] = value,
            None if !matches!(seg, Seg::Index(_)) => items.push(value),
            None => {}
        },
        _ => {}
    }
}

fn remove(object: &mut Value, place: &[Seg], kind: Kind) {
    let Some((last, parents)) = place.split_last() else { return };
    let Some((at, names)) = parent(object, parents, kind, false) else { return };
    match (at, last) {
        (Value::Object(map), Seg::Field(name)) => {
            map.shift_remove(name);
        }
        (Value::Array(items), seg) => {
            if let Some(index) = position(items, seg, kind, &names) {
                items.remove(index);
            }
        }
        _ => {}
    }
}

/// The value at `parents`, with the field names down to it; `make` makes missing maps where
/// only maps follow (a missing list element is never made).
fn parent<'v, 'p>(
    object: &'v mut Value,
    parents: &'p [Seg],
    kind: Kind,
    make: bool,
) -> Option<(&'v mut Value, Vec<&'p str>)> {
    let mut names: Vec<&str> = Vec::new();
    let mut at = object;
    for (depth, seg) in parents.iter().enumerate() {
        at = match (at, seg) {
            (Value::Object(map), Seg::Field(name)) => {
                names.push(name);
                let only_maps = parents[depth + 1..].iter().all(|s| matches!(s, Seg::Field(_)));
                if !(map.contains_key(name) || make && only_maps) {
                    return None;
                }
                map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()))
            }
            (Value::Array(items), seg) => {
                let index = position(items, seg, kind, &names)?;
                &mut items[index]
            }
            _ => return None,
        };
    }
    Some((at, names))
}

/// Whether `owned` (weaver's managedFields) holds the field at `place`, or a field above it
/// whole.
fn owns(owned: &FieldSet, place: &[Seg], kind: Kind) -> bool {
    let mut names: Vec<&str> = Vec::new();
    let mut at = owned;
    for seg in place {
        let next = match seg {
            Seg::Field(name) => {
                names.push(name);
                at.field(name)
            }
            Seg::Key(key) => {
                let keys = list_keys(kind, &names);
                let item: Map<String, Value> =
                    keys.iter().map(|k| k.field.to_string()).zip(key.iter().cloned()).collect();
                at.element(keys, &Value::Object(item))
            }
            Seg::Member(value) => return at.has_value(value),
            // Inside a list owned whole, which `is_leaf` below has answered.
            Seg::Index(_) => return false,
        };
        match next {
            Some(child) if child.is_leaf() => return true,
            Some(child) => at = child,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use weaver_core::error::Location;
    use weaver_project::ignore::Pointer;

    fn rule(pointers: &[&str], managers: &[&str]) -> IgnoreRule {
        IgnoreRule {
            group: None,
            kind: None,
            name: None,
            namespace: None,
            pointers: pointers
                .iter()
                .map(|p| Pointer { text: p.to_string(), steps: Pointer::parse(p).unwrap() })
                .collect(),
            managers: managers.iter().map(|m| m.to_string()).collect(),
            at: Location::file(""),
        }
    }

    fn deployment(replicas: u32, containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}})
    }

    fn with_managers(mut object: Value, entries: Value) -> Value {
        object["metadata"]["managedFields"] = entries;
        object
    }

    #[test]
    fn an_ignored_field_is_sent_with_its_live_value() {
        let containers = json!([{"name": "web", "image": "nginx:1"}]);
        let desired = deployment(2, containers.clone());
        let live = deployment(5, containers.clone());
        let by_pointer = rule(&["/spec/replicas"], &[]);
        let sent = respect(&[&by_pointer], &desired, &live, Some(&desired)).unwrap();
        assert_eq!(sent, deployment(5, containers.clone()));
        // Equal values: nothing to change.
        assert_eq!(respect(&[&by_pointer], &live, &live, None), None);
        // A pointer that matches nothing is no error.
        assert_eq!(respect(&[&rule(&["/spec/paused", "/spec/x/0/y"], &[])], &desired, &live, None), None);
        // By manager: the fields kube-controller-manager owns, through the scale subresource.
        let live = with_managers(
            live,
            json!([{"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "weaver", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}}]),
        );
        let by_manager = rule(&[], &["kube-controller-manager"]);
        assert_eq!(respect(&[&by_manager], &desired, &live, None).unwrap()["spec"]["replicas"], 5);
        assert_eq!(respect(&[&rule(&[], &["someone-else"])], &desired, &live, None), None);
    }

    #[test]
    fn list_elements_are_addressed_by_merge_key_index_star_or_value() {
        let desired = deployment(
            1,
            json!([{"name": "web", "image": "nginx:1"}, {"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 15090}]}]),
        );
        let live = deployment(
            1,
            json!([{"name": "web", "image": "nginx:2"}, {"name": "istio-proxy", "image": "proxyv2:1.20", "args": ["proxy"],
                "ports": [{"containerPort": 15090, "protocol": "TCP"}]}]),
        );
        let sent = |pointers: &[&str]| respect(&[&rule(pointers, &[])], &desired, &live, Some(&desired));
        let sidecar = sent(&["/spec/template/spec/containers/name=istio-proxy"]).unwrap();
        assert_eq!(
            sidecar["spec"]["template"]["spec"]["containers"][1],
            live["spec"]["template"]["spec"]["containers"][1]
        );
        assert_eq!(sidecar["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1");
        let images = sent(&["/spec/template/spec/containers/*/image"]).unwrap();
        assert_eq!(images["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
        assert_eq!(images["spec"]["template"]["spec"]["containers"][1]["image"], "proxyv2:1.20");
        assert!(images["spec"]["template"]["spec"]["containers"][1].get("args").is_none());
        let first = sent(&["/spec/template/spec/containers/0/image"]).unwrap();
        assert_eq!(first["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
        assert_eq!(first["spec"]["template"]["spec"]["containers"][1]["image"], "auto");
        // A key field left out takes its default: port 15090 is the TCP one.
        let port =
            sent(&["/spec/template/spec/containers/name=istio-proxy/ports/containerPort=15090,protocol=TCP"]).unwrap();
        assert_eq!(port["spec"]["template"]["spec"]["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(sent(&["/spec/template/spec/containers/name=other", "/spec/template/spec/containers/7"]), None);
        // Finalizers are a set: an element by its value.
        let finalizers = |list: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": list}});
        let ignored = rule(&["/metadata/finalizers/example.com~1keep"], &[]);
        let desired = finalizers(json!(["a", "example.com/keep"]));
        assert_eq!(
            respect(&[&ignored], &desired, &finalizers(json!(["a"])), Some(&desired)).unwrap(),
            finalizers(json!(["a"]))
        );
    }

    #[test]
    fn a_field_live_lacks_is_not_sent_and_one_weaver_never_set_is_left_alone() {
        let containers = json!([{"name": "web", "image": "nginx:1"}]);
        let desired = deployment(2, containers.clone());
        let mut live = deployment(2, containers.clone());
        live["spec"].as_object_mut().unwrap().shift_remove("replicas");
        let sent = respect(&[&rule(&["/spec/replicas"], &[])], &desired, &live, None).unwrap();
        assert!(sent["spec"].get("replicas").is_none());
        // Elements of an atomic list live lacks go, however many.
        let args = |args: Value| deployment(2, json!([{"name": "web", "image": "nginx:1", "args": args}]));
        let all_args = rule(&["/spec/template/spec/containers/name=web/args/*"], &[]);
        let sent = respect(&[&all_args], &args(json!(["a", "b", "c"])), &args(json!(["a"])), None).unwrap();
        assert_eq!(sent, args(json!(["a"])));
        // A container live does not have yet is sent whole.
        let two = deployment(2, json!([{"name": "web", "image": "nginx:1"}, {"name": "new", "image": "busybox"}]));
        let images = rule(&["/spec/template/spec/containers/*/image"], &[]);
        assert_eq!(respect(&[&images], &two, &deployment(2, containers.clone()), None), None);
        // Live has a field desired lacks: sent only where weaver set it last time.
        let mut live = deployment(2, containers.clone());
        live["spec"]["paused"] = json!(true);
        let paused = rule(&["/spec/paused"], &[]);
        assert_eq!(respect(&[&paused], &desired, &live, Some(&desired)), None);
        let mut last = desired.clone();
        last["spec"]["paused"] = json!(false);
        assert_eq!(respect(&[&paused], &desired, &live, Some(&last)).unwrap()["spec"]["paused"], true);
        // Without a record, weaver's managedFields say.
        let owned = with_managers(
            live.clone(),
            json!([{"manager": "weaver", "operation": "Apply", "fieldsV1": {"f:spec": {"f:paused": {}}}}]),
        );
        assert_eq!(respect(&[&paused], &desired, &owned, None).unwrap()["spec"]["paused"], true);
        let theirs = with_managers(
            live,
            json!([{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}]),
        );
        assert_eq!(respect(&[&paused], &desired, &theirs, None), None);
    }
}
