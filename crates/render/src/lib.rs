//! Rendering: environment + charts + decrypted secrets → ordered, labelled objects.
//! A plain function of its inputs: no cluster, no printing.

mod ahead;
pub mod capabilities;
mod charts;
pub mod engine;
pub mod filters;
pub mod gotmpl;
pub mod isolated;
mod kustomizations;
pub mod overrides;
pub mod release_render;
pub mod schema;
pub mod transforms;
mod values;
pub mod worker;

use ahead::Place;
pub use ahead::{Finished, chunk_releases, render_in_chunks};
use charts::{ChartRelease, HelmCharts, chart_crds, helm_input, render_charts, render_helm};
use engine::Engine;
use kustomizations::render_kustomization;
pub use kustomizations::substitute_from_variables;
use schema::ValuesSchema;
use values::{read_files, release_values};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{self, Manifest, ObjectKey};
use weaver_project::chart::ChartMeta;
use weaver_project::{Chart, Environment, Project, Release, RenderedRelease};

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
    /// What its releases' contexts share in a run, and its number ([`ReleaseRender::shared`]).
    shared: (u64, minijinja::Value),
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
    /// How long and how large the render may be: none for the CLI unless its flags say, the
    /// controller's for a tenant's repository.
    pub limits: weaver_core::limits::RenderLimits,
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
    let engine = Engine::new(charts_used.values().copied(), &secrets.limits)?;
    let env_value = minijinja::context! { name => &env.name, values => serde_value(&env.values) };
    let secrets_value = serde_value(&secrets.values);
    let chart_contexts: BTreeMap<&str, ChartContext> = charts_used
        .iter()
        .map(|(name, chart)| {
            let schema = chart.schema.as_ref().map(|(path, s)| ValuesSchema::compile(path, s)).transpose()?;
            let meta = minijinja::context! { name => &chart.name, version => &chart.version, description => &chart.description, appVersion => &chart.app_version };
            let files = minijinja::Value::from_object(filters::ChartFiles { chart: chart.name.clone(), files: chart.files.clone() });
            let shared = minijinja::context! {
                env => env_value.clone(),
                secrets => secrets_value.clone(),
                chart => meta,
                files => files,
                capabilities => capabilities.clone(),
            };
            Ok((*name, ChartContext { chart: (*chart).clone(), schema, shared: (release_render::shared_id(), shared) }))
        })
        .collect::<Result<_>>()?;
    let run = Run { project, env, secrets, cluster, helm, engine, chart_contexts, crds };
    body(&run)
}

impl Run<'_> {
    /// Renders `releases` (templates only: no scopes, patches or labels yet), each its own
    /// result; those of weaver charts together, a batch a round trip when a worker renders them.
    fn render(&self, releases: &[&Release]) -> Vec<Result<RenderedRelease>> {
        let mut results: Vec<Option<Result<RenderedRelease>>> = Vec::with_capacity(releases.len());
        let (mut places, mut charted) = (Vec::new(), Vec::new());
        let (mut helm_places, mut helm) = (Vec::new(), Vec::new());
        for (at, release) in releases.iter().enumerate() {
            results.push(match self.begin(release) {
                Ok(Begun::Rendered(rendered)) => Some(Ok(*rendered)),
                Ok(Begun::Chart(chart_release)) => {
                    places.push(at);
                    charted.push(chart_release);
                    None
                }
                Ok(Begun::Helm(chart, input)) => match *input {
                    Ok(input) => {
                        helm_places.push(at);
                        helm.push((*release, chart, input));
                        None
                    }
                    Err(error) => Some(self.finish_helm(release, &chart, Err(error))),
                },
                Err(error) => Some(Err(error)),
            });
        }
        for ((at, chart_release), manifests) in
            places.into_iter().zip(&charted).zip(render_charts(&self.engine, &charted))
        {
            let chart = chart_release.chart;
            let chart_meta = ChartMeta {
                name: chart.name.clone(),
                version: chart.version.clone(),
                app_version: chart.app_version.clone(),
            };
            results[at] = Some(
                manifests
                    .map(|manifests| rendered_release(releases[at], true, Some(chart_meta), manifests, Vec::new())),
            );
        }
        let outputs = render_helm(self.engine.workers(), &helm);
        for ((at, (release, chart, _)), output) in helm_places.into_iter().zip(&helm).zip(outputs) {
            results[at] = Some(self.finish_helm(release, chart, output));
        }
        results.into_iter().map(|result| result.expect("every release has a result")).collect()
    }

    /// A release of a Helm chart once `output` is rendered: done with its chart, its objects
    /// kept unless its lookups asked for objects not yet listed (it is rendered again).
    fn finish_helm(
        &self,
        release: &Release,
        chart: &weaver_helm::HelmChart,
        output: Result<Vec<Manifest>>,
    ) -> Result<RenderedRelease> {
        let live = &self.cluster.live;
        self.helm.rendered(&release.chart);
        // Output made without objects its lookups asked for goes: it is made again.
        let manifests = match output {
            _ if live.is_waiting(&release.name) => Vec::new(),
            Err(_) if live.defers_errors_of(&release.name) => Vec::new(),
            output => output?,
        };
        let metadata = &chart.chart.metadata;
        let chart_meta = ChartMeta {
            name: metadata.name.clone(),
            version: metadata.version.clone(),
            app_version: metadata.app_version.clone(),
        };
        Ok(rendered_release(release, true, Some(chart_meta), manifests, chart.warnings.clone()))
    }

    /// Whether `release` renders a chart's templates (a weaver chart's or a Helm chart's), which
    /// render in batches.
    fn renders_a_chart(&self, release: &Release) -> bool {
        release.installed && release.kustomize.is_none()
    }

    /// `release` rendered, but for the templates of a weaver chart: what they are rendered with.
    fn begin<'r>(&'r self, release: &'r Release) -> Result<Begun<'r>> {
        let (project, env, secrets) = (self.project, self.env, self.secrets);
        if !release.installed {
            return Ok(Begun::Rendered(Box::new(rendered_release(release, false, None, Vec::new(), Vec::new()))));
        }
        // Checked before each release: a kustomization's, values' and validation's work sees no
        // template's check, and must not run past the render's time.
        if let Some(why) = secrets.limits.stop_reason() {
            return Err(secrets.limits.stopped(&release.name, why));
        }
        if let Some(dir) = &release.kustomize {
            let manifests = match release.generated_resources.is_empty() {
                true => render_kustomization(project, release, dir, secrets, self.engine.workers())?,
                false => generated_kustomization(project, release)?,
            };
            return Ok(Begun::Rendered(Box::new(rendered_release(release, true, None, manifests, Vec::new()))));
        }
        if self.helm.is_helm_chart(&release.chart) {
            let chart = self.helm.get(project, env, release, &secrets.charts).inspect_err(|_| {
                self.helm.rendered(&release.chart);
            })?;
            let input = helm_input(self, release);
            return Ok(Begun::Helm(chart, Box::new(input)));
        }
        let chart = &self.chart_contexts[release.chart.as_str()];
        let values = release_values(project, env, release, &chart.chart, secrets, self.engine.workers())?;
        if let Some(schema) = &chart.schema {
            schema.validate(&values, &release.name, &release.at, |path| secrets.overrides.flag_setting(path))?;
        }
        let context = minijinja::context! {
            values => serde_value(&values),
            release => minijinja::context! { name => &release.name, namespace => &release.namespace, environment => &env.name, chart => &release.chart },
        };
        Ok(Begun::Chart(ChartRelease {
            chart: &chart.chart,
            crds: &self.crds[release.chart.as_str()],
            release,
            context,
            shared: (chart.shared.0, &chart.shared.1),
        }))
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

/// A release as [`Run::begin`] leaves it: rendered, or a weaver chart's to render with others.
enum Begun<'r> {
    /// Boxed: a rendered release is large.
    Rendered(Box<RenderedRelease>),
    Chart(ChartRelease<'r>),
    /// A Helm chart's release, and what it renders with (or why that could not be made).
    /// Boxed: its values are large.
    Helm(Arc<weaver_helm::HelmChart>, Box<Result<weaver_helm::ReleaseInput<'r>>>),
}

/// A release's render before its scopes, patches and labels: these `manifests`, made of
/// `chart_meta`'s chart.
fn rendered_release(
    release: &Release,
    installed: bool,
    chart_meta: Option<ChartMeta>,
    manifests: Vec<Manifest>,
    warnings: Vec<String>,
) -> RenderedRelease {
    RenderedRelease {
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
    }
}

/// The objects of a kustomization generated for a directory of manifests (see
/// [`Release::generated_resources`]): each file's documents, as written.
fn generated_kustomization(project: &Project, release: &Release) -> Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in &release.generated_resources {
        let source = project.source.as_ref();
        let bytes = source
            .read_named(path, &release.chart_at, "manifest file")?
            .ok_or_else(|| source.missing(path, &release.chart_at, "manifest file"))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::at(Location::file(path), "is not UTF-8 text: not a manifest file"))?;
        parse_objects(path, text, release, "file", &mut manifests)?;
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

pub(crate) fn serde_value<T: serde::Serialize>(value: &T) -> minijinja::Value {
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

    /// A repository of one environment `dev` with release `loop` of chart `app`, whose files are `files`.
    fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = repo.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        repo
    }

    fn render_dev(repo: &tempfile::TempDir, limits: weaver_core::limits::RenderLimits) -> Result<Rendered> {
        let project = Project::new(Arc::new(weaver_project::source::FsSource::new(repo.path())));
        let env = project.environment("dev").unwrap();
        let releases: Vec<&Release> = env.releases.iter().collect();
        let secrets = Secrets { limits, ..Secrets::default() };
        render(&project, &env, &releases, &secrets, &ClusterView::default())
    }

    const ENVIRONMENT: (&str, &str) =
        ("environments/dev.yaml", "namespace: shop\nreleases:\n  - name: loop\n    chart: app\n");
    const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";

    mod limits {
        use std::time::{Duration, Instant};

        use weaver_core::limits::{Bound, RenderLimits};

        use super::*;

        /// 10^10 iterations that print nothing: hours, were they not stopped.
        const NESTED_RANGES: &str = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

        // The loops' tests give the render a second: on a loaded machine, loading the project may
        // take a third of one, and a release whose time is up before it starts names no template.
        #[test]
        fn a_minijinja_loop_is_stopped_at_the_render_timeout_naming_release_and_setting() {
            let template = format!("{NESTED_RANGES}{CONFIGMAP}");
            let repo = repository(&[
                ENVIRONMENT,
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", &template),
            ]);
            let started = Instant::now();
            let limits = RenderLimits::default().with_timeout(Duration::from_secs(1), "--render-timeout");
            let err = render_dev(&repo, limits).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(10), "stopped at the timeout: {:?}", started.elapsed());
            assert_eq!(err.message, "rendering stopped: rendering took longer than its limit of 1s (--render-timeout)");
            assert!(err.help.as_deref().unwrap().starts_with("release `loop`: "), "{err:?}");
            assert!(err.location.unwrap().path.ends_with("charts/app/templates/cm.yaml"));
            // Without limits the same chart renders as before.
            let repo = repository(&[
                ENVIRONMENT,
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", CONFIGMAP),
            ]);
            assert_eq!(render_dev(&repo, RenderLimits::default()).unwrap().manifests().count(), 1);
        }

        #[test]
        fn a_range_renders_the_same_with_and_without_a_deadline() {
            let source = r#"data:
  list: "{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}"
  lengths: "{% for i in range(1, 7, 2) %}{{ loop.length }}{{ loop.revindex }} {% endfor %}{{ range(4) | length }}"
"#;
            let template = format!("{CONFIGMAP}{source}");
            let repo = repository(&[
                ENVIRONMENT,
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", &template),
            ]);
            let data = |limits| {
                let rendered = render_dev(&repo, limits).unwrap();
                rendered.manifests().next().unwrap().object["data"].clone()
            };
            let unbounded = data(RenderLimits::default());
            assert_eq!(unbounded, json!({"list": "0,1,2", "lengths": "33 32 31 4"}));
            let deadline = RenderLimits::default().with_timeout(Duration::from_secs(60), "spec.timeout");
            assert_eq!(data(deadline), unbounded);
        }

        #[test]
        fn a_release_whose_render_time_is_up_does_not_start() {
            // No template: nothing but the check before each release sees the deadline.
            let repo = repository(&[ENVIRONMENT, ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n")]);
            let limits = RenderLimits::default().with_timeout(Duration::ZERO, "spec.timeout");
            let err = render_dev(&repo, limits).unwrap_err();
            assert_eq!(err.message, "rendering stopped: rendering took longer than its limit of 0ms (spec.timeout)");
            assert!(err.help.unwrap().starts_with("release `loop`: "));
            assert!(render_dev(&repo, RenderLimits::default()).is_ok());
        }

        #[test]
        fn a_minijinja_loop_over_values_is_stopped_by_its_step_budget() {
            let template =
                format!("{{% for i in values.l %}}{{% for j in values.l %}}{{% endfor %}}{{% endfor %}}{CONFIGMAP}");
            let list = format!("l: [{}]\n", vec!["0"; 100_000].join(","));
            let repo = repository(&[
                ENVIRONMENT,
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/values.yaml", &list),
                ("charts/app/templates/cm.yaml", &template),
            ]);
            let limits = RenderLimits {
                max_template_steps: Some(Bound::new(1_000_000, "--max-template-steps")),
                ..RenderLimits::default()
            };
            let err = render_dev(&repo, limits).unwrap_err();
            assert_eq!(
                err.message,
                "rendering stopped: charts/app/templates/cm.yaml ran more than 1000000 template instructions \
                 (--max-template-steps)"
            );
            assert!(err.help.unwrap().starts_with("release `loop`: a template loops too long"));
        }

        #[test]
        fn a_go_template_values_file_loop_is_stopped_at_the_timeout() {
            let repo = repository(&[
                (
                    "environments/dev.yaml",
                    "namespace: shop\nreleases:\n  - name: loop\n    chart: app\n    valuesFiles: [v.yaml.gotmpl]\n",
                ),
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", CONFIGMAP),
                ("v.yaml.gotmpl", "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}a: 1\n"),
            ]);
            let started = Instant::now();
            let limits = RenderLimits::default().with_timeout(Duration::from_secs(1), "spec.timeout");
            let err = render_dev(&repo, limits).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(10), "stopped at the timeout: {:?}", started.elapsed());
            assert_eq!(err.message, "rendering stopped: rendering took longer than its limit of 1s (spec.timeout)");
            assert!(err.help.unwrap().contains("release `loop`"));
            assert!(err.location.unwrap().path.ends_with("v.yaml.gotmpl"));
        }

        #[test]
        fn a_go_template_values_file_s_doubling_string_names_the_setting() {
            let doubling = r#"{{ $s := "ab" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}a: {{ $s }}"#;
            let repo = repository(&[
                (
                    "environments/dev.yaml",
                    "namespace: shop\nreleases:\n  - name: loop\n    chart: app\n    valuesFiles: [v.yaml.gotmpl]\n",
                ),
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", CONFIGMAP),
                ("v.yaml.gotmpl", doubling),
            ]);
            let limits = RenderLimits {
                max_rendered_bytes: Some(Bound::new(1 << 20, "--max-rendered-bytes")),
                ..RenderLimits::default()
            };
            let err = render_dev(&repo, limits).unwrap_err();
            assert!(err.message.contains("a string exceeds the limit of 1048576 bytes"), "{err:?}");
            assert_eq!(
                err.help.as_deref(),
                Some("release `loop`: raise --max-rendered-bytes if the output is meant to be that large")
            );
            assert!(err.location.unwrap().path.ends_with("v.yaml.gotmpl"));
        }

        #[test]
        fn a_helm_chart_loop_is_stopped_at_the_timeout_and_its_output_at_the_bound() {
            let looping = "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}";
            let doubling = r#"{{ $s := "ab" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}{{ $s }}"#;
            for (template, limits, message) in [
                (
                    looping,
                    RenderLimits::default().with_timeout(Duration::from_millis(300), "spec.timeout"),
                    "rendering took longer than its limit of 300ms (spec.timeout)",
                ),
                (
                    doubling,
                    RenderLimits {
                        max_rendered_bytes: Some(Bound::new(1 << 20, "--max-rendered-bytes")),
                        ..RenderLimits::default()
                    },
                    "a string exceeds the limit of 1048576 bytes",
                ),
            ] {
                let repo = repository(&[
                    ENVIRONMENT,
                    ("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n"),
                    ("charts/app/templates/cm.yaml", template),
                ]);
                let started = Instant::now();
                let err = render_dev(&repo, limits).unwrap_err();
                assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
                assert!(err.message.contains(message), "{err:?}");
                assert!(err.help.unwrap().starts_with("release `loop`: "));
            }
        }

        /// The working tree, each path read recorded.
        struct Recorded {
            tree: weaver_project::source::FsSource,
            read: std::sync::Mutex<Vec<std::path::PathBuf>>,
        }

        impl weaver_project::source::Source for Recorded {
            fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
                self.read.lock().unwrap().push(path.to_path_buf());
                self.tree.read(path)
            }
            fn size(&self, path: &Path) -> std::io::Result<Option<u64>> {
                self.tree.size(path)
            }
            fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<weaver_project::source::Entry>>> {
                self.tree.list(dir)
            }
            fn resolve(&self, path: &Path) -> std::io::Result<std::path::PathBuf> {
                self.tree.resolve(path)
            }
            fn describe(&self) -> String {
                self.tree.describe()
            }
        }

        #[test]
        fn a_values_file_past_the_bound_is_refused_unread() {
            let repo = repository(&[
                (
                    "environments/dev.yaml",
                    "namespace: shop\nreleases:\n  - name: loop\n    chart: app\n    valuesFiles: [big.yaml]\n",
                ),
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", CONFIGMAP),
            ]);
            // 64 MiB of nothing on disk (sparse). Whether it was allocated cannot be told
            // cheaply: that it was never read can.
            std::fs::File::create(repo.path().join("big.yaml")).unwrap().set_len(64 << 20).unwrap();
            let tree = weaver_project::source::FsSource::new(repo.path());
            let source = Arc::new(Recorded { tree, read: Default::default() });
            let project = Project::new(source.clone());
            let env = project.environment("dev").unwrap();
            let limits =
                RenderLimits { max_values_bytes: Some(Bound::new(1000, "--max-values-bytes")), ..Default::default() };
            let secrets = Secrets { limits, ..Secrets::default() };
            let err =
                render(&project, &env, &env.releases.iter().collect::<Vec<_>>(), &secrets, &ClusterView::default())
                    .unwrap_err();
            assert_eq!(
                err.message,
                "values file big.yaml holds 67108864 bytes, over the limit of 1000 (--max-values-bytes)"
            );
            assert!(!source.read.lock().unwrap().iter().any(|p| p.ends_with("big.yaml")), "big.yaml was read");
        }

        #[test]
        fn rendered_bytes_and_values_files_are_bounded() {
            let repo = repository(&[
                (
                    "environments/dev.yaml",
                    "namespace: shop\nreleases:\n  - name: loop\n    chart: app\n    valuesFiles: [big.yaml]\n",
                ),
                ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
                ("charts/app/templates/cm.yaml", "{{ values.blob }}\n"),
                ("big.yaml", &format!("blob: \"{}\"\n", "#".repeat(4000))),
            ]);
            let bound = |bytes| Some(Bound::new(bytes, "--max-values-bytes"));
            let err = render_dev(&repo, RenderLimits { max_values_bytes: bound(1000), ..RenderLimits::default() })
                .unwrap_err();
            assert_eq!(
                err.message,
                "values file big.yaml holds 4009 bytes, over the limit of 1000 (--max-values-bytes)"
            );
            assert!(err.location.unwrap().path.ends_with("environments/dev.yaml"), "where the file is named");
            let limits = RenderLimits {
                max_values_bytes: bound(10_000),
                max_rendered_bytes: Some(Bound::new(1000, "--max-rendered-bytes")),
                ..RenderLimits::default()
            };
            let err = render_dev(&repo, limits).unwrap_err();
            assert_eq!(
                err.message,
                "the output of charts/app/templates/cm.yaml exceeds the limit of 1000 bytes rendered per release \
                 (--max-rendered-bytes)"
            );
            assert!(err.help.unwrap().starts_with("release `loop`: raise --max-rendered-bytes"));
        }
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
}
