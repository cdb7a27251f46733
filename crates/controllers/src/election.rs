//! Leader election shared by the controllers of one process: they reconcile only while this
//! replica holds the leader Lease, so replicas are safe.

use std::future::Future;

use weaver_cluster::{Cluster, LockEvent, LockOptions};

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
/// start campaigning again.
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
    let acquiring = cluster.acquire_lock(&options, |event| {
        if let LockEvent::Waiting { holder, .. } = event {
            ready(true);
            on_role(Role::Following { leader: holder });
        }
    });
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
