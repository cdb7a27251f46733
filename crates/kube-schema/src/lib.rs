//! Kubernetes objects checked against their schema as the API server checks them, offline.
//!
//! - **Built-in kinds** against the schemas of k8s-openapi's `latest` feature (Kubernetes
//!   1.37), generated from its types' `JsonSchema` impls (`schema.rs` lists the types; their
//!   fields come from k8s-openapi, which generates them from Kubernetes' own OpenAPI document).
//! - **Custom resources** against a CRD version's `openAPIV3Schema`, with the Kubernetes
//!   extensions (`x-kubernetes-preserve-unknown-fields`, `-int-or-string`, `-embedded-resource`).
//!
//! A small structural walker rather than a JSON Schema engine: the API server's rules are not
//! JSON Schema's (which objects keep undeclared fields differs between built-in kinds and CRDs,
//! nulls are dropped, embedded resources get ObjectMeta, quantities have their own grammar),
//! and its messages name paths as the server does. What it checks: unknown fields (as
//! `fieldValidation=Strict`), types, required fields, `enum`, the formats the server decodes
//! (`int32`, `byte`, `date-time`), int-or-string and quantities. Left to the server: CEL rules,
//! `pattern`, bounds, `oneOf`/`anyOf`, and the built-in kinds' Go validation (names, selectors
//! matching labels).
//!
//! weaver validates rendered objects with it; its fake API server (`crates/test-apiserver`)
//! refuses what it finds, so the two cannot disagree, and a real server is the judge of both.

mod schema;
mod walk;

pub use schema::{Builtins, Id, Schemas};
pub use walk::Issue;

use serde_json::Value;

/// Checks `object` against schema `id` of `schemas`: a built-in kind's (`builtins`' own), or
/// (`custom`) a custom resource's, whose apiVersion, kind and metadata are the API server's
/// whatever the CRD declares (ObjectMeta's schema comes from `builtins`). `echo`: whether
/// messages may quote values (never a Secret's).
pub fn check(builtins: &Builtins, schemas: &Schemas, id: Id, object: &Value, custom: bool, echo: bool) -> Vec<Issue> {
    let mut walker = walk::Walker { builtins, echo, issues: Vec::new() };
    walker.object(schemas, id, object, custom);
    walker.issues
}
