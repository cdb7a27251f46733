//! HelmReleases as releases: the chart (from a HelmRepository, an OCI repository or a git
//! source), its version, `valuesFrom`, post-renderers and the settings weaver has no field for.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use weaver_helm::strvals::{self, Kind};
use weaver_kustomize::substitute::{self};
use weaver_project::environment::is_release_name;
use weaver_project::values::merge_overrides;

use super::{
    FLUX_ITSELF, Import, Obj, Release, find, helm_name, namespace_or, not_a_release_name, release_target, scalar_text,
};

/// The chart of a HelmRelease installing Flux itself (`flux-operator`, or `flux-instance`, the
/// FluxInstance the operator reconciles), by its name or its OCIRepository's URL.
fn flux_chart(hr: &Obj, sources: &[Obj]) -> Option<String> {
    let chart = match hr.spec("chartRef") {
        Some(chart_ref) => {
            let kind = chart_ref.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = chart_ref.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = chart_ref.get("namespace").and_then(Value::as_str).unwrap_or(hr.namespace());
            find(sources, kind, name, ns)?.text("/spec/url").to_string()
        }
        None => hr.text("/spec/chart/spec/chart").to_string(),
    };
    let name = chart.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    let name = name.split([':', '@']).next().unwrap_or_default();
    matches!(name, "flux-operator" | "flux-instance").then(|| chart.clone())
}

impl<'a> Import<'a> {
    /// A HelmRelease as a chart release, or `None` (listed).
    pub(super) fn helm_release(
        &mut self,
        hr: &Obj,
        sources: &[Obj],
        config: &[Obj],
        releases: &[Release],
        repositories: &mut BTreeMap<String, Value>,
    ) -> Option<Release> {
        let what = hr.describe();
        let namespace = match hr.text("/spec/targetNamespace") {
            "" => hr.namespace().to_string(),
            target => target.to_string(),
        };
        if let Some(chart) = flux_chart(hr, sources) {
            self.leave_at(
                hr,
                None,
                format!("{what} (chart {chart})"),
                format!(
                    "Flux itself: {FLUX_ITSELF}; converted, it would install a second Flux syncing this repository"
                ),
            );
            return None;
        }
        let helm_name = helm_name(hr);
        if !is_release_name(&helm_name) {
            self.leave_at(hr, Some("name"), what, not_a_release_name(&helm_name));
            return None;
        }
        if releases.iter().any(|r| r.name == helm_name) {
            self.leave_at(
                hr,
                None,
                what,
                format!(
                    "a second release named `{helm_name}` in this cluster: weaver's release names are unique in an \
                     environment; put one in another environment"
                ),
            );
            return None;
        }
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String(helm_name.clone()));
        self.chart(hr, &namespace, sources, repositories, &mut fields)?;
        if !namespace.is_empty() {
            if !weaver_core::manifest::is_dns1123_label(&namespace) {
                self.leave_at(hr, None, what, format!("namespace `{namespace}` is not a namespace name"));
                return None;
            }
            fields.insert("namespace".into(), Value::String(namespace.clone()));
        }
        let mut values = Map::new();
        for from in hr.spec("valuesFrom").and_then(Value::as_array).into_iter().flatten() {
            self.values_from(hr, from, config, &mut values);
        }
        // helm-controller merges them keeping each `null`, which deletes the chart's default.
        if let Some(Value::Object(inline)) = hr.spec("values") {
            merge_overrides(&mut values, inline.clone());
        }
        if !values.is_empty() {
            fields.insert("values".into(), Value::Object(values));
        }
        let mut patches = Vec::new();
        for renderer in hr.spec("postRenderers").and_then(Value::as_array).into_iter().flatten() {
            self.post_renderer(hr, renderer, &mut patches);
        }
        if !patches.is_empty() {
            fields.insert("patches".into(), Value::Array(patches));
        }
        let mut after_hr = Vec::new();
        for dep in hr.spec("dependsOn").and_then(Value::as_array).into_iter().flatten() {
            let name = dep.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let ns = dep.get("namespace").and_then(Value::as_str).unwrap_or(hr.namespace()).to_string();
            let line = self.item_line(hr, "/spec/dependsOn", "name", &name);
            after_hr.push((ns, name, hr.file.clone(), line));
        }
        self.helm_release_settings(hr, &namespace);
        if self.unsubstituted.contains(&(hr.file.clone(), hr.document)) {
            // A `${…}` Flux would substitute is kept (listed where it is): rendered so, the
            // release would deploy that text.
            fields.insert("installed".into(), Value::Bool(false));
        }
        Some(Release { name: helm_name, fields, after_ks: Vec::new(), after_hr })
    }

    /// Writes the release's chart `version`, written in `at`. One that keeps a `${…}` the import
    /// could not substitute (its variable is in a source it does not read) is no version
    /// constraint: its defaults are written in its place, or no version, and the release is not
    /// installed (listed).
    pub(super) fn version(&mut self, hr: &Obj, at: &Obj, version: &str, fields: &mut Map<String, Value>) {
        if !version.contains("${") {
            fields.insert("version".into(), Value::String(version.to_string()));
            return;
        }
        let defaults = substitute::expand(version, &|_| None).ok().filter(|v| !v.is_empty() && !v.contains("${"));
        let written = match &defaults {
            Some(default) => {
                fields.insert("version".into(), Value::String(default.clone()));
                format!("written `version: {default}` (its default)")
            }
            None => "written without a version".to_string(),
        };
        fields.insert("installed".into(), Value::Bool(false));
        let line = self.line_containing(at, version);
        self.leave(
            &at.file,
            line,
            format!("{}: chart version {version}", hr.describe()),
            format!(
                "keeps a variable the import could not substitute (Flux takes it from a source the import does not \
                 read, else its default): {written}, and the release `installed: false`; write the version in its \
                 place and remove that line"
            ),
        );
    }

    /// The release's `chart` (and `version`, and the repository it names), or `None` (listed).
    pub(super) fn chart(
        &mut self,
        hr: &Obj,
        namespace: &str,
        sources: &[Obj],
        repositories: &mut BTreeMap<String, Value>,
        fields: &mut Map<String, Value>,
    ) -> Option<()> {
        let what = hr.describe();
        if let Some(chart_ref) = hr.spec("chartRef") {
            let kind = chart_ref.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = chart_ref.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = chart_ref.get("namespace").and_then(Value::as_str).unwrap_or(hr.namespace());
            let oci = (kind == "OCIRepository").then(|| find(sources, kind, name, ns)).flatten();
            let Some(oci) = oci else {
                self.leave_at(
                    hr,
                    Some("chartRef"),
                    format!("{what}: chartRef {kind} {name}"),
                    "not an OCIRepository of this cluster: not converted",
                );
                return None;
            };
            let url = oci.text("/spec/url").to_string();
            fields.insert("chart".into(), Value::String(url));
            let reference = oci.spec("ref").cloned().unwrap_or(Value::Null);
            match (
                reference.get("digest").and_then(Value::as_str),
                reference.get("semver").and_then(Value::as_str),
                reference.get("tag").and_then(Value::as_str),
            ) {
                (Some(digest), _, _) => {
                    let chart = format!("{}@{digest}", oci.text("/spec/url"));
                    fields.insert("chart".into(), Value::String(chart));
                }
                (None, Some(version), _) | (None, None, Some(version)) => {
                    let version = version.to_string();
                    self.version(hr, oci, &version, fields);
                }
                _ => {}
            }
            return Some(());
        }
        let spec = hr.spec("chart/spec").cloned().unwrap_or(Value::Null);
        let chart = spec.get("chart").and_then(Value::as_str).unwrap_or_default().to_string();
        if chart.is_empty() {
            self.leave_at(
                hr,
                Some("chart"),
                format!("{what}: chart"),
                "names no chart (neither `spec.chart.spec.chart` nor `spec.chartRef`): not converted",
            );
            return None;
        }
        let source_kind = spec.pointer("/sourceRef/kind").and_then(Value::as_str).unwrap_or_default();
        let source_name = spec.pointer("/sourceRef/name").and_then(Value::as_str).unwrap_or_default();
        let source_ns =
            spec.pointer("/sourceRef/namespace").and_then(Value::as_str).unwrap_or(namespace_or(hr, namespace));
        let version = spec.get("version").and_then(Value::as_str).filter(|v| !v.is_empty() && *v != "*");
        if let Some(files) = spec.get("valuesFiles").and_then(Value::as_array).filter(|f| !f.is_empty()) {
            let names: Vec<String> = files.iter().map(scalar_text).collect();
            self.leave_at(
                hr,
                Some("/spec/chart/spec/valuesFiles"),
                format!("{what}: chart valuesFiles {}", names.join(", ")),
                "values files inside the chart: copy them into the repository and list them in `valuesFiles`",
            );
        }
        match source_kind {
            "HelmRepository" => {
                let Some(repository) = find(sources, source_kind, source_name, source_ns) else {
                    self.leave_at(
                        hr,
                        Some("sourceRef"),
                        format!("{what}: sourceRef HelmRepository {source_ns}/{source_name}"),
                        "not found in this cluster's Flux objects: not converted",
                    );
                    return None;
                };
                let url = repository.text("/spec/url").trim_end_matches('/').to_string();
                let is_oci = repository.text("/spec/type") == "oci" || url.starts_with("oci://");
                if is_oci {
                    let base = url.strip_prefix("oci://").unwrap_or(&url);
                    fields.insert("chart".into(), Value::String(format!("oci://{base}/{chart}")));
                } else {
                    let mut name = source_name.to_string();
                    if repositories.get(&name).is_some_and(|r| r["url"] != Value::String(url.clone())) {
                        name = format!("{source_ns}-{source_name}");
                    }
                    repositories.insert(name.clone(), json!({ "name": name, "url": url }));
                    fields.insert("chart".into(), Value::String(format!("{name}/{chart}")));
                }
                if let Some(version) = version {
                    self.version(hr, hr, version, fields);
                }
                Some(())
            }
            "GitRepository" if source_name == "flux-system" => {
                let path = self.join(&chart).filter(|p| !p.as_os_str().is_empty());
                let why = match &path {
                    Some(path) if self.source.exists(&path.join("Chart.yaml")) => None,
                    Some(path) if matches!(self.source.list(path), Ok(Some(_))) => {
                        Some("not a Helm chart directory of the repository (no Chart.yaml there)")
                    }
                    Some(_) => Some("no such directory in the repository"),
                    None => Some("outside the repository"),
                };
                if let Some(why) = why {
                    self.leave_at(hr, Some("chart"), format!("{what}: chart {chart}"), format!("{why}: not converted"));
                    return None;
                }
                let path = path.unwrap_or_default();
                let written = match path.parent() == Some(Path::new("charts")) {
                    true => path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                    // weaver names a chart elsewhere by its path from the repository's root.
                    false => format!("./{}", path.to_string_lossy().replace('\\', "/")),
                };
                fields.insert("chart".into(), Value::String(written));
                Some(())
            }
            _ => {
                self.leave_at(
                    hr,
                    Some("sourceRef"),
                    format!("{what}: chart from {source_kind} {source_name}"),
                    "weaver takes charts from chart repositories, OCI registries and charts/ of its repository: \
                     vendor the chart into charts/ or publish it",
                );
                None
            }
        }
    }

    /// A `valuesFrom` entry merged into `values`, or listed.
    pub(super) fn values_from(&mut self, hr: &Obj, from: &Value, config: &[Obj], values: &mut Map<String, Value>) {
        let what = hr.describe();
        let kind = from.get("kind").and_then(Value::as_str).unwrap_or_default();
        let name = from.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = from.get("valuesKey").and_then(Value::as_str).unwrap_or("values.yaml");
        let target_path = from.get("targetPath").and_then(Value::as_str).unwrap_or_default();
        let optional = from.get("optional").and_then(Value::as_bool).unwrap_or(false);
        let line = self.item_line(hr, "/spec/valuesFrom", "name", name);
        let found = find(config, kind, name, hr.namespace());
        let text = match (kind, found) {
            ("ConfigMap", Some(cm)) if !cm.is_encrypted() => {
                if let Some(why) = self.config_unsubstituted.get(&(cm.file.clone(), cm.document)).cloned() {
                    self.leave(
                        &hr.file,
                        line,
                        format!("{what}: valuesFrom ConfigMap {name}"),
                        format!(
                            "{why}: its values are merged as written there, and the release written `installed: false`"
                        ),
                    );
                    self.unsubstituted.insert((hr.file.clone(), hr.document));
                }
                cm.object
                    .pointer(&format!("/data/{}", key.replace('~', "~0").replace('/', "~1")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }
            ("Secret" | "ConfigMap", Some(secret)) => {
                self.leave(
                    &hr.file,
                    line,
                    format!("{what}: valuesFrom {kind} {name}"),
                    format!(
                        "a Secret's or SOPS-encrypted ConfigMap's values are not copied into files ({}): put them in \
                         a SOPS-encrypted values file (`weaver secrets encrypt`) in the release's `secrets:`",
                        secret.file.display()
                    ),
                );
                return;
            }
            (_, None) if optional => return,
            _ => {
                self.leave(
                    &hr.file,
                    line,
                    format!("{what}: valuesFrom {kind} {name}"),
                    "not found in the repository (Flux reads it from the cluster): write its values in the \
                     release's `values:` or a values file",
                );
                return;
            }
        };
        let Some(text) = text else {
            if !optional {
                self.leave(&hr.file, line, format!("{what}: valuesFrom {kind} {name}"), format!("has no key `{key}`"));
            }
            return;
        };
        if !target_path.is_empty() {
            // helm-controller sets the text at the path as `--set-string` would (escaped commas).
            let line_text = format!("{target_path}={}", text.replace('\\', "\\\\").replace(',', "\\,"));
            if let Err(err) = strvals::parse_into(&line_text, values, Kind::String, &|_| Err(String::new())) {
                self.leave(&hr.file, line, format!("{what}: valuesFrom {name} targetPath {target_path}"), err);
            }
            return;
        }
        // helm-controller reads it as helm reads a values file (YAML 1.1: `0777` is 511, `yes` true).
        match weaver_yaml::helm::from_str(&text) {
            Ok(None | Some(Value::Null)) => {}
            Ok(Some(Value::Object(map))) => merge_overrides(values, map),
            found => self.leave(
                &hr.file,
                line,
                format!("{what}: valuesFrom {kind} {name}"),
                match found {
                    Err(err) => format!("not a YAML mapping: {err}"),
                    _ => "not a YAML mapping".to_string(),
                },
            ),
        }
    }

    /// A post-renderer's kustomize patches as release `patches`, each patch string read as
    /// kustomize reads it: a list is RFC 6902 operations, a mapping a strategic merge patch.
    pub(super) fn post_renderer(&mut self, hr: &Obj, renderer: &Value, patches: &mut Vec<Value>) {
        let what = hr.describe();
        let line = self.line(hr, Some("postRenderers"));
        let Some(kustomize) = renderer.get("kustomize").and_then(Value::as_object) else {
            self.leave(&hr.file, line, format!("{what}: postRenderers"), "only kustomize post-renderers exist");
            return;
        };
        for (key, value) in kustomize {
            let items = value.as_array().cloned().unwrap_or_default();
            match key.as_str() {
                "patches" => {
                    for item in items {
                        let target = item.get("target").cloned();
                        let text = item.get("patch").map(scalar_text).unwrap_or_default();
                        match weaver_yaml::from_str::<Value>(Path::new("patch"), &text) {
                            Ok(Value::Array(ops)) => match target {
                                Some(target) => patches.push(json!({ "target": release_target(&target), "ops": ops })),
                                None => self.leave(
                                    &hr.file,
                                    line,
                                    format!("{what}: postRenderers patch"),
                                    "JSON 6902 operations need a `target`",
                                ),
                            },
                            Ok(Value::Object(patch)) => {
                                let target = target.map(|t| release_target(&t)).unwrap_or_else(|| {
                                    json!({
                                        "kind": patch.get("kind").cloned().unwrap_or(Value::Null),
                                        "name": patch.get("metadata").and_then(|m| m.get("name")).cloned().unwrap_or(Value::Null),
                                    })
                                });
                                let mut body = patch.clone();
                                body.remove("apiVersion");
                                body.remove("kind");
                                if let Some(Value::Object(meta)) = body.get_mut("metadata") {
                                    meta.remove("name");
                                    meta.remove("namespace");
                                    if meta.is_empty() {
                                        body.remove("metadata");
                                    }
                                }
                                patches.push(json!({ "target": target, "patch": body }));
                            }
                            _ => self.leave(
                                &hr.file,
                                line,
                                format!("{what}: postRenderers patch"),
                                "neither operations nor a mapping",
                            ),
                        }
                    }
                }
                "patchesStrategicMerge" => {
                    for patch in items {
                        let target = json!({
                            "kind": patch.get("kind").cloned().unwrap_or(Value::Null),
                            "name": patch.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
                        });
                        let mut body = patch.as_object().cloned().unwrap_or_default();
                        body.remove("apiVersion");
                        body.remove("kind");
                        body.remove("metadata");
                        patches.push(json!({ "target": target, "patch": body }));
                    }
                }
                "patchesJson6902" => {
                    for item in items {
                        let target = item.get("target").map(release_target).unwrap_or(Value::Null);
                        patches
                            .push(json!({ "target": target, "ops": item.get("patch").cloned().unwrap_or(json!([])) }));
                    }
                }
                other => self.leave(
                    &hr.file,
                    line,
                    format!("{what}: postRenderers kustomize {other}"),
                    "not supported: write what it changes as the release's `patches:`",
                ),
            }
        }
    }

    /// Lists a HelmRelease's settings that have no weaver equivalent.
    pub(super) fn helm_release_settings(&mut self, hr: &Obj, namespace: &str) {
        let what = hr.describe();
        let Some(Value::Object(spec)) = hr.object.get("spec") else { return };
        for (key, value) in spec {
            let why = match key.as_str() {
                "install" | "upgrade" | "rollback" | "uninstall" | "test" => {
                    let Some(settings) = value.as_object() else { continue };
                    let mut keys: Vec<&String> = settings.keys().filter(|k| k.as_str() != "createNamespace").collect();
                    keys.retain(|k| !matches!(settings[k.as_str()], Value::Null));
                    if key == "test" && settings.get("enable") != Some(&Value::Bool(true)) {
                        continue;
                    }
                    if keys.is_empty() {
                        continue;
                    }
                    let line = self.line(hr, Some(key));
                    let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
                    self.leave(
                        &hr.file,
                        line,
                        format!("{what}: {key} ({})", keys.join(", ")),
                        "not supported: weaver installs and upgrades alike (server-side apply), records a failed apply \
                         as failed and re-applies a revision with `weaver rollback`; CRDs in crds/ are always applied",
                    );
                    continue;
                }
                "suspend" if value == &Value::Bool(true) => {
                    "nothing reconciles between weaver's applies: leave the release out while it is suspended"
                }
                "driftDetection" => "`weaver drift` (and `--correct`), with `ignoreDifferences:` rules",
                "serviceAccountName" => {
                    "weaver applies as the kubeconfig's user, or as an EnvironmentSync's `serviceAccountName`"
                }
                "kubeConfig" => "a remote cluster: give the environment's `cluster.context`",
                "storageNamespace" if value.as_str() != Some(namespace) => {
                    "weaver keeps a release's records in the release's namespace"
                }
                "maxHistory" => "weaver keeps the last 10 revisions",
                "persistentClient" | "timeout" | "interval" | "releaseName" | "targetNamespace" | "values"
                | "valuesFrom" | "chart" | "chartRef" | "dependsOn" | "postRenderers" | "storageNamespace"
                | "suspend" => {
                    continue;
                }
                "commonMetadata" => "write the labels as the chart's values, or as the release's `patches:`",
                _ => "not a HelmRelease field weaver converts",
            };
            let line = self.line(hr, Some(key));
            self.leave(&hr.file, line, format!("{what}: {key}"), why);
        }
    }
}
