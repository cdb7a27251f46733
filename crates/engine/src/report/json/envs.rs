//! `weaver envs -o json`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use weaver_project::Environment;

/// `weaver envs -o json`.
#[derive(Debug, Serialize)]
pub struct EnvsReport<'a> {
    pub environments: Vec<EnvsEnvironment<'a>>,
}

#[derive(Debug, Serialize)]
pub struct EnvsEnvironment<'a> {
    pub name: &'a str,
    #[serde(rename = "abstract")]
    pub is_abstract: bool,
    /// The environment it extends directly (its file's stem), if any.
    pub extends: Option<Cow<'a, str>>,
    /// `labels`, inherited through `extends`: what `--env-selector` matches.
    pub labels: &'a BTreeMap<String, String>,
    pub context: Option<&'a str>,
    pub namespace: &'a str,
    pub releases: Vec<EnvsRelease<'a>>,
    /// `wave` and `needs`: when a fleet apply applies it.
    pub wave: i32,
    pub needs: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct EnvsRelease<'a> {
    pub name: &'a str,
    pub chart: &'a str,
    pub namespace: &'a str,
    pub needs: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub installed: bool,
}

impl<'a> EnvsReport<'a> {
    pub fn new(environments: &'a [Environment]) -> EnvsReport<'a> {
        let environments = environments
            .iter()
            .map(|e| EnvsEnvironment {
                name: &e.name,
                is_abstract: e.is_abstract,
                extends: e.files.get(1).and_then(|f| f.file_stem()).map(|s| s.to_string_lossy()),
                labels: &e.labels,
                context: e.context.as_deref(),
                namespace: &e.namespace,
                releases: e
                    .releases
                    .iter()
                    .map(|r| EnvsRelease {
                        name: &r.name,
                        chart: &r.chart,
                        namespace: &r.namespace,
                        needs: &r.needs,
                        labels: &r.labels,
                        installed: r.installed,
                    })
                    .collect(),
                wave: e.wave,
                needs: e.needs.iter().map(|(name, _)| name.as_str()).collect(),
            })
            .collect();
        EnvsReport { environments }
    }
}
