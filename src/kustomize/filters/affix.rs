//! `namePrefix` and `nameSuffix`: kustomize's prefix and suffix transformers. Every object but
//! CustomResourceDefinitions, APIServices and Namespaces (by the kind it was read with) is
//! renamed; the name references to it are fixed at the end of the build.

use serde_json::Value;

use super::super::Resource;

fn skipped(resource: &Resource) -> bool {
    let kind = resource.prev.first().map_or_else(|| resource.kind(), |id| id.kind.as_str());
    kind == "CustomResourceDefinition"
        || kind == "Namespace"
        || (kind == "APIService" && resource.group() == "apiregistration.k8s.io")
}

pub fn apply(prefix: &str, suffix: &str, resources: &mut [Resource]) {
    for resource in resources.iter_mut().filter(|r| !skipped(r)) {
        // Each transformer stores the id it renames from, as kustomize's do.
        for (prefix, suffix) in [(prefix, ""), ("", suffix)] {
            if prefix.is_empty() && suffix.is_empty() {
                continue;
            }
            resource.store_previous_id();
            let name = format!("{prefix}{}{suffix}", resource.name());
            if let Some(meta) = resource.object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("name".into(), Value::String(name));
            }
        }
    }
}
