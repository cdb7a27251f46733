//! What decoding into Go types (built-ins) or structural pruning (CRDs) does
//! to an incoming object: unknown fields dropped, nulls dropped, quantities
//! canonical, empty `omitempty` maps and slices omitted, non-pointer structs
//! present as `{}`, CRD schema defaults applied.

use crate::quantity;
use crate::schema::{Scalar, Schema, TypeDef, TypeId, Zero};
use serde_json::{Map, Value};

pub struct Normalizer<'a> {
    pub schema: &'a Schema,
    /// Built-in kinds (Go types) rather than a CRD schema.
    pub builtin: bool,
    /// Pruned unknown fields: the decoder's dotted path (`spec.containers[0].x`,
    /// for warnings and strict errors) and structured-merge-diff's path
    /// (`.spec.containers[name="c"].x`, for apply errors).
    pub unknown: Vec<(String, String)>,
    /// Full decode semantics; otherwise only prune unknown fields and
    /// canonicalize quantities (for apply configurations, whose shape decides ownership).
    decode: bool,
}

impl<'a> Normalizer<'a> {
    pub fn new(schema: &'a Schema, builtin: bool) -> Normalizer<'a> {
        Normalizer { schema, builtin, unknown: Vec::new(), decode: true }
    }

    pub fn run(&mut self, ty: TypeId, v: &mut Value) {
        self.decode = true;
        self.walk(ty, v, "", "");
    }

    pub fn prune(&mut self, ty: TypeId, v: &mut Value) {
        self.decode = false;
        self.walk(ty, v, "", "");
    }

    fn walk(&mut self, ty: TypeId, v: &mut Value, path: &str, smd: &str) {
        let s = self.schema;
        match s.get(ty) {
            TypeDef::Scalar(Scalar::Quantity) => {
                let text = match v {
                    Value::String(t) => Some(t.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                if let Some(c) = text.and_then(|t| quantity::canonicalize(&t)) {
                    *v = Value::String(c);
                }
            }
            TypeDef::Struct(st) => {
                let Value::Object(m) = v else { return };
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    let child_path = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let child_smd = format!("{smd}.{k}");
                    let (cty, field) = match st.fields.get(&k) {
                        Some(f) => (f.ty, Some(f)),
                        None => match st.extra {
                            Some(t) => (t, None),
                            None => {
                                m.remove(&k);
                                self.unknown.push((child_path, child_smd));
                                continue;
                            }
                        },
                    };
                    let child = m.get_mut(&k).expect("key present");
                    if child.is_null() {
                        // A built-in kind's decoding drops it; a custom resource keeps it for
                        // the schema check, which refuses it unless `nullable` (as 1.32 does).
                        if self.decode && self.builtin && !field.is_some_and(|f| f.nullable) {
                            m.remove(&k);
                        }
                        continue;
                    }
                    self.walk(cty, child, &child_path, &child_smd);
                    if self.decode && self.builtin && omitted_when_empty(s, cty, child) {
                        m.remove(&k);
                    }
                }
                if !self.decode {
                    return;
                }
                for (name, f) in &st.fields {
                    if m.contains_key(name) {
                        continue;
                    }
                    if self.builtin && f.zero == Some(Zero::Object) {
                        let mut z = Value::Object(Map::new());
                        self.walk(f.ty, &mut z, path, smd);
                        m.insert(name.clone(), z);
                    } else if !self.builtin
                        && let Some(d) = &f.default
                    {
                        let mut d = d.clone();
                        self.walk(f.ty, &mut d, path, smd);
                        m.insert(name.clone(), d);
                    }
                }
            }
            TypeDef::Map { elem, .. } => {
                let elem = *elem;
                if let Value::Object(m) = v {
                    for (k, child) in m.iter_mut() {
                        self.walk(elem, child, &format!("{path}.{k}"), &format!("{smd}.{k}"));
                    }
                }
            }
            TypeDef::List { elem, kind, .. } => {
                let elem = *elem;
                if let Value::Array(items) = v {
                    for (i, item) in items.iter_mut().enumerate() {
                        let pe = crate::smd::list_item_pe(s, elem, kind, i, item)
                            .unwrap_or(crate::fieldpath::PathElement::Index(i));
                        self.walk(elem, item, &format!("{path}[{i}]"), &format!("{smd}{pe}"));
                    }
                }
            }
            TypeDef::Deduced | TypeDef::Atomic | TypeDef::Scalar(_) => {}
        }
    }
}

/// Go `omitempty` on maps and slices.
fn omitted_when_empty(s: &Schema, ty: TypeId, v: &Value) -> bool {
    match s.get(ty) {
        TypeDef::Map { .. } => v.as_object().is_some_and(Map::is_empty),
        TypeDef::List { .. } => v.as_array().is_some_and(Vec::is_empty),
        _ => false,
    }
}

/// The Go zero value of a type as the apiserver serializes it (the "live"
/// object the field manager compares a create against).
pub fn zero_object(s: &Schema, ty: TypeId) -> Value {
    let mut m = Map::new();
    if let TypeDef::Struct(st) = s.get(ty) {
        for (name, f) in &st.fields {
            match f.zero {
                Some(Zero::Object) => {
                    m.insert(name.clone(), zero_object(s, f.ty));
                }
                Some(Zero::Null) => {
                    m.insert(name.clone(), Value::Null);
                }
                None => {}
            }
        }
    }
    Value::Object(m)
}

/// Serialization order: `kind`, `apiVersion` and `metadata` in Go struct
/// order first, everything else sorted (what unstructured JSON does).
pub fn order_keys(v: &mut Value) {
    fn sort_rec(v: &mut Value) {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, mut child) in entries {
                    sort_rec(&mut child);
                    m.insert(k, child);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(sort_rec),
            _ => {}
        }
    }
    const META_ORDER: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    sort_rec(v);
    let Value::Object(m) = v else { return };
    let mut out = Map::new();
    for k in ["kind", "apiVersion"] {
        if let Some(x) = m.remove(k) {
            out.insert(k.into(), x);
        }
    }
    if let Some(Value::Object(mut meta)) = m.remove("metadata") {
        let mut ordered = Map::new();
        for k in META_ORDER {
            if let Some(x) = meta.remove(*k) {
                ordered.insert((*k).into(), x);
            }
        }
        ordered.extend(meta);
        out.insert("metadata".into(), Value::Object(ordered));
    }
    out.extend(std::mem::take(m));
    *m = out;
}
