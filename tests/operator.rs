//! The ConfigMapSync operator, run in-process (as with envtest) against the fake API server or,
//! unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`. The operator reads with the test
//! kubeconfig's identity and must write every target as the tenant's ServiceAccount: what that
//! account may not write stays unwritten, which the tests check with the administrator's client.
//!
//! Each test's ConfigMapSyncs carry a label with the test's prefix, and its operator only
//! watches those, so tests running at the same time on one real cluster do not see each other.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::TestCluster;
use common::eventually;
use serde_json::{Value, json};
use weaver_controllers::configmapsync::controller::Role;

const MANAGER: &str = "operator-test";

/// The operator running on its own runtime. Dropping it deletes the test's ConfigMapSyncs
/// first (their finalizer needs the operator), then stops it.
struct Operator {
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The operator's run, which ends once it has stopped (its Lease released).
    running: Option<tokio::task::JoinHandle<()>>,
    client: kube::Client,
    selector: String,
    /// Where its /healthz, /readyz and /metrics are served.
    endpoints: std::net::SocketAddr,
}

impl Operator {
    fn start(cluster: &TestCluster) -> Operator {
        Operator::start_with(cluster, None, |_| {})
    }

    /// An operator that acts as `identity` instead of the test's administrator.
    fn start_as(cluster: &TestCluster, identity: &common::cluster::Identity) -> Operator {
        Operator::start_full(cluster, Some(identity), None, |_| {})
    }

    /// An operator that reconciles only while it holds `lease`; `on_role` hears its role.
    fn start_with(
        cluster: &TestCluster,
        lease: Option<weaver_cluster::LockOptions>,
        on_role: impl FnMut(Role) + Send + 'static,
    ) -> Operator {
        Operator::start_full(cluster, None, lease, on_role)
    }

    fn start_full(
        cluster: &TestCluster,
        identity: Option<&common::cluster::Identity>,
        lease: Option<weaver_cluster::LockOptions>,
        on_role: impl FnMut(Role) + Send + 'static,
    ) -> Operator {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let kubeconfig = cluster.kubeconfig().to_path_buf();
        let config = runtime.block_on(async {
            let kubeconfig = match identity {
                Some(identity) => kube::config::Kubeconfig::from_yaml(&identity.kubeconfig).unwrap(),
                None => kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap()
        });
        // The administrator deletes the test's ConfigMapSyncs when it ends (a client of this
        // runtime: the test cluster's own runs only while the test waits on it).
        let admin = runtime.block_on(async {
            let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
            kube::Client::try_from(config).unwrap()
        });
        let client = runtime.block_on(async { kube::Client::try_from(config.clone()).unwrap() });
        let selector = format!("weaver-test={}", cluster.prefix);
        let settings = weaver_controllers::configmapsync::controller::Settings {
            label_selector: Some(selector.clone()),
            ..weaver_controllers::configmapsync::controller::Settings::default()
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let endpoints = listener.local_addr().unwrap();
        runtime.spawn(weaver_controllers::endpoints::serve(
            listener,
            Default::default(),
            settings.telemetry.clone(),
            std::future::pending(),
        ));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let connect = weaver_cluster::ConnectOptions {
            kubeconfig: Some(kubeconfig),
            context: None,
            request_timeout: Duration::from_secs(30),
            retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
            given: None,
        };
        let operator = client.clone();
        let running = runtime.spawn(async move {
            let election = match lease {
                Some(lease) => Some((weaver_cluster::Cluster::connect(&connect).await.unwrap(), lease)),
                None => None,
            };
            let stopped = async {
                let _ = stop.await;
            };
            if let Err(err) = weaver_controllers::configmapsync::controller::run_elected(
                operator, config, settings, election, on_role, stopped,
            )
            .await
            {
                panic!("the operator stopped: {err}");
            }
        });
        Operator {
            runtime: Some(runtime),
            shutdown: Some(shutdown),
            running: Some(running),
            client: admin,
            selector,
            endpoints,
        }
    }

    /// Failed reconciles so far: a failure the operator can report is a status, not a retry loop.
    fn failed_reconciles(&self) -> u64 {
        let (_, metrics) = self.get("/metrics");
        let line = metrics.lines().find_map(|line| line.strip_prefix("configmapsync_reconcile_errors_total "));
        line.and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no error count in {metrics}"))
    }

    /// The status code and body of a GET of `path` on the operator's endpoints.
    fn get(&self, path: &str) -> (u16, String) {
        get(self.endpoints, path)
    }

    /// Stops at once, as a killed pod: nothing is released or cleaned up.
    fn crash(mut self) {
        self.runtime.take().unwrap().shutdown_background();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        let api: kube::Api<weaver_controllers::configmapsync::ConfigMapSync> = kube::Api::all(self.client.clone());
        let params = kube::api::ListParams::default().labels(&self.selector);
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Ok(list) = api.list(&params).await {
                if list.items.is_empty() || Instant::now() > deadline {
                    break;
                }
                for sync in list.items {
                    let namespaced = kube::Api::<weaver_controllers::configmapsync::ConfigMapSync>::namespaced(
                        self.client.clone(),
                        sync.metadata.namespace.as_deref().unwrap_or_default(),
                    );
                    let _ =
                        namespaced.delete(sync.metadata.name.as_deref().unwrap_or_default(), &Default::default()).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        // Stopped as on SIGTERM: the operator finishes and releases its Lease before its runtime goes.
        let _ = self.shutdown.take().unwrap().send(());
        if let Some(running) = self.running.take() {
            let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), running).await });
        }
        runtime.shutdown_timeout(Duration::from_secs(10));
    }
}

/// A tenant: its namespace with the source ConfigMap and the ServiceAccount `syncer`, which may
/// read ConfigMaps there and write them in `allowed`, but not in `denied`.
struct Tenant {
    team: String,
    allowed: Vec<String>,
    denied: String,
    role: String,
}

const SOURCE_DATA: &str = r#"{"level": "debug", "color": "blue"}"#;

fn tenant(cluster: &TestCluster) -> Tenant {
    cluster.apply_shared(&weaver_controllers::configmapsync::crd(), MANAGER);
    let team = cluster.namespace("team");
    let allowed = vec![cluster.namespace("dev"), cluster.namespace("qa")];
    let denied = cluster.namespace("prod");
    let role = format!("{}-configmap-writer", cluster.prefix);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update", "delete"]}]
    }));
    cluster.create(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "syncer", "namespace": team}}),
    );
    let tenant = Tenant { team, allowed, denied, role };
    for namespace in [&tenant.team, &tenant.allowed[0], &tenant.allowed[1]] {
        grant(cluster, &tenant, namespace);
    }
    let data: Value = serde_json::from_str(SOURCE_DATA).unwrap();
    cluster.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": tenant.team}, "data": data}));
    tenant
}

/// Lets the tenant's ServiceAccount write ConfigMaps in `namespace`.
fn grant(cluster: &TestCluster, tenant: &Tenant, namespace: &str) {
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "syncer", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": tenant.role},
        "subjects": [{"kind": "ServiceAccount", "name": "syncer", "namespace": tenant.team}]
    }));
}

fn sync_object(cluster: &TestCluster, tenant: &Tenant, spec: Value) -> Value {
    json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync",
        "metadata": {"name": "share", "namespace": tenant.team, "labels": {"weaver-test": cluster.prefix}},
        "spec": spec
    })
}

/// The tenant's ConfigMapSync of `settings` into `targets`, written as `account`.
fn create_sync(cluster: &TestCluster, tenant: &Tenant, targets: &[&String], account: &str) -> Value {
    let spec = json!({"source": {"name": "settings"}, "targetNamespaces": targets, "serviceAccountName": account});
    let sync = sync_object(cluster, tenant, spec);
    cluster.create(&sync);
    sync
}

/// The usual ConfigMapSync (into both allowed namespaces, as `syncer`), once both hold the source.
fn create_synced(cluster: &TestCluster, tenant: &Tenant) -> Value {
    let sync = create_sync(cluster, tenant, &[&tenant.allowed[0], &tenant.allowed[1]], "syncer");
    for namespace in &tenant.allowed {
        wait_for_data(cluster, namespace, &source_data());
    }
    sync
}

fn source_data() -> Value {
    serde_json::from_str(SOURCE_DATA).unwrap()
}

/// The status line of `namespace` once its reason is `reason`.
#[track_caller]
fn wait_for_target(cluster: &TestCluster, sync: &Value, namespace: &str, reason: &str) -> Value {
    eventually(&format!("{reason} for {namespace}"), || {
        let target = target_status(cluster, sync, namespace)?;
        if target["reason"] == reason { Ok(target) } else { Err(target.to_string()) }
    })
}

/// The Ready condition once its reason is `reason`.
#[track_caller]
fn wait_for_ready(cluster: &TestCluster, sync: &Value, reason: &str) -> Value {
    eventually(&format!("Ready with reason {reason}"), || {
        let ready = ready(cluster, sync)?;
        if ready["reason"] == reason { Ok(ready) } else { Err(ready.to_string()) }
    })
}

fn config_map(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}})
}

/// The status line of `namespace`, once the operator wrote one.
fn target_status(cluster: &TestCluster, sync: &Value, namespace: &str) -> Result<Value, String> {
    let live = cluster.get(sync).ok_or("no ConfigMapSync")?;
    let targets = live.pointer("/status/targets").and_then(Value::as_array).ok_or(format!("no targets: {live}"))?;
    targets.iter().find(|t| t["namespace"] == namespace).cloned().ok_or(format!("{namespace} not in {targets:?}"))
}

fn ready(cluster: &TestCluster, sync: &Value) -> Result<Value, String> {
    let live = cluster.get(sync).ok_or("no ConfigMapSync")?;
    live.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .ok_or(format!("no Ready condition: {live}"))
}

/// The target's data once it equals `expected`.
#[track_caller]
fn wait_for_data(cluster: &TestCluster, namespace: &str, expected: &Value) {
    eventually(&format!("the target in {namespace} to hold {expected}"), || {
        let live = cluster.get(&config_map(namespace)).ok_or("no target")?;
        if &live["data"] == expected { Ok(()) } else { Err(live["data"].to_string()) }
    });
}

#[test]
fn the_source_is_copied_where_the_service_account_may_write_and_nowhere_else() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0], &tenant.allowed[1], &tenant.denied], "syncer");
    for namespace in &tenant.allowed {
        wait_for_data(&cluster, namespace, &source_data());
        let target = cluster.get(&config_map(namespace)).unwrap();
        assert_eq!(target["metadata"]["labels"]["weaver.example.com/sync-namespace"], tenant.team.as_str());
        assert_eq!(target["metadata"]["labels"]["weaver.example.com/sync-name"], "share");
        let source_version = cluster.get(&config_map(&tenant.team)).unwrap()["metadata"]["resourceVersion"].clone();
        assert_eq!(target["metadata"]["annotations"]["weaver.example.com/source-resource-version"], source_version);
        // Written with the tenant's token: the manager of the write is the operator, the
        // ownership of the token is what the API server checked.
        assert_eq!(target_status(&cluster, &sync, namespace).unwrap()["reason"], "Synced");
    }
    let denied = wait_for_target(&cluster, &sync, &tenant.denied, "Forbidden");
    assert_eq!(denied["synced"], false);
    let message = denied["message"].as_str().unwrap();
    assert!(message.contains("system:serviceaccount:") && message.contains(&tenant.denied), "{message}");
    // Tenant isolation, checked as the administrator: nothing was written where the account may not.
    assert!(cluster.get(&config_map(&tenant.denied)).is_none(), "a target was written in {}", tenant.denied);

    let ready = wait_for_ready(&cluster, &sync, "TargetsNotSynced");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["message"], "2/3 targets in sync");
    let live = cluster.get(&sync).unwrap();
    assert_eq!(live["status"]["observedGeneration"], live["metadata"]["generation"]);
    assert_eq!(live["status"]["targetsInSync"], "2/3");
    assert!(strings(&live["metadata"]["finalizers"]).contains(&"weaver.example.com/configmapsync".to_string()));
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
}

#[test]
fn source_changes_propagate_and_targets_changed_by_hand_are_restored() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_synced(&cluster, &tenant);

    cluster.merge_patch(&config_map(&tenant.team), &json!({"data": {"level": "info"}}), "someone");
    let changed = json!({"level": "info", "color": "blue"});
    wait_for_data(&cluster, &tenant.allowed[0], &changed);
    wait_for_data(&cluster, &tenant.allowed[1], &changed);

    cluster.merge_patch(&config_map(&tenant.allowed[0]), &json!({"data": {"color": "edited by hand"}}), "someone");
    wait_for_data(&cluster, &tenant.allowed[0], &changed);
    // Deleted by hand (without waiting: the operator may recreate it at once), then back
    // as a new object.
    let before = cluster.get(&config_map(&tenant.allowed[1])).unwrap()["metadata"]["uid"].clone();
    let targets: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(cluster.client(), &tenant.allowed[1]);
    cluster.block_on(targets.delete("settings", &Default::default())).unwrap();
    eventually("the deleted target recreated", || match cluster.get(&config_map(&tenant.allowed[1])) {
        Some(live) if live["metadata"]["uid"] != before && live["data"] == changed => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let ready = wait_for_ready(&cluster, &sync, "Synced");
    assert_eq!((&ready["status"], &ready["message"]), (&json!("True"), &json!("2/2 targets in sync")));
}

#[test]
fn a_configmap_the_operator_does_not_own_is_a_conflict_and_untouched() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let foreign = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": tenant.allowed[0]}, "data": {"mine": "yes"}});
    cluster.create(&foreign);
    let _operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0], &tenant.allowed[1]], "syncer");
    let conflict = wait_for_target(&cluster, &sync, &tenant.allowed[0], "Conflict");
    assert_eq!(conflict["synced"], false);
    wait_for_data(&cluster, &tenant.allowed[1], &source_data());
    let live = cluster.get(&foreign).unwrap();
    assert_eq!(live["data"], json!({"mine": "yes"}), "the foreign ConfigMap was changed");
    assert!(live["metadata"]["labels"].get("weaver.example.com/sync-name").is_none());
}

#[test]
fn a_namespace_gets_its_target_once_the_service_account_may_write_there() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.denied], "syncer");
    wait_for_target(&cluster, &sync, &tenant.denied, "Forbidden");
    grant(&cluster, &tenant, &tenant.denied);
    wait_for_data(&cluster, &tenant.denied, &source_data());
    wait_for_target(&cluster, &sync, &tenant.denied, "Synced");
}

#[test]
fn the_selector_takes_in_namespaces_created_later_and_dropped_targets_are_deleted() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let label = json!({"matchLabels": {"weaver-test-team": cluster.prefix}});
    let sync = sync_object(
        &cluster,
        &tenant,
        json!({"source": {"name": "settings"}, "targetNamespaces": [tenant.allowed[0]], "namespaceSelector": label, "serviceAccountName": "syncer"}),
    );
    cluster.create(&sync);
    let source = source_data();
    wait_for_data(&cluster, &tenant.allowed[0], &source);

    // One the account may not read matches too (created first, so any status that lists the
    // next one was computed with it in view): the status must not reveal it.
    let hidden = format!("{}-hidden", cluster.prefix);
    cluster.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": hidden, "labels": {"weaver-test-team": cluster.prefix}}}));
    // A namespace created later, with the label, and the account allowed there.
    let later = format!("{}-later", cluster.prefix);
    cluster.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": later, "labels": {"weaver-test-team": cluster.prefix}}}));
    grant(&cluster, &tenant, &later);
    wait_for_data(&cluster, &later, &source);
    wait_for_target(&cluster, &sync, &later, "Synced");
    let status = cluster.get(&sync).unwrap()["status"].clone();
    assert!(!status.to_string().contains(&hidden), "a namespace the tenant cannot see is in the status: {status}");
    assert!(cluster.get(&config_map(&hidden)).is_none());

    // Dropping a namespace from the spec deletes its target.
    cluster.merge_patch(&sync, &json!({"spec": {"targetNamespaces": [tenant.allowed[1]]}}), "someone");
    wait_for_data(&cluster, &tenant.allowed[1], &source);
    eventually("the dropped target deleted", || match cluster.get(&config_map(&tenant.allowed[0])) {
        None => Ok(()),
        Some(live) => Err(live.to_string()),
    });
    assert!(cluster.get(&config_map(&later)).is_some(), "the selected namespace keeps its target");
}

#[test]
fn deleting_the_configmapsync_deletes_every_target_through_its_finalizer() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_synced(&cluster, &tenant);
    cluster.delete(&sync);
    for namespace in &tenant.allowed {
        assert!(cluster.get(&config_map(namespace)).is_none(), "the target in {namespace} outlived its ConfigMapSync");
    }
    assert!(cluster.get(&config_map(&tenant.team)).is_some(), "the source stays");
}

#[test]
fn a_missing_service_account_is_a_condition_not_a_crash_loop() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0], &tenant.allowed[1]], "nobody");
    let ready = wait_for_ready(&cluster, &sync, "ServiceAccountNotFound");
    assert_eq!(ready["status"], "False");
    assert!(ready["message"].as_str().unwrap().contains("nobody"));
    assert!(cluster.get(&config_map(&tenant.allowed[0])).is_none());
}

#[test]
fn only_the_leader_reconciles_and_another_replica_takes_over_when_it_stops() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let lease_duration = Duration::from_secs(4);
    let lease = |holder: &str| weaver_cluster::LockOptions {
        holder: holder.to_string(),
        ..weaver_cluster::LockOptions::leadership(&tenant.team, &format!("{}-operator", cluster.prefix), lease_duration)
    };
    let (first_roles, first_sink) = role_log("first");
    let first = Operator::start_with(&cluster, Some(lease("first")), first_sink);
    eventually("the first replica to lead", || {
        let roles = first_roles.lock().unwrap().clone();
        if roles.contains(&Role::Leading) { Ok(()) } else { Err(format!("{roles:?}")) }
    });
    let (second_roles, second_sink) = role_log("second");
    let second = Operator::start_with(&cluster, Some(lease("second")), second_sink);
    eventually("the second replica to follow", || {
        let roles = second_roles.lock().unwrap().clone();
        if roles == [Role::Following { leader: "first".into() }] { Ok(()) } else { Err(format!("{roles:?}")) }
    });

    create_synced(&cluster, &tenant);
    assert_eq!(*second_roles.lock().unwrap(), [Role::Following { leader: "first".into() }], "the follower stays out");

    // The leader dies without releasing its Lease: the follower takes over once it expires.
    let crashed = Instant::now();
    first.crash();
    eventually("the second replica to lead", || {
        let roles = second_roles.lock().unwrap().clone();
        if roles.last() == Some(&Role::Leading) { Ok(()) } else { Err(format!("{roles:?}")) }
    });
    let took = crashed.elapsed();
    // The Lease expires a lease duration after the last renewal, and a follower looks every second.
    assert!(took < lease_duration + Duration::from_secs(3), "the takeover took {took:?}");
    cluster.merge_patch(&config_map(&tenant.team), &json!({"data": {"level": "info"}}), "someone");
    wait_for_data(&cluster, &tenant.allowed[0], &json!({"level": "info", "color": "blue"}));
    drop(second);
}

/// One replica's role changes, as they come.
type RoleLog = std::sync::Arc<std::sync::Mutex<Vec<Role>>>;

/// What one replica's role changes were, shared with the test, and the sink that records them.
fn role_log(name: &'static str) -> (RoleLog, impl FnMut(Role) + Send + 'static) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Role>::new()));
    let sink = log.clone();
    (log, move |role: Role| {
        eprintln!("{name}: {role:?}");
        sink.lock().unwrap().push(role)
    })
}

fn roles_of(log: &std::sync::Mutex<Vec<Role>>) -> Vec<Role> {
    log.lock().unwrap().clone()
}

/// Waits until the roles in `log` are what `done` wants.
fn wait_for_roles(what: &str, log: &std::sync::Mutex<Vec<Role>>, done: impl Fn(&[Role]) -> bool) {
    eventually(what, || {
        let roles = roles_of(log);
        if done(&roles) { Ok(()) } else { Err(format!("{roles:?}")) }
    });
}

/// A rollout of the controller's Deployment, as a cluster's deployment controller records it:
/// Deployment `controller` (no replicas, so no Pods need to run) rolled from one template
/// (ReplicaSet `controller-<old>`, revision 1) to another (`controller-<new>`, revision 2),
/// and the leader Lease its replicas campaign for.
struct Rollout {
    namespace: String,
    lease_namespace: String,
    lease_name: String,
    lease_duration: Duration,
    old: String,
    new: String,
}

impl Rollout {
    fn start(cluster: &TestCluster, tenant: &Tenant, lease_duration: Duration) -> Rollout {
        let namespace = cluster.namespace("rollout");
        let template = |image: &str| {
            json!({"metadata": {"labels": {"app": "controller"}},
                "spec": {"containers": [{"name": "operator", "image": image}]}})
        };
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "controller", "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "controller"}}, "template": template("weaver:1")}});
        cluster.create(&deployment);
        let old = Rollout::replica_set_hash(cluster, &namespace, "1");
        cluster.merge_patch(&deployment, &json!({"spec": {"template": template("weaver:2")}}), MANAGER);
        let new = Rollout::replica_set_hash(cluster, &namespace, "2");
        assert_ne!(old, new, "each template has a ReplicaSet of its own");
        Rollout {
            namespace,
            lease_namespace: tenant.team.clone(),
            lease_name: format!("{}-operator", cluster.prefix),
            lease_duration,
            old,
            new,
        }
    }

    /// The pod-template-hash of the Deployment's ReplicaSet of `revision`, once the deployment
    /// controller has made it.
    fn replica_set_hash(cluster: &TestCluster, namespace: &str, revision: &str) -> String {
        eventually(&format!("the ReplicaSet of revision {revision}"), || {
            let replica_sets = cluster.list("apps/v1", "ReplicaSet", "replicasets", namespace);
            let found = replica_sets.iter().find(|rs| {
                rs["metadata"]["ownerReferences"][0]["name"] == "controller"
                    && rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision
            });
            match found.and_then(|rs| rs["metadata"]["labels"]["pod-template-hash"].as_str()) {
                Some(hash) => Ok(hash.to_string()),
                None => Err(format!("{replica_sets:#?}")),
            }
        })
    }

    /// The leader election of replica `holder`, whose Pod's template hash is `hash`.
    fn candidate(&self, holder: &str, hash: &str) -> weaver_cluster::LockOptions {
        weaver_cluster::LockOptions {
            holder: holder.to_string(),
            replica: Some(weaver_cluster::DeploymentReplica {
                namespace: self.namespace.clone(),
                deployment: "controller".into(),
                pod_template_hash: hash.to_string(),
            }),
            ..weaver_cluster::LockOptions::leadership(&self.lease_namespace, &self.lease_name, self.lease_duration)
        }
    }

    /// Who holds the leader Lease now, if anyone.
    fn holder(&self, cluster: &TestCluster) -> Option<String> {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.lease_name, "namespace": self.lease_namespace}});
        let lease = cluster.get(&lease).expect("the leader Lease");
        lease["spec"]["holderIdentity"].as_str().filter(|holder| !holder.is_empty()).map(String::from)
    }

    /// Starts replica `holder` of template `hash` and waits until it has a role.
    fn replica(&self, cluster: &TestCluster, holder: &'static str, hash: &str) -> (Operator, RoleLog) {
        let (roles, sink) = role_log(holder);
        let operator = Operator::start_with(cluster, Some(self.candidate(holder, hash)), sink);
        wait_for_roles(&format!("{holder} to campaign"), &roles, |roles| !roles.is_empty());
        (operator, roles)
    }

    /// Starts replica `holder` of template `hash` and waits until it leads.
    fn leader(&self, cluster: &TestCluster, holder: &'static str, hash: &str) -> Operator {
        let (operator, roles) = self.replica(cluster, holder, hash);
        wait_for_roles(&format!("{holder} to lead"), &roles, |roles| roles.contains(&Role::Leading));
        operator
    }
}

#[test]
fn a_released_lease_passes_to_a_replica_of_the_current_revision_not_to_one_a_rollout_replaces() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let rollout = Rollout::start(&cluster, &tenant, Duration::from_secs(8));
    let leader = rollout.leader(&cluster, "old-leader", &rollout.old);
    let (_outdated, outdated_roles) = rollout.replica(&cluster, "outdated", &rollout.old);
    let (_current, current_roles) = rollout.replica(&cluster, "current", &rollout.new);
    let following = [Role::Following { leader: "old-leader".into() }];
    assert_eq!((roles_of(&outdated_roles), roles_of(&current_roles)), (following.to_vec(), following.to_vec()));

    // The old leader stops (a rollout's SIGTERM) and releases the Lease: both see it free.
    drop(leader);
    wait_for_roles("the current replica to lead", &current_roles, |roles| roles.last() == Some(&Role::Leading));
    assert_eq!(rollout.holder(&cluster).as_deref(), Some("current"));
    // Past the bound the outdated replica would take a Lease still free: it follows instead.
    std::thread::sleep(rollout.lease_duration + Duration::from_secs(1));
    assert_eq!(
        roles_of(&outdated_roles),
        [Role::Following { leader: "old-leader".into() }, Role::Following { leader: "current".into() }],
        "the outdated replica never led"
    );
    assert_eq!(rollout.holder(&cluster).as_deref(), Some("current"));
}

#[test]
fn a_replica_a_rollout_replaces_waits_for_a_new_one_and_takes_the_lease_only_after_a_lease_duration() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let rollout = Rollout::start(&cluster, &tenant, Duration::from_secs(8));

    // The leader stops while only an outdated replica waits, as in a rollout that replaces a
    // Pod before it starts the new one: the Lease stays free, and the new replica that
    // campaigns meanwhile takes it.
    let leader = rollout.leader(&cluster, "old-leader", &rollout.old);
    let (outdated, outdated_roles) = rollout.replica(&cluster, "outdated", &rollout.old);
    drop(leader);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rollout.holder(&cluster), None, "the outdated replica left the Lease free");
    let (current, current_roles) = rollout.replica(&cluster, "current", &rollout.new);
    wait_for_roles("the current replica to lead", &current_roles, |roles| roles == [Role::Leading]);
    assert!(!roles_of(&outdated_roles).contains(&Role::Leading), "{:?}", roles_of(&outdated_roles));

    // Now with no replica of the current revision: the outdated one takes the released Lease
    // one lease duration after it saw it free, not before.
    // Timed from the moment the Lease is seen free: a real server's watches take a while to
    // close, so the current replica releases it some seconds into its stop.
    let stopping = std::thread::spawn(move || drop(current));
    let asked = Instant::now();
    while rollout.holder(&cluster).as_deref() == Some("current") && asked.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let released = Instant::now();
    assert_eq!(rollout.holder(&cluster), None, "the Lease, once the current replica released it");
    wait_for_roles("the outdated replica to lead", &outdated_roles, |roles| roles.last() == Some(&Role::Leading));
    let took = released.elapsed();
    stopping.join().expect("the current replica stops");
    // Seen free here at most a poll after the outdated replica saw it so.
    assert!(
        took + Duration::from_millis(500) >= rollout.lease_duration,
        "the outdated replica took the Lease after {took:?}"
    );
    assert!(took < rollout.lease_duration + Duration::from_secs(4), "the takeover took {took:?}");
    assert_eq!(rollout.holder(&cluster).as_deref(), Some("outdated"));
    drop(outdated);
}

#[test]
fn a_replica_that_cannot_read_its_revision_takes_a_free_lease_at_once() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let rollout = Rollout::start(&cluster, &tenant, Duration::from_secs(8));
    let leader = rollout.leader(&cluster, "old-leader", &rollout.old);
    // Its ReplicaSet does not exist (a hash of no template of the Deployment): as without
    // the permission to read it, the replica cannot tell, and elects as it always did.
    let (_unknown, unknown_roles) = rollout.replica(&cluster, "unknown", "nohash");
    let released = Instant::now();
    drop(leader);
    wait_for_roles("the replica to lead", &unknown_roles, |roles| roles.last() == Some(&Role::Leading));
    let took = released.elapsed();
    assert!(took < Duration::from_secs(4), "the takeover took {took:?}, as if deferring");
}

/// A Role without the rules to read ReplicaSets: the replica is told which permissions it
/// lacks, and elects as replicas did before rollouts were told apart.
#[test]
fn a_replica_forbidden_to_read_its_revision_elects_as_before_and_is_told_what_to_grant() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("RBAC rules") else { return };
    let tenant = tenant(&cluster);
    let rollout = Rollout::start(&cluster, &tenant, Duration::from_secs(8));
    fake.forbid("get", "replicasets", Some(&rollout.namespace));
    let options = cluster.connect_options(Duration::from_secs(10));
    let replica = rollout.candidate("outdated", &rollout.old).replica.unwrap();
    let err = cluster.block_on(async {
        let weaver = weaver_cluster::Cluster::connect(&options).await.unwrap();
        weaver.revisions(&replica).await.expect_err("read its ReplicaSet without permission")
    });
    let message = err.to_string();
    let ns = &rollout.namespace;
    assert!(
        message.starts_with(&format!("reading ReplicaSet {ns}/controller-{}: forbidden", rollout.old)),
        "{message}"
    );
    let help = err.help.unwrap_or_default();
    assert!(
        help.contains(&format!(
            "get on deployments (apps) named `controller` and on replicasets (apps) in namespace `{ns}`"
        )),
        "{help}"
    );

    let leader = rollout.leader(&cluster, "old-leader", &rollout.old);
    let (_outdated, outdated_roles) = rollout.replica(&cluster, "outdated", &rollout.old);
    let released = Instant::now();
    drop(leader);
    wait_for_roles("the outdated replica to lead", &outdated_roles, |roles| roles.last() == Some(&Role::Leading));
    let took = released.elapsed();
    assert!(took < Duration::from_secs(4), "the takeover took {took:?}, as if deferring");
}

#[test]
fn readiness_waits_for_the_cache_and_metrics_count_reconciles_and_targets_by_state() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    // Hold the operator's first list of ConfigMapSyncs back, to see it not ready meanwhile.
    if let Some(fake) = cluster.fake("holding a list back to see /readyz fail") {
        let path = "/apis/weaver.example.com/v1beta1/configmapsyncs";
        fake.inject(weaver_test_apiserver::Fault::delay("GET", path, Duration::from_secs(2)).times(1));
    }
    let operator = Operator::start(&cluster);
    assert_eq!(operator.get("/healthz").0, 200);
    if cluster.is_fake() {
        // Not ready while the list is held back (or before the controller started).
        let (status, body) = operator.get("/readyz");
        let why = [
            "the ConfigMapSync cache has not synced yet\n",
            "no controller runs yet: the replica is starting or campaigning\n",
        ];
        assert!(status == 503 && why.contains(&body.as_str()), "{status} {body}");
    }
    eventually("/readyz to answer 200", || match operator.get("/readyz") {
        (200, _) => Ok(()),
        other => Err(format!("{other:?}")),
    });

    create_sync(&cluster, &tenant, &[&tenant.allowed[0], &tenant.allowed[1], &tenant.denied], "syncer");
    let metrics = eventually("targets by state in /metrics", || {
        let (_, body) = operator.get("/metrics");
        let wanted = ["configmapsync_targets{state=\"Synced\"} 2", "configmapsync_targets{state=\"Forbidden\"} 1"];
        if wanted.iter().all(|line| body.contains(line)) { Ok(body) } else { Err(body) }
    });
    let reconciles = metrics
        .lines()
        .find_map(|line| line.strip_prefix("configmapsync_reconciles_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(reconciles.is_some_and(|n| n >= 1), "{metrics}");
    assert!(metrics.contains("configmapsync_reconcile_duration_seconds_bucket"), "{metrics}");
    assert_eq!(operator.get("/nothing").0, 404);
}

/// A quiet watch stays open past `--request-timeout`: the operator's reads may idle as long as
/// a watch lasts. (With the request timeout as its read timeout, every quiet watch was cut after
/// it, and the watcher said so and started again.)
#[test]
fn quiet_watches_outlast_the_request_timeout() {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::configmapsync::crd(), MANAGER);
    let (mut operator, log) = spawn_operator(&cluster, &["--request-timeout", "1s"], "warn,weaver_cli::commands=info");
    let read = || std::fs::read_to_string(log.path()).unwrap();
    eventually("the operator to start", || if read().contains("starting") { Ok(()) } else { Err(read()) });
    // Four request timeouts with nothing to watch (this test's selector matches nothing).
    std::thread::sleep(Duration::from_secs(4));
    let _ = operator.kill();
    let _ = operator.wait();
    assert!(!read().contains("watch stream failed"), "{}", read());
}

/// The Warning event with `reason` recorded on `sync`, once there is one; its note.
#[track_caller]
fn wait_for_event(cluster: &TestCluster, sync: &Value, reason: &str) -> String {
    let namespace = sync["metadata"]["namespace"].as_str().unwrap();
    let name = sync["metadata"]["name"].as_str().unwrap();
    eventually(&format!("a {reason} event on the ConfigMapSync"), || {
        let events = cluster.list("events.k8s.io/v1", "Event", "events", namespace);
        let found = events.iter().find(|e| e["regarding"]["name"] == name && e["reason"] == reason);
        match found {
            Some(event) => {
                assert_eq!(event["type"], "Warning", "{event}");
                assert_eq!(event["regarding"]["kind"], "ConfigMapSync", "{event}");
                Ok(event["note"].as_str().unwrap_or_default().to_string())
            }
            None => Err(events.iter().map(|e| e["reason"].to_string()).collect::<Vec<_>>().join(", ")),
        }
    })
}

/// A ClusterRole granting `verbs` on ConfigMaps, named `<prefix>-<name>`; its name.
fn configmap_role(cluster: &TestCluster, name: &str, verbs: &[&str]) -> String {
    let role = format!("{}-{name}", cluster.prefix);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]
    }));
    role
}

fn bind(cluster: &TestCluster, namespace: &str, name: &str, cluster_role: &str, account: (&str, &str)) {
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": account.1, "namespace": account.0}]
    }));
}

/// The silent stall of old: an account that may write the targets but not read the source.
#[test]
fn a_source_the_account_may_not_read_is_source_forbidden_at_once_and_syncs_once_granted() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let operator = Operator::start(&cluster);
    cluster.create(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "writer", "namespace": tenant.team}}));
    bind(&cluster, &tenant.allowed[0], "writer", &tenant.role, (&tenant.team, "writer"));
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0]], "writer");

    let ready = wait_for_ready(&cluster, &sync, "SourceForbidden");
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains(&format!("system:serviceaccount:{}:writer", tenant.team)), "{message}");
    assert!(message.contains("cannot get resource \"configmaps\"") && message.contains("grant it get"), "{message}");
    assert_eq!(wait_for_event(&cluster, &sync, "SourceForbidden"), message);
    assert_eq!(operator.failed_reconciles(), 0, "reported by the first reconcile, not after failed ones");
    assert!(cluster.get(&config_map(&tenant.allowed[0])).is_none(), "nothing copied");

    // Reading only the source, by name, is enough; the RBAC change is noticed at once.
    let reader = format!("{}-source-reader", cluster.prefix);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": reader},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]}]
    }));
    bind(&cluster, &tenant.team, "writer", &reader, (&tenant.team, "writer"));
    wait_for_data(&cluster, &tenant.allowed[0], &source_data());
    wait_for_ready(&cluster, &sync, "Synced");
}

#[test]
fn a_missing_service_account_is_a_condition_and_an_event_at_once() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0]], "nobody");
    let ready = wait_for_ready(&cluster, &sync, "ServiceAccountNotFound");
    let note = wait_for_event(&cluster, &sync, "ServiceAccountNotFound");
    assert!(note.contains("ServiceAccount nobody does not exist"), "{note}");
    assert_eq!(note, ready["message"]);
    assert_eq!(operator.failed_reconciles(), 0);
}

/// An operator whose own ClusterRole lacks `serviceaccounts/token` cannot act as any tenant.
#[test]
fn a_refused_token_request_is_token_request_failed_with_the_servers_answer() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let identity = cluster.service_account(&tenant.team, "operator-without-tokens");
    let role = format!("{}-operator-without-tokens", cluster.prefix);
    let rules = json!([
        {"apiGroups": [""], "resources": ["configmaps", "namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["weaver.example.com"], "resources": ["configmapsyncs"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["weaver.example.com"], "resources": ["configmapsyncs/status", "configmapsyncs/finalizers"], "verbs": ["get", "patch", "update"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], "verbs": ["list", "watch"]}
    ]);
    cluster.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role}, "rules": rules}));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "operator-without-tokens", "namespace": tenant.team}]
    }));
    let operator = Operator::start_as(&cluster, &identity);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0]], "syncer");
    let ready = wait_for_ready(&cluster, &sync, "TokenRequestFailed");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains("ServiceAccount syncer"), "{message}");
    assert!(message.contains("cannot create resource \"serviceaccounts/token\""), "the server's answer: {message}");
    assert!(message.contains("needs create on serviceaccounts/token"), "what to do: {message}");
    assert_eq!(wait_for_event(&cluster, &sync, "TokenRequestFailed"), message);
    assert_eq!(operator.failed_reconciles(), 0);
    assert!(cluster.get(&config_map(&tenant.allowed[0])).is_none());
}

/// Where the account may read, a missing namespace and one being deleted are told apart.
#[test]
fn missing_and_terminating_target_namespaces_are_reported_with_events() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    // The account may read ConfigMaps everywhere, so it may know which namespaces exist.
    let reader = configmap_role(&cluster, "reader-everywhere", &["get"]);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": reader},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader},
        "subjects": [{"kind": "ServiceAccount", "name": "syncer", "namespace": tenant.team}]
    }));
    // A namespace held in Terminating by an object with a finalizer.
    let leaving = cluster.namespace("leaving");
    let hold = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hold", "namespace": leaving, "finalizers": ["weaver.example.com/test-hold"]}});
    cluster.create(&hold);
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(cluster.client());
    cluster.block_on(namespaces.delete(&leaving, &Default::default())).unwrap();
    let operator = Operator::start(&cluster);
    let missing = format!("{}-missing", cluster.prefix);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0], &missing, &leaving], "syncer");

    let target = wait_for_target(&cluster, &sync, &missing, "NamespaceNotFound");
    assert_eq!(target["message"], format!("namespace {missing} does not exist"));
    let target = wait_for_target(&cluster, &sync, &leaving, "NamespaceTerminating");
    assert!(target["message"].as_str().unwrap().contains("is being deleted"), "{target}");
    assert!(wait_for_event(&cluster, &sync, "NamespaceNotFound").contains(&missing));
    assert!(wait_for_event(&cluster, &sync, "NamespaceTerminating").contains(&leaving));
    wait_for_data(&cluster, &tenant.allowed[0], &source_data());
    assert_eq!(wait_for_ready(&cluster, &sync, "TargetsNotSynced")["message"], "1/3 targets in sync");
    assert_eq!(operator.failed_reconciles(), 0);
    cluster.merge_patch(&hold, &json!({"metadata": {"finalizers": null}}), "test");
}

#[test]
fn forbidden_and_conflicting_targets_are_recorded_as_events() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let foreign = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": tenant.allowed[1]}, "data": {"mine": "yes"}});
    cluster.create(&foreign);
    let operator = Operator::start(&cluster);
    let sync = create_sync(&cluster, &tenant, &[&tenant.allowed[0], &tenant.allowed[1], &tenant.denied], "syncer");
    wait_for_target(&cluster, &sync, &tenant.denied, "Forbidden");
    wait_for_target(&cluster, &sync, &tenant.allowed[1], "Conflict");
    let forbidden = wait_for_event(&cluster, &sync, "Forbidden");
    assert!(forbidden.starts_with(&format!("target {}: ", tenant.denied)), "{forbidden}");
    assert!(forbidden.contains("system:serviceaccount:"), "{forbidden}");
    let conflict = wait_for_event(&cluster, &sync, "Conflict");
    assert!(conflict.contains("is not managed by this ConfigMapSync"), "{conflict}");
    assert_eq!(operator.failed_reconciles(), 0);
}

/// The finalizer never falls back to the operator's rights: a target the account may no longer
/// delete keeps the ConfigMapSync, and the deletion finishes once the right is back.
#[test]
fn a_cleanup_the_account_may_not_do_keeps_the_finalizer_until_the_right_comes_back() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let _operator = Operator::start(&cluster);
    let sync = create_synced(&cluster, &tenant);
    // The account loses `delete` in the second target namespace.
    let no_delete = configmap_role(&cluster, "no-delete", &["get", "create", "update"]);
    bind(&cluster, &tenant.allowed[1], "syncer-no-delete", &no_delete, (&tenant.team, "syncer"));
    let bindings: kube::Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        kube::Api::namespaced(cluster.client(), &tenant.allowed[1]);
    cluster.block_on(bindings.delete("syncer", &Default::default())).unwrap();

    let syncs: kube::Api<weaver_controllers::configmapsync::ConfigMapSync> =
        kube::Api::namespaced(cluster.client(), &tenant.team);
    cluster.block_on(syncs.delete("share", &Default::default())).unwrap();
    let ready = wait_for_ready(&cluster, &sync, "CleanupFailed");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains(&format!("ConfigMap settings in namespace {}", tenant.allowed[1])), "{message}");
    assert!(message.contains("cannot delete resource \"configmaps\""), "{message}");
    let note = wait_for_event(&cluster, &sync, "CleanupFailed");
    assert!(note.contains(&tenant.allowed[1]), "{note}");
    assert!(cluster.get(&config_map(&tenant.allowed[0])).is_none(), "what it may delete is deleted");
    assert!(cluster.get(&config_map(&tenant.allowed[1])).is_some(), "nothing deleted with the operator's rights");
    let live = cluster.get(&sync).expect("the ConfigMapSync stays while a target is left");
    assert!(strings(&live["metadata"]["finalizers"]).contains(&"weaver.example.com/configmapsync".to_string()));

    grant(&cluster, &tenant, &tenant.allowed[1]);
    eventually("the ConfigMapSync to go once the right is back", || match cluster.get(&sync) {
        None => Ok(()),
        Some(live) => Err(live["status"].to_string()),
    });
    assert!(cluster.get(&config_map(&tenant.allowed[1])).is_none());
}

/// ConfigMapSyncs that exist when the operator starts are all reconciled: the first reconciles
/// run at once and wait together for the operator's caches (kube's own readiness wait wakes
/// only one waiter; with it, all but one of them waited forever).
#[test]
fn configmapsyncs_that_exist_at_startup_are_all_synced() {
    let cluster = TestCluster::start();
    let tenant = tenant(&cluster);
    let syncs: Vec<Value> = (0..6)
        .map(|i| {
            let source = format!("settings-{i}");
            cluster.create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": source, "namespace": tenant.team}}));
            let spec = json!({"source": {"name": source}, "targetNamespaces": [tenant.allowed[0]], "serviceAccountName": "syncer"});
            let mut sync = sync_object(&cluster, &tenant, spec);
            sync["metadata"]["name"] = json!(format!("share-{i}"));
            cluster.create(&sync);
            sync
        })
        .collect();
    let _operator = Operator::start(&cluster);
    for sync in &syncs {
        wait_for_ready(&cluster, sync, "Synced");
    }
}

/// A tenant's token the API server refuses (its ServiceAccount was deleted and made again) is
/// forgotten at the 401, so the next client asks for a new one instead of failing until the
/// cached token's refresh, minutes later.
#[test]
fn a_tenant_token_answered_401_is_forgotten_and_the_next_client_has_a_new_one() {
    use weaver_controllers::tenant::Tenants;
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("tenant-token");
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": namespace}});
    cluster.create(&account);
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let base = cluster.block_on(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())).unwrap();
    let tenants = Tenants::new(cluster.client(), base, None);
    let client = cluster.block_on(tenants.client(&namespace, "deployer")).unwrap();
    // /version answers any valid token, and 401 to a refused one.
    cluster.block_on(client.apiserver_version()).expect("the tenant's token is accepted");

    cluster.delete(&account);
    cluster.create(&account);
    eventually("the old token to be refused", || match cluster.block_on(client.apiserver_version()) {
        Err(kube::Error::Api(status)) if status.code == 401 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let again = cluster.block_on(tenants.client(&namespace, "deployer")).unwrap();
    cluster.block_on(again.apiserver_version()).expect("a new token, accepted");
}

/// The operator leaves rate limiting to a server that runs API Priority and Fairness (1.32 does,
/// and so does the fake), keeps a budget asked for, and falls back to client-go's where it
/// cannot tell.
#[test]
fn the_request_budget_is_left_to_the_server_unless_one_is_asked_for() {
    use weaver_cluster::{Budgeted, operator_budget};
    let cluster = TestCluster::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let connect = cluster.connect_options(Duration::from_secs(5));
    runtime.block_on(async {
        let (config, _) = weaver_cluster::kube_config(&connect).await.unwrap();
        let (rate, budgeted) = operator_budget(&config, None, None).await;
        assert_eq!(budgeted, Budgeted::ByTheServer);
        assert!(rate.is_none());
        let (rate, budgeted) = operator_budget(&config, None, Some(10)).await;
        assert_eq!(budgeted, Budgeted::AsGiven);
        assert!(rate.is_some());
        // Nothing listens on port 1.
        let mut unreachable = config.clone();
        unreachable.cluster_url = "https://127.0.0.1:1".parse().unwrap();
        let (rate, budgeted) = operator_budget(&unreachable, None, None).await;
        assert!(matches!(budgeted, Budgeted::ByDefault { unknown: Some(_) }), "{budgeted:?}");
        assert!(rate.is_some());
    });
}

/// GET `path` of the operator's endpoints at `address`: the status and the body.
fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

/// `weaver operator run --controllers environmentsync` (no ConfigMapSync controller) is ready
/// once its watch of EnvironmentSyncs has listed, without and with leader election.
#[test]
fn the_environmentsync_controller_alone_becomes_ready() {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let leases = cluster.namespace("leader");
    let cache = tempfile::tempdir().unwrap();
    for elect in [&[][..], &["--leader-elect", "--leader-election-namespace", &leases]] {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut operator = std::process::Command::new(common::WEAVER)
            .args(["operator", "run", "--controllers", "environmentsync", "--metrics-addr", "127.0.0.1:0"])
            .args(["-l", &format!("weaver-test={}", cluster.prefix)])
            .args(elect)
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let read = || std::fs::read_to_string(log.path()).unwrap();
        let address: std::net::SocketAddr = eventually("the operator to serve /readyz", || {
            let log = read();
            let address = log.lines().find(|l| l.contains("serving /healthz, /readyz and /metrics"));
            address.and_then(|l| l.split("address=").nth(1)).and_then(|a| a.trim().parse().ok()).ok_or(log)
        });
        let ready = std::panic::catch_unwind(|| {
            eventually("/readyz to answer 200", || match get(address, "/readyz") {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            })
        });
        let _ = operator.kill();
        let _ = operator.wait();
        assert!(ready.is_ok(), "{elect:?}: never ready; log:\n{}", read());
    }
}

/// SIGTERM while the API server accepts connections and never answers: the operator exits at
/// once, saying where it was, instead of waiting out the kubelet's grace period. It runs with
/// SIGTERM ignored, as PID 1 of a container has it until it installs a handler.
#[test]
fn sigterm_while_the_api_server_never_answers_stops_the_operator_at_once() {
    use std::os::unix::process::CommandExt;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let silent = {
        let (done, accepted) = (done.clone(), accepted.clone());
        std::thread::spawn(move || {
            // Held open, never read nor answered.
            let mut held = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster:\n    server: {server}\n\
             contexts:\n- name: silent\n  context:\n    cluster: silent\n    user: nobody\ncurrent-context: silent\n\
             users:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = std::process::Command::new(common::WEAVER);
    command
        .args(["operator", "run", "--metrics-addr", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap());
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; signal(2) is one.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut operator = command.spawn().unwrap();
    let read = || std::fs::read_to_string(log.path()).unwrap();
    eventually("the operator to connect", || match accepted.load(std::sync::atomic::Ordering::SeqCst) {
        0 => Err(read()),
        _ => Ok(()),
    });
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    // SAFETY: kill(2) on the child's pid.
    assert_eq!(unsafe { libc::kill(operator.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = operator.try_wait().unwrap() {
            break Some(status);
        }
        if signalled.elapsed() > Duration::from_secs(5) {
            let _ = operator.kill();
            let _ = operator.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    silent.join().unwrap();
    let log = read();
    let status = status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{log}"));
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains(&format!("stopped (SIGTERM or Ctrl-C) while reaching the API server {server}")), "{log}");
}

/// A machine without a trust store (weaver's image has no CA bundle; here SSL_CERT_FILE and
/// SSL_CERT_DIR name nothing): a kubeconfig with `insecure-skip-tls-verify` needs none, and one
/// without the cluster's CA is refused saying so.
#[test]
fn without_a_trust_store_an_insecure_kubeconfig_connects_and_one_without_a_ca_says_what_to_add() {
    // Closed: what a client that was set up then meets is a refused connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let run = |insecure: bool| {
        let kubeconfig = dir.path().join(format!("kubeconfig-{insecure}"));
        let skip = if insecure { ", insecure-skip-tls-verify: true" } else { "" };
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{ server: 'https://127.0.0.1:{port}'{skip} }}\n\
                 contexts:\n- name: c\n  context: {{ cluster: c, user: u }}\ncurrent-context: c\n\
                 users:\n- name: u\n  user: {{ token: t }}\n"
            ),
        )
        .unwrap();
        let output = std::process::Command::new(common::WEAVER)
            .args(["operator", "run", "--metrics-addr", "127.0.0.1:0", "--request-timeout", "2s", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("SSL_CERT_FILE", dir.path().join("no-bundle.pem"))
            .env("SSL_CERT_DIR", dir.path().join("no-certs"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = run(false);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no certificate-authority-data") && stderr.contains("add the cluster's CA"), "{stderr}");
    let (code, stderr) = run(true);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("certificate") && stderr.contains("refused"), "{stderr}");
}

/// The registries' bounds the controller's reconciles use come from its own environment
/// (`WEAVER_REGISTRY_*`, the chart's `extraEnv`): one that does not read stops the operator at
/// its start, naming the variable, before it connects anywhere.
#[test]
fn operator_run_refuses_a_registry_bound_that_does_not_read_naming_the_variable() {
    let run = std::process::Command::new(common::WEAVER)
        .args(["operator", "run", "--metrics-addr", "127.0.0.1:0", "--kubeconfig", "/nonexistent/kubeconfig"])
        .env("WEAVER_REGISTRY_CHECK_SECONDS", "soon")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("WEAVER_REGISTRY_CHECK_SECONDS=soon is not a whole number above 0"), "{stderr}");
    assert!(!stderr.contains("/nonexistent/kubeconfig"), "it read the kubeconfig first: {stderr}");
}

#[test]
fn operator_run_refuses_a_deployment_to_elect_in_without_the_pods_template_hash_naming_the_variable() {
    let cluster = TestCluster::start();
    let leases = cluster.namespace("leader");
    let selector = format!("weaver-test={}", cluster.prefix);
    let run = std::process::Command::new(common::WEAVER)
        .args(["operator", "run", "--metrics-addr", "127.0.0.1:0", "-l", &selector, "--leader-elect"])
        .args(["--leader-election-namespace", &leases, "--leader-election-deployment", "weaver"])
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .env("POD_NAMESPACE", &leases)
        .env_remove("POD_TEMPLATE_HASH")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--leader-election-deployment needs POD_TEMPLATE_HASH"), "{stderr}");
    assert!(stderr.contains("set POD_TEMPLATE_HASH from the Downward API"), "{stderr}");
}

/// The controllers' Events: the same reason and message three times is one Event whose series
/// counts 3 (a patch of the whole Event failed the third time on its stale resourceVersion, on
/// a real API server), another message a new Event, and a note past what the API server takes
/// is cut rather than the Event refused.
#[test]
fn an_event_said_three_times_is_one_event_counted_three_times_and_a_long_note_is_cut() {
    use kube::runtime::events::{EventType, Reporter};
    use weaver_api::environment_sync::Reason;
    let cluster = TestCluster::start();
    let ns = cluster.namespace("events");
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "told", "namespace": ns}});
    cluster.create(&config_map);
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("told".into()),
        namespace: Some(ns.clone()),
        uid: cluster.get(&config_map).unwrap()["metadata"]["uid"].as_str().map(String::from),
        ..Default::default()
    };
    let reporter = Reporter { controller: "weaver-test".into(), instance: None };
    let recorder = weaver_controllers::events::Recorder::new(cluster.client(), reporter);
    let reason = Reason::ReconciliationSucceeded;
    for note in ["once", "once", "once", "twice", &"long ".repeat(400)] {
        cluster
            .block_on(recorder.publish(EventType::Normal, &reason, "Test", note, &regarding))
            .unwrap_or_else(|err| panic!("{note:.20}: {err}"));
    }
    let events = cluster.list("events.k8s.io/v1", "Event", "events", &ns);
    let by_note = |start: &str| -> Vec<&Value> {
        events.iter().filter(|e| e["note"].as_str().is_some_and(|n| n.starts_with(start))).collect()
    };
    let once = by_note("once");
    assert_eq!(once.len(), 1, "{events:#?}");
    assert_eq!(once[0]["series"]["count"], 3, "{:#}", once[0]);
    assert_eq!(by_note("twice").len(), 1);
    let long = by_note("long");
    assert_eq!(long.len(), 1);
    let note = long[0]["note"].as_str().unwrap();
    assert!(note.len() <= 1024 && note.ends_with(" …"), "{}", note.len());
}

/// `--health-addr`: the probes' endpoints on a listener of their own (the chart's probes use
/// it), beside the metrics port's.
#[test]
fn operator_run_serves_the_probes_on_the_health_address_apart_from_metrics() {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::configmapsync::crd(), MANAGER);
    let (mut operator, log) = spawn_operator(&cluster, &["--health-addr", "127.0.0.1:0"], "info");
    let read = || std::fs::read_to_string(log.path()).unwrap();
    let address = eventually("the probes' address in the log", || {
        let log = read();
        let line = log.lines().find(|line| line.contains("for the probes")).ok_or_else(|| log.clone())?;
        let at = line.split("address=").nth(1).ok_or_else(|| line.to_string())?;
        Ok(at.split_whitespace().next().unwrap_or_default().to_string())
    });
    let healthz = eventually("/healthz on the probes' address", || {
        let mut stream = std::net::TcpStream::connect(&address).map_err(|err| err.to_string())?;
        std::io::Write::write_all(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .map_err(|err| err.to_string())?;
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).map_err(|err| err.to_string())?;
        Ok(answer)
    });
    let _ = operator.kill();
    let _ = operator.wait();
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}\n{}", read());
}

/// `weaver operator run` on `cluster` with `args`, watching only this test's objects, metrics on
/// any free loopback port, its log (at `rust_log`) in the file returned.
fn spawn_operator(
    cluster: &TestCluster,
    args: &[&str],
    rust_log: &str,
) -> (std::process::Child, tempfile::NamedTempFile) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let selector = format!("weaver-test={}", cluster.prefix);
    let operator = std::process::Command::new(common::WEAVER)
        .args(["operator", "run", "--metrics-addr", "127.0.0.1:0", "-l", &selector])
        .args(args)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    (operator, log)
}
