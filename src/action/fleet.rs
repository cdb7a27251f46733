//! Fleets: the environments a selection names (`--env` names and globs, `--env-selector`
//! labels), and one environment's action run for each of them at once. A fleet is a layer over
//! the other actions: each environment is loaded, decrypted, rendered and compared exactly as
//! alone, and its result (or error) is kept; one environment failing never stops the others.
//! Abstract environments are never part of a fleet.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::GlobBuilder;
use rayon::prelude::*;

use super::drift::DriftOptions;
use super::plan::{PlanOptions, Planned};
use super::render::{Format, RenderOptions, Texts, deployable_environment};
use super::{Context, Progress, block_on, open_project};
use crate::diff::Action;
use crate::error::{Error, Result};
use crate::project::{Environment, Project, Selector};
use crate::secrets::Redactor;

/// Which environments: `--env` values (names and globs) and `--env-selector`s, all of which
/// must hold.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSelection {
    /// Names and globs (`prod-*`); every environment when empty.
    pub envs: Vec<String>,
    /// Label selectors of environments' `labels` (`-l`'s syntax).
    pub selectors: Vec<String>,
}

/// The characters that make an `--env` value a glob.
const GLOB_CHARACTERS: [char; 3] = ['*', '?', '['];

impl EnvironmentSelection {
    /// The environment of one plain `--env NAME`: commands keep their one-environment output
    /// for it. A glob or a selector is a fleet even when it matches one environment, so that
    /// a pipeline reads the same format whatever the repository holds today.
    pub fn single(&self) -> Option<&str> {
        match self.envs.as_slice() {
            [name] if self.selectors.is_empty() && !name.contains(GLOB_CHARACTERS) => Some(name),
            _ => None,
        }
    }

    /// `--env a,b --env-selector 'x=y'`, as errors quote the selection.
    fn flags(&self) -> String {
        let mut flags = Vec::new();
        if !self.envs.is_empty() {
            flags.push(format!("--env {}", self.envs.join(",")));
        }
        flags.extend(self.selectors.iter().map(|s| format!("--env-selector '{s}'")));
        flags.join(" ")
    }
}

/// The environments of repository `repo` (at `rev`) that `selection` selects, sorted by name:
/// each named one (which must exist and not be abstract), the concrete ones each glob matches
/// (a glob matching none is an error), of those the ones whose labels every selector matches
/// (none is an error).
pub fn select_environments(
    repo: &Path,
    rev: Option<&str>,
    selection: &EnvironmentSelection,
) -> Result<Vec<Environment>> {
    let project = open_project(repo, rev)?;
    let selector = Selector::parse_flag(&selection.selectors, "--env-selector")?;
    let known = project.environment_names()?;
    let mut named = BTreeSet::new();
    let mut globs = Vec::new();
    for value in &selection.envs {
        if value.contains(GLOB_CHARACTERS) {
            let glob = GlobBuilder::new(value).literal_separator(true).build().map_err(|err| {
                Error::new(format!("--env `{value}` is not a glob: {}", err.kind()))
                    .with_help("a glob matches environment names with * (any characters), ? (one) and [abc] (one of)")
            })?;
            globs.push((value, glob.compile_matcher()));
        } else if known.contains(value) {
            named.insert(value.as_str());
        } else {
            return Err(
                Error::new(format!("unknown environment `{value}` (--env)")).with_help(known_help(&project, &known)?)
            );
        }
    }
    let candidates: Vec<&String> = known
        .iter()
        .filter(|name| {
            selection.envs.is_empty()
                || named.contains(name.as_str())
                || globs.iter().any(|(_, glob)| glob.is_match(name.as_str()))
        })
        .collect();
    let candidates = load(&project, &candidates)?;
    for (value, glob) in &globs {
        if !candidates.iter().any(|env| !env.is_abstract && glob.is_match(&env.name)) {
            return Err(
                Error::new(format!("--env `{value}` matches no environment")).with_help(known_help(&project, &known)?)
            );
        }
    }
    let mut environments = Vec::new();
    for env in candidates {
        if env.is_abstract {
            if named.contains(env.name.as_str()) {
                // Named on its own, it is refused, saying which environments extend it.
                deployable_environment(&project, &env.name)?;
            }
            continue;
        }
        if selector.matches(&env.labels) {
            environments.push(env);
        }
    }
    if environments.is_empty() {
        return Err(Error::new(format!("no environment matches the selection ({})", selection.flags()))
            .with_help(known_help(&project, &known)?));
    }
    Ok(environments)
}

/// Loads the environments `names`, in parallel, in their order.
fn load(project: &Project, names: &[&String]) -> Result<Vec<Environment>> {
    names.par_iter().map(|name| project.environment(name)).collect()
}

/// The concrete environments of the repository, with their labels, for errors.
fn known_help(project: &Project, known: &[String]) -> Result<String> {
    let names: Vec<&String> = known.iter().collect();
    let described: Vec<String> = load(project, &names)?
        .into_iter()
        .filter(|e| !e.is_abstract)
        .map(|e| {
            let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if labels.is_empty() { e.name } else { format!("{} ({})", e.name, labels.join(",")) }
        })
        .collect();
    Ok(format!("environments: {}", described.join(", ")))
}

/// How many environments a fleet run works on at once. Rendering already uses every core
/// within an environment; more environments at once overlap their waits on the cluster, and
/// each holds its objects and a connection.
pub const PARALLEL_ENVIRONMENTS: usize = 8;

/// The stack of each environment's thread: as the main thread's, for deep templates and values.
const STACK_SIZE: usize = 8 << 20;

/// One environment's result in a fleet run.
pub struct Outcome<T> {
    pub environment: String,
    pub result: Result<T>,
}

/// What a fleet's actions tell while they run, each with the environment it is about.
pub type OnFleetProgress<'a> = &'a (dyn Fn(&str, Progress<'_>) + Sync);

/// [`Context`] for a fleet: one redactor for every environment's secrets.
#[derive(Clone, Copy)]
pub struct FleetContext<'a> {
    pub redactor: &'a Redactor,
    pub on: OnFleetProgress<'a>,
}

/// Runs `action` for each environment, [`PARALLEL_ENVIRONMENTS`] at a time, each on a thread of
/// its own; the outcomes come in the order of `environments`.
fn each<T: Send>(
    environments: &[String],
    cx: FleetContext,
    action: impl Fn(&str, Context) -> Result<T> + Sync,
) -> Vec<Outcome<T>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<T>>>> = environments.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(env) = environments.get(index) else { break };
            let on = |progress: Progress<'_>| (cx.on)(env, progress);
            let result = action(env, Context { redactor: cx.redactor, on: &on });
            *results[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_ENVIRONMENTS.min(environments.len()) {
            std::thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, work)
                .expect("a thread for the environments of a fleet");
        }
    });
    environments
        .iter()
        .zip(results)
        .map(|(env, result)| Outcome {
            environment: env.clone(),
            result: result.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every environment ran"),
        })
        .collect()
}

/// [`super::render::render_formatted`] of each environment, with `options(env)`.
pub fn render_formatted(
    environments: &[String],
    options: impl Fn(&str) -> RenderOptions + Sync,
    format: Format,
    cx: FleetContext,
) -> Vec<Outcome<Texts>> {
    each(environments, cx, |env, cx| super::render::render_formatted(&options(env), cx, format))
}

/// [`super::plan::plan`] of each environment, with `options(env)`. The caller refuses the
/// plans with [`refuse_collisions`] once it has told of the environments that failed.
pub fn plan(
    environments: &[String],
    options: impl Fn(&str) -> PlanOptions + Sync,
    cx: FleetContext,
) -> Vec<Outcome<Planned>> {
    each(environments, cx, |env, cx| block_on(super::plan::plan(&options(env), cx)))
}

/// [`super::drift::drift`] of each environment, with `options(env)`.
pub fn drift(
    environments: &[String],
    options: impl Fn(&str) -> DriftOptions + Sync,
    cx: FleetContext,
) -> Vec<Outcome<crate::drift::Report>> {
    each(environments, cx, |env, cx| block_on(super::drift::drift(&options(env), cx.on)))
}

/// How many colliding objects an error names; the rest are counted.
const NAMED_COLLISIONS: usize = 10;

/// Refuses two environments that would own one object: the same kind (and group), namespace
/// and name in the same cluster (the same server URL), each applying its own and pruning the
/// other's. Objects an environment would delete are not its own any more.
pub fn refuse_collisions(planned: &[Outcome<Planned>]) -> Result<()> {
    let mut owner: HashMap<(&str, &crate::manifest::ObjectKey), &str> = HashMap::new();
    let mut collisions = Vec::new();
    for outcome in planned {
        let Ok(Planned { plan, server: Some(server), .. }) = &outcome.result else { continue };
        for object in plan.objects.iter().filter(|o| o.action != Action::Delete) {
            match owner.get(&(server.as_str(), &object.key)) {
                Some(first) if *first != outcome.environment => collisions
                    .push(format!("{} in {server}: environments `{first}` and `{}`", object.key, outcome.environment)),
                Some(_) => {}
                None => {
                    owner.insert((server.as_str(), &object.key), &outcome.environment);
                }
            }
        }
    }
    if collisions.is_empty() {
        return Ok(());
    }
    let count = collisions.len();
    let more = count.saturating_sub(NAMED_COLLISIONS);
    collisions.truncate(NAMED_COLLISIONS);
    let more = if more > 0 { format!("\n  and {more} more") } else { String::new() };
    Err(Error::new(format!(
        "{count} object(s) would be owned by two selected environments in the same cluster, each applying its own and pruning the other's; nothing is planned:\n  {}{more}",
        collisions.join("\n  ")
    ))
    .with_help("give each environment its own namespaces (or cluster), or select only one of them"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("base.yaml", "abstract: true\nlabels: {tier: prod}\n"),
            ("prod-eu.yaml", "extends: base\nlabels: {region: eu}\n"),
            ("prod-us.yaml", "extends: base\nlabels: {region: us}\n"),
            ("staging.yaml", "labels: {tier: staging, region: eu}\n"),
            ("dev.yaml", "namespace: dev\n"),
        ];
        for (file, text) in files {
            let path = dir.path().join("environments").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn select(envs: &[&str], selectors: &[&str]) -> Result<Vec<String>> {
        let dir = repo();
        let selection = EnvironmentSelection {
            envs: envs.iter().map(|s| s.to_string()).collect(),
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
        };
        Ok(select_environments(dir.path(), None, &selection)?.into_iter().map(|e| e.name).collect())
    }

    #[test]
    fn names_globs_and_labels_select_concrete_environments() {
        assert_eq!(select(&["staging", "dev"], &[]).unwrap(), ["dev", "staging"]);
        assert_eq!(select(&["prod-*"], &[]).unwrap(), ["prod-eu", "prod-us"]);
        // The abstract base matches `*` and is left out.
        assert_eq!(select(&["*"], &[]).unwrap(), ["dev", "prod-eu", "prod-us", "staging"]);
        assert_eq!(select(&[], &["region=eu"]).unwrap(), ["prod-eu", "staging"]);
        assert_eq!(select(&[], &["tier=prod,region in (eu,us)"]).unwrap(), ["prod-eu", "prod-us"]);
        assert_eq!(select(&["prod-*", "staging"], &["region=eu"]).unwrap(), ["prod-eu", "staging"]);
        assert_eq!(select(&["dev", "dev"], &[]).unwrap(), ["dev"]);
    }

    #[test]
    fn unknown_names_empty_globs_and_selectors_and_abstract_names_are_errors() {
        let err = select(&["prod"], &[]).unwrap_err();
        assert_eq!(err.message, "unknown environment `prod` (--env)");
        assert_eq!(
            err.help.as_deref(),
            Some(
                "environments: dev, prod-eu (region=eu,tier=prod), prod-us (region=us,tier=prod), staging (region=eu,tier=staging)"
            )
        );
        assert_eq!(select(&["qa-*"], &[]).unwrap_err().message, "--env `qa-*` matches no environment");
        assert_eq!(select(&["ba*"], &[]).unwrap_err().message, "--env `ba*` matches no environment");
        assert_eq!(
            select(&["dev"], &["tier=prod"]).unwrap_err().message,
            "no environment matches the selection (--env dev --env-selector 'tier=prod')"
        );
        assert!(select(&["base"], &[]).unwrap_err().message.contains("is abstract"));
        assert!(select(&[], &["tier in (a"]).unwrap_err().message.contains("(--env-selector)"));
        assert!(select(&["[a"], &[]).unwrap_err().message.starts_with("--env `[a` is not a glob"));
    }

    #[test]
    fn only_one_plain_name_is_a_single_environment() {
        let selection = |envs: &[&str], selectors: &[&str]| EnvironmentSelection {
            envs: envs.iter().map(|s| s.to_string()).collect(),
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(selection(&["dev"], &[]).single(), Some("dev"));
        assert_eq!(selection(&["dev", "qa"], &[]).single(), None);
        assert_eq!(selection(&["dev*"], &[]).single(), None);
        assert_eq!(selection(&["dev"], &["a=b"]).single(), None);
        assert_eq!(selection(&[], &["a=b"]).single(), None);
    }
}
