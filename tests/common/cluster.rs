//! The cluster every cluster test runs against: the in-process fake API server, or the real
//! cluster of `WEAVER_TEST_KUBECONFIG` (its current context). Each test works in namespaces
//! named after a random prefix, and everything it registered is deleted when it ends.
//!
//! Tests set the cluster up with plain kube calls here, never with weaver's own cluster code,
//! so what they check is not also what prepared the check.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Resource;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};
use weaver_test_apiserver::TestApiServer;

pub struct TestCluster {
    fake: Option<TestApiServer>,
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    /// `w<6 random hex>`: namespaces, cluster-scoped names and CRD groups start with it.
    pub prefix: String,
    cleanup: RefCell<Vec<(ApiResource, Option<String>, String)>>,
}

/// A less-privileged identity on the test cluster, made as on any cluster: a ServiceAccount and a
/// TokenRequest token. It holds what the test binds to it, nothing more.
pub struct Identity {
    /// `system:serviceaccount:NS:NAME`, as RBAC subjects and 403 messages name it.
    pub user: String,
    /// A kubeconfig (YAML) with the test cluster and only this identity, in a context named
    /// after the ServiceAccount.
    pub kubeconfig: String,
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl TestCluster {
    pub fn start() -> TestCluster {
        TestCluster::start_with(std::env::var_os("WEAVER_TEST_KUBECONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    /// The real cluster of `kubeconfig` (its current context), whatever WEAVER_TEST_KUBECONFIG
    /// says: the e2e suite's cluster with nodes.
    pub fn start_on(kubeconfig: PathBuf) -> TestCluster {
        TestCluster::start_with(Some(kubeconfig))
    }

    /// A second cluster, for what an EnvironmentSync reaches through a kubeconfig Secret: the
    /// real cluster of `WEAVER_TEST_OTHER_KUBECONFIG` (a second control plane), or else another
    /// in-process fake, its own API server and objects.
    pub fn start_other() -> TestCluster {
        TestCluster::start_with(
            std::env::var_os("WEAVER_TEST_OTHER_KUBECONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
        )
    }

    /// Always the in-process fake, whatever WEAVER_TEST_KUBECONFIG says: for output that must be
    /// the same on every run (the documentation's examples).
    pub fn start_fake() -> TestCluster {
        TestCluster::start_with(None)
    }

    fn start_with(real: Option<PathBuf>) -> TestCluster {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (fake, kubeconfig) = match real {
            Some(path) => (None, path),
            None => {
                let server = TestApiServer::start();
                let path = server.kubeconfig_path().to_path_buf();
                (Some(server), path)
            }
        };
        let client = runtime.block_on(async {
            let config = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the test kubeconfig");
            let config =
                kube::Config::from_custom_kubeconfig(config, &Default::default()).await.expect("test kubeconfig");
            kube::Client::try_from(config).expect("client")
        });
        let prefix = format!("w{:06x}", rand::random::<u32>() & 0xff_ffff);
        TestCluster { fake, kubeconfig, runtime, client, prefix, cleanup: RefCell::new(Vec::new()) }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// How weaver's own code connects to this cluster (its kubeconfig's current context).
    pub fn connect_options(&self, request_timeout: std::time::Duration) -> weaver_cluster::ConnectOptions {
        weaver_cluster::ConnectOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            context: None,
            request_timeout,
            retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
            given: None,
        }
    }

    /// The kubeconfig for client-go tools (helm, kubectl): the test kubeconfig on a real
    /// cluster; on the fake, one for its port that takes requests without credentials as the
    /// admin's, since client-go sends none to a plain-HTTP server.
    pub fn client_go_kubeconfig(&self) -> &Path {
        match &self.fake {
            Some(fake) => fake.client_go_kubeconfig_path(),
            None => &self.kubeconfig,
        }
    }

    /// The fake server, for assertions only it can make (request log, faults). Against a real
    /// cluster this says the check is skipped there, and why, and returns None.
    pub fn fake(&self, what: &str) -> Option<&TestApiServer> {
        if self.fake.is_none() {
            super::skip::say_skipped(&format!(
                "on a real cluster (WEAVER_TEST_KUBECONFIG), {what} needs the fake API server"
            ));
        }
        self.fake.as_ref()
    }

    pub fn is_fake(&self) -> bool {
        self.fake.is_some()
    }

    /// How to take this cluster's API server down for a while and bring it back, as a crash and
    /// restart do (requests in flight dropped, connections refused, the objects kept): on the
    /// fake, stopping and restarting its listeners on the same ports; on a real cluster, the
    /// command `WEAVER_TEST_RESTART_APISERVER` names. Against a real cluster without one this
    /// says the test is skipped, and why, and returns None.
    pub fn restarter(&self) -> Option<Restarter<'_>> {
        if let Some(fake) = &self.fake {
            return Some(Restarter::Fake(fake));
        }
        match std::env::var("WEAVER_TEST_RESTART_APISERVER") {
            Ok(command) if !command.trim().is_empty() => {
                Some(Restarter::Command(command, RESTARTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())))
            }
            _ => {
                super::skip::say_skipped(
                    "on a real cluster (WEAVER_TEST_KUBECONFIG), restarting its API server needs \
                     WEAVER_TEST_RESTART_APISERVER (see docs/src/reference/environment-variables.md)",
                );
                None
            }
        }
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The cluster entry (server, CA, TLS settings) of the test kubeconfig's current context, for
    /// kubeconfigs of other identities on the same cluster.
    pub fn cluster_entry(&self) -> Value {
        let config = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read the test kubeconfig");
        let current = config.current_context.as_deref().expect("the test kubeconfig has a current-context");
        let context = config.contexts.iter().find(|c| c.name == current).and_then(|c| c.context.as_ref());
        let cluster_name = &context.expect("the current context exists").cluster;
        let cluster = config.clusters.iter().find(|c| c.name == *cluster_name).and_then(|c| c.cluster.as_ref());
        serde_json::to_value(cluster.expect("the current context's cluster exists")).unwrap()
    }

    /// A TokenRequest token (default lifetime and audience) for an existing ServiceAccount.
    pub fn token(&self, namespace: &str, name: &str) -> String {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let request: TokenRequest = serde_json::from_value(json!({"spec": {}})).unwrap();
        let issued = self
            .block_on(api.create_token_request(name, &PostParams::default(), &request))
            .unwrap_or_else(|e| panic!("token for serviceaccount {namespace}/{name}: {e}"));
        let issued = serde_json::to_value(issued).unwrap();
        issued.pointer("/status/token").and_then(Value::as_str).expect("a token").to_string()
    }

    /// Creates ServiceAccount `name` in `namespace` and returns it as an [`Identity`] with a
    /// kubeconfig for it: bind it to the Role under test, and run weaver as it. On a real
    /// cluster a new binding takes a moment to apply: retry until the expected answer.
    pub fn service_account(&self, namespace: &str, name: &str) -> Identity {
        self.create(
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}),
        );
        self.identity(namespace, name)
    }

    /// An existing ServiceAccount as an [`Identity`], with a TokenRequest token.
    pub fn identity(&self, namespace: &str, name: &str) -> Identity {
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": self.cluster_entry()}],
            "users": [{"name": name, "user": {"token": self.token(namespace, name)}}],
            "contexts": [{"name": name, "context": {"cluster": "test", "user": name, "namespace": namespace}}],
            "current-context": name,
        });
        Identity {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            kubeconfig: serde_json::to_string_pretty(&kubeconfig).unwrap(),
        }
    }

    /// Creates `<prefix>-<name>` and returns its name; it is deleted with the test.
    pub fn namespace(&self, name: &str) -> String {
        let namespace = format!("{}-{name}", self.prefix);
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        self.create(&object);
        namespace
    }

    fn api_for(&self, object: &Value) -> (Api<DynamicObject>, ApiResource, Option<String>) {
        let api_version = object["apiVersion"].as_str().expect("apiVersion");
        let kind = object["kind"].as_str().expect("kind");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (ar, namespaced) = self.block_on(async {
            let discovery = match Discovery::new(self.client.clone()).run_aggregated().await {
                Ok(discovery) if discovery.has_group("") => discovery,
                // Before Kubernetes 1.26 there is no aggregated discovery. Per-group discovery
                // fails when another test deletes its CRD midway: start again.
                _ => {
                    let mut attempts = 0;
                    loop {
                        match Discovery::new(self.client.clone()).run().await {
                            Ok(discovery) => break discovery,
                            Err(err) if attempts < 5 => {
                                attempts += 1;
                                eprintln!("discovery failed ({err}), trying again");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(err) => panic!("discovery: {err}"),
                        }
                    }
                }
            };
            let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
            let (ar, caps) =
                discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("the cluster does not serve {gvk:?}"));
            (ar, caps.scope == Scope::Namespaced)
        });
        let namespace =
            object.pointer("/metadata/namespace").and_then(Value::as_str).filter(|_| namespaced).map(String::from);
        let api = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        (api, ar, namespace)
    }

    fn remember(&self, ar: ApiResource, namespace: Option<String>, name: &str) {
        // Objects inside the test's namespaces go with them.
        if namespace.is_none() {
            self.cleanup.borrow_mut().push((ar, None, name.to_string()));
        }
    }

    /// Creates an object (POST), as a user with kubectl create would.
    pub fn create(&self, object: &Value) {
        let (api, ar, namespace) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let parsed: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        self.block_on(api.create(&PostParams::default(), &parsed)).unwrap_or_else(|e| panic!("create {name}: {e}"));
        self.remember(ar, namespace, &name);
    }

    /// Server-side applies objects as `manager` (forcing), one by one, in the given order.
    pub fn apply(&self, objects: &[Value], manager: &str) {
        for object in objects {
            let (api, ar, namespace) = self.api_for(object);
            let name = object["metadata"]["name"].as_str().unwrap().to_string();
            let params = PatchParams::apply(manager).force();
            self.block_on(api.patch(&name, &params, &Patch::Apply(object)))
                .unwrap_or_else(|e| panic!("apply {name}: {e}"));
            self.remember(ar, namespace, &name);
            if object["kind"] == "CustomResourceDefinition" {
                self.wait_established(&api, &name);
            }
        }
    }

    /// A server-side apply of `object` as `manager`, as a dry run: the server's warnings (its
    /// `Warning` headers, which kube's client drops), or the Status it refused it with.
    pub fn dry_run_apply(&self, object: &Value, manager: &str) -> Result<Vec<String>, Box<Status>> {
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply(manager).force().dry_run();
        self.send_dry_run(object, |request| request.patch(name, &params, &Patch::Apply(object)))
    }

    /// [`Self::dry_run_apply`] with `fieldValidation=Strict`: unknown fields are refused, as
    /// weaver's offline validation refuses them.
    pub fn dry_run_apply_strict(&self, object: &Value, manager: &str) -> Result<Vec<String>, Box<Status>> {
        let name = object["metadata"]["name"].as_str().unwrap();
        let mut params = PatchParams::apply(manager).force().dry_run();
        params.field_validation = Some(kube::api::ValidationDirective::Strict);
        self.send_dry_run(object, |request| request.patch(name, &params, &Patch::Apply(object)))
    }

    /// A create (POST) of `object`, as a dry run: the server's warnings, or the Status it
    /// refused it with.
    pub fn dry_run_create(&self, object: &Value) -> Result<Vec<String>, Box<Status>> {
        let params = PostParams { dry_run: true, ..Default::default() };
        self.send_dry_run(object, |request| request.create(&params, serde_json::to_vec(object).unwrap()))
    }

    fn send_dry_run(
        &self,
        object: &Value,
        build: impl FnOnce(&kube::core::Request) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Vec<String>, Box<Status>> {
        let (_, ar, namespace) = self.api_for(object);
        let request = kube::core::Request::new(DynamicObject::url_path(&ar, namespace.as_deref()));
        let request = build(&request).expect("a request").map(kube::client::Body::from);
        let response = self.block_on(self.client.send(request)).expect("the server answers");
        // `299 - "text"`, the text in double quotes with `"` and `\` escaped.
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|header| {
                let header = header.to_str().expect("an ASCII header");
                let quoted = header.splitn(3, ' ').nth(2).unwrap_or(header);
                serde_json::from_str(quoted).unwrap_or_else(|_| quoted.to_string())
            })
            .collect();
        let code = response.status();
        let body = self.block_on(response.into_body().collect_bytes()).expect("the answer's body");
        if code.is_success() {
            return Ok(warnings);
        }
        Err(serde_json::from_slice(&body).unwrap_or_else(|e| panic!("a {code} without a Status ({e})")))
    }

    /// Server-side applies an object that tests share and that outlives them on a real cluster
    /// (a CRD with a fixed name): it is never deleted, so tests running at the same time do not
    /// lose it midway.
    pub fn apply_shared(&self, object: &Value, manager: &str) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply(manager).force();
        self.block_on(api.patch(name, &params, &Patch::Apply(object))).unwrap_or_else(|e| panic!("apply {name}: {e}"));
        if object["kind"] == "CustomResourceDefinition" {
            self.wait_established(&api, name);
        }
    }

    /// A client with the test kubeconfig's identity (an administrator).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client acting as `identity`.
    pub fn client_for(&self, identity: &Identity) -> kube::Client {
        let config = kube::config::Kubeconfig::from_yaml(&identity.kubeconfig).expect("the identity's kubeconfig");
        self.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.expect("kubeconfig");
            kube::Client::try_from(config).expect("client")
        })
    }

    fn wait_established(&self, api: &Api<DynamicObject>, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let crd = serde_json::to_value(self.block_on(api.get(name)).unwrap()).unwrap();
            let established = crd
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            if established {
                return;
            }
            assert!(Instant::now() < deadline, "CRD {name} did not become Established");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Deletes `object` with the test (on a real cluster): for what weaver itself created
    /// outside the test's namespaces, such as namespaces and CRDs.
    pub fn delete_later(&self, object: &Value) {
        let (_, ar, namespace) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        self.remember(ar, namespace, name);
    }

    /// The server's `gitVersion` (`/version`).
    pub fn server_version(&self) -> String {
        self.block_on(self.client.apiserver_version()).expect("/version").git_version
    }

    /// The object, if it exists.
    pub fn get(&self, object: &Value) -> Option<Value> {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        self.block_on(api.get_opt(name)).unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    /// [`TestCluster::get`] that says what the server answered instead of panicking (a
    /// conversion webhook not reachable yet), or that the object is not there.
    pub fn try_get(&self, object: &Value) -> Result<Value, String> {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        match self.block_on(api.get_opt(name)) {
            Ok(Some(live)) => Ok(serde_json::to_value(live).unwrap()),
            Ok(None) => Err(format!("{name} is not there")),
            Err(err) => Err(err.to_string()),
        }
    }

    /// A JSON merge patch by another field manager: a change made out of band.
    pub fn merge_patch(&self, object: &Value, patch: &Value, manager: &str) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams { field_manager: Some(manager.into()), ..Default::default() };
        self.block_on(api.patch(name, &params, &Patch::Merge(patch))).unwrap_or_else(|e| panic!("patch {name}: {e}"));
    }

    /// A merge patch of the object's `status` subresource, as its controller writes it.
    pub fn patch_status(&self, object: &Value, status: &Value) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let patch = json!({"status": status});
        self.block_on(api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)))
            .unwrap_or_else(|e| panic!("patch the status of {name}: {e}"));
    }

    /// Sets `spec.replicas` through the object's `scale` subresource, as `kubectl scale` does
    /// (field manager `kubectl-scale`).
    pub fn scale(&self, object: &Value, replicas: i64) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams { field_manager: Some("kubectl-scale".into()), ..Default::default() };
        let patch = json!({"spec": {"replicas": replicas}});
        self.block_on(api.patch_scale(name, &params, &Patch::Merge(&patch)))
            .unwrap_or_else(|e| panic!("scale {name}: {e}"));
    }

    /// Deletes an object and waits until it is gone. Gone means no object of its uid: one of the
    /// same name made since (a lock's waiter taking the freed Lease) is another object.
    pub fn delete(&self, object: &Value) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let uid = self.request_delete(object);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.block_on(api.get_opt(name)).unwrap().is_some_and(|live| live.metadata.uid == uid) {
            assert!(Instant::now() < deadline, "{name} was not deleted");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Asks for an object's deletion (foreground) without waiting for it; its uid, when it was there.
    pub fn request_delete(&self, object: &Value) -> Option<String> {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let uid = self.block_on(api.get_opt(name)).unwrap().and_then(|live| live.metadata.uid);
        self.block_on(api.delete(name, &DeleteParams::foreground())).unwrap_or_else(|e| panic!("delete {name}: {e}"));
        uid
    }

    /// The objects of a kind in a namespace (for checks).
    pub fn list(&self, api_version: &str, kind: &str, plural: &str, namespace: &str) -> Vec<Value> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource(api_version, kind, plural));
        let list = self.block_on(api.list(&ListParams::default())).unwrap();
        // List items come without apiVersion and kind.
        let typed = |object| {
            let mut value = serde_json::to_value(object).unwrap();
            value["apiVersion"] = json!(api_version);
            value["kind"] = json!(kind);
            value
        };
        list.items.into_iter().map(typed).collect()
    }

    /// The objects of a cluster-scoped kind (for checks), as [`Self::list`].
    pub fn list_all(&self, api_version: &str, kind: &str, plural: &str) -> Vec<Value> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource(api_version, kind, plural));
        let list = self.block_on(api.list(&ListParams::default())).unwrap();
        list.items.into_iter().map(|object| serde_json::to_value(object).unwrap()).collect()
    }

    /// A GET of `path` from the API server, its body as text, or the error: for subresources
    /// such as a Pod's proxy and a node's stats.
    pub fn get_text(&self, path: &str) -> Result<String, String> {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        self.block_on(self.client.request_text(request)).map_err(|e| format!("GET {path}: {e}"))
    }

    /// A POST of `body` with `headers` to `path` of the API server (a Service's proxy), the
    /// answer's body as text, or the error (a status other than 2xx among them).
    pub fn post_text(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Result<String, String> {
        let mut request = http::Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.as_bytes().to_vec()).unwrap();
        self.block_on(self.client.request_text(request)).map_err(|e| format!("POST {path}: {e}"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.fake.is_some() {
            return; // the fake goes away with the test
        }
        let client = self.client.clone();
        let cleanup = std::mem::take(&mut *self.cleanup.borrow_mut());
        self.runtime.block_on(async move {
            for (ar, namespace, name) in cleanup.into_iter().rev() {
                let api: Api<DynamicObject> = match namespace {
                    Some(ns) => Api::namespaced_with(client.clone(), &ns, &ar),
                    None => Api::all_with(client.clone(), &ar),
                };
                if let Err(err) = api.delete(&name, &DeleteParams::background()).await {
                    eprintln!("cleanup: cannot delete {} {name}: {err}", ar.kind);
                }
            }
        });
    }
}

/// Held by the test restarting the real cluster's one API server: the tests of a binary run in
/// parallel, and two restarts at once would start two servers.
static RESTARTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes an API server down and brings it back ([`TestCluster::restarter`]).
pub enum Restarter<'a> {
    Fake(&'a TestApiServer),
    /// A shell command run with the seconds to stay down as its last argument: it stops the
    /// server, waits that long, starts it again and returns once the server is ready. The
    /// guard keeps other tests from restarting it until this one ends.
    Command(String, #[allow(dead_code)] std::sync::MutexGuard<'static, ()>),
}

impl Restarter<'_> {
    /// Stops the server, keeps it down for `down` and starts it again; returns once it serves.
    pub fn restart(&self, down: Duration) {
        match self {
            Restarter::Fake(fake) => {
                fake.stop();
                std::thread::sleep(down);
                fake.restart();
            }
            Restarter::Command(command, _) => {
                let line = format!("{command} {}", down.as_secs().max(1));
                let status = std::process::Command::new("sh").arg("-c").arg(&line).status().expect("run sh");
                assert!(status.success(), "WEAVER_TEST_RESTART_APISERVER (`{line}`) failed: {status}");
            }
        }
    }
}

/// weaver's CRDs on a shared real cluster. Every install labels them as its environment's, and
/// weaver refuses to apply an object labelled as another environment's: the demo's tests
/// (environment `dev`) share them, and a test that installs weaver as environment `weaver`
/// (`weaver install`, `weaver bootstrap`) holds them alone, leaving them unowned when it takes
/// them and when it is done, for the next install of either. The fake API server is each test's
/// own: nothing is held there.
static WEAVER_CRDS: std::sync::RwLock<()> = std::sync::RwLock::new(());

const WEAVER_CRD_NAMES: [&str; 2] = ["configmapsyncs.weaver.example.com", "environmentsyncs.weaver.example.com"];

/// What a test holds of weaver's CRDs until it is dropped (see [`WEAVER_CRDS`]).
pub enum WeaverCrds {
    /// The fake API server's are the test's own.
    Own,
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    /// With the kubeconfig to unown them by when dropped: a client of the test's own runtime
    /// would wait on that runtime, which nothing drives then.
    Alone(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>, PathBuf),
}

impl TestCluster {
    /// For a test that installs weaver as the demo's environment `dev`: shared with every such test.
    pub fn weaver_crds_shared(&self) -> WeaverCrds {
        match self.fake {
            Some(_) => WeaverCrds::Own,
            None => WeaverCrds::Shared(WEAVER_CRDS.read().unwrap_or_else(std::sync::PoisonError::into_inner)),
        }
    }

    /// For a test that installs weaver as environment `weaver`: held alone, and unowned now and
    /// when dropped.
    pub fn weaver_crds_alone(&self) -> WeaverCrds {
        if self.fake.is_some() {
            return WeaverCrds::Own;
        }
        let held = WEAVER_CRDS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.block_on(unown_weaver_crds(&self.client));
        WeaverCrds::Alone(held, self.kubeconfig.clone())
    }
}

impl Drop for WeaverCrds {
    fn drop(&mut self) {
        if let WeaverCrds::Alone(_, kubeconfig) = self {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // Never a panic here: dropped while a failed test unwinds, one would abort the run.
            runtime.block_on(async {
                let Ok(config) = kube::config::Kubeconfig::read_from(&*kubeconfig) else { return };
                let Ok(config) = kube::Config::from_custom_kubeconfig(config, &Default::default()).await else {
                    return;
                };
                let Ok(client) = kube::Client::try_from(config) else { return };
                if let Err(err) = unown(&client).await {
                    eprintln!("weaver's CRDs left owned: {err}");
                }
            });
        }
    }
}

/// Removes the labels by which an environment owns weaver's CRDs; a failure panics (when a
/// test takes them).
async fn unown_weaver_crds(client: &kube::Client) {
    if let Err(err) = unown(client).await {
        panic!("{err}");
    }
}

async fn unown(client: &kube::Client) -> Result<(), String> {
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
        },
    );
    let unowned = json!({"metadata": {"labels": {
        "weaver.example.com/environment": null, "weaver.example.com/release": null, "app.kubernetes.io/managed-by": null,
    }}});
    for name in WEAVER_CRD_NAMES {
        let params = PatchParams { field_manager: Some("weaver-tests".into()), ..Default::default() };
        match crds.patch(name, &params, &Patch::Merge(&unowned)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(format!("unown CRD {name}: {err}")),
        }
    }
    Ok(())
}
