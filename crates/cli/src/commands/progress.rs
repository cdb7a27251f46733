//! What `apply` and `rollback` show: each object and release as it is applied, and the
//! summary or JSON report after ([`ApplyProgress`], [`finish`]).
//!
//! Live progress on stderr while weaver waits: on a terminal a spinner line redrawn in place,
//! elsewhere (CI logs) plain lines, with a changing message repeated at most every ten
//! seconds. [`Progress`] shows any wait (a lock, say); [`WaitDisplay`] shows
//! [`Cluster::wait_ready`](weaver_cluster::Cluster::wait_ready).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{Style, Ui, write_stdout};
use crate::cli::ListFormat;
use weaver_cluster::{WaitOutcome, WaitProgress, humanize};
use weaver_core::error::{Error, Result};
use weaver_engine::action;
use weaver_engine::action::apply::{Applied, Settings};
use weaver_engine::apply::{ApplyOptions, Event, HelmAdoption, HelmRecords, ObjectResult, Outcome, Report};
use weaver_engine::report::json::{ApplyReport, to_text};
use weaver_plan::release::record::HookOutcome;

/// How often plain output repeats a message that keeps changing.
const STILL_EVERY: Duration = Duration::from_secs(10);

/// A wait being shown; the spinner goes away when this is dropped.
pub struct Progress {
    ui: Ui,
    started: Instant,
    output: Output,
}

enum Output {
    Spinner(ProgressBar),
    Lines { sink: Box<dyn Write + Send>, last: Instant, every: Duration },
}

impl Progress {
    /// Starts showing `message`, which reads as what weaver is doing ("waiting for the lock of
    /// prod"); on plain output later messages are printed as `still <message> (<elapsed>)`.
    pub fn start(ui: &Ui, message: &str) -> Progress {
        let output = if std::io::stderr().is_terminal() {
            let spinner = ProgressBar::new_spinner();
            // No colour in the template, so NO_COLOR and --color need no handling here.
            spinner
                .set_style(ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}").expect("a valid template"));
            spinner.enable_steady_tick(Duration::from_millis(100));
            Output::Spinner(spinner)
        } else {
            Output::Lines { sink: Box::new(std::io::stderr()), last: Instant::now(), every: STILL_EVERY }
        };
        Progress::with_output(ui, message, output)
    }

    fn with_output(ui: &Ui, message: &str, output: Output) -> Progress {
        let mut progress = Progress { ui: ui.clone(), started: Instant::now(), output };
        let message = progress.ui.redactor.redact(message);
        match &mut progress.output {
            Output::Spinner(spinner) => spinner.set_message(message.into_owned()),
            Output::Lines { sink, .. } => {
                let _ = writeln!(sink, "{message}");
            }
        }
        progress
    }

    /// Replaces the message: redrawn at once on a terminal, printed at most every ten seconds
    /// otherwise.
    pub fn set_message(&mut self, message: &str) {
        let message = self.ui.redactor.redact(message);
        match &mut self.output {
            Output::Spinner(spinner) => spinner.set_message(message.into_owned()),
            Output::Lines { sink, last, every } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    let _ = writeln!(sink, "still {message} ({})", humanize(self.started.elapsed()));
                }
            }
        }
    }

    /// A line that stays (above the spinner on a terminal).
    pub fn println(&mut self, line: &str) {
        let line = self.ui.redactor.redact(line);
        match &mut self.output {
            Output::Spinner(spinner) => spinner.println(line),
            Output::Lines { sink, .. } => {
                let _ = writeln!(sink, "{line}");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Output::Spinner(spinner) = &self.output {
            spinner.finish_and_clear();
        }
    }
}

/// Shows a wait for readiness: feed it each [`WaitProgress`], then the outcome. Objects ready
/// at the first read are only counted; each one that becomes ready later gets a line.
pub struct WaitDisplay {
    ui: Ui,
    timeout: Duration,
    progress: Option<Progress>,
    total: usize,
}

impl WaitDisplay {
    pub fn new(ui: &Ui, timeout: Duration) -> WaitDisplay {
        WaitDisplay { ui: ui.clone(), timeout, progress: None, total: 0 }
    }

    pub fn update(&mut self, report: &WaitProgress) {
        self.update_with(report, Progress::start);
    }

    fn update_with(&mut self, report: &WaitProgress, start: impl FnOnce(&Ui, &str) -> Progress) {
        self.total = report.total;
        // Objects ready at the first read are only counted.
        if let Some(progress) = &mut self.progress {
            for object in report.became_ready {
                let ready = self.ui.paint(self.ui.color_stderr, Style::Green, "ready");
                progress.println(&format!("{object} {ready} ({})", humanize(report.elapsed)));
            }
        }
        let Some(first) = report.not_ready.first() else {
            return; // all ready: `finish` says so
        };
        let waiting = format!("waiting for {} of {} objects", report.not_ready.len(), report.total);
        let progress = self.progress.get_or_insert_with(|| {
            start(&self.ui, &format!("{waiting} to become ready (timeout {})", humanize(self.timeout)))
        });
        let more = match report.not_ready.len() {
            1 => String::new(),
            n => format!("; and {} more", n - 1),
        };
        progress.set_message(&format!("{waiting}: {first}{more}"));
    }

    /// Ends the live display and, when every object is ready, says so. A wait that failed is
    /// the caller's to report (see [`WaitOutcome::error`]).
    pub fn finish(self, outcome: &WaitOutcome) {
        drop(self.progress); // the spinner goes before the last line
        if outcome.all_ready() && self.total > 0 {
            let objects = if self.total == 1 { "object" } else { "objects" };
            self.ui.status(&format!("{} {objects} ready ({})", self.total, humanize(outcome.elapsed)));
        }
    }
}

/// What an apply (or rollback) shows as it runs: readiness on stderr whatever the output
/// format, and with text output a line per object and release. Ctrl-C once it writes stops
/// starting new work (`interrupted`); a second one quits.
pub struct ApplyProgress<'u> {
    ui: &'u Ui,
    settings: Settings,
    text: bool,
    waits: Mutex<HashMap<String, WaitDisplay>>,
    pub interrupted: Arc<AtomicBool>,
}

impl<'u> ApplyProgress<'u> {
    pub fn new(ui: &'u Ui, settings: &Settings, output: ListFormat) -> Self {
        ApplyProgress {
            ui,
            settings: settings.clone(),
            text: output == ListFormat::Text,
            waits: Mutex::default(),
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Without a line per object: for a command whose report says what was done (`drift
    /// --correct`).
    pub fn quiet(ui: &'u Ui, settings: &Settings) -> Self {
        ApplyProgress { text: false, ..ApplyProgress::new(ui, settings, ListFormat::Json) }
    }

    pub fn on(&self, progress: action::Progress<'_>) {
        let ui = self.ui;
        let event = match progress {
            action::Progress::Writing => return self.catch_interrupt(),
            action::Progress::Apply(event) => event,
            other => return ui.progress(other),
        };
        match event {
            Event::WaitStarted { release, .. } => {
                self.waits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(release.to_string(), WaitDisplay::new(ui, self.settings.timeout));
            }
            Event::WaitProgress { release, progress } => {
                if let Some(display) = self.waits.lock().unwrap_or_else(PoisonError::into_inner).get_mut(release) {
                    display.update(progress);
                }
            }
            Event::WaitFinished { release, outcome } => {
                if let Some(display) = self.waits.lock().unwrap_or_else(PoisonError::into_inner).remove(release) {
                    display.finish(outcome);
                }
            }
            _ if self.text => print_event(ui, "", self.settings.dry_run, &event),
            _ => {}
        }
    }

    fn catch_interrupt(&self) {
        tokio::spawn(interruptions(self.interrupted.clone()));
    }
}

/// What a fleet apply shows as it runs: what one environment's apply shows, each line naming
/// its environment, and readiness as plain lines (a spinner per environment would fight over
/// the terminal). Interruptions are caught from the start ([`interruptions`]).
pub struct FleetApplyProgress<'u> {
    ui: &'u Ui,
    dry_run: bool,
    text: bool,
}

impl<'u> FleetApplyProgress<'u> {
    pub fn new(ui: &'u Ui, settings: &Settings, output: ListFormat) -> Self {
        FleetApplyProgress { ui, dry_run: settings.dry_run, text: output == ListFormat::Text }
    }

    pub fn on(&self, env: &str, progress: action::Progress<'_>) {
        let event = match progress {
            action::Progress::Apply(event) => event,
            other => return self.ui.fleet_progress(env, other),
        };
        match event {
            Event::WaitStarted { release } => {
                self.ui.status(&format!("environment `{env}`: waiting for release {release} to become ready"))
            }
            // A wait that failed is told by its release's result.
            Event::WaitProgress { .. } | Event::WaitFinished { .. } => {}
            _ if self.text => print_event(self.ui, &format!("[{env}] "), self.dry_run, &event),
            _ => {}
        }
    }
}

/// Sets `interrupted` on the first SIGINT (Ctrl-C) or SIGTERM (a CI job cancelled): the apply
/// finishes the requests in flight, starts no new work and records what it did. A second one
/// quits at once.
pub async fn interruptions(interrupted: Arc<AtomicBool>) {
    if interruption().await {
        interrupted.store(true, Ordering::SeqCst);
        eprintln!(
            "weaver: interrupted; finishing requests in flight and recording what was done (Ctrl-C again to quit at once)"
        );
        if interruption().await {
            std::process::exit(130);
        }
    }
}

/// The next SIGINT or SIGTERM; false when they cannot be caught.
async fn interruption() -> bool {
    let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        caught = tokio::signal::ctrl_c() => caught.is_ok(),
        caught = terminate.recv() => caught.is_some(),
    }
}

/// What an apply did about the Helm release `release` adopts, a line each.
fn helm_lines(release: &str, adoption: &HelmAdoption, dry_run: bool) -> Vec<String> {
    let helm = &adoption.helm;
    let named = format!("Helm release `{}` (revision {})", helm.name, helm.revision);
    let mut lines = Vec::new();
    if !adoption.adopted_before {
        let mut line = format!(
            "release {release}: adopted from {named}: {} object(s) taken over from field manager `helm`",
            adoption.taken
        );
        if adoption.not_taken > 0 {
            line.push_str(&format!(", {} not (failed or not applied: they are still Helm's)", adoption.not_taken));
        }
        lines.push(line);
    }
    if adoption.left > 0 {
        lines.push(format!(
            "release {release}: {} object(s) {named} installed are not rendered by weaver: left as they are, never pruned by weaver",
            adoption.left
        ));
    }
    let would = if dry_run { "would delete (server dry run)" } else { "deleted" };
    match &adoption.records {
        HelmRecords::Kept if !adoption.adopted_before => lines.push(format!(
            "release {release}: the records of {named} are kept (helm still lists it); --forget-helm-release deletes them"
        )),
        HelmRecords::Kept => {}
        HelmRecords::Deleted { secrets } => lines.push(format!(
            "release {release}: {would} the records of {named} (--forget-helm-release): {}",
            secrets.join(", ")
        )),
        HelmRecords::NotDeleted { reason } => lines.push(format!(
            "release {release}: the records of {named} were not deleted (--forget-helm-release): {reason}; rerun the apply to finish the adoption"
        )),
        HelmRecords::Failed { error, secrets } => {
            let rest: Vec<&str> = helm.secrets.iter().filter(|s| !secrets.contains(s)).map(String::as_str).collect();
            lines.push(format!(
                "release {release}: deleting the records of {named} failed: {error}; deleted: {}; not deleted: {}",
                if secrets.is_empty() { "none".to_string() } else { secrets.join(", ") },
                rest.join(", ")
            ));
        }
    }
    lines
}

/// Prints the summary (text) or the whole report (JSON), and turns a failed apply, or one
/// that lost its lock, into the error that exits 1.
pub fn finish(ui: &Ui, applied: Applied, output: ListFormat) -> Result<ExitCode> {
    let summarized = summarize(ui, &applied.report, output, &applied.options);
    match applied.lock_lost {
        Some(lost) => Err(lost),
        None => summarized,
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
    format!("{} (release {})", weaver_engine::report::object_name(&object.api_version, &object.key), object.release)
}

/// Prints `prefix` (naming the environment of a fleet), then what `event` says.
fn print_event(ui: &Ui, prefix: &str, dry_run: bool, event: &Event<'_>) {
    let dry = if dry_run { " (server dry run)" } else { "" };
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
            if let Some(note) = weaver_engine::report::ignored_note(object.ignored) {
                line.push_str(&format!(" ({note})"));
            }
            line
        }
        Event::HookStarted { release, event, key } => {
            format!("{} hook {event} {} (release {release})", ui.paint(color, Style::Dim, "running"), key)
        }
        Event::Hook(hook) => {
            let (word, style) = match hook.outcome {
                HookOutcome::Succeeded => ("ran", Style::Green),
                HookOutcome::Failed => ("failed", Style::Red),
                HookOutcome::NotRun => ("not run", Style::Dim),
            };
            let name = weaver_engine::report::object_name(&hook.api_version, &hook.key);
            let mut line = format!(
                "{} hook {} {name} (release {}, weight {})",
                ui.paint(color, style, word),
                hook.event,
                hook.release,
                hook.weight
            );
            if let Some(message) = &hook.message {
                line.push_str(&format!(": {message}"));
            }
            line
        }
        Event::WaitStarted { .. } | Event::WaitProgress { .. } | Event::WaitFinished { .. } => return,
        Event::Release(release) => {
            let what = match (release.revision, release.status, &release.error) {
                (Some(revision), Some(status), _) => format!("revision {revision} {}", status.as_str()),
                (None, _, Some(_)) => "not recorded".to_string(),
                _ if dry_run => "dry run, nothing recorded".to_string(),
                _ => "unchanged".to_string(),
            };
            let mut line = format!("release {}: {what}", release.name);
            if let Some(error) = &release.error {
                line.push_str(&format!(" ({error})"));
            }
            let mut line = ui.paint(color, Style::Bold, &line);
            if let Some(helm) = &release.helm {
                for said in helm_lines(&release.name, helm, dry_run) {
                    line.push('\n');
                    line.push_str(&said);
                }
            }
            line
        }
    };
    // Lines can carry server messages; a decrypted value must never reach the terminal.
    println!("{prefix}{}", ui.redactor.redact(&line));
}

/// Prints the summary (text) or the whole report (JSON), and turns a failed apply into the
/// error that exits 1.
fn summarize(ui: &Ui, report: &Report, output: ListFormat, options: &ApplyOptions) -> Result<ExitCode> {
    let summary = summary(report);
    let text = match output {
        ListFormat::Text => {
            let dry = if options.dry_run { " (server dry run: nothing was changed)" } else { "" };
            format!("{}\n", ui.paint(ui.color_stdout, Style::Bold, &format!("Apply summary: {summary}{dry}")))
        }
        ListFormat::Json => to_text(&ApplyReport::new(report, options, &ui.redactor)),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())?;
    match failure(report, options, &summary) {
        None => Ok(ExitCode::SUCCESS),
        Some(err) => Err(err),
    }
}

/// What an apply did, counted: `2 created, 1 configured, 40 unchanged, 0 pruned, 0 failed`.
pub fn summary(report: &Report) -> String {
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
    let hooks = totals.hooks_succeeded + totals.hooks_failed + totals.hooks_not_run;
    if hooks > 0 {
        summary.push_str(&format!("; hooks: {} ran, {} failed", totals.hooks_succeeded, totals.hooks_failed));
        if totals.hooks_not_run > 0 {
            summary.push_str(&format!(", {} not run", totals.hooks_not_run));
        }
    }
    if report.retried_requests > 0 {
        summary.push_str(&format!("; {} request(s) retried", report.retried_requests));
    }
    if let Some(taken) = &report.lock_taken_over {
        summary.push_str(&format!("; the lock taken over from {}, whose apply did not finish", taken.holder));
    }
    summary
}

/// The error a failed or interrupted apply exits 1 with, naming the releases not fully
/// applied; None when it applied completely.
pub fn failure(report: &Report, options: &ApplyOptions, summary: &str) -> Option<Error> {
    if !report.failed() {
        return None;
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
    let error = Error::new(format!("the apply of environment `{}` {cause}: {summary}", options.environment));
    Some(match failed.is_empty() {
        // Interrupted before it wrote anything.
        true => error.with_help("nothing was applied"),
        false => error.with_help(format!(
            "releases not fully applied: {}; the lines above say what was and was not applied",
            failed.join(", ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use weaver_cluster::{NotReady, ObjectRef};
    use weaver_secrets::Redactor;

    /// Plain output kept for the test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(String::from).collect()
        }
    }

    fn ui() -> Ui {
        Ui { color_stdout: false, color_stderr: false, verbose: 0, redactor: Redactor::new() }
    }

    fn plain(captured: &Captured, every: Duration) -> impl FnOnce(&Ui, &str) -> Progress {
        let sink = Box::new(captured.clone());
        move |ui, message| Progress::with_output(ui, message, Output::Lines { sink, last: Instant::now(), every })
    }

    fn object(api_version: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
        }
    }

    fn not_ready(object: &ObjectRef, reason: &str) -> NotReady {
        NotReady { object: object.clone(), reason: reason.into(), failed: false }
    }

    #[test]
    fn plain_output_starts_with_one_line_then_one_per_object_that_becomes_ready() {
        let (config, web, job) = (
            object("v1", "ConfigMap", "settings"),
            object("apps/v1", "Deployment", "web"),
            object("batch/v1", "Job", "migrate"),
        );
        let captured = Captured::default();
        let mut display = WaitDisplay::new(&ui(), Duration::from_secs(300));
        let first = [not_ready(&web, "1 of 3 updated replicas available"), not_ready(&job, "not complete")];
        let report = WaitProgress {
            total: 3,
            became_ready: std::slice::from_ref(&config),
            not_ready: &first,
            elapsed: Duration::from_millis(20),
        };
        display.update_with(&report, plain(&captured, Duration::from_secs(3600)));
        let second = [not_ready(&job, "not complete")];
        let report = WaitProgress {
            total: 3,
            became_ready: std::slice::from_ref(&web),
            not_ready: &second,
            elapsed: Duration::from_secs(12),
        };
        display.update_with(&report, |_, _| unreachable!("started once"));
        let report = WaitProgress {
            total: 3,
            became_ready: std::slice::from_ref(&job),
            not_ready: &[],
            elapsed: Duration::from_secs(14),
        };
        display.update_with(&report, |_, _| unreachable!("started once"));
        assert_eq!(
            captured.lines(),
            [
                "waiting for 2 of 3 objects to become ready (timeout 5m)",
                "apps/v1 Deployment shop/web ready (12s)",
                "batch/v1 Job shop/migrate ready (14s)"
            ]
        );
    }

    #[test]
    fn plain_output_repeats_what_it_waits_for_now_and_then() {
        let web = object("apps/v1", "Deployment", "web");
        let captured = Captured::default();
        let mut display = WaitDisplay::new(&ui(), Duration::from_secs(90));
        let pending = [
            not_ready(&web, "0 of 2 updated replicas available"),
            not_ready(&object("batch/v1", "Job", "migrate"), "not complete"),
        ];
        let report = WaitProgress { total: 2, became_ready: &[], not_ready: &pending, elapsed: Duration::ZERO };
        display.update_with(&report, plain(&captured, Duration::ZERO));
        let lines = captured.lines();
        assert_eq!(lines[0], "waiting for 2 of 2 objects to become ready (timeout 1m30s)");
        assert!(
            lines[1].starts_with(
                "still waiting for 2 of 2 objects: apps/v1 Deployment shop/web: 0 of 2 updated replicas available; \
                 and 1 more ("
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn shown_text_is_redacted() {
        let ui = ui();
        ui.redactor.register("hunter2-secret");
        let captured = Captured::default();
        let mut progress = plain(&captured, Duration::ZERO)(&ui, "waiting for hunter2-secret");
        progress.println("ready: hunter2-secret");
        progress.set_message("waiting for hunter2-secret");
        assert!(captured.lines().iter().all(|l| !l.contains("hunter2")), "{:?}", captured.lines());
    }
}
