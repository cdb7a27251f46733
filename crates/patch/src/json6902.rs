//! RFC 6902 JSON patches, applied with the `json-patch` crate. This module adds
//! operation checks, kubectl's leniencies, and failure messages that say which
//! operation failed and why.

use json_patch::jsonptr::index::Index;
use json_patch::jsonptr::{Pointer, PointerBuf, Token};
use json_patch::{AddOperation, PatchErrorKind, PatchOperation, RemoveOperation};
use serde_json::Value;

use super::{PatchError, display_pointer, push_token, type_name};

const OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// Applies the operations in `ops` (a list) to `target`, all or nothing.
///
/// # Errors
/// When an operation is malformed or fails; `target` is then left unchanged.
pub fn apply(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(list) = ops else {
        return Err(PatchError::OperationsNotAList { found: type_name(ops) });
    };
    let ops = list.iter().enumerate().map(|(index, op)| parse(index, op)).collect::<Result<Vec<_>, _>>()?;
    let mut doc = target.clone();
    for (index, op) in ops.into_iter().enumerate() {
        // Errors quote the operation as written, not as rewritten.
        let (name, path) = (op_name(&op), display_pointer(op.path().as_str()));
        let Some(op) = as_kubectl_does(&doc, op) else {
            continue;
        };
        // One operation at a time: on failure `doc` is what the operation saw.
        if let Err(err) = json_patch::patch(&mut doc, std::slice::from_ref(&op)) {
            return Err(PatchError::OperationFailed { index, op: name, path, reason: explain(&doc, &op, &err.kind) });
        }
    }
    *target = doc;
    Ok(())
}

/// kubectl and kustomize apply JSON patches with evanphx/json-patch, which is
/// laxer than RFC 6902, and patches written for them rely on that. This turns
/// `op` into the strict operation with the same effect on `doc`, or `None` for
/// a no-op:
/// - list indices may be negative (counting from the end) or carry a sign or
///   leading zeros;
/// - `replace` of a key missing from an existing object adds it;
/// - `test` of a key missing from an existing object passes against `null`.
fn as_kubectl_does(doc: &Value, op: PatchOperation) -> Option<PatchOperation> {
    Some(match op {
        PatchOperation::Add(mut add) => {
            add.path = resolve_indices(doc, &add.path, true);
            PatchOperation::Add(add)
        }
        PatchOperation::Remove(mut remove) => {
            remove.path = resolve_indices(doc, &remove.path, false);
            PatchOperation::Remove(remove)
        }
        PatchOperation::Replace(mut replace) => {
            replace.path = resolve_indices(doc, &replace.path, false);
            if missing_key(doc, &replace.path) {
                PatchOperation::Add(AddOperation { path: replace.path, value: replace.value })
            } else {
                PatchOperation::Replace(replace)
            }
        }
        PatchOperation::Test(mut test) => {
            test.path = resolve_indices(doc, &test.path, false);
            if test.value.is_null() && missing_key(doc, &test.path) {
                return None;
            }
            PatchOperation::Test(test)
        }
        PatchOperation::Copy(mut copy) => {
            copy.from = resolve_indices(doc, &copy.from, false);
            copy.path = resolve_indices(doc, &copy.path, true);
            PatchOperation::Copy(copy)
        }
        PatchOperation::Move(mut mv) => {
            mv.from = resolve_indices(doc, &mv.from, false);
            // The destination is found once the value has left its source.
            let mut moved = doc.clone();
            let remove = PatchOperation::Remove(RemoveOperation { path: mv.from.clone() });
            let _ = json_patch::patch(&mut moved, &[remove]);
            mv.path = resolve_indices(&moved, &mv.path, true);
            PatchOperation::Move(mv)
        }
    })
}

/// Rewrites list indices in `pointer` the way Go's `strconv.Atoi` reads them,
/// with negative ones counting back from the end. `for_add` makes the last
/// index count from one past the end, where `add` may insert.
fn resolve_indices(doc: &Value, pointer: &Pointer, for_add: bool) -> PointerBuf {
    let tokens: Vec<Token> = pointer.tokens().collect();
    let mut current = Some(doc);
    let mut resolved = PointerBuf::new();
    for (i, token) in tokens.iter().enumerate() {
        let mut token = token.clone();
        current = match current {
            Some(Value::Array(list)) => {
                let len = list.len() + usize::from(for_add && i + 1 == tokens.len());
                let index = token.decoded().parse::<i64>().ok().and_then(|n| {
                    if n >= 0 {
                        usize::try_from(n).ok()
                    } else {
                        len.checked_sub(usize::try_from(n.unsigned_abs()).ok()?)
                    }
                });
                if let Some(index) = index {
                    token = Token::new(index.to_string());
                }
                index.and_then(|index| list.get(index))
            }
            Some(Value::Object(map)) => map.get(token.decoded().as_ref()),
            _ => None,
        };
        resolved.push_back(token);
    }
    resolved
}

/// Whether `pointer` names a key that its existing parent object lacks.
fn missing_key(doc: &Value, pointer: &Pointer) -> bool {
    let Some((parent, key)) = pointer.split_back() else {
        return false;
    };
    matches!(doc.pointer(parent.as_str()), Some(Value::Object(map)) if !map.contains_key(key.decoded().as_ref()))
}

/// Checks one operation by hand first: serde's own messages can quote values.
fn parse(index: usize, op: &Value) -> Result<PatchOperation, PatchError> {
    let invalid = |reason: String| PatchError::InvalidOperation { index, reason };
    let Value::Object(map) = op else {
        return Err(invalid(format!("expected an object, found {}", type_name(op))));
    };
    let name = match map.get("op") {
        None => return Err(invalid("it has no `op`".to_owned())),
        Some(Value::String(name)) if OPS.contains(&name.as_str()) => name.as_str(),
        Some(_) => return Err(invalid(format!("`op` must be one of {}", OPS.join(", ")))),
    };
    let pointers: &[&str] = if matches!(name, "move" | "copy") { &["from", "path"] } else { &["path"] };
    for &field in pointers {
        match map.get(field) {
            None => return Err(invalid(format!("`{name}` needs a `{field}`"))),
            Some(Value::String(pointer)) => {
                if Pointer::parse(pointer).is_err() {
                    return Err(invalid(format!(
                        "`{field}` {pointer:?} is not a JSON pointer: it must be empty or start \
                         with '/', and '~' must be followed by 0 or 1"
                    )));
                }
            }
            Some(other) => {
                return Err(invalid(format!("`{field}` must be a string, not {}", type_name(other))));
            }
        }
    }
    if matches!(name, "add" | "replace" | "test") && !map.contains_key("value") {
        return Err(invalid(format!("`{name}` needs a `value`")));
    }
    serde_json::from_value(op.clone()).map_err(|_| invalid("it is not a valid operation".to_owned()))
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// Why `op` failed on `doc`, in words, naming paths but never values.
fn explain(doc: &Value, op: &PatchOperation, kind: &PatchErrorKind) -> String {
    let path = op.path();
    match (kind, op) {
        (PatchErrorKind::TestFailed, _) => {
            format!("the value at {} is not the expected one", display_pointer(path.as_str()))
        }
        (PatchErrorKind::CannotMoveInsideItself, PatchOperation::Move(m)) => {
            format!("cannot move {} into itself", display_pointer(m.from.as_str()))
        }
        (PatchErrorKind::InvalidFromPointer, PatchOperation::Move(m)) => {
            format!("`from`: {}", unresolved(doc, &m.from, false))
        }
        (PatchErrorKind::InvalidFromPointer, PatchOperation::Copy(c)) => {
            format!("`from`: {}", unresolved(doc, &c.from, false))
        }
        (PatchErrorKind::InvalidPointer, PatchOperation::Remove(_)) if path.is_root() => {
            "the whole document cannot be removed".to_owned()
        }
        (
            PatchErrorKind::InvalidPointer,
            PatchOperation::Add(_) | PatchOperation::Move(_) | PatchOperation::Copy(_),
        ) => unresolved(doc, path, true),
        (PatchErrorKind::InvalidPointer, _) => unresolved(doc, path, false),
        (kind, _) => kind.to_string(),
    }
}

/// Why `pointer` does not resolve in `doc`. With `for_add` the last token may
/// name a new key or the end of a list, as `add` allows.
fn unresolved(doc: &Value, pointer: &Pointer, for_add: bool) -> String {
    let mut current = doc;
    let mut at = String::new();
    let tokens: Vec<_> = pointer.tokens().collect();
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let name = token.decoded();
        let here = display_pointer(&at);
        let mut child = at.clone();
        push_token(&mut child, &name);
        match current {
            Value::Object(map) => match map.get(name.as_ref()) {
                Some(next) => current = next,
                None if last && for_add => break,
                None => return format!("{child} does not exist"),
            },
            Value::Array(list) => match token.to_index() {
                Err(_) if name.parse::<i64>().is_ok() => {
                    return format!("index {name} is out of range: {here} has {} elements", list.len());
                }
                Err(_) => return format!("{here} is a list, and {name:?} is not a list index"),
                Ok(Index::Num(n)) if n < list.len() => current = &list[n],
                Ok(Index::Num(n)) if n == list.len() && last && for_add => break,
                Ok(Index::Next) if last && for_add => break,
                Ok(Index::Next) => {
                    return format!("`-` (the end of {here}) can only be used to add");
                }
                Ok(Index::Num(n)) => {
                    return format!("index {n} is out of range: {here} has {} elements", list.len());
                }
            },
            scalar => return format!("{here} is {}, not an object or a list", type_name(scalar)),
        }
        at = child;
    }
    "the path is invalid".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "containers": [{"name": "a", "image": "a:1"}]},
            "data": {"password": "hunter2"}
        })
    }

    fn apply_ok(ops: Value) -> Value {
        let mut target = doc();
        apply(&mut target, &ops).unwrap();
        target
    }

    fn apply_err(ops: Value) -> String {
        let mut target = doc();
        let err = apply(&mut target, &ops).unwrap_err().to_string();
        assert_eq!(target, doc(), "a failed patch must leave the document alone");
        assert!(!err.contains("hunter2"), "{err}");
        err
    }

    #[test]
    fn all_operations() {
        let out = apply_ok(json!([
            {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "remove", "path": "/metadata/labels/app"},
            {"op": "copy", "from": "/metadata/name", "path": "/spec/containers/1/image"},
            {"op": "move", "from": "/spec/containers/0", "path": "/spec/containers/-"},
            {"op": "test", "path": "/spec/replicas", "value": 3}
        ]));
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "web"}, {"name": "a", "image": "a:1"}]));
    }

    #[test]
    fn kubectl_leniencies() {
        let out = apply_ok(json!([
            {"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}},
            {"op": "test", "path": "/metadata/absent", "value": null},
            {"op": "add", "path": "/spec/containers/-1", "value": {"name": "last"}},
            {"op": "replace", "path": "/spec/containers/-2/image", "value": "a:2"},
            {"op": "copy", "from": "/spec/containers/00/image", "path": "/spec/containers/+1/image"},
            {"op": "move", "from": "/spec/containers/-1", "path": "/spec/containers/0"}
        ]));
        assert_eq!(out["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "last", "image": "a:2"}, {"name": "a", "image": "a:2"}]));
        assert!(
            apply_err(json!([{"op": "remove", "path": "/spec/containers/-2"}]))
                .ends_with("index -2 is out of range: /spec/containers has 1 elements")
        );
        assert!(
            apply_err(json!([{"op": "test", "path": "/spec/absent/x", "value": null}]))
                .ends_with("/spec/absent does not exist")
        );
    }

    #[test]
    fn missing_paths_are_named() {
        assert_eq!(
            apply_err(json!([
                {"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "remove", "path": "/spec/strategy/type"}
            ])),
            "JSON patch operation 1 (`remove` at /spec/strategy/type) failed: /spec/strategy does not exist"
        );
        assert_eq!(
            apply_err(json!([{"op": "add", "path": "/spec/template/spec", "value": {}}])),
            "JSON patch operation 0 (`add` at /spec/template/spec) failed: /spec/template does not exist"
        );
        assert_eq!(
            apply_err(json!([{"op": "move", "from": "/data/token", "path": "/data/x"}])),
            "JSON patch operation 0 (`move` at /data/x) failed: `from`: /data/token does not exist"
        );
    }

    #[test]
    fn list_indices_and_scalars_are_explained() {
        assert_eq!(
            apply_err(json!([{"op": "replace", "path": "/spec/containers/3/image", "value": "x"}])),
            "JSON patch operation 0 (`replace` at /spec/containers/3/image) failed: \
             index 3 is out of range: /spec/containers has 1 elements"
        );
        assert!(
            apply_err(json!([{"op": "remove", "path": "/spec/containers/first"}]))
                .ends_with("/spec/containers is a list, and \"first\" is not a list index")
        );
        assert!(
            apply_err(json!([{"op": "add", "path": "/data/password/x", "value": 1}]))
                .ends_with("/data/password is a string, not an object or a list")
        );
        assert!(apply_err(json!([{"op": "remove", "path": ""}])).ends_with("the whole document cannot be removed"));
    }

    #[test]
    fn test_failures_do_not_show_values() {
        assert_eq!(
            apply_err(json!([{"op": "test", "path": "/data/password", "value": "guess"}])),
            "JSON patch operation 0 (`test` at /data/password) failed: the value at /data/password is not the expected one"
        );
        assert!(
            apply_err(json!([{"op": "move", "from": "/spec", "path": "/spec/x"}]))
                .ends_with("cannot move /spec into itself")
        );
    }

    #[test]
    fn malformed_operations() {
        assert_eq!(apply_err(json!({"op": "add"})), "JSON patch must be a list of operations, not an object");
        assert_eq!(
            apply_err(json!([{"op": "upsert", "path": "/a", "value": "hunter2"}])),
            "JSON patch operation 0 is invalid: `op` must be one of add, remove, replace, move, copy, test"
        );
        assert!(apply_err(json!([{"op": "add", "path": "/a"}])).ends_with("`add` needs a `value`"));
        assert!(apply_err(json!([{"op": "copy", "path": "/a"}])).ends_with("`copy` needs a `from`"));
        assert!(apply_err(json!([{"op": "remove", "path": "spec"}])).contains("`path` \"spec\" is not a JSON pointer"));
        assert!(apply_err(json!(["hunter2"])).ends_with("expected an object, found a string"));
    }
}
