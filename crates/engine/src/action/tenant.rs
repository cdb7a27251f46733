//! `weaver tenant add`: a team's repository connected to the controller `weaver bootstrap` made,
//! through git. The tenant is a release of the tenants' chart (`charts/environment-sync`,
//! built into this binary, which bootstrap writes beside `charts/weaver`) in the controller's
//! own environment (`environments/weaver.yaml` under the path it runs from): when the controller
//! applies that commit to itself it makes the tenant's namespace, ServiceAccount, RBAC and
//! EnvironmentSync, which then keeps the team's environments applied as that account.
//!
//! In order, each step before the next, so that a refusal leaves nothing half-done:
//! 1. the flags and files: the tenant's name and namespace, its environments, the source's URL
//!    and path, the files of its credentials and age identities, read and checked;
//! 2. the tenant source's credentials: the key or token file read and checked (with no
//!    `--known-hosts`, the ssh host key the Secret of a run before holds, else the one the
//!    server shows);
//! 3. the controller's EnvironmentSync (`weaver`, in the controller's namespace): which
//!    repository, branch and path weaver runs from, and its source Secret how to reach it (the
//!    credentials bootstrap checked may write);
//! 4. the controller's branch fetched and a push checked;
//! 5. the release added to the environment file (and the tenants' chart written when the path
//!    has none, as a weaver before this one bootstrapped it), committed, and the controller's
//!    environment rendered from that commit: a name or namespace another release has, values
//!    the chart's schema refuses, stop here, nothing written;
//! 6. in the cluster, what git must not hold, in the tenant's namespace (made when missing):
//!    the source's credentials (`<name>-git`, `<name>-git-ca`), the age identities
//!    (`<name>-age`) and the webhook's token (`<name>-webhook`, generated once, then kept);
//!    each written only when it holds something else, so that they exist before the
//!    EnvironmentSync that names them;
//! 7. the commit pushed: the controller applies it at its next reconcile.
//!
//! A run after a failed push finds the Secrets written and pushes again. A second run with the
//! same flags writes nothing: the release is there as it would write it, and the Secrets hold
//! what it would write. A release of another name or values is never changed: the tenant's
//! values are the environment file's from then on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::bootstrap::{
    Access, Branch, GivenAccess, chart_changes, controller_render, credentials, files_under, is_environment_sync,
    resolve, summarize, weaver_path, write_secret,
};
use super::install::{RELEASE, TENANT_CHART_DIR, check_name, check_namespace, tenant_chart_files};
use super::{Context, Progress};
use weaver_cluster::{Cluster, ConnectOptions};
use weaver_core::error::{Error, Result};
use weaver_git::GitRepo;
use weaver_project::Source;
use weaver_source::{CredentialNames, Credentials, FetchRequest, GitRef};

/// The controller's environment file, under the path it runs from.
const ENVIRONMENT_FILE: &str = "environments/weaver.yaml";
/// The tenants' chart, by name.
const CHART: &str = "environment-sync";

#[derive(Debug, Clone)]
pub struct TenantOptions {
    /// The tenant's name: its release's, ServiceAccount's and EnvironmentSync's.
    pub name: String,
    /// Its namespace: the EnvironmentSync's and its Secrets', and where its environments deploy.
    pub namespace: String,
    /// The controller's namespace, where its own EnvironmentSync says where weaver runs from.
    pub controller_namespace: String,
    /// The tenant's repository (`--source-url`), branch and weaver directory in it.
    pub source_url: String,
    pub source_branch: String,
    pub source_path: Option<String>,
    /// Its environments to keep applied.
    pub environments: Vec<String>,
    /// How the tenant's repository is read; None: it is public.
    pub access: Option<Access>,
    pub known_hosts: Option<(PathBuf, String)>,
    pub ca_file: Option<(PathBuf, Vec<u8>)>,
    /// The age identities its environments' secrets decrypt with, and the file they came from.
    pub age_key: Option<(PathBuf, String)>,
    pub connect: ConnectOptions,
    /// How long the git work may take.
    pub timeout: Duration,
    /// Who commits: (name, email).
    pub author: (String, String),
}

/// What adding a tenant did.
#[derive(Debug)]
pub struct TenantAdded {
    /// The controller's branch, and its commit that holds the tenant.
    pub branch: String,
    pub commit: String,
    /// Whether this run pushed it (false: the branch had the tenant already).
    pub pushed: bool,
    /// The files it wrote in that commit, from the repository's root (a chart's as one entry).
    pub written: Vec<String>,
    /// The Secrets it wrote (names of the tenant's namespace), none when they held the same.
    pub secrets_written: Vec<String>,
    /// The Secret of the webhook's `token`.
    pub webhook_secret: String,
}

/// Adds a tenant (see the module's docs).
pub async fn add(options: &TenantOptions, cx: Context<'_>) -> Result<TenantAdded> {
    let on = cx.on;
    // 1. The flags and files.
    check_input(options)?;
    let (name, namespace) = (options.name.as_str(), options.namespace.as_str());
    let secret = |suffix: &str| format!("{name}-{suffix}");
    // 2. The tenant source's credentials.
    let cluster = Cluster::connect(&options.connect).await?;
    let source_secret = match &options.access {
        None => None,
        Some(access) => {
            let kept = cluster.get(&resolve(&cluster, "v1", "Secret")?, Some(namespace), &secret("git")).await?;
            let given = GivenAccess {
                url: &options.source_url,
                access,
                known_hosts: options.known_hosts.as_ref(),
                ca_file: options.ca_file.as_ref(),
                secret: (format!("Secret {namespace}/{}", secret("git")), kept.as_ref()),
                write: false,
            };
            Some(credentials(&given, on).await?.0)
        }
    };
    // 3. The controller's EnvironmentSync: where weaver runs from, and how it is reached.
    let controller = Controller::read(&cluster, &options.controller_namespace).await?;
    // 4. The controller's branch, with write access.
    let branch =
        Branch::fetch(controller.request(options.timeout), controller.branch.clone(), true, "weaver tenant add")
            .await?;
    let fetched = &branch.fetched;
    let url = weaver_source::redact_url(&controller.url);
    on(Progress::Status(format!("{url}: read and write access on branch {}", controller.branch)));
    // 5. The release, committed and rendered.
    let git = GitRepo::open(&fetched.repository)?.with_identity(&options.author.0, &options.author.1);
    let fetched_commit = git.resolve(&fetched.commit, "the fetched branch")?;
    let tree = git.tree_source(&fetched_commit)?;
    let file = controller.path.join(ENVIRONMENT_FILE);
    let text = tree.read(&file).ok().flatten().ok_or_else(|| {
        Error::new(format!("branch {} of {url} has no {}: nothing was written", controller.branch, file.display()))
            .with_help("the controller's EnvironmentSync names a repository `weaver bootstrap` did not write")
    })?;
    let text = String::from_utf8(text).map_err(|_| Error::new(format!("{}: not UTF-8", file.display())))?;
    let release = release(options, source_secret.is_some(), &controller_labels(&file, &text)?);
    let mut changes = BTreeMap::new();
    if let Some(added) = with_release(&file, &text, &release)? {
        changes.insert(file.display().to_string(), Some(added.into_bytes()));
    }
    // The tenants' chart, when weaver runs from a path a weaver without it bootstrapped; one
    // there is left as it is: bootstrap keeps it at the controller's version.
    let present = files_under(&tree, &controller.path)?;
    if !present.iter().any(|f| f.starts_with(TENANT_CHART_DIR)) {
        changes.extend(chart_changes(
            &tree,
            &controller.path,
            &present,
            Path::new(TENANT_CHART_DIR),
            tenant_chart_files(),
        ));
    }
    let commit = match changes.is_empty() {
        true => fetched.commit.clone(),
        false => {
            let subject = format!(
                "weaver tenant add: {name}, environments {} of {}",
                options.environments.join(", "),
                weaver_source::redact_url(&options.source_url)
            );
            git.commit_detached(fetched_commit.commit, &changes, &subject)?
        }
    };
    let pushed = commit != fetched.commit;
    if pushed {
        check_renders(options, &fetched.repository.join(&controller.path), &commit, &file, cx).await?;
    }
    // 6. The namespace and Secrets, in the cluster only.
    let mut secrets: Vec<(String, BTreeMap<&'static str, String>)> = Vec::new();
    if let Some(credentials) = &source_secret {
        secrets.push((secret("git"), credentials.secret_data()));
    }
    if let Some((_, ca)) = &options.ca_file {
        secrets.push((secret("git-ca"), BTreeMap::from([("ca.crt", String::from_utf8_lossy(ca).into_owned())])));
    }
    if let Some((_, identities)) = &options.age_key {
        secrets.push((secret("age"), BTreeMap::from([("age.agekey", identities.clone())])));
    }
    let webhook_secret = secret("webhook");
    let secret_kind = resolve(&cluster, "v1", "Secret")?;
    let kept_token = cluster
        .get(&secret_kind, Some(namespace), &webhook_secret)
        .await?
        .filter(|s| s.pointer("/data/token").is_some());
    if kept_token.is_none() {
        secrets.push((webhook_secret.clone(), BTreeMap::from([("token", new_token()?)])));
    }
    let mut secrets_written = Vec::new();
    for (secret, data) in secrets {
        if write_secret(&cluster, namespace, &secret, data).await? {
            on(Progress::Status(format!("wrote Secret {namespace}/{secret}")));
            secrets_written.push(secret);
        }
    }
    // 7. The push: the controller applies it.
    let written = summarize(&changes.keys().cloned().collect::<Vec<_>>());
    if pushed {
        branch.push(&commit).await.map_err(|err| {
            err.context(format!("the Secrets of namespace {namespace} are written, the release is not pushed"))
                .with_help("run weaver tenant add again: it keeps the Secrets and pushes")
        })?;
        on(Progress::Status(format!(
            "pushed {} to branch {}: {}",
            &commit[..12],
            controller.branch,
            written.join(", ")
        )));
    }
    Ok(TenantAdded { branch: controller.branch.clone(), commit, pushed, written, secrets_written, webhook_secret })
}

/// Step 1: every flag and file, before anything is read from the cluster.
fn check_input(options: &TenantOptions) -> Result<()> {
    check_name("NAME", &options.name, "a tenant's name (its release's, ServiceAccount's and EnvironmentSync's)")?;
    check_namespace(&options.namespace)?;
    check_name("--controller-namespace", &options.controller_namespace, "a namespace's name")?;
    if options.environments.is_empty() {
        return Err(Error::new(
            "--environment: give at least one environment of the tenant's repository to keep applied",
        ));
    }
    for environment in &options.environments {
        check_name("--environment", environment, "an environment's name")?;
    }
    weaver_source::check_url(&options.source_url).map_err(|why| Error::new(format!("--source-url: {why}")))?;
    if options.source_branch.is_empty() {
        return Err(Error::new("--source-branch is empty: expected the branch of the tenant's repository"));
    }
    if let Some(path) = &options.source_path {
        weaver_path("--source-path", path)?;
    }
    if let Some((file, text)) = &options.age_key {
        let origin = weaver_secrets::IdentityOrigin::Given(format!("--age-key-file {}", file.display()));
        let identities = weaver_secrets::Identities::given(origin, text).map_err(|e| Error::new(e.to_string()))?;
        if identities.is_empty() {
            return Err(Error::new(format!(
                "--age-key-file {}: no age identity in it: expected lines starting with {}",
                file.display(),
                weaver_secrets::SECRET_KEY_PREFIX
            )));
        }
    }
    Ok(())
}

/// The controller's EnvironmentSync `weaver`: the repository, branch and path weaver runs
/// from, and the Secrets that reach it.
struct Controller {
    url: String,
    branch: String,
    path: PathBuf,
    credentials: Credentials,
    names: CredentialNames,
    ca_pem: Option<Vec<u8>>,
}

impl Controller {
    async fn read(cluster: &Cluster, namespace: &str) -> Result<Controller> {
        let named = format!("EnvironmentSync {namespace}/{RELEASE}");
        let not_bootstrapped = || {
            format!(
                "bootstrap the cluster first (weaver bootstrap), or give --controller-namespace: {named} says where weaver runs from"
            )
        };
        let kind = resolve(cluster, "weaver.example.com/v1beta1", "EnvironmentSync")
            .map_err(|err| err.with_help(not_bootstrapped()))?;
        let sync = cluster.get(&kind, Some(namespace), RELEASE).await?.ok_or_else(|| {
            Error::new(format!("there is no {named}: weaver does not run from git here")).with_help(not_bootstrapped())
        })?;
        let text = |pointer: &str| sync.pointer(pointer).and_then(Value::as_str).map(str::to_string);
        // A tenant is added by a commit to the repository weaver runs from: an artifact has none.
        if sync.pointer("/spec/source/oci").is_some() {
            return Err(Error::new(format!(
                "{named} runs weaver from an OCI artifact (spec.source.oci), and tenant add commits to a git repository"
            ))
            .with_help(
                "write the tenant's release into the weaver repository the artifact is packed from, then push the \
                 artifact again (weaver push artifact)",
            ));
        }
        let url = text("/spec/source/url").ok_or_else(|| Error::new(format!("{named} has no spec.source.url")))?;
        let branch = text("/spec/source/ref/branch").ok_or_else(|| {
            Error::new(format!("{named} follows no branch (spec.source.ref.branch): there is nowhere to push"))
        })?;
        let path = PathBuf::from(text("/spec/source/path").unwrap_or_default());
        let secret_kind = resolve(cluster, "v1", "Secret")?;
        let (credentials, names) = match text("/spec/source/secretRef/name") {
            None => (Credentials::None, CredentialNames::default()),
            Some(name) => {
                let secret = cluster.get(&secret_kind, Some(namespace), &name).await?;
                let given = GivenAccess {
                    url: &url,
                    access: &Access::FromCluster,
                    known_hosts: None,
                    ca_file: None,
                    secret: (format!("Secret {namespace}/{name}"), secret.as_ref()),
                    write: true,
                };
                credentials(&given, &|_| {}).await?
            }
        };
        let ca_pem = match text("/spec/source/caSecretRef/name") {
            None => None,
            Some(name) => {
                let secret = cluster.get(&secret_kind, Some(namespace), &name).await?;
                let ca = secret.as_ref().and_then(|s| s.pointer("/data/ca.crt")).and_then(Value::as_str);
                let ca =
                    ca.ok_or_else(|| Error::new(format!("Secret {namespace}/{name}, {named}'s CA, has no ca.crt")))?;
                use base64::Engine;
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(ca)
                    .map_err(|_| Error::new(format!("Secret {namespace}/{name}'s ca.crt is not base64")))?;
                Some(pem)
            }
        };
        Ok(Controller { url, branch, path, credentials, names, ca_pem })
    }

    fn request(&self, timeout: Duration) -> FetchRequest {
        FetchRequest {
            url: self.url.clone(),
            reference: GitRef::Branch(self.branch.clone()),
            credentials: self.credentials.clone(),
            credential_names: self.names.clone(),
            ca_pem: self.ca_pem.clone(),
            timeout,
        }
    }
}

/// The labels of the controller's own EnvironmentSync, as the environment file `file` (its
/// `text`) gives them (release `weaver`'s `selfSync.labels`): a controller started with a label
/// selector reconciles the syncs that carry them, its own among them.
fn controller_labels(file: &Path, text: &str) -> Result<Value> {
    let environment = weaver_yaml::documents(file, text)?.into_iter().next().unwrap_or(Value::Null);
    let releases = environment["releases"].as_array().cloned().unwrap_or_default();
    let own = releases.iter().find(|r| r["name"] == RELEASE);
    Ok(own.and_then(|r| r.pointer("/values/selfSync/labels")).cloned().unwrap_or(Value::Null))
}

/// The tenant's release of the tenants' chart: after the controller's own (`needs`), whose
/// chart holds the EnvironmentSync CRD; its Secrets named when the flags give what they hold,
/// its EnvironmentSync labelled as the controller's own (`labels`), so that the controller
/// reconciles it whatever label selector it was started with.
fn release(options: &TenantOptions, source_secret: bool, labels: &Value) -> Value {
    let name = &options.name;
    let mut source = json!({"url": options.source_url, "branch": options.source_branch});
    if let Some(path) = &options.source_path {
        source["path"] = json!(path);
    }
    if source_secret {
        source["secretName"] = json!(format!("{name}-git"));
    }
    if options.ca_file.is_some() {
        source["caSecretName"] = json!(format!("{name}-git-ca"));
    }
    let mut values = json!({
        "namespace": options.namespace,
        "environments": options.environments,
        "source": source,
        "webhook": {"secretName": format!("{name}-webhook")},
    });
    if options.age_key.is_some() {
        values["decryption"] = json!({"secretName": format!("{name}-age")});
    }
    if labels.as_object().is_some_and(|labels| !labels.is_empty()) {
        values["labels"] = labels.clone();
    }
    json!({"name": name, "chart": CHART, "namespace": options.namespace, "needs": [RELEASE], "values": values})
}

/// The environment file `file` (its `text`) with `release` added as the last of its
/// `releases`, written as text after the list's last line, so that every comment stays; None
/// when it holds that release already. A release of the same name with other values, or one
/// whose namespace (or whose tenant's) is the tenant's, is refused, naming it.
fn with_release(file: &Path, text: &str, release: &Value) -> Result<Option<String>> {
    let environment = weaver_yaml::documents(file, text)?.into_iter().next().unwrap_or(Value::Null);
    let releases = environment["releases"].as_array().cloned().unwrap_or_default();
    let (name, namespace) = (&release["name"], &release["namespace"]);
    for other in &releases {
        if other == release {
            return Ok(None);
        }
        let other_name = other["name"].as_str().unwrap_or("?");
        if &other["name"] == name {
            return Err(Error::new(format!(
                "{}: release `{other_name}` is there already, with other values than these flags give: nothing was written",
                file.display()
            ))
            .with_help("give the tenant another name, or change that release's values in the file and push"));
        }
        let other_namespace = other.get("namespace").unwrap_or(&environment["namespace"]);
        let tenant_namespace = other.pointer("/values/namespace").filter(|_| other["chart"] == CHART);
        if other_namespace == namespace || tenant_namespace == Some(namespace) {
            return Err(Error::new(format!(
                "{}: --namespace {} is release `{other_name}`'s: nothing was written",
                file.display(),
                namespace.as_str().unwrap_or_default()
            ))
            .with_help("a tenant's namespace is its own: give another with --namespace"));
        }
    }
    // The list's items are indented as the file's first one is.
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|line| line.trim_end() == "releases:");
    let indent = start
        .and_then(|start| lines[start + 1..].iter().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map_or(0, |item| item.len() - item.trim_start().len());
    let pad = " ".repeat(indent);
    let mut added = text.to_string();
    if !added.ends_with('\n') {
        added.push('\n');
    }
    added.push_str(&format!(
        "{pad}# Tenant `{}`, added by `weaver tenant add` (weaver {}): its namespace, account and EnvironmentSync.\n",
        name.as_str().unwrap_or_default(),
        env!("CARGO_PKG_VERSION")
    ));
    for line in weaver_yaml::to_yaml_string(&json!([release])).lines() {
        added.push_str(&format!("{pad}{line}\n"));
    }
    let mut expected = environment.clone();
    match expected.get_mut("releases").and_then(Value::as_array_mut) {
        Some(list) => list.push(release.clone()),
        None => expected["releases"] = json!([release]),
    }
    let read_back = weaver_yaml::documents(file, &added).ok().and_then(|d| d.into_iter().next());
    if start.is_none() || read_back.as_ref() != Some(&expected) {
        return Err(Error::new(format!(
            "{}: its `releases:` list is not the file's last block, where this release would be added: nothing was written",
            file.display()
        ))
        .with_help(format!(
            "move `releases:` to the end of the file and run again, or add the release to it by hand:\n{}",
            weaver_yaml::to_yaml_string(&json!([release]))
        )));
    }
    Ok(Some(added))
}

/// Renders the controller's environment from `commit` (of the repository's weaver directory
/// `repo`), which must hold the tenant's EnvironmentSync: values the chart refuses (or any
/// render error) leave everything as it was.
async fn check_renders(options: &TenantOptions, repo: &Path, commit: &str, file: &Path, cx: Context<'_>) -> Result<()> {
    let render_options = controller_render(repo.to_path_buf(), commit);
    let desired = super::blocking_with(cx, move |cx| super::render::render(&render_options, cx))
        .await
        .map_err(|err| err.context(format!("{}: nothing was pushed or written", file.display())))?;
    let makes_it = desired
        .rendered
        .releases
        .iter()
        .filter(|r| r.name == options.name)
        .flat_map(|r| &r.manifests)
        .any(|m| is_environment_sync(m, &options.name));
    if !makes_it {
        return Err(Error::new(format!(
            "{}: release `{}` renders no EnvironmentSync `{}`: nothing was pushed or written",
            file.display(),
            options.name,
            options.name
        )));
    }
    Ok(())
}

/// A new webhook token: 32 random bytes, as hex.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::new(format!("no randomness for the webhook's token: {e}")))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::install::{DEFAULT_NAMESPACE, ENVIRONMENT};
    use crate::action::render::Selection;
    use crate::action::testing::{Fixture, Heard, Remote, TOKEN, bootstrapped_with, failure, render_options};

    /// How `weaver tenant add shop --source-url … --source-path deploy --environment staging
    /// --environment prod --token-file … --age-key-file …` adds tenant `shop` to the fixture's
    /// bootstrapped cluster; the tenant's token file is the remote's, its identities a new key's.
    fn shop(fixture: &Fixture, remote: &Remote, age_key: &str) -> TenantOptions {
        TenantOptions {
            name: "shop".into(),
            namespace: "shop".into(),
            controller_namespace: DEFAULT_NAMESPACE.into(),
            source_url: "https://git.example.org/acme/shop.git".into(),
            source_branch: "main".into(),
            source_path: Some("deploy".into()),
            environments: vec!["staging".into(), "prod".into()],
            access: Some(Access::Token { file: remote.dir.path().join("token"), username: "shop".into() }),
            known_hosts: None,
            ca_file: None,
            age_key: Some((remote.dir.path().join("shop.agekey"), age_key.to_string())),
            connect: fixture.connect(),
            timeout: Duration::from_secs(30),
            author: ("weaver tests".into(), "tests@weaver.invalid".into()),
        }
    }

    /// A new age identity file's text, as `age-keygen` writes it.
    fn age_key(dir: &Path) -> String {
        let file = dir.join("shop.agekey");
        weaver_secrets::NewIdentity::generate().write_new_file(&file).expect("write the key");
        std::fs::read_to_string(file).expect("read the key")
    }

    /// Secret `namespace/name`'s data, decoded.
    async fn secret_data(fixture: &Fixture, namespace: &str, name: &str) -> BTreeMap<String, String> {
        use k8s_openapi::api::core::v1::Secret;
        let api: kube::Api<Secret> = kube::Api::namespaced(fixture.client.clone(), namespace);
        let secret = api.get_opt(name).await.expect("get the Secret").unwrap_or_else(|| panic!("no Secret {name}"));
        let data = secret.data.unwrap_or_default();
        data.into_iter().map(|(k, v)| (k, String::from_utf8(v.0).expect("text"))).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tenant_is_pushed_with_its_secrets_made_first_renders_its_environment_sync_and_a_second_run_writes_nothing()
     {
        let Some(remote) = Remote::serve().await else { return };
        let fixture = Fixture::start().await;
        let heard = Heard::default();
        // The controller reconciles the EnvironmentSyncs labelled as its own alone.
        bootstrapped_with(&fixture, &remote, &heard, &["selector=team=platform", "selfSync.labels.team=platform"])
            .await;
        // As a weaver before this one bootstrapped it: without the tenants' chart.
        let remote_dir = remote.dir.path().to_path_buf();
        let repo = git2::Repository::open(remote_dir.join("fleet")).expect("the remote");
        let without_chart = tokio::task::spawn_blocking(move || {
            std::fs::remove_dir_all(remote_dir.join("fleet/clusters/test").join(TENANT_CHART_DIR))
                .expect("remove the chart");
            weaver_test_support::git::commit_all(&repo, "a bootstrap before charts/environment-sync").to_string()
        })
        .await
        .expect("committed");
        let identities = age_key(remote.dir.path());
        let options = shop(&fixture, &remote, &identities);

        fixture.writes();
        let added = add(&options, heard.cx()).await.expect("the tenant added");
        assert!(added.pushed, "{added:?}");
        let chart = format!("{} file(s) of {TENANT_CHART_DIR}", tenant_chart_files().len());
        assert_eq!(added.written, ["clusters/test/environments/weaver.yaml".to_string(), chart]);
        assert_eq!(added.secrets_written, ["shop-git", "shop-age", "shop-webhook"]);
        assert_eq!(remote.main(), added.commit);
        let pushed = remote.repo.find_commit(added.commit.parse().expect("a commit id")).expect("the pushed commit");
        assert_eq!(pushed.parent_id(0).expect("a parent").to_string(), without_chart);
        // The bootstrap's file as it was, its comments too, then the tenant's release.
        let file = Path::new("clusters/test").join(ENVIRONMENT_FILE);
        let text_at = |commit: &str| {
            let commit = remote.repo.find_commit(commit.parse().expect("a commit id")).expect("the commit");
            let entry = commit.tree().expect("its tree").get_path(&file).expect("the environment file");
            String::from_utf8(remote.repo.find_blob(entry.id()).expect("a file").content().to_vec()).expect("text")
        };
        let tenant = "# Tenant `shop`, added by `weaver tenant add`";
        let (before, release) = text_at(&added.commit)
            .split_once(tenant)
            .map(|(b, r)| (b.to_string(), r.to_string()))
            .expect("the release");
        assert_eq!(before, text_at(&without_chart));
        assert!(release.contains("\n- name: shop\n  chart: environment-sync\n  namespace: shop\n"), "{release}");
        // The namespace, then its Secrets, and nothing else in the cluster: the controller makes the rest.
        let writes = fixture.writes();
        assert_eq!(writes.first().map(String::as_str), Some("PATCH /api/v1/namespaces/shop"), "{writes:#?}");
        assert_eq!(writes.len(), 4, "{writes:#?}");
        let source = secret_data(&fixture, "shop", "shop-git").await;
        assert_eq!((source["username"].as_str(), source["password"].as_str()), ("shop", TOKEN));
        assert_eq!(secret_data(&fixture, "shop", "shop-age").await["age.agekey"], identities);
        let token = secret_data(&fixture, "shop", "shop-webhook").await["token"].clone();
        assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "a 32-byte token");
        let told = heard.told();
        assert!(
            told.iter().all(|t| !t.contains(TOKEN) && !t.contains(&token) && !t.contains("AGE-SECRET-KEY")),
            "{told:#?}"
        );

        // The controller's environment, rendered from the pushed commit: the tenant's
        // EnvironmentSync, account and namespace, from the flags.
        let selection = Selection {
            env: ENVIRONMENT.into(),
            repo: remote.dir.path().join("fleet/clusters/test"),
            rev: Some(added.commit.clone()),
            ..Selection::default()
        };
        let rendering = render_options(selection, "");
        let desired = crate::action::blocking_with(heard.cx(), move |cx| crate::action::render::render(&rendering, cx))
            .await
            .expect("the controller's environment renders");
        let shop = desired.rendered.releases.iter().find(|r| r.name == "shop").expect("release shop");
        let object = |kind: &str| {
            shop.manifests
                .iter()
                .find(|m| m.object["kind"] == kind)
                .map(|m| m.object.clone())
                .unwrap_or_else(|| panic!("no {kind}"))
        };
        let sync = object("EnvironmentSync");
        assert_eq!(sync["metadata"]["namespace"], "shop", "{sync}");
        assert_eq!(sync["metadata"]["labels"]["team"], "platform", "labelled as the controller's own: {sync}");
        assert_eq!(
            sync["spec"]["source"],
            json!({"url": "https://git.example.org/acme/shop.git", "ref": {"branch": "main"}, "path": "deploy", "secretRef": {"name": "shop-git"}}),
        );
        assert_eq!(sync["spec"]["environments"], json!(["staging", "prod"]));
        assert_eq!(sync["spec"]["decryption"], json!({"secretRef": {"name": "shop-age"}}));
        assert_eq!(sync["spec"]["webhook"], json!({"secretRef": {"name": "shop-webhook"}}));
        assert_eq!((&sync["spec"]["interval"], &sync["spec"]["serviceAccountName"]), (&json!("1m"), &json!("shop")));
        assert_eq!(object("ServiceAccount")["metadata"]["namespace"], "shop");
        assert_eq!(object("Namespace")["metadata"]["name"], "shop");

        // Again: nothing written, to git or the cluster.
        let again = add(&options, heard.cx()).await.expect("the second run");
        assert!(!again.pushed && again.secrets_written.is_empty(), "{again:?}");
        assert_eq!((again.commit.as_str(), remote.main()), (added.commit.as_str(), added.commit.clone()));
        assert_eq!(fixture.writes(), Vec::<String>::new());

        // A name another release has, or a namespace another's: refused, naming it, nothing written.
        let other = TenantOptions { environments: vec!["dev".into()], ..options.clone() };
        let refused = failure(add(&other, heard.cx()).await);
        assert!(
            refused.starts_with("clusters/test/environments/weaver.yaml: release `shop` is there already"),
            "{refused}"
        );
        let same_namespace = TenantOptions { name: "shop-two".into(), ..options.clone() };
        let refused = failure(add(&same_namespace, heard.cx()).await);
        assert!(refused.contains("--namespace shop is release `shop`'s: nothing was written"), "{refused}");
        let controllers = TenantOptions { name: "ops".into(), namespace: DEFAULT_NAMESPACE.into(), ..options.clone() };
        let refused = failure(add(&controllers, heard.cx()).await);
        assert!(refused.contains(&format!("--namespace {DEFAULT_NAMESPACE} is release `weaver`'s")), "{refused}");
        assert_eq!(remote.main(), added.commit, "pushed");
        assert_eq!(fixture.writes(), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bad_flags_and_files_are_refused_naming_them_with_nothing_written() {
        let Some(remote) = Remote::serve().await else { return };
        let fixture = Fixture::start().await;
        let heard = Heard::default();
        let identities = age_key(remote.dir.path());
        let options = shop(&fixture, &remote, &identities);
        let missing = remote.dir.path().join("shop-kye");
        let cases = [
            (TenantOptions { name: "Shop".into(), ..options.clone() }, "NAME \"Shop\" is not a tenant's name"),
            (
                TenantOptions { namespace: "-shop".into(), ..options.clone() },
                "--namespace \"-shop\" is not a namespace's name",
            ),
            (
                TenantOptions { environments: vec!["Prod".into()], ..options.clone() },
                "--environment \"Prod\" is not an environment's name",
            ),
            (
                TenantOptions { source_url: "ftp://host/shop".into(), ..options.clone() },
                "--source-url: the source URL ftp://host/shop has scheme ftp",
            ),
            (
                TenantOptions { source_path: Some("../deploy".into()), ..options.clone() },
                "--source-path \"../deploy\" is not a directory inside the repository",
            ),
            (
                TenantOptions {
                    age_key: Some((PathBuf::from("shop.agekey"), concat!("AGE-SECRET-KEY-", "1NOTAKEY\n").into())),
                    ..options.clone()
                },
                "--age-key-file shop.agekey",
            ),
            (
                TenantOptions {
                    access: Some(Access::KeyFile { file: missing.clone(), generate: false }),
                    ..options.clone()
                },
                "--private-key-file is for an ssh URL",
            ),
            (
                TenantOptions {
                    source_url: "ssh://git@git.example.org/acme/shop.git".into(),
                    access: Some(Access::KeyFile { file: missing.clone(), generate: false }),
                    ..options.clone()
                },
                &format!("--private-key-file {}: no such file", missing.display()),
            ),
        ];
        for (given, said) in cases {
            let refused = failure(add(&given, heard.cx()).await);
            assert!(refused.starts_with(said), "{said}: {refused}");
            assert!(!refused.contains("NOTAKEY"), "the key was shown: {refused}");
        }
        assert!(!missing.exists(), "a key was written at the mistyped path");
        // The cluster was only read, the key files' Secret looked up.
        assert_eq!(fixture.writes(), Vec::<String>::new());
    }
}
