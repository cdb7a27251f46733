//! What the reconcile's tests share: an EnvironmentSync reconciled once at a time, as the
//! controller reconciles it when its watch hands it over ([`controller::reconcile`]), against a
//! fake API server of the test's own ([`weaver_test_apiserver`]) and a repository served over
//! smart HTTP on loopback by git's own http-backend ([`weaver_test_support::git_http`]): branch
//! `main`, environment `dev` (namespace `app`) with release `app` of chart `app`, whose one
//! ConfigMap `app` says the chart's `greeting`. The EnvironmentSyncs apply as ServiceAccount
//! `deployer`, which may do anything in namespace `app` and read namespaces, nothing more.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use weaver_plan::release::record::Record;
use weaver_test_apiserver::TestApiServer;
use weaver_test_support::git_http::{GitHttpServer, Options, http_backend_missing};

use super::api::{EnvironmentSync, RECONCILE_REQUESTED_AT};
use super::controller::{self, CONTROLLER_NAME, Context};
use super::reconcile::{Clock, Shared};

/// Where environment `dev` applies, its lock too, and where the EnvironmentSyncs are.
pub(crate) const NAMESPACE: &str = "app";
/// The ServiceAccount the EnvironmentSyncs apply as.
pub(crate) const ACCOUNT: &str = "deployer";

/// The repository's files at its first commit.
const FILES: [(&str, &str); 4] = [
    ("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n"),
    ("charts/app/values.yaml", "greeting: hello\n"),
    (
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\n\
         data:\n  greeting: {{ values.greeting }}\n",
    ),
    (
        "environments/dev.yaml",
        "namespace: app\ncluster:\n  lockNamespace: app\nreleases:\n  - name: app\n    chart: app\n",
    ),
];

/// The repository `shop`, with a working tree to commit in, served over smart HTTP.
pub(crate) struct Source {
    root: tempfile::TempDir,
    repo: git2::Repository,
    pub(crate) server: GitHttpServer,
}

impl Source {
    fn serve(options: Options) -> Source {
        let root = tempfile::tempdir().expect("a temporary directory");
        let repo = weaver_test_support::git::init(&root.path().join("shop"));
        repo.set_head("refs/heads/main").expect("HEAD on main");
        // A push to main (a promotion's) updates the working tree the test commits in next.
        weaver_test_support::git::follow_pushes(&repo);
        let server = GitHttpServer::start(root.path(), options);
        let source = Source { root, repo, server };
        for (path, text) in FILES {
            source.write(path, text);
        }
        source
    }

    /// The working tree, for a test that commits with git itself (signed commits, merges).
    pub(crate) fn dir(&self) -> std::path::PathBuf {
        self.root.path().join("shop")
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/shop", self.server.base)
    }

    /// Writes `text` to the working tree's file `path`, replacing it.
    pub(crate) fn write(&self, path: &str, text: &str) {
        let full = self.root.path().join("shop").join(path);
        std::fs::create_dir_all(full.parent().expect("a file in a directory")).expect("create the directory");
        std::fs::write(full, text).expect("write the file");
    }

    /// Commits the working tree on main; the commit's id.
    pub(crate) fn commit(&self, message: &str) -> String {
        weaver_test_support::git::commit_all(&self.repo, message).to_string()
    }

    /// The commit branch `name` is at.
    pub(crate) fn branch(&self, name: &str) -> Option<String> {
        let reference = self.repo.find_reference(&format!("refs/heads/{name}")).ok()?;
        reference.target().map(|id| id.to_string())
    }

    /// The parent of `commit`, its file `path`, and its author's name and email.
    pub(crate) fn commit_of(&self, commit: &str, path: &str) -> (String, String, (String, String)) {
        let commit = self.repo.find_commit(commit.parse().expect("a commit id")).expect("the commit");
        let tree = commit.tree().expect("its tree");
        let entry = tree.get_path(Path::new(path)).expect("the file");
        let blob = entry.to_object(&self.repo).and_then(|o| o.peel_to_blob()).expect("a file");
        let text = String::from_utf8(blob.content().to_vec()).expect("text");
        let author = commit.author();
        let author = (author.name().unwrap_or_default().to_string(), author.email().unwrap_or_default().to_string());
        (commit.parent_id(0).expect("a parent").to_string(), text, author)
    }

    /// The requests the git server answered since the last call, as `METHOD path`; forgets them.
    pub(crate) fn requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.server.requests.lock().expect("not poisoned"))
    }
}

/// The fake API server, the source, and the controller's context.
pub(crate) struct Fixture {
    pub(crate) server: TestApiServer,
    pub(crate) source: Source,
    admin: kube::Client,
    context: Arc<Context>,
    /// The git mirrors and chart archives.
    _cache: tempfile::TempDir,
}

impl Fixture {
    /// The fixture with its repository served as is; None, said, when git's http-backend is
    /// missing (CI's WEAVER_REQUIRE_INTEROP=1 makes that a failure).
    pub(crate) async fn start() -> Option<Fixture> {
        Fixture::serving(Options::default()).await
    }

    /// [`Fixture::start`], its repository served with `options` (credentials it asks for).
    pub(crate) async fn serving(options: Options) -> Option<Fixture> {
        if !weaver_test_support::skip::interop_or_skip(http_backend_missing().as_deref()) {
            return None;
        }
        let server = TestApiServer::start();
        let connect = weaver_cluster::ConnectOptions {
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            context: None,
            request_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(5),
            given: None,
        };
        let (config, info) = weaver_cluster::kube_config(&connect).await.expect("the fake's config");
        let config = weaver_cluster::for_watching(config);
        let admin = kube::Client::try_from(config.clone()).expect("a client of the fake");
        let cache = tempfile::tempdir().expect("a temporary directory");
        let limits = weaver_source::CacheLimits { max_disk_bytes: 1 << 30, max_repositories: 100 };
        let budget = weaver_source::Budget::new(limits);
        let git = weaver_source::GitCache::new(cache.path().to_path_buf(), budget.clone()).expect("the git cache");
        let charts =
            weaver_source::ChartCache::new(cache.path().join("charts"), budget.clone()).expect("the chart cache");
        let artifacts =
            weaver_source::ArtifactCache::new(cache.path().join("artifacts"), budget).expect("the artifact cache");
        let shared = Shared {
            client: admin.clone(),
            info,
            tenants: crate::tenant::Tenants::new(admin.clone(), config, None),
            cache: Arc::new(git),
            charts: Arc::new(charts),
            artifacts: Arc::new(artifacts),
            default_account: None,
            cross_namespace_refs: false,
            metrics: Default::default(),
            live: Default::default(),
            // As WEAVER_RECORD_KEY_FILE gives it: records are signed, and promotions' `signed` gate checks them.
            record_key: Some(weaver_secrets::record_key::RecordKey::new(b"a record key of more than thirty-two bytes")),
            lock_lease: weaver_cluster::DEFAULT_LEASE_DURATION,
            stopping: Default::default(),
            clock: Clock::system(),
            registries: Default::default(),
            renders: Default::default(),
        };
        // No dependsOn among the tests' EnvironmentSyncs: the watch's store stays empty.
        let (syncs, _) = kube::runtime::reflector::store();
        let reporter = Reporter { controller: CONTROLLER_NAME.into(), instance: None };
        let context = Arc::new(Context::new(Arc::new(shared), reporter, syncs));
        // The git server blocks on a runtime of its own while it starts.
        let source = tokio::task::spawn_blocking(|| Source::serve(options)).await.expect("the git server started");
        let fixture = Fixture { server, source, admin, context, _cache: cache };
        fixture.create::<CustomResourceDefinition>(super::crd()).await;
        fixture.create::<Namespace>(json!({"metadata": {"name": NAMESPACE}})).await;
        fixture.create::<ServiceAccount>(json!({"metadata": {"name": ACCOUNT, "namespace": NAMESPACE}})).await;
        fixture.grant(ACCOUNT, NAMESPACE).await;
        let reader = "namespace-reader";
        let rules = json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]);
        fixture.create::<ClusterRole>(json!({"metadata": {"name": reader}, "rules": rules})).await;
        let subjects = json!([{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]);
        let role = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader});
        let binding = json!({"metadata": {"name": reader}, "roleRef": role, "subjects": subjects});
        fixture.create::<ClusterRoleBinding>(binding).await;
        Some(fixture)
    }

    /// Creates `object`, a `K`, as the cluster's admin.
    pub(crate) async fn create<K: Resource<DynamicType = ()>>(&self, object: Value) {
        let resource = ApiResource::erase::<K>(&());
        let object: DynamicObject = serde_json::from_value(object).expect("an object");
        let api = match object.metadata.namespace.as_deref() {
            Some(namespace) => Api::namespaced_with(self.admin.clone(), namespace, &resource),
            None => Api::all_with(self.admin.clone(), &resource),
        };
        api.create(&PostParams::default(), &object).await.expect("create the object");
    }

    /// Namespace `name`, where ServiceAccount `deployer` may do anything too.
    pub(crate) async fn namespace(&self, name: &str) {
        self.create::<Namespace>(json!({"metadata": {"name": name}})).await;
        self.grant(ACCOUNT, name).await;
    }

    /// Lets ServiceAccount `account` of [`NAMESPACE`] do anything in `namespace`.
    async fn grant(&self, account: &str, namespace: &str) {
        let name = format!("{account}-all");
        let rules = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
        self.create::<Role>(json!({"metadata": {"name": name, "namespace": namespace}, "rules": rules})).await;
        let role = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name});
        let subjects = json!([{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]);
        let binding =
            json!({"metadata": {"name": name, "namespace": namespace}, "roleRef": role, "subjects": subjects});
        self.create::<RoleBinding>(binding).await;
    }

    /// EnvironmentSync `name` of the source's main, applying environment `dev` as `deployer`,
    /// with `fields` (an object) over its spec.
    pub(crate) async fn create_sync(&self, name: &str, fields: Value) {
        let mut spec = json!({"source": {"url": self.source.url(), "ref": {"branch": "main"}},
                              "environments": ["dev"], "serviceAccountName": ACCOUNT});
        spec.as_object_mut().expect("an object").extend(fields.as_object().expect("an object of fields").clone());
        let sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
                          "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec});
        self.create::<EnvironmentSync>(sync).await;
    }

    /// EnvironmentSync `name` as the API server has it.
    pub(crate) async fn sync(&self, name: &str) -> EnvironmentSync {
        self.syncs().get(name).await.expect("get the EnvironmentSync")
    }

    /// Merge-patches EnvironmentSync `name` with `patch`.
    pub(crate) async fn patch_sync(&self, name: &str, patch: Value) {
        self.syncs().patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    }

    /// Asks for a reconcile of `name` as a webhook does: the next reads the remote at once,
    /// not a fetch of the last interval.
    pub(crate) async fn request_reconcile(&self, name: &str) {
        let at = jiff::Timestamp::now().to_string();
        self.patch_sync(name, json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: at}}})).await;
    }

    fn syncs(&self) -> Api<EnvironmentSync> {
        Api::namespaced(self.admin.clone(), NAMESPACE)
    }

    /// Reconciles EnvironmentSync `name` once, as the controller does; it as the API server has
    /// it after (its status written).
    pub(crate) async fn reconcile(&self, name: &str) -> EnvironmentSync {
        let sync = Arc::new(self.sync(name).await);
        controller::reconcile(sync, self.context.clone()).await.expect("the status written");
        self.sync(name).await
    }

    /// ConfigMap `name` of `namespace`, None when there is none.
    pub(crate) async fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.admin.clone(), namespace).get_opt(name).await.expect("get the ConfigMap")
    }

    /// The release records of `namespace`, decoded from their Secrets.
    pub(crate) async fn records(&self, namespace: &str) -> Vec<Record> {
        let secrets = Api::<Secret>::namespaced(self.admin.clone(), namespace).list(&ListParams::default()).await;
        let secrets: Vec<Value> =
            secrets.expect("list the Secrets").items.iter().map(|s| serde_json::to_value(s).expect("JSON")).collect();
        weaver_plan::release::record::from_secrets(&secrets).expect("records decode")
    }

    /// The Events recorded about EnvironmentSync `name`, as `type reason: note`.
    pub(crate) async fn events(&self, name: &str) -> Vec<String> {
        let events = Api::<Event>::namespaced(self.admin.clone(), NAMESPACE).list(&ListParams::default()).await;
        let events = events.expect("list the Events").items.into_iter();
        let about = events.filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name));
        let text = |e: Event| {
            format!("{} {}: {}", e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.note.unwrap_or_default())
        };
        about.map(text).collect()
    }

    /// The requests the fake answered since the last call, as `METHOD path by user: status`;
    /// forgets them.
    pub(crate) fn requests(&self) -> Vec<String> {
        let requests = self.server.requests();
        self.server.clear_requests();
        requests.into_iter().map(|r| format!("{} {} by {}: {}", r.method, r.path, r.user, r.status)).collect()
    }
}

/// Condition `type_` of `sync`'s status, as (status, reason, message).
pub(crate) fn condition(sync: &EnvironmentSync, type_: &str) -> Option<(String, String, String)> {
    let conditions = &sync.status.as_ref()?.conditions;
    let found = conditions.iter().find(|c| c.type_ == type_)?;
    Some((found.status.clone(), found.reason.clone(), found.message.clone()))
}

/// Who the tests' promotions and image updates commit as.
pub(crate) const AUTHOR: (&str, &str) = ("Promoter Bot", "promoter@weaver.invalid");

/// Environment `dev`, promoted from `staging` (namespace `staging`) once it has soaked `soak`,
/// and chart `app`'s `greeting` of each: `v1` in dev, `v2` in staging.
pub(crate) fn promoting(fixture: &Fixture, soak: &str) {
    let release =
        |greeting: &str| format!("releases:\n  - name: app\n    chart: app\n    values: {{greeting: {greeting}}}\n");
    let promotion =
        format!("promotion:\n  from: staging\n  soakTime: {soak}\n  pins: [{{release: app, values: greeting}}]\n");
    let dev = format!("namespace: app\ncluster: {{lockNamespace: app}}\n{promotion}{}", release("v1"));
    fixture.source.write("environments/dev.yaml", &dev);
    let staging = format!("namespace: staging\ncluster: {{lockNamespace: staging}}\n{}", release("v2"));
    fixture.source.write("environments/staging.yaml", &staging);
}
