use std::process::ExitCode;

use clap::{CommandFactory, Parser};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Answers the completion scripts' `COMPLETE=SHELL weaver -- …` requests.
    let completion = clap_complete::CompleteEnv::with_factory(weaver::cli::Cli::command)
        .var(weaver::commands::completions::COMPLETE_VAR)
        .try_complete(std::env::args_os(), std::env::current_dir().ok().as_deref());
    match completion {
        Ok(true) => return ExitCode::SUCCESS,
        Ok(false) => {}
        Err(err) => return usage_error(&err),
    }
    match weaver::cli::Cli::try_parse() {
        Ok(cli) => weaver::commands::run(cli),
        Err(err) => usage_error(&err),
    }
}

fn usage_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    // Exit code 2 means "changes found" in weaver, so usage errors exit 1 like every error.
    if err.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
