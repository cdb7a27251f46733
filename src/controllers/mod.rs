//! The controllers `weaver operator run` runs in a cluster: `configmapsync` copies a ConfigMap
//! into other namespaces, `gitops` applies environments pulled from git (the book's operator
//! and GitOps guides). Both act as a tenant's ServiceAccount (`tenant`).

pub mod conditions;
pub mod configmapsync;
pub mod election;
pub mod gitops;
pub mod tenant;
