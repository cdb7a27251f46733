//! `crds`: OpenAPI definitions of custom types (JSON, or YAML) whose `x-kubernetes-*`
//! extensions add to the transformer configuration, as kustomize's `LoadConfigFromCRDs` reads
//! them: a property with `x-kubernetes-annotation` takes `commonAnnotations`, one with
//! `x-kubernetes-label-selector` takes `commonLabels`, one with `x-kubernetes-identity` takes
//! the name prefix, and one with `x-kubernetes-object-ref-api-version` and
//! `x-kubernetes-object-ref-kind` names an object of that kind (its `name`, or the key
//! `x-kubernetes-object-ref-name-key` gives), renamed with it. Properties whose `$ref` names
//! another definition of the file are followed. Only definitions with `apiVersion`, `kind` and
//! `metadata` properties are types; a type's kind is the last `.`-separated part of its name.

use serde_json::{Map, Value};

use super::super::Target;
use super::super::kustomization::{FieldSpec, Kustomization};
use super::{BackReference, TransformerConfig};
use weaver_core::error::Result;

/// Deeper `$ref` chains than this are a cycle (kustomize would recurse until it crashes).
const MAX_DEPTH: usize = 64;

pub(crate) fn config(target: &Target, k: &Kustomization) -> Result<TransformerConfig> {
    let mut config = TransformerConfig::default();
    for entry in k.crds.iter().flatten() {
        let (path, text) = target.read_file(&entry.value, &entry.referenced, "crds")?;
        let definitions: Option<Map<String, Value>> = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| {
                target.error(&entry.referenced, format!("`crds`: {} is not valid JSON: {e}", path.display()))
            })?
        } else {
            weaver_yaml::from_str_as(&path, &text, "invalid OpenAPI definitions")?
        };
        let definitions = definitions.unwrap_or_default();
        let mut found = TransformerConfig::default();
        for (name, definition) in &definitions {
            let properties = properties(definition);
            if !["kind", "apiVersion", "metadata"].iter().all(|p| properties.is_some_and(|m| m.contains_key(*p))) {
                continue;
            }
            let kind = name.rsplit('.').next().unwrap_or(name);
            load(&mut found, kind, &definitions, name, &mut Vec::new())
                .map_err(|e| target.error(&entry.referenced, format!("`crds`: {}: {e}", path.display())))?;
        }
        config.merge(&found).map_err(|e| target.error(&entry.referenced, format!("`crds`: {e}")))?;
    }
    Ok(config)
}

/// A definition's schema properties (`Schema.properties`, as kustomize's `OpenAPIDefinition`
/// is written, field names in any case).
fn properties(definition: &Value) -> Option<&Map<String, Value>> {
    let schema = definition.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("schema"))?.1;
    schema.get("properties")?.as_object()
}

fn load(
    config: &mut TransformerConfig,
    kind: &str,
    definitions: &Map<String, Value>,
    type_name: &str,
    path: &mut Vec<String>,
) -> Result<(), String> {
    if path.len() > MAX_DEPTH {
        return Err(format!("the `$ref`s from {type_name} nest deeper than {MAX_DEPTH}: a cycle?"));
    }
    let Some(properties) = definitions.get(type_name).and_then(properties) else { return Ok(()) };
    let extension = |property: &Value, key: &str| property.get(key).and_then(Value::as_str).map(str::to_string);
    for (name, property) in properties {
        path.push(name.clone());
        let spec = |extra: &[&str]| FieldSpec {
            path: path.iter().map(String::as_str).chain(extra.iter().copied()).collect::<Vec<_>>().join("/"),
            kind: kind.to_string(),
            ..FieldSpec::default()
        };
        let mut add = TransformerConfig::default();
        if extension(property, "x-kubernetes-annotation").is_some() {
            add.common_annotations.push(spec(&[]));
        }
        if extension(property, "x-kubernetes-label-selector").is_some() {
            add.common_labels.push(spec(&[]));
        }
        if extension(property, "x-kubernetes-identity").is_some() {
            add.name_prefix.push(spec(&[]));
        }
        if let (Some(version), Some(referral)) = (
            extension(property, "x-kubernetes-object-ref-api-version"),
            extension(property, "x-kubernetes-object-ref-kind"),
        ) {
            let key = extension(property, "x-kubernetes-object-ref-name-key").unwrap_or_else(|| "name".into());
            add.name_reference.push(BackReference {
                kind: referral,
                group: String::new(),
                version,
                field_specs: vec![spec(&[key.as_str()])],
            });
        }
        config.merge(&add)?;
        if let Some(reference) = property.get("$ref").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            load(config, kind, definitions, reference, path)?;
        }
        path.pop();
    }
    Ok(())
}
