//! Schemas compiled for the walker: the built-in kinds from k8s-openapi's `JsonSchema` impls,
//! and custom resources from their CRD's `openAPIV3Schema`. Both are JSON Schema (schemars'
//! output refers to shared `$defs`), compiled once into an arena of nodes, so walking an object
//! costs a few map lookups a field.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use rustc_hash::FxHashMap;

use k8s_openapi::schemars::SchemaGenerator;
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

    /// Compiles `schema`, resolving `$ref`s (`#/$defs/NAME`) in `defs`; returns its id.
    /// Compiles a CRD version's `openAPIV3Schema`.
    pub fn compile_crd(&mut self, schema: &Value) -> Id {
        Compiler { schemas: self, defs: &Map::new(), named: HashMap::new(), builtin: false }.compile(schema)
    }
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// apiextensions' `JSON` (a CRD's `default`, `enum` values, `example`): any JSON value, though
/// k8s-openapi says `type: object`.
const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";

struct Compiler<'a> {
    schemas: &'a mut Schemas,
    defs: &'a Map<String, Value>,
    /// Definitions compiled so far: recursive types (JSONSchemaProps) refer to themselves.
    named: HashMap<String, Id>,
    /// k8s-openapi's schemas, where an object without `properties` is free-form
    /// (RawExtension, FieldsV1); in a CRD's, the API server prunes every field of one.
    builtin: bool,
}

impl Compiler<'_> {
    fn compile(&mut self, schema: &Value) -> Id {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            let name = name.rsplit('/').next().unwrap_or(name);
            if let Some(&id) = self.named.get(name) {
                return id;
            }
            let id = self.push(Node::any());
            self.named.insert(name.to_string(), id);
            let node = match self.defs.get(name) {
                Some(_) if name == JSON => Node::any(),
                Some(def) => {
                    let mut node = self.node(def);
                    // k8s-openapi gives Quantity only int-or-string; its format is the type's.
                    node.quantity = name == QUANTITY;
                    self.go_validation(name, def, &node);
                    node
                }
                None => Node::any(),
            };
            self.schemas.nodes[id] = node;
            return id;
        }
        let node = self.node(schema);
        self.push(node)
    }

    /// Adds to the properties of definition `name` the checks the server makes in Go
    /// (`apimachinery`): fixed sets of values, label and annotation maps. Only properties
    /// compiled for this definition alone (not `$ref`s, which other definitions share).
    fn go_validation(&mut self, name: &str, def: &Value, node: &Node) {
        let Some(properties) = def.get("properties").and_then(Value::as_object) else { return };
        for (property, schema) in properties {
            if schema.get("$ref").is_some() {
                continue;
            }
            let Some(&id) = node.properties.get(property) else { continue };
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
                "format" => {
                    keywords.format = match value.as_str() {
                        Some("int32") => Some(Format::Int32),
                        Some("byte") => Some(Format::Byte),
                        Some("date-time") => Some(Format::DateTime),
                        _ => None,
                    }
                }
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
            // A schema without a type (k8s-openapi's `oneOf`s) says nothing of its fields.
            _ if ty.is_none() => Extra::Any,
            _ if self.builtin && properties.is_empty() => Extra::Any,
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
            null_refused: !self.builtin && ty.is_some() && !keywords.nullable,
        }
    }
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

/// Lists every kind k8s-openapi's `latest` (Kubernetes 1.37) defines, with the `Resource`
/// trait's apiVersion and kind and the `JsonSchema` impl's schema: the table is generated from
/// the types, never written by hand. (The apimachinery types that also implement `Resource`,
/// `APIGroup`, `Status` and such, are answers, not objects one deploys.)
macro_rules! builtin_kinds {
    ($( $($segment:ident)::+ ),* $(,)?) => {
        vec![$( {
            use k8s_openapi::$($segment)::+ as T;
            let schema: SchemaFn = |generator| generator.subschema_for::<T>().to_value();
            (<T as k8s_openapi::Resource>::API_VERSION, <T as k8s_openapi::Resource>::KIND, schema)
        } ),*]
    };
}

/// Generates a kind's schema (a `$ref` into the generator's definitions).
type SchemaFn = fn(&mut SchemaGenerator) -> Value;

fn kinds() -> Vec<(&'static str, &'static str, SchemaFn)> {
    builtin_kinds!(
        api::admissionregistration::v1::MutatingAdmissionPolicy,
        api::admissionregistration::v1::MutatingAdmissionPolicyBinding,
        api::admissionregistration::v1::MutatingWebhookConfiguration,
        api::admissionregistration::v1::ValidatingAdmissionPolicy,
        api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        api::admissionregistration::v1alpha1::MutatingAdmissionPolicy,
        api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding,
        api::admissionregistration::v1beta1::MutatingAdmissionPolicy,
        api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding,
        api::apiserverinternal::v1alpha1::StorageVersion,
        api::apps::v1::ControllerRevision,
        api::apps::v1::DaemonSet,
        api::apps::v1::Deployment,
        api::apps::v1::ReplicaSet,
        api::apps::v1::StatefulSet,
        api::authentication::v1::SelfSubjectReview,
        api::authentication::v1::TokenRequest,
        api::authentication::v1::TokenReview,
        api::authorization::v1::LocalSubjectAccessReview,
        api::authorization::v1::SelfSubjectAccessReview,
        api::authorization::v1::SelfSubjectRulesReview,
        api::authorization::v1::SubjectAccessReview,
        api::autoscaling::v1::HorizontalPodAutoscaler,
        api::autoscaling::v1::Scale,
        api::autoscaling::v2::HorizontalPodAutoscaler,
        api::batch::v1::CronJob,
        api::batch::v1::Job,
        api::certificates::v1::CertificateSigningRequest,
        api::certificates::v1::ClusterTrustBundle,
        api::certificates::v1::PodCertificateRequest,
        api::certificates::v1beta1::ClusterTrustBundle,
        api::certificates::v1beta1::PodCertificateRequest,
        api::coordination::v1::Lease,
        api::coordination::v1alpha2::LeaseCandidate,
        api::coordination::v1beta1::LeaseCandidate,
        api::core::v1::Binding,
        api::core::v1::ComponentStatus,
        api::core::v1::ConfigMap,
        api::core::v1::Endpoints,
        api::core::v1::Event,
        api::core::v1::LimitRange,
        api::core::v1::Namespace,
        api::core::v1::Node,
        api::core::v1::PersistentVolume,
        api::core::v1::PersistentVolumeClaim,
        api::core::v1::Pod,
        api::core::v1::PodTemplate,
        api::core::v1::ReplicationController,
        api::core::v1::ResourceQuota,
        api::core::v1::Secret,
        api::core::v1::Service,
        api::core::v1::ServiceAccount,
        api::discovery::v1::EndpointSlice,
        api::events::v1::Event,
        api::flowcontrol::v1::FlowSchema,
        api::flowcontrol::v1::PriorityLevelConfiguration,
        api::lifecycle::v1alpha1::Eviction,
        api::lifecycle::v1alpha1::EvictionRequest,
        api::networking::v1::Ingress,
        api::networking::v1::IngressClass,
        api::networking::v1::IPAddress,
        api::networking::v1::NetworkPolicy,
        api::networking::v1::ServiceCIDR,
        api::node::v1::RuntimeClass,
        api::policy::v1::Eviction,
        api::policy::v1::PodDisruptionBudget,
        api::rbac::v1::ClusterRole,
        api::rbac::v1::ClusterRoleBinding,
        api::rbac::v1::Role,
        api::rbac::v1::RoleBinding,
        api::resource::v1::DeviceClass,
        api::resource::v1::DeviceTaintRule,
        api::resource::v1::ResourceClaim,
        api::resource::v1::ResourceClaimTemplate,
        api::resource::v1::ResourceSlice,
        api::resource::v1alpha3::DeviceTaintRule,
        api::resource::v1alpha3::ResourcePoolStatusRequest,
        api::resource::v1beta1::DeviceClass,
        api::resource::v1beta1::ResourceClaim,
        api::resource::v1beta1::ResourceClaimTemplate,
        api::resource::v1beta1::ResourceSlice,
        api::resource::v1beta2::DeviceClass,
        api::resource::v1beta2::DeviceTaintRule,
        api::resource::v1beta2::ResourceClaim,
        api::resource::v1beta2::ResourceClaimTemplate,
        api::resource::v1beta2::ResourceSlice,
        api::scheduling::v1::PriorityClass,
        api::scheduling::v1alpha3::CompositePodGroup,
        api::scheduling::v1alpha3::PodGroup,
        api::scheduling::v1alpha3::Workload,
        api::scheduling::v1beta1::PodGroup,
        api::scheduling::v1beta1::Workload,
        api::storage::v1::CSIDriver,
        api::storage::v1::CSINode,
        api::storage::v1::CSIStorageCapacity,
        api::storage::v1::StorageClass,
        api::storage::v1::VolumeAttachment,
        api::storage::v1::VolumeAttributesClass,
        api::storagemigration::v1::StorageVersionMigration,
        api::storagemigration::v1beta1::StorageVersionMigration,
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    )
}

impl Builtins {
    /// Every built-in kind's schema, built on first use, then shared.
    pub fn get() -> &'static Builtins {
        static BUILTINS: OnceLock<Builtins> = OnceLock::new();
        BUILTINS.get_or_init(|| Builtins::only(|_, _| true))
    }

    /// [`Builtins::only`], generated once per process for each set of kinds and then shared:
    /// the environments of a fleet, each validated on its own, use the same few kinds.
    pub fn shared(wanted: impl Fn(&str, &str) -> bool) -> Arc<Builtins> {
        type Kinds = Vec<(&'static str, &'static str)>;
        /// Each set's schemas, once generated.
        type Sets = Mutex<HashMap<Kinds, Arc<OnceLock<Arc<Builtins>>>>>;
        static SHARED: LazyLock<Sets> = LazyLock::new(Mutex::default);
        let kinds: Kinds = kinds().into_iter().filter(|(a, k, _)| wanted(a, k)).map(|(a, k, _)| (a, k)).collect();
        // Each set is generated outside the map's lock: other sets are not held up meanwhile.
        let cell = Arc::clone(SHARED.lock().unwrap_or_else(|e| e.into_inner()).entry(kinds.clone()).or_default());
        Arc::clone(cell.get_or_init(|| Arc::new(Builtins::only(|a, k| kinds.contains(&(a, k))))))
    }

    /// The schemas of the built-in kinds `wanted` (apiVersion, kind) says yes to, and
    /// ObjectMeta's. Generating a schema costs more than checking objects with it, and a render
    /// uses a few of the hundred kinds: only the definitions they reach are generated.
    pub fn only(wanted: impl Fn(&str, &str) -> bool) -> Builtins {
        let mut generator = SchemaGenerator::default();
        let kinds: Vec<(&'static str, &'static str, Value)> = kinds()
            .into_iter()
            .filter(|(api_version, kind, _)| wanted(api_version, kind))
            .map(|(api_version, kind, schema)| (api_version, kind, schema(&mut generator)))
            .collect();
        let object_meta = generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
        let defs = generator.take_definitions(false);
        let mut schemas = Schemas::default();
        // One compiler for all, so shared definitions (PodSpec, ObjectMeta) compile once.
        let mut compiler = Compiler { schemas: &mut schemas, defs: &defs, named: HashMap::new(), builtin: true };
        let kinds = kinds
            .into_iter()
            .map(|(api_version, kind, schema)| ((api_version, kind), compiler.compile(&schema)))
            .collect();
        let object_meta = compiler.compile(&object_meta.to_value());
        Builtins { schemas, kinds, object_meta }
    }
}
