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

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use granit_parser::ScalarStyle;
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;

use crate::node::{Node, line};
use weaver_core::error::{Location, Result};
use weaver_helm::strvals::{self, Kind};
use weaver_kustomize as kustomize;
use weaver_kustomize::substitute::{self, Lookup};
use weaver_project::environment::LoadRestrictions;
use weaver_project::environment::is_release_name;
use weaver_project::source::{Entry, Source, is_plain_name, lexical};
use weaver_project::values::merge_overrides;

/// Where the kustomizations and variable files the import writes go, under one directory per
/// environment.
pub const GENERATED_DIR: &str = "flux-import";

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
    /// The clusters taken, one line each: their directory, environment and how it was found.
    pub clusters: Vec<String>,
}

/// The environments for the Flux repository at `root` (a directory of `source`, `""` for its
/// root); `clusters`, a path from `root`, names the clusters' directory (or one cluster's)
/// instead of finding them. An error only when `root` or `clusters` cannot be read.
pub fn convert(source: &dyn Source, root: &Path, clusters: Option<&Path>) -> Result<Imported> {
    let mut import = Import::new(source, root);
    let mut imported = Imported::default();
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
        for chart in converted.remote_charts {
            if !imported.remote_charts.contains(&chart) {
                imported.remote_charts.push(chart);
            }
        }
        imported.files.extend(converted.files);
    }
    imported.clusters.extend(std::mem::take(&mut import.taken_as_own));
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
}

impl Vars {
    /// A variable as Flux substitutes it: one nothing sets is empty (Flux's default, without
    /// the `StrictPostBuildSubstitutions` feature gate) when every source was read.
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.values.get(name) {
            Some(value) => Lookup::Set(value),
            None if self.unread.is_empty() => Lookup::Set(""),
            None => Lookup::Unknown,
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

/// The repository with the copies below `under`, as a build of a copy reads it.
struct WithCopies<'a> {
    source: &'a dyn Source,
    under: &'a Path,
    copies: &'a [Copy],
}

impl Source for WithCopies<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        match self.copies.iter().find(|c| c.file == path) {
            Some(copy) => Ok(Some(copy.text.clone().into_bytes())),
            None => self.source.read(path),
        }
    }

    fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<Entry>>> {
        let mut entries = self.source.list(dir)?;
        for copy in self.copies {
            let Ok(below) = copy.file.strip_prefix(dir) else { continue };
            let mut parts = below.components();
            let Some(first) = parts.next() else { continue };
            let name = first.as_os_str().to_string_lossy().into_owned();
            let listed = entries.get_or_insert_with(Vec::new);
            if !listed.iter().any(|e| e.name == name) {
                listed.push(Entry { name, is_dir: parts.next().is_some() });
                listed.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        Ok(entries)
    }

    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        match path.starts_with(self.under) {
            true => Ok(path.to_path_buf()),
            false => self.source.resolve(path),
        }
    }

    fn describe(&self) -> String {
        self.source.describe()
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
    /// The ConfigMaps (file, document) whose data as kustomize-controller applies it (substituted)
    /// the import could not substitute fully, and why: their values are read as written.
    config_unsubstituted: HashMap<(PathBuf, usize), String>,
    /// The URLs (as [`git_url_identity`] gives them) a FluxInstance or flux-instance HelmRelease
    /// syncs the clusters from: this repository's.
    own_urls: BTreeSet<String>,
    /// The GitRepositories not named flux-system taken as this repository, and why (said).
    taken_as_own: BTreeSet<String>,
    left_out: Vec<LeftOut>,
}

/// The files and charts of one cluster.
struct Converted {
    files: Vec<(PathBuf, String)>,
    remote_charts: Vec<String>,
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
            config_unsubstituted: HashMap::new(),
            own_urls: BTreeSet::new(),
            taken_as_own: BTreeSet::new(),
            left_out: Vec::new(),
        }
    }

    fn read(&mut self, path: &Path) -> Option<String> {
        if let Some(text) = self.texts.get(path) {
            return Some(text.clone());
        }
        let bytes = self.source.read(path).ok()??;
        let text = String::from_utf8(bytes).ok()?;
        self.texts.insert(path.to_path_buf(), text.clone());
        Some(text)
    }

    /// The parsed documents of a file, with the line of every key and item, in the order the
    /// objects read from it number them (empty documents left out).
    fn document(&mut self, file: &Path, document: usize) -> Option<&Spanned<Node>> {
        if !self.nodes.contains_key(file) {
            let text = self.read(file).unwrap_or_default();
            let docs = weaver_yaml::documents_as::<Spanned<Node>>(file, &text, "invalid YAML").unwrap_or_default();
            let docs = docs.into_iter().filter(|doc| !matches!(doc.value, Node::Null)).collect();
            self.nodes.insert(file.to_path_buf(), docs);
        }
        self.nodes.get(file)?.get(document.checked_sub(1)?)
    }

    /// The line of `key` in an object's document, or the document's first line: `key` is a JSON
    /// pointer (`/spec/chart/spec/valuesFiles`), or a field of its `spec`, itself or its
    /// `metadata`, looked for in that order.
    fn line(&mut self, obj: &Obj, key: Option<&str>) -> u64 {
        self.line_in(&obj.file, obj.document, key)
    }

    fn line_in(&mut self, file: &Path, document: usize, key: Option<&str>) -> u64 {
        let Some(doc) = self.document(file, document) else { return 1 };
        let pointers = match key {
            None => Vec::new(),
            Some(pointer) if pointer.starts_with('/') => vec![pointer.to_string()],
            Some(key) => ["/spec/", "/", "/metadata/"].iter().map(|at| format!("{at}{key}")).collect(),
        };
        pointers.iter().find_map(|pointer| Node::line_of(doc, pointer)).unwrap_or_else(|| line(doc))
    }

    /// The line of the item of the list at `list` (a JSON pointer) whose `field` is `value`, or
    /// of the list.
    fn item_line(&mut self, obj: &Obj, list: &str, field: &str, value: &str) -> u64 {
        let found = self.document(&obj.file, obj.document).and_then(|doc| match &Node::at(doc, list)?.value {
            Node::List(items) => items
                .iter()
                .find(|item| {
                    Node::at(item, &format!("/{field}"))
                        .is_some_and(|v| matches!(&v.value, Node::Scalar(Value::String(s)) if s == value))
                })
                .map(line),
            _ => None,
        });
        found.unwrap_or_else(|| self.line(obj, Some(list)))
    }

    /// The line of the first string of an object's document that contains `needle`.
    fn line_containing(&mut self, obj: &Obj, needle: &str) -> u64 {
        let found = self.document(&obj.file, obj.document).and_then(|doc| Node::line_containing(doc, needle));
        found.unwrap_or_else(|| self.line(obj, None))
    }

    fn leave(&mut self, file: &Path, line: u64, what: impl Into<String>, why: impl Into<String>) {
        self.left_out.push(LeftOut { file: file.to_path_buf(), line, what: what.into(), why: why.into() });
    }

    fn leave_at(&mut self, obj: &Obj, key: Option<&str>, what: impl Into<String>, why: impl Into<String>) {
        let line = self.line(obj, key);
        self.leave(&obj.file, line, what, why);
    }

    fn join(&self, path: &str) -> Option<PathBuf> {
        lexical(&self.root.join(path))
    }

    /// Every `.yaml`/`.yml` file under `dir`, depth first in name order, as Flux's generator
    /// walks; with `stop_at_kustomization`, a subdirectory holding a kustomization file is
    /// listed itself instead of its files.
    fn walk(&self, dir: &Path, stop_at_kustomization: bool, out: &mut Vec<PathBuf>) {
        let Ok(Some(entries)) = self.source.list(dir) else { return };
        for entry in entries {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                if entry.name.starts_with('.') {
                    continue;
                }
                if stop_at_kustomization && self.kustomization_in(&path) {
                    out.push(path);
                } else {
                    self.walk(&path, stop_at_kustomization, out);
                }
            } else if entry.name.ends_with(".yaml") || entry.name.ends_with(".yml") {
                out.push(path);
            }
        }
    }

    fn kustomization_in(&self, dir: &Path) -> bool {
        ["kustomization.yaml", "kustomization.yml", "Kustomization"]
            .iter()
            .any(|name| matches!(self.source.read(&dir.join(name)), Ok(Some(_))))
    }

    /// The objects of a file, as kyaml reads them; none when it is not Kubernetes YAML.
    fn objects_of(&mut self, file: &Path) -> Vec<Obj> {
        self.parsed(file).unwrap_or_default()
    }

    /// The objects of a file Flux builds: one that does not parse is listed, as Flux fails on it.
    fn objects_built(&mut self, file: &Path) -> Vec<Obj> {
        self.parsed(file).unwrap_or_else(|err| {
            let line = err.location.as_ref().and_then(|l| l.line).unwrap_or(1);
            let why = format!("not read: {}; kustomize-controller fails to build the path holding it", err.message);
            self.leave(file, line, "the file", why);
            Vec::new()
        })
    }

    fn parsed(&mut self, file: &Path) -> Result<Vec<Obj>> {
        if let Some(objects) = self.objects.get(file) {
            return Ok(objects.clone());
        }
        let Some(text) = self.read(file) else { return Ok(Vec::new()) };
        let docs = weaver_yaml::documents_kyaml(file, &text)?;
        let objects: Vec<Obj> = docs
            .into_iter()
            .enumerate()
            .filter(|(_, doc)| doc.get("kind").is_some() && doc.get("apiVersion").is_some())
            .map(|(i, object)| Obj { object, file: file.to_path_buf(), document: i + 1 })
            .collect();
        self.objects.insert(file.to_path_buf(), objects.clone());
        Ok(objects)
    }

    /// The clusters `--clusters` names: the directory itself when it holds YAML files, else each
    /// of its subdirectories.
    fn given_clusters(&mut self, given: &Path) -> Result<Vec<Cluster>> {
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
    fn clusters(&mut self) -> Result<Vec<Cluster>> {
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

    /// A flux-instance HelmRelease's `instance.sync` values as helm-controller merges them: its
    /// inline `values` over its `valuesFrom` ConfigMaps, as the kustomization of its directory
    /// builds them (a `configMapGenerator`, often). Null for another HelmRelease; a ConfigMap
    /// that does not build or read counts as empty (the release's conversion says why later).
    fn instance_sync(&self, hr: &Obj) -> Value {
        let inline = hr.object.pointer("/spec/values/instance/sync").cloned();
        let chart = [hr.name(), hr.text("/spec/chart/spec/chart"), hr.text("/spec/chartRef/name")];
        if inline.is_none() && !chart.iter().any(|name| name.contains("flux-instance")) {
            return Value::Null;
        }
        let mut sync = Map::new();
        let dir = hr.file.parent().unwrap_or(Path::new(""));
        if hr.object.pointer("/spec/valuesFrom").is_some() && self.kustomization_in(dir) {
            let location = Location::file(&hr.file);
            let built = kustomize::build(self.source, dir, &location, LoadRestrictions::None)
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
    fn name_clusters(&self, clusters: &mut [Cluster]) {
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

    /// What Flux builds from `dir`, and the entries that the release's kustomization lists in
    /// place of the directory (`None`: it names the directory): the files of the one Flux
    /// generates for a directory without a kustomization.
    fn build(&mut self, dir: &Path, at: &Obj) -> std::result::Result<(Vec<Obj>, Option<Vec<PathBuf>>), String> {
        if self.kustomization_in(dir) {
            return Ok((self.kustomize_build(dir, at)?, None));
        }
        if !matches!(self.source.list(dir), Ok(Some(_))) {
            return Err(format!("{} is not a directory of the repository", dir.display()));
        }
        let mut entries = Vec::new();
        self.walk(dir, true, &mut entries);
        let mut objects = Vec::new();
        let mut listed = Vec::new();
        for entry in entries {
            if self.kustomization_in(&entry) {
                objects.extend(self.kustomize_build(&entry, at)?);
                listed.push(entry);
            } else {
                let built = self.objects_built(&entry);
                if !built.is_empty() {
                    listed.push(entry);
                }
                objects.extend(built);
            }
        }
        Ok((objects, Some(listed)))
    }

    /// The kustomization in `dir`, built as kustomize-controller builds it, but for its remote
    /// entries (and those of the kustomizations it includes), which weaver does not fetch: then
    /// its copy without them is built (see [`Import::copy_without_remote`]).
    fn kustomize_build(&mut self, dir: &Path, at: &Obj) -> std::result::Result<Vec<Obj>, String> {
        let location = Location::file(&at.file);
        let under = PathBuf::from(GENERATED_DIR).join(WITHOUT_REMOTE);
        let mut copies = Vec::new();
        let copy = self.copy_without_remote(dir, &under, &mut copies, &mut Vec::new())?;
        let (objects, outside_root) =
            self.build_with_copies(copy.as_deref().unwrap_or(dir), &under, &copies, &location)?;
        if outside_root {
            self.unrestricted.insert(dir.to_path_buf());
        }
        Ok(objects)
    }

    /// The build of `dir` reading the repository with `copies` (below `under`) in it, as
    /// kustomize-controller builds (LoadRestrictionsNone; says whether that was needed, so that
    /// the release says so). What the copies say is said of the kustomizations they copy.
    fn build_with_copies(
        &self,
        dir: &Path,
        under: &Path,
        copies: &[Copy],
        location: &Location,
    ) -> std::result::Result<(Vec<Obj>, bool), String> {
        let with_copies = WithCopies { source: self.source, under, copies };
        let built = kustomize::build(&with_copies, dir, location, LoadRestrictions::None).map_err(|err| {
            copies.iter().fold(err.to_string(), |message, copy| {
                message.replace(&copy.file.display().to_string(), &copy.original.display().to_string())
            })
        })?;
        let original = |path: PathBuf| match copies.iter().find(|c| c.file == path) {
            Some(copy) => copy.original.clone(),
            None => path,
        };
        let objects = built
            .resources
            .into_iter()
            .map(|r| Obj { object: r.object, file: original(r.source), document: r.document })
            .collect();
        Ok((objects, built.outside_root))
    }

    /// What Flux builds from `dir` (or the `listed` entries standing for it) with a
    /// Kustomization's `components` added, as kustomize-controller adds them: one kustomization
    /// over both, held in memory (the release's written kustomization has the same shape).
    fn build_with_components(
        &mut self,
        dir: &Path,
        listed: Option<&[PathBuf]>,
        components: &[String],
        at: &Obj,
    ) -> std::result::Result<Vec<Obj>, String> {
        let wrapper_dir = PathBuf::from(GENERATED_DIR).join("with-components").join(dir);
        let mut copies = Vec::new();
        let entries = listed.map_or_else(|| vec![dir.to_path_buf()], <[PathBuf]>::to_vec);
        let resources: Vec<Value> = entries.iter().map(|e| self.named_from(&wrapper_dir, e, &mut copies)).collect();
        let mut named = Vec::new();
        for component in components {
            let path = lexical(&dir.join(component))
                .ok_or_else(|| format!("component {component} leads outside the repository"))?;
            named.push(self.named_from(&wrapper_dir, &path, &mut copies));
        }
        let wrapper = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
            "components": named,
        });
        let file = wrapper_dir.join("kustomization.yaml");
        copies.push(Copy { file: file.clone(), original: at.file.clone(), text: wrapper.to_string() });
        let (objects, _) = self.build_with_copies(&wrapper_dir, &wrapper_dir, &copies, &Location::file(&at.file))?;
        Ok(objects)
    }

    /// A copy of the kustomization in `dir` without its remote entries (`resources`, `bases` or
    /// `components` that are URLs), which weaver does not fetch, when it lists one or includes a
    /// kustomization that does: written to `under/<dir>/kustomization.yaml` (pushed to `copies`,
    /// after the copies it names in place of those it includes), its other paths rewritten to
    /// lead where they led, every other byte as written (a remote entry's line becomes a
    /// comment, so that lines stay where they were). Each remote entry is listed at its line.
    /// `None` when no copy is needed, or when the kustomization does not read (its build says
    /// why); `including` holds the kustomizations being copied, against cycles.
    fn copy_without_remote(
        &mut self,
        dir: &Path,
        under: &Path,
        copies: &mut Vec<Copy>,
        including: &mut Vec<PathBuf>,
    ) -> std::result::Result<Option<PathBuf>, String> {
        let copy_dir = under.join(dir);
        if copies.iter().any(|c| c.file.parent() == Some(copy_dir.as_path())) {
            return Ok(Some(copy_dir));
        }
        let Some(file) = kustomize::kustomization::find(self.source, dir) else { return Ok(None) };
        if including.contains(&file) {
            return Ok(None);
        }
        let Some(text) = self.read(&file) else { return Ok(None) };
        let mut scalars = Vec::new();
        let walked = weaver_yaml::scalars::walk(
            &text,
            |_, _, _| true,
            |s| scalars.push((s.pointer, s.value.to_string(), s.style, s.bytes, s.line)),
        );
        if walked.is_none() {
            return Ok(None);
        }
        let cannot = |line: usize, why: String| {
            format!(
                "{}:{line}: {why}, which the import cannot rewrite in a copy of the kustomization without its remote \
                 entries: vendor them into the repository",
                file.display()
            )
        };
        including.push(file.clone());
        let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
        let mut remote = Vec::new();
        let mut includes_copy = false;
        for (pointer, value, style, bytes, line) in scalars {
            let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
            let Some(field) = PathField::of(&tokens) else { continue };
            let Some(bytes) = bytes.map(|b| with_quotes(&text, b, style)) else {
                return Err(cannot(line, format!("{pointer} has no position")));
            };
            if field == PathField::Entry && kustomize::is_remote(&value) {
                let edit = without_item(&text, bytes).ok_or_else(|| cannot(line, format!("remote entry {value}")))?;
                edits.push(edit);
                remote.push((line, tokens[0] == "components", value));
                continue;
            }
            let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
            let (key, path) = match value.split_once('=') {
                Some((key, path)) if field == PathField::KeyedFile => (Some(key), path),
                _ => (None, value.as_str()),
            };
            let target = lexical(&dir.join(path));
            let is_dir = target.as_ref().is_some_and(|t| matches!(self.source.list(t), Ok(Some(_))));
            if field == PathField::FileOrInline
                && (block || !is_dir && !target.as_ref().is_some_and(|t| self.source.exists(t)))
            {
                continue;
            }
            let Some(target) = target.filter(|_| !block) else {
                return Err(cannot(line, format!("{pointer} `{path}` (outside the repository, or a block scalar)")));
            };
            let mut to = target.clone();
            if field == PathField::Entry
                && is_dir
                && let Some(copy) = self.copy_without_remote(&target, under, copies, including)?
            {
                includes_copy = true;
                to = copy;
            }
            let path = relative(&copy_dir, &to);
            let mut written = String::new();
            weaver_yaml::emit::write_double_quoted(
                &mut written,
                &key.map_or_else(|| path.clone(), |key| format!("{key}={path}")),
            );
            edits.push((bytes, written));
        }
        including.pop();
        if remote.is_empty() && !includes_copy {
            return Ok(None);
        }
        let Ok(k) = kustomize::kustomization::load(self.source, &file) else { return Ok(None) };
        // helmCharts are read from `chartHome`, `charts` beside the kustomization by default.
        let mut added = String::new();
        if k.helm_charts.as_ref().is_some_and(|charts| !charts.is_empty())
            && k.helm_globals.as_ref().is_none_or(|g| g.chart_home.is_empty())
        {
            if k.helm_globals.is_some() {
                return Err(cannot(1, "its helmGlobals have no chartHome".into()));
            }
            added.push_str("helmGlobals:\n  chartHome: ");
            weaver_yaml::emit::write_double_quoted(&mut added, &relative(&copy_dir, &dir.join("charts")));
            added.push('\n');
        }
        let mut copied = text.clone();
        edits.sort_by_key(|(bytes, _)| std::cmp::Reverse(bytes.start));
        for (bytes, written) in edits {
            copied.replace_range(bytes, &written);
        }
        if !copied.ends_with('\n') {
            copied.push('\n');
        }
        copied.push_str(&added);
        copied.push_str(&format!(
            "# {} without its remote entries, which weaver does not fetch, by `weaver import flux`.\n",
            file.display()
        ));
        let why = "not converted: weaver builds only kustomizations of its repository, and fetches nothing: the rest \
                   is converted without it (from a copy of this kustomization under flux-import/, the Flux tree as it \
                   was): vendor the file into the repository and list it in place of the URL";
        for (line, component, value) in remote {
            let what = format!("remote {} {value}", if component { "component" } else { "resource" });
            self.leave(&file, line as u64, what, why);
        }
        copies.push(Copy { file: copy_dir.join("kustomization.yaml"), original: file, text: copied });
        Ok(Some(copy_dir))
    }

    /// How the kustomization of the release in `generated_dir` names `path`, a file or
    /// kustomization of the Flux tree: by its copy without remote entries when it needs one
    /// (pushed to `copies`, written under `generated_dir`).
    fn named_from(&mut self, generated_dir: &Path, path: &Path, copies: &mut Vec<Copy>) -> Value {
        let under = generated_dir.join(WITHOUT_REMOTE);
        // The build made the same copies, or failed and made no release.
        let copy = self.copy_without_remote(path, &under, copies, &mut Vec::new()).ok().flatten();
        Value::String(relative(generated_dir, copy.as_deref().unwrap_or(path)))
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
                        self.leave(
                            &obj.file,
                            1,
                            "Flux's own controllers and CRDs",
                            "not converted: weaver applies from your pipeline (or its operator, `weaver operator`), \
                             not through Flux's controllers",
                        );
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
        Converted { files: all, remote_charts }
    }

    /// The repository directory a Kustomization builds, or `None` (listed).
    fn ks_dir(&mut self, ks: &Obj, sources: &[Obj]) -> Option<PathBuf> {
        let kind = ks.text("/spec/sourceRef/kind").to_string();
        let name = ks.text("/spec/sourceRef/name").to_string();
        let path = ks.text("/spec/path").to_string();
        let what = format!("{}: sourceRef {kind} {name}", ks.describe());
        if path.contains("${") {
            self.leave_at(
                ks,
                Some("path"),
                format!("{}: path `{path}`", ks.describe()),
                "a variable no substitution sets here",
            );
            return None;
        }
        match kind.as_str() {
            "GitRepository" => {
                let namespace = ks.text("/spec/sourceRef/namespace");
                let namespace = if namespace.is_empty() { ks.namespace() } else { namespace };
                let git = sources
                    .iter()
                    .find(|s| s.kind() == "GitRepository" && s.name() == name && s.namespace() == namespace);
                // One the repository does not define is the one bootstrap (or flux-operator)
                // made for it.
                let is_this_repository = name == "flux-system" || git.is_none_or(|g| g.text("/spec/url").is_empty());
                // Another name for it: its URL is the one the clusters sync from.
                let is_this_repository = is_this_repository
                    || git.is_some_and(|g| {
                        let url = git_url_identity(g.text("/spec/url"));
                        let bootstrap =
                            sources.iter().find(|s| s.kind() == "GitRepository" && s.name() == "flux-system");
                        let own = self.own_urls.contains(&url)
                            || bootstrap.is_some_and(|b| git_url_identity(b.text("/spec/url")) == url);
                        if own {
                            self.taken_as_own.insert(format!(
                                "GitRepository {}/{name} ({}, {}) taken as this repository: its URL is the one the \
                                 cluster syncs from",
                                g.namespace(),
                                g.text("/spec/url"),
                                g.file.display()
                            ));
                        }
                        own
                    });
                if !is_this_repository {
                    let url = git.map(|g| g.text("/spec/url").to_string()).unwrap_or_default();
                    self.leave_at(
                        ks,
                        Some("sourceRef"),
                        what,
                        format!(
                            "another git repository{}: weaver builds kustomizations of its own repository: import \
                             that repository, or vendor the path into this one",
                            if url.is_empty() { String::new() } else { format!(" ({url})") }
                        ),
                    );
                    return None;
                }
                let dir = self.join(&path);
                if dir.is_none() {
                    self.leave_at(
                        ks,
                        Some("path"),
                        format!("{}: path `{path}`", ks.describe()),
                        "leaves the repository",
                    );
                }
                dir
            }
            "ExternalArtifact" => {
                // An ArtifactGenerator's `copy` of this repository's directories.
                let generator = sources.iter().find(|s| {
                    s.kind() == "ArtifactGenerator"
                        && s.spec("artifacts").and_then(Value::as_array).is_some_and(|a| {
                            a.iter().any(|x| x.get("name").and_then(Value::as_str) == Some(name.as_str()))
                        })
                });
                let mapped = generator.and_then(|g| artifact_path(g, &name, &path));
                match mapped.and_then(|p| self.join(&p)) {
                    Some(dir) => Some(dir),
                    None => {
                        self.leave_at(
                            ks,
                            Some("sourceRef"),
                            what,
                            "not an ArtifactGenerator's copy of directories of this repository: not converted",
                        );
                        None
                    }
                }
            }
            _ => {
                self.leave_at(
                    ks,
                    Some("sourceRef"),
                    what,
                    "weaver builds kustomizations of its own repository, not of OCI artifacts or buckets: import the \
                     repository they are built from",
                );
                None
            }
        }
    }

    /// Applies a Kustomization's `patches` to the Flux objects of its build, as Flux patches
    /// the whole build (its other objects get them from the release's kustomization): a child
    /// Kustomization or HelmRelease is converted as patched.
    /// Applies a Kustomization's `patches` to the Flux objects it built, with kustomize's
    /// patches transformer, as kustomize-controller does (every object is patched, so that a
    /// patch without a target finds its object; the others are patched again at render).
    fn patch_flux_objects(&mut self, ks: &Obj, objects: &mut Vec<Obj>) {
        let Some(Value::Array(entries)) = ks.spec("patches") else { return };
        if entries.is_empty() || !objects.iter().any(Obj::is_flux) {
            return;
        }
        let mut patches = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let pointer = format!("/spec/patches/{i}");
            let at = self.line(ks, Some(&pointer));
            match serde_json::from_value::<kustomize::kustomization::PatchEntry>(entry.clone()) {
                Ok(value) => {
                    // A patch its parent's patches gave it is not in its file: it is located at
                    // the Kustomization.
                    let node = self.document(&ks.file, ks.document).map(|doc| Node::at(doc, &pointer).unwrap_or(doc));
                    let Some(node) = node else { continue };
                    patches.push(Spanned { value, referenced: node.referenced, defined: node.defined });
                }
                Err(err) => {
                    let what = format!("{}: patch", ks.describe());
                    self.leave(
                        &ks.file,
                        at,
                        what,
                        format!("not a kustomize patch ({err}): not applied to its Flux objects"),
                    );
                }
            }
        }
        let resources: Vec<kustomize::Resource> = objects
            .iter()
            .map(|o| {
                let text = self.read(&o.file).unwrap_or_default();
                kustomize::Resource::read(o.object.clone(), o.file.clone(), o.document, &text)
            })
            .collect();
        match kustomize::apply_patches(self.source, &ks.file, patches, resources) {
            Ok(patched) => {
                // Plain objects stay as read (the release patches them); Flux objects as patched,
                // each found by its file, document and id as read: a component's file is built
                // once per namespace that adds it, so file and document alone name several.
                let id = |file: &Path, document: usize, (kind, name, namespace): (&str, &str, &str)| {
                    (file.to_path_buf(), document, kind.to_string(), name.to_string(), namespace.to_string())
                };
                let mut patched: HashMap<_, Value> =
                    patched.into_iter().map(|r| (id(&r.source, r.document, r.original_id()), r.object)).collect();
                objects.retain_mut(|o| match o.is_flux() {
                    false => true,
                    true => patched
                        .remove(&id(&o.file, o.document, (o.kind(), o.name(), o.namespace())))
                        .map(|object| o.object = object)
                        .is_some(),
                });
            }
            Err(err) => {
                let line = err.location.as_ref().and_then(|l| l.line).unwrap_or_else(|| self.line(ks, Some("patches")));
                let what = format!("{}: patches", ks.describe());
                self.leave(&ks.file, line, what, format!("not applied to its Flux objects: {}", err.message));
            }
        }
    }

    /// Whether an object is the only document of its file, read from it as it is (not made by
    /// a generator), so that weaver can read the file in its place.
    fn alone_in_file(&mut self, obj: &Obj) -> bool {
        let generated = obj
            .file
            .file_name()
            .is_some_and(|n| ["kustomization.yaml", "kustomization.yml", "Kustomization"].iter().any(|k| n == *k));
        !generated && self.objects_of(&obj.file).len() == 1
    }

    /// A Kustomization's variables for what it holds (which Flux substitutes in its Flux objects
    /// as well), or `None` when it has no `postBuild`.
    fn variables(&mut self, ks: &Obj, config: &[Obj]) -> Option<Vars> {
        let post = ks.spec("postBuild")?;
        let mut vars = Vars::default();
        for from in post.get("substituteFrom").and_then(Value::as_array).into_iter().flatten() {
            let kind = from.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = from.get("name").and_then(Value::as_str).unwrap_or_default();
            let optional = from.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match find(config, kind, name, ks.namespace()) {
                // An encrypted ConfigMap's values are read at render, not here: what uses them
                // is listed as a Secret's are.
                Some(cm) if kind == "ConfigMap" && !cm.is_encrypted() => {
                    for (key, value) in cm.object.get("data").and_then(Value::as_object).into_iter().flatten() {
                        if let Some(value) = value.as_str() {
                            vars.values.insert(key.clone(), value.to_string());
                        }
                    }
                }
                None if optional => {}
                found => {
                    let namespace = found.map_or(ks.namespace(), |f| namespace_or(f, ks.namespace()));
                    vars.unread.push(format!("{kind} {namespace}/{name}"));
                }
            }
        }
        for (key, value) in post.get("substitute").and_then(Value::as_object).into_iter().flatten() {
            vars.values.insert(key.clone(), scalar_text(value));
        }
        Some(vars)
    }

    /// Substitutes a Kustomization's variables in an object it holds, as Flux does, but for the
    /// variables of sources the import does not read, whose references stay: their names.
    fn substitute_known(
        &mut self,
        obj: &mut Obj,
        vars: &Vars,
    ) -> std::result::Result<BTreeSet<String>, substitute::Problem> {
        let unknown = RefCell::new(BTreeSet::new());
        let lookup = |name: &str| {
            let found = vars.lookup(name);
            if found == Lookup::Unknown {
                unknown.borrow_mut().insert(name.to_string());
            }
            found
        };
        let mut copy = obj.object.clone();
        substitute::substitute_known(&mut copy, &lookup)?;
        obj.object = copy;
        Ok(unknown.into_inner())
    }

    /// A ConfigMap as kustomize-controller applies it, substituted; what cannot be is noted
    /// for those who read it (`valuesFrom`).
    fn substitute_config(&mut self, cm: &mut Obj, vars: &Vars) {
        let key = (cm.file.clone(), cm.document);
        let why = match self.substitute_known(cm, vars) {
            Ok(unknown) if unknown.is_empty() => {
                self.config_unsubstituted.remove(&key);
                return;
            }
            Ok(unknown) => format!(
                "its variables {} are {}'s (its Kustomization's substituteFrom), which the import does not read",
                unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                vars.unread.join(" or ")
            ),
            Err(problem) => format!("not substituted: {problem}"),
        };
        self.config_unsubstituted.insert(key, format!("{} ({}): {why}", cm.describe(), cm.file.display()));
    }

    /// Substitutes a Kustomization's variables in a Flux object it holds, as Flux does; what
    /// cannot be is listed, one line a variable.
    fn substitute(&mut self, obj: &mut Obj, vars: &Vars) {
        match self.substitute_known(obj, vars) {
            Ok(unknown) => {
                if !unknown.is_empty() {
                    self.unsubstituted.insert((obj.file.clone(), obj.document));
                }
                for name in unknown {
                    let line = match self.line_containing(obj, &format!("${{{name}}}")) {
                        line if line != self.line(obj, None) => line,
                        _ => self.line_containing(obj, &format!("${{{name}")),
                    };
                    self.leave(
                        &obj.file,
                        line,
                        format!("{}: variable {name}", obj.describe()),
                        format!(
                            "Flux substitutes it from {} (its Kustomization's substituteFrom), which the import does \
                             not read: kept as `${{{name}}}` and the release written `installed: false`; write the \
                             value in its place (a secret one in a SOPS file: `weaver secrets encrypt`) and remove \
                             that line",
                            vars.unread.join(" or ")
                        ),
                    );
                }
            }
            Err(problem) => {
                self.unsubstituted.insert((obj.file.clone(), obj.document));
                let name = match &problem {
                    substitute::Problem::Unset(name) | substitute::Problem::Unsupported { variable: name, .. } => {
                        Some(name.clone())
                    }
                    _ => None,
                };
                let line = match &name {
                    Some(name) => self.line_containing(obj, &format!("${{{name}")),
                    None => self.line(obj, None),
                };
                self.leave(
                    &obj.file,
                    line,
                    format!("{}: variables", obj.describe()),
                    format!(
                        "{problem} (Flux substitutes it from its Kustomization's postBuild): it is converted as \
                         written, with the `${{…}}` text, and the release written `installed: false`"
                    ),
                );
            }
        }
    }

    /// The `kustomize:` release of a Kustomization's objects that are not Flux's, or `None`
    /// when it has none.
    fn kustomization_release(
        &mut self,
        env: &str,
        ks: &Ks,
        config: &[Obj],
        releases: &[Release],
        taken: &BTreeSet<String>,
        files: &mut Vec<(PathBuf, String)>,
    ) -> Option<Release> {
        let obj = ks.obj.clone();
        let what = obj.describe();
        self.kustomization_settings(&obj);
        let dir = ks.dir.clone()?;
        if ks.plain.is_empty() {
            return None;
        }
        if obj.spec("postBuild").is_none()
            && let Some(named) = ks.plain.iter().find(|o| substitute::in_identity(&o.object))
        {
            // Flux would apply the `${…}` text itself, which no object's name can be.
            let named = named.clone();
            self.leave_at(
                &named,
                None,
                format!("{what} (path {})", shown(&dir)),
                format!(
                    "{} is named with a `${{…}}` variable, and this Kustomization substitutes none: import the \
                     Kustomization that applies this path with its postBuild",
                    named.describe()
                ),
            );
            return None;
        }
        let name = unique_name(obj.name(), obj.namespace(), releases, taken);
        if !is_release_name(&name) {
            self.leave_at(&obj, Some("name"), what, not_a_release_name(&name));
            return None;
        }
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String(name.clone()));
        let target_namespace = obj.text("/spec/targetNamespace").to_string();
        if !target_namespace.is_empty() {
            if !weaver_core::manifest::is_dns1123_label(&target_namespace) {
                let why = format!("targetNamespace `{target_namespace}` is not a namespace name");
                self.leave_at(&obj, Some("targetNamespace"), what, why);
                return None;
            }
            fields.insert("namespace".into(), Value::String(target_namespace.clone()));
        }
        // What kustomize expresses goes into a kustomization of the import's, around Flux's.
        let mut wrapper = Map::new();
        let spec = |key: &str| obj.spec(key).cloned();
        if !target_namespace.is_empty()
            && ks.plain.iter().any(|o| !o.namespace().is_empty() && o.namespace() != target_namespace)
        {
            wrapper.insert("namespace".into(), Value::String(target_namespace.clone()));
        }
        for key in ["namePrefix", "nameSuffix"] {
            if let Some(v) = spec(key) {
                wrapper.insert(key.into(), v);
            }
        }
        if let Some(meta) = spec("commonMetadata") {
            if let Some(labels) = meta.get("labels").filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) {
                wrapper.insert("labels".into(), json!([{ "pairs": labels, "includeSelectors": false }]));
            }
            if let Some(annotations) = meta.get("annotations") {
                wrapper.insert("commonAnnotations".into(), annotations.clone());
            }
        }
        if let Some(images) = spec("images") {
            wrapper.insert("images".into(), images);
        }
        let generated_dir = PathBuf::from(GENERATED_DIR).join(env).join(&name);
        let mut patches: Vec<Value> = Vec::new();
        for patch in obj.spec("patches").and_then(Value::as_array).into_iter().flatten() {
            patches.push(patch.clone());
        }
        // Every object of a Flux kind goes (one patch a kind: names repeat across namespaces);
        // an encrypted Secret by its name.
        let mut kinds = BTreeSet::new();
        for dropped in &ks.dropped {
            let (target, name) = if dropped.is_flux() {
                if !kinds.insert((dropped.text("/apiVersion").to_string(), dropped.kind().to_string())) {
                    continue;
                }
                (json!({ "group": dropped.group(), "kind": dropped.kind() }), "_".to_string())
            } else {
                let mut target = json!({ "kind": dropped.kind(), "name": regex::escape(dropped.name()) });
                if !dropped.namespace().is_empty() {
                    target["namespace"] = Value::String(regex::escape(dropped.namespace()));
                }
                (target, dropped.name().to_string())
            };
            patches.push(json!({
                "patch": format!(
                    "$patch: delete\napiVersion: {}\nkind: {}\nmetadata:\n  name: {name}\n",
                    dropped.text("/apiVersion"),
                    dropped.kind(),
                ),
                "target": target,
            }));
        }
        // A kustomization listing remote entries, or including one that does, is named by its
        // copy without them.
        let mut copies = Vec::new();
        let mut components = Vec::new();
        for component in obj.spec("components").and_then(Value::as_array).into_iter().flatten() {
            if let Some(path) = component.as_str().and_then(|c| lexical(&dir.join(c))) {
                components.push(self.named_from(&generated_dir, &path, &mut copies));
            }
        }
        if !components.is_empty() {
            wrapper.insert("components".into(), Value::Array(components));
        }
        if !patches.is_empty() {
            wrapper.insert("patches".into(), Value::Array(patches));
        }
        // The entries listed in place of the directory are written here, never into the Flux
        // directory (where Flux would read a kustomization instead of generating its own, and
        // miss the files added beside it later).
        let entries = ks.listed.clone().unwrap_or_else(|| vec![dir.clone()]);
        let resources: Vec<Value> =
            entries.iter().map(|entry| self.named_from(&generated_dir, entry, &mut copies)).collect();
        let kustomize_dir = if wrapper.is_empty() && ks.listed.is_none() && copies.is_empty() {
            dir.clone()
        } else {
            let mut text = Map::new();
            text.insert("apiVersion".into(), json!("kustomize.config.k8s.io/v1beta1"));
            text.insert("kind".into(), json!("Kustomization"));
            text.insert("resources".into(), Value::Array(resources));
            text.extend(wrapper);
            let mut generated = String::new();
            if ks.listed.is_some() {
                generated.push_str(", with the kustomization Flux generates for a directory without one");
            }
            if !copies.is_empty() {
                generated.push_str(&format!(
                    ", naming copies of its kustomizations without their remote entries ({WITHOUT_REMOTE}/)"
                ));
            }
            files.push((
                generated_dir.join("kustomization.yaml"),
                format!(
                    "# Flux Kustomization {} ({}) as kustomize-controller builds it{generated}, by `weaver import \
                     flux`.\n{}",
                    obj.name(),
                    obj.file.display(),
                    weaver_yaml::to_yaml_string(&Value::Object(text))
                ),
            ));
            files.extend(copies.iter().map(|copy| (copy.file.clone(), copy.text.clone())));
            generated_dir.clone()
        };
        fields.insert("kustomize".into(), Value::String(kustomize_dir.to_string_lossy().replace('\\', "/")));
        // The generated kustomization names the directory's files, and the copies the files of
        // the Flux tree, outside their own directories.
        if ks.listed.is_some() || !copies.is_empty() || self.unrestricted.iter().any(|built| built.starts_with(&dir)) {
            fields.insert("loadRestrictions".into(), Value::String("none".into()));
        }

        // The names of the variables a Secret file gives (its values are read at render).
        let mut secret_names = BTreeSet::new();
        // Whether a substituteFrom source was left out: then an unset variable may be its.
        let mut unread_source = false;
        if let Some(post) = obj.spec("postBuild") {
            if let Some(Value::Object(substitute)) = post.get("substitute")
                && !substitute.is_empty()
            {
                let vars: Map<String, Value> =
                    substitute.iter().map(|(k, v)| (k.clone(), Value::String(scalar_text(v)))).collect();
                fields.insert("substitute".into(), Value::Object(vars));
            }
            let mut from_files = Vec::new();
            for from in post.get("substituteFrom").and_then(Value::as_array).into_iter().flatten() {
                let kind = from.get("kind").and_then(Value::as_str).unwrap_or_default();
                let from_name = from.get("name").and_then(Value::as_str).unwrap_or_default();
                let optional = from.get("optional").and_then(Value::as_bool).unwrap_or(false);
                let line = self.item_line(&obj, "/spec/postBuild/substituteFrom", "name", from_name);
                match (kind, find(config, kind, from_name, obj.namespace())) {
                    // A file of its own: weaver reads its data (decrypting it when SOPS
                    // encrypted it), so the file is named as it is.
                    (_, Some(found)) if self.alone_in_file(found) => {
                        if kind == "Secret" || found.is_encrypted() {
                            for field in ["data", "stringData"] {
                                let keys = found.object.get(field).and_then(Value::as_object).into_iter().flatten();
                                secret_names.extend(keys.map(|(k, _)| k.clone()));
                            }
                        }
                        from_files.push(Value::String(found.file.to_string_lossy().replace('\\', "/")));
                    }
                    ("ConfigMap", Some(cm)) if !cm.is_encrypted() => {
                        let data: Map<String, Value> =
                            cm.object.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
                        let path = PathBuf::from(GENERATED_DIR).join(env).join("vars").join(format!(
                            "{}-{}.yaml",
                            if cm.namespace().is_empty() { obj.namespace() } else { cm.namespace() },
                            from_name
                        ));
                        if !files.iter().any(|(p, _)| *p == path) {
                            files.push((
                                path.clone(),
                                format!(
                                    "# The data of ConfigMap {from_name} ({}), Flux's substituteFrom, by `weaver import flux`.\n{}",
                                    cm.file.display(),
                                    weaver_yaml::to_yaml_string(&Value::Object(data))
                                ),
                            ));
                        }
                        from_files.push(Value::String(path.to_string_lossy().replace('\\', "/")));
                    }
                    (_, None) if optional => {}
                    ("Secret" | "ConfigMap", Some(secret)) => {
                        unread_source = true;
                        self.leave(
                            &obj.file,
                            line,
                            format!("{what}: substituteFrom {kind} {from_name}"),
                            format!(
                                "a Secret's or SOPS-encrypted ConfigMap's values are not copied into files ({}): write \
                                 them in a SOPS-encrypted flat file (`weaver secrets encrypt`) and list it in the \
                                 release's `substituteFrom`",
                                secret.file.display()
                            ),
                        );
                    }
                    _ => {
                        unread_source = true;
                        self.leave(
                            &obj.file,
                            line,
                            format!("{what}: substituteFrom {kind} {from_name}"),
                            "not found in the repository (Flux reads it from the cluster): write its variables in a \
                             file and list it in the release's `substituteFrom`",
                        );
                    }
                }
            }
            if !from_files.is_empty() {
                fields.insert("substituteFrom".into(), Value::Array(from_files));
            }
        }
        if let Some(vars) = self.variables(&obj, config) {
            let mut unset = BTreeSet::new();
            for plain in &ks.plain {
                let mut object = plain.object.clone();
                let mut vars = vars.values.clone();
                vars.extend(secret_names.iter().map(|name| (name.clone(), String::new())));
                // Each unset variable in turn, so that all of them are named.
                while let Err(substitute::Problem::Unset(name)) = substitute::substitute(&mut object, &vars) {
                    vars.insert(name.clone(), String::new());
                    unset.insert(name);
                }
            }
            if !unset.is_empty() && !unread_source {
                // Flux's default (without StrictPostBuildSubstitutions) substitutes nothing.
                let substitute = fields.entry("substitute").or_insert_with(|| json!({}));
                for name in &unset {
                    substitute[name.as_str()] = Value::String(String::new());
                }
            } else if !unset.is_empty() {
                fields.insert("installed".into(), Value::Bool(false));
                let names: Vec<String> = unset.into_iter().collect();
                let line = self.line(&obj, Some("postBuild"));
                self.leave(
                    &obj.file,
                    line,
                    format!("{what}: postBuild variables {}", names.join(", ")),
                    "set by no substitute or ConfigMap of the repository (a Secret's, or the cluster's): the release \
                     is written with `installed: false`; give them in a `substituteFrom` file and remove that line",
                );
            }
        }
        if self.unsubstituted.contains(&(obj.file.clone(), obj.document)) && !fields.contains_key("installed") {
            // Its own settings keep a `${…}` its parent would have substituted (listed where it
            // is): rendered so, the release would deploy that text.
            fields.insert("installed".into(), Value::Bool(false));
        }
        let after_ks = depends_on(&obj);
        Some(Release { name, fields, after_ks, after_hr: Vec::new() })
    }

    /// Lists a Kustomization's settings that have no weaver equivalent.
    fn kustomization_settings(&mut self, obj: &Obj) {
        let what = obj.describe();
        let Some(Value::Object(spec)) = obj.object.get("spec") else { return };
        for (key, value) in spec {
            let why = match key.as_str() {
                "prune" if value == &Value::Bool(false) => {
                    "weaver prunes what a revision dropped: give `weaver apply --no-prune` to keep it"
                }
                "suspend" if value == &Value::Bool(true) => {
                    "nothing reconciles between weaver's applies: leave the release out of the environment while \
                     it is suspended"
                }
                "force" if value == &Value::Bool(true) => {
                    "weaver never replaces objects: `weaver apply --force-conflicts` takes fields others own"
                }
                "serviceAccountName" => {
                    "weaver applies as the kubeconfig's user, or as an EnvironmentSync's `serviceAccountName`"
                }
                "kubeConfig" => "a remote cluster: give the environment's `cluster.context`",
                "healthCheckExprs" => "write them as the environment's `healthChecks:` (CEL rules per kind)",
                "deletionPolicy" if !matches!(value.as_str(), Some("MachineGenerated" | "Delete")) => {
                    "weaver deletes a release's objects when the release is removed (`apply --prune-releases`)"
                }
                "healthChecks" => {
                    "`weaver apply --wait` waits for every object of every release (these included when they are \
                     the release's)"
                }
                _ => continue,
            };
            let line = self.line(obj, Some(key));
            self.leave(&obj.file, line, format!("{what}: {key}"), why);
        }
    }

    /// A HelmRelease as a chart release, or `None` (listed).
    fn helm_release(
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
    fn version(&mut self, hr: &Obj, at: &Obj, version: &str, fields: &mut Map<String, Value>) {
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
    fn chart(
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
                match path {
                    Some(path) if path.parent() == Some(Path::new("charts")) => {
                        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                        fields.insert("chart".into(), Value::String(name));
                        Some(())
                    }
                    // weaver names a chart elsewhere by its path from the repository's root.
                    Some(path) if self.source.exists(&path.join("Chart.yaml")) => {
                        let path = path.to_string_lossy().replace('\\', "/");
                        fields.insert("chart".into(), Value::String(format!("./{path}")));
                        Some(())
                    }
                    _ => {
                        self.leave_at(
                            hr,
                            Some("chart"),
                            format!("{what}: chart {chart}"),
                            "not a Helm chart directory of the repository (no Chart.yaml there)",
                        );
                        None
                    }
                }
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
    fn values_from(&mut self, hr: &Obj, from: &Value, config: &[Obj], values: &mut Map<String, Value>) {
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
    fn post_renderer(&mut self, hr: &Obj, renderer: &Value, patches: &mut Vec<Value>) {
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
    fn helm_release_settings(&mut self, hr: &Obj, namespace: &str) {
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
