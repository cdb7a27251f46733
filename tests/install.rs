//! `weaver install` and `weaver uninstall`: the chart built into the binary, applied as release
//! `weaver` of environment `weaver`, on the fake API server or, unchanged, a real one (the parts
//! that only the fake can do say so); and `helm` installing the same chart from an OCI registry
//! renders the same objects.

use std::collections::BTreeMap;

use crate::common;

use common::cluster::TestCluster;
use common::eventually;
use serde_json::{Value, json};

const CRDS: [&str; 2] = ["configmapsyncs.weaver.example.com", "environmentsyncs.weaver.example.com"];

fn crd(name: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}})
}

fn deployment(namespace: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weaver", "namespace": namespace}})
}

/// The release's records in `namespace`, by revision.
fn records(cluster: &TestCluster, namespace: &str) -> Vec<weaver_plan::release::record::Record> {
    let secrets = cluster.list("v1", "Secret", "secrets", namespace);
    let mut records: Vec<_> = weaver_plan::release::record::from_secrets(&secrets)
        .unwrap()
        .into_iter()
        .filter(|r| r.release == "weaver" && r.environment == "weaver")
        .collect();
    records.sort_by_key(|r| r.revision);
    records
}

// On a shared real cluster, the approvals policy would hold every test's EnvironmentSyncs (its
// selector matches every namespace by default), and the controller's Pods (where the cluster has
// a node) would reconcile them: off, and a selector nothing matches.
pub(crate) const NOWHERE: &str = "selector=weaver.example.com/shard=nowhere";
const SETTINGS: [&str; 6] = ["--set", "replicas=1", "--set", "gitops.approvals.enforce=false", "--set", NOWHERE];

/// A user's ConfigMapSync, in a namespace of its own.
fn users_config_map_sync(cluster: &TestCluster) -> Value {
    let tenant = cluster.namespace("tenant");
    let sync = json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync",
        "metadata": {"name": "settings", "namespace": tenant},
        "spec": {"source": {"name": "settings"}, "targetNamespaces": ["a"], "serviceAccountName": "syncer"},
    });
    cluster.create(&sync);
    sync
}

/// A kubeconfig in `dir` of a server no one answers at (127.0.0.1:1).
pub(crate) fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    kubeconfig
}

#[test]
fn install_applies_the_chart_built_in_upgrades_it_and_uninstall_keeps_the_crds_and_resources() {
    let cluster = TestCluster::start();
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let repo = common::Repo::empty();

    // Nothing to uninstall yet: said, and nothing created.
    let nothing = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(nothing.code, 1, "{nothing:?}");
    assert!(nothing.stderr.contains(&format!("no weaver is installed in namespace {ns}")), "{nothing:?}");
    assert!(cluster.list("v1", "Secret", "secrets", &ns).is_empty(), "no record written");

    let run = repo.weaver_on(&cluster, &[&["install", "-n", &ns][..], &SETTINGS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply summary:"), "{run:?}");
    let live = cluster.get(&deployment(&ns)).expect("the controller's Deployment");
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    // The image of the binary's own version, as the chart's appVersion is.
    assert_eq!(container["image"], format!("weaver:{}", env!("CARGO_PKG_VERSION")), "{live}");
    assert_eq!(live["spec"]["replicas"], 1);
    for name in CRDS {
        let live = cluster.get(&crd(name)).unwrap_or_else(|| panic!("CRD {name}"));
        assert_eq!(live["metadata"]["annotations"]["weaver.example.com/prune"], "disabled", "{live}");
    }
    let first = records(&cluster, &ns);
    assert_eq!(first.len(), 1, "one revision");
    assert_eq!(first[0].commit, None, "the chart built in is no commit");

    // The same install again changes nothing; another value is an upgrade, a revision more.
    let again = repo.weaver_on(&cluster, &[&["install", "-n", &ns][..], &SETTINGS].concat());
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("0 created, 0 configured"), "{again:?}");
    assert_eq!(records(&cluster, &ns).len(), 1, "no revision for no change");
    let values = repo.path().join("weaver-values.yaml");
    std::fs::write(
        &values,
        "replicas: 2\nselector: weaver.example.com/shard=nowhere\ngitops:\n  approvals:\n    enforce: false\n",
    )
    .unwrap();
    let upgrade = repo.weaver_on(&cluster, &["install", "-n", &ns, "-f", values.to_str().unwrap()]);
    assert_eq!(upgrade.code, 0, "{upgrade:?}");
    assert_eq!(cluster.get(&deployment(&ns)).unwrap()["spec"]["replicas"], 2);
    assert_eq!(records(&cluster, &ns).last().map(|r| r.revision), Some(2));

    // A user's ConfigMapSync outlives the controller, and so do the CRDs; the output says so.
    let sync = users_config_map_sync(&cluster);
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(cluster.get(&deployment(&ns)).is_none(), "the Deployment is removed");
    for name in CRDS {
        assert!(cluster.get(&crd(name)).is_some(), "CRD {name} is kept");
    }
    assert!(cluster.get(&sync).is_some(), "the ConfigMapSync is kept");
    // The count is the cluster's: on a real one, other tests' ConfigMapSyncs count too.
    let kept = match cluster.is_fake() {
        true => "kept customresourcedefinition configmapsyncs.weaver.example.com: 1 custom resource of it remains",
        false => "kept customresourcedefinition configmapsyncs.weaver.example.com: ",
    };
    assert!(removed.stderr.contains(kept), "{removed:?}");
    let last = records(&cluster, &ns).pop().expect("a record");
    assert!(last.objects.iter().all(|o| o.kind == "CustomResourceDefinition"), "{:?}", last.objects);
}

/// The conversion the controller sets on the EnvironmentSync CRD once it runs (none runs
/// here): its webhook, behind the chart's Service in `namespace`.
fn converted_by_the_controller_in(namespace: &str) -> Value {
    let service = json!({"namespace": namespace, "name": "weaver-conversion", "path": "/convert", "port": 443});
    json!({"spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"service": service}}}}})
}

/// The CRD without a webhook again, whatever a test left, for the tests that follow.
pub(crate) fn unconvert(cluster: &TestCluster) {
    let none = json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}});
    cluster.merge_patch(&crd(CRDS[1]), &none, "install-test");
}

/// The uninstall removes the Service the controller's conversion webhook is behind: it sets the
/// CRD's conversion to None once the controller is gone, so that an EnvironmentSync is still
/// served at both versions (a real API server refuses a version that needs the webhook:
/// `service "weaver-conversion" not found`; the fake cannot call a Service's webhook at all).
/// It names what it kept, and its last line says what was uninstalled.
#[test]
fn uninstall_leaves_both_versions_served_and_says_what_it_kept() {
    let cluster = TestCluster::start();
    // The CRD's conversion is the cluster's: held alone on a shared one.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let repo = common::Repo::empty();
    let run = repo.weaver_on(&cluster, &[&["install", "-n", &ns][..], &SETTINGS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    // As the controller would have: its webhook's certificates, and the CRD's conversion.
    cluster.create(&json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "weaver-conversion-tls", "namespace": ns}, "data": {}}));
    cluster.merge_patch(&crd(CRDS[1]), &converted_by_the_controller_in(&ns), "install-test");
    cluster.create(&json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "configmapsync-operator", "namespace": ns}, "spec": {"holderIdentity": ""}}));
    let tenant = cluster.namespace("tenant");
    let sync = json!({
        "apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "shop", "namespace": tenant},
        "spec": {"source": {"url": "https://git.example.com/shop.git", "ref": {"branch": "main"}}, "serviceAccountName": "deployer"},
    });
    cluster.create(&sync);
    let kept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns]);
        assert_eq!(removed.code, 0, "{removed:?}");
        let mut alpha = sync.clone();
        alpha["apiVersion"] = json!("weaver.example.com/v1alpha1");
        // A real API server serves a CRD's new conversion a moment after it is written.
        let served = eventually("the EnvironmentSync served at v1alpha1", || cluster.try_get(&alpha));
        assert_eq!(served["spec"]["source"], sync["spec"]["source"]);
        assert!(cluster.try_get(&sync).is_ok(), "served at v1beta1");
        let live = cluster.get(&crd(CRDS[1])).expect("the CRD, kept");
        assert_eq!(live["spec"]["conversion"], json!({"strategy": "None"}), "{live}");
        let reset = format!("kept customresourcedefinition {}: ", CRDS[1]);
        let line = removed.stderr.lines().find(|line| line.starts_with(&reset)).unwrap_or_default();
        assert!(line.contains("its conversion set to None"), "{removed:?}");
        for kept in [
            format!("kept Secret {ns}/weaver-conversion-tls: the conversion webhook's certificates"),
            "kept 2 record(s) of release weaver".to_string(),
            format!("kept namespace {ns}: `kubectl delete namespace {ns}`"),
        ] {
            assert!(removed.stderr.contains(&kept), "{kept}: {removed:?}");
        }
        let leases = format!("kept Lease(s) {ns}/configmapsync-operator, kube-system/weaver-lock-weaver: ");
        assert!(removed.stderr.contains(&leases), "{removed:?}");
        assert_eq!(
            removed.stderr.lines().last(),
            Some(&*format!(
                "weaver uninstalled from namespace {ns}: its controller removed; its 2 CRDs and their custom resources kept"
            )),
            "{removed:?}"
        );
    }));
    unconvert(&cluster);
    if let Err(failed) = kept {
        std::panic::resume_unwind(failed);
    }
}

#[test]
fn uninstall_crds_deletes_the_custom_resources_then_the_crds() {
    let cluster = TestCluster::start();
    if cluster.fake("deleting weaver's CRDs, which every other test on a shared cluster uses").is_none() {
        return;
    }
    // Installed as environment `weaver`: the CRDs held alone on a shared cluster.
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("weaver");
    let repo = common::Repo::empty();
    let run = repo.weaver_on(&cluster, &[&["install", "-n", &ns][..], &SETTINGS].concat());
    assert_eq!(run.code, 0, "{run:?}");
    users_config_map_sync(&cluster);
    let removed = repo.weaver_on(&cluster, &["uninstall", "-n", &ns, "--crds"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(removed.stderr.contains("1 configmapsyncs.weaver.example.com deleted"), "{removed:?}");
    for name in CRDS {
        assert!(cluster.get(&crd(name)).is_none(), "CRD {name} deleted");
        assert!(removed.stderr.contains(&format!("customresourcedefinition {name} deleted")), "{removed:?}");
    }
    assert!(cluster.get(&deployment(&ns)).is_none());
}

#[test]
fn install_refuses_bad_flags_and_an_unreachable_cluster_before_writing() {
    let repo = common::Repo::empty();
    let bad = repo.weaver(&["install", "--dry-run", "-n", "Weaver System"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("--namespace \"Weaver System\" is not a namespace's name"), "{bad:?}");
    let bad = repo.weaver(&["install", "--dry-run", "--set", "replicas"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("--set"), "{bad:?}");
    // A value the chart's schema refuses, named.
    let bad = repo.weaver(&["install", "--dry-run", "--set", "replicas=many"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("- replicas: value is not of type \"integer\""), "{bad:?}");
    assert!(!bad.stderr.contains("override the repository's"), "no repository to override: {bad:?}");
    let kubeconfig = unreachable_kubeconfig(repo.path());
    let unreachable =
        repo.weaver(&["install", "--kubeconfig", kubeconfig.to_str().unwrap(), "--request-timeout", "2s"]);
    assert_eq!(unreachable.code, 1, "{unreachable:?}");
    assert!(unreachable.stderr.contains("127.0.0.1:1"), "{unreachable:?}");
}

/// The objects of a YAML stream by kind and name, without the labels weaver adds to what it
/// applies (its release's and environment's).
fn by_name(stream: &str) -> BTreeMap<(String, String), Value> {
    let documents = weaver_yaml::documents(std::path::Path::new("stream"), stream).unwrap();
    let mut objects = BTreeMap::new();
    for mut object in documents.into_iter().filter(|d| !d.is_null()) {
        if let Some(labels) = object.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            for label in
                ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"]
            {
                if labels.get(label).and_then(Value::as_str).is_some_and(|v| v == "weaver") {
                    labels.remove(label);
                }
            }
            if labels.is_empty() {
                object["metadata"].as_object_mut().unwrap().remove("labels");
            }
        }
        // helm leaves the namespace to the install (-n): weaver writes it.
        if object.pointer("/metadata/namespace").and_then(Value::as_str) == Some("weaver-system") {
            object["metadata"].as_object_mut().unwrap().remove("namespace");
        }
        let key =
            (object["kind"].as_str().unwrap().to_string(), object["metadata"]["name"].as_str().unwrap().to_string());
        objects.insert(key, object);
    }
    objects
}

#[test]
fn helm_from_an_oci_registry_renders_what_weaver_install_applies() {
    let helm = match common::tools::helm() {
        Ok((helm, _)) => helm,
        Err(why) => {
            common::skip::interop_or_skip(Some(&why));
            return;
        }
    };
    let registry = match common::registry::Registry::start() {
        Ok(registry) => registry,
        Err(why) => {
            common::skip::interop_or_skip(Some(&why));
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let helm_cmd = |args: &[&str]| common::tools::run_helm(&helm, work.path(), None, args);
    let chart = registry.push_weaver_chart(&helm, work.path());
    let version = env!("CARGO_PKG_VERSION");
    let from_helm = helm_cmd(&[
        "template",
        "weaver",
        &chart,
        "--version",
        version,
        "--plain-http",
        "--include-crds",
        "-n",
        "weaver-system",
        "--set",
        "gitops.ui.enabled=true",
    ]);
    let repo = common::Repo::empty();
    let from_weaver = repo.weaver(&["install", "--dry-run", "--set", "gitops.ui.enabled=true"]);
    assert_eq!(from_weaver.code, 0, "{from_weaver:?}");
    let (helm_objects, weaver_objects) = (by_name(&from_helm), by_name(&from_weaver.stdout));
    assert!(weaver_objects.len() > 10, "{}", from_weaver.stdout);
    assert_eq!(helm_objects.keys().collect::<Vec<_>>(), weaver_objects.keys().collect::<Vec<_>>());
    for (key, object) in &weaver_objects {
        assert_eq!(&helm_objects[key], object, "{key:?}");
    }
}
