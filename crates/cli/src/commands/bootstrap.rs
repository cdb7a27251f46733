//! `weaver bootstrap`: the flags, the action, and `weaver apply`'s output for the install.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::progress::{ApplyProgress, finish};
use super::{Ui, block_on, connect_options};
use crate::cli::{BootstrapArgs, GitAccessArgs};
use weaver_core::error::{Error, Result};
use weaver_engine::action::Context;
use weaver_engine::action::bootstrap::{Access, BootstrapOptions, bootstrap};

/// The access flags: the credentials' files (None when neither a key nor a token is given),
/// with the known_hosts and CA files read.
pub(super) struct AccessFiles {
    pub access: Option<Access>,
    pub known_hosts: Option<(PathBuf, String)>,
    pub ca_file: Option<(PathBuf, Vec<u8>)>,
}

pub(super) fn given_access(args: &GitAccessArgs) -> Result<AccessFiles> {
    let access = match (&args.private_key_file, &args.token_file) {
        (Some(file), _) => Some(Access::KeyFile { file: file.clone(), generate: args.generate_key }),
        (None, Some(file)) => Some(Access::Token { file: file.clone(), username: args.username.clone() }),
        (None, None) => None,
    };
    let known_hosts = match &args.known_hosts {
        Some(file) => Some((file.clone(), String::from_utf8_lossy(&read("--known-hosts", file)?).into_owned())),
        None => None,
    };
    let ca_file =
        args.ca_file.as_ref().map(|file| read("--ca-file", file).map(|pem| (file.clone(), pem))).transpose()?;
    Ok(AccessFiles { access, known_hosts, ca_file })
}

/// The file given with `flag`.
pub(super) fn read(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(&format!("read {flag}"), path, e))
}

pub fn run(ui: &Ui, args: &BootstrapArgs) -> Result<ExitCode> {
    let given = given_access(&args.access)?;
    let options = BootstrapOptions {
        url: args.url.clone(),
        branch: args.branch.clone(),
        path: args.path.clone(),
        namespace: args.namespace.clone(),
        access: given.access.unwrap_or(Access::FromCluster),
        known_hosts: given.known_hosts,
        ca_file: given.ca_file,
        overrides: super::override_flags(&args.target.overrides),
        connect: connect_options(&args.target.cluster),
        // The install's readiness is what its EnvironmentSync being Ready at the commit proves:
        // the controller runs, and applied itself.
        settings: weaver_engine::action::apply::Settings {
            wait: false,
            timeout: args.timeout,
            ..super::default_apply_settings()
        },
        author: (args.author_name.clone(), args.author_email.clone()),
        recover: args.recover,
    };
    let progress = ApplyProgress::new(ui, &options.settings, args.output);
    let done = block_on(bootstrap(
        &options,
        Context::new(&ui.redactor, &|p| progress.on(p)).interruptible(&progress.interrupted),
    ))?;
    let short = &done.commit[..12];
    ui.status(&match (done.pushed, done.secret_written) {
        (false, false) => format!("weaver runs itself from {short} of branch {}: nothing to write", args.branch),
        (pushed, _) => format!(
            "weaver runs itself from {short} of branch {}{}",
            args.branch,
            if pushed { " (pushed by this bootstrap)" } else { "" }
        ),
    });
    match done.applied {
        Some(applied) => finish(ui, applied, args.output),
        // Nothing was applied: its report would be of no apply.
        None => {
            if args.output == crate::cli::ListFormat::Json {
                let report = serde_json::json!({"schemaVersion": 1, "environment": "weaver", "commit": done.commit, "applied": false});
                super::write_stdout(format!("{report}\n").as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
