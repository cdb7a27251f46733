//! `charts/<chart>/`: metadata, default values, the optional values schema, CRDs, templates
//! and the other files templates may read with `files.get`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::source::{Escape, Source, is_plain_name, lexical, utf8};
use weaver_core::error::{Error, Location, Result};

pub const CHARTS_DIR: &str = "charts";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChartFile {
    name: String,
    version: String,
    description: Option<String>,
    app_version: Option<String>,
}

/// A template file: rendered on its own unless its name starts with `_`.
#[derive(Debug, Clone)]
pub struct Template {
    /// Repository-relative path; also the template's name in the engine, so errors name it.
    pub path: PathBuf,
    pub source: String,
}

impl Template {
    /// `_helpers.j2` and the like hold macros and partials only.
    pub fn is_partial(&self) -> bool {
        self.path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('_'))
    }
}

/// A chart's name and versions, as a release record keeps them (helm's `history` shows them as
/// CHART and APP VERSION).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub app_version: Option<String>,
    pub dir: PathBuf,
    pub values: Map<String, Value>,
    /// `values.schema.json`, with its path.
    pub schema: Option<(PathBuf, Value)>,
    /// `crds/*.yaml`, applied first and never templated.
    pub crds: Vec<Template>,
    pub templates: Vec<Template>,
    /// Every other file of the chart, by path relative to the chart directory.
    pub files: Arc<BTreeMap<String, String>>,
}

pub fn chart_dir(name: &str) -> PathBuf {
    Path::new(CHARTS_DIR).join(name)
}

/// A Helm chart from a chart repository or an OCI registry, as a release names it. Its exact
/// version, URL and digest are pinned in `charts.lock` (see `crate::source::charts`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteChart {
    /// `https://host/path` (a chart repository serving `index.yaml`) or `oci://host/path`.
    pub repository: String,
    /// Its name in `repositories:`, for credentials from environment variables; None for a
    /// chart named by its `oci://` reference.
    pub repository_name: Option<String>,
    pub name: String,
    /// The version constraint as written (empty: the newest stable version), or for an OCI
    /// chart pinned by digest, `sha256:…`.
    pub version: String,
    /// An OCI registry served over plain HTTP (`plainHttp: true`).
    pub plain_http: bool,
    /// The keys of its repository's `verify: true`: the check is made when it is pinned, and a
    /// pin that was not checked is not rendered.
    pub keys: Option<ChartKeys>,
}

/// What a repository's charts are checked against (`verify: true`), each by path from the
/// repository's root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChartKeys {
    /// `keyring`: OpenPGP keys the provenance file is checked against (`helm package --sign`),
    /// beside the archive in a chart repository, or a layer of an OCI chart's manifest.
    Keyring(String),
    /// `publicKeyRef`: cosign keys an OCI chart's manifest signature is checked against.
    Cosign(String),
}

impl ChartKeys {
    pub fn path(&self) -> &str {
        match self {
            ChartKeys::Keyring(path) | ChartKeys::Cosign(path) => path,
        }
    }
}

impl RemoteChart {
    /// How a release names it: `<repository>/<chart>` or `oci://host/path/chart`.
    pub fn reference(&self) -> String {
        match &self.repository_name {
            Some(repository) => format!("{repository}/{}", self.name),
            None => format!("{}/{}", self.repository, self.name),
        }
    }

    /// The reference with the version asked for, for messages.
    pub fn describe(&self) -> String {
        match self.version.as_str() {
            "" => format!("`{}` (newest version)", self.reference()),
            digest if is_sha256_digest(digest) => format!("`{}@{digest}`", self.reference()),
            constraint => format!("`{}` version `{constraint}`", self.reference()),
        }
    }

    pub fn is_oci(&self) -> bool {
        self.repository.starts_with("oci://")
    }
}

/// `sha256:` and 64 lowercase hexadecimal digits, as OCI and `charts.lock` write digests.
pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// Whether a release's `chart` names a packaged Helm chart (`vendor/x-1.2.3.tgz`), by its path.
pub fn is_archive(chart: &str) -> bool {
    chart.ends_with(".tgz")
}

/// Whether a release's `chart` names a chart directory by its path in the repository
/// (`./deploy/helm/app`), as helmfile's and helm's local charts are named, rather than a
/// directory of charts/ by its name.
pub fn is_path(chart: &str) -> bool {
    chart.starts_with("./")
}

/// Whether a release's `chart` names a chart of the repository: a directory of charts/, a
/// directory by its path, or a packaged chart's path.
pub fn is_local(chart: &str) -> bool {
    is_plain_name(chart) || is_path(chart) || is_archive(chart)
}

/// The repository path a release's `chart` refers to: `charts/<name>`, a chart directory's
/// path, or a packaged chart's path (normalized; the loader refuses one leading outside the
/// repository).
pub fn chart_path(chart: &str) -> PathBuf {
    match is_path(chart) || is_archive(chart) {
        true => lexical(Path::new(chart)).unwrap_or_else(|| PathBuf::from(chart)),
        false => chart_dir(chart),
    }
}

/// The names of the charts in the repository, sorted.
pub fn list_charts(source: &dyn Source) -> Result<Vec<String>> {
    let dir = Path::new(CHARTS_DIR);
    let entries = source.list(dir).map_err(|e| Error::io("list directory", dir, e))?.unwrap_or_default();
    Ok(entries.into_iter().filter(|e| e.is_dir).map(|e| e.name).collect())
}

/// Loads `charts/<name>` or the chart directory `./<path>` names; `referenced_at` is where a
/// release names the chart. Every file is read through [`ChartReader`], so none comes from
/// outside the chart's directory.
pub fn load_chart(source: &dyn Source, name: &str, referenced_at: &Location) -> Result<Chart> {
    // A name or a path below the root: `chart: ..` would make the whole repository, `.git`
    // included, a chart.
    let dir = chart_path(name);
    if !(is_plain_name(name) || is_path(name)) || dir.as_os_str().is_empty() {
        return Err(Error::at(referenced_at.clone(), format!("`chart: {name}` is not a chart name"))
            .with_help("name a chart: a directory of charts/, or a chart directory by its path (`./deploy/chart`)"));
    }
    let meta_path = dir.join("chart.yaml");
    let reader = ChartReader::new(source, name, &dir, referenced_at)?;
    let Some(meta_text) = reader.read(&meta_path)? else {
        let known = list_charts(source)?;
        return Err(Error::at(
            referenced_at.clone(),
            format!(
                "chart `{name}` not found: {} has neither chart.yaml (a weaver chart) nor Chart.yaml (a Helm chart)",
                dir.display()
            ),
        )
        .with_help(format!(
            "charts in this repository: {}",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    };
    let meta: ChartFile = weaver_yaml::from_str_as(&meta_path, &utf8(&meta_path, meta_text)?, "invalid chart.yaml")?;

    let values_path = dir.join("values.yaml");
    let values = match reader.read(&values_path)? {
        Some(bytes) => match weaver_yaml::from_str::<Option<Value>>(&values_path, &utf8(&values_path, bytes)?)? {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(Error::at(Location::file(&values_path), "must be a mapping of values at the top level"));
            }
        },
        None => Map::new(),
    };

    let schema_path = dir.join("values.schema.json");
    let schema = match reader.read(&schema_path)? {
        Some(bytes) => {
            let schema: Value = serde_json::from_str(&utf8(&schema_path, bytes)?).map_err(|e| {
                Error::at(
                    Location::at(&schema_path, e.line() as u64, e.column() as u64),
                    format!("invalid JSON: {}", weaver_core::error::json_reason(&e)),
                )
            })?;
            Some((schema_path, schema))
        }
        None => None,
    };

    let mut crds = Vec::new();
    let mut templates = Vec::new();
    let mut files = BTreeMap::new();
    let special = ["chart.yaml", "values.yaml", "values.schema.json"];
    for path in source.walk(&dir)? {
        let relative = path.strip_prefix(&dir).unwrap_or(&path);
        let relative_str = relative.to_string_lossy().replace('\\', "/");
        if relative.starts_with("templates") {
            templates.push(Template { source: reader.read_text(&path)?, path });
        } else if relative.starts_with("crds") {
            if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                crds.push(Template { source: reader.read_text(&path)?, path });
            }
        } else if !special.contains(&relative_str.as_str()) {
            // Binary files are not readable through `files.get`; skip them rather than fail.
            if let Some(Ok(text)) = reader.read(&path)?.map(String::from_utf8) {
                files.insert(relative_str, text);
            }
        }
    }

    Ok(Chart {
        name: meta.name,
        version: meta.version,
        description: meta.description,
        app_version: meta.app_version,
        dir,
        values,
        schema,
        crds,
        templates,
        files: Arc::new(files),
    })
}

/// Reads a chart's files, refusing any that resolves outside the chart's directory (after
/// following links that stay inside); errors point at where the release names the chart.
pub struct ChartReader<'a> {
    source: &'a dyn Source,
    name: &'a str,
    /// The chart's directory after links: a chart may itself be a link inside the repository.
    resolved_dir: PathBuf,
    referenced_at: &'a Location,
}

impl<'a> ChartReader<'a> {
    pub fn new(source: &'a dyn Source, name: &'a str, dir: &Path, referenced_at: &'a Location) -> Result<Self> {
        let resolved_dir =
            source.resolve(dir).map_err(|err| Error::io_at(referenced_at.clone(), "read chart", dir, err))?;
        Ok(ChartReader { source, name, resolved_dir, referenced_at })
    }

    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let error = |err| Error::io_at(self.referenced_at.clone(), "read chart file", path, err);
        let resolved = self.source.resolve(path).map_err(error)?;
        if !resolved.starts_with(&self.resolved_dir) {
            let within = format!("chart `{}` ({})", self.name, self.resolved_dir.display());
            return Err(Error::escape(
                self.referenced_at.clone(),
                &Escape { path: path.to_path_buf(), resolved, within },
            ));
        }
        self.source.read(path).map_err(error)
    }

    fn read_text(&self, path: &Path) -> Result<String> {
        let bytes =
            self.read(path)?.ok_or_else(|| Error::io("read file", path, std::io::ErrorKind::NotFound.into()))?;
        utf8(path, bytes)
    }
}
