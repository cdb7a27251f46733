//! The repository model: environments, releases and charts, loaded from a `Source`.

pub mod chart;
pub mod environment;
pub mod health;
pub mod ignore;
pub mod selector;
pub mod settings;
pub mod source;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use chart::Chart;
pub use environment::{Environment, Release};
pub use health::HealthCheck;
pub use ignore::IgnoreRule;
pub use selector::Selector;
pub use source::{FsSource, Source};

use crate::error::{Error, Result};

/// A repository opened for reading.
pub struct Project {
    pub source: Arc<dyn Source>,
}

impl Project {
    pub fn new(source: Arc<dyn Source>) -> Self {
        Project { source }
    }

    pub fn environment(&self, name: &str) -> Result<Environment> {
        environment::load_environment(self.source.as_ref(), name)
    }

    pub fn environment_names(&self) -> Result<Vec<String>> {
        environment::list_environments(self.source.as_ref())
    }

    /// Loads each chart the given releases use, once.
    pub fn charts_for<'a>(
        &self,
        releases: impl IntoIterator<Item = &'a Release>,
    ) -> Result<BTreeMap<String, Arc<Chart>>> {
        let mut charts = BTreeMap::new();
        for release in releases {
            if !charts.contains_key(&release.chart) {
                let chart = chart::load_chart(self.source.as_ref(), &release.chart, &release.chart_at)?;
                charts.insert(release.chart.clone(), Arc::new(chart));
            }
        }
        Ok(charts)
    }
}

/// The releases picked by `-r`, `-l` and, when given, `changed` (the names `--changed-since`
/// reports), all of which must match; naming an unknown release is an error.
pub fn select_releases<'a>(
    env: &'a Environment,
    names: &[String],
    selector: &Selector,
    changed: Option<&BTreeSet<String>>,
) -> Result<Vec<&'a Release>> {
    for name in names {
        if env.release(name).is_none() {
            let known: Vec<&str> = env.releases.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::new(format!("environment `{}` has no release `{name}` (-r/--release)", env.name))
                .with_help(format!("its releases: {}", known.join(", "))));
        }
    }
    Ok(env
        .releases
        .iter()
        .filter(|r| names.is_empty() || names.contains(&r.name))
        .filter(|r| selector.matches(&r.labels))
        .filter(|r| changed.is_none_or(|changed| changed.contains(&r.name)))
        .collect())
}
