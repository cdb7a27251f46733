//! One filter per kustomize transformation, like kustomize's `api/filters`, and the field
//! specifications they share: kustomize's built-in configuration (`builtin_config.yaml`, kept
//! verbatim), a kustomization's `configurations` merged into it, and the walk to the fields a
//! specification names.

pub mod affix;
pub mod crds;
pub mod generators;
pub mod helm_charts;
pub mod images;
pub mod labels;
pub mod name_reference;
pub mod namespace;
pub mod patches;
pub mod replacements;
pub mod replicas;
pub mod transformers;
pub mod vars;

use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Resource;
use super::kustomization::FieldSpec;

/// Which fields each transformation reads and writes (kustomize's `TransformerConfig`): the
/// built-in configuration, merged with the files a kustomization's `configurations` names and
/// with its bases' configurations. Keys kustomize does not know are ignored, as kustomize
/// ignores them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<BackReference>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

/// Objects of one kind (the referral) and the fields of other objects that name them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackReference {
    pub kind: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub field_specs: Vec<FieldSpec>,
}

pub fn builtin() -> &'static TransformerConfig {
    static CONFIG: OnceLock<TransformerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = include_str!("../builtin_config.yaml");
        weaver_yaml::from_str(Path::new("src/kustomize/builtin_config.yaml"), text)
            .expect("kustomize's built-in configuration is valid (a unit test reads it)")
    })
}

impl TransformerConfig {
    /// Adds `other`'s field specifications (kustomize's `TransformerConfig.Merge`): one path of
    /// one group, version and kind once, name references of one referral kind together. The
    /// same field with and without `create` is kustomize's "conflicting fieldspecs".
    pub fn merge(&mut self, other: &TransformerConfig) -> Result<(), String> {
        let lists = [
            (&mut self.name_prefix, &other.name_prefix, "namePrefix"),
            (&mut self.name_suffix, &other.name_suffix, "nameSuffix"),
            (&mut self.namespace, &other.namespace, "namespace"),
            (&mut self.common_labels, &other.common_labels, "commonLabels"),
            (&mut self.labels, &other.labels, "labels"),
            (&mut self.template_labels, &other.template_labels, "templateLabels"),
            (&mut self.common_annotations, &other.common_annotations, "commonAnnotations"),
            (&mut self.var_reference, &other.var_reference, "varReference"),
            (&mut self.images, &other.images, "images"),
            (&mut self.replicas, &other.replicas, "replicas"),
        ];
        for (into, from, field) in lists {
            merge_specs(into, from).map_err(|e| format!("`{field}`: {e}"))?;
        }
        for backref in &other.name_reference {
            let same = |b: &&mut BackReference| {
                b.kind == backref.kind && b.group == backref.group && b.version == backref.version
            };
            match self.name_reference.iter_mut().find(same) {
                Some(existing) => merge_specs(&mut existing.field_specs, &backref.field_specs)
                    .map_err(|e| format!("`nameReference` of {}: {e}", backref.kind))?,
                None => self.name_reference.push(backref.clone()),
            }
        }
        Ok(())
    }
}

/// kustomize's `FsSlice.MergeAll`.
pub fn merge_specs(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) -> Result<(), String> {
    for spec in from {
        match into.iter().find(|o| o.same_field(spec)) {
            Some(existing) if existing.create != spec.create => {
                return Err(format!("conflicting field specifications for `{}`", spec.path));
            }
            Some(_) => {}
            None => into.push(spec.clone()),
        }
    }
    Ok(())
}

impl FieldSpec {
    /// The same path of the same group, version and kind.
    fn same_field(&self, other: &FieldSpec) -> bool {
        self.path == other.path && self.group == other.group && self.version == other.version && self.kind == other.kind
    }

    /// Whether the specification applies to `resource` (kustomize's `Gvk.IsSelected`: each
    /// part given must be equal).
    pub fn selects(&self, resource: &Resource) -> bool {
        gvk_selects(&self.group, &self.version, &self.kind, resource.group(), resource.version(), resource.kind())
    }
}

/// A `labelSelector` or `annotationSelector` (none when empty).
pub(crate) fn metadata_selector(text: &str) -> Result<Option<weaver_project::Selector>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    weaver_project::Selector::parse_all(&[text]).map(Some).map_err(|e| format!("selector `{text}`: {}", e.message))
}

/// Whether the object's `metadata.<field>` (labels or annotations) match `selector` (any, if none).
pub(crate) fn metadata_matches(resource: &Resource, field: &str, selector: Option<&weaver_project::Selector>) -> bool {
    let Some(selector) = selector else { return true };
    let map: std::collections::BTreeMap<String, String> = resource
        .object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    selector.matches(&map)
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
