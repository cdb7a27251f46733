//! `namePrefix` and `nameSuffix`: kustomize's prefix and suffix transformers. Every object but
//! CustomResourceDefinitions, APIServices and Namespaces (by the kind it was read with) gets
//! the prefix or suffix at each field the configuration's `namePrefix`/`nameSuffix` lists
//! (`metadata.name` built in); the name references to it are fixed at the end of the build.

use serde_json::Value;

use super::super::Resource;
use super::{TransformerConfig, gvk_selects};

fn skipped(resource: &Resource) -> bool {
    let kind = resource.original_kind();
    kind == "CustomResourceDefinition"
        || kind == "Namespace"
        || (kind == "APIService" && resource.group() == "apiregistration.k8s.io")
}

pub fn apply(prefix: &str, suffix: &str, config: &TransformerConfig, resources: &mut [Resource]) -> Result<(), String> {
    // The prefix transformer runs over every object, then the suffix transformer; each stores
    // the id it renames from, as kustomize's do.
    for (prefix, suffix, specs) in [(prefix, "", &config.name_prefix), ("", suffix, &config.name_suffix)] {
        if prefix.is_empty() && suffix.is_empty() {
            continue;
        }
        for resource in resources.iter_mut().filter(|r| !skipped(r)) {
            for spec in specs {
                let (group, version, kind) = (resource.group(), resource.version(), resource.original_kind());
                if !gvk_selects(&spec.group, &spec.version, &spec.kind, group, version, kind) {
                    continue;
                }
                if spec.path == "metadata/name" {
                    resource.store_previous_id();
                    resource.prefixes.extend((!prefix.is_empty()).then(|| prefix.to_string()));
                    resource.suffixes.extend((!suffix.is_empty()).then(|| suffix.to_string()));
                }
                super::visit(&mut resource.object, spec, &|| Value::String(String::new()), &mut |field| {
                    if let Value::String(value) = field {
                        *value = format!("{prefix}{value}{suffix}");
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}
