//! `Cluster::wait_ready` against the fake API server, or a real cluster with
//! WEAVER_TEST_KUBECONFIG. A real test cluster may run no scheduler or kubelet (pods never
//! start), so rollouts that must finish are checked on the fake only.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use common::cluster::TestCluster;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use weaver_cluster::{Cluster, ConnectOptions, ObjectRef, WaitOutcome};

/// Held exclusively while a test creates and deletes a CRD: servers before 1.26 (no aggregated
/// discovery) fail a discovery that runs while a CRD's group goes away, and every test here
/// discovers.
static CRD_CHANGES: RwLock<()> = RwLock::new(());

fn no_crd_changes() -> RwLockReadGuard<'static, ()> {
    CRD_CHANGES.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connects as weaver does and waits for `objects`, in a runtime of its own so a test can run
/// it on another thread while it changes the cluster. Returns the outcome and what progress
/// said (`ready <object>`, `waiting <object>: <reason>`), in order.
fn wait(kubeconfig: &Path, objects: &[Value], timeout: Duration) -> (WaitOutcome, Vec<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let options = ConnectOptions {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            context: None,
            request_timeout: Duration::from_secs(10),
            retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
            given: None,
        };
        let weaver = Cluster::connect(&options).await.unwrap();
        let targets: Vec<_> = objects
            .iter()
            .map(|object| {
                let object = ObjectRef::of(object);
                let served = weaver
                    .resolve(&object.api_version, &object.kind)
                    .unwrap_or_else(|_| panic!("the cluster does not serve {object}"));
                (object, served)
            })
            .collect();
        let mut log = Vec::new();
        let no_rules: &[weaver_project::HealthCheck] = &[];
        let outcome = weaver
            .wait_ready(&targets, no_rules, timeout, 4, |progress| {
                log.extend(progress.became_ready.iter().map(|object| format!("ready {object}")));
                log.extend(progress.not_ready.iter().map(|n| format!("waiting {n}")));
            })
            .await
            .unwrap();
        (outcome, log)
    })
}

/// Waits on another thread while `meanwhile` changes the cluster.
fn wait_while(
    kubeconfig: &Path,
    objects: &[Value],
    timeout: Duration,
    meanwhile: impl FnOnce(),
) -> (WaitOutcome, Vec<String>) {
    let kubeconfig: PathBuf = kubeconfig.to_path_buf();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| wait(&kubeconfig, objects, timeout));
        meanwhile();
        waiting.join().unwrap()
    })
}

fn deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}

fn job(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": "busybox:1.36", "command": ["true"]}]}}}})
}

/// A plain kube client, for changes a test makes by hand.
async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Turns the fake's instant workload controllers off; a real test cluster has no pods running.
fn no_rollouts(cluster: &TestCluster) {
    if cluster.is_fake() {
        cluster.fake("auto-ready").unwrap().set_auto_ready(false);
    }
}

#[test]
fn crd_is_waited_for_until_established() {
    let _changing_crds = CRD_CHANGES.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cluster = TestCluster::start();
    let group = format!("{}.example.com", cluster.prefix);
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    // Created, not applied: the harness's apply would wait for Established itself.
    cluster.create(&crd);
    let (outcome, _) = wait(cluster.kubeconfig(), std::slice::from_ref(&crd), Duration::from_secs(30));
    assert!(outcome.all_ready(), "{:?}", outcome.error());
    assert_eq!(outcome.ready, [ObjectRef::of(&crd)]);

    // Gone from discovery before other tests discover again.
    cluster.delete(&crd);
    cluster.block_on(async {
        let client = kube_client(cluster.kubeconfig()).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while client.list_api_groups().await.unwrap().groups.iter().any(|g| g.name == group) {
            assert!(std::time::Instant::now() < deadline, "group {group} is still served");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn deployment_that_never_becomes_ready_times_out_naming_it_and_why() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let ns = cluster.namespace("shop");
    no_rollouts(&cluster);
    let web = deployment(&ns, "web");
    cluster.apply(std::slice::from_ref(&web), "weaver");

    let (outcome, log) = wait(cluster.kubeconfig(), std::slice::from_ref(&web), Duration::from_secs(3));
    assert!(outcome.ready.is_empty());
    let [not_ready] = outcome.not_ready.as_slice() else { panic!("{outcome:?}") };
    assert!(!not_ready.failed);
    // The fake runs no Deployment controller now; a real cluster's makes pods that never start.
    let expected = if cluster.is_fake() {
        "waiting for the controller to observe generation 1 (no status yet)"
    } else {
        "0 of 2 updated replicas available (Available=False MinimumReplicasUnavailable: Deployment does not have \
         minimum availability"
    };
    assert!(not_ready.reason.starts_with(expected), "{}", not_ready.reason);
    let error = outcome.error().unwrap().to_string();
    assert!(
        error.starts_with(&format!(
            "timed out after 3s waiting for 1 of 1 objects to become ready:\n  apps/v1 Deployment {ns}/web: {expected}"
        )),
        "{error}"
    );
    assert!(log.len() >= 2, "waiting reads again: {log:?}");
}

#[test]
fn workloads_that_roll_out_while_waiting_are_ready() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("rollouts that finish (pods must run)") else { return };
    let ns = cluster.namespace("shop");
    fake.set_auto_ready(false);
    let labels = json!({"matchLabels": {"app": "db"}});
    let template =
        json!({"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "redis:7"}]}});
    let objects = [
        deployment(&ns, "web"),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
            "spec": {"replicas": 3, "serviceName": "db", "selector": labels, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
            "spec": {"selector": labels, "template": template}}),
        job(&ns, "migrate"),
    ];
    cluster.apply(&objects, "weaver");

    let (outcome, log) = wait_while(cluster.kubeconfig(), &objects, Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(1500));
        fake.set_auto_ready(true);
    });
    assert!(outcome.all_ready(), "{:?}", outcome.error());
    for object in &objects {
        let object = ObjectRef::of(object);
        let waited = log.iter().position(|l| l.starts_with(&format!("waiting {object}: ")));
        let ready = log.iter().position(|l| l == &format!("ready {object}"));
        assert!(waited.is_some() && waited < ready, "{object} was pending, then ready: {log:?}");
    }
    let job = ObjectRef::of(&objects[3]);
    assert!(log.contains(&format!("waiting {job}: not complete: 0 active, 0 of 1 succeeded, 0 failed")), "{log:?}");
}

#[test]
fn object_created_late_is_waited_for_not_an_error() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let ns = cluster.namespace("shop");
    let late = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": ns},
        "data": {"k": "v"}});
    let (outcome, log) = wait_while(cluster.kubeconfig(), std::slice::from_ref(&late), Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(1500));
        cluster.create(&late);
    });
    assert!(outcome.all_ready(), "{:?}", outcome.error());
    assert_eq!(log.first().unwrap(), &format!("waiting v1 ConfigMap {ns}/late: not found yet"));
    assert_eq!(log.last().unwrap(), &format!("ready v1 ConfigMap {ns}/late"));
}

#[test]
fn failed_job_ends_the_wait_and_every_object_not_ready_is_listed() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let ns = cluster.namespace("shop");
    no_rollouts(&cluster);
    let mut migrate = job(&ns, "migrate");
    // A real Job controller fails it a second after it starts (its pods never run).
    migrate["spec"]["activeDeadlineSeconds"] = json!(1);
    let objects = [deployment(&ns, "web"), migrate];
    cluster.apply(&objects, "weaver");
    // The fake has no Job controller: the test marks the Job failed as one would.
    if cluster.is_fake() {
        cluster.block_on(async {
            let client = kube_client(cluster.kubeconfig()).await;
            let jobs = ApiResource {
                group: "batch".into(),
                version: "v1".into(),
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                plural: "jobs".into(),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &jobs);
            let now = "2025-06-01T12:00:00Z";
            let failed = json!({"status": {"startTime": now, "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                 "message": "Job was active longer than specified deadline", "lastProbeTime": now,
                 "lastTransitionTime": now}]}});
            api.patch_status("migrate", &PatchParams::default(), &Patch::Merge(&failed)).await.unwrap();
        });
    }

    let (outcome, _) = wait(cluster.kubeconfig(), &objects, Duration::from_secs(60));
    assert!(outcome.elapsed < Duration::from_secs(30), "a failed object ends the wait: {:?}", outcome.elapsed);
    let error = outcome.error().unwrap().to_string();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines[0], "1 of 2 objects will not become ready:", "{error}");
    assert!(lines[1].starts_with(&format!("  apps/v1 Deployment {ns}/web: ")), "{error}");
    assert_eq!(
        lines[2],
        format!(
            "  batch/v1 Job {ns}/migrate: failed: Failed=True DeadlineExceeded: Job was active longer than specified \
             deadline"
        ),
        "{error}"
    );
}

#[test]
fn a_transient_failure_while_waiting_is_retried_not_fatal() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("injecting 503s") else { return };
    let ns = cluster.namespace("shop");
    let objects = [deployment(&ns, "web")];
    cluster.apply(&objects, "weaver");
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    fake.inject(weaver_test_apiserver::Fault::status("GET", &path, 503).times(2));
    let (outcome, _) = wait(cluster.kubeconfig(), &objects, Duration::from_secs(20));
    assert!(outcome.all_ready(), "{:?}", outcome.error());
    let reads = fake.requests().iter().filter(|r| r.method == "GET" && r.path == path).count();
    assert_eq!(reads, 3, "two 503s, then the read that worked");
}

/// On the fake (no Deployment controller, no kubelet): `web`'s status as a rollout to ReplicaSet
/// `web-new` stuck on its one Pod `web-new-x` (its container `web` with a readiness probe), which
/// the test creates with `pod_status`; and an older ReplicaSet's Pod `web-old-x` in a crash
/// loop, which is not the rollout's concern.
fn stuck_rollout(cluster: &TestCluster, ns: &str, pod_status: Value) -> Value {
    let mut web = deployment(ns, "web");
    web["spec"]["replicas"] = json!(1);
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 2});
    cluster.apply(std::slice::from_ref(&web), "weaver");
    let uid = cluster.get(&web).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    cluster.patch_status(
        &web,
        &json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                "message": "ReplicaSet \"web-new\" is progressing."}]}),
    );
    for (replica_set, revision, status) in [
        ("web-new", "2", pod_status),
        (
            "web-old",
            "1",
            json!({"phase": "Running", "startTime": "2020-01-01T00:00:00Z",
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 9, "image": "nginx:1.26",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}}}]}),
        ),
    ] {
        let labels = json!({"app": "web", "pod-template-hash": replica_set});
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": replica_set, "namespace": ns, "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid,
                    "controller": true}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": web["spec"]["template"]["spec"].clone()}}});
        cluster.create(&rs);
        let rs_uid = cluster.get(&rs).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{replica_set}-x"), "namespace": ns, "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replica_set,
                    "uid": rs_uid, "controller": true}]},
            "spec": web["spec"]["template"]["spec"].clone()});
        cluster.create(&pod);
        cluster.patch_status(&pod, &status);
    }
    web
}

/// The status of a Pod whose container `web` cannot pull its image, started at `start`.
fn image_pull_back_off(start: &str) -> Value {
    json!({"phase": "Pending", "startTime": start, "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [web]"}],
        "containerStatuses": [{"name": "web", "ready": false, "started": false, "restartCount": 0, "image": "nginx:1.27",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nginx:1.27\""}}}]})
}

#[test]
fn a_rollout_whose_pod_cannot_pull_its_image_fails_naming_the_pod_and_the_kubelets_reason() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("Pods with a status the test sets") else { return };
    let ns = cluster.namespace("shop");
    fake.set_auto_ready(false);
    // Pulling since long before the grace: the wait ends at once, naming the new ReplicaSet's Pod.
    let web = stuck_rollout(&cluster, &ns, image_pull_back_off("2020-01-01T00:00:00Z"));
    let (outcome, _) = wait(cluster.kubeconfig(), std::slice::from_ref(&web), Duration::from_secs(60));
    assert!(outcome.elapsed < Duration::from_secs(20), "the Pod's trouble ends the wait: {:?}", outcome.elapsed);
    let error = outcome.error().unwrap().to_string();
    assert_eq!(
        error.lines().collect::<Vec<_>>(),
        [
            "1 of 1 objects will not become ready:".to_string(),
            format!(
                "  apps/v1 Deployment {ns}/web: failed: 0 of 1 updated replicas available (Progressing=True \
                 ReplicaSetUpdated: ReplicaSet \"web-new\" is progressing); Pod {ns}/web-new-x ImagePullBackOff: \
                 Back-off pulling image \"nginx:1.27\" (container web)"
            ),
        ],
        "{error}"
    );
}

#[test]
fn a_pod_pulling_within_the_grace_is_waited_for_with_its_reason() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("Pods with a status the test sets") else { return };
    let ns = cluster.namespace("shop");
    fake.set_auto_ready(false);
    let started = jiff::Timestamp::now().to_string();
    let web = stuck_rollout(&cluster, &ns, image_pull_back_off(&started));
    let (outcome, log) = wait(cluster.kubeconfig(), std::slice::from_ref(&web), Duration::from_secs(3));
    let [not_ready] = outcome.not_ready.as_slice() else { panic!("{outcome:?}") };
    assert!(!not_ready.failed, "within the grace: {not_ready}");
    assert!(
        not_ready.reason.ends_with(&format!(
            "; Pod {ns}/web-new-x ImagePullBackOff: Back-off pulling image \"nginx:1.27\" (container web)"
        )),
        "{not_ready}"
    );
    assert!(outcome.error().unwrap().to_string().starts_with("timed out after 3s"), "{log:?}");
}

#[test]
fn a_rollout_whose_readiness_probe_fails_says_what_the_kubelet_said_of_the_probe() {
    let _crds = no_crd_changes();
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("Pods with a status the test sets") else { return };
    let ns = cluster.namespace("shop");
    fake.set_auto_ready(false);
    // Running since long before its probe's allowance, never Ready: the wait ends at once.
    let unready = json!({"phase": "Running", "startTime": "2020-01-01T00:00:00Z", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [web]"}],
        "containerStatuses": [{"name": "web", "ready": false, "started": true, "restartCount": 0, "image": "nginx:1.27",
            "state": {"running": {"startedAt": "2020-01-01T00:00:01Z"}}}]});
    let web = stuck_rollout(&cluster, &ns, unready);
    let uid = |pod: &str| {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": ns}});
        cluster.get(&pod).unwrap()["metadata"]["uid"].as_str().unwrap().to_string()
    };
    // What the kubelet said of the Pods' containers, as core/v1 Events (the kubelet's).
    let event = |name: &str, pod: &str, container: &str, reason: &str, message: &str, count: u64, last: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": pod, "uid": uid(pod),
                "fieldPath": format!("spec.containers{{{container}}}")},
            "reason": reason, "message": message, "type": "Warning", "count": count,
            "firstTimestamp": "2020-01-01T00:00:02Z", "lastTimestamp": last, "source": {"component": "kubelet"}})
    };
    let refused = "Readiness probe failed: Get \"http://10.0.0.5:8080/ready\": dial tcp 10.0.0.5:8080: connect: \
                   connection refused";
    for event in [
        event("a", "web-new-x", "web", "Unhealthy", refused, 2, "2020-01-01T00:00:05Z"),
        event(
            "b",
            "web-new-x",
            "web",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            12,
            "2020-01-01T00:01:00Z",
        ),
        // Newer, but not the probe's, not the container's, not the Pod's.
        event("c", "web-new-x", "web", "BackOff", "Back-off restarting failed container", 1, "2020-01-01T00:02:00Z"),
        event("d", "web-new-x", "proxy", "Unhealthy", "Readiness probe failed: the proxy's", 1, "2020-01-01T00:03:00Z"),
        event("e", "web-old-x", "web", "Unhealthy", "Readiness probe failed: the old Pod's", 1, "2020-01-01T00:04:00Z"),
    ] {
        cluster.create(&event);
    }
    let (outcome, _) = wait(cluster.kubeconfig(), std::slice::from_ref(&web), Duration::from_secs(60));
    assert!(outcome.elapsed < Duration::from_secs(20), "the Pod's trouble ends the wait: {:?}", outcome.elapsed);
    let unready = format!(
        "  apps/v1 Deployment {ns}/web: failed: 0 of 1 updated replicas available (Progressing=True \
         ReplicaSetUpdated: ReplicaSet \"web-new\" is progressing); Pod {ns}/web-new-x not Ready: container web \
         running since 2020-01-01T00:00:01Z has not passed its readiness probe (Ready=False ContainersNotReady: \
         containers with unready status: [web])"
    );
    let error = outcome.error().unwrap().to_string();
    assert_eq!(
        error.lines().collect::<Vec<_>>(),
        [
            "1 of 1 objects will not become ready:".to_string(),
            format!("{unready}; Unhealthy (12 times): Readiness probe failed: HTTP probe failed with statuscode: 503"),
        ],
        "{error}"
    );

    // A user who may read the workload and its Pods but not the events: the same, without the
    // kubelet's word.
    let reader = cluster.service_account(&ns, "reader");
    cluster.apply(
        &[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "no-events", "namespace": ns},
                "rules": [{"apiGroups": ["", "apps"], "resources": ["deployments", "replicasets", "pods"],
                    "verbs": ["get", "list"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "no-events", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "no-events"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]}),
        ],
        "test",
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("reader-kubeconfig");
    std::fs::write(&kubeconfig, &reader.kubeconfig).unwrap();
    let (outcome, _) = wait(&kubeconfig, std::slice::from_ref(&web), Duration::from_secs(60));
    let error = outcome.error().unwrap().to_string();
    assert_eq!(
        error.lines().collect::<Vec<_>>(),
        ["1 of 1 objects will not become ready:", unready.as_str()],
        "{error}"
    );
}
