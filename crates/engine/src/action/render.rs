//! Render: load the environment, select releases, decrypt its secrets and render them. The
//! desired state every other action that deploys starts from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Map;

use super::{Context, OnProgress, Progress, compare, phase};
use crate::changed::ReleaseStatus;
use weaver_cluster::{Cluster, ListTarget, served_kinds_of_crd};
use weaver_core::error::{Error, Result};
use weaver_core::manifest::Manifest;
use weaver_helm::lookup::{Listing, Live, Served, Target};
use weaver_project::{Environment, Project, Release, Selector, select_releases};
use weaver_render::overrides::{OverrideFlags, Overrides};
use weaver_render::{ClusterView, Finished, Rendered};
use weaver_secrets::Redactor;
use weaver_validate::{Kinds, Mode, Part, Removed, Report, Validator};

/// Which releases of which environment, read from where.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub env: String,
    /// Release names (`-r`); all when empty.
    pub releases: Vec<String>,
    /// Label selectors (`-l`).
    pub selectors: Vec<String>,
    /// Only the releases changed since this commit (`--changed-since`).
    pub changed_since: Option<String>,
    /// The repository root.
    pub repo: PathBuf,
    /// The commit to read the repository at (`--rev`); the working tree when None.
    pub rev: Option<String>,
    /// Environment `env`, when a fleet's selection loaded it already (from the same repository
    /// and revision): each environment of a fleet is read and parsed once.
    pub loaded: Option<Arc<Environment>>,
    /// A repository that is not on disk, read in place of `repo` and `rev`: the chart the binary
    /// embeds and the environment `weaver install` writes for it. Its records name no commit.
    pub project: Option<Project>,
    /// What the records name in place of a commit, for files on disk that are no git checkout
    /// (`rev` None): an OCI artifact's digest, `sha256:…`.
    pub revision: Option<String>,
}

impl Selection {
    /// The repository the selection reads.
    pub fn open(&self) -> Result<Project> {
        match &self.project {
            Some(project) => Ok(project.clone()),
            None => super::open_project(&self.repo, self.rev.as_deref()),
        }
    }

    /// The commit the selection reads (or its [`Selection::revision`]), for the records; None
    /// for a repository not in git.
    pub fn provenance(&self) -> Result<Option<weaver_git::Provenance>> {
        match (&self.project, &self.revision) {
            (Some(_), _) => Ok(None),
            (None, Some(revision)) => Ok(Some(weaver_git::Provenance { commit: revision.clone(), dirty: false })),
            (None, None) => weaver_git::provenance(&self.repo, self.rev.as_deref()),
        }
    }
}

/// What an empty selection of releases is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfEmpty {
    /// A warning: nothing to show is a fine answer.
    Warn,
    /// An error (apply): applying no release is a mistake, not a request to change nothing.
    Refuse,
    /// What is asked (an apply that only removes, with `prune_releases`, every release its
    /// records list: a preview's prune): said nowhere.
    Remove,
}

/// How to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub selection: Selection,
    /// Where the age identities come from (`--identity`, or the controller's Secret).
    pub keys: super::Keys,
    pub if_empty: IfEmpty,
    /// What offline schema validation does with what it finds (`--validate`).
    pub validate: weaver_validate::Mode,
    /// `--set`, `--values` and the like, over the selected chart releases' values.
    pub overrides: OverrideFlags,
    /// Where remote charts' archives come from: the machine's chart cache, or the controller's.
    pub charts: weaver_source::charts::Archives,
    /// How long and how large the render may be (`--render-timeout` and the like; the
    /// controller's for a tenant's repository).
    pub limits: weaver_core::limits::RenderLimits,
}

/// The selected releases of an environment, not rendered.
pub struct Selected {
    pub project: Project,
    /// Shared with every [`Desired`] rendered from it: an environment of 10,000 releases is
    /// worth not copying.
    pub env: Arc<Environment>,
    /// Names of the selected releases of `env`.
    pub releases: Vec<String>,
}

impl Selected {
    /// The selected releases, as `env` defines them.
    pub fn releases(&self) -> Vec<&Release> {
        let selected: BTreeSet<&str> = self.releases.iter().map(String::as_str).collect();
        self.env.releases.iter().filter(|r| selected.contains(r.name.as_str())).collect()
    }
}

/// The desired state.
#[derive(Clone)]
pub struct Desired {
    pub env: Arc<Environment>,
    pub rendered: Rendered,
    /// The LISTs Helm charts' `lookup`s needed (without a label selector), for the
    /// observation to reuse.
    pub looked_up: Vec<(ListTarget, Arc<Listing>)>,
    /// Releases whose `lookup`s found nothing because a render reading the cluster follows:
    /// that render's objects are the ones validated (and its errors the ones reported).
    pub looking_up: BTreeSet<String>,
    /// The context's redactor with the markers keyed by the environment's identities.
    pub redactor: Redactor,
}

/// What `lookup` finds in an offline render.
pub enum Offline {
    /// Nothing: there is no cluster (`weaver render`).
    Alone,
    /// The objects of a file (`--live-from`).
    LiveFrom(Vec<serde_json::Value>),
    /// Nothing yet: a render for the cluster follows (diff, apply), and a release whose
    /// lookups found nothing may fail now; that render says whether it does.
    BeforeCluster,
}

/// How many rounds of LISTs `lookup`s may ask for: a lookup whose arguments come from another
/// lookup's answer needs one round per step.
const LOOKUP_ROUNDS: usize = 8;

/// Loads the environment, selects releases, decrypts (registering every decrypted value with
/// the context's redactor) and renders, offline: Helm charts see the environment's
/// `kubeVersion` (or the default) and helm's default API versions.
pub fn render(options: &RenderOptions, cx: Context) -> Result<Desired> {
    let prepared = prepare(options, cx, Quotes::Rendered)?;
    let desired = prepared.render(Offline::Alone, cx.on)?;
    prepared.warn_removed(&desired.rendered, None, cx.on);
    Ok(desired)
}

/// How [`render_formatted`]'s caller formats a document: its object (which it may change: it
/// is not used afterwards), whether it is a hook, and the redactor keyed for its environment
/// ([`Desired::redactor`]); the text, and how many values it redacted.
pub type Format<'a> = &'a (dyn Fn(&mut Manifest, bool, &Redactor) -> (String, usize) + Sync);

/// What [`render_formatted`] made: the text of each release's documents, in order, and how many
/// values the formatting of that text redacted.
pub struct Texts {
    pub texts: Vec<String>,
    pub redacted: usize,
}

/// [`render`], with each document formatted by `format` as soon as its object is final and
/// validated, so that the run never holds every object at once. Errors and warnings are
/// [`render`]'s, and come before this returns.
pub fn render_formatted(options: &RenderOptions, cx: Context, format: Format) -> Result<Texts> {
    let prepared = prepare(options, cx, Quotes::Rendered)?;
    if let Some(texts) =
        prepared.render_in_chunks(format, weaver_render::chunk_releases(prepared.selected.releases().len()), cx.on)?
    {
        return Ok(texts);
    }
    (cx.on)(Progress::Info(
        "a CRD rendered after objects of its kind changes their scope or schema: rendering again, holding every object"
            .to_string(),
    ));
    let texts = prepared.render_in_chunks(format, usize::MAX, cx.on)?;
    Ok(texts.expect("a run of one chunk learns every CRD before any release is finished"))
}

/// What a render made, hooks counted apart (validation counts them with the objects).
fn rendered_count(objects: usize, hooks: usize, releases: usize) -> String {
    match hooks {
        0 => format!("rendered {objects} objects of {releases} releases"),
        _ => format!("rendered {objects} objects and {hooks} hook(s) of {releases} releases"),
    }
}

/// The releases' warnings, each once (releases of one chart share its warnings).
fn warn_of_releases<'a>(warnings: impl Iterator<Item = &'a String>, on: OnProgress) {
    for warning in warnings.collect::<BTreeSet<_>>() {
        on(Progress::Warning(warning.clone()));
    }
}

/// A release's documents formatted, and how many values that redacted.
fn format_release(
    release: &mut weaver_project::RenderedRelease,
    format: Format,
    redactor: &Redactor,
) -> (String, usize) {
    let mut text = String::new();
    let mut redacted = 0;
    for (m, hook) in release.documents_mut() {
        let (document, count) = format(m, hook, redactor);
        text.push_str(&document);
        redacted += count;
    }
    (text, redacted)
}

/// What a release of [`Prepared::render_in_chunks`] leaves once formatted.
struct Formatted {
    text: String,
    redacted: usize,
    objects: usize,
    hooks: usize,
    report: Report,
    removed: Vec<Removed>,
    warnings: Vec<String>,
}

/// The selected releases with their decrypted secrets: all rendering needs but, for Helm
/// charts, the cluster's capabilities.
pub struct Prepared {
    selected: Selected,
    secrets: weaver_render::Secrets,
    validate: weaver_validate::Mode,
    /// Where the values of Secrets that `lookup` reads are registered, with the markers keyed
    /// by the environment's identities.
    redactor: Redactor,
}

/// What an action's output quotes, which decides which of the environment's secrets must be
/// decrypted, so that the redactor knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quotes {
    /// The rendered objects alone (`weaver render`): secrets no selected release reads cannot
    /// appear there, and are not decrypted.
    Rendered,
    /// The cluster too (diff, apply): any secret of the environment may appear in a live
    /// object or a hook's log, so all of them are decrypted.
    Cluster,
}

/// Loads the environment, selects releases and decrypts (registering every decrypted value
/// with the context's redactor).
pub fn prepare(options: &RenderOptions, cx: Context, quotes: Quotes) -> Result<Prepared> {
    let Context { redactor, on, .. } = cx;
    let started = Instant::now();
    // Bounded from the first file read: the environment's own files too.
    let selected = match &options.limits.max_values_bytes {
        Some(bound) => {
            let mut selection = options.selection.clone();
            selection.project = Some(options.selection.open()?.bounded(Some(bound)));
            select(&selection, options.if_empty, on)?
        }
        None => select(&options.selection, options.if_empty, on)?,
    };
    let overrides = overrides_of(&selected, &options.overrides, options.selection.project.is_none(), on)?;
    phase(on, "load", started);
    let (project, env) = (&selected.project, &selected.env);
    let started = Instant::now();
    // Loaded once, whether or not anything is decrypted: the markers are keyed by them (a
    // render that needs no key still masks Secrets). Failing to load them is an error only
    // where a file must be decrypted.
    let loaded = options.keys.load(&options.selection.repo, env.identity_file.as_ref());
    let ids = || loaded.as_ref().map_err(Error::clone);
    let recipients = weaver_secrets::environment_recipients(project.source.as_ref(), env);
    let redactor = &match loaded.as_ref().ok().and_then(|ids| ids.marker_key(&recipients)) {
        Some(key) => redactor.keyed(key),
        None => redactor.clone(),
    };
    let needed = match quotes {
        Quotes::Rendered => reads_environment_secrets(&selected),
        Quotes::Cluster => !env.secrets.is_empty(),
    };
    let values = if !needed {
        if !env.secrets.is_empty() {
            on(Progress::Info("the selected releases read none of the environment's secrets: not decrypted".into()));
        }
        Map::new()
    } else {
        let secrets = weaver_secrets::load_environment_secrets(project.source.as_ref(), env, ids()?, redactor)?;
        on(Progress::Info(format!("decrypted {} secrets file(s)", env.secrets.len())));
        secrets
    };
    // Encrypted `substituteFrom` files are decrypted (and redacted) as encrypted values files are.
    let values_files = selected
        .releases()
        .into_iter()
        .flat_map(|release| release.values_files.iter().chain(&release.secrets).chain(&release.substitute_from));
    let values_files =
        weaver_secrets::load_encrypted_values_files(project.source.as_ref(), values_files, ids, redactor)?;
    if !values_files.is_empty() {
        on(Progress::Info(format!("decrypted {} values file(s)", values_files.len())));
    }
    register_substituted_leaves(&selected, &values_files, redactor);
    warn_of_repeated_keys(&selected, &values_files, on);
    let own_environment = options.keys.own_machine();
    let charts = options.charts.clone();
    let limits = options.limits.clone();
    let secrets = weaver_render::Secrets { values, values_files, overrides, own_environment, charts, limits };
    phase(on, "decrypt", started);
    Ok(Prepared { selected, secrets, validate: options.validate, redactor: redactor.clone() })
}

/// A decrypted `substituteFrom` value substituted into a plain scalar is read again as YAML
/// (see `kustomize::substitute`): `{"user": "app", "password": "…"}` becomes fields whose
/// strings the redactor must know too, not only the whole value.
fn register_substituted_leaves(
    selected: &Selected,
    decrypted: &HashMap<PathBuf, Map<String, serde_json::Value>>,
    redactor: &Redactor,
) {
    let releases = selected.releases();
    let source = selected.project.source.as_ref();
    // A plain Secret's values are as secret as decrypted ones: they are read, and known, too.
    let files = releases.iter().flat_map(|r| &r.substitute_from).filter_map(|f| match decrypted.get(&f.path) {
        Some(map) => Some(map.clone()),
        None => plain_secret(source, &f.path),
    });
    // A Secret's variables are its data decoded: the redactor must know those.
    let variables = files.filter_map(|map| weaver_render::substitute_from_variables(map).ok());
    for vars in variables {
        for value in vars.values() {
            redactor.register_tree(value);
            if let Some(Ok(Some(parsed))) = value.as_str().map(weaver_yaml::helm::from_str) {
                redactor.register_tree(&parsed);
            }
        }
    }
}

/// The file at `path` when it holds a Secret SOPS did not encrypt; None otherwise, or when it
/// does not read (rendering says why).
fn plain_secret(source: &dyn weaver_project::Source, path: &std::path::Path) -> Option<Map<String, serde_json::Value>> {
    let text = String::from_utf8(source.read(path).ok()??).ok()?;
    match weaver_yaml::from_str::<Option<serde_json::Value>>(path, &text).ok()?? {
        serde_json::Value::Object(map) if map.get("kind").and_then(|k| k.as_str()) == Some("Secret") => Some(map),
        _ => None,
    }
}

/// Warns of each key that a selected chart release's values file writes twice: the last value
/// is used, as helm reads it, which a reviewer of the file may not expect. Encrypted and
/// templated files are left to their readers; each file is read once.
fn warn_of_repeated_keys(
    selected: &Selected,
    decrypted: &HashMap<PathBuf, Map<String, serde_json::Value>>,
    on: OnProgress,
) {
    let mut seen = BTreeSet::new();
    let releases = selected.releases();
    let files = releases.iter().filter(|r| r.kustomize.is_none()).flat_map(|r| &r.values_files);
    for file in files {
        let path = &file.path;
        if !seen.insert(path) || decrypted.contains_key(path) || weaver_render::gotmpl::is_template(path) {
            continue;
        }
        let Ok(Some(bytes)) = selected.project.source.read(path) else { continue };
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        for repeated in weaver_yaml::duplicates::duplicate_keys(text) {
            on(Progress::Warning(format!(
                "{}:{}: `{}` is set again (first at line {}); the last value is used, as helm reads it",
                path.display(),
                repeated.line,
                repeated.path,
                repeated.first_line
            )));
        }
    }
}

/// Whether a selected release reads the environment's `secrets`: a weaver chart's templates see
/// all of them, a Helm chart its own key (`secrets.<release>`), a kustomization none. A selection
/// that reads none needs no key to render (`render -r worker` in CI).
fn reads_environment_secrets(selected: &Selected) -> bool {
    let (source, env) = (selected.project.source.as_ref(), &selected.env);
    if env.secrets.is_empty() {
        return false;
    }
    let Some(keys) = weaver_secrets::environment_secrets_keys(source, env) else { return true };
    selected.releases().iter().any(|release| match release.kustomize {
        Some(_) => false,
        None if weaver_helm::is_helm_release(source, release) => keys.contains(&release.name),
        None => true,
    })
}

/// The value flags, read and checked; said once, since what renders is then not what git holds.
fn overrides_of(selected: &Selected, flags: &OverrideFlags, in_git: bool, on: OnProgress) -> Result<Overrides> {
    let overrides = Overrides::load(flags)?;
    // A repository held in memory (`weaver install`'s) has no values of its own to override.
    if overrides.is_empty() || !in_git {
        return Ok(overrides);
    }
    let charts: Vec<String> =
        selected.releases().iter().filter(|r| r.kustomize.is_none()).map(|r| format!("`{}`", r.name)).collect();
    if charts.is_empty() && !selected.releases.is_empty() {
        return Err(Error::new(format!(
            "{}: values flags set chart values, and the selected releases are all kustomizations",
            overrides.summary()
        ))
        .with_help("select chart releases with -r or -l"));
    }
    on(Progress::Warning(format!(
        "values from the command line ({}) override the repository's for {}",
        overrides.summary(),
        charts.join(", ")
    )));
    Ok(overrides)
}

impl Prepared {
    /// Its renders' time counted again from now (see [`weaver_core::limits::RenderLimits::restarted`]).
    pub(super) fn restart_deadline(&mut self) {
        self.secrets.limits = self.secrets.limits.restarted();
    }

    /// The environment, as loaded.
    pub fn environment(&self) -> &Environment {
        &self.selected.env
    }

    /// Where the environment was read from (the working tree, or `--rev`'s commit).
    pub fn source(&self) -> &dyn weaver_project::Source {
        self.selected.project.source.as_ref()
    }

    /// The value flags as given, for the release records.
    pub fn overrides(&self) -> Vec<String> {
        self.secrets.overrides.describe()
    }

    /// Warns of objects whose API version the target Kubernetes version no longer serves (unless
    /// validation is off). The target is the environment's `kubeVersion`, else `server`'s
    /// version (see [`Prepared::server_version`]), else the version Helm charts see offline.
    pub fn warn_removed(&self, rendered: &Rendered, server: Option<&str>, on: OnProgress) {
        if self.validate == Mode::Ignore {
            return;
        }
        let removed = weaver_validate::removed(&rendered.documents().map(|(m, _)| m).collect::<Vec<_>>());
        self.warn_of_removed(removed, server, on);
    }

    /// [`Prepared::warn_removed`] of the objects found.
    fn warn_of_removed(&self, removed: Vec<Removed>, server: Option<&str>, on: OnProgress) {
        let env = self.selected.env.kube_version.as_deref();
        let version = env.or(server).unwrap_or(weaver_helm::DEFAULT_KUBE_VERSION);
        let minor = weaver_validate::minor_version(version).unwrap_or(u32::MAX);
        for removed in removed {
            if minor < removed.removed_in {
                continue;
            }
            let instead = removed
                .replacement
                .map_or_else(|| "it has no replacement: remove the object".to_string(), |api| format!("use {api}"));
            on(Progress::Warning(format!(
                "release `{}`, {}: {} uses {}, which Kubernetes stopped serving in 1.{} (the target is {version}): {instead}",
                removed.release,
                removed.source.display(),
                removed.object,
                removed.api_version,
                removed.removed_in
            )));
        }
    }

    /// The server's version, when [`Prepared::warn_removed`] needs it: validation is on, the
    /// environment has no `kubeVersion`, and an object uses an API version some Kubernetes
    /// version removed. Otherwise no request is made.
    pub async fn server_version(&self, rendered: &Rendered, cluster: &Cluster) -> Result<Option<String>> {
        if self.validate == Mode::Ignore
            || self.selected.env.kube_version.is_some()
            || weaver_validate::removed(&rendered.documents().map(|(m, _)| m).collect::<Vec<_>>()).is_empty()
        {
            return Ok(None);
        }
        Ok(Some(cluster.capabilities().await?.git_version))
    }

    /// The desired state for `cluster`: when a selected release is a Helm chart, rendered again
    /// with the cluster's version and API versions (helm install's `.Capabilities`) and
    /// `lookup` reading the cluster; else `offline`, this selection rendered without a cluster.
    /// Diff and apply render offline first, so that the repository's errors come before any
    /// about the cluster.
    ///
    /// `lookup` reads a snapshot that starts empty: the (resource, namespace) pairs the
    /// releases' lookups asked for are listed (one LIST each, no label selector, at most
    /// `concurrency` at a time) and only the releases that asked are rendered again, until
    /// nothing new is asked.
    pub async fn for_cluster(
        self: &Arc<Self>,
        offline: Desired,
        cluster: &Cluster,
        concurrency: usize,
        on: OnProgress<'_>,
    ) -> Result<Desired> {
        let source = self.selected.project.source.as_ref();
        let helm_charts =
            self.selected.releases().iter().any(|r| r.installed && weaver_helm::is_helm_release(source, r));
        if !helm_charts {
            return Ok(offline);
        }
        let server = cluster.capabilities().await?;
        on(Progress::Info(format!(
            "Helm charts see Kubernetes {} and the {} API versions the cluster serves",
            server.git_version,
            server.api_versions.len()
        )));
        let capabilities = weaver_helm::Capabilities::from_server(
            &server.git_version,
            &server.major,
            &server.minor,
            server.api_versions,
        );
        let view = ClusterView {
            capabilities: Some(Arc::new(capabilities)),
            live: Arc::new(Live::cluster(lookup_kinds(cluster, &offline.rendered))),
        };
        let releases = self.selected.releases();
        let mut rendered = self.render_releases_blocking(None, &view, None, on).await?;
        let mut looked_up = Vec::new();
        for round in 0.. {
            let asked = view.live.take_missing();
            if asked.is_empty() {
                break;
            }
            if round == LOOKUP_ROUNDS {
                return Err(lookups_unsettled(&asked));
            }
            let targets: BTreeSet<Target> = asked.values().flatten().cloned().collect();
            let started = Instant::now();
            let lists = cluster.list_each(&targets, None, concurrency).await?;
            phase(on, "lookup", started);
            on(Progress::Info(format!(
                "listed {} resource(s) for the lookups of {} release(s)",
                lists.len(),
                asked.len()
            )));
            let lists: Vec<(ListTarget, Arc<Listing>)> =
                lists.into_iter().map(|(target, listed)| (target, Arc::new(listed))).collect();
            view.live.add(lists.iter().cloned());
            looked_up.extend(lists);
            let again = releases.iter().filter(|r| asked.contains_key(&r.name)).map(|r| r.name.clone()).collect();
            rendered = self.render_releases_blocking(Some(again), &view, Some(rendered), on).await?;
        }
        if self.validate != Mode::Ignore && !offline.looking_up.is_empty() {
            let started = Instant::now();
            validate(&rendered, |release| offline.looking_up.contains(release), self.validate, on)?;
            phase(on, "validate", started);
        }
        Ok(Desired {
            env: Arc::clone(&self.selected.env),
            rendered,
            looked_up,
            looking_up: BTreeSet::new(),
            redactor: self.redactor.clone(),
        })
    }

    /// [`Prepared::render`] from an async action, on the blocking pool.
    pub async fn render_blocking(self: &Arc<Self>, offline: Offline, on: OnProgress<'_>) -> Result<Desired> {
        let prepared = Arc::clone(self);
        super::blocking_telling(on, move |on| prepared.render(offline, on)).await
    }

    /// Renders offline: Helm charts see the environment's `kubeVersion` (or the default) and
    /// helm's default API versions, as `weaver render` does, and `lookup` finds what `offline`
    /// says. The objects are validated (before diff and apply connect); the render for a cluster
    /// only differs in what Helm charts see, so it validates only the releases that looked up.
    pub fn render(&self, offline: Offline, on: OnProgress) -> Result<Desired> {
        let live = match offline {
            Offline::Alone => Live::Nothing,
            Offline::LiveFrom(objects) => Live::File(objects),
            Offline::BeforeCluster => Live::Later(Default::default()),
        };
        let view = ClusterView { capabilities: None, live: Arc::new(live) };
        let rendered = self.render_releases(&self.selected.releases(), &view, None, on)?;
        warn_of_releases(rendered.releases.iter().flat_map(|r| &r.warnings), on);
        let looking_up = match &*view.live {
            Live::Later(asked) => std::mem::take(&mut *asked.lock().unwrap_or_else(PoisonError::into_inner)),
            _ => BTreeSet::new(),
        };
        if self.validate != Mode::Ignore {
            let started = Instant::now();
            validate(&rendered, |release| !looking_up.contains(release), self.validate, on)?;
            phase(on, "validate", started);
        }
        Ok(Desired {
            env: Arc::clone(&self.selected.env),
            rendered,
            looked_up: Vec::new(),
            looking_up,
            redactor: self.redactor.clone(),
        })
    }

    /// Renders offline, alone (as [`Prepared::render`] with [`Offline::Alone`]), `chunk`
    /// releases at a time: each release is validated and formatted once its objects are
    /// final, and its objects dropped. `None` when the run must hold every object (be one
    /// chunk) to be right (see [`weaver_render::render_in_chunks`]).
    fn render_in_chunks(&self, format: Format, chunk: usize, on: OnProgress) -> Result<Option<Texts>> {
        let (project, env) = (&self.selected.project, &self.selected.env);
        let view = ClusterView { capabilities: None, live: Arc::new(Live::Nothing) };
        let releases = self.selected.releases();
        let validating = self.validate != Mode::Ignore;
        let started = Instant::now();
        let mut validated = Duration::ZERO;
        let mut validator: Option<Validator> = None;
        // Each release is finished once: the part that brings the count to all is the last.
        let mut finished_releases = 0;
        let finish = |chart_crds: &[&serde_json::Value], finished: Vec<Finished>| -> Vec<Formatted> {
            let checking = Instant::now();
            finished_releases += finished.len();
            let part = if finished_releases == releases.len() { Part::Last } else { Part::More };
            let reports: Vec<(Report, Vec<Removed>)> = if validating {
                // Made on the first part validated: it compiles the charts' CRDs, or when that
                // part is the run's only one, those of its objects' kinds.
                let validator = validator.get_or_insert_with(|| {
                    let kinds: Kinds = finished
                        .iter()
                        .flat_map(|f| f.release.documents().map(|(m, _)| (m.api_version(), m.kind())))
                        .collect();
                    Validator::new(chart_crds.iter().copied(), (part == Part::Last).then_some(&kinds))
                });
                validator.learn(
                    finished.iter().flat_map(|f| {
                        f.release.documents().enumerate().map(move |(document, (m, _))| ((f.index, document), m))
                    }),
                    part,
                );
                let validator = &*validator;
                weaver_core::parallel::map_each(finished.iter().collect(), |f| {
                    let documents: Vec<&Manifest> = f.release.documents().map(|(m, _)| m).collect();
                    (validator.check(&documents), weaver_validate::removed(&documents))
                })
            } else {
                finished.iter().map(|_| Default::default()).collect()
            };
            validated += checking.elapsed();
            weaver_core::parallel::map_each(
                finished.into_iter().zip(reports).collect(),
                |(mut f, (report, removed))| {
                    let (objects, hooks) = (f.release.manifests.len(), f.release.hooks.len());
                    let (mut text, redacted) = format_release(&mut f.release, format, &self.redactor);
                    // Kept to the end of the run: without the room it grew with (up to as much again).
                    text.shrink_to_fit();
                    let warnings = std::mem::take(&mut f.release.warnings);
                    Formatted { text, redacted, objects, hooks, report, removed, warnings }
                },
            )
        };
        // `lookup` finds nothing here: no Secret it read needs registering with the redactor.
        let rendered = weaver_render::render_in_chunks(project, env, &releases, &self.secrets, &view, chunk, finish);
        let Some(formatted) = rendered? else { return Ok(None) };
        if validator.as_ref().is_some_and(Validator::is_stale) {
            return Ok(None);
        }
        on(Progress::Phase("render", started.elapsed().saturating_sub(validated)));
        let objects: usize = formatted.iter().map(|f| f.objects).sum();
        let hooks: usize = formatted.iter().map(|f| f.hooks).sum();
        on(Progress::Info(rendered_count(objects, hooks, releases.len())));
        warn_of_releases(formatted.iter().flat_map(|f| &f.warnings), on);
        let mut texts = Texts { texts: Vec::with_capacity(formatted.len()), redacted: 0 };
        let (mut report, mut removed) = (Report::default(), Vec::new());
        for f in formatted {
            texts.texts.push(f.text);
            texts.redacted += f.redacted;
            report.append(f.report);
            removed.extend(f.removed);
        }
        if validating {
            report_validation(report, self.validate, on)?;
            on(Progress::Phase("validate", validated));
            self.warn_of_removed(removed, None, on);
        }
        Ok(Some(texts))
    }

    /// [`Prepared::render_releases`] of the selected releases `names` names (all of them when
    /// None), on the blocking pool.
    async fn render_releases_blocking(
        self: &Arc<Self>,
        names: Option<BTreeSet<String>>,
        view: &ClusterView,
        previous: Option<Rendered>,
        on: OnProgress<'_>,
    ) -> Result<Rendered> {
        let (prepared, view) = (Arc::clone(self), view.clone());
        super::blocking_telling(on, move |on| {
            let mut releases = prepared.selected.releases();
            if let Some(names) = names {
                releases.retain(|r| names.contains(&r.name));
            }
            prepared.render_releases(&releases, &view, previous, on)
        })
        .await
    }

    /// Renders `releases` seeing `view`: all of them, or, given the `previous` render, these
    /// again in its place. The Secrets lookups read are registered with the redactor first,
    /// so that no output, this render's errors included, shows their values.
    fn render_releases(
        &self,
        releases: &[&Release],
        view: &ClusterView,
        previous: Option<Rendered>,
        on: OnProgress,
    ) -> Result<Rendered> {
        let (project, env) = (&self.selected.project, &self.selected.env);
        let started = Instant::now();
        let rendered = match previous {
            None => weaver_render::render(project, env, releases, &self.secrets, view),
            Some(previous) => weaver_render::render_again(project, env, previous, releases, &self.secrets, view),
        };
        for secret in view.live.secrets_seen() {
            self.redactor.register_secret_data(&secret);
        }
        let rendered = rendered?;
        phase(on, "render", started);
        let hooks = rendered.releases.iter().map(|r| r.hooks.len()).sum();
        on(Progress::Info(rendered_count(rendered.manifests().count(), hooks, releases.len())));
        Ok(rendered)
    }
}

/// The kinds `lookup` may name: what discovery found, and the kinds of the CRDs in `offline`
/// (this run creates them: none of their objects can be live, so they are not listed).
fn lookup_kinds(cluster: &Cluster, offline: &Rendered) -> HashMap<String, HashMap<String, Served>> {
    let mut kinds: HashMap<String, HashMap<String, Served>> = cluster
        .served_scopes()
        .into_iter()
        .map(|(api_version, kinds)| {
            let kinds = kinds.into_iter().map(|(kind, namespaced)| (kind, Served { namespaced, listable: true }));
            (api_version, kinds.collect())
        })
        .collect();
    for crd in offline.manifests().filter(|m| m.kind() == "CustomResourceDefinition") {
        for ((api_version, kind), served) in served_kinds_of_crd(&crd.object) {
            let pending = Served { namespaced: served.namespaced, listable: false };
            kinds.entry(api_version).or_default().entry(kind).or_insert(pending);
        }
    }
    kinds
}

/// Lookups still asking for objects after [`LOOKUP_ROUNDS`] rounds of LISTs.
fn lookups_unsettled(asked: &BTreeMap<String, BTreeSet<Target>>) -> Error {
    let releases: Vec<String> = asked
        .iter()
        .map(|(release, targets)| {
            let targets: Vec<String> = targets
                .iter()
                .map(|t| match &t.namespace {
                    Some(ns) => format!("{} {} in namespace {ns}", t.api_version, t.kind),
                    None => format!("{} {}", t.api_version, t.kind),
                })
                .collect();
            format!("release `{release}` ({})", targets.join(", "))
        })
        .collect();
    Error::new(format!(
        "`lookup` still asked for objects not yet listed after {LOOKUP_ROUNDS} rounds of LISTs: {}",
        releases.join("; ")
    ))
    .with_help("each lookup whose arguments come from another lookup's answer takes a round: shorten the chain")
}

/// Validates the rendered objects of the releases `of` picks offline.
fn validate(rendered: &Rendered, of: impl Fn(&str) -> bool, mode: Mode, on: OnProgress) -> Result<()> {
    let documents: Vec<&weaver_core::manifest::Manifest> =
        rendered.documents().map(|(m, _)| m).filter(|m| of(&m.release)).collect();
    report_validation(weaver_validate::validate(&documents, &rendered.chart_crds), mode, on)
}

/// What validation found: one error listing every problem (strict) or warnings; objects
/// without a schema are counted, and listed with `-v`.
fn report_validation(report: Report, mode: Mode, on: OnProgress) -> Result<()> {
    if !report.not_validated.is_empty() {
        on(Progress::Status(format!(
            "{} object(s) not validated: no schema describes their kind (a CRD outside the repository?); -v lists them",
            report.not_validated.len()
        )));
        for (release, object) in &report.not_validated {
            on(Progress::Info(format!("not validated: release `{release}`: {object}")));
        }
    }
    on(Progress::Info(format!(
        "validated {} object(s) offline (Kubernetes 1.37 schemas, CRDs of the run)",
        report.validated
    )));
    if report.problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            let patched = match p.patched_by.as_slice() {
                [] => String::new(),
                patches => {
                    format!(" (patched by {})", patches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                }
            };
            format!(
                "release `{}`, {}{patched}: {}: .{}: {}",
                p.release,
                p.source.display(),
                p.object,
                p.issue.path,
                p.issue.message
            )
        })
        .collect();
    if mode == Mode::Warn {
        lines.into_iter().for_each(|line| on(Progress::Warning(line)));
        return Ok(());
    }
    let objects: BTreeSet<(&str, &weaver_core::manifest::ObjectKey)> =
        report.problems.iter().map(|p| (p.release.as_str(), &p.object)).collect();
    Err(Error::new(format!(
        "{} problem(s) in {} object(s) found by offline schema validation:\n  {}",
        report.problems.len(),
        objects.len(),
        lines.join("\n  ")
    ))
    .with_help(format!(
        "fix the templates{}; --validate=warn reports these without failing, --validate=ignore skips validation",
        if report.problems.iter().any(|p| !p.patched_by.is_empty()) { " or the patches named" } else { "" }
    )))
}

/// [`select`] from an async action, on the blocking pool: it reads the repository.
pub async fn select_blocking(selection: &Selection, if_empty: IfEmpty, cx: Context<'_>) -> Result<Selected> {
    let selection = selection.clone();
    super::blocking_with(cx, move |cx| select(&selection, if_empty, cx.on)).await
}

/// Loads the environment (which must be deployable) and selects its releases: those `-r` and
/// `-l` pick, and with `--changed-since` those `weaver changed` reports. When there are none,
/// says what is true: the environment has none, nothing matched the selection, or nothing
/// changed (never refused: a pipeline's usual case).
pub fn select(selection: &Selection, if_empty: IfEmpty, on: OnProgress) -> Result<Selected> {
    let project = selection.open()?;
    let env = match &selection.loaded {
        Some(env) => Arc::clone(env),
        None => Arc::new(deployable_environment(&project, &selection.env)?),
    };
    let changed = changed_since(selection, &env.name, on)?;
    let changed = selection.changed_since.as_deref().zip(changed.as_ref());
    let selector = Selector::parse_all(&selection.selectors)?;
    let names = &selection.releases;
    let releases: Vec<String> = select_releases(&env, names, &selector, changed.map(|(_, names)| names))?
        .into_iter()
        .map(|r| r.name.clone())
        .collect();
    if !releases.is_empty() {
        return Ok(Selected { project, env, releases });
    }
    let name = &env.name;
    let (message, help) = if env.releases.is_empty() {
        let file = env.files.first().map_or_else(String::new, |f| format!(" ({})", f.display()));
        (format!("environment `{name}` has no releases{file}"), "add releases to the environment".to_string())
    } else if let Some((base, _)) = changed
        && !select_releases(&env, names, &selector, None)?.is_empty()
    {
        on(Progress::Warning(format!(
            "no selected release of environment `{name}` changed since `{base}` (--changed-since)"
        )));
        return Ok(Selected { project, env, releases });
    } else {
        let mut flags: Vec<String> = names.iter().map(|r| format!("-r {r}")).collect();
        flags.extend(selection.selectors.iter().map(|l| format!("-l '{l}'")));
        let known: Vec<&str> = env.releases.iter().map(|r| r.name.as_str()).collect();
        (
            format!("no release of environment `{name}` matches the selection ({})", flags.join(" ")),
            format!("its releases: {}", known.join(", ")),
        )
    };
    match if_empty {
        IfEmpty::Warn => {
            on(Progress::Warning(message));
            Ok(Selected { project, env, releases })
        }
        IfEmpty::Remove => Ok(Selected { project, env, releases }),
        IfEmpty::Refuse => Err(Error::new(format!("{message}: there is nothing to apply")).with_help(help)),
    }
}

/// Loads environment `name`, which must not be abstract (a base that is never deployed).
pub(super) fn deployable_environment(project: &Project, name: &str) -> Result<Environment> {
    let env = project.environment(name)?;
    if env.is_abstract {
        let concrete: Vec<String> = project
            .environment_names()?
            .into_iter()
            .filter(|name| {
                project.environment(name).is_ok_and(|e| !e.is_abstract && e.files.iter().any(|f| f == &env.files[0]))
            })
            .collect();
        return Err(Error::new(format!(
            "environment `{}` is abstract (a base for others) and is never deployed itself",
            env.name
        ))
        .with_help(if concrete.is_empty() {
            "pick a concrete environment (`weaver envs` lists them)".to_string()
        } else {
            format!("environments extending it: {}", concrete.join(", "))
        }));
    }
    Ok(env)
}

/// With --changed-since, the releases of `env` that `weaver changed --base REV` reports as
/// changed or added, against --rev or the working tree. Removed releases have nothing to
/// render: they are named in a status line and left out.
fn changed_since(selection: &Selection, env: &str, on: OnProgress) -> Result<Option<BTreeSet<String>>> {
    let Some(base) = &selection.changed_since else { return Ok(None) };
    let head = selection.rev.as_deref().map(|rev| (rev, "--rev"));
    let mut selected = BTreeSet::new();
    for affected in compare(&selection.repo, (base, "--changed-since"), head)?.environment(env)? {
        if affected.status == ReleaseStatus::Removed {
            on(Progress::Status(format!(
                "release `{}` of environment `{env}` was removed since `{base}`: it has nothing to render",
                affected.release
            )));
        } else {
            selected.insert(affected.release);
        }
    }
    Ok(Some(selected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Heard, Repo, failure};

    /// Each rendered object's kind, namespace and name.
    fn keys(desired: &Desired) -> Vec<(String, Option<String>, String)> {
        let manifests = desired.rendered.releases.iter().flat_map(|r| &r.manifests);
        manifests.map(|m| m.key()).map(|k| (k.kind, k.namespace, k.name)).collect()
    }

    #[test]
    fn the_environment_renders_offline_in_its_namespace_and_labelled_as_its_release() {
        let repo = Repo::new();
        let desired = render(&repo.render_options(), Heard::default().cx()).unwrap();
        let dev = || Some("dev".to_string());
        assert_eq!(
            keys(&desired),
            [("ConfigMap".into(), dev(), "web-config".into()), ("Deployment".into(), dev(), "web".into())]
        );
        let config = &desired.rendered.releases[0].manifests[0];
        assert_eq!(config.source, std::path::Path::new("charts/app/templates/configmap.yaml"));
        assert_eq!(config.object["data"]["greeting"], "hello");
        let labels = &config.object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "weaver");
        assert_eq!(
            (&labels["weaver.example.com/release"], &labels["weaver.example.com/environment"]),
            (&"web".into(), &"dev".into())
        );
    }

    #[test]
    fn a_selection_that_matches_no_release_is_told_and_renders_nothing() {
        let repo = Repo::new();
        let mut options = repo.render_options();
        options.selection.selectors = vec!["tier=data".into()];
        let heard = Heard::default();
        let desired = render(&options, heard.cx()).unwrap();
        assert!(keys(&desired).is_empty());
        assert_eq!(heard.told(), ["no release of environment `dev` matches the selection (-l 'tier=data')"]);
        options.if_empty = IfEmpty::Refuse;
        let message = failure(render(&options, heard.cx()));
        assert!(message.ends_with(": there is nothing to apply (help: its releases: web)"), "{message}");
    }

    #[test]
    fn an_object_its_schema_refuses_fails_the_render_naming_its_template() {
        let repo = Repo::new();
        let template = std::fs::read_to_string(repo.path().join("charts/app/templates/deployment.yaml")).unwrap();
        repo.write("charts/app/templates/deployment.yaml", &template.replace("replicas: 1", "replicas: many"));
        let message = failure(render(&repo.render_options(), Heard::default().cx()));
        assert!(message.contains("charts/app/templates/deployment.yaml") && message.contains("replicas"), "{message}");
    }

    #[test]
    fn formatted_documents_are_each_releases_text_in_order() {
        let repo = Repo::new();
        let format: Format =
            &|m, hook, _| (format!("{} {}{}\n", m.key().kind, m.key().name, if hook { " hook" } else { "" }), 0);
        let texts = render_formatted(&repo.render_options(), Heard::default().cx(), format).unwrap();
        assert_eq!(texts.texts, ["ConfigMap web-config\nDeployment web\n"]);
        assert_eq!(texts.redacted, 0);
    }
}
