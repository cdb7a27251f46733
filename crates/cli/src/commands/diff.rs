//! `weaver diff`: what an apply would change, as a readable diff, or a report (JSON, Markdown,
//! HTML: `weaver_engine::report`); for a fleet, each environment's, after a summary.

use std::process::ExitCode;

use super::fleet::FleetFormat;
use super::{Environments, Ui, block_on, connect_options, write_stdout};
use crate::cli::{DiffArgs, DiffFormat, GlobalArgs};
use weaver_cluster::SharedServers;
use weaver_core::error::Result;
use weaver_engine::action::Context;
use weaver_engine::action::fleet::{self, FleetContext};
use weaver_engine::action::plan::{Against, PlanOptions, Planned, plan};
use weaver_engine::report::json::{AnyFleetReport, DiffReport, FleetCommand, FleetReport};
use weaver_engine::report::{self, DiffContext};

/// What a diff says of a plan that takes objects from another environment, after showing it.
const REFUSED: &str = "an apply would refuse it and write nothing";

pub fn run(global: &GlobalArgs, ui: &Ui, args: &DiffArgs) -> Result<ExitCode> {
    // --base: the commit's full SHA, resolved once for every environment.
    let base = match &args.base {
        Some(rev) => Some(weaver_git::GitRepo::open(&global.repo)?.resolve(rev, "--base")?.commit.to_string()),
        None => None,
    };
    let base = &base;
    let options = |env: &str, servers: Option<SharedServers>| PlanOptions {
        render: super::render_options(global, &args.render, env, &args.identity),
        against: match (&args.live_from, &base) {
            (Some(path), _) => Against::File(path.clone()),
            (None, Some(base)) => Against::Revision(base.clone()),
            (None, None) => Against::Cluster(connect_options(&args.cluster)),
        },
        server_side: args.server_side,
        concurrency: args.concurrency,
        prune_releases: args.prune_releases.into(),
        servers,
    };
    let environments = match super::environments(global, &args.render.select)? {
        Environments::One(env) => return one(global, ui, args, &options(&env, None), base.as_deref()),
        Environments::Fleet(environments) => environments,
    };
    // Environments that reach one server share its budget of requests in flight, and discovery.
    let servers = SharedServers::new(args.concurrency)?;
    let options = |env: &str| options(env, Some(servers.clone()));
    if args.output == DiffFormat::Html {
        return Err(super::one_environment_only(
            "-o html shows one environment",
            &environments,
            "select one environment with --env NAME, or use -o markdown or -o json for a fleet",
        ));
    }
    let planned =
        fleet::plan(&environments, options, FleetContext::new(&ui.redactor, &|env, p| ui.fleet_progress(env, p)));
    // The environments that failed are told of even when a collision stops the others.
    super::report_failures(ui, &planned);
    fleet::refuse_collisions(&planned)?;
    let mode = if args.server_side { "server" } else { "client" };
    let provenance = weaver_git::provenance(&global.repo, args.render.select.source.rev.as_deref())?;
    let results = super::fleet_results(ui, &planned);
    let report = FleetReport::new(
        FleetCommand::Diff,
        provenance.as_ref(),
        &results,
        |planned, environment| {
            let context = DiffContext { environment, mode, provenance: provenance.as_ref(), base: base.as_deref() };
            DiffReport::new(&planned.plan, &context, &ui.redactor)
        },
        DiffReport::has_changes,
    );
    let report = AnyFleetReport::Diff(report);
    let format = match args.output {
        DiffFormat::Text => FleetFormat::Text,
        DiffFormat::Json => FleetFormat::Json,
        DiffFormat::Markdown => FleetFormat::Markdown,
        DiffFormat::Html => FleetFormat::Html,
    };
    super::fleet::write(ui, &report, format)?;
    if !args.take_ownership {
        for outcome in &planned {
            if let Ok(planned) = &outcome.result {
                planned.plan.refuse_taking(&outcome.environment, REFUSED)?;
            }
        }
    }
    Ok(super::fleet::exit_code(&report, args.exit_code))
}

/// One environment, as `weaver diff --env NAME` always showed it.
fn one(global: &GlobalArgs, ui: &Ui, args: &DiffArgs, options: &PlanOptions, base: Option<&str>) -> Result<ExitCode> {
    let Planned { env, plan, .. } = block_on(plan(options, Context::new(&ui.redactor, &|p| ui.progress(p))))?;
    // Text names no commit: it needs no look at git.
    let provenance = match args.output {
        DiffFormat::Text => None,
        _ => weaver_git::provenance(&global.repo, args.render.select.source.rev.as_deref())?,
    };
    let mode = if args.server_side { "server" } else { "client" };
    let context = DiffContext { environment: &env.name, mode, provenance: provenance.as_ref(), base };
    let report = DiffReport::new(&plan, &context, &ui.redactor);
    let text = match args.output {
        DiffFormat::Text => super::fleet::plan_text(ui, &report),
        DiffFormat::Json => report::json::to_text(&report),
        DiffFormat::Markdown => report::markdown::diff(&report, &ui.redactor, report::markdown::GITHUB_COMMENT_LIMIT),
        DiffFormat::Html => report::html::diff(&report, &ui.redactor),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    if !args.take_ownership {
        plan.refuse_taking(&env.name, REFUSED)?;
    }
    Ok(if args.exit_code && report.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
