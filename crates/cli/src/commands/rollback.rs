//! `weaver rollback`: re-apply a recorded revision of a release, pruning what it did not have,
//! and record the result as a new revision that says it is a rollback.

use std::process::ExitCode;

use super::progress::{ApplyProgress, finish};
use super::{Ui, apply_settings, block_on, connect_options};
use crate::cli::{GlobalArgs, RollbackArgs};
use weaver_core::error::Result;
use weaver_engine::action::Context;
use weaver_engine::action::rollback::{RollbackOptions, rollback};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &RollbackArgs) -> Result<ExitCode> {
    let options = RollbackOptions {
        repo: global.repo.clone(),
        rev: None,
        env: args.env.clone(),
        release: args.release.clone(),
        revision: args.revision,
        connect: connect_options(&args.cluster),
        settings: apply_settings(&args.apply),
        servers: None,
    };
    let progress = ApplyProgress::new(ui, &options.settings, args.apply.output);
    let applied = block_on(rollback(
        &options,
        Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
    ))?;
    finish(ui, applied, args.apply.output)
}
