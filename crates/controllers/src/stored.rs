//! After an upgrade, the leader moves the objects of the CRDs it serves to their storage version
//! (`weaver_engine::action::migrate`, what `weaver migrate` does), as the Flux Operator does: an
//! older version can then be removed from the CRDs without losing an object. Until the API
//! server trusts the conversion webhook (a few seconds after the CRD names it), objects stored at
//! the older version cannot be read: it tries again, waiting longer each time.

use std::time::Duration;

use crate::backoff::Backoff;

/// Migrates `crds` (names), retrying each failure, until done or `stopped`.
pub async fn migrate(client: kube::Client, crds: Vec<&'static str>, stopped: impl std::future::Future<Output = ()>) {
    let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
    let work = async {
        loop {
            match weaver_engine::action::migrate::stored_versions(&client, &crds, false).await {
                Ok(done) => {
                    for crd in done.iter().filter(|crd| crd.changed()) {
                        tracing::info!(
                            crd = %crd.crd,
                            "stored {} object(s) at {}; storedVersions were {}",
                            crd.rewritten,
                            crd.storage,
                            crd.before.join(", ")
                        );
                    }
                    return;
                }
                Err(err) => {
                    let wait = backoff.failed(());
                    tracing::warn!("migrating stored versions failed: {err}; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = stopped => {}
    }
}
