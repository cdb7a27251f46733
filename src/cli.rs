//! Command-line definitions (clap only; behaviour lives in `commands`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "weaver",
    version,
    about = "Render, diff and apply Kubernetes releases from a git repository",
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The weaver repository to read
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// An age identity (private key) file for decrypting secrets; tried before any other
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Say more about what weaver does (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an environment's Kubernetes objects
    Render(RenderArgs),
    /// List environments with their releases, charts and namespaces
    Envs(EnvsArgs),
    /// List the releases a change affects, environment by environment (for pipelines)
    Changed(ChangedArgs),
    /// Encrypt, decrypt, edit and re-key SOPS files (age recipients)
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Encrypt a plaintext YAML or JSON file in place, to the recipients of secrets/.sops.yaml or --age
    Encrypt(SecretsFileArgs),
    /// Print the decrypted file (or write it back with --in-place)
    Decrypt(DecryptArgs),
    /// Decrypt into a private temporary file, open $EDITOR, re-encrypt
    Edit(SecretsFileArgs),
    /// Re-encrypt every value with a new data key
    Rotate(SecretsFileArgs),
    /// Re-wrap the data key for the recipients the rules (or --age) now give
    Updatekeys(SecretsFileArgs),
}

#[derive(Debug, Args)]
pub struct SecretsFileArgs {
    /// The file, relative to the current directory
    pub file: PathBuf,
    /// Encrypt to this age recipient instead of the creation rules (repeatable)
    #[arg(long = "age", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The file, relative to the current directory
    pub file: PathBuf,
    /// Replace the file with its plaintext instead of printing it
    #[arg(long)]
    pub in_place: bool,
}

/// Which releases of which environment a command works on.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// The environment (a file environments/<ENV>.yaml)
    #[arg(short, long = "env", value_name = "ENV")]
    pub env: String,
    /// Only this release (repeatable)
    #[arg(short = 'r', long = "release", value_name = "NAME")]
    pub releases: Vec<String>,
    /// Only releases whose labels match (key=value, key!=value, key, !key; repeatable)
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selectors: Vec<String>,
    /// Only the releases `weaver changed --base REV` reports for this environment
    #[arg(long, value_name = "REV")]
    pub changed_since: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Which version of the repository a command reads.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read the repository as it is in this commit (branch, tag, SHA, HEAD~2), without checking it out
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Write one file per object, DIR/<release>/<kind>-<name>.yaml, instead of printing
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Print Secret values and other decrypted values as they are (redacted by default)
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EnvsArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ChangedArgs {
    /// The commit to compare with (branch, tag, SHA, HEAD~2), e.g. the target branch of a merge request
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The version to compare [default: the working tree, uncommitted and untracked files included]
    #[arg(long, visible_alias = "rev", value_name = "REV")]
    pub head: Option<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
