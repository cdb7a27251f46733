//! The kustomization file's schema (`kustomization.yaml`, `.yml` or `Kustomization`), as
//! kustomize v5 reads it (sigs.k8s.io/yaml, then `encoding/json`: see `weaver_yaml::go`):
//! unknown fields are errors, a value must be of its field's type (`namespace: 123` is no
//! string), keys match fields whatever their case, a key written twice keeps its last value,
//! and every path keeps the line it is on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use weaver_core::error::{Error, Location, Result};
use weaver_project::source::{Source, utf8};

/// The names kustomize looks for in a directory, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A string in the file with where it is written.
pub type Located = Spanned<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<ObjectMeta>,
    pub resources: Option<Vec<Located>>,
    /// The legacy spelling of directory `resources`.
    pub bases: Option<Vec<Located>>,
    pub components: Option<Vec<Located>>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub common_labels: Option<BTreeMap<String, String>>,
    pub labels: Option<Vec<Label>>,
    pub common_annotations: Option<BTreeMap<String, String>>,
    pub images: Option<Vec<Image>>,
    /// The legacy spelling of `images`, whose entries [`load`] appends to them, as kustomize does.
    pub image_tags: Option<Vec<Image>>,
    pub replicas: Option<Vec<Spanned<Replica>>>,
    pub patches: Option<Vec<Spanned<PatchEntry>>>,
    pub patches_strategic_merge: Option<Vec<Located>>,
    pub patches_json6902: Option<Vec<Spanned<Json6902Entry>>>,
    pub config_map_generator: Option<Vec<Spanned<GeneratorArgs>>>,
    pub secret_generator: Option<Vec<Spanned<GeneratorArgs>>>,
    pub generator_options: Option<GeneratorOptions>,
    /// Files of transformer configuration (field specifications) merged into the built-in one.
    pub configurations: Option<Vec<Located>>,
    /// OpenAPI definitions of custom types whose `x-kubernetes-*` extensions add field specifications.
    pub crds: Option<Vec<Located>>,
    /// The legacy `$(NAME)` variables, which `replacements` supersede.
    pub vars: Option<Vec<Spanned<Var>>>,
    pub replacements: Option<Vec<Spanned<ReplacementEntry>>>,
    /// Helm charts inflated through weaver's Helm-chart support (`kustomize --enable-helm`).
    pub helm_charts: Option<Vec<Spanned<HelmChartArgs>>>,
    pub helm_globals: Option<HelmGlobals>,
    /// Builtin transformers' configuration files (or inline YAML), run after the fields'.
    pub transformers: Option<Vec<Located>>,
    /// Builtin generators' configuration files (or inline YAML), run after the fields'.
    pub generators: Option<Vec<Located>>,
    // Fields weaver does not support yet: present, they are an error naming the field.
    pub validators: Option<Spanned<Value>>,
    pub openapi: Option<Spanned<Value>>,
    /// The release's build options (`originAnnotations`, `transformerAnnotations`,
    /// `managedByLabel`; kustomize reads the top kustomization's alone, and ignores words it
    /// does not know).
    pub build_metadata: Option<Spanned<Vec<String>>>,
    /// weaver orders a release's objects for apply itself; the release's `order` decides only
    /// which copy of an object at two versions is last, and kept (see `build`).
    pub sort_options: Option<Spanned<SortOptions>>,
}

/// A kustomization's own `metadata`, which kustomize reads but does not use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// How kustomize orders its output (`legacy`: by kind, `fifo`: as read).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SortOptions {
    pub order: Option<SortOrder>,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Legacy,
    Fifo,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    pub pairs: BTreeMap<String, String>,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
}

/// Where a transformation reads or writes a field: objects of a group, version and kind (each
/// optional), and a `/`-separated path (`\/` for a slash inside a name, `[]` for a list).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSpec {
    pub path: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub create: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    #[serde(default)]
    pub new_name: String,
    #[serde(default)]
    pub new_tag: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub tag_suffix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

/// Which objects a patch applies to: every field given must match; `name` and `namespace` are
/// anchored regular expressions, as in kustomize.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchEntry {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    pub options: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Json6902Entry {
    pub target: Selector,
    pub path: Option<String>,
    pub patch: Option<String>,
}

/// One `helmCharts` entry: the chart in `<chartHome>/<name>` rendered as `helm template` with
/// these flags, as kustomize's HelmChartInflationGenerator runs it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChartArgs {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub repo: String,
    #[serde(default)]
    pub release_name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub additional_values_files: Vec<String>,
    #[serde(default)]
    pub values_file: String,
    pub values_inline: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub values_merge: String,
    #[serde(default, rename = "includeCRDs")]
    pub include_crds: bool,
    #[serde(default)]
    pub skip_hooks: bool,
    #[serde(default)]
    pub api_versions: Vec<String>,
    #[serde(default)]
    pub kube_version: String,
    #[serde(default)]
    pub name_template: String,
    #[serde(default)]
    pub skip_tests: bool,
    #[serde(default)]
    pub debug: bool,
}

/// Where `helmCharts` are (`chartHome`, default `charts`); `configHome` is helm's own
/// configuration, which weaver does not read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmGlobals {
    #[serde(default)]
    pub chart_home: String,
    #[serde(default)]
    pub config_home: String,
}

/// A legacy variable: `$(name)` in the fields `varReference` lists becomes the field
/// `fieldref.fieldpath` (`metadata.name` if none) of the object `objref` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Var {
    pub name: String,
    pub objref: VarObject,
    pub fieldref: Option<VarField>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct VarObject {
    pub api_version: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarField {
    #[serde(default)]
    pub fieldpath: String,
}

/// One `replacements` entry: a replacement, or a file holding one or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacementEntry {
    pub path: Option<String>,
    pub source: Option<ReplacementSource>,
    pub targets: Option<Vec<ReplacementTarget>>,
}

/// Copies the value at one field of one object to fields of other objects. In a file a
/// `replacements` entry names, keys kustomize does not know are ignored, as kustomize reads it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    pub source: Option<ReplacementSource>,
    pub targets: Option<Vec<ReplacementTarget>>,
}

/// The object (selected by group, version, kind, name and namespace, each optional) and field
/// (`metadata.name` if none) a replacement reads.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacementSource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub field_path: String,
    pub options: Option<FieldOptions>,
}

/// The objects a replacement writes to (`select`, less `reject`) and the fields in each.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplacementTarget {
    pub select: Option<Selector>,
    #[serde(default)]
    pub reject: Vec<Selector>,
    #[serde(default)]
    pub field_paths: Vec<String>,
    pub options: Option<FieldOptions>,
}

/// How a replacement's field is read or written: one `delimiter`-separated part of it (`index`),
/// and whether a missing target field is created.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldOptions {
    #[serde(default)]
    pub delimiter: String,
    #[serde(default)]
    pub index: i64,
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub create: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorArgs {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub behavior: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    /// The legacy single `envs` entry.
    pub env: Option<String>,
    /// Secrets only: the Secret's `type` (default `Opaque`).
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    pub options: Option<GeneratorOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorOptions {
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

impl SortOptions {
    /// Whether the release's objects stay in the order read (`order: fifo`), or why kustomize's
    /// `SortOrderTransformer` refuses these options: an order that is neither `fifo` nor
    /// `legacy` (none given), or `legacySortOptions` beside `order: fifo`.
    pub fn fifo(&self) -> std::result::Result<bool, &'static str> {
        match (self.order, &self.legacy_sort_options) {
            (None, _) => Err("`sortOptions.order` must be `fifo` or `legacy`"),
            (Some(SortOrder::Fifo), Some(_)) => {
                Err("`sortOptions.legacySortOptions` is set but the order is `fifo`, not `legacy`")
            }
            (Some(order), _) => Ok(matches!(order, SortOrder::Fifo)),
        }
    }
}

impl Kustomization {
    /// Whether this is a `Component` (`kind: Component`), which only `components` may name.
    pub fn is_component(&self) -> bool {
        self.kind.as_deref() == Some("Component")
    }

    /// The fields weaver does not build yet, with where each is.
    pub fn unsupported(&self) -> Vec<(&'static str, &serde_saphyr::Location, &'static str)> {
        let fields: [(&str, &Option<Spanned<Value>>, &str); 2] = [
            ("validators", &self.validators, "weaver runs no validator plugins"),
            ("openapi", &self.openapi, "remove it"),
        ];
        fields
            .into_iter()
            .filter_map(|(name, field, help)| field.as_ref().map(|f| (name, &f.referenced, help)))
            .collect()
    }
}

/// The kustomization file of `dir`, if it has one.
pub fn find(source: &dyn Source, dir: &Path) -> Option<PathBuf> {
    FILE_NAMES.iter().map(|name| dir.join(name)).find(|path| source.exists(path))
}

/// Reads and parses `path`, a kustomization file.
pub fn load(source: &dyn Source, path: &Path) -> Result<Kustomization> {
    let Some(bytes) = source.read_named(path, &Location::file(path), "kustomization")? else {
        return Err(Error::at(Location::file(path), "does not exist"));
    };
    let text = utf8(path, bytes)?;
    // A key written twice keeps its last value, as kustomize reads the file.
    let parsed: Option<Kustomization> =
        weaver_yaml::from_str_as_go_last_key_wins(path, &text, "invalid kustomization")?;
    // kustomize refuses a file with nothing but `apiVersion` and `kind` (or nothing at all).
    let fields: Option<serde_json::Value> =
        weaver_yaml::from_str_as_go_last_key_wins(path, &text, "invalid kustomization")?;
    let is_empty = match &fields {
        Some(serde_json::Value::Object(map)) => map.keys().all(|k| k == "apiVersion" || k == "kind"),
        _ => true,
    };
    if is_empty {
        return Err(Error::at(Location::file(path), "the kustomization is empty")
            .with_help("list its `resources` (or other fields), or remove the file"));
    }
    let mut kustomization = parsed.unwrap_or_default();
    if let Some(legacy) = kustomization.image_tags.take() {
        kustomization.images.get_or_insert_default().extend(legacy);
    }
    if let Some(kind) = kustomization.kind.as_deref().filter(|k| !matches!(*k, "Kustomization" | "Component")) {
        return Err(Error::at(Location::file(path), format!("`kind: {kind}` is not a kustomization"))
            .with_help("a kustomization file has `kind: Kustomization` or `kind: Component`"));
    }
    Ok(kustomization)
}

/// Where a spanned value is, in `file`.
pub fn location(file: &Path, at: &serde_saphyr::Location) -> Location {
    Location::at(file, at.line(), at.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_project::source::FsSource;

    /// `text` as `app/kustomization.yaml` of a repository, loaded.
    fn load_text(text: &str) -> Result<Kustomization> {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("app")).unwrap();
        std::fs::write(repo.path().join("app/kustomization.yaml"), text).unwrap();
        load(&FsSource::new(repo.path()), Path::new("app/kustomization.yaml"))
    }

    /// kustomize decodes the file with `encoding/json`: `kubectl kustomize` refuses each of these
    /// ("json: cannot unmarshal number into Go struct field Kustomization.namespace of type
    /// string", …), where weaver read any scalar as a string.
    #[test]
    fn a_field_s_value_of_another_type_is_refused_naming_the_line_and_field() {
        for (text, expected) in [
            (
                "namespace: 123\n",
                "1:12: invalid kustomization: `namespace`: expected a string (quote it), found an integer",
            ),
            (
                "namePrefix: yes\n",
                "1:13: invalid kustomization: `namePrefix`: expected a string (quote it), found a boolean",
            ),
            (
                "nameSuffix: 1.5\n",
                "1:13: invalid kustomization: `nameSuffix`: expected a string (quote it), found a number",
            ),
            (
                "commonAnnotations: {a: yes}\n",
                "1:24: invalid kustomization: `commonAnnotations.a`: expected a string (quote it), found a boolean",
            ),
            (
                "commonLabels:\n  app: web\n  tier: 1\n",
                "3:9: invalid kustomization: `commonLabels.tier`: expected a string (quote it), found an integer",
            ),
            (
                "labels:\n  - pairs: {a: on}\n",
                "2:16: invalid kustomization: `labels[0].pairs.a`: expected a string (quote it), found a boolean",
            ),
            (
                "labels:\n  - pairs: {a: b}\n    includeSelectors: \"true\"\n",
                "3:23: invalid kustomization: `labels[0].includeSelectors`: expected true or false (unquote it), found a string",
            ),
            (
                "replicas:\n  - {name: web, count: \"3\"}\n",
                "2:24: invalid kustomization: `replicas[0].count`: expected a whole number (unquote it), found a string",
            ),
            (
                "configMapGenerator:\n  - name: c\n    literals: [a=b, 1]\n",
                "3:21: invalid kustomization: `configMapGenerator[0].literals[1]`: expected a string (quote it), found an integer",
            ),
            (
                "resources: [a.yaml, true]\n",
                "1:21: invalid kustomization: `resources[1]`: expected a string (quote it), found a boolean",
            ),
        ] {
            let error = load_text(text).unwrap_err().to_string();
            assert_eq!(error, format!("app/kustomization.yaml:{expected}"), "{text}");
        }
    }

    /// What `kubectl kustomize` accepts: keys in any case, YAML 1.1 booleans, a null for
    /// nothing, integers written as octal or as floats without a fraction.
    #[test]
    fn what_encoding_json_accepts_is_read_as_kustomize_reads_it() {
        let k = load_text(
            "configMapgenerator:\n  - name: c\n    literals: [a=b]\n    Options: {disableNameSuffixHash: yes}\n\
             NAMESPACE: ns\ncommonLabels: {a: ~}\nreplicas:\n  - {name: web, count: 010}\n  - {name: api, count: 3.0}\n  - {name: db, count: ~}\n",
        )
        .unwrap();
        let generators = k.config_map_generator.unwrap();
        assert_eq!(generators[0].value.literals, ["a=b"]);
        assert_eq!(generators[0].referenced.line(), 2);
        let options = generators[0].value.options.as_ref().unwrap();
        assert_eq!(options.disable_name_suffix_hash, Some(true));
        assert_eq!(k.namespace.as_deref(), Some("ns"));
        assert_eq!(k.common_labels.unwrap()["a"], "");
        let counts: Vec<i64> = k.replicas.unwrap().iter().map(|r| r.value.count).collect();
        assert_eq!(counts, [8, 3, 0]);
    }

    /// kustomize's `metadata` is its ObjectMeta (strings, unknown fields refused); `imageTags`
    /// entries are appended to `images`; of two keys naming one field, the one Go's sorted JSON
    /// writes last wins (`kubectl kustomize` builds `namespace: a` here).
    #[test]
    fn metadata_is_typed_image_tags_are_images_and_the_last_key_of_a_field_wins() {
        let error = |text: &str| load_text(text).unwrap_err().to_string();
        assert_eq!(
            error("metadata: {name: 1}\n"),
            "app/kustomization.yaml:1:18: invalid kustomization: `metadata.name`: expected a string (quote it), found an integer"
        );
        assert!(
            error("metadata:\n  owner: a\n")
                .starts_with("app/kustomization.yaml:2:3: invalid kustomization: `metadata`: unknown field `owner`")
        );
        let k = load_text(
            "images: [{name: a, newName: b}]\nimageTags: [{name: c, newTag: \"2\"}]\nnamespace: a\nNamespace: b\n",
        )
        .unwrap();
        let images: Vec<&str> = k.images.iter().flatten().map(|i| i.name.as_str()).collect();
        assert_eq!(images, ["a", "c"]);
        assert_eq!(k.namespace.as_deref(), Some("a"));
    }

    /// kustomize reads the file with sigs.k8s.io/yaml's `Unmarshal`: `kubectl kustomize` builds
    /// with `namePrefix: b-` here, where weaver refused the duplicate key.
    #[test]
    fn a_key_written_twice_keeps_its_last_value() {
        let k = load_text("namePrefix: a-\nresources: [cm.yaml]\nnamePrefix: b-\n").unwrap();
        assert_eq!(k.name_prefix.as_deref(), Some("b-"));
    }
}
