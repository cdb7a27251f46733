//! weaver's command line: the clap definitions (`cli.rs`), one file per subcommand
//! (`commands/`: flags → options, one action, the result formatted) and completions. The binary
//! (the root package's `main.rs`) parses and runs them. README.md has the tour; the book (docs/)
//! the rest.

pub mod cli;
pub mod commands;
pub(crate) mod completion;
