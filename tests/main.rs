//! The integration tests, in one binary: one per file linked the crate and its dependencies
//! thirty-odd times, most of a first `cargo test`'s build. Each file is a module; run one with
//! `cargo test --test suite MODULE::` (`cargo test --test suite fleet::`).

mod common;

mod adopt;
mod apply;
mod approvals;
mod architecture;
mod auto_promote;
mod bad_input;
mod confine;
mod demo;
mod diff;
mod diff_errors;
mod docs;
mod drift;
mod drift_correct;
mod examples;
mod fleet;
mod git;
mod git_source;
mod gitops;
mod gitops_webhook;
mod health;
mod helm;
mod hooks;
mod hydrate;
mod ignore;
mod import;
mod import_flux;
mod kustomize;
mod leaks;
mod lock;
mod lookup;
mod node;
mod notify;
mod operator;
mod operator_chart;
mod ownership;
mod patch_kubectl;
mod promote;
mod reference;
mod remote_charts;
mod render;
mod render_errors;
mod report;
mod report_merge;
mod restart;
mod secrets;
mod secrets_cli;
mod sync;
mod ui;
mod ui_controller;
mod ui_oidc;
mod validate;
mod wait;
