//! Bounds on rendering a repository that is not trusted: the controller renders tenants'
//! repositories in one process, where one tenant's template loop or huge values file must not
//! take the time, memory or cores the others need. The CLI takes the same bounds from flags
//! (`--render-timeout`, `--max-rendered-bytes`, `--max-values-bytes`, `--max-template-steps`),
//! none by default.

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
    pub fn stop_reason(&self) -> Option<String> {
        if self.stopping.as_ref().is_some_and(|stopping| stopping.load(Ordering::SeqCst)) {
            return Some("the process is stopping (SIGTERM)".to_string());
        }
        match &self.deadline {
            Some((at, bound)) if Instant::now() >= *at => {
                Some(format!("rendering took longer than its limit of {} ({})", humanize(bound.value), bound.setting))
            }
            _ => None,
        }
    }

    /// The error of a render stopped for `why` ([`RenderLimits::stop_reason`]), in `release`.
    pub fn stopped(&self, release: &str, why: String) -> Error {
        let help = match &self.deadline {
            Some((_, bound)) if !why.contains("SIGTERM") => format!(
                "release `{release}`: a template loops too long, or the repository is too large to render in time; \
                 raise {} if it is not a loop",
                bound.setting
            ),
            _ => format!("release `{release}`: the next run renders it again"),
        };
        Error::new(format!("rendering stopped: {why}")).with_help(help)
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
}

fn too_large(bound: &Bound<usize>, what: &str, release: &str) -> Error {
    Error::new(format!("{what} exceeds the limit of {} bytes rendered per release ({})", bound.value, bound.setting))
        .with_help(format!("release `{release}`: raise {} if the output is meant to be that large", bound.setting))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_and_a_stopping_process_say_why() {
        let none = RenderLimits::default();
        assert_eq!(none.stop_reason(), None);
        let passed = RenderLimits::default().with_timeout(Duration::ZERO, "spec.timeout");
        assert_eq!(passed.stop_reason().unwrap(), "rendering took longer than its limit of 0ms (spec.timeout)");
        let later = RenderLimits::default().with_timeout(Duration::from_secs(90), "--render-timeout");
        assert_eq!(later.stop_reason(), None);
        let stopping = RenderLimits { stopping: Some(Arc::new(AtomicBool::new(true))), ..later };
        assert_eq!(stopping.stop_reason().unwrap(), "the process is stopping (SIGTERM)");
    }

    #[test]
    fn restarted_limits_count_their_time_again() {
        let limits = RenderLimits::default().with_timeout(Duration::from_millis(50), "spec.timeout");
        std::thread::sleep(Duration::from_millis(60));
        assert!(limits.stop_reason().is_some());
        assert_eq!(limits.restarted().stop_reason(), None);
    }
}
