//! Structured-merge-diff schemas: the built-in kinds (generated into
//! `builtin_schema.json` by `tools/gen_schema.py`) and CRD versions (built from
//! their `openAPIV3Schema` the way apiextensions-apiserver does).

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

pub type TypeId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    String,
    Number,
    Boolean,
    /// `resource.Quantity`: canonicalized on write.
    Quantity,
    /// Time, IntOrString and other scalars of any JSON type.
    Untyped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zero {
    /// A non-pointer Go struct: serialized as `{}` when empty.
    Object,
    /// A non-omitempty Go slice: `null` in a zero-valued object.
    Null,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub ty: TypeId,
    /// Schema default; used for missing associative-list keys and, for CRDs, defaulting.
    pub default: Option<Value>,
    pub zero: Option<Zero>,
    /// CRD `nullable: true`: explicit nulls survive pruning.
    pub nullable: bool,
}

#[derive(Clone, Debug)]
pub struct Struct {
    pub fields: BTreeMap<String, Field>,
    /// `x-kubernetes-map-type: atomic` / `+structType=atomic`.
    pub atomic: bool,
    /// Type of undeclared fields (`x-kubernetes-preserve-unknown-fields`,
    /// `additionalProperties` next to `properties`); `None` prunes them.
    pub extra: Option<TypeId>,
}

#[derive(Clone, Debug)]
pub enum TypeDef {
    Scalar(Scalar),
    Struct(Struct),
    List {
        elem: TypeId,
        kind: ListKind,
        smp_key: Option<String>,
    },
    Map {
        elem: TypeId,
        atomic: bool,
    },
    /// `__untyped_deduced_`: maps are granular, lists atomic.
    Deduced,
    /// `__untyped_atomic_`: owned as a whole.
    Atomic,
}

pub const STRING: TypeId = 0;
pub const NUMBER: TypeId = 1;
pub const BOOLEAN: TypeId = 2;
pub const QUANTITY: TypeId = 3;
pub const UNTYPED: TypeId = 4;
pub const DEDUCED: TypeId = 5;
pub const ATOMIC: TypeId = 6;

#[derive(Clone, Debug)]
pub struct Schema {
    types: Vec<TypeDef>,
    names: HashMap<String, TypeId>,
}

impl Schema {
    fn base() -> Schema {
        Schema {
            types: vec![
                TypeDef::Scalar(Scalar::String),
                TypeDef::Scalar(Scalar::Number),
                TypeDef::Scalar(Scalar::Boolean),
                TypeDef::Scalar(Scalar::Quantity),
                TypeDef::Scalar(Scalar::Untyped),
                TypeDef::Deduced,
                TypeDef::Atomic,
            ],
            names: HashMap::new(),
        }
    }

    pub fn builtin() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let doc: Value = serde_json::from_str(include_str!("builtin_schema.json")).expect("builtin schema is JSON");
            let types = doc["types"].as_object().expect("types map");
            let mut s = Schema::base();
            for name in types.keys() {
                let id = s.push(TypeDef::Atomic);
                s.names.insert(name.clone(), id);
            }
            for (name, def) in types {
                let mut fields = BTreeMap::new();
                for (fname, f) in def["fields"].as_object().expect("fields") {
                    let ty = s.builtin_type(&f["t"]);
                    let zero = match f.get("z").and_then(Value::as_str) {
                        Some("{}") => Some(Zero::Object),
                        Some("null") => Some(Zero::Null),
                        _ => None,
                    };
                    fields.insert(fname.clone(), Field { ty, default: f.get("d").cloned(), zero, nullable: false });
                }
                let id = s.names[name];
                s.types[id] =
                    TypeDef::Struct(Struct { fields, atomic: def["atomic"].as_bool().unwrap_or(false), extra: None });
            }
            s
        })
    }

    fn builtin_type(&mut self, t: &Value) -> TypeId {
        match t {
            Value::String(s) => match s.as_str() {
                "string" => STRING,
                "number" => NUMBER,
                "boolean" => BOOLEAN,
                "quantity" => QUANTITY,
                "untyped" => UNTYPED,
                "deduced" => DEDUCED,
                _ => ATOMIC,
            },
            Value::Object(o) => {
                if let Some(r) = o.get("ref").and_then(Value::as_str) {
                    return self.names[r];
                }
                if let Some(elem) = o.get("list") {
                    let elem = self.builtin_type(elem);
                    let kind = list_kind(o.get("type").and_then(Value::as_str), o.get("keys"));
                    let smp_key = o.get("smp_key").and_then(Value::as_str).map(String::from);
                    return self.push(TypeDef::List { elem, kind, smp_key });
                }
                let elem = self.builtin_type(&o["map"]);
                let atomic = o["atomic"].as_bool().unwrap_or(false);
                self.push(TypeDef::Map { elem, atomic })
            }
            _ => ATOMIC,
        }
    }

    fn push(&mut self, t: TypeDef) -> TypeId {
        self.types.push(t);
        self.types.len() - 1
    }

    pub fn get(&self, id: TypeId) -> &TypeDef {
        &self.types[id]
    }

    pub fn named(&self, name: &str) -> Option<TypeId> {
        self.names.get(name).copied()
    }

    pub fn as_struct(&self, id: TypeId) -> Option<&Struct> {
        match &self.types[id] {
            TypeDef::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// Type of member `key` of an object-valued node, and whether it is a
    /// declared struct field. `None`: the field is unknown and gets pruned.
    pub fn member(&self, id: TypeId, key: &str) -> Option<(TypeId, bool)> {
        match &self.types[id] {
            TypeDef::Struct(s) => match s.fields.get(key) {
                Some(f) => Some((f.ty, true)),
                None => s.extra.map(|t| (t, false)),
            },
            TypeDef::Map { elem, .. } => Some((*elem, false)),
            TypeDef::Deduced => Some((DEDUCED, false)),
            _ => Some((ATOMIC, false)),
        }
    }

    /// Whether a node is owned and replaced as a whole.
    pub fn is_leaf(&self, id: TypeId, v: &Value) -> bool {
        match &self.types[id] {
            TypeDef::Scalar(_) | TypeDef::Atomic => true,
            TypeDef::Struct(s) => s.atomic || !(v.is_object() || v.is_null()),
            TypeDef::Map { atomic, .. } => *atomic || !(v.is_object() || v.is_null()),
            TypeDef::List { kind, .. } => *kind == ListKind::Atomic || !(v.is_array() || v.is_null()),
            TypeDef::Deduced => !v.is_object(),
        }
    }

    /// A CRD version's schema: the built-ins (for ObjectMeta) plus the
    /// converted `openAPIV3Schema`. Returns the schema and the root type.
    pub fn for_crd(openapi: Option<&Value>) -> (Schema, TypeId) {
        let mut s = Schema::builtin().clone();
        let meta = s.names["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        let root = match openapi {
            Some(props) => s.crd_type(props),
            None => s.push(TypeDef::Struct(Struct { fields: BTreeMap::new(), atomic: false, extra: Some(DEDUCED) })),
        };
        if let TypeDef::Struct(st) = &mut s.types[root] {
            for f in ["apiVersion", "kind"] {
                st.fields.insert(f.into(), Field { ty: STRING, default: None, zero: None, nullable: false });
            }
            st.fields.insert(
                "metadata".into(),
                Field { ty: meta, default: None, zero: Some(Zero::Object), nullable: false },
            );
        }
        (s, root)
    }

    /// An embedded resource (`x-kubernetes-embedded-resource`): apiVersion, kind and metadata
    /// (ObjectMeta, so its unknown fields are pruned) besides what its schema declares.
    fn embedded(&mut self, id: TypeId) -> TypeId {
        let meta = self.names["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        let mut st = match &self.types[id] {
            TypeDef::Struct(st) => st.clone(),
            _ => Struct { fields: BTreeMap::new(), atomic: false, extra: Some(DEDUCED) },
        };
        for f in ["apiVersion", "kind"] {
            st.fields.insert(f.into(), Field { ty: STRING, default: None, zero: None, nullable: false });
        }
        st.fields.insert("metadata".into(), Field { ty: meta, default: None, zero: None, nullable: false });
        self.push(TypeDef::Struct(st))
    }

    fn crd_type(&mut self, p: &Value) -> TypeId {
        if p["x-kubernetes-int-or-string"].as_bool() == Some(true) {
            return UNTYPED;
        }
        let preserve = p["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
        let atomic_map = p["x-kubernetes-map-type"].as_str() == Some("atomic");
        match p["type"].as_str() {
            Some("object") if p["x-kubernetes-embedded-resource"].as_bool() == Some(true) => {
                let mut inner = p.clone();
                inner.as_object_mut().expect("an object schema").remove("x-kubernetes-embedded-resource");
                let id = self.crd_type(&inner);
                self.embedded(id)
            }
            Some("object") => {
                let additional = p.get("additionalProperties").filter(|a| a.is_object());
                if let Some(props) = p["properties"].as_object() {
                    let extra = if preserve { Some(DEDUCED) } else { additional.map(|a| self.crd_type(a)) };
                    let id = self.push(TypeDef::Atomic);
                    let mut fields = BTreeMap::new();
                    for (name, fp) in props {
                        let ty = self.crd_type(fp);
                        fields.insert(
                            name.clone(),
                            Field {
                                ty,
                                default: fp.get("default").cloned(),
                                zero: None,
                                nullable: fp["nullable"].as_bool() == Some(true),
                            },
                        );
                    }
                    self.types[id] = TypeDef::Struct(Struct { fields, atomic: atomic_map, extra });
                    id
                } else if let Some(a) = additional {
                    let elem = self.crd_type(a);
                    self.push(TypeDef::Map { elem, atomic: atomic_map })
                } else if preserve {
                    DEDUCED
                } else {
                    self.push(TypeDef::Struct(Struct { fields: BTreeMap::new(), atomic: atomic_map, extra: None }))
                }
            }
            Some("array") => {
                let elem = match p.get("items") {
                    Some(i) if i.is_object() => self.crd_type(i),
                    _ => ATOMIC,
                };
                let kind = list_kind(p["x-kubernetes-list-type"].as_str(), p.get("x-kubernetes-list-map-keys"));
                self.push(TypeDef::List { elem, kind, smp_key: None })
            }
            Some("string") => STRING,
            Some("integer") | Some("number") => NUMBER,
            Some("boolean") => BOOLEAN,
            _ if preserve => DEDUCED,
            _ => ATOMIC,
        }
    }
}

/// A list's merge type from its schema: `set`, `map` with its key fields, else atomic.
fn list_kind(list_type: Option<&str>, keys: Option<&Value>) -> ListKind {
    match list_type {
        Some("set") => ListKind::Set,
        Some("map") => ListKind::Map(
            keys.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect(),
        ),
        _ => ListKind::Atomic,
    }
}
