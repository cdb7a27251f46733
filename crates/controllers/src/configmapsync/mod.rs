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

pub use api::CRD_NAME;

/// The ConfigMapSync CustomResourceDefinition: `v1beta1` generated from the Rust types, the
/// storage version, and `v1alpha1` as 0.1.0 served it. The two differ only in what the schema
/// enumerates, so the API server converts them itself (`strategy: None`: the apiVersion alone
/// changes), with no webhook.
pub fn crd() -> serde_json::Value {
    // A CRD built by kube's derive always serializes; written as the server stores it
    // (schemars' `minimum: 0.0` is `0` there), so that applying it again changes nothing.
    let mut crd = serde_json::to_value(ConfigMapSync::crd()).expect("a generated CRD serializes to JSON");
    if let Some(versions) = crd["spec"]["versions"].as_array_mut() {
        versions.push(weaver_api::v1alpha1::config_map_sync_version());
    }
    weaver_plan::diff::as_stored(crd)
}
