//! The repository model: environments, releases and charts, loaded from a `Source`.

pub mod chart;
pub mod environment;
pub mod health;
pub mod ignore;
pub mod image_updates;
pub mod notifications;
pub mod promotion;
mod rendered;
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
pub use rendered::RenderedRelease;
pub use selector::Selector;
pub use source::{FsSource, MemorySource, Source};

use weaver_core::error::{Error, Result};

/// A repository opened for reading.
#[derive(Clone)]
pub struct Project {
    pub source: Arc<dyn Source>,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project").field("source", &self.source.describe()).finish()
    }
}

impl Project {
    pub fn new(source: Arc<dyn Source>) -> Self {
        Project { source }
    }

    /// The same repository with every file past `bound` refused unread (see [`source::Bounded`]),
    /// its environment files included; itself without a bound.
    pub fn bounded(self, bound: Option<&weaver_core::limits::Bound<usize>>) -> Project {
        match bound {
            Some(bound) => Project::new(Arc::new(source::Bounded::new(self.source, bound.clone()))),
            None => self,
        }
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

/// The longest duration a flag or a file takes: waits this long are mistakes, and a bound keeps
/// `Instant::now() + duration` from overflowing.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The longest `soakTime`: promotions wait days, and more than a quarter is a mistake.
pub const MAX_SOAK_TIME: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// An environment file defines something twice where only one counts (a release, a
/// notification, a kind's health check): the error, at the second, names the first's line.
/// `what` names it (``release `web` ``), `within` where one is allowed (`this file`).
pub(crate) fn defined_twice(
    at: weaver_core::error::Location,
    what: &str,
    within: &str,
    first: &weaver_core::error::Location,
) -> Error {
    Error::at(at, format!("{what} is defined twice in {within} (first at line {})", first.line.unwrap_or(0)))
}

/// Whether `name` may name a variable (a release's `substitute:`, a notification's `fromEnv`):
/// Flux's `^[_[:alpha:]][_[:alpha:][:digit:]]*$`.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

pub const VARIABLE_NAME_HELP: &str =
    "a variable name is a letter or '_', then letters, digits and '_' (Flux's ^[_[:alpha:]][_[:alpha:][:digit:]]*$)";

/// `30s`, `5m`, `1m30s`, `500ms`, `2h`: the durations kubectl's flags take (and environment
/// files: a notification's `timeout`), parsed by jiff's friendly format (which also takes
/// `1h 30m`, `1.5h`, `90 seconds`), at most [`MAX_DURATION`]. clap prefixes the flag; a file's
/// error, its location.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    parse_duration_up_to(text, MAX_DURATION)
}

/// [`parse_duration`] up to `max`, for the few settings that take days (`soakTime`). Days are
/// not a unit, as in Go's `time.ParseDuration` that Flux and Kargo users write: `72h`, not `3d`.
pub fn parse_duration_up_to(text: &str, max: std::time::Duration) -> Result<std::time::Duration, String> {
    let parsed: jiff::SignedDuration = text.trim().parse().map_err(|_| {
        // jiff reads `3d` as a calendar span, which a duration is not: say what to write.
        let calendar = text.trim().parse::<jiff::Span>().is_ok_and(|span| {
            span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 || span.get_days() != 0
        });
        match calendar {
            true => format!(
                "`{text}` counts days or longer, which durations do not (as Go's): write hours, like 72h for 3d"
            ),
            false => format!("`{text}` is not a duration: expected a number with a unit, like 30s, 5m, 1m30s or 500ms"),
        }
    })?;
    if parsed.is_negative() {
        return Err(format!("`{text}` is negative: expected a duration longer than zero, like 30s"));
    }
    match std::time::Duration::try_from(parsed) {
        Ok(duration) if duration.is_zero() => {
            Err(format!("`{text}` is zero: expected a duration longer than zero, like 30s"))
        }
        Ok(duration) if duration <= max => Ok(duration),
        _ => Err(format!("`{text}` is too long: expected at most {}", humanize(max))),
    }
}

/// As [`parse_duration`] reads it: core's, which render limits use too.
pub use weaver_core::time::humanize;
