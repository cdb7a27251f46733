//! Helm charts, rendered natively with helm 3.17's semantics: a release naming a Helm chart gets
//! the objects `helm template NAME CHART -n NS --kube-version V --include-crds --skip-tests`
//! prints (with a connected cluster's version and API versions instead, when the caller has
//! them: see [`Capabilities::from_server`]). Pure: files in (through `Source`, so `--rev` and the repository's confinement apply),
//! objects out.
//!
//! - [`chart`] (with `archive`), [`ignore`]: loading a chart directory or `.tgz`, and its subcharts;
//! - [`values`]: dependencies (conditions, tags, aliases, import-values) and value coalescing;
//! - [`engine`], [`funcs`], [`builtins`]: templates, helm's functions and built-in objects;
//! - [`lookup`]: what `lookup` finds, from a snapshot of the cluster or a file;
//! - [`manifests`]: splitting, hooks and ordering of the output;
//! - [`strvals`]: the `--set` syntax of helm's command line;
//! - [`weaver_yaml`], [`toml`]: the formats helm's libraries implement (version ranges are sprig's
//!   Masterminds semver, `sprig::semver`, which helm uses too).

mod archive;
pub mod builtins;
pub mod chart;
pub mod engine;
pub mod funcs;
pub mod hooks;
pub mod ignore;
pub mod lookup;
pub mod manifests;
pub mod strvals;
pub mod toml;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

pub use builtins::{Capabilities, CapabilitiesOf, DEFAULT_KUBE_VERSION};
use chart::{Chart, File};

use weaver_core::error::{Error, Location};
use weaver_project::chart::{CHARTS_DIR, ChartReader, RemoteChart, chart_path, is_archive, is_path};
use weaver_project::environment::Repository;
use weaver_project::source::{Source, is_plain_name, lexical};

fn at(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
    Error::at(Location::file(path.as_ref()), message)
}

fn at_line(path: impl AsRef<Path>, line: Option<usize>, message: impl Into<String>) -> Error {
    Error::at(Location::at(path.as_ref(), line.unwrap_or(0) as u64, 0), message)
}

/// A loaded Helm chart, shared by every release naming it; its parsed templates are kept with it
/// until its last expected release has rendered (parse trees take several times the templates'
/// size: kept for every chart of a large environment, they were most of its memory).
pub struct HelmChart {
    pub chart: Arc<Chart>,
    /// What loading it found that helm renders anyway (a subchart of the wrong version).
    pub warnings: Vec<String>,
    /// Its templates parsed, kept for its other releases (the chart goes after its last).
    parsed: engine::ParsedSets,
    /// Which chart of this process it is (a render worker is sent each once).
    pub id: u64,
}

impl HelmChart {
    /// `chart` as loaded, with what loading it found (a render worker's, sent it whole).
    pub fn new(chart: Arc<Chart>, warnings: Vec<String>) -> HelmChart {
        static LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HelmChart { chart, warnings, parsed: engine::ParsedSets::default(), id }
    }
}

/// What one release is rendered with.
pub struct ReleaseInput<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The user-supplied values (helm's `-f`/`--set` layers, merged; nulls kept to delete defaults).
    pub values: Map<String, Json>,
    pub capabilities: Arc<Capabilities>,
    /// What `lookup` reads.
    pub live: Arc<lookup::Live>,
    pub output: Output,
    /// How long and how large the render may be (a tenant's chart, in the controller).
    pub limits: weaver_core::limits::RenderLimits,
}

/// Which of a chart's documents `helm template` prints: its flags `--include-crds`,
/// `--skip-tests` and `--no-hooks`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub include_crds: bool,
    pub skip_tests: bool,
    pub hooks: bool,
}

impl Output {
    /// What a weaver release of a Helm chart gets: `--include-crds --skip-tests`.
    pub const RELEASE: Output = Output { include_crds: true, skip_tests: true, hooks: true };
}

/// One object of the output, with the file it came from (in the repository; inside an archive,
/// the archive's path followed by the file's).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderedDocument {
    pub source: PathBuf,
    /// Its 1-based position among the documents of its file.
    pub document: usize,
    pub object: Json,
}

/// Whether `chart` (as a release names it) is a Helm chart: a packaged `.tgz`, or a chart
/// directory with helm's `Chart.yaml` (weaver's own charts have `chart.yaml`).
pub fn is_helm_chart(source: &dyn Source, chart: &str) -> bool {
    is_archive(chart)
        || ((is_plain_name(chart) || is_path(chart)) && source.exists(&chart_path(chart).join("Chart.yaml")))
}

/// Whether a release renders a Helm chart: a remote one, or one [`is_helm_chart`] finds.
pub fn is_helm_release(source: &dyn Source, release: &weaver_project::Release) -> bool {
    release.kustomize.is_none() && (release.remote.is_some() || is_helm_chart(source, &release.chart))
}

/// Where a chart's subcharts declared with a remote `repository` but not vendored in its
/// `charts/` come from.
#[derive(Clone, Copy)]
pub struct Unvendored<'a> {
    /// The environment's `repositories:`, which helm's `@name` and `alias:name` repository
    /// references name (helm finds them in its `repo add` state).
    pub repositories: &'a BTreeMap<String, Repository>,
    /// An archive with the path that names it in messages, or None to leave the dependency
    /// missing (an error naming it).
    pub pull: &'a Pull<'a>,
}

/// Pulls a remote chart: its archive and the path that names it, or None to leave it missing.
pub type Pull<'a> = dyn Fn(&RemoteChart) -> Result<Option<(Vec<u8>, PathBuf)>, Error> + Sync + 'a;

impl Unvendored<'static> {
    /// For Helm charts that are only ever vendored (kustomize's `helmCharts`).
    pub fn vendored_only() -> Unvendored<'static> {
        static NO_REPOSITORIES: BTreeMap<String, Repository> = BTreeMap::new();
        Unvendored { repositories: &NO_REPOSITORIES, pull: &|_| Ok(None) }
    }
}

/// Loads the Helm chart `chart` names; `referenced_at` is where a release names it.
pub fn load(
    source: &dyn Source,
    chart: &str,
    referenced_at: &Location,
    unvendored: Unvendored,
) -> Result<HelmChart, Error> {
    installable(read(source, chart, referenced_at)?, referenced_at, unvendored)
}

/// Reads the Helm chart `chart` names (a directory of charts/, a chart directory's path or a
/// packaged chart's path), unchecked: a library chart, or dependencies missing.
pub fn read(source: &dyn Source, chart: &str, referenced_at: &Location) -> Result<Chart, Error> {
    if !is_archive(chart) {
        return read_dir(source, chart, &chart_path(chart), referenced_at);
    }
    let path = lexical(Path::new(chart)).ok_or_else(|| {
        Error::at(referenced_at.clone(), format!("`chart: {chart}` leads outside the repository"))
            .with_help("name a packaged chart by its path in the repository")
    })?;
    let data = source
        .read_named(&path, referenced_at, "chart archive")?
        .ok_or_else(|| Error::at(referenced_at.clone(), format!("chart archive {} does not exist", path.display())))?;
    Chart::from_archive(&data, &path)
}

/// Loads a packaged chart (`origin` names it in messages): one of the repository, or a remote
/// chart from the cache.
pub fn load_archive(
    data: &[u8],
    origin: &Path,
    referenced_at: &Location,
    unvendored: Unvendored,
) -> Result<HelmChart, Error> {
    installable(Chart::from_archive(data, origin)?, referenced_at, unvendored)
}

/// Loads the Helm chart directory `dir` of the repository (`name` for messages).
pub fn load_dir(
    source: &dyn Source,
    name: &str,
    dir: &Path,
    referenced_at: &Location,
    unvendored: Unvendored,
) -> Result<HelmChart, Error> {
    installable(read_dir(source, name, dir, referenced_at)?, referenced_at, unvendored)
}

fn read_dir(source: &dyn Source, name: &str, dir: &Path, referenced_at: &Location) -> Result<Chart, Error> {
    read_dir_at(source, name, dir, referenced_at, 0)
}

/// How deep `file://` dependencies are followed: a chart naming itself stops there.
const FILE_DEPENDENCY_DEPTH: usize = 8;

fn read_dir_at(
    source: &dyn Source,
    name: &str,
    dir: &Path,
    referenced_at: &Location,
    depth: usize,
) -> Result<Chart, Error> {
    let mut chart = read_files(source, name, dir, referenced_at)?;
    // helm's `file://` dependencies not vendored are read from their directories in the
    // repository, as `helm dependency build` (which helmfile runs before it renders a local
    // chart) copies them into charts/. One outside the repository stays missing (an error).
    for dependency in chart.metadata.dependencies.clone() {
        let Some(path) = dependency.repository.strip_prefix("file://") else { continue };
        let Some(dependency_dir) = lexical(&chart.origin.join(path)) else { continue };
        let vendored = chart.dependencies.iter().any(|d| d.name() == dependency.name);
        if vendored || depth >= FILE_DEPENDENCY_DEPTH || !source.exists(&dependency_dir.join("Chart.yaml")) {
            continue;
        }
        let read = read_dir_at(source, &dependency.name, &dependency_dir, referenced_at, depth + 1)?;
        chart.dependencies.push(Arc::new(read));
    }
    Ok(chart)
}

fn read_files(source: &dyn Source, name: &str, dir: &Path, referenced_at: &Location) -> Result<Chart, Error> {
    let dir = dir.to_path_buf();
    let reader = ChartReader::new(source, name, &dir, referenced_at)?;
    let ignore_path = dir.join(".helmignore");
    let rules = match reader.read(&ignore_path)? {
        Some(bytes) => ignore::Rules::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| at(&ignore_path, format!("invalid .helmignore: {e}")))?,
        None => ignore::Rules::defaults(),
    };
    let mut files = Vec::new();
    for path in source.walk(&dir)? {
        let relative = path.strip_prefix(&dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if rules.ignores_file(&relative) {
            continue;
        }
        let bytes = reader.read(&path)?.unwrap_or_default();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
        files.push(File { name: relative, data: Arc::from(bytes) });
    }
    Chart::from_files(files, &dir)
}

/// The dependencies `chart` declares with a remote repository (`https://…`, `http://…`,
/// `oci://…`, or helm's `@name`/`alias:name` for a repository of `repositories`) and does not
/// vendor in its `charts/`, as remote charts. An `@name` that `repositories` lacks is left out:
/// the dependency is then missing, as helm reports it.
pub fn unvendored_remote(chart: &Chart, repositories: &BTreeMap<String, Repository>) -> Vec<RemoteChart> {
    chart
        .metadata
        .dependencies
        .iter()
        .filter(|d| !chart.dependencies.iter().any(|v| v.name() == d.name))
        .filter_map(|d| {
            let remote = |repository: &str, found: Option<&Repository>| RemoteChart {
                repository: repository.trim_end_matches('/').to_string(),
                repository_name: found.map(|r| r.name.clone()),
                name: d.name.clone(),
                version: d.version.clone(),
                plain_http: found.is_some_and(|r| r.plain_http),
                keys: found.and_then(|r| r.keys.clone()),
            };
            if let Some(name) = d.repository.strip_prefix('@').or_else(|| d.repository.strip_prefix("alias:")) {
                let found = repositories.get(name)?;
                return Some(remote(&found.url, Some(found)));
            }
            // A URL a repository of `repositories` has takes its checks (`verify: true`), as
            // helm's `--verify` covers dependencies; not its name, credentials go by URL.
            let by_url = repositories.values().find(|r| r.url == d.repository.trim_end_matches('/'));
            ["https://", "http://", "oci://"]
                .iter()
                .any(|s| d.repository.starts_with(s))
                .then(|| RemoteChart { keys: by_url.and_then(|r| r.keys.clone()), ..remote(&d.repository, None) })
        })
        .collect()
}

/// A loaded chart a release may render: not a library, its dependencies vendored or pinned.
fn installable(mut loaded: Chart, referenced_at: &Location, unvendored: Unvendored) -> Result<HelmChart, Error> {
    if loaded.is_library() {
        return Err(Error::at(
            referenced_at.clone(),
            format!("chart `{}` is a library chart: library charts are not installable", loaded.name()),
        )
        .with_help("a release names an application chart; library charts are used as its dependencies"));
    }
    for remote in unvendored_remote(&loaded, unvendored.repositories) {
        // Named where helm names a missing dependency: the file declaring it.
        let pulled = (unvendored.pull)(&remote).map_err(|e| Error {
            location: Some(Location::file(dependencies_file(&loaded))),
            message: format!("{}, and {}", missing_dependency(&loaded, &remote.name), e.message),
            ..e
        })?;
        if let Some((data, origin)) = pulled {
            loaded.dependencies.push(Arc::new(Chart::from_archive(&data, &origin)?));
        }
    }
    let mut warnings = Vec::new();
    check_dependencies(&loaded, true, &mut warnings)?;
    Ok(HelmChart::new(Arc::new(loaded), warnings))
}

/// The file declaring `chart`'s dependencies: `Chart.yaml`, or a v1 chart's `requirements.yaml`.
fn dependencies_file(chart: &Chart) -> PathBuf {
    chart.origin.join(
        if chart.metadata.api_version == "v1" && chart.files.iter().any(|f| f.name == "requirements.yaml") {
            "requirements.yaml"
        } else {
            "Chart.yaml"
        },
    )
}

/// A dependency `chart` declares and does not vendor, in helm's words.
fn missing_dependency(chart: &Chart, dependency: &str) -> String {
    format!(
        "chart `{}` depends on `{dependency}`, which is not in its {CHARTS_DIR}/ directory (found in Chart.yaml, but missing in charts/ directory: {dependency})",
        chart.name()
    )
}

/// Every `dependencies` entry of the release's chart has its chart vendored in `charts/` (else an
/// error, as helm's); a subchart's missing one is left out with a warning, as helm checks only
/// the top chart and renders a subchart without it. One whose vendored version is outside its
/// range is rendered as helm renders it (under its own name, so the entry's alias and condition
/// do not reach it: `helm dependency list` says "wrong version"), with a warning naming both
/// versions.
fn check_dependencies(chart: &Chart, top: bool, warnings: &mut Vec<String>) -> Result<(), Error> {
    let chart_yaml = dependencies_file(chart);
    for dependency in &chart.metadata.dependencies {
        let vendored: Vec<&Arc<Chart>> = chart.dependencies.iter().filter(|d| d.name() == dependency.name).collect();
        if vendored.is_empty() && top {
            return Err(at(&chart_yaml, missing_dependency(chart, &dependency.name))
                .with_help("vendor it: `helm dependency build` in the chart's directory, then commit charts/"));
        }
        if vendored.is_empty() {
            warnings.push(format!(
                "{}: subchart `{}` depends on `{}`, which is not in its {CHARTS_DIR}/ directory: rendered without it, as helm renders it",
                chart_yaml.display(),
                chart.name(),
                dependency.name
            ));
            continue;
        }
        if !dependency.version.is_empty()
            && !vendored.iter().any(|d| values::compatible(&dependency.version, &d.metadata.version))
        {
            let found: Vec<String> =
                vendored.iter().map(|d| format!("{} {}", d.origin.display(), d.metadata.version)).collect();
            warnings.push(format!(
                "{}: chart `{}` needs `{}` version {}, but charts/ has version {}: rendered as helm renders it (\"wrong version\" in `helm dependency list`); vendor a version in the range (`helm dependency update`), or change the range",
                chart_yaml.display(),
                chart.name(),
                dependency.name,
                dependency.version,
                found.join(", ")
            ));
        }
    }
    chart.dependencies.iter().try_for_each(|d| check_dependencies(d, false, warnings))
}

/// Renders a release of `helm`: values coalesced and checked against the charts' schemas, then
/// every template, as `helm template` does.
pub fn render(helm: &HelmChart, input: &ReleaseInput<'_>) -> Result<Vec<RenderedDocument>, Error> {
    engine::documents(helm, execute(helm, input)?, input.output)
}

/// [`render`]'s first part, which runs the chart's templates (a render worker's): their
/// outputs, which [`engine::documents`] reads as [`render`]'s documents.
pub fn execute(helm: &HelmChart, input: &ReleaseInput<'_>) -> Result<engine::Executed, Error> {
    let mut root = values::Scoped::new(&helm.chart);
    values::process_dependencies(&mut root, &input.values)?;
    let values = values::coalesce_values(&root, input.values.clone(), false)?;
    let values = Json::Object(values);
    schema::validate(&root, &values, input.name)?;
    engine::execute(helm, &root, &values, input)
}

mod schema {
    //! `values.schema.json` of the chart and of each subchart, against its coalesced values,
    //! as helm's `ValidateAgainstSchema`; messages name paths, never values.

    use serde_json::Value as Json;

    use super::values::Scoped;
    use weaver_core::error::{Error, Location};

    pub fn validate(root: &Scoped, values: &Json, release: &str) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut first_schema = None;
        check(root, values, &mut problems, &mut first_schema)?;
        if problems.is_empty() {
            return Ok(());
        }
        let mut error = Error::new(format!(
            "values of release `{release}` don't meet the specifications of the schema(s) in the following chart(s):\n{}",
            problems.join("\n")
        ))
        .with_help("fix the values in the environment, its valuesFiles or the chart's values.yaml");
        if let Some(path) = first_schema {
            error = error.with_location(Location::file(path));
        }
        Err(error)
    }

    fn check(
        node: &Scoped,
        values: &Json,
        problems: &mut Vec<String>,
        first_schema: &mut Option<std::path::PathBuf>,
    ) -> Result<(), Error> {
        if let Some(schema) = &node.chart.schema {
            let path = node.chart.origin.join("values.schema.json");
            let validator = jsonschema::validator_for(schema).map_err(|e| match e.kind() {
                jsonschema::error::ValidationErrorKind::Referencing(jsonschema::ReferencingError::Unretrievable {
                    uri,
                    ..
                }) => Error::at(
                    Location::file(&path),
                    format!("`$ref` to {uri} cannot be resolved: weaver reads no schema from the network"),
                )
                .with_help("put the referenced definitions into values.schema.json (helm fetches them)"),
                _ => Error::at(
                    Location::file(&path),
                    format!("invalid JSON Schema at `{}`: {}", e.schema_path(), e.masked()),
                ),
            })?;
            let mut lines: Vec<String> = validator
                .iter_errors(values)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    let at =
                        if at.is_empty() { "(root)".to_string() } else { at.trim_start_matches('/').replace('/', ".") };
                    format!("- {at}: {}", super::schema_violation(&e))
                })
                .collect();
            if !lines.is_empty() {
                lines.sort();
                lines.dedup();
                problems.push(format!("{}:\n{}", node.name, lines.join("\n")));
                first_schema.get_or_insert(path);
            }
        }
        for dependency in &node.dependencies {
            let sub = values.get(&dependency.name).cloned().unwrap_or(Json::Object(Default::default()));
            check(dependency, &sub, problems, first_schema)?;
        }
        Ok(())
    }
}

/// A violation in words that never quote the value: jsonschema's masked message, except that an
/// `enum` lists every allowed value (jsonschema names a few and counts the rest), as helm does.
/// Weaver's own charts' `values.schema.json` (`render::schema`) are reported in the same words.
pub fn schema_violation(error: &jsonschema::ValidationError) -> String {
    match error.kind() {
        jsonschema::error::ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options.as_array().into_iter().flatten().map(ToString::to_string).collect();
            format!("value must be one of the following: {}", allowed.join(", "))
        }
        _ => error.masked().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The controller's image has no zone data (no /usr/share/zoneinfo, which jiff reads
    /// first, whatever TZDIR says): the tz database is built in (jiff's `tzdb-bundle-always`),
    /// so a zone a chart names (`dateInZone`) is not silently UTC there.
    #[test]
    fn the_tz_database_is_built_in() {
        let berlin = jiff::tz::TimeZoneDatabase::bundled().get("Europe/Berlin").expect("Europe/Berlin built in");
        let summer = jiff::Timestamp::from_second(1_719_835_200).unwrap().to_zoned(berlin);
        assert_eq!(summer.strftime("%H:%M %Z").to_string(), "14:00 CEST");
    }

    #[test]
    fn unvendored_dependencies_name_a_url_or_a_repository_of_the_environment() {
        let chart_yaml = "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n\
            - {name: a, version: 1.x, repository: 'https://charts.example.com/'}\n\
            - {name: b, version: 2.x, repository: '@stable'}\n\
            - {name: c, version: 3.x, repository: 'alias:internal'}\n\
            - {name: d, version: 4.x, repository: '@unknown'}\n\
            - {name: e, version: 5.x, repository: 'file://../e'}\n";
        let files = vec![File { name: "Chart.yaml".into(), data: Arc::from(chart_yaml.as_bytes()) }];
        let chart = Chart::from_files(files, Path::new("charts/shop")).unwrap();
        let repository = |name: &str, url: &str, plain_http| {
            (name.to_string(), Repository { name: name.into(), url: url.into(), plain_http, keys: None })
        };
        let mut repositories = BTreeMap::from([
            repository("stable", "https://stable.example.com", false),
            repository("internal", "oci://registry.example.com/charts", true),
        ]);
        // A repository that checks provenance passes its keyring on to the charts named through it.
        repositories.get_mut("stable").unwrap().keys =
            Some(weaver_project::chart::ChartKeys::Keyring("keys/charts.gpg".into()));
        let found: Vec<(String, Option<String>, String, String, bool)> = unvendored_remote(&chart, &repositories)
            .into_iter()
            .map(|r| (r.repository, r.repository_name, r.name, r.version, r.plain_http))
            .collect();
        let row = |url: &str, name: Option<&str>, chart: &str, version: &str, plain| {
            (url.to_string(), name.map(str::to_string), chart.to_string(), version.to_string(), plain)
        };
        assert_eq!(
            found,
            [
                row("https://charts.example.com", None, "a", "1.x", false),
                row("https://stable.example.com", Some("stable"), "b", "2.x", false),
                row("oci://registry.example.com/charts", Some("internal"), "c", "3.x", true),
            ]
        );
        let keyrings: Vec<Option<String>> = unvendored_remote(&chart, &repositories)
            .into_iter()
            .map(|r| r.keys.map(|k| k.path().to_string()))
            .collect();
        assert_eq!(keyrings, [None, Some("keys/charts.gpg".to_string()), None]);
        // Named by the URL of that repository, a dependency takes its keyring too.
        repositories.get_mut("stable").unwrap().url = "https://charts.example.com".into();
        let keyrings: Vec<Option<String>> = unvendored_remote(&chart, &repositories)
            .into_iter()
            .map(|r| r.keys.map(|k| k.path().to_string()))
            .collect();
        assert_eq!(keyrings, [Some("keys/charts.gpg".to_string()), Some("keys/charts.gpg".to_string()), None]);
    }
}
