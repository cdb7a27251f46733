//! Fleets: the environments a selection names (`--env` names and globs, `--env-selector`
//! labels), and one environment's action run for each of them at once. A fleet is a layer over
//! the other actions: each environment is loaded, decrypted, rendered and compared exactly as
//! alone, and its result (or error) is kept; one environment failing never stops the others.
//! Abstract environments are never part of a fleet.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use globset::GlobBuilder;
use rayon::prelude::*;

use super::apply::{Applied, ApplyActionOptions, RenderedOffline, apply_rendered};
use super::drift::DriftOptions;
use super::plan::{PlanOptions, Planned};
use super::render::{Format, RenderOptions, Texts, deployable_environment};
use super::{Context, OnProgress, Progress, block_on, open_project};
use crate::schedule::{NotRun, Schedule};
use weaver_core::error::{Error, Result};
use weaver_core::limits::Bound;
use weaver_core::manifest::{ObjectKey, ObjectKeyRef};
use weaver_plan::plan::{Action, Owner};
use weaver_project::{Environment, Project, Selector};
use weaver_secrets::Redactor;

/// Which environments: `--env` values (names and globs) and `--env-selector`s, all of which
/// must hold; of those, `--wave`'s, and `--shard`'s part.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSelection {
    /// Names and globs (`prod-*`); every environment when empty.
    pub envs: Vec<String>,
    /// Label selectors of environments' `labels` (`-l`'s syntax).
    pub selectors: Vec<String>,
    /// Only the environments of this wave.
    pub wave: Option<i32>,
    /// Only this part of the environments (see [`Shard`]).
    pub shard: Option<Shard>,
    /// Environment files past this bound are refused unread (`--max-values-bytes`, which bounds
    /// every file of a tenant's repository).
    pub max_file_bytes: Option<Bound<usize>>,
}

/// `--shard INDEX/COUNT`: part INDEX (from 1) of COUNT of the selected environments. Within each
/// wave, the groups of environments that `needs` ties together (an environment alone is a group
/// of one), in the order of their first names, go round-robin to the shards: group 1 to shard 1,
/// group COUNT+1 to shard 1 again. So each wave is spread evenly, an environment never waits for
/// one in another shard of its wave, and the same selection always gives the same parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if (1..=count).contains(&index) => Ok(Shard { index, count }),
            _ => Err("expected INDEX/COUNT with 1 ≤ INDEX ≤ COUNT, such as 2/4 (an Indexed Job's JOB_COMPLETION_INDEX counts from 0: add 1)".to_string()),
        }
    }
}

/// The characters that make an `--env` value a glob.
const GLOB_CHARACTERS: [char; 3] = ['*', '?', '['];

impl EnvironmentSelection {
    /// The environment of one plain `--env NAME`: commands keep their one-environment output
    /// for it. A glob or a selector is a fleet even when it matches one environment, so that
    /// a pipeline reads the same format whatever the repository holds today.
    pub fn single(&self) -> Option<&str> {
        match self.envs.as_slice() {
            [name] if self.selectors.is_empty() && self.wave.is_none() && self.shard.is_none() => {
                Some(name.as_str()).filter(|name| !name.contains(GLOB_CHARACTERS))
            }
            _ => None,
        }
    }

    /// Nothing is asked for: no flag of the selection is given.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty() && self.selectors.is_empty() && self.wave.is_none() && self.shard.is_none()
    }

    /// `--env a,b --env-selector 'x=y'`, as errors quote the selection.
    fn flags(&self) -> String {
        let mut flags = Vec::new();
        if !self.envs.is_empty() {
            flags.push(format!("--env {}", self.envs.join(",")));
        }
        flags.extend(self.selectors.iter().map(|s| format!("--env-selector '{s}'")));
        flags.extend(self.wave.map(|wave| format!("--wave {wave}")));
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
    let project = open_project(repo, rev)?.bounded(selection.max_file_bytes.as_ref());
    select_in(&project, selection)
}

/// [`select_environments`] of a project already open.
pub fn select_in(project: &Project, selection: &EnvironmentSelection) -> Result<Vec<Environment>> {
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
                Error::new(format!("unknown environment `{value}` (--env)")).with_help(known_help(project, &known))
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
    let candidates = load(project, &candidates)?;
    for (value, glob) in &globs {
        if !candidates.iter().any(|env| !env.is_abstract && glob.is_match(&env.name)) {
            return Err(
                Error::new(format!("--env `{value}` matches no environment")).with_help(known_help(project, &known))
            );
        }
    }
    let mut environments = Vec::new();
    for env in candidates {
        if env.is_abstract {
            if named.contains(env.name.as_str()) {
                // Named on its own, it is refused, saying which environments extend it.
                deployable_environment(project, &env.name)?;
            }
            continue;
        }
        if selector.matches(&env.labels) {
            environments.push(env);
        }
    }
    if environments.is_empty() {
        return Err(Error::new(format!("no environment matches the selection ({})", selection.flags()))
            .with_help(known_help(project, &known)));
    }
    for env in &environments {
        if let Some((name, at)) = env.needs.iter().find(|(name, _)| !known.contains(name)) {
            return Err(Error::at(
                at.clone(),
                format!("environment `{}` needs `{name}`, which is not an environment", env.name),
            )
            .with_help(known_help(project, &known)));
        }
    }
    if let Some(wave) = selection.wave {
        let waves: BTreeSet<i32> = environments.iter().map(|e| e.wave).collect();
        environments.retain(|e| e.wave == wave);
        if environments.is_empty() {
            let waves: Vec<String> = waves.iter().map(i32::to_string).collect();
            return Err(Error::new(format!("no selected environment is in wave {wave} ({})", selection.flags()))
                .with_help(format!("the waves of the selection: {}", waves.join(", "))));
        }
    }
    Ok(match selection.shard {
        Some(shard) => shard_of(environments, shard),
        None => environments,
    })
}

/// The environments of `shard` (see [`Shard`]), `environments` sorted by name.
fn shard_of(environments: Vec<Environment>, shard: Shard) -> Vec<Environment> {
    let index: HashMap<&str, usize> = environments.iter().enumerate().map(|(i, e)| (e.name.as_str(), i)).collect();
    // Each environment's group: the first (by name) of those `needs` ties it to in its wave.
    let mut group: Vec<usize> = (0..environments.len()).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for (i, env) in environments.iter().enumerate() {
        for (name, _) in &env.needs {
            if let Some(&j) = index.get(name.as_str()).filter(|&&j| environments[j].wave == env.wave) {
                let (a, b) = (root(&mut group, i), root(&mut group, j));
                group[a.max(b)] = a.min(b);
            }
        }
    }
    // Groups numbered within their wave in the order of their first environments.
    let mut number: HashMap<usize, usize> = HashMap::new();
    let mut groups_in_wave: HashMap<i32, usize> = HashMap::new();
    let mut keep = Vec::new();
    for (i, env) in environments.iter().enumerate() {
        let first = root(&mut group, i);
        let n = *number.entry(first).or_insert_with(|| {
            let next = groups_in_wave.entry(env.wave).or_default();
            *next += 1;
            *next - 1
        });
        keep.push(n % shard.count == shard.index - 1);
    }
    environments.into_iter().zip(keep).filter_map(|(env, keep)| keep.then_some(env)).collect()
}

/// Loads the environments `names`, in parallel, in their order.
fn load(project: &Project, names: &[&String]) -> Result<Vec<Environment>> {
    names.par_iter().map(|name| project.environment(name)).collect()
}

/// The concrete environments of the repository, with their labels, for errors.
fn known_help(project: &Project, known: &[String]) -> String {
    let names: Vec<&String> = known.iter().collect();
    // Labels help to pick; a file that does not load (its own error comes when it is selected)
    // must not hide the mistake being reported, so then the names alone.
    let described: Vec<String> = match load(project, &names) {
        Ok(environments) => environments
            .into_iter()
            .filter(|e| !e.is_abstract)
            .map(|e| {
                let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if labels.is_empty() { e.name } else { format!("{} ({})", e.name, labels.join(",")) }
            })
            .collect(),
        Err(_) => known.to_vec(),
    };
    format!("environments: {}", described.join(", "))
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
    /// Every environment's [`Context::interrupted`].
    pub interrupted: &'a AtomicBool,
}

impl<'a> FleetContext<'a> {
    /// A fleet's context nothing interrupts, as [`Context::new`].
    pub fn new(redactor: &'a Redactor, on: OnFleetProgress<'a>) -> FleetContext<'a> {
        FleetContext { redactor, on, interrupted: &super::NEVER }
    }

    /// This context, interrupted when `interrupted` is set.
    pub fn interruptible(self, interrupted: &'a AtomicBool) -> FleetContext<'a> {
        FleetContext { interrupted, ..self }
    }

    /// The context of one of the environments, whose progress goes to `on`.
    pub(super) fn environment<'b>(&'b self, on: OnProgress<'b>) -> Context<'b> {
        Context { redactor: self.redactor, on, interrupted: self.interrupted }
    }
}

/// Runs `action` for each environment, [`PARALLEL_ENVIRONMENTS`] at a time, each on a thread of
/// its own; the outcomes come in the order of `environments`. Each action is given the
/// environment as the selection loaded it (`Selection::loaded`): it is read and parsed once.
fn each<T: Send>(
    environments: &[Arc<Environment>],
    cx: FleetContext,
    action: impl Fn(&Arc<Environment>, Context) -> Result<T> + Sync,
) -> Vec<Outcome<T>> {
    let unordered = vec![Vec::new(); environments.len()];
    let ended = schedule(
        &unordered,
        PARALLEL_ENVIRONMENTS,
        &|_| None,
        &|_, _, _| String::new(),
        |index| {
            let env = &environments[index];
            let on = |progress: Progress<'_>| (cx.on)(&env.name, progress);
            action(env, cx.environment(&on))
        },
        |_| None,
    );
    environments
        .iter()
        .zip(ended)
        .map(|(env, ended)| Outcome {
            environment: env.name.clone(),
            result: match ended {
                Ended::Ran(result) => result,
                Ended::Skipped(_) | Ended::NotStarted(_) => unreachable!("nothing holds back these environments"),
            },
        })
        .collect()
}

/// How an environment of a `schedule` ended.
pub enum Ended<T> {
    Ran(T),
    /// Not started, because one it waited for did not succeed: why.
    Skipped(String),
    /// Not started, because the run stopped starting environments: why.
    NotStarted(String),
}

/// Runs `run(i)` for each environment `i`, up to `parallel` at once, each on a thread of its
/// own, each once all of `blockers[i]` (environments before it) ran and succeeded
/// ([`crate::schedule`]). One that waited for an environment that did not succeed is skipped,
/// `blocked(i, blocker, what became of the blocker)` saying why; once `hold(whether one
/// failed)` gives a reason, no environment starts any more. `failure` says whether (and how) a
/// run failed. A run that panics raises its panic again once the others ended.
fn schedule<T: Send>(
    blockers: &[Vec<usize>],
    parallel: usize,
    hold: &(dyn Fn(bool) -> Option<String> + Sync),
    blocked: &(dyn Fn(usize, usize, &str) -> String + Sync),
    run: impl Fn(usize) -> T + Sync,
    failure: impl Fn(&T) -> Option<&'static str> + Sync,
) -> Vec<Ended<T>> {
    type Panic = Box<dyn std::any::Any + Send>;
    let run = &run;
    let ran = std::thread::scope(|scope| {
        let start = |index: usize| {
            let (sent, received) = futures::channel::oneshot::channel();
            std::thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, move || {
                    let _ = sent.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(index))));
                })
                .expect("a thread for an environment of a fleet");
            async move {
                let ran: std::thread::Result<T> = received.await.unwrap_or_else(|_| Err(Box::new("no answer")));
                ran.map(Ended::Ran)
            }
        };
        let not_run = |index: usize, why: NotRun| -> Result<Ended<T>, Panic> {
            Ok(match why {
                NotRun::Blocked { by, what } => Ended::Skipped(blocked(index, by, what)),
                NotRun::Held(reason) => Ended::NotStarted(reason),
            })
        };
        let failed = |ended: &Result<Ended<T>, Panic>| match ended {
            Ok(Ended::Ran(result)) => failure(result),
            Ok(Ended::Skipped(_)) => Some("was skipped"),
            Ok(Ended::NotStarted(_)) => Some("was not started"),
            Err(_) => Some("panicked"),
        };
        let schedule = Schedule { blockers, parallel };
        futures::executor::block_on(schedule.run(hold, start, not_run, failed, |_, _| {}))
    });
    ran.results.into_iter().map(|ended| ended.unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
}

/// [`super::render::render_formatted`] of each environment, with `options(env)`.
pub fn render_formatted(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> RenderOptions + Sync,
    format: Format,
    cx: FleetContext,
) -> Vec<Outcome<Texts>> {
    each(environments, cx, |env, cx| {
        let mut options = options(&env.name);
        options.selection.loaded = Some(Arc::clone(env));
        super::render::render_formatted(&options, cx, format)
    })
}

/// [`super::plan::plan`] of each environment, with `options(env)`. The caller refuses the
/// plans with [`refuse_collisions`] once it has told of the environments that failed.
pub fn plan(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> PlanOptions + Sync,
    cx: FleetContext,
) -> Vec<Outcome<Planned>> {
    each(environments, cx, |env, cx| {
        let mut options = options(&env.name);
        options.render.selection.loaded = Some(Arc::clone(env));
        block_on(super::plan::plan(&options, cx))
    })
}

/// [`super::drift::drift`] of each environment, with `options(env)`.
pub fn drift(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> DriftOptions + Sync,
    cx: FleetContext,
) -> Vec<Outcome<weaver_plan::release::drift::Report>> {
    each(environments, cx, |env, cx| {
        let mut options = options(&env.name);
        options.selection.loaded = Some(Arc::clone(env));
        block_on(super::drift::drift(&options, cx))
    })
}

/// [`super::status::status`] of each environment, with `options(env)`.
pub fn status(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> super::status::StatusOptions + Sync,
    cx: FleetContext,
) -> Vec<Outcome<weaver_plan::release::status::Report>> {
    each(environments, cx, |env, cx| {
        let mut options = options(&env.name);
        options.selection.loaded = Some(Arc::clone(env));
        block_on(super::status::status(&options, cx.on))
    })
}

/// How a fleet apply runs its environments.
#[derive(Debug, Clone, Copy)]
pub struct FleetApplyOptions {
    /// Environments applied at once (`--max-parallel`).
    pub max_parallel: usize,
    /// Start no more environments once one failed (`--fail-fast`).
    pub fail_fast: bool,
}

/// One environment of a fleet apply, in the order the fleet applies them.
pub struct FleetApplied {
    pub environment: String,
    pub wave: i32,
    /// Its `needs`, as its file says.
    pub needs: Vec<String>,
    /// It failed in its render (its templates, values, charts): nothing of it reached the
    /// cluster.
    pub unrendered: bool,
    pub ended: Ended<Result<Applied>>,
}

/// The environments of a fleet apply in order, and what each waits for (see [`apply_order`]).
pub(crate) type Order<'a> = (Vec<&'a Arc<Environment>>, Vec<Vec<usize>>);

/// The order of a fleet apply (and of an EnvironmentSync's environments): `environments`
/// sorted by wave, each after those it `needs` (among the selected ones), with what each waits
/// for (positions in the order). An error (nothing is applied) for a
/// cycle of `needs`, or an environment needing one of a later wave.
pub fn apply_order<'a>(environments: &'a [Arc<Environment>], on: OnFleetProgress) -> Result<Order<'a>> {
    let index: HashMap<&str, usize> = environments.iter().enumerate().map(|(i, e)| (e.name.as_str(), i)).collect();
    let mut needs = Vec::new();
    for env in environments {
        let mut mine = Vec::new();
        for (name, at) in &env.needs {
            let Some(&need) = index.get(name.as_str()) else {
                on(
                    &env.name,
                    Progress::Status(format!(
                        "needs environment `{name}`, which is not selected: it is taken as applied (by another run, wave or shard)"
                    )),
                );
                continue;
            };
            let wave = environments[need].wave;
            if wave > env.wave {
                return Err(Error::at(
                    at.clone(),
                    format!("environment `{}` (wave {}) needs `{name}`, of a later wave ({wave})", env.name, env.wave),
                )
                .with_help(format!(
                    "a wave starts once every environment of the earlier waves applied: give `{name}` wave {} or less, or `{}` wave {wave} or more; nothing was applied",
                    env.wave, env.name
                )));
            }
            mine.push(need);
        }
        needs.push(mine);
    }
    let waves: Vec<i32> = environments.iter().map(|e| e.wave).collect();
    let order = apply_sequence(&waves, &needs).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|&i| environments[i].name.as_str()).collect();
        let at = environments[cycle[0]].needs.iter().find(|(n, _)| *n == names[1]).map(|(_, at)| at.clone());
        let message = format!("cycle in environments' `needs`: {}", names.join(" → "));
        match at {
            Some(at) => Error::at(at, message),
            None => Error::new(message),
        }
        .with_help("remove one of these `needs` entries; nothing was applied")
    })?;
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let blockers = order
        .iter()
        .map(|&i| {
            let earlier = order.iter().take_while(|&&j| environments[j].wave < environments[i].wave);
            let mut mine: BTreeSet<usize> = earlier.map(|j| position[j]).collect();
            mine.extend(needs[i].iter().map(|j| position[j]));
            mine.into_iter().collect()
        })
        .collect();
    Ok((order.into_iter().map(|i| &environments[i]).collect(), blockers))
}

/// The order a fleet apply takes its environments in (indexes into a list sorted by name, with
/// each one's wave and the indexes it `needs`): by wave, each after those it needs; or a cycle
/// of `needs`. `weaver report merge` puts the shards' environments in this order too.
pub(crate) fn apply_sequence(waves: &[i32], needs: &[Vec<usize>]) -> std::result::Result<Vec<usize>, Vec<usize>> {
    let mut order = weaver_project::environment::needs_order(needs)?;
    // Sorted by wave, the needs order within: every environment comes after those it waits for.
    order.sort_by_key(|&i| waves[i]);
    Ok(order)
}

/// [`super::apply::apply`] of each environment, with `options(env)`: by wave (every environment
/// of a wave once all of the earlier waves applied, their waits passed), each after the
/// environments it `needs`, up to `fleet.max_parallel` at once. One that needs an environment
/// that did not apply (or of an earlier wave that did not) is skipped, saying why; with
/// `fleet.fail_fast`, once one fails no more start; once `cx.interrupted`, none starts and
/// those running stop as an interrupted apply does. An error, before anything is applied, when
/// the order cannot be made, or when two environments would own one object in one cluster
/// (every environment is rendered first): two selected ones, or, of a fleet of more than one,
/// a selected one and the one the live object is labelled with, which the selection leaves out
/// (unless the selected one takes ownership).
pub fn apply(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> ApplyActionOptions + Sync,
    fleet: FleetApplyOptions,
    cx: FleetContext,
) -> Result<Vec<FleetApplied>> {
    apply_rendering(environments, options, &super::apply::render_offline, fleet, cx)
}

/// How a fleet apply renders each environment: [`super::apply::render_offline`], or that within
/// the caller's bounds (the controller's renders take turns).
pub type Render<'a> = &'a (dyn Fn(&ApplyActionOptions, Context) -> Result<RenderedOffline> + Sync);

/// An environment of a fleet apply, rendered before anything is applied.
struct Rendered {
    offline: RenderedOffline,
    /// Its cluster's server, None when its context cannot be read (its apply fails connecting).
    server: Option<String>,
    /// Its objects live and labelled as another environment's (see
    /// [`RenderedOffline::labelled_elsewhere`]); what failed reading them fails its apply.
    elsewhere: Result<Vec<(ObjectKey, Owner)>>,
}

/// [`apply`], each environment rendered by `render`.
pub fn apply_rendering(
    environments: &[Arc<Environment>],
    options: impl Fn(&str) -> ApplyActionOptions + Sync,
    render: Render,
    fleet: FleetApplyOptions,
    cx: FleetContext,
) -> Result<Vec<FleetApplied>> {
    let (order, blockers) = apply_order(environments, cx.on)?;
    // Alone, an environment's apply refuses what it would take before it writes (under its
    // lock); in a fleet, the others may have written by then.
    let read_owners = environments.len() > 1;
    // Before anything is written, every environment is rendered (each apply goes on from its
    // render), so that two environments that would own one object are refused.
    let rendered = each(environments, cx, |env, cx| {
        let mut options = options(&env.name);
        options.render.selection.loaded = Some(Arc::clone(env));
        let offline = render(&options, cx)?;
        // A context that cannot be read fails the environment's apply when it connects.
        let server = block_on(super::server_of(options.connect.clone(), env)).ok();
        let elsewhere = match read_owners && !options.settings.take_ownership && server.is_some() {
            true => block_on(offline.labelled_elsewhere(&options, cx.on)),
            false => Ok(Vec::new()),
        };
        Ok(Rendered { offline, server, elsewhere })
    });
    let selected: HashSet<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let mut owned = Vec::new();
    let mut taken = Vec::new();
    for outcome in &rendered {
        let Ok(Rendered { offline, server: Some(server), elsewhere }) = &outcome.result else { continue };
        let environment = outcome.environment.as_str();
        owned.push((environment, server.as_str(), offline.owned_keys()));
        // Labelled as a selected environment's, it is that one's to give up or keep: two that
        // keep it are refused above, one that gives it up prunes it in order.
        let elsewhere = elsewhere.iter().flatten().filter(|(_, owner)| !selected.contains(owner.environment.as_str()));
        taken.extend(elsewhere.map(|(key, owner)| (environment, server.as_str(), key, owner)));
    }
    let keys = owned.iter().map(|(env, server, keys)| (*env, *server, keys.iter().map(ObjectKey::borrowed)));
    refuse_owned_twice(keys, taken, "nothing was applied")?;
    let position: HashMap<&str, usize> = environments.iter().enumerate().map(|(i, e)| (e.name.as_str(), i)).collect();
    let unrendered: HashSet<String> =
        rendered.iter().filter(|o| o.result.is_err()).map(|o| o.environment.clone()).collect();
    let rendered: Vec<Mutex<Option<Result<Rendered>>>> =
        rendered.into_iter().map(|outcome| Mutex::new(Some(outcome.result))).collect();
    let hold = |failed: bool| {
        if cx.interrupted.load(Ordering::SeqCst) {
            Some("the apply was interrupted".to_string())
        } else if fleet.fail_fast && failed {
            Some("an environment failed (--fail-fast)".to_string())
        } else {
            None
        }
    };
    let blocked = |i: usize, j: usize, what: &str| {
        let (env, blocker) = (order[i], order[j]);
        match env.needs.iter().any(|(name, _)| *name == blocker.name) {
            true => format!("it needs environment `{}`, which {what}", blocker.name),
            false => format!("wave {} did not complete: environment `{}` {what}", blocker.wave, blocker.name),
        }
    };
    let ended = schedule(
        &blockers,
        fleet.max_parallel,
        &hold,
        &blocked,
        |index| {
            let env = order[index];
            let on = |progress: Progress<'_>| (cx.on)(&env.name, progress);
            on(Progress::Info(format!("applying (wave {})", env.wave)));
            let mut options = options(&env.name);
            options.render.selection.loaded = Some(Arc::clone(env));
            let Rendered { offline, elsewhere, .. } = rendered[position[env.name.as_str()]]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .expect("each environment is applied once")?;
            elsewhere?;
            // Its own flag, which the fleet's sets: losing its lock stops this apply alone.
            let own = AtomicBool::new(false);
            let offline = offline.restarted();
            let applying = apply_rendered(&options, offline, Context { interrupted: &own, ..cx.environment(&on) });
            block_on(crate::apply::interrupted_by(cx.interrupted, &own, applying))
        },
        |result| match result {
            Ok(applied) if applied.report.interrupted => Some("was interrupted"),
            Ok(applied) if applied.report.failed() || applied.lock_lost.is_some() => Some("failed"),
            Ok(_) => None,
            Err(_) => Some("failed"),
        },
    );
    Ok(order
        .iter()
        .zip(ended)
        .map(|(env, ended)| {
            let slot = rendered[position[env.name.as_str()]].lock().unwrap_or_else(|e| e.into_inner()).take();
            let ended = match (ended, slot) {
                // Held back (interrupted, --fail-fast) after its render failed: that is its end.
                (Ended::NotStarted(_), Some(Err(err))) => Ended::Ran(Err(err)),
                (ended, _) => ended,
            };
            FleetApplied {
                environment: env.name.clone(),
                wave: env.wave,
                needs: env.needs.iter().map(|(name, _)| name.clone()).collect(),
                unrendered: unrendered.contains(&env.name),
                ended,
            }
        })
        .collect())
}

/// How many colliding objects an error names; the rest are counted.
const NAMED_COLLISIONS: usize = 10;

/// Refuses the plans of two environments that would own one object (see `refuse_owned_twice`).
/// Objects an environment would delete are not its own any more.
pub fn refuse_collisions(planned: &[Outcome<Planned>]) -> Result<()> {
    let owned = planned.iter().filter_map(|outcome| {
        let Ok(Planned { plan, server: Some(server), .. }) = &outcome.result else { return None };
        let keys = plan.objects.iter().filter(|o| o.action != Action::Delete).map(|o| o.key.borrowed());
        Some((outcome.environment.as_str(), server.as_str(), keys))
    });
    refuse_owned_twice(owned, std::iter::empty(), "nothing is planned")
}

/// An object a selected environment would own, live and labelled as an environment's the
/// selection leaves out: the environment, its server, the object and whose it is.
type Taken<'k> = (&'k str, &'k str, &'k ObjectKey, &'k Owner);

/// Refuses two environments that would own one object: the same kind (and group), namespace
/// and name in the same cluster (the same server URL), each applying its own and pruning the
/// other's. `owned` gives each environment, its server and the objects it would own; `taken`
/// the objects of theirs that are live and another environment's, which the selection leaves
/// out; `then` says what became of the run.
fn refuse_owned_twice<'k, K>(
    owned: impl Iterator<Item = (&'k str, &'k str, K)>,
    taken: impl IntoIterator<Item = Taken<'k>>,
    then: &str,
) -> Result<()>
where
    K: Iterator<Item = ObjectKeyRef<'k>>,
{
    let mut owner: HashMap<(&str, ObjectKeyRef), &str> = HashMap::new();
    let mut collisions = Vec::new();
    for (environment, server, keys) in owned {
        for key in keys {
            match owner.get(&(server, key)) {
                Some(first) if *first != environment => collisions
                    .push(format!("{} in {server}: environments `{first}` and `{environment}`", ObjectKey::from(key))),
                Some(_) => {}
                None => {
                    owner.insert((server, key), environment);
                }
            }
        }
    }
    let selected_only = collisions.len();
    collisions.extend(taken.into_iter().map(|(environment, server, key, owner)| {
        format!(
            "{key} in {server}: environment `{environment}`, and environment `{}` (release {}), whose labels it carries and which is not selected",
            owner.environment, owner.release
        )
    }));
    if collisions.is_empty() {
        return Ok(());
    }
    let count = collisions.len();
    let (whose, help) = match count == selected_only {
        true => ("two selected environments", ""),
        false => (
            "two environments",
            "; an object applied by an environment the selection leaves out moves with `weaver apply --env <one> --take-ownership`",
        ),
    };
    let more = count.saturating_sub(NAMED_COLLISIONS);
    collisions.truncate(NAMED_COLLISIONS);
    let more = if more > 0 { format!("\n  and {more} more") } else { String::new() };
    Err(Error::new(format!(
        "{count} object(s) would be owned by {whose} in the same cluster, each applying its own and pruning the other's; {then}:\n  {}{more}",
        collisions.join("\n  ")
    ))
    .with_help(format!("give each environment its own namespaces (or cluster), or select only one of them{help}")))
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
            ..Default::default()
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
    fn an_unknown_name_is_reported_even_when_another_environment_does_not_load() {
        let dir = repo();
        std::fs::write(dir.path().join("environments/broken.yaml"), "releases: [\n").unwrap();
        let selection = EnvironmentSelection { envs: vec!["prod".to_string()], ..Default::default() };
        let err = select_environments(dir.path(), None, &selection).unwrap_err();
        assert_eq!(err.message, "unknown environment `prod` (--env)");
        assert_eq!(err.help.as_deref(), Some("environments: base, broken, dev, prod-eu, prod-us, staging"));
    }

    #[test]
    fn waves_and_shards_take_a_stable_part_keeping_what_needs_ties_in_one_shard() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("a", "wave: 0\n"),
            ("b", "needs: [a]\n"),
            ("c", ""),
            ("d", ""),
            ("e", "wave: 1\nneeds: [a]\n"),
            ("f", "wave: 1\n"),
            ("g", "wave: 1\n"),
        ];
        for (name, text) in files {
            let path = dir.path().join("environments").join(format!("{name}.yaml"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let select = |wave: Option<i32>, shard: Option<&str>| -> Result<Vec<String>> {
            let selection = EnvironmentSelection {
                envs: vec!["*".into()],
                wave,
                shard: shard.map(|s| s.parse().unwrap()),
                ..Default::default()
            };
            Ok(select_environments(dir.path(), None, &selection)?.into_iter().map(|e| e.name).collect())
        };
        assert_eq!(select(Some(1), None).unwrap(), ["e", "f", "g"]);
        // Wave 0's groups: {a, b} (b needs a), {c}, {d}; wave 1's: {e} (its need is of wave 0), {f}, {g}.
        assert_eq!(select(None, Some("1/2")).unwrap(), ["a", "b", "d", "e", "g"]);
        assert_eq!(select(None, Some("2/2")).unwrap(), ["c", "f"]);
        assert_eq!(select(Some(0), Some("2/3")).unwrap(), ["c"]);
        assert_eq!(select(Some(1), Some("3/3")).unwrap(), ["g"]);
        // More shards than groups: a shard may be empty.
        assert_eq!(select(Some(1), Some("4/4")).unwrap(), Vec::<String>::new());
        let err = select(Some(2), None).unwrap_err();
        assert_eq!(err.message, "no selected environment is in wave 2 (--env * --wave 2)");
        assert_eq!(err.help.as_deref(), Some("the waves of the selection: 0, 1"));
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    /// A run that panics ends the schedule with its panic, once the others are done, rather than
    /// leaving them waiting for it.
    #[test]
    fn a_panicking_run_raises_its_panic_instead_of_hanging_the_others() {
        let (sent, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let scheduled = std::panic::catch_unwind(|| {
                // 1 runs beside 0 and waits on nothing; 2 waits for 0, which panics.
                schedule(
                    &[vec![], vec![], vec![0]],
                    2,
                    &|_| None,
                    &|i, j, what| format!("{i} waits for {j}, which {what}"),
                    |i| {
                        if i == 0 {
                            panic!("a bug");
                        }
                        i
                    },
                    |_| None,
                )
            });
            sent.send(scheduled.is_err()).unwrap();
        });
        let panicked = received.recv_timeout(std::time::Duration::from_secs(20)).expect("the schedule ended");
        assert!(panicked);
    }

    #[test]
    fn only_one_plain_name_is_a_single_environment() {
        let selection = |envs: &[&str], selectors: &[&str]| EnvironmentSelection {
            envs: envs.iter().map(|s| s.to_string()).collect(),
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(selection(&["dev"], &[]).single(), Some("dev"));
        assert_eq!(selection(&["dev", "qa"], &[]).single(), None);
        assert_eq!(selection(&["dev*"], &[]).single(), None);
        assert_eq!(selection(&["dev"], &["a=b"]).single(), None);
        assert_eq!(selection(&[], &["a=b"]).single(), None);
        let waved = EnvironmentSelection { wave: Some(1), ..selection(&["dev"], &[]) };
        assert_eq!(waved.single(), None);
        assert!(!waved.is_empty() && selection(&[], &[]).is_empty());
    }
}
