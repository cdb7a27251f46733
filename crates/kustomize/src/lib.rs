//! Kustomizations, built natively with kustomize v5's semantics (`kubectl kustomize` 1.32,
//! kustomize v5.5.0): one entry, [`build`], like kustomize's `api/krusty`; the file's schema in
//! [`kustomization`]; one filter per transformation in [`filters`], like kustomize's
//! `api/filters`. Pure: files in through `Source` (so `--rev` and the repository's confinement
//! apply), objects out.
//!
//! What kustomize does, in its order, for each kustomization (bases first, recursively):
//! resources; generators; components (each run on what has accumulated); then the
//! transformers: `patchesStrategicMerge`, `patches`, `namespace`, `namePrefix`, `nameSuffix`,
//! `labels` and `commonLabels`, `commonAnnotations`, `patchesJson6902`, `replicas`, `images`.
//! Once, for the top kustomization only: content-hash name suffixes of generated objects, then
//! the name references to every renamed object, the `vars`, and last the objects annotated
//! `config.kubernetes.io/local-config` left out.
//!
//! Load restrictions are kustomize's default (`LoadRestrictionsRootOnly`): a file a
//! kustomization reads (a resource, a patch, a generator's input) must be inside the
//! kustomization's directory; another kustomization directory may be anywhere in the
//! repository. A release may ask for `LoadRestrictionsNone` (what Flux's kustomize-controller
//! builds with): then the file may be anywhere in the repository. Nothing is read from outside
//! the repository, and remote bases are refused.

pub mod filters;
pub mod kustomization;
pub mod substitute;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use kustomization::{Kustomization, Located, location};
use weaver_core::error::{Error, Location, Result};
use weaver_core::limits::RenderLimits;
use weaver_project::environment::LoadRestrictions;
use weaver_project::source::{Source, lexical, utf8};

/// One object of a build, with the file it came from.
#[derive(Debug, Clone)]
pub struct Resource {
    pub object: Value,
    /// The file the object was read from, or the kustomization file that generated it.
    pub source: PathBuf,
    /// Its document in that file (1-based), or its generator's position.
    pub document: usize,
    /// The kinds, names and namespaces it had before each rename, oldest first (kustomize's
    /// previous ids), which name references are resolved by.
    prev: Vec<PrevId>,
    /// The name prefixes and suffixes given to it, innermost kustomization first (kustomize's
    /// build annotations), which tell apart the copies of one base a name reference could mean.
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    /// A generated object whose name gets kustomize's content hash at the end of the build.
    needs_hash: bool,
    /// The `vars` attached to it, whose values are its fields.
    ref_vars: Vec<String>,
    /// The origins of the transformers run on it, first first (`buildMetadata` given).
    transformations: Vec<Value>,
    /// JSON pointers of the fields its file leaves empty (`key:`), which a strategic merge
    /// clears (see `patch::strategic::clear_empty_values`).
    empty_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct PrevId {
    kind: String,
    name: String,
    namespace: String,
}

impl Resource {
    /// An object read from `source`'s `document`, as a build starts with it.
    pub fn new(object: Value, source: PathBuf, document: usize) -> Resource {
        Resource {
            object,
            source,
            document,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            ref_vars: Vec::new(),
            transformations: Vec::new(),
            empty_values: Vec::new(),
        }
    }

    /// An object read from `source`'s `document`, whose `text` is that file's: its fields left
    /// empty there (`key:`) are cleared by a strategic merge, as kustomize clears them.
    pub fn read(object: Value, source: PathBuf, document: usize, text: &str) -> Resource {
        let empty = weaver_yaml::empty::empty_values(text).into_iter().nth(document.saturating_sub(1));
        Resource { empty_values: empty.unwrap_or_default(), ..Resource::new(object, source, document) }
    }

    /// A top-level field's text, or a field of `metadata` (`metadata` given), or "". Looked up
    /// directly: a JSON pointer is parsed, with its escapes replaced, at every call, and a build
    /// compares these fields of every pair of objects.
    fn text(&self, metadata: bool, field: &str) -> &str {
        let object = if metadata { self.object.get("metadata") } else { Some(&self.object) };
        object.and_then(|o| o.get(field)).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.text(false, "apiVersion")
    }

    pub fn kind(&self) -> &str {
        self.text(false, "kind")
    }

    pub fn name(&self) -> &str {
        self.text(true, "name")
    }

    pub fn namespace(&self) -> &str {
        self.text(true, "namespace")
    }

    fn group(&self) -> &str {
        weaver_core::manifest::api_group(self.api_version())
    }

    fn version(&self) -> &str {
        let api_version = self.api_version();
        api_version.rsplit_once('/').map_or(api_version, |(_, version)| version)
    }

    /// The kind, name and namespace it was read with, before any patch renamed it (kustomize's
    /// `OrgId`): with its source and document, what tells apart the objects of one file a build
    /// holds more than once (a component added in every namespace).
    pub fn original_id(&self) -> (&str, &str, &str) {
        match self.prev.first() {
            Some(id) => (&id.kind, &id.name, &id.namespace),
            None => (self.kind(), self.name(), self.namespace()),
        }
    }

    fn original_kind(&self) -> &str {
        self.original_id().0
    }

    /// Records the current id before a rename (kustomize's `StorePreviousId`).
    fn store_previous_id(&mut self) {
        let id = PrevId {
            kind: self.kind().to_string(),
            name: self.name().to_string(),
            namespace: self.namespace().to_string(),
        };
        self.prev.push(id);
    }

    /// Every name it has had, the current one included.
    fn any_name_is(&self, name: &str) -> bool {
        self.name() == name || self.prev.iter().any(|id| id.name == name)
    }

    /// Whether its current id or a previous one is this kind, name and namespace (kustomize's
    /// `GetMatchingResourcesByAnyId` with `Equals`, where no namespace is `default`).
    fn any_id_is(&self, kind: &str, name: &str, namespace: &str) -> bool {
        let current = (self.kind(), self.name(), self.namespace());
        std::iter::once(current)
            .chain(self.prev.iter().map(|id| (id.kind.as_str(), id.name.as_str(), id.namespace.as_str())))
            .any(|(k, n, ns)| k == kind && n == name && same_namespace(ns, namespace))
    }

    /// Whether kustomize's object identity (apiVersion, kind, name, namespace) is the same.
    /// What tells objects apart in a build: apiVersion, kind, namespace and name.
    fn id(&self) -> (&str, &str, &str, &str) {
        (self.api_version(), self.kind(), self.namespace(), self.name())
    }

    /// An object kustomize reads but leaves out of its output: annotated
    /// `config.kubernetes.io/local-config` with any value but `"false"` (kustomize's
    /// `DropLocalNodes`).
    fn is_local_config(&self) -> bool {
        self.object
            .pointer("/metadata/annotations/config.kubernetes.io~1local-config")
            // A YAML `false` is the text "false" to kustomize, as annotations are texts.
            .is_some_and(|value| value.as_str() != Some("false") && *value != Value::Bool(false))
    }

    pub fn describe(&self) -> String {
        let ns = self.namespace();
        format!("{} {}{}", self.kind(), if ns.is_empty() { String::new() } else { format!("{ns}/") }, self.name())
    }
}

/// Builds the kustomization in `dir` (a directory of the repository), as
/// `kubectl kustomize <dir>` does (with `--load-restrictor LoadRestrictionsNone` for [`LoadRestrictions::None`]);
/// `referenced_at` is where a release names it; `limits` bound what its `helmCharts` render.
pub fn build(
    source: &dyn Source,
    dir: &Path,
    referenced_at: &Location,
    restrictions: LoadRestrictions,
    limits: &RenderLimits,
) -> Result<Built> {
    let Some(dir) = lexical(dir).filter(|d| !d.as_os_str().is_empty() || dir == Path::new(".")) else {
        return Err(Error::at(referenced_at.clone(), format!("`kustomize: {}` leaves the repository", dir.display()))
            .with_help("name a directory of the repository, relative to its root"));
    };
    if kustomization::find(source, &dir).is_none() {
        return Err(Error::at(
            referenced_at.clone(),
            format!(
                "no kustomization in {}: none of {} exists there",
                shown(&dir),
                kustomization::FILE_NAMES.join(", ")
            ),
        ));
    }
    let outside_root = AtomicBool::new(false);
    let mut builder = Builder {
        source,
        stack: Vec::new(),
        restrictions,
        limits,
        outside_root: &outside_root,
        fifo: false,
        build_metadata: Vec::new(),
        origin: None,
    };
    let Accumulation { mut resources, config, vars } =
        builder.target(&dir, referenced_at, Role::Release, Accumulation::new())?;
    filters::generators::add_hashes(&mut resources);
    filters::name_reference::fix(&config, &mut resources)?;
    filters::vars::resolve(&vars, &config, &mut resources)?;
    // Last, as kustomize's `IgnoreLocal`: a local object still names, and is named, above.
    resources.retain(|r| !r.is_local_config());
    let asked = |option: &str| builder.build_metadata.iter().any(|o| o == option);
    for resource in &mut resources {
        if asked("managedByLabel") {
            let labels = &mut resource.object["metadata"]["labels"];
            if !labels.is_object() {
                *labels = Value::Object(serde_json::Map::new());
            }
            labels[MANAGED_BY_LABEL] = Value::String(MANAGED_BY.to_string());
        }
        if !asked("originAnnotations")
            && let Some(Value::Object(annotations)) = resource.object.pointer_mut("/metadata/annotations")
        {
            annotations.remove(ORIGIN_ANNOTATION);
        }
        if asked("transformerAnnotations") && !resource.transformations.is_empty() {
            let text = weaver_yaml::emit::to_yaml_string(&Value::Array(std::mem::take(&mut resource.transformations)));
            let annotations = &mut resource.object["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = Value::Object(serde_json::Map::new());
            }
            annotations[TRANSFORMATIONS_ANNOTATION] = Value::String(text);
        }
        finish_annotations(&mut resource.object);
    }
    if !builder.fifo {
        resources = in_legacy_order_of_copies(resources);
    }
    Ok(Built { resources, outside_root: outside_root.load(Ordering::Relaxed) })
}

/// Where `buildMetadata: [originAnnotations]` says an object came from.
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
/// Which transformers changed it, as `buildMetadata: [transformerAnnotations]` says.
const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";
/// What `buildMetadata: [managedByLabel]` sets, as `kubectl kustomize` 1.32 sets it (its
/// kustomize is built without a version).
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY: &str = "kustomize-(devel)";

/// Where an object came from, as kustomize's origin annotation says it: a file's path, or the
/// file holding the configuration of the generator that made it (or of a transformer that
/// changed it), each from the release's kustomization.
pub(crate) enum Origin<'a> {
    File(&'a Path),
    Configured { configured_in: &'a Path, api_version: &'a str, kind: &'a str, name: &'a str, namespace: &'a str },
}

impl Origin<'_> {
    /// kustomize's `Origin` as it writes it, empty fields left out.
    pub(crate) fn value(&self) -> Value {
        match self {
            Origin::File(path) => serde_json::json!({"path": path.to_string_lossy()}),
            Origin::Configured { configured_in, api_version, kind, name, namespace } => {
                let mut by = serde_json::Map::new();
                for (field, text) in
                    [("apiVersion", api_version), ("kind", kind), ("name", name), ("namespace", namespace)]
                {
                    if !text.is_empty() {
                        by.insert(field.to_string(), Value::String(text.to_string()));
                    }
                }
                serde_json::json!({"configuredIn": configured_in.to_string_lossy(), "configuredBy": by})
            }
        }
    }

    /// Gives `object` this origin unless it has one (kustomize's `AddOriginAnnotation`); whether
    /// it had none.
    pub(crate) fn mark(&self, object: &mut Value) -> bool {
        mark_origin(object, &self.value())
    }

    /// The file an origin annotation weaver wrote names (`path: …`).
    pub(crate) fn file_of(object: &Value) -> Option<PathBuf> {
        let text = object.pointer("/metadata/annotations")?.get(ORIGIN_ANNOTATION)?.as_str()?;
        let path: Value = weaver_yaml::from_str(Path::new(ORIGIN_ANNOTATION), text).ok()?;
        path.get("path")?.as_str().map(PathBuf::from)
    }

    /// Where the configuration `config` of a `generators` or `transformers` entry of
    /// `kustomization` is, from `origin` (where that kustomization is): its own origin (an
    /// object of a kustomization the entry names), its file, or the kustomization file
    /// holding it inline.
    pub(crate) fn configured_in(origin: &Path, config: &Value, entry: &str, kustomization: &Path) -> PathBuf {
        Origin::file_of(config).unwrap_or_else(|| {
            let file = if entry.contains('\n') { file_name(kustomization) } else { entry.to_string() };
            joined(origin, &file)
        })
    }
}

/// `origin` as `object`'s origin annotation, unless it has one; whether it had none.
fn mark_origin(object: &mut Value, origin: &Value) -> bool {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return false };
    let annotations = metadata.entry("annotations").or_insert(Value::Null);
    if !annotations.is_object() {
        *annotations = Value::Object(serde_json::Map::new());
    }
    let Value::Object(annotations) = annotations else { return false };
    if annotations.contains_key(ORIGIN_ANNOTATION) {
        return false;
    }
    annotations.insert(ORIGIN_ANNOTATION.to_string(), Value::String(weaver_yaml::emit::to_yaml_string(origin)));
    true
}

/// `path` as Go's `filepath.Join` leaves it: `.` and `x/..` taken out, leading `..` kept.
/// [`Target::go_on`], at `file`.
fn go_on(limits: &RenderLimits, file: &Path) -> Result<()> {
    let Some(why) = limits.stop_reason() else { return Ok(()) };
    let error = Error::at(Location::file(file), format!("rendering stopped: {why}"));
    match why {
        weaver_core::limits::Stop::TimeUp(bound) => Err(error.at_bound(bound.setting)),
        weaver_core::limits::Stop::Stopping => Err(error),
    }
}

fn joined(base: &Path, path: &str) -> PathBuf {
    let full = base.join(path);
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for part in full.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.iter().collect()
}

/// `resources` with the copies of one object (one custom resource at two versions) in the order
/// kustomize's default (`legacy`) output puts them: by their version followed by `_`, as its
/// `Gvk.String` compares them (`v1` before `v1beta1`, `v10` before `v1`), whatever order they
/// were read in. `kubectl apply` of that output leaves the last, which is the one the release
/// keeps. Every other object stays where it was: weaver orders them for apply itself.
fn in_legacy_order_of_copies(resources: Vec<Resource>) -> Vec<Resource> {
    let mut copies: HashMap<(String, String, String, String), Vec<usize>> = HashMap::new();
    for (index, r) in resources.iter().enumerate() {
        let id = (r.group().to_string(), r.kind().to_string(), r.namespace().to_string(), r.name().to_string());
        copies.entry(id).or_default().push(index);
    }
    let mut slots: Vec<Option<Resource>> = resources.into_iter().map(Some).collect();
    for indices in copies.values().filter(|indices| indices.len() > 1) {
        let mut ordered = indices.clone();
        // Stable: copies of one version (which kustomize refuses) keep the order read.
        ordered.sort_by_cached_key(|&i| format!("{}_", slots[i].as_ref().expect("each slot is filled").version()));
        let taken: Vec<Resource> = ordered.iter().map(|&i| slots[i].take().expect("each slot is taken once")).collect();
        for (&index, resource) in indices.iter().zip(taken) {
            slots[index] = Some(resource);
        }
    }
    slots.into_iter().flatten().collect()
}

/// What [`build`] built: the objects, and whether it read a file outside the directory of the
/// kustomization that named it, which kustomize's default ([`LoadRestrictions::RootOnly`])
/// refuses: a [`LoadRestrictions::None`] build tells whether the default would have built it.
pub struct Built {
    pub resources: Vec<Resource>,
    pub outside_root: bool,
}

/// Applies `patches`, kustomize `patches` entries written in `file`, to `resources`, as a
/// kustomization's `patches` transformer applies them: how kustomize-controller applies a Flux
/// Kustomization's `spec.patches` to what it built.
pub fn apply_patches(
    source: &dyn Source,
    file: &Path,
    patches: Vec<serde_saphyr::Spanned<kustomization::PatchEntry>>,
    mut resources: Vec<Resource>,
) -> Result<Vec<Resource>> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let outside_root = AtomicBool::new(false);
    let target = Target {
        source,
        file: file.to_path_buf(),
        dir,
        restrictions: LoadRestrictions::None,
        outside_root: &outside_root,
        limits: &RenderLimits::default(),
    };
    let k = Kustomization { patches: Some(patches), ..Kustomization::default() };
    filters::patches::patches(&target, &k, &mut resources)?;
    Ok(resources)
}

/// kustomize sets and removes its own internal annotations on every object, rewriting the
/// map as strings: a scalar value becomes its text (`1` becomes `"1"`, `null` `"null"`; the
/// text is serde's, so `0x1F` becomes `"31"` where kustomize keeps `"0x1F"`), a list or map
/// value an empty string, and a map left empty (or one that was `null`) goes: `annotations: {}`
/// is not in its output.
fn finish_annotations(object: &mut Value) {
    let Some(Value::Object(metadata)) = object.get_mut("metadata") else { return };
    match metadata.get_mut("annotations") {
        Some(Value::Null) => {
            metadata.remove("annotations");
        }
        Some(Value::Object(annotations)) if annotations.is_empty() => {
            metadata.remove("annotations");
        }
        Some(Value::Object(annotations)) => {
            for value in annotations.values_mut() {
                let text = match value {
                    Value::Null => "null".to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Array(_) | Value::Object(_) => String::new(),
                    Value::String(_) => continue,
                };
                *value = Value::String(text);
            }
        }
        _ => {}
    }
}

/// Every file the kustomization in `dir` reads, through every base and component (for
/// `changed`); a kustomization that does not load contributes what was found before it.
pub fn inputs(source: &dyn Source, dir: &Path) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    collect_inputs(source, dir, &mut seen);
    seen
}

fn collect_inputs(source: &dyn Source, dir: &Path, seen: &mut Vec<PathBuf>) {
    let Some(file) = kustomization::find(source, dir) else { return };
    if seen.contains(&file) {
        return;
    }
    seen.push(file.clone());
    let Ok(k) = kustomization::load(source, &file) else { return };
    let mut paths: Vec<&str> = Vec::new();
    for list in [&k.resources, &k.bases, &k.components, &k.patches_strategic_merge, &k.configurations, &k.crds]
        .into_iter()
        .flatten()
    {
        paths.extend(list.iter().map(|p| p.value.as_str()));
    }
    // A transformer's or generator's configuration file (inline ones hold a line break).
    paths.extend(
        k.transformers.iter().chain(&k.generators).flatten().map(|t| t.value.as_str()).filter(|t| !t.contains('\n')),
    );
    for patch in k.patches.iter().flatten() {
        paths.extend(patch.value.path.as_deref());
    }
    for patch in k.patches_json6902.iter().flatten() {
        paths.extend(patch.value.path.as_deref());
    }
    for replacement in k.replacements.iter().flatten() {
        paths.extend(replacement.value.path.as_deref());
    }
    let chart_home = k.helm_globals.as_ref().map_or("", |g| g.chart_home.as_str());
    let chart_home = if chart_home.is_empty() { "charts" } else { chart_home };
    let mut chart_dirs = Vec::new();
    for chart in k.helm_charts.iter().flatten() {
        let c = &chart.value;
        paths.extend(c.additional_values_files.iter().map(String::as_str));
        paths.extend(Some(c.values_file.as_str()).filter(|f| !f.is_empty()));
        chart_dirs.push(match c.repo.is_empty() || c.version.is_empty() {
            true => format!("{chart_home}/{}", c.name),
            false => format!("{chart_home}/{}-{}/{}", c.name, c.version, c.name),
        });
    }
    paths.extend(chart_dirs.iter().map(String::as_str));
    for generator in k.config_map_generator.iter().chain(&k.secret_generator).flatten() {
        let g = &generator.value;
        paths.extend(g.envs.iter().chain(&g.env).map(String::as_str));
        paths.extend(g.files.iter().map(|f| f.split_once('=').map_or(f.as_str(), |(_, path)| path)));
    }
    for path in paths {
        let Some(path) = lexical(&dir.join(path)) else { continue };
        if kustomization::find(source, &path).is_some() {
            collect_inputs(source, &path, seen);
        } else if !seen.contains(&path) {
            seen.push(path);
        }
    }
}

/// How a path is shown in messages: the repository root is `.`.
pub(crate) fn shown(path: &Path) -> String {
    if path.as_os_str().is_empty() { ".".to_string() } else { path.display().to_string() }
}

/// What a kustomization has built so far (kustomize's `ResAccumulator`): its objects, and the
/// transformer configuration of it and of every base and component it includes.
struct Accumulation {
    resources: Vec<Resource>,
    config: filters::TransformerConfig,
    vars: Vec<filters::vars::DefinedVar>,
}

impl Accumulation {
    fn new() -> Accumulation {
        Accumulation { resources: Vec::new(), config: filters::TransformerConfig::default(), vars: Vec::new() }
    }
}

/// Where a kustomization is built from: a release names it (a Kustomization or, as `kustomize
/// build` of a component's directory, a Component), or a kustomization lists it in `resources`
/// (a Kustomization) or `components` (a Component).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Release,
    Resource,
    Component,
}

struct Builder<'a> {
    source: &'a dyn Source,
    restrictions: LoadRestrictions,
    limits: &'a RenderLimits,
    /// The kustomization files being built, outermost first: one seen again is a cycle.
    stack: Vec<PathBuf>,
    /// Set when a file outside its kustomization's directory is read (see [`Built`]).
    outside_root: &'a AtomicBool,
    /// The release's kustomization asks for its objects in the order read
    /// (`sortOptions.order: fifo`), not kustomize's default order.
    fifo: bool,
    /// The release's `buildMetadata`.
    build_metadata: Vec<String>,
    /// Where the kustomization being built is, from the release's, while objects are given
    /// their origin (`buildMetadata` given); `None` otherwise.
    origin: Option<PathBuf>,
}

/// A kustomization being built: its file and directory, for paths and messages.
pub(crate) struct Target<'a> {
    pub source: &'a dyn Source,
    pub file: PathBuf,
    pub dir: PathBuf,
    pub restrictions: LoadRestrictions,
    /// Set when a file outside `dir` is read (see [`Built`]).
    pub outside_root: &'a AtomicBool,
    /// What a `helmCharts` entry's render may take, and when the build must stop.
    pub limits: &'a RenderLimits,
}

impl Target<'_> {
    /// An error when the render must stop (its deadline passed, the process is stopping),
    /// named at this kustomization: checked between its steps, which no template check sees (a
    /// diamond of bases is built once per path to it).
    pub fn go_on(&self) -> Result<()> {
        go_on(self.limits, &self.file)
    }

    /// An error at `at` in the kustomization file.
    pub fn error(&self, at: &serde_saphyr::Location, message: impl Into<String>) -> Error {
        Error::at(location(&self.file, at), message)
    }

    /// The file `path` (relative to the kustomization's directory) names, read under the
    /// build's load restrictions: inside the kustomization's directory (unless `None`), and
    /// inside the repository.
    pub fn read_file(&self, path: &str, at: &serde_saphyr::Location, field: &str) -> Result<(PathBuf, String)> {
        let full = self.file_path(path, at, field)?;
        let Some(bytes) = self.source.read_named(&full, &location(&self.file, at), field)? else {
            return Err(self.error(at, format!("`{field}`: {} does not exist", full.display())));
        };
        Ok((full.clone(), utf8(&full, bytes)?))
    }

    /// Where `path` leads, checked as [`Target::read_file`] checks it, without reading it.
    fn file_path(&self, path: &str, at: &serde_saphyr::Location, field: &str) -> Result<PathBuf> {
        if is_remote(path) {
            return Err(self.error(at, format!("`{field}`: {path} is a remote location; weaver builds only kustomizations inside the repository"))
                .with_help("vendor the remote base into the repository and name its directory"));
        }
        let Some(full) = lexical(&self.dir.join(path)) else {
            return Err(self.error(at, format!("`{field}`: {path} leads outside the repository")));
        };
        let within = |p: &Path| -> Result<PathBuf> {
            self.source
                .resolve(p)
                .map_err(|err| Error::io_at(location(&self.file, at), &format!("read {field}"), p, err))
        };
        let (real, real_dir) = (within(&full)?, within(&self.dir)?);
        let outside = !real.starts_with(&real_dir);
        self.outside_root.fetch_or(outside, Ordering::Relaxed);
        if self.restrictions == LoadRestrictions::RootOnly && outside {
            return Err(self.error(
                at,
                format!(
                    "`{field}`: {path} is outside the kustomization's directory {} (kustomize's LoadRestrictionsRootOnly)",
                    shown(&self.dir)
                ),
            )
            .with_help("move the file into the kustomization's directory, or make its directory a kustomization and list that, or give the release `loadRestrictions: none` (as Flux builds)"));
        }
        Ok(full)
    }
}

/// A URL or a go-getter address, which kustomize would fetch.
pub fn is_remote(path: &str) -> bool {
    path.contains("://")
        || path.starts_with("github.com/")
        || path.starts_with("git@")
        || path.starts_with("gitlab.com/")
}

impl Builder<'_> {
    /// Builds the kustomization in `dir` into a fresh accumulation (a base), or onto
    /// `accumulated` (a component), as kustomize's `accumulateTarget` does.
    fn target(&mut self, dir: &Path, at: &Location, role: Role, accumulated: Accumulation) -> Result<Accumulation> {
        let Some(file) = kustomization::find(self.source, dir) else {
            return Err(Error::at(
                at.clone(),
                format!(
                    "{} has no kustomization: none of {} exists there",
                    shown(dir),
                    kustomization::FILE_NAMES.join(", ")
                ),
            ));
        };
        if let Some(first) = self.stack.iter().position(|f| *f == file) {
            let cycle: Vec<String> =
                self.stack[first..].iter().chain([&file]).map(|p| p.display().to_string()).collect();
            return Err(Error::at(at.clone(), format!("cycle of kustomizations: {}", cycle.join(" → ")))
                .with_help("a kustomization cannot include itself through its resources or components"));
        }
        go_on(self.limits, &file)?;
        let k = kustomization::load(self.source, &file)?;
        // Only the release's `sortOptions` are read, and checked, as kustomize reads the top one.
        if role == Role::Release
            && let Some(options) = &k.sort_options
        {
            self.fifo = options.value.fifo().map_err(|e| {
                Error::at(location(&file, &options.referenced), e)
                    .with_help("give `order: legacy` with `legacySortOptions`, or `order: fifo` alone")
            })?;
        }
        if role == Role::Release
            && let Some(options) = &k.build_metadata
        {
            self.build_metadata = options.value.clone();
            self.origin = (!options.value.is_empty()).then(PathBuf::new);
        }
        if let Some((field, span, help)) = k.unsupported().first() {
            return Err(
                Error::at(location(&file, span), format!("`{field}` is not supported by weaver yet")).with_help(*help)
            );
        }
        if role == Role::Component && !k.is_component() {
            return Err(Error::at(
                at.clone(),
                format!("{} is not a component: its kind must be `Component`", file.display()),
            ));
        }
        if role == Role::Resource && k.is_component() {
            return Err(Error::at(
                at.clone(),
                format!("{} is a Component: list it under `components`, not `resources`", file.display()),
            ));
        }
        self.stack.push(file.clone());
        let target = Target {
            source: self.source,
            file,
            dir: dir.to_path_buf(),
            restrictions: self.restrictions,
            outside_root: self.outside_root,
            limits: self.limits,
        };
        let result = self.accumulate(&target, &k, accumulated);
        self.stack.pop();
        result
    }

    fn accumulate(&mut self, target: &Target, k: &Kustomization, mut acc: Accumulation) -> Result<Accumulation> {
        for entry in k.resources.iter().chain(&k.bases).flatten() {
            target.go_on()?;
            let added = self.resource(target, entry)?;
            append(target, &mut acc.resources, added.resources, &entry.referenced)?;
            acc.config.merge(&added.config).map_err(|e| target.error(&entry.referenced, e))?;
            filters::vars::merge(&added.vars, &mut acc.vars)?;
        }
        let mut configured = filters::TransformerConfig::default();
        for entry in k.configurations.iter().flatten() {
            let (path, text) = target.read_file(&entry.value, &entry.referenced, "configurations")?;
            let config: Option<filters::TransformerConfig> =
                weaver_yaml::from_str_as_go(&path, &text, "invalid transformer configuration")?;
            configured
                .merge(&config.unwrap_or_default().sorted())
                .map_err(|e| target.error(&entry.referenced, format!("`configurations`: {}: {e}", path.display())))?;
        }
        let own = filters::with_configurations(&configured).map_err(|e| {
            Error::at(Location::file(&target.file), format!("`configurations`: with kustomize's defaults: {e}"))
        })?;
        acc.config
            .merge(&own)
            .map_err(|e| Error::at(Location::file(&target.file), format!("`configurations`: {e}")))?;
        acc.config.merge(&filters::crds::config(target, k)?).map_err(|e| Error::at(Location::file(&target.file), e))?;
        let generated = acc.resources.len();
        filters::generators::run(target, k, &mut acc.resources)?;
        let charted = acc.resources.len();
        filters::helm_charts::run(target, k, &mut acc.resources)?;
        if let Some(origin) = &self.origin {
            let configured_in = joined(origin, &file_name(&target.file));
            for (index, resource) in acc.resources.iter_mut().enumerate().skip(generated) {
                let kind = match resource.kind() {
                    _ if index >= charted => "HelmChartInflationGenerator",
                    "Secret" => "SecretGenerator",
                    _ => "ConfigMapGenerator",
                };
                let origin = Origin::Configured {
                    configured_in: &configured_in,
                    api_version: "builtin",
                    kind,
                    name: "",
                    namespace: "",
                };
                origin.mark(&mut resource.object);
            }
        }
        let origin = self.origin.clone();
        filters::generators::run_configured(target, k, &mut acc.resources, origin.as_deref(), &mut |entry| {
            self.built_objects(target, entry, "generators")
        })?;
        for entry in k.components.iter().flatten() {
            let dir = self.directory(target, entry, "components")?;
            let at = location(&target.file, &entry.referenced);
            acc = self.along(&entry.value, |builder| builder.target(&dir, &at, Role::Component, acc))?;
        }
        let (config, resources) = (&acc.config, &mut acc.resources);
        filters::patches::strategic_merge_files(target, k, resources)?;
        filters::patches::patches(target, k, resources)?;
        if let Some(namespace) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            filters::namespace::apply(namespace, config, Default::default(), resources)
                .map_err(|e| Error::at(Location::file(&target.file), e))?;
        }
        filters::affix::apply(
            k.name_prefix.as_deref().unwrap_or_default(),
            k.name_suffix.as_deref().unwrap_or_default(),
            config,
            resources,
        )
        .map_err(|e| Error::at(Location::file(&target.file), e))?;
        filters::labels::apply(k, config, resources).map_err(|e| Error::at(Location::file(&target.file), e))?;
        filters::patches::json6902(target, k, resources)?;
        for replica in k.replicas.iter().flatten() {
            filters::replicas::apply(&replica.value, config, resources)
                .map_err(|e| target.error(&replica.referenced, e))?;
        }
        for image in k.images.iter().flatten() {
            filters::images::apply(image, config, resources);
        }
        target.go_on()?;
        filters::replacements::run(target, k, resources)?;
        target.go_on()?;
        let origin = self.origin.clone();
        let configured = filters::transformers::run(target, k, resources, origin.as_deref(), &mut |entry| {
            self.built_objects(target, entry, "transformers")
        })?;
        if let Some(origin) = &origin {
            // kustomize records each transformer on every object it holds then, as it runs; the
            // first is the origin of an object without one.
            let configured_in = joined(origin, &file_name(&target.file));
            let applied: Vec<Value> = builtin_transformers(k)
                .into_iter()
                .map(|kind| {
                    let api_version = "builtin";
                    Origin::Configured { configured_in: &configured_in, api_version, kind, name: "", namespace: "" }
                        .value()
                })
                .chain(configured)
                .collect();
            for resource in acc.resources.iter_mut() {
                for transformation in &applied {
                    if !mark_origin(&mut resource.object, transformation) {
                        resource.transformations.push(transformation.clone());
                    }
                }
            }
        }
        let defined: Vec<filters::vars::DefinedVar> = k
            .vars
            .iter()
            .flatten()
            .map(|v| filters::vars::DefinedVar { var: v.value.clone(), at: location(&target.file, &v.referenced) })
            .collect();
        filters::vars::attach(&defined, &mut acc.vars, &mut acc.resources)?;
        Ok(acc)
    }

    /// A directory that `field` names: another kustomization, anywhere in the repository.
    fn directory(&self, target: &Target, entry: &Located, field: &str) -> Result<PathBuf> {
        let path = entry.value.as_str();
        if is_remote(path) {
            return Err(target.error(&entry.referenced, format!("`{field}`: {path} is a remote location; weaver builds only kustomizations inside the repository"))
                .with_help("vendor the remote base into the repository and name its directory"));
        }
        lexical(&target.dir.join(path))
            .ok_or_else(|| target.error(&entry.referenced, format!("`{field}`: {path} leads outside the repository")))
    }

    /// The objects of the kustomization a `transformers` or `generators` entry names, built as a
    /// base is (its own transformations applied, as kustomize accumulates it), or `None` when
    /// the entry is a file or inline YAML.
    fn built_objects(&mut self, target: &Target, entry: &Located, field: &str) -> Result<Option<Vec<Value>>> {
        if entry.value.contains('\n') || kustomization::find(self.source, &target.dir.join(&entry.value)).is_none() {
            return Ok(None);
        }
        let dir = self.directory(target, entry, field)?;
        let at = location(&target.file, &entry.referenced);
        let built =
            self.along(&entry.value, |builder| builder.target(&dir, &at, Role::Resource, Accumulation::new()))?;
        Ok(Some(built.resources.into_iter().map(|r| r.object).collect()))
    }

    /// What one `resources` entry adds: a file's objects, or a kustomization directory's
    /// objects and configuration.
    fn resource(&mut self, target: &Target, entry: &Located) -> Result<Accumulation> {
        let dir = self.directory(target, entry, "resources")?;
        let at = location(&target.file, &entry.referenced);
        let listed = self.source.list(&dir).map_err(|e| Error::io_at(at.clone(), "read resource", &dir, e))?;
        if listed.is_some() {
            return self.along(&entry.value, |builder| builder.target(&dir, &at, Role::Resource, Accumulation::new()));
        }
        let (path, text) = match target.read_file(&entry.value, &entry.referenced, "resources") {
            Ok(found) => found,
            Err(err) if err.message.ends_with("does not exist") => {
                return Err(target.error(
                    &entry.referenced,
                    format!(
                        "`resources`: {} does not exist (neither a file nor a kustomization directory)",
                        dir.display()
                    ),
                ));
            }
            Err(err) => return Err(err),
        };
        let mut resources = parse_objects(&path, &text)?;
        if let Some(origin) = &self.origin {
            let file = joined(origin, &entry.value);
            for resource in &mut resources {
                Origin::File(&file).mark(&mut resource.object);
            }
        }
        Ok(Accumulation { resources, config: filters::TransformerConfig::default(), vars: Vec::new() })
    }

    /// `build` run with the origin of objects moved along `path` (a base or component the
    /// kustomization lists), as kustomize's `Origin.Append`.
    fn along<T>(&mut self, path: &str, build: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = self.origin.clone();
        if let Some(origin) = &self.origin {
            self.origin = Some(joined(origin, path));
        }
        let result = build(self);
        self.origin = saved;
        result
    }
}

/// The builtin transformers kustomize configures from a kustomization's fields, in its order
/// (`configureBuiltinTransformers`): one for each `patches` entry, `labels` entry (and one
/// more for `commonLabels` beside them), JSON patch, replica and image.
fn builtin_transformers(k: &Kustomization) -> Vec<&'static str> {
    fn count<T>(list: &Option<Vec<T>>) -> usize {
        list.as_ref().map_or(0, Vec::len)
    }
    let set = |text: &Option<String>| usize::from(text.as_deref().is_some_and(|t| !t.is_empty()));
    let labels = count(&k.labels) + usize::from(k.common_labels.as_ref().is_some_and(|l| !l.is_empty()));
    [
        ("PatchStrategicMergeTransformer", usize::from(count(&k.patches_strategic_merge) > 0)),
        ("PatchTransformer", count(&k.patches)),
        ("NamespaceTransformer", set(&k.namespace)),
        ("PrefixTransformer", set(&k.name_prefix)),
        ("SuffixTransformer", set(&k.name_suffix)),
        ("LabelTransformer", if labels > 0 { count(&k.labels) + 1 } else { 0 }),
        ("AnnotationsTransformer", usize::from(k.common_annotations.as_ref().is_some_and(|a| !a.is_empty()))),
        ("PatchJson6902Transformer", count(&k.patches_json6902)),
        ("ReplicaCountTransformer", count(&k.replicas)),
        ("ImageTagTransformer", count(&k.images)),
        ("ReplacementTransformer", usize::from(count(&k.replacements) > 0)),
    ]
    .into_iter()
    .flat_map(|(kind, times)| std::iter::repeat_n(kind, times))
    .collect()
}

/// The name of a kustomization's file (`kustomization.yaml`, …).
fn file_name(file: &Path) -> String {
    file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The objects of a YAML stream (a `List` is its items, as kustomize reads it).
pub(crate) fn parse_objects(path: &Path, text: &str) -> Result<Vec<Resource>> {
    let mut out = Vec::new();
    let (documents, empty_values) = weaver_yaml::documents_kustomize(path, text)?;
    let mut empty_values = empty_values.into_iter();
    for (index, object) in documents.into_iter().enumerate() {
        let empty = empty_values.next().unwrap_or_default();
        let items: Vec<(Value, Vec<String>)> = match object.get("kind").and_then(Value::as_str) {
            Some(kind) if kind.ends_with("List") && object.get("items").is_some_and(Value::is_array) => {
                let items = object["items"].as_array().cloned().unwrap_or_default();
                (0..items.len())
                    .map(|i| {
                        let prefix = format!("/items/{i}/");
                        empty.iter().filter_map(|p| p.strip_prefix(&prefix).map(|rest| format!("/{rest}"))).collect()
                    })
                    .zip(items)
                    .map(|(empty, item)| (item, empty))
                    .collect()
            }
            _ => vec![(object, empty)],
        };
        for (item, empty) in items {
            // Its name and namespace are checked after the build (see `shape_problem`), once
            // transformers and the release's variables have set them; so is its `apiVersion`,
            // which kustomize does without.
            if let Some(problem) = weaver_core::manifest::shape_problem_but_api_version(&item) {
                return Err(Error::at(Location::file(path), format!("document {} {problem}", index + 1))
                    .with_help("every document a kustomization lists must be a Kubernetes object"));
            }
            let mut resource = Resource::new(item, path.to_path_buf(), index + 1);
            resource.empty_values = empty;
            out.push(resource);
        }
    }
    Ok(out)
}

/// Adds `added` to `resources`; an object already there is an error, as in kustomize.
pub(crate) fn append(
    target: &Target,
    resources: &mut Vec<Resource>,
    added: Vec<Resource>,
    at: &serde_saphyr::Location,
) -> Result<()> {
    for resource in added {
        // Its id read once; of the others, the name first: it tells most apart.
        let id = resource.id();
        if let Some(first) = resources.iter().find(|r| r.name() == id.3 && r.id() == id) {
            return Err(target
                .error(
                    at,
                    format!(
                        "{} is added twice: from {} and from {}",
                        resource.describe(),
                        first.source.display(),
                        resource.source.display()
                    ),
                )
                .with_help("an object may come from one resource only: remove one, or patch it instead"));
        }
        resources.push(resource);
    }
    Ok(())
}

/// kustomize's `IsNsEquals`: no namespace is `default`.
fn same_namespace(a: &str, b: &str) -> bool {
    fn effective(ns: &str) -> &str {
        if ns.is_empty() { "default" } else { ns }
    }
    effective(a) == effective(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_project::source::FsSource;

    /// `buildMetadata: [managedByLabel]` labels every object as `kubectl kustomize` 1.32 does
    /// (weaver refused the field before); a word kustomize does not know is ignored, as there.
    #[test]
    fn build_metadata_s_managed_by_label_is_set_on_every_object() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("app")).unwrap();
        std::fs::write(
            repo.path().join("app/kustomization.yaml"),
            "buildMetadata: [managedByLabel, unknownWord]\nresources: [cm.yaml]\nconfigMapGenerator:\n  - {name: g, literals: [a=b]}\n",
        )
        .unwrap();
        std::fs::write(repo.path().join("app/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n")
            .unwrap();
        let built = build(
            &FsSource::new(repo.path()),
            Path::new("app"),
            &Location::file("weaver.yaml"),
            LoadRestrictions::RootOnly,
            &RenderLimits::default(),
        )
        .unwrap();
        assert_eq!(built.resources.len(), 2);
        for resource in &built.resources {
            let metadata = &resource.object["metadata"];
            assert_eq!(metadata["labels"]["app.kubernetes.io/managed-by"], "kustomize-(devel)");
            assert!(metadata.get("annotations").is_none(), "no origin unless asked: {metadata}");
        }
    }

    /// A secretGenerator literal without `=`: the error names the file and which literal, never
    /// its text (a Secret's literal is its value).
    /// The error of building `app`, made of `files` (paths below `app/`).
    fn build_error(files: &[(&str, &str)]) -> String {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("app")).unwrap();
        for (path, text) in files {
            std::fs::write(repo.path().join("app").join(path), text).unwrap();
        }
        let source = FsSource::new(repo.path());
        let built = build(
            &source,
            Path::new("app"),
            &Location::file("weaver.yaml"),
            LoadRestrictions::RootOnly,
            &RenderLimits::default(),
        );
        let Err(err) = built else { panic!("built") };
        err.to_string()
    }

    #[test]
    fn a_literal_that_is_not_key_value_is_named_by_its_place_not_its_text() {
        let err = build_error(&[(
            "kustomization.yaml",
            "secretGenerator:\n  - name: s\n    literals: [user=robot, hunter2]\n",
        )]);
        assert!(
            err.contains("app/kustomization.yaml") && err.contains("literal 2 of `literals` is not key=value"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    /// A SecretGenerator configured under `generators:` whose `literals` is no list: the error
    /// names the file and what was expected, never the literal (serde_json's message quoted it).
    #[test]
    fn a_generator_configuration_s_error_never_quotes_its_values() {
        let err = build_error(&[
            ("kustomization.yaml", "generators: [gen.yaml]\n"),
            (
                "gen.yaml",
                "apiVersion: builtin\nkind: SecretGenerator\nmetadata: {name: s}\nliterals: password=hunter2\n",
            ),
        ]);
        assert!(err.contains("app/gen.yaml: not a generator configuration: invalid type: string"), "{err}");
        assert!(err.contains("expected a sequence"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
