//! What every layer of weaver shares: the one error type, and Kubernetes objects as the
//! pipeline passes them (identity, names, what makes one sendable).

pub mod error;
pub mod health;
pub mod limits;
pub mod manifest;
pub mod parallel;
pub mod time;

pub use error::{Error, Result};
