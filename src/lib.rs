//! weaver: environments, charts and age-encrypted secrets in a git repository, turned into
//! Kubernetes objects. See README.md for the tour and DESIGN notes.

pub mod action;
pub mod apply;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod completion;
pub mod diff;
pub mod drift;
pub mod error;
pub mod git;
pub mod manifest;
pub mod operator;
pub mod patch;
pub mod project;
pub mod release_record;
pub mod render;
pub mod secrets;
pub mod yaml;

pub use error::{Error, Result};
