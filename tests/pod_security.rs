//! The operator's chart under the `restricted` Pod Security Standard, as the API server's
//! PodSecurity admission judges it: every rendered object passes a server dry run into a
//! namespace that enforces and warns on `restricted`, without a warning, and a Pod made from the
//! Deployment's template is admitted there while a root one is refused.
//!
//! PodSecurity admission is kube-apiserver's; the in-process fake has none, so this runs against
//! the cluster of `WEAVER_TEST_KUBECONFIG` and says it is skipped on the fake.

mod common;

use common::cluster::TestCluster;
use common::{Repo, copy_dir, project_root};
use serde_json::{Value, json};

const CHART: &str = "charts/configmapsync-operator";

/// The chart rendered by weaver into `namespace`.
fn render_into(namespace: &str) -> Vec<Value> {
    let repo = Repo::empty();
    copy_dir(&project_root().join(CHART), &repo.path().join(CHART));
    repo.write(
        "environments/ops.yaml",
        &format!(
            "releases:\n  - name: configmapsync-operator\n    chart: configmapsync-operator\n    namespace: {namespace}\n"
        ),
    );
    let run = repo.weaver(&["render", "--env", "ops"]);
    serde_saphyr::from_str_multiple(run.success()).expect("render output is YAML")
}

/// `kubectl apply --dry-run=server` of `objects`: whether the server accepted them, and what
/// kubectl printed on stderr (the server's warnings among it).
fn dry_run(cluster: &TestCluster, objects: &[Value]) -> (bool, String) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), list.to_string()).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["apply", "--server-side", "--dry-run=server", "--field-manager", "pod-security-test", "-f"])
        .arg(file.path())
        .output()
        .expect("run kubectl");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_operator_chart_passes_a_server_dry_run_in_a_restricted_namespace() {
    let cluster = TestCluster::start();
    if cluster.is_fake() {
        common::skip::say_skipped(
            "PodSecurity admission is kube-apiserver's and the fake has none: set WEAVER_TEST_KUBECONFIG to run this",
        );
        return;
    }
    let namespace = cluster.namespace("restricted");
    let levels = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }}});
    cluster.merge_patch(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        &levels,
        "test",
    );

    let objects = render_into(&namespace);
    // The CRD and the cluster-wide RBAC are shared with other tests on a real cluster: the
    // namespaced objects are what PodSecurity judges.
    let namespaced: Vec<Value> =
        objects.iter().filter(|o| o["metadata"]["namespace"] == namespace.as_str()).cloned().collect();
    assert!(namespaced.iter().any(|o| o["kind"] == "Deployment"), "{namespaced:?}");
    let (accepted, stderr) = dry_run(&cluster, &namespaced);
    assert!(accepted, "the server refused the chart: {stderr}");
    assert!(!stderr.contains("PodSecurity"), "PodSecurity warned about the chart: {stderr}");

    // The Deployment's pods, as the ReplicaSet would create them: admitted. (Their
    // ServiceAccount must exist for a pod to be admitted at all.)
    for account in namespaced.iter().filter(|o| o["kind"] == "ServiceAccount") {
        cluster.create(account);
    }
    let deployment = namespaced.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let pod = |spec: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-pod", "namespace": namespace,
            "labels": deployment["spec"]["template"]["metadata"]["labels"]}, "spec": spec})
    };
    let spec = deployment["spec"]["template"]["spec"].clone();
    let (accepted, stderr) = dry_run(&cluster, &[pod(spec.clone())]);
    assert!(accepted, "the operator's pod was refused: {stderr}");

    // The check can fail: the same pod as root is refused, naming the standard.
    let mut root = spec;
    root["securityContext"]["runAsNonRoot"] = json!(false);
    root["securityContext"]["runAsUser"] = json!(0);
    let (accepted, stderr) = dry_run(&cluster, &[pod(root)]);
    assert!(!accepted, "a root pod was admitted into a restricted namespace");
    assert!(stderr.contains("violates PodSecurity \"restricted:latest\""), "{stderr}");
}
