//! One file per subcommand. Commands parse nothing and compute little: each turns its flags
//! into an action's options, calls the action (`weaver_engine::action`) and formats what it returns.
//! This is the only layer that prints.

mod apply;
mod bootstrap;
mod changed;
mod charts;
mod check;
pub mod completions;
mod diff;
mod drift;
mod envs;
mod fleet;
mod history;
mod hydrate;
mod images;
mod import;
mod init;
mod install;
mod migrate;
// Public for the UI benchmark, which serves the controller's UI as `operator run` does.
pub mod operator;
mod previews;
mod progress;
mod promote;
mod push;
mod render;
mod report;
mod rollback;
mod secrets;
mod status;
mod sync;
mod sync_tables;
mod tenant;
mod ui;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::{
    ApplyFlags, ChartsCommand, Cli, ClusterArgs, ColorChoice, Command, EnvironmentArgs, GlobalArgs, IdentityArgs,
    ImagesCommand, OperatorCommand, PreviewsCommand, PushCommand, RenderFlags, RenderLimitArgs, SecretsCommand,
    SelectArgs, SourceArgs, SyncCommand, TenantCommand, ValidateArgs, ValidateChoice,
};
use weaver_core::error::Error;
use weaver_core::limits::{Bound, RenderLimits};
use weaver_engine::action;
use weaver_engine::action::apply::Settings;
pub(crate) use weaver_engine::action::block_on;
use weaver_engine::action::fleet::{EnvironmentSelection, Outcome, select_environments};
use weaver_engine::action::promote::PinChange;
use weaver_engine::action::render::{IfEmpty, RenderOptions, Selection};
use weaver_project::Environment;
use weaver_render::overrides::OverrideFlags;

/// How output should look, decided once per run.
#[derive(Clone)]
pub(crate) struct Ui {
    pub color_stdout: bool,
    pub color_stderr: bool,
    pub verbose: u8,
    /// Every decrypted value is registered here; all human-facing text passes through it.
    pub redactor: weaver_secrets::Redactor,
}

impl Ui {
    pub fn new(global: &GlobalArgs) -> Self {
        // NO_COLOR (https://no-color.org): any non-empty value disables automatic colour.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Ui {
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            verbose: global.verbose,
            redactor: weaver_secrets::Redactor::new(),
        }
    }

    pub fn paint(&self, on: bool, style: Style, text: &str) -> String {
        if on { format!("\x1b[{}m{text}\x1b[0m", style.code()) } else { text.to_string() }
    }

    /// A progress or diagnostic line on stderr, shown with `-v`.
    pub fn info(&self, message: &str) {
        if self.verbose > 0 {
            eprintln!("{} {}", self.paint(self.color_stderr, Style::Dim, "weaver:"), self.redactor.redact(message));
        }
    }

    /// What an action tells while it runs: phases' times with `-vv`, what it did with `-v`,
    /// warnings and status lines always. The apply's own events are the command's to show.
    pub fn progress(&self, progress: action::Progress<'_>) {
        match progress {
            action::Progress::Phase(phase, took) if self.verbose > 1 => self.info(&format!("{phase} took {took:.1?}")),
            action::Progress::Phase(..) | action::Progress::Writing | action::Progress::Apply(_) => {}
            action::Progress::Info(message) => self.info(&message),
            action::Progress::Warning(message) => self.warn(&message),
            action::Progress::Status(message) => self.status(&message),
            action::Progress::Notified(delivery) => self.notified(None, &delivery),
        }
    }

    /// How a notification went: a warning when it was not delivered (the run's result and exit
    /// code stay as they are), a verbose line when it was. Never the URL.
    fn notified(&self, env: Option<&str>, delivery: &weaver_engine::notify::Delivery) {
        let of = env.map_or_else(String::new, |env| format!("environment `{env}`: "));
        let name =
            format!("{of}notification `{}` ({}) of the {} event", delivery.name, delivery.at, delivery.event.as_str());
        match &delivery.result {
            Ok(sent) => self.info(&format!("{name} was delivered ({} attempt(s))", sent.attempts)),
            Err(failure) => self.warn(&format!("{name} was not delivered: {}", failure.reason)),
        }
    }

    /// [`Ui::progress`] of an environment of a fleet: each line names it.
    pub fn fleet_progress(&self, env: &str, progress: action::Progress<'_>) {
        let of = |message: String| format!("environment `{env}`: {message}");
        match progress {
            action::Progress::Phase(phase, took) if self.verbose > 1 => {
                self.info(&of(format!("{phase} took {took:.1?}")))
            }
            action::Progress::Info(message) => self.info(&of(message)),
            action::Progress::Warning(message) => self.warn(&of(message)),
            action::Progress::Status(message) => self.status(&of(message)),
            action::Progress::Notified(delivery) => self.notified(Some(env), &delivery),
            action::Progress::Phase(..) | action::Progress::Writing | action::Progress::Apply(_) => {}
        }
    }

    /// A result line on stderr that is always shown (stdout stays for data).
    pub fn status(&self, message: &str) {
        eprintln!("{}", self.redactor.redact(message));
    }

    pub fn warn(&self, message: &str) {
        eprintln!("{} {}", self.paint(self.color_stderr, Style::Yellow, "warning:"), self.redactor.redact(message));
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Dim => "2",
            Style::Red => "31",
            Style::Green => "32",
            Style::Yellow => "33",
            Style::Cyan => "36",
        }
    }
}

/// How long a request may take when --request-timeout is not given.
const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How to reach the cluster, as the flags say; the action falls back on the environment's
/// `cluster.context`.
pub(crate) fn connect_options(cluster: &ClusterArgs) -> weaver_cluster::ConnectOptions {
    weaver_cluster::ConnectOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone().map(|context| (context, "--context".to_string())),
        request_timeout: cluster.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
        retry_budget: cluster.retry_budget.unwrap_or(weaver_cluster::DEFAULT_RETRY_BUDGET),
        given: None,
    }
}

/// The environments `--env` and `--env-selector` name.
pub(crate) fn environment_selection(args: &EnvironmentArgs) -> EnvironmentSelection {
    EnvironmentSelection {
        envs: args.envs.clone(),
        selectors: args.filter.env_selectors.clone(),
        wave: args.filter.wave,
        shard: args.shard,
        max_file_bytes: None,
    }
}

/// What the flags select: one plain `--env NAME`, shown as one environment always was, or a
/// fleet of environments (a glob or a selector, even matching one, or several names).
pub(crate) enum Environments {
    One(String),
    /// Loaded once: each environment's action takes it as it is (see `Selection::loaded`).
    Fleet(Vec<Arc<Environment>>),
}

pub(crate) fn environments(global: &GlobalArgs, select: &SelectArgs) -> weaver_core::error::Result<Environments> {
    let selection = environment_selection(&select.environments);
    if selection.envs.is_empty() && selection.selectors.is_empty() {
        return Err(no_environment_selected());
    }
    Ok(match selection.single() {
        Some(env) => Environments::One(env.to_string()),
        None => Environments::Fleet(
            select_environments(&global.repo, select.source.rev.as_deref(), &selection)?
                .into_iter()
                .map(Arc::new)
                .collect(),
        ),
    })
}

/// The refusal of a command run without `--env` or `--env-selector`.
pub(crate) fn no_environment_selected() -> Error {
    Error::new(
        "no environment selected: give --env NAME (several, or a glob such as prod-*) or --env-selector SELECTOR",
    )
    .with_help("`weaver envs` lists the environments and their labels")
}

/// Which releases of environment `env` the flags select.
pub(crate) fn selection(global: &GlobalArgs, select: &SelectArgs, env: &str) -> Selection {
    Selection {
        env: env.to_string(),
        releases: select.filter.releases.clone(),
        selectors: select.filter.selectors.clone(),
        changed_since: select.changed_since.clone(),
        repo: global.repo.clone(),
        rev: select.source.rev.clone(),
        loaded: None,
        project: None,
        revision: None,
    }
}

/// What `drift` and `status` read the cluster with for environment `env` (their options are
/// one type, `StatusOptions` being `DriftOptions`), sharing `servers` across a fleet.
pub(crate) fn drift_options(
    global: &GlobalArgs,
    (select, cluster, concurrency): (&SelectArgs, &ClusterArgs, usize),
    env: &str,
    servers: Option<weaver_cluster::SharedServers>,
) -> weaver_engine::action::drift::DriftOptions {
    weaver_engine::action::drift::DriftOptions {
        selection: selection(global, select, env),
        connect: connect_options(cluster),
        concurrency,
        servers,
        keys: action::Keys::Search(None),
        notify: true,
    }
}

/// How to render, as the flags say.
pub(crate) fn render_options(
    global: &GlobalArgs,
    flags: &RenderFlags,
    env: &str,
    identity: &IdentityArgs,
) -> RenderOptions {
    let RenderFlags { select, validate, overrides, limits } = flags;
    RenderOptions {
        selection: selection(global, select, env),
        keys: weaver_engine::action::Keys::Search(identity.identity.clone()),
        if_empty: IfEmpty::Warn,
        validate: validate_mode(validate),
        overrides: override_flags(overrides),
        charts: weaver_source::charts::Archives::Machine,
        limits: render_limits(limits),
    }
}

/// The values flags (`-f`, `--set`, …) as the render takes them.
pub(crate) fn override_flags(args: &crate::cli::OverrideArgs) -> OverrideFlags {
    OverrideFlags {
        values: args.values.clone(),
        set_json: args.set_json.clone(),
        set: args.set.clone(),
        set_string: args.set_string.clone(),
        set_file: args.set_file.clone(),
    }
}

/// This binary, which `render-worker` runs in (`argv[0]` when the system cannot tell).
pub(crate) fn this_program() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| std::env::args_os().next().unwrap_or_default().into())
}

/// The render's bounds, as the flags say: each names its flag, which its error tells to raise.
fn render_limits(flags: &RenderLimitArgs) -> RenderLimits {
    let limits = RenderLimits {
        deadline: None,
        stopping: None,
        max_rendered_bytes: flags.max_rendered_bytes.map(|bytes| Bound::new(bytes, "--max-rendered-bytes")),
        max_values_bytes: flags.max_values_bytes.map(|bytes| Bound::new(bytes, "--max-values-bytes")),
        max_template_steps: flags.max_template_steps.map(|steps| Bound::new(steps, "--max-template-steps")),
        // A deadline given is kept: templates render where they can be killed at it.
        isolation: (flags.max_render_memory.is_some() || flags.render_timeout.is_some()).then(|| {
            weaver_core::limits::Isolation {
                program: this_program(),
                max_memory: flags.max_render_memory.map(|bytes| Bound::new(bytes, "--max-render-memory")),
                kept: None,
            }
        }),
    };
    match flags.render_timeout {
        Some(timeout) => limits.with_timeout(timeout, "--render-timeout"),
        None => limits,
    }
}

/// What offline validation does, as `--validate` says.
pub(crate) fn validate_mode(args: &ValidateArgs) -> weaver_validate::Mode {
    match args.validate {
        ValidateChoice::Strict => weaver_validate::Mode::Strict,
        ValidateChoice::Warn => weaver_validate::Mode::Warn,
        ValidateChoice::Ignore => weaver_validate::Mode::Ignore,
    }
}

/// What `apply` and `rollback` share, as the flags say.
pub(crate) fn apply_settings(flags: &ApplyFlags) -> Settings {
    Settings {
        dry_run: flags.dry_run,
        wait: flags.readiness.wait,
        timeout: flags.readiness.timeout,
        force_conflicts: flags.readiness.force_conflicts,
        prune: !flags.no_prune,
        concurrency: flags.concurrency,
        lock_timeout: flags.lock_timeout,
        lock_lease: weaver_cluster::DEFAULT_LEASE_DURATION,
        plan_check: None,
        record_key: None,
        applier: None,
        take_ownership: false,
    }
}

/// The defaults of the apply flags, read from their definition: how a rollback from the pages
/// (`weaver ui`'s, the controller's) applies, as `weaver rollback` without flags, and how
/// `weaver install` applies beside its own flags.
pub(crate) fn default_apply_settings() -> Settings {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        apply: ApplyFlags,
    }
    apply_settings(&<Defaults as clap::Parser>::parse_from(["weaver ui"]).apply)
}

/// Moves cluster and secrets options given before the command into the command's own (which
/// win); given before a command that does not use them, they are an error, not ignored.
fn place_leading_options(cli: &mut Cli) -> weaver_core::error::Result<()> {
    let (cluster, identity) = match &mut cli.command {
        Command::Diff(args) => (Some(&mut args.cluster), Some(&mut args.identity)),
        Command::Apply(args) => (Some(&mut args.cluster), Some(&mut args.identity)),
        Command::History(args) => (Some(&mut args.cluster), None),
        Command::Rollback(args) => (Some(&mut args.cluster), None),
        Command::Drift(args) => (Some(&mut args.cluster), None),
        Command::Status(args) => (Some(&mut args.cluster), None),
        Command::Check(args) => (Some(&mut args.cluster), None),
        Command::Migrate(args) => (Some(&mut args.cluster), None),
        Command::Install(args) => (Some(&mut args.target.cluster), None),
        Command::Uninstall(args) => (Some(&mut args.cluster), None),
        Command::Bootstrap(args) => (Some(&mut args.target.cluster), None),
        Command::Tenant(TenantCommand::Add(args)) => (Some(&mut args.cluster), None),
        Command::Promote(args) => (Some(&mut args.proposal.cluster), Some(&mut args.proposal.identity)),
        Command::Render(args) => (None, Some(&mut args.identity)),
        Command::Hydrate(args) => (None, Some(&mut args.identity)),
        Command::Secrets(SecretsCommand::Decrypt(args)) => (None, Some(&mut args.identity)),
        Command::Secrets(SecretsCommand::Set(args)) => (None, Some(&mut args.identity)),
        Command::Secrets(
            SecretsCommand::Edit(args) | SecretsCommand::Rotate(args) | SecretsCommand::Updatekeys(args),
        ) => (None, Some(&mut args.identity)),
        Command::Secrets(SecretsCommand::Encrypt(_)) | Command::Envs(_) | Command::Changed(_) => (None, None),
        Command::Completions(_) | Command::Charts(_) | Command::Import(_) | Command::Report(_) => (None, None),
        Command::Init(_) | Command::RenderWorker | Command::Push(_) => (None, None),
        Command::Images(ImagesCommand::Check(_)) => (None, None),
        Command::Images(ImagesCommand::Update(args)) => {
            (Some(&mut args.proposal.cluster), Some(&mut args.proposal.identity))
        }
        Command::Operator(OperatorCommand::Run(args)) => (Some(&mut args.cluster), None),
        Command::Operator(OperatorCommand::Crd(_)) => (None, None),
        Command::Sync(SyncCommand::Get(args)) => (Some(&mut args.cluster), None),
        Command::Sync(SyncCommand::Reconcile(args)) => (Some(&mut args.cluster), None),
        Command::Sync(SyncCommand::Suspend(args) | SyncCommand::Resume(args)) => (Some(&mut args.cluster), None),
        Command::Sync(SyncCommand::Approve(args)) => (Some(&mut args.cluster), None),
        Command::Previews(PreviewsCommand::List(args)) => (Some(&mut args.cluster), None),
        Command::Previews(PreviewsCommand::Delete(args)) => (Some(&mut args.cluster), None),
        Command::Ui(args) => (Some(&mut args.cluster), Some(&mut args.identity)),
    };
    let outer = std::mem::take(&mut cli.cluster);
    let unused = |flag: &str| {
        Error::new(format!("{flag} does nothing for this command: it is not one that talks to the cluster")).with_help(
            "diff, apply, history, rollback, drift, status, sync, previews, ui and operator run take the cluster options",
        )
    };
    match cluster {
        Some(inner) => {
            inner.kubeconfig = inner.kubeconfig.take().or(outer.kubeconfig);
            inner.context = inner.context.take().or(outer.context);
            inner.request_timeout = inner.request_timeout.or(outer.request_timeout);
            inner.retry_budget = inner.retry_budget.or(outer.retry_budget);
        }
        None if outer.kubeconfig.is_some() => return Err(unused("--kubeconfig")),
        None if outer.context.is_some() => return Err(unused("--context")),
        None if outer.request_timeout.is_some() => return Err(unused("--request-timeout")),
        None if outer.retry_budget.is_some() => return Err(unused("--retry-budget")),
        None => {}
    }
    let outer = std::mem::take(&mut cli.identity);
    match identity {
        Some(inner) => inner.identity = inner.identity.take().or(outer.identity),
        None if outer.identity.is_some() => {
            return Err(Error::new("--identity does nothing for this command: it decrypts nothing")
                .with_help("render, hydrate, diff, apply and secrets decrypt/edit/rotate/updatekeys decrypt"));
        }
        None => {}
    }
    Ok(())
}

/// The `--rev` and `--verify-commits` of a command that reads the repository at a commit.
fn source_args(command: &mut Command) -> Option<&mut SourceArgs> {
    match command {
        Command::Render(args) => Some(&mut args.render.select.source),
        Command::Diff(args) => Some(&mut args.render.select.source),
        Command::Apply(args) => Some(&mut args.render.select.source),
        Command::Drift(args) => Some(&mut args.select.source),
        Command::Status(args) => Some(&mut args.select.source),
        Command::Hydrate(args) => Some(&mut args.source),
        Command::Envs(args) => Some(&mut args.source),
        Command::Charts(ChartsCommand::Fetch(args)) => Some(&mut args.source),
        Command::Promote(args) => Some(&mut args.source),
        Command::Push(PushCommand::Artifact(args)) => Some(&mut args.source),
        // Every other command reads the working tree, or the commit a flag of its own names;
        // listed, so that a new command with `--rev` is a decision here.
        Command::Charts(ChartsCommand::Lock(_)) | Command::Changed(_) | Command::Secrets(_) => None,
        Command::History(_) | Command::Rollback(_) | Command::Images(_) => None,
        Command::Import(_) | Command::Report(_) | Command::Completions(_) | Command::Operator(_) => None,
        Command::Sync(_) | Command::Ui(_) | Command::Init(_) | Command::Check(_) | Command::Install(_) => None,
        Command::Previews(_) => None,
        Command::Uninstall(_) | Command::Bootstrap(_) | Command::Migrate(_) | Command::RenderWorker => None,
        Command::Tenant(_) => None,
    }
}

/// `--verify-commits`: checks who signed the `--rev` commit before the command reads anything,
/// and has the command read that commit by its SHA from then on.
fn verify_revision(cli: &mut Cli, ui: &Ui) -> weaver_core::error::Result<()> {
    let repo = cli.global.repo.clone();
    let Some(source) = source_args(&mut cli.command) else { return Ok(()) };
    let (Some(trust), Some(spec)) = (&source.verify_commits, &source.rev) else { return Ok(()) };
    let verified = action::verify::commit(&repo, spec, trust)?;
    ui.status(&format!("commit {} ({spec}) is signed by {}", &verified.commit[..8], verified.signer));
    source.rev = Some(verified.commit);
    Ok(())
}

/// Runs a parsed command line; returns the process exit code (0 ok, 2 changes found, 1 error).
pub fn run(mut cli: Cli) -> ExitCode {
    let ui = Ui::new(&cli.global);
    if let Err(err) = place_leading_options(&mut cli).and_then(|()| verify_revision(&mut cli, &ui)) {
        report_error(&ui, &err);
        return ExitCode::from(1);
    }
    let result = match &cli.command {
        Command::Render(args) => render::run(&cli.global, &ui, args),
        Command::Hydrate(args) => hydrate::run(&cli.global, &ui, args),
        Command::Push(command) => push::run(&cli.global, &ui, command),
        Command::Envs(args) => envs::run(&cli.global, &ui, args),
        Command::Changed(args) => changed::run(&cli.global, &ui, args),
        Command::Secrets(command) => secrets::run(&cli.global, &ui, command),
        Command::Diff(args) => diff::run(&cli.global, &ui, args),
        Command::Apply(args) => apply::run(&cli.global, &ui, args),
        Command::History(args) => history::run(&cli.global, &ui, args),
        Command::Rollback(args) => rollback::run(&cli.global, &ui, args),
        Command::Drift(args) => drift::run(&cli.global, &ui, args),
        Command::Report(command) => report::run(&ui, command),
        Command::Status(args) => status::run(&cli.global, &ui, args),
        Command::Check(args) => check::run(&ui, args),
        Command::Migrate(args) => migrate::run(args),
        Command::Install(args) => install::install(&ui, args),
        Command::Uninstall(args) => install::uninstall(&ui, args),
        Command::Bootstrap(args) => bootstrap::run(&ui, args),
        Command::Tenant(TenantCommand::Add(args)) => tenant::add(&ui, args),
        Command::Promote(args) => promote::run(&cli.global, &ui, args),
        Command::Charts(command) => charts::run(&cli.global, &ui, command),
        Command::Images(command) => images::run(&cli.global, &ui, command),
        Command::Import(command) => import::run(&cli.global, &ui, command),
        Command::Init(args) => init::run(&cli.global, &ui, args),
        Command::Completions(args) => completions::run(args),
        Command::Operator(command) => operator::run(&cli.global, command),
        Command::Sync(command) => sync::run(&ui, command),
        Command::Previews(command) => previews::run(&ui, command),
        Command::Ui(args) => ui::run(&cli.global, &ui, args),
        Command::RenderWorker => render_worker(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report_error(&ui, &err);
            ExitCode::from(1)
        }
    }
}

/// `weaver render-worker`: serves the render that started it until its stdin ends (see
/// `weaver_render::isolated`).
fn render_worker() -> weaver_core::error::Result<ExitCode> {
    // A batch of releases' answers, written together (one wake of the parent), up to this.
    const WORKER_OUTPUT_BYTES: usize = 256 << 10;
    let (input, output) = (
        std::io::BufReader::new(std::io::stdin()),
        std::io::BufWriter::with_capacity(WORKER_OUTPUT_BYTES, std::io::stdout()),
    );
    weaver_render::worker::serve(Box::new(input), Box::new(output))
        .map_err(|err| Error::new(format!("render-worker: {err}")))?;
    Ok(ExitCode::SUCCESS)
}

/// The one place errors are printed: the message with its location, then the help, with every
/// registered secret value redacted.
pub(crate) fn report_error(ui: &Ui, err: &Error) {
    let mut text = format!("{} {err}\n", ui.paint(ui.color_stderr, Style::Red, "error:"));
    if let Some(help) = &err.help {
        text.push_str(&format!(
            "  {} {}\n",
            ui.paint(ui.color_stderr, Style::Cyan, "help:"),
            help.replace('\n', "\n        ")
        ));
    }
    let _ = std::io::stderr().lock().write_all(ui.redactor.redact(&text).as_bytes());
}

/// An error as a report quotes it: the message with its location, then the help, redacted.
pub(crate) fn error_text(ui: &Ui, err: &Error) -> String {
    ui.redactor.error(err)
}

/// The refusal of a flag that works on one environment when the selection is a fleet: `what`
/// says what does (`-o html shows one environment`), `help` what to do instead.
fn one_environment_only(what: &str, environments: &[Arc<Environment>], help: &str) -> Error {
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    Error::new(format!("{what}: the selection is a fleet of {} ({})", names.len(), names.join(", "))).with_help(help)
}

/// Prints the error of each environment of a fleet that failed, naming it.
pub(crate) fn report_failures<T>(ui: &Ui, outcomes: &[Outcome<T>]) {
    for outcome in outcomes {
        if let Err(err) = &outcome.result {
            report_error(ui, &err.clone().context(format!("environment `{}`", outcome.environment)));
        }
    }
}

/// A fleet render's exit code: 1 when an environment failed, else 0. (Fleets with a report
/// have theirs in `fleet::exit_code`.)
pub(crate) fn fleet_exit_code<T>(outcomes: &[Outcome<T>]) -> ExitCode {
    if outcomes.iter().any(|o| o.result.is_err()) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Each environment's result, or its error as a report quotes it: what a fleet's JSON holds.
pub(crate) fn fleet_results<'a, T>(
    ui: &Ui,
    outcomes: &'a [Outcome<T>],
) -> Vec<(&'a str, std::result::Result<&'a T, String>)> {
    outcomes.iter().map(|o| (o.environment.as_str(), o.result.as_ref().map_err(|err| error_text(ui, err)))).collect()
}

/// Rows as aligned columns, the first (the heading) in bold.
pub(crate) fn table(ui: &Ui, rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let line = line.join("  ").trim_end().to_string();
        text.push_str(&if i == 0 { ui.paint(ui.color_stdout, Style::Bold, &line) } else { line });
        text.push('\n');
    }
    text
}

/// A table of the pins a promotion or an image update changes (empty when none does): what
/// `weaver promote` and `weaver images update` put in their pull requests' bodies.
pub(crate) fn pinned_changes(changes: &[PinChange], redactor: &weaver_secrets::Redactor) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out =
        "### Pinned changes\n\n| release | pin | from | to | source revision |\n|---|---|---|---|---|\n".to_string();
    for change in changes {
        let cell = |value: Option<&serde_json::Value>| match value {
            Some(value) => weaver_engine::report::markdown::code_cell(&redactor.redact(&value.to_string())),
            None => "—".to_string(),
        };
        let pin = match change.name.as_str() {
            "" => change.pin.to_string(),
            name => format!("{} {}", change.pin, weaver_engine::report::markdown::code_cell(name)),
        };
        let revision = match change.revision {
            0 => "—".to_string(),
            revision => revision.to_string(),
        };
        out.push_str(&format!(
            "| {} | {pin} | {} | {} | {revision} |\n",
            weaver_engine::report::markdown::code_cell(&change.release),
            cell(change.from.as_ref()),
            cell(Some(&change.to))
        ));
    }
    out.push('\n');
    out
}

/// What a proposing command's flags (`weaver promote`, `weaver images update`) ask: read and
/// branched from HEAD (promote's `--rev` sets another), committed as the repository's user, remote charts from this machine's
/// cache.
pub(crate) fn proposal(
    global: &GlobalArgs,
    args: &crate::cli::ProposalArgs,
) -> weaver_engine::action::promote::Proposal {
    weaver_engine::action::promote::Proposal {
        repo: global.repo.clone(),
        connect: connect_options(&args.cluster),
        concurrency: args.concurrency,
        keys: weaver_engine::action::Keys::Search(args.identity.identity.clone()),
        dry_run: args.dry_run,
        branch: args.branch.clone(),
        rev: None,
        author: None,
        signing_key: None,
        charts: weaver_source::charts::Archives::Machine,
        limits: Default::default(),
    }
}

/// A proposal's report: the pull request's Markdown `body` also to `--body-file`, and to
/// stdout as `-o` asks (JSON: `json`), redacted.
pub(crate) fn write_proposal(
    ui: &Ui,
    args: &crate::cli::ProposalArgs,
    body: String,
    json: impl FnOnce() -> String,
) -> weaver_core::error::Result<()> {
    if let Some(path) = &args.body_file {
        std::fs::write(path, ui.redactor.redact(&body).as_bytes())
            .map_err(|err| Error::io("write the body file", path, err))?;
    }
    let text = match args.output {
        crate::cli::PromoteFormat::Markdown => body,
        crate::cli::PromoteFormat::Json => json(),
    };
    write_stdout(ui.redactor.redact(&text).as_bytes())
}

/// Writes to stdout, treating a closed pipe (`weaver render | head`) as success.
pub(crate) fn write_stdout(bytes: &[u8]) -> weaver_core::error::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::new(format!("cannot write to standard output: {}", weaver_core::error::io_reason(&e))))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// The subcommands (by path) that take `--verify-commits`.
    fn taking_verify_commits(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name()).trim().to_string();
            if sub.get_arguments().any(|arg| arg.get_id() == "verify_commits") {
                found.push(path.clone());
            }
            taking_verify_commits(sub, &path, found);
        }
    }

    /// A flag accepted and not acted on would let unsigned commits through: every command that
    /// takes `--verify-commits` hands it to `verify_revision`.
    #[test]
    fn every_command_taking_verify_commits_verifies() {
        let mut found = Vec::new();
        // Built: each subcommand's arguments are added when it is built (`defer`).
        let mut command = Cli::command();
        command.build();
        taking_verify_commits(&command, "", &mut found);
        // Each command with the arguments it needs.
        let checked = [
            ("render", "--env dev"),
            ("hydrate", "--env dev --out out"),
            ("envs", ""),
            ("diff", "--env dev"),
            ("apply", "--env dev"),
            ("drift", "--env dev"),
            ("status", "--env dev"),
            ("charts fetch", ""),
            ("promote", "--to prod"),
            ("push artifact", "registry.example.com/shop:1"),
        ];
        found.sort();
        let mut expected: Vec<String> = checked.iter().map(|(name, _)| name.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected, "a new command with --verify-commits: add it to source_args and here");
        for (name, args) in checked {
            let command = format!("{name} {args}");
            let argv = format!("weaver {} --rev main --verify-commits signers", command.trim());
            let mut cli = Cli::try_parse_from(argv.split(' ')).unwrap_or_else(|e| panic!("{argv}: {e}"));
            let source = source_args(&mut cli.command).unwrap_or_else(|| panic!("{command}: not verified"));
            assert_eq!(source.verify_commits.as_deref(), Some(std::path::Path::new("signers")), "{command}");
        }
    }
}
