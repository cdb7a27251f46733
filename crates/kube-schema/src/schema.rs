//! Schemas compiled for the walker: the built-in kinds from `builtins.json` (generated from
//! k8s-openapi's `JsonSchema` impls, see `tools/kube-builtins`), and custom resources from their CRD's
//! `openAPIV3Schema`. Both are JSON Schema (the built-in kinds' refer to shared definitions),
//! compiled into arenas of nodes, so walking an object costs a few map lookups a field: a CRD's
//! when it is learnt, each built-in definition when an object first reaches it.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, OnceLock};

use rustc_hash::FxHashMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::apimachinery::{self, StringMap};

pub type Id = usize;

/// The JSON type a schema asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// The formats the API server checks when decoding (others, such as `int64` or `uri`, it does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Int32,
    Byte,
    DateTime,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        match name {
            "int32" => Some(Format::Int32),
            "byte" => Some(Format::Byte),
            "date-time" => Some(Format::DateTime),
            _ => None,
        }
    }
}

/// What may appear besides the declared properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Nothing: an undeclared field is unknown (the API server's strict field validation).
    None,
    /// Anything (`x-kubernetes-preserve-unknown-fields`, `additionalProperties: true`).
    Any,
    /// Values of this schema (`additionalProperties: {…}`: a map).
    Schema(Id),
}

#[derive(Debug, Clone)]
pub struct Node {
    /// None: any type (a schema without `type`, such as a preserved or embedded object's).
    pub ty: Option<Type>,
    pub format: Option<Format>,
    /// `x-kubernetes-int-or-string`: an integer or a string.
    pub int_or_string: bool,
    /// `resource.Quantity`: a string (or number) that parses as a quantity.
    pub quantity: bool,
    /// `x-kubernetes-embedded-resource`: an object with apiVersion, kind and metadata.
    pub embedded: bool,
    pub properties: FxHashMap<String, Id>,
    pub extra: Extra,
    pub items: Option<Id>,
    pub required: Vec<String>,
    pub enumeration: Vec<Value>,
    /// A built-in field's enumeration (from `apimachinery::supported_values`): an empty
    /// string is the server's to default, not refused.
    pub empty_allowed: bool,
    /// A CRD's `default`: the server fills a missing field in before checking `required`.
    pub default: bool,
    /// A map whose keys (and values) the server checks as labels or annotations.
    pub string_map: Option<StringMap>,
    /// A CRD's typed field without `nullable: true`: the server refuses a null there (a
    /// built-in kind's decoding drops it).
    pub null_refused: bool,
    /// The built-in definition this node stands for, compiled when an object first reaches it.
    pub definition: Option<Deferred>,
}

/// A built-in definition a node stands for, and where it is kept once compiled: the walker
/// reaches one for every field of a definition's type, so finding it takes an atomic load, not
/// a lock and a lookup.
#[derive(Clone, Copy)]
pub struct Deferred {
    name: &'static str,
    slot: &'static OnceLock<Compiled>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deferred({})", self.name)
    }
}

impl Deferred {
    /// Definition `name`, compiled once a process (threads reaching it at once wait for one
    /// compilation) and shared by every thread checking objects.
    pub(crate) fn compiled(&self) -> &'static Compiled {
        self.slot.get_or_init(|| compile_definition(self.name))
    }
}

impl Node {
    fn any() -> Node {
        Node {
            ty: None,
            format: None,
            int_or_string: false,
            quantity: false,
            embedded: false,
            properties: FxHashMap::default(),
            extra: Extra::Any,
            items: None,
            required: Vec::new(),
            enumeration: Vec::new(),
            empty_allowed: false,
            default: false,
            string_map: None,
            null_refused: false,
            definition: None,
        }
    }
}

/// An arena of compiled schemas.
#[derive(Debug, Default)]
pub struct Schemas {
    nodes: Vec<Node>,
}

impl Schemas {
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// Compiles a CRD version's `openAPIV3Schema`; returns its id.
    pub fn compile_crd(&mut self, schema: &Value) -> Id {
        Compiler { schemas: self }.compile(schema)
    }
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// apiextensions' `JSON` (a CRD's `default`, `enum` values, `example`): any JSON value, though
/// k8s-openapi says `type: object`.
const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";

struct Compiler<'a> {
    schemas: &'a mut Schemas,
}

/// A built-in definition compiled: its schemas, those of the definitions it refers to deferred.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) schemas: Schemas,
    pub(crate) root: Id,
}

/// Definition `name` of `builtins.json`, compiled on its own.
fn compile_definition(name: &'static str) -> Compiled {
    let mut schemas = Schemas::default();
    let mut compiler = Compiler { schemas: &mut schemas };
    let definition = data().definitions.get(name).filter(|_| name != JSON);
    let node = match definition.map(serde_json::from_str::<BuiltinSchema>) {
        Some(Ok(def)) => {
            let mut node = compiler.builtin_node(&def);
            // k8s-openapi gives Quantity only int-or-string; its format is the type's.
            node.quantity = name == QUANTITY;
            compiler.go_validation(name, &def, &node);
            node
        }
        // `builtins.json` is checked against k8s-openapi by a test: it always parses.
        Some(Err(_)) | None => Node::any(),
    };
    let root = compiler.push(node);
    Compiled { schemas, root }
}

impl Compiler<'_> {
    fn compile(&mut self, schema: &Value) -> Id {
        // A CRD's schema names no definitions it holds: a `$ref` says nothing checkable (one
        // that is no string is none, and the schema's other keywords stand).
        if schema.get("$ref").is_some_and(Value::is_string) {
            return self.push(Node::any());
        }
        let node = self.node(schema);
        self.push(node)
    }

    fn compile_builtin(&mut self, schema: &BuiltinSchema<'static>) -> Id {
        if let Some(name) = schema.reference {
            let name = name.rsplit('/').next().unwrap_or(name);
            return self.push(Node { definition: Some(Builtins::deferred(name)), ..Node::any() });
        }
        let node = self.builtin_node(schema);
        self.push(node)
    }

    /// [`Compiler::node`] for the keywords k8s-openapi's schemas use. There an object without
    /// `properties` is free-form (RawExtension, FieldsV1); in a CRD's, the API server prunes
    /// every field of one.
    fn builtin_node(&mut self, schema: &BuiltinSchema<'static>) -> Node {
        let ty = schema.ty.and_then(Type::parse);
        let properties: FxHashMap<String, Id> =
            schema.properties.iter().map(|(k, v)| (k.to_string(), self.compile_builtin(v))).collect();
        let extra = match &schema.additional {
            Some(additional) => Extra::Schema(self.compile_builtin(additional)),
            // Without a type (a `oneOf`) or properties: free-form.
            None if ty.is_none() || properties.is_empty() => Extra::Any,
            None => Extra::None,
        };
        Node {
            ty,
            format: schema.format.and_then(Format::parse),
            int_or_string: schema.int_or_string,
            properties,
            extra,
            items: schema.items.as_deref().map(|items| self.compile_builtin(items)),
            required: schema.required.iter().map(|r| r.to_string()).collect(),
            ..Node::any()
        }
    }

    /// Adds to the properties of definition `name` the checks the server makes in Go
    /// (`apimachinery`): fixed sets of values, label and annotation maps. Only properties
    /// compiled for this definition alone (not `$ref`s, which other definitions share).
    fn go_validation(&mut self, name: &str, def: &BuiltinSchema, node: &Node) {
        for (property, schema) in &def.properties {
            if schema.reference.is_some() {
                continue;
            }
            let Some(&id) = node.properties.get(*property) else { continue };
            if let Some(values) = apimachinery::supported_values(name, property) {
                // A list of such values (`accessModes`) has them in its items.
                let id = self.schemas.nodes[id].items.unwrap_or(id);
                let target = &mut self.schemas.nodes[id];
                target.enumeration = values.iter().map(|v| Value::String(v.to_string())).collect();
                target.empty_allowed = true;
            }
            if let Some(map) = apimachinery::string_map(name, property) {
                self.schemas.nodes[id].string_map = Some(map);
            }
        }
    }

    fn push(&mut self, node: Node) -> Id {
        self.schemas.nodes.push(node);
        self.schemas.nodes.len() - 1
    }

    fn node(&mut self, schema: &Value) -> Node {
        // The keywords in one pass: a CRD holds thousands of schemas, and a lookup per keyword
        // would hash every keyword's name again.
        let mut keywords = Keywords::default();
        for (key, value) in schema.as_object().into_iter().flatten() {
            let flag = || value.as_bool().unwrap_or(false);
            match key.as_str() {
                "type" => keywords.ty = value.as_str().and_then(Type::parse),
                "x-kubernetes-preserve-unknown-fields" => keywords.preserve = flag(),
                "x-kubernetes-int-or-string" => keywords.int_or_string = flag(),
                "x-kubernetes-embedded-resource" => keywords.embedded = flag(),
                "nullable" => keywords.nullable = flag(),
                "properties" => keywords.properties = value.as_object(),
                "additionalProperties" => keywords.additional = Some(value),
                "items" => keywords.items = value.is_object().then_some(value),
                "format" => keywords.format = value.as_str().and_then(Format::parse),
                "required" => {
                    keywords.required = value
                        .as_array()
                        .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
                        .unwrap_or_default()
                }
                "enum" => keywords.enumeration = value.as_array().cloned().unwrap_or_default(),
                "default" => keywords.default = !value.is_null(),
                _ => {}
            }
        }
        let ty = keywords.ty;
        let properties: FxHashMap<String, Id> = match keywords.properties {
            Some(properties) => properties.iter().map(|(k, v)| (k.clone(), self.compile(v))).collect(),
            None => FxHashMap::default(),
        };
        let extra = match keywords.additional {
            Some(Value::Bool(true)) => Extra::Any,
            Some(additional @ Value::Object(_)) => Extra::Schema(self.compile(additional)),
            _ if keywords.preserve => Extra::Any,
            // A schema without a type says nothing of its fields.
            _ if ty.is_none() => Extra::Any,
            _ => Extra::None,
        };
        let items = keywords.items.map(|items| self.compile(items));
        Node {
            ty,
            format: keywords.format,
            int_or_string: keywords.int_or_string,
            quantity: false,
            embedded: keywords.embedded,
            properties,
            extra,
            items,
            required: keywords.required,
            enumeration: keywords.enumeration,
            empty_allowed: false,
            default: keywords.default,
            string_map: None,
            null_refused: ty.is_some() && !keywords.nullable,
            definition: None,
        }
    }
}

/// A schema of `builtins.json` (k8s-openapi's keywords, of which the compiler reads these), read
/// without making a JSON value of it: parsing each definition into one, and dropping it, was
/// three quarters of compiling a Deployment's schemas, which every render of one does.
#[derive(Deserialize)]
struct BuiltinSchema<'a> {
    // Borrowed: the file's names and keywords hold no escapes (a test reads every definition).
    #[serde(rename = "$ref")]
    reference: Option<&'a str>,
    #[serde(rename = "type")]
    ty: Option<&'a str>,
    format: Option<&'a str>,
    #[serde(borrow, default)]
    properties: BTreeMap<&'a str, BuiltinSchema<'a>>,
    #[serde(borrow)]
    items: Option<Box<BuiltinSchema<'a>>>,
    #[serde(rename = "additionalProperties", borrow)]
    additional: Option<Box<BuiltinSchema<'a>>>,
    #[serde(borrow, default)]
    required: Vec<&'a str>,
    #[serde(rename = "x-kubernetes-int-or-string", default)]
    int_or_string: bool,
}

/// What [`Compiler::node`] reads of a schema.
#[derive(Default)]
struct Keywords<'v> {
    ty: Option<Type>,
    preserve: bool,
    int_or_string: bool,
    embedded: bool,
    nullable: bool,
    properties: Option<&'v Map<String, Value>>,
    additional: Option<&'v Value>,
    items: Option<&'v Value>,
    format: Option<Format>,
    required: Vec<String>,
    enumeration: Vec<Value>,
    default: bool,
}

/// The built-in kinds' schemas, by (apiVersion, kind), and ObjectMeta's (for custom resources).
pub struct Builtins {
    pub schemas: Schemas,
    pub kinds: FxHashMap<(&'static str, &'static str), Id>,
    pub object_meta: Id,
}

/// Every kind k8s-openapi's `latest` (Kubernetes 1.37) defines and the schemas they reach,
/// generated from its types by `tools/kube-builtins` (whose test fails when this file is stale): the
/// schemas are data here rather than k8s-openapi's and schemars' code, which was 4.5 MB of the
/// binary. Only the keywords the compiler reads are kept (no descriptions).
const BUILTINS_JSON: &str = include_str!("../builtins.json");

/// `builtins.json`, its definitions left unparsed until a kind reaches them, and found by its
/// lines (`tools/kube-builtins` writes one kind and one definition a line) rather than by a JSON scan of
/// the whole file, which was a tenth of the CPU of rendering a small chart.
struct Data {
    /// (apiVersion, kind, the name of its definition).
    kinds: Vec<(&'static str, &'static str, &'static str)>,
    object_meta: &'static str,
    definitions: Definitions,
}

/// The definitions' lines (`"NAME":{…},`, one a line and sorted by name, as `tools/kube-builtins`
/// writes them), searched by halves: indexing the seven hundred, even into a sorted list, cost
/// more than a render's lookups (0.7 M instructions, every validating process).
struct Definitions(&'static str);

impl Definitions {
    fn get(&self, name: &str) -> Option<&'static str> {
        let (text, bytes) = (self.0, self.0.as_bytes());
        // `low..high` holds whole lines.
        let (mut low, mut high) = (0, text.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let start = memchr::memrchr(b'\n', &bytes[low..middle]).map_or(low, |at| low + at + 1);
            let end = memchr::memchr(b'\n', &bytes[middle..high]).map_or(high, |at| middle + at);
            let (line_name, schema) = definition(&text[start..end])?;
            match line_name.cmp(name) {
                std::cmp::Ordering::Equal => return Some(schema),
                std::cmp::Ordering::Less => low = end + 1,
                std::cmp::Ordering::Greater => high = start,
            }
        }
        None
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.0.lines().filter_map(definition)
    }
}

/// A definition's line: its name (a Go package path and type name: no quote to unescape) and
/// its schema.
fn definition(line: &'static str) -> Option<(&'static str, &'static str)> {
    let line = line.strip_suffix(',').unwrap_or(line).strip_prefix('"')?;
    let end = memchr::memchr(b'"', line.as_bytes())?;
    let schema = line[end + 1..].strip_prefix(':')?;
    (schema.starts_with('{') && schema.ends_with('}')).then_some((&line[..end], schema))
}

impl Data {
    fn index(text: &'static str) -> Data {
        const DEFINITIONS: &str = "\n\"definitions\":{\n";
        let (head, definitions) = match memchr::memmem::find(text.as_bytes(), DEFINITIONS.as_bytes()) {
            Some(at) => {
                let rest = &text[at + DEFINITIONS.len()..];
                (&text[..at], rest.rfind("\n}}").map_or(rest, |end| &rest[..end]))
            }
            None => (text, ""),
        };
        let mut data = Data { kinds: Vec::new(), object_meta: "", definitions: Definitions(definitions) };
        // Every string here is a Go package path, a type or group name, or a version: no quote
        // or escape to read, so strings are split at quotes (a test reads the file as JSON).
        for line in head.lines() {
            let item = line.strip_suffix(',').unwrap_or(line);
            if item.starts_with('[') {
                let parts: Vec<&str> = item.split('"').collect();
                if let ["[", api_version, ",", kind, ",", definition, "]"] = parts[..] {
                    data.kinds.push((api_version, kind, definition));
                }
            } else if let Some(name) = item.strip_prefix("{\"objectMeta\":\"").and_then(|n| n.strip_suffix('"')) {
                data.object_meta = name;
            }
        }
        data
    }
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| Data::index(BUILTINS_JSON))
}

impl Builtins {
    /// Every built-in kind's schema and ObjectMeta's, made on first use, then shared: a node
    /// standing for each kind's definition, compiled when an object first reaches it
    /// (`Deferred::compiled`, as every definition it refers to). A Deployment's schema
    /// reaches about a hundred and fifty definitions, each volume source among them; an object
    /// uses a few dozen.
    pub fn get() -> &'static Builtins {
        static BUILTINS: OnceLock<Builtins> = OnceLock::new();
        BUILTINS.get_or_init(|| {
            let data = data();
            let mut schemas = Schemas::default();
            let mut compiler = Compiler { schemas: &mut schemas };
            let mut defer = |name| compiler.push(Node { definition: Some(Builtins::deferred(name)), ..Node::any() });
            let kinds = data
                .kinds
                .iter()
                .map(|&(api_version, kind, definition)| ((api_version, kind), defer(definition)))
                .collect();
            let object_meta = defer(data.object_meta);
            Builtins { schemas, kinds, object_meta }
        })
    }

    /// Definition `name`, deferred: its one slot a process, found when a schema referring to it
    /// is compiled (each definition's compilation, not each object's walk), kept for the
    /// process's life as the compiled definitions are.
    pub(crate) fn deferred(name: &'static str) -> Deferred {
        static SLOTS: LazyLock<Mutex<FxHashMap<&'static str, &'static OnceLock<Compiled>>>> =
            LazyLock::new(Mutex::default);
        let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let slot = *slots.entry(name).or_insert_with(|| Box::leak(Box::default()));
        Deferred { name, slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every definition is read by [`BuiltinSchema`] (its strings borrowed), and with each of the
    /// keywords its JSON has that the compiler reads: one it could not read would be compiled as
    /// "anything", checking nothing.
    #[test]
    fn every_definition_is_read_with_its_keywords() {
        let data = Data::index(BUILTINS_JSON);
        assert!(data.definitions.iter().count() > 500, "{}", data.definitions.iter().count());
        fn same(typed: &BuiltinSchema, json: &Value, at: &str) {
            let text = |key: &str| json.get(key).and_then(Value::as_str);
            assert_eq!(typed.reference, text("$ref"), "{at}");
            assert_eq!(typed.ty, text("type"), "{at}");
            assert_eq!(typed.format, text("format"), "{at}");
            let required: Vec<&str> = json
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(typed.required, required, "{at}");
            assert_eq!(typed.int_or_string, json.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)), "{at}");
            let properties = json.get("properties").and_then(Value::as_object);
            assert_eq!(typed.properties.len(), properties.map_or(0, Map::len), "{at}");
            for (name, schema) in properties.into_iter().flatten() {
                same(&typed.properties[name.as_str()], schema, &format!("{at}.{name}"));
            }
            for (key, child) in [("items", &typed.items), ("additionalProperties", &typed.additional)] {
                assert_eq!(child.is_some(), json.get(key).is_some(), "{at}.{key}");
                if let (Some(child), Some(schema)) = (child, json.get(key)) {
                    same(child, schema, &format!("{at}.{key}"));
                }
            }
        }
        for (name, raw) in data.definitions.iter() {
            let typed: BuiltinSchema = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            same(&typed, &serde_json::from_str(raw).unwrap(), name);
        }
    }

    /// The index finds what a JSON parse of the whole file finds: every kind, ObjectMeta's name,
    /// and each definition with its schema (and no other).
    #[test]
    fn the_line_index_of_builtins_json_agrees_with_its_json() {
        let whole: Value = serde_json::from_str(BUILTINS_JSON).unwrap();
        let data = Data::index(BUILTINS_JSON);
        assert_eq!(data.object_meta, whole["objectMeta"]);
        let kinds: Vec<Value> = data.kinds.iter().map(|&(a, k, d)| serde_json::json!([a, k, d])).collect();
        assert_eq!(Value::from(kinds), whole["kinds"]);
        let definitions = whole["definitions"].as_object().unwrap();
        assert!(definitions.len() > 500, "{}", definitions.len());
        assert_eq!(data.definitions.iter().count(), definitions.len());
        for missing in ["", "a", "io.k8s.api.core.v1.Pod0", "io.k8s.api.core.v1.Po", "zzz"] {
            assert_eq!(data.definitions.get(missing), None, "{missing}");
        }
        for (name, schema) in definitions {
            let indexed = data.definitions.get(name).unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(&serde_json::from_str::<Value>(indexed).unwrap(), schema, "{name}");
        }
    }
}
