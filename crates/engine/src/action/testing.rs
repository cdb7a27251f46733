//! What the action files' tests share: the cluster seam made cheap. An action takes its cluster
//! through [`ConnectOptions`]; here they name a fake API server of the test's own
//! ([`weaver_test_apiserver`]), and the repository the action reads is a small one written into
//! a temporary directory: environment `dev` (namespace `dev`) with release `web` of chart `app`,
//! a ConfigMap `web-config` and a Deployment `web`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use serde_json::json;
use weaver_api::environment_sync::EnvironmentSync;
use weaver_cluster::{ConnectOptions, GivenCluster};
use weaver_core::error::Result;
use weaver_plan::release::record::Record;
use weaver_render::overrides::OverrideFlags;
use weaver_secrets::Redactor;
use weaver_test_apiserver::TestApiServer;
use weaver_test_support::git_http::{GitHttpServer, Options, http_backend_missing};

use super::apply::{Applied, ApplyActionOptions, Settings, apply};
use super::bootstrap::{Access, BootstrapOptions, Bootstrapped, bootstrap};
use super::drift::DriftOptions;
use super::install::{DEFAULT_NAMESPACE, InstallOptions, RELEASE};
use super::removed::PruneReleases;
use super::render::{IfEmpty, RenderOptions, Selection};
use super::{Context, Keys, Progress};

/// The namespace of environment `dev`'s release `web`.
const NAMESPACE: &str = "dev";

/// The repository's files: environment `dev`, chart `app`.
const FILES: [(&str, &str); 5] = [
    ("environments/dev.yaml", "namespace: dev\nreleases:\n  - name: web\n    chart: app\n"),
    ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
    ("charts/app/values.yaml", "greeting: hello\nimage: nginx:1.27\n"),
    (
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}-config\ndata:\n  greeting: {{ values.greeting }}\n",
    ),
    (
        "charts/app/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ release.name }}\nspec:\n  replicas: 1\n  \
         selector:\n    matchLabels: {app: {{ release.name }}}\n  template:\n    metadata:\n      labels: {app: {{ release.name }}}\n    \
         spec:\n      containers:\n        - name: app\n          image: {{ values.image }}\n",
    ),
];

/// The repository, written into a directory of its own, removed when it is dropped.
pub(crate) struct Repo(tempfile::TempDir);

impl Repo {
    pub(crate) fn new() -> Repo {
        let repo = Repo(tempfile::tempdir().expect("a temporary directory"));
        for (path, text) in FILES {
            repo.write(path, text);
        }
        repo
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.0.path().to_path_buf()
    }

    /// Writes `text` to the repository's file `path`, replacing it.
    pub(crate) fn write(&self, path: &str, text: &str) {
        let full = self.0.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a file in a directory")).expect("create the directory");
        std::fs::write(full, text).expect("write the file");
    }

    /// The chart's greeting (`web-config`'s data) changed to `greeting`.
    pub(crate) fn greet(&self, greeting: &str) {
        self.write("charts/app/values.yaml", &format!("greeting: {greeting}\nimage: nginx:1.27\n"));
    }

    /// Environment `dev`'s whole selection, read from the working tree.
    pub(crate) fn selection(&self) -> Selection {
        Selection { env: "dev".into(), repo: self.path(), ..Default::default() }
    }

    /// How to render environment `dev`, with no key: the repository has no secrets.
    pub(crate) fn render_options(&self) -> RenderOptions {
        render_options(self.selection(), "")
    }
}

/// How to render `selection` with `identities` (age identities, one a line) as the only keys,
/// as the controller's are given (none of this machine's are read), validating strictly.
pub(crate) fn render_options(selection: Selection, identities: &str) -> RenderOptions {
    RenderOptions {
        selection,
        keys: Keys::Given { origin: "the test".into(), identities: Arc::new(identities.into()) },
        if_empty: IfEmpty::Warn,
        validate: weaver_validate::Mode::Strict,
        overrides: Default::default(),
        charts: weaver_source::charts::Archives::Machine,
        limits: Default::default(),
    }
}

/// The repository and a fake API server of the test's own, which the actions reach through
/// the kubeconfig it writes, as the CLI's do.
pub(crate) struct Fixture {
    pub(crate) server: TestApiServer,
    pub(crate) repo: Repo,
    /// The fake's admin, for what a test does in the cluster beside the action.
    pub(crate) client: kube::Client,
}

impl Fixture {
    /// Must run inside a tokio runtime (the client's connections are its tasks).
    pub(crate) async fn start() -> Fixture {
        let server = TestApiServer::start();
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).expect("the fake's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("its config");
        let client = kube::Client::try_from(config).expect("a client of the fake");
        Fixture { server, repo: Repo::new(), client }
    }

    /// The CLI's seam: the fake's kubeconfig, its current context.
    pub(crate) fn connect(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: Some(self.server.kubeconfig_path().to_path_buf()),
            context: None,
            request_timeout: Duration::from_secs(5),
            retry_budget: Duration::from_secs(2),
            given: None,
        }
    }

    /// The controller's seam: the fake handed over as a connection, no kubeconfig read.
    pub(crate) async fn given(&self) -> ConnectOptions {
        let (config, info) = weaver_cluster::kube_config(&self.connect()).await.expect("the fake's config");
        let given = GivenCluster::Config { config: Box::new(config), info, rate: None, live: None };
        ConnectOptions { kubeconfig: None, given: Some(given), ..self.connect() }
    }

    pub(crate) fn drift_options(&self) -> DriftOptions {
        let render = self.repo.render_options();
        DriftOptions {
            selection: render.selection,
            connect: self.connect(),
            concurrency: 4,
            servers: None,
            keys: render.keys,
            notify: false,
        }
    }

    /// How `weaver apply --env dev` applies, waiting for readiness (the fake's workloads are
    /// ready at once).
    pub(crate) fn apply_options(&self) -> ApplyActionOptions {
        let settings = Settings {
            dry_run: false,
            wait: true,
            timeout: Duration::from_secs(10),
            force_conflicts: false,
            prune: true,
            concurrency: 4,
            lock_timeout: Duration::from_secs(5),
            lock_lease: Duration::from_secs(15),
            applier: None,
            take_ownership: false,
            plan_check: None,
            record_key: None,
        };
        ApplyActionOptions {
            render: self.repo.render_options(),
            connect: self.connect(),
            settings,
            require_clean: false,
            prune_releases: PruneReleases::No,
            allow_overrides: false,
            forget_helm_release: false,
            servers: None,
        }
    }

    /// How `weaver install` installs the chart built in, into its default namespace.
    pub(crate) fn install_options(&self) -> InstallOptions {
        InstallOptions {
            namespace: DEFAULT_NAMESPACE.into(),
            overrides: Default::default(),
            connect: self.connect(),
            settings: self.apply_options().settings,
        }
    }

    /// Applies environment `dev` as the repository has it now, which must succeed.
    pub(crate) async fn apply(&self) -> Applied {
        let heard = Heard::default();
        let applied = apply(&self.apply_options(), heard.cx()).await.expect("the apply");
        assert!(!applied.report.failed(), "the apply failed: {:?}", applied.report.releases);
        applied
    }

    /// The writes the fake took since the last call (not the environment's lock, which every
    /// apply takes), as `METHOD path`, dry runs marked; forgets them.
    pub(crate) fn writes(&self) -> Vec<String> {
        let requests = self.server.requests();
        self.server.clear_requests();
        let writes = requests.into_iter().filter(|r| r.method != "GET" && !r.path.contains("/leases"));
        writes.map(|r| format!("{} {}{}", r.method, r.path, if r.dry_run { " (dry run)" } else { "" })).collect()
    }

    /// ConfigMap `name` of namespace `dev`, None when there is none.
    pub(crate) async fn config_map(&self, name: &str) -> Option<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.client.clone(), NAMESPACE).get_opt(name).await.expect("get the ConfigMap")
    }

    pub(crate) async fn deployment(&self, name: &str) -> Option<Deployment> {
        self.deployment_in(NAMESPACE, name).await
    }

    pub(crate) async fn deployment_in(&self, namespace: &str, name: &str) -> Option<Deployment> {
        Api::<Deployment>::namespaced(self.client.clone(), namespace).get_opt(name).await.expect("get the Deployment")
    }

    /// Changes `web-config`'s greeting on the server as someone else would (`kubectl edit`).
    pub(crate) async fn edit_greeting(&self, greeting: &str) {
        let patch = serde_json::json!({"data": {"greeting": greeting}});
        Api::<ConfigMap>::namespaced(self.client.clone(), NAMESPACE)
            .patch("web-config", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("edit the ConfigMap");
    }

    /// Deletes `web-config` from the server.
    pub(crate) async fn delete_config_map(&self) {
        Api::<ConfigMap>::namespaced(self.client.clone(), NAMESPACE)
            .delete("web-config", &Default::default())
            .await
            .expect("delete the ConfigMap");
    }

    /// The release records of namespace `dev`, decoded from their Secrets, oldest first.
    pub(crate) async fn records(&self) -> Vec<Record> {
        let secrets = Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await
            .expect("list the Secrets");
        let secrets: Vec<Value> = secrets.items.iter().map(|s| serde_json::to_value(s).expect("JSON")).collect();
        let mut records = weaver_plan::release::record::from_secrets(&secrets).expect("records decode");
        records.sort_by_key(|r| r.revision);
        records
    }
}

/// A [`Context`] that keeps what the action told: its warnings, status lines and how each
/// notification went, in order.
pub(crate) struct Heard {
    redactor: Redactor,
    told: Arc<Mutex<Vec<String>>>,
    on: Box<dyn Fn(Progress<'_>) + Send + Sync>,
    /// Never set by the test; the test's own, as an apply that loses its lock sets it.
    interrupted: AtomicBool,
}

impl Default for Heard {
    fn default() -> Heard {
        let told: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&told);
        let on = Box::new(move |progress: Progress<'_>| match progress {
            Progress::Warning(text) | Progress::Status(text) => keep.lock().expect("not poisoned").push(text),
            Progress::Notified(delivery) => keep.lock().expect("not poisoned").push(match delivery.result {
                Ok(sent) => format!("notified {}: sent in {} attempt(s)", delivery.name, sent.attempts),
                Err(failure) => format!("notified {}: {}", delivery.name, failure.reason),
            }),
            _ => {}
        });
        Heard { redactor: Redactor::default(), told, on, interrupted: AtomicBool::new(false) }
    }
}

impl Heard {
    pub(crate) fn cx(&self) -> Context<'_> {
        Context::new(&self.redactor, &*self.on).interruptible(&self.interrupted)
    }

    /// The warnings, status lines and notifications told so far.
    pub(crate) fn told(&self) -> Vec<String> {
        self.told.lock().expect("not poisoned").clone()
    }
}

/// An action's result that must be an error: its message and help, for asserting on.
pub(crate) fn failure<T>(result: Result<T>) -> String {
    match result {
        Ok(_) => panic!("the action succeeded"),
        Err(err) => format!("{}{}", err.message, err.help.map(|help| format!(" (help: {help})")).unwrap_or_default()),
    }
}

pub(crate) const TOKEN: &str = "glpat-bootstrap-7f3a9c";

/// Repository `fleet` with a first commit on main, served over smart HTTP to who gives
/// [`TOKEN`], and the token's file.
pub(crate) struct Remote {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) repo: git2::Repository,
    pub(crate) server: GitHttpServer,
}

impl Remote {
    /// None, said, when git's http-backend is missing (a failure under
    /// WEAVER_REQUIRE_INTEROP=1, as CI runs).
    pub(crate) async fn serve() -> Option<Remote> {
        if !weaver_test_support::skip::interop_or_skip(http_backend_missing().as_deref()) {
            return None;
        }
        // The git server blocks on a runtime of its own while it starts.
        let remote = tokio::task::spawn_blocking(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let repo = weaver_test_support::git::init(&dir.path().join("fleet"));
            repo.set_head("refs/heads/main").expect("HEAD on main");
            // The bootstrap's push lands in the working tree.
            weaver_test_support::git::follow_pushes(&repo);
            std::fs::write(dir.path().join("fleet/README.md"), "the fleet\n").expect("write README.md");
            weaver_test_support::git::commit_all(&repo, "first");
            std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("write the token");
            let options = Options { basic: Some(("git".into(), TOKEN.into())), ..Options::default() };
            let server = GitHttpServer::start(dir.path(), options);
            Remote { dir, repo, server }
        });
        Some(remote.await.expect("the git server started"))
    }

    /// The commit main is at.
    pub(crate) fn main(&self) -> String {
        let main = self.repo.find_reference("refs/heads/main").expect("main");
        main.target().expect("a commit").to_string()
    }

    /// How `weaver bootstrap --url URL --token-file FILE --path clusters/test` bootstraps the
    /// fixture's cluster, with `set` (`--set`) over the chart's values.
    pub(crate) fn options(&self, fixture: &Fixture, set: &[&str]) -> BootstrapOptions {
        BootstrapOptions {
            url: format!("{}/fleet", self.server.base),
            branch: "main".into(),
            path: "clusters/test".into(),
            namespace: DEFAULT_NAMESPACE.into(),
            access: Access::Token { file: self.dir.path().join("token"), username: "git".into() },
            known_hosts: None,
            ca_file: None,
            overrides: OverrideFlags { set: set.iter().map(|s| s.to_string()).collect(), ..Default::default() },
            connect: fixture.connect(),
            settings: fixture.apply_options().settings,
            author: ("weaver tests".into(), "tests@weaver.invalid".into()),
            recover: false,
        }
    }
}

/// What the controller the chart installs would do, which does not run here: once
/// EnvironmentSync `weaver` exists, its status says it applied `remote`'s main.
pub(crate) async fn applied_by_its_controller(fixture: &Fixture, remote: &Remote) {
    let syncs: Api<EnvironmentSync> = Api::namespaced(fixture.client.clone(), DEFAULT_NAMESPACE);
    let named = watcher::Config::default().fields(&format!("metadata.name={RELEASE}"));
    let mut created = std::pin::pin!(watcher(syncs.clone(), named).default_backoff().applied_objects());
    // The kind is not served until the apply has made its CRD: until then the watch fails,
    // and is retried backing off.
    while let Some(Err(_)) = created.next().await {}
    let ready = json!({"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "applied",
                       "lastTransitionTime": jiff::Timestamp::now().to_string()});
    let status = json!({"status": {"lastAppliedRevision": remote.main(), "conditions": [ready]}});
    syncs.patch_status(RELEASE, &PatchParams::default(), &Patch::Merge(status)).await.expect("its status");
}

/// A bootstrap of the fixture's cluster from `remote` (`remote.options(fixture, &[])`), with
/// [`applied_by_its_controller`] standing in for the controller; it must succeed.
pub(crate) async fn bootstrapped(fixture: &Fixture, remote: &Remote, heard: &Heard) -> Bootstrapped {
    bootstrapped_with(fixture, remote, heard, &[]).await
}

/// [`bootstrapped`], with `set` values (`--set`).
pub(crate) async fn bootstrapped_with(fixture: &Fixture, remote: &Remote, heard: &Heard, set: &[&str]) -> Bootstrapped {
    let options = remote.options(fixture, set);
    let bootstrapped = bootstrap(&options, heard.cx());
    let controller = applied_by_its_controller(fixture, remote);
    tokio::pin!(bootstrapped, controller);
    // A bootstrap that fails before its EnvironmentSync exists ends the test with its error;
    // the stand-in controller would wait for it forever.
    let done = tokio::select! {
        done = &mut bootstrapped => done,
        () = &mut controller => bootstrapped.await,
    };
    done.expect("the bootstrap")
}
