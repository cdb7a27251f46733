//! The cluster every cluster test runs against: the in-process fake API server, or the real
//! cluster of `WEAVER_TEST_KUBECONFIG` (its current context). Each test works in namespaces
//! named after a random prefix, and everything it registered is deleted when it ends.
//!
//! Tests set the cluster up with plain kube calls here, never with weaver's own cluster code,
//! so what they check is not also what prepared the check.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
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
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (fake, kubeconfig) = match std::env::var_os("WEAVER_TEST_KUBECONFIG").filter(|v| !v.is_empty()) {
            Some(path) => (None, PathBuf::from(path)),
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

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
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

    /// The object, if it exists.
    pub fn get(&self, object: &Value) -> Option<Value> {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        self.block_on(api.get_opt(name)).unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    /// A JSON merge patch by another field manager: a change made out of band.
    pub fn merge_patch(&self, object: &Value, patch: &Value, manager: &str) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        let params = PatchParams { field_manager: Some(manager.into()), ..Default::default() };
        self.block_on(api.patch(name, &params, &Patch::Merge(patch))).unwrap_or_else(|e| panic!("patch {name}: {e}"));
    }

    /// Deletes an object and waits until it is gone.
    pub fn delete(&self, object: &Value) {
        let (api, _, _) = self.api_for(object);
        let name = object["metadata"]["name"].as_str().unwrap();
        self.block_on(api.delete(name, &DeleteParams::foreground())).unwrap_or_else(|e| panic!("delete {name}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.block_on(api.get_opt(name)).unwrap().is_some() {
            assert!(Instant::now() < deadline, "{name} was not deleted");
            std::thread::sleep(Duration::from_millis(200));
        }
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
