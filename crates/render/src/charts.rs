//! Helm charts in a run: each loaded by the first of its releases to render and dropped after
//! the last ([`HelmCharts`]), their CRDs parsed once, and a release of one rendered with its
//! values as helm merges them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{self, Manifest};
use weaver_project::values::merge_overrides;
use weaver_project::{Chart, Environment, Project, Release};

use super::values::release_secrets;
use super::{parse_objects, read_files};
use crate::engine::Engine;
use crate::release_render::ReleaseRender;

/// The Helm charts the releases name, and the capabilities their templates see. A chart is
/// loaded (read, then parsed) by the first of its releases to render and dropped after the
/// last: a run of hundreds of charts holds only those being rendered, not every chart's files.
pub(super) struct HelmCharts {
    charts: BTreeMap<String, ChartSlot>,
    /// charts.lock, read when a chart needs it: a repository without remote charts renders
    /// whatever its lock holds.
    lock: std::sync::OnceLock<Result<weaver_source::charts::Lock>>,
    pub(super) capabilities: Arc<weaver_helm::Capabilities>,
}

/// A chart of [`HelmCharts`]: loaded while some of its releases are still to render.
pub(super) struct ChartSlot {
    loaded: std::sync::Mutex<Option<Arc<weaver_helm::HelmChart>>>,
    pending: std::sync::atomic::AtomicUsize,
}

impl HelmCharts {
    pub(super) fn new(
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
    pub(super) fn check_pinned(&self, project: &Project, releases: &[&Release]) -> Result<()> {
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

    pub(super) fn is_helm_chart(&self, chart: &str) -> bool {
        self.charts.contains_key(chart)
    }

    /// The chart of `release` (a release of a Helm chart), loaded if no other release holds it.
    /// A chart that fails to load fails each of its releases, each error naming its own.
    pub(super) fn get(
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
    pub(super) fn rendered(&self, chart: &str) {
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
pub(super) fn helm_input<'r>(run: &'r super::Run, release: &'r Release) -> Result<weaver_helm::ReleaseInput<'r>> {
    let (project, env, secrets, workers) = (run.project, run.env, run.secrets, run.engine.workers());
    let parse = |path: &Path, text: &str| {
        weaver_helm::chart::read_values(path, text.as_bytes()).map(|map| Some(Value::Object(map)))
    };
    let mut values = Map::new();
    let template = Some((env, release, workers));
    for layer in read_files(project, &release.values_files, "values file", template, secrets, parse)? {
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
    Ok(weaver_helm::ReleaseInput {
        name: &release.name,
        namespace: &release.namespace,
        values,
        capabilities: run.helm.capabilities.clone(),
        live: run.cluster.live.clone(),
        output: weaver_helm::Output::RELEASE,
        limits: secrets.limits.clone(),
    })
}

/// Releases of Helm charts rendered, each its objects or its error: a batch a round trip when
/// workers render them.
pub(super) fn render_helm(
    workers: Option<&crate::isolated::Workers>,
    releases: &[(&Release, Arc<weaver_helm::HelmChart>, weaver_helm::ReleaseInput<'_>)],
) -> Vec<Result<Vec<Manifest>>> {
    let documents: Vec<Result<_>> = match workers {
        Some(workers) => {
            let inputs: Vec<_> = releases.iter().map(|(_, chart, input)| (chart.as_ref(), input)).collect();
            let executed = workers.render_helm_releases(&inputs);
            let documents = releases
                .iter()
                .zip(executed)
                .map(|((_, chart, input), executed)| weaver_helm::engine::documents(chart, executed?, input.output));
            documents.collect()
        }
        None => releases.iter().map(|(_, chart, input)| weaver_helm::render(chart, input)).collect(),
    };
    releases.iter().zip(documents).map(|((release, _, _), documents)| helm_manifests(release, documents)).collect()
}

/// A Helm release's rendered documents as its objects, each a Kubernetes object.
fn helm_manifests(release: &Release, documents: Result<Vec<weaver_helm::RenderedDocument>>) -> Result<Vec<Manifest>> {
    let documents = documents.map_err(|e| match e.help {
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
pub(super) fn chart_crds<'a>(
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

/// A release of a weaver chart, ready to render: its chart, the chart's CRDs, its own part of
/// the context and the chart's shared part.
pub(super) struct ChartRelease<'a> {
    pub(super) chart: &'a Chart,
    pub(super) crds: &'a [Manifest],
    pub(super) release: &'a Release,
    pub(super) context: minijinja::Value,
    pub(super) shared: (u64, &'a minijinja::Value),
}

/// Each release's objects: its chart's CRDs, then its templates rendered; the releases
/// rendered together ([`Engine::render_releases`]), each its own result.
pub(super) fn render_charts(engine: &Engine, releases: &[ChartRelease<'_>]) -> Vec<Result<Vec<Manifest>>> {
    let templates: Vec<Vec<&Path>> = releases
        .iter()
        .map(|r| r.chart.templates.iter().filter(|t| !t.is_partial()).map(|t| t.path.as_path()).collect())
        .collect();
    let renders: Vec<ReleaseRender> = releases
        .iter()
        .zip(&templates)
        .map(|(r, templates)| ReleaseRender {
            release: &r.release.name,
            templates,
            context: &r.context,
            shared: r.shared,
        })
        .collect();
    let mut manifests: Vec<Vec<Manifest>> = releases
        .iter()
        .map(|r| r.crds.iter().map(|crd| Manifest { release: r.release.name.clone(), ..crd.clone() }).collect())
        .collect();
    let results = engine.render_releases(&renders, &mut |at, path, text| {
        parse_objects(path, &text, releases[at].release, "rendered output", &mut manifests[at])
    });
    results.into_iter().zip(manifests).map(|(result, manifests)| result.map(|()| manifests)).collect()
}
