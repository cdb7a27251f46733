//! `weaver bootstrap`: from a cluster and a team's repository, weaver manages itself from git.
//!
//! In order, each step before the next, so that a refusal leaves nothing half-done:
//! 1. the cluster is reached (an unreachable one fails before anything is pushed);
//! 2. the source's credentials: a deploy key (`--private-key-file`, a new one written there
//!    with `--generate-key` alone, so that a mistyped path is refused, not filled) or a token,
//!    else the source Secret a bootstrap wrote before;
//! 3. the branch is fetched (read access) and a push started (write access): a key that may
//!    not write is refused, naming the repository and what to grant, before anything else;
//! 4. under `--path`, the weaver repository weaver runs itself from: `charts/weaver/` (the
//!    chart built into this binary, so a newer binary upgrades it), `charts/environment-sync/`
//!    (the tenants' chart, of the same binary: `weaver tenant add` makes releases of it) and,
//!    the first time,
//!    `environments/weaver.yaml` (release `weaver`, whose values make its own EnvironmentSync);
//!    a first bootstrap refuses a path holding files it did not write; committed and pushed
//!    only when something changed;
//! 5. the source Secret (`weaver-git`) in the controller's namespace, never in git;
//! 6. environment `weaver` of that commit applied, as `weaver install` applies it;
//! 7. a wait until its EnvironmentSync is Ready at that commit: from then on a change pushed to
//!    the path is applied by the controller to itself.
//!
//! A second run writes nothing, to git or the cluster: with nothing pushed or written it plans
//! the environment (a plan only reads) and applies only when the plan changes something. `--recover` reinstalls a lost cluster
//! from the repository as it is: it writes nothing to git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::apply::{Applied, ApplyActionOptions, Settings, apply};
use super::install::{
    CA_SECRET, CHART_DIR, ENVIRONMENT, RELEASE, SOURCE_SECRET, TENANT_CHART_DIR, chart_files, tenant_chart_files,
};
use super::render::{IfEmpty, RenderOptions, Selection};
use super::{Context, Keys, OnProgress, Progress, PruneReleases};
use weaver_cluster::{Cluster, ConnectOptions};
use weaver_core::error::{Error, Result};
use weaver_core::limits::RenderLimits;
use weaver_git::{GitRepo, TreeSource};
use weaver_project::Source;
use weaver_render::overrides::OverrideFlags;
use weaver_source::{CredentialNames, Credentials, FetchFailure, FetchRequest, GitCache, GitRef};

/// The environment file under the path.
const ENVIRONMENT_FILE: &str = "environments/weaver.yaml";

/// How the repository is reached.
#[derive(Debug, Clone)]
pub enum Access {
    /// An ssh deploy key: this file's; with `generate`, a new one written there (0600), which
    /// must not exist yet.
    KeyFile { file: PathBuf, generate: bool },
    /// An https token (this file's first line), sent as the password of `username`.
    Token { file: PathBuf, username: String },
    /// The source Secret a bootstrap left in the cluster (a second run, `--recover`).
    FromCluster,
}

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub url: String,
    pub branch: String,
    /// The weaver repository's directory in the git repository (`clusters/prod`).
    pub path: String,
    pub namespace: String,
    pub access: Access,
    /// `known_hosts` lines for an ssh URL, and the file they were read from (`--known-hosts`);
    /// None: the server's key as it shows it (printed).
    pub known_hosts: Option<(PathBuf, String)>,
    /// PEM certificates of an https server's CA, and the file they were read from (`--ca-file`).
    pub ca_file: Option<(PathBuf, Vec<u8>)>,
    /// Values over the chart's, written into the first environment file.
    pub overrides: OverrideFlags,
    pub connect: ConnectOptions,
    /// How to apply; its `timeout` also bounds the wait for the EnvironmentSync.
    pub settings: Settings,
    /// Who commits: (name, email).
    pub author: (String, String),
    /// Reinstall from the repository as it is, writing nothing to git.
    pub recover: bool,
}

/// What a bootstrap did.
pub struct Bootstrapped {
    /// The commit the cluster runs weaver from.
    pub commit: String,
    /// Whether it pushed that commit (false: the branch had it already).
    pub pushed: bool,
    /// The files it wrote in that commit, from the repository's root.
    pub written: Vec<String>,
    /// Whether it wrote the source Secret (false: it held the same credentials).
    pub secret_written: bool,
    /// The apply; None when nothing was pushed or written and the environment's plan against
    /// the cluster changed nothing: then not even the environment's lock is taken.
    pub applied: Option<Applied>,
}

/// Bootstraps (see the module's docs).
pub async fn bootstrap(options: &BootstrapOptions, cx: Context<'_>) -> Result<Bootstrapped> {
    let on = cx.on;
    let path = weaver_path("--path", &options.path)?;
    super::install::check_namespace(&options.namespace)?;
    // 1. The cluster, first: nothing is pushed to a repository for a cluster that is not there.
    let cluster = Cluster::connect(&options.connect).await?;
    let secret_kind = resolve(&cluster, "v1", "Secret")?;
    let existing = cluster.get(&secret_kind, Some(&options.namespace), SOURCE_SECRET).await?;
    // 2. Credentials.
    let given = GivenAccess {
        url: &options.url,
        access: &options.access,
        known_hosts: options.known_hosts.as_ref(),
        ca_file: options.ca_file.as_ref(),
        secret: (format!("Secret {}/{SOURCE_SECRET}", options.namespace), existing.as_ref()),
        write: !options.recover,
    };
    let (credentials, credential_names) = credentials(&given, on).await?;
    // 3. Read and write access.
    let request = FetchRequest {
        url: options.url.clone(),
        reference: GitRef::Branch(options.branch.clone()),
        credentials,
        credential_names,
        ca_pem: options.ca_file.as_ref().map(|(_, pem)| pem.clone()),
        timeout: options.settings.timeout,
    };
    let branch = Branch::fetch(request, options.branch.clone(), !options.recover, "weaver bootstrap").await?;
    let fetched = &branch.fetched;
    let access = if options.recover { "read access (--recover writes nothing)" } else { "read and write access" };
    on(Progress::Status(format!("{}: {access} on branch {}", weaver_source::redact_url(&options.url), options.branch)));
    // 4. The weaver repository under the path, committed and pushed when it changed.
    let git = GitRepo::open(&fetched.repository)?.with_identity(&options.author.0, &options.author.1);
    let fetched_commit = git.resolve(&fetched.commit, "the fetched branch")?;
    let tree = git.tree_source(&fetched_commit)?;
    let (commit, written) = match options.recover {
        true => {
            require_bootstrapped(&tree, &path, options)?;
            (fetched.commit.clone(), Vec::new())
        }
        false => write_repository(&git, (&tree, &fetched_commit), &path, options, on)?,
    };
    let pushed = commit != fetched.commit;
    // Rendered from the commit before it is pushed: values the chart's schema refuses (or any
    // render error) leave the repository as it was.
    let render_options = controller_render(fetched.repository.join(&path), &commit);
    if pushed {
        let owned = render_options.clone();
        let desired = super::blocking_with(cx, move |cx| super::render::render(&owned, cx))
            .await
            .map_err(|err| err.context(format!("{}: nothing was pushed", path.join(ENVIRONMENT_FILE).display())))?;
        // Weaver applying itself is what a bootstrap is: without its EnvironmentSync the wait
        // below could only time out.
        let applies_itself =
            desired.rendered.releases.iter().flat_map(|r| &r.manifests).any(|m| is_environment_sync(m, RELEASE));
        if !applies_itself {
            return Err(Error::new(format!(
                "{}: its values turn selfSync off, so weaver would not apply itself from git: nothing was pushed",
                path.join(ENVIRONMENT_FILE).display()
            ))
            .with_help("leave selfSync on; `weaver install` installs weaver without it"));
        }
    }
    if pushed {
        branch.push(&commit).await?;
        on(Progress::Status(format!("pushed {} to branch {}: {}", &commit[..12], options.branch, written.join(", "))));
    }
    // 5. The source Secret, in the cluster only.
    let namespace = &options.namespace;
    let mut secret_written =
        write_secret(&cluster, namespace, SOURCE_SECRET, branch.request.credentials.secret_data()).await?;
    if let Some((_, ca)) = &options.ca_file {
        let ca = BTreeMap::from([("ca.crt", String::from_utf8_lossy(ca).into_owned())]);
        secret_written |= write_secret(&cluster, namespace, CA_SECRET, ca).await?;
    }
    // 6. Environment `weaver` of that commit, applied.
    let apply_options = ApplyActionOptions {
        render: render_options,
        connect: options.connect.clone(),
        settings: options.settings.clone(),
        require_clean: false,
        prune_releases: PruneReleases::No,
        allow_overrides: false,
        forget_helm_release: false,
        servers: None,
    };
    if !pushed && !secret_written && nothing_to_apply(&apply_options, cx).await? {
        on(Progress::Status(format!("environment `{ENVIRONMENT}` of {} is applied already", &commit[..12])));
        let cluster = Cluster::connect(&options.connect).await?;
        wait_ready(&cluster, &options.namespace, &commit, options.settings.timeout, on).await?;
        return Ok(Bootstrapped { commit, pushed, written, secret_written, applied: None });
    }
    let applied = apply(&apply_options, cx).await?;
    if applied.report.totals().failed > 0 || applied.lock_lost.is_some() || options.settings.dry_run {
        return Ok(Bootstrapped { commit, pushed, written, secret_written, applied: Some(applied) });
    }
    // 7. Its EnvironmentSync Ready at the commit; connected again, for a discovery that knows
    // the CRD the apply may just have installed.
    let cluster = Cluster::connect(&options.connect).await?;
    wait_ready(&cluster, &options.namespace, &commit, options.settings.timeout, on).await?;
    Ok(Bootstrapped { commit, pushed, written, secret_written, applied: Some(applied) })
}

/// A branch of a repository fetched into a cache of its own, to commit on and push: `weaver
/// bootstrap`'s and `weaver tenant add`'s.
pub(super) struct Branch {
    cache: Arc<GitCache>,
    pub(super) request: FetchRequest,
    name: String,
    pub(super) fetched: weaver_source::Fetched,
    /// The cache's directory, removed with the branch, after the cache and its lease.
    _dir: tempfile::TempDir,
}

impl Branch {
    /// Fetches branch `name` of `request` and, when `write`, checks that its credentials may
    /// push there: a refusal names the repository and what to grant, then to run `command`
    /// again, before anything is written.
    pub(super) async fn fetch(request: FetchRequest, name: String, write: bool, command: &str) -> Result<Branch> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(format!("cannot make a temporary directory: {e}")))?;
        let budget =
            weaver_source::Budget::new(weaver_source::CacheLimits { max_disk_bytes: u64::MAX, max_repositories: 4 });
        let cache = Arc::new(GitCache::new(dir.path().to_path_buf(), budget)?);
        let (git_cache, fetching) = (cache.clone(), request.clone());
        let nothing = "nothing was written to the repository or the cluster";
        let fetched = off_runtime(move || git_cache.fetch(&fetching)).await?.map_err(|err| match err.failure {
            FetchFailure::AuthenticationFailed => access_error(&request, &name, &err.to_string(), "read", command),
            FetchFailure::RefNotFound => Error::new(format!("{err}; {nothing}"))
                .with_help(format!("{command} commits on an existing branch: push a first commit to {name}")),
            _ => Error::new(format!("{err}; {nothing}")),
        })?;
        if write {
            let (git_cache, pushing, at) = (cache.clone(), request.clone(), fetched.clone());
            off_runtime(move || git_cache.check_push(&at, &pushing))
                .await?
                .map_err(|err| access_error(&request, &name, &err.to_string(), "write to", command))?;
        }
        Ok(Branch { cache, request, name, fetched, _dir: dir })
    }

    /// Pushes `commit`, a child of the fetched one, to the branch.
    pub(super) async fn push(&self, commit: &str) -> Result<()> {
        let (git_cache, at, request, pushing) =
            (self.cache.clone(), self.fetched.clone(), self.request.clone(), commit.to_string());
        off_runtime(move || git_cache.push(&at, &request, &pushing, false)).await?.map_err(|err| {
            Error::new(format!(
                "pushing to branch {} of {}: {err}",
                self.name,
                weaver_source::redact_url(&self.request.url)
            ))
        })?;
        Ok(())
    }
}

/// Whether the environment's plan against the cluster creates, changes and removes nothing: a
/// plan reads only, where an apply takes the environment's lock (a write) before it plans.
async fn nothing_to_apply(options: &ApplyActionOptions, cx: Context<'_>) -> Result<bool> {
    let plan_options = super::plan::PlanOptions {
        render: options.render.clone(),
        against: super::plan::Against::Cluster(options.connect.clone()),
        server_side: false,
        concurrency: options.settings.concurrency,
        prune_releases: PruneReleases::No,
        servers: None,
    };
    let summary = super::plan::plan(&plan_options, cx).await?.plan.summary();
    Ok(summary.create + summary.update + summary.delete == 0)
}

/// Runs `work` on the blocking pool: git's transports run their own runtime, which may not be
/// started from a task of this one.
pub(super) async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::new(format!("the git work stopped: {e}")))
}

/// `path`, given as `flag`, as a directory inside the repository, in the shape
/// `spec.source.path` takes (parts of letters, digits, `.`, `_` and `-`, none starting with
/// `.`, joined by single `/`): checked before anything is written.
pub(super) fn weaver_path(flag: &str, path: &str) -> Result<PathBuf> {
    let part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    };
    if !path.split('/').all(part) {
        return Err(Error::new(format!(
            "{flag} {path:?} is not a directory inside the repository: expected a relative path such as clusters/prod, its parts letters, digits, '.', '_' and '-', none starting with '.', joined by single '/'"
        )));
    }
    Ok(PathBuf::from(path))
}

pub(super) fn resolve(cluster: &Cluster, api_version: &str, kind: &str) -> Result<weaver_cluster::ServedKind> {
    cluster
        .resolve(api_version, kind)
        .map_err(|_| Error::new(format!("the cluster does not serve {api_version} {kind}")))
}

/// How a repository is reached, as the flags give it (`weaver bootstrap`'s for the weaver
/// repository, `weaver tenant add`'s for a tenant's source), beside the Secret a run before
/// wrote.
pub(super) struct GivenAccess<'a> {
    pub url: &'a str,
    pub access: &'a Access,
    pub known_hosts: Option<&'a (PathBuf, String)>,
    pub ca_file: Option<&'a (PathBuf, Vec<u8>)>,
    /// That Secret, as messages name it (`Secret weaver-system/weaver-git`), and its object
    /// when it exists: the credentials of [`Access::FromCluster`], the `known_hosts` kept.
    pub secret: (String, Option<&'a Value>),
    /// Whether weaver pushes with them (what a generated key is to be granted).
    pub write: bool,
}

/// The credentials the flags give, else the Secret's; and how messages name their parts: the
/// flags' files they were read from, or that Secret.
pub(super) async fn credentials(given: &GivenAccess<'_>, on: OnProgress<'_>) -> Result<(Credentials, CredentialNames)> {
    let ssh = weaver_source::is_ssh_url(given.url);
    let (secret_name, existing) = (&given.secret.0, given.secret.1);
    let from_secret = |key: &str| -> Option<String> {
        let data = existing?.pointer(&format!("/data/{key}"))?.as_str()?;
        use base64::Engine;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).ok()?).ok()
    };
    let in_secret = |key: &str| format!("{secret_name}'s {key}");
    let ca = match given.ca_file {
        Some((file, _)) => format!("--ca-file {}", file.display()),
        None => "a file given with --ca-file".to_string(),
    };
    let names = CredentialNames::default().with(CredentialNames::CA, ca);
    match given.access {
        Access::FromCluster => match existing {
            Some(_) => {
                let credentials = Credentials::from_secret(from_secret, secret_name).map_err(Error::new)?;
                let names = [
                    CredentialNames::IDENTITY,
                    CredentialNames::KNOWN_HOSTS,
                    CredentialNames::PASSWORD,
                    CredentialNames::BEARER,
                    CredentialNames::CREDENTIALS,
                ]
                .into_iter()
                .fold(names, |names, part| names.with(part, in_secret(part)));
                Ok((credentials, names))
            }
            None => Err(Error::new(format!(
                "no credentials for {}: give --private-key-file (an ssh deploy key; --generate-key writes a new one there) or --token-file (https)",
                weaver_source::redact_url(given.url)
            ))
            .with_help(format!("{secret_name}, which a bootstrap writes, does not exist yet"))),
        },
        Access::Token { file, username } => {
            if ssh {
                return Err(Error::new(format!("--token-file is for an https URL; {} is ssh: give --private-key-file", weaver_source::redact_url(given.url))));
            }
            let text = std::fs::read_to_string(file).map_err(|e| Error::io("read --token-file", file, e))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                return Err(Error::new(format!("--token-file {}: the first line is empty: expected the token", file.display())));
            }
            let named = format!("--token-file {}", file.display());
            let names = names.with(CredentialNames::PASSWORD, named.clone()).with(CredentialNames::CREDENTIALS, named);
            Ok((Credentials::Basic { username: username.clone(), password: token.into() }, names))
        }
        Access::KeyFile { file, generate } => {
            if !ssh {
                return Err(Error::new(format!("--private-key-file is for an ssh URL; {} is not: give --token-file", weaver_source::redact_url(given.url))));
            }
            let identity = match generate {
                true if file.exists() => {
                    return Err(Error::new(format!(
                        "--generate-key: --private-key-file {} exists, and a key is never written over a file; nothing was written",
                        file.display()
                    ))
                    .with_help("leave out --generate-key to use that key, or give a new file's path"));
                }
                true => generate_key(file, given.write, on)?,
                false => match std::fs::read_to_string(file) {
                    Ok(identity) => identity,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::new(format!(
                            "--private-key-file {}: no such file; nothing was written",
                            file.display()
                        ))
                        .with_help("give the path of your deploy key; or add --generate-key to write a new ed25519 key there, whose public key you then add to the repository"));
                    }
                    Err(err) => return Err(Error::io("read --private-key-file", file, err)),
                },
            };
            match weaver_source::public_key_of(&identity) {
                Some(public) if !public.starts_with("ssh-rsa") => {}
                _ => {
                    return Err(Error::new(format!(
                        "--private-key-file {} is not an unencrypted ed25519 or ECDSA private key (OpenSSH or PEM; RSA keys are not supported)",
                        file.display()
                    ))
                    .with_help("give another key, or a new file's path with --generate-key, which writes a new ed25519 key there"));
                }
            }
            let named = format!("--private-key-file {}", file.display());
            let names = names.with(CredentialNames::IDENTITY, named.clone()).with(CredentialNames::CREDENTIALS, named);
            let (known_hosts, from) = match (given.known_hosts, from_secret("known_hosts")) {
                (Some((file, given)), _) => (given.clone(), format!("--known-hosts {}", file.display())),
                (None, Some(kept)) => (kept, in_secret("known_hosts")),
                (None, None) => {
                    let url = given.url.to_string();
                    let scanned = off_runtime(move || weaver_source::scan_host_key(&url)).await?;
                    let (line, fingerprint) = scanned.map_err(|why| {
                        Error::new(format!("cannot read the host key of {}: {why}", weaver_source::redact_url(given.url)))
                    })?;
                    on(Progress::Status(format!(
                        "trusting the host key the server showed, {fingerprint} (check it against the host's published fingerprint; --known-hosts pins one instead)"
                    )));
                    (format!("{line}\n"), "a file given with --known-hosts".to_string())
                }
            };
            let names = names.with(CredentialNames::KNOWN_HOSTS, from);
            Ok((Credentials::Ssh { identity: identity.into(), known_hosts }, names))
        }
    }
}

/// A new ed25519 key written to `file` (0600); its public key told, to add as a deploy key
/// that may `write` or only read.
fn generate_key(file: &Path, write: bool, on: OnProgress<'_>) -> Result<String> {
    let (private, public) = weaver_source::generate_deploy_key("weaver").map_err(Error::new)?;
    write_private(file, private.expose_secret().as_bytes())?;
    on(Progress::Status(format!(
        "generated a deploy key in {}; add its public key to the repository, with {} access:\n  {public}",
        file.display(),
        if write { "write" } else { "read" }
    )));
    Ok(private.expose_secret().to_string())
}

fn write_private(file: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Error::io("create --private-key-file", file, e))?;
    out.write_all(bytes).map_err(|e| Error::io("write --private-key-file", file, e))
}

/// The refusal of branch `branch` of a repository the credentials cannot `what` (read, write to).
fn access_error(request: &FetchRequest, branch: &str, why: &str, what: &str, command: &str) -> Error {
    let url = weaver_source::redact_url(&request.url);
    let grant = match &request.credentials {
        Credentials::Ssh { identity, .. } => {
            let public = weaver_source::public_key_of(identity.expose_secret())
                .unwrap_or_else(|| "the key's public half".to_string());
            format!(
                "add this public key to {url} as a deploy key with write access (GitHub: Settings → Deploy keys, \"Allow write access\"; GitLab: Settings → Repository → Deploy keys, \"Grant write permissions\"):\n  {public}"
            )
        }
        _ => format!(
            "give the token write access to {url} (GitHub: the `contents: write` permission of a fine-grained token, or `repo`; GitLab: `write_repository`)"
        ),
    };
    Error::new(format!(
        "cannot {what} branch {branch} of {url}: {why}; nothing was written to the repository or the cluster"
    ))
    .with_help(format!("{grant}; then run {command} again"))
}

/// The files under `path` in the fetched commit's `tree`, relative to it.
pub(super) fn files_under(tree: &TreeSource, path: &Path) -> Result<Vec<PathBuf>> {
    match tree.list(path).map_err(|e| Error::io("list", path, e))? {
        None => Ok(Vec::new()),
        Some(_) => {
            Ok(tree.walk(path)?.into_iter().map(|p| p.strip_prefix(path).map(Path::to_path_buf).unwrap_or(p)).collect())
        }
    }
}

fn require_bootstrapped(tree: &TreeSource, path: &Path, options: &BootstrapOptions) -> Result<()> {
    if !files_under(tree, path)?.iter().any(|f| f == Path::new(ENVIRONMENT_FILE)) {
        return Err(Error::new(format!(
            "--recover: branch {} has no {} to recover from",
            options.branch,
            path.join(ENVIRONMENT_FILE).display()
        ))
        .with_help("bootstrap the cluster without --recover"));
    }
    Ok(())
}

/// How bootstrap and `weaver tenant add` render the controller's environment at `commit` of
/// the weaver directory `repo` before they push it: strictly, with this machine's keys and
/// chart cache, so that values the chart refuses (or any render error) leave everything as it was.
pub(super) fn controller_render(repo: PathBuf, commit: &str) -> RenderOptions {
    RenderOptions {
        selection: Selection {
            env: ENVIRONMENT.to_string(),
            repo,
            rev: Some(commit.to_string()),
            ..Selection::default()
        },
        keys: Keys::Search(None),
        if_empty: IfEmpty::Refuse,
        validate: weaver_validate::Mode::Strict,
        overrides: OverrideFlags::default(),
        charts: weaver_source::charts::Archives::Machine,
        limits: RenderLimits::default(),
    }
}

/// Whether `manifest` is the EnvironmentSync `name`.
pub(super) fn is_environment_sync(manifest: &weaver_core::manifest::Manifest, name: &str) -> bool {
    manifest.object["kind"] == "EnvironmentSync" && manifest.object.pointer("/metadata/name") == Some(&json!(name))
}

/// Commits the chart built in and, the first time, the environment under `path`: the commit
/// (the fetched one when nothing changed) and the files written.
fn write_repository(
    git: &GitRepo,
    (tree, fetched): (&TreeSource, &weaver_git::Revision),
    path: &Path,
    options: &BootstrapOptions,
    on: OnProgress<'_>,
) -> Result<(String, Vec<String>)> {
    let present = files_under(tree, path)?;
    let bootstrapped = present.iter().any(|f| f == Path::new(ENVIRONMENT_FILE));
    let chart = Path::new(CHART_DIR);
    if !bootstrapped && !present.is_empty() {
        let named: Vec<String> = present.iter().take(10).map(|f| path.join(f).display().to_string()).collect();
        return Err(Error::new(format!(
            "--path {} holds files weaver bootstrap did not write: {}{}; nothing was pushed",
            path.display(),
            named.join(", "),
            if present.len() > 10 { format!(" and {} more", present.len() - 10) } else { String::new() }
        ))
        .with_help("bootstrap into an empty directory (such as clusters/<cluster name>), or move those files"));
    }
    // The chart there is weaver's: a newer weaver's is never replaced by an older one's (a
    // downgrade would drop what the newer CRDs hold); the same version's files edited since
    // are put back, said.
    let ours = env!("CARGO_PKG_VERSION");
    let chart_file = path.join(chart).join("Chart.yaml");
    let theirs = tree.read(&chart_file).ok().flatten().and_then(|bytes| chart_version(&bytes));
    if let Some(theirs) = &theirs
        && version_key(theirs) > version_key(ours)
    {
        return Err(Error::new(format!(
            "{} is weaver {theirs}'s, newer than this weaver ({ours}): nothing was written",
            chart_file.display()
        ))
        .with_help(format!("run weaver bootstrap of weaver {theirs} or newer")));
    }
    let mut changes: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for (chart, files) in [(CHART_DIR, chart_files()), (TENANT_CHART_DIR, tenant_chart_files())] {
        changes.extend(chart_changes(tree, path, &present, Path::new(chart), files));
    }
    let edited: Vec<&String> = changes.keys().filter(|f| tree.exists(Path::new(f.as_str()))).collect();
    if theirs.as_deref() == Some(ours) && !edited.is_empty() {
        on(Progress::Warning(format!(
            "{} of {} differ from weaver {ours}'s charts and are written again: values belong in {}, not in the charts",
            edited.len(),
            path.join("charts").display(),
            path.join(ENVIRONMENT_FILE).display()
        )));
    }
    if bootstrapped && !options.overrides.is_empty() {
        on(Progress::Warning(format!(
            "{} exists: the values flags are not written to it (weaver's values are that file's now: edit it and push)",
            path.join(ENVIRONMENT_FILE).display()
        )));
    }
    if !bootstrapped {
        changes.insert(
            path.join(ENVIRONMENT_FILE).display().to_string(),
            Some(environment_file(options, on)?.into_bytes()),
        );
    }
    if changes.is_empty() {
        return Ok((fetched.commit.to_string(), Vec::new()));
    }
    let written: Vec<String> = changes.keys().cloned().collect();
    let base = fetched.commit;
    let subject = match bootstrapped {
        true => format!("weaver bootstrap: chart weaver {} in {}", env!("CARGO_PKG_VERSION"), path.display()),
        false => format!("weaver bootstrap: weaver {} runs itself from {}", env!("CARGO_PKG_VERSION"), path.display()),
    };
    let commit = git.commit_detached(base, &changes, &subject)?;
    Ok((commit, summarize(&written)))
}

/// What makes the files of `chart` (its directory) under `path` the built-in `files`: each that
/// differs, written (by path from the repository's root), and each of `present` (the files under
/// `path`) in that directory that `files` no longer has (an older chart's), removed (None).
pub(super) fn chart_changes(
    tree: &TreeSource,
    path: &Path,
    present: &[PathBuf],
    chart: &Path,
    files: &[(&str, &[u8])],
) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut changes = BTreeMap::new();
    for (file, bytes) in files {
        let at = path.join(chart).join(file);
        if tree.read(&at).ok().flatten().as_deref() != Some(*bytes) {
            changes.insert(at.display().to_string(), Some(bytes.to_vec()));
        }
    }
    let built_in: BTreeSet<PathBuf> = files.iter().map(|(p, _)| chart.join(p)).collect();
    for old in present.iter().filter(|f| f.starts_with(chart) && !built_in.contains(*f)) {
        changes.insert(path.join(old).display().to_string(), None);
    }
    changes
}

/// A Chart.yaml's `version`.
fn chart_version(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix("version:"))?;
    Some(line.trim().trim_matches('"').to_string())
}

/// A version's numbers, to compare (`0.10.1` after `0.9.3`); a pre-release tag is ignored.
fn version_key(version: &str) -> Vec<u64> {
    let release = version.split(['-', '+']).next().unwrap_or_default();
    release.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

/// Written files as a short list: each chart's as one entry.
pub(super) fn summarize(written: &[String]) -> Vec<String> {
    let in_chart = |f: &String, chart: &str| f.contains(&format!("/{chart}/"));
    let charts = [CHART_DIR, TENANT_CHART_DIR];
    let mut out: Vec<String> =
        written.iter().filter(|f| !charts.iter().any(|chart| in_chart(f, chart))).cloned().collect();
    for chart in charts {
        let count = written.iter().filter(|f| in_chart(f, chart)).count();
        if count > 0 {
            out.push(format!("{count} file(s) of {chart}"));
        }
    }
    out
}

/// The environment weaver applies itself with: release `weaver` of the chart beside it, its
/// values turning on its own EnvironmentSync, and letting the controller reach the
/// repository's port through the chart's NetworkPolicy (`gitops.gitPorts`, https's and ssh's
/// alone by default); then the flags' values over them, warned about when they leave that port
/// out.
fn environment_file(options: &BootstrapOptions, on: OnProgress<'_>) -> Result<String> {
    let overrides = weaver_render::overrides::Overrides::load(&options.overrides)?;
    let mut values = json!({
        "selfSync": {
            "enabled": true,
            "url": options.url,
            "branch": options.branch,
            "path": options.path,
            "secretName": SOURCE_SECRET,
        }
    });
    if options.ca_file.is_some() {
        values["selfSync"]["caSecretName"] = json!(CA_SECRET);
    }
    let port = weaver_source::port_of(&options.url);
    let mut git_ports = chart_git_ports()?;
    if let Some(port) = port
        && !git_ports.contains(&json!(port))
    {
        git_ports.push(json!(port));
        values["gitops"] = json!({"gitPorts": git_ports});
    }
    overrides.apply(values.as_object_mut().expect("an object"))?;
    let allowed = values.pointer("/gitops/gitPorts").and_then(Value::as_array).cloned();
    if let (Some(port), Some(allowed)) = (port, allowed)
        && !allowed.contains(&json!(port))
    {
        on(Progress::Warning(format!(
            "gitops.gitPorts {} leaves out port {port} of {}: on a cluster that enforces NetworkPolicies, the controller cannot reach its repository",
            serde_json::to_string(&allowed).unwrap_or_default(),
            weaver_source::redact_url(&options.url)
        )));
    }
    let mut release = Map::new();
    release.insert("name".into(), RELEASE.into());
    release.insert("chart".into(), "weaver".into());
    release.insert("values".into(), values);
    let environment = json!({"namespace": options.namespace, "releases": [release]});
    let mut text = format!(
        "# Written by `weaver bootstrap` (weaver {}): weaver applies this environment to itself.\n\
         # Change its values here and push: the controller applies them. A newer `weaver bootstrap`\n\
         # rewrites charts/weaver/ and charts/environment-sync/ beside it and keeps this file;\n\
         # `weaver tenant add` adds a release of charts/environment-sync to it for each tenant.\n",
        env!("CARGO_PKG_VERSION")
    );
    weaver_yaml::write_yaml(&mut text, &environment);
    Ok(text)
}

/// The ports the chart's NetworkPolicy lets the controller reach git servers on by default
/// (its values' `gitops.gitPorts`).
fn chart_git_ports() -> Result<Vec<Value>> {
    let (path, bytes) = chart_files()
        .iter()
        .find(|(path, _)| *path == "values.yaml")
        .ok_or_else(|| Error::new("the chart built in has no values.yaml"))?;
    let values = weaver_yaml::documents(Path::new(path), &String::from_utf8_lossy(bytes))?;
    Ok(values
        .first()
        .and_then(|v| v.pointer("/gitops/gitPorts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Writes Secret `name` of `namespace` (made when missing) when it does not hold `values`
/// already: whether it wrote.
pub(super) async fn write_secret(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    values: BTreeMap<&'static str, String>,
) -> Result<bool> {
    let kind = resolve(cluster, "v1", "Secret")?;
    let existing = cluster.get(&kind, Some(namespace), name).await?;
    let data: Map<String, Value> = values
        .into_iter()
        .map(|(key, value)| {
            use base64::Engine;
            (key.to_string(), Value::String(base64::engine::general_purpose::STANDARD.encode(value)))
        })
        .collect();
    if existing.as_ref().and_then(|s| s.get("data")) == Some(&Value::Object(data.clone())) {
        return Ok(false);
    }
    let namespace_kind = resolve(cluster, "v1", "Namespace")?;
    if cluster.get(&namespace_kind, None, namespace).await?.is_none() {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        cluster.apply(&object, &namespace_kind, false, false).await.map_err(apply_error)?;
    }
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    });
    cluster.apply(&secret, &kind, false, true).await.map_err(apply_error)?;
    Ok(true)
}

fn apply_error(err: weaver_cluster::ApplyError) -> Error {
    match err {
        weaver_cluster::ApplyError::Conflict(why) | weaver_cluster::ApplyError::NotFound(why) => Error::new(why),
        weaver_cluster::ApplyError::Other(err) => err,
    }
}

/// Waits until EnvironmentSync `namespace/weaver` is Ready with `commit` applied.
async fn wait_ready(
    cluster: &Cluster,
    namespace: &str,
    commit: &str,
    timeout: Duration,
    on: OnProgress<'_>,
) -> Result<()> {
    let kind = resolve(cluster, "weaver.example.com/v1beta1", "EnvironmentSync")?;
    let deadline = tokio::time::Instant::now() + timeout;
    on(Progress::Status(format!("waiting for EnvironmentSync {namespace}/{RELEASE} to apply {}", &commit[..12])));
    let mut last = String::from("not created yet");
    loop {
        if let Some(sync) = cluster.get(&kind, Some(namespace), RELEASE).await? {
            let applied = sync.pointer("/status/lastAppliedRevision").and_then(Value::as_str);
            let ready = sync
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned();
            if applied == Some(commit) && ready.as_ref().is_some_and(|r| r["status"] == "True") {
                return Ok(());
            }
            last = match ready {
                Some(r) => format!(
                    "Ready={} {}: {}",
                    r["status"].as_str().unwrap_or("?"),
                    r["reason"].as_str().unwrap_or(""),
                    r["message"].as_str().unwrap_or("")
                ),
                None => "no Ready condition yet (is the controller running? `weaver check`)".to_string(),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::new(format!(
                "EnvironmentSync {namespace}/{RELEASE} did not apply {} within --timeout {}s: {last}",
                &commit[..12],
                timeout.as_secs()
            ))
            .with_help(format!("`weaver check -n {namespace}` names what is wrong; the bootstrap can be run again")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::install::DEFAULT_NAMESPACE;
    use crate::action::testing::{Fixture, Heard, Remote, TOKEN, bootstrapped, failure};

    #[tokio::test(flavor = "multi_thread")]
    async fn values_the_charts_schema_refuses_are_refused_before_anything_is_pushed_or_written() {
        let Some(remote) = Remote::serve().await else { return };
        let fixture = Fixture::start().await;
        let first = remote.main();
        fixture.writes();

        let heard = Heard::default();
        let options = remote.options(&fixture, &["replicas=many"]);
        let refused = failure(bootstrap(&options, heard.cx()).await);
        assert!(refused.starts_with("clusters/test/environments/weaver.yaml: nothing was pushed"), "{refused}");
        assert!(refused.contains("replicas"), "{refused}");
        assert_eq!(remote.main(), first, "pushed");
        // Not the source Secret, not the chart: the cluster was only read.
        assert_eq!(fixture.writes(), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_bootstrap_pushes_weaver_s_repository_installs_it_waits_for_it_and_a_second_run_writes_nothing() {
        let Some(remote) = Remote::serve().await else { return };
        let fixture = Fixture::start().await;
        let first = remote.main();
        let options = remote.options(&fixture, &[]);
        let heard = Heard::default();

        let done = bootstrapped(&fixture, &remote, &heard).await;
        assert!(done.pushed && done.secret_written);
        assert_eq!(remote.main(), done.commit);
        let pushed = remote.repo.find_commit(done.commit.parse().expect("a commit id")).expect("the pushed commit");
        assert_eq!(pushed.parent_id(0).expect("a parent").to_string(), first);
        let [environment, chart, tenants] = &done.written[..] else { panic!("{:?}", done.written) };
        assert_eq!(environment, "clusters/test/environments/weaver.yaml");
        assert_eq!(chart, &format!("{} file(s) of charts/weaver", chart_files().len()));
        assert_eq!(tenants, &format!("{} file(s) of charts/environment-sync", tenant_chart_files().len()));
        let tree = pushed.tree().expect("its tree");
        // The charts as built in (`build.rs` embeds the repository's own).
        for (chart, files) in [("weaver", chart_files()), ("environment-sync", tenant_chart_files())] {
            for (file, bytes) in files {
                let path = format!("clusters/test/charts/{chart}/{file}");
                let entry = tree.get_path(Path::new(&path)).unwrap_or_else(|_| panic!("{path} not pushed"));
                let blob = remote.repo.find_blob(entry.id()).expect("a file");
                assert_eq!(blob.content(), *bytes, "{path}");
            }
        }
        let applied = done.applied.expect("the apply");
        assert!(!applied.report.failed(), "{:?}", applied.report.releases);
        assert!(fixture.deployment_in(DEFAULT_NAMESPACE, RELEASE).await.is_some(), "weaver not installed");
        let short = &done.commit[..12];
        let told = heard.told();
        assert!(told.iter().any(|t| t.starts_with(&format!("pushed {short} to branch main: "))), "{told:#?}");
        let waited = format!("waiting for EnvironmentSync {DEFAULT_NAMESPACE}/{RELEASE} to apply {short}");
        assert!(told.contains(&waited), "{told:#?}");
        assert!(told.iter().all(|t| !t.contains(TOKEN)), "the token was told: {told:#?}");

        // Nothing new: nothing pushed, written or applied.
        fixture.writes();
        let again = bootstrap(&options, heard.cx()).await.expect("the second bootstrap");
        assert!(!again.pushed && !again.secret_written && again.applied.is_none());
        assert_eq!((again.commit.as_str(), remote.main()), (done.commit.as_str(), done.commit.clone()));
        assert_eq!(fixture.writes(), Vec::<String>::new());
    }
}
