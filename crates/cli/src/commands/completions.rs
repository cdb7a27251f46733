//! `weaver completions SHELL`: the script that registers weaver's completion with the shell.
//! The candidates themselves come from `crate::completion`.

use std::process::ExitCode;

use crate::cli::CompletionsArgs;
use weaver_core::error::Error;

/// The environment variable the completion scripts set when they ask weaver for candidates.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// Prints the script that registers weaver's completion with the shell (what
/// `COMPLETE=SHELL weaver` prints), calling this very executable.
pub fn run(args: &CompletionsArgs) -> weaver_core::error::Result<ExitCode> {
    let name = args.shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let shell = shells.completer(&name).ok_or_else(|| Error::new(format!("no completion for shell `{name}`")))?;
    let exe = std::env::current_exe().map_or_else(|_| "weaver".to_string(), |p| p.display().to_string());
    let mut out = Vec::new();
    shell
        .write_registration(COMPLETE_VAR, "weaver", "weaver", &exe, &mut out)
        .map_err(|e| Error::new(format!("cannot write the completion script: {e}")))?;
    super::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
