//! `transformers`: kustomize's builtin transformers configured by files, inline YAML or the
//! objects of a kustomization directory, as
//! kubebuilder's and podinfo's trees use them. Each configuration (`apiVersion: builtin`, or
//! none) runs the same filter as the kustomization field it stands for, with the
//! configuration's own `fieldSpecs` instead of the built-in ones, after the kustomization's
//! own transformations, as kustomize runs them. Other plugins (exec, container, Go) are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::{Location as Span, Spanned};

use super::super::Resource;
use super::super::kustomization::{
    FieldSpec, Image, Json6902Entry, Kustomization, Located, PatchEntry, ReplacementEntry, Replica, Selector,
};
use super::super::{Origin, Target};
use super::TransformerConfig;
use weaver_core::error::{Error, Result};

/// A builtin transformer's configuration: the fields of every kind it may be, each kind
/// reading its own (kustomize reads plugin configurations without refusing unknown fields).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "field_specs_ignoring_unknown_keys")]
    field_specs: Vec<FieldSpec>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    prefix: Option<String>,
    suffix: Option<String>,
    image_tag: Option<Image>,
    replica: Option<Replica>,
    patch: Option<String>,
    path: Option<String>,
    paths: Option<Vec<String>>,
    patches: Option<String>,
    target: Option<Selector>,
    options: Option<BTreeMap<String, bool>>,
    json_op: Option<String>,
    replacements: Option<Vec<ReplacementEntry>>,
    unset_only: Option<bool>,
    set_role_binding_subjects: Option<String>,
}

/// `fieldSpecs` entries, whose keys kustomize does not know are ignored, as it reads a plugin's
/// configuration (a kustomization's own field specifications refuse them).
fn field_specs_ignoring_unknown_keys<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<FieldSpec>, D::Error> {
    /// Flattened, a struct takes only the keys it knows.
    #[derive(Deserialize)]
    struct Lenient {
        #[serde(flatten)]
        spec: FieldSpec,
    }
    let specs: Vec<Lenient> = Deserialize::deserialize(deserializer)?;
    Ok(specs.into_iter().map(|s| s.spec).collect())
}

/// Runs the kustomization's `transformers`; `build` gives the objects of the kustomization an
/// entry names, `None` for a file or inline YAML.
/// With `origin` (where the kustomization is, from the release's, when `buildMetadata` asks for
/// origins), returns the origin of each configuration run, in order.
pub(crate) fn run(
    target: &Target,
    k: &Kustomization,
    resources: &mut Vec<Resource>,
    origin: Option<&Path>,
    build: &mut dyn FnMut(&Located) -> Result<Option<Vec<Value>>>,
) -> Result<Vec<Value>> {
    let mut applied = Vec::new();
    for entry in inline_first(&k.transformers) {
        let (path, documents) = documents(target, entry, "transformers", build)?;
        for document in documents {
            let configured_in =
                origin.map(|origin| Origin::configured_in(origin, &document, &entry.value, &target.file));
            let config = serde_json::from_value::<Config>(document).map_err(|e| {
                target.error(
                    &entry.referenced,
                    format!("`transformers`: {}: not a transformer configuration: {e}", path.display()),
                )
            })?;
            apply(target, &entry.referenced, &config, resources)?;
            if let Some(configured_in) = &configured_in {
                let meta = |field: &str| config.metadata.as_ref().and_then(|m| m[field].as_str()).unwrap_or_default();
                let (name, namespace) = (meta("name"), meta("namespace"));
                let (api_version, kind) = (config.api_version.as_str(), config.kind.as_str());
                applied.push(Origin::Configured { configured_in, api_version, kind, name, namespace }.value());
            }
        }
    }
    Ok(applied)
}

/// The entries of `transformers` or `generators`, inline configurations first, as kustomize
/// reads them (`configureExternalTransformers`): they run in that order.
pub(crate) fn inline_first(entries: &Option<Vec<Located>>) -> impl Iterator<Item = &Located> {
    let (inline, named): (Vec<&Located>, Vec<&Located>) =
        entries.iter().flatten().partition(|e| e.value.contains('\n'));
    inline.into_iter().chain(named)
}

/// The configurations a `field` (`transformers` or `generators`) entry names: a file of one or
/// more documents, inline YAML, or a kustomization whose objects they are (built as kustomize
/// builds it, its `namespace` and other fields applied to them); with where they were read.
pub(crate) fn documents(
    target: &Target,
    entry: &Located,
    field: &str,
    build: &mut dyn FnMut(&Located) -> Result<Option<Vec<Value>>>,
) -> Result<(PathBuf, Vec<Value>)> {
    match build(entry)? {
        Some(objects) => Ok((target.dir.join(&entry.value), objects)),
        None => {
            let (path, text) = if entry.value.contains('\n') {
                (target.file.clone(), entry.value.clone())
            } else {
                target.read_file(&entry.value, &entry.referenced, field)?
            };
            let documents = weaver_yaml::documents_kyaml(&path, &text)?;
            Ok((path, documents))
        }
    }
}

fn apply(target: &Target, at: &Span, config: &Config, resources: &mut Vec<Resource>) -> Result<()> {
    let kind = config.kind.as_str();
    if !matches!(config.api_version.as_str(), "builtin" | "") {
        return Err(target.error(
            at,
            format!(
                "`transformers`: `{}` `{kind}` is a plugin: weaver runs kustomize's builtin transformers only",
                config.api_version
            ),
        ));
    }
    let specs = || config.field_specs.clone();
    let fail = |e: String| {
        Error::at(super::super::kustomization::location(&target.file, at), format!("`transformers`: {kind}: {e}"))
    };
    match kind {
        "LabelTransformer" => super::labels::add_entries(&config.labels, &config.field_specs, resources),
        "AnnotationsTransformer" => super::labels::add_entries(&config.annotations, &config.field_specs, resources),
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let affixes =
                TransformerConfig { name_prefix: specs(), name_suffix: specs(), ..TransformerConfig::default() };
            let (prefix, suffix) =
                (config.prefix.as_deref().unwrap_or_default(), config.suffix.as_deref().unwrap_or_default());
            super::affix::apply(prefix, suffix, &affixes, resources).map_err(fail)?;
        }
        "NamespaceTransformer" => {
            let options = super::namespace::Options {
                unset_only: config.unset_only == Some(true),
                subjects: config.set_role_binding_subjects.as_deref().unwrap_or_default().parse().map_err(fail)?,
            };
            let namespace = config.metadata.as_ref().and_then(|m| m["namespace"].as_str()).unwrap_or_default();
            if !namespace.is_empty() {
                let namespaces = TransformerConfig { namespace: specs(), ..TransformerConfig::default() };
                super::namespace::apply(namespace, &namespaces, options, resources).map_err(fail)?;
            }
        }
        "ImageTagTransformer" => {
            let image = config.image_tag.as_ref().ok_or_else(|| fail("`imageTag` is missing".into()))?;
            super::images::apply(
                image,
                &TransformerConfig { images: specs(), ..TransformerConfig::default() },
                resources,
            );
        }
        "ReplicaCountTransformer" => {
            let replica = config.replica.as_ref().ok_or_else(|| fail("`replica` is missing".into()))?;
            let replicas = TransformerConfig { replicas: specs(), ..TransformerConfig::default() };
            super::replicas::apply(replica, &replicas, resources).map_err(fail)?;
        }
        "PatchTransformer" => {
            let entry = PatchEntry {
                path: config.path.clone(),
                patch: config.patch.clone(),
                target: config.target.clone(),
                options: config.options.clone(),
            };
            let k = Kustomization { patches: Some(vec![spanned(entry, at)]), ..Kustomization::default() };
            super::patches::patches(target, &k, resources)?;
        }
        "PatchStrategicMergeTransformer" => {
            let mut paths: Vec<Located> = config.paths.iter().flatten().map(|p| spanned(p.clone(), at)).collect();
            paths.extend(config.patches.iter().map(|inline| spanned(inline.clone(), at)));
            let k = Kustomization { patches_strategic_merge: Some(paths), ..Kustomization::default() };
            super::patches::strategic_merge_files(target, &k, resources)?;
        }
        "PatchJson6902Transformer" => {
            let selector = config.target.clone().ok_or_else(|| fail("`target` is missing".into()))?;
            let entry = Json6902Entry { target: selector, path: config.path.clone(), patch: config.json_op.clone() };
            let k = Kustomization { patches_json6902: Some(vec![spanned(entry, at)]), ..Kustomization::default() };
            super::patches::json6902(target, &k, resources)?;
        }
        "ReplacementTransformer" => {
            let entries = config.replacements.iter().flatten().cloned().map(|r| spanned(r, at)).collect();
            let k = Kustomization { replacements: Some(entries), ..Kustomization::default() };
            super::replacements::run(target, &k, resources)?;
        }
        other => {
            return Err(fail(format!(
                "`{other}` is not a builtin transformer weaver runs (LabelTransformer, AnnotationsTransformer, PrefixSuffixTransformer, PrefixTransformer, SuffixTransformer, NamespaceTransformer, ImageTagTransformer, ReplicaCountTransformer, PatchTransformer, PatchStrategicMergeTransformer, PatchJson6902Transformer, ReplacementTransformer)"
            )));
        }
    }
    Ok(())
}

/// A value of the kustomization a configuration stands for, for the filters that read one:
/// where it is written is where the `transformers` entry is.
pub(crate) fn spanned<T>(value: T, at: &Span) -> Spanned<T> {
    Spanned::new(value, *at, *at)
}
