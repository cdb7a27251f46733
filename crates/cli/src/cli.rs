//! Command-line definitions (clap only; behaviour lives in `commands`).
// The doc comments here are clap's `--help` text (and the book's command reference, generated
// from it), written for a terminal: `<ENV>`, `[::]`, `list[0]` and bare URLs are what the
// reader is to see there, not HTML or links.
//
// Each subcommand's arguments are built only when it runs (`defer`): building every command's
// was half a millisecond of each process, about a tenth of a small chart's render. So an `Args`
// struct's doc comment, which clap makes the `about` of the command it is built into, would
// replace the command's own: those structs say what they are in plain comments. Built last, a
// command's own options come after the global ones in its `--help`.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

use crate::completion;
pub use weaver_project::parse_duration;

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
    /// Cluster and secrets options belong to the commands that use them, and are also accepted
    /// before the command, where they always were: `weaver --kubeconfig F apply …`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(subcommand)]
    pub command: Command,
}

// What every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The weaver repository to read
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Say more about what weaver does (-v); -vv adds how long each phase took
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

// How to reach the cluster, for the commands that talk to one.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Cluster options")]
pub struct ClusterArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the environment's cluster.context, then the current context)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// How long to wait for the cluster to connect and answer each request (e.g. 30s, 1m) [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub request_timeout: Option<std::time::Duration>,
    /// How long requests may keep failing (connection refused or dropped, 429, 5xx) before weaver gives up (e.g. 2m); apply and rollback keep it within --timeout [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_budget: Option<std::time::Duration>,
}

// The age key, for the commands that decrypt.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Secrets options")]
pub struct IdentityArgs {
    /// An age identity (private key) file for decrypting secrets; tried before any other
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Print an environment's Kubernetes objects
    #[command(after_help = RENDER_EXAMPLES)]
    Render(RenderArgs),
    /// Write environments' rendered objects to a directory or a git branch, Secrets encrypted (exit 2 when written, 0 when unchanged)
    #[command(after_help = HYDRATE_EXAMPLES)]
    Hydrate(HydrateArgs),
    /// Push the repository as an OCI artifact, for an EnvironmentSync's spec.source.oci
    #[command(subcommand, after_help = PUSH_EXAMPLES)]
    Push(PushCommand),
    /// List environments with their releases, charts and namespaces
    #[command(after_help = ENVS_EXAMPLES)]
    Envs(EnvsArgs),
    /// List the releases a change affects, environment by environment (for pipelines)
    #[command(after_help = CHANGED_EXAMPLES)]
    Changed(ChangedArgs),
    /// Encrypt, decrypt, edit and re-key SOPS files (age recipients)
    #[command(subcommand, after_help = SECRETS_EXAMPLES)]
    Secrets(SecretsCommand),
    /// Show what an apply would change in the cluster (a three-way diff)
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Bring the cluster to what the repository says (server-side apply), and record it
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// List a release's recorded revisions
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Re-apply a recorded revision of a release (by default the previous deployed one)
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(RollbackArgs),
    /// Report what changed in the cluster since each release's last deployed revision (exit 2 on drift)
    #[command(after_help = DRIFT_EXAMPLES)]
    Drift(DriftArgs),
    /// Take what another environment last applied (its `promotion:` pins) once its gates pass, as a commit on a new branch with the pull request's body (exit 2 when a promotion is written, 0 when there is nothing to promote, 1 when a gate fails)
    #[command(after_help = PROMOTE_EXAMPLES)]
    Promote(PromoteArgs),
    /// Show the health of each release's objects: healthy, progressing, failed or unknown (exit 2 when not all healthy, 1 when one failed)
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Pin remote Helm charts in charts.lock and pull them into the chart cache
    #[command(subcommand, after_help = CHARTS_EXAMPLES)]
    Charts(ChartsCommand),
    /// New image tags for the environments that subscribe to them (`imageUpdates:`): check, or write them as pins in a commit
    #[command(subcommand, after_help = IMAGES_EXAMPLES)]
    Images(ImagesCommand),
    /// Write environment files from another tool's configuration (exit 2 when something is left out)
    #[command(subcommand, after_help = IMPORT_EXAMPLES)]
    Import(ImportCommand),
    /// Combine the JSON reports of a fleet's shards into one report
    #[command(subcommand, after_help = REPORT_EXAMPLES)]
    Report(ReportCommand),
    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// The ConfigMapSync operator
    #[command(subcommand, after_help = OPERATOR_EXAMPLES)]
    Operator(OperatorCommand),
    /// See and steer the cluster's EnvironmentSyncs (GitOps): get, reconcile, suspend, resume, approve
    #[command(subcommand, after_help = SYNC_EXAMPLES)]
    Sync(SyncCommand),
    /// See and delete the preview environments of EnvironmentSyncs (spec.previews): list, delete
    #[command(subcommand, after_help = PREVIEWS_EXAMPLES)]
    Previews(PreviewsCommand),
    /// Serve the fleet as web pages on this machine, as your kubeconfig's identity: EnvironmentSyncs, plans, drift, approvals
    #[command(after_help = UI_EXAMPLES)]
    Ui(UiArgs),
    /// Write a new repository's skeleton: an environment, a chart, .sops.yaml naming your age key (or a new one, kept outside the repository), encrypted secrets and a CI workflow; never over a file
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Check that the cluster can run weaver's controller (--pre) or that the one installed works: server, clock, CRDs and their conversion, controller, leader, Services, weaver's own EnvironmentSync, tenants' rights (exit 1 when a check fails)
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Install or upgrade weaver's controller (EnvironmentSync and ConfigMapSync, webhook, UI) from the chart built into this binary, as release `weaver`: CRDs first, recorded as any release
    #[command(after_help = INSTALL_EXAMPLES)]
    Install(InstallArgs),
    /// Remove weaver's controller; the CRDs (their conversion set to None, so every version is served) and the custom resources stay unless --crds
    #[command(after_help = UNINSTALL_EXAMPLES)]
    Uninstall(UninstallArgs),
    /// Make a cluster run weaver from your repository: write weaver's chart and environment under --path, push, install, and wait until weaver applies itself from git (a second run changes nothing; a newer binary upgrades)
    #[command(after_help = BOOTSTRAP_EXAMPLES)]
    Bootstrap(BootstrapArgs),
    /// Connect a team's repository to the controller weaver bootstrap made (its namespace, Secrets and EnvironmentSync, through git)
    #[command(subcommand, after_help = TENANT_EXAMPLES)]
    Tenant(TenantCommand),
    /// Move weaver's custom resources to the API version v1beta1: in the cluster (objects stored again, the CRDs' storedVersions narrowed), or in manifests with -f (exit 2 when something moved)
    #[command(after_help = MIGRATE_EXAMPLES)]
    Migrate(MigrateArgs),
    /// Render a weaver chart's templates for the process that started it (`--max-render-memory`): lines of JSON on stdin and stdout
    #[command(hide = true)]
    RenderWorker,
}

const INIT_EXAMPLES: &str = "Examples:
  weaver init shop-deploy                     # a new repository in shop-deploy/: environment dev, your age key (or a new one)
  weaver init --env staging -n shop-staging   # in this directory (--repo): environment staging, namespace shop-staging
  weaver init shop-deploy --key-file ~/keys/shop.txt -o json
  weaver init shop-deploy --no-key --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to write the repository into, made when missing [default: --repo]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The first environment: its file environments/NAME.yaml and secrets/NAME.yaml (and its namespace unless --namespace)
    #[arg(long, value_name = "NAME", default_value = "dev")]
    pub env: String,
    /// The environment's namespace, where its apply lock (a Lease) lives too [default: --env]
    #[arg(short, long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Write a new age key to this file, outside the repository and never over a file, instead of encrypting to the keys you hold (WEAVER_AGE_KEY_FILE, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, sops's keys.txt; with none, a new key goes to sops's keys.txt)
    #[arg(long, value_name = "PATH", conflicts_with = "no_key")]
    pub key_file: Option<PathBuf>,
    /// Make no key: encrypt to the keys you hold, given with --recipient
    #[arg(long, requires = "recipient")]
    pub no_key: bool,
    /// An age public key (age1…) to encrypt to instead of a new key's; repeatable; needs --no-key
    #[arg(long, value_name = "RECIPIENT", requires = "no_key")]
    pub recipient: Vec<String>,
    /// Output format: the files written, or JSON for scripts
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

const CHECK_EXAMPLES: &str = "Examples:
  weaver check --pre                          # before installing: the server's version and clock, your rights
  weaver check                                # the installation in weaver-system
  weaver check -n platform -o json";

const INSTALL_EXAMPLES: &str = "Examples:
  weaver install --wait                       # into weaver-system, then wait for its pods
  weaver install -f weaver-values.yaml --set gitops.ui.enabled=true
  weaver install --dry-run > weaver.yaml      # the objects, reading no cluster";
const MIGRATE_EXAMPLES: &str = "Examples:
  weaver migrate                              # the cluster's EnvironmentSyncs and ConfigMapSyncs, stored at v1beta1
  weaver migrate -f clusters/                 # the v1alpha1 manifests under clusters/, rewritten to v1beta1
  weaver migrate -f . --dry-run               # which files would be rewritten";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Rewrite the v1alpha1 EnvironmentSync and ConfigMapSync manifests of the YAML files under
    /// this directory instead (only their apiVersion lines change)
    #[arg(short = 'f', long = "filename", value_name = "DIR")]
    pub filename: Option<PathBuf>,
    /// Say what would move, and move nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

const UNINSTALL_EXAMPLES: &str = "Examples:
  weaver uninstall                            # the controller; CRDs and custom resources stay
  weaver uninstall --crds                     # also every EnvironmentSync and ConfigMapSync, then the CRDs";

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The controller's namespace (created when missing)
    #[arg(short, long, value_name = "NAMESPACE", default_value = weaver_engine::action::install::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Print the objects it would apply, as YAML, reading no cluster
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub readiness: ReadinessArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub target: InstallTargetArgs,
}

// The values over the chart built in, and the cluster it goes to: `weaver install` and
// `weaver bootstrap`.
#[derive(Debug, Args)]
pub struct InstallTargetArgs {
    #[command(flatten)]
    pub overrides: OverrideArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

const BOOTSTRAP_EXAMPLES: &str = "Examples:
  weaver bootstrap --url ssh://git@github.com/acme/fleet.git --path clusters/prod --private-key-file ~/.ssh/weaver-prod
  weaver bootstrap --url ssh://git@github.com/acme/fleet.git --path clusters/prod --private-key-file ~/.ssh/weaver-prod --generate-key   # a new deploy key, to add to the repository
  weaver bootstrap --url https://gitlab.com/acme/fleet.git --path clusters/prod --token-file token.txt
  weaver bootstrap --url ssh://git@github.com/acme/fleet.git --path clusters/prod --recover   # a lost cluster, again";

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The repository: ssh://user@host/path, user@host:path or https://host/path
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The branch weaver commits to and runs from
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub branch: String,
    /// The directory of the repository weaver's own environment and chart go to
    #[arg(long, value_name = "DIR")]
    pub path: String,
    /// The controller's namespace
    #[arg(short, long, value_name = "NAMESPACE", default_value = weaver_engine::action::install::DEFAULT_NAMESPACE)]
    pub namespace: String,
    #[command(flatten)]
    pub access: GitAccessArgs,
    /// Reinstall a cluster from the repository as it is, writing nothing to git
    #[arg(long)]
    pub recover: bool,
    /// The commits' author
    #[arg(long, value_name = "NAME", default_value = "weaver bootstrap")]
    pub author_name: String,
    /// The commits' author's email
    #[arg(long, value_name = "EMAIL", default_value = "weaver-bootstrap@localhost")]
    pub author_email: String,
    /// How long the install and its EnvironmentSync may take to be ready
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub target: InstallTargetArgs,
}

// How a repository is reached: weaver's own (`weaver bootstrap`, which writes to it) or a
// tenant's (`weaver tenant add`, which the tenant's EnvironmentSync reads).
#[derive(Debug, Args)]
pub struct GitAccessArgs {
    /// An ssh deploy key of the repository (an unencrypted ed25519 or ECDSA key, OpenSSH or PEM): with write access for bootstrap, read access for a tenant
    #[arg(long, value_name = "FILE", conflicts_with = "token_file")]
    pub private_key_file: Option<PathBuf>,
    /// Write a new ed25519 deploy key to --private-key-file, which must not exist yet, and print its public key: add it to the repository (with write access for bootstrap, then run it again without this flag)
    #[arg(long, requires = "private_key_file")]
    pub generate_key: bool,
    /// The ssh server's host keys, as known_hosts lines (default: the key the server shows, printed with its fingerprint)
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// An https token (its first line): with write access for bootstrap, read access for a tenant
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The user name sent with --token-file
    #[arg(long, value_name = "NAME", default_value = "git")]
    pub username: String,
    /// The https server's CA certificates (PEM), when no public CA signed its certificate
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

const TENANT_EXAMPLES: &str = "Examples:
  weaver tenant add shop --source-url ssh://git@github.com/acme/shop.git --environment prod --private-key-file shop-key --age-key-file shop.agekey
  weaver tenant add shop --source-url https://github.com/acme/shop.git --source-path deploy --environment staging --environment prod";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum TenantCommand {
    /// Connect a team's repository to the controller weaver bootstrap made: the tenant's namespace and Secrets in the cluster, and a release of charts/environment-sync (its ServiceAccount, RBAC and EnvironmentSync) pushed to the controller's environment, which the controller then applies (a second run writes nothing)
    #[command(after_help = TENANT_EXAMPLES)]
    Add(TenantAddArgs),
}

#[derive(Debug, Args)]
pub struct TenantAddArgs {
    /// The tenant's name: its release's, ServiceAccount's and EnvironmentSync's
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The tenant's namespace: its EnvironmentSync's and Secrets', where its environments deploy [default: NAME]
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The controller's namespace: its EnvironmentSync `weaver` names the repository, branch and path weaver runs from, and its Secret the credentials to push there
    #[arg(long, value_name = "NAMESPACE", default_value = weaver_engine::action::install::DEFAULT_NAMESPACE)]
    pub controller_namespace: String,
    /// The tenant's repository: ssh://user@host/path, user@host:path or https://host/path
    #[arg(long, value_name = "URL")]
    pub source_url: String,
    /// Its branch to apply
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub source_branch: String,
    /// The directory of its environments/ and charts/ in it [default: the top]
    #[arg(long, value_name = "DIR")]
    pub source_path: Option<String>,
    /// An environment of it to keep applied (repeatable)
    #[arg(long, value_name = "ENV", required = true)]
    pub environment: Vec<String>,
    /// How the tenant's repository is read [default: it is public]
    #[command(flatten)]
    pub access: GitAccessArgs,
    /// The age identities its environments' secrets decrypt with (an age identity file)
    #[arg(long, value_name = "FILE")]
    pub age_key_file: Option<PathBuf>,
    /// The commit's author
    #[arg(long, value_name = "NAME", default_value = "weaver tenant add")]
    pub author_name: String,
    /// The commit's author's email
    #[arg(long, value_name = "EMAIL", default_value = "weaver-bootstrap@localhost")]
    pub author_email: String,
    /// How long the git work may take
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The controller's namespace
    #[arg(short, long, value_name = "NAMESPACE", default_value = weaver_engine::action::install::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Also delete every EnvironmentSync and ConfigMapSync object of the cluster, in every namespace, another install's too (while the controller runs to finalize them), then the CRDs
    #[arg(long)]
    pub crds: bool,
    /// How long custom resources may take to go (--crds)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Before an install: check the server and what you may install, not an installation
    #[arg(long)]
    pub pre: bool,
    /// The namespace the controller runs in
    #[arg(short, long, value_name = "NAMESPACE", default_value = "weaver-system")]
    pub namespace: String,
    /// Output format: a line per check, or JSON for pipelines
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The examples that end each command's `--help` (tests/reference.rs parses every one).
const RENDER_EXAMPLES: &str = "Examples:
  weaver render --env dev                     # every release of dev, as one YAML stream
  weaver render --env dev,staging             # a fleet: each environment's stream in turn
  weaver render --env prod -r web             # only the web release
  weaver render --env prod --output-dir out/  # one file per object";
const HYDRATE_EXAMPLES: &str = "Examples:
  weaver hydrate --env dev --out hydrated/              # hydrated/dev/<release>.yaml
  weaver hydrate --env-selector tier=prod --branch hydrated   # a commit on branch `hydrated`
  weaver hydrate --env prod --branch hydrated --secrets omit -o json
  weaver hydrate --env prod --oci ghcr.io/org/shop-hydrated:prod   # a Flux OCI artifact";
const ENVS_EXAMPLES: &str = "Examples:
  weaver envs
  weaver envs --env \"prod-*\" --env-selector tier=prod
  weaver envs --rev HEAD~2 -o json";
const CHANGED_EXAMPLES: &str = "Examples:
  weaver changed --base origin/main           # against the working tree
  weaver changed --base \"$BASE\" --head HEAD -o json
  weaver changed --base origin/main --env-selector tier=prod   # only these environments";
const SECRETS_EXAMPLES: &str = "Examples:
  weaver secrets encrypt secrets/dev.yaml
  weaver secrets edit secrets/dev.yaml
  printf '%s' \"$DB_PASSWORD\" | weaver secrets set secrets/dev.yaml app.password
  <tls.key weaver secrets set secrets/dev.yaml app.tlsKey --keep-newline   # the file's bytes as they are
  weaver secrets decrypt secrets/dev.yaml";
const DIFF_EXAMPLES: &str = "Examples:
  weaver diff --env dev
  weaver diff --env prod -o markdown > plan.md
  weaver diff --env-selector tier=prod -o json    # a fleet: every prod environment in one plan
  weaver diff --env dev --live-from tests/fixtures/live-dev.yaml   # offline, against a file
  weaver diff --env-selector tier=prod --base origin/main -o markdown   # a pull request";
const APPLY_EXAMPLES: &str = "Examples:
  weaver apply --env dev
  weaver apply --env prod --rev HEAD --changed-since origin/main --wait
  weaver apply --env-selector tier=prod --wait --fail-fast   # a fleet, wave by wave";
const HISTORY_EXAMPLES: &str = "Examples:
  weaver history --env dev web
  weaver history --env dev web -o json";
const ROLLBACK_EXAMPLES: &str = "Examples:
  weaver rollback --env dev web      # the revision deployed before the current one
  weaver rollback --env dev web 3";
const DRIFT_EXAMPLES: &str = "Examples:
  weaver drift --env prod
  weaver drift --env prod -o junit > drift.xml
  weaver drift --env \"prod-*\" -o junit > drift.xml    # a testsuite per environment";
const STATUS_EXAMPLES: &str = "Examples:
  weaver status --env prod
  weaver status --env prod -r web -o json
  weaver status --env \"prod-*\"            # a fleet: a summary, then each environment";
const PROMOTE_EXAMPLES: &str = "Examples:
  weaver promote --to prod --dry-run                 # the gates and the change, nothing written
  weaver promote --to prod --body-file pr.md         # a commit on a new branch; pr.md, its pull request
  weaver promote --env-selector tier=prod --wave 1 -o json   # the first wave of prod environments";
const IMAGES_EXAMPLES: &str = "Examples:
  weaver images check                           # every environment with imageUpdates: (exit 2 when a tag is new)
  weaver images check --env dev -o json         # for pipelines
  weaver images update --env dev --dry-run      # the new pins and the plan, nothing written
  weaver images update --env dev --body-file pr.md   # a commit on a new branch; pr.md, its pull request";
const CHARTS_EXAMPLES: &str = "Examples:
  weaver charts lock            # pin new or changed constraints, pull them
  weaver charts fetch           # pull what charts.lock pins (CI, a fresh clone)";
const IMPORT_EXAMPLES: &str = "Examples:
  weaver import helmfile
  weaver import helmfile deploy/helmfile.yaml --force
  weaver import flux                          # the repository (--repo) is a Flux repository
  weaver import flux fleet/ --force           # the Flux repository in fleet/";
const REPORT_EXAMPLES: &str = "Examples:
  weaver diff --env \"*\" --shard 2/4 -o json > diff-2.json   # on each of 4 runners
  weaver report merge diff-*.json -o markdown > comment.md     # then once, over every shard's file
  weaver report merge apply-wave-0.json apply-wave-1.json      # a fleet applied wave by wave";
const COMPLETIONS_EXAMPLES: &str = "Examples:
  echo 'source <(weaver completions bash)' >> ~/.bashrc
  weaver completions fish > ~/.config/fish/completions/weaver.fish";
const OPERATOR_EXAMPLES: &str = "Examples:
  weaver operator crd | kubectl apply --server-side -f -
  weaver operator run --context my-cluster --log-format json";
const SYNC_EXAMPLES: &str = "Examples:
  weaver sync get -A                          # every EnvironmentSync, exit 2 unless all are ready
  weaver sync get shop -n flux-system         # one, with its environments, previews, pending plan and history
  weaver sync reconcile shop -n flux-system --timeout 10m
  weaver sync suspend shop -n flux-system
  weaver sync approve shop -n flux-system --digest sha256:3f2a…   # only the plan you looked at";
const PREVIEWS_EXAMPLES: &str = "Examples:
  weaver previews list -A                     # every EnvironmentSync's previews
  weaver previews list --sync shop -n team-shop -o json
  weaver previews delete login-form --sync shop -n team-shop --wait   # made again by a push to its branch";

const UI_EXAMPLES: &str = "Examples:
  weaver ui                                   # http://127.0.0.1:8080/: every namespace's EnvironmentSyncs, this repository's environments
  weaver ui -n flux-system --address 127.0.0.1:9090
  weaver ui --context staging --identity ~/.config/weaver/age.key";

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The loopback address and port to serve on (127.0.0.1 or ::1; port 0: any free one)
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8080")]
    pub address: std::net::SocketAddr,
    /// Only the EnvironmentSyncs of this namespace [default: every namespace]
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// How many requests a page keeps in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SyncCommand {
    /// List EnvironmentSyncs and their state; with a NAME, also its environments, previews, pending plan and history (exit 0 when every one listed is ready, 2 when one is not)
    Get(SyncGetArgs),
    /// Ask the controller to reconcile an EnvironmentSync now, and wait for the outcome (exit 0 ready, 2 not ready, 1 on timeout)
    Reconcile(SyncReconcileArgs),
    /// Stop the controller fetching and applying an EnvironmentSync (spec.suspend: true)
    Suspend(SyncNameArgs),
    /// Let the controller fetch and apply an EnvironmentSync again, and ask it for a reconcile
    Resume(SyncNameArgs),
    /// Approve the plan an EnvironmentSync waits with (spec.approval: Manual): spec.approvedPlan set to its digest
    Approve(SyncApproveArgs),
}

// Where the EnvironmentSyncs are.
#[derive(Debug, Args)]
pub struct SyncNamespaceArgs {
    /// The namespace [default: the context's namespace, else default]
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

// One EnvironmentSync: its name, and where it is.
#[derive(Debug, Args)]
pub struct SyncObjectArgs {
    /// The EnvironmentSync
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub namespace: SyncNamespaceArgs,
}

#[derive(Debug, Args)]
pub struct SyncGetArgs {
    /// Only this EnvironmentSync, shown in full
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub namespace: SyncNamespaceArgs,
    /// Those of every namespace
    #[arg(short = 'A', long, conflicts_with_all = ["name", "namespace"])]
    pub all_namespaces: bool,
    /// Only those whose labels match (k=v, k!=v, k in (a,b), k, !k)
    #[arg(short = 'l', long, value_name = "SELECTOR", conflicts_with = "name")]
    pub selector: Option<String>,
    /// Output format: a table, or a report as JSON or YAML
    #[arg(short, long, value_enum, default_value_t = SyncFormat::Text)]
    pub output: SyncFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct SyncReconcileArgs {
    #[command(flatten)]
    pub sync: SyncObjectArgs,
    /// How long to wait for the controller to handle the request
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Only ask for the reconcile; do not wait for it
    #[arg(long, conflicts_with = "timeout")]
    pub no_wait: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct SyncNameArgs {
    #[command(flatten)]
    pub sync: SyncObjectArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct SyncApproveArgs {
    #[command(flatten)]
    pub sync: SyncObjectArgs,
    /// The digest of the plan you looked at (`weaver sync get NAME`): refused when the plan waiting is another
    #[arg(long, value_name = "sha256:…")]
    pub digest: Option<String>,
    /// Approve without asking (needed without a terminal)
    #[arg(short, long)]
    pub yes: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PreviewsCommand {
    /// List the previews of the EnvironmentSyncs as their status says them: sync, name, branch, commit, state, namespace, URL and message (exit 0, 1 on error)
    List(PreviewsListArgs),
    /// Ask the controller to delete a preview, as when its branch goes (its objects and namespace); it stays Deleted until a push to its branch
    Delete(PreviewsDeleteArgs),
}

#[derive(Debug, Args)]
pub struct PreviewsListArgs {
    #[command(flatten)]
    pub namespace: SyncNamespaceArgs,
    /// The previews of every namespace's EnvironmentSyncs
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "sync"])]
    pub all_namespaces: bool,
    /// Only the previews of this EnvironmentSync
    #[arg(long, value_name = "NAME")]
    pub sync: Option<String>,
    /// Output format: a table, or a report as JSON or YAML
    #[arg(short, long, value_enum, default_value_t = SyncFormat::Text)]
    pub output: SyncFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct PreviewsDeleteArgs {
    /// The preview, as `weaver previews list` names it
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Its EnvironmentSync
    #[arg(long, value_name = "NAME")]
    pub sync: String,
    #[command(flatten)]
    pub namespace: SyncNamespaceArgs,
    /// Wait until the EnvironmentSync's status says the preview is deleted
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits for the controller
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "wait")]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum OperatorCommand {
    /// Run the controller until SIGTERM or Ctrl-C (uses --kubeconfig and --context like other commands)
    // Boxed: its flags (the web UI's OIDC ones among them) make it the largest of the commands.
    Run(Box<OperatorRunArgs>),
    /// Print the CustomResourceDefinitions the controllers serve (generated from their types)
    Crd(OperatorCrdArgs),
}

#[derive(Debug, Args)]
pub struct OperatorCrdArgs {
    /// Only this kind's CRD [default: every one, as a YAML stream]
    #[arg(value_enum, value_name = "KIND")]
    pub kind: Option<ControllerKind>,
}

/// The controllers `weaver operator run` can run, by the kind each reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ControllerKind {
    /// ConfigMapSync: copies a ConfigMap into other namespaces
    Configmapsync,
    /// EnvironmentSync: applies environments pulled from git
    Environmentsync,
}

#[derive(Debug, Args)]
pub struct OperatorRunArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub http: HttpLimitArgs,
    /// Log format: human-readable text, or one JSON object per line
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which controllers to run
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS",
          default_values_t = [ControllerKind::Configmapsync, ControllerKind::Environmentsync])]
    pub controllers: Vec<ControllerKind>,
    /// Only reconcile objects whose labels match (to shard them between operators, such as
    /// weaver.example.com/shard=a)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Reconcile only objects labelled weaver.example.com/shard=NAME, electing a leader on a
    /// Lease of this shard's own, so shards run side by side
    #[arg(long, value_name = "NAME", value_parser = shard_name)]
    pub shard: Option<String>,
    /// Reconcile only while holding the leader Lease, so replicas are safe
    #[arg(long)]
    pub leader_elect: bool,
    /// Where the leader Lease lives [default: $POD_NAMESPACE]
    #[arg(long, value_name = "NAMESPACE", requires = "leader_elect")]
    pub leader_election_namespace: Option<String>,
    /// How long the leader Lease stays held by a replica that stopped renewing it (killed, cut
    /// off from the API server): another replica leads after this
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = lease_duration, requires = "leader_elect")]
    pub leader_election_lease_duration: std::time::Duration,
    /// The Deployment whose replica this is (the chart's): during its rollouts a replica of an
    /// older revision leaves a free leader Lease to the new ones for up to a lease duration.
    /// Needs POD_NAMESPACE and POD_TEMPLATE_HASH (its Pod's pod-template-hash label)
    #[arg(long, value_name = "NAME", requires = "leader_elect")]
    pub leader_election_deployment: Option<String>,
    /// How long an environment's lock stays held by a replica that stopped renewing it: the next
    /// apply of that environment (another replica's, the CLI's) waits this long after the last
    /// renewal
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = lease_duration)]
    pub lock_lease_duration: std::time::Duration,
    /// Where to serve /healthz, /readyz and /metrics (0.0.0.0 or [::]: every address, IPv6 and IPv4)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Also serve /healthz and /readyz here, for the kubelet's probes alone: a flood of the
    /// metrics port then cannot fail them [default: only on --metrics-addr]
    #[arg(long, value_name = "ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,
    /// Where to receive git hosts' webhooks, POST /hook/NAMESPACE/NAME, each asking for a
    /// reconcile of that EnvironmentSync now [default: not served]
    #[arg(long, value_name = "ADDR")]
    pub webhook_addr: Option<std::net::SocketAddr>,
    /// Where to serve the EnvironmentSync CRD's conversion webhook (HTTPS, POST /convert),
    /// which converts EnvironmentSyncs between v1alpha1 and v1beta1; every replica serves it,
    /// and each sets the CRD's conversion to --conversion-service [default: not served]
    #[arg(long, value_name = "ADDR", requires = "conversion_service")]
    pub conversion_addr: Option<std::net::SocketAddr>,
    /// The Service of the controller's namespace (POD_NAMESPACE), port 443, in front of
    /// --conversion-addr: the CRD's conversion webhook, and the name its certificate is for
    /// (NAME.NAMESPACE.svc)
    #[arg(long, value_name = "NAME", requires = "conversion_addr")]
    pub conversion_service: Option<String>,
    /// The Secret of the controller's namespace that holds the conversion webhook's
    /// certificates, made and renewed by the controller
    #[arg(long, value_name = "NAME", default_value = "weaver-conversion-tls")]
    pub conversion_secret: String,
    /// The proxies in front of the webhook receiver (an Ingress controller's pods), as address
    /// blocks (10.0.0.0/8,fd00::/8): from these peers the client's address, which the throttle of
    /// unverified requests counts, is read from X-Forwarded-For [default: none; the peer is the
    /// client]
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',', requires = "webhook_addr")]
    pub webhook_trusted_proxies: Vec<weaver_controllers::proxy::Cidr>,
    /// Where to serve the web UI of the EnvironmentSyncs (`weaver ui`'s pages): users sign in
    /// with a token the API server accepts or, with --ui-oidc-issuer, at an OIDC provider, and
    /// see and do what RBAC lets them [default: not served]
    #[arg(long, value_name = "ADDR")]
    pub ui_address: Option<std::net::SocketAddr>,
    /// The proxies in front of the web UI (an Ingress controller's pods), as address blocks
    /// (10.0.0.0/8,fd00::/8): from these peers the client's address, which the sign-in rate
    /// limit counts, is read from X-Forwarded-For [default: none; the peer is the client]
    #[arg(long, value_name = "CIDR,...", value_delimiter = ',', requires = "ui_address")]
    pub ui_trusted_proxies: Vec<weaver_ui::proxy::Cidr>,
    /// How often the web UI asks the API server again whether a signed-in user's token is
    /// still accepted: a token revoked signs its user out within this
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub ui_review_every: std::time::Duration,
    /// How long a web UI session lasts at most after sign-in, however it is kept alive (an OIDC
    /// provider's refresh tokens)
    #[arg(long, value_name = "DURATION", default_value = "8h", value_parser = parse_duration, requires = "ui_address")]
    pub ui_session_max_age: std::time::Duration,
    /// The web UI's URL as browsers reach it (https://weaver.example.org): the OIDC redirect
    /// URI is URL/oidc/callback, the post-logout one URL/sign-in
    #[arg(long, value_name = "URL", requires = "ui_address")]
    pub ui_url: Option<String>,
    /// The OIDC provider users sign in to the web UI at, as its ID tokens' `iss` (with
    /// --ui-oidc-client-id and --ui-url) [default: tokens only]
    #[arg(long, value_name = "URL", requires = "ui_address")]
    pub ui_oidc_issuer: Option<String>,
    /// The web UI's client id at the OIDC provider
    #[arg(long, value_name = "ID", requires = "ui_address")]
    pub ui_oidc_client_id: Option<String>,
    /// A file holding the web UI's client secret at the OIDC provider (a mounted Secret)
    /// [default: none; a public client, PKCE only]
    #[arg(long, value_name = "PATH", requires = "ui_address")]
    pub ui_oidc_client_secret_file: Option<PathBuf>,
    /// Scopes asked of the OIDC provider besides openid
    #[arg(
        long,
        value_name = "SCOPE,...",
        value_delimiter = ',',
        default_value = "email,profile",
        requires = "ui_address"
    )]
    pub ui_oidc_scopes: Vec<String>,
    /// The ID token claim that names the Kubernetes user, as kube-apiserver's --oidc-username-claim
    #[arg(long, value_name = "CLAIM", default_value = "sub", requires = "ui_address")]
    pub ui_oidc_username_claim: String,
    /// The prefix of user names, as kube-apiserver's --oidc-username-prefix; `-` for none
    /// [default: ISSUER# unless the claim is email]
    #[arg(long, value_name = "PREFIX", requires = "ui_address")]
    pub ui_oidc_username_prefix: Option<String>,
    /// The ID token claim that names the user's groups (a string or a list of strings)
    /// [default: none; no groups]
    #[arg(long, value_name = "CLAIM", requires = "ui_address")]
    pub ui_oidc_groups_claim: Option<String>,
    /// The prefix of group names, as kube-apiserver's --oidc-groups-prefix [default: none]
    #[arg(long, value_name = "PREFIX", default_value = "", hide_default_value = true, requires = "ui_address")]
    pub ui_oidc_groups_prefix: String,
    /// A claim the ID token must have with this value (repeatable), as kube-apiserver's
    /// --oidc-required-claim
    #[arg(long, value_name = "CLAIM=VALUE", value_parser = claim_value, requires = "ui_address")]
    pub ui_oidc_required_claim: Vec<(String, String)>,
    /// A PEM file of the CA the OIDC provider's certificate is checked against [default: the
    /// public web's roots]
    #[arg(long, value_name = "PATH", requires = "ui_address")]
    pub ui_oidc_ca_file: Option<PathBuf>,
    /// How many ConfigMapSyncs to reconcile at once
    #[arg(long, value_name = "N", default_value_t = weaver_controllers::configmapsync::controller::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_concurrent_reconciles: u16,
    /// How many EnvironmentSyncs to reconcile at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub concurrent: u16,
    /// The ServiceAccount (of its own namespace) an EnvironmentSync without
    /// spec.serviceAccountName applies as [default: none; such an EnvironmentSync is refused]
    #[arg(long, value_name = "NAME")]
    pub default_service_account: Option<String>,
    /// Let an EnvironmentSync's dependsOn name EnvironmentSyncs of other namespaces
    #[arg(long)]
    pub allow_cross_namespace_refs: bool,
    /// Where the git mirrors of EnvironmentSyncs' sources and their remote charts (in
    /// charts/) are kept [default: $TMPDIR/weaver-cache]
    #[arg(long, visible_alias = "git-cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The git mirrors', chart archives' and unpacked OCI sources' total size in MiB; past it, the
    /// least recently used that no reconcile is reading are removed
    #[arg(long, visible_alias = "git-cache-max-mib", value_name = "MIB", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_max_mib: u64,
    /// Requests a second to the API server, on average (as client-go's QPS); tenants' writes count.
    /// Without it or --kube-api-burst: none where the server runs API Priority and Fairness (it
    /// queues and sheds load itself), else 50
    #[arg(long, value_name = "QPS", value_parser = positive_rate)]
    pub kube_api_qps: Option<f64>,
    /// Requests at once above that rate (as client-go's Burst) [default: 300]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_burst: Option<u32>,
    #[command(flatten)]
    pub render: OperatorRenderArgs,
}

// The controller's bounds on rendering a tenant's repository, which is not trusted (see the
// security guide); each render also stops at its EnvironmentSync's spec.timeout.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rendering tenants' repositories")]
pub struct OperatorRenderArgs {
    /// The most bytes one release may render (its templates' output together), and one string
    /// a Go template may make
    #[arg(long, value_name = "BYTES", default_value_t = weaver_controllers::gitops::renders::MAX_RENDERED_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_rendered_bytes: usize,
    /// The most bytes of each file a render reads (valuesFiles, substituteFrom, and every file of
    /// a chart or kustomization), told by its size before it is read
    #[arg(long, value_name = "BYTES", default_value_t = weaver_controllers::gitops::renders::MAX_VALUES_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_values_bytes: usize,
    /// The most instructions one template of a weaver chart may run (minijinja's fuel)
    #[arg(long, value_name = "N", default_value_t = weaver_controllers::gitops::renders::MAX_TEMPLATE_STEPS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_template_steps: u64,
    /// The most bytes of memory a render's worker process may take: weaver charts' and Helm
    /// charts' templates render in one of their own (a string or a list a template grows in a
    /// loop, where no other bound sees it)
    #[arg(long, value_name = "BYTES", default_value_t = weaver_controllers::gitops::renders::MAX_RENDER_MEMORY,
          value_parser = clap::value_parser!(u64).range(16 << 20..))]
    pub max_render_memory: u64,
}

/// A shard's name: a DNS label, as it becomes a label value and part of a Lease's name.
fn shard_name(text: &str) -> Result<String, String> {
    let label = regex::Regex::new("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$").expect("a valid pattern");
    match label.is_match(text) {
        true => Ok(text.to_string()),
        false => {
            Err("expected a DNS label of at most 40 characters (lower-case letters, digits and -), such as a or eu-1"
                .into())
        }
    }
}

/// A `CLAIM=VALUE` pair (`--ui-oidc-required-claim`).
fn claim_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((claim, value)) if !claim.is_empty() => Ok((claim.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not CLAIM=VALUE")),
    }
}

/// A Lease's duration: whole seconds on the server, so at least one.
fn lease_duration(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        duration if duration.as_secs() >= 1 => Ok(duration),
        _ => Err(format!("`{text}` is shorter than a second: a Lease counts whole seconds")),
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(qps) if qps.is_finite() && qps >= 0.001 => Ok(qps),
        _ => Err("expected a number of requests a second, at least 0.001 (such as 20 or 0.5)".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImportCommand {
    /// Convert a helmfile.yaml into environments/*.yaml; list what has no weaver equivalent
    Helmfile(ImportHelmfileArgs),
    /// Convert a Flux repository (Kustomizations, HelmReleases and their sources) into one environment per cluster; list what has no weaver equivalent
    Flux(ImportFluxArgs),
}

// What an import may write over, and how it reports: both imports' flags.
#[derive(Debug, Args)]
pub struct ImportReplaceArgs {
    /// Replace files that a previous import wrote and nobody changed since (weaver-import.lock lists them); never any other file
    #[arg(long)]
    pub force: bool,
    /// Output format: the files written (what was not converted on stderr), or JSON for scripts, every place listed
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct ImportFluxArgs {
    /// The Flux repository's root, where its Kustomizations' paths start, relative to the current directory and inside --repo [default: --repo]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub replace: ImportReplaceArgs,
    /// The clusters' directory (each subdirectory a cluster), or one cluster's (a directory holding its YAML files), relative to the Flux repository's root, instead of the ones the import finds
    #[arg(long, value_name = "PATH")]
    pub clusters: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportHelmfileArgs {
    /// The helmfile, relative to the current directory [default: helmfile.yaml, or helmfile.yaml.gotmpl when there is none]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub replace: ImportReplaceArgs,
}

const PUSH_EXAMPLES: &str = "Examples:
  weaver push artifact oci://ghcr.io/org/shop-deploy:main            # HEAD's tracked files
  weaver push artifact oci://ghcr.io/org/shop-deploy:v1.4.0 --rev v1.4.0
  weaver push artifact oci://127.0.0.1:5000/shop:latest --plain-http -o json";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PushCommand {
    /// Pack the weaver repository's tracked files at a commit (HEAD, or --rev) into an OCI artifact in Flux's format and push it to REGISTRY/REPO:TAG; prints its digest
    Artifact(PushArtifactArgs),
}

#[derive(Debug, Args)]
pub struct PushArtifactArgs {
    /// Where to push: REGISTRY/REPO:TAG (`oci://` before it or not); credentials as for hydrate --oci (the credentials file, docker's config)
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Talk to the registry over plain http, not https (as helm's --plain-http)
    #[arg(long)]
    pub plain_http: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ReportCommand {
    /// Combine the `-o json` reports of a fleet's shards (`--shard`, `--wave`) of one command and commit into the fleet's report (exit 1 when an environment failed, 2 when one has changes or drift)
    Merge(ReportMergeArgs),
}

#[derive(Debug, Args)]
pub struct ReportMergeArgs {
    /// The shards' reports: `weaver diff`, `drift` or `apply` of a fleet with `-o json`
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format: text, json, markdown (diff) or junit (drift), as the command itself offers them
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    Junit,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ChartsCommand {
    /// Resolve each remote chart's version constraint, pin it in charts.lock and pull it into the cache
    Lock(ChartsLockArgs),
    /// Pull the charts charts.lock pins into the cache, verifying their digests (CI, fresh clones)
    Fetch(ChartsFetchArgs),
}

#[derive(Debug, Args)]
pub struct ChartsFetchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ChartsLockArgs {
    /// Resolve every chart again (the newest version its constraint allows), not only new ones
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SecretsCommand {
    /// Encrypt a plaintext YAML or JSON file in place, to the recipients of secrets/.sops.yaml or --age
    Encrypt(SecretsFileArgs),
    /// Print the decrypted file (or write it back with --in-place)
    Decrypt(DecryptArgs),
    /// Decrypt into a private temporary file, open $EDITOR, re-encrypt
    Edit(ReencryptArgs),
    /// Set one value, read from stdin (one trailing newline removed unless --keep-newline), and re-encrypt; the value is never printed
    Set(SetArgs),
    /// Re-encrypt every value with a new data key
    Rotate(ReencryptArgs),
    /// Re-wrap the data key for the recipients the rules (or --age) now give
    Updatekeys(ReencryptArgs),
}

// A file to decrypt and encrypt again.
#[derive(Debug, Args)]
pub struct ReencryptArgs {
    #[command(flatten)]
    pub target: SecretsFileArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The SOPS file, relative to the current directory; it must exist (`weaver secrets encrypt` makes one)
    pub file: PathBuf,
    /// Where the value goes: mapping keys joined by dots (`app.password`), or sops's `["app"]["tls.crt"]` for keys that hold a dot; missing mappings are added
    pub key: String,
    /// Keep the value's bytes exactly, trailing newline included (as `kubectl create secret --from-file`)
    #[arg(long)]
    pub keep_newline: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
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
    #[command(flatten)]
    pub identity: IdentityArgs,
}

// Which releases of which environments a command works on.
#[derive(Debug, Args)]
pub struct SelectArgs {
    #[command(flatten)]
    pub environments: EnvironmentArgs,
    #[command(flatten)]
    pub filter: ReleaseFilter,
    /// Only the releases `weaver changed --base REV` reports for this environment
    #[arg(long, value_name = "REV")]
    pub changed_since: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

// Which environments: by name, glob and labels.
#[derive(Debug, Args)]
pub struct EnvironmentArgs {
    /// The environment (a file environments/<ENV>.yaml); several (comma-separated or repeated) or a glob (prod-*) make a fleet
    #[arg(short, long = "env", value_name = "ENV", value_delimiter = ',',
          add = ArgValueCompleter::new(completion::environments))]
    pub envs: Vec<String>,
    #[command(flatten)]
    pub filter: EnvironmentFilterArgs,
    /// Of the selected environments, only part INDEX of COUNT, the same on every machine (1/4 … 4/4: one per CI runner)
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<weaver_engine::action::fleet::Shard>,
}

// Of the environments named (or every one when none is), those to take: by labels and wave.
#[derive(Debug, Args)]
pub struct EnvironmentFilterArgs {
    /// Only environments whose labels match (-l's syntax: tier=prod,region in (eu,us); repeatable)
    #[arg(long = "env-selector", value_name = "SELECTOR")]
    pub env_selectors: Vec<String>,
    /// Of the selected environments, only those of this wave (their `wave:`)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub wave: Option<i32>,
}

// Which releases of the environment, by name and by labels.
#[derive(Debug, Args)]
pub struct ReleaseFilter {
    /// Only this release (repeatable)
    #[arg(short = 'r', long = "release", value_name = "NAME", add = ArgValueCompleter::new(completion::releases))]
    pub releases: Vec<String>,
    /// Only releases whose labels match (k=v, k!=v, k in (a,b), k notin (a,b), k, !k; repeatable)
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selectors: Vec<String>,
}

// Which version of the repository a command reads.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Read the repository as it is in this commit (branch, tag, SHA, HEAD~2), without checking it out
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Refuse the --rev commit unless a key FILE lists signed it: an allowed_signers file (SSH) or armored OpenPGP keys
    #[arg(long, value_name = "FILE", requires = "rev")]
    pub verify_commits: Option<PathBuf>,
}

// Values given on the command line, over the repository's, as helm takes them (in helm's
// order of kinds: files, then --set-json, --set, --set-string, --set-file).
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Values options")]
pub struct OverrideArgs {
    /// A values file over the selected chart releases' values, relative to the current directory; - reads stdin (repeatable)
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set values: a.b=c,list[0]=x,tags={a,b}, typed as helm types them (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Set values, always as strings (repeatable)
    #[arg(long = "set-string", value_name = "NAME=VALUE")]
    pub set_string: Vec<String>,
    /// Set values written as JSON: a.b={"x":1} or a whole JSON object (repeatable)
    #[arg(long = "set-json", value_name = "NAME=JSON")]
    pub set_json: Vec<String>,
    /// Set values to a file's text: tls.ca=ca.pem (repeatable)
    #[arg(long = "set-file", value_name = "NAME=FILE")]
    pub set_file: Vec<String>,
}

// Offline schema validation of the rendered objects, as kubectl's `--validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Validate rendered objects offline: strict (problems are errors), warn, or ignore (also true, false)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ValidateChoice::Strict,
          num_args = 0..=1, require_equals = true, default_missing_value = "strict")]
    pub validate: ValidateChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateChoice {
    #[value(alias = "true")]
    Strict,
    Warn,
    #[value(alias = "false")]
    Ignore,
}

// What `render`, `diff` and `apply` render: which releases, validated how, with which values
// flags.
#[derive(Debug, Args)]
pub struct RenderFlags {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub validate: ValidateArgs,
    #[command(flatten)]
    pub limits: RenderLimitArgs,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

// Bounds on rendering, for a repository that is not trusted (as the controller bounds a
// tenant's): none by default. See the security guide.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Render limits options")]
pub struct RenderLimitArgs {
    /// Stop rendering after this long (e.g. 30s), templates' loops included: templates then
    /// render in processes of their own, killed at it if they have not stopped [default: none]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub render_timeout: Option<std::time::Duration>,
    /// The most bytes one release may render (its templates' output together), and one string
    /// a Go template may make [default: none]
    #[arg(long, value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_rendered_bytes: Option<usize>,
    /// The most bytes of each file a render reads (valuesFiles, substituteFrom, and every file of
    /// a chart or kustomization), told by its size before it is read [default: none]
    #[arg(long, value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_values_bytes: Option<usize>,
    /// The most instructions one template of a weaver chart may run (minijinja's fuel)
    /// [default: none]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_template_steps: Option<u64>,
    /// Render templates (weaver charts' and Helm charts') in processes of their own, each using
    /// at most this many bytes of memory (a string or a list a template grows in a loop, where
    /// no other bound sees it) [default: none, in this process]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(16 << 20..))]
    pub max_render_memory: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub render: RenderFlags,
    /// Write one file per object, DIR/<release>/<kind>-<name>.yaml, instead of printing (not
    /// the repository's root, charts/, environments/ or secrets/)
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Print Secret values and other decrypted values as they are (redacted by default)
    #[arg(long)]
    pub show_secrets: bool,
    /// Write `<redacted:…>` placeholders into --output-dir files (refused without this flag)
    #[arg(long, conflicts_with = "show_secrets")]
    pub redact: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct HydrateArgs {
    #[command(flatten)]
    pub environments: EnvironmentArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Write DIR/<env>/<release>.yaml and DIR/<env>/weaver-hydrate.metadata
    #[arg(long, value_name = "DIR", conflicts_with_all = ["branch", "oci"], required_unless_present_any = ["branch", "oci"])]
    pub out: Option<PathBuf>,
    /// Commit <env>/<release>.yaml to this branch of the repository (created if missing), without touching the working tree or the index
    #[arg(long, value_name = "NAME", conflicts_with = "oci")]
    pub branch: Option<String>,
    /// Push <env>/<release>.yaml as an OCI artifact in Flux's format to this tag (REGISTRY/REPO:TAG), keeping the other files the tag held
    #[arg(long, value_name = "REF")]
    pub oci: Option<String>,
    /// --oci: talk to the registry over plain http, not https (as helm's --plain-http)
    #[arg(long)]
    pub plain_http: bool,
    /// Secret objects: SOPS-encrypted to the environment's age recipients, or left out (named in the metadata)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = HydrateSecrets::Encrypt)]
    pub secrets: HydrateSecrets,
    #[command(flatten)]
    pub validate: ValidateArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HydrateSecrets {
    Encrypt,
    Omit,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub render: RenderFlags,
    /// Ask the API server: a server-side apply dry run of every object that differs
    #[arg(long, conflicts_with = "live_from")]
    pub server_side: bool,
    /// Diff against objects in a file (`kubectl get -o yaml` output or a YAML stream), offline
    #[arg(long, value_name = "FILE")]
    pub live_from: Option<PathBuf>,
    /// Diff against the render of this commit (a pull request's target branch, as `weaver changed --base`): the rendered objects before and after, without a cluster
    #[arg(long, value_name = "REV", conflicts_with_all = ["live_from", "server_side", "prune_releases"])]
    pub base: Option<String>,
    /// Output format: text, JSON for pipelines, Markdown for a pull-request comment, or one HTML page
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Text)]
    pub output: DiffFormat,
    /// Exit with 2 when an apply would change something (0 when not, 1 on error)
    #[arg(long)]
    pub exit_code: bool,
    /// How many requests to keep in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    /// Also show the removal of releases the environment no longer has (found by their records in every namespace)
    #[arg(long, conflicts_with_all = ["live_from", "releases", "selectors"])]
    pub prune_releases: bool,
    /// Show objects labelled as another environment's as an apply --take-ownership takes them (without it, they make the diff fail, as the apply would)
    #[arg(long)]
    pub take_ownership: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub render: RenderFlags,
    #[command(flatten)]
    pub apply: ApplyFlags,
    /// Refuse to apply from a working tree with uncommitted changes
    #[arg(long)]
    pub require_clean: bool,
    /// Apply the values options (--set, --values, …) although they are not in git; they are recorded
    #[arg(long)]
    pub allow_overrides: bool,
    /// Also remove releases the environment no longer has (found by their records in every namespace)
    #[arg(long, conflicts_with_all = ["releases", "selectors"])]
    pub prune_releases: bool,
    /// Apply objects labelled as another environment's (which are otherwise refused), making them this environment's
    #[arg(long)]
    pub take_ownership: bool,
    /// Once a release that adopts the Helm release of its name has applied, delete that Helm release's records (every sh.helm.release.v1.<release>.v<N> Secret)
    #[arg(long)]
    pub forget_helm_release: bool,
    /// A fleet: how many environments to apply at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_engine::action::fleet::PARALLEL_ENVIRONMENTS, value_parser = concurrency())]
    pub max_parallel: usize,
    /// A fleet: start no more environments once one failed (without it, only those that need a failed one are skipped)
    #[arg(long)]
    pub fail_fast: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

// How an apply waits for what it applied, and takes fields others own: what `apply`,
// `rollback` and `install` share.
#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// Wait until what was applied is ready (rollouts, Jobs, CRDs, PVCs, Ready conditions)
    #[arg(long)]
    pub wait: bool,
    /// How long each release may wait for readiness (and CRDs for Established)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Take fields that other field managers own instead of failing on the conflict
    #[arg(long)]
    pub force_conflicts: bool,
}

// What `apply` and `rollback` share.
#[derive(Debug, Args)]
pub struct ApplyFlags {
    /// Ask the API server to validate everything without changing anything (no record either)
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub readiness: ReadinessArgs,
    /// Keep objects the previous revision had and this one no longer has
    #[arg(long)]
    pub no_prune: bool,
    /// How many requests to keep in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    /// How long to wait for another apply of the environment to finish
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment (a file environments/<ENV>.yaml)
    #[arg(short, long = "env", value_name = "ENV", add = ArgValueCompleter::new(completion::environments))]
    pub env: String,
    /// The release
    #[arg(add = ArgValueCompleter::new(completion::releases))]
    pub release: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment (a file environments/<ENV>.yaml)
    #[arg(short, long = "env", value_name = "ENV", add = ArgValueCompleter::new(completion::environments))]
    pub env: String,
    /// The release
    #[arg(add = ArgValueCompleter::new(completion::releases))]
    pub release: String,
    /// The revision to re-apply (default: the one deployed before the current one)
    pub revision: Option<u32>,
    #[command(flatten)]
    pub apply: ApplyFlags,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format: text, JSON for pipelines, JUnit XML for CI dashboards, or one HTML page
    #[arg(short, long, value_enum, default_value_t = DriftFormat::Text)]
    pub output: DriftFormat,
    /// How many requests to keep in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    /// Put drifted objects back as the last deployed revision has them (not the repository's newer state): changed fields are applied again, deleted objects created again, nothing is pruned; takes the environment's lock and records a revision
    #[arg(long)]
    pub correct: bool,
    /// With --correct: ask the API server to validate the correction without changing anything (no lock, no record)
    #[arg(long, requires = "correct")]
    pub dry_run: bool,
    /// With --correct: how long to wait for an apply of the environment to finish
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "correct")]
    pub lock_timeout: std::time::Duration,
    /// With --correct: how long each release may wait for the CRDs it creates again to be Established (requests keep failing no longer than this either)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "correct")]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

// `weaver status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format: a table, or JSON for pipelines
    #[arg(short, long, value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// How many requests to keep in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The target environment(s): names (comma-separated or repeated) or globs (prod-*), each with a `promotion:`
    #[arg(long = "to", value_name = "ENV", value_delimiter = ',',
          add = ArgValueCompleter::new(completion::environments))]
    pub to: Vec<String>,
    #[command(flatten)]
    pub filter: EnvironmentFilterArgs,
    /// The commit the promotion reads and branches from (default HEAD)
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub proposal: ProposalArgs,
}

// The flags of the commands that propose new pins as a commit on a new branch, with the
// pull request's body: `weaver promote` and `weaver images update`.
#[derive(Debug, Args)]
pub struct ProposalArgs {
    /// Check, plan and show the change; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The new branch to commit to [default: weaver/<promote|images>-<environments>-<digest>]
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Also write the pull request's Markdown body to this file
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Output format: the pull request's Markdown body, or JSON for pipelines
    #[arg(short, long, value_enum, default_value_t = PromoteFormat::Markdown)]
    pub output: PromoteFormat,
    /// How many requests to keep in flight at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImagesCommand {
    /// Per environment and image: the tag pinned now, the newest its policy allows, and why other tags were not taken (exit 2 when a tag is new)
    Check(ImagesCheckArgs),
    /// Write the newest allowed tags as `tag@digest` pins of one environment, as a commit on a new branch with the pull request's body (exit 2 when written, 0 when nothing is new)
    Update(ImagesUpdateArgs),
}

#[derive(Debug, Args)]
#[command(mut_arg("envs", |arg| arg.help(
    "The environment(s): names (comma-separated or repeated) or globs [default: every one with `imageUpdates:`]"
)))]
pub struct ImagesCheckArgs {
    #[command(flatten)]
    pub environments: EnvironmentArgs,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = StatusFormat::Text)]
    pub output: StatusFormat,
    /// How many registries' repositories to ask at once (1 to 1000)
    #[arg(long, value_name = "N", default_value_t = weaver_cluster::DEFAULT_CONCURRENCY, value_parser = concurrency())]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct ImagesUpdateArgs {
    /// The environment whose pins are written
    #[arg(long = "env", value_name = "ENV", add = ArgValueCompleter::new(completion::environments))]
    pub env: String,
    #[command(flatten)]
    pub proposal: ProposalArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromoteFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftFormat {
    Text,
    Json,
    Junit,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
    Html,
}

// What one peer may cost each of the operator's servers (metrics, webhook, UI): see the
// security guide.
#[derive(Debug, Args)]
#[command(next_help_heading = "Serving (each of --metrics-addr, --webhook-addr, --ui-address)")]
pub struct HttpLimitArgs {
    /// Connections a server holds open at once; past it new ones are closed at once
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub http_max_connections: usize,
    /// Connections a server holds open at once from one client address (an Ingress
    /// controller's pod is one client)
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub http_max_connections_per_client: usize,
    /// How long a request's header may take to arrive, and a kept-alive connection may wait
    /// for its next request
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub http_header_timeout: std::time::Duration,
    /// How long a request's body may take to arrive
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub http_body_timeout: std::time::Duration,
    /// How long an answer may wait for the client to read more of it before the connection is
    /// closed
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub http_write_timeout: std::time::Duration,
    /// The largest request header, request line included (answered 431 past it)
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(8192..=1024 * 1024))]
    pub http_max_header_bytes: usize,
}

impl HttpLimitArgs {
    pub fn limits(&self) -> weaver_controllers::http::Limits {
        weaver_controllers::http::Limits {
            max_connections: self.http_max_connections,
            max_connections_per_client: self.http_max_connections_per_client,
            header_timeout: self.http_header_timeout,
            body_timeout: self.http_body_timeout,
            write_timeout: self.http_write_timeout,
            max_header_bytes: self.http_max_header_bytes,
        }
    }
}

/// `--concurrency`: at least one request in flight (0 would wait forever), at most 1000.
fn concurrency() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=1000)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EnvsArgs {
    #[command(flatten)]
    pub environments: EnvironmentArgs,
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
    #[command(flatten)]
    pub environments: EnvironmentArgs,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use weaver_project::MAX_DURATION;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn durations_kubectl_users_type() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
    }

    #[test]
    fn a_soak_time_takes_days_written_in_hours_as_go_writes_them() {
        use weaver_project::{MAX_SOAK_TIME, humanize, parse_duration_up_to};
        assert_eq!(parse_duration_up_to("72h", MAX_SOAK_TIME), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration_up_to("2160h", MAX_SOAK_TIME), Ok(MAX_SOAK_TIME));
        assert_eq!(
            parse_duration_up_to("2161h", MAX_SOAK_TIME).unwrap_err(),
            "`2161h` is too long: expected at most 2160h"
        );
        for days in ["3d", "1w", "3 days", "1d12h"] {
            let err = parse_duration_up_to(days, MAX_SOAK_TIME).unwrap_err();
            assert!(err.contains("counts days or longer") && err.contains("72h"), "{days}: {err}");
        }
        // What the evidence says reads back as the same duration.
        for text in ["72h", "1h30m", "25h0m5s", "45s", "500ms"] {
            let duration = parse_duration_up_to(text, MAX_SOAK_TIME).unwrap();
            assert_eq!(parse_duration_up_to(&humanize(duration), MAX_SOAK_TIME), Ok(duration), "{text}");
        }
        assert_eq!(humanize(Duration::from_secs(72 * 3600)), "72h");
        assert_eq!(humanize(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn out_of_range_zero_negative_and_malformed_durations_are_errors() {
        // These overflowed (a panic) or wrapped silently in the hand-written parser.
        assert!(parse_duration("18446744073709551615s1s").unwrap_err().contains("is not a duration"));
        assert!(parse_duration("307445734561825861m").is_err());
        assert!(parse_duration("5124095576030432h").is_err());
        assert_eq!(parse_duration("25h").unwrap_err(), "`25h` is too long: expected at most 24h");
        assert_eq!(parse_duration("0s").unwrap_err(), "`0s` is zero: expected a duration longer than zero, like 30s");
        assert!(parse_duration("-5s").unwrap_err().contains("is negative"));
        assert!(parse_duration("5s ago").unwrap_err().contains("is negative"));
        for bad in ["", "30", "5x", "s", "1m30", "abc"] {
            assert!(parse_duration(bad).unwrap_err().contains("is not a duration"), "{bad}");
        }
    }

    #[test]
    fn a_lease_lasts_a_second_or_more() {
        assert_eq!(lease_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(lease_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            lease_duration("999ms").unwrap_err(),
            "`999ms` is shorter than a second: a Lease counts whole seconds"
        );
        assert!(lease_duration("0s").unwrap_err().contains("is zero"));
    }

    proptest! {
        #[test]
        fn any_text_is_a_duration_in_range_or_an_error_naming_it(text in any::<String>()) {
            match parse_duration(&text) {
                Ok(duration) => prop_assert!(duration > std::time::Duration::ZERO && duration <= MAX_DURATION),
                Err(message) => prop_assert!(message.starts_with(&format!("`{text}`")), "{}", message),
            }
        }

        #[test]
        fn any_digits_and_units_are_a_duration_in_range_or_an_error(text in "[0-9]{1,25}(ms|s|m|h)([0-9]{1,25}(ms|s|m|h))?") {
            if let Ok(duration) = parse_duration(&text) {
                prop_assert!(duration > std::time::Duration::ZERO && duration <= MAX_DURATION);
            }
        }
    }
}
