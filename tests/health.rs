//! Health against a cluster (the in-process fake, or a real one with WEAVER_TEST_KUBECONFIG):
//! `apply --wait` and `weaver status` judge a custom resource by the environment's CEL
//! `healthChecks`. Neither server runs the resource's controller: the test writes its status
//! (through the status subresource) as the controller would.

use crate::common;

use std::time::Duration;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

const CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.GROUP
spec:
  group: GROUP
  scope: Namespaced
  names: {plural: databases, singular: database, kind: Database, listKind: DatabaseList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

const DATABASE: &str = "\
apiVersion: GROUP/v1
kind: Database
metadata:
  name: orders
spec:
  size: {{ values.size }}
";

/// The rule under test: Ready=True is healthy, Ready=False for reason Failed is failed.
const HEALTH_CHECKS: &str = "\
healthChecks:
  - apiVersion: GROUP/v1
    kind: Database
    current: status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')
    failed: status.conditions.exists(c, c.type == 'Ready' && c.status == 'False' && c.reason == 'Failed')
";

/// A repository whose release `db` installs a CRD of the test's own group and a Database.
struct Setup {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
    lock: String,
    group: String,
}

impl Setup {
    fn new() -> Setup {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("health");
        let lock = cluster.namespace("lock");
        let group = format!("{}.example.com", cluster.prefix);
        let repo = Repo::empty();
        repo.write("charts/db/chart.yaml", "name: db\nversion: 0.1.0\n")
            .write("charts/db/values.yaml", "size: 1\n")
            .write("charts/db/crds/database.yaml", &CRD.replace("GROUP", &group))
            .write("charts/db/templates/database.yaml", &DATABASE.replace("GROUP", &group));
        let setup = Setup { cluster, repo, ns, lock, group };
        setup.environment(&HEALTH_CHECKS.replace("GROUP", &setup.group), 1);
        setup
    }

    /// Writes environment `dev` with `top` (its healthChecks) and the Database's size.
    fn environment(&self, top: &str, size: u32) {
        self.repo.write(
            "environments/dev.yaml",
            &format!(
                "namespace: {}\ncluster:\n  lockNamespace: {}\n{top}releases:\n  - name: db\n    chart: db\n    values: {{size: {size}}}\n",
                self.ns, self.lock
            ),
        );
    }

    /// Writes environment `dev` with the rule on the release instead, at line 9.
    fn environment_with_release_rule(&self, size: u32) {
        let rule = HEALTH_CHECKS.replace("GROUP", &self.group).replace("\n", "\n    ");
        self.repo.write(
            "environments/dev.yaml",
            &format!(
                "namespace: {}\ncluster:\n  lockNamespace: {}\nreleases:\n  - name: db\n    chart: db\n    values: {{size: {size}}}\n    {}",
                self.ns,
                self.lock,
                rule.trim_end()
            ),
        );
    }

    fn weaver(&self, args: &[&str]) -> common::Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    fn database(&self) -> Value {
        json!({"apiVersion": format!("{}/v1", self.group), "kind": "Database",
            "metadata": {"name": "orders", "namespace": self.ns}})
    }

    fn crd(&self) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("databases.{}", self.group)}})
    }

    /// After a first apply (without waiting; the CRD goes with the test), with the
    /// environment changed to size 2 for the next.
    fn installed() -> Setup {
        let setup = Setup::new();
        setup.weaver(&["apply", "--env", "dev"]).success();
        setup.cluster.delete_later(&setup.crd());
        setup.environment(&HEALTH_CHECKS.replace("GROUP", &setup.group), 2);
        setup
    }

    /// Writes the Database's Ready condition as its controller would, for its generation.
    fn set_ready(&self, status: &str, reason: &str, message: &str) {
        let live = self.cluster.get(&self.database()).expect("the Database is live");
        let generation = live["metadata"]["generation"].clone();
        let condition = json!({"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation});
        self.cluster
            .patch_status(&self.database(), &json!({"observedGeneration": generation, "conditions": [condition]}));
    }

    /// `weaver apply --env dev --wait --timeout TIMEOUT` in the background, while `meanwhile`
    /// runs once the Database has the new `size`: (exit code, stdout then stderr).
    fn apply_waiting_while(&self, size: u64, timeout: &str, meanwhile: impl FnOnce()) -> (i32, String) {
        let kubeconfig = self.cluster.kubeconfig().to_str().unwrap().to_string();
        let child =
            self.repo.spawn(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "--wait", "--timeout", timeout]);
        common::eventually("the apply to change the Database", || {
            let live = self.cluster.get(&self.database());
            match live.as_ref().and_then(|l| l.pointer("/spec/size")).and_then(Value::as_u64) {
                Some(applied) if applied == size => Ok(()),
                other => Err(format!("size {other:?}")),
            }
        });
        meanwhile();
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }

    /// `weaver status --env dev -o json`, its exit code checked: the Database's entry.
    fn status(&self, code: i32) -> Value {
        let run = self.weaver(&["status", "--env", "dev", "-o", "json"]);
        assert_eq!(run.code, code, "status: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
        let objects = report["releases"][0]["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2, "the CRD and the Database: {report}");
        assert_eq!(objects[0]["kind"], "CustomResourceDefinition");
        assert_eq!(objects[0]["health"], "healthy", "{report}");
        objects[1].clone()
    }
}

#[test]
fn a_custom_resource_is_waited_for_until_its_cel_rule_says_healthy() {
    let setup = Setup::installed();
    // No status yet: the rule reads a field the controller has not written.
    let database = setup.status(2);
    assert_eq!(database["health"], "unknown", "{database}");
    let reason = database["reason"].as_str().unwrap();
    // `failed` is asked before `current`, as in Flux.
    assert_eq!(
        reason,
        "the CEL expression `failed` (environments/dev.yaml:8:13) could not be evaluated: the object has no `status`"
    );

    let (code, output) = setup.apply_waiting_while(2, "60s", || {
        std::thread::sleep(Duration::from_millis(1500));
        setup.set_ready("True", "Available", "the database accepts connections");
    });
    assert_eq!(code, 0, "{output}");
    let database = setup.status(0);
    assert_eq!(database["health"], "healthy");
    assert_eq!(database["reason"], Value::Null);
    let text = setup.weaver(&["status", "--env", "dev"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.ends_with("2 healthy, 0 progressing, 0 unknown, 0 failed\n"), "{}", text.stdout);

    // A glob makes a fleet, even of one: a summary, then each environment's report.
    let fleet = setup.weaver(&["status", "--env", "d*", "-o", "json"]);
    assert_eq!(fleet.code, 0, "{}", fleet.stderr);
    let report: Value = serde_json::from_str(&fleet.stdout).unwrap();
    assert_eq!(report["summary"]["environments"], 1);
    assert_eq!(report["summary"]["changed"], 0, "no environment is unhealthy");
    assert_eq!(report["environments"][0]["report"]["health"], "healthy");
    setup.set_ready("False", "Provisioning", "creating volumes");
    let fleet = setup.weaver(&["status", "--env", "d*"]);
    assert_eq!(fleet.code, 2, "{}", fleet.stderr);
    assert!(fleet.stdout.starts_with("1 environments: 1 not healthy, 0 failed\n"), "{}", fleet.stdout);
    assert!(fleet.stdout.contains("=== environment dev ==="), "{}", fleet.stdout);
}

#[test]
fn a_custom_resource_its_rule_says_failed_fails_the_wait_with_its_message() {
    let setup = Setup::installed();
    // The rule on the release, this time.
    setup.environment_with_release_rule(2);
    let (code, output) = setup.apply_waiting_while(2, "2m", || {
        setup.set_ready("False", "Failed", "volume quota exceeded");
    });
    assert_eq!(code, 1, "{output}");
    let expected = format!(
        "{}/v1 Database {}/orders: failed: `failed` of the health check at environments/dev.yaml:9:9 is true \
         (Ready=False Failed: volume quota exceeded)",
        setup.group, setup.ns
    );
    assert!(output.contains(&expected), "{output}");
    assert!(output.contains("1 of 1 objects will not become ready"), "{output}");

    // The failed apply's revision is what status reads: its objects are live.
    let database = setup.status(1);
    assert_eq!(database["health"], "failed");
    assert!(
        database["reason"].as_str().unwrap().ends_with("(Ready=False Failed: volume quota exceeded)"),
        "{database}"
    );
    let run = setup.weaver(&["status", "--env", "dev", "-o", "json"]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["health"], "failed");
    assert_eq!(report["releases"][0]["revision"]["status"], "failed", "{report}");
    assert_eq!(report["summary"]["failed"], 1);
    assert!(run.stderr.contains("error: some objects failed"), "{}", run.stderr);

    // A controller that recovers: progressing while not Ready for another reason.
    setup.set_ready("False", "Provisioning", "creating volumes");
    let database = setup.status(2);
    assert_eq!(database["health"], "progressing");
    let reason = database["reason"].as_str().unwrap();
    assert!(reason.ends_with("is not true yet (Ready=False Provisioning: creating volumes)"), "{reason}");
}

#[test]
fn a_custom_resource_that_never_becomes_healthy_times_out() {
    let setup = Setup::installed();
    let (code, output) = setup.apply_waiting_while(2, "3s", || {
        setup.set_ready("False", "Provisioning", "creating volumes");
    });
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("timed out after 3s waiting for 1 of 1 objects to become ready"), "{output}");
    assert!(output.contains("is not true yet (Ready=False Provisioning: creating volumes)"), "{output}");

    // kstatus's conventions with no rule: a controller that says it gave up (Stalled) failed.
    setup.environment("", 2);
    let live = setup.cluster.get(&setup.database()).unwrap();
    let generation = live["metadata"]["generation"].clone();
    setup.cluster.patch_status(
        &setup.database(),
        &json!({"observedGeneration": generation, "conditions": [
            {"type": "Ready", "status": "False", "reason": "Failed", "message": "volume quota exceeded",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Stalled", "status": "True", "reason": "QuotaExceeded", "message": "volume quota exceeded",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );
    let database = setup.status(1);
    assert_eq!(database["reason"], "Stalled=True QuotaExceeded: volume quota exceeded");
}

#[test]
fn a_cel_expression_that_does_not_compile_is_an_error_naming_its_file_and_line() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nhealthChecks:\n  - apiVersion: example.com/v1\n    kind: Database\n    current: status.conditions.exists(c, c.type == )\nreleases:\n  - name: app\n    chart: app\n",
    );
    for command in [&["render", "--env", "dev"][..], &["status", "--env", "dev"]] {
        let run = repo.weaver(command);
        let stderr = run.failure();
        assert!(
            stderr.starts_with(
                "error: environments/dev.yaml:5:14: the CEL expression `current` does not compile: column "
            ),
            "{command:?}: {stderr}"
        );
        assert!(stderr.contains("help: write a CEL expression"), "{stderr}");
    }
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nhealthChecks:\n  - apiVersion: example.com/v1\n    kind: Database\n    current: 'true'\n    healthy: 'true'\nreleases:\n  - name: app\n    chart: app\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    let stderr = run.failure();
    assert!(stderr.contains("environments/dev.yaml:6:"), "{stderr}");
    assert!(stderr.contains("healthy"), "{stderr}");
}

/// A release `web` of a Deployment, a Pod of its own and a PodDisruptionBudget, applied (without
/// waiting) with the fake's workload controllers off: the test writes the statuses a
/// scheduler, a kubelet and the controllers would.
#[test]
fn status_tells_pods_from_the_kubelet_pending_is_not_healthy() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("Pods with a status the test sets") else { return };
    fake.set_auto_ready(false);
    let ns = cluster.namespace("health");
    let lock = cluster.namespace("lock");
    let repo = Repo::empty();
    repo.write("charts/web/chart.yaml", "name: web\nversion: 0.1.0\n")
        .write(
            "charts/web/templates/web.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - {name: web, image: \"web:2\"}\n",
        )
        .write(
            "charts/web/templates/redis.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis-0\nspec:\n  containers:\n    - {name: redis, image: \"redis:7\"}\n",
        )
        .write(
            "charts/web/templates/budget.yaml",
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: nothing}\n",
        )
        .write(
            "environments/dev.yaml",
            &format!("namespace: {ns}\ncluster:\n  lockNamespace: {lock}\nreleases:\n  - name: web\n    chart: web\n"),
        );
    repo.weaver_on(&cluster, &["apply", "--env", "dev"]).success();
    let object = |api_version: &str, kind: &str, name: &str| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}});
    // The scheduler found no node for the Pod; the budget's controller no Pod it selects.
    cluster.patch_status(
        &object("v1", "Pod", "redis-0"),
        &json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]}),
    );
    cluster.patch_status(
        &object("policy/v1", "PodDisruptionBudget", "web"),
        &json!({"observedGeneration": 1, "expectedPods": 0, "currentHealthy": 0, "desiredHealthy": 1,
            "disruptionsAllowed": 0}),
    );
    // The Deployment's one ReplicaSet has a Pod that has not pulled its image for a long time.
    let web = object("apps/v1", "Deployment", "web");
    let uid = cluster.get(&web).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    cluster.patch_status(&web, &json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}));
    let labels = json!({"app": "web", "pod-template-hash": "7d9f"});
    let owner = |kind: &str, name: &str, uid: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-7d9f", "namespace": ns,
        "labels": labels, "annotations": {"deployment.kubernetes.io/revision": "1"},
        "ownerReferences": owner("Deployment", "web", &uid)},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
    cluster.create(&rs);
    let rs_uid = cluster.get(&rs).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-7d9f-x", "namespace": ns,
        "labels": labels, "ownerReferences": owner("ReplicaSet", "web-7d9f", &rs_uid)},
        "spec": {"containers": [{"name": "web", "image": "web:2"}]}});
    cluster.create(&pod);
    cluster.patch_status(
        &pod,
        &json!({"phase": "Pending", "startTime": "2020-01-01T00:00:00Z", "containerStatuses": [{"name": "web",
            "ready": false, "restartCount": 0, "image": "web:2",
            "state": {"waiting": {"reason": "ErrImagePull", "message": "rpc error: web:2: not found"}}}]}),
    );

    let run = repo.weaver_on(&cluster, &["status", "--env", "dev", "-o", "json"]);
    assert_eq!(run.code, 1, "a failed object: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let health: Vec<(String, String, String)> = report["releases"][0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let text = |key: &str| o[key].as_str().unwrap_or_default().to_string();
            (text("kind"), text("health"), text("reason"))
        })
        .collect();
    let expected = [
        ("PodDisruptionBudget", "progressing", "selects no Pod (status.expectedPods 0)".to_string()),
        (
            "Pod",
            "progressing",
            format!(
                "Pod {ns}/redis-0 not scheduled (PodScheduled=False Unschedulable: 0/1 nodes are available: 1 \
                 Insufficient memory)"
            ),
        ),
        (
            "Deployment",
            "failed",
            format!(
                "0 of 1 updated replicas available; Pod {ns}/web-7d9f-x ErrImagePull: rpc error: web:2: not found \
                 (container web)"
            ),
        ),
    ];
    for (kind, health_word, reason) in expected {
        let found = health.iter().find(|(k, _, _)| k == kind).unwrap_or_else(|| panic!("{kind}: {health:?}"));
        assert_eq!((found.1.as_str(), found.2.as_str()), (health_word, reason.as_str()), "{kind}");
    }
}
