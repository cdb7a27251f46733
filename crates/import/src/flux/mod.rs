//! `weaver import flux`: a Flux repository as weaver environment files.
//!
//! One environment per cluster: a directory that a `flux-system` Kustomization syncs (Flux's
//! bootstrap writes it in `gotk-sync.yaml`) or a FluxInstance's `sync.path` (or its chart's
//! values), else a Kustomization's path holding `flux-system/`, else each directory of the
//! first `clusters/`, else the repository itself (`default`); or what `--clusters` names.
//! From there the import follows what Flux would apply: each Kustomization's path is built as
//! kustomize-controller builds it, the Flux objects it holds are followed (Kustomizations) or
//! converted (HelmReleases, with their sources), and its other objects become a `kustomize:`
//! release. Flux's settings that kustomize expresses (`targetNamespace`, `patches`, `images`,
//! `components`, `namePrefix`, `commonMetadata`) go into a kustomization written under
//! `flux-import/<env>/` (never into the Flux directories), which builds the Flux path and drops
//! the Flux objects; a kustomization's remote entries, which weaver does not fetch, are left
//! out of copies of the kustomizations written there too. Everything else is listed, with its
//! file and line. Pure: files are read through a [`Source`], the files to write are returned.

mod build;
mod clusters;
mod helm_releases;
mod kustomizations;
mod read;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use granit_parser::ScalarStyle;
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};
use weaver_kustomize::substitute::Lookup;
use weaver_project::source::{Entry, Overlay, Source};

use crate::node::Node;

/// Where the kustomizations and variable files the import writes go, under one directory per
/// environment.
pub const GENERATED_DIR: &str = "flux-import";

/// Why Flux's own controllers (`gotk-components.yaml`, a FluxInstance, the flux-operator and
/// flux-instance charts' HelmReleases) are left out.
const FLUX_ITSELF: &str = "not converted: weaver applies from your pipeline (or its operator, `weaver operator`), \
                           not through Flux's controllers";

/// Where, in a release's directory under [`GENERATED_DIR`], the copies of kustomizations
/// without their remote entries go (see [`Import::copy_without_remote`]).
const WITHOUT_REMOTE: &str = "without-remote";

/// Something of the Flux repository that is not in the files written, or not exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub file: PathBuf,
    pub line: u64,
    /// What it is: `HelmRelease podinfo/podinfo: spec.install`.
    pub what: String,
    /// Why, and what to do instead.
    pub why: String,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file.display(), self.line, self.what, self.why)
    }
}

/// The converted repository.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// Repository paths and their text: per environment, its file, then what it refers to.
    pub files: Vec<(PathBuf, String)>,
    /// By file and line.
    pub left_out: Vec<LeftOut>,
    /// The remote charts releases name (`repo/chart`, `oci://…`), for `weaver charts lock`.
    pub remote_charts: Vec<String>,
    /// The clusters taken, one line each: their directory, environment and how it was found;
    /// then the GitRepositories taken as this repository, and the directories beside the
    /// clusters that hold Flux objects but were not taken (`not imported: …`).
    pub clusters: Vec<String>,
}

/// The environments for the Flux repository at `root` (a directory of `source`, `""` for its
/// root); `clusters`, a path from `root`, names the clusters' directory (or one cluster's)
/// instead of finding them. An error when `root` or `clusters` cannot be read, or when no file
/// under `root` holds a Flux object and nothing converts (the import would write environments
/// without a release).
pub fn convert(source: &dyn Source, root: &Path, clusters: Option<&Path>) -> Result<Imported> {
    let mut import = Import::new(source, root);
    let mut imported = Imported::default();
    let mut releases = 0;
    let clusters = match clusters {
        Some(given) => import.given_clusters(given)?,
        None => import.clusters()?,
    };
    for cluster in clusters {
        imported.clusters.push(format!(
            "cluster {} → environments/{}.yaml: {}",
            shown(&cluster.dir),
            cluster.env,
            cluster.found
        ));
        let converted = import.cluster(&cluster);
        releases += converted.releases;
        for chart in converted.remote_charts {
            if !imported.remote_charts.contains(&chart) {
                imported.remote_charts.push(chart);
            }
        }
        imported.files.extend(converted.files);
    }
    if releases == 0 && !import.holds_flux_objects() {
        return Err(Error::at(
            Location::file(shown(root)),
            "no Flux objects were found under this directory (no YAML file holds an object of a *.fluxcd.io API), \
             nor anything a cluster's directory applies: nothing to import, nothing was written",
        )
        .with_help(
            "give the Flux repository's root, the directory its Kustomizations' paths start from: `weaver import flux PATH`",
        ));
    }
    imported.clusters.extend(std::mem::take(&mut import.taken_as_own));
    imported.clusters.extend(std::mem::take(&mut import.not_taken));
    let mut left_out = import.left_out;
    left_out.sort_by(|a, b| (&a.file, a.line, &a.what).cmp(&(&b.file, b.line, &b.what)));
    left_out.dedup();
    imported.left_out = left_out;
    Ok(imported)
}

/// One object Flux would apply, with where it was written.
#[derive(Debug, Clone)]
struct Obj {
    object: Value,
    file: PathBuf,
    /// Its document in `file`, 1-based.
    document: usize,
}

impl Obj {
    fn text(&self, pointer: &str) -> &str {
        self.object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
    }
    fn kind(&self) -> &str {
        self.text("/kind")
    }
    fn name(&self) -> &str {
        self.text("/metadata/name")
    }
    fn namespace(&self) -> &str {
        self.text("/metadata/namespace")
    }
    fn group(&self) -> &str {
        weaver_core::manifest::api_group(self.text("/apiVersion"))
    }
    fn is_flux(&self) -> bool {
        let group = self.group();
        group.ends_with(".toolkit.fluxcd.io")
            || group.ends_with(".extensions.fluxcd.io")
            || group == "fluxcd.controlplane.io"
    }
    /// Whether SOPS encrypted it: its values read here would be `ENC[…]` text.
    fn is_encrypted(&self) -> bool {
        self.object.as_object().is_some_and(weaver_project::values::is_sops_encrypted)
    }

    fn spec(&self, key: &str) -> Option<&Value> {
        self.object.pointer(&format!("/spec/{key}")).filter(|v| !v.is_null())
    }
    fn describe(&self) -> String {
        match self.namespace() {
            "" => format!("{} {}", self.kind(), self.name()),
            ns => format!("{} {ns}/{}", self.kind(), self.name()),
        }
    }
}

/// A cluster: where Flux starts syncing it, and the environment it becomes.
struct Cluster {
    env: String,
    /// How the import found it, for the user.
    found: String,
    /// The directory its root Kustomization builds.
    dir: PathBuf,
    /// The bootstrap's Kustomization and GitRepository, when the repository has them.
    root: Option<Obj>,
}

/// A Flux Kustomization of a cluster, built.
struct Ks {
    obj: Obj,
    /// The directory it builds, as a repository path; `None` when it is not in the repository.
    dir: Option<PathBuf>,
    /// Its objects that are not Flux's.
    plain: Vec<Obj>,
    /// Its Flux objects and SOPS-encrypted Secrets, which the release drops.
    dropped: Vec<Obj>,
    /// What the release's kustomization lists in place of `dir` (see [`Import::build`]).
    listed: Option<Vec<PathBuf>>,
    /// The weaver releases made of it (its own and its HelmReleases').
    releases: Vec<String>,
}

/// A release as converted, with where it was defined and what it needs in Flux's terms.
struct Release {
    name: String,
    fields: Map<String, Value>,
    /// Kustomizations (namespace, name) whose releases this one needs.
    after_ks: Vec<(String, String)>,
    /// HelmReleases (namespace, name) this one needs, and where that was written.
    after_hr: Vec<(String, String, PathBuf, u64)>,
}

/// A Kustomization's variables, as the import can read them.
#[derive(Debug, Clone, Default)]
struct Vars {
    /// From its `substitute` and the repository's ConfigMaps (`substitute` wins).
    values: HashMap<String, String>,
    /// The `substituteFrom` sources the import does not read (`Secret flux-system/secrets`): a
    /// variable not in `values` may be one of theirs.
    unread: Vec<String>,
    /// Variables whose `substitute` value keeps a `${…}` its parent Kustomization could not
    /// substitute (`HOST: web.${DOMAIN}`, DOMAIN a Secret's): as written there, and where
    /// Flux takes what they keep from. Flux substitutes the parent's value first: the import
    /// does not know theirs either.
    tainted: BTreeMap<String, (String, String)>,
}

impl Vars {
    /// A variable as Flux substitutes it: one nothing sets is empty (Flux's default, without
    /// the `StrictPostBuildSubstitutions` feature gate) when every source was read.
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.values.get(name) {
            _ if self.tainted.contains_key(name) => Lookup::Unknown,
            Some(value) => Lookup::Set(value),
            None if self.unread.is_empty() => Lookup::Set(""),
            None => Lookup::Unknown,
        }
    }

    /// Where Flux takes a variable the import could not substitute from, for messages: ends
    /// with the sources the import does not read.
    fn unknown_source(&self, name: &str) -> String {
        match self.tainted.get(name) {
            Some((written, from)) => {
                format!("its Kustomization's postBuild.substitute gives it as `{written}`: {from}")
            }
            None => {
                format!("Flux substitutes it from {} (its Kustomization's substituteFrom)", self.unread.join(" or "))
            }
        }
    }
}

/// A kustomization of the Flux tree written again without its remote entries.
struct Copy {
    /// Where it is written.
    file: PathBuf,
    /// The kustomization file it copies.
    original: PathBuf,
    text: String,
}

/// The repository with the copies below `under`, as a build of a copy reads it: the copies'
/// directory resolves as written, whatever the repository has there.
struct WithCopies<'a> {
    with: Overlay<'a>,
    under: &'a Path,
}

impl<'a> WithCopies<'a> {
    fn new(source: &'a dyn Source, under: &'a Path, copies: &'a [Copy]) -> WithCopies<'a> {
        let files = copies.iter().map(|copy| (copy.file.as_path(), copy.text.as_bytes()));
        WithCopies { with: Overlay::new(source, files), under }
    }
}

impl Source for WithCopies<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        self.with.read(path)
    }

    fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<Entry>>> {
        self.with.list(dir)
    }

    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        match path.starts_with(self.under) {
            true => Ok(path.to_path_buf()),
            false => self.with.resolve(path),
        }
    }

    fn describe(&self) -> String {
        self.with.describe()
    }
}

/// A field of a kustomization that holds a path, relative to its directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathField {
    /// `resources`, `bases`, `components`: a file or kustomization, or a remote one.
    Entry,
    File,
    /// A file or inline YAML (`patchesStrategicMerge`, `transformers`).
    FileOrInline,
    /// `[key=]file`: a generator's `files`.
    KeyedFile,
}

impl PathField {
    /// The field at a JSON pointer's tokens.
    fn of(tokens: &[&str]) -> Option<PathField> {
        Some(match tokens {
            ["resources" | "bases" | "components", _] => PathField::Entry,
            ["patchesStrategicMerge" | "transformers", _] => PathField::FileOrInline,
            ["configMapGenerator" | "secretGenerator", _, "files", _] => PathField::KeyedFile,
            ["patches" | "patchesJson6902" | "replacements", _, "path"]
            | ["configurations" | "crds", _]
            | ["configMapGenerator" | "secretGenerator", _, "envs", _]
            | ["configMapGenerator" | "secretGenerator", _, "env"]
            | ["helmCharts", _, "valuesFile"]
            | ["helmCharts", _, "additionalValuesFiles", _]
            | ["helmGlobals", "chartHome"] => PathField::File,
            _ => return None,
        })
    }
}

/// A quoted scalar's bytes with its quotes.
fn with_quotes(text: &str, bytes: std::ops::Range<usize>, style: ScalarStyle) -> std::ops::Range<usize> {
    let quote = match style {
        ScalarStyle::SingleQuoted => b'\'',
        ScalarStyle::DoubleQuoted => b'"',
        _ => return bytes,
    };
    match text.as_bytes().get(bytes.start) == Some(&quote) {
        true => bytes,
        false => bytes.start.saturating_sub(1)..(bytes.end + 1).min(text.len()),
    }
}

/// The edit that leaves a sequence's item (its scalar at `bytes`) out of `text`: a block item's
/// line becomes a comment, a flow item goes with its comma; `None` when it is written otherwise.
fn without_item(text: &str, bytes: std::ops::Range<usize>) -> Option<(std::ops::Range<usize>, String)> {
    let line_start = text[..bytes.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[bytes.end..].find('\n').map_or(text.len(), |i| bytes.end + i);
    let before = &text[line_start..bytes.start];
    let after = text[bytes.end..line_end].trim();
    if before.trim() == "-" && (after.is_empty() || after.starts_with('#')) {
        let dash = line_start + before.find('-')?;
        let item = text[dash..line_end].trim_end();
        return Some((dash..line_end, format!("# {item} (remote: left out by `weaver import flux`)")));
    }
    let rest = &text[bytes.end..];
    if let Some(next) = rest.trim_start().strip_prefix(',') {
        let end = text.len() - next.trim_start().len();
        return Some((bytes.start..end, String::new()));
    }
    let head = text[..bytes.start].trim_end();
    if let Some(previous) = head.strip_suffix(',') {
        return Some((previous.len()..bytes.end, String::new()));
    }
    head.ends_with('[').then(|| (bytes, String::new()))
}

struct Import<'a> {
    source: &'a dyn Source,
    root: PathBuf,
    /// File texts read.
    texts: HashMap<PathBuf, String>,
    /// Files parsed for line numbers, by document.
    nodes: HashMap<PathBuf, Vec<Spanned<Node>>>,
    /// Files parsed as kyaml reads them: each is read again and again (a substituteFrom
    /// ConfigMap's file, by every Kustomization naming it), and parsed once.
    objects: HashMap<PathBuf, Vec<Obj>>,
    /// The kustomizations that build only without kustomize's default load restrictions.
    unrestricted: BTreeSet<PathBuf>,
    /// The Flux objects (file, document) whose variables could not all be substituted.
    unsubstituted: BTreeSet<(PathBuf, usize)>,
    /// Of those, the variables kept as `${…}`, each with where Flux takes it from (see
    /// [`Vars::unknown_source`]).
    kept: HashMap<(PathBuf, usize), BTreeMap<String, String>>,
    /// The ConfigMaps (file, document) whose data as kustomize-controller applies it (substituted)
    /// the import could not substitute fully, and why: their values are read as written.
    config_unsubstituted: HashMap<(PathBuf, usize), String>,
    /// The URLs (as [`git_url_identity`] gives them) a FluxInstance or flux-instance HelmRelease
    /// syncs the clusters from: this repository's.
    own_urls: BTreeSet<String>,
    /// The GitRepositories not named flux-system taken as this repository, and why (said).
    taken_as_own: BTreeSet<String>,
    /// The directories beside the clusters taken that look like clusters, and why not (said).
    not_taken: Vec<String>,
    left_out: Vec<LeftOut>,
}

/// The files and charts of one cluster.
struct Converted {
    files: Vec<(PathBuf, String)>,
    remote_charts: Vec<String>,
    /// How many releases its environment has.
    releases: usize,
}

impl<'a> Import<'a> {
    fn new(source: &'a dyn Source, root: &Path) -> Import<'a> {
        Import {
            source,
            root: root.to_path_buf(),
            texts: HashMap::new(),
            nodes: HashMap::new(),
            objects: HashMap::new(),
            unrestricted: BTreeSet::new(),
            unsubstituted: BTreeSet::new(),
            kept: HashMap::new(),
            config_unsubstituted: HashMap::new(),
            own_urls: BTreeSet::new(),
            taken_as_own: BTreeSet::new(),
            not_taken: Vec::new(),
            left_out: Vec::new(),
        }
    }

    fn cluster(&mut self, cluster: &Cluster) -> Converted {
        let env = cluster.env.clone();
        // The root: the bootstrap's Kustomization, or one standing for it.
        let root = cluster.root.clone().unwrap_or_else(|| Obj {
            object: json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "spec": {"path": cluster.dir.to_string_lossy(), "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            }),
            file: PathBuf::from(shown(&cluster.dir)),
            document: 1,
        });
        let mut queue = VecDeque::from([(root, Some(cluster.dir.clone()))]);
        let mut seen = BTreeSet::new();
        let mut kss: Vec<Ks> = Vec::new();
        let mut helm_releases: Vec<(usize, Obj)> = Vec::new();
        let mut sources: Vec<Obj> = Vec::new();
        let mut config: Vec<Obj> = Vec::new();
        let mut components_seen = BTreeSet::new();
        while let Some((obj, dir)) = queue.pop_front() {
            let id = (obj.namespace().to_string(), obj.name().to_string());
            if !seen.insert(id) {
                continue;
            }
            let dir = dir.or_else(|| self.ks_dir(&obj, &sources));
            let mut ks = Ks { obj, dir, plain: Vec::new(), dropped: Vec::new(), listed: None, releases: Vec::new() };
            let Some(dir) = ks.dir.clone() else {
                kss.push(ks);
                continue;
            };
            let (objects, listed) = match self.build(&dir, &ks.obj) {
                Ok(built) => built,
                Err(err) => {
                    let what = format!("{} (path {})", ks.obj.describe(), shown(&dir));
                    self.leave_at(&ks.obj, Some("path"), what, format!("not built: {err}"));
                    ks.dir = None;
                    kss.push(ks);
                    continue;
                }
            };
            ks.listed = listed;
            let mut objects = objects;
            // Flux adds the Kustomization's `components` to its build: their objects (a SOPS
            // Secret, a HelmRelease) are the build's, and their patches patch the build's.
            let components: Vec<String> = ks
                .obj
                .spec("components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            if !components.is_empty() {
                match self.build_with_components(&dir, ks.listed.as_deref(), &components, &ks.obj) {
                    Ok(built) => objects = built,
                    Err(err) => {
                        let what = format!("{}: components", ks.obj.describe());
                        self.leave_at(&ks.obj, Some("components"), what, format!("not built: {err}"));
                    }
                }
            }
            if cluster.root.is_none() && kss.is_empty() {
                // Without a bootstrap the cluster's directory holds every Kustomization, the
                // children of others among them: those come through their parents, patched as
                // the parents patch them.
                let paths: Vec<PathBuf> = objects
                    .iter()
                    .filter(|o| o.kind() == "Kustomization" && o.is_flux())
                    .filter_map(|o| self.join(o.text("/spec/path")))
                    .filter(|p| !p.as_os_str().is_empty() && *p != dir)
                    .collect();
                let whole_repository = dir == self.root;
                objects.retain(|o| {
                    // The whole repository stands for a root no file names: it applies only the
                    // Flux objects no Kustomization applies.
                    let plain = !o.is_flux() && o.object.get("sops").is_none();
                    !(whole_repository && plain || o.is_flux() && paths.iter().any(|p| o.file.starts_with(p)))
                });
            }
            self.patch_flux_objects(&ks.obj, &mut objects);
            let target_namespace = ks.obj.text("/spec/targetNamespace").to_string();
            let vars = self.variables(&ks.obj, &config);
            let index = kss.len();
            for mut obj in objects {
                if obj.file.file_name().is_some_and(|n| n == "gotk-components.yaml") {
                    if components_seen.insert(obj.file.clone()) {
                        self.leave(&obj.file, 1, "Flux's own controllers and CRDs", FLUX_ITSELF);
                    }
                    ks.dropped.push(obj);
                    continue;
                }
                if obj.is_flux() {
                    // The release drops it as the build gives it, before Flux's changes.
                    ks.dropped.push(obj.clone());
                    if !target_namespace.is_empty() {
                        obj.object["metadata"]["namespace"] = Value::String(target_namespace.clone());
                    }
                    if let Some(vars) = &vars {
                        self.substitute(&mut obj, vars);
                    }
                    match obj.kind() {
                        "Kustomization" if obj.group() == "kustomize.toolkit.fluxcd.io" => {
                            queue.push_back((obj.clone(), None));
                        }
                        "HelmRelease" => helm_releases.push((index, obj.clone())),
                        "GitRepository" | "HelmRepository" | "OCIRepository" | "ArtifactGenerator" => {
                            sources.push(obj.clone())
                        }
                        kind => {
                            let why = match kind {
                                "Alert" | "Provider" | "Receiver" => {
                                    "weaver has no controller to notify from: an environment's `notifications:` \
                                     tell webhooks of applies and drift"
                                }
                                "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation" => {
                                    "not supported: weaver does not update images in git"
                                }
                                "FluxInstance" if obj.group() == "fluxcd.controlplane.io" => {
                                    let what = format!("{} (Flux itself)", obj.describe());
                                    self.leave_at(&obj, None, what, FLUX_ITSELF);
                                    continue;
                                }
                                _ => "not supported: weaver runs no Flux controllers",
                            };
                            self.leave_at(&obj, None, obj.describe(), why);
                        }
                    }
                } else if obj.is_encrypted() {
                    self.leave_at(
                        &obj,
                        Some("sops"),
                        format!("{} (SOPS-encrypted)", obj.describe()),
                        "not converted: weaver decrypts SOPS files as values, not objects of a kustomization: \
                         move its data into a SOPS values file (`weaver secrets encrypt`) and render the Secret from \
                         a chart or with `substituteFrom`",
                    );
                    // substituteFrom and valuesFrom may still name it.
                    config.push(obj.clone());
                    ks.dropped.push(obj);
                } else {
                    if obj.kind() == "ConfigMap" || obj.kind() == "Secret" {
                        let mut applied = obj.clone();
                        if let Some(vars) = &vars
                            && obj.kind() == "ConfigMap"
                        {
                            // kustomize-controller applies it substituted: that is what
                            // helm-controller's valuesFrom and other Kustomizations read.
                            self.substitute_config(&mut applied, vars);
                        }
                        config.push(applied);
                    }
                    ks.plain.push(obj);
                }
            }
            kss.push(ks);
        }

        let mut releases: Vec<Release> = Vec::new();
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        let taken: BTreeSet<String> = helm_releases.iter().map(|(_, hr)| helm_name(hr)).collect();
        for ks in &mut kss {
            if let Some(release) = self.kustomization_release(&env, ks, &config, &releases, &taken, &mut files) {
                ks.releases.push(release.name.clone());
                releases.push(release);
            }
        }
        let mut repositories: BTreeMap<String, Value> = BTreeMap::new();
        let mut remote_charts = Vec::new();
        let mut hr_names: HashMap<(String, String), String> = HashMap::new();
        for (index, hr) in &helm_releases {
            let parent = &kss[*index];
            let Some(mut release) = self.helm_release(hr, &sources, &config, &releases, &mut repositories) else {
                continue;
            };
            release.after_ks.extend(depends_on(&parent.obj));
            if let Some(Value::String(chart)) = release.fields.get("chart")
                && (chart.starts_with("oci://") || repositories.contains_key(chart.split('/').next().unwrap_or("")))
                && !remote_charts.contains(chart)
            {
                remote_charts.push(chart.clone());
            }
            hr_names.insert((hr.namespace().to_string(), hr.name().to_string()), release.name.clone());
            kss[*index].releases.push(release.name.clone());
            releases.push(release);
        }

        // `needs`: a Kustomization's dependsOn holds back each of its releases until every
        // release of the Kustomizations it names is applied.
        let ks_releases: HashMap<(String, String), Vec<String>> = kss
            .iter()
            .map(|k| ((k.obj.namespace().to_string(), k.obj.name().to_string()), k.releases.clone()))
            .collect();
        let mut out_releases = Vec::new();
        for release in &releases {
            let mut needs: Vec<String> = Vec::new();
            for (ns, name) in &release.after_ks {
                match ks_releases.get(&(ns.clone(), name.clone())) {
                    Some(names) => needs.extend(names.iter().filter(|n| **n != release.name).cloned()),
                    None => {
                        let owner = kss.iter().find(|k| k.releases.contains(&release.name)).map(|k| k.obj.clone());
                        if let Some(owner) = owner {
                            self.leave_at(
                                &owner,
                                Some("dependsOn"),
                                format!("{}: dependsOn {ns}/{name}", owner.describe()),
                                "no such Kustomization in this cluster: not converted",
                            );
                        }
                    }
                }
            }
            for (ns, name, file, line) in &release.after_hr {
                match hr_names.get(&(ns.clone(), name.clone())) {
                    Some(n) => needs.push(n.clone()),
                    None => self.leave(
                        file,
                        *line,
                        format!("release `{}`: dependsOn HelmRelease {ns}/{name}", release.name),
                        "no such HelmRelease converted in this cluster: not converted",
                    ),
                }
            }
            let mut fields = release.fields.clone();
            let mut unique = Vec::new();
            for need in needs {
                if !unique.contains(&need) {
                    unique.push(need);
                }
            }
            if !unique.is_empty() {
                fields.insert("needs".into(), json!(unique));
            }
            out_releases.push(Value::Object(fields));
        }

        let release_count = out_releases.len();
        let mut env_file = Map::new();
        if !repositories.is_empty() {
            env_file.insert("repositories".into(), Value::Array(repositories.into_values().collect()));
        }
        env_file.insert("releases".into(), Value::Array(out_releases));
        let header = format!("# Imported from the Flux cluster {} by `weaver import flux`.\n", shown(&cluster.dir));
        let mut all = vec![(
            PathBuf::from("environments").join(format!("{env}.yaml")),
            format!("{header}{}", weaver_yaml::to_yaml_string(&Value::Object(env_file))),
        )];
        all.extend(files);
        Converted { files: all, remote_charts, releases: release_count }
    }
}

/// The path an ArtifactGenerator's artifact `name` gives to `path` inside it, as a path of
/// the repository, when the artifact copies directories of this repository (`@alias/dir/**`).
fn artifact_path(generator: &Obj, name: &str, path: &str) -> Option<String> {
    let artifact = generator
        .spec("artifacts")?
        .as_array()?
        .iter()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(name))?;
    let inside = path.trim_start_matches("./").trim_end_matches('/');
    let mut best: Option<(usize, String)> = None;
    for copy in artifact.get("copy")?.as_array()? {
        let from = copy.get("from")?.as_str()?;
        let to = copy.get("to")?.as_str()?;
        let from_dir = from.strip_prefix('@')?.split_once('/')?.1.strip_suffix("/**")?;
        let to_dir = to.strip_prefix("@artifact/")?.trim_end_matches('/');
        let rest = if to_dir.is_empty() {
            Some(inside)
        } else if inside == to_dir {
            Some("")
        } else {
            inside.strip_prefix(&format!("{to_dir}/"))
        };
        if let Some(rest) = rest
            && best.as_ref().is_none_or(|(len, _)| to_dir.len() >= *len)
        {
            let mapped = if rest.is_empty() { from_dir.to_string() } else { format!("{from_dir}/{rest}") };
            best = Some((to_dir.len(), mapped));
        }
    }
    best.map(|(_, p)| p)
}

/// Why `name` is not a release name, and what to do.
fn not_a_release_name(name: &str) -> String {
    let variable = match name.contains("${") {
        true => " (a variable in it is substituted by no Kustomization the import read)",
        false => "",
    };
    format!(
        "`{name}` is not a release name: weaver's are at most 53 lowercase letters, digits and '-', starting and \
         ending with a letter or digit; rename it{variable}"
    )
}

/// helm's release name, as helm-controller gives it: a chart names its objects after it.
fn helm_name(hr: &Obj) -> String {
    match (hr.text("/spec/releaseName"), hr.text("/spec/targetNamespace")) {
        ("", "") => hr.name().to_string(),
        ("", target) => format!("{target}-{}", hr.name()),
        (name, _) => name.to_string(),
    }
}

/// The Kustomizations (namespace, name) an object's `dependsOn` names.
fn depends_on(obj: &Obj) -> Vec<(String, String)> {
    obj.spec("dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let name = d.get("name")?.as_str()?.to_string();
            let ns = d.get("namespace").and_then(Value::as_str).unwrap_or(obj.namespace()).to_string();
            Some((ns, name))
        })
        .collect()
}

fn find<'o>(objects: &'o [Obj], kind: &str, name: &str, namespace: &str) -> Option<&'o Obj> {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name && (o.namespace() == namespace || o.namespace().is_empty()))
}

fn namespace_or<'a>(hr: &'a Obj, namespace: &'a str) -> &'a str {
    if hr.namespace().is_empty() { namespace } else { hr.namespace() }
}

/// A YAML scalar as the text Flux takes it for.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A kustomize patch target (`group`, `version`, `kind`, `name`, `namespace`) as a release's.
fn release_target(target: &Value) -> Value {
    let mut out = Map::new();
    let group = target.get("group").and_then(Value::as_str).unwrap_or_default();
    let version = target.get("version").and_then(Value::as_str).unwrap_or_default();
    if !group.is_empty() || !version.is_empty() {
        let api = match (group, version) {
            (g, "") => g.to_string(),
            ("", v) => v.to_string(),
            (g, v) => format!("{g}/{v}"),
        };
        out.insert("apiVersion".into(), Value::String(api));
    }
    for key in ["kind", "name", "namespace"] {
        if let Some(v) = target.get(key).filter(|v| v.is_string()) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// `name`, or `namespace-name` when a release already has it, or `name-manifests` when a
/// HelmRelease (`taken`) will.
fn unique_name(name: &str, namespace: &str, releases: &[Release], taken: &BTreeSet<String>) -> String {
    let free = |n: &str| !releases.iter().any(|r| r.name == n) && !taken.contains(n);
    [name.to_string(), format!("{namespace}-{name}"), format!("{name}-manifests")]
        .into_iter()
        .find(|n| free(n))
        .unwrap_or_else(|| format!("{namespace}-{name}-manifests"))
}

/// A git repository's URL as its identity: without scheme, user, port, `.git` and trailing `/`,
/// the scp-like ssh form (`git@host:owner/name`) as the others, in lower case; so that
/// `https://github.com/o/r`, `ssh://git@github.com/o/r.git` and `git@github.com:o/r` are one.
fn git_url_identity(url: &str) -> String {
    let mut rest = url.trim();
    if let Some((_, after)) = rest.split_once("://") {
        rest = after;
    }
    if let Some((user, after)) = rest.split_once('@')
        && !user.contains('/')
    {
        rest = after;
    }
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (host, path) = rest.split_once(['/', ':']).unwrap_or((rest, ""));
    let path = match path.split_once('/') {
        Some((port, after)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => after,
        _ => path,
    };
    format!("{host}/{path}").to_lowercase()
}
/// A repository path as the user reads it: `.` for the root.
fn shown(path: &Path) -> String {
    if path.as_os_str().is_empty() { ".".into() } else { path.display().to_string() }
}

/// `to` relative to the directory `from` (both repository paths).
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = vec!["..".to_string(); from.len() - common];
    out.extend(to_parts[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if out.is_empty() { ".".into() } else { out.join("/") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(yaml: &str) -> Obj {
        let object = weaver_yaml::documents(Path::new("t.yaml"), yaml).unwrap().remove(0);
        Obj { object, file: PathBuf::from("t.yaml"), document: 1 }
    }

    #[test]
    fn git_urls_of_one_repository_have_one_identity() {
        let one = "github.com/damacus/home-ops";
        for url in [
            "https://github.com/damacus/home-ops",
            "https://github.com/damacus/home-ops.git/",
            "ssh://git@github.com/damacus/home-ops.git",
            "ssh://git@github.com:22/damacus/Home-Ops",
            "git@github.com:damacus/home-ops.git",
        ] {
            assert_eq!(git_url_identity(url), one, "{url}");
        }
        assert_ne!(git_url_identity("https://github.com/damacus/other"), one);
        assert_ne!(git_url_identity("https://gitlab.com/damacus/home-ops"), one);
    }

    #[test]
    fn a_remote_entry_is_left_out_of_block_and_flow_sequences_or_not_at_all() {
        let cut = |text: &str, item: &str| {
            let at = text.find(item).unwrap();
            let (bytes, written) = without_item(text, at..at + item.len())?;
            let mut out = text.to_string();
            out.replace_range(bytes, &written);
            Some(out)
        };
        assert_eq!(
            cut("resources:\n  - a.yaml\n  - \"https://x/y.yaml\" # upstream\n", "\"https://x/y.yaml\"").unwrap(),
            "resources:\n  - a.yaml\n  # - \"https://x/y.yaml\" # upstream (remote: left out by `weaver import flux`)\n"
        );
        assert_eq!(cut("r: [https://x, a.yaml]\n", "https://x").unwrap(), "r: [a.yaml]\n");
        assert_eq!(cut("r: [a, https://x, b]\n", "https://x").unwrap(), "r: [a, b]\n");
        assert_eq!(cut("r: [a.yaml, https://x]\n", "https://x").unwrap(), "r: [a.yaml]\n");
        assert_eq!(cut("r: ['https://x']\n", "'https://x'").unwrap(), "r: []\n");
        assert_eq!(cut("r: {a: https://x}\n", "https://x"), None);
        assert_eq!(cut("r:\n- &u https://x\n", "https://x"), None);
    }

    #[test]
    fn an_artifact_generator_s_copies_map_artifact_paths_to_the_repository() {
        let generator = obj(
            "apiVersion: source.extensions.fluxcd.io/v1beta1\nkind: ArtifactGenerator\nmetadata: {name: g}\nspec:\n  \
             artifacts:\n  - name: apps\n    copy:\n    - {from: \"@repo/apps/base/**\", to: \"@artifact/base/\"}\n    \
             - {from: \"@repo/apps/prod/**\", to: \"@artifact/prod/\"}\n  - name: infra\n    copy:\n    \
             - {from: \"@repo/infrastructure/**\", to: \"@artifact/\"}\n",
        );
        assert_eq!(artifact_path(&generator, "apps", "./prod").as_deref(), Some("apps/prod"));
        assert_eq!(artifact_path(&generator, "apps", "./base/podinfo").as_deref(), Some("apps/base/podinfo"));
        assert_eq!(artifact_path(&generator, "infra", "./controllers").as_deref(), Some("infrastructure/controllers"));
        assert_eq!(artifact_path(&generator, "apps", "./staging"), None);
        assert_eq!(artifact_path(&generator, "other", "./prod"), None);
    }

    #[test]
    fn a_kustomization_s_patches_reach_its_flux_objects_as_kustomize_selects_them() {
        let dir = tempfile::tempdir().unwrap();
        let ks = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\n\
                  spec:\n  patches:\n  - target: {kind: HelmRelease, annotationSelector: tier=front}\n    patch: |\n      \
                  - {op: add, path: /spec/interval, value: 1m}\n  - patch: |\n      apiVersion: helm.toolkit.fluxcd.io/v2\n      \
                  kind: HelmRelease\n      metadata: {name: db}\n      spec: {timeout: 9m}\n";
        let releases = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n  \
                        annotations: {tier: front}\nspec: {}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n\
                        metadata:\n  name: db\n  labels: {tier: front}\n";
        std::fs::write(dir.path().join("ks.yaml"), ks).unwrap();
        std::fs::write(dir.path().join("hr.yaml"), releases).unwrap();
        let source = weaver_project::source::FsSource::new(dir.path());
        let mut import = Import::new(&source, Path::new(""));
        let kustomization = import.objects_of(Path::new("ks.yaml")).remove(0);
        let mut objects = import.objects_of(Path::new("hr.yaml"));
        import.patch_flux_objects(&kustomization, &mut objects);
        assert!(import.left_out.is_empty(), "{:?}", import.left_out);
        // The annotation selects web (a label of the same name on db does not); db is patched
        // by its own kind and name.
        assert_eq!(objects[0].object["spec"], json!({"interval": "1m"}));
        assert_eq!(objects[1].object["spec"], json!({"timeout": "9m"}));

        // A patch kustomize refuses is listed at its line in the Kustomization's file.
        std::fs::write(dir.path().join("bad.yaml"), ks.replace("metadata: {name: db}", "metadata: {name: none}"))
            .unwrap();
        let bad = import.objects_of(Path::new("bad.yaml")).remove(0);
        import.patch_flux_objects(&bad, &mut objects);
        let listed: Vec<(u64, &str)> = import.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(listed, [(9, "Kustomization flux-system/apps: patches")], "{:?}", import.left_out);
    }

    /// A repository's files, each read counted.
    struct Counted {
        files: weaver_project::source::FsSource,
        reads: std::sync::Mutex<BTreeMap<PathBuf, usize>>,
    }

    impl weaver_project::source::Source for Counted {
        fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
            *self.reads.lock().unwrap().entry(path.to_path_buf()).or_default() += 1;
            self.files.read(path)
        }
        fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<weaver_project::source::Entry>>> {
            self.files.list(dir)
        }
        fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
            self.files.resolve(path)
        }
        fn describe(&self) -> String {
            self.files.describe()
        }
    }

    #[test]
    fn a_kustomization_is_built_once_and_said_unrestricted_when_it_reads_outside_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            std::fs::create_dir_all(dir.path().join(path).parent().unwrap()).unwrap();
            std::fs::write(dir.path().join(path), text).unwrap();
        };
        let config_map = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n");
        write("apps/kustomization.yaml", "resources: [app.yaml, ../shared/shared.yaml]\n");
        write("apps/app.yaml", &config_map("app"));
        write("shared/shared.yaml", &config_map("shared"));
        write("infra/kustomization.yaml", "resources: [infra.yaml]\n");
        write("infra/infra.yaml", &config_map("infra"));
        let source = Counted { files: weaver_project::source::FsSource::new(dir.path()), reads: Default::default() };
        let mut import = Import::new(&source, Path::new(""));
        let at = obj("kind: Kustomization\nmetadata: {name: apps}\n");
        for (built, names) in [("apps", vec!["app", "shared"]), ("infra", vec!["infra"])] {
            let (objects, listed) = import.build(Path::new(built), &at).unwrap();
            assert_eq!(listed, None);
            assert_eq!(objects.iter().map(|o| o.name()).collect::<Vec<_>>(), names);
        }
        // What kustomize's default would refuse (a file outside the directory) is known
        // from the one build.
        assert_eq!(import.unrestricted, BTreeSet::from([PathBuf::from("apps")]));
        let reads = source.reads.lock().unwrap();
        for file in ["apps/app.yaml", "shared/shared.yaml", "infra/infra.yaml"] {
            assert_eq!(reads.get(Path::new(file)), Some(&1), "{file}: {reads:?}");
        }
    }

    #[test]
    fn helm_release_names_are_helm_controller_s() {
        let named =
            |spec: &str| helm_name(&obj(&format!("kind: HelmRelease\nmetadata: {{name: app}}\nspec: {spec}\n")));
        assert_eq!(named("{}"), "app");
        assert_eq!(named("{targetNamespace: shop}"), "shop-app");
        assert_eq!(named("{targetNamespace: shop, releaseName: web}"), "web");
    }

    #[test]
    fn paths_are_written_relative_to_the_generated_kustomization() {
        assert_eq!(relative(Path::new("flux-import/prod/apps"), Path::new("apps/prod")), "../../../apps/prod");
        assert_eq!(relative(Path::new("clusters/prod"), Path::new("clusters/prod/infra.yaml")), "infra.yaml");
        assert_eq!(relative(Path::new("a"), Path::new("a")), ".");
    }

    #[test]
    fn a_left_out_line_names_file_line_what_and_why() {
        let line = LeftOut { file: "a/b.yaml".into(), line: 7, what: "HelmRelease x/y: test".into(), why: "no".into() };
        assert_eq!(line.to_string(), "a/b.yaml:7: HelmRelease x/y: test: no");
    }

    #[test]
    fn lines_are_found_per_document_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("f.yaml"),
            "# comment\napiVersion: v1\nkind: A\n---\napiVersion: v1\nkind: B\nspec:\n  install:\n    x: 1\n---\n---\n\
             kind: C\nspec:\n  values:\n    install: \"${x}\"\n  install: {}\n  dependsOn:\n  - name: a # b\n  - name: b\n",
        )
        .unwrap();
        let source = weaver_project::source::FsSource::new(dir.path());
        let mut import = Import::new(&source, Path::new(""));
        assert_eq!(import.line_in(Path::new("f.yaml"), 1, None), 2);
        assert_eq!(import.line_in(Path::new("f.yaml"), 2, None), 5);
        assert_eq!(import.line_in(Path::new("f.yaml"), 2, Some("install")), 8);
        assert_eq!(import.line_in(Path::new("f.yaml"), 2, Some("absent")), 5);
        // A key is found where the parser puts it, not where its text first appears.
        assert_eq!(import.line_in(Path::new("f.yaml"), 3, Some("/spec/values/install")), 15);
        assert_eq!(import.line_in(Path::new("f.yaml"), 3, Some("install")), 16);
        let obj = Obj { object: Value::Null, file: "f.yaml".into(), document: 3 };
        assert_eq!(import.item_line(&obj, "/spec/dependsOn", "name", "b"), 19);
        assert_eq!(import.line_containing(&obj, "${x"), 15);
    }
}
