//! The action layer: one use case a file (render, plan, apply, drift, history, rollback), each
//! composing the pipeline (load, select, decrypt, render, observe, plan, apply, record) from
//! the domain modules and `cluster/`. A front end (a command, a CI bot, an HTTP API) calls one
//! action with typed options and formats its typed result. Actions never print: they tell
//! their caller what happens through [`Progress`].

pub mod apply;
pub mod bootstrap;
pub mod charts;
pub mod check;
pub mod drift;
pub mod fleet;
pub mod history;
pub mod hydrate;
pub mod images;
pub mod import;
pub mod init;
pub mod install;
pub mod judgments;
pub mod manifests;
pub mod migrate;
mod notifications;
pub mod object;
pub mod plan;
pub mod promote;
pub mod push;
mod removed;

pub use removed::PruneReleases;
pub mod render;
pub mod renders;
pub mod report;
pub mod rollback;
pub mod status;
pub mod sync;
pub mod tenant;
#[cfg(test)]
mod testing;
pub mod verify;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::changed::Comparison;
use weaver_cluster::{Cluster, ConnectOptions, SharedServers};
use weaver_core::error::{Error, Result};
use weaver_git::GitRepo;
use weaver_project::source::PathRef;
use weaver_project::{Environment, FsSource, Project, Release};
use weaver_secrets::{Identities, IdentityOrigin, IdentitySources, Redactor};

/// What an action tells its caller while it runs.
pub enum Progress<'a> {
    /// A phase (`load`, `decrypt`, `render`, `connect`, `observe`, `plan`, `apply`) took this long.
    Phase(&'static str, Duration),
    /// What was done, for a verbose run.
    Info(String),
    /// Something the user should know; the action goes on.
    Warning(String),
    /// A result the user always sees, such as a release left out or a lock being waited for.
    Status(String),
    /// The action starts changing the cluster: from here on an interruption
    /// ([`Context::interrupted`]) should stop it starting new work, so that what it did is
    /// recorded, rather than end it.
    Writing,
    /// The apply's own events: objects, releases, readiness.
    Apply(crate::apply::Event<'a>),
    /// How a notification of the environment (`notifications:`) went: a failure is a warning,
    /// never the action's error.
    Notified(crate::notify::Delivery),
}

impl Progress<'_> {
    /// The progress as it outlives what it was told of; None for the apply's events, which
    /// borrow the apply's results (only the apply tells them, from its own task).
    fn owned(self) -> Option<Progress<'static>> {
        Some(match self {
            Progress::Phase(name, took) => Progress::Phase(name, took),
            Progress::Info(text) => Progress::Info(text),
            Progress::Warning(text) => Progress::Warning(text),
            Progress::Status(text) => Progress::Status(text),
            Progress::Writing => Progress::Writing,
            Progress::Apply(_) => {
                debug_assert!(false, "an apply's events are told from its own task, not blocking work");
                return None;
            }
            Progress::Notified(delivery) => Progress::Notified(delivery),
        })
    }
}

/// Where an action's [`Progress`] goes.
pub type OnProgress<'a> = &'a (dyn Fn(Progress<'_>) + Sync);

/// What an action needs from its caller besides its options.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Every decrypted value is registered here, for the caller to redact what it shows.
    pub redactor: &'a Redactor,
    pub on: OnProgress<'a>,
    /// Set when the caller wants the action to stop (Ctrl-C in the CLI, the controller's stop):
    /// an action that writes stops between steps and says what was and was not done. An apply
    /// that loses its environment's lock sets it too, to start no more work.
    pub interrupted: &'a AtomicBool,
}

/// The flag of the contexts nothing interrupts.
static NEVER: AtomicBool = AtomicBool::new(false);

impl<'a> Context<'a> {
    /// A context nothing interrupts, for a caller without a stop signal. Its flag is shared by
    /// the whole process, so an action that writes, which sets its flag when it loses its lock,
    /// is given one of its own ([`Context::interruptible`]).
    pub fn new(redactor: &'a Redactor, on: OnProgress<'a>) -> Context<'a> {
        Context { redactor, on, interrupted: &NEVER }
    }

    /// This context, interrupted when `interrupted` is set.
    pub fn interruptible(self, interrupted: &'a AtomicBool) -> Context<'a> {
        Context { interrupted, ..self }
    }
}

/// Runs async cluster work from synchronous code (a command, an environment of a fleet) on the
/// process's one runtime, the caller's future on its own thread.
pub use weaver_net::runtime::block_on;

/// Runs CPU-bound work (decrypting, rendering, reading git, judging) from an async action on
/// tokio's blocking pool, so that the task awaiting it goes on: the controller's reconcile keeps
/// writing its status and hears its stop signal while it renders, and a stopped reconcile stops
/// waiting at once (the work, which owns what it reads, ends on its own: a render at its
/// `RenderLimits` time or the controller's stop). Without a runtime, in
/// place. Work that tells progress or registers secret values runs in [`blocking_with`].
pub async fn blocking<T, W>(work: W) -> T
where
    T: Send + 'static,
    W: FnOnce() -> T + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    // Its logs keep the caller's span (the reconcile's object, in the controller).
    let span = tracing::Span::current();
    joined(tokio::task::spawn_blocking(move || span.in_scope(work)).await)
}

/// The work's result; its panic goes on in the awaiting task, as if the work had run there.
fn joined<T>(done: Result<T, tokio::task::JoinError>) -> T {
    match done {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down cancels blocking work, and it drops this task first.
        Err(err) => panic!("the blocking pool stopped the work: {err}"),
    }
}

/// [`blocking`], the progress the work tells handed to `on` on the awaiting task, in order.
pub async fn blocking_telling<T, W>(on: OnProgress<'_>, work: W) -> T
where
    T: Send + 'static,
    W: FnOnce(OnProgress<'_>) -> T + Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return work(on);
    }
    let (sender, mut told) = tokio::sync::mpsc::unbounded_channel();
    let span = tracing::Span::current();
    let mut working = tokio::task::spawn_blocking(move || {
        // The awaiting task may have stopped listening: then nobody is left to tell.
        span.in_scope(|| {
            work(&move |progress: Progress<'_>| _ = progress.owned().map(|progress| sender.send(progress)))
        })
    });
    loop {
        tokio::select! {
            biased;
            Some(progress) = told.recv() => on(progress),
            done = &mut working => {
                while let Ok(progress) = told.try_recv() {
                    on(progress);
                }
                return joined(done);
            }
        }
    }
}

/// [`blocking_telling`], the work given a [`Context`]: the values it decrypts are registered
/// with `cx`'s redactor. The work's context is never interrupted, as the work cannot borrow
/// `cx`'s flag: it writes nothing, and the action awaiting it hears the interruption.
pub async fn blocking_with<T, W>(cx: Context<'_>, work: W) -> T
where
    T: Send + 'static,
    W: FnOnce(Context<'_>) -> T + Send + 'static,
{
    let redactor = cx.redactor.clone();
    blocking_telling(cx.on, move |on| work(Context::new(&redactor, on))).await
}

/// Judges in place what the awaiting task borrows (a drift over an observation `weaver ui` keeps,
/// with the cluster's discovery), which cannot move to the blocking pool: on a multi-threaded
/// runtime's worker, the worker's other tasks are handed on first (`block_in_place`); on a
/// single-threaded runtime (tests only) or without one, in place.
pub fn judging_in_place<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Reports how long the phase begun at `started` took.
fn phase(on: OnProgress, name: &'static str, started: Instant) {
    on(Progress::Phase(name, started.elapsed()));
}

/// The repository at `repo` as it is in the working tree, or as it was at commit `rev` (`--rev`).
pub fn open_project(repo: &Path, rev: Option<&str>) -> Result<Project> {
    Ok(match rev {
        None => Project::new(Arc::new(FsSource::new(repo))),
        Some(rev) => {
            let git = GitRepo::open(repo)?;
            Project::new(Arc::new(git.tree_source(&git.resolve(rev, "--rev")?)?))
        }
    })
}

/// The directories of the repository that a command's output directory (`flag`) must not be:
/// its root (a release or environment named `charts` would write into `charts/`) and anything
/// below `charts/`, `environments/` or `secrets/`, where written files would be read back as
/// the repository's own by the next render.
pub fn refuse_repository_dirs(flag: &str, dir: &Path, repo: &Path) -> Result<()> {
    let (Some(dir), Some(repo)) = (resolved(dir), resolved(repo)) else { return Ok(()) };
    let Ok(inside) = dir.strip_prefix(&repo) else { return Ok(()) };
    let first = inside.components().next();
    let reads = ["charts", "environments", "secrets"];
    match first {
        None => Err(Error::new(format!("{flag} {} is the repository's root", dir.display()))),
        Some(std::path::Component::Normal(part)) if reads.iter().any(|r| part == *r) => Err(Error::new(format!(
            "{flag} {} is inside the repository's {}/, which the next render would read",
            dir.display(),
            part.to_string_lossy()
        ))),
        _ => return Ok(()),
    }
    .map_err(|err| err.with_help("write to a directory of its own, such as rendered/ (or one outside the repository)"))
}

/// Refuses, before anything is written, to write `files` (paths relative to `repo`) where one
/// exists, or where something that is not a directory stands in the way of one (a file
/// `charts` for `charts/app/chart.yaml`): the error names each; `help` says what to do.
fn refuse_existing<'p>(repo: &Path, files: impl Iterator<Item = &'p Path>, help: &str) -> Result<()> {
    let mut existing: Vec<String> = Vec::new();
    for file in files {
        if let Some(in_the_way) = in_the_way(repo, file).map(|path| path.display().to_string())
            && !existing.contains(&in_the_way)
        {
            existing.push(in_the_way);
        }
    }
    let Some((first, others)) = existing.split_first() else { return Ok(()) };
    let and = match others {
        [] => String::new(),
        others => format!(" (and {})", others.join(", ")),
    };
    Err(Error::at(weaver_core::error::Location::file(first), format!("already exists{and}")).with_help(help))
}

/// What stands where `file` (relative to `repo`) would be written: the file itself, or the first
/// part of its path that exists and is not a directory.
fn in_the_way(repo: &Path, file: &Path) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    let mut parts = file.components().peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        let at = repo.join(&path);
        at.symlink_metadata().ok()?;
        if parts.peek().is_none() || !at.is_dir() {
            return Some(path);
        }
    }
    None
}

/// Writes `files` (paths relative to `repo`, made with their directories), replacing those
/// that exist when `replace`; otherwise a file that appeared since [`refuse_existing`] looked
/// is an error, not replaced. Returns their paths, in order.
fn write_files(repo: &Path, files: &[(PathBuf, String)], replace: bool) -> Result<Vec<PathBuf>> {
    use std::io::Write;
    let mut written = Vec::new();
    for (file, content) in files {
        let full = repo.join(file);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io("create directory", parent, err))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .create_new(!replace)
            .open(&full)
            .and_then(|mut out| out.write_all(content.as_bytes()))
            .map_err(|err| Error::io("write", &full, err))?;
        written.push(file.clone());
    }
    Ok(written)
}

/// `path` made absolute with every link of its existing part resolved, the rest as written.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Some(rest.iter().rev().fold(real, |path: PathBuf, part| path.join(part)));
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

/// Compares commit `base` with `head` (the working tree when `None`); the flags name where the
/// revisions were given, for errors.
pub fn compare(repo: &Path, (base, base_flag): (&str, &str), head: Option<(&str, &str)>) -> Result<Comparison> {
    let git = GitRepo::open(repo)?;
    let base = git.resolve(base, base_flag)?;
    let head = head.map(|(rev, flag)| git.resolve(rev, flag)).transpose()?;
    Comparison::new(&git, base, head)
}

/// Where an action's age identities come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// The CLI's search, in the documented order: this file (`--identity`) first, then the
    /// environment variables, the environment's `identityFile`, the default file.
    Search(Option<PathBuf>),
    /// These alone, whatever the environment names: the controller's, from a Secret, so that
    /// a tenant's repository cannot point it at a key file of the controller's pod (nor at its
    /// variables: a notification's `fromEnv` is refused).
    Given { origin: String, identities: Arc<secrecy::SecretString> },
}

impl Keys {
    /// Whether the action runs for this machine's user (the CLI), and so may read this
    /// machine's environment variables: never for a tenant of the controller.
    pub fn own_machine(&self) -> bool {
        matches!(self, Keys::Search(_))
    }

    /// The files [`Keys::load`] may read the identities from, whether they exist or not: none
    /// for keys given.
    pub fn files(&self, repo: &Path, identity_file: Option<&PathRef>) -> Vec<PathBuf> {
        match self {
            Keys::Search(flag) => identity_sources(repo, flag.as_deref(), identity_file).files(),
            Keys::Given { .. } => Vec::new(),
        }
    }

    /// The identities, for repository `repo` and the environment's `identityFile`. A relative
    /// `identityFile` is a key on this machine, relative to `repo`, even under --rev: private
    /// keys are not read from git history.
    pub fn load(&self, repo: &Path, identity_file: Option<&PathRef>) -> Result<Identities> {
        Ok(match self {
            Keys::Search(flag) => load_identities(repo, flag.as_deref(), identity_file)?,
            Keys::Given { origin, identities } => {
                use secrecy::ExposeSecret;
                Identities::given(IdentityOrigin::Given(origin.clone()), identities.expose_secret())?
            }
        })
    }
}

/// Age identities in the documented order: `flag` (--identity), the environment variables,
/// the environment's `identityFile`, the default file (see [`Keys::load`]).
pub fn load_identities(repo: &Path, flag: Option<&Path>, identity_file: Option<&PathRef>) -> Result<Identities> {
    Ok(identity_sources(repo, flag, identity_file).load()?)
}

/// Where [`load_identities`] looks.
fn identity_sources(repo: &Path, flag: Option<&Path>, identity_file: Option<&PathRef>) -> IdentitySources {
    // `join` keeps an absolute identityFile as it is.
    let env_identity = identity_file.map(|file| repo.join(&file.path));
    IdentitySources::from_env(flag.map(Path::to_path_buf), env_identity, |k| std::env::var_os(k))
}

/// Connects to the cluster of `env`: `options`' context, else the environment's
/// `cluster.context`, else the kubeconfig's current one. `doing` says what for (`applying
/// to`), for the verbose line naming the context.
pub async fn connect(options: ConnectOptions, env: &Environment, doing: &str, on: OnProgress<'_>) -> Result<Cluster> {
    connect_sharing(options, None, env, doing, on).await
}

/// [`connect`] within what `servers` shares between the environments of a fleet.
pub async fn connect_sharing(
    options: ConnectOptions,
    servers: Option<&SharedServers>,
    env: &Environment,
    doing: &str,
    on: OnProgress<'_>,
) -> Result<Cluster> {
    let options = of_environment(options, env);
    let started = Instant::now();
    let cluster = Cluster::connect_sharing(&options, servers).await?;
    on(Progress::Info(format!("{doing} context `{}` ({})", cluster.info.context, cluster.info.server)));
    phase(on, "connect", started);
    Ok(cluster)
}

/// `options` with the environment's `cluster.context` when they name no context.
fn of_environment(mut options: ConnectOptions, env: &Environment) -> ConnectOptions {
    if options.context.is_none()
        && let Some(context) = &env.context
    {
        let file = env.files.first().map_or_else(String::new, |f| format!(" in {}", f.display()));
        options.context = Some((context.clone(), format!("cluster.context{file}")));
    }
    options
}

/// The URL of the API server [`connect`] would reach for `env`, read from the kubeconfig
/// without a request.
async fn server_of(options: ConnectOptions, env: &Environment) -> Result<String> {
    Ok(weaver_cluster::kube_config(&of_environment(options, env)).await?.1.server)
}

/// The context and server [`connect`] would reach for the environment `name` of the
/// repository at `repo` (at `rev`, else its working tree), read from the kubeconfig without a
/// request: what `weaver ui` names on an environment's pages.
pub async fn cluster_of(
    repo: &Path,
    rev: Option<&str>,
    name: &str,
    options: ConnectOptions,
) -> Result<weaver_cluster::ClusterInfo> {
    let env = open_project(repo, rev)?.environment(name)?;
    Ok(weaver_cluster::kube_config(&of_environment(options, &env)).await?.1)
}

/// Says how many requests `cluster` had to retry, if any: a read-only run's one trace of a
/// server that failed for a while (an apply's summary counts them itself).
fn tell_retries(cluster: &Cluster, on: OnProgress<'_>) {
    let retried = cluster.retried_requests();
    if retried > 0 {
        on(Progress::Status(format!(
            "{retried} request(s) to context `{}` were retried: the server failed, refused or throttled them for a while",
            cluster.info.context
        )));
    }
}

/// The release `name` of `env`, or an error listing the ones it has.
fn release<'a>(env: &'a Environment, name: &str) -> Result<&'a Release> {
    env.release(name).ok_or_else(|| {
        let known: Vec<&str> = env.releases.iter().map(|r| r.name.as_str()).collect();
        Error::new(format!("environment `{}` has no release `{name}`", env.name))
            .with_help(format!("its releases: {}", known.join(", ")))
            .as_not_found()
    })
}

/// A test's record: revision 1 of release `web` in environment `dev`, deployed, that applied
/// `manifests`, read as a stored record is read (the plan crate's own fixture is its tests' only).
#[cfg(test)]
pub(crate) fn recorded(manifests: Vec<serde_json::Value>) -> weaver_plan::release::record::Record {
    use serde_json::json;
    let objects: Vec<serde_json::Value> = manifests
        .iter()
        .map(|m| {
            json!({"apiVersion": m["apiVersion"], "kind": m["kind"], "namespace": m["metadata"]["namespace"],
                "name": m["metadata"]["name"], "applied": true})
        })
        .collect();
    let record = json!({"release": "web", "environment": "dev", "revision": 1, "status": "deployed",
        "time": "2026-11-21T10:00:00Z", "objects": objects, "manifests": manifests});
    serde_json::from_value(record).expect("a record as stored")
}

#[cfg(test)]
mod tests {
    use super::{Context, Progress, blocking, blocking_with, judging_in_place};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use weaver_secrets::Redactor;

    /// Waits up to 5 s for `flag`; whether it was set.
    fn wait_for(flag: &AtomicBool) -> bool {
        let since = Instant::now();
        while !flag.load(Ordering::SeqCst) && since.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        flag.load(Ordering::SeqCst)
    }

    /// Even on a runtime of one thread, the task awaiting work in `blocking_with` goes on with
    /// its other futures (a reconcile's status writer and stop signal) while the work runs, and
    /// hears the work's progress in order.
    #[test]
    fn the_awaiting_task_goes_on_while_its_work_runs_on_the_blocking_pool() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let told = Mutex::new(Vec::new());
        let on = |progress: Progress<'_>| {
            if let Progress::Info(text) = progress {
                told.lock().unwrap().push(text);
            }
        };
        let redactor = Redactor::default();
        let ran = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&ran);
        let saw = runtime.block_on(async {
            let work = blocking_with(Context::new(&redactor, &on), move |cx| {
                (cx.on)(Progress::Info("started".into()));
                let saw = wait_for(&seen);
                (cx.on)(Progress::Info("done".into()));
                saw
            });
            let other = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ran.store(true, Ordering::SeqCst);
            };
            tokio::join!(work, other).0
        });
        assert!(saw, "the other future never ran while the work ran");
        assert_eq!(*told.lock().unwrap(), ["started", "done"]);
        // A stopped wait stops at once; the work ends on its own.
        let stopped = runtime.block_on(async {
            let started = Instant::now();
            let work = blocking(|| std::thread::sleep(Duration::from_secs(2)));
            let gave_up = tokio::time::timeout(Duration::from_millis(50), work).await.is_err();
            gave_up && started.elapsed() < Duration::from_secs(1)
        });
        assert!(stopped, "the wait for the work outlasted its timeout");
        runtime.shutdown_background();
        // Without a runtime, in place.
        assert_eq!(futures::executor::block_on(blocking(|| 7)), 7);
    }

    /// On a runtime of one worker, a task judging in place leaves the worker to the others: a
    /// task spawned after it starts runs while it works.
    #[test]
    fn judging_in_place_leaves_a_multi_threaded_runtimes_worker_to_other_tasks() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            let ran = Arc::new(AtomicBool::new(false));
            let (started, working) = tokio::sync::oneshot::channel();
            let seen = Arc::clone(&ran);
            let worker = tokio::spawn(async move {
                judging_in_place(|| {
                    started.send(()).unwrap();
                    wait_for(&seen)
                })
            });
            working.await.unwrap();
            tokio::spawn(async move { ran.store(true, Ordering::SeqCst) });
            assert!(worker.await.unwrap(), "the other task never ran while one worked");
        });
        // On a single-threaded runtime it runs in place.
        let single = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(single.block_on(async { judging_in_place(|| 7) }), 7);
    }
}
