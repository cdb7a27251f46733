//! `weaver check`: each problem of an installation named with what to do, exit 1; exit 0 on a
//! healthy one; `--pre` before an install. On the fake API server or, unchanged, a real one
//! (the parts that need what only the fake can do say so).

use crate::common;

use common::cluster::TestCluster;
use serde_json::{Value, json};

const MANAGER: &str = "check-test";
const SELECTOR: (&str, &str) = ("app.kubernetes.io/name", "weaver");

fn check(cluster: &TestCluster, args: &[&str]) -> (i32, String) {
    let run = common::Repo::empty().weaver_on(cluster, &[&["check"], args].concat());
    assert!(run.code == 0 || run.code == 1, "{run:?}");
    (run.code, run.stdout)
}

fn finding<'a>(stdout: &'a str, subject: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line[line.find(' ').map_or(0, |at| at + 1)..].starts_with(subject))
        .unwrap_or_else(|| panic!("no finding for {subject}:\n{stdout}"))
}

fn deployment(namespace: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "weaver", "namespace": namespace, "labels": {SELECTOR.0: SELECTOR.1}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {SELECTOR.0: SELECTOR.1}},
            "template": {
                "metadata": {"labels": {SELECTOR.0: SELECTOR.1}},
                "spec": {"containers": [{"name": "operator", "image": "weaver.invalid/weaver:0.0.0-check-test"}]},
            },
        },
    })
}

#[test]
fn check_names_a_missing_crd_a_controller_not_ready_and_an_account_lacking_a_verb_then_passes_once_mended() {
    let cluster = TestCluster::start();
    // Its findings on weaver's CRDs hold only while no test changes their conversion.
    let _crds = cluster.weaver_crds_shared();
    let ns = cluster.namespace("weaver");
    let crd = |name: &str| json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}});

    // No controller in the namespace; the CRDs missing where the cluster has none.
    let (code, out) = check(&cluster, &["-n", &ns]);
    assert_eq!(code, 1, "{out}");
    assert!(finding(&out, "kubernetes:").starts_with('✔'), "{out}");
    assert!(finding(&out, "clock:").starts_with('✔'), "{out}");
    let controller = finding(&out, "controller:");
    assert!(controller.starts_with('✗') && controller.contains(&ns), "{out}");
    assert!(out.contains("to do: install it"), "{out}");
    if cluster.get(&crd("environmentsyncs.weaver.example.com")).is_none() {
        let missing = finding(&out, "crd/environmentsyncs.weaver.example.com:");
        assert!(missing.starts_with('✗') && missing.ends_with("not installed"), "{out}");
    } else {
        common::skip::say_skipped(
            "the cluster has weaver's CRDs (other tests installed them): their absence is not checked",
        );
    }

    // The CRDs, a controller whose Pods are not ready, and a tenant whose account may not read
    // the Secret it names.
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    cluster.apply_shared(&weaver_controllers::configmapsync::crd(), MANAGER);
    if let Some(fake) = cluster.fake("holding a Deployment unready") {
        fake.set_auto_ready(false);
    }
    // It serves this test's EnvironmentSync alone: on a shared server, other tests' are not its.
    let mut controller = deployment(&ns, 1);
    controller["spec"]["template"]["spec"]["containers"][0]["args"] = json!([format!("--selector=weaver-check={ns}")]);
    cluster.apply(&[controller], MANAGER);
    cluster.create(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "weaver-webhook", "namespace": ns, "labels": {SELECTOR.0: SELECTOR.1}},
        "spec": {"selector": {SELECTOR.0: SELECTOR.1}, "ports": [{"name": "webhook", "port": 9292}]},
    }));
    cluster.create(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant", "namespace": ns}}),
    );
    cluster.create(&json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "shop", "namespace": ns, "labels": {"weaver-check": ns}},
        "spec": {
            "source": {"url": "https://git.example.com/shop.git", "ref": {"branch": "main"}},
            "environments": ["dev"],
            "serviceAccountName": "tenant",
            "decryption": {"secretRef": {"name": "age-keys"}},
        },
    }));
    let (code, out) = check(&cluster, &["-n", &ns]);
    assert_eq!(code, 1, "{out}");
    for name in ["environmentsyncs.weaver.example.com", "configmapsyncs.weaver.example.com"] {
        assert!(finding(&out, &format!("crd/{name}:")).contains("established"), "{out}");
    }
    let deployment_line = finding(&out, &format!("controller/{ns}/weaver:"));
    assert!(deployment_line.starts_with('✗') && deployment_line.contains("not ready (0/1 replicas)"), "{out}");
    assert!(finding(&out, "leader:").contains("no replica holds the leader Lease"), "{out}");
    assert!(finding(&out, &format!("service/{ns}/weaver-webhook:")).contains("no ready endpoint"), "{out}");
    let tenant = finding(&out, &format!("environmentsync/{ns}/shop:"));
    assert!(
        tenant.starts_with('✗') && tenant.contains("lacks get on Secret age-keys (spec.decryption.secretRef)"),
        "{out}"
    );

    // JSON says the same.
    let (code, json) = check(&cluster, &["-n", &ns, "-o", "json"]);
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&json).unwrap();
    let failed: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    let expected = [
        format!("controller/{ns}/weaver"),
        "leader".into(),
        format!("service/{ns}/weaver-webhook"),
        format!("environmentsync/{ns}/shop"),
    ];
    assert_eq!(failed, expected);

    // Mended: the account may read its Secret, the Deployment is ready, a replica leads.
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "tenant-secrets", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["age-keys"], "verbs": ["get"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "tenant-secrets", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant-secrets"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}]});
    cluster.apply(&[role, binding], MANAGER);
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    for (lease, holder) in [("configmapsync-operator", "weaver-0"), ("configmapsync-operator-b", "weaver-b-0")] {
        cluster.create(&json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": lease, "namespace": ns},
            "spec": {"holderIdentity": holder, "renewTime": now, "leaseDurationSeconds": 60},
        }));
    }
    let Some(fake) = cluster.fake("a ready controller Deployment (a real cluster's needs a node and weaver's image)")
    else {
        return;
    };
    fake.set_auto_ready(true);
    cluster.create(&json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "weaver-webhook-1", "namespace": ns, "labels": {
            "kubernetes.io/service-name": "weaver-webhook", "endpointslice.kubernetes.io/managed-by": MANAGER}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.9"], "conditions": {"ready": true}}],
        "ports": [{"name": "webhook", "port": 9292}],
    }));
    let (code, out) = check(&cluster, &["-n", &ns]);
    assert_eq!(code, 0, "{out}");
    assert!(finding(&out, &format!("controller/{ns}/weaver:")).contains("1/1 replicas ready"), "{out}");
    assert!(finding(&out, "leader:").contains("weaver-0, renewed"), "{out}");
    assert!(finding(&out, "leader/configmapsync-operator-b:").contains("weaver-b-0, renewed"), "a shard's: {out}");
    assert!(finding(&out, &format!("service/{ns}/weaver-webhook:")).contains("1 ready endpoint"), "{out}");
    assert!(finding(&out, &format!("environmentsync/{ns}/shop:")).starts_with('✔'), "{out}");
    assert!(out.ends_with("all checks passed\n"), "{out}");
}

/// weaver's own EnvironmentSync (`weaver bootstrap`'s, named as the controller's Deployment)
/// not Ready fails the check, naming it, its reason and its message; Ready again, it passes. A
/// CRD whose conversion webhook is behind a Service that is not there fails it too, saying how
/// to mend it.
#[test]
fn check_fails_while_weavers_own_sync_is_not_ready_and_while_a_crd_converts_at_a_missing_service() {
    let cluster = TestCluster::start();
    // The CRD's conversion is the cluster's: held alone on a shared one.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("selfsync");
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    cluster.apply_shared(&weaver_controllers::configmapsync::crd(), MANAGER);
    let mut controller = deployment(&ns, 1);
    controller["spec"]["template"]["spec"]["containers"][0]["args"] = json!([format!("--selector=weaver-check={ns}")]);
    cluster.apply(&[controller], MANAGER);
    let own = json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "weaver", "namespace": ns, "labels": {"weaver-check": ns}},
        "spec": {
            "source": {"url": "ssh://git@10.244.0.1:2250/srv/fleet.git", "ref": {"branch": "main"}},
            "environments": ["weaver"],
            "serviceAccountName": "weaver-self",
        },
    });
    cluster.create(&own);
    let ready = |status: &str, reason: &str, message: &str| {
        let time = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        json!({"lastAppliedRevision": "0123456789abcdef0123456789abcdef01234567", "conditions": [
            {"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": time}]})
    };
    let message = "fetching ssh://git@10.244.0.1:2250/srv/fleet.git (branch main): no answer within 10s";
    cluster.patch_status(&own, &ready("False", "FetchFailed", message));
    let (code, out) = check(&cluster, &["-n", &ns]);
    assert_eq!(code, 1, "{out}");
    let line = finding(&out, &format!("selfsync/{ns}/weaver:"));
    let said = format!("weaver's own EnvironmentSync {ns}/weaver is not Ready: FetchFailed: {message}");
    assert!(line.starts_with('✗') && line.contains(&said), "{out}");
    assert!(out.contains(&format!("weaver sync reconcile weaver -n {ns}")), "{out}");
    let (_, json) = check(&cluster, &["-n", &ns, "-o", "json"]);
    let json: Value = serde_json::from_str(&json).unwrap();
    let own_finding =
        json["findings"].as_array().unwrap().iter().find(|f| f["subject"] == format!("selfsync/{ns}/weaver"));
    assert_eq!(own_finding.map(|f| &f["ok"]), Some(&json!(false)), "{json}");

    cluster.patch_status(&own, &ready("True", "ReconciliationSucceeded", "applied"));
    let (_, out) = check(&cluster, &["-n", &ns]);
    let line = finding(&out, &format!("selfsync/{ns}/weaver:"));
    assert!(line.starts_with('✔') && line.contains("Ready, at 0123456789ab"), "{out}");

    // The controller's webhook, its Service gone (an uninstall of an older weaver leaves that).
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "environmentsyncs.weaver.example.com"}});
    let service = json!({"namespace": ns, "name": "weaver-conversion", "path": "/convert", "port": 443});
    let webhook = json!({"spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"service": service}}}}});
    cluster.merge_patch(&crd, &webhook, MANAGER);
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&cluster, &["-n", &ns])));
    cluster.merge_patch(&crd, &json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}}), MANAGER);
    let (code, out) = checked.unwrap_or_else(|failed| std::panic::resume_unwind(failed));
    assert_eq!(code, 1, "{out}");
    let line = finding(&out, "crd/environmentsyncs.weaver.example.com:");
    assert!(
        line.starts_with('✗') && line.contains(&format!("Service {ns}/weaver-conversion, which does not exist")),
        "{out}"
    );
    assert!(
        out.contains("kubectl patch crd environmentsyncs.weaver.example.com --type merge -p '{\"spec\":{\"conversion\":{\"strategy\":\"None\",\"webhook\":null}}}'"),
        "{out}"
    );
}

/// The controller's version (its image's tag, else its `app.kubernetes.io/version` label)
/// beside this weaver's: an older one is upgraded, a newer patch is safe to go back from, a
/// newer minor is refused, by check and by `weaver install` into any namespace (the CRDs are the
/// cluster's), which applies nothing.
#[test]
fn check_and_install_refuse_a_downgrade_of_a_minor_and_say_a_patch_is_safe() {
    let cluster = TestCluster::start();
    // On a shared server, a newer controller would refuse the other tests' installs meanwhile.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("versions");
    let ours = env!("CARGO_PKG_VERSION");
    let [major, minor, patch]: [u64; 3] =
        ours.split('.').map(|p| p.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    let mut controller = deployment(&ns, 1);
    let image = "/spec/template/spec/containers/0/image";
    cluster.apply(&[controller.clone()], MANAGER);
    let version_line = |cluster: &TestCluster| {
        let (code, out) = check(cluster, &["-n", &ns]);
        (code, finding(&out, "version/weaver:").to_string(), out)
    };
    let (_, line, out) = version_line(&cluster);
    assert!(
        line.starts_with('✔') && line.contains(&format!("weaver 0.0.0-check-test; this weaver ({ours}) upgrades it")),
        "{out}"
    );
    // The image's tag is what runs, whatever the chart's label says.
    let newer_patch = format!("{major}.{minor}.{}", patch + 1);
    controller["metadata"]["labels"]["app.kubernetes.io/version"] = json!(ours);
    *controller.pointer_mut(image).unwrap() = json!(format!("weaver.invalid/weaver:{newer_patch}"));
    cluster.apply(&[controller.clone()], MANAGER);
    let (_, line, out) = version_line(&cluster);
    assert!(line.starts_with('✔') && line.contains("is safe: a patch release changes nothing stored"), "{out}");
    // Pinned by digest: the label says.
    let newer_minor = format!("{major}.{}.0", minor + 1);
    controller["metadata"]["labels"]["app.kubernetes.io/version"] = json!(newer_minor);
    *controller.pointer_mut(image).unwrap() = json!(format!("weaver.invalid/weaver@sha256:{}", "a".repeat(64)));
    cluster.apply(&[controller], MANAGER);
    let (code, line, out) = version_line(&cluster);
    assert_eq!(code, 1, "{out}");
    assert!(
        line.starts_with('✗')
            && line.contains(&format!("weaver {newer_minor}, of a newer minor than this weaver ({ours})")),
        "{out}"
    );
    let elsewhere = cluster.namespace("elsewhere");
    let run = common::Repo::empty().weaver_on(&cluster, &["install", "-n", &elsewhere]);
    assert_eq!(
        run.failure(),
        format!(
            "error: weaver {newer_minor} runs in namespace {ns}, of a newer minor than this weaver ({ours}): nothing was \
             applied\n  help: install with weaver {newer_minor} or newer; going back a minor is refused (its CRDs and \
             records may hold what weaver {ours} cannot read): see the compatibility page\n"
        )
    );
    let service =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "weaver-webhook", "namespace": elsewhere}});
    assert!(cluster.get(&service).is_none(), "nothing applied");
    // Gone before the lock is let go: its namespace's deletion would leave it a while.
    cluster.delete(&deployment(&ns, 1));
}

/// A controller given `--selector` (the chart's `selector`) reconciles only the
/// EnvironmentSyncs it matches: check looks at their accounts, not at another controller's.
#[test]
fn check_looks_at_the_accounts_of_the_syncs_the_controller_serves() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("served");
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let mut controller = deployment(&ns, 1);
    controller["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["operator", "run", "--selector=team=a"]);
    cluster.apply(&[controller], MANAGER);
    for (name, labels) in [("served", json!({"team": "a"})), ("elsewhere", json!({"team": "b"}))] {
        cluster.create(&json!({
            "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "source": {"url": "https://git.example.com/shop.git", "ref": {"branch": "main"}},
                "serviceAccountName": "nobody",
                "decryption": {"secretRef": {"name": "age-keys"}},
            },
        }));
    }
    let (_, out) = check(&cluster, &["-n", &ns]);
    assert!(finding(&out, &format!("environmentsync/{ns}/served:")).starts_with('✗'), "{out}");
    assert!(!out.contains(&format!("environmentsync/{ns}/elsewhere")), "{out}");
}

/// A release moved from the former configmapsync-operator chart keeps its pods' label
/// (`nameOverride: configmapsync-operator`): its controller is found all the same.
#[test]
fn check_finds_the_controller_of_a_release_moved_from_the_former_chart() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("moved");
    let mut moved = deployment(&ns, 1);
    moved["metadata"]["name"] = json!("configmapsync-operator");
    let former = json!({"app.kubernetes.io/name": "configmapsync-operator"});
    for labels in ["/metadata/labels", "/spec/selector/matchLabels", "/spec/template/metadata/labels"] {
        *moved.pointer_mut(labels).unwrap() = former.clone();
    }
    cluster.apply(&[moved], MANAGER);
    let (_, out) = check(&cluster, &["-n", &ns]);
    assert!(!out.contains("no Deployment labelled"), "{out}");
    finding(&out, &format!("controller/{ns}/configmapsync-operator:"));
}

#[test]
fn check_pre_looks_at_the_server_and_your_rights_not_an_installation() {
    let cluster = TestCluster::start();
    let (code, out) = check(&cluster, &["--pre"]);
    assert_eq!(code, 0, "the tests' identity may install anything:\n{out}");
    assert!(finding(&out, "rights/create customresourcedefinitions:").starts_with('✔'), "{out}");
    assert!(!out.contains("controller"), "--pre looks at no installation:\n{out}");
}
