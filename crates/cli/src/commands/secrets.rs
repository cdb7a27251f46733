//! `weaver secrets encrypt|decrypt|edit|set|rotate|updatekeys FILE`: SOPS files with age
//! recipients, written so that sops, Flux and helm-secrets read them too.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use super::Ui;
use crate::cli::{DecryptArgs, GlobalArgs, IdentityArgs, SecretsCommand, SecretsFileArgs, SetArgs};
use weaver_core::error::{Error, Result};
use weaver_engine::action::open_project;
use weaver_secrets::{self as secrets, CreationRules, EditOutcome, EditSession, Identities, SopsFile};

pub fn run(global: &GlobalArgs, ui: &Ui, command: &SecretsCommand) -> Result<ExitCode> {
    match command {
        SecretsCommand::Encrypt(args) => encrypt(global, ui, args),
        SecretsCommand::Decrypt(args) => decrypt(global, ui, args),
        SecretsCommand::Edit(args) => edit(global, &args.identity, ui, &args.target),
        SecretsCommand::Set(args) => set(global, ui, args),
        SecretsCommand::Rotate(args) => rotate(global, &args.identity, ui, &args.target),
        SecretsCommand::Updatekeys(args) => update_keys(global, &args.identity, ui, &args.target),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Creation rules as sops finds them (see [`CreationRules::nearest`]).
fn creation_rules(global: &GlobalArgs, file: &Path) -> Result<Option<CreationRules>> {
    let start = std::path::absolute(file).map_err(|e| Error::io("resolve path", file, e))?;
    let fallback = global.repo.join("secrets/.sops.yaml");
    CreationRules::nearest(&start, &fallback, &mut |candidate| match std::fs::read_to_string(candidate) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read creation rules", candidate, e)),
    })
}

/// Identities for `file`, including the identityFile of the environment whose `secrets` list
/// it, so that editing the demo's secrets/dev.yaml needs no flag, from any directory: the
/// repository is `--repo` when the file lies below it, else the nearest directory above the
/// file holding `environments/`. `-v` says which environment's identityFile was used.
fn identities(global: &GlobalArgs, identity: &IdentityArgs, ui: &Ui, file: &Path) -> Result<Identities> {
    let Some(repo) = repository_of(&global.repo, file) else {
        return weaver_engine::action::load_identities(&global.repo, identity.identity.as_deref(), None);
    };
    let project = open_project(&repo, None)?;
    let listing = (|| {
        let relative = std::fs::canonicalize(file).ok()?.strip_prefix(&repo).ok()?.to_path_buf();
        project.environment_names().ok()?.into_iter().find_map(|name| {
            let env = project.environment(&name).ok()?;
            env.secrets.iter().any(|s| s.path == relative).then_some(())?;
            Some((name, env.identity_file?))
        })
    })();
    if let Some((env, identity_file)) = &listing {
        ui.info(&format!(
            "{}: environment `{env}` lists it; its identityFile {} is tried after --identity and the key variables",
            file.display(),
            identity_file.path.display()
        ));
    }
    weaver_engine::action::load_identities(&repo, identity.identity.as_deref(), listing.as_ref().map(|(_, file)| file))
}

/// The weaver repository `file` belongs to (see [`identities`]), canonical.
fn repository_of(given: &Path, file: &Path) -> Option<std::path::PathBuf> {
    let file = std::fs::canonicalize(file).ok()?;
    let is_repository = |dir: &Path| dir.join(weaver_project::environment::ENVIRONMENTS_DIR).is_dir();
    match std::fs::canonicalize(given) {
        Ok(repo) if file.starts_with(&repo) && is_repository(&repo) => Some(repo),
        _ => file.ancestors().skip(1).find(|dir| is_repository(dir)).map(Path::to_path_buf),
    }
}

fn read_text(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|e| Error::io("read file", file, e))
}

fn encrypt(global: &GlobalArgs, ui: &Ui, args: &SecretsFileArgs) -> Result<()> {
    let plain = secrets::Document::parse(&args.file, &read_text(&args.file)?)?;
    let rules = creation_rules(global, &args.file)?;
    let settings = secrets::encryption_settings(&args.file, rules.as_ref(), &args.recipients)?;
    let encrypted = secrets::encrypt(&args.file, &plain, &settings)?;
    secrets::write_atomically(&args.file, &encrypted)?;
    ui.status(&format!("{}: encrypted to {}", args.file.display(), settings.recipients.join(", ")));
    Ok(())
}

fn decrypt(global: &GlobalArgs, ui: &Ui, args: &DecryptArgs) -> Result<()> {
    let ids = identities(global, &args.identity, ui, &args.file)?;
    let plain = secrets::decrypt_file(&args.file, &ids)?.render();
    if args.in_place {
        std::fs::write(&args.file, plain).map_err(|e| Error::io("write file", &args.file, e))?;
        ui.warn(&format!("{} now holds plaintext: do not commit it", args.file.display()));
        Ok(())
    } else {
        super::write_stdout(plain.as_bytes())
    }
}

fn rotate(global: &GlobalArgs, identity: &IdentityArgs, ui: &Ui, args: &SecretsFileArgs) -> Result<()> {
    let ids = identities(global, identity, ui, &args.file)?;
    let opened = SopsFile::read(&args.file)?.decrypt(&ids)?;
    let recipients = if args.recipients.is_empty() {
        opened.recipients()
    } else {
        secrets::encryption_settings(&args.file, None, &args.recipients)?.recipients
    };
    secrets::write_atomically(&args.file, &opened.rotate(&recipients)?)?;
    ui.status(&format!("{}: new data key, encrypted to {}", args.file.display(), recipients.join(", ")));
    Ok(())
}

fn update_keys(global: &GlobalArgs, identity: &IdentityArgs, ui: &Ui, args: &SecretsFileArgs) -> Result<()> {
    let ids = identities(global, identity, ui, &args.file)?;
    let opened = SopsFile::read(&args.file)?.decrypt(&ids)?;
    let rules = creation_rules(global, &args.file)?;
    let recipients = secrets::encryption_settings(&args.file, rules.as_ref(), &args.recipients)?.recipients;
    let update = opened.update_keys(&recipients)?;
    if update.added.is_empty() && update.removed.is_empty() {
        ui.status(&format!("{}: recipients already up to date", args.file.display()));
        return Ok(());
    }
    secrets::write_atomically(&args.file, &update.text)?;
    for added in &update.added {
        ui.status(&format!("{}: added {added}", args.file.display()));
    }
    for removed in &update.removed {
        ui.status(&format!("{}: removed {removed}", args.file.display()));
    }
    ui.info("the data key is unchanged: run `weaver secrets rotate` if a removed key may have been compromised");
    Ok(())
}

fn edit(global: &GlobalArgs, identity: &IdentityArgs, ui: &Ui, args: &SecretsFileArgs) -> Result<()> {
    let ids = identities(global, identity, ui, &args.file)?;
    let temp_root = secrets::private_temp_root(|k| std::env::var_os(k));
    // The session's guard removes the plaintext on every path out of this function.
    let mut session = EditSession::open(&args.file, &ids, &temp_root)?;
    ui.redactor.register_tree(&session.plaintext().to_json());
    loop {
        match session.run(run_editor)? {
            EditOutcome::Saved => {
                ui.status(&format!("{}: re-encrypted; unchanged values kept their ciphertext", args.file.display()));
                return Ok(());
            }
            EditOutcome::Unchanged => {
                ui.status(&format!("{}: no changes", args.file.display()));
                return Ok(());
            }
            EditOutcome::Invalid(problem) => {
                let problem = Error::from(problem);
                if !ask_to_edit_again(ui, &problem) {
                    return Err(problem.with_help("the file was left unchanged and the edit discarded"));
                }
            }
        }
    }
}

/// The largest value `weaver secrets set` reads: a Kubernetes Secret holds at most 1 MiB.
const MAX_SET_VALUE: u64 = 1 << 20;

/// `weaver secrets set`: one value from stdin into the file, re-encrypted as an edit is (the
/// ciphertext of every other value kept).
fn set(global: &GlobalArgs, ui: &Ui, args: &SetArgs) -> Result<()> {
    let at = || format!("{}: key `{}`", args.file.display(), args.key);
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::new(format!("{}: the value is read from stdin, which is a terminal", at())).with_help(
            format!("pipe it in: printf '%s' \"$VALUE\" | weaver secrets set {} {}", args.file.display(), args.key),
        ));
    }
    let mut bytes = Vec::new();
    stdin.lock().take(MAX_SET_VALUE + 1).read_to_end(&mut bytes).map_err(|err| {
        Error::new(format!("{}: cannot read the value from stdin: {}", at(), weaver_core::error::io_reason(&err)))
    })?;
    if bytes.len() as u64 > MAX_SET_VALUE {
        return Err(Error::new(format!("{}: the value on stdin is larger than 1 MiB, which no Secret holds", at())));
    }
    let value = secrecy::SecretString::from(String::from_utf8(bytes).map_err(|_| {
        Error::new(format!("{}: the value on stdin is not UTF-8 text, and SOPS values are text", at())).with_help(
            "encode it first (`base64 -w0 FILE | weaver secrets set …`) and decode it in the template (b64decode)",
        )
    })?);
    use secrecy::ExposeSecret;
    let value = match args.keep_newline {
        true => value.expose_secret(),
        false => without_one_newline(value.expose_secret()),
    };
    ui.redactor.register(value);
    let ids = identities(global, &args.identity, ui, &args.file)?;
    let opened = SopsFile::read(&args.file)?.decrypt(&ids)?;
    let mut edited = opened.plaintext().clone();
    if !edited.set(&args.file, &args.key, value)? {
        ui.status(&format!("{}: already holds that value; the file was left as it was", at()));
        return Ok(());
    }
    secrets::write_atomically(&args.file, &opened.reencrypt(&edited)?)?;
    ui.status(&format!("{}: set; re-encrypted, other values kept their ciphertext", at()));
    Ok(())
}

/// `value` without one trailing line break (`\n` or `\r\n`), as `echo` and here-strings add.
fn without_one_newline(value: &str) -> &str {
    value.strip_suffix('\n').map_or(value, |value| value.strip_suffix('\r').unwrap_or(value))
}

/// Offers another round in the editor when someone is at the terminal to answer.
fn ask_to_edit_again(ui: &Ui, problem: &Error) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{}\nEdit again? [Y/n] ", ui.redactor.redact(&problem.to_string()));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    !matches!(answer.trim().to_lowercase().as_str(), "n" | "no")
}

/// Runs `$EDITOR` (then `$VISUAL`, then `vi`) on the plaintext file. Ctrl-C goes to the
/// editor, whose terminal it is; SIGTERM or SIGHUP to weaver stops the editor, so the edit
/// session is dropped and its plaintext removed before weaver exits.
fn run_editor(path: &Path) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let editor = ["EDITOR", "VISUAL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP])?;
    let handle = signals.handle();
    let mut child =
        std::process::Command::new("sh").arg("-c").arg(format!("exec {editor} \"$1\"")).arg("sh").arg(path).spawn()?;
    let pid = child.id() as libc::pid_t;
    let watcher = std::thread::spawn(move || {
        let mut stopped_by = None;
        for signal in signals.forever() {
            if signal == SIGTERM || signal == SIGHUP {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                stopped_by = Some(signal);
            }
        }
        stopped_by
    });
    let status = child.wait();
    handle.close();
    let stopped_by = watcher.join().unwrap_or(None);
    if let Some(signal) = stopped_by {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            format!("weaver received signal {signal} while the editor ran"),
        ));
    }
    let status = status?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("the editor `{editor}` exited with {status}")))
    }
}
