//! Approvals the API server enforces: weaver's chart's ValidatingAdmissionPolicy refuses a
//! change of an EnvironmentSync's `spec.approvedPlan` by anyone without the verb `approve` on
//! it, or one that does not name its writer as the approver, and suspending or resuming without
//! `suspend` or `resume`, whether the write comes from `kubectl patch` or `weaver sync approve`.
//! On the fake API server, or unchanged on the cluster of `WEAVER_TEST_KUBECONFIG`.

use crate::common;

use common::cluster::{Identity, TestCluster};
use common::{project_root, weaver_in};
use serde_json::{Value, json};

const MANAGER: &str = "weaver-approvals-test";

/// The chart's policy and binding for a release in `namespace`, bound to that namespace only
/// (the cluster may be shared with other tests), created on the cluster and deleted after.
fn enforce_in(cluster: &TestCluster, namespace: &str) -> Vec<Value> {
    let values = format!(
        "{{gitops: {{approvals: {{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}}}}}}}"
    );
    let objects = crate::operator_chart::render_chart_in(namespace, &values);
    let policy: Vec<Value> =
        objects.into_iter().filter(|o| o["apiVersion"] == "admissionregistration.k8s.io/v1").collect();
    let kinds: Vec<&str> = policy.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
    for object in &policy {
        cluster.create(object);
        cluster.delete_later(object);
    }
    policy
}

/// ServiceAccount `name` of `namespace` with `verbs` on its EnvironmentSyncs.
fn account(cluster: &TestCluster, namespace: &str, name: &str, verbs: &[&str]) -> Identity {
    let identity = cluster.service_account(namespace, name);
    let rule = json!({"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"], "verbs": verbs});
    crate::ui_controller::grant(cluster, namespace, name, &format!("{name}-syncs"), rule);
    identity
}

/// kubectl as `identity`: the admin's client-go kubeconfig impersonating it (`--as`), which
/// the fake serves too (client-go sends no token to its plain-HTTP port); the authorizer and
/// the policy see the ServiceAccount's user and groups, as with its own token.
fn kubectl_as(cluster: &TestCluster, identity: &Identity, args: &[&str]) -> std::process::Output {
    let Ok((kubectl, _)) = common::tools::kubectl_kustomize_v5() else { panic!("kubectl checked by the caller") };
    weaver_test_support::kubectl::command(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.client_go_kubeconfig())
        .arg(format!("--as={}", identity.user))
        .args(args)
        .output()
        .unwrap()
}

fn sync_object(namespace: &str) -> Value {
    json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}},
            "environments": ["dev"], "serviceAccountName": "deployer", "approval": "Manual", "suspend": true},
    })
}

/// A sync with a plan waiting, as its controller would have written it.
fn waiting(cluster: &TestCluster, namespace: &str, digest: &str) -> Value {
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let sync = sync_object(namespace);
    cluster.create(&sync);
    let status = json!({"pendingPlan": {"digest": digest, "revision": "0123456789abcdef0123456789abcdef01234567",
        "releases": [{"environment": "dev", "release": "app", "create": 1, "update": 0, "delete": 0}]}});
    cluster.patch_status(&sync, &status);
    in_force(cluster, namespace);
    sync
}

/// Once a real API server's admission plugin has the new policy (its informer takes a moment):
/// an approval naming no approver, sent as a dry run, is refused.
fn in_force(cluster: &TestCluster, namespace: &str) {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        cluster.client(),
        namespace,
        &kube::api::ApiResource::erase::<weaver_controllers::gitops::EnvironmentSync>(&()),
    );
    let params = kube::api::PatchParams { dry_run: true, ..Default::default() };
    let probe = json!({"spec": {"approvedPlan": "sha256:probe"}});
    common::eventually("the approvals policy in force", || {
        match cluster.block_on(api.patch("shop", &params, &kube::api::Patch::Merge(&probe))) {
            Err(kube::Error::Api(status)) if status.message.contains("an approval names its approver") => Ok(()),
            other => Err(format!("not refused yet: {:?}", other.map(|_| "patched"))),
        }
    });
}

#[test]
fn kubectl_patch_of_the_approved_plan_needs_the_approve_verb_and_names_its_writer() {
    let kubectl = common::tools::kubectl_kustomize_v5().err();
    if !common::skip::interop_or_skip(kubectl.as_deref()) {
        return;
    }
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("approvals");
    enforce_in(&cluster, &namespace);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let sync = waiting(&cluster, &namespace, &digest);
    let patcher = account(&cluster, &namespace, "patcher", &["get", "patch"]);
    let approver = account(&cluster, &namespace, "approver", &["get", "patch", "approve"]);
    let patch = |identity: &Identity, body: &Value| {
        let body = body.to_string();
        kubectl_as(
            &cluster,
            identity,
            &["patch", "environmentsync", "shop", "-n", &namespace, "--type", "merge", "-p", &body],
        )
    };
    let approved = || cluster.get(&sync).unwrap()["spec"].get("approvedPlan").cloned();

    // patch, but not approve: refused by the server, whatever the annotation says.
    let named = json!({"metadata": {"annotations": {"weaver.example.com/approved-by": patcher.user}},
        "spec": {"approvedPlan": digest}});
    let refused = patch(&patcher, &named);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "patched without approve: {stderr}");
    assert!(
        stderr.contains(&format!("user {} may not approve plans of EnvironmentSync {namespace}/shop", patcher.user)),
        "{stderr}"
    );
    assert!(stderr.contains("ValidatingAdmissionPolicy"), "{stderr}");
    assert_eq!(approved(), None);
    // Nor may it rewrite who approved the last plan.
    let forged = json!({"metadata": {"annotations": {"weaver.example.com/approved-by": "someone-else"}}});
    assert!(!patch(&patcher, &forged).status.success(), "the approver rewritten without approve");
    // Nor turn the approval Automatic, or lift a freeze: how it is approved is the approvers'.
    for rules in [
        json!({"spec": {"approval": "Automatic"}}),
        json!({"spec": {"approval": null}}),
        json!({"spec": {"windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "8h"}]}}),
    ] {
        let refused = patch(&patcher, &rules);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{rules} passed without approve");
        assert!(stderr.contains("is approved (spec.approval, spec.windows): that needs the verb approve"), "{stderr}");
    }
    // patch still does what it did: a change of anything else passes.
    assert!(patch(&patcher, &json!({"metadata": {"labels": {"team": "shop"}}})).status.success());
    assert!(patch(&patcher, &json!({"spec": {"interval": "10m"}})).status.success());

    // approve, naming someone else: refused.
    let refused = patch(&approver, &named);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "an approval naming another user passed");
    assert!(
        stderr.contains(&format!("set the annotation weaver.example.com/approved-by to {}", approver.user)),
        "{stderr}"
    );
    // approve, naming no one: refused alike.
    assert!(!patch(&approver, &json!({"spec": {"approvedPlan": digest}})).status.success());
    assert_eq!(approved(), None);
    // approve, naming itself: passes, and the object records who.
    let own = json!({"metadata": {"annotations": {"weaver.example.com/approved-by": approver.user}},
        "spec": {"approvedPlan": digest}});
    let passed = patch(&approver, &own);
    assert!(passed.status.success(), "{}", String::from_utf8_lossy(&passed.stderr));
    let live = cluster.get(&sync).unwrap();
    assert_eq!(live["spec"]["approvedPlan"], digest.as_str());
    assert_eq!(live["metadata"]["annotations"]["weaver.example.com/approved-by"], approver.user.as_str());

    // The controller's own account (the chart's, in the release's namespace: here the test's)
    // writes its UI users' approvals, naming them: it holds approve, and it alone may name another.
    let controller = account(&cluster, &namespace, "weaver", &["get", "patch", "approve"]);
    let for_alice = json!({"metadata": {"annotations": {"weaver.example.com/approved-by": "alice"}},
        "spec": {"approvedPlan": format!("sha256:{}", "ef".repeat(32))}});
    let passed = patch(&controller, &for_alice);
    assert!(passed.status.success(), "{}", String::from_utf8_lossy(&passed.stderr));
    assert_eq!(cluster.get(&sync).unwrap()["metadata"]["annotations"]["weaver.example.com/approved-by"], "alice");

    // The approvers set the windows.
    let freeze = json!({"spec": {"windows": [{"kind": "deny", "schedule": "0 18 * * 5", "duration": "62h", "timeZone": "Europe/Berlin"}]}});
    let passed = patch(&approver, &freeze);
    assert!(passed.status.success(), "{}", String::from_utf8_lossy(&passed.stderr));
    let lifted = patch(&patcher, &json!({"spec": {"windows": null}}));
    assert!(!lifted.status.success(), "the freeze lifted without approve");

    // Resuming needs resume, suspending suspend; approve gives neither.
    let resume = json!({"spec": {"suspend": false}});
    let refused = patch(&approver, &resume);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "resumed without resume");
    assert!(stderr.contains("may not resume EnvironmentSync"), "{stderr}");
    let operator = account(&cluster, &namespace, "operator", &["get", "patch", "resume", "suspend"]);
    assert!(patch(&operator, &resume).status.success(), "resumed with resume");
    assert!(patch(&operator, &json!({"spec": {"suspend": true}})).status.success(), "suspended with suspend");
}

#[test]
fn weaver_sync_approve_names_the_approver_the_api_server_knows() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("approve-cli");
    enforce_in(&cluster, &namespace);
    let digest = format!("sha256:{}", "cd".repeat(32));
    let sync = waiting(&cluster, &namespace, &digest);
    let approver = account(&cluster, &namespace, "approver", &["get", "patch", "approve"]);
    let patcher = account(&cluster, &namespace, "patcher", &["get", "patch"]);
    let approve = |identity: &Identity| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("kubeconfig");
        std::fs::write(&config, &identity.kubeconfig).unwrap();
        let config = config.to_string_lossy().to_string();
        let args = ["--kubeconfig", &config, "sync", "approve", "shop", "-n", &namespace, "--digest", &digest, "--yes"];
        weaver_in(&project_root(), &args, &[])
    };

    let refused = approve(&patcher);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("user {} may not approve plans", patcher.user)), "{}", refused.stderr);
    assert!(cluster.get(&sync).unwrap()["spec"].get("approvedPlan").is_none());

    approve(&approver).success();
    let live = cluster.get(&sync).unwrap();
    assert_eq!(live["spec"]["approvedPlan"], digest.as_str());
    assert_eq!(live["metadata"]["annotations"]["weaver.example.com/approved-by"], approver.user.as_str());
}
