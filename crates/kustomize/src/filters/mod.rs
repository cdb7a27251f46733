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
/// with its bases' configurations. A key kustomize does not know, at any level, is refused, as
/// kustomize refuses it (its builtinconfig reads a `configurations` file with
/// `yaml.UnmarshalStrict`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackReference {
    pub kind: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub field_specs: Vec<FieldSpec>,
}

/// kustomize's default configuration, in its order (sorted as it sorts each configuration it reads).
pub fn builtin() -> &'static TransformerConfig {
    static CONFIG: OnceLock<TransformerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = include_str!("../builtin_config.yaml");
        let config: TransformerConfig = weaver_yaml::from_str(Path::new("src/kustomize/builtin_config.yaml"), text)
            .expect("kustomize's built-in configuration is valid (a unit test reads it)");
        config.sorted()
    })
}

/// The configuration a kustomization's own transformers start from (kustomize's
/// `MakeTransformerConfig`): the default, merged with its `configurations` files (`configs`,
/// merged together first). A file's specification of a field the default names for every kind
/// (`metadata/name` of kind `Widget`) so takes the place of the default's once merged into an
/// accumulation (see [`TransformerConfig::merge`]).
pub fn with_configurations(configs: &TransformerConfig) -> Result<TransformerConfig, String> {
    let mut config = builtin().clone();
    config.merge(configs)?;
    Ok(config)
}

impl TransformerConfig {
    /// Adds `other`'s field specifications (kustomize's `TransformerConfig.Merge`): a
    /// specification already there for the same path and for objects it selects is not added
    /// again (so `metadata/name` of every kind is not added after `metadata/name` of kind
    /// `Widget`), name references of one referral kind together; then sorted as kustomize
    /// sorts them. The same field with and without `create` is kustomize's "conflicting
    /// fieldspecs".
    pub fn merge(&mut self, other: &TransformerConfig) -> Result<(), String> {
        let before = self.specifications();
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
        // Already sorted unless something was added: a merge of what adds nothing (the
        // configuration of each file of `resources`) sorts nothing again.
        if self.specifications() != before {
            self.sort();
        }
        Ok(())
    }

    /// How many field specifications (and name references) it holds; a merge only adds.
    fn specifications(&self) -> usize {
        let lists = [
            &self.name_prefix,
            &self.name_suffix,
            &self.namespace,
            &self.common_labels,
            &self.labels,
            &self.template_labels,
            &self.common_annotations,
            &self.var_reference,
            &self.images,
            &self.replicas,
        ];
        lists.iter().map(|list| list.len()).sum::<usize>()
            + self.name_reference.iter().map(|backref| 1 + backref.field_specs.len()).sum::<usize>()
    }

    /// Sorted as kustomize sorts a configuration it reads.
    pub fn sorted(mut self) -> TransformerConfig {
        self.sort();
        self
    }

    /// kustomize's `sortFields`: each list by kind (its legacy order of kinds first), then group,
    /// version and kind.
    fn sort(&mut self) {
        for list in [
            &mut self.name_prefix,
            &mut self.name_suffix,
            &mut self.namespace,
            &mut self.common_labels,
            &mut self.labels,
            &mut self.template_labels,
            &mut self.common_annotations,
            &mut self.var_reference,
            &mut self.images,
            &mut self.replicas,
        ] {
            list.sort_by_cached_key(|s| gvk_order(&s.group, &s.version, &s.kind));
        }
        self.name_reference.sort_by_cached_key(|b| gvk_order(&b.group, &b.version, &b.kind));
    }
}

/// Where kustomize's `Gvk.IsLessThan` puts a group, version and kind: the kinds of its legacy
/// order first (then last), the rest by `group_version_kind`, a missing part after any given.
fn gvk_order(group: &str, version: &str, kind: &str) -> (i32, String) {
    const FIRST: [&str; 22] = [
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "CustomResourceDefinition",
        "ServiceAccount",
        "PodSecurityPolicy",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
        "Secret",
        "Endpoints",
        "Service",
        "LimitRange",
        "PriorityClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "PodDisruptionBudget",
    ];
    const LAST: [&str; 2] = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];
    let rank = match (FIRST.iter().position(|k| *k == kind), LAST.iter().position(|k| *k == kind)) {
        (Some(i), _) => i as i32 - FIRST.len() as i32,
        (None, Some(i)) => 1 + i as i32,
        (None, None) => 0,
    };
    let or = |part: &str, missing: &str| if part.is_empty() { missing.to_string() } else { part.to_string() };
    (rank, format!("{}_{}_{}", or(group, "~G"), or(version, "~V"), or(kind, "~K")))
}

/// kustomize's `FsSlice.MergeAll`.
pub fn merge_specs(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) -> Result<(), String> {
    for spec in from {
        match into.iter().find(|o| o.covers(spec)) {
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
    /// Whether `incoming` adds nothing to this specification already merged (kustomize's
    /// `effectivelyEquals`): the same path, for objects of a group, version and kind that
    /// `incoming`'s select.
    fn covers(&self, incoming: &FieldSpec) -> bool {
        self.path == incoming.path
            && gvk_selects(&incoming.group, &incoming.version, &incoming.kind, &self.group, &self.version, &self.kind)
    }

    /// Whether the specification applies to `resource` (kustomize's `Gvk.IsSelected`: each
    /// part given must be equal).
    pub fn selects(&self, resource: &Resource) -> bool {
        // Most specifications name a kind, and most objects are not of it: that one lookup
        // first, then the whole rule.
        (self.kind.is_empty() || self.kind == resource.kind())
            && gvk_selects(
                &self.group,
                &self.version,
                &self.kind,
                resource.group(),
                resource.version(),
                resource.kind(),
            )
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

/// Whether [`visit`] would call `set` on any field of `object` (always, when `spec.create`),
/// without changing it: the name references check it before copying an object to change it.
pub fn leads_to_a_field(object: &Value, spec: &FieldSpec) -> bool {
    fn reaches(node: &Value, path: &[(String, bool)]) -> bool {
        let Some(((field, is_list), rest)) = path.split_first() else { return true };
        if let Value::Array(items) = node {
            return items.iter().any(|item| reaches(item, path));
        }
        let Value::Object(map) = node else { return false };
        match map.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) if *is_list => items.iter().any(|item| reaches(item, rest)),
            Some(_) if *is_list => false,
            Some(child) => reaches(child, rest),
        }
    }
    spec.create || reaches(object, &segments(&spec.path))
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

    /// kustomize merges a kustomization's configuration (the default and its files, sorted) into
    /// an empty accumulation: `metadata/name` of kind Widget comes first and keeps out the
    /// default's `metadata/name` of every kind, whose objects so get no prefix.
    #[test]
    fn a_specification_for_one_kind_takes_the_place_of_the_default_for_every_kind() {
        let file: TransformerConfig = weaver_yaml::from_str(
            Path::new("config.yaml"),
            "namePrefix:\n  - {path: metadata/name, kind: Widget}\n  - {path: spec/ref, kind: Widget}\n",
        )
        .unwrap();
        let mut accumulated = TransformerConfig::default();
        accumulated.merge(&with_configurations(&file.sorted()).unwrap()).unwrap();
        let specs: Vec<(&str, &str)> =
            accumulated.name_prefix.iter().map(|s| (s.kind.as_str(), s.path.as_str())).collect();
        assert_eq!(specs, [("Widget", "metadata/name"), ("Widget", "spec/ref")]);
    }

    /// `leads_to_a_field` answers yes exactly when `visit` reaches a field, for every spec of
    /// the built-in name references on objects with lists, nulls and missing fields.
    #[test]
    fn leads_to_a_field_agrees_with_visit() {
        let objects = [
            serde_json::json!({"spec": {"template": {"spec": {
                "volumes": [{"configMap": {"name": "a"}}, {"secret": {"secretName": "s"}}],
                "containers": [{"envFrom": [{"configMapRef": {"name": "c"}}]}, {"env": null}],
                "serviceAccountName": "sa"}}}}),
            serde_json::json!({"spec": {"template": null, "volumes": {"configMap": "x"}}}),
            serde_json::json!({"subjects": [{"name": "sa"}], "roleRef": {"name": "r"}}),
            serde_json::json!(["not", "an", "object"]),
        ];
        let mut reached = 0;
        for backref in &builtin().name_reference {
            for spec in &backref.field_specs {
                for object in &objects {
                    let mut copy = object.clone();
                    let mut fields = 0;
                    visit(&mut copy, spec, &|| Value::Null, &mut |_| {
                        fields += 1;
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(leads_to_a_field(object, spec), fields > 0, "{} on {object}", spec.path);
                    reached += usize::from(fields > 0);
                }
            }
        }
        assert!(reached > 5, "{reached}");
    }

    #[test]
    fn paths_split_at_unescaped_slashes() {
        let got = segments(r"metadata/annotations/nginx.ingress.kubernetes.io\/x/containers[]/image");
        let names: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["metadata", "annotations", "nginx.ingress.kubernetes.io/x", "containers", "image"]);
        assert!(got[3].1);
    }
}
