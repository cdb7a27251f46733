//! One apply per environment at a time: a `coordination.k8s.io/v1` Lease named
//! `weaver-lock-<env>`, in the namespace the environment names (`cluster.lockNamespace`). The
//! same Lease mechanism elects the operator's leader (`LockSubject::Leadership`): one
//! implementation of taking, renewing, losing and releasing a Lease, two uses.
//!
//! The Lease is held while its holder renews it: a holder that stops (killed, disconnected)
//! loses it `lease_duration` after its last renewal. As in client-go's leader election, a
//! waiter also counts a Lease as expired when it has not changed for `lease_duration` while
//! the waiter watched, so a holder whose clock runs ahead cannot keep it forever. Every write
//! carries the resourceVersion it was based on, so of two processes taking the same Lease at
//! once exactly one succeeds (the other gets 409 Conflict and reads again).
//!
//! Release clears `holderIdentity` rather than deleting the Lease: that needs no `delete`
//! permission, keeps `leaseTransitions` counting, and is what client-go does on release.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::error::humanize;
use super::retry::{GaveUp, Retrier};
use super::rollout::DeploymentReplica;
use super::{Cluster, ClusterInfo};
use weaver_core::error::{Error, Result};

/// How long a holder keeps the lock without renewing it, unless told otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(30);

/// How often a waiter reads a Lease someone else holds.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Which lock to take, as whom, and how patiently.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Where the Lease lives (`cluster.lockNamespace`).
    pub namespace: String,
    /// What the Lease guards, which also names it.
    pub subject: LockSubject,
    /// Who holds the lock, for the messages other appliers see: `alice@build-7 pid 4242`.
    pub holder: String,
    /// How long to wait for another holder to let go (`--lock-timeout`); zero fails at once.
    pub wait: Duration,
    /// How long the Lease stays held without renewal; it is renewed every third of it.
    pub lease_duration: Duration,
    /// Which replica of which Deployment the holder is, when it is one: for a leader election
    /// that lets a replica a rollout replaces leave the Lease to one of the new revision.
    pub replica: Option<DeploymentReplica>,
}

impl LockOptions {
    /// The lock of environment `name` (written in `file`) in `namespace`, held by this process
    /// for [`DEFAULT_LEASE_DURATION`].
    pub fn environment(name: &str, file: PathBuf, namespace: &str, wait: Duration) -> LockOptions {
        LockOptions {
            namespace: namespace.to_string(),
            subject: LockSubject::Environment { name: name.to_string(), file },
            holder: this_process(),
            wait,
            lease_duration: DEFAULT_LEASE_DURATION,
            replica: None,
        }
    }
}

impl LockOptions {
    /// Leadership of controller `name`: a Lease of that name in `namespace`, held by this
    /// replica, waited for as long as it takes.
    pub fn leadership(namespace: &str, name: &str, lease_duration: Duration) -> LockOptions {
        LockOptions {
            namespace: namespace.to_string(),
            subject: LockSubject::Leadership(name.to_string()),
            holder: this_replica(),
            // A century: a follower waits until the leader stops, however long that is.
            wait: Duration::from_secs(100 * 365 * 24 * 3600),
            lease_duration,
            replica: None,
        }
    }
}

/// What a Lease guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockSubject {
    /// Applies of environment `name`: Lease `weaver-lock-<name>`. `file` is where the
    /// environment is written, whose `cluster.lockNamespace` chooses the Lease's namespace.
    Environment { name: String, file: PathBuf },
    /// Leadership among the replicas of a controller: a Lease of that name.
    Leadership(String),
}

impl LockSubject {
    pub fn lease_name(&self) -> String {
        match self {
            LockSubject::Environment { name, .. } => format!("weaver-lock-{name}"),
            LockSubject::Leadership(name) => name.clone(),
        }
    }

    /// `environment `dev``, `leadership of `configmapsync-operator``.
    fn what(&self) -> String {
        match self {
            LockSubject::Environment { name, .. } => format!("environment `{name}`"),
            LockSubject::Leadership(name) => format!("leadership of `{name}`"),
        }
    }

    /// Where the user can choose another namespace for the Lease.
    fn namespace_setting(&self) -> String {
        match self {
            LockSubject::Environment { file, .. } => format!("`cluster.lockNamespace` in {}", file.display()),
            LockSubject::Leadership(_) => "--leader-election-namespace".to_string(),
        }
    }
}

/// What happens while taking the lock, for the command to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockEvent {
    /// Someone else holds the lock; weaver waits (up to [`LockOptions::wait`]). Sent when the
    /// wait starts, and again if the lock passes to yet another holder meanwhile.
    Waiting {
        holder: String,
        /// When that holder took the lock (its `acquireTime`).
        since: String,
    },
    /// The lock was taken from a holder that stopped renewing it without letting go: whatever
    /// it was doing under the lock did not finish (killed, out of memory, cut off).
    TakenOver {
        holder: String,
        /// When it last renewed the lock.
        renewed: String,
    },
}

/// The lock, held and renewed in the background until [`HeldLock::release`].
///
/// Renewal is a task on the runtime that acquired the lock (a current-thread runtime will do),
/// so it only runs while that runtime is driven: work that blocks the runtime's thread for
/// longer than two thirds of the lease duration lets others take the lock. Dropping a
/// `HeldLock` without releasing it stops renewal, and the lock expires after its duration.
pub struct HeldLock {
    lease: LeaseRef,
    retry: Retrier,
    cluster: ClusterInfo,
    stop_renewal: Option<oneshot::Sender<()>>,
    /// Ends with the last Lease the renewal wrote.
    renewal: Option<JoinHandle<Lease>>,
    /// Why the lock was lost, once it is.
    lost: watch::Receiver<Option<String>>,
}

impl Cluster {
    /// Takes the lock of `options.subject`, waiting up to `options.wait` for another holder
    /// to release it or stop renewing it; `on_event` hears when the wait starts.
    pub async fn acquire_lock(&self, options: &LockOptions, on_event: impl FnMut(LockEvent)) -> Result<HeldLock> {
        self.acquire_lock_deferring(options, on_event, |_| std::future::ready(false)).await
    }

    /// [`Cluster::acquire_lock`], asking `defer` before taking a Lease another holder released
    /// or let expire whether to leave it to someone else a while longer. `defer` hears how long
    /// the Lease has been free by our watch (zero the first time) and is asked again every
    /// second while it stays free; it decides how long that may go on.
    pub async fn acquire_lock_deferring<Deferring: Future<Output = bool>>(
        &self,
        options: &LockOptions,
        mut on_event: impl FnMut(LockEvent),
        mut defer: impl FnMut(Duration) -> Deferring,
    ) -> Result<HeldLock> {
        let lease = LeaseRef {
            api: Api::namespaced(self.client.clone(), &options.namespace),
            namespace: options.namespace.clone(),
            name: options.subject.lease_name(),
            subject: options.subject.clone(),
            holder: options.holder.clone(),
        };
        let duration_seconds = i32::try_from(options.lease_duration.as_secs()).unwrap_or(i32::MAX).max(1);
        let deadline = Instant::now() + options.wait;
        // The resourceVersion last read, and since when (by our clock) it has not changed.
        let mut unchanged: Option<(String, Instant)> = None;
        let mut reported_holder: Option<String> = None;
        // The renewTime of our latest write: a write whose answer was lost may still have landed.
        let mut written: Option<MicroTime> = None;
        // The resourceVersion of the free Lease we left to others, and since when (by our clock)
        // we have: a Lease taken and freed again meanwhile is free anew.
        let mut free_since: Option<(String, Instant)> = None;
        loop {
            let current = self
                .retry
                .run(|| lease.api.get_opt(&lease.name))
                .await
                .map_err(|gave_up| lease.error(gave_up, "reading", &self.info))?;
            let now = now();
            let (result, creating) = match current {
                None => {
                    let created = Lease {
                        metadata: ObjectMeta { name: Some(lease.name.clone()), ..ObjectMeta::default() },
                        spec: Some(held_spec(&options.holder, &now, duration_seconds, 0)),
                    };
                    written = Some(now);
                    let params = PostParams::default();
                    (self.retry.run(|| lease.api.create(&params, &created)).await, true)
                }
                Some(current) => {
                    let spec = current.spec.clone().unwrap_or_default();
                    if spec.holder_identity.as_ref() == Some(&options.holder) && spec.renew_time == written {
                        return Ok(self.hold(lease, current, options.lease_duration));
                    }
                    let version = current.metadata.resource_version.clone().unwrap_or_default();
                    let watched_since = match unchanged.take() {
                        Some((seen, since)) if seen == version => since,
                        _ => Instant::now(),
                    };
                    unchanged = Some((version.clone(), watched_since));
                    if vacant(&spec, now.0, watched_since.elapsed(), options.lease_duration) {
                        let free_for = match &free_since {
                            Some((seen, since)) if *seen == version => since.elapsed(),
                            _ => {
                                free_since = Some((version.clone(), Instant::now()));
                                Duration::ZERO
                            }
                        };
                        if defer(free_for).await {
                            tokio::time::sleep(POLL_INTERVAL).await;
                            continue;
                        }
                        // Ours too: a holder of our name whose write we did not make is an
                        // earlier run of us (a container restarted in its Pod).
                        if let Some(holder) = spec.holder_identity.as_ref().filter(|h| !h.is_empty()) {
                            let renewed = time_text(spec.renew_time.as_ref().or(spec.acquire_time.as_ref()));
                            on_event(LockEvent::TakenOver { holder: holder.clone(), renewed });
                        }
                        let transitions = spec.lease_transitions.unwrap_or(0)
                            + i32::from(spec.holder_identity.as_ref() != Some(&options.holder));
                        let taken = Lease {
                            metadata: current.metadata,
                            spec: Some(held_spec(&options.holder, &now, duration_seconds, transitions)),
                        };
                        written = Some(now);
                        let params = PostParams::default();
                        (self.retry.run(|| lease.api.replace(&lease.name, &params, &taken)).await, false)
                    } else {
                        free_since = None;
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(lease.held_by_another(&spec, options.wait));
                        }
                        let holder = spec.holder_identity.clone().unwrap_or_default();
                        if reported_holder.as_ref() != Some(&holder) {
                            on_event(LockEvent::Waiting { holder: holder.clone(), since: since_text(&spec) });
                            reported_holder = Some(holder);
                        }
                        tokio::time::sleep(left.min(POLL_INTERVAL)).await;
                        continue;
                    }
                }
            };
            match result {
                Ok(taken) => return Ok(self.hold(lease, taken, options.lease_duration)),
                // Someone else wrote it first (or our own write landed unseen): read it again.
                Err(GaveUp { error: kube::Error::Api(status), .. }) if status.code == 409 => continue,
                Err(GaveUp { error: kube::Error::Api(status), .. })
                    if creating
                        && status.code == 404
                        && status.details.as_ref().is_some_and(|d| d.kind == "namespaces") =>
                {
                    return Err(lease.namespace_missing(&self.info));
                }
                // Deleted since we read it: read it again.
                Err(GaveUp { error: kube::Error::Api(status), .. }) if !creating && status.code == 404 => continue,
                Err(gave_up) => {
                    return Err(lease.error(gave_up, if creating { "creating" } else { "taking over" }, &self.info));
                }
            }
        }
    }

    fn hold(&self, lease: LeaseRef, taken: Lease, duration: Duration) -> HeldLock {
        let (stop_renewal, stopped) = oneshot::channel();
        let (lost_sender, lost) = watch::channel(None);
        let renewal = Renewal {
            lease: lease.clone(),
            retry: self.retry.clone(),
            cluster: self.info.clone(),
            duration,
            lost: lost_sender,
        };
        HeldLock {
            lease,
            retry: self.retry.clone(),
            cluster: self.info.clone(),
            stop_renewal: Some(stop_renewal),
            renewal: Some(tokio::spawn(renewal.run(taken, stopped))),
            lost,
        }
    }
}

impl HeldLock {
    /// An error once the lock is lost (another holder took it, or it could not be renewed for
    /// its whole duration): the apply must stop.
    pub fn check(&self) -> Result<()> {
        match &*self.lost.borrow() {
            Some(why) => Err(self.lease.lost(why)),
            None => Ok(()),
        }
    }

    /// Resolves when the lock is lost, with the error [`HeldLock::check`] would give; for
    /// `tokio::select!` against a long wait.
    pub async fn lost(&self) -> Error {
        let mut lost = self.lost.clone();
        match lost.wait_for(Option::is_some).await {
            Ok(why) => self.lease.lost(why.as_deref().unwrap_or_default()),
            Err(_) => self.lease.lost("its renewal stopped"),
        }
    }

    /// Completes when the lock is lost; unlike [`HeldLock::lost`] it borrows nothing, so it can
    /// stop work running elsewhere.
    pub fn on_loss(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            let _ = lost.wait_for(Option::is_some).await;
        }
    }

    /// Stops renewing (after a renewal in flight, if any) and lets the next holder in at once.
    /// Safe after the lock was lost (there is nothing to release then) and on Ctrl-C paths. If
    /// it fails, the lock still expires by itself after its duration.
    pub async fn release(mut self) -> Result<()> {
        if let Some(stop) = self.stop_renewal.take() {
            // An error means the renewal already ended (lock lost): nothing to stop.
            let _ = stop.send(());
        }
        let Some(renewal) = self.renewal.take() else { return Ok(()) };
        let mut lease = renewal
            .await
            .map_err(|err| Error::new(format!("the renewal of {} failed: {err}", self.lease.describe())))?;
        loop {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_ref() != Some(&self.lease.holder) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = Some(now());
            let params = PostParams::default();
            let released = self.retry.run(|| self.lease.api.replace(&self.lease.name, &params, &lease)).await;
            lease = match released {
                Ok(_) => return Ok(()),
                Err(GaveUp { error: kube::Error::Api(status), .. }) if status.code == 409 => {
                    // Changed since our last renewal: release it if it is still ours.
                    let current = self.retry.run(|| self.lease.api.get_opt(&self.lease.name)).await;
                    match current.map_err(|gave_up| self.release_error(gave_up))? {
                        Some(current) => current,
                        None => return Ok(()),
                    }
                }
                Err(GaveUp { error: kube::Error::Api(status), .. }) if status.code == 404 => return Ok(()),
                Err(gave_up) => return Err(self.release_error(gave_up)),
            };
        }
    }

    fn release_error(&self, gave_up: GaveUp) -> Error {
        let error = self.lease.error(gave_up, "releasing", &self.cluster);
        Error { help: Some("the lock expires by itself when its lease duration has passed".into()), ..error }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(renewal) = &self.renewal {
            renewal.abort();
        }
    }
}

/// The Lease of one lock, and who is taking it.
#[derive(Clone)]
struct LeaseRef {
    api: Api<Lease>,
    namespace: String,
    name: String,
    subject: LockSubject,
    holder: String,
}

impl LeaseRef {
    fn describe(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
    }

    /// A failed request, with what RBAC the lock needs when that is the problem.
    fn error(&self, gave_up: GaveUp, doing: &str, cluster: &ClusterInfo) -> Error {
        let forbidden = matches!(&gave_up.error, kube::Error::Api(status) if status.code == 403);
        let error = gave_up.into_error(&format!("{doing} {}", self.describe()), cluster);
        if !forbidden {
            return error;
        }
        error.with_help(format!(
            "locking {} needs get, create and update on leases (coordination.k8s.io) in namespace `{}`; \
             `kubectl auth can-i update leases -n {}` checks it. Or set {} to a namespace where weaver's user has \
             them",
            self.subject.what(),
            self.namespace,
            self.namespace,
            self.subject.namespace_setting()
        ))
    }

    fn namespace_missing(&self, cluster: &ClusterInfo) -> Error {
        Error::new(format!(
            "cannot lock {}: namespace `{}` does not exist (context `{}`, {})",
            self.subject.what(),
            self.namespace,
            cluster.context,
            cluster.server
        ))
        .with_help(format!("create it, or set {} to a namespace that exists", self.subject.namespace_setting()))
    }

    fn held_by_another(&self, spec: &LeaseSpec, waited: Duration) -> Error {
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let waited = if waited.is_zero() { String::new() } else { format!(" (waited {})", humanize(waited)) };
        let duration = spec.lease_duration_seconds.unwrap_or_default();
        Error::new(format!(
            "{} is locked: {} is held by {holder} since {}{waited}",
            self.subject.what(),
            self.describe(),
            since_text(spec),
        ))
        .with_help(format!(
            "another weaver apply is running; wait for it, or give --lock-timeout a longer duration. A holder that \
             stopped without releasing (killed, disconnected) loses the lock {duration}s after its last renewal"
        ))
    }

    fn lost(&self, why: &str) -> Error {
        let error = Error::new(format!("lost the lock of {} ({}): {why}", self.subject.what(), self.describe()));
        match self.subject {
            LockSubject::Environment { .. } => {
                error.with_help("another process may be applying this environment now; check, then apply again")
            }
            LockSubject::Leadership(_) => error.with_help("another replica leads now; this one stops"),
        }
    }
}

/// The background task that keeps a held Lease renewed.
struct Renewal {
    lease: LeaseRef,
    retry: Retrier,
    cluster: ClusterInfo,
    duration: Duration,
    lost: watch::Sender<Option<String>>,
}

impl Renewal {
    /// Renews every third of the duration until `stop`; returns the last Lease it knows.
    async fn run(self, mut lease: Lease, mut stop: oneshot::Receiver<()>) -> Lease {
        let mut renewed_at = Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => return lease,
                () = tokio::time::sleep(self.duration / 3) => {}
            }
            let renew_time = now();
            let mut next = lease.clone();
            next.spec.get_or_insert_with(LeaseSpec::default).renew_time = Some(renew_time.clone());
            let params = PostParams::default();
            // Others may take the Lease once it has gone a duration without renewal: a renewal
            // (retries included) that cannot finish by then means the lock is lost, not late.
            let expires = tokio::time::Instant::from_std(renewed_at + self.duration);
            let expired = || format!("it could not be renewed within {}", humanize(self.duration));
            let renewing = self.retry.run(|| self.lease.api.replace(&self.lease.name, &params, &next));
            let Ok(renewal) = tokio::time::timeout_at(expires, renewing).await else {
                return self.give_up(lease, expired());
            };
            let failure = match renewal {
                Ok(renewed) => {
                    lease = renewed;
                    renewed_at = Instant::now();
                    continue;
                }
                Err(GaveUp { error: kube::Error::Api(status), .. }) if matches!(status.code, 404 | 409) => {
                    let reading = self.retry.run(|| self.lease.api.get_opt(&self.lease.name));
                    let Ok(read) = tokio::time::timeout_at(expires, reading).await else {
                        return self.give_up(lease, expired());
                    };
                    match read {
                        Ok(None) => return self.give_up(lease, "the Lease was deleted".into()),
                        Ok(Some(current)) => {
                            let spec = current.spec.clone().unwrap_or_default();
                            let holder = spec.holder_identity.clone().unwrap_or_default();
                            if holder != self.lease.holder {
                                let why = format!("{holder} took it over at {}", since_text(&spec));
                                return self.give_up(current, why);
                            }
                            // Still ours: our own retried write landed, or someone edited it.
                            if spec.renew_time.as_ref() == Some(&renew_time) {
                                renewed_at = Instant::now();
                            }
                            lease = current;
                            continue;
                        }
                        Err(gave_up) => self.lease.error(gave_up, "reading", &self.cluster),
                    }
                }
                Err(gave_up) => self.lease.error(gave_up, "renewing", &self.cluster),
            };
            if renewed_at.elapsed() >= self.duration {
                let why = format!("it could not be renewed for {}: {failure}", humanize(self.duration));
                return self.give_up(lease, why);
            }
        }
    }

    fn give_up(&self, lease: Lease, why: String) -> Lease {
        self.lost.send_replace(Some(why));
        lease
    }
}

/// Whether a Lease is free to take: released (no holder), or its holder stopped renewing it.
/// `unchanged_for` is how long (by our clock) the Lease has not changed while we watched:
/// that many seconds of silence expire it too, whatever its timestamps say, so a holder whose
/// clock runs ahead of ours cannot hold it forever.
fn vacant(spec: &LeaseSpec, now: Timestamp, unchanged_for: Duration, default_duration: Duration) -> bool {
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    let duration = match spec.lease_duration_seconds {
        Some(seconds) => Duration::from_secs(seconds.max(0).unsigned_abs().into()),
        None => default_duration,
    };
    let last_renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
    let expired_by_clock = last_renewed.is_some_and(|renewed| {
        now.duration_since(renewed.0) > SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
    });
    expired_by_clock || unchanged_for >= duration
}

fn held_spec(holder: &str, now: &MicroTime, duration_seconds: i32, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        acquire_time: Some(now.clone()),
        renew_time: Some(now.clone()),
        lease_duration_seconds: Some(duration_seconds),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// Now, at the microsecond precision a MicroTime keeps, so what we write is what we read back.
fn now() -> MicroTime {
    let now = Timestamp::now();
    MicroTime(Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}

fn since_text(spec: &LeaseSpec) -> String {
    time_text(spec.acquire_time.as_ref())
}

/// A Lease's time as messages give it, to the second.
fn time_text(time: Option<&MicroTime>) -> String {
    match time {
        Some(time) => time.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "an unknown time".to_string(),
    }
}

/// This replica of a controller, as a Lease names its holder: its pod (`POD_NAME`) in a pod,
/// else this process.
pub fn this_replica() -> String {
    std::env::var("POD_NAME").ok().filter(|pod| !pod.is_empty()).unwrap_or_else(this_process)
}

/// `alice@build-7 pid 4242`: enough for someone waiting to find the process holding the lock.
pub fn this_process() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let host = match ok.then(|| std::ffi::CStr::from_bytes_until_nul(&name).ok()).flatten() {
        Some(host) => host.to_string_lossy().into_owned(),
        None => "unknown-host".to_string(),
    };
    format!("{user}@{host} pid {}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed: Timestamp, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_vacant_when_released_or_not_renewed_in_time() {
        let now = Timestamp::now();
        let ago = |s: i64| now - SignedDuration::from_secs(s);
        let fresh = Duration::ZERO;
        let default = DEFAULT_LEASE_DURATION;
        assert!(vacant(&spec(None, now, 30), now, fresh, default), "released");
        assert!(vacant(&spec(Some(""), now, 30), now, fresh, default), "released by another tool");
        assert!(!vacant(&spec(Some("bob"), ago(10), 30), now, fresh, default), "renewed recently");
        assert!(vacant(&spec(Some("bob"), ago(31), 30), now, fresh, default), "renewal overdue");
        assert!(!vacant(&spec(Some("bob"), ago(29), 30), now, fresh, default));
    }

    #[test]
    fn a_lease_that_does_not_change_while_watched_expires_whatever_its_clock_says() {
        let now = Timestamp::now();
        // The holder's clock is an hour ahead: by timestamps it looks renewed in the future.
        let ahead = spec(Some("bob"), now + SignedDuration::from_hours(1), 30);
        assert!(!vacant(&ahead, now, Duration::from_secs(29), DEFAULT_LEASE_DURATION));
        assert!(vacant(&ahead, now, Duration::from_secs(30), DEFAULT_LEASE_DURATION));
    }

    #[test]
    fn a_lease_without_times_or_duration_expires_by_observation_alone() {
        let bare = LeaseSpec { holder_identity: Some("bob".into()), ..LeaseSpec::default() };
        let now = Timestamp::now();
        assert!(!vacant(&bare, now, Duration::from_secs(5), Duration::from_secs(10)));
        assert!(vacant(&bare, now, Duration::from_secs(10), Duration::from_secs(10)));
    }

    #[test]
    fn written_times_survive_the_round_trip_through_json() {
        let time = now();
        let text = serde_json::to_string(&time).unwrap();
        assert_eq!(text.len(), "\"2024-01-02T03:04:05.123456Z\"".len(), "{text}");
        assert_eq!(serde_json::from_str::<MicroTime>(&text).unwrap(), time);
    }

    #[test]
    fn the_holder_names_user_host_and_process() {
        let holder = this_process();
        assert!(holder.ends_with(&format!(" pid {}", std::process::id())), "{holder}");
        assert!(holder.contains('@'), "{holder}");
    }
}
