//! Schema-directed operations on JSON values, ported from
//! structured-merge-diff's `typed` package: field sets, merge, compare and
//! removal. Unknown fields never reach these functions (the caller prunes).

use crate::fieldpath::{Path, PathElement, Set, path_string};
use crate::schema::{ListKind, Schema, TypeDef, TypeId};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Path element of a list item (`listItemToPathElement`).
pub fn list_item_pe(
    s: &Schema,
    elem: TypeId,
    kind: &ListKind,
    index: usize,
    item: &Value,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(index)),
        ListKind::Set => Ok(PathElement::Value(item.clone())),
        ListKind::Map(keys) => {
            let obj = match item {
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                Value::Object(o) => o,
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut key = Vec::with_capacity(keys.len());
            for k in keys {
                let v = match obj.get(k) {
                    Some(v) => v.clone(),
                    None => match s.as_struct(elem).and_then(|st| st.fields.get(k)).and_then(|f| f.default.clone()) {
                        Some(d) => d,
                        None => {
                            return Err(format!(
                                "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                            ));
                        }
                    },
                };
                key.push((k.clone(), v));
            }
            key.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(key))
        }
    }
}

fn list_def(s: &Schema, ty: TypeId) -> Option<(TypeId, &ListKind)> {
    match s.get(ty) {
        TypeDef::List { elem, kind, .. } => Some((*elem, kind)),
        _ => None,
    }
}

/// Items of a list keyed by path element, in order; duplicates are an error
/// unless `allow_duplicates` (live objects), where the first item wins.
fn index_items<'v>(
    s: &Schema,
    ty: TypeId,
    items: &'v [Value],
    path: &Path,
    allow_duplicates: bool,
) -> Result<(Vec<PathElement>, BTreeMap<PathElement, &'v Value>), String> {
    let (elem, kind) = list_def(s, ty).ok_or("not a list")?;
    let mut pes = Vec::with_capacity(items.len());
    let mut seen = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let pe =
            list_item_pe(s, elem, kind, i, item).map_err(|e| format!("{}: element {i}: {e}", path_string(path)))?;
        if seen.contains_key(&pe) {
            if !allow_duplicates {
                return Err(format!("{}: duplicate entries for key {pe}", path_string(path)));
            }
        } else {
            seen.insert(pe.clone(), item);
        }
        pes.push(pe);
    }
    Ok((pes, seen))
}

pub fn to_field_set(s: &Schema, ty: TypeId, v: &Value) -> Result<Set, String> {
    let mut set = Set::new();
    fs_walk(s, ty, v, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn fs_walk(s: &Schema, ty: TypeId, v: &Value, path: &mut Path, set: &mut Set) -> Result<(), String> {
    if s.is_leaf(ty, v) {
        set.insert(path);
        return Ok(());
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let Some((cty, declared)) = s.member(ty, k) else {
                    continue;
                };
                path.push(PathElement::Field(k.clone()));
                fs_walk(s, cty, child, path, set)?;
                if child.is_null() || child.as_object().is_some_and(Map::is_empty) || !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let (elem, _) = list_def(s, ty).ok_or("not a list")?;
            let (pes, _) = index_items(s, ty, items, path, false)?;
            for (pe, item) in pes.into_iter().zip(items) {
                path.push(pe);
                fs_walk(s, elem, item, path, set)?;
                set.insert(path);
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// `lhs.Merge(rhs)`: rhs wins on leaves, maps merge by key, associative lists by item.
pub fn merge(s: &Schema, ty: TypeId, lhs: &Value, rhs: &Value) -> Result<Value, String> {
    Ok(merge_node(s, ty, Some(lhs), Some(rhs), &mut Vec::new())?.unwrap_or(Value::Null))
}

fn merge_node(
    s: &Schema,
    ty: TypeId,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Path,
) -> Result<Option<Value>, String> {
    let (l, r) = match (lhs, rhs) {
        (None, None) => return Ok(None),
        (Some(l), None) => return Ok(Some(l.clone())),
        (None, Some(r)) => return Ok(Some(r.clone())),
        (Some(l), Some(r)) => (l, r),
    };
    if s.is_leaf(ty, l) || s.is_leaf(ty, r) {
        return Ok(Some(r.clone()));
    }
    match (l, r) {
        (Value::Object(lm), Value::Object(rm)) => {
            let mut out = Map::new();
            for (k, lv) in lm {
                let cty = s.member(ty, k).map_or(crate::schema::ATOMIC, |m| m.0);
                path.push(PathElement::Field(k.clone()));
                if let Some(v) = merge_node(s, cty, Some(lv), rm.get(k), path)? {
                    out.insert(k.clone(), v);
                }
                path.pop();
            }
            for (k, rv) in rm {
                if !lm.contains_key(k) {
                    out.insert(k.clone(), rv.clone());
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Value::Array(la), Value::Array(ra)) => Ok(Some(Value::Array(merge_list(s, ty, la, ra, path)?))),
        _ => Ok(Some(r.clone())),
    }
}

/// Port of `mergingWalker.visitListItems` as structured-merge-diff v4.2+ has it (Kubernetes
/// 1.24+; 1.32 vendors v4.4): items both sides hold come in rhs (applied) order, lhs-only items
/// keep their place among the lhs items around them, and new rhs items follow their rhs
/// predecessor. An item the lhs holds twice is replaced by the rhs one, not merged with it.
fn merge_list(s: &Schema, ty: TypeId, la: &[Value], ra: &[Value], path: &mut Path) -> Result<Vec<Value>, String> {
    let (elem, _) = list_def(s, ty).ok_or("not a list")?;
    let (rpes, observed_r) = index_items(s, ty, ra, path, false)?;
    let (lpes, observed_l) = index_items(s, ty, la, path, true)?;
    let duplicated = |pe: &PathElement| lpes.iter().filter(|p| *p == pe).nth(1).is_some();
    let lhs_of = |pe: &PathElement| if duplicated(pe) { None } else { observed_l.get(pe).copied() };
    let mut shared: VecDeque<&PathElement> = rpes.iter().filter(|pe| observed_l.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_r: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let (mut li, mut ri) = (0, 0);
    let mut item = |pe: &PathElement, l: Option<&Value>, r: Option<&Value>, path: &mut Path| -> Result<(), String> {
        path.push(pe.clone());
        let merged = merge_node(s, elem, l, r, path)?;
        path.pop();
        out.extend(merged);
        Ok(())
    };
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_r.insert(pe);
                item(pe, lhs_of(pe), observed_r.get(pe).copied(), path)?;
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !observed_r.contains_key(pe) {
                item(pe, Some(&la[li]), None, path)?;
                li += 1;
                continue;
            } else if merged_r.contains(pe) {
                // Upstream then takes the next rhs item in the same round (no `continue`).
                li += 1;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_r.insert(pe);
            item(pe, lhs_of(pe), observed_r.get(pe).copied(), path)?;
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

/// `lhs.Compare(rhs)`: leaves are added/removed/modified; map fields and list
/// items themselves are added/removed when one side lacks them.
pub fn compare(s: &Schema, ty: TypeId, lhs: &Value, rhs: &Value) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    cmp_node(s, ty, Some(lhs), Some(rhs), &mut Vec::new(), &mut c)?;
    Ok(c)
}

fn cmp_node(
    s: &Schema,
    ty: TypeId,
    l: Option<&Value>,
    r: Option<&Value>,
    path: &mut Path,
    c: &mut Comparison,
) -> Result<(), String> {
    if l.is_none() && r.is_none() {
        return Ok(());
    }
    if l.is_some_and(|v| s.is_leaf(ty, v)) || r.is_some_and(|v| s.is_leaf(ty, v)) {
        match (l, r) {
            (None, _) => c.added.insert(path),
            (_, None) => c.removed.insert(path),
            (Some(a), Some(b)) if a != b => c.modified.insert(path),
            _ => {}
        }
        return Ok(());
    }
    let hook = |path: &Path, cl: Option<&Value>, cr: Option<&Value>, c: &mut Comparison| {
        if cl.is_none() {
            c.added.insert(path);
        } else if cr.is_none() {
            c.removed.insert(path);
        }
    };
    let is_list =
        matches!(s.get(ty), TypeDef::List { .. }) || l.is_some_and(Value::is_array) || r.is_some_and(Value::is_array);
    if is_list {
        let empty = Vec::new();
        let la = l.and_then(Value::as_array).unwrap_or(&empty);
        let ra = r.and_then(Value::as_array).unwrap_or(&empty);
        let (elem, _) = list_def(s, ty).ok_or("not a list")?;
        let (_, lm) = index_items(s, ty, la, path, true)?;
        let (_, rm) = index_items(s, ty, ra, path, true)?;
        let keys: BTreeSet<&PathElement> = lm.keys().chain(rm.keys()).collect();
        for pe in keys {
            let (cl, cr) = (lm.get(pe).copied(), rm.get(pe).copied());
            path.push(pe.clone());
            cmp_node(s, elem, cl, cr, path, c)?;
            hook(path, cl, cr, c);
            path.pop();
        }
    } else {
        let empty = Map::new();
        let lo = l.and_then(Value::as_object).unwrap_or(&empty);
        let ro = r.and_then(Value::as_object).unwrap_or(&empty);
        let keys: BTreeSet<&String> = lo.keys().chain(ro.keys()).collect();
        for k in keys {
            let cty = s.member(ty, k).map_or(crate::schema::ATOMIC, |m| m.0);
            let (cl, cr) = (lo.get(k), ro.get(k));
            path.push(PathElement::Field(k.clone()));
            cmp_node(s, cty, cl, cr, path, c)?;
            hook(path, cl, cr, c);
            path.pop();
        }
    }
    Ok(())
}

/// `RemoveItems`: drops every member path of `set`; a container left empty
/// becomes null (its parent keeps a null, which the caller prunes).
pub fn remove_items(s: &Schema, ty: TypeId, v: &Value, set: &Set) -> Value {
    if s.is_leaf(ty, v) {
        return if matches!(s.get(ty), TypeDef::Scalar(_)) || !v.is_object() && !v.is_array() {
            v.clone()
        } else {
            Value::Null
        };
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let pe = PathElement::Field(k.clone());
                if set.member(&pe) {
                    continue;
                }
                let cty = s.member(ty, k).map_or(crate::schema::ATOMIC, |m| m.0);
                let kept = match set.with_prefix(&pe) {
                    Some(sub) => remove_items(s, cty, child, sub),
                    None => child.clone(),
                };
                out.insert(k.clone(), kept);
            }
            if out.is_empty() { Value::Null } else { Value::Object(out) }
        }
        Value::Array(items) => {
            let Some((elem, kind)) = list_def(s, ty) else {
                return v.clone();
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Ok(pe) = list_item_pe(s, elem, kind, i, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.member(&pe) {
                    continue;
                }
                out.push(match set.with_prefix(&pe) {
                    Some(sub) => remove_items(s, elem, item, sub),
                    None => item.clone(),
                });
            }
            if out.is_empty() { Value::Null } else { Value::Array(out) }
        }
        _ => Value::Null,
    }
}

/// `Set.EnsureNamedFieldsAreMembers`: struct fields with owned children count
/// as owned themselves (map entries and list items do not).
pub fn ensure_named(s: &Schema, ty: TypeId, set: &Set) -> Set {
    let mut out = Set::new();
    for pe in set.members() {
        out.add_member(pe.clone());
    }
    for (pe, child) in set.children() {
        let cty = match pe {
            PathElement::Field(name) => {
                if let Some(st) = s.as_struct(ty)
                    && st.fields.contains_key(name)
                {
                    out.add_member(pe.clone());
                }
                s.member(ty, name).map_or(crate::schema::ATOMIC, |m| m.0)
            }
            PathElement::Key(_) | PathElement::Index(_) => list_def(s, ty).map_or(crate::schema::ATOMIC, |l| l.0),
            PathElement::Value(_) => crate::schema::ATOMIC,
        };
        out.set_child(pe.clone(), ensure_named(s, cty, child));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> (&'static Schema, TypeId) {
        let s = Schema::builtin();
        (s, s.named("io.k8s.api.apps.v1.Deployment").unwrap())
    }

    #[test]
    fn apply_field_set_matches_real_managed_fields() {
        let (s, ty) = deployment();
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        let set = to_field_set(s, ty, &cfg).unwrap();
        let v = set.to_fields_v1();
        assert_eq!(v["f:spec"]["f:selector"], json!({}));
        assert_eq!(v["f:metadata"]["f:labels"], json!({"f:app": {}}));
        let c = &v["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            json!({".": {}, "f:containerPort": {}})
        );
    }

    #[test]
    fn merge_keeps_live_items_and_appends_new_ones() {
        let (s, ty) = deployment();
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
        let cfg = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}, {"name": "c", "image": "4"}]}}}});
        let m = merge(s, ty, &live, &cfg).unwrap();
        let names: Vec<_> = m["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].clone())
            .collect();
        assert_eq!(names, vec![json!("1"), json!("3"), json!("4")]);
    }

    /// `env` of the one container after merging `cfg`'s onto `live`'s, as `name=value`.
    fn merged_env(live: &[(&str, &str)], cfg: &[(&str, &str)]) -> Vec<String> {
        let (s, ty) = deployment();
        let with_env = |env: &[(&str, &str)]| {
            let env: Vec<Value> = env.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}}})
        };
        let m = merge(s, ty, &with_env(live), &with_env(cfg)).unwrap();
        m["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}={}", e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn keyed_lists_follow_the_applied_order_as_since_kubernetes_1_24() {
        let abc = [("A", "1"), ("B", "2"), ("C", "3")];
        assert_eq!(merged_env(&abc, &[("C", "3"), ("A", "1"), ("B", "2")]), ["C=3", "A=1", "B=2"]);
        // A new item goes where the applied list has it.
        assert_eq!(merged_env(&abc, &[("D", "4"), ("A", "1"), ("B", "2"), ("C", "3")]), ["D=4", "A=1", "B=2", "C=3"]);
        // An item only live has (another manager's) comes out when the walk over live reaches
        // it, while shared items wait for their applied turn: X, between A and B, goes first.
        assert_eq!(
            merged_env(&[("A", "1"), ("X", "x"), ("B", "2"), ("C", "3")], &[("C", "3"), ("A", "1"), ("B", "2")]),
            ["X=x", "C=3", "A=1", "B=2"]
        );
        assert_eq!(merged_env(&[("A", "1"), ("X", "x"), ("B", "2")], &[("A", "1"), ("B", "2")]), ["A=1", "X=x", "B=2"]);
    }

    #[test]
    fn an_item_live_holds_twice_is_replaced_and_the_next_applied_item_follows_it() {
        assert_eq!(merged_env(&[("A", "1"), ("A", "2"), ("Y", "y")], &[("A", "3"), ("Z", "z")]), ["A=3", "Z=z", "Y=y"]);
        let (s, ty) = deployment();
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1", "tty": true}, {"name": "a", "image": "2"}]}}}});
        let cfg = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "3"}]}}}});
        let m = merge(s, ty, &live, &cfg).unwrap();
        assert_eq!(m["spec"]["template"]["spec"]["containers"], json!([{"name": "a", "image": "3"}]));
    }

    #[test]
    fn compare_marks_new_maps_as_added() {
        let (s, ty) = deployment();
        let c =
            compare(s, ty, &json!({"spec": {}}), &json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}}))
                .unwrap();
        assert!(c.added.has(&[PathElement::Field("spec".into()), PathElement::Field("strategy".into())]));
        assert!(!c.added.has(&[PathElement::Field("spec".into())]));
    }
}
