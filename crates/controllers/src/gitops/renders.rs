//! Tenants' renders, bounded. A tenant's repository is not trusted: its templates may loop or
//! grow without end. Each render stops at its EnvironmentSync's `spec.timeout` (counted from
//! the start of its environment's render) and when the controller is told to stop, within the controller's
//! byte and step bounds; and renders (an apply's, a promotion's, an image update's) take turns:
//! one at a time per namespace, no more at once than the machine has cores, so one tenant's
//! renders wait behind each other, not before another tenant's. A tenant whose render stopped
//! at a bound (its time, memory, bytes, steps) is held back before it renders the same revision
//! again, longer at each stop in a row: a repository that loops takes a turn rarely, not at each
//! retry, and the turns go to the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use weaver_core::error::Error;
use weaver_core::limits::{Bound, Pool, RenderLimits};
use weaver_core::time::humanize;

/// The most bytes one release of a tenant renders, unless `--max-rendered-bytes` says otherwise.
pub const MAX_RENDERED_BYTES: usize = 64 << 20;
/// The most bytes of one file a tenant's render reads (`--max-values-bytes`): a values file, a
/// chart's or a kustomization's.
pub const MAX_VALUES_BYTES: usize = 16 << 20;
/// The most instructions one template of a tenant's weaver chart runs (`--max-template-steps`).
pub const MAX_TEMPLATE_STEPS: u64 = 200_000_000;
/// The most memory a render's worker process takes (`--max-render-memory`): with one render at
/// once per core, the controller's renders take at most that many times this.
pub const MAX_RENDER_MEMORY: u64 = 512 << 20;

/// Render workers kept between a tenant's renders: at most this many per core, of every tenant,
/// each at most [`WORKERS_IDLE`] after its last render (the tenant's next render, at its next
/// interval, starts none), and only one holding at most 64 MiB.
pub const WORKERS_KEPT_PER_CORE: usize = 2;
pub const WORKERS_IDLE: Duration = Duration::from_secs(600);

/// How long a tenant whose render stopped at a bound is held back before it renders the same
/// revision again: the time that render held its turn and this, doubled at each further stop in
/// a row, at most [`MOST_HELD_BACK`]. A new revision renders at once.
pub const HELD_BACK: Duration = Duration::from_secs(30);
pub const MOST_HELD_BACK: Duration = Duration::from_secs(3600);

/// The controller's bounds on renders, and their turns.
pub struct Renders {
    /// Every render's bounds but its deadline, which its reconcile's `spec.timeout` sets.
    limits: RenderLimits,
    /// Renders under way, of every tenant.
    all: Arc<Semaphore>,
    /// How many `all` lets render at once.
    at_once: usize,
    /// Each namespace's one render at a time.
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The namespaces held back, and why.
    held_back: Arc<Mutex<HashMap<String, Strikes>>>,
    /// [`HELD_BACK`], shorter in tests.
    hold_back: Duration,
    /// The render workers kept between renders, each for its tenant.
    workers: Pool,
}

/// A tenant's renders of one revision that stopped at a bound, in a row.
struct Strikes {
    revision: String,
    /// The environment whose render stopped last.
    environment: String,
    count: u32,
    /// The last bound's setting.
    bound: String,
    until: Instant,
}

/// A render's turn, held while it renders; [`Turn::finished`] says how it ended.
pub struct Turn {
    _tenant: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
    tenant: String,
    environment: String,
    revision: String,
    started: Instant,
    held_back: Arc<Mutex<HashMap<String, Strikes>>>,
    hold_back: Duration,
}

impl Turn {
    /// What the render in this turn gave: a stop at a bound holds its tenant back (see
    /// [`HELD_BACK`]); anything else lets it render again at once.
    pub fn finished<T>(self, rendered: &Result<T, Error>) {
        let mut held_back = self.held_back.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bound) = rendered.as_ref().err().and_then(|err| err.bound.as_deref().cloned()) else {
            held_back.remove(&self.tenant);
            return;
        };
        let count = match held_back.get(&self.tenant) {
            Some(strikes) if strikes.revision == self.revision => strikes.count + 1,
            _ => 1,
        };
        let wait =
            (self.started.elapsed() + self.hold_back).saturating_mul(1 << (count - 1).min(16)).min(MOST_HELD_BACK);
        let strikes = Strikes {
            revision: self.revision.clone(),
            environment: self.environment.clone(),
            count,
            bound,
            until: Instant::now() + wait,
        };
        held_back.insert(self.tenant.clone(), strikes);
    }
}

impl Renders {
    /// Renders within `limits`, at most `at_once` of them together.
    pub fn new(limits: RenderLimits, at_once: usize) -> Renders {
        let at_once = at_once.max(1);
        Renders {
            limits,
            all: Arc::new(Semaphore::new(at_once)),
            at_once,
            tenants: Mutex::default(),
            held_back: Arc::default(),
            hold_back: HELD_BACK,
            workers: Pool::new(WORKERS_KEPT_PER_CORE * at_once, WORKERS_IDLE),
        }
    }

    /// Renders within `limits`, as many at once as the machine has cores.
    pub fn on_every_core(limits: RenderLimits) -> Renders {
        Renders::new(limits, std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The controller's bounds, each said to be set by the flag of `weaver operator run` given.
    pub fn limits_of(max_rendered_bytes: usize, max_values_bytes: usize, max_template_steps: u64) -> RenderLimits {
        RenderLimits {
            deadline: None,
            stopping: None,
            max_rendered_bytes: Some(Bound::new(max_rendered_bytes, "the controller's --max-rendered-bytes")),
            max_values_bytes: Some(Bound::new(max_values_bytes, "the controller's --max-values-bytes")),
            max_template_steps: Some(Bound::new(max_template_steps, "the controller's --max-template-steps")),
            isolation: None,
        }
    }

    /// The same bounds, weaver charts and Helm charts rendered by `program render-worker`
    /// within `max_memory` bytes (the controller's `--max-render-memory`).
    pub fn isolated(limits: RenderLimits, program: std::path::PathBuf, max_memory: u64) -> RenderLimits {
        let max_memory = Bound::new(max_memory, "the controller's --max-render-memory");
        let isolation = weaver_core::limits::Isolation { program, max_memory: Some(max_memory), kept: None };
        RenderLimits { isolation: Some(isolation), ..limits }
    }

    /// The render workers kept between renders.
    pub fn workers(&self) -> &Pool {
        &self.workers
    }

    /// The bound on each file of a tenant's repository, its environment files included.
    pub fn max_file_bytes(&self) -> Option<Bound<usize>> {
        self.limits.max_values_bytes.clone()
    }

    /// The bounds of `tenant`'s render of an environment from now: `timeout` (its
    /// `spec.timeout`) and until `stopping` is set; its workers kept for the tenant's next.
    pub fn limits(&self, tenant: &str, timeout: Duration, stopping: &Arc<AtomicBool>) -> RenderLimits {
        let mut limits = RenderLimits { stopping: Some(stopping.clone()), ..self.limits.clone() };
        if let Some(isolation) = &mut limits.isolation {
            isolation.kept = Some(self.workers.for_tenant(tenant));
        }
        limits.with_timeout(timeout, "spec.timeout")
    }

    /// Waits for a turn to render `environment` at `revision` for `tenant` (a namespace): after
    /// its own renders under way, then for a free core; an error once the deadline of `limits`
    /// passed, so that a render neither holds its slot waiting past its timeout nor runs without
    /// a turn, and at once while the tenant is held back for this revision.
    pub async fn turn(
        &self,
        tenant: &str,
        environment: &str,
        revision: &str,
        limits: &RenderLimits,
    ) -> Result<Turn, Error> {
        self.not_held_back(tenant, environment, revision)?;
        let own = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            tenants.entry(tenant.to_string()).or_insert_with(|| Arc::new(Semaphore::new(1))).clone()
        };
        // Whether the namespace's own turn came: the help says which wait took the time.
        let own_turn = AtomicBool::new(false);
        let waiting = async {
            let own = own.acquire_owned().await.expect("a tenant's semaphore is never closed");
            own_turn.store(true, Ordering::Relaxed);
            let all = self.all.clone().acquire_owned().await.expect("the renders' semaphore is never closed");
            Turn {
                _tenant: own,
                _all: all,
                tenant: tenant.to_string(),
                environment: environment.to_string(),
                revision: revision.to_string(),
                started: Instant::now(),
                held_back: Arc::clone(&self.held_back),
                hold_back: self.hold_back,
            }
        };
        let Some((at, bound)) = &limits.deadline else { return Ok(waiting.await) };
        tokio::time::timeout_at((*at).into(), waiting).await.map_err(|_| {
            let waited = match own_turn.load(Ordering::Relaxed) {
                false => format!("namespace `{tenant}` renders one environment at a time and its others took the time"),
                true => format!(
                    "namespace `{tenant}` waited behind others: the controller renders at most {} at once, \
                     and other namespaces' renders took the time",
                    self.at_once
                ),
            };
            Error::new(format!(
                "rendering stopped: environment `{environment}` had no turn to render within its limit of {} ({})",
                humanize(bound.value),
                bound.setting
            ))
            .with_help(format!("{waited}; raise {} if none of them loops", bound.setting))
        })
    }
}

impl Renders {
    /// An error while `tenant`'s renders of `revision` are held back; none for another revision,
    /// which clears what was held against the last.
    fn not_held_back(&self, tenant: &str, environment: &str, revision: &str) -> Result<(), Error> {
        let mut held_back = self.held_back.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(strikes) = held_back.get(tenant) else { return Ok(()) };
        if strikes.revision != revision {
            held_back.remove(tenant);
            return Ok(());
        }
        let Some(left) = strikes.until.checked_duration_since(Instant::now()) else { return Ok(()) };
        let renders = match strikes.count {
            1 => "its last render".to_string(),
            n => format!("{n} renders in a row"),
        };
        Err(Error::new(format!(
            "rendering held back: namespace `{tenant}` renders again in {}, `{environment}` with it ({renders} of \
             revision {} stopped at a bound, the last of environment `{}`: {})",
            humanize(left),
            super::plan::short(revision),
            strikes.environment,
            strikes.bound
        ))
        .with_help(format!(
            "fix the templates that stop (a new revision renders at once), or raise {}; the wait doubles at each \
             stop in a row, so that the others' renders have the turns",
            strikes.bound
        ))
        .at_bound(strikes.bound.clone()))
    }
}

impl Default for Renders {
    /// The controller's default bounds.
    fn default() -> Renders {
        Renders::on_every_core(Renders::limits_of(MAX_RENDERED_BYTES, MAX_VALUES_BYTES, MAX_TEMPLATE_STEPS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_renders_one_at_a_time_and_another_tenant_does_not_wait_for_it() {
        let renders = Renders::new(RenderLimits::default(), 2);
        let unbounded = RenderLimits::default();
        let first = renders.turn("team-a", "dev", "c0ffee", &unbounded).await;
        let waits =
            tokio::time::timeout(Duration::from_millis(50), renders.turn("team-a", "dev", "c0ffee", &unbounded)).await;
        assert!(waits.is_err(), "a second render of team-a went before the first ended");
        let other =
            tokio::time::timeout(Duration::from_secs(5), renders.turn("team-b", "dev", "c0ffee", &unbounded)).await;
        assert!(other.is_ok_and(|turn| turn.is_ok()), "team-b waited for team-a");
        drop(first);
        let next =
            tokio::time::timeout(Duration::from_secs(5), renders.turn("team-a", "dev", "c0ffee", &unbounded)).await;
        assert!(next.is_ok_and(|turn| turn.is_ok()), "team-a's next render did not go once its first ended");
    }

    #[tokio::test]
    async fn no_more_renders_at_once_than_allowed_and_none_waits_past_its_deadline() {
        let renders = Renders::new(RenderLimits::default(), 1);
        let _first = renders.turn("team-a", "dev", "c0ffee", &RenderLimits::default()).await;
        let waits = tokio::time::timeout(
            Duration::from_millis(50),
            renders.turn("team-b", "dev", "c0ffee", &RenderLimits::default()),
        )
        .await;
        assert!(waits.is_err(), "two renders at once where one is allowed");
        let bounded = RenderLimits::default().with_timeout(Duration::from_millis(100), "spec.timeout");
        let late =
            tokio::time::timeout(Duration::from_secs(5), renders.turn("team-b", "prod", "c0ffee", &bounded)).await;
        let Ok(Err(err)) = late else { panic!("waited past its deadline, or had a turn") };
        assert_eq!(
            err.message,
            "rendering stopped: environment `prod` had no turn to render within its limit of 100ms (spec.timeout)"
        );
        assert_eq!(
            err.help.unwrap(),
            "namespace `team-b` waited behind others: the controller renders at most 1 at once, \
             and other namespaces' renders took the time; raise spec.timeout if none of them loops"
        );
        // Behind a render of its own namespace: that is the wait the help names.
        let late = tokio::time::timeout(
            Duration::from_secs(5),
            renders.turn("team-a", "prod", "c0ffee", &bounded.restarted()),
        )
        .await;
        let Ok(Err(err)) = late else { panic!("waited past its deadline, or had a turn") };
        assert_eq!(
            err.help.unwrap(),
            "namespace `team-a` renders one environment at a time and its others took the time; \
             raise spec.timeout if none of them loops"
        );
    }

    #[tokio::test]
    async fn a_tenant_whose_render_stopped_at_a_bound_is_held_back_for_that_revision_alone() {
        let renders = Renders { hold_back: Duration::from_millis(200), ..Renders::new(RenderLimits::default(), 2) };
        let unbounded = RenderLimits::default();
        let stopped = || -> Result<(), Error> { Err(Error::new("rendering stopped").at_bound("spec.timeout")) };
        renders.turn("team-a", "dev", "c0ffee", &unbounded).await.unwrap().finished(&stopped());
        // The tenant is held back, whichever of its environments renders next.
        let Err(held) = renders.turn("team-a", "prod", "c0ffee", &unbounded).await else {
            panic!("a tenant whose render stopped at a bound rendered the same revision again at once")
        };
        assert!(
            held.message.starts_with("rendering held back: namespace `team-a` renders again in "),
            "{}",
            held.message
        );
        assert!(
            held.message.ends_with(
                ", `prod` with it (its last render of revision c0ffee stopped at a bound, the last of environment \
                 `dev`: spec.timeout)"
            ),
            "{}",
            held.message
        );
        assert_eq!(held.bound.as_deref().map(String::as_str), Some("spec.timeout"));
        // Another tenant, and another revision of this one, are not held back.
        renders.turn("team-b", "dev", "c0ffee", &unbounded).await.unwrap().finished(&Ok::<(), Error>(()));
        renders.turn("team-a", "dev", "beef", &unbounded).await.unwrap().finished(&stopped());
        // A second stop in a row waits twice as long: still held after the first wait.
        tokio::time::sleep(Duration::from_millis(250)).await;
        renders.turn("team-a", "dev", "beef", &unbounded).await.unwrap().finished(&stopped());
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Err(held) = renders.turn("team-a", "dev", "beef", &unbounded).await else {
            panic!("the second stop in a row held its tenant back no longer than the first")
        };
        assert!(held.message.contains("(2 renders in a row of revision beef"), "{}", held.message);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Once its wait is over it renders; a render that does not stop at a bound clears it.
        let error = Err::<(), Error>(Error::new("a template's own error"));
        renders.turn("team-a", "dev", "beef", &unbounded).await.unwrap().finished(&error);
        renders.turn("team-a", "dev", "beef", &unbounded).await.unwrap();
    }

    #[test]
    fn a_reconcile_s_limits_name_spec_timeout_and_the_controller_s_flags() {
        let renders = Renders::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let limits = renders.limits("team-a", Duration::ZERO, &stopping);
        assert_eq!(
            limits.stop_reason().unwrap().to_string(),
            "rendering took longer than its limit of 0ms (spec.timeout)"
        );
        let bytes = limits.max_rendered_bytes.unwrap();
        assert_eq!((bytes.value, bytes.setting.as_str()), (64 << 20, "the controller's --max-rendered-bytes"));
        stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let limits = renders.limits("team-a", Duration::from_secs(60), &stopping);
        assert_eq!(limits.stop_reason().unwrap().to_string(), "the process is stopping (SIGTERM)");
    }
}
