//! After templates: namespaces by scope, the release's patches, weaver's labels, apply order.

use serde_json::{Map, Value};

use weaver_core::error::{Error, Result};
use weaver_core::manifest::{self, LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_RELEASE, MANAGER, Manifest, Scopes};
use weaver_project::Release;
use weaver_project::environment::{PatchBody, PatchTarget};

/// `helm`: the release is a Helm chart's, whose cluster-scoped objects keep a namespace written
/// on them, as `helm template` prints it (see `set_namespace`). A Helm chart's or a
/// kustomization's object rendered twice keeps its last copy, with a warning in `warnings`
/// (`keep_last_copies`).
pub fn apply(
    manifests: &mut Vec<Manifest>,
    warnings: &mut Vec<String>,
    release: &Release,
    environment: &str,
    scopes: &Scopes,
    helm: bool,
) -> Result<()> {
    for m in manifests.iter_mut() {
        set_namespace(m, release, scopes, helm);
    }
    for (index, patch) in release.patches.iter().enumerate() {
        let mut matched = 0;
        for m in manifests.iter_mut().filter(|m| target_matches(&patch.target, m)) {
            matched += 1;
            let key = m.key();
            let (api_version, kind) = (m.api_version().to_string(), m.kind().to_string());
            let result = match &patch.body {
                PatchBody::Strategic(body) => weaver_patch::strategic::merge(&mut m.object, body, &api_version, &kind),
                PatchBody::Json6902(ops) => weaver_patch::json6902::apply(&mut m.object, ops),
            };
            result.map_err(|e| Error::at(patch.at.clone(), format!("patch failed on {key}: {e}")))?;
            m.patched_by.push(patch.at.clone());
            // RFC 6902 may replace the root (`path: ""`), and a strategic merge may drop fields.
            if let Some(problem) = manifest::object_problem(&m.object) {
                return Err(Error::at(
                    patch.at.clone(),
                    format!("patch {} of release `{}` on {key}: the patched object {problem}", index + 1, release.name),
                )
                .with_help("a patch must leave a Kubernetes object, with apiVersion, kind and metadata.name"));
            }
            // A patch may not move an object out of its scope's rules.
            set_namespace(m, release, scopes, helm);
        }
        if matched == 0 {
            let objects: Vec<String> = manifests.iter().map(|m| m.key().to_string()).collect();
            return Err(Error::at(
                patch.at.clone(),
                format!("patch target {} matches no object of release `{}`", describe(&patch.target), release.name),
            )
            .with_help(format!(
                "the release renders: {}",
                if objects.is_empty() { "nothing".to_string() } else { objects.join(", ") }
            )));
        }
    }
    for m in manifests.iter_mut() {
        for (repository, tag) in &release.images {
            weaver_kustomize::filters::images::set_tag(&mut m.object, repository, tag);
        }
        set_labels(&mut m.object, &release.name, environment);
    }
    if helm || release.kustomize.is_some() {
        keep_last_copies(manifests, &release.name, warnings);
    }
    manifest::sort_for_apply(manifests);
    Ok(())
}

/// An object a Helm chart renders twice (one CRD in two subcharts, a subchart's Deployment
/// twice), or a kustomization in two versions (`v1beta2` and `v1beta3` of one Widget, which
/// `kubectl kustomize` prints both of), keeps its last copy in the tool's order, with a warning
/// naming both: `kubectl apply` of the output applies both in order, and the API server keeps
/// the last (checked on a 1.32 server; `helm upgrade` does the same, `helm install` fails with
/// "already exists").
fn keep_last_copies(manifests: &mut Vec<Manifest>, release: &str, warnings: &mut Vec<String>) {
    let mut last: std::collections::HashMap<manifest::ObjectKey, usize> = std::collections::HashMap::new();
    for (index, m) in manifests.iter().enumerate() {
        last.insert(m.key(), index);
    }
    if last.len() == manifests.len() {
        return;
    }
    let origin = |m: &Manifest| format!("{} document {}", m.source.display(), m.document);
    let mut dropped = vec![false; manifests.len()];
    for (index, m) in manifests.iter().enumerate() {
        let kept = last[&m.key()];
        if kept != index {
            dropped[index] = true;
            let how = if m.object == manifests[kept].object { "identical" } else { "with different content" };
            warnings.push(format!(
                "release `{release}` renders {} twice, {how}, by {} and by {}: the last is kept, as the API server keeps it when the output is applied",
                m.key(),
                origin(m),
                origin(&manifests[kept])
            ));
        }
    }
    let mut index = 0;
    manifests.retain(|_| {
        index += 1;
        !dropped[index - 1]
    });
}

fn metadata(object: &mut Value) -> &mut Map<String, Value> {
    let meta = object
        .as_object_mut()
        .expect("objects are mappings")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made a mapping")
}

/// Namespaced kinds get the release namespace when they have none; a weaver chart's
/// cluster-scoped objects never carry one (the API server would ignore it). A kustomization's
/// and a Helm chart's keep the one written, as `kubectl kustomize` and `helm template` print
/// them; object identity ignores it (`ObjectKeyRef::of`) and the plan takes it away
/// ([`settle_scopes`]). A kind whose scope the run does not know (a custom resource whose CRD
/// it does not render) keeps the namespace as written in a chart's release, as helm leaves
/// it: the cluster's discovery decides it once there is one. A kustomization's gets the
/// release's namespace when it has none, as kustomize's `namespace:` (and so Flux's
/// `targetNamespace`) gives it to every kind it does not know as cluster-scoped.
fn set_namespace(m: &mut Manifest, release: &Release, scopes: &Scopes, helm: bool) {
    let known = scopes.known(manifest::api_group(m.api_version()), m.kind());
    let Some(namespaced) = known.or(release.kustomize.is_some().then_some(true)) else { return };
    if namespaced || (release.kustomize.is_none() && !helm) {
        place_namespace(m, &release.namespace, namespaced);
    }
}

/// Gives the object of a namespaced kind the release's `namespace` when it has none, and takes
/// it from one of a cluster-scoped kind.
fn place_namespace(m: &mut Manifest, namespace: &str, namespaced: bool) {
    let meta = metadata(&mut m.object);
    if !namespaced {
        meta.remove("namespace");
    } else if meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty) {
        // An empty one goes first, so that the position counts only the other keys.
        meta.shift_remove("namespace");
        // Right after `name`, where kubectl users look for it.
        let at = meta.keys().position(|k| k == "name").map_or(0, |i| i + 1);
        meta.shift_insert(at, "namespace".into(), Value::String(namespace.to_string()));
    }
}

/// Places the namespace of each object (and hook) as the API server will: by its kind's scope
/// as the render knows it, else as `served` says (by API group and kind: the objects of a
/// `--live-from` file; against a cluster, the observation places them by discovery). A cluster-scoped object loses the one a
/// kustomization left on it; a kind neither knows keeps the namespace as written.
pub fn settle_scopes(rendered: &mut crate::Rendered, served: impl Fn(&str, &str) -> Option<bool>) {
    let scopes = Scopes::of_crds(rendered.manifests());
    for release in &mut rendered.releases {
        for m in release.manifests.iter_mut().chain(release.hooks.iter_mut()) {
            let group = manifest::api_group(m.api_version());
            if let Some(namespaced) = scopes.known(group, m.kind()).or_else(|| served(group, m.kind())) {
                place_namespace(m, &release.namespace, namespaced);
            }
        }
    }
}

fn set_labels(object: &mut Value, release: &str, environment: &str) {
    let meta = metadata(object);
    let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    let labels = labels.as_object_mut().expect("just made a mapping");
    labels.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
    labels.insert(LABEL_RELEASE.into(), release.into());
    labels.insert(LABEL_ENVIRONMENT.into(), environment.into());
}

fn target_matches(target: &PatchTarget, m: &Manifest) -> bool {
    let api_version_matches = target.api_version.as_deref().is_none_or(|wanted| {
        wanted == m.api_version() || (!wanted.contains('/') && wanted == manifest::api_group(m.api_version()))
    });
    api_version_matches
        && target.kind.as_deref().is_none_or(|k| k == m.kind())
        && target.name.as_deref().is_none_or(|n| n == m.name())
        && target.namespace.as_deref().is_none_or(|ns| Some(ns) == m.namespace())
}

fn describe(target: &PatchTarget) -> String {
    let fields: Vec<String> = [
        ("apiVersion", &target.api_version),
        ("kind", &target.kind),
        ("name", &target.name),
        ("namespace", &target.namespace),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect();
    format!("{{{}}}", fields.join(", "))
}
