//! The ConfigMapSync controller: copies a ConfigMap into other namespaces as a ServiceAccount the
//! tenant names, so the tenant's own RBAC bounds every write (see docs/src/guides/operator.md).
//!
//! `api` holds the CustomResource types; the CRD that `weaver operator crd` prints, and that the
//! chart `charts/weaver` ships in `crds/`, is generated from them.

pub mod access;
pub use weaver_api::configmap_sync as api;
pub mod controller;
pub mod plan;
pub mod status;

pub use api::{ConfigMapSync, ConfigMapSyncSpec, ConfigMapSyncStatus, SourceRef, TargetStatus};

use kube::CustomResourceExt;

/// The ConfigMapSync CustomResourceDefinition, generated from the Rust types.
pub fn crd() -> serde_json::Value {
    // A CRD built by kube's derive always serializes; written as the server stores it
    // (schemars' `minimum: 0.0` is `0` there), so that applying it again changes nothing.
    weaver_plan::diff::as_stored(
        serde_json::to_value(ConfigMapSync::crd()).expect("a generated CRD serializes to JSON"),
    )
}
