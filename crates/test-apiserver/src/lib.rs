//! An in-process fake kube-apiserver for weaver's cluster tests.
//!
//! It speaks kube-apiserver's wire protocol over plain HTTP on 127.0.0.1:
//! discovery (legacy and aggregated), CRUD with label/field selectors,
//! JSON/merge/strategic-merge patches, server-side apply with real
//! structured-merge-diff ownership (managedFields, conflicts, pruning),
//! defaulting of the common built-in kinds, CRDs, watches, TokenRequest
//! tokens, RBAC authorization, and `Status` errors shaped like the real ones.
//! See the README for what is simplified.
//!
//! ```no_run
//! let server = weaver_test_apiserver::TestApiServer::start();
//! let status = std::process::Command::new("weaver")
//!     .env("KUBECONFIG", server.kubeconfig_path())
//!     .arg("diff")
//!     .status()
//!     .unwrap();
//! assert!(status.success());
//! assert!(server.requests().iter().all(|r| r.user == "fake-user"));
//! ```

mod cluster;
mod controllers;
mod conversion;
mod defaults;
mod discovery;
mod error;
mod fieldpath;
mod managed;
mod normalize;
mod patch;
mod pod_security;
mod protobuf;
mod resources;
mod schema;
mod selector;
mod server;
mod smd;
mod store;
mod util;
mod validate;

// Shared with weaver's offline validation, so both parse quantities alike.
use weaver_quantity as quantity;

pub use server::{Fault, FaultAction, RequestRecord};

use cluster::{Cluster, ForbidRule};
use server::{Shared, lock};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, oneshot};

/// Bearer token of the kubeconfig's `fake` context: user `fake-user`, the admin
/// (group `system:masters`, which passes every authorization check).
pub const TOKEN: &str = "fake-token";
/// Bearer token of the kubeconfig's `other` context: user `other-user`, a plain
/// authenticated user with only what RBAC objects grant it.
pub const OTHER_TOKEN: &str = "other-token";

/// A running fake apiserver. It serves from its own thread with its own
/// tokio runtime, so it works from sync tests, from inside `#[tokio::test]`
/// and for CLI subprocesses. Dropping it stops the server.
pub struct TestApiServer {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    kubeconfig: PathBuf,
    client_go_kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestApiServer {
    /// Starts on 127.0.0.1 with a random port and writes a kubeconfig for it.
    pub fn start() -> TestApiServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let trusted = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        trusted.set_nonblocking(true).expect("non-blocking listener");
        let trusted_url = format!("http://{}", trusted.local_addr().expect("local address"));
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster::new()),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            changed: Notify::new(),
            tokens: cluster::auth::static_users(),
            in_flight: Default::default(),
            peak_in_flight: Default::default(),
            connections: Default::default(),
            down: tokio::sync::watch::Sender::new(false),
        });
        let (tx, rx) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("test-apiserver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let trusted = tokio::net::TcpListener::from_std(trusted).expect("tokio listener");
                    // Stops with the runtime, when the main listener is shut down.
                    let (_keep, never) = oneshot::channel();
                    tokio::spawn(server::serve(trusted, serving.clone(), never, true));
                    server::serve(listener, serving, rx, false).await;
                });
            })
            .expect("spawn server thread");
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let users = [("fake-user", format!("{{token: {TOKEN}}}")), ("other-user", format!("{{token: {OTHER_TOKEN}}}"))];
        std::fs::write(&kubeconfig, kubeconfig_yaml(&url, &users)).expect("write kubeconfig");
        let client_go_kubeconfig = dir.path().join("kubeconfig-client-go");
        std::fs::write(&client_go_kubeconfig, kubeconfig_yaml(&trusted_url, &[("fake-user", "{}".to_string())]))
            .expect("write kubeconfig");
        TestApiServer {
            url,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
            kubeconfig,
            client_go_kubeconfig,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A kubeconfig with one cluster, users `fake-user` (the admin) and
    /// `other-user` (authorized by RBAC), bearer tokens [`TOKEN`] and
    /// [`OTHER_TOKEN`], and contexts `fake` (current) and `other`, both
    /// pointing at this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig for client-go tools (kubectl, helm), which send no credentials to a
    /// plain-HTTP server: context `fake` points at a second port of this server, where a request
    /// without credentials is `fake-user`'s (as on kube-apiserver's old insecure port).
    pub fn client_go_kubeconfig_path(&self) -> &Path {
        &self.client_go_kubeconfig
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// The most requests the server handled at once (from reading a request to answering it)
    /// since it started or [`TestApiServer::reset_peak_in_flight`].
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn reset_peak_in_flight(&self) {
        self.shared.peak_in_flight.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many connections the server accepted since it started or
    /// [`TestApiServer::reset_connections`].
    pub fn connections(&self) -> usize {
        self.shared.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn reset_connections(&self) {
        self.shared.connections.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops serving, as when kube-apiserver is killed (etcd keeps the objects): new connections
    /// are refused and open ones dropped, requests in flight and watches included, on both
    /// ports, until [`TestApiServer::restart`].
    pub fn stop(&self) {
        self.shared.down.send_replace(true);
    }

    /// Serves again, on the same ports, with every object kept.
    pub fn restart(&self) {
        self.shared.down.send_replace(false);
    }

    /// Queues a fault; faults are matched in the order they were injected.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Drops every fault not yet used up.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Whether workload statuses become ready (Deployments, StatefulSets,
    /// DaemonSets, ReplicaSets) and Jobs complete right after each write.
    /// On by default; turn off to test rollout timeouts.
    pub fn set_auto_ready(&self, on: bool) {
        let mut c = lock(&self.shared.cluster);
        c.auto_ready = on;
        c.mark_all_dirty();
        let before = c.resource_version();
        c.reconcile();
        let changed = c.resource_version() != before;
        drop(c);
        if changed {
            self.shared.changed.notify_waiters();
        }
    }

    /// Denies `verb` (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection` or `*`) on `resource` (plural, optionally
    /// `plural/subresource`, or `*`) in `namespace` (`None`: everywhere) with
    /// RBAC's 403, to every user, the admin included. Real RBAC has no deny
    /// rules: on a real cluster, use an identity without the permission
    /// (a ServiceAccount bound to a narrower Role).
    pub fn forbid(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        lock(&self.shared.cluster).forbidden.push(ForbidRule {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.map(String::from),
        });
    }

    /// What pod `namespace/pod`'s log says from now on, as its node's kubelet would answer
    /// (no kubelet runs here: without this, a pod's log is empty, 204 No Content).
    pub fn set_pod_log(&self, namespace: &str, pod: &str, log: &str) {
        lock(&self.shared.cluster).pod_logs.insert((namespace.to_string(), pod.to_string()), log.to_string());
    }

    /// Forgets the watch history, as an etcd compaction does: a watch from a
    /// resourceVersion older than the current one then gets `410 Gone`.
    pub fn compact(&self) {
        lock(&self.shared.cluster).compact();
    }

    /// Makes every token issued so far by TokenRequest expire now (tests cannot
    /// wait the 10 minutes of the shortest token).
    pub fn expire_tokens(&self) {
        let now = jiff::Timestamp::now();
        for t in lock(&self.shared.cluster).tokens.values_mut() {
            t.expires = now;
        }
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A kubeconfig for the server at `url` with a context per user: each named as its user without
/// `-user`, the first one current. A user is its name and its `user:` mapping, in flow style.
fn kubeconfig_yaml(url: &str, users: &[(&str, String)]) -> String {
    let mut text =
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n");
    for (name, user) in users {
        text.push_str(&format!("- name: {name}\n  user: {user}\n"));
    }
    text.push_str("contexts:\n");
    for (name, _) in users {
        let context = name.trim_end_matches("-user");
        text.push_str(&format!("- name: {context}\n  context:\n    cluster: fake\n    user: {name}\n"));
    }
    text + "current-context: fake\npreferences: {}\n"
}
