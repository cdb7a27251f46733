//! A user's rule of an object's health (an environment's `healthChecks`), as readiness consults
//! it: `weaver-project` compiles and evaluates the rules (CEL), `weaver-cluster` judges objects
//! with them, and neither knows the other's types.

use serde_json::Value;

use crate::error::Location;

/// What one rule says of an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Current,
    InProgress,
    Failed,
    /// No expression is true: progressing, as Flux takes it.
    NoneTrue,
    /// An expression could not be evaluated (a field it reads is absent, it gave no bool):
    /// the health is unknown.
    Error(String),
}

/// A health rule of one kind.
pub trait HealthRule {
    /// Whether the rule is for objects of `api_version` and `kind`.
    fn selects(&self, api_version: &str, kind: &str) -> bool;
    /// The rule's verdict on `object`, as the server returned it.
    fn evaluate(&self, object: &Value) -> Verdict;
    /// Where the rule is written, for the messages that quote it.
    fn at(&self) -> &Location;
}
