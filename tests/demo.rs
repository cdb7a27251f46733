//! The demo repository end to end: `weaver apply --env dev` on an empty cluster installs the
//! operator's CRDs, its release and its tenants (a ConfigMapSync, and an EnvironmentSync of the
//! demo's staging environment) in one run, `weaver diff` then has nothing to do, and the
//! operator, run as the chart's own ServiceAccount, syncs the demo: its RBAC is enough for that
//! and no more, and the EnvironmentSync's account applies staging with the Roles the demo gives it.
//!
//! On the fake API server, or unchanged on the cluster of `WEAVER_TEST_KUBECONFIG`.

use crate::common;

use std::process::{Child, Command, Stdio};

use common::demo::Demo;
use common::eventually;
use common::git_http::{GitHttpServer, Options, http_backend_missing};
use common::skip::interop_or_skip;
use serde_json::{Value, json};

/// `weaver operator run` as a separate process, killed when dropped.
struct OperatorProcess(Child);

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config_map(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}})
}

#[test]
fn apply_installs_the_operator_and_its_tenants_in_one_run_and_the_operator_syncs_with_their_own_accounts() {
    let demo = Demo::with_operator();
    let operator_ns = format!("{}-weaver-system", demo.cluster.prefix);
    let (reports, jobs) = (format!("{}-reports", demo.ns), format!("{}-jobs", demo.ns));
    let staging = format!("{}-staging", demo.cluster.prefix);

    // The EnvironmentSync's source is this demo, committed and served over smart HTTP on
    // loopback (from the repository's parent directory; the URL names the demo's alone).
    // Without git's http-backend it keeps the public URL, and only its spec is checked.
    let repo_dir = demo.repo.path();
    let served = interop_or_skip(http_backend_missing().as_deref()).then(|| {
        let server = GitHttpServer::start(repo_dir.parent().unwrap(), Options::default());
        let url = format!("{}/{}", server.base, repo_dir.file_name().unwrap().to_str().unwrap());
        demo.edit(
            "charts/environment-sync/values.yaml",
            "url: https://github.com/example/weaver.git",
            &format!("url: {url}"),
        );
        (server, url)
    });
    // Its age identities from a Secret the chart's values name (made below, once the apply made
    // its namespace): the chart grants its account `get` on that Secret alone, which each
    // reconcile needs (a 403 leaves it not Ready).
    demo.edit(
        "charts/environment-sync/values.yaml",
        "decryption:\n  secretName: \"\"",
        "decryption:\n  secretName: staging-age",
    );
    // Webhooks proved by the token of another Secret, which the controller reads itself.
    demo.edit(
        "charts/environment-sync/values.yaml",
        "webhook:\n  secretName: \"\"",
        "webhook:\n  secretName: staging-hook",
    );
    let git = common::git::init(repo_dir);
    git.set_head("refs/heads/main").unwrap();
    let commit = common::git::commit_all(&git, "the demo").to_string();

    // One run: the CRDs (a chart's crds/), the operator, then the tenants' ConfigMapSync and
    // EnvironmentSync.
    let applied = demo.weaver(&["apply", "--env", "dev"]);
    let out = applied.success();
    let position = |line: &str| out.find(line).unwrap_or_else(|| panic!("no {line:?} in:\n{out}"));
    let operator_deployed = position("release weaver: revision 1 deployed");
    let sync_created = position(&format!(
        "created weaver.example.com/v1beta1 ConfigMapSync {}/shop-settings (release settings-sync)",
        demo.ns
    ));
    assert!(operator_deployed < sync_created, "the ConfigMapSync went before its CRD's release:\n{out}");
    if demo.cluster.is_fake() {
        let crd = position(
            "created apiextensions.k8s.io/v1 CustomResourceDefinition configmapsyncs.weaver.example.com \
             (release weaver)",
        );
        assert!(crd < operator_deployed, "{out}");
    } else {
        // A real cluster is shared by every test: another may have installed the CRD already,
        // and then it is unchanged. The record says this release deploys it either way.
        let secrets = demo.cluster.list("v1", "Secret", "secrets", &operator_ns);
        let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
        let record = records.iter().find(|r| r.release == "weaver").expect("the operator's record");
        let crd = record.objects.iter().find(|o| o.name == "configmapsyncs.weaver.example.com");
        assert!(crd.is_some_and(|crd| crd.kind == "CustomResourceDefinition" && crd.applied), "{:?}", record.objects);
    }
    assert!(out.contains("release settings-sync: revision 1 deployed"), "{out}");
    let environment_sync_created = position(&format!(
        "created weaver.example.com/v1beta1 EnvironmentSync {}/staging-sync (release staging-sync)",
        demo.ns
    ));
    assert!(operator_deployed < environment_sync_created, "the EnvironmentSync went before its CRD's release:\n{out}");
    assert!(out.contains("release staging-sync: revision 1 deployed"), "{out}");
    assert!(out.contains(", 0 failed"), "{out}");
    let environment_sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
        "metadata": {"name": "staging-sync", "namespace": demo.ns}});
    let identity = std::fs::read_to_string(repo_dir.join("secrets/dev.agekey")).unwrap();
    demo.cluster.create(&json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "staging-age", "namespace": demo.ns}, "stringData": {"identity": identity}}));
    let live = demo.cluster.get(&environment_sync).expect("the EnvironmentSync");
    let url = served.as_ref().map_or("https://github.com/example/weaver.git", |(_, url)| url.as_str());
    assert_eq!(
        live["spec"],
        json!({"source": {"url": url, "ref": {"branch": "main"}}, "environments": ["staging"],
               "serviceAccountName": "staging-sync", "interval": "1m", "approval": "Automatic",
               "decryption": {"secretRef": {"name": "staging-age"}}, "webhook": {"secretRef": {"name": "staging-hook"}}}),
    );

    // Right after, nothing to do.
    let diff = demo.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_eq!(diff.code, 0, "diff after apply:\n{}\n{}", diff.stdout, diff.stderr);

    // The operator as its Deployment runs it: the chart's ServiceAccount, leader election on a
    // Lease in its namespace.
    let identity = demo.cluster.identity(&operator_ns, "weaver");
    let kubeconfig = demo.repo.path().join("operator.kubeconfig");
    std::fs::write(&kubeconfig, &identity.kubeconfig).unwrap();
    let log = demo.repo.path().join("operator.log");
    let git_cache = tempfile::tempdir().unwrap();
    let process = OperatorProcess(
        Command::new(env!("CARGO_BIN_EXE_weaver"))
            .args(["operator", "run", "--leader-elect", "--leader-election-namespace", &operator_ns])
            .args(["--metrics-addr", "127.0.0.1:0", "-l", &format!("weaver-test={}", demo.cluster.prefix)])
            .arg("--cache-dir")
            .arg(git_cache.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("POD_NAME", "demo-operator")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start weaver operator run"),
    );
    let operator_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "ConfigMapSync",
        "metadata": {"name": "shop-settings", "namespace": demo.ns}});
    let status = eventually("the demo's ConfigMapSync to settle at 2/3", || {
        let live = demo.cluster.get(&sync).ok_or("no ConfigMapSync")?;
        match live.pointer("/status/targetsInSync").and_then(Value::as_str) {
            Some("2/3") => Ok(live["status"].clone()),
            _ => Err(format!("{}\noperator log:\n{}", live["status"], operator_log())),
        }
    });
    let targets = status["targets"].as_array().expect("per-target status");
    let state = |namespace: &str| {
        let target = targets.iter().find(|t| t["namespace"] == namespace).unwrap_or_else(|| panic!("{status}"));
        (target["synced"].as_bool().unwrap(), target["reason"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(state(&reports), (true, "Synced".to_string()), "{status}");
    assert_eq!(state(&jobs), (true, "Synced".to_string()), "{status}");
    assert_eq!(state("default"), (false, "Forbidden".to_string()), "{status}");
    let source = demo.cluster.get(&config_map(&demo.ns, "shop-settings")).expect("the source");
    for namespace in [&reports, &jobs] {
        let copy = demo.cluster.get(&config_map(namespace, "shop-settings")).expect("a copy");
        assert_eq!(copy["data"], source["data"], "the copy in {namespace}");
    }
    assert!(demo.cluster.get(&config_map("default", "shop-settings")).is_none(), "written where it may not");
    // The denied target needs a change no retry makes: Stalled, so `weaver status` says failed
    // (exit 1) instead of progressing forever.
    let stalled = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Stalled").cloned();
    assert_eq!(
        stalled.as_ref().map(|c| (&c["status"], &c["reason"])),
        Some((&json!("True"), &json!("TargetsNotSynced"))),
        "{status}"
    );
    let run = demo.weaver(&["status", "--env", "dev", "-r", "settings-sync", "-o", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let objects = report["releases"][0]["objects"].as_array().unwrap();
    let health = objects.iter().find(|o| o["kind"] == "ConfigMapSync").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(health["health"], "failed", "{report}");
    assert!(
        health["reason"]
            .as_str()
            .unwrap()
            .starts_with("Stalled=True TargetsNotSynced: no retry syncs target(s) default (Forbidden)"),
        "{report}"
    );

    // No more than it needs: the operator's own account may not write ConfigMaps anywhere.
    let client = demo.cluster.client_for(&identity);
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, &reports);
    let refused = demo.cluster.block_on(api.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "by-the-operator-itself"}})).unwrap(),
    ));
    match refused {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("the operator's account wrote a ConfigMap itself: {other:?}"),
    }

    // The EnvironmentSync applies the demo's staging environment at the commit served, as its
    // own account: the demo's Roles are enough for that.
    if served.is_some() {
        let live = eventually("the demo's EnvironmentSync to apply staging", || {
            let live = demo.cluster.get(&environment_sync).ok_or("no EnvironmentSync")?;
            match live.pointer("/status/lastAppliedRevision").and_then(Value::as_str) {
                Some(applied) if applied == commit => Ok(live),
                _ => Err(format!("{}\noperator log:\n{}", live["status"], operator_log())),
            }
        });
        assert_eq!(live["status"]["environmentsReady"], "1/1", "{}", live["status"]);
        let web =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": staging}});
        assert!(demo.cluster.get(&web).is_some(), "staging's web is not applied");
        let history = demo.weaver(&["history", "--env", "staging", "web", "-o", "json"]);
        let history: Value = serde_json::from_str(history.success()).unwrap();
        // The EnvironmentSync, on the replica that applied (the operator's pod name).
        let applied_by = history["revisions"][0]["appliedBy"].as_str().unwrap_or_default();
        assert!(applied_by.starts_with(&format!("EnvironmentSync {}/staging-sync on ", demo.ns)), "{history}");
    }

    // And weaver still sees nothing to do: the operators' finalizer and statuses are their own.
    let diff = demo.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_eq!(diff.code, 0, "diff with the operator running:\n{}\n{}", diff.stdout, diff.stderr);

    // Deleting the ConfigMapSync while the operator runs removes its copies (its finalizer).
    demo.cluster.delete(&sync);
    eventually("the ConfigMapSync and its copies to go", || {
        let left: Vec<_> = [&reports, &jobs]
            .into_iter()
            .filter(|ns| demo.cluster.get(&config_map(ns, "shop-settings")).is_some())
            .collect();
        match (demo.cluster.get(&sync), left.is_empty()) {
            (None, true) => Ok(()),
            (sync, _) => Err(format!("sync present: {}, copies left in {left:?}\n{}", sync.is_some(), operator_log())),
        }
    });
    drop(process);
}
