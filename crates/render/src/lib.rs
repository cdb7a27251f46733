//! Rendering: environment + charts + decrypted secrets → ordered, labelled objects.
//! A plain function of its inputs: no cluster, no printing.

pub mod capabilities;
pub mod engine;
pub mod filters;
pub mod gotmpl;
pub mod overrides;
pub mod schema;
pub mod transforms;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{Map, Value};

use engine::Engine;
use schema::ValuesSchema;
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{self, Manifest, ObjectKey, Scopes};
use weaver_project::chart::ChartMeta;
use weaver_project::values::{deep_merge, merge_overrides};
use weaver_project::{Chart, Environment, Project, Release};

/// One release's objects, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedRelease {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    /// The chart's name and versions (none for a kustomization or a release not installed).
    pub chart_meta: Option<ChartMeta>,
    pub installed: bool,
    pub manifests: Vec<Manifest>,
    /// A Helm chart's lifecycle hooks (`helm.sh/hook`), apart from its objects: run around an
    /// apply, never kept as objects (see `hook`).
    pub hooks: Vec<Manifest>,
    /// What rendering found that does not stop it (a Helm chart's subchart of the wrong
    /// version), for the caller to warn of.
    pub warnings: Vec<String>,
    /// The release's `ignoreDifferences` rules (the environment's among them), which its plan
    /// follows.
    pub ignore_differences: Vec<weaver_project::IgnoreRule>,
    /// The release's `values:` as its environment files set them (no secrets), for its record.
    pub values: Map<String, Value>,
}

impl RenderedRelease {
    /// A release the environment no longer has: nothing rendered; what its record holds is
    /// deleted, not compared.
    pub fn removed(name: &str, namespace: &str) -> RenderedRelease {
        RenderedRelease {
            name: name.to_string(),
            namespace: namespace.to_string(),
            chart: String::new(),
            chart_meta: None,
            installed: false,
            manifests: Vec::new(),
            hooks: Vec::new(),
            warnings: Vec::new(),
            ignore_differences: Vec::new(),
            values: Default::default(),
        }
    }

    /// What `weaver render` prints of the release: its objects, then its hooks (as `helm
    /// template` prints them), each with whether it is a hook.
    pub fn documents(&self) -> impl Iterator<Item = (&Manifest, bool)> {
        self.manifests.iter().map(|m| (m, false)).chain(self.hooks.iter().map(|h| (h, true)))
    }

    pub fn documents_mut(&mut self) -> impl Iterator<Item = (&mut Manifest, bool)> {
        self.manifests.iter_mut().map(|m| (m, false)).chain(self.hooks.iter_mut().map(|h| (h, true)))
    }
}

/// The releases of one environment, in `needs` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub environment: String,
    pub releases: Vec<RenderedRelease>,
    /// The CRDs in `crds/` of every weaver chart the environment deploys, selected or not:
    /// custom resources of a selected release are validated against them.
    pub chart_crds: Vec<Value>,
}

impl Rendered {
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.releases.iter().flat_map(|r| r.manifests.iter())
    }

    /// What `weaver render` prints: each release's [`RenderedRelease::documents`].
    pub fn documents(&self) -> impl Iterator<Item = (&Manifest, bool)> {
        self.releases.iter().flat_map(RenderedRelease::documents)
    }
}

struct ChartContext {
    chart: Arc<Chart>,
    schema: Option<ValuesSchema>,
    meta: minijinja::Value,
    files: minijinja::Value,
}

/// What Helm charts see of the cluster they are rendered for.
#[derive(Clone, Default)]
pub struct ClusterView {
    /// A connected server's capabilities; None: the environment's `kubeVersion` (or the
    /// default) and helm's default API versions with the environment's `apiVersions`, as `helm
    /// template --kube-version --api-versions`. A server's discovery wins over both, as in helm,
    /// whose `--api-versions` only `helm template` takes.
    pub capabilities: Option<Arc<weaver_helm::Capabilities>>,
    /// What `lookup` reads.
    pub live: Arc<weaver_helm::lookup::Live>,
}

/// What rendering needs besides the repository: what was decrypted (every value registered
/// with the redactor), the values given on the command line, and where remote charts come from.
#[derive(Debug, Default)]
pub struct Secrets {
    /// The environment's `secrets` files, merged.
    pub values: Map<String, Value>,
    /// The releases' encrypted `valuesFiles` (SOPS files), by path.
    pub values_files: HashMap<PathBuf, Map<String, Value>>,
    /// `--set` and the other value flags, over every chart release's values.
    pub overrides: overrides::Overrides,
    /// Whether values templates' `env` and `requiredEnv` read this process's environment: the
    /// CLI's; never the controller's, whose variables are not a tenant's.
    pub own_environment: bool,
    /// Where remote charts' archives come from: the machine's cache (the CLI's), or the
    /// controller's pulls.
    pub charts: weaver_source::charts::Archives,
}

/// Renders the given releases of `env` with their decrypted `secrets`.
/// A Helm chart release whose `lookup`s asked for objects `cluster.live` has not listed yet
/// renders no objects (and no error): see [`render_again`].
pub fn render(
    project: &Project,
    env: &Environment,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
) -> Result<Rendered> {
    render_into(project, env, releases, secrets, cluster, None)
}

/// `previous` with `releases` (some of its releases) rendered again, once `cluster.live`
/// holds what their lookups asked for; the others are kept as they are.
pub fn render_again(
    project: &Project,
    env: &Environment,
    previous: Rendered,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
) -> Result<Rendered> {
    render_into(project, env, releases, secrets, cluster, Some(previous))
}

fn render_into(
    project: &Project,
    env: &Environment,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
    previous: Option<Rendered>,
) -> Result<Rendered> {
    with_run(project, env, releases, secrets, cluster, |run| {
        let places: Vec<Place> = match previous {
            None => releases.iter().map(|release| Place::Render(release)).collect(),
            // The releases rendered again take their places among the others.
            Some(previous) => {
                let again: HashMap<&str, &Release> = releases.iter().map(|r| (r.name.as_str(), *r)).collect();
                let place = |kept: RenderedRelease| match again.get(kept.name.as_str()) {
                    Some(release) => Place::Render(release),
                    None => Place::Kept(Box::new(kept)),
                };
                previous.releases.into_iter().map(place).collect()
            }
        };
        let whole_run = |_: &[&Value], finished: Vec<Finished>| finished.into_iter().map(|f| f.release).collect();
        let releases = run
            .render_places(places, usize::MAX, whole_run)?
            .expect("a run of one chunk learns every CRD before any release is finished");
        Ok(Rendered {
            environment: env.name.clone(),
            releases,
            chart_crds: run.chart_crds().into_iter().cloned().collect(),
        })
    })
}

/// How many releases `weaver render` holds rendered and not yet finished, give or take
/// ([`render_in_chunks`]): enough to keep every core busy (a few per core, since releases
/// differ in size), few enough that their objects are a small part of the run's. 435 real
/// charts in one run: 194 MB peak with chunks of 32, 290 MB with one chunk of them all, in the
/// same time.
pub fn chunk_releases() -> usize {
    (4 * rayon::current_num_threads()).max(32)
}

/// A release's objects once they are final, given to [`render_in_chunks`]' `finish`.
pub struct Finished {
    /// The release's place among those rendered.
    pub index: usize,
    pub release: RenderedRelease,
}

/// [`render`], with at most twice `chunk` releases rendered ahead of the next one finished,
/// handing each release's final objects to `finish` as soon as they are final (in the
/// releases' order, a few at a time), so that a run never holds every object at once: `finish`
/// keeps what it needs of them (say, their text). Releases are rendered ahead rather than
/// `chunk` at a time because one slow release (RSA keys) would hold up every core at the end
/// of each chunk, and further ahead (up to 16 chunks) while the next one is still rendering
/// and a core would idle: 450 real charts, one taking a second alone, rendered in 2.77 s two
/// chunks ahead, 2.1–2.3 s so, at the same peak RSS (about 180 MB). Returns what `finish`
/// made, in the releases' order, once every release is rendered and no error (which are
/// [`render`]'s, in its order) is found; `finish` runs on releases rendered before such an
/// error is found, so it must not show anything itself.
///
/// A release is final once the scope of each of its kinds is known: built in, or a CRD of the
/// run rendered so far says it. A release with a kind still unknown waits (with its objects)
/// until every release is rendered, and is finished with the last ones. Returns `None` when a
/// CRD rendered later changes the scope of a kind some release already finished used (a CRD of
/// a built-in kind's name, or two CRDs of one kind): only a `chunk` as large as the run (which
/// [`render`] is: every release rendered before any is finished) gives the right answer then.
pub fn render_in_chunks<R: Send>(
    project: &Project,
    env: &Environment,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
    chunk: usize,
    finish: impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
) -> Result<Option<Vec<R>>> {
    with_run(project, env, releases, secrets, cluster, |run| {
        run.render_places(releases.iter().map(|release| Place::Render(release)).collect(), chunk, finish)
    })
}

/// A place of a run once it is ready to finish: a release rendered (or the error rendering it
/// found), or one kept.
enum Ready {
    /// What rendering gave, or its panic, raised again where the run waits.
    Rendered(std::thread::Result<Result<RenderedRelease>>),
    Kept(RenderedRelease),
}

/// What a release's rendering sent: its place and what rendering it gave, or its panic.
type Sent = (usize, std::thread::Result<Result<RenderedRelease>>);

/// Releases started, by every run of the process (a fleet renders several environments at
/// once), that no thread has taken up yet: while there are some, no core is idle, and a run
/// waiting for a slow release renders no further ahead than usual.
static WAITING_FOR_A_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The next release rendered. A thread of rayon's pool (a run inside other parallel work)
/// renders others while it waits, rather than wait for itself.
fn receive(receiver: &std::sync::mpsc::Receiver<Sent>) -> Sent {
    match rayon::current_thread_index() {
        None => receiver.recv().expect("the run keeps a sender while it waits"),
        Some(_) => loop {
            if let Ok(sent) = receiver.try_recv() {
                break sent;
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed)
                && let Ok(sent) = receiver.recv_timeout(std::time::Duration::from_millis(1))
            {
                break sent;
            }
        },
    }
}

/// A place in a run's order of releases: one to render, or one rendered before (by
/// [`render_again`]'s previous render) and kept as it is, already final.
enum Place<'a> {
    Render(&'a Release),
    /// Boxed: a rendered release is large, a place to render is a pointer.
    Kept(Box<RenderedRelease>),
}

/// Splits hooks off the `finished` releases rendered here, hands them to `finish` and keeps
/// what it made and their objects' identities in their places.
fn keep<R>(
    run: &Run,
    mut finished: Vec<Finished>,
    rendering: &[Option<&Release>],
    chart_crds: &[&Value],
    origins: &mut Vec<Origins>,
    made: &mut Vec<Option<R>>,
    finish: &mut impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
) {
    let places: Vec<usize> = finished.iter().map(|f| f.index).collect();
    let end = places.iter().max().map_or(0, |&last| last + 1);
    if made.len() < end {
        made.resize_with(end, || None);
        origins.resize_with(end, Origins::default);
    }
    for f in finished.iter_mut() {
        origins[f.index] = Origins::of(&f.release);
        // A kept release's hooks were split when it was rendered.
        if let Some(release) = rendering[f.index] {
            run.split_hooks(&mut f.release, release);
        }
    }
    for (index, result) in places.into_iter().zip(finish(chart_crds, finished)) {
        made[index] = Some(result);
    }
}

/// A CRD rendered again, identical (charts bundling the same CRDs, in two releases; a Helm
/// release's own copies are one already, see `transforms::keep_last_copies`), is applied once, as helm installs a CRD once and skips one that
/// exists: each copy after the first (in the run's order) goes, with a warning. A different
/// copy stays, for the check that no object is rendered twice to refuse. `seen` keeps each
/// first copy's release and digest, not the copy: CRDs are the largest objects of a run.
fn drop_repeated_crds(finished: &mut [Finished], seen: &mut HashMap<ObjectKey, (String, [u8; 32])>) {
    let mut order: Vec<&mut Finished> = finished.iter_mut().collect();
    order.sort_by_key(|f| f.index);
    for f in order {
        let release = &mut f.release;
        let mut warnings = Vec::new();
        release.manifests.retain(|m| {
            if m.kind() != "CustomResourceDefinition" {
                return true;
            }
            let digest = digest_as_made(&m.object);
            match seen.entry(m.key()) {
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert((release.name.clone(), digest));
                    true
                }
                std::collections::hash_map::Entry::Occupied(first) if first.get().1 == digest => {
                    warnings.push(format!(
                        "release `{}`, {}: {} is also rendered, identical, by release `{}`: it is applied once",
                        release.name,
                        m.source.display(),
                        m.key(),
                        first.get().0
                    ));
                    false
                }
                std::collections::hash_map::Entry::Occupied(_) => true,
            }
        });
        release.warnings.extend(warnings);
    }
}

/// A digest of `object` as the chart made it: without the release's label (each copy carries
/// its own), and with keys in any order, as `Value`'s equality compares maps.
fn digest_as_made(object: &Value) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    /// Where a value is: the object, its `metadata`, its labels, or elsewhere.
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Root,
        Metadata,
        Labels,
        Other,
    }
    // Each value's kind and length go before it, so that no two values feed the same bytes.
    fn feed(hasher: &mut Sha256, value: &Value, at: At) {
        fn tagged(hasher: &mut Sha256, tag: u8, len: usize) {
            hasher.update([tag]);
            hasher.update(len.to_le_bytes());
        }
        match value {
            Value::Null => tagged(hasher, b'n', 0),
            Value::Bool(b) => tagged(hasher, b'b', usize::from(*b)),
            Value::Number(n) => {
                let text = n.to_string();
                tagged(hasher, b'#', text.len());
                hasher.update(text.as_bytes());
            }
            Value::String(s) => {
                tagged(hasher, b's', s.len());
                hasher.update(s.as_bytes());
            }
            Value::Array(items) => {
                tagged(hasher, b'a', items.len());
                items.iter().for_each(|item| feed(hasher, item, At::Other));
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> =
                    map.iter().filter(|(k, _)| at != At::Labels || k.as_str() != manifest::LABEL_RELEASE).collect();
                entries.sort_unstable_by_key(|(k, _)| *k);
                tagged(hasher, b'o', entries.len());
                for (key, value) in entries {
                    tagged(hasher, b'k', key.len());
                    hasher.update(key.as_bytes());
                    let inner = match (at, key.as_str()) {
                        (At::Root, "metadata") => At::Metadata,
                        (At::Metadata, "labels") => At::Labels,
                        _ => At::Other,
                    };
                    feed(hasher, value, inner);
                }
            }
        }
    }
    let mut hasher = Sha256::new();
    feed(&mut hasher, object, At::Root);
    hasher.finalize().into()
}

/// Everything rendering the releases of a run needs, prepared once.
struct Run<'a> {
    project: &'a Project,
    env: &'a Environment,
    secrets: &'a Secrets,
    cluster: &'a ClusterView,
    helm: HelmCharts,
    engine: Engine,
    chart_contexts: BTreeMap<&'a str, ChartContext>,
    crds: BTreeMap<&'a str, Vec<Manifest>>,
    capabilities: minijinja::Value,
    env_value: minijinja::Value,
    secrets_value: minijinja::Value,
}

/// Prepares the [`Run`] of `releases` (charts loaded and parsed once, values schemas compiled)
/// and gives it to `body`.
fn with_run<T>(
    project: &Project,
    env: &Environment,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
    body: impl FnOnce(&Run) -> Result<T>,
) -> Result<T> {
    let source = project.source.as_ref();
    // Which charts are Helm charts, looked up once per chart (not per release: a file check each).
    let mut helm_chart: HashMap<&str, bool> = HashMap::new();
    for release in env.releases.iter().chain(releases.iter().copied()).filter(|r| r.kustomize.is_none()) {
        helm_chart.entry(&release.chart).or_insert_with(|| weaver_helm::is_helm_release(source, release));
    }
    let is_weaver_chart = |release: &Release| release.kustomize.is_none() && !helm_chart[release.chart.as_str()];
    // Capabilities come from every release of a weaver chart the environment deploys, selected
    // or not: rendering one release gives what rendering all of them gives, so applying it
    // alone prunes nothing.
    let deployed: Vec<&Release> = env.releases.iter().filter(|r| r.installed && is_weaver_chart(r)).collect();
    let charts = project.charts_for(deployed.iter().copied())?;
    let crds = chart_crds(&charts, &deployed)?;
    let capabilities = minijinja::context! {
        apiVersions => capabilities::api_versions(crds.values().flatten().map(|m| &m.object), &env.api_versions),
    };
    let installed: Vec<&Release> = releases.iter().copied().filter(|r| r.installed).collect();
    let helm_releases: Vec<&Release> =
        installed.iter().copied().filter(|r| r.kustomize.is_none() && !is_weaver_chart(r)).collect();
    let weaver_releases: Vec<&Release> = installed.iter().copied().filter(|r| is_weaver_chart(r)).collect();
    let selected: BTreeSet<&str> = weaver_releases.iter().map(|r| r.chart.as_str()).collect();
    let charts_used: BTreeMap<&str, &Arc<Chart>> =
        charts.iter().filter(|(name, _)| selected.contains(name.as_str())).map(|(n, c)| (n.as_str(), c)).collect();
    let helm = HelmCharts::new(env, &helm_releases, cluster.capabilities.clone())?;
    helm.check_pinned(project, &helm_releases)?;
    let engine = Engine::new(charts_used.values().copied())?;
    let chart_contexts: BTreeMap<&str, ChartContext> = charts_used
        .iter()
        .map(|(name, chart)| {
            let schema = chart.schema.as_ref().map(|(path, s)| ValuesSchema::compile(path, s)).transpose()?;
            let meta = minijinja::context! { name => &chart.name, version => &chart.version, description => &chart.description, appVersion => &chart.app_version };
            let files = minijinja::Value::from_object(filters::ChartFiles { chart: chart.name.clone(), files: chart.files.clone() });
            Ok((*name, ChartContext { chart: (*chart).clone(), schema, meta, files }))
        })
        .collect::<Result<_>>()?;
    let run = Run {
        project,
        env,
        secrets,
        cluster,
        helm,
        engine,
        chart_contexts,
        crds,
        capabilities,
        env_value: minijinja::context! { name => &env.name, values => serde_value(&env.values) },
        secrets_value: serde_value(&secrets.values),
    };
    body(&run)
}

impl Run<'_> {
    /// Renders `release` (templates only: no scopes, patches or labels yet).
    fn render(&self, release: &Release) -> Result<RenderedRelease> {
        let (project, env, cluster, secrets) = (self.project, self.env, self.cluster, self.secrets);
        let rendered = |installed, chart_meta, manifests, warnings| RenderedRelease {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
            chart: release.chart.clone(),
            chart_meta,
            installed,
            manifests,
            hooks: Vec::new(),
            warnings,
            ignore_differences: release.ignore_differences.clone(),
            values: release.values.clone(),
        };
        if !release.installed {
            return Ok(rendered(false, None, Vec::new(), Vec::new()));
        }
        if let Some(dir) = &release.kustomize {
            let manifests = render_kustomization(project, release, dir, secrets)?;
            return Ok(rendered(true, None, manifests, Vec::new()));
        }
        if self.helm.is_helm_chart(&release.chart) {
            let chart = self.helm.get(project, env, release, &secrets.charts);
            let output = match &chart {
                Ok(chart) => render_helm(project, env, release, chart, &self.helm.capabilities, &cluster.live, secrets),
                Err(_) => Ok(Vec::new()),
            };
            self.helm.rendered(&release.chart);
            let chart = chart?;
            // Output made without objects its lookups asked for goes: it is made again.
            let manifests = match output {
                _ if cluster.live.is_waiting(&release.name) => Vec::new(),
                Err(_) if cluster.live.defers_errors_of(&release.name) => Vec::new(),
                output => output?,
            };
            let metadata = &chart.chart.metadata;
            let chart_meta = ChartMeta {
                name: metadata.name.clone(),
                version: metadata.version.clone(),
                app_version: metadata.app_version.clone(),
            };
            return Ok(rendered(true, Some(chart_meta), manifests, chart.warnings.clone()));
        }
        let chart = &self.chart_contexts[release.chart.as_str()];
        let values = release_values(project, env, release, &chart.chart, secrets)?;
        if let Some(schema) = &chart.schema {
            schema.validate(&values, &release.name, &release.at, |path| secrets.overrides.flag_setting(path))?;
        }
        let context = minijinja::context! {
            values => serde_value(&values),
            release => minijinja::context! { name => &release.name, namespace => &release.namespace, environment => &env.name, chart => &release.chart },
            env => self.env_value.clone(),
            secrets => self.secrets_value.clone(),
            chart => chart.meta.clone(),
            files => chart.files.clone(),
            capabilities => self.capabilities.clone(),
        };
        let manifests =
            render_chart(&self.engine, &chart.chart, &self.crds[release.chart.as_str()], release, &context)?;
        let chart_meta = ChartMeta {
            name: chart.chart.name.clone(),
            version: chart.chart.version.clone(),
            app_version: chart.chart.app_version.clone(),
        };
        Ok(rendered(true, Some(chart_meta), manifests, Vec::new()))
    }

    /// The run's `places` rendered ahead: see [`render_in_chunks`].
    /// Kept releases are final as they are, but their CRDs decide scopes and their objects
    /// count in the check that no object is rendered twice.
    fn render_places<R: Send>(
        &self,
        places: Vec<Place>,
        chunk: usize,
        mut finish: impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
    ) -> Result<Option<Vec<R>>> {
        // Borrowed, not copied: CRDs are the largest objects of a run.
        let chart_crds = self.chart_crds();
        let rendering: Vec<Option<&Release>> = places
            .iter()
            .map(|place| match place {
                Place::Render(release) => Some(*release),
                Place::Kept(_) => None,
            })
            .collect();
        let mut scopes = Scopes::default();
        // The scope of each (group, kind) finished releases were given.
        let mut decided: HashMap<(String, String), bool> = HashMap::new();
        let mut waiting: Vec<(usize, RenderedRelease)> = Vec::new();
        let mut origins: Vec<Origins> = Vec::with_capacity(places.len());
        // The first copy of each CRD, and its release: see `drop_repeated_crds`.
        let mut crds_seen: HashMap<ObjectKey, (String, [u8; 32])> = HashMap::new();
        let mut made: Vec<Option<R>> = Vec::with_capacity(places.len());
        // A patch's error: reported once every release rendered without one.
        let mut failed: Option<Error> = None;
        let transform = |batch: Vec<(usize, RenderedRelease)>, scopes: &Scopes| -> Result<Vec<Finished>> {
            let mut batch = batch;
            batch
                .par_iter_mut()
                .map(|(index, out)| {
                    let release = rendering[*index].expect("only releases rendered here are transformed");
                    let helm = release.kustomize.is_none() && self.helm.is_helm_chart(&release.chart);
                    transforms::apply(&mut out.manifests, &mut out.warnings, release, &self.env.name, scopes, helm)
                })
                .collect::<Result<Vec<()>>>()?;
            Ok(batch.into_iter().map(|(index, release)| Finished { index, release }).collect())
        };
        let total = places.len();
        // Whole: every release rendered before any is finished. Otherwise releases are rendered
        // up to twice `chunk` ahead of the next one finished, in order; and while the next one
        // is still rendering with a core idle (fewer of this run's releases rendering than
        // threads, and none of any run's waiting for a thread), further on, up to `furthest`:
        // one release taking a second (RSA keys) holds up neither the others nor the cores.
        let whole = chunk >= total;
        let ahead = if whole { total } else { chunk.saturating_mul(2) };
        let furthest = if whole { total } else { chunk.saturating_mul(16) };
        let threads = rayon::current_num_threads();
        let (sender, receiver) = std::sync::mpsc::channel::<Sent>();
        // Set when the run ends early: releases started by then skip their work.
        let ended = std::sync::atomic::AtomicBool::new(false);
        let mut places = places.into_iter().enumerate();
        let mut ready: BTreeMap<usize, Ready> = BTreeMap::new();
        let (mut started, mut next, mut in_flight) = (0, 0, 0);
        let outcome = rayon::in_place_scope(|scope| {
            // Starts the next place's rendering (a kept one is ready as it is): false when none is left.
            let mut start = |ready: &mut BTreeMap<usize, Ready>, in_flight: &mut usize| match places.next() {
                Some((index, Place::Render(release))) => {
                    let (sender, ended) = (sender.clone(), &ended);
                    WAITING_FOR_A_THREAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    scope.spawn(move |_| {
                        WAITING_FOR_A_THREAD.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        if !ended.load(std::sync::atomic::Ordering::Relaxed) {
                            // The receiver is gone only when the run ended early.
                            let rendered =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.render(release)));
                            let _ = sender.send((index, rendered));
                        }
                    });
                    *in_flight += 1;
                    true
                }
                Some((index, Place::Kept(release))) => {
                    ready.insert(index, Ready::Kept(*release));
                    true
                }
                None => false,
            };
            let mut run = || -> Result<Option<()>> {
                while next < total {
                    while started < next + ahead && start(&mut ready, &mut in_flight) {
                        started += 1;
                    }
                    // The next release in order, then every release after it that is ready too.
                    while !ready.contains_key(&next) || (whole && ready.len() < total - next) {
                        let idle =
                            in_flight < threads && WAITING_FOR_A_THREAD.load(std::sync::atomic::Ordering::Relaxed) == 0;
                        if idle && started < next + furthest && start(&mut ready, &mut in_flight) {
                            started += 1;
                            continue;
                        }
                        let (index, rendered) = receive(&receiver);
                        in_flight -= 1;
                        ready.insert(index, Ready::Rendered(rendered));
                    }
                    while let Ok((index, rendered)) = receiver.try_recv() {
                        in_flight -= 1;
                        ready.insert(index, Ready::Rendered(rendered));
                    }
                    let mut to_render: Vec<(usize, RenderedRelease)> = Vec::new();
                    let mut kept: Vec<Finished> = Vec::new();
                    while let Some(place) = ready.remove(&next) {
                        match place {
                            Ready::Rendered(rendered) => to_render
                                .push((next, rendered.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?)),
                            Ready::Kept(release) => kept.push(Finished { index: next, release }),
                        }
                        next += 1;
                    }
                    // A kept release's CRDs after those rendered: the last CRD of a kind decides.
                    let crds = to_render
                        .iter()
                        .map(|(_, r)| r)
                        .chain(kept.iter().map(|f| &f.release))
                        .flat_map(|r| &r.manifests);
                    for crd in crds.filter(|m| m.kind() == "CustomResourceDefinition") {
                        let Some(kind) = scopes.learn_crd(&crd.object) else { continue };
                        if decided
                            .get(&kind)
                            .is_some_and(|&namespaced| namespaced != scopes.is_namespaced_in(&kind.0, &kind.1))
                        {
                            return Ok(None);
                        }
                    }
                    if failed.is_some() {
                        continue; // only a template's error can still come first
                    }
                    let (ready_now, wait): (Vec<_>, Vec<_>) = to_render
                        .into_iter()
                        .partition(|(_, out)| out.manifests.iter().all(|m| scopes.is_known(m.api_version(), m.kind())));
                    waiting.extend(wait);
                    // Once the last release is rendered, every CRD of the run is known: what waited is
                    // final too, and goes to `finish` with the last ones, so that `finish` sees the
                    // CRDs it carries before it checks the objects that use them.
                    let mut ready_now = ready_now;
                    if next == total {
                        ready_now.append(&mut waiting);
                    }
                    let kinds: BTreeSet<(&str, &str)> = ready_now
                        .iter()
                        .flat_map(|(_, out)| &out.manifests)
                        .map(|m| (manifest::api_group(m.api_version()), m.kind()))
                        .collect();
                    for (group, kind) in kinds {
                        let namespaced = scopes.is_namespaced_in(group, kind);
                        decided.entry((group.to_string(), kind.to_string())).or_insert(namespaced);
                    }
                    match transform(ready_now, &scopes) {
                        Ok(mut finished) => {
                            finished.extend(kept);
                            drop_repeated_crds(&mut finished, &mut crds_seen);
                            keep(self, finished, &rendering, &chart_crds, &mut origins, &mut made, &mut finish)
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                Ok(Some(()))
            };
            let outcome = run();
            ended.store(true, std::sync::atomic::Ordering::Relaxed);
            outcome
        });
        if outcome?.is_none() {
            return Ok(None);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        check_unique(&origins)?;
        Ok(Some(made.into_iter().map(|r| r.expect("every release is finished")).collect()))
    }

    /// A Helm chart's hooks apart from its objects. Told apart after the release's patches,
    /// which may target them as helm's post-renderers do, and after the check that no object
    /// is rendered twice.
    fn split_hooks(&self, out: &mut RenderedRelease, release: &Release) {
        if release.kustomize.is_none() && self.helm.is_helm_chart(&release.chart) {
            let (hooks, manifests) = std::mem::take(&mut out.manifests)
                .into_iter()
                .partition(|m| weaver_helm::hooks::Spec::of(&m.object).is_some());
            (out.hooks, out.manifests) = (hooks, manifests);
        }
    }

    fn chart_crds(&self) -> Vec<&Value> {
        self.crds.values().flatten().map(|m| &m.object).collect()
    }
}

/// A kustomization release: the objects `kubectl kustomize <dir>` builds, with the release's
/// variables substituted (when it has any), each checked as a rendered document is.
fn render_kustomization(project: &Project, release: &Release, dir: &Path, secrets: &Secrets) -> Result<Vec<Manifest>> {
    let mut resources =
        weaver_kustomize::build(project.source.as_ref(), dir, &release.chart_at, release.load_restrictions)
            .map(|built| built.resources)
            .map_err(|e| if e.help.is_none() { e.with_help(format!("release `{}`", release.name)) } else { e })?;
    if !release.substitute.is_empty() || !release.substitute_from.is_empty() {
        substitute(project, release, secrets, &mut resources)?;
    }
    let mut manifests = Vec::with_capacity(resources.len());
    for resource in resources {
        if let Some(problem) = manifest::object_problem(&resource.object) {
            let unsubstituted = weaver_kustomize::substitute::in_identity(&resource.object)
                && release.substitute.is_empty()
                && release.substitute_from.is_empty();
            let help = match unsubstituted {
                true => format!(
                    "release `{}`: `${{…}}` is a variable, as Flux substitutes them: give the release `substitute` or `substituteFrom`",
                    release.name
                ),
                false => format!("release `{}`", release.name),
            };
            // A label's value the API server refuses is shown where the file writes it.
            let line = manifest::metadata_value(&resource.object)
                .filter(|(_, of_value)| *of_value == problem)
                .and_then(|(pointer, _)| {
                    let text = project.source.read(&resource.source).ok()??;
                    weaver_yaml::scalars::line_of(std::str::from_utf8(&text).ok()?, resource.document - 1, &pointer)
                });
            let at = match line {
                Some(line) => Location::at(&resource.source, line as u64, 0),
                None => Location::file(&resource.source),
            };
            return Err(Error::at(
                at,
                format!("the kustomization's {} (document {}) {problem}", resource.describe(), resource.document),
            )
            .with_help(help));
        }
        manifests.push(Manifest {
            release: release.name.clone(),
            source: resource.source,
            document: resource.document,
            object: resource.object,
            patched_by: Vec::new(),
        });
    }
    Ok(manifests)
}

/// Substitutes the release's variables in its kustomization's objects, as Flux's
/// kustomize-controller does after its build (see `weaver_kustomize::substitute`).
fn substitute(
    project: &Project,
    release: &Release,
    secrets: &Secrets,
    resources: &mut [weaver_kustomize::Resource],
) -> Result<()> {
    use weaver_kustomize::substitute::substitute;
    let vars = variables(project, release, secrets)?;
    for resource in resources {
        let what = resource.describe();
        substitute(&mut resource.object, &vars).map_err(|problem| {
            let help = match &problem {
                weaver_kustomize::substitute::Problem::Unset(name) => format!(
                    "set `{name}` in the release's `substitute` or a `substituteFrom` file, or give a default (`${{{name}:=…}}`); `$${{{name}}}` keeps the text `${{{name}}}`"
                ),
                _ => format!(
                    "references are `${{name}}`, `${{name:=default}}` or `${{name:-default}}`, and `$$` is a `$`; label or annotate the object `{}: disabled` to leave it as it is",
                    weaver_kustomize::substitute::DISABLE_KEY
                ),
            };
            Error::at(
                Location::file(&resource.source),
                format!("release `{}`: substituting variables in the kustomization's {what}: {problem}", release.name),
            )
            .with_help(help)
        })?;
    }
    Ok(())
}

/// A release's variables: its `substituteFrom` files in order (a later file's variable wins),
/// then its `substitute` over them, as Flux's `substitute` wins over its `substituteFrom`.
fn variables(project: &Project, release: &Release, secrets: &Secrets) -> Result<HashMap<String, String>> {
    use weaver_project::environment::{VARIABLE_NAME_HELP, is_variable_name, variable_value};
    let mut vars = HashMap::new();
    let files = read_files(project, &release.substitute_from, "substituteFrom file", None, secrets, |path, text| {
        weaver_yaml::from_str::<Option<Value>>(path, text)
    })?;
    for (file, map) in release.substitute_from.iter().zip(files) {
        let map = substitute_from_variables(map).map_err(|message| {
            Error::at(file.at.clone(), format!("substituteFrom file {}: {message}", file.path.display()))
        })?;
        for (name, value) in map {
            let problem = match variable_value(&value) {
                _ if !is_variable_name(&name) => Some((format!("`{name}` is not a variable name"), VARIABLE_NAME_HELP)),
                None => Some((
                    format!("variable `{name}` is not a string, number or boolean"),
                    "a substituteFrom file is a flat mapping of variable names to values",
                )),
                Some(text) => {
                    vars.insert(name.clone(), text);
                    None
                }
            };
            if let Some((message, help)) = problem {
                return Err(Error::at(key_location(project, &file.path, &name), message)
                    .with_help(format!("release `{}`: {help}", release.name)));
            }
        }
    }
    vars.extend(release.substitute.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
}

/// The variables of a `substituteFrom` file: the file itself, or, when it holds a ConfigMap or
/// a Secret (as Flux's substituteFrom names them, SOPS-encrypted or not), its data: a Secret's
/// `data` base64-decoded, then its `stringData` over it, as the API server merges them.
pub fn substitute_from_variables(map: Map<String, Value>) -> std::result::Result<Map<String, Value>, String> {
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if map.get("apiVersion").and_then(Value::as_str) != Some("v1") || !matches!(kind.as_str(), "ConfigMap" | "Secret") {
        return Ok(map);
    }
    let mut vars = Map::new();
    for (name, value) in map.get("data").and_then(Value::as_object).into_iter().flatten() {
        let value = match (kind.as_str(), value.as_str()) {
            ("Secret", Some(encoded)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| format!("the Secret's `data.{name}` is not base64"))?;
                Value::String(String::from_utf8(bytes).map_err(|_| format!("the Secret's `data.{name}` is not text"))?)
            }
            _ => value.clone(),
        };
        vars.insert(name.clone(), value);
    }
    if kind == "Secret" {
        for (name, value) in map.get("stringData").and_then(Value::as_object).into_iter().flatten() {
            vars.insert(name.clone(), value.clone());
        }
    }
    Ok(vars)
}

/// Where a top-level `key` is written in the file at `path` (keys of SOPS files are in clear
/// text), or the file alone.
fn key_location(project: &Project, path: &Path, key: &str) -> Location {
    let text = project.source.read(path).ok().flatten().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
    let line = text.lines().position(|line| {
        [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|k| line.starts_with(k.as_str()))
    });
    match line {
        Some(index) => Location::at(path, index as u64 + 1, 1),
        None => Location::file(path),
    }
}

/// Chart defaults < `valuesFiles` in order < the release's `values` < the command line's
/// overrides, one more layer merged the same way.
fn release_values(
    project: &Project,
    env: &Environment,
    release: &Release,
    chart: &Chart,
    secrets: &Secrets,
) -> Result<Value> {
    let mut values = chart.values.clone();
    let parse = weaver_yaml::from_str::<Option<Value>>;
    for map in read_files(project, &release.values_files, "values file", Some((env, release)), secrets, parse)? {
        deep_merge(&mut values, map);
    }
    deep_merge(&mut values, release.values.clone());
    for map in release_secrets(project, release, secrets)? {
        deep_merge(&mut values, map);
    }
    if !secrets.overrides.is_empty() {
        let mut overrides = Map::new();
        secrets.overrides.apply(&mut overrides).map_err(|e| e.with_help(format!("release `{}`", release.name)))?;
        deep_merge(&mut values, overrides);
    }
    Ok(Value::Object(values))
}

/// The release's own `secrets` files, decrypted (see `action::render::prepare`), in order: a file
/// there that SOPS did not encrypt is an error, since its values would be taken for secrets.
fn release_secrets(project: &Project, release: &Release, secrets: &Secrets) -> Result<Vec<Map<String, Value>>> {
    let mut layers = Vec::new();
    for file in &release.secrets {
        match secrets.values_files.get(&file.path) {
            Some(decrypted) => layers.push(decrypted.clone()),
            None if project.source.read_named(&file.path, &file.at, "secrets file")?.is_none() => {
                return Err(project.source.missing(&file.path, &file.at, "secrets file"));
            }
            None => {
                return Err(Error::at(
                    file.at.clone(),
                    format!(
                        "release `{}`: {} is listed in `secrets` but SOPS did not encrypt it",
                        release.name,
                        file.path.display()
                    ),
                )
                .with_help(format!(
                    "encrypt it with `weaver secrets encrypt {}`, or list it in `valuesFiles`",
                    file.path.display()
                )));
            }
        }
    }
    Ok(layers)
}

/// Files of values (a release's `valuesFiles` or `substituteFrom`, `what` says which), in
/// order, each read with `parse` (its YAML dialect): decrypted beforehand when SOPS encrypted
/// it, or rendered first when it is a template (`*.gotmpl`, see [`gotmpl`]) and `template`
/// gives the environment and release it is rendered for.
fn read_files(
    project: &Project,
    files: &[weaver_project::environment::PathRef],
    what: &str,
    template: Option<(&Environment, &Release)>,
    secrets: &Secrets,
    parse: impl Fn(&Path, &str) -> Result<Option<Value>>,
) -> Result<Vec<Map<String, Value>>> {
    let mut layers = Vec::new();
    for file in files {
        if let Some(decrypted) = secrets.values_files.get(&file.path) {
            layers.push(decrypted.clone());
            continue;
        }
        let Some(bytes) = project.source.read_named(&file.path, &file.at, what)? else {
            return Err(project.source.missing(&file.path, &file.at, what));
        };
        let mut text = weaver_project::source::utf8(&file.path, bytes)?;
        let templated = template.filter(|_| gotmpl::is_template(&file.path));
        if let Some((env, release)) = templated {
            text = gotmpl::render(&project.source, &file.path, &text, (env, release), secrets.own_environment)?;
        }
        let parsed = parse(&file.path, &text).map_err(|e| match templated {
            Some(_) => e.with_help("the line is that of the template's output, not of the template"),
            None => e,
        })?;
        layers.push(weaver_project::values::layer(file, what, parsed)?);
    }
    Ok(layers)
}

/// The Helm charts the releases name, and the capabilities their templates see. A chart is
/// loaded (read, then parsed) by the first of its releases to render and dropped after the
/// last: a run of hundreds of charts holds only those being rendered, not every chart's files.
struct HelmCharts {
    charts: BTreeMap<String, ChartSlot>,
    /// charts.lock, read when a chart needs it: a repository without remote charts renders
    /// whatever its lock holds.
    lock: std::sync::OnceLock<Result<weaver_source::charts::Lock>>,
    capabilities: Arc<weaver_helm::Capabilities>,
}

/// A chart of [`HelmCharts`]: loaded while some of its releases are still to render.
struct ChartSlot {
    loaded: std::sync::Mutex<Option<Arc<weaver_helm::HelmChart>>>,
    pending: std::sync::atomic::AtomicUsize,
}

impl HelmCharts {
    fn new(
        env: &Environment,
        releases: &[&Release],
        server: Option<Arc<weaver_helm::Capabilities>>,
    ) -> Result<HelmCharts> {
        let mut charts: BTreeMap<String, ChartSlot> = BTreeMap::new();
        for release in releases {
            let slot = charts.entry(release.chart.clone()).or_insert_with(|| ChartSlot {
                loaded: std::sync::Mutex::new(None),
                pending: std::sync::atomic::AtomicUsize::new(0),
            });
            *slot.pending.get_mut() += 1;
        }
        let capabilities = match server {
            Some(server) => server,
            None => {
                let kube_version = env.kube_version.as_deref().unwrap_or(weaver_helm::DEFAULT_KUBE_VERSION);
                let capabilities =
                    weaver_helm::Capabilities::offline(kube_version, &env.api_versions).ok_or_else(|| {
                        Error::new(format!(
                            "environment `{}`: `kubeVersion: {kube_version}` is not a Kubernetes version",
                            env.name
                        ))
                    })?;
                Arc::new(capabilities)
            }
        };
        Ok(HelmCharts { charts, lock: std::sync::OnceLock::new(), capabilities })
    }

    /// Every remote chart of `releases` is pinned in charts.lock: one error naming each that is
    /// not, where its release names it, before anything renders.
    fn check_pinned(&self, project: &Project, releases: &[&Release]) -> Result<()> {
        let remote: Vec<(&Release, &weaver_project::chart::RemoteChart)> =
            releases.iter().filter_map(|r| Some((*r, r.remote.as_ref()?))).collect();
        if remote.is_empty() {
            return Ok(());
        }
        let lock = self.lock.get_or_init(|| weaver_source::charts::Lock::load(project.source.as_ref())).as_ref();
        let lock = lock.map_err(Error::clone)?;
        let missing: Vec<&(&Release, &weaver_project::chart::RemoteChart)> =
            remote.iter().filter(|(_, chart)| lock.find(chart).is_none()).collect();
        let what = |(release, chart): &(&Release, &weaver_project::chart::RemoteChart)| {
            format!("chart {} of release `{}`", chart.describe(), release.name)
        };
        let file = weaver_source::charts::LOCK_FILE;
        match missing.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::at(one.0.chart_at.clone(), format!("{} is not in {file}", what(one)))),
            many => {
                let listed: Vec<String> = many.iter().map(|m| format!("{}: {}", m.0.chart_at, what(m))).collect();
                Err(Error::new(format!("{} remote charts are not in {file}:\n  {}", many.len(), listed.join("\n  "))))
            }
        }
        .map_err(|err| err.with_help("run `weaver charts lock` to resolve them and pin them, then commit charts.lock"))
    }

    fn is_helm_chart(&self, chart: &str) -> bool {
        self.charts.contains_key(chart)
    }

    /// The chart of `release` (a release of a Helm chart), loaded if no other release holds it.
    /// A chart that fails to load fails each of its releases, each error naming its own.
    fn get(
        &self,
        project: &Project,
        env: &Environment,
        release: &Release,
        archives: &weaver_source::charts::Archives,
    ) -> Result<Arc<weaver_helm::HelmChart>> {
        let slot = &self.charts[&release.chart];
        // Held while loading: the chart's other releases wait for it rather than load it again.
        let mut loaded = slot.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(chart) = &*loaded {
            return Ok(Arc::clone(chart));
        }
        // Remote charts, and subcharts pinned in place of vendored ones, come from the cache as
        // charts.lock pins them; never fetched here.
        let user = format!("release `{}`", release.name);
        let cached = |chart: &weaver_project::chart::RemoteChart| {
            let lock = self
                .lock
                .get_or_init(|| weaver_source::charts::Lock::load(project.source.as_ref()))
                .as_ref()
                .map_err(Error::clone)?;
            archives.archive(lock, &user, chart)
        };
        let pull = |dependency: &weaver_project::chart::RemoteChart| cached(dependency).map(Some);
        let subcharts = weaver_helm::Unvendored { repositories: &env.repositories, pull: &pull };
        let chart = Arc::new(match &release.remote {
            Some(chart) => {
                let (data, origin) = cached(chart)?;
                weaver_helm::load_archive(&data, &origin, &release.chart_at, subcharts)?
            }
            None => weaver_helm::load(project.source.as_ref(), &release.chart, &release.chart_at, subcharts)?,
        });
        *loaded = Some(Arc::clone(&chart));
        Ok(chart)
    }

    /// One release of `chart` is rendered: after the last, the chart goes.
    fn rendered(&self, chart: &str) {
        let slot = &self.charts[chart];
        if slot.pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            slot.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        }
    }
}

/// A release of a Helm chart: the user's values are `valuesFiles` (read as helm reads `-f`
/// files) < the release's `values` < the decrypted secrets under the release's name, merged as
/// helm merges `-f` and `--set` layers, and then the command line's overrides, applied to them
/// as helm applies `--set` to its `-f` files; the chart's own defaults go under them in helm.
fn render_helm(
    project: &Project,
    env: &Environment,
    release: &Release,
    chart: &weaver_helm::HelmChart,
    capabilities: &Arc<weaver_helm::Capabilities>,
    live: &Arc<weaver_helm::lookup::Live>,
    secrets: &Secrets,
) -> Result<Vec<Manifest>> {
    let parse = |path: &Path, text: &str| {
        weaver_helm::chart::read_values(path, text.as_bytes()).map(|map| Some(Value::Object(map)))
    };
    let mut values = Map::new();
    for layer in read_files(project, &release.values_files, "values file", Some((env, release)), secrets, parse)? {
        merge_overrides(&mut values, layer);
    }
    merge_overrides(&mut values, release.values.clone());
    if let Some(Value::Object(own)) = secrets.values.get(&release.name) {
        merge_overrides(&mut values, own.clone());
    }
    for layer in release_secrets(project, release, secrets)? {
        merge_overrides(&mut values, layer);
    }
    secrets.overrides.apply(&mut values).map_err(|e| e.with_help(format!("release `{}`", release.name)))?;
    let input = weaver_helm::ReleaseInput {
        name: &release.name,
        namespace: &release.namespace,
        values,
        capabilities: capabilities.clone(),
        live: live.clone(),
        output: weaver_helm::Output::RELEASE,
    };
    let documents = weaver_helm::render(chart, &input).map_err(|e| match e.help {
        None => e.with_help(format!("release `{}`", release.name)),
        Some(_) => e,
    })?;
    let mut manifests = Vec::new();
    for document in documents {
        if let Some(problem) = manifest::object_problem(&document.object) {
            return Err(Error::at(
                Location::file(&document.source),
                format!("document {} of the rendered output {problem}", document.document),
            )
            .with_help(format!("release `{}`; every YAML document must be a Kubernetes object", release.name)));
        }
        manifests.push(Manifest {
            release: release.name.clone(),
            source: document.source,
            document: document.document,
            object: document.object,
            patched_by: Vec::new(),
        });
    }
    Ok(manifests)
}

/// The objects in `crds/` of each chart the `deployed` releases use, parsed once (errors name
/// the first release using the chart).
fn chart_crds<'a>(
    charts: &'a BTreeMap<String, Arc<Chart>>,
    deployed: &[&Release],
) -> Result<BTreeMap<&'a str, Vec<Manifest>>> {
    // The first release of each chart (one pass: an environment may hold thousands).
    let mut first_release: BTreeMap<&str, &Release> = BTreeMap::new();
    for release in deployed {
        first_release.entry(release.chart.as_str()).or_insert(release);
    }
    let mut crds = BTreeMap::new();
    for (name, chart) in charts {
        let Some(release) = first_release.get(name.as_str()) else { continue };
        let mut objects = Vec::new();
        for crd in &chart.crds {
            parse_objects(&crd.path, &crd.source, release, "file", &mut objects)?;
        }
        crds.insert(name.as_str(), objects);
    }
    Ok(crds)
}

/// A release's objects: its chart's CRDs (`crds`), then its templates rendered.
fn render_chart(
    engine: &Engine,
    chart: &Chart,
    crds: &[Manifest],
    release: &Release,
    context: &minijinja::Value,
) -> Result<Vec<Manifest>> {
    let mut manifests: Vec<Manifest> =
        crds.iter().map(|crd| Manifest { release: release.name.clone(), ..crd.clone() }).collect();
    for template in chart.templates.iter().filter(|t| !t.is_partial()) {
        let text = engine.render(&template.path, context)?;
        parse_objects(&template.path, &text, release, "rendered output", &mut manifests)?;
    }
    Ok(manifests)
}

/// Parses a stream of objects; `what` says whether line numbers refer to the file itself or to
/// the template's rendered output.
fn parse_objects(path: &Path, text: &str, release: &Release, what: &str, out: &mut Vec<Manifest>) -> Result<()> {
    let documents = weaver_yaml::documents(path, text).map_err(|mut e| {
        e.message = format!(
            "the {what} is not valid YAML{}: {}",
            e.location.as_ref().and_then(|l| l.line).map(|l| format!(" (line {l} of the {what})")).unwrap_or_default(),
            e.message.trim_start_matches("invalid YAML: ")
        );
        e.location = Some(Location::file(path));
        e.with_help(format!("release `{}`", release.name))
    })?;
    for (index, object) in documents.into_iter().enumerate() {
        let problem = manifest::object_problem(&object);
        if let Some(problem) = problem {
            return Err(Error::at(Location::file(path), format!("document {} of the {what} {problem}", index + 1))
                .with_help(format!("release `{}`; every YAML document must be a Kubernetes object", release.name)));
        }
        out.push(Manifest {
            release: release.name.clone(),
            source: path.to_path_buf(),
            document: index + 1,
            object,
            patched_by: Vec::new(),
        });
    }
    Ok(())
}

/// Where the objects of a release came from, and what they are: enough to tell two with one
/// identity apart once their objects are gone.
#[derive(Default)]
struct Origins {
    release: String,
    /// Each object's identity, template and document.
    objects: Vec<(ObjectKey, std::path::PathBuf, usize)>,
}

impl Origins {
    fn of(release: &RenderedRelease) -> Origins {
        let objects = release.manifests.iter().map(|m| (m.key(), m.source.clone(), m.document)).collect();
        Origins { release: release.name.clone(), objects }
    }
}

/// Two objects with one identity in the environment are an error, as kustomize makes them:
/// which one a cluster gets would depend on the order they are applied in.
fn check_unique(releases: &[Origins]) -> Result<()> {
    let objects = releases.iter().map(|r| r.objects.len()).sum();
    let mut seen: HashMap<&ObjectKey, (&str, &std::path::Path, usize)> = HashMap::with_capacity(objects);
    for release in releases {
        for (key, source, document) in &release.objects {
            let (release, source, document) = (release.release.as_str(), source.as_path(), *document);
            match seen.entry(key) {
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert((release, source, document));
                }
                std::collections::hash_map::Entry::Occupied(first) => {
                    let origin = |(release, source, document): (&str, &std::path::Path, usize)| {
                        format!("release `{release}`, {} document {document}", source.display())
                    };
                    return Err(Error::at(
                        Location::file(source),
                        format!(
                            "{key} is rendered twice: by {} and by {}",
                            origin(*first.get()),
                            origin((release, source, document))
                        ),
                    )
                    .with_help("an object must come from one document of one release: rename or remove one of them"));
                }
            }
        }
    }
    Ok(())
}

fn serde_value<T: serde::Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_substitute_from_configmap_or_secret_gives_its_data() {
        let map = |v: serde_json::Value| v.as_object().unwrap().clone();
        let flat = map(json!({"a": "1", "kind": "Secret"}));
        assert_eq!(substitute_from_variables(flat.clone()).unwrap(), flat, "a flat file is its own variables");
        let cm = map(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}));
        assert_eq!(substitute_from_variables(cm).unwrap(), map(json!({"a": "1"})));
        let secret = map(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "b25l", "b": "dHdv"}, "stringData": {"b": "three"},
        }));
        assert_eq!(substitute_from_variables(secret).unwrap(), map(json!({"a": "one", "b": "three"})));
        let bad = map(json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "not base64!"}}));
        assert_eq!(substitute_from_variables(bad).unwrap_err(), "the Secret's `data.a` is not base64");
    }

    #[test]
    fn a_helm_chart_is_loaded_by_its_first_release_and_goes_after_its_last() {
        let repo = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = repo.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
        write("charts/app/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
        write("environments/dev.yaml", "releases:\n  - name: one\n    chart: app\n  - name: two\n    chart: app\n");
        let project = Project::new(Arc::new(weaver_project::source::FsSource::new(repo.path())));
        let env = project.environment("dev").unwrap();
        let releases: Vec<&Release> = env.releases.iter().collect();
        let charts = HelmCharts::new(&env, &releases, None).unwrap();

        let archives = weaver_source::charts::Archives::Machine;
        let first = charts.get(&project, &env, releases[0], &archives).unwrap();
        let again = charts.get(&project, &env, releases[1], &archives).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "loaded once for both releases");
        let held = Arc::downgrade(&first);
        drop((first, again));
        charts.rendered("app");
        assert!(held.upgrade().is_some(), "a release is still to render it");
        charts.rendered("app");
        assert!(held.upgrade().is_none(), "after the last release the chart goes");
    }

    #[test]
    fn copies_of_an_object_digest_alike_whatever_their_release_label_and_key_order() {
        let label = manifest::LABEL_RELEASE;
        let a = json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": [1, "2"]}});
        let b = json!({"metadata": {"labels": {"app": "x", label: "b"}, "name": "n"}, "spec": {"q": [1, "2"], "p": 1}, "kind": "K"});
        assert_eq!(digest_as_made(&a), digest_as_made(&b));
        for other in [
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "y"}}, "spec": {"p": 1, "q": [1, "2"]}}),
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": ["1", "2"]}}),
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1.0, "q": [1, "2"]}}),
            // The label is skipped only among metadata.labels.
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": [1, "2"], label: "a"}}),
        ] {
            assert_ne!(digest_as_made(&a), digest_as_made(&other), "{other}");
        }
    }
}
