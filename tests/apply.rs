//! `weaver apply`, `history` and `rollback` against a cluster: the in-process fake, or a real
//! cluster with WEAVER_TEST_KUBECONFIG. Request-count checks only run on the fake.

use crate::common;

use common::Repo;
use common::cluster::TestCluster;
use common::demo::Demo;
use serde_json::{Value, json};

impl Demo {
    /// `weaver apply -o json` (plus `extra`), which must succeed.
    fn apply(&self, extra: &[&str]) -> Value {
        let mut args = vec!["apply", "--env", "dev", "-o", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(self.weaver(&args).success()).expect("apply -o json prints JSON")
    }

    fn history(&self, release: &str) -> Value {
        let out = self.weaver(&["history", "--env", "dev", release, "-o", "json"]);
        serde_json::from_str(out.success()).expect("history -o json prints JSON")
    }

    fn live(&self, kind: &str, name: &str) -> Option<Value> {
        let api_version = if matches!(kind, "Deployment" | "StatefulSet") { "apps/v1" } else { "v1" };
        self.cluster
            .get(&json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": self.ns}}))
    }

    /// The server-side apply requests the fake received for objects (not records), cleared.
    fn object_applies(&self) -> Option<Vec<String>> {
        let fake = self.cluster.fake("counting requests")?;
        let applies = fake
            .requests()
            .into_iter()
            .filter(|r| {
                r.method == "PATCH"
                    && r.content_type.as_deref().is_some_and(|t| t.contains("apply-patch"))
                    && !r.path.contains("/secrets/weaver.")
            })
            .map(|r| r.path)
            .collect();
        fake.clear_requests();
        Some(applies)
    }
}

/// `(result, kind, name)` of every object in an apply report that is not unchanged.
fn acted(report: &Value) -> Vec<(String, String, String)> {
    let mut acted: Vec<_> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .filter(|o| o["result"] != "unchanged")
        .map(|o| {
            (
                o["result"].as_str().unwrap().into(),
                o["kind"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    acted.sort();
    acted
}

fn release<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["releases"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

fn revisions(history: &Value) -> Vec<(u64, String)> {
    history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].as_u64().unwrap(), r["status"].as_str().unwrap().to_string()))
        .collect()
}

fn triple(result: &str, kind: &str, name: &str) -> (String, String, String) {
    (result.into(), kind.into(), name.into())
}

/// The record Secrets of a release revision, decoded.
fn record(demo: &Demo, release: &str, revision: u64) -> weaver_plan::release::record::Record {
    let secrets = demo.cluster.list("v1", "Secret", "secrets", &demo.ns);
    let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
    records
        .into_iter()
        .find(|r| r.release == release && u64::from(r.revision) == revision)
        .unwrap_or_else(|| panic!("no record {release} v{revision}"))
}

#[test]
fn demo_lifecycle_create_noop_change_prune_uninstall_and_rollback() {
    let demo = Demo::with_new_namespace();

    // 1. An empty cluster: the namespace and everything are created, and recorded.
    let first = demo.apply(&[]);
    assert_eq!(
        first["summary"],
        json!({"created": 7, "configured": 0, "unchanged": 0, "pruned": 0, "kept": 0, "failed": 0, "notApplied": 0,
            "hooksSucceeded": 0, "hooksFailed": 0, "hooksNotRun": 0})
    );
    assert_eq!(first["failed"], false);
    for name in ["web", "redis"] {
        assert_eq!(release(&first, name)["revision"], 1);
        assert_eq!(release(&first, name)["status"], "deployed");
        assert_eq!(revisions(&demo.history(name)), vec![(1, "deployed".to_string())]);
    }
    let recorded = record(&demo, "web", 1);
    assert_eq!(recorded.objects.len(), 4);
    assert!(recorded.objects.iter().all(|o| o.applied));
    assert!(demo.live("Deployment", "web").is_some());
    let drift = demo.weaver(&["drift", "--env", "dev"]);
    assert_eq!(drift.code, 0, "drift right after an apply:\n{}{}", drift.stdout, drift.stderr);
    demo.object_applies();

    // 2. Again: nothing is sent, and no revision is added.
    let again = demo.apply(&[]);
    assert_eq!(acted(&again), vec![]);
    assert_eq!(again["summary"]["unchanged"], 7);
    assert_eq!(release(&again, "web")["revision"], Value::Null);
    if let Some(applies) = demo.object_applies() {
        assert_eq!(applies, Vec::<String>::new(), "a no-op apply sent server-side applies");
    }
    assert_eq!(revisions(&demo.history("web")), vec![(1, "deployed".to_string())]);

    // 3. One value changes: exactly that object is patched.
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    let changed = demo.apply(&[]);
    assert_eq!(acted(&changed), vec![triple("configured", "Deployment", "web")]);
    if let Some(applies) = demo.object_applies() {
        assert_eq!(applies.len(), 1, "{applies:?}");
        assert!(applies[0].ends_with("/deployments/web"), "{applies:?}");
    }
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 2);
    assert_eq!(revisions(&demo.history("web")), vec![(1, "superseded".into()), (2, "deployed".into())]);

    // 4. A template is removed: its object is pruned.
    demo.repo.remove("charts/web-app/templates/service.yaml");
    let pruned = demo.apply(&[]);
    assert_eq!(acted(&pruned), vec![triple("pruned", "Service", "web")]);
    assert!(demo.live("Service", "web").is_none());
    assert_eq!(record(&demo, "web", 3).objects.len(), 3);

    // 5. `installed: false`: everything the release had is pruned.
    demo.edit("environments/dev.yaml", "releases:\n", "releases:\n  - name: redis\n    installed: false\n");
    let uninstalled = demo.apply(&[]);
    assert_eq!(
        acted(&uninstalled),
        vec![
            triple("pruned", "ConfigMap", "redis-config"),
            triple("pruned", "Service", "redis"),
            triple("pruned", "StatefulSet", "redis")
        ]
    );
    assert!(demo.live("StatefulSet", "redis").is_none());
    assert_eq!(release(&uninstalled, "redis")["revision"], 2);
    assert!(record(&demo, "redis", 2).objects.is_empty());

    // 6. Roll web back to revision 1: its objects and its record are revision 1's again.
    let out = demo.weaver(&["rollback", "--env", "dev", "web", "1", "-o", "json"]);
    let rollback: Value = serde_json::from_str(out.success()).unwrap();
    assert_eq!(acted(&rollback), vec![triple("configured", "Deployment", "web"), triple("created", "Service", "web")]);
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 1);
    assert!(demo.live("Service", "web").is_some());
    let rolled = record(&demo, "web", 4);
    assert_eq!(rolled.rollback_of, Some(1));
    assert_eq!(rolled.manifests, record(&demo, "web", 1).manifests);
    let history = demo.history("web");
    assert_eq!(
        revisions(&history),
        vec![(1, "superseded".into()), (2, "superseded".into()), (3, "superseded".into()), (4, "deployed".into())]
    );
    assert_eq!(history["revisions"][3]["rollbackOf"], 1);
    let text = demo.weaver(&["history", "--env", "dev", "web"]);
    assert!(text.success().lines().last().unwrap().contains("rollback to 1"), "{}", text.stdout);

    // The rendered state is what rollback left, apart from what was rolled back.
    let diff = demo.weaver(&["diff", "--env", "dev", "-o", "json"]);
    let plan: Value = serde_json::from_str(diff.success()).unwrap();
    assert_eq!(plan["summary"], json!({"create": 0, "update": 1, "delete": 1, "unchanged": 2}), "{plan:#}");
}

#[test]
fn dry_run_changes_nothing_and_records_nothing() {
    let demo = Demo::with_new_namespace();
    if let Some(fake) = demo.cluster.fake("counting requests") {
        fake.clear_requests();
    }
    let report = demo.apply(&["--dry-run"]);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["summary"]["created"], 7);
    assert!(report["releases"].as_array().unwrap().iter().all(|r| r["revision"].is_null()));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": demo.ns}});
    assert!(demo.cluster.get(&namespace).is_none(), "a dry run created the namespace");
    if let Some(fake) = demo.cluster.fake("checking that every write was a dry run") {
        let writes: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.dry_run)
            .map(|r| (r.method, r.path))
            .collect();
        assert_eq!(writes, vec![], "a dry run wrote");
    }
    let text = demo.weaver(&["apply", "--env", "dev", "--dry-run"]);
    assert!(text.success().contains("(server dry run)"), "{}", text.stdout);
}

#[test]
fn a_conflict_names_the_other_manager_and_force_conflicts_takes_the_field() {
    let demo = Demo::new();
    demo.apply(&[]);
    let deployment = demo.live("Deployment", "web").unwrap();
    // Another manager takes replicas with an apply of its own; weaver then wants a new value.
    demo.cluster.apply(
        &[json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}, "spec": {"replicas": 5}})],
        "autoscaler",
    );
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    let out = demo.weaver(&["apply", "--env", "dev"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("failed apps/v1 Deployment"), "{}", out.stdout);
    assert!(out.stdout.contains("autoscaler") && out.stdout.contains(".spec.replicas"), "{}", out.stdout);
    assert!(out.stdout.contains("--force-conflicts"), "{}", out.stdout);
    assert!(out.stderr.contains("failed revision 2"), "{}", out.stderr);
    let failed = record(&demo, "web", 2);
    assert_eq!(failed.status, weaver_plan::release::record::Status::Failed);
    let deployment_applied = failed.objects.iter().find(|o| o.kind == "Deployment").unwrap().applied;
    assert!(!deployment_applied);
    assert!(failed.objects.iter().filter(|o| o.kind != "Deployment").all(|o| o.applied));
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 5);
    drop(deployment);

    let forced = demo.apply(&["--force-conflicts"]);
    assert_eq!(acted(&forced), vec![triple("configured", "Deployment", "web")]);
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 2);
    assert_eq!(
        revisions(&demo.history("web")),
        vec![(1, "superseded".into()), (2, "failed".into()), (3, "deployed".into())]
    );
}

#[test]
fn a_missing_namespace_is_not_created_when_the_release_opts_out() {
    let demo = Demo::with_new_namespace();
    demo.edit("environments/dev.yaml", "releases:\n", "releases:\n  - name: redis\n    createNamespace: false\n");
    let out = demo.weaver(&["apply", "--env", "dev", "-r", "redis"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains(&format!("namespace {} does not exist", demo.ns)), "{}", out.stdout);
    assert!(out.stdout.contains("createNamespace: false"), "{}", out.stdout);
    assert!(out.stderr.contains("redis"), "{}", out.stderr);
}

#[test]
fn a_crd_and_its_custom_resource_apply_in_one_run() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("crd");
    let group = format!("{}.example.com", cluster.prefix);
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n  - name: widgets\n    chart: widgets\n"
        ),
    );
    repo.write("charts/widgets/chart.yaml", "name: widgets\nversion: 0.1.0\n");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}
            }}}]
        }
    });
    repo.write("charts/widgets/crds/widget.yaml", &serde_json::to_string(&crd).unwrap());
    repo.write(
        "charts/widgets/templates/widget.yaml",
        &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: small\nspec:\n  size: 3\n"),
    );
    cluster.delete_later(&crd);
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    // A dry run reports the custom resource of a CRD it does not create, without validating it.
    let dry = repo.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "--dry-run", "-o", "json"]);
    let dry: Value = serde_json::from_str(dry.success()).unwrap();
    assert_eq!(dry["summary"]["created"], 2, "{dry:#}");
    let widget = &release(&dry, "widgets")["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Widget")
        .unwrap()
        .clone();
    assert!(widget["message"].as_str().unwrap().contains("its CRD is created by this apply"), "{widget}");
    assert!(cluster.get(&crd).is_none(), "a dry run created the CRD");
    let out = repo.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "-o", "json"]);
    let report: Value = serde_json::from_str(out.success()).unwrap();
    assert_eq!(
        acted(&report),
        vec![
            triple("created", "CustomResourceDefinition", &format!("widgets.{group}")),
            triple("created", "Widget", "small")
        ]
    );
    let widget = cluster.get(
        &json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "small", "namespace": ns}}),
    );
    assert_eq!(widget.unwrap()["spec"]["size"], 3);
    // The second run knows the kind from discovery and has nothing to do.
    let again: Value = serde_json::from_str(
        repo.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "-o", "json"]).success(),
    )
    .unwrap();
    assert_eq!(acted(&again), vec![]);
}

/// Issue 53.3: custom resources whose CRD the environment does not render (installed by another
/// environment, as cert-manager's ClusterIssuer or Gateway API's GatewayClass often are) keep
/// their namespace as written offline, as helm and `kubectl kustomize` do, where weaver gave
/// every unknown kind the release namespace; with a cluster, discovery decides the scope.
#[test]
fn custom_resources_of_crds_not_rendered_take_their_scope_from_discovery() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("scopes");
    let group = format!("{}.example.com", cluster.prefix);
    let repo = Repo::minimal();
    let crd = |kind: &str, plural: &str, scope: &str| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "scope": scope,
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true
                }}}]
            }
        })
    };
    let (issuers, widgets) = (crd("Issuer", "issuers", "Cluster"), crd("Widget", "widgets", "Namespaced"));
    repo.write(
        "charts/crds/chart.yaml",
        "name: crds
version: 0.1.0
",
    )
    .write("charts/crds/templates/issuers.yaml", &serde_json::to_string(&issuers).unwrap())
    .write("charts/crds/templates/widgets.yaml", &serde_json::to_string(&widgets).unwrap())
    .write(
        "charts/uses/chart.yaml",
        "name: uses
version: 0.1.0
",
    )
    .write(
        "charts/uses/templates/objects.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Issuer\nmetadata:\n  name: letsencrypt\nspec:\n  acme: {{}}\n---\n\
                 apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: small\nspec:\n  size: 3\n"
        ),
    );
    let lock = format!("cluster:\n  lockNamespace: {ns}\n");
    repo.write(
        "environments/crds.yaml",
        &format!("namespace: {ns}\n{lock}releases:\n  - name: crds\n    chart: crds\n"),
    )
    .write("environments/dev.yaml", &format!("namespace: {ns}\n{lock}releases:\n  - name: uses\n    chart: uses\n"));
    cluster.delete_later(&issuers);
    cluster.delete_later(&widgets);
    // Offline, neither kind is known: both keep the namespace they were written with (none).
    let rendered = repo.weaver(&["render", "--env", "dev", "--validate=ignore"]).success().to_string();
    let documents: Vec<Value> = rendered
        .split("\n---\n")
        .filter(|d| d.contains("kind: "))
        .map(|d| serde_saphyr::from_str(d.trim_start_matches("---\n")).unwrap())
        .collect();
    assert_eq!(documents.len(), 2, "{rendered}");
    for document in &documents {
        assert_eq!(document["metadata"].get("namespace"), None, "{rendered}");
    }
    // A live file stands for discovery: the cluster-scoped Issuer it holds is the rendered one.
    let live = repo.path().join("live.yaml");
    let mut issuer = documents.iter().find(|d| d["kind"] == "Issuer").unwrap().clone();
    issuer["metadata"]["uid"] = json!("1");
    std::fs::write(&live, serde_json::to_string(&issuer).unwrap()).unwrap();
    let run = repo.weaver(&[
        "diff",
        "--env",
        "dev",
        "--live-from",
        live.to_str().unwrap(),
        "-o",
        "json",
        "--validate=ignore",
    ]);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.stderr));
    let actions: Vec<(String, String)> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap().to_string(), o["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(actions.contains(&("Issuer".to_string(), "unchanged".to_string())), "{plan:#}");

    // With a cluster: the CRDs installed by another environment, discovery scopes both kinds.
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let weaver = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        repo.weaver(&all)
    };
    weaver(&["apply", "--env", "crds"]).success();
    let report: Value = serde_json::from_str(weaver(&["apply", "--env", "dev", "-o", "json"]).success()).unwrap();
    assert_eq!(acted(&report), vec![triple("created", "Issuer", "letsencrypt"), triple("created", "Widget", "small")]);
    let issuer = cluster
        .get(&json!({"apiVersion": format!("{group}/v1"), "kind": "Issuer", "metadata": {"name": "letsencrypt"}}));
    assert!(issuer.is_some_and(|i| i["metadata"].get("namespace").is_none()));
    let widget = cluster.get(
        &json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "small", "namespace": ns}}),
    );
    assert_eq!(widget.unwrap()["spec"]["size"], 3);
    // Planned against the live objects by the same keys: nothing to do, no drift.
    let again: Value = serde_json::from_str(weaver(&["apply", "--env", "dev", "-o", "json"]).success()).unwrap();
    assert_eq!(acted(&again), vec![]);
    assert_eq!(weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0);
    assert_eq!(weaver(&["drift", "--env", "dev"]).code, 0);
}

#[test]
fn a_large_release_is_recorded_across_chunks_and_reads_back_identically() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("big");
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        &format!("namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n  - name: big\n    chart: big\n"),
    );
    repo.write("charts/big/chart.yaml", "name: big\nversion: 0.1.0\n");
    // Four ConfigMaps of 800 KB of incompressible text: over 3 MiB, which gzip cannot shrink
    // below one chunk.
    let mut state = 0x9e37_79b9_u64;
    for index in 0..4 {
        let blob: String = (0..800_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect();
        repo.write(
            &format!("charts/big/templates/blob{index}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob{index}\ndata:\n  blob: {blob}\n"),
        );
    }
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let out = repo.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "-o", "json"]);
    let report: Value = serde_json::from_str(out.success()).unwrap();
    assert_eq!(report["summary"]["created"], 4);
    let secrets = cluster.list("v1", "Secret", "secrets", &ns);
    let chunks: Vec<&str> = secrets
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("weaver.big.v1"))
        .collect();
    assert!(chunks.len() >= 3, "{chunks:?}");
    let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
    assert_eq!(records.len(), 1);
    let rendered = repo.weaver(&["render", "--env", "dev"]);
    let rendered = weaver_yaml::documents(std::path::Path::new("render"), rendered.success()).unwrap();
    let mut recorded = records[0].manifests.clone();
    let mut expected: Vec<Value> = rendered
        .into_iter()
        .map(|mut o| {
            o["metadata"]["namespace"] = json!(ns);
            o
        })
        .collect();
    let name = |o: &Value| o["metadata"]["name"].as_str().unwrap().to_string();
    recorded.sort_by_key(name);
    expected.sort_by_key(name);
    assert_eq!(recorded, expected);
}

#[test]
fn history_and_rollback_say_what_is_wrong() {
    let demo = Demo::new();
    let err = demo.weaver(&["history", "--env", "dev", "nope"]);
    assert!(err.failure().contains("environment `dev` has no release `nope`"), "{}", err.stderr);
    let empty = demo.weaver(&["history", "--env", "dev", "web"]);
    assert!(empty.success().contains("has no recorded revision"), "{}", empty.stdout);
    demo.apply(&[]);
    let err = demo.weaver(&["rollback", "--env", "dev", "web"]);
    assert!(err.failure().contains("no earlier deployed revision"), "{}", err.stderr);
    let err = demo.weaver(&["rollback", "--env", "dev", "web", "7"]);
    assert!(err.failure().contains("has no recorded revision 7"), "{}", err.stderr);
    assert!(err.stderr.contains("its revisions: 1"), "{}", err.stderr);
}

#[test]
fn a_reordered_env_is_sent_and_a_second_apply_sends_nothing() {
    let demo = Demo::new();
    demo.set_web_env(&["A", "B", "C"]);
    demo.apply(&[]);
    demo.set_web_env(&["C", "A", "B"]);
    demo.object_applies();
    let reordered = demo.apply(&[]);
    assert_eq!(acted(&reordered), vec![triple("configured", "Deployment", "web")]);
    if let Some(applies) = demo.object_applies() {
        assert_eq!(applies.len(), 1, "{applies:?}");
        assert!(applies[0].ends_with("/deployments/web"), "{applies:?}");
    }
    assert_eq!(demo.live_web_env(), ["C", "A", "B"]);
    let again = demo.apply(&[]);
    assert_eq!(acted(&again), vec![], "a perpetual diff");
    if let Some(applies) = demo.object_applies() {
        assert_eq!(applies, Vec::<String>::new(), "a no-op apply sent server-side applies");
    }
}

#[test]
fn an_env_reordered_by_hand_is_drift_until_an_apply_restores_the_order() {
    let demo = Demo::new();
    demo.set_web_env(&["A", "B", "C"]);
    demo.apply(&[]);
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}});
    let mut containers = demo.cluster.get(&web).unwrap()["spec"]["template"]["spec"]["containers"].clone();
    let env = containers[0]["env"].as_array_mut().unwrap();
    env.rotate_right(1);
    demo.cluster.merge_patch(
        &web,
        &json!({"spec": {"template": {"spec": {"containers": containers}}}}),
        "kubectl-edit",
    );
    assert_eq!(demo.live_web_env(), ["C", "A", "B"]);

    let drift = demo.weaver(&["drift", "--env", "dev", "-o", "json"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    let report: Value = serde_json::from_str(&drift.stdout).unwrap();
    let changes: Vec<&Value> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .flat_map(|o| o["changes"].as_array().into_iter().flatten())
        .collect();
    let names = |names: &[&str]| -> Value { names.iter().map(|n| json!({"name": n})).collect() };
    assert_eq!(
        changes,
        vec![&json!({"path": "spec.template.spec.containers[name=web].env", "op": "replace",
            "recorded": names(&["A", "B", "C"]), "live": names(&["C", "A", "B"]), "redacted": false})]
    );
    let repaired = demo.apply(&[]);
    assert_eq!(acted(&repaired), vec![triple("configured", "Deployment", "web")]);
    assert_eq!(demo.live_web_env(), ["A", "B", "C"]);
    assert_eq!(demo.weaver(&["drift", "--env", "dev"]).code, 0);
}

#[test]
fn drift_found_out_of_band_is_gone_after_an_apply() {
    let demo = Demo::new();
    demo.apply(&[]);
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}});
    demo.cluster.merge_patch(&deployment, &json!({"spec": {"replicas": 4}}), "kubectl-edit");
    let drift = demo.weaver(&["drift", "--env", "dev", "-o", "json"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    let report: Value = serde_json::from_str(&drift.stdout).unwrap();
    let paths: Vec<&str> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .flat_map(|o| o["changes"].as_array().into_iter().flatten())
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["spec.replicas"]);
    // The edit took the field from weaver (an Update after an apply transfers ownership), so
    // taking it back is a conflict to force, as with kubectl.
    let repaired = demo.apply(&["--force-conflicts"]);
    assert_eq!(acted(&repaired), vec![triple("configured", "Deployment", "web")]);
    assert_eq!(demo.weaver(&["drift", "--env", "dev"]).code, 0);
}

/// What an apply prints follows its plan's order, whichever request the server answers first:
/// the web release's ConfigMap, answered last here, is still told before its Secret.
#[test]
fn an_apply_tells_its_objects_in_order_whichever_the_server_answers_first() {
    let demo = Demo::new();
    let Some(fake) = demo.cluster.fake("delaying one kind's answers") else { return };
    let web_config = format!("/api/v1/namespaces/{}/configmaps/web-config", demo.ns);
    fake.inject(weaver_test_apiserver::Fault::delay("PATCH", &web_config, std::time::Duration::from_secs(1)));
    let out = demo.weaver(&["apply", "--env", "dev"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let told: Vec<&str> = out.stdout.lines().filter(|line| line.starts_with("created ")).collect();
    let at =
        |name: &str| told.iter().position(|line| line.contains(name)).unwrap_or_else(|| panic!("{name}: {told:?}"));
    // Answered a second after the Secret beside it, the ConfigMap is still told first.
    assert!(at("/web-config") < at("/web-secrets"), "the plan's order: {told:?}");
}

#[test]
fn server_errors_are_retried_and_a_failure_part_way_is_recorded_exactly() {
    let demo = Demo::new();
    let Some(fake) = demo.cluster.fake("injecting 500s and timeouts") else { return };
    let deployments = format!("/apis/apps/v1/namespaces/{}/deployments", demo.ns);
    let services = format!("/api/v1/namespaces/{}/services", demo.ns);
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &deployments, 500).times(2));
    fake.inject(weaver_test_apiserver::Fault::delay("PATCH", &services, std::time::Duration::from_secs(3)));
    let report = demo.apply(&["--request-timeout", "1s"]);
    assert_eq!(report["summary"]["created"], 7);
    let patches =
        |path: &str| fake.requests().iter().filter(|r| r.method == "PATCH" && r.path.starts_with(path)).count();
    assert_eq!(patches(&deployments), 3, "two 500s, then the apply that worked");
    assert_eq!(patches(&services), 2, "the timed-out service apply was retried");
    assert_eq!(report["retriedRequests"], 2, "the Deployment's apply and the Service's");

    // Failures for longer than the retry budget: the run stops with an exact failed record.
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    demo.edit("environments/values/web-dev.yaml", "LOG_LEVEL: debug", "LOG_LEVEL: info");
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &deployments, 503).times(1_000));
    let out = demo.weaver(&["apply", "--env", "dev", "-o", "json", "--retry-budget", "2s"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let failed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(failed["failed"], true);
    assert_eq!(failed["summary"]["configured"], 1, "{failed:#}");
    assert_eq!(failed["summary"]["failed"], 1, "{failed:#}");
    let web = release(&failed, "web");
    assert_eq!(web["status"], "failed");
    let deployment = web["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Deployment").unwrap();
    let message = deployment["message"].as_str().unwrap();
    assert!(message.contains("the server answered 503") && message.contains(" times in 2s)"), "{deployment}");
    assert!(out.stderr.contains("web (recorded as failed revision 2)"), "{}", out.stderr);
    let record = record(&demo, "web", 2);
    let applied: Vec<(String, bool)> = record.objects.iter().map(|o| (o.kind.clone(), o.applied)).collect();
    assert_eq!(
        applied,
        vec![
            ("ConfigMap".into(), true),
            ("Secret".into(), true),
            ("Service".into(), true),
            ("Deployment".into(), false)
        ]
    );

    // The rerun completes from where the cluster is.
    fake.clear_faults();
    let rerun = demo.apply(&[]);
    assert_eq!(acted(&rerun), vec![triple("configured", "Deployment", "web")]);
    assert_eq!(
        revisions(&demo.history("web")),
        vec![(1, "superseded".into()), (2, "failed".into()), (3, "deployed".into())]
    );
}

#[test]
fn records_say_which_chart_was_applied_and_a_new_chart_version_alone_is_a_revision() {
    let demo = Demo::new();
    demo.apply(&[]);
    let chart = |revision| {
        let chart = record(&demo, "redis", revision).chart.expect("the chart is recorded");
        (chart.name, chart.version, chart.app_version)
    };
    assert_eq!(chart(1), ("redis".to_string(), "0.3.1".to_string(), Some("7.2".to_string())));
    let history = demo.history("redis");
    assert_eq!(history["revisions"][0]["chart"], json!({"name": "redis", "version": "0.3.1", "appVersion": "7.2"}));
    let text = demo.weaver(&["history", "--env", "dev", "redis"]).success().to_string();
    let header = text.lines().next().unwrap();
    assert!(header.contains("CHART") && header.contains("APP VERSION"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|row| row.contains("redis-0.3.1") && row.contains("7.2")), "{text}");

    // The redis chart's objects do not show its version: only the record can say it changed.
    demo.edit("charts/redis/chart.yaml", "version: 0.3.1", "version: 0.3.2");
    let report = demo.apply(&[]);
    assert_eq!(acted(&report), vec![]);
    assert_eq!(release(&report, "redis")["revision"], 2);
    assert_eq!(release(&report, "web")["revision"], Value::Null);
    assert_eq!(chart(2).1, "0.3.2");
    assert_eq!(release(&demo.apply(&[]), "redis")["revision"], Value::Null, "recorded once");

    // A record written before weaver kept the chart: the upgrade alone writes no revision.
    let older = weaver_plan::release::record::Record { revision: 3, chart: None, ..record(&demo, "redis", 2) };
    demo.cluster.apply(&weaver_plan::release::record::to_secrets(&older, &demo.ns).unwrap(), "weaver");
    assert_eq!(release(&demo.apply(&[]), "redis")["revision"], Value::Null);
}

#[test]
fn a_record_that_cannot_be_written_or_superseded_names_its_secret() {
    let demo = Demo::new();
    let Some(fake) = demo.cluster.fake("refusing one record Secret") else { return };
    demo.apply(&[]);
    let secret = |name: &str| format!("/api/v1/namespaces/{}/secrets/{name}", demo.ns);
    let failed_apply = || {
        let out = demo.weaver(&["apply", "--env", "dev", "-o", "json"]);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        release(&report, "web")["error"].as_str().expect("web failed").to_string()
    };

    // A conflict's message is the server's, which names no namespace.
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &secret("weaver.web.v2"), 409));
    let error = failed_apply();
    let expected = format!("revision 2 could not be recorded: writing Secret {}/weaver.web.v2: ", demo.ns);
    assert!(error.starts_with(&expected), "{error}");
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &secret("weaver.web.v2"), 403));
    let error = failed_apply();
    let expected = format!("revision 2 could not be recorded: applying Secret {}/weaver.web.v2: ", demo.ns);
    assert!(error.starts_with(&expected), "{error}");

    // The next run records revision 2, then cannot mark revision 1 superseded.
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &secret("weaver.web.v1"), 403));
    let error = failed_apply();
    let expected = format!("revision 2 could not be recorded: labelling secrets {}/weaver.web.v1: ", demo.ns);
    assert!(error.starts_with(&expected), "{error}");
}

/// The Lease of the dev environment, as the cluster has it.
fn lease(demo: &Demo) -> Option<Value> {
    demo.cluster.get(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-dev", "namespace": demo.lock_namespace()}
    }))
}

/// Makes web's rollout never complete: its pods ask for a node no cluster has (a real
/// cluster cannot schedule them), and the fake stops making workloads ready.
fn hold_rollouts(demo: &Demo) {
    demo.edit(
        "environments/dev.yaml",
        "  - name: web\n",
        "  - name: web\n    patches:\n      - target: { kind: Deployment, name: web }\n        \
         patch: { spec: { template: { spec: { nodeSelector: { weaver.example.com/test: unschedulable } } } } }\n",
    );
    if let Some(fake) = demo.cluster.fake("holding rollouts back") {
        fake.set_auto_ready(false);
    }
}

#[test]
fn a_second_apply_waits_for_the_lock_and_ctrl_c_releases_it_with_a_failed_record() {
    let demo = Demo::new();
    hold_rollouts(&demo);
    // A waits for a rollout that never completes, holding the lock.
    let kubeconfig = demo.cluster.kubeconfig().to_str().unwrap().to_string();
    let first = std::process::Command::new(common::WEAVER)
        .args(["--repo", demo.repo.path().to_str().unwrap(), "--kubeconfig", &kubeconfig])
        .args(["apply", "--env", "dev", "-r", "web", "--wait", "--timeout", "2m"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while demo.live("Deployment", "web").is_none() || lease(&demo).is_none_or(|l| l["spec"]["holderIdentity"].is_null())
    {
        assert!(std::time::Instant::now() < deadline, "the first apply never got going: lease {:?}", lease(&demo));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let holder = lease(&demo).unwrap()["spec"]["holderIdentity"].as_str().unwrap().to_string();
    assert!(holder.contains(&format!("pid {}", first.id())), "{holder}");

    // B gives up after its lock timeout, naming the holder and since when.
    let second = demo.weaver(&["apply", "--env", "dev", "--lock-timeout", "1s"]);
    let err = second.failure();
    assert!(err.contains(&holder), "{err}");
    assert!(err.contains("since"), "{err}");

    // Ctrl-C: A stops waiting, records a failed revision and releases the lock.
    let status = std::process::Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = first.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stdout.contains("release web: revision 1 failed"), "{stdout}");
    let record = record(&demo, "web", 1);
    assert!(record.objects.iter().all(|o| o.applied), "everything was applied before the wait");
    assert!(lease(&demo).unwrap()["spec"]["holderIdentity"].is_null(), "the lock was not released");

    // The next apply proceeds at once and records the release as deployed.
    if let Some(fake) = demo.cluster.fake("letting rollouts complete") {
        fake.set_auto_ready(true);
    }
    let next = demo.apply(&["-r", "web", "--lock-timeout", "1s"]);
    assert_eq!(acted(&next), vec![]);
    assert_eq!(revisions(&demo.history("web")), vec![(1, "failed".into()), (2, "deployed".into())]);
}

#[test]
fn wait_times_out_naming_what_is_not_ready() {
    let demo = Demo::new();
    hold_rollouts(&demo);
    let out = demo.weaver(&["apply", "--env", "dev", "-r", "web", "--wait", "--timeout", "2s"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("release web: revision 1 failed"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("apps/v1 Deployment {}/web", demo.ns)), "{}", out.stdout);
    assert!(out.stdout.contains("timed out"), "{}", out.stdout);
    if let Some(fake) = demo.cluster.fake("letting rollouts complete") {
        fake.set_auto_ready(true);
        let ready = demo.apply(&["-r", "web", "--wait", "--timeout", "30s"]);
        assert_eq!(release(&ready, "web")["status"], "deployed");
    }
}

#[test]
fn drift_never_shows_a_decrypted_value_a_template_copied_outside_a_secret() {
    let demo = Demo::new();
    demo.edit(
        "charts/web-app/templates/configmap.yaml",
        "\ndata:\n",
        "\ndata:\n  API_KEY_COPY: {{ secrets.web.apiKey | quote }}\n",
    );
    // A value the chart writes in its Secret itself, which the Deployment's labels hold too:
    // not decrypted, so it makes nothing sensitive.
    demo.edit(
        "charts/web-app/templates/secret.yaml",
        "stringData:\n",
        "stringData:\n  APP: {{ chart.name | quote }}\n",
    );
    let rendered = demo.rendered();
    let config = rendered.iter().find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "web-config").unwrap();
    let api_key = config["data"]["API_KEY_COPY"].as_str().unwrap().to_string();
    demo.apply(&[]);
    let web = record(&demo, "web", 1);
    let sensitive: Vec<&str> = web.objects.iter().filter(|o| o.sensitive).map(|o| o.kind.as_str()).collect();
    assert_eq!(sensitive, vec!["ConfigMap", "Secret"]);

    let configmap =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": demo.ns}});
    demo.cluster.merge_patch(&configmap, &json!({"data": {"API_KEY_COPY": "changed-by-hand"}}), "kubectl-edit");
    for format in ["text", "json", "junit"] {
        let drift = demo.weaver(&["drift", "--env", "dev", "-o", format]);
        assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
        assert!(drift.stdout.contains("API_KEY_COPY"), "{format}: the path is reported\n{}", drift.stdout);
        for shown in [&drift.stdout, &drift.stderr] {
            assert!(!shown.contains(&api_key), "{format} shows the decrypted value:\n{shown}");
            assert!(!shown.contains("changed-by-hand"), "{format} shows the value of a sensitive field:\n{shown}");
        }
    }
}

#[test]
fn records_say_which_commit_was_applied_and_a_dirty_tree_is_flagged_or_refused() {
    let demo = Demo::new();
    let git = common::git::init(demo.repo.path());
    let head = common::git::commit_all(&git, "the demo").to_string();

    let clean = demo.weaver(&["apply", "--env", "dev", "-r", "web"]);
    assert!(!clean.stderr.contains("uncommitted"), "{}", clean.stderr);
    clean.success();
    let first = record(&demo, "web", 1);
    assert_eq!((first.commit.as_deref(), first.dirty), (Some(head.as_str()), Some(false)));
    let history = demo.weaver(&["history", "--env", "dev", "web"]);
    assert!(history.success().contains(&head[..12]), "{}", history.stdout);

    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    let refused = demo.weaver(&["apply", "--env", "dev", "-r", "web", "--require-clean"]);
    assert!(refused.failure().contains("uncommitted changes"), "{}", refused.stderr);
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 1, "a refused apply changed the cluster");

    let dirty = demo.weaver(&["apply", "--env", "dev", "-r", "web"]);
    assert!(dirty.stderr.contains("warning: the working tree has uncommitted changes"), "{}", dirty.stderr);
    dirty.success();
    let second = record(&demo, "web", 2);
    assert_eq!((second.commit.as_deref(), second.dirty), (Some(head.as_str()), Some(true)));
    let history = demo.weaver(&["history", "--env", "dev", "web", "-o", "json"]);
    let history: Value = serde_json::from_str(history.success()).unwrap();
    assert_eq!(history["revisions"][1]["dirty"], true);

    // --rev applies the commit itself, which is never dirty: back to one replica.
    let from_rev = demo.weaver(&["apply", "--env", "dev", "-r", "web", "--rev", "HEAD"]);
    from_rev.success();
    let third = record(&demo, "web", 3);
    assert_eq!((third.commit.as_deref(), third.dirty), (Some(head.as_str()), Some(false)));
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 1);
}

#[test]
fn values_flags_apply_only_when_allowed_and_are_recorded() {
    let demo = Demo::new();
    let refused = demo.weaver(&["apply", "--env", "dev", "-r", "web", "--set", "replicas=2"]);
    let error = refused.failure();
    assert!(error.contains("--allow-overrides") && error.contains("not in git"), "{error}");
    assert_eq!(demo.live("Deployment", "web"), None, "nothing was applied");

    demo.apply(&["-r", "web", "-r", "redis", "--set", "replicas=2", "--allow-overrides"]);
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 2);
    assert_eq!(record(&demo, "web", 1).overrides, ["--set replicas=2"]);
    assert_eq!(demo.history("web")["revisions"][0]["overrides"], json!(["--set replicas=…"]));

    // Without the flag the next apply goes back to what git says, and records no overrides.
    demo.apply(&["-r", "web"]);
    assert_eq!(demo.live("Deployment", "web").unwrap()["spec"]["replicas"], 1);
    assert!(record(&demo, "web", 2).overrides.is_empty());
}

/// An apply killed under the lock leaves its Lease held: the apply that takes it over once it
/// expires says whose apply did not finish, on stderr, in its summary and in `-o json`.
#[test]
fn an_apply_taking_over_a_lock_whose_holder_was_killed_says_its_apply_did_not_finish() {
    let demo = Demo::new();
    let renewed = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600)).strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
    demo.cluster.create(&json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-dev", "namespace": demo.lock_namespace()},
        "spec": {"holderIdentity": "killed@ci pid 7", "acquireTime": renewed.to_string(),
                 "renewTime": renewed.to_string(), "leaseDurationSeconds": 30},
    }));
    let applied = demo.weaver(&["apply", "--env", "dev", "-r", "web", "-o", "json"]);
    let report: Value = serde_json::from_str(applied.success()).unwrap();
    let taken = &report["lockTakenOver"];
    assert_eq!(taken["holder"], "killed@ci pid 7", "{report}");
    assert!(renewed.to_string().starts_with(taken["renewed"].as_str().unwrap().trim_end_matches('Z')), "{taken}");
    assert!(
        applied.stderr.contains("the lock was taken over from killed@ci pid 7, which stopped renewing it at ")
            && applied.stderr.contains("its apply did not finish"),
        "{}",
        applied.stderr
    );
    // Released as any apply releases it, so the next one takes over nothing.
    let again = demo.weaver(&["apply", "--env", "dev", "-r", "web", "-o", "json"]);
    let report: Value = serde_json::from_str(again.success()).unwrap();
    assert!(report.get("lockTakenOver").is_none(), "{report}");
}
