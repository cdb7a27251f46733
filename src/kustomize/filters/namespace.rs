//! `namespace`: kustomize's namespace filter. Every namespaced object gets the namespace (over
//! any it had); a `v1` Namespace is renamed to it; the built-in field specifications (APIService
//! and CRD conversion webhook services) follow; (Cluster)RoleBinding subjects named `default`
//! get it too (kustomize's default `setRoleBindingSubjects: defaultOnly`).

use serde_json::Value;

use super::super::Resource;
use super::TransformerConfig;
use crate::manifest::Scopes;

pub fn apply(namespace: &str, config: &TransformerConfig, resources: &mut [Resource]) -> Result<(), String> {
    let scopes = Scopes::default();
    let value = || Value::String(namespace.to_string());
    for index in 0..resources.len() {
        let resource = &mut resources[index];
        resource.store_previous_id();
        let cluster_scoped = !scopes.is_namespaced(resource.api_version(), resource.kind());
        if !cluster_scoped && let Some(meta) = resource.object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), value());
        }
        let kind = resource.kind().to_string();
        if matches!(kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = resource.object.get_mut("subjects")
        {
            for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
                if subject.get("name").and_then(Value::as_str) == Some("default") {
                    subject.insert("namespace".into(), value());
                }
            }
        }
        let is_v1 = resource.api_version() == "v1";
        let selected: Vec<_> = config.namespace.iter().filter(|s| s.selects(resource)).collect();
        for spec in selected {
            if spec.path == "metadata/name" && !is_v1 {
                continue;
            }
            super::visit(&mut resource.object, spec, &value, &mut |field| {
                *field = value();
                Ok(())
            })?;
        }
        let resource = &resources[index];
        if resources.iter().enumerate().any(|(other, r)| other != index && r.same_id(resource)) {
            return Err(format!("`namespace: {namespace}` makes two objects {}", resource.describe()));
        }
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
        apply("default", super::super::builtin(), &mut resources).unwrap();
        let names: Vec<&str> = resources.iter().map(Resource::name).collect();
        assert_eq!(names, ["default", "_"]);
    }
}
