//! `weaver sync get | reconcile | suspend | resume | approve`: the cluster's EnvironmentSyncs,
//! as `kubectl get` shows objects, and the few writes that steer the controller. A table, or a
//! report (`-o json|yaml`, schema in docs/src/reference/json-output.md). Exit 0 when every
//! EnvironmentSync shown is ready at its generation, 2 when one is not, 1 on error.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use super::sync_tables::truncate;
use super::{Ui, block_on, connect_options, table, write_stdout};
use crate::cli::ClusterArgs;
use crate::cli::{SyncCommand, SyncFormat, SyncNamespaceArgs};
use weaver_api::conditions;
use weaver_api::environment_sync::{PushStatus, State, state};
use weaver_controllers::gitops::EnvironmentSync;
use weaver_controllers::gitops::api::PendingPlan;
use weaver_controllers::gitops::plan::short;
use weaver_core::error::{Error, Result};
use weaver_engine::action::sync::{
    self, Approval, ApproveOptions, GetOptions, ReconcileOptions, SuspendOptions, Target,
};
use weaver_engine::report::json::{SyncReport, to_text};

pub fn run(ui: &Ui, command: &SyncCommand) -> Result<ExitCode> {
    let on = |p: weaver_engine::action::Progress<'_>| ui.progress(p);
    let target = |namespace: &SyncNamespaceArgs, cluster: &ClusterArgs| Target {
        connect: connect_options(cluster),
        namespace: namespace.namespace.clone(),
    };
    match command {
        SyncCommand::Get(args) => {
            let options = GetOptions {
                target: target(&args.namespace, &args.cluster),
                all_namespaces: args.all_namespaces,
                selector: args.selector.clone(),
                name: args.name.clone(),
            };
            let listing = block_on(sync::get(&options, &on))?;
            let syncs: Vec<(EnvironmentSync, State)> =
                listing.syncs.into_iter().map(|s| (s.clone(), state(&s))).collect();
            let report = SyncReport::new(listing.namespace.as_deref(), &syncs);
            let text = match args.output {
                SyncFormat::Json => to_text(&report),
                SyncFormat::Yaml => {
                    weaver_yaml::to_yaml_string(&serde_json::to_value(&report).expect("reports serialize"))
                }
                SyncFormat::Text if syncs.is_empty() => {
                    ui.status(&match &listing.namespace {
                        Some(ns) => format!("no EnvironmentSync found in namespace {ns}"),
                        None => "no EnvironmentSync found in any namespace".to_string(),
                    });
                    String::new()
                }
                SyncFormat::Text => {
                    let mut text = list_table(ui, &syncs, listing.namespace.is_none());
                    if let (Some(_), [(one, _)]) = (&args.name, syncs.as_slice()) {
                        text.push_str(&details(ui, one));
                    }
                    text
                }
            };
            write_stdout(text.as_bytes())?;
            Ok(exit_code(report.ready))
        }
        SyncCommand::Reconcile(args) => {
            let options = ReconcileOptions {
                target: target(&args.sync.namespace, &args.cluster),
                name: args.sync.name.clone(),
                wait: (!args.no_wait).then_some(args.timeout),
            };
            let reconciled = block_on(sync::reconcile(&options, &on))?;
            let (ns, name) = place(&reconciled.sync);
            if !reconciled.handled {
                write_stdout(
                    format!(
                        "asked for a reconcile of EnvironmentSync {ns}/{name} ({} {}); \
                         `weaver sync get {name} -n {ns}` shows its outcome once the controller has handled it\n",
                        weaver_controllers::gitops::plan::RECONCILE_REQUESTED_AT,
                        reconciled.requested_at
                    )
                    .as_bytes(),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let state = state(&reconciled.sync);
            let mut text = format!("EnvironmentSync {ns}/{name} reconciled: {}\n", outcome_line(&state));
            let status = reconciled.sync.status.as_ref();
            let revision = status.and_then(|s| s.last_attempted_revision.as_deref());
            text.push_str(&format!("revision: {}\n", revision.unwrap_or("-")));
            if let Some(environments) = status.map(|s| &s.environments).filter(|e| !e.is_empty()) {
                text.push_str(&format!("\n{}\n", environments_heading(&state, environments)));
                text.push_str(&environments_table(ui, environments));
            }
            write_stdout(text.as_bytes())?;
            Ok(exit_code(state.up_to_date))
        }
        SyncCommand::Suspend(args) | SyncCommand::Resume(args) => {
            let suspend = matches!(command, SyncCommand::Suspend(_));
            let options = SuspendOptions {
                target: target(&args.sync.namespace, &args.cluster),
                name: args.sync.name.clone(),
                suspend,
            };
            let done = block_on(sync::suspend(&options, &on))?;
            let (ns, name) = place(&done.sync);
            let text = match (suspend, done.already) {
                (true, true) => format!("EnvironmentSync {ns}/{name} was already suspended\n"),
                (true, false) => format!(
                    "EnvironmentSync {ns}/{name} suspended: the controller fetches and applies nothing for it \
                     until `weaver sync resume {name} -n {ns}`\n"
                ),
                (false, already) => format!(
                    "EnvironmentSync {ns}/{name} {}; asked for a reconcile ({}): `weaver sync get {name} -n {ns}` \
                     shows its outcome\n",
                    if already { "was not suspended" } else { "resumed" },
                    done.requested_at.as_deref().unwrap_or_default()
                ),
            };
            write_stdout(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        SyncCommand::Approve(args) => {
            if !args.yes && !std::io::stdin().is_terminal() {
                return Err(Error::new("refusing to approve without a confirmation: standard input is not a terminal")
                    .with_help(format!(
                        "pass --yes to approve without asking, and --digest DIGEST to approve only the plan you \
                         looked at (`weaver sync get {} -n NAMESPACE` shows it)",
                        args.sync.name
                    )));
            }
            let options = ApproveOptions {
                target: target(&args.sync.namespace, &args.cluster),
                name: args.sync.name.clone(),
                digest: args.digest.clone(),
                approver: None,
            };
            let confirm = |sync: &EnvironmentSync, plan: &PendingPlan| -> Result<bool> {
                write_stdout(plan_text(ui, sync, plan).as_bytes())?;
                if args.yes {
                    return Ok(true);
                }
                ask("Approve this plan? [y/N] ")
            };
            let (ns, name) = (args.sync.namespace.namespace.as_deref(), &args.sync.name);
            match block_on(sync::approve(&options, &confirm, &on))? {
                Approval::Approved { sync, plan } => {
                    let (ns, name) = place(&sync);
                    write_stdout(
                        format!(
                            "approved: spec.approvedPlan of EnvironmentSync {ns}/{name} is {}; the controller applies \
                             the plan now (`weaver sync get {name} -n {ns}` shows the outcome)\n",
                            plan.digest
                        )
                        .as_bytes(),
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Approval::AlreadyApproved { plan } => {
                    ui.status(&format!("the plan {} of EnvironmentSync {name} is already approved", plan.digest));
                    Ok(ExitCode::SUCCESS)
                }
                Approval::Declined => Err(Error::new(format!(
                    "nothing was approved: EnvironmentSync {name}{} still waits",
                    ns.map_or_else(String::new, |ns| format!(" in namespace {ns}"))
                ))),
            }
        }
    }
}

/// 0 when every EnvironmentSync is ready at its generation, 2 when not.
fn exit_code(ready: bool) -> ExitCode {
    if ready { ExitCode::SUCCESS } else { ExitCode::from(2) }
}

/// Asks on stderr, reads the answer from stdin: yes only for `y` or `yes`.
fn ask(question: &str) -> Result<bool> {
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| Error::new(format!("cannot read the answer: {}", weaver_core::error::io_reason(&err))))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn place(sync: &EnvironmentSync) -> (&str, &str) {
    (sync.metadata.namespace.as_deref().unwrap_or_default(), sync.metadata.name.as_deref().unwrap_or_default())
}

/// `Ready=True (ReconciliationSucceeded): applied revision …`.
fn outcome_line(state: &State) -> String {
    let reason = state.reason.as_deref().map_or_else(String::new, |r| format!(" ({r})"));
    let message = state.message.as_deref().map_or_else(String::new, |m| format!(": {m}"));
    format!("Ready={}{reason}{message}", state.ready)
}

/// The table `kubectl get` would print, with the Ready condition's message.
fn list_table(ui: &Ui, syncs: &[(EnvironmentSync, State)], all_namespaces: bool) -> String {
    let tty = std::io::stdout().is_terminal();
    let now = jiff::Timestamp::now();
    let mut header = vec!["NAME", "READY", "REVISION", "ENVS", "DRIFT", "AGE", "MESSAGE"];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for (sync, state) in syncs {
        let status = sync.status.as_ref();
        let (ns, name) = place(sync);
        let mut row = vec![
            name.to_string(),
            state.ready.clone(),
            status.and_then(|s| s.last_applied_revision.as_deref()).map_or("-", short).to_string(),
            status.and_then(|s| s.environments_ready.clone()).unwrap_or_else(|| "-".into()),
            status.and_then(|s| s.drift.as_ref()).map_or_else(|| "-".into(), |d| d.summary.clone()),
            sync.metadata.creation_timestamp.as_ref().map_or_else(|| "-".into(), |t| age(now, t.0)),
            truncate(&message(sync, state), tty),
        ];
        if all_namespaces {
            row.insert(0, ns.to_string());
        }
        rows.push(row);
    }
    table(ui, &rows)
}

/// What the MESSAGE column says: the Ready condition's message, after what makes it stale.
fn message(sync: &EnvironmentSync, state: &State) -> String {
    let mut parts = Vec::new();
    if sync.spec.suspend {
        parts.push("suspended".to_string());
    }
    if !state.observed
        && let Some(generation) = sync.metadata.generation
    {
        parts.push(format!("the controller has not handled generation {generation} yet"));
    }
    match (&state.reason, &state.message) {
        (_, Some(message)) => parts.push(message.clone()),
        (Some(reason), None) => parts.push(reason.clone()),
        (None, None) => {}
    }
    if parts.is_empty() { "-".to_string() } else { parts.join("; ") }
}

/// With one NAME: its environments, previews, pending plan and history.
fn details(ui: &Ui, sync: &EnvironmentSync) -> String {
    let Some(status) = &sync.status else {
        return "\nno status yet: the controller has not reconciled it\n".to_string();
    };
    let mut text = String::new();
    if let Some(held) = &status.held {
        let until = held.until.as_deref().map_or("no opening found ahead".to_string(), |at| at.to_string());
        text.push_str(&format!("\nHeld by a window: {}, until {until}\n", held.reason));
    }
    if !status.environments.is_empty() {
        text.push_str(&format!("\n{}\n", environments_heading(&state(sync), &status.environments)));
        text.push_str(&environments_table(ui, &status.environments));
    }
    if !status.previews.is_empty() {
        text.push_str("\nPreviews (spec.previews):\n");
        text.push_str(&super::sync_tables::previews_table(ui, status.previews.iter().map(|p| (None, p))));
    }
    if let Some(plan) = &status.pending_plan {
        text.push('\n');
        text.push_str(&plan_text(ui, sync, plan));
        let (ns, name) = place(sync);
        text.push_str(&format!("approve it with: weaver sync approve {name} -n {ns} --digest {}\n", plan.digest));
    }
    if let Some(promotion) = &status.promotion {
        text.push_str(&pushing_text(sync, conditions::PROMOTED, "Promotion (spec.promotion)"));
        text.push_str(&format!("  gates last judged: {}\n", promotion.push.last_attempt_time));
        text.push_str(&pushed_line(&promotion.push));
        let mut rows = vec![["TARGET", "FROM", "GATES", "CHANGES"].map(String::from).to_vec()];
        rows.extend(promotion.targets.iter().map(|t| {
            vec![
                t.environment.clone(),
                t.from.clone(),
                t.verdict(),
                if t.changes.is_empty() { "-".to_string() } else { t.changes.join("; ") },
            ]
        }));
        if rows.len() > 1 {
            text.push_str(&table(ui, &rows));
        }
    }
    if let Some(updates) = &status.image_updates {
        text.push_str(&pushing_text(sync, conditions::IMAGES_UPDATED, "Image updates (spec.imageUpdates)"));
        text.push_str(&format!(
            "  registries last asked: {} ({} requests)\n",
            updates.push.last_attempt_time, updates.requests
        ));
        text.push_str(&pushed_line(&updates.push));
        let images: Vec<String> = updates.images.iter().map(ToString::to_string).collect();
        let changes: Vec<String> = updates.changes.iter().map(ToString::to_string).collect();
        for (title, lines) in [("newest allowed", &images), ("changed by the last push", &changes)] {
            if !lines.is_empty() {
                text.push_str(&format!("  {title}:\n"));
                text.extend(lines.iter().map(|line| format!("    {line}\n")));
            }
        }
    }
    if !status.history.is_empty() {
        text.push_str("\nHistory (newest first):\n");
        let mut rows =
            vec![["TIME", "REVISION", "RESULT", "DURATION", "APPROVED BY", "MESSAGE"].map(String::from).to_vec()];
        rows.extend(status.history.iter().map(|h| {
            let approver = h.approval.as_ref().map(|a| a.approved_by.as_str()).filter(|by| !by.is_empty());
            vec![
                h.time.clone(),
                short(&h.revision).to_string(),
                h.result.to_string(),
                format!("{:.1}s", h.duration_seconds),
                approver.unwrap_or("-").to_string(),
                h.message.clone().unwrap_or_else(|| "-".into()),
            ]
        }));
        text.push_str(&table(ui, &rows));
    }
    text
}

/// `\nPromotion (spec.promotion): Promoted=True (Promoted): pushed …` from the condition `type_`.
fn pushing_text(sync: &EnvironmentSync, type_: &str, title: &str) -> String {
    let status = sync.status.as_ref();
    let condition = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_));
    match condition {
        Some(c) => format!("\n{title}: {type_}={} ({}): {}\n", c.status, c.reason, c.message),
        None => format!("\n{title}: no {type_} condition yet\n"),
    }
}

/// `  last push: 1a2b3c4d5e6f to branch main at …`, or that none was made yet.
fn pushed_line(push: &PushStatus) -> String {
    let branch = &push.branch;
    match (&push.last_pushed_commit, &push.last_push_time) {
        (Some(commit), Some(time)) => format!("  last push: {} to branch {branch} at {time}\n", short(commit)),
        (Some(commit), None) => format!("  last push: {} to branch {branch}\n", short(commit)),
        _ => format!("  nothing pushed to branch {branch} yet\n"),
    }
}

/// What the environments table shows: a reconcile that failed before any apply (a fetch, a
/// Secret, a render) leaves each environment as its last apply left it, which must not read as
/// this reconcile's outcome beside `Ready=False`.
fn environments_heading(
    state: &State,
    environments: &[weaver_controllers::gitops::api::EnvironmentStatus],
) -> &'static str {
    let applied_before = environments.iter().all(|e| e.result.is_applied());
    if state.ready != "True" && applied_before {
        "Environments, as their last apply left them (this reconcile applied nothing):"
    } else {
        "Environments:"
    }
}

fn environments_table(ui: &Ui, environments: &[weaver_controllers::gitops::api::EnvironmentStatus]) -> String {
    let header = ["ENVIRONMENT", "RESULT", "REVISION", "CREATED", "CONFIGURED", "PRUNED", "FAILED", "MESSAGE"];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(environments.iter().map(|e| {
        vec![
            e.name.clone(),
            e.result.to_string(),
            e.revision.as_deref().map_or("-", short).to_string(),
            e.created.to_string(),
            e.configured.to_string(),
            e.pruned.to_string(),
            e.failed.to_string(),
            e.message.clone().unwrap_or_else(|| "-".into()),
        ]
    }));
    table(ui, &rows)
}

/// The pending plan: its revision, digest and changes per release (counts only: the controller
/// keeps no diff).
fn plan_text(ui: &Ui, sync: &EnvironmentSync, plan: &PendingPlan) -> String {
    let (ns, name) = place(sync);
    let mut text = format!(
        "Pending plan of EnvironmentSync {ns}/{name}, waiting for approval:\n  revision: {}\n  digest:   {}\n",
        plan.revision, plan.digest
    );
    if plan.releases.is_empty() {
        text.push_str("  no release changes\n");
        return text;
    }
    let mut rows = vec![["ENVIRONMENT", "RELEASE", "CREATE", "UPDATE", "DELETE"].map(String::from).to_vec()];
    rows.extend(plan.releases.iter().map(|r| {
        vec![r.environment.clone(), r.release.clone(), r.create.to_string(), r.update.to_string(), r.delete.to_string()]
    }));
    text.push_str(&table(ui, &rows));
    text
}

/// How long ago `then` was, as kubectl's AGE column says it (`45s`, `5m10s`, `3h`, `12d`).
fn age(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(then.as_second()).max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 && seconds % 60 != 0 => format!("{minutes}m{}s", seconds % 60),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 && minutes % 60 != 0 => format!("{hours}h{}m", minutes % 60),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 192 && hours % 24 != 0 => format!("{days}d{}h", hours % 24),
        _ if days < 365 * 2 => format!("{days}d"),
        _ if days < 365 * 8 && days % 365 != 0 => format!("{}y{}d", days / 365, days % 365),
        _ => format!("{}y", days / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_writes_them() {
        let at = |s: i64| {
            age(
                jiff::Timestamp::from_second(1_000_000_000 + s).unwrap(),
                jiff::Timestamp::from_second(1_000_000_000).unwrap(),
            )
        };
        assert_eq!(at(45), "45s");
        assert_eq!(at(310), "5m10s");
        assert_eq!(at(600), "10m");
        assert_eq!(at(3 * 3600 + 120), "3h2m");
        assert_eq!(at(30 * 3600), "30h");
        assert_eq!(at(3 * 86400 + 3600), "3d1h");
        assert_eq!(at(40 * 86400), "40d");
        assert_eq!(at(-5), "0s");
    }

    #[test]
    fn environments_left_applied_by_an_earlier_reconcile_are_said_so_beside_a_failed_one() {
        use weaver_controllers::gitops::api::EnvironmentStatus;
        let environment = |result: &str| EnvironmentStatus {
            name: "dev".into(),
            result: result.into(),
            revision: Some("1701fd98dca0".into()),
            ..EnvironmentStatus::default()
        };
        let state = |ready: &str| State {
            ready: ready.into(),
            reason: None,
            message: None,
            reconciling: false,
            stalled: false,
            observed: true,
            up_to_date: ready == "True",
        };
        let stale = "Environments, as their last apply left them (this reconcile applied nothing):";
        assert_eq!(environments_heading(&state("False"), &[environment("Applied")]), stale);
        assert_eq!(environments_heading(&state("Unknown"), &[environment("Unchanged")]), stale);
        assert_eq!(environments_heading(&state("True"), &[environment("Applied")]), "Environments:");
        // A failed apply is this reconcile's own outcome.
        assert_eq!(
            environments_heading(&state("False"), &[environment("Applied"), environment("Failed")]),
            "Environments:"
        );
    }
}
