//! `patchesStrategicMerge`, `patches` and `patchesJson6902`: kustomize's patch transformers,
//! applying weaver's strategic merge and RFC 6902 implementations (`weaver_patch`).
//!
//! As in kustomize: a strategic merge patch without a target patches the object with its own
//! apiVersion, kind, name and namespace (any it has had), and one that matches nothing is an
//! error; a `target` selects by group, version, kind, name and namespace (anchored regular
//! expressions; name and namespace match the original or the current ones), label and annotation
//! selectors, and selecting nothing is no error. A strategic merge patch with a target takes
//! the target's name and kind unless `options` allow a change; `$patch: delete` at its root
//! removes the object.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use serde_saphyr::Location as Span;

use super::super::kustomization::{Kustomization, Selector};
use super::super::{Resource, Target};
use weaver_core::error::Result;

/// One patch as read: strategic merge documents, or RFC 6902 operations.
enum Body {
    Strategic(Vec<Value>),
    Json6902(Value),
}

pub(crate) fn strategic_merge_files(target: &Target, k: &Kustomization, resources: &mut Vec<Resource>) -> Result<()> {
    for entry in k.patches_strategic_merge.iter().flatten() {
        // An entry is inline YAML or a file, as in kustomize.
        let documents = if entry.value.contains('\n') || entry.value.trim_start().starts_with('{') {
            weaver_yaml::documents_kyaml(&target.file, &entry.value)?
        } else {
            let (path, text) = target.read_file(&entry.value, &entry.referenced, "patchesStrategicMerge")?;
            weaver_yaml::documents_kyaml(&path, &text)?
        };
        for patch in documents {
            strategic_by_id(target, &entry.referenced, "patchesStrategicMerge", &patch, resources)?;
        }
    }
    Ok(())
}

pub(crate) fn patches(target: &Target, k: &Kustomization, resources: &mut Vec<Resource>) -> Result<()> {
    for entry in k.patches.iter().flatten() {
        let at = &entry.referenced;
        let patch = &entry.value;
        let body = read(target, at, "patches", patch.path.as_deref(), patch.patch.as_deref())?;
        let options = patch.options.clone().unwrap_or_default();
        match (body, &patch.target) {
            (Body::Json6902(ops), Some(selector)) => json6902_on(target, at, "patches", selector, &ops, resources)?,
            (Body::Json6902(_), None) => {
                return Err(target.error(at, "`patches`: a JSON 6902 patch needs a `target`"));
            }
            (Body::Strategic(documents), Some(selector)) => {
                let [document] = documents.as_slice() else {
                    return Err(target.error(
                        at,
                        "`patches`: an entry with a `target` must hold one strategic merge patch, not several",
                    ));
                };
                let selected = select(target, at, selector, resources)?;
                for index in selected.into_iter().rev() {
                    strategic_on(target, at, "patches", document, &options, index, resources)?;
                }
            }
            (Body::Strategic(documents), None) => {
                for document in &documents {
                    strategic_by_id(target, at, "patches", document, resources)?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn json6902(target: &Target, k: &Kustomization, resources: &mut [Resource]) -> Result<()> {
    for entry in k.patches_json6902.iter().flatten() {
        let at = &entry.referenced;
        let patch = &entry.value;
        match read(target, at, "patchesJson6902", patch.path.as_deref(), patch.patch.as_deref())? {
            Body::Json6902(ops) => json6902_on(target, at, "patchesJson6902", &patch.target, &ops, resources)?,
            Body::Strategic(_) => {
                return Err(target.error(at, "`patchesJson6902`: the patch is not a list of RFC 6902 operations"));
            }
        }
    }
    Ok(())
}

/// The patch an entry holds inline (`patch`) or in a file (`path`).
fn read(target: &Target, at: &Span, field: &str, path: Option<&str>, inline: Option<&str>) -> Result<Body> {
    let (file, text) = match (path, inline.map(str::trim).filter(|p| !p.is_empty())) {
        (Some(path), None) => target.read_file(path, at, field)?,
        (None, Some(text)) => (target.file.clone(), text.to_string()),
        (Some(_), Some(_)) => return Err(target.error(at, format!("`{field}`: give `path` or `patch`, not both"))),
        (None, None) => return Err(target.error(at, format!("`{field}`: give a `path` or a `patch`"))),
    };
    let documents = weaver_yaml::documents_kyaml(Path::new(&file), &text)
        .map_err(|e| target.error(at, format!("`{field}`: the patch is not valid YAML: {}", e.message)))?;
    match documents.as_slice() {
        [ops @ Value::Array(_)] => Ok(Body::Json6902(ops.clone())),
        [] => Err(target.error(at, format!("`{field}`: the patch is empty"))),
        _ if documents.iter().all(Value::is_object) => Ok(Body::Strategic(documents)),
        _ => Err(target.error(
            at,
            format!("`{field}`: expected a strategic merge patch (a mapping) or RFC 6902 operations (a list)"),
        )),
    }
}

/// The resources a `target` selects, by index, as kustomize's `ResMap.Select`.
fn select(target: &Target, at: &Span, selector: &Selector, resources: &[Resource]) -> Result<Vec<usize>> {
    let anchored = |what: &str, pattern: &str| {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|_| target.error(at, format!("target {what} `{pattern}` is not a regular expression")))
    };
    let optional = |what: &str, pattern: &str| (!pattern.is_empty()).then(|| anchored(what, pattern)).transpose();
    let name = optional("name", &selector.name)?;
    let namespace = optional("namespace", &selector.namespace)?;
    let group = optional("group", &selector.group)?;
    let version = optional("version", &selector.version)?;
    let kind = optional("kind", &selector.kind)?;
    let parse = |text: &str| super::metadata_selector(text).map_err(|e| target.error(at, format!("target {e}")));
    let (labels, annotations) = (parse(&selector.label_selector)?, parse(&selector.annotation_selector)?);
    let effective = |ns: &str| if ns.is_empty() { "default".to_string() } else { ns.to_string() };
    Ok(resources
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let (_, org_name, org_ns) = r.original_id();
            namespace
                .as_ref()
                .is_none_or(|re| re.is_match(&effective(org_ns)) || re.is_match(&effective(r.namespace())))
                && name.as_ref().is_none_or(|re| re.is_match(org_name) || re.is_match(r.name()))
                && group.as_ref().is_none_or(|re| re.is_match(r.group()))
                && version.as_ref().is_none_or(|re| re.is_match(r.version()))
                && kind.as_ref().is_none_or(|re| re.is_match(r.kind()))
                && super::metadata_matches(r, "labels", labels.as_ref())
                && super::metadata_matches(r, "annotations", annotations.as_ref())
        })
        .map(|(index, _)| index)
        .collect())
}

/// A strategic merge patch applied to the object with its id (current or any previous one).
fn strategic_by_id(
    target: &Target,
    at: &Span,
    field: &str,
    patch: &Value,
    resources: &mut Vec<Resource>,
) -> Result<()> {
    let text = |pointer: &str| patch.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind, name, namespace) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"), text("/metadata/namespace"));
    let effective = |ns: &str| if ns.is_empty() { "default".to_string() } else { ns.to_string() };
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.api_version() == api_version
                && ((r.kind() == kind && r.name() == name && effective(r.namespace()) == effective(namespace))
                    || r.prev.iter().any(|id| {
                        id.kind == kind && id.name == name && effective(&id.namespace) == effective(namespace)
                    }))
        })
        .map(|(index, _)| index)
        .collect();
    let ns = if namespace.is_empty() { String::new() } else { format!("{namespace}/") };
    match matches.as_slice() {
        [index] => strategic_on(target, at, field, patch, &BTreeMap::new(), *index, resources),
        [] => Err(target.error(at, format!("`{field}`: no object matches the patch of {api_version} {kind} {ns}{name}"))
            .with_help("a strategic merge patch without `target` patches the object of its apiVersion, kind and name; check them, or give a `target`")),
        _ => Err(target.error(at, format!("`{field}`: the patch of {kind} {ns}{name} matches several objects"))),
    }
}

fn strategic_on(
    target: &Target,
    at: &Span,
    field: &str,
    patch: &Value,
    options: &BTreeMap<String, bool>,
    index: usize,
    resources: &mut Vec<Resource>,
) -> Result<()> {
    if patch.get("$patch").and_then(Value::as_str) == Some("delete") {
        resources.remove(index);
        return Ok(());
    }
    let resource = &mut resources[index];
    let mut patch = patch.clone();
    if let Some(map) = patch.as_object_mut() {
        let option = |name: &str| options.get(name).copied().unwrap_or(false);
        if !option("allowKindChange") || !map.contains_key("kind") {
            map.insert("kind".into(), resource.kind().into());
        }
        map.insert("apiVersion".into(), resource.api_version().into());
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            if !option("allowNameChange") || !meta.contains_key("name") {
                meta.insert("name".into(), resource.name().into());
            }
            meta.remove("namespace");
        }
    }
    let renamed = patch.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| n != resource.name())
        || patch.get("kind").and_then(Value::as_str).is_some_and(|k| k != resource.kind());
    if renamed {
        resource.store_previous_id();
    }
    let (api_version, kind) = (resource.api_version().to_string(), resource.kind().to_string());
    let empty_values = std::mem::take(&mut resource.empty_values);
    resource.empty_values =
        weaver_patch::strategic::clear_empty_values(&mut resource.object, empty_values, &api_version, &kind);
    let flavor = weaver_patch::strategic::Flavor::Kustomize;
    weaver_patch::strategic::merge_as(flavor, &mut resource.object, &patch, &api_version, &kind)
        .map_err(|e| target.error(at, format!("`{field}`: patch failed on {}: {e}", resource.describe())))?;
    checked(target, at, field, resource)
}

fn json6902_on(
    target: &Target,
    at: &Span,
    field: &str,
    selector: &Selector,
    ops: &Value,
    resources: &mut [Resource],
) -> Result<()> {
    for index in select(target, at, selector, resources)? {
        let resource = &mut resources[index];
        resource.store_previous_id();
        // kustomize applies a JSON patch to the object's JSON: its empty fields come back as
        // `null`s spelled out, which a strategic merge keeps.
        resource.empty_values.clear();
        weaver_patch::json6902::apply(&mut resource.object, ops)
            .map_err(|e| target.error(at, format!("`{field}`: patch failed on {}: {e}", resource.describe())))?;
        checked(target, at, field, resource)?;
    }
    Ok(())
}

/// A patch must leave a Kubernetes object.
fn checked(target: &Target, at: &Span, field: &str, resource: &Resource) -> Result<()> {
    match weaver_core::manifest::shape_problem(&resource.object) {
        None => Ok(()),
        Some(problem) => Err(target.error(at, format!("`{field}`: the patched object {problem}"))),
    }
}
