//! `environments/<env>.yaml` loaded: `extends` resolution and validation (the file format is
//! `file.rs`; releases `release.rs`; names `names.rs`; the `needs` order `needs.rs`).
//!
//! Merge rules for `extends` (documented in docs/src/concepts/environments.md): scalars of the child win; `values`,
//! `labels` and `cluster` merge deeply; `substitute` merges key by key (the child's variable
//! wins), as `labels` do; lists (`secrets`, `needs`, `valuesFiles`, `substituteFrom`,
//! `patches`, `apiVersions`) replace the base's list; releases merge by `name`, base releases first in their
//! order, then the child's new ones. `abstract` is never inherited.
//!
//! `ignoreDifferences` is a list too: a derived file's replaces its base's, at the environment
//! and per release; a release follows the environment's rules and then its own. So is
//! `notifications` (`notifications: []` tells no one of a derived environment).
//! `healthChecks` (CEL rules, compiled as the file loads: `crate::health`), where a
//! release's own rules come before the environment's.
//!
//! `substitute` and `substituteFrom` (Flux's `postBuild` variables, see
//! `weaver_kustomize::substitute`) belong to kustomization releases: on a release that ends up
//! a chart they are an error naming where they were written.

mod file;
mod names;
mod needs;
mod release;

use file::EnvironmentFile;
use names::{NAMESPACE_NAME, check_api_version, check_kube_version, located_namespace, path_ref};
pub use names::{is_release_name, variable_value};
pub use needs::needs_order;
use needs::{check_needs, order_by_needs};
use release::PartialRelease;
pub use release::Repository;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};

use crate::chart::RemoteChart;
use crate::health::{HealthCheck, HealthCheckFile};
use crate::ignore::{IgnoreRule, IgnoreRuleFile};
use crate::image_updates::ImageUpdate;
use crate::notifications::Notification;
use crate::promotion::{Promoted, Promotion, read_promoted};
use crate::source::{PathRef, Source, is_plain_name, utf8};
use crate::values::{deep_merge, merge_overrides, read_layer};

pub const ENVIRONMENTS_DIR: &str = "environments";

/// Where `weaver apply` keeps an environment's lock (a Lease) unless `cluster.lockNamespace`
/// says otherwise: it exists in every cluster, and kube-controller-manager and kube-scheduler
/// keep their leader-election Leases there too.
pub const DEFAULT_LOCK_NAMESPACE: &str = "kube-system";

/// Which rendered objects a patch applies to; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchTarget {
    /// `apps/v1`, or just the group (`apps`); empty string for the core group.
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PatchBody {
    /// A strategic merge patch.
    Strategic(Value),
    /// RFC 6902 operations.
    Json6902(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub target: PatchTarget,
    pub body: PatchBody,
    pub at: Location,
}

/// Where the files a kustomization reads may be (kustomize's `--load-restrictor`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadRestrictions {
    /// Inside the kustomization's directory: kustomize's default, `LoadRestrictionsRootOnly`.
    #[default]
    RootOnly,
    /// Anywhere in the repository: `LoadRestrictionsNone`, as Flux's kustomize-controller builds.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub name: String,
    /// The chart's name or packaged chart's path; for a kustomization, its directory as written.
    pub chart: String,
    /// `kustomize: <dir>`: the release is the kustomization in that directory of the repository
    /// (`chart` then holds the directory as written, for listings and records).
    pub kustomize: Option<PathBuf>,
    /// For a `kustomize` release of a directory without a kustomization file: the manifest files
    /// (from the repository's root) of the kustomization Flux's kustomize-controller generates
    /// for such a directory (`resources:` listing them), whose objects are taken as written.
    /// The releases of an OCI artifact of rendered manifests ([`Environment::of_manifests`]);
    /// empty for any other.
    pub generated_resources: Vec<PathBuf>,
    /// A chart from a chart repository or an OCI registry (`chart` then reads
    /// `<chart as written>@<version>`), rendered from the chart cache as `charts.lock` pins it.
    pub remote: Option<RemoteChart>,
    pub namespace: String,
    pub create_namespace: bool,
    pub needs: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub values: Map<String, Value>,
    pub values_files: Vec<PathRef>,
    /// SOPS-encrypted values files of this release alone (helmfile's release `secrets:`),
    /// merged over `values`.
    pub secrets: Vec<PathRef>,
    /// `substitute`: a kustomization's variables (Flux's `postBuild.substitute`), each value as
    /// the string substituted for `${name}`; empty for a chart.
    pub substitute: BTreeMap<String, String>,
    /// `substituteFrom`: files of variables (plain or SOPS-encrypted flat mappings), in order:
    /// a later file's variable wins, and `substitute` wins over all of them.
    pub substitute_from: Vec<PathRef>,
    /// `loadRestrictions`: where the files a kustomization reads may be.
    pub load_restrictions: LoadRestrictions,
    pub installed: bool,
    pub patches: Vec<Patch>,
    /// `ignoreDifferences`: the environment's rules, then the release's own.
    pub ignore_differences: Vec<IgnoreRule>,
    /// `healthChecks`: the release's own rules, then the environment's (the first for a kind
    /// decides, so the release's win).
    pub health_checks: Vec<HealthCheck>,
    /// Image repository → tag, set on the containers of that repository after rendering: the
    /// image pins `weaver promote` wrote (`crate::promotion`).
    pub images: BTreeMap<String, String>,
    /// Where the release is (last) defined: the most derived file that mentions it.
    pub at: Location,
    /// Where its `chart` (or `kustomize`) is set, for "chart not found" errors.
    pub chart_at: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    /// The environment's own file and the files it extends, most derived first.
    pub files: Vec<PathBuf>,
    pub is_abstract: bool,
    /// `labels`: what `--env-selector` selects environments by.
    pub labels: BTreeMap<String, String>,
    /// `needs`: the environments a fleet apply applies before this one, each with where it
    /// is written.
    pub needs: Vec<(String, Location)>,
    /// `wave`: a fleet apply applies every environment of a lower wave before this one.
    pub wave: i32,
    pub context: Option<String>,
    /// The namespace of the Lease that keeps two applies of this environment apart
    /// (`cluster.lockNamespace`, default [`DEFAULT_LOCK_NAMESPACE`]).
    pub lock_namespace: String,
    pub namespace: String,
    /// `values`, over each file's `valuesFiles` (read when the environment loads), root first.
    pub values: Map<String, Value>,
    /// The same layers merged as helmfile merges an environment's values: a `null` replaces
    /// what is below it and stays, a key whose value is null (`hasKey` finds it), where
    /// `values` drops the key. What `.gotmpl` values files see as `.Values`.
    pub helmfile_values: Map<String, Value>,
    /// Every `valuesFiles` entry of its files, root first: what `values` was read from.
    pub values_files: Vec<PathRef>,
    pub secrets: Vec<PathRef>,
    pub identity_file: Option<PathRef>,
    /// The Kubernetes version Helm charts see as `.Capabilities.KubeVersion` (`kubeVersion`,
    /// `v1.32.0` form); None for helm's default.
    pub kube_version: Option<String>,
    /// `apiVersions`: what Helm charts see in `.Capabilities.APIVersions` offline besides
    /// helm's default group/versions (helm's `--api-versions`: `group/version` or
    /// `group/version/Kind`), a connected server's discovery replacing both; weaver charts see
    /// them in `capabilities.apiVersions`, connected or not.
    pub api_versions: Vec<String>,
    /// In `needs` order: every release comes after the releases it needs.
    pub releases: Vec<Release>,
    /// `repositories:`, by name: what releases' `<repository>/<chart>` and Helm charts'
    /// `@name` dependencies refer to.
    pub repositories: BTreeMap<String, Repository>,
    /// `ignoreDifferences`: rules every release of the environment follows (each release's
    /// `ignore_differences` holds them too).
    pub ignore_differences: Vec<IgnoreRule>,
    /// `notifications`: the webhooks told of this environment's applies and drift.
    pub notifications: Vec<Notification>,
    /// `healthChecks`: CEL rules saying when objects of a kind are healthy, compiled (each
    /// release's `health_checks` holds them too, after its own).
    pub health_checks: Vec<HealthCheck>,
    /// `promotion`: what the environment takes from another (`weaver promote`), with what it
    /// took last; its pins are already laid over the releases.
    pub promotion: Option<Promotion>,
    /// `imageUpdates`: the image repositories whose new tags the environment takes (`weaver
    /// images update`), with the tags it wrote last; those are already laid over the releases.
    pub image_updates: Option<ImageUpdates>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageUpdates {
    pub entries: Vec<ImageUpdate>,
    /// What `weaver images update` wrote last (`promotions/<env>.yaml`), empty before the first.
    pub written: Promoted,
    /// Where `imageUpdates:` is written.
    pub at: Location,
}

impl PathRef {
    fn unlocated(&self) -> PathRef {
        PathRef { path: self.path.clone(), at: Location::file("") }
    }
}

impl Release {
    /// Whether both deploy the same thing: every field but where it was written.
    pub fn same_definition(&self, other: &Release) -> bool {
        self.without_locations() == other.without_locations()
    }

    fn without_locations(&self) -> Release {
        let nowhere = Location::file("");
        Release {
            values_files: self.values_files.iter().map(PathRef::unlocated).collect(),
            secrets: self.secrets.iter().map(PathRef::unlocated).collect(),
            substitute_from: self.substitute_from.iter().map(PathRef::unlocated).collect(),
            patches: self.patches.iter().map(|p| Patch { at: nowhere.clone(), ..p.clone() }).collect(),
            ignore_differences: self.ignore_differences.iter().map(IgnoreRule::unlocated).collect(),
            health_checks: self.health_checks.iter().map(HealthCheck::unlocated).collect(),
            at: nowhere.clone(),
            chart_at: nowhere,
            ..self.clone()
        }
    }
}

impl Environment {
    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.name == name)
    }

    /// Whether the environment-wide settings, which every release depends on, are the same:
    /// every field but the releases, the files and where things were written.
    pub fn same_settings(&self, other: &Environment) -> bool {
        self.settings_only() == other.settings_only()
    }

    /// Environment `name` of rendered manifests (an OCI artifact's tree, applied as it is, as
    /// Flux applies one): each of `releases` (its name, its directory and its files, from the
    /// repository's root) a kustomization generated for the files. Objects without a
    /// namespace get `namespace`, as do the release records and the environment's lock.
    pub fn of_manifests(name: &str, namespace: &str, releases: Vec<(String, PathBuf, Vec<PathBuf>)>) -> Environment {
        let releases = releases
            .into_iter()
            .map(|(release, dir, files)| {
                let at = Location::file(files.first().unwrap_or(&dir));
                Release {
                    name: release,
                    chart: dir.display().to_string(),
                    kustomize: Some(dir),
                    generated_resources: files,
                    remote: None,
                    namespace: namespace.to_string(),
                    create_namespace: false,
                    needs: Vec::new(),
                    labels: BTreeMap::new(),
                    values: Map::new(),
                    values_files: Vec::new(),
                    secrets: Vec::new(),
                    substitute: BTreeMap::new(),
                    substitute_from: Vec::new(),
                    load_restrictions: LoadRestrictions::default(),
                    installed: true,
                    patches: Vec::new(),
                    ignore_differences: Vec::new(),
                    health_checks: Vec::new(),
                    images: BTreeMap::new(),
                    chart_at: at.clone(),
                    at,
                }
            })
            .collect();
        Environment {
            name: name.to_string(),
            files: Vec::new(),
            is_abstract: false,
            labels: BTreeMap::new(),
            needs: Vec::new(),
            wave: 0,
            context: None,
            lock_namespace: namespace.to_string(),
            namespace: namespace.to_string(),
            values: Map::new(),
            helmfile_values: Map::new(),
            values_files: Vec::new(),
            secrets: Vec::new(),
            identity_file: None,
            kube_version: None,
            api_versions: Vec::new(),
            releases,
            repositories: BTreeMap::new(),
            ignore_differences: Vec::new(),
            notifications: Vec::new(),
            health_checks: Vec::new(),
            promotion: None,
            image_updates: None,
        }
    }

    fn settings_only(&self) -> Environment {
        Environment {
            files: Vec::new(),
            releases: Vec::new(),
            // What they hold is in `values`: which files held it changes nothing deployed.
            values_files: Vec::new(),
            secrets: self.secrets.iter().map(PathRef::unlocated).collect(),
            identity_file: self.identity_file.as_ref().map(PathRef::unlocated),
            needs: self.needs.iter().map(|(name, _)| (name.clone(), Location::file(""))).collect(),
            ignore_differences: self.ignore_differences.iter().map(IgnoreRule::unlocated).collect(),
            // Who is told of an apply changes nothing any release deploys.
            notifications: Vec::new(),
            health_checks: self.health_checks.iter().map(HealthCheck::unlocated).collect(),
            ..self.clone()
        }
    }
}

pub fn environment_path(name: &str) -> PathBuf {
    Path::new(ENVIRONMENTS_DIR).join(format!("{name}.yaml"))
}

/// The names of all environments (abstract ones included), sorted.
pub fn list_environments(source: &dyn Source) -> Result<Vec<String>> {
    let dir = Path::new(ENVIRONMENTS_DIR);
    let entries = source.list(dir).map_err(|err| Error::io("list directory", dir, err))?.ok_or_else(|| {
        Error::new(format!("no `{ENVIRONMENTS_DIR}/` directory in {}", source.describe()))
            .with_help("run weaver in a weaver repository, or point --repo at one")
    })?;
    Ok(entries
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| e.name.strip_suffix(".yaml").map(str::to_string))
        .collect())
}

fn location(path: &Path, span: &serde_saphyr::Location) -> Location {
    Location::at(path, span.line(), span.column())
}

/// Loads `environments/<name>.yaml`, resolves `extends`, and validates the result.
pub fn load_environment(source: &dyn Source, name: &str) -> Result<Environment> {
    load(source, name, None)
}

/// [`load_environment`], with `promoted` in place of its promotions file: the environment as a
/// promotion would leave it.
pub fn load_environment_promoted(source: &dyn Source, name: &str, promoted: Promoted) -> Result<Environment> {
    load(source, name, Some(promoted))
}

fn load(source: &dyn Source, name: &str, promoted: Option<Promoted>) -> Result<Environment> {
    // A name, not a path: `./dev` and `dev` would be one environment with two identities.
    if !is_plain_name(name) {
        return Err(Error::new(format!("`{name}` is not an environment name"))
            .with_help("name an environment: a file of environments/, without `.yaml` (weaver envs lists them)"));
    }
    let path = environment_path(name);
    let Some(bytes) = source.read(&path).map_err(|err| Error::io("read environment file", &path, err))? else {
        let known = list_environments(source)?;
        return Err(Error::new(format!("unknown environment `{name}`: {} does not exist", path.display()))
            .with_help(format!("known environments: {}", known.join(", ")))
            .as_not_found());
    };

    // Walk the chain leaf → root, catching cycles and missing bases.
    let mut chain: Vec<(PathBuf, EnvironmentFile)> = Vec::new();
    let mut current = path.clone();
    let mut text = utf8(&path, bytes)?;
    loop {
        let file: EnvironmentFile = weaver_yaml::from_str_as(&current, &text, "invalid environment file")?;
        let next = file.extends.as_ref().map(|e| (e.value.clone(), location(&current, &e.referenced)));
        chain.push((current.clone(), file));
        let Some((base, at)) = next else { break };
        // A name, not a path: `extends: ../x` would otherwise reach any YAML file of the repository.
        if !is_plain_name(&base) {
            return Err(Error::at(at, format!("`extends: {base}` is not an environment name"))
                .with_help("name an environment: a file of environments/, without `.yaml`"));
        }
        let base_path = environment_path(&base);
        if chain.iter().any(|(p, _)| *p == base_path) {
            let cycle: Vec<String> =
                chain.iter().map(|(p, _)| p.display().to_string()).chain([base_path.display().to_string()]).collect();
            return Err(Error::at(at, format!("`extends` cycle: {}", cycle.join(" → "))));
        }
        let Some(bytes) = source.read_named(&base_path, &at, "environment file")? else {
            return Err(Error::at(at, format!("`extends: {base}`: {} does not exist", base_path.display())));
        };
        text = utf8(&base_path, bytes)?;
        current = base_path;
    }

    let files: Vec<PathBuf> = chain.iter().map(|(p, _)| p.clone()).collect();
    let is_abstract = chain[0].1.is_abstract.unwrap_or(false);

    let mut context = None;
    let mut labels = BTreeMap::new();
    let mut needs = Vec::new();
    let mut wave = 0;
    let mut lock_namespace = None;
    let mut namespace = None;
    let mut values = Map::new();
    let mut helmfile_values = Map::new();
    let mut values_files = Vec::new();
    let mut secrets = Vec::new();
    let mut identity_file = None;
    let mut kube_version = None;
    let mut api_versions = Vec::new();
    let mut repositories: BTreeMap<String, Repository> = BTreeMap::new();
    let mut ignore_differences = Vec::new();
    let mut notifications = Vec::new();
    let mut health_checks = Vec::new();
    let mut promotion = None;
    let mut image_updates: Option<(Vec<ImageUpdate>, Location)> = None;
    let mut releases: Vec<PartialRelease> = Vec::new();
    // Where each release name is in `releases`: a derived file's release merges into its base's.
    let mut position: HashMap<String, usize> = HashMap::new();

    // Root first, so that each more derived file overrides what it inherits.
    for (file_path, file) in chain.into_iter().rev() {
        if let Some(cluster) = file.cluster {
            context = cluster.context.or(context);
            if let Some(name) = cluster.lock_namespace {
                NAMESPACE_NAME.check(&name.value, &location(&file_path, &name.referenced))?;
                lock_namespace = Some(name.value);
            }
        }
        if let Some(more) = file.labels {
            labels.extend(more);
        }
        if let Some(list) = file.needs {
            needs = list.into_iter().map(|s| (s.value, location(&file_path, &s.referenced))).collect();
        }
        wave = file.wave.unwrap_or(wave);
        if let Some(ns) = file.namespace {
            namespace = Some(located_namespace(&file_path, ns)?);
        }
        // A file's values files are below its own `values`, and above what it extends.
        for spanned in file.values_files.unwrap_or_default() {
            let file_ref = path_ref(&file_path, spanned);
            let layer = read_layer(source, &file_ref, "values file")?;
            merge_overrides(&mut helmfile_values, layer.clone());
            deep_merge(&mut values, layer);
            values_files.push(file_ref);
        }
        if let Some(v) = file.values {
            merge_overrides(&mut helmfile_values, v.clone());
            deep_merge(&mut values, v);
        }
        if let Some(list) = file.secrets {
            secrets = list.into_iter().map(|s| path_ref(&file_path, s)).collect();
        }
        if let Some(id) = file.identity_file {
            identity_file = Some(path_ref(&file_path, id));
        }
        if let Some(version) = file.kube_version {
            check_kube_version(&version.value, &location(&file_path, &version.referenced))?;
            kube_version = Some(version.value);
        }
        if let Some(list) = file.api_versions {
            api_versions = list
                .into_iter()
                .map(|entry| check_api_version(entry.value, &location(&file_path, &entry.referenced)))
                .collect::<Result<_>>()?;
        }
        if let Some(rules) = file.ignore_differences {
            ignore_differences = ignore_rules(&file_path, rules)?;
        }
        if let Some(list) = file.notifications {
            notifications = crate::notifications::parse_all(&file_path, list)?;
        }
        if let Some(rules) = file.health_checks {
            health_checks = self::health_checks(&file_path, rules)?;
        }
        if let Some(spanned) = file.promotion {
            promotion = Some(Promotion::parse(&file_path, spanned)?);
        }
        if let Some(spanned) = file.image_updates {
            let at = location(&file_path, &spanned.referenced);
            let entries = spanned
                .value
                .into_iter()
                .map(|entry| ImageUpdate::parse(&file_path, entry))
                .collect::<Result<Vec<_>>>()?;
            image_updates = Some((entries, at));
        }
        for spanned in file.repositories.unwrap_or_default() {
            let repository = Repository::parse(&file_path, spanned)?;
            repositories.insert(repository.name.clone(), repository);
        }
        let mut seen_here: HashMap<String, Location> = HashMap::new();
        for spanned in file.releases.unwrap_or_default() {
            let release = PartialRelease::parse(&file_path, spanned)?;
            if let Some(first) = seen_here.insert(release.name.clone(), release.at.clone()) {
                let what = format!("release `{}`", release.name);
                return Err(super::defined_twice(release.at, &what, "this file", &first));
            }
            match position.get(&release.name) {
                Some(&at) => releases[at].merge(release),
                None => {
                    position.insert(release.name.clone(), releases.len());
                    releases.push(release);
                }
            }
        }
    }

    let namespace = namespace.unwrap_or_else(|| "default".to_string());
    // An abstract environment may leave a release's chart to the environments extending it (a
    // helmfile layout); such a release is not one of its own, which never render anyway.
    let releases: Vec<PartialRelease> = releases.into_iter().filter(|r| !is_abstract || r.chart.is_some()).collect();
    check_needs(&releases)?;
    let releases = releases
        .into_iter()
        .map(|r| r.finish(&namespace, &repositories, &ignore_differences, &health_checks))
        .collect::<Result<Vec<_>>>()?;
    let mut releases = order_by_needs(releases)?;
    // The promotions file is the promotion's or the image updates': never both.
    if let (Some(promotion), Some((_, at))) = (&promotion, &image_updates) {
        return Err(Error::at(at.clone(), format!("environment `{name}` has both `imageUpdates` and `promotion`"))
            .with_help(format!(
                "new images enter the first environment of a chain; this one takes them from `{}` ({})",
                promotion.from, promotion.at
            )));
    }
    let mut promoted = promoted;
    if let Some(promotion) = &mut promotion {
        promotion.promoted = match promoted.take() {
            Some(promoted) => promoted,
            None => read_promoted(source, name)?,
        };
        release::lay_promotion(promotion, name, &mut releases)?;
    }
    let image_updates = match image_updates {
        None => None,
        Some((entries, at)) => {
            let written = match promoted {
                Some(promoted) => promoted,
                None => read_promoted(source, name)?,
            };
            release::lay_image_updates(&entries, &written, name, &mut releases)?;
            Some(ImageUpdates { entries, written, at })
        }
    };

    Ok(Environment {
        name: name.to_string(),
        files,
        is_abstract,
        labels,
        needs,
        wave,
        context,
        lock_namespace: lock_namespace.unwrap_or_else(|| DEFAULT_LOCK_NAMESPACE.to_string()),
        namespace,
        values,
        helmfile_values,
        values_files,
        secrets,
        identity_file,
        repositories,
        kube_version,
        api_versions,
        releases,
        ignore_differences,
        notifications,
        health_checks,
        promotion,
        image_updates,
    })
}

fn ignore_rules(file: &Path, rules: Vec<Spanned<IgnoreRuleFile>>) -> Result<Vec<IgnoreRule>> {
    rules.into_iter().map(|rule| IgnoreRule::parse(file, rule)).collect()
}

/// One `healthChecks` list, at most one rule a kind: the first for a kind decides, so a second
/// would be silently ignored.
fn health_checks(file: &Path, rules: Vec<Spanned<HealthCheckFile>>) -> Result<Vec<HealthCheck>> {
    let mut checks: Vec<HealthCheck> = Vec::new();
    for rule in rules {
        let check = HealthCheck::parse(file, rule)?;
        if let Some(first) = checks.iter().find(|c| c.group == check.group && c.kind == check.kind) {
            let group = if check.group.is_empty() { "the core group" } else { check.group.as_str() };
            let what = format!("the health check for kind `{}` of {group}", check.kind);
            return Err(super::defined_twice(check.at, &what, "this list", &first.at).with_help(
                "a rule matches every version of its group: keep one rule a kind, in one `healthChecks` list",
            ));
        }
        checks.push(check);
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::FsSource;
    use crate::notifications::DEFAULT_TIMEOUT as DEFAULT_NOTIFICATION_TIMEOUT;

    /// `Debug` of a parse result without serde-saphyr's byte spans, which the direct reader
    /// does not make (weaver reads only lines and columns).
    fn without_spans(text: String) -> String {
        let spans = regex::Regex::new(r", span: Span \{[^}]*\}|, source_id: \d+").unwrap();
        spans.replace_all(&text, "").into_owned()
    }

    #[test]
    fn environment_files_are_read_directly_as_serde_saphyr_reads_them() {
        // A copy of the demo's environments.
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/environments");
        let entries = std::fs::read_dir(&demo).unwrap_or_else(|e| panic!("{}: {e}", demo.display()));
        let mut texts: Vec<(String, String)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
            .map(|entry| (entry.path().display().to_string(), std::fs::read_to_string(entry.path()).unwrap()))
            .collect();
        assert!(!texts.is_empty(), "no environment file in {}", demo.display());
        texts.push((
            "inline".to_string(),
            "\
# an environment
extends: base
namespace: 'shop-é'   # quoted, after a non-ASCII character
cluster: {context: kind-é, lockNamespace: ops}
labels: {region: eu, tier: prod}
kubeVersion: \"1.31.0\"
apiVersions: [gateway.networking.k8s.io/v1, v1/Pod]
values: {domain: é.example, replicas: 3, ratio: 1.5, flag: yes, list: [a, 1, true]}
# a comment

secrets: [secrets/dev.yaml]
notifications:
  - name: ops
    type: json
    url: {fromEnv: OPS_HOOK}
    events: [apply, drift]
    timeout: 10s
  - name: team
    type: slack
    url:
      fromSecret: {file: secrets/hooks.yaml, key: slack}
releases:
- name: web
  chart: web
  namespace:  é-web
  createNamespace: true
  needs: [db, cache]
  labels: {tier: front, count: '1'}
  valuesFiles:
    - values/web.yaml
  values:
    image: {tag: '1.2'}
    script: |
      echo é
  installed: false
  patches:
    - target: {kind: Deployment, name: web}
      patch:
        spec: {replicas: 2}
    - target: {apiVersion: apps/v1}
      ops:
        - {op: replace, path: /spec/replicas, value: 1}
-   name: db
    kustomize: kustomize/db
    substitute: {cluster_name: eu-1, replicas: 3, debug: false, note: 'a b'}
    substituteFrom: [vars/db.yaml]
"
            .to_string(),
        ));
        assert!(
            weaver_yaml::nodes::read::<EnvironmentFile>(&texts.last().unwrap().1, &weaver_yaml::options()).is_some()
        );
        let mut direct = 0;
        for (name, text) in &texts {
            let reference = serde_saphyr::from_str_with_options::<EnvironmentFile>(text, weaver_yaml::options());
            if let Some(fast) = weaver_yaml::nodes::read::<EnvironmentFile>(text, &weaver_yaml::options()) {
                direct += 1;
                let reference =
                    reference.unwrap_or_else(|e| panic!("{name}: read directly, refused by serde-saphyr: {e}"));
                assert_eq!(without_spans(format!("{fast:?}")), without_spans(format!("{reference:?}")), "{name}");
            }
        }
        assert!(direct * 4 >= texts.len() * 3, "only {direct} of {} environment files read directly", texts.len());
    }

    #[test]
    fn what_was_promoted_is_laid_over_the_releases() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            std::fs::create_dir_all(dir.path().join(path).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(path), text).unwrap();
        };
        write(
            "environments/prod.yaml",
            "repositories: [{name: stable, url: https://charts.example}]
promotion: {from: staging, pins: [{release: db, chart: true}, {release: web, values: image.tag}]}
releases:
  - {name: web, chart: web, values: {image: {tag: 1.0.0, pull: Always}}}
  - {name: db, chart: stable/postgres, version: '~15.0'}
",
        );
        let source = FsSource::new(dir.path());
        let before = load_environment(&source, "prod").unwrap();
        assert_eq!(before.release("db").unwrap().chart, "stable/postgres@~15.0");
        write(
            "promotions/prod.yaml",
            "from: staging
releases:
  db: {revision: 3, applied: '2026-11-26T03:00:00Z', version: 15.2.1}
  web: {revision: 7, applied: '2026-11-26T03:00:00Z', images: {registry.example/web: '2.0'}, values: {image: {tag: 1.1.0}}}
",
        );
        let env = load_environment(&source, "prod").unwrap();
        let web = env.release("web").unwrap();
        assert_eq!(Value::Object(web.values.clone()), serde_json::json!({"image": {"tag": "1.1.0", "pull": "Always"}}));
        assert_eq!(web.images, BTreeMap::from([("registry.example/web".to_string(), "2.0".to_string())]));
        let db = env.release("db").unwrap();
        assert_eq!(
            (db.chart.as_str(), db.remote.as_ref().unwrap().version.as_str()),
            ("stable/postgres@15.2.1", "15.2.1")
        );
        assert_eq!(env.promotion.as_ref().unwrap().promoted.releases["db"].revision, 3);

        write("promotions/prod.yaml", "from: staging\nreleases:\n  gone: {revision: 1, applied: x}\n");
        let err = load_environment(&source, "prod").unwrap_err().to_string();
        assert!(err.contains("promotions/prod.yaml") && err.contains("release `gone`"), "{err}");
    }

    fn load(files: &[(&str, &str)], name: &str) -> Result<Environment> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(ENVIRONMENTS_DIR).join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        load_environment(&FsSource::new(dir.path()), name)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(100))]

        /// Any environment file (and base) is an environment or an error, never a panic.
        #[test]
        fn arbitrary_input_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            child in weaver_arbitrary::arbitrary_yaml(),
            base in weaver_arbitrary::arbitrary_yaml(),
        ) {
            let _ = load(&[("dev.yaml", &String::from_utf8_lossy(&bytes))], "dev");
            let _ = load(&[("dev.yaml", &format!("extends: base\n{child}")), ("base.yaml", &base)], "dev");
            let _ = load(&[("dev.yaml", &child)], "dev");
        }
    }

    #[test]
    fn labels_merge_key_by_key_through_extends() {
        let files = [
            ("base.yaml", "abstract: true\nlabels: {tier: prod, region: eu}\n"),
            ("prod-us.yaml", "extends: base\nlabels: {region: us, team: a}\n"),
            ("dev.yaml", "namespace: dev\n"),
        ];
        let labels = load(&files, "prod-us").unwrap().labels;
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("region", "us"), ("team", "a"), ("tier", "prod")]);
        assert!(load(&files, "dev").unwrap().labels.is_empty());
    }

    #[test]
    fn needs_and_wave_are_inherited_and_replaced_through_extends() {
        let files = [
            ("base.yaml", "abstract: true\nwave: 2\nneeds: [staging]\n"),
            ("prod-eu.yaml", "extends: base\n"),
            ("prod-us.yaml", "extends: base\nwave: 3\nneeds:\n  - prod-eu\n"),
            ("dev.yaml", "namespace: dev\n"),
        ];
        let eu = load(&files, "prod-eu").unwrap();
        assert_eq!((eu.wave, eu.needs[0].0.as_str()), (2, "staging"));
        assert_eq!(eu.needs[0].1.path, Path::new("environments/base.yaml"), "where it is written");
        let us = load(&files, "prod-us").unwrap();
        assert_eq!((us.wave, us.needs.len(), us.needs[0].0.as_str()), (3, 1, "prod-eu"));
        assert_eq!(us.needs[0].1.line, Some(4));
        let dev = load(&files, "dev").unwrap();
        assert_eq!((dev.wave, dev.needs.len()), (0, 0));
        assert!(load(&[("x.yaml", "wave: first\n")], "x").unwrap_err().to_string().contains("x.yaml:1"));
    }

    #[test]
    fn lock_namespace_defaults_to_kube_system_and_is_inherited_through_cluster() {
        let files = [
            ("base.yaml", "abstract: true\ncluster:\n  lockNamespace: weaver-locks\n"),
            ("prod.yaml", "extends: base\ncluster:\n  context: prod-eu\n"),
            ("staging.yaml", "extends: base\ncluster:\n  lockNamespace: staging-locks\n"),
            ("dev.yaml", "cluster: { context: kind }\n"),
        ];
        let prod = load(&files, "prod").unwrap();
        assert_eq!((prod.lock_namespace.as_str(), prod.context.as_deref()), ("weaver-locks", Some("prod-eu")));
        assert_eq!(load(&files, "staging").unwrap().lock_namespace, "staging-locks");
        assert_eq!(load(&files, "dev").unwrap().lock_namespace, DEFAULT_LOCK_NAMESPACE);
    }

    #[test]
    fn an_abstract_base_may_leave_a_release_s_chart_to_the_environments_extending_it() {
        let files = [
            (
                "base.yaml",
                "abstract: true\nreleases:\n  - name: worker\n    namespace: jobs\n  - name: web\n    chart: web\n",
            ),
            ("dev.yaml", "extends: base\nreleases:\n  - name: worker\n    chart: worker\n"),
            ("broken.yaml", "extends: base\n"),
        ];
        let base = load(&files, "base").unwrap();
        assert!(base.is_abstract);
        assert_eq!(base.releases.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["web"]);
        let dev = load(&files, "dev").unwrap();
        let worker = dev.releases.iter().find(|r| r.name == "worker").unwrap();
        assert_eq!((worker.chart.as_str(), worker.namespace.as_str()), ("worker", "jobs"));
        // An environment that is not abstract must give every release its chart.
        let err = load(&files, "broken").unwrap_err();
        assert!(err.to_string().starts_with("environments/base.yaml:3:5: release `worker` has no `chart`"), "{err}");
    }

    #[test]
    fn substitute_merges_key_by_key_through_extends_and_substitute_from_is_replaced() {
        let files = [
            (
                "base.yaml",
                "releases:\n  - name: app\n    kustomize: app\n    substitute: {cluster: base, replicas: 2, ratio: 1.5}\n    substituteFrom: [vars/base.yaml]\n",
            ),
            (
                "dev.yaml",
                "extends: base\nreleases:\n  - name: app\n    substitute:\n      cluster: dev\n      debug: true\n      pem: \"a\\nb\"\n    substituteFrom: [vars/dev.yaml, vars/more.yaml]\n",
            ),
        ];
        let dev = load(&files, "dev").unwrap();
        let app = dev.release("app").unwrap();
        let expected: BTreeMap<String, String> =
            [("cluster", "dev"), ("replicas", "2"), ("ratio", "1.5"), ("debug", "true"), ("pem", "ab")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(app.substitute, expected);
        let from: Vec<&Path> = app.substitute_from.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(from, [Path::new("vars/dev.yaml"), Path::new("vars/more.yaml")]);
        // The base alone keeps its own.
        let base = load(&files, "base").unwrap();
        assert_eq!(base.release("app").unwrap().substitute["cluster"], "base");
    }

    #[test]
    fn substitute_belongs_to_kustomizations_even_when_a_derived_file_makes_the_release_a_chart() {
        let files = [
            ("base.yaml", "releases:\n  - name: app\n    kustomize: app\n    substitute: {cluster: eu}\n"),
            ("dev.yaml", "extends: base\nreleases:\n  - name: app\n    chart: app\n"),
        ];
        let err = load(&files, "dev").unwrap_err();
        assert_eq!(err.to_string(), "environments/base.yaml:4:27: release `app`: `substitute` is for kustomizations");
    }

    #[test]
    fn ignore_rules_are_inherited_through_extends_and_a_release_follows_the_environment_s_then_its_own() {
        let files = [
            (
                "base.yaml",
                "abstract: true\nignoreDifferences:\n  - managers: [kube-controller-manager]\nreleases:\n  - name: web\n    chart: web\n    ignoreDifferences:\n      - {kind: Deployment, jsonPointers: [/spec/replicas]}\n  - name: api\n    chart: api\n",
            ),
            ("dev.yaml", "extends: base\n"),
            (
                "prod.yaml",
                "extends: base\nignoreDifferences:\n  - {group: admissionregistration.k8s.io, jsonPointers: ['/webhooks/*/clientConfig/caBundle']}\nreleases:\n  - name: web\n    ignoreDifferences: []\n",
            ),
        ];
        let pointers = |env: &Environment, release: &str| -> Vec<String> {
            let rules = &env.release(release).unwrap().ignore_differences;
            rules
                .iter()
                .map(|r| format!("{:?}{:?}", r.managers, r.pointers.iter().map(|p| &p.text).collect::<Vec<_>>()))
                .collect()
        };
        let dev = load(&files, "dev").unwrap();
        assert_eq!(dev.ignore_differences.len(), 1);
        assert_eq!(pointers(&dev, "web"), ["[\"kube-controller-manager\"][]", "[][\"/spec/replicas\"]"]);
        assert_eq!(pointers(&dev, "api"), ["[\"kube-controller-manager\"][]"]);
        assert_eq!(dev.ignore_differences[0].at.to_string(), "environments/base.yaml:3:5");
        // A derived file's list replaces its base's, at the environment and per release.
        let prod = load(&files, "prod").unwrap();
        assert_eq!(pointers(&prod, "web"), ["[][\"/webhooks/*/clientConfig/caBundle\"]"]);
        assert_eq!(pointers(&prod, "api"), pointers(&prod, "web"));
    }

    #[test]
    fn notifications_are_inherited_and_replaced_through_extends() {
        use crate::notifications::{EventKind, Kind, UrlSource};
        let files = [
            (
                "base.yaml",
                "abstract: true\nnotifications:\n  - name: ops\n    type: slack\n    url: {fromSecret: {file: secrets/hooks.yaml, key: slack}}\n    events: [drift]\n",
            ),
            ("dev.yaml", "extends: base\n"),
            (
                "prod.yaml",
                "extends: base\nnotifications:\n  - {name: pager, type: json, url: {fromEnv: PAGER_URL}, timeout: 5s}\n",
            ),
            ("quiet.yaml", "extends: base\nnotifications: []\n"),
        ];
        let dev = load(&files, "dev").unwrap();
        let ops = &dev.notifications[0];
        assert_eq!((ops.name.as_str(), ops.kind, ops.timeout), ("ops", Kind::Slack, DEFAULT_NOTIFICATION_TIMEOUT));
        assert_eq!(ops.events.iter().copied().collect::<Vec<_>>(), [EventKind::Drift]);
        assert_eq!(ops.at.to_string(), "environments/base.yaml:3:5");
        assert!(
            matches!(&ops.url, UrlSource::Secret { file, key } if file.path == Path::new("secrets/hooks.yaml") && key == "slack")
        );
        let prod = load(&files, "prod").unwrap();
        assert_eq!(prod.notifications.len(), 1);
        let pager = &prod.notifications[0];
        assert_eq!((pager.url.clone(), pager.timeout), (UrlSource::Env("PAGER_URL".into()), Duration::from_secs(5)));
        assert_eq!(pager.events.len(), 3, "every event unless `events` says");
        assert!(load(&files, "quiet").unwrap().notifications.is_empty());
        // Who is told is no setting a release depends on.
        let mut quiet = dev.clone();
        quiet.notifications.clear();
        assert!(dev.same_settings(&quiet));
    }

    #[test]
    fn a_notification_that_is_not_right_is_an_error_where_it_is_written() {
        let error = |notification: &str| {
            let text = format!("notifications:\n  - {notification}\n");
            load(&[("dev.yaml", &text)], "dev").unwrap_err().to_string()
        };
        assert_eq!(
            error("{name: ops, type: json, url: https://hooks.example.org/s3cr3t}"),
            "environments/dev.yaml:2:34: notification `ops`: `url` is written in the environment file, where anyone who reads the repository reads its credential"
        );
        assert_eq!(error("{name: ops, type: json}"), "environments/dev.yaml:2:5: notification `ops` has no `url`");
        assert_eq!(
            error("{name: ops, url: {fromEnv: X}}"),
            "environments/dev.yaml:2:5: notification `ops` has no `type`"
        );
        assert_eq!(
            error("{name: ops, type: json, url: {fromEnv: X, fromSecret: {file: a, key: b}}}"),
            "environments/dev.yaml:2:34: notification `ops`: `url` takes exactly one of `fromEnv` and `fromSecret`"
        );
        assert_eq!(
            error("{name: ops, type: json, url: {fromEnv: 'A-B'}}"),
            "environments/dev.yaml:2:34: notification `ops`: `fromEnv` is not an environment variable's name"
        );
        assert_eq!(
            error("{name: ops, type: json, url: {fromSecret: {file: a}}}"),
            "environments/dev.yaml:2:34: notification `ops`: `fromSecret` takes `file` and `key`"
        );
        assert_eq!(
            error("{name: ops, type: json, url: {fromEnv: X}, events: [sync]}"),
            "environments/dev.yaml:2:57: notification `ops`: `sync` is not an event"
        );
        assert_eq!(
            error("{name: ops, type: json, url: {fromEnv: X}, timeout: soon}"),
            "environments/dev.yaml:2:57: notification `ops`: `timeout`: `soon` is not a duration: expected a number with a unit, like 30s, 5m, 1m30s or 500ms"
        );
        let twice = "notifications:\n  - {name: ops, type: json, url: {fromEnv: OPS_A}}\n  - {name: ops, type: json, url: {fromEnv: OPS_B}}\n";
        assert_eq!(
            load(&[("dev.yaml", twice)], "dev").unwrap_err().to_string(),
            "environments/dev.yaml:3:5: notification `ops` is defined twice in this file (first at line 2)"
        );
    }

    #[test]
    fn health_checks_are_inherited_through_extends_and_a_release_s_own_come_first() {
        let rule =
            |kind: &str, current: &str| format!("{{apiVersion: example.com/v1, kind: {kind}, current: \"{current}\"}}");
        let base = format!(
            "abstract: true\nhealthChecks:\n  - {}\n  - {}\nreleases:\n  - name: db\n    chart: db\n    healthChecks:\n      - {}\n  - name: web\n    chart: web\n",
            rule("Database", "has(status.ready)"),
            rule("Cache", "true"),
            rule("Database", "status.phase == 'Up'")
        );
        let prod = format!("extends: base\nhealthChecks:\n  - {}\n", rule("Queue", "true"));
        let files = [("base.yaml", base.as_str()), ("dev.yaml", "extends: base\n"), ("prod.yaml", prod.as_str())];
        let kinds = |env: &Environment, release: &str| -> Vec<String> {
            let checks = &env.release(release).unwrap().health_checks;
            checks.iter().map(|c| format!("{} {}", c.kind, c.current.text)).collect()
        };
        let dev = load(&files, "dev").unwrap();
        assert_eq!(kinds(&dev, "db"), ["Database status.phase == 'Up'", "Database has(status.ready)", "Cache true"]);
        assert_eq!(kinds(&dev, "web"), ["Database has(status.ready)", "Cache true"]);
        assert_eq!(dev.health_checks[0].at.to_string(), "environments/base.yaml:3:5");
        assert_eq!(dev.health_checks[0].current.at.to_string(), "environments/base.yaml:3:59");
        let prod = load(&files, "prod").unwrap();
        assert_eq!(kinds(&prod, "db"), ["Database status.phase == 'Up'", "Queue true"]);
        assert_eq!(kinds(&prod, "web"), ["Queue true"]);
        // A bad expression stops the load, naming its file and line.
        let bad = format!(
            "releases:\n  - name: db\n    chart: db\n    healthChecks:\n      - {}\n",
            rule("Database", "status.ready ==")
        );
        let err = load(&[("dev.yaml", bad.as_str())], "dev").unwrap_err();
        assert_eq!(err.location.unwrap().to_string(), "environments/dev.yaml:5:63");
        // Two rules for one kind in one list: the second would never be asked.
        let twice = format!(
            "healthChecks:\n  - {}\n  - {}\n  - {}\n",
            rule("Database", "true"),
            rule("Cache", "true"),
            rule("Database", "false").replace("example.com/v1", "example.com/v2")
        );
        assert_eq!(
            load(&[("dev.yaml", twice.as_str())], "dev").unwrap_err().to_string(),
            "environments/dev.yaml:4:5: the health check for kind `Database` of example.com is defined twice in this list (first at line 2)"
        );
        let in_release = format!(
            "releases:\n  - name: db\n    chart: db\n    healthChecks:\n      - {}\n      - {}\n",
            rule("Database", "true"),
            rule("Database", "false")
        );
        let err = load(&[("dev.yaml", in_release.as_str())], "dev").unwrap_err();
        assert_eq!(err.location.unwrap().to_string(), "environments/dev.yaml:6:9");
        assert!(err.message.ends_with("(first at line 5)"), "{}", err.message);
    }

    #[test]
    fn an_environment_s_values_files_are_under_its_values_and_over_what_it_extends() {
        let files = [
            ("../vals/base.yaml", "a: base-file\nb: base-file\nc: base-file\nd: base-file\n"),
            ("base.yaml", "abstract: true\nvaluesFiles: [vals/base.yaml]\nvalues: {b: base}\n"),
            ("../vals/one.yaml", "c: one\nd: one\nnested: {x: 1}\n"),
            ("../vals/two.yaml", "d: two\nnested: {y: 2}\n"),
            ("dev.yaml", "extends: base\nvaluesFiles: [vals/one.yaml, ./vals/two.yaml]\nvalues: {e: dev}\n"),
        ];
        let env = load(&files, "dev").unwrap();
        assert_eq!(
            Value::Object(env.values),
            serde_json::json!({"a": "base-file", "b": "base", "c": "one", "d": "two", "e": "dev", "nested": {"x": 1, "y": 2}})
        );
        let listed: Vec<&Path> = env.values_files.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(listed, [Path::new("vals/base.yaml"), Path::new("vals/one.yaml"), Path::new("./vals/two.yaml")]);
    }

    #[test]
    fn an_environment_s_values_file_that_is_missing_or_not_a_mapping_is_an_error_where_it_is_listed() {
        let missing = load(&[("dev.yaml", "namespace: dev\nvaluesFiles:\n  - vals/none.yaml\n")], "dev").unwrap_err();
        assert!(missing.to_string().contains("environments/dev.yaml:3"), "{missing}");
        assert!(missing.to_string().contains("vals/none.yaml"), "{missing}");
        let files = [("../vals/list.yaml", "- a\n"), ("dev.yaml", "valuesFiles: [vals/list.yaml]\n")];
        let not_a_map = load(&files, "dev").unwrap_err().to_string();
        assert!(not_a_map.contains("vals/list.yaml") && not_a_map.contains("must be a mapping"), "{not_a_map}");
        let files = [
            ("../vals/enc.yaml", "a: ENC[AES256_GCM,data:x]\nsops: {version: 3.9.0}\n"),
            ("dev.yaml", "valuesFiles: [vals/enc.yaml]\n"),
        ];
        let encrypted = load(&files, "dev").unwrap_err().to_string();
        assert!(
            encrypted.contains("environments/dev.yaml:1") && encrypted.contains("encrypted with SOPS"),
            "{encrypted}"
        );
    }

    #[test]
    fn a_chart_is_named_by_its_name_or_by_a_path_inside_the_repository() {
        let release =
            |chart: &str| load(&[("dev.yaml", &format!("releases:\n  - name: web\n    chart: {chart}\n"))], "dev");
        for chart in ["web", "./deploy/web", "./charts/../deploy/web", "vendor/web-1.0.0.tgz"] {
            assert_eq!(release(chart).unwrap().releases[0].chart, chart);
        }
        for chart in ["../web", "./../web", "./deploy/../../web", ".", "./"] {
            let err = release(chart).unwrap_err().to_string();
            assert!(err.contains("environments/dev.yaml:3"), "{chart}: {err}");
            assert!(
                err.contains("leads outside the repository") || err.contains("is not a chart name"),
                "{chart}: {err}"
            );
        }
        let err = release("deploy/web").unwrap_err();
        assert!(err.to_string().contains("no repository `deploy`"), "{err}");
        assert!(format!("{err:?}").contains("./deploy/web"), "{err:?}");
    }

    #[test]
    fn api_versions_are_checked_where_written_and_replaced_through_extends() {
        let files = [
            ("base.yaml", "abstract: true\napiVersions:\n  - gateway.networking.k8s.io/v1\n  - v1/Pod\n"),
            ("prod.yaml", "extends: base\n"),
            ("staging.yaml", "extends: base\napiVersions: [monitoring.coreos.com/v1/ServiceMonitor]\n"),
            ("dev.yaml", "extends: base\napiVersions: []\n"),
        ];
        assert_eq!(load(&files, "prod").unwrap().api_versions, ["gateway.networking.k8s.io/v1", "v1/Pod"]);
        assert_eq!(load(&files, "staging").unwrap().api_versions, ["monitoring.coreos.com/v1/ServiceMonitor"]);
        assert!(load(&files, "dev").unwrap().api_versions.is_empty());

        let bad = "namespace: dev\napiVersions:\n  - apps/v1\n  - gateway.networking.k8s.io\n";
        let err = load(&[("dev.yaml", bad)], "dev").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environments/dev.yaml:4:5: `apiVersions` entry `gateway.networking.k8s.io` is not an API version"
        );
        assert!(format!("{err:?}").contains("group/version (gateway.networking.k8s.io/v1)"), "{err:?}");
        // A base's bad entry is named in the base, where it is written.
        let files = [
            ("base.yaml", "apiVersions: [monitoring.coreos.com/v1/servicemonitor]\n"),
            ("dev.yaml", "extends: base\n"),
        ];
        assert!(load(&files, "dev").unwrap_err().to_string().starts_with("environments/base.yaml:1:15: "));
    }

    #[test]
    fn lock_namespace_must_be_a_namespace_name() {
        let err = load(&[("dev.yaml", "cluster:\n  lockNamespace: Weaver_Locks\n")], "dev").unwrap_err();
        assert_eq!(err.to_string(), "environments/dev.yaml:2:18: invalid namespace name `Weaver_Locks`");
        let err = load(&[("dev.yaml", "cluster:\n  lockNamespaces: locks\n")], "dev").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environments/dev.yaml:2:3: invalid environment file: unknown field `lockNamespaces`"),
            "{err}"
        );
    }
}
