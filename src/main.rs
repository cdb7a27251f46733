use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match weaver::cli::Cli::try_parse() {
        Ok(cli) => weaver::commands::run(cli),
        Err(err) => {
            let _ = err.print();
            // Exit code 2 means "changes found" in weaver, so usage errors exit 1 like every error.
            if err.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
    }
}
