//! What a change means for deployment: the (environment, release) pairs in which two versions
//! of the repository differ, and the changed paths weaver cannot attribute to any.
//!
//! A changed path affects, on each side where it exists:
//! - `charts/<chart>/…` (a Helm chart's vendored subcharts included), or a packaged Helm chart
//!   (`.tgz`) a release names: every release using that chart, in every environment;
//! - an environment file (the environment's own or one it extends, directly or transitively):
//!   every release of the environment when environment-wide settings differ (namespace,
//!   values, secrets, cluster, identityFile, abstract), else the releases whose effective
//!   definition differs, added and removed ones included; a comment-only edit affects none;
//! - a file a kustomization reads (its kustomization file, resources, patches, generator inputs,
//!   through every base and component, at any depth): every release with `kustomize:` naming
//!   a kustomization that includes it;
//! - `charts.lock`: the releases of remote charts whose pinned entry differs, or whose archive
//!   declares (entry's `requiredBy`) a subchart whose pinned entry differs, and of Helm charts
//!   declaring a subchart (not vendored) whose pinned entry differs; an entry that differs and
//!   that neither a remote release names nor `requiredBy` explains (a lock from before
//!   `requiredBy`) counts for every remote release (its archive may declare it);
//! - a values file: the releases listing it in `valuesFiles` (an environment's: every release
//!   of the environment); a file of variables: the
//!   kustomization releases listing it in `substituteFrom`;
//! - a secrets file: every release of the environments listing it in `secrets`;
//! - `.sops.yaml`, `weaver.yaml`, an `identityFile`, or a chart no release uses: nothing to
//!   deploy;
//! - a path `weaver.yaml`'s `ignorePaths` (in head) matches: nothing at all, as if unchanged.
//!
//! Any other path is unattributed. Abstract environments are never deployed, so their releases
//! only appear through the environments extending them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weaver_core::error::{Error, Result};
use weaver_git::{ChangedPath, GitRepo, Revision};
use weaver_project::chart::{CHARTS_DIR, RemoteChart, chart_path, is_archive, is_path};
use weaver_project::environment::{ENVIRONMENTS_DIR, environment_path};
use weaver_project::settings::{SETTINGS_FILE, Settings};
use weaver_project::source::PathRef;
use weaver_project::source::lexical;
use weaver_project::{Environment, FsSource, Project, Release};
use weaver_source::charts::{ChartRef, LOCK_FILE, Lock, LockedChart};

/// Serialized as [`ReleaseStatus::as_str`] says (`weaver changed -o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    /// In both versions.
    Changed,
    /// Only in the head version.
    Added,
    /// Only in the base version: nothing to render, everything to prune.
    Removed,
}

impl ReleaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Changed => "changed",
            ReleaseStatus::Added => "added",
            ReleaseStatus::Removed => "removed",
        }
    }
}

/// One release of one environment that the change affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedRelease {
    pub environment: String,
    pub release: String,
    pub status: ReleaseStatus,
    /// The changed paths that affect it, sorted.
    pub paths: Vec<PathBuf>,
}

/// Everything a change affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// Sorted by environment, then release.
    pub releases: Vec<AffectedRelease>,
    /// Changed paths no rule attributes, sorted: a pipeline may choose to deploy everything.
    pub unattributed: Vec<PathBuf>,
}

impl ChangeSet {
    /// The environments of the affected releases, sorted, each once.
    pub fn environments(&self) -> Vec<&str> {
        let mut environments: Vec<&str> = self.releases.iter().map(|r| r.environment.as_str()).collect();
        environments.dedup();
        environments
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Base,
    Head,
}

/// Whether `changed` exists on `side`.
fn exists_in(changed: &ChangedPath, side: Side) -> bool {
    match side {
        Side::Base => changed.in_base,
        Side::Head => changed.in_head,
    }
}

/// Two versions of the repository and the paths in which they differ.
pub struct Comparison {
    pub base: Revision,
    /// `None`: the working tree, uncommitted and untracked files included.
    pub head: Option<Revision>,
    /// The commit the working tree is on, when `head` is the working tree.
    pub working_tree_commit: Option<Revision>,
    base_project: Project,
    head_project: Project,
    paths: Vec<ChangedPath>,
}

impl Comparison {
    /// Compares `base` with `head`, or with the working tree when `head` is `None`.
    pub fn new(git: &GitRepo, base: Revision, head: Option<Revision>) -> Result<Comparison> {
        let paths = git.changed_paths(&base, head.as_ref())?;
        let base_project = Project::new(Arc::new(git.tree_source(&base)?));
        let (head_project, working_tree_commit) = match &head {
            Some(head) => (Project::new(Arc::new(git.tree_source(head)?)), None),
            None => (Project::new(Arc::new(FsSource::new(git.root()))), git.head()?),
        };
        let mut comparison = Comparison { base, head, working_tree_commit, base_project, head_project, paths };
        // The head's settings: the version being deployed says what in it is not deployed.
        let settings =
            Settings::load(comparison.head_project.source.as_ref()).map_err(|e| comparison.in_side(Side::Head, e))?;
        comparison.paths.retain(|changed| !settings.ignores(&changed.path));
        Ok(comparison)
    }

    /// The affected releases of environment `name`, sorted by release: exactly what
    /// [`Comparison::change_set`] reports for it.
    pub fn environment(&self, name: &str) -> Result<Vec<AffectedRelease>> {
        let base = self.load(Side::Base, name)?;
        let head = self.load(Side::Head, name)?;
        let locks = self.locks()?;
        Ok(affected_releases(name, base.as_ref(), head.as_ref(), &self.paths, &self.kustomizations(), &locks))
    }

    /// The affected releases of every environment, and the paths no rule attributes.
    pub fn change_set(&self) -> Result<ChangeSet> {
        let base = self.load_all(Side::Base)?;
        let head = self.load_all(Side::Head)?;
        let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
        let kustomizations = self.kustomizations();
        let locks = self.locks()?;
        let releases = names
            .into_iter()
            .flat_map(|name| {
                affected_releases(name, base.get(name), head.get(name), &self.paths, &kustomizations, &locks)
            })
            .collect();
        let referenced = (
            referenced_paths(base.values(), &kustomizations, Side::Base),
            referenced_paths(head.values(), &kustomizations, Side::Head),
        );
        let unattributed = self
            .paths
            .iter()
            .filter(|changed| !is_attributed(changed, &referenced))
            .map(|changed| changed.path.clone())
            .collect();
        Ok(ChangeSet { releases, unattributed })
    }

    /// `charts.lock` on both sides, when the change touches it (else two empty locks: no
    /// remote chart's pin differs).
    fn locks(&self) -> Result<Pins<'_>> {
        let (base, head) = match self.paths.iter().any(|p| p.path == Path::new(LOCK_FILE)) {
            false => Default::default(),
            true => {
                let load = |side| Lock::load(self.project(side).source.as_ref()).map_err(|e| self.in_side(side, e));
                (load(Side::Base)?, load(Side::Head)?)
            }
        };
        Ok(Pins::new(base, head, self.base_project.source.as_ref(), self.head_project.source.as_ref()))
    }

    fn kustomizations(&self) -> Kustomizations<'_> {
        Kustomizations {
            base: self.base_project.source.as_ref(),
            head: self.head_project.source.as_ref(),
            inputs: Default::default(),
        }
    }

    fn project(&self, side: Side) -> &Project {
        match side {
            Side::Base => &self.base_project,
            Side::Head => &self.head_project,
        }
    }

    /// Says which commit a file was read from; the working tree needs no saying.
    fn in_side(&self, side: Side, err: Error) -> Error {
        match (side, &self.head) {
            (Side::Base, _) => err.context(format!("in {}", self.base)),
            (Side::Head, Some(head)) => err.context(format!("in {head}")),
            (Side::Head, None) => err,
        }
    }

    /// The environment as it is on `side`; `None` when it does not exist there.
    fn load(&self, side: Side, name: &str) -> Result<Option<Environment>> {
        let project = self.project(side);
        if !project.source.exists(&environment_path(name)) {
            return Ok(None);
        }
        project.environment(name).map(Some).map_err(|e| self.in_side(side, e))
    }

    fn load_all(&self, side: Side) -> Result<BTreeMap<String, Environment>> {
        let project = self.project(side);
        let dir = Path::new(ENVIRONMENTS_DIR);
        // A version without environments/ (from before the repository used weaver) has none.
        let listing = project.source.list(dir).map_err(|e| self.in_side(side, Error::io("list directory", dir, e)))?;
        if listing.is_none() {
            return Ok(BTreeMap::new());
        }
        let mut environments = BTreeMap::new();
        for name in project.environment_names().map_err(|e| self.in_side(side, e))? {
            let env = project.environment(&name).map_err(|e| self.in_side(side, e))?;
            environments.insert(name, env);
        }
        Ok(environments)
    }
}

/// `charts.lock` on both sides, and the versions of the repository to read Helm charts' declared
/// subcharts from.
struct Pins<'a> {
    base: Lock,
    head: Lock,
    /// The entries pinned differently in base and head, or pinned in one only.
    repinned: Vec<ChartRef>,
    base_source: &'a dyn weaver_project::Source,
    head_source: &'a dyn weaver_project::Source,
}

impl<'a> Pins<'a> {
    fn new(
        base: Lock,
        head: Lock,
        base_source: &'a dyn weaver_project::Source,
        head_source: &'a dyn weaver_project::Source,
    ) -> Pins<'a> {
        fn pin<'l>(lock: &'l Lock, chart: &ChartRef) -> Option<(&'l str, &'l str, &'l str)> {
            lock.charts.iter().find(|entry| entry.is(chart)).map(LockedChart::pin)
        }
        let mut repinned: BTreeSet<ChartRef> =
            base.charts.iter().chain(&head.charts).map(LockedChart::chart_ref).collect();
        repinned.retain(|chart| pin(&base, chart) != pin(&head, chart));
        Pins { repinned: repinned.into_iter().collect(), base, head, base_source, head_source }
    }

    fn repinned(&self, chart: &RemoteChart) -> bool {
        self.repinned.iter().any(|entry| entry.is_for(chart))
    }

    /// Whether an entry that `remote`'s archive may declare as a dependency was pinned again:
    /// one whose `requiredBy` (on either side) names `remote`, or, in a lock written before
    /// `requiredBy`, one that no remote release of `env` names. What archives declare is not
    /// read here (the chart cache may lack them), so for the latter every remote release of
    /// `env` counts as changed: a release too many rather than one missing.
    fn dependency_repinned(&self, env: &Environment, remote: &RemoteChart) -> bool {
        let named = |entry: &ChartRef| env.releases.iter().filter_map(|r| r.remote.as_ref()).any(|c| entry.is_for(c));
        self.repinned.iter().any(|repinned| {
            [&self.base, &self.head].into_iter().filter_map(|lock| lock.charts.iter().find(|e| e.is(repinned))).any(
                |entry| match &entry.required_by {
                    Some(parents) => parents.iter().any(|parent| parent.is_for(remote)),
                    None => !named(repinned),
                },
            )
        })
    }

    /// Whether a subchart the release's Helm chart (on `side`) declares remotely, without
    /// vendoring it, was pinned again. A chart that does not read is left to the rules for its
    /// own files.
    fn subchart_repinned(&self, side: Side, env: &Environment, release: &Release) -> bool {
        let source = if side == Side::Head { self.head_source } else { self.base_source };
        self.base != self.head
            && weaver_helm::is_helm_chart(source, &release.chart)
            && weaver_helm::read(source, &release.chart, &release.chart_at).is_ok_and(|chart| {
                weaver_helm::unvendored_remote(&chart, &env.repositories).iter().any(|d| self.repinned(d))
            })
    }
}

/// The files one kustomization directory reads.
type InputFiles = Arc<HashSet<PathBuf>>;

/// The files each kustomization reads, on each side, found once per directory.
struct Kustomizations<'a> {
    base: &'a dyn weaver_project::Source,
    head: &'a dyn weaver_project::Source,
    inputs: std::sync::Mutex<HashMap<(bool, PathBuf), InputFiles>>,
}

impl Kustomizations<'_> {
    /// Every file the release's kustomization reads on `side` (none for a chart release).
    fn inputs(&self, side: Side, release: &Release) -> Arc<HashSet<PathBuf>> {
        let Some(dir) = release.kustomize.as_deref().and_then(lexical) else { return Arc::default() };
        let key = (side == Side::Head, dir);
        let mut cache = self.inputs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .entry(key)
            .or_insert_with_key(|(head, dir)| {
                let source = if *head { self.head } else { self.base };
                Arc::new(weaver_kustomize::inputs(source, dir).into_iter().collect())
            })
            .clone()
    }
}

/// The rules of the module documentation, for one environment as it is in base and head.
fn affected_releases(
    name: &str,
    base: Option<&Environment>,
    head: Option<&Environment>,
    paths: &[ChangedPath],
    kustomizations: &Kustomizations,
    pins: &Pins,
) -> Vec<AffectedRelease> {
    let base = base.filter(|env| !env.is_abstract);
    let head = head.filter(|env| !env.is_abstract);
    let (base_releases, head_releases) = (releases_by_name(base), releases_by_name(head));

    let mut reasons: BTreeMap<&str, BTreeSet<&Path>> = BTreeMap::new();
    let mut environment_files: BTreeSet<&Path> = BTreeSet::new();
    for (side, env) in [(Side::Base, base), (Side::Head, head)] {
        let Some(env) = env else { continue };
        let touched = |matches: &dyn Fn(&Path) -> bool| -> Vec<&Path> {
            paths.iter().filter(|p| exists_in(p, side) && matches(&p.path)).map(|p| p.path.as_path()).collect()
        };
        environment_files.extend(touched(&|path| env.files.iter().any(|file| file == path)));
        // What `weaver promote` pinned is part of the environment's definition.
        let promoted = weaver_project::promotion::promoted_path(&env.name);
        environment_files.extend(touched(&|path| env.promotion.is_some() && path == promoted));
        // The environment's secrets and values files reach every release of it.
        let environment_wide = touched(&|path| refers_to(&env.secrets, path) || refers_to(&env.values_files, path));
        for release in &env.releases {
            let own = match release.kustomize {
                Some(_) => {
                    let inputs = kustomizations.inputs(side, release);
                    touched(&|path| is_read(&inputs, path) || refers_to(&release.substitute_from, path))
                }
                None => match &release.remote {
                    Some(remote) => {
                        let repinned = pins.repinned(remote) || pins.dependency_repinned(env, remote);
                        touched(&|path| {
                            (repinned && path == Path::new(LOCK_FILE))
                                || refers_to(&release.values_files, path)
                                || refers_to(&release.secrets, path)
                        })
                    }
                    None => {
                        let chart = chart_path(&release.chart);
                        let repinned = pins.subchart_repinned(side, env, release);
                        touched(&|path| {
                            path.starts_with(&chart)
                                || (repinned && path == Path::new(LOCK_FILE))
                                || refers_to(&release.values_files, path)
                                || refers_to(&release.secrets, path)
                        })
                    }
                },
            };
            reasons.entry(&release.name).or_default().extend(own.into_iter().chain(environment_wide.iter().copied()));
        }
    }

    if !environment_files.is_empty() {
        let settings_same = matches!((base, head), (Some(b), Some(h)) if b.same_settings(h));
        let differs = |release: &Release, other: &HashMap<&str, &Release>| {
            !settings_same || !other.get(release.name.as_str()).is_some_and(|o| o.same_definition(release))
        };
        let redefined = base_releases
            .values()
            .filter(|r| differs(r, &head_releases))
            .chain(head_releases.values().filter(|r| differs(r, &base_releases)));
        for release in redefined {
            reasons.entry(&release.name).or_default().extend(&environment_files);
        }
    }

    reasons
        .into_iter()
        .filter(|(_, paths)| !paths.is_empty())
        .map(|(release, paths)| AffectedRelease {
            environment: name.to_string(),
            release: release.to_string(),
            status: match (base_releases.contains_key(release), head_releases.contains_key(release)) {
                (true, true) => ReleaseStatus::Changed,
                (false, _) => ReleaseStatus::Added,
                (true, false) => ReleaseStatus::Removed,
            },
            paths: paths.into_iter().map(Path::to_path_buf).collect(),
        })
        .collect()
}

fn releases_by_name(env: Option<&Environment>) -> HashMap<&str, &Release> {
    env.iter().flat_map(|e| &e.releases).map(|r| (r.name.as_str(), r)).collect()
}

/// Whether one of the paths written in an environment file is `path`.
fn refers_to(refs: &[PathRef], path: &Path) -> bool {
    refs.iter().any(|r| lexical(&r.path).is_some_and(|r| r == path))
}

/// Every values, secrets and identity file and chart path the environments name, and every
/// file their kustomizations read.
fn referenced_paths<'a>(
    environments: impl Iterator<Item = &'a Environment>,
    kustomizations: &Kustomizations,
    side: Side,
) -> HashSet<PathBuf> {
    environments
        .flat_map(|env| {
            let kustomized: Vec<PathBuf> = env
                .releases
                .iter()
                .flat_map(|r| kustomizations.inputs(side, r).iter().cloned().collect::<Vec<_>>())
                .collect();
            let values_files =
                env.releases.iter().flat_map(|r| r.values_files.iter().chain(&r.secrets).chain(&r.substitute_from));
            // Charts named by their paths, which may lie outside charts/.
            let charts = env
                .releases
                .iter()
                .filter(|r| r.kustomize.is_none() && (is_archive(&r.chart) || is_path(&r.chart)))
                .filter_map(|r| lexical(&chart_path(&r.chart)));
            // Paths leading out of the repository (an absolute identityFile) are never changed paths.
            env.secrets
                .iter()
                .chain(&env.values_files)
                .chain(&env.identity_file)
                .chain(values_files)
                .filter_map(|r| lexical(&r.path))
                .chain(charts)
                .chain(kustomized)
        })
        .collect()
}

/// Whether `path` is one of `inputs`, or inside a directory among them (a Helm chart that a
/// kustomization's `helmCharts` inflates).
fn is_read(inputs: &HashSet<PathBuf>, path: &Path) -> bool {
    path.ancestors().any(|p| inputs.contains(p))
}

fn is_attributed(changed: &ChangedPath, (base, head): &(HashSet<PathBuf>, HashSet<PathBuf>)) -> bool {
    let path = changed.path.as_path();
    let chart_file = path.starts_with(CHARTS_DIR) && path.components().count() > 2;
    let environment_file = path.parent() == Some(Path::new(ENVIRONMENTS_DIR))
        && path.extension().is_some_and(|extension| extension == "yaml");
    let sops_rules = path.file_name().is_some_and(|name| name == ".sops.yaml");
    let settings = path == Path::new(SETTINGS_FILE) || path == Path::new(LOCK_FILE);
    let referenced = (changed.in_base && is_read(base, path)) || (changed.in_head && is_read(head, path));
    chart_file || environment_file || sops_rules || settings || referenced
}
