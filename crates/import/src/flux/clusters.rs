//! The clusters of a Flux repository: each cluster's entry point (a directory of
//! Kustomizations, given or found), and their names.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use weaver_core::error::{Location, Result};
use weaver_kustomize as kustomize;
use weaver_project::environment::LoadRestrictions;
use weaver_project::source::is_plain_name;
use weaver_project::values::merge_overrides;

use super::{Cluster, Import, Obj, git_url_identity, shown};

impl<'a> Import<'a> {
    /// The clusters `--clusters` names: the directory itself when it holds YAML files, else each
    /// of its subdirectories.
    pub(super) fn given_clusters(&mut self, given: &Path) -> Result<Vec<Cluster>> {
        let given_text = given.to_string_lossy().into_owned();
        let entries = self.join(&given_text).and_then(|dir| Some((self.source.list(&dir).ok()??, dir)));
        let Some((entries, dir)) = entries else {
            return Err(weaver_core::error::Error::new(format!(
                "--clusters {}: not a directory of the Flux repository",
                given.display()
            ))
            .with_help(
                "give the directory of the clusters (or of one cluster), relative to the Flux repository's root",
            ));
        };
        let is_yaml = |name: &str| name.ends_with(".yaml") || name.ends_with(".yml");
        let mut clusters = Vec::new();
        if entries.iter().any(|e| !e.is_dir && is_yaml(&e.name)) {
            clusters.push(Cluster { env: String::new(), found: "given (--clusters)".into(), dir, root: None });
        } else {
            for entry in entries.into_iter().filter(|e| e.is_dir && !e.name.starts_with('.')) {
                let found = format!("a directory of {} (--clusters)", given.display());
                clusters.push(Cluster { env: String::new(), found, dir: dir.join(entry.name), root: None });
            }
        }
        self.name_clusters(&mut clusters);
        Ok(clusters)
    }

    /// The clusters of the repository (see the module documentation).
    pub(super) fn clusters(&mut self) -> Result<Vec<Cluster>> {
        let mut files = Vec::new();
        self.walk(&self.root.clone(), false, &mut files);
        let mut clusters: Vec<Cluster> = Vec::new();
        // Kustomizations whose path holds a `flux-system` directory: a cluster's, whose
        // bootstrap files are elsewhere or gone.
        let mut holding_flux_system: Vec<Cluster> = Vec::new();
        // flux-instance HelmReleases' sync paths: a FluxInstance or a bootstrap written as it is
        // wins over them (a repository moving to the chart may hold one it does not apply yet).
        let mut from_charts: Vec<Cluster> = Vec::new();
        for file in files {
            for obj in self.objects_of(&file) {
                let instance =
                    if obj.kind() == "HelmRelease" && obj.is_flux() { self.instance_sync(&obj) } else { Value::Null };
                let field = |key: &str| instance.get(key).and_then(Value::as_str).unwrap_or_default();
                let sync_url = match obj.kind() {
                    "FluxInstance" if obj.is_flux() => obj.text("/spec/sync/url"),
                    "HelmRelease" => field("url"),
                    _ => "",
                };
                if !sync_url.is_empty() {
                    self.own_urls.insert(git_url_identity(sync_url));
                }
                // `flux bootstrap`'s Kustomization, or the flux-operator's FluxInstance syncing
                // this repository (written as one, or as the values of its chart).
                let (path, found) = match obj.kind() {
                    "Kustomization"
                        if obj.is_flux()
                            && obj.name() == "flux-system"
                            && obj.text("/spec/sourceRef/kind") == "GitRepository" =>
                    {
                        (obj.text("/spec/path"), "the bootstrap's flux-system Kustomization")
                    }
                    "Kustomization" if obj.is_flux() => {
                        let dir = self.join(obj.text("/spec/path"));
                        if let Some(dir) =
                            dir.filter(|d| matches!(self.source.list(&d.join("flux-system")), Ok(Some(_))))
                            && !holding_flux_system.iter().any(|c| c.dir == dir)
                        {
                            let found = format!(
                                "the path of Kustomization {} ({}), which holds flux-system/",
                                obj.name(),
                                obj.file.display()
                            );
                            holding_flux_system.push(Cluster { env: String::new(), found, dir, root: None });
                        }
                        continue;
                    }
                    "FluxInstance" if obj.is_flux() && obj.text("/spec/sync/kind") == "GitRepository" => {
                        (obj.text("/spec/sync/path"), "a FluxInstance's spec.sync.path")
                    }
                    "HelmRelease" if matches!(field("kind"), "GitRepository" | "") && !field("path").is_empty() => {
                        let from_values = obj.text("/spec/values/instance/sync/path") != field("path");
                        (
                            field("path"),
                            if from_values {
                                "a flux-instance HelmRelease's instance.sync.path (in its valuesFrom ConfigMap)"
                            } else {
                                "a flux-instance HelmRelease's instance.sync.path"
                            },
                        )
                    }
                    _ => continue,
                };
                let Some(dir) = self.join(path) else { continue };
                let found_in = if obj.kind() == "HelmRelease" { &mut from_charts } else { &mut clusters };
                if found_in.iter().any(|c| c.dir == dir) {
                    continue;
                }
                let found = format!("{found} ({})", obj.file.display());
                let root = (obj.kind() == "Kustomization").then_some(obj);
                found_in.push(Cluster { env: String::new(), found, dir, root });
            }
        }
        if clusters.is_empty() {
            clusters = from_charts;
        }
        if clusters.is_empty() {
            clusters = holding_flux_system;
        }
        self.say_clusters_not_taken(&clusters);
        if clusters.is_empty() {
            // `clusters/`, at the root or the shallowest elsewhere (`kubernetes/clusters`).
            let mut dirs = VecDeque::from([self.root.clone()]);
            while let Some(dir) = dirs.pop_front() {
                let Ok(Some(entries)) = self.source.list(&dir) else { continue };
                let subdirs: Vec<PathBuf> = entries
                    .into_iter()
                    .filter(|e| e.is_dir && !e.name.starts_with('.'))
                    .map(|e| dir.join(e.name))
                    .collect();
                if let Some(found) = subdirs.iter().find(|d| d.file_name().is_some_and(|n| n == "clusters")) {
                    let Ok(Some(entries)) = self.source.list(found) else { break };
                    for entry in entries.into_iter().filter(|e| e.is_dir && !e.name.starts_with('.')) {
                        let why = format!(
                            "a directory of {} (no bootstrap Kustomization, FluxInstance, or Kustomization of a path \
                             holding flux-system/ was found; --clusters names others)",
                            shown(found)
                        );
                        clusters.push(Cluster {
                            env: String::new(),
                            found: why,
                            dir: found.join(entry.name),
                            root: None,
                        });
                    }
                    break;
                }
                dirs.extend(subdirs);
            }
        }
        if clusters.is_empty() {
            let found = "no bootstrap Kustomization, FluxInstance, Kustomization of a path holding flux-system/ nor \
                         clusters/ directory was found: the whole repository (--clusters names the clusters' directory)";
            clusters.push(Cluster { env: "default".into(), found: found.into(), dir: self.root.clone(), root: None });
        }
        self.name_clusters(&mut clusters);
        Ok(clusters)
    }

    /// Says each directory of a `clusters/` holding a cluster found that is none of them, nor
    /// holds or is held by one, but holds Flux objects: a cluster whose bootstrap files
    /// (`flux-system/`) are not committed, which the import would otherwise drop unsaid.
    fn say_clusters_not_taken(&mut self, clusters: &[Cluster]) {
        let parents: BTreeSet<PathBuf> = clusters
            .iter()
            .filter_map(|c| c.dir.parent())
            .filter(|p| p.file_name().is_some_and(|n| n == "clusters"))
            .map(Path::to_path_buf)
            .collect();
        for parent in parents {
            let Ok(Some(entries)) = self.source.list(&parent) else { continue };
            for entry in entries.into_iter().filter(|e| e.is_dir && !e.name.starts_with('.')) {
                let dir = parent.join(&entry.name);
                if clusters.iter().any(|c| c.dir.starts_with(&dir) || dir.starts_with(&c.dir)) {
                    continue;
                }
                let mut files = Vec::new();
                self.walk(&dir, false, &mut files);
                if files.iter().any(|file| self.objects_of(file).iter().any(Obj::is_flux)) {
                    // `--clusters` is a path from the Flux repository's root.
                    let given = parent.strip_prefix(&self.root).unwrap_or(&parent);
                    self.not_taken.push(format!(
                        "not imported: {} holds Flux objects but no bootstrap (no flux-system/ Kustomization, \
                         FluxInstance or Kustomization of its path was found): `weaver import flux --clusters {}` \
                         imports every directory of {} as a cluster, this one included",
                        dir.display(),
                        shown(given),
                        shown(&parent)
                    ));
                }
            }
        }
    }

    /// A flux-instance HelmRelease's `instance.sync` values as helm-controller merges them: its
    /// inline `values` over its `valuesFrom` ConfigMaps, as the kustomization of its directory
    /// builds them (a `configMapGenerator`, often). Null for another HelmRelease; a ConfigMap
    /// that does not build or read counts as empty (the release's conversion says why later).
    pub(super) fn instance_sync(&self, hr: &Obj) -> Value {
        let inline = hr.object.pointer("/spec/values/instance/sync").cloned();
        let chart = [hr.name(), hr.text("/spec/chart/spec/chart"), hr.text("/spec/chartRef/name")];
        if inline.is_none() && !chart.iter().any(|name| name.contains("flux-instance")) {
            return Value::Null;
        }
        let mut sync = Map::new();
        let dir = hr.file.parent().unwrap_or(Path::new(""));
        if hr.object.pointer("/spec/valuesFrom").is_some() && self.kustomization_in(dir) {
            let location = Location::file(&hr.file);
            let built = kustomize::build(self.source, dir, &location, LoadRestrictions::None, &Default::default())
                .map(|built| built.resources)
                .unwrap_or_default();
            // As built: a `nameReference` configuration gives it the generated names.
            let built_hr =
                built.iter().find(|r| r.object["kind"] == "HelmRelease" && r.object["metadata"]["name"] == hr.name());
            let from = built_hr.map_or(&hr.object, |r| &r.object).pointer("/spec/valuesFrom").and_then(Value::as_array);
            for entry in
                from.into_iter().flatten().filter(|e| e["kind"] == "ConfigMap" && e.get("targetPath").is_none())
            {
                let key = entry.get("valuesKey").and_then(Value::as_str).unwrap_or("values.yaml");
                let text = built
                    .iter()
                    .find(|r| r.object["kind"] == "ConfigMap" && r.object["metadata"]["name"] == entry["name"])
                    .and_then(|r| r.object["data"][key].as_str());
                if let Some(Ok(Some(values))) = text.map(weaver_yaml::helm::from_str)
                    && let Some(Value::Object(found)) = values.pointer("/instance/sync")
                {
                    merge_overrides(&mut sync, found.clone());
                }
            }
        }
        if let Some(Value::Object(inline)) = inline {
            merge_overrides(&mut sync, inline);
        }
        Value::Object(sync)
    }

    /// Names each cluster's environment that has none.
    pub(super) fn name_clusters(&self, clusters: &mut [Cluster]) {
        // The environment is named by the cluster's directory under `clusters/`, else its last.
        let mut names = BTreeSet::new();
        for cluster in clusters.iter_mut() {
            if !cluster.env.is_empty() {
                continue;
            }
            let relative = cluster.dir.strip_prefix(&self.root).unwrap_or(&cluster.dir);
            let parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let parts = match parts.iter().position(|p| p == "clusters") {
                Some(i) if i + 1 < parts.len() => parts[i + 1..].to_vec(),
                _ => parts.last().cloned().into_iter().collect(),
            };
            let mut env: String = parts
                .join("-")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
                .collect();
            if env.is_empty() || !is_plain_name(&env) {
                env = "default".into();
            }
            let mut unique = env.clone();
            let mut n = 2;
            while !names.insert(unique.clone()) {
                unique = format!("{env}-{n}");
                n += 1;
            }
            cluster.env = unique;
        }
    }
}
