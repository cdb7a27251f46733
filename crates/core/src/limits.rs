//! Bounds on rendering a repository that is not trusted: the controller renders tenants'
//! repositories in one process, where one tenant's template loop or huge values file must not
//! take the time, memory or cores the others need. The CLI takes the same bounds from flags
//! (`--render-timeout`, `--max-rendered-bytes`, `--max-values-bytes`, `--max-template-steps`,
//! `--max-render-memory`), none by default.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
