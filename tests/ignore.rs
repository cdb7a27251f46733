//! `ignoreDifferences` against a cluster (the in-process fake, or a real one with
//! WEAVER_TEST_KUBECONFIG): fields another manager owns (an autoscaler's `spec.replicas`, an
//! injected sidecar) are neither diff nor drift, and apply neither fights their owner nor
//! removes them; a create still sets them.

use crate::common;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
{% if values.replicas is defined %}
  replicas: {{ values.replicas }}
{% endif %}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.k8s.io/pause:{{ values.tag }}
{% if values.sidecar %}
        - name: istio-proxy
          image: auto
{% endif %}
";

/// A repository with one release, `app` (a Deployment `web`), in a namespace of the cluster.
struct Setup {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
    lock: String,
}

impl Setup {
    fn new() -> Setup {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("ignore");
        let lock = cluster.namespace("lock");
        let repo = Repo::empty();
        repo.write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n")
            .write("charts/app/values.yaml", "tag: '3.9'\nsidecar: false\n")
            .write("charts/app/templates/deployment.yaml", DEPLOYMENT);
        let setup = Setup { cluster, repo, ns, lock };
        setup.environment("", "replicas: 2");
        setup
    }

    /// Writes environment `dev`: environment-level YAML `top` (ignoreDifferences, say), and the
    /// release's values as a flow mapping's entries.
    fn environment(&self, top: &str, values: &str) {
        self.repo.write(
            "environments/dev.yaml",
            &format!(
                "namespace: {}\ncluster:\n  lockNamespace: {}\n{top}\nreleases:\n  - name: app\n    chart: app\n    values: {{{values}}}\n",
                self.ns, self.lock
            ),
        );
    }

    fn weaver(&self, args: &[&str]) -> common::Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    /// `weaver COMMAND --env dev -o json`, with its exit code checked.
    fn json(&self, command: &str, code: i32, extra: &[&str]) -> Value {
        let mut args = vec![command, "--env", "dev", "-o", "json"];
        args.extend_from_slice(extra);
        let run = self.weaver(&args);
        assert_eq!(run.code, code, "{command}: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        serde_json::from_str(&run.stdout).expect("JSON")
    }

    fn deployment(&self) -> Value {
        let web =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": self.ns}});
        self.cluster.get(&web).expect("the Deployment is live")
    }

    /// Another field manager server-side applies `spec` to the Deployment, forcing: it takes
    /// the fields from weaver, as an autoscaler or a webhook's controller would own them.
    fn other_manager_applies(&self, manager: &str, spec: Value) {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": self.ns}, "spec": spec});
        self.cluster.apply(&[object], manager);
    }

    fn managers_of_replicas(&self) -> Vec<String> {
        let deployment = self.deployment();
        let entries = deployment["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter(|e| e.pointer("/fieldsV1/f:spec/f:replicas").is_some())
            .map(|e| e["manager"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The Deployment's entry of a diff report.
fn diff_object(report: &Value) -> &Value {
    report["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").expect("the Deployment")
}

fn drift_object(report: &Value) -> &Value {
    report["releases"][0]["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").unwrap()
}

fn apply_object(report: &Value) -> &Value {
    report["releases"][0]["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").unwrap()
}

const BY_MANAGER: &str =
    "ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    managers: [kube-controller-manager]";
const BY_POINTER: &str = "ignoreDifferences:\n  - kind: Deployment\n    name: web\n    jsonPointers: [/spec/replicas]";

#[test]
fn replicas_an_autoscaler_owns_are_ignored_by_manager_and_by_pointer() {
    let setup = Setup::new();
    setup.json("apply", 0, &[]);
    assert_eq!(setup.deployment()["spec"]["replicas"], 2);
    // The autoscaler scales to 5: without a rule, that is a change and drift.
    setup.other_manager_applies("kube-controller-manager", json!({"replicas": 5}));
    let diff = setup.json("diff", 2, &["--exit-code"]);
    assert_eq!(diff_object(&diff)["changes"], json!([{"path": "spec.replicas", "op": "replace"}]));
    assert_eq!(diff_object(&diff)["ignored"], 0);
    let drift = setup.json("drift", 2, &[]);
    assert_eq!(drift_object(&drift)["changes"][0]["path"], "spec.replicas");

    for rule in [BY_MANAGER, BY_POINTER] {
        setup.environment(rule, "replicas: 2");
        let diff = setup.json("diff", 0, &["--exit-code"]);
        assert_eq!(diff_object(&diff)["action"], "unchanged", "{rule}: {diff:#}");
        assert_eq!(diff_object(&diff)["ignored"], 1, "{rule}");
        let server = setup.json("diff", 0, &["--exit-code", "--server-side"]);
        assert_eq!(diff_object(&server)["action"], "unchanged", "{rule}");
        let drift = setup.json("drift", 0, &[]);
        assert_eq!(drift_object(&drift)["state"], "in-sync", "{rule}");
        assert_eq!(drift_object(&drift)["ignored"], 1, "{rule}");
        let text = setup.weaver(&["drift", "--env", "dev"]);
        assert!(text.stdout.contains("1 field change ignored (ignoreDifferences)"), "{rule}: {}", text.stdout);
        let text = setup.weaver(&["diff", "--env", "dev"]);
        let expected = format!(
            "= apps/v1 Deployment {}/web (release app)\n  1 field change ignored (ignoreDifferences)\n",
            setup.ns
        );
        assert!(text.stdout.contains(&expected), "{rule}: {}", text.stdout);
        let applied = setup.json("apply", 0, &[]);
        assert_eq!(apply_object(&applied)["result"], "unchanged", "{rule}");
        assert_eq!(apply_object(&applied)["ignored"], 1, "{rule}");
        assert_eq!(setup.deployment()["spec"]["replicas"], 5, "{rule}");
    }

    // Another change sends the Deployment: without --force-conflicts (weaver sends the live
    // value, no conflict), the autoscaler keeps its replicas and its ownership.
    setup.environment(BY_MANAGER, "replicas: 2, tag: '3.10'");
    let applied = setup.json("apply", 0, &[]);
    assert_eq!(apply_object(&applied)["result"], "configured", "{applied:#}");
    let live = setup.deployment();
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "registry.k8s.io/pause:3.10");
    assert_eq!(live["spec"]["replicas"], 5);
    assert!(setup.managers_of_replicas().contains(&"kube-controller-manager".to_string()));
    assert_eq!(setup.weaver(&["drift", "--env", "dev"]).code, 0);
    assert_eq!(setup.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0);

    // A create still sends the desired value.
    let web =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": setup.ns}});
    setup.cluster.delete(&web);
    let applied = setup.json("apply", 0, &[]);
    assert_eq!(apply_object(&applied)["result"], "created");
    assert_eq!(setup.deployment()["spec"]["replicas"], 2);
}

#[test]
fn a_field_weaver_alone_owned_is_kept_when_ignored_and_no_longer_desired() {
    let setup = Setup::new();
    setup.json("apply", 0, &[]);
    assert_eq!(setup.managers_of_replicas(), ["weaver"]);
    // Without a rule, a chart that stops setting replicas makes server-side apply remove
    // weaver's field (the server defaults it to 1): that is the change diff shows.
    setup.environment("", "");
    let diff = setup.json("diff", 2, &["--exit-code"]);
    assert_eq!(diff_object(&diff)["changes"], json!([{"path": "spec.replicas", "op": "remove"}]));
    // Ignored, the live value is sent: nothing changes, and replicas stays.
    setup.environment(BY_POINTER, "tag: '3.10'");
    let diff = setup.json("diff", 2, &["--exit-code"]);
    let changes: Vec<&str> =
        diff_object(&diff)["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(changes, ["spec.template.spec.containers[name=web].image"]);
    assert_eq!(diff_object(&diff)["ignored"], 1);
    setup.json("apply", 0, &[]);
    assert_eq!(setup.deployment()["spec"]["replicas"], 2);
    assert_eq!(setup.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0);
}

#[test]
fn an_injected_sidecar_is_ignored_by_its_merge_key() {
    let setup = Setup::new();
    setup.environment("", "replicas: 1, sidecar: true");
    setup.json("apply", 0, &[]);
    // A webhook's controller fills in the sidecar the chart declares.
    setup.other_manager_applies(
        "istio-sidecar-injector",
        json!({"template": {"spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2:1.20", "args": ["proxy", "sidecar"]}]}}}),
    );
    let diff = setup.json("diff", 2, &["--exit-code"]);
    let paths: Vec<&str> =
        diff_object(&diff)["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"spec.template.spec.containers[name=istio-proxy].image"), "{paths:?}");
    setup.json("drift", 2, &[]);

    let rule = "ignoreDifferences:\n  - kind: Deployment\n    jsonPointers:\n      - /spec/template/spec/containers/name=istio-proxy";
    setup.environment(rule, "replicas: 1, sidecar: true");
    let diff = setup.json("diff", 0, &["--exit-code"]);
    assert_eq!(diff_object(&diff)["action"], "unchanged", "{diff:#}");
    assert!(diff_object(&diff)["ignored"].as_u64().unwrap() >= 1, "{diff:#}");
    let drift = setup.json("drift", 0, &[]);
    assert_eq!(drift_object(&drift)["ignored"], 1, "{drift:#}");
    // The web container changes: the apply sends the sidecar as it is live, without a conflict.
    setup.environment(rule, "replicas: 1, sidecar: true, tag: '3.10'");
    let applied = setup.json("apply", 0, &[]);
    assert_eq!(apply_object(&applied)["result"], "configured");
    let containers = setup.deployment()["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers[0]["image"], "registry.k8s.io/pause:3.10");
    assert_eq!(containers[1]["name"], "istio-proxy");
    assert_eq!(containers[1]["image"], "proxyv2:1.20");
    assert_eq!(containers[1]["args"], json!(["proxy", "sidecar"]));
    assert_eq!(setup.weaver(&["drift", "--env", "dev"]).code, 0);
}

#[test]
fn malformed_rules_are_errors_naming_file_and_line() {
    let repo = Repo::minimal();
    let cases = [
        ("jsonPointers: [spec/replicas]", "`spec/replicas` is not a JSON pointer: it does not start with `/`"),
        ("jsonPointers: ['/spec/a~2']", "`/spec/a~2` is not a JSON pointer"),
        ("jsonPointers: [/spec/containers/name=]", "is not field=value"),
        ("kind: deployment\n    managers: [hpa]", "`kind: deployment` is not a kind"),
        ("group: apps/v1\n    managers: [hpa]", "`group: apps/v1` has a version"),
        ("namespace: Shop\n    managers: [hpa]", "`namespace: Shop` is not a namespace name"),
        ("managers: ['kube-*']", "`kube-*` is not a field manager name"),
        ("managers: [weaver]", "`weaver` is weaver's own field manager"),
        ("kind: Deployment", "this ignoreDifferences rule ignores nothing"),
        ("kind: Deployment\n    pointers: [/spec]", "unknown field `pointers`"),
    ];
    for (rule, expected) in cases {
        repo.write(
            "environments/dev.yaml",
            &format!("namespace: apps\nignoreDifferences:\n  - {rule}\nreleases:\n  - name: app\n    chart: app\n"),
        );
        let run = repo.weaver(&["diff", "--env", "dev", "--live-from", "/dev/null"]);
        assert_eq!(run.code, 1, "{rule}: {}{}", run.stdout, run.stderr);
        let line = if rule.contains("pointers:") { 4 } else { 3 };
        assert!(run.stderr.contains(&format!("environments/dev.yaml:{line}:")), "{rule}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{rule}: expected {expected:?} in\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // On a release too.
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    ignoreDifferences:\n      - jsonPointers: [data]\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("environments/dev.yaml:6:"), "{}", run.stderr);
    assert!(run.stderr.contains("`data` is not a JSON pointer"), "{}", run.stderr);
}
