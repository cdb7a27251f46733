//! The controllers `weaver operator run` runs in a cluster: `configmapsync` copies a ConfigMap
//! into other namespaces, `gitops` applies environments pulled from git (the book's operator
//! and GitOps guides). Both act as a tenant's ServiceAccount (`tenant`). `conversion` serves the
//! CRDs' conversion webhook.

mod backoff;
pub use weaver_api::conditions;
pub mod configmapsync;
pub mod conversion;
pub mod election;
pub mod endpoints;
pub mod events;
pub mod gitops;
pub mod http;
pub mod proxy;
pub mod readiness;
pub mod stored;
pub mod telemetry;
pub mod tenant;

use kube::runtime::controller::{Action, Error as QueueError};
use kube::runtime::reflector::ObjectRef;

pub use backoff::Backoff;

/// What a controller's queue says of each reconcile, at debug: outcomes are in the statuses, and
/// `error_policy` logs failures with their reason. Only a failure of the queue itself warns.
pub async fn log_queue<K, E, W>(result: Result<(ObjectRef<K>, Action), QueueError<E, W>>)
where
    K: kube::Resource,
    K::DynamicType: std::fmt::Debug,
    E: std::error::Error,
    W: std::error::Error,
{
    match result {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        // Deleted while queued (its finalizer, if any, already ran): nothing left to do.
        Err(QueueError::ObjectNotFound(object)) => tracing::debug!(%object, "gone before its reconcile"),
        Err(QueueError::ReconcilerFailed(_, object)) => tracing::debug!(%object, "reconcile failed"),
        Err(err) => tracing::warn!("the controller's queue failed: {err}"),
    }
}
