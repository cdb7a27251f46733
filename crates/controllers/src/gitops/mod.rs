//! The EnvironmentSync controller: pulls environments from git (`weaver_source`) and keeps them
//! applied with the actions `weaver apply` and `weaver drift` run, as the EnvironmentSync's
//! ServiceAccount. `api` holds the CustomResource types, `plan` the decisions (`previews` those of
//! preview environments; `forge` the requests to a forge's API they list pull requests and post
//! commit statuses with), `status` the status they give, `reconcile` and `controller` the work
//! against the cluster (`reconcile`'s `credentials` what it acts as and with, its `push` the
//! promotions and image updates, its `previews` the preview environments);
//! `applied` reads what an EnvironmentSync applied, for the UI; `webhook` receives git hosts'
//! pushes, `telemetry` counts for `/metrics`, `renders` bounds tenants' renders and gives them
//! turns.

pub use weaver_api::environment_sync as api;
pub mod applied;
pub mod controller;
pub mod forge;
pub mod plan;
pub mod previews;
pub mod reconcile;
pub mod renders;
pub mod status;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod webhook;

pub use api::{EnvironmentSync, EnvironmentSyncSpec, EnvironmentSyncStatus};

use kube::CustomResourceExt;

pub use api::CRD_NAME;

/// The EnvironmentSync CustomResourceDefinition: `v1beta1` generated from the Rust types, the
/// storage version, and `v1alpha1` as 0.1.0 served it. It names no conversion webhook: the
/// controller that serves one sets it (`crate::conversion`).
pub fn crd() -> serde_json::Value {
    // A CRD built by kube's derive always serializes; written as the server stores it
    // (schemars' `minimum: 0.0` is `0` there), so that applying it again changes nothing.
    let mut crd = serde_json::to_value(EnvironmentSync::crd()).expect("a generated CRD serializes to JSON");
    if let Some(versions) = crd["spec"]["versions"].as_array_mut() {
        versions.push(weaver_api::v1alpha1::environment_sync_version());
    }
    weaver_plan::diff::as_stored(crd)
}
