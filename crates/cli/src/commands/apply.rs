//! `weaver apply`: server-side apply of an environment's releases, with records, prune and
//! readiness; for a fleet, each environment's in order (waves, `needs`), then a summary.

use std::borrow::Cow;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::fleet::FleetFormat;
use super::progress::{ApplyProgress, FleetApplyProgress, failure, finish, interruptions, summary};
use super::{Environments, Ui, apply_settings, block_on, connect_options};
use crate::cli::{ApplyArgs, GlobalArgs, ListFormat};
use weaver_cluster::SharedServers;
use weaver_core::error::{Error, Result};
use weaver_engine::action::Context;
use weaver_engine::action::apply::{Applied, ApplyActionOptions, Settings, apply};
use weaver_engine::action::fleet::{self, Ended, FleetApplied, FleetApplyOptions, FleetContext};
use weaver_engine::report::json::{
    AnyFleetReport, ApplyReport, FleetApplyEnvironment, FleetApplyState, FleetEnvironment, FleetReport,
};

pub fn run(global: &GlobalArgs, ui: &Ui, args: &ApplyArgs) -> Result<ExitCode> {
    let options = |env: &str, servers: Option<SharedServers>| ApplyActionOptions {
        render: super::render_options(global, &args.render, env, &args.identity),
        connect: connect_options(&args.cluster),
        settings: Settings { take_ownership: args.take_ownership, ..apply_settings(&args.apply) },
        require_clean: args.require_clean,
        allow_overrides: args.allow_overrides,
        prune_releases: args.prune_releases.into(),
        forget_helm_release: args.forget_helm_release,
        servers,
    };
    let environments = match super::environments(global, &args.render.select)? {
        Environments::One(env) => {
            let options = options(&env, None);
            let progress = ApplyProgress::new(ui, &options.settings, args.apply.output);
            let applied = block_on(apply(
                &options,
                Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
            ))?;
            return finish(ui, applied, args.apply.output);
        }
        Environments::Fleet(environments) => environments,
    };
    let settings = Settings { take_ownership: args.take_ownership, ..apply_settings(&args.apply) };
    // Environments that reach one server share its budget of requests in flight.
    let servers = SharedServers::new(settings.concurrency)?;
    let progress = FleetApplyProgress::new(ui, &settings, args.apply.output);
    let interrupted = Arc::new(AtomicBool::new(false));
    // From the start: an environment interrupted before it writes applies nothing, and the
    // others are told of as not started.
    let flag = Arc::clone(&interrupted);
    std::thread::spawn(move || block_on(interruptions(flag)));
    let applied = fleet::apply(
        &environments,
        |env| options(env, Some(servers.clone())),
        FleetApplyOptions { max_parallel: args.max_parallel, fail_fast: args.fail_fast },
        FleetContext::new(&ui.redactor, &|env, p| progress.on(env, p)).interruptible(&interrupted),
    )?;
    fleet_finish(global, ui, args, &applied)
}

/// How each environment of a fleet apply ended, and the error it exits 1 with (redacted).
fn states(ui: &Ui, applied: &[FleetApplied]) -> Vec<(FleetApplyState, Option<String>)> {
    applied
        .iter()
        .map(|env| {
            let failed = |err: Error| {
                super::report_error(ui, &err);
                Some(super::error_text(ui, &err))
            };
            match &env.ended {
                Ended::Ran(Ok(applied)) => {
                    let state = match (applied.report.interrupted, applied.report.failed()) {
                        (true, _) => FleetApplyState::Interrupted,
                        (false, true) => FleetApplyState::Failed,
                        (false, false) if applied.lock_lost.is_some() => FleetApplyState::Failed,
                        (false, false) => FleetApplyState::Applied,
                    };
                    let err = failure(&applied.report, &applied.options, &summary(&applied.report)).or_else(|| {
                        applied.lock_lost.clone().map(|lost| lost.context(format!("environment `{}`", env.environment)))
                    });
                    (state, err.and_then(failed))
                }
                Ended::Ran(Err(err)) => {
                    (FleetApplyState::Failed, failed(err.clone().context(format!("environment `{}`", env.environment))))
                }
                Ended::Skipped(_) => (FleetApplyState::Skipped, None),
                Ended::NotStarted(_) => (FleetApplyState::NotStarted, None),
            }
        })
        .collect()
}

/// Why an environment was skipped or not started.
fn reason(env: &FleetApplied) -> Option<&str> {
    match &env.ended {
        Ended::Skipped(reason) | Ended::NotStarted(reason) => Some(reason),
        Ended::Ran(_) => None,
    }
}

/// What an environment applied, when it got as far as applying.
fn report(env: &FleetApplied) -> Option<&Applied> {
    match &env.ended {
        Ended::Ran(Ok(applied)) => Some(applied),
        _ => None,
    }
}

/// Prints each environment's error, then the fleet's report: a table of the environments in
/// the order they were applied (text) or its document (JSON). Exits 1 unless every environment
/// applied.
fn fleet_finish(global: &GlobalArgs, ui: &Ui, args: &ApplyArgs, applied: &[FleetApplied]) -> Result<ExitCode> {
    let states = states(ui, applied);
    let changed = applied
        .iter()
        .filter_map(report)
        .filter(|a| {
            let t = a.report.totals();
            t.created + t.configured + t.pruned > 0
        })
        .count();
    let provenance = weaver_git::provenance(&global.repo, args.render.select.source.rev.as_deref())?;
    let environments = applied
        .iter()
        .zip(&states)
        .map(|(env, (state, error))| FleetEnvironment {
            environment: env.environment.as_str().into(),
            apply: Some(FleetApplyEnvironment {
                wave: env.wave,
                needs: env.needs.iter().map(|n| Cow::Borrowed(n.as_str())).collect(),
                state: *state,
                reason: reason(env).map(Cow::Borrowed),
            }),
            error: error.as_deref().map(Cow::Borrowed),
            report: report(env).map(|a| ApplyReport::new(&a.report, &a.options, &ui.redactor)),
        })
        .collect();
    let report = AnyFleetReport::Apply(FleetReport::of_apply(environments, changed, provenance.as_ref()));
    let format = match args.apply.output {
        ListFormat::Text => FleetFormat::Text,
        ListFormat::Json => FleetFormat::Json,
    };
    super::fleet::write(ui, &report, format)?;
    Ok(super::fleet::exit_code(&report, false))
}
