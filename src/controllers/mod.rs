//! The controllers `weaver operator run` runs in a cluster. `configmapsync` copies a ConfigMap
//! into other namespaces as a tenant's ServiceAccount (the book's operator guide).

pub mod configmapsync;
