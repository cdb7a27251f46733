//! `weaver apply`: server-side apply of an environment's releases, with records, prune and
//! readiness. `rollback` runs the same machinery over a recorded revision.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::progress::WaitDisplay;
use super::{Style, Ui, block_on, connect_options, write_stdout};
use crate::apply::{ApplyOptions, Event, ObjectResult, Outcome, ReleaseInput, Report};
use crate::cli::{ApplyArgs, ApplyFlags, ClusterArgs, GlobalArgs, ListFormat};
use crate::cluster::{Cluster, HeldLock, LockEvent, LockOptions};
use crate::diff::plan::{observe, plan_with_records};
use crate::error::{Error, Result};
use crate::project::Environment;
use crate::render::RenderedRelease;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &ApplyArgs) -> Result<ExitCode> {
    let (_, env, rendered) =
        super::render::desired_state(global, ui, &args.select, &args.identity, super::render::IfEmpty::Refuse)?;
    let provenance = crate::git::provenance(&global.repo, args.select.source.rev.as_deref())?;
    if let Some(p) = provenance.as_ref().filter(|p| p.dirty) {
        let what =
            format!("the working tree has uncommitted changes, so what is applied is not commit {}", &p.commit[..12]);
        if args.require_clean {
            return Err(Error::new(format!("{what} (--require-clean)"))
                .with_help("commit or stash the changes, or apply a commit with --rev"));
        }
        ui.warn(&format!("{what}; the records will say `dirty`"));
    }
    let mut options = options(&env, &args.apply, provenance.as_ref().map(|p| (p.commit.clone(), p.dirty)), None);
    options.sensitive = rendered
        .manifests()
        .filter(|_| !ui.redactor.is_empty())
        .filter(|m| {
            let mut redacted = m.object.clone();
            ui.redactor.redact_value(&mut redacted);
            redacted != m.object
        })
        .map(|m| m.key())
        .collect();
    let inputs = inputs(&env, rendered.releases);
    let report = block_on(async {
        let started = Instant::now();
        let cluster = connect(&args.cluster, ui, &env).await?;
        ui.timing("connect", started);
        execute(&cluster, ui, &env, inputs, &args.apply, &options).await
    })?;
    finish(ui, &report, &args.apply, &options)
}

/// Each rendered release with what apply needs to know from the environment.
pub(super) fn inputs(env: &Environment, rendered: Vec<RenderedRelease>) -> Vec<ReleaseInput> {
    rendered
        .into_iter()
        .map(|rendered| {
            let release = env.releases.iter().find(|r| r.name == rendered.name);
            ReleaseInput {
                needs: release.map(|r| r.needs.clone()).unwrap_or_default(),
                create_namespace: release.is_none_or(|r| r.create_namespace),
                rendered,
            }
        })
        .collect()
}

pub(super) fn options(
    env: &Environment,
    flags: &ApplyFlags,
    provenance: Option<(String, bool)>,
    rollback_of: Option<u32>,
) -> ApplyOptions {
    ApplyOptions {
        environment: env.name.clone(),
        dry_run: flags.dry_run,
        force_conflicts: flags.force_conflicts,
        prune: !flags.no_prune,
        concurrency: flags.concurrency,
        wait: flags.wait,
        timeout: flags.timeout,
        commit: provenance.as_ref().map(|(commit, _)| commit.clone()),
        dirty: provenance.map(|(_, dirty)| dirty),
        rollback_of,
        sensitive: Default::default(),
    }
}

pub(super) async fn connect(cluster: &ClusterArgs, ui: &Ui, env: &Environment) -> Result<Cluster> {
    let cluster = Cluster::connect(&connect_options(cluster, Some(env))).await?;
    ui.info(&format!("applying to context `{}` ({})", cluster.info.context, cluster.info.server));
    Ok(cluster)
}

/// Observes the cluster, plans, and applies, printing progress as it goes. Ctrl-C stops
/// starting new work; what was done is still recorded.
pub(super) async fn execute(
    cluster: &Cluster,
    ui: &Ui,
    env: &Environment,
    inputs: Vec<ReleaseInput>,
    flags: &ApplyFlags,
    options: &ApplyOptions,
) -> Result<Report> {
    // One apply per environment at a time; a dry run writes nothing, the Lease included.
    let lock = match options.dry_run {
        true => None,
        false => {
            let lock_options = LockOptions::new(env, flags.lock_timeout);
            let held = cluster
                .acquire_lock(&lock_options, |LockEvent::Waiting { holder, since }| {
                    ui.status(&format!(
                        "waiting for the lock of environment `{}` (Lease {}/weaver-lock-{}), held by {holder} since {since}",
                        env.name, lock_options.namespace, env.name
                    ));
                })
                .await?;
            Some(held)
        }
    };
    let result = execute_locked(cluster, ui, inputs, flags, options, lock.as_ref()).await;
    if let Some(lock) = lock {
        let released = lock.release().await;
        if let (Ok(_), Err(err)) = (&result, released) {
            ui.warn(&format!("{err}; the lock expires by itself"));
        }
    }
    result
}

async fn execute_locked(
    cluster: &Cluster,
    ui: &Ui,
    mut inputs: Vec<ReleaseInput>,
    flags: &ApplyFlags,
    options: &ApplyOptions,
    lock: Option<&HeldLock>,
) -> Result<Report> {
    let mut releases: Vec<RenderedRelease> = inputs.iter().map(|i| i.rendered.clone()).collect();
    let started = Instant::now();
    let live = observe(cluster, &mut releases, &options.environment, options.concurrency).await?;
    ui.timing("observe", started);
    let started = Instant::now();
    let plan = plan_with_records(&releases, &live.records, &live.objects)?;
    ui.timing("plan", started);
    for (input, scoped) in inputs.iter_mut().zip(releases) {
        input.rendered = scoped;
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!(
                "weaver: interrupted; finishing requests in flight and recording what was done (Ctrl-C again to quit at once)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let text = flags.output == ListFormat::Text;
    let waits: RefCell<HashMap<String, WaitDisplay>> = RefCell::new(HashMap::new());
    let on_event = |event: Event<'_>| match event {
        // Readiness goes to stderr, whatever the output format.
        Event::WaitStarted { release, .. } => {
            waits.borrow_mut().insert(release.to_string(), WaitDisplay::new(ui, options.timeout));
        }
        Event::WaitProgress { release, progress } => {
            if let Some(display) = waits.borrow_mut().get_mut(release) {
                display.update(progress);
            }
        }
        Event::WaitFinished { release, outcome } => {
            if let Some(display) = waits.borrow_mut().remove(release) {
                display.finish(outcome);
            }
        }
        _ if text => print_event(ui, options, &event),
        _ => {}
    };
    let started = Instant::now();
    let applying = async {
        let report = crate::apply::apply(cluster, inputs, &plan, &live, options, &interrupted, &on_event).await;
        ui.timing("apply", started);
        report
    };
    let Some(lock) = lock else { return Ok(applying.await) };
    tokio::pin!(applying);
    // Another apply took the lock (this one stopped renewing it): stop starting new work.
    tokio::select! {
        report = &mut applying => Ok(report),
        lost = lock.lost() => {
            interrupted.store(true, Ordering::SeqCst);
            let report = applying.await;
            finish(ui, &report, flags, options).ok();
            Err(lost.context("the apply stopped"))
        }
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Configured => "configured",
        Outcome::Unchanged => "unchanged",
        Outcome::Pruned => "pruned",
        Outcome::Kept => "kept",
        Outcome::Failed => "failed",
        Outcome::NotApplied => "not applied",
    }
}

/// `apps/v1 Deployment shop/web (release web)`
fn object_name(object: &ObjectResult) -> String {
    format!("{} (release {})", super::object_name(&object.api_version, &object.key), object.release)
}

fn print_event(ui: &Ui, options: &ApplyOptions, event: &Event<'_>) {
    let dry = if options.dry_run { " (server dry run)" } else { "" };
    let color = ui.color_stdout;
    let line = match event {
        Event::NamespaceCreated(ns) => format!("{} v1 Namespace {ns}", ui.paint(color, Style::Green, "created")),
        Event::Object(object) => {
            let style = match object.outcome {
                Outcome::Created => Style::Green,
                Outcome::Configured => Style::Yellow,
                Outcome::Pruned => Style::Red,
                Outcome::Failed | Outcome::NotApplied => Style::Red,
                Outcome::Unchanged | Outcome::Kept => Style::Dim,
            };
            let mut line =
                format!("{} {}{dry}", ui.paint(color, style, outcome_word(object.outcome)), object_name(object));
            if let Some(message) = &object.message {
                line.push_str(&format!(": {message}"));
            }
            line
        }
        Event::WaitStarted { .. } | Event::WaitProgress { .. } | Event::WaitFinished { .. } => return,
        Event::Release(release) => {
            let what = match (release.revision, release.status, &release.error) {
                (Some(revision), Some(status), _) => format!("revision {revision} {}", status.as_str()),
                (None, _, Some(_)) => "not recorded".to_string(),
                _ if options.dry_run => "dry run, nothing recorded".to_string(),
                _ => "unchanged".to_string(),
            };
            let mut line = format!("release {}: {what}", release.name);
            if let Some(error) = &release.error {
                line.push_str(&format!(" ({error})"));
            }
            ui.paint(color, Style::Bold, &line)
        }
    };
    // Lines can carry server messages; a decrypted value must never reach the terminal.
    println!("{}", ui.redactor.redact(&line));
}

/// Prints the summary (text) or the whole report (JSON), and turns a failed apply into the
/// error that exits 1.
pub(super) fn finish(ui: &Ui, report: &Report, flags: &ApplyFlags, options: &ApplyOptions) -> Result<ExitCode> {
    let totals = report.totals();
    let mut summary = format!(
        "{} created, {} configured, {} unchanged, {} pruned, {} failed",
        totals.created, totals.configured, totals.unchanged, totals.pruned, totals.failed
    );
    if totals.not_applied > 0 {
        summary.push_str(&format!(", {} not applied", totals.not_applied));
    }
    if totals.kept > 0 {
        summary.push_str(&format!(", {} kept (--no-prune)", totals.kept));
    }
    let text = match flags.output {
        ListFormat::Text => {
            let dry = if options.dry_run { " (server dry run: nothing was changed)" } else { "" };
            format!("{}\n", ui.paint(ui.color_stdout, Style::Bold, &format!("Apply summary: {summary}{dry}")))
        }
        ListFormat::Json => {
            let mut text = serde_json::to_string_pretty(&json_report(report, options)).expect("reports serialize");
            text.push('\n');
            text
        }
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    if !report.failed() {
        return Ok(ExitCode::SUCCESS);
    }
    let failed: Vec<String> = report
        .releases
        .iter()
        .filter(|r| r.failed())
        .map(|r| match r.revision {
            Some(revision) => format!("{} (recorded as failed revision {revision})", r.name),
            None => r.name.clone(),
        })
        .collect();
    let cause = if report.interrupted { "interrupted" } else { "failed" };
    Err(Error::new(format!("the apply of environment `{}` {cause}: {summary}", options.environment)).with_help(
        format!("releases not fully applied: {}; the lines above say what was and was not applied", failed.join(", ")),
    ))
}

/// The `-o json` document (schema in the README, "Apply").
fn json_report(report: &Report, options: &ApplyOptions) -> Value {
    let releases: Vec<Value> = report
        .releases
        .iter()
        .map(|release| {
            let objects: Vec<Value> = release
                .objects
                .iter()
                .map(|o| {
                    json!({
                        "apiVersion": o.api_version,
                        "kind": o.key.kind,
                        "namespace": o.key.namespace,
                        "name": o.key.name,
                        "result": o.outcome,
                        "message": o.message,
                    })
                })
                .collect();
            json!({
                "name": release.name,
                "namespace": release.namespace,
                "revision": release.revision,
                "status": release.status.map(|s| s.as_str()),
                "rollbackOf": release.rollback_of,
                "error": release.error,
                "objects": objects,
            })
        })
        .collect();
    json!({
        "schemaVersion": 1,
        "environment": options.environment,
        "dryRun": options.dry_run,
        "commit": options.commit,
        "dirty": options.dirty,
        "interrupted": report.interrupted,
        "failed": report.failed(),
        "summary": report.totals(),
        "releases": releases,
    })
}
