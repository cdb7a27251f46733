//! Upgrades from the previous release (common::previous: 0.1.0, built from a commit of `main`)
//! to the tree under test, on a cluster with nodes (skipped without one, as tests/node.rs):
//! the previous controller installed and at work, in its Pods, on EnvironmentSyncs and a
//! ConfigMapSync written at `v1alpha1` (records, a pending approval, an image pin it pushed),
//! then upgraded as users upgrade: by `weaver install` of the newer binary, and, for a
//! controller that runs itself from git, by the newer `weaver bootstrap`. What must hold:
//! nothing re-applied that did not change (every applied object's resourceVersion kept),
//! statuses, the pending approval and the pins kept, the objects stored at `v1beta1` alone, no
//! object of the previous release left behind.
//!
//! Each holds weaver's CRDs alone: the previous release's CRDs serve `v1alpha1` alone, so they
//! are deleted first (with every object of them), as on a cluster that never had weaver.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::node::{live_pods, pod_ready, ready_condition, request_reconcile};
use common::certs::test_certificates;
use common::cluster::TestCluster;
use common::eventually;
use common::git_http::Options;
use common::git_ssh::Sshd;
use common::node::{E2e, figure};
use common::previous::{self, Previous};
use common::skip::say_skipped;
use serde_json::{Value, json};
use weaver_engine::action::migrate::CRDS;

fn crd(name: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}})
}

/// Deletes weaver's CRDs, and every object of them, and waits until they are gone. The objects
/// an earlier run left, whose controllers are gone, keep their finalizers: those are taken off.
fn delete_weaver_crds(cluster: &TestCluster) {
    for name in CRDS {
        if cluster.get(&crd(name)).is_some() {
            cluster.request_delete(&crd(name));
        }
    }
    eventually("weaver's CRDs deleted", || {
        let left: Vec<&str> = CRDS.into_iter().filter(|n| cluster.get(&crd(n)).is_some()).collect();
        for name in &left {
            let plural = name.split('.').next().unwrap();
            let Ok(list) = cluster.get_text(&format!("/apis/weaver.example.com/v1alpha1/{plural}")) else { continue };
            let list: Value = serde_json::from_str(&list).unwrap();
            for object in list["items"].as_array().into_iter().flatten() {
                if object["metadata"]["deletionTimestamp"].is_string() && object["metadata"]["finalizers"].is_array() {
                    let mut object = object.clone();
                    object["apiVersion"] = json!("weaver.example.com/v1alpha1");
                    cluster.merge_patch(&object, &json!({"metadata": {"finalizers": null}}), "weaver-upgrade-test");
                }
            }
        }
        match left.is_empty() {
            true => Ok(()),
            false => Err(format!("{left:?} left")),
        }
    });
}

fn stored_versions(cluster: &TestCluster, name: &str) -> Value {
    cluster.get(&crd(name)).map(|c| c["status"]["storedVersions"].clone()).unwrap_or_default()
}

/// `weaver uninstall -n NS` when dropped, before weaver's CRDs are let go (declared after
/// them): a controller of the newer release left running, were the test to fail, would have the
/// next test's install of the previous one refused.
struct Uninstall {
    kubeconfig: String,
    namespace: String,
}

impl Drop for Uninstall {
    fn drop(&mut self) {
        let args = ["--kubeconfig", &self.kubeconfig, "uninstall", "-n", &self.namespace];
        let removed = common::Repo::empty().weaver(&args);
        if removed.code != 0 {
            eprintln!("weaver uninstall -n {}: {}", self.namespace, removed.stderr);
        }
    }
}

/// The values both releases are installed with (the image's repository alone: each runs its
/// chart's appVersion), reconciling this test's syncs alone, its Pods allowed to reach `ports`
/// on this machine.
fn values(cluster: &TestCluster, ports: &[u16]) -> Vec<String> {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    [
        format!("image.repository={}", common::image::WEAVER_REPOSITORY),
        format!("selector=weaver-test={}", cluster.prefix),
        format!("gitops.gitPorts={{443,22,{}}}", ports.join(",")),
        "gitops.approvals.enforce=false".to_string(),
    ]
    .into_iter()
    .flat_map(|value| ["--set".to_string(), value])
    .collect()
}

/// `binary install -n ns VALUES --wait` (or `--dry-run`): what it said.
fn install(
    binary: &std::path::Path,
    cluster: &TestCluster,
    ns: &str,
    values: &[String],
    extra: &[&str],
) -> common::Run {
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let mut args = vec!["--kubeconfig", &kubeconfig, "install", "-n", ns];
    args.extend(values.iter().map(String::as_str));
    args.extend_from_slice(extra);
    let repo = common::Repo::empty();
    common::binary_in(binary, repo.path(), &args, &[])
}

/// The (kind, namespace, name) of each object `install --dry-run` prints.
fn install_objects(binary: &std::path::Path, cluster: &TestCluster, ns: &str, values: &[String]) -> BTreeSet<String> {
    let printed = install(binary, cluster, ns, values, &["--dry-run"]);
    assert_eq!(printed.code, 0, "{printed:?}");
    let objects = weaver_yaml::documents(std::path::Path::new("install"), &printed.stdout).unwrap();
    objects.iter().filter(|o| o.is_object()).map(key).collect()
}

fn key(object: &Value) -> String {
    let metadata = &object["metadata"];
    format!(
        "{} {} {}/{}",
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
        metadata["namespace"].as_str().unwrap_or_default(),
        metadata["name"].as_str().unwrap_or_default()
    )
}

/// The object a [`key`] names, as it is in the cluster.
fn live_of(cluster: &TestCluster, key: &str) -> Option<Value> {
    let mut words = key.split(' ');
    let (api_version, kind, place) = (words.next()?, words.next()?, words.next()?);
    let (namespace, name) = place.split_once('/')?;
    let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
    if !namespace.is_empty() {
        object["metadata"]["namespace"] = json!(namespace);
    }
    cluster.get(&object)
}

/// Waits until every Pod in `ns` runs `image`, `count` of them Ready.
fn until_pods_run(cluster: &TestCluster, ns: &str, image: &str, count: usize) {
    eventually(&format!("{count} Pods of {image} Ready, and no other"), || {
        let pods = live_pods(cluster, ns);
        let images: Vec<&str> = pods.iter().filter_map(|p| p["spec"]["containers"][0]["image"].as_str()).collect();
        match pods.len() == count && images.iter().all(|i| *i == image) && pods.iter().all(pod_ready) {
            true => Ok(()),
            false => Err(format!("{images:?}")),
        }
    });
}

/// The Ready condition's (status, reason), empty strings while there is none.
fn ready(sync: &Value) -> (String, String) {
    ready_condition(sync).map(|(status, reason, _)| (status, reason)).unwrap_or_default()
}

/// `object` at `version` of weaver's API.
fn at(object: &Value, version: &str) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(format!("weaver.example.com/{version}"));
    object
}

/// Asks for a reconcile and waits until it was handled; the object then.
fn reconciled(cluster: &TestCluster, sync: &Value, token: &str) -> Value {
    request_reconcile(cluster, sync, token);
    eventually(&format!("the reconcile {token} handled"), || {
        let live = cluster.get(sync).ok_or("gone")?;
        match live["status"]["lastHandledReconcileAt"] == token {
            true => Ok(live),
            false => Err(live["status"].to_string()),
        }
    })
}

/// The resourceVersion of every object the syncs applied or keep in `namespaces` (ConfigMaps,
/// Deployments, Secrets: the records among them): what a write would change.
fn applied_versions(cluster: &TestCluster, namespaces: &[&str]) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for ns in namespaces {
        for (api_version, kind, plural) in
            [("v1", "ConfigMap", "configmaps"), ("apps/v1", "Deployment", "deployments"), ("v1", "Secret", "secrets")]
        {
            for object in cluster.list(api_version, kind, plural, ns) {
                if object["metadata"]["name"] == "kube-root-ca.crt" {
                    continue;
                }
                versions.insert(key(&object), object["metadata"]["resourceVersion"].as_str().unwrap().to_string());
            }
        }
    }
    versions
}

/// The previous release installed by its `weaver install`, at work on a tenant's EnvironmentSyncs
/// and ConfigMapSync written at `v1alpha1`, then upgraded by this tree's `weaver install`.
#[test]
fn the_previous_release_upgraded_by_weaver_install_keeps_every_sync_its_approval_and_pins_and_rewrites_nothing() {
    use crate::images::{PASSWORD, Proxied, pull_secret_data, push_image};
    let Some(e2e) = E2e::or_skip() else { return };
    let Some((Previous { binary: old, image: old_image }, new_image)) = e2e.previous_and_current() else { return };
    if !crate::gitops::http_or_skip() {
        return;
    }
    let cluster = e2e.cluster();
    let host = e2e.host_address(&cluster);
    let Some(registry) = Proxied::start_on(host) else { return };
    let _crds = cluster.weaver_crds_alone();
    delete_weaver_crds(&cluster);
    let ns = cluster.namespace("weaver");
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let _uninstall = Uninstall { kubeconfig: kubeconfig.clone(), namespace: ns.clone() };

    // The tenant's repository, served where the Pods reach it: `dev` runs web from the
    // registry (no replica: the node cannot pull from the test's registry; what is checked is
    // what weaver applies) and subscribes to its tags; `held` one ConfigMap.
    let tenant = crate::gitops::tenant_namespace(&cluster);
    // Over https, its private CA in the Secret `caSecretRef` names (plain http is for loopback).
    let certs = tempfile::tempdir().unwrap();
    let Some((ca, chain, tls_key)) = test_certificates(certs.path(), host) else {
        say_skipped("the openssl CLI cannot make the git server's certificates");
        return;
    };
    let options = Options { address: Some(host), tls: Some((chain, tls_key)), ..Options::default() };
    let source = crate::gitops::Source::served_with(&tenant, options);
    cluster.create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-ca", "namespace": tenant},
        "stringData": {"ca.crt": String::from_utf8(ca).unwrap()}}));
    let source_spec = |extra: Value| {
        let mut spec = crate::gitops::spec(&source, extra);
        spec["source"]["caSecretRef"] = json!({"name": "git-ca"});
        spec
    };
    weaver_test_support::git::follow_pushes(&source.repo);
    let web = registry.image("shop/web");
    let (first, _) = push_image(registry.registry.port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    source.write(
        "charts/app/templates/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n        - name: web\n          image: {web}:1.4.2\n"
        ),
    );
    source.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {tenant}\ncluster:\n  lockNamespace: {tenant}\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0'}}}}\n"
        ),
    );
    source.write("charts/notes/chart.yaml", "name: notes\nversion: 1.0.0\n");
    source.write("charts/notes/values.yaml", "note: first\n");
    source.write(
        "charts/notes/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  note: {{ values.note }}\n",
    );
    source.write(
        "environments/held.yaml",
        &format!(
            "namespace: {tenant}\ncluster:\n  lockNamespace: {tenant}\nreleases:\n  - name: notes\n    chart: notes\n"
        ),
    );
    source.commit("dev subscribes to web; held notes");
    let (docker_config, _) = pull_secret_data(&registry, PASSWORD);
    cluster.create(&json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": tenant}, "stringData": {".dockerconfigjson": docker_config}}));
    // The ConfigMapSync's source, and a target its account may write.
    let target = cluster.namespace("target");
    cluster.create(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": tenant},
        "data": {"colour": "blue"}}),
    );
    cluster.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployer", "namespace": target},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}));
    cluster.create(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": target},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": tenant}]}));

    // The previous release, installed by its own binary.
    let git_port: u16 = source.url().rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let ports = [git_port, registry.proxy.port];
    let old_values = values(&cluster, &ports);
    let started = Instant::now();
    let installed = install(old, &cluster, &ns, &old_values, &["--wait", "--timeout", "4m"]);
    assert_eq!(installed.code, 0, "{installed:?}");
    until_pods_run(&cluster, &ns, &old_image.names[0], 2);
    figure(&format!("`weaver install --wait` of {}", previous::VERSION), &format!("{:.1?}", started.elapsed()));
    for name in CRDS {
        assert_eq!(stored_versions(&cluster, name), json!(["v1alpha1"]), "{name}");
    }

    // Its objects, written at v1alpha1 as its users wrote them.
    let author = json!({"name": "Image Bot", "email": "images@weaver.invalid"});
    let dev = at(
        &crate::gitops::environment_sync(
            &cluster,
            &tenant,
            "dev",
            source_spec(json!({"interval": "5s",
                "imageUpdates": {"interval": "2s", "author": author, "pullSecrets": [{"name": "regcred"}]}})),
        ),
        "v1alpha1",
    );
    let held = at(
        &crate::gitops::environment_sync(
            &cluster,
            &tenant,
            "held",
            source_spec(json!({"interval": "5s", "environments": ["held"]})),
        ),
        "v1alpha1",
    );
    let settings = json!({"apiVersion": "weaver.example.com/v1alpha1", "kind": "ConfigMapSync",
        "metadata": {"name": "settings", "namespace": tenant, "labels": {"weaver-test": cluster.prefix}},
        "spec": {"source": {"name": "settings"}, "targetNamespaces": [target], "serviceAccountName": "deployer"}});
    for object in [&dev, &held, &settings] {
        cluster.create(object);
    }
    // dev: the new tag pinned, pushed to main and applied.
    let pin = format!("{web}:1.5.0@{first}");
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": tenant}});
    let image = || cluster.get(&deployment).map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone());
    let main = || source.repo.head().unwrap().target().unwrap().to_string();
    eventually("the pin pushed and applied by the previous release", || {
        let live = cluster.get(&dev).ok_or("gone")?;
        match image() == Some(json!(pin)) && live["status"]["lastAppliedRevision"] == main().as_str() {
            true => Ok(()),
            false => Err(format!("{:?} {}", image(), live["status"])),
        }
    });
    let pins = std::fs::read_to_string(source.work().join("promotions/dev.yaml")).unwrap();
    assert!(pins.contains(&format!("{web}: 1.5.0@{first}")), "{pins}");
    // held: Ready, then every change held for approval, and a change pushed.
    eventually("held applied", || match ready(&cluster.get(&held).ok_or("gone")?) {
        (status, _) if status == "True" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    cluster.merge_patch(&held, &json!({"spec": {"approval": "Manual"}}), "weaver-upgrade-test");
    source.write("charts/notes/values.yaml", "note: second\n");
    let noted = source.commit("a second note");
    let pending = eventually("the second note awaiting approval", || {
        let live = cluster.get(&held).ok_or("gone")?;
        match (ready(&live).1.as_str(), live["status"]["pendingPlan"]["revision"] == noted.as_str()) {
            ("AwaitingApproval", true) => Ok(live["status"]["pendingPlan"].clone()),
            _ => Err(live["status"].to_string()),
        }
    });
    eventually("the settings copied", || {
        let live = cluster.get(&settings).ok_or("gone")?;
        match ready(&live).0 == "True" && live["status"]["targets"][0]["reason"] == "Synced" {
            true => Ok(()),
            false => Err(live["status"].to_string()),
        }
    });
    let before = reconciled(&cluster, &dev, "before-the-upgrade");
    assert!(is_pinned_sentence(&before["status"]["imageUpdates"]["images"][0], &web, &first), "{:#}", before["status"]);
    let pushed = main();
    assert_eq!(before["status"]["lastAppliedRevision"], pushed.as_str());
    // A steady state writes nothing: the figure the upgrade is held to.
    let steady = applied_versions(&cluster, &[&tenant, &target]);
    reconciled(&cluster, &dev, "steady");
    reconciled(&cluster, &held, "steady");
    assert_eq!(applied_versions(&cluster, &[&tenant, &target]), steady, "the previous release at rest wrote");
    let old_objects = install_objects(old, &cluster, &ns, &old_values);

    // The upgrade, by this tree's `weaver install`.
    let new_values = values(&cluster, &ports);
    let started = Instant::now();
    let upgraded =
        install(std::path::Path::new(common::WEAVER), &cluster, &ns, &new_values, &["--wait", "--timeout", "4m"]);
    assert_eq!(upgraded.code, 0, "{upgraded:?}");
    until_pods_run(&cluster, &ns, &new_image.names[0], 2);
    figure(
        &format!(
            "`weaver install --wait` from {} to {}, its Pods replaced",
            previous::VERSION,
            env!("CARGO_PKG_VERSION")
        ),
        &format!("{:.1?}", started.elapsed()),
    );
    let migrated = Instant::now();
    eventually("the stored versions migrated by the leader", || {
        let stored: Vec<Value> = CRDS.iter().map(|name| stored_versions(&cluster, name)).collect();
        match stored.iter().all(|s| *s == json!(["v1beta1"])) {
            true => Ok(()),
            false => Err(format!("{stored:?}")),
        }
    });
    figure("the upgraded Pods Ready to storedVersions [v1beta1]", &format!("{:.1?}", migrated.elapsed()));

    // The upgraded controller at work on what the previous one left: nothing rewritten.
    let dev_now = reconciled(&cluster, &at(&dev, "v1beta1"), "after-the-upgrade");
    let held_now = reconciled(&cluster, &at(&held, "v1beta1"), "after-the-upgrade");
    let after = applied_versions(&cluster, &[&tenant, &target]);
    let rewritten: Vec<&String> = steady.keys().filter(|k| after.get(*k) != steady.get(*k)).collect();
    figure("objects the upgrade rewrote", &format!("{} of {}", rewritten.len(), steady.len()));
    assert!(rewritten.is_empty(), "rewritten by the upgrade: {rewritten:?}");
    assert_eq!(after.len(), steady.len(), "{after:#?}");
    assert_eq!(main(), pushed, "a pin pushed again");
    assert_eq!(image(), Some(json!(pin)));
    assert_eq!(ready(&dev_now).0, "True", "{:#}", dev_now["status"]);
    assert_eq!(dev_now["status"]["lastAppliedRevision"], pushed.as_str());
    let newest = &dev_now["status"]["imageUpdates"]["images"][0];
    assert_eq!(newest["environment"], "dev", "{newest}");
    assert_eq!(newest["image"], web.as_str(), "{newest}");
    assert_eq!(newest["newest"], format!("1.5.0@{first}"), "{newest}");
    assert!(history_kept(&before, &dev_now), "the history: {:#} then {:#}", before["status"], dev_now["status"]);
    assert_eq!(ready(&held_now).1, "AwaitingApproval", "{:#}", held_now["status"]);
    assert_eq!(held_now["status"]["pendingPlan"]["digest"], pending["digest"]);
    let settings_now = cluster.get(&at(&settings, "v1beta1")).unwrap();
    assert_eq!(settings_now["status"]["targets"][0]["reason"], "Synced", "{:#}", settings_now["status"]);

    // No object of the previous release left: each is one of this release's, or gone.
    let new_objects = install_objects(std::path::Path::new(common::WEAVER), &cluster, &ns, &new_values);
    for key in &new_objects {
        assert!(live_of(&cluster, key).is_some(), "{key} is not installed");
    }
    for key in old_objects.difference(&new_objects) {
        assert!(live_of(&cluster, key).is_none(), "{key} of {} left behind", previous::VERSION);
    }
    let checked = common::Repo::empty().weaver_on(&cluster, &["check", "-n", &ns]);
    assert_eq!(checked.code, 0, "{checked:?}");

    // The approval the previous release held is approved with this one, and applied.
    let digest = pending["digest"].as_str().unwrap();
    let approve = ["--kubeconfig", &kubeconfig, "sync", "approve", "-n", &tenant, "held", "--digest", digest, "--yes"];
    common::Repo::empty().weaver(&approve).success();
    let notes = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "notes", "namespace": tenant}});
    eventually("the approved note applied", || match cluster.get(&notes).map(|n| n["data"]["note"].clone()) {
        Some(note) if note == "second" => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // Back to the previous release: refused by its own `weaver install`, nothing applied.
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weaver", "namespace": ns}});
    let version = |d: Value| d["metadata"]["resourceVersion"].clone();
    let before = cluster.get(&deployment).map(version);
    let downgrade = install(old, &cluster, &ns, &old_values, &["--wait", "--timeout", "1m"]);
    assert_eq!(downgrade.code, 1, "{downgrade:?}");
    let newer = format!("weaver {} runs in namespace {ns}, of a newer minor", env!("CARGO_PKG_VERSION"));
    assert!(downgrade.stderr.contains(&newer) && downgrade.stderr.contains("nothing was applied"), "{downgrade:?}");
    assert_eq!(cluster.get(&deployment).map(version), before);
    for name in CRDS {
        assert_eq!(stored_versions(&cluster, name), json!(["v1beta1"]), "{name}");
    }
}

/// Whether every entry of `before`'s history is in `after`'s (a later reconcile may add one).
fn history_kept(before: &Value, after: &Value) -> bool {
    let entries = |sync: &Value| sync["status"]["history"].as_array().cloned().unwrap_or_default();
    let after = entries(after);
    let entries = entries(before);
    !entries.is_empty()
        && entries.iter().all(|e| after.iter().any(|a| a["revision"] == e["revision"] && a["time"] == e["time"]))
}

/// Whether a `v1alpha1` image sentence says `image`'s newest is `1.5.0@digest`.
fn is_pinned_sentence(sentence: &Value, image: &str, digest: &str) -> bool {
    sentence
        .as_str()
        .is_some_and(|s| s.starts_with("dev ") && s.contains(image) && s.ends_with(&format!("1.5.0@{digest}")))
}

/// A controller that runs itself from git, bootstrapped by the previous release's `weaver
/// bootstrap`, then by this tree's: it applies the newer chart to itself.
#[test]
fn the_previous_release_bootstrapped_from_git_upgrades_itself_when_the_newer_bootstrap_pushes_its_chart() {
    let Some(e2e) = E2e::or_skip() else { return };
    let Some((Previous { binary: old, image: old_image }, new_image)) = e2e.previous_and_current() else { return };
    if let Some(why) = Sshd::missing() {
        say_skipped(&format!("the repository's git server is OpenSSH's: {why}"));
        return;
    }
    let cluster = e2e.cluster();
    let _crds = cluster.weaver_crds_alone();
    delete_weaver_crds(&cluster);
    let ns = cluster.namespace("weaver");
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let _uninstall = Uninstall { kubeconfig: kubeconfig.clone(), namespace: ns.clone() };
    let remote = crate::bootstrap::Remote::new();
    let sshd = Sshd::start_on(e2e.host_address(&cluster));
    let url = sshd.url(&remote.bare());
    let key = sshd.dir.path().join("client");
    let bootstrap = |binary: &std::path::Path| {
        let values = [
            format!("image.repository={}", common::image::WEAVER_REPOSITORY),
            format!("gitops.gitPorts={{443,22,{}}}", sshd.port),
            "gitops.approvals.enforce=false".to_string(),
            "selfSync.interval=10m".to_string(),
            format!("selector=weaver-test={}", cluster.prefix),
            format!("selfSync.labels.weaver-test={}", cluster.prefix),
        ];
        let mut args = vec!["--kubeconfig", &kubeconfig, "bootstrap", "--url", &url, "--path", "clusters/rig"];
        args.extend(["-n", &ns, "--timeout", "4m", "--private-key-file", key.to_str().unwrap()]);
        args.extend(values.iter().flat_map(|v| ["--set", v.as_str()]));
        common::binary_in(binary, common::Repo::empty().path(), &args, &[])
    };
    let first = bootstrap(old);
    assert_eq!(first.code, 0, "{first:?}");
    until_pods_run(&cluster, &ns, &old_image.names[0], 2);
    let sync = json!({"apiVersion": "weaver.example.com/v1alpha1", "kind": "EnvironmentSync", "metadata": {"name": "weaver", "namespace": ns}});
    let first_commit = remote.main();
    let before = reconciled(&cluster, &sync, "before-the-upgrade");
    assert_eq!(before["status"]["lastAppliedRevision"], first_commit.as_str(), "{:#}", before["status"]);
    for name in CRDS {
        assert_eq!(stored_versions(&cluster, name), json!(["v1alpha1"]), "{name}");
    }

    // The newer bootstrap pushes its chart; the previous controller applies it to itself.
    let started = Instant::now();
    let second = bootstrap(std::path::Path::new(common::WEAVER));
    assert_eq!(second.code, 0, "{second:?}");
    let upgraded_commit = remote.main();
    assert_ne!(upgraded_commit, first_commit, "the newer chart pushed");
    until_pods_run(&cluster, &ns, &new_image.names[0], 2);
    figure(
        &format!(
            "`weaver bootstrap` of {} over {}, to its Pods replaced",
            env!("CARGO_PKG_VERSION"),
            previous::VERSION
        ),
        &format!("{:.1?}", started.elapsed()),
    );
    eventually("the stored versions migrated by the leader", || {
        let stored: Vec<Value> = CRDS.iter().map(|name| stored_versions(&cluster, name)).collect();
        match stored.iter().all(|s| *s == json!(["v1beta1"])) {
            true => Ok(()),
            false => Err(format!("{stored:?}")),
        }
    });
    let now = reconciled(&cluster, &at(&sync, "v1beta1"), "after-the-upgrade");
    assert_eq!(ready(&now).0, "True", "{:#}", now["status"]);
    assert_eq!(now["status"]["lastAppliedRevision"], upgraded_commit.as_str(), "{:#}", now["status"]);
    assert!(history_kept(&before, &now), "the history: {:#} then {:#}", before["status"], now["status"]);
    let checked = common::Repo::empty().weaver_on(&cluster, &["check", "-n", &ns]);
    assert_eq!(checked.code, 0, "{checked:?}");

    // A third bootstrap, of the same release, changes nothing.
    let again = bootstrap(std::path::Path::new(common::WEAVER));
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(remote.main(), upgraded_commit, "nothing pushed");

    // Back to the previous release: its bootstrap refuses the newer chart, pushing nothing.
    let downgrade = bootstrap(old);
    assert_eq!(downgrade.code, 1, "{downgrade:?}");
    let newer = format!("is weaver {}'s, newer than this weaver ({})", env!("CARGO_PKG_VERSION"), previous::VERSION);
    assert!(downgrade.stderr.contains(&newer), "{downgrade:?}");
    assert_eq!(remote.main(), upgraded_commit, "nothing pushed by the refused downgrade");
    until_pods_run(&cluster, &ns, &new_image.names[0], 2);
}
