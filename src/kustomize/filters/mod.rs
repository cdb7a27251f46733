//! One filter per kustomize transformation, like kustomize's `api/filters`, and the field
//! specifications they share: kustomize's built-in configuration (`builtin_config.yaml`, kept
//! verbatim) and the walk to the fields a specification names.

pub mod affix;
pub mod generators;
pub mod images;
pub mod labels;
pub mod name_reference;
pub mod namespace;
pub mod patches;
pub mod replicas;

use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Resource;
use super::kustomization::FieldSpec;

/// kustomize's built-in transformer configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuiltinConfig {
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_prefix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    pub name_reference: Vec<BackReference>,
}

/// Objects of one kind (the referral) and the fields of other objects that name them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackReference {
    pub kind: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub field_specs: Vec<FieldSpec>,
}

pub fn builtin() -> &'static BuiltinConfig {
    static CONFIG: OnceLock<BuiltinConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = include_str!("../builtin_config.yaml");
        crate::yaml::from_str(Path::new("src/kustomize/builtin_config.yaml"), text)
            .expect("kustomize's built-in configuration is valid (a unit test reads it)")
    })
}

impl FieldSpec {
    /// Whether the specification applies to `resource` (kustomize's `Gvk.IsSelected`: each
    /// part given must be equal).
    pub fn selects(&self, resource: &Resource) -> bool {
        gvk_selects(&self.group, &self.version, &self.kind, resource.group(), resource.version(), resource.kind())
    }
}

/// kustomize's `Gvk.IsSelected`: every part of the selector that is given equals the object's.
pub fn gvk_selects(group: &str, version: &str, kind: &str, g: &str, v: &str, k: &str) -> bool {
    (group.is_empty() || group == g) && (version.is_empty() || version == v) && (kind.is_empty() || kind == k)
}

/// A path's segments: split at `/` (but not `\/`), each with whether it is marked a list (`[]`).
fn segments(path: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                current.push('/');
                chars.next();
            }
            '/' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| match s.strip_suffix("[]") {
            Some(name) => (name.to_string(), true),
            None => (s, false),
        })
        .collect()
}

/// Calls `set` on every field `spec.path` leads to in `object`, as kustomize's fieldspec
/// filter walks it: a list on the way is walked element by element; a missing field is
/// created (maps on the way, `leaf()` at the end) when `spec.create`, else skipped.
pub fn visit(
    object: &mut Value,
    spec: &FieldSpec,
    leaf: &dyn Fn() -> Value,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    walk(object, &segments(&spec.path), spec.create, leaf, set)
}

fn walk(
    node: &mut Value,
    path: &[(String, bool)],
    create: bool,
    leaf: &dyn Fn() -> Value,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some(((field, is_list), rest)) = path.split_first() else { return set(node) };
    if let Value::Array(items) = node {
        for item in items {
            walk(item, path, create, leaf, set)?;
        }
        return Ok(());
    }
    let Value::Object(map) = node else { return Ok(()) };
    let missing = map.get(field).is_none_or(Value::is_null);
    if missing {
        // kustomize never creates a field marked as a list.
        if !create || *is_list {
            return Ok(());
        }
        let value = if rest.is_empty() { leaf() } else { Value::Object(Map::new()) };
        map.insert(field.clone(), value);
    }
    let child = map.get_mut(field).expect("present or just created");
    if *is_list {
        if let Value::Array(items) = child {
            for item in items {
                walk(item, rest, create, leaf, set)?;
            }
        }
        return Ok(());
    }
    walk(child, rest, create, leaf, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_configuration_reads() {
        let config = builtin();
        assert_eq!(config.name_prefix.len(), 1);
        assert!(config.name_reference.iter().any(|r| r.kind == "ConfigMap"));
    }

    #[test]
    fn paths_split_at_unescaped_slashes() {
        let got = segments(r"metadata/annotations/nginx.ingress.kubernetes.io\/x/containers[]/image");
        let names: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["metadata", "annotations", "nginx.ingress.kubernetes.io/x", "containers", "image"]);
        assert!(got[3].1);
    }
}
