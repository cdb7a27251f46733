//! Non-apply PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
//! and strategic merge patch with the built-in schema's patch merge keys.

use crate::schema::{ListKind, Schema, TypeDef, TypeId};
use serde_json::{Map, Value};

pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String], path: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    }
    Ok(cur)
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => m.get(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: {path:?}"))?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| format!("invalid index {last:?}"))?
            };
            if i > a.len() {
                return Err(format!("add operation does not apply: index out of bounds: {path:?}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("add operation does not apply: doc is missing path: {path:?}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let toks = tokens(path)?;
    let (last, parents) = toks.split_last().ok_or("cannot remove the root")?;
    let missing = || format!("remove operation does not apply: doc is missing path: {path:?}");
    match parent_mut(doc, parents, path).map_err(|_| missing())? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing())?;
            if i < a.len() { Ok(a.remove(i)) } else { Err(missing()) }
        }
        _ => Err(missing()),
    }
}

/// Whether the object `path` would be a member of exists.
fn parent_is_object(doc: &Value, path: &str) -> bool {
    match path.rfind('/') {
        Some(0) => doc.is_object(),
        Some(i) => get(doc, &path[..i]).is_ok_and(Value::is_object),
        None => false,
    }
}

pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let ops = patch.as_array().ok_or("json patch must be an array of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("operation is missing path")?;
        match op["op"].as_str() {
            Some("add") => add(&mut doc, path, op.get("value").cloned().ok_or("add operation is missing value")?)?,
            Some("remove") => {
                remove(&mut doc, path)?;
            }
            Some("replace") => {
                remove(&mut doc, path)
                    .map_err(|_| format!("replace operation does not apply: doc is missing key: {path}"))?;
                add(&mut doc, path, op.get("value").cloned().ok_or("replace operation is missing value")?)?;
            }
            Some("move") => {
                let from = op["from"].as_str().ok_or("move operation is missing from")?;
                let v = remove(&mut doc, from)?;
                add(&mut doc, path, v)?;
            }
            Some("copy") => {
                let from = op["from"].as_str().ok_or("copy operation is missing from")?;
                let v = get(&doc, from)?.clone();
                add(&mut doc, path, v)?;
            }
            Some("test") => {
                // As evanphx/json-patch (which the apiserver uses): a key missing from an
                // existing object reads as null, so `test` with null passes there. kube's
                // finalizer helper relies on it to add the first finalizer.
                let value = match get(&doc, path) {
                    Ok(value) => value.clone(),
                    Err(_) if parent_is_object(&doc, path) => Value::Null,
                    Err(err) => return Err(err),
                };
                if value != op["value"] {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {}", other.unwrap_or_default())),
        }
    }
    Ok(doc)
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Strategic merge patch: maps merge, lists with a patch merge key merge by
/// that key, `finalizers`-style sets union, other lists are replaced.
/// Supports `$patch: replace|delete|merge`, `$retainKeys`,
/// `$deleteFromPrimitiveList/` and `$setElementOrder/`.
pub fn strategic_merge_patch(s: &Schema, ty: TypeId, target: &Value, patch: &Value) -> Result<Value, String> {
    let empty = Map::new();
    let orig = target.as_object().unwrap_or(&empty);
    let p = patch.as_object().ok_or("strategic merge patch must be an object")?;
    Ok(smp_map(s, ty, orig, p)?.map(Value::Object).unwrap_or(Value::Object(Map::new())))
}

fn smp_map(
    s: &Schema,
    ty: TypeId,
    orig: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get(DIRECTIVE).and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut out = patch.clone();
            out.remove(DIRECTIVE);
            return Ok(Some(out));
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other} in map: {patch:?}")),
    }
    let mut out = orig.clone();
    for (k, pv) in patch {
        if k == DIRECTIVE || k == RETAIN_KEYS || k.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE) {
            if let (Some(Value::Array(items)), Some(del)) = (out.get_mut(field), pv.as_array()) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let cty = s.member(ty, k).map_or(crate::schema::ATOMIC, |m| m.0);
        let merged = match (out.get(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) if is_mergeable_map(s, cty) => {
                smp_map(s, cty, o, p)?.map(Value::Object)
            }
            (_, Value::Object(p)) if is_mergeable_map(s, cty) => smp_map(s, cty, &Map::new(), p)?.map(Value::Object),
            (Some(Value::Array(o)), Value::Array(p)) => Some(Value::Array(smp_list(s, cty, o, p)?)),
            (None, Value::Array(p)) => Some(Value::Array(smp_list(s, cty, &[], p)?)),
            _ => Some(pv.clone()),
        };
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.remove(k);
            }
        }
    }
    for (k, order) in patch {
        if let (Some(field), Some(order)) = (k.strip_prefix(SET_ORDER), order.as_array())
            && let Some(Value::Array(items)) = out.get_mut(field)
        {
            let cty = s.member(ty, field).map_or(crate::schema::ATOMIC, |m| m.0);
            reorder(s, cty, items, order);
        }
    }
    if let Some(Value::Array(keep)) = patch.get(RETAIN_KEYS) {
        out.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    Ok(Some(out))
}

fn is_mergeable_map(s: &Schema, ty: TypeId) -> bool {
    matches!(s.get(ty), TypeDef::Struct(_) | TypeDef::Map { .. } | TypeDef::Deduced)
}

fn merge_key(s: &Schema, ty: TypeId) -> Option<(TypeId, Option<String>)> {
    match s.get(ty) {
        TypeDef::List { elem, kind: ListKind::Map(_), smp_key } => Some((*elem, smp_key.clone())),
        TypeDef::List { elem, kind: ListKind::Set, .. } => Some((*elem, None)),
        _ => None,
    }
}

fn smp_list(s: &Schema, ty: TypeId, orig: &[Value], patch: &[Value]) -> Result<Vec<Value>, String> {
    if patch.iter().any(|p| p.get(DIRECTIVE).and_then(Value::as_str) == Some("replace")) {
        return Ok(patch.iter().filter(|p| p.get(DIRECTIVE).is_none()).cloned().collect());
    }
    let Some((elem, key)) = merge_key(s, ty) else {
        return Ok(patch.to_vec());
    };
    let mut out = orig.to_vec();
    match key {
        Some(key) => {
            for p in patch {
                let pm = p.as_object().ok_or("list items with a merge key must be objects")?;
                let kv =
                    pm.get(&key).ok_or_else(|| format!("map: {pm:?} does not contain declared merge key: {key}"))?;
                let pos = out.iter().position(|o| o.get(&key) == Some(kv));
                if pm.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    out.retain(|o| o.get(&key) != Some(kv));
                    continue;
                }
                match pos {
                    Some(i) => {
                        let o = out[i].as_object().cloned().unwrap_or_default();
                        match smp_map(s, elem, &o, pm)? {
                            Some(m) => out[i] = Value::Object(m),
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    None => {
                        let mut fresh = pm.clone();
                        fresh.remove(DIRECTIVE);
                        out.push(Value::Object(fresh));
                    }
                }
            }
        }
        None => {
            for p in patch {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
    }
    Ok(out)
}

/// `$setElementOrder`: items named in `order` come first in that order.
fn reorder(s: &Schema, ty: TypeId, items: &mut Vec<Value>, order: &[Value]) {
    let key = merge_key(s, ty).and_then(|(_, k)| k);
    let id = |v: &Value| -> Value {
        match &key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut sorted: Vec<Value> = Vec::with_capacity(items.len());
    for o in order {
        let want = id(o);
        if let Some(i) = items.iter().position(|x| id(x) == want) {
            sorted.push(items.remove(i));
        }
    }
    sorted.append(items);
    *items = sorted;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_of_a_missing_member_is_null() {
        let doc = json!({"metadata": {"name": "x"}});
        let add_first = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]);
        assert_eq!(json_patch(&doc, &add_first).unwrap()["metadata"]["finalizers"], json!(["f"]));
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/metadata/finalizers", "value": []}])).is_err());
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/spec/x", "value": null}])).is_err(), "no parent");
    }

    #[test]
    fn json_patch_ops() {
        let doc = json!({"a": {"b": [1, 2]}});
        let out = json_patch(
            &doc,
            &json!([{"op": "add", "path": "/a/b/-", "value": 3}, {"op": "replace", "path": "/a/c", "value": 1}]),
        );
        assert!(out.is_err());
        let out =
            json_patch(&doc, &json!([{"op": "add", "path": "/a/b/-", "value": 3}, {"op": "remove", "path": "/a/b/0"}]))
                .unwrap();
        assert_eq!(out, json!({"a": {"b": [2, 3]}}));
    }

    #[test]
    fn smp_merges_containers_by_name() {
        let s = Schema::builtin();
        let ty = s.named("io.k8s.api.apps.v1.Deployment").unwrap();
        let live = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}, {"name": "a", "$patch": "delete"}]}}}});
        let out = strategic_merge_patch(s, ty, &live, &patch).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "b", "image": "3"}]));
    }
}
