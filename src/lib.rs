//! weaver: environments, charts and age-encrypted secrets in a git repository, turned into
//! Kubernetes objects. README.md has the tour; the book (docs/) the rest.

pub(crate) use weaver_engine::action;
pub(crate) use weaver_engine::apply;
pub mod cli;
pub use weaver_cluster as cluster;
pub mod commands;
pub(crate) mod completion;
pub use weaver_controllers as controllers;
pub use weaver_core::error;
pub(crate) use weaver_core::manifest;
pub(crate) use weaver_engine::notify;
pub(crate) use weaver_engine::report;
pub use weaver_git as git;
pub(crate) use weaver_helm as helm;
pub use weaver_kustomize as kustomize;
pub use weaver_patch as patch;
pub(crate) use weaver_plan::diff;
pub use weaver_plan::release;
pub use weaver_project as project;
pub(crate) use weaver_render as render;
pub use weaver_secrets as secrets;
pub use weaver_source as source;
pub(crate) use weaver_ui as ui;
pub(crate) use weaver_validate as validate;
pub use weaver_yaml as yaml;

pub use error::{Error, Result};
