//! The EnvironmentSync controller: pulls environments from git (`weaver_source`) and keeps them
//! applied with the actions `weaver apply` and `weaver drift` run, as the EnvironmentSync's
//! ServiceAccount. `api` holds the CustomResource types, `plan` the decisions, `status` the
//! status they give, `reconcile` and `controller` the work against the cluster; `webhook`
//! receives git hosts' pushes, `telemetry` counts for `/metrics`, `renders` bounds tenants'
//! renders and gives them turns.

pub use weaver_api::environment_sync as api;
pub mod controller;
pub mod plan;
pub mod reconcile;
pub mod renders;
pub mod status;
pub mod telemetry;
pub mod webhook;

pub use api::{EnvironmentSync, EnvironmentSyncSpec, EnvironmentSyncStatus};

use kube::CustomResourceExt;

/// The EnvironmentSync CustomResourceDefinition, generated from the Rust types.
pub fn crd() -> serde_json::Value {
    // A CRD built by kube's derive always serializes; written as the server stores it
    // (schemars' `minimum: 0.0` is `0` there), so that applying it again changes nothing.
    weaver_plan::diff::as_stored(
        serde_json::to_value(EnvironmentSync::crd()).expect("a generated CRD serializes to JSON"),
    )
}
