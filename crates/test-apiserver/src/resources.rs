//! The served resource types: built-ins and CRD-defined ones.

use crate::conversion::Webhook;
use crate::error::GroupResource;
use crate::schema::{Schema, TypeId};
use serde_json::Value;
use std::sync::Arc;

/// When `metadata.generation` is bumped (each kind's REST strategy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The kind has no generation.
    None,
    /// Bumped when `.spec` changes.
    Spec,
    /// Deployments: bumped on `.spec` or annotation changes.
    SpecOrAnnotations,
    /// Custom resources: bumped on any change outside metadata (and status, with the status subresource).
    AllButMetadata,
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub generation: Generation,
    /// `None` for built-ins (use the shared built-in schema).
    pub crd_schema: Option<Arc<Schema>>,
    /// A CRD version's `openAPIV3Schema`, compiled for `weaver_kube_schema::check`.
    pub crd_check: Option<Arc<(weaver_kube_schema::Schemas, weaver_kube_schema::Id)>>,
    pub type_id: TypeId,
    /// The version objects are stored in (CRDs may serve several).
    pub storage_version: String,
    /// The CRD's conversion webhook (`spec.conversion.strategy: Webhook`); None for built-ins
    /// and `strategy: None`, whose versions differ only in apiVersion.
    pub conversion: Option<Arc<Webhook>>,
    /// A built-in stored as another group's resource, (group, plural): events.k8s.io/v1 Events
    /// are core Events, converted as `crate::conversion::event` says.
    pub stored_as: Option<(&'static str, &'static str)>,
}

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

impl Resource {
    pub fn gr(&self) -> GroupResource {
        GroupResource { group: self.group.clone(), resource: self.plural.clone() }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn schema(&self) -> &Schema {
        match &self.crd_schema {
            Some(s) => s,
            None => Schema::builtin(),
        }
    }

    pub fn is_crd(&self) -> bool {
        self.crd_schema.is_some()
    }

    /// The (group, plural) its objects are stored under.
    pub fn stored(&self) -> (&str, &str) {
        self.stored_as.unwrap_or((&self.group, &self.plural))
    }

    /// Whether it serves the `scale` subresource (an `autoscaling/v1` Scale).
    pub fn has_scale(&self) -> bool {
        ["Deployment", "ReplicaSet", "StatefulSet"].iter().any(|kind| self.is("apps", kind))
            || self.is("", "ReplicationController")
    }

    /// Whether `kind == k` for a given built-in kind in the core group or a named group.
    pub fn is(&self, group: &str, kind: &str) -> bool {
        !self.is_crd() && self.group == group && self.kind == kind
    }
}

/// (group, version, plural, singular, kind, namespaced, short names, categories,
/// status subresource, generation policy, schema definition)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    Generation,
    &'static str,
);

pub fn builtins() -> Vec<Resource> {
    let table: &[Row] = &[
        (
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            &[],
            true,
            Generation::None,
            "io.k8s.api.core.v1.Namespace",
        ),
        (
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            true,
            &["cm"],
            &[],
            false,
            Generation::None,
            "io.k8s.api.core.v1.ConfigMap",
        ),
        ("", "v1", "secrets", "secret", "Secret", true, &[], &[], false, Generation::None, "io.k8s.api.core.v1.Secret"),
        (
            "",
            "v1",
            "services",
            "service",
            "Service",
            true,
            &["svc"],
            &["all"],
            true,
            Generation::None,
            "io.k8s.api.core.v1.Service",
        ),
        (
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
            &["sa"],
            &[],
            false,
            Generation::None,
            "io.k8s.api.core.v1.ServiceAccount",
        ),
        (
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            &[],
            true,
            Generation::None,
            "io.k8s.api.core.v1.PersistentVolumeClaim",
        ),
        ("", "v1", "pods", "pod", "Pod", true, &["po"], &["all"], true, Generation::Spec, "io.k8s.api.core.v1.Pod"),
        ("", "v1", "events", "event", "Event", true, &["ev"], &[], false, Generation::None, "io.k8s.api.core.v1.Event"),
        (
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            true,
            &["deploy"],
            &["all"],
            true,
            Generation::SpecOrAnnotations,
            "io.k8s.api.apps.v1.Deployment",
        ),
        (
            "apps",
            "v1",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
            &["sts"],
            &["all"],
            true,
            Generation::Spec,
            "io.k8s.api.apps.v1.StatefulSet",
        ),
        (
            "apps",
            "v1",
            "daemonsets",
            "daemonset",
            "DaemonSet",
            true,
            &["ds"],
            &["all"],
            true,
            Generation::Spec,
            "io.k8s.api.apps.v1.DaemonSet",
        ),
        (
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
            &["rs"],
            &["all"],
            true,
            Generation::Spec,
            "io.k8s.api.apps.v1.ReplicaSet",
        ),
        ("batch", "v1", "jobs", "job", "Job", true, &[], &["all"], true, Generation::Spec, "io.k8s.api.batch.v1.Job"),
        (
            "batch",
            "v1",
            "cronjobs",
            "cronjob",
            "CronJob",
            true,
            &["cj"],
            &["all"],
            true,
            Generation::Spec,
            "io.k8s.api.batch.v1.CronJob",
        ),
        (
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            &["all"],
            true,
            Generation::None,
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        ),
        (
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            true,
            &["ing"],
            &[],
            true,
            Generation::Spec,
            "io.k8s.api.networking.v1.Ingress",
        ),
        (
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "networkpolicy",
            "NetworkPolicy",
            true,
            &["netpol"],
            &[],
            false,
            Generation::Spec,
            "io.k8s.api.networking.v1.NetworkPolicy",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "role",
            "Role",
            true,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.rbac.v1.Role",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.rbac.v1.RoleBinding",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.rbac.v1.ClusterRole",
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.rbac.v1.ClusterRoleBinding",
        ),
        (
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            &[],
            true,
            Generation::Spec,
            "io.k8s.api.policy.v1.PodDisruptionBudget",
        ),
        (
            "coordination.k8s.io",
            "v1",
            "leases",
            "lease",
            "Lease",
            true,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.coordination.v1.Lease",
        ),
        (
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "endpointslice",
            "EndpointSlice",
            true,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.discovery.v1.EndpointSlice",
        ),
        (
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            &[],
            false,
            Generation::None,
            "io.k8s.api.events.v1.Event",
        ),
        (
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "subjectaccessreview",
            "SubjectAccessReview",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.authorization.v1.SubjectAccessReview",
        ),
        (
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            "SelfSubjectAccessReview",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
        ),
        (
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "tokenreview",
            "TokenReview",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.authentication.v1.TokenReview",
        ),
        (
            "authentication.k8s.io",
            "v1",
            "selfsubjectreviews",
            "selfsubjectreview",
            "SelfSubjectReview",
            false,
            &[],
            &[],
            false,
            Generation::None,
            "io.k8s.api.authentication.v1.SelfSubjectReview",
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicies",
            "validatingadmissionpolicy",
            "ValidatingAdmissionPolicy",
            false,
            &[],
            &["api-extensions"],
            true,
            Generation::Spec,
            "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy",
        ),
        (
            "admissionregistration.k8s.io",
            "v1",
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicybinding",
            "ValidatingAdmissionPolicyBinding",
            false,
            &[],
            &["api-extensions"],
            false,
            Generation::Spec,
            "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            &["api-extensions"],
            true,
            Generation::Spec,
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        ),
    ];
    table
        .iter()
        .map(|&(group, version, plural, singular, kind, namespaced, short, cats, status, generation, def)| Resource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: singular.into(),
            kind: kind.into(),
            namespaced,
            verbs: match plural {
                "namespaces" => ALL_VERBS.iter().copied().filter(|v| *v != "deletecollection").collect(),
                // A review is answered, never stored.
                "subjectaccessreviews" | "selfsubjectaccessreviews" | "tokenreviews" | "selfsubjectreviews" => {
                    vec!["create"]
                }
                _ => ALL_VERBS.to_vec(),
            },
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            status_subresource: status,
            generation,
            crd_schema: None,
            crd_check: None,
            type_id: Schema::builtin().named(def).unwrap_or_else(|| panic!("schema for {def}")),
            storage_version: version.into(),
            conversion: None,
            stored_as: (group == "events.k8s.io").then_some(("", "events")),
        })
        .collect()
}

/// The name of a CRD's storage version (its one version with `storage: true`).
pub fn storage_version(crd: &Value) -> Option<&Value> {
    crd["spec"]["versions"].as_array()?.iter().find(|v| v["storage"] == Value::Bool(true)).map(|v| &v["name"])
}

/// The resources a CRD serves once Established: one per served version.
pub fn from_crd(crd: &Value) -> Vec<Resource> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
    };
    let storage = storage_version(crd).and_then(Value::as_str).unwrap_or_default().to_string();
    let conversion = Webhook::from_crd(spec).map(Arc::new);
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool() == Some(true))
        .map(|v| {
            let (schema, root) = Schema::for_crd(v.pointer("/schema/openAPIV3Schema"));
            let status = v.pointer("/subresources/status").is_some();
            Resource {
                group: spec["group"].as_str().unwrap_or_default().into(),
                version: v["name"].as_str().unwrap_or_default().into(),
                plural: names["plural"].as_str().unwrap_or_default().into(),
                singular: names["singular"].as_str().unwrap_or_default().into(),
                kind: names["kind"].as_str().unwrap_or_default().into(),
                namespaced: spec["scope"].as_str() == Some("Namespaced"),
                verbs: ALL_VERBS.to_vec(),
                short_names: str_list(&names["shortNames"]),
                categories: str_list(&names["categories"]),
                status_subresource: status,
                generation: Generation::AllButMetadata,
                crd_schema: Some(Arc::new(schema)),
                crd_check: v.pointer("/schema/openAPIV3Schema").map(|schema| {
                    let mut schemas = weaver_kube_schema::Schemas::default();
                    let root = schemas.compile_crd(schema);
                    Arc::new((schemas, root))
                }),
                type_id: root,
                storage_version: storage.clone(),
                conversion: conversion.clone(),
                stored_as: None,
            }
        })
        .collect()
}
