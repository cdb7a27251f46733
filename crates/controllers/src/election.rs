//! Leader election shared by the controllers of one process: they reconcile only while this
//! replica holds the leader Lease, so replicas are safe.
//!
//! During a rolling update the leader's Lease should pass once, from an old replica to a new
//! one: a replica the rollout is replacing (its ReplicaSet's revision older than its
//! Deployment's) leaves a free Lease to the replicas of the current revision, which take it
//! within a second, for up to one lease duration, after which it takes the Lease itself so that
//! a rollout whose new replicas never campaign does not leave the controller without a leader.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use weaver_cluster::{Cluster, DeploymentReplica, LockEvent, LockOptions};

/// Where this replica stands in the leader election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Another replica holds the Lease; this one waits and does not reconcile.
    Following { leader: String },
    /// This replica holds the Lease and runs the controller.
    Leading,
}

/// Runs `work` only while this replica holds the leader Lease (`election`), or at once without
/// one; `work` is handed a future that completes when it should stop. `ready` hears whether
/// the replica is a healthy member (a follower is a healthy standby). Returns when `shutdown`
/// completes (releasing the Lease, so another replica takes over at once) or with an error when
/// the Lease is lost: the process should then exit, as client-go's leader election does, and
/// start campaigning again. A replica of a Deployment (`LockOptions::replica`) that a rollout
/// is replacing defers to the new ones (see the module's documentation).
pub async fn lead<W, F>(
    election: Option<(Cluster, LockOptions)>,
    ready: impl Fn(bool),
    mut on_role: impl FnMut(Role),
    shutdown: impl Future<Output = ()> + Send + 'static,
    work: W,
) -> weaver_core::Result<()>
where
    W: FnOnce(Stopped) -> F,
    F: Future<Output = ()>,
{
    let Some((cluster, options)) = election else {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(());
        });
        work(Stopped(stopped)).await;
        return Ok(());
    };
    let mut shutdown = Box::pin(shutdown);
    ready(false);
    let deference = Deference { cluster: &cluster, options: &options, unknown: Mutex::new(None) };
    let on_event = |event| {
        if let LockEvent::Waiting { holder, .. } = event {
            ready(true);
            on_role(Role::Following { leader: holder });
        }
    };
    let acquiring = cluster.acquire_lock_deferring(&options, on_event, |free_for| deference.defer(free_for));
    let lease = tokio::select! {
        () = &mut shutdown => return Ok(()),
        lease = acquiring => lease?,
    };
    on_role(Role::Leading);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let lost = lease.on_loss();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            () = lost => {}
        }
        let _ = stop.send(());
    });
    work(Stopped(stopped)).await;
    lease.check()?;
    lease.release().await
}

/// Whether this replica leaves a free leader Lease to the replicas of its Deployment's current
/// revision.
struct Deference<'a> {
    cluster: &'a Cluster,
    options: &'a LockOptions,
    /// Why the revisions could not be read, as last logged: a lasting cause (a missing
    /// permission) is logged once.
    unknown: Mutex<Option<String>>,
}

impl Deference<'_> {
    /// Whether to leave the Lease, free for `free_for`, a while longer: while this replica is
    /// outdated, for up to one lease duration. Without its revisions, it takes the Lease at once
    /// as it did before rollouts were told apart.
    async fn defer(&self, free_for: Duration) -> bool {
        let Some(replica) = &self.options.replica else { return false };
        let bound = self.options.lease_duration;
        if free_for >= bound {
            tracing::info!(
                "taking the leader Lease this outdated replica left free for {}s: no replica of the current \
                 revision took it",
                bound.as_secs()
            );
            return false;
        }
        match self.cluster.revisions(replica).await {
            Ok(revisions) if revisions.outdated() => {
                if free_for.is_zero() {
                    tracing::info!(
                        own = revisions.own,
                        current = revisions.current,
                        "the leader Lease is free and a rollout replaces this replica: leaving it to a replica of \
                         the current revision for up to {}s",
                        bound.as_secs()
                    );
                }
                true
            }
            Ok(_) => false,
            Err(err) => {
                let why = match &err.help {
                    Some(help) => format!("{err} ({help})"),
                    None => err.to_string(),
                };
                self.unknown_revisions(replica, &why);
                false
            }
        }
    }

    fn unknown_revisions(&self, replica: &DeploymentReplica, why: &str) {
        let mut unknown = self.unknown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if unknown.as_deref() != Some(why) {
            tracing::warn!(
                deployment = %replica.deployment,
                "cannot tell whether a rollout replaces this replica, so it takes a free leader Lease at once: {why}"
            );
            *unknown = Some(why.to_string());
        }
    }
}

/// Completes when the controllers should stop: on shutdown, or when the Lease is lost.
pub struct Stopped(tokio::sync::oneshot::Receiver<()>);

impl Stopped {
    /// Splits into `n` signals that complete together, one per controller.
    pub fn split(self, n: usize) -> Vec<impl Future<Output = ()> + Send + Sync + 'static> {
        let (tell, _) = tokio::sync::broadcast::channel::<()>(1);
        let receivers: Vec<_> = (0..n).map(|_| tell.subscribe()).collect();
        let stopped = self.0;
        tokio::spawn(async move {
            let _ = stopped.await;
            let _ = tell.send(());
        });
        receivers
            .into_iter()
            .map(|mut receiver| async move {
                let _ = receiver.recv().await;
            })
            .collect()
    }
}

impl Future for Stopped {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}
