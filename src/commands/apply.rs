//! `weaver apply`: server-side apply of an environment's releases, with records, prune and
//! readiness.

use std::process::ExitCode;

use super::progress::{ApplyProgress, finish};
use super::{Ui, apply_settings, block_on, connect_options};
use crate::action::Context;
use crate::action::apply::{ApplyActionOptions, apply};
use crate::cli::{ApplyArgs, GlobalArgs};
use crate::error::Result;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &ApplyArgs) -> Result<ExitCode> {
    let env = super::one_environment(global, &args.render.select, "apply")?;
    let options = ApplyActionOptions {
        render: super::render_options(global, &args.render, &env, &args.identity),
        connect: connect_options(&args.cluster),
        settings: apply_settings(&args.apply),
        require_clean: args.require_clean,
        allow_overrides: args.allow_overrides,
        prune_releases: args.prune_releases,
        forget_helm_release: args.forget_helm_release,
    };
    let progress = ApplyProgress::new(ui, &options.settings, args.apply.output);
    let applied =
        block_on(apply(&options, Context { redactor: &ui.redactor, on: &|p| progress.on(p) }, &progress.interrupted))?;
    finish(ui, applied, args.apply.output)
}
