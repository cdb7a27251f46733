//! `namespace`: kustomize's namespace filter. Every namespaced object gets the namespace (over
//! any it had); a `v1` Namespace is renamed to it; the built-in field specifications (APIService
//! and CRD conversion webhook services) follow; (Cluster)RoleBinding subjects get it by
//! [`Subjects`]. A NamespaceTransformer may set `unsetOnly` (only empty fields are set) and
//! `setRoleBindingSubjects`, as kustomize's `api/filters/namespace` takes them.

use serde_json::Value;

use super::super::Resource;
use super::TransformerConfig;
use crate::kustomization::FieldSpec;
use weaver_core::manifest::Scopes;

/// Which (Cluster)RoleBinding subjects get the namespace (`setRoleBindingSubjects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Subjects {
    /// `defaultOnly` (the default): those named `default`.
    #[default]
    DefaultOnly,
    /// `allServiceAccounts`: those of kind ServiceAccount.
    AllServiceAccounts,
    /// `none`.
    None,
}

impl std::str::FromStr for Subjects {
    type Err = String;

    fn from_str(mode: &str) -> Result<Subjects, String> {
        match mode {
            "defaultOnly" | "" => Ok(Subjects::DefaultOnly),
            "allServiceAccounts" => Ok(Subjects::AllServiceAccounts),
            "none" => Ok(Subjects::None),
            other => Err(format!(
                "invalid value `{other}` for setRoleBindingSubjects: must be one of defaultOnly, allServiceAccounts or none"
            )),
        }
    }
}

/// How the namespace is set: the kustomization's `namespace:` uses the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Set only fields that are missing or empty (`unsetOnly`).
    pub unset_only: bool,
    pub subjects: Subjects,
}

pub fn apply(
    namespace: &str,
    config: &TransformerConfig,
    options: Options,
    resources: &mut [Resource],
) -> Result<(), String> {
    let scopes = Scopes::default();
    let value = || Value::String(namespace.to_string());
    let settable =
        |field: Option<&Value>| !options.unset_only || field.and_then(Value::as_str).is_none_or(str::is_empty);
    for resource in resources.iter_mut() {
        resource.store_previous_id();
        let cluster_scoped = !scopes.is_namespaced(resource.api_version(), resource.kind());
        if !cluster_scoped
            && let Some(meta) = resource.object.get_mut("metadata").and_then(Value::as_object_mut)
            && settable(meta.get("namespace"))
        {
            meta.insert("namespace".into(), value());
        }
        let kind = resource.kind().to_string();
        let binding = matches!(kind.as_str(), "RoleBinding" | "ClusterRoleBinding");
        if binding && let Some(Value::Array(subjects)) = resource.object.get_mut("subjects") {
            for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
                let chosen = match options.subjects {
                    Subjects::DefaultOnly => subject.get("name").and_then(Value::as_str) == Some("default"),
                    Subjects::AllServiceAccounts => {
                        subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    }
                    Subjects::None => false,
                };
                if chosen && settable(subject.get("namespace")) {
                    subject.insert("namespace".into(), value());
                }
            }
        }
        let is_v1 = resource.api_version() == "v1";
        // kustomize sets metadata/namespace by the rule above alone, whatever field
        // specifications name it (so a cluster-scoped object never gets one), and a binding's
        // subjects by `setRoleBindingSubjects` alone: it drops the specifications of
        // `subjects/namespace` for the binding kinds (operators' `configurations:` files give
        // them, and kustomize leaves a subject's `namespace: placeholder` as written).
        let by_subjects_alone = |spec: &FieldSpec| {
            binding
                && matches!(spec.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
                && spec.path == "subjects/namespace"
        };
        let selected: Vec<_> = config
            .namespace
            .iter()
            .filter(|s| s.selects(resource) && s.path != "metadata/namespace" && !by_subjects_alone(s))
            .collect();
        let described = resource.describe();
        for spec in selected {
            if spec.path == "metadata/name" && !is_v1 {
                continue;
            }
            super::visit(&mut resource.object, spec, &value, &mut |field| {
                if field.is_array() || field.is_object() {
                    return Err(format!(
                        "namespace field specs must target scalar fields: `{}` of {described} is not one",
                        spec.path
                    ));
                }
                if settable(Some(field)) {
                    *field = value();
                }
                Ok(())
            })?;
        }
    }
    // Once every object has its namespace, by their ids in a set rather than each against every
    // other (two objects alike then were alike when the later one got its namespace).
    let mut ids = std::collections::HashSet::with_capacity(resources.len());
    if let Some(twice) = resources.iter().find(|resource| !ids.insert(resource.id())) {
        return Err(format!("`namespace: {namespace}` makes two objects {}", twice.describe()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// kubectl kustomize 1.32 renames every `v1` Namespace to the target namespace; a Namespace
    /// `_`, a placeholder of template repositories, is read without complaint first.
    #[test]
    fn every_v1_namespace_is_renamed_placeholders_included() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: _\n---\napiVersion: example.com/v1\nkind: Namespace\nmetadata:\n  name: _\n";
        let mut resources = super::super::super::parse_objects(Path::new("ns.yaml"), text).unwrap();
        apply("default", super::super::builtin(), Options::default(), &mut resources).unwrap();
        let names: Vec<&str> = resources.iter().map(Resource::name).collect();
        assert_eq!(names, ["default", "_"]);
    }
}
