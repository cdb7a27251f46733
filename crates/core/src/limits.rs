//! Bounds on rendering a repository that is not trusted: the controller renders tenants'
//! repositories in one process, where one tenant's template loop or huge values file must not
//! take the time, memory or cores the others need. The CLI takes the same bounds from flags
//! (`--render-timeout`, `--max-rendered-bytes`, `--max-values-bytes`, `--max-template-steps`,
//! `--max-render-memory`), none by default.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::time::humanize;

/// One bound and the setting that gives it, which its error names (how to raise it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound<T> {
    pub value: T,
    /// `--max-rendered-bytes`, `spec.timeout`: said in the error, so the user knows what to raise.
    pub setting: String,
}

impl<T> Bound<T> {
    pub fn new(value: T, setting: impl Into<String>) -> Bound<T> {
        Bound { value, setting: setting.into() }
    }
}

impl Bound<usize> {
    /// Why `path`, of `size` bytes, may not be read under this bound (`--max-values-bytes`,
    /// the controller's for a tenant's repository), if it may not: checked before it is read.
    pub fn refuses_file(&self, path: &std::path::Path, size: u64) -> Option<String> {
        (size > self.value as u64).then(|| {
            format!("{} holds {size} bytes, over the limit of {} ({})", path.display(), self.value, self.setting)
        })
    }
}

/// Why a render must stop: its help depends on which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The process is told to stop (SIGTERM): the next run renders again.
    Stopping,
    /// The render's time, as the bound gives it, is up.
    TimeUp(Bound<Duration>),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Stopping => write!(f, "the process is stopping (SIGTERM)"),
            Stop::TimeUp(bound) => {
                write!(f, "rendering took longer than its limit of {} ({})", humanize(bound.value), bound.setting)
            }
        }
    }
}

/// A render's bounds; [`RenderLimits::default`] has none.
#[derive(Debug, Clone, Default)]
pub struct RenderLimits {
    /// When rendering must have finished, and how long it was given.
    pub deadline: Option<(Instant, Bound<Duration>)>,
    /// Set when the process is told to stop (SIGTERM): the render stops at its next check.
    pub stopping: Option<Arc<AtomicBool>>,
    /// The most bytes one release renders, and any one string a Go template makes.
    pub max_rendered_bytes: Option<Bound<usize>>,
    /// The most bytes of each values file a release reads (`valuesFiles`, `substituteFrom`).
    pub max_values_bytes: Option<Bound<usize>>,
    /// The most instructions one minijinja template's render runs (its fuel): what stops a loop
    /// that neither iterates a `range` nor prints, which no deadline check would see.
    pub max_template_steps: Option<Bound<u64>>,
    /// Templates (weaver charts' and Helm charts') rendered in processes of their own, killed
    /// past the deadline, each bounded in memory: a string a template doubles in a loop grows,
    /// and one call (an RSA key) takes seconds, where no check of the template engine sees it.
    pub isolation: Option<Isolation>,
}

/// Where a render's templates run when they run apart: `program render-worker`, its memory
/// (the kernel's `RLIMIT_DATA`) at most `max_memory` bytes when bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// weaver's own binary.
    pub program: std::path::PathBuf,
    pub max_memory: Option<Bound<u64>>,
    /// Where the render's workers go when it is done, and where it takes them from: the next
    /// render of the same tenant starts none. `None`: they end with the render.
    pub kept: Option<Kept>,
}

/// Processes kept between renders (the render workers of `weaver_render::isolated`), each
/// for the one tenant it rendered for: its memory held that tenant's decrypted values, so it
/// renders for no other. At most `most` are kept, each at most `idle` after its last render;
/// the oldest go first (dropped, which ends them).
#[derive(Clone)]
pub struct Pool(Arc<Mutex<Shelf>>);

struct Shelf {
    most: usize,
    idle: Duration,
    /// How many were taken back for a render.
    taken: u64,
    /// Oldest first: the tenant, when it was kept, the process.
    kept: std::collections::VecDeque<(String, Instant, Box<dyn Any + Send>)>,
}

impl Pool {
    pub fn new(most: usize, idle: Duration) -> Pool {
        Pool(Arc::new(Mutex::new(Shelf { most, idle, taken: 0, kept: Default::default() })))
    }

    /// The pool as `tenant`'s renders use it.
    pub fn for_tenant(&self, tenant: &str) -> Kept {
        Kept { pool: self.clone(), tenant: tenant.to_string() }
    }

    /// How many it keeps now.
    pub fn len(&self) -> usize {
        self.shelf().kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many processes renders took back from it (each a process not started).
    pub fn taken(&self) -> u64 {
        self.shelf().taken
    }

    fn shelf(&self) -> std::sync::MutexGuard<'_, Shelf> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A [`Pool`] as one tenant's renders use it.
#[derive(Clone)]
pub struct Kept {
    pool: Pool,
    tenant: String,
}

impl Kept {
    /// The process this tenant's renders kept most recently, if one is kept and of type `T`.
    pub fn take<T: 'static>(&self) -> Option<T> {
        let (taken, expired) = {
            let mut shelf = self.pool.shelf();
            let expired = shelf.expired();
            let at = shelf.kept.iter().rposition(|(tenant, _, kept)| *tenant == self.tenant && kept.is::<T>());
            let taken = at.and_then(|at| shelf.kept.remove(at));
            shelf.taken += u64::from(taken.is_some());
            (taken, expired)
        };
        // Ended outside the lock: ending a process waits for it.
        drop(expired);
        taken.and_then(|(_, _, kept)| kept.downcast().ok()).map(|kept| *kept)
    }

    /// Keeps `process` for this tenant's next render.
    pub fn keep<T: Send + 'static>(&self, process: T) {
        let gone = {
            let mut shelf = self.pool.shelf();
            let mut gone = shelf.expired();
            shelf.kept.push_back((self.tenant.clone(), Instant::now(), Box::new(process)));
            while shelf.kept.len() > shelf.most {
                gone.extend(shelf.kept.pop_front());
            }
            gone
        };
        // Ended outside the lock: ending a process waits for it.
        drop(gone);
    }
}

impl Shelf {
    /// Those kept longer than `idle`, taken off the shelf.
    fn expired(&mut self) -> Vec<(String, Instant, Box<dyn Any + Send>)> {
        let now = Instant::now();
        let fresh = self.kept.iter().position(|(_, kept, _)| now.duration_since(*kept) <= self.idle);
        self.kept.drain(..fresh.unwrap_or(self.kept.len())).collect()
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Kept) -> bool {
        Arc::ptr_eq(&self.pool.0, &other.pool.0) && self.tenant == other.tenant
    }
}

impl Eq for Kept {}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kept {{ tenant: {:?} }}", self.tenant)
    }
}

impl RenderLimits {
    /// Time for the render from now, as `setting` gives it.
    pub fn with_timeout(mut self, timeout: Duration, setting: impl Into<String>) -> RenderLimits {
        self.deadline = Some((Instant::now() + timeout, Bound::new(timeout, setting)));
        self
    }

    /// The same bounds with the time counted again from now: each of several renders (a
    /// promotion's targets) has the whole of it.
    pub fn restarted(&self) -> RenderLimits {
        match &self.deadline {
            Some((_, bound)) => self.clone().with_timeout(bound.value, bound.setting.clone()),
            None => self.clone(),
        }
    }

    /// Why rendering must stop now, if it must: the process is stopping, or the deadline passed.
    pub fn stop_reason(&self) -> Option<Stop> {
        if self.stopping.as_ref().is_some_and(|stopping| stopping.load(Ordering::SeqCst)) {
            return Some(Stop::Stopping);
        }
        match &self.deadline {
            Some((at, bound)) if Instant::now() >= *at => Some(Stop::TimeUp(bound.clone())),
            _ => None,
        }
    }

    /// The error of a render stopped for `why` ([`RenderLimits::stop_reason`]), in `release`.
    pub fn stopped(&self, release: &str, why: Stop) -> Error {
        let help = match &why {
            Stop::TimeUp(bound) => format!(
                "release `{release}`: a template loops too long, or the repository is too large to render in time; \
                 raise {} if it is not a loop",
                bound.setting
            ),
            Stop::Stopping => format!("release `{release}`: the next run renders it again"),
        };
        let error = Error::new(format!("rendering stopped: {why}")).with_help(help);
        match why {
            Stop::TimeUp(bound) => error.at_bound(bound.setting),
            Stop::Stopping => error,
        }
    }

    /// An error when `len` bytes of what `what` names exceed `--max-rendered-bytes` (or the
    /// setting that gives it), for `release`.
    pub fn check_rendered(&self, len: usize, what: &str, release: &str) -> crate::Result<()> {
        match &self.max_rendered_bytes {
            Some(bound) if len > bound.value => Err(too_large(bound, what, release)),
            _ => Ok(()),
        }
    }

    /// The error of `what` (a template's output) grown past `--max-rendered-bytes` in `release`.
    pub fn too_large(&self, what: &str, release: &str) -> Error {
        match &self.max_rendered_bytes {
            Some(bound) => too_large(bound, what, release),
            None => Error::new(format!("{what} is too large")),
        }
    }

    /// A template engine's `error` in `release`, told what a limit made of it: the render's
    /// stop (where `error` stood) when it must stop, `error` with the setting to raise when the
    /// byte bound made it (`too_large`, as the engine tells it by kind), else `error` as it is.
    pub fn limit_error(&self, error: Error, too_large: bool, release: &str) -> Error {
        if let Some(why) = self.stop_reason() {
            // Where it stood is the location; the engine's text of it adds nothing to why.
            return Error { location: error.location, ..self.stopped(release, why) };
        }
        match &self.max_rendered_bytes {
            Some(bound) if too_large => error.with_help(too_large_help(bound, release)).at_bound(&bound.setting),
            _ => error,
        }
    }
}

fn too_large(bound: &Bound<usize>, what: &str, release: &str) -> Error {
    Error::new(format!("{what} exceeds the limit of {} bytes rendered per release ({})", bound.value, bound.setting))
        .with_help(too_large_help(bound, release))
        .at_bound(&bound.setting)
}

fn too_large_help(bound: &Bound<usize>, release: &str) -> String {
    format!("release `{release}`: raise {} if the output is meant to be that large", bound.setting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_and_a_stopping_process_say_why() {
        let none = RenderLimits::default();
        assert_eq!(none.stop_reason(), None);
        let passed = RenderLimits::default().with_timeout(Duration::ZERO, "spec.timeout");
        let why = passed.stop_reason().unwrap();
        assert_eq!(why.to_string(), "rendering took longer than its limit of 0ms (spec.timeout)");
        assert!(passed.stopped("app", why).help.unwrap().ends_with("raise spec.timeout if it is not a loop"));
        let later = RenderLimits::default().with_timeout(Duration::from_secs(90), "--render-timeout");
        assert_eq!(later.stop_reason(), None);
        // Told apart by kind, not by text: a setting may be named anything.
        let stopping = RenderLimits { stopping: Some(Arc::new(AtomicBool::new(true))), ..later };
        let why = stopping.stop_reason().unwrap();
        assert_eq!(why.to_string(), "the process is stopping (SIGTERM)");
        assert_eq!(stopping.stopped("app", why).help.unwrap(), "release `app`: the next run renders it again");
        let named = RenderLimits::default().with_timeout(Duration::ZERO, "the SIGTERM grace");
        let help = named.stopped("app", named.stop_reason().unwrap()).help.unwrap();
        assert!(help.ends_with("raise the SIGTERM grace if it is not a loop"), "{help}");
    }

    /// Ends when dropped: counts how many did.
    struct Process(Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Process {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_pool_gives_a_tenant_back_only_its_own_processes_and_keeps_a_bounded_few() {
        let ended = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pool = Pool::new(2, Duration::from_secs(600));
        let (a, b) = (pool.for_tenant("team-a"), pool.for_tenant("team-b"));
        a.keep(Process(ended.clone()));
        assert!(b.take::<Process>().is_none(), "another tenant's process is never given");
        assert!(a.take::<String>().is_none(), "nor one of another type");
        let again = a.take::<Process>().expect("its own is");
        assert!(a.take::<Process>().is_none() && pool.is_empty());
        assert_eq!(pool.taken(), 1);
        a.keep(again);
        b.keep(Process(ended.clone()));
        assert_eq!(ended.load(Ordering::SeqCst), 0);
        // Over `most`: the oldest (team-a's) ends.
        b.keep(Process(ended.clone()));
        assert_eq!((pool.len(), ended.load(Ordering::SeqCst)), (2, 1));
        assert!(a.take::<Process>().is_none());
        drop(b.take::<Process>());
        assert_eq!((pool.len(), ended.load(Ordering::SeqCst)), (1, 2));
        // Past `idle`, a kept process ends at the pool's next use.
        let brief = Pool::new(4, Duration::ZERO);
        brief.for_tenant("team-a").keep(Process(ended.clone()));
        std::thread::sleep(Duration::from_millis(2));
        assert!(brief.for_tenant("team-a").take::<Process>().is_none());
        assert_eq!((brief.len(), ended.load(Ordering::SeqCst)), (0, 3));
    }

    #[test]
    fn an_engine_s_error_is_told_what_a_limit_made_of_it() {
        let at = crate::error::Location::file(std::path::Path::new("cm.yaml"));
        let error = || Error::new("a string exceeds the limit of 10 bytes").with_location(at.clone());
        let bounded =
            RenderLimits { max_rendered_bytes: Some(Bound::new(10, "--max-rendered-bytes")), ..Default::default() };
        let told = bounded.limit_error(error(), true, "app");
        assert_eq!(told.message, "a string exceeds the limit of 10 bytes");
        assert_eq!(
            told.help.unwrap(),
            "release `app`: raise --max-rendered-bytes if the output is meant to be that large"
        );
        assert_eq!(bounded.limit_error(error(), false, "app").help, None, "not the bound's");
        assert_eq!(RenderLimits::default().limit_error(error(), true, "app").help, None, "no bound");
        let passed = RenderLimits {
            deadline: RenderLimits::default().with_timeout(Duration::ZERO, "spec.timeout").deadline,
            ..bounded
        };
        let stopped = passed.limit_error(error(), true, "app");
        assert_eq!(stopped.message, "rendering stopped: rendering took longer than its limit of 0ms (spec.timeout)");
        assert!(stopped.help.unwrap().starts_with("release `app`: a template loops too long"));
        assert_eq!(stopped.location, Some(at));
    }

    #[test]
    fn restarted_limits_count_their_time_again() {
        let limits = RenderLimits::default().with_timeout(Duration::from_millis(50), "spec.timeout");
        std::thread::sleep(Duration::from_millis(60));
        assert!(limits.stop_reason().is_some());
        assert_eq!(limits.restarted().stop_reason(), None);
    }
}
