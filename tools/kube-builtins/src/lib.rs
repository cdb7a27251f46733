//! Generates `crates/kube-schema/builtins.json`, the built-in kinds' schemas, from k8s-openapi's
//! types (the `Resource` trait's apiVersion and kind, the `JsonSchema` impl's schema), and fails
//! when the committed file differs: after a k8s-openapi upgrade (here and in the workspace),
//! `WEAVER_BLESS=1 cargo test --manifest-path tools/kube-builtins/Cargo.toml` writes it anew.
//! The package is this test: nothing else is built from it.
#![cfg(test)]

use std::collections::BTreeMap;

use k8s_openapi::schemars::SchemaGenerator;
use serde_json::{Map, Value};

/// Lists every kind k8s-openapi's `latest` (Kubernetes 1.37) defines: the table comes from the
/// types, never written by hand. (The apimachinery types that also implement `Resource`,
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

/// The keywords `Compiler::node` reads; the rest (descriptions above all) is left out.
const KEYWORDS: [&str; 10] = [
    "type",
    "format",
    "required",
    "enum",
    "default",
    "nullable",
    "$ref",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
];

fn pruned(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else { return schema.clone() };
    let mut out = Map::new();
    for (key, value) in object {
        let value = match key.as_str() {
            "properties" => {
                Value::Object(value.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), pruned(v))).collect())
            }
            "additionalProperties" | "items" => pruned(value),
            key if KEYWORDS.contains(&key) => value.clone(),
            _ => continue,
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn definition_name(reference: &Value) -> String {
    let reference = reference["$ref"].as_str().expect("a kind's schema is a reference to its definition");
    reference.rsplit('/').next().unwrap_or(reference).to_string()
}

/// `builtins.json`: one kind and one definition a line, definitions by name, so an upgrade's
/// changes read as a diff.
fn generate() -> String {
    let mut generator = SchemaGenerator::default();
    let kinds: Vec<Value> = kinds()
        .into_iter()
        .map(|(api_version, kind, schema)| {
            serde_json::json!([api_version, kind, definition_name(&schema(&mut generator))])
        })
        .collect();
    let object_meta = definition_name(
        &generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>().to_value(),
    );
    let definitions: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().map(|(name, schema)| (name, pruned(&schema))).collect();
    let line = |value: &Value| serde_json::to_string(value).expect("JSON values serialize");
    let kinds: Vec<String> = kinds.iter().map(line).collect();
    let definitions: Vec<String> = definitions
        .iter()
        .map(|(name, schema)| format!("{}:{}", line(&Value::from(name.as_str())), line(schema)))
        .collect();
    format!(
        "{{\"objectMeta\":{},\n\"kinds\":[\n{}\n],\n\"definitions\":{{\n{}\n}}}}\n",
        line(&Value::from(object_meta)),
        kinds.join(",\n"),
        definitions.join(",\n")
    )
}

#[test]
fn builtins_json_is_generated_from_k8s_openapi() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crates/kube-schema/builtins.json");
    let generated = generate();
    if std::env::var_os("WEAVER_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, &generated).expect("write builtins.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} differs from k8s-openapi's schemas; refresh with: \
         WEAVER_BLESS=1 cargo test --manifest-path tools/kube-builtins/Cargo.toml (and commit the result)"
    );
}
