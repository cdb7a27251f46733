//! Classic chart repositories: `index.yaml`, its entries by chart, and the newest version a
//! constraint allows (helm's `repo.IndexFile.Get`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::http::Connection;
use weaver_core::error::{Error, Result};
use weaver_project::chart::RemoteChart;

#[derive(Debug, Deserialize)]
pub struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IndexEntry {
    pub version: String,
    #[serde(default)]
    pub urls: Vec<String>,
    /// The archive's sha256, in hex, when the index records it.
    #[serde(default)]
    pub digest: Option<String>,
}

/// The repository's `index.yaml`.
pub fn fetch_index(connection: &mut Connection, repository: &str) -> Result<Index> {
    let url = format!("{repository}/index.yaml");
    let response = connection.get(&url, "application/yaml, */*")?;
    if response.status != 200 {
        return Err(connection.status_error(&url, &response));
    }
    let text = String::from_utf8(response.body).map_err(|_| connection.failed(&url, "index.yaml is not UTF-8"))?;
    let document = weaver_yaml::documents(Path::new(&url), &text)?.into_iter().next().unwrap_or_default();
    serde_json::from_value(document)
        .map_err(|e| connection.failed(&url, &format!("index.yaml is not a chart repository index: {e}")))
}

/// The newest version of `chart` its constraint allows (the newest stable one without a
/// constraint), as helm picks it.
pub fn choose<'a>(index: &'a Index, chart: &RemoteChart) -> Result<&'a IndexEntry> {
    let Some(entries) = index.entries.get(&chart.name) else {
        let known: Vec<&str> = index.entries.keys().map(String::as_str).take(20).collect();
        return Err(Error::new(format!("chart repository {} has no chart `{}`", chart.repository, chart.name))
            .with_help(format!("its charts: {}", if known.is_empty() { "none".into() } else { known.join(", ") })));
    };
    newest(entries.iter().map(|e| (e.version.as_str(), e)), chart)
}

/// The newest of `versions` that `chart`'s constraint allows, or an error listing them.
pub fn newest<'a, T>(versions: impl Iterator<Item = (&'a str, T)>, chart: &RemoteChart) -> Result<T> {
    let constraint = if chart.version.is_empty() { "*" } else { chart.version.as_str() };
    newest_allowed(versions, constraint).map_err(|available| {
        Error::new(format!("no version of {} meets the constraint `{constraint}`", chart.describe()))
            .with_help(format!("versions available (newest first): {available}; change the release's `version`"))
    })
}

/// The newest of `versions` (text that is no version left out) that `constraint` allows; else
/// the ten newest versions, as a message lists them (`none` without any).
pub fn newest_allowed<'a, T>(
    versions: impl Iterator<Item = (&'a str, T)>,
    constraint: &str,
) -> std::result::Result<T, String> {
    let mut all = Vec::new();
    let mut best: Option<(weaver_semver::Version, T)> = None;
    for (text, item) in versions {
        let Ok(version) = weaver_semver::Version::parse(text) else { continue };
        all.push(version.clone());
        if !weaver_semver::satisfies(constraint, &version).unwrap_or(false) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| version.compare(b).is_gt()) {
            best = Some((version, item));
        }
    }
    if let Some((_, item)) = best {
        return Ok(item);
    }
    all.sort_by(|a, b| b.compare(a));
    let available: Vec<String> = all.iter().take(10).map(ToString::to_string).collect();
    Err(if available.is_empty() { "none".into() } else { available.join(", ") })
}

/// An index entry's archive URL, absolute (index entries may be relative to the repository).
pub fn archive_url(repository: &str, url: &str) -> String {
    if url.contains("://") { url.to_string() } else { format!("{repository}/{}", url.trim_start_matches('/')) }
}
