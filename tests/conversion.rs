//! The EnvironmentSync CRD's conversion webhook, served in process by the controller's own code
//! (`weaver_controllers::conversion`) on 127.0.0.1, against the fake API server or, unchanged,
//! the cluster of `WEAVER_TEST_KUBECONFIG` (whose API server must reach this machine's loopback,
//! as the rig's does): the controller makes its certificates into a Secret and the CRD's
//! caBundle, and objects written at `v1alpha1` are served at `v1beta1` and back with nothing lost.

use crate::common;

use common::cluster::TestCluster;
use common::eventually;
use serde_json::{Value, json};

const MANAGER: &str = "conversion-test";
const CRD: &str = weaver_controllers::gitops::CRD_NAME;

/// The webhook served in process until dropped.
struct Served {
    /// Held: dropping it stops the webhook.
    _runtime: tokio::runtime::Runtime,
    url: String,
}

/// A replica's webhook, which sets the CRD's conversion to `url` (the first's: as the replicas
/// behind the chart's Service), or to its own.
fn serve(cluster: &TestCluster, namespace: &str, url: Option<&str>) -> (Served, Result<(), String>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let own =
        format!("https://127.0.0.1:{}{}", listener.local_addr().unwrap().port(), weaver_controllers::conversion::PATH);
    let url = url.map_or(own, str::to_string);
    let options = weaver_controllers::conversion::Options {
        namespace: namespace.to_string(),
        secret: "weaver-conversion-tls".into(),
        hosts: vec!["127.0.0.1".into()],
        client_config: json!({"url": url}),
        crds: vec![CRD.into()],
        limits: Default::default(),
    };
    // A client of this runtime: the test cluster's own runs only while the test waits on it.
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let client = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let started =
        runtime.block_on(weaver_controllers::conversion::serve(client, options, listener, std::future::pending()));
    let started = started.map(|serving| {
        runtime.spawn(serving);
    });
    (Served { _runtime: runtime, url }, started)
}

/// The CRD without its webhook again, for the tests that follow.
fn unconvert(cluster: &TestCluster) {
    let crd =
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD}});
    cluster.merge_patch(&crd, &json!({"spec": {"conversion": {"strategy": "None", "webhook": null}}}), MANAGER);
}

fn crd_object(cluster: &TestCluster) -> Value {
    let crd =
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD}});
    cluster.get(&crd).expect("the CRD")
}

/// A status as the 0.1.0 controller wrote it, at v1alpha1.
fn alpha_status() -> Value {
    json!({
        "observedGeneration": 1,
        "environments": [{"name": "dev", "result": "Applied", "created": 1, "configured": 0, "unchanged": 2, "pruned": 0, "failed": 0}],
        "history": [{"revision": "0123456789ab", "time": "2026-11-28T10:00:00Z", "result": "ReconciliationSucceeded", "durationSeconds": 1.5}],
        "imageUpdates": {"lastAttemptTime": "2026-11-28T10:00:00Z", "revision": "0123456789ab", "branch": "main", "requests": 2,
            "images": ["dev registry.example/web 1.5.0@sha256:00ff", "dev registry.example/api none allowed"],
            "changes": ["dev: web web 1.4.2 -> 1.5.0@sha256:00ff"]},
    })
}

#[test]
fn objects_written_at_v1alpha1_are_served_at_v1beta1_and_back_by_the_controllers_webhook() {
    let cluster = TestCluster::start();
    let _crds = cluster.weaver_crds_alone();
    let ns = cluster.namespace("conversion");
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let (served, started) = serve(&cluster, &ns, None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        started.expect("the webhook starts, its certificates made");
        // The controller made its certificates, and set the CRD's conversion to its webhook,
        // trusting their authority.
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weaver-conversion-tls", "namespace": ns}});
        let secret = cluster.get(&secret).expect("the certificates' Secret");
        assert_eq!(secret["type"], "kubernetes.io/tls");
        let ca = secret["data"]["ca.crt"].as_str().expect("ca.crt").to_string();
        eventually("the CRD's caBundle", || {
            let bundle = crd_object(&cluster)["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"].clone();
            (bundle == json!(ca)).then_some(()).ok_or(format!("{bundle}"))
        });
        assert_eq!(crd_object(&cluster)["spec"]["conversion"]["webhook"]["clientConfig"]["url"], json!(served.url));

        let alpha = json!({
            "apiVersion": "weaver.example.com/v1alpha1", "kind": "EnvironmentSync",
            "metadata": {"name": "shop", "namespace": ns},
            "spec": {"source": {"url": "https://git.example/shop.git", "ref": {"branch": "main"}}, "serviceAccountName": "deployer"},
        });
        // The API server may take a moment to trust the new bundle.
        eventually("a create at v1alpha1", || match cluster.dry_run_create(&alpha) {
            Ok(_) => Ok(()),
            Err(status) => Err(status.message.clone()),
        });
        cluster.create(&alpha);
        cluster.patch_status(&alpha, &alpha_status());

        let mut beta_ref = alpha.clone();
        beta_ref["apiVersion"] = json!("weaver.example.com/v1beta1");
        let beta = cluster.get(&beta_ref).expect("served at v1beta1");
        assert_eq!(beta["apiVersion"], "weaver.example.com/v1beta1");
        assert_eq!(
            beta["status"]["imageUpdates"]["images"],
            json!([{"environment": "dev", "image": "registry.example/web", "newest": "1.5.0@sha256:00ff"},
                {"environment": "dev", "image": "registry.example/api"}])
        );
        assert_eq!(
            beta["status"]["imageUpdates"]["changes"],
            json!([{"environment": "dev", "release": "web", "image": "web", "from": "1.4.2", "to": "1.5.0@sha256:00ff"}])
        );
        assert_eq!(beta["spec"], alpha["spec"], "the spec is the same at both versions");
        let typed: weaver_controllers::gitops::EnvironmentSync =
            serde_json::from_value(beta.clone()).expect("the controller reads it");
        assert!(typed.status.unwrap().environments[0].result.is_applied());

        let back = cluster.get(&alpha).expect("served at v1alpha1");
        assert_eq!(back["status"], alpha_status(), "nothing lost on the way back");

        // Written at v1beta1, read at v1alpha1: the sentences 0.1.0's clients read.
        let mut status = beta["status"].clone();
        status["imageUpdates"]["images"] = json!([{"environment": "prod", "image": "registry.example/web"}]);
        cluster.patch_status(&beta_ref, &json!({"imageUpdates": status["imageUpdates"]}));
        let back = cluster.get(&alpha).unwrap();
        assert_eq!(back["status"]["imageUpdates"]["images"], json!(["prod registry.example/web none allowed"]));

        // Verification set at v1beta1 has no place in v1alpha1: an update there keeps it.
        let verify = json!({"mode": "all", "secretRef": {"name": "signers"}});
        cluster.merge_patch(&beta_ref, &json!({"spec": {"source": {"verify": verify}}}), MANAGER);
        let old = cluster.get(&alpha).unwrap();
        assert!(old["spec"]["source"].get("verify").is_none(), "{:#}", old["spec"]);
        let kept = old["metadata"]["annotations"]["weaver.example.com/v1beta1-fields"].as_str().expect("kept");
        assert_eq!(serde_json::from_str::<Value>(kept).unwrap(), json!({"/spec/source/verify": verify}));
        cluster.merge_patch(&alpha, &json!({"spec": {"interval": "1m"}}), MANAGER);
        let beta = cluster.get(&beta_ref).unwrap();
        assert_eq!((&beta["spec"]["source"]["verify"], &beta["spec"]["interval"]), (&verify, &json!("1m")));
        let annotations = beta["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
        assert!(!annotations.contains_key("weaver.example.com/v1beta1-fields"), "{annotations:?}");

        // A second replica serves the certificates the first made: the Secret is not written again.
        let version = cluster.get(&secret).unwrap()["metadata"]["resourceVersion"].clone();
        let (second, started) = serve(&cluster, &ns, Some(&served.url));
        started.expect("a second replica starts");
        assert_eq!(cluster.get(&secret).unwrap()["metadata"]["resourceVersion"], version);
        drop(second);
        cluster.delete(&alpha);
    }));
    unconvert(&cluster);
    drop(served);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_webhook_answer_a_review_it_cannot_read_is_a_failure_not_a_crash() {
    // What a hostile peer may send the port: never a panic, an answer that names the problem.
    let review = weaver_controllers::conversion::review(
        br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}"#,
    );
    let review = serde_json::to_value(review).unwrap();
    assert_eq!(review["response"]["result"]["status"], "Failure", "{review}");
    assert!(review["response"]["result"]["message"].as_str().unwrap().contains("holds no request"), "{review}");
}

/// A CRD of this test's own, at `versions` (the first stored), with the same schema at each.
fn gadget_crd(group: &str, versions: &[&str]) -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": versions.iter().enumerate().map(|(i, v)| json!({"name": v, "served": true, "storage": i == 0, "schema": schema})).collect::<Vec<_>>()},
    })
}

#[test]
fn after_an_upgrade_every_object_is_stored_again_and_stored_versions_narrowed() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("stored");
    let group = format!("{}.migrate.example.com", cluster.prefix.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    let name = format!("gadgets.{group}");
    let old = gadget_crd(&group, &["v1alpha1"]);
    cluster.apply_shared(&old, MANAGER);
    cluster.delete_later(&old);
    for i in 0..3 {
        cluster.create(&json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "Gadget",
            "metadata": {"name": format!("g{i}"), "namespace": ns}, "spec": {"size": i}}));
    }
    // The upgrade: v1beta1 stored from now on, v1alpha1 still served.
    cluster.apply_shared(&gadget_crd(&group, &["v1beta1", "v1alpha1"]), MANAGER);
    let stored = |cluster: &TestCluster| {
        let crd = cluster.get(&json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name}}));
        crd.unwrap()["status"]["storedVersions"].clone()
    };
    assert_eq!(stored(&cluster), json!(["v1alpha1", "v1beta1"]), "both stored, as the API server records it");

    // Dropping v1alpha1 now would lose what is stored at it: the API server refuses.
    let dropped = gadget_crd(&group, &["v1beta1"]);
    let refused = cluster.dry_run_apply(&dropped, MANAGER).expect_err("v1alpha1 is still stored");
    assert!(refused.message.contains("must appear in spec.versions"), "{}", refused.message);
    let planned = cluster
        .block_on(weaver_cluster::migrate_stored_versions(&cluster.client(), &name, true, &|_| false))
        .unwrap()
        .unwrap();
    assert_eq!((planned.rewritten, planned.changed()), (3, true));
    assert_eq!(stored(&cluster), json!(["v1alpha1", "v1beta1"]), "a dry run writes nothing");
    let done = cluster
        .block_on(weaver_cluster::migrate_stored_versions(&cluster.client(), &name, false, &|_| false))
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.rewritten, done.storage.as_str(), done.before.clone()),
        (3, "v1beta1", vec!["v1alpha1".to_string(), "v1beta1".into()])
    );
    assert_eq!(stored(&cluster), json!(["v1beta1"]));
    let again = cluster
        .block_on(weaver_cluster::migrate_stored_versions(&cluster.client(), &name, false, &|_| false))
        .unwrap()
        .unwrap();
    assert!(!again.changed() && again.rewritten == 0, "nothing left: {again:?}");

    // v1alpha1 can go now, and every object is still there, unchanged.
    cluster.apply_shared(&gadget_crd(&group, &["v1beta1"]), MANAGER);
    let left = cluster.list(&format!("{group}/v1beta1"), "Gadget", "gadgets", &ns);
    let sizes: Vec<&Value> = left.iter().map(|g| &g["spec"]["size"]).collect();
    assert_eq!(sizes, [&json!(0), &json!(1), &json!(2)]);
    let missing = cluster.block_on(weaver_cluster::migrate_stored_versions(
        &cluster.client(),
        "gadgets.absent.example.com",
        false,
        &|_| false,
    ));
    assert_eq!(missing.unwrap(), None, "a CRD not installed is left out");
}

#[test]
fn migrate_f_rewrites_a_repositorys_manifests_to_v1beta1_once() {
    let repo = common::Repo::empty();
    let alpha = "apiVersion: weaver.example.com/v1alpha1\nkind: EnvironmentSync\nmetadata:\n  name: shop # the shop\n";
    repo.write("clusters/prod/sync.yaml", alpha);
    repo.write("clusters/prod/other.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
    let clusters = repo.path().join("clusters");
    let dir = clusters.to_str().unwrap();
    let run = repo.weaver(&["migrate", "-f", dir, "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("prod/sync.yaml: 1 document(s) to v1beta1"), "{}", run.stdout);
    assert!(run.stdout.starts_with("would rewrite "), "{}", run.stdout);
    let read = |path: &str| std::fs::read_to_string(repo.path().join(path)).unwrap();
    assert_eq!(read("clusters/prod/sync.yaml"), alpha);
    let run = repo.weaver(&["migrate", "-f", dir]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(read("clusters/prod/sync.yaml"), alpha.replace("v1alpha1", "v1beta1"));
    let run = repo.weaver(&["migrate", "-f", dir]);
    assert_eq!(
        (run.code, run.stdout.clone()),
        (0, format!("no v1alpha1 EnvironmentSync or ConfigMapSync under {dir}\n"))
    );
    let missing = repo.path().join("missing");
    let run = repo.weaver(&["migrate", "-f", missing.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains(&format!("cannot read directory {}", missing.display())), "{}", run.stderr);
}

#[test]
fn weaver_migrate_stores_an_upgraded_clusters_objects_at_v1beta1_and_check_says_when_it_is_needed() {
    let cluster = TestCluster::start();
    if !cluster.is_fake() {
        common::skip::say_skipped(
            "on a real cluster (WEAVER_TEST_KUBECONFIG), `weaver migrate` would write every other test's \
             EnvironmentSyncs and ConfigMapSyncs again: it needs the fake API server",
        );
        return;
    }
    let ns = cluster.namespace("upgraded");
    // 0.1.0's CRD (v1alpha1 alone, stored), one EnvironmentSync written at it, then this one's.
    let mut old = weaver_controllers::gitops::crd();
    let mut alpha = old["spec"]["versions"][1].clone();
    assert_eq!(alpha["name"], "v1alpha1");
    alpha["storage"] = json!(true);
    alpha.as_object_mut().unwrap().retain(|key, _| !key.starts_with("deprecat"));
    old["spec"]["versions"] = json!([alpha]);
    cluster.apply_shared(&old, MANAGER);
    let shop = json!({
        "apiVersion": "weaver.example.com/v1alpha1", "kind": "EnvironmentSync",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {"source": {"url": "https://git.example/shop.git", "ref": {"branch": "main"}}},
    });
    cluster.create(&shop);
    cluster.patch_status(&shop, &alpha_status());
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);

    let repo = common::Repo::empty();
    let check = |cluster: &TestCluster| {
        let run = repo.weaver_on(cluster, &["check", "-n", &ns]);
        let line = run.stdout.lines().skip_while(|l| !l.contains("crd/environmentsyncs.weaver.example.com:"));
        line.take(2).collect::<Vec<_>>().join("\n")
    };
    let before = check(&cluster);
    assert!(
        before.starts_with('✗') && before.contains("established; objects stored at v1alpha1 as well as v1beta1"),
        "{before}"
    );
    assert!(before.contains("run `weaver migrate`"), "{before}");

    // No controller has set the CRD's conversion yet: the API server serves the object at
    // v1beta1 with v1alpha1's sentences, which a migration would store so. Refused, naming it.
    let crd_stored = || crd_object(&cluster)["status"]["storedVersions"].clone();
    let early = repo.weaver_on(&cluster, &["migrate"]);
    assert_eq!(early.code, 1, "{early:?}");
    assert!(
        early.stderr.contains(&format!("EnvironmentSync {ns}/shop is served at v1beta1 unconverted"))
            && early.stderr.contains("storedVersions left as they are"),
        "{early:?}"
    );
    assert_eq!(crd_stored(), json!(["v1alpha1", "v1beta1"]));
    let (_served, started) = serve(&cluster, &ns, None);
    started.expect("the webhook starts");
    eventually("the CRD's conversion set", || {
        let strategy = crd_object(&cluster)["spec"]["conversion"]["strategy"].clone();
        (strategy == "Webhook").then_some(()).ok_or(format!("{strategy}"))
    });

    let planned = repo.weaver_on(&cluster, &["migrate", "--dry-run"]);
    assert_eq!(planned.code, 2, "{planned:?}");
    assert!(
        planned.stdout.contains(
            "would store 1 object(s) of environmentsyncs.weaver.example.com at v1beta1 (storedVersions were v1alpha1, v1beta1)"
        ),
        "{planned:?}"
    );
    let done = repo.weaver_on(&cluster, &["migrate"]);
    assert_eq!(done.code, 2, "{done:?}");
    assert!(
        done.stdout.starts_with("stored 1 object(s) of environmentsyncs.weaver.example.com at v1beta1"),
        "{done:?}"
    );
    let again = repo.weaver_on(&cluster, &["migrate"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("environmentsyncs.weaver.example.com: every object is stored at v1beta1"),
        "{again:?}"
    );
    let after = check(&cluster);
    assert!(after.starts_with('✔') && after.contains("stored versions v1beta1"), "{after}");
    // Stored at v1beta1 as v1beta1 says it: objects, not sentences.
    let stored = cluster
        .get(&json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "shop", "namespace": ns}}))
        .unwrap();
    assert!(!weaver_api::v1alpha1::holds_older_fields(&stored), "{:#}", stored["status"]);
    assert_eq!(
        stored["status"]["imageUpdates"]["images"][0]["image"], "registry.example/web",
        "{:#}",
        stored["status"]
    );
    unconvert(&cluster);
}
