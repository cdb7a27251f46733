//! Riding out an API server's restart: the server is taken down in the middle of an apply (on
//! the fake, its listeners closed and opened again on the same ports; on a real cluster, with
//! the command `WEAVER_TEST_RESTART_APISERVER` names) and the apply completes, saying how many
//! requests it retried; so does a `--wait` the server restarts under. A server that stays down
//! fails the apply within the retry budget.

use crate::common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::Repo;
use common::cluster::TestCluster;
use common::generated::generate_repo_in;
use serde_json::{Value, json};

/// How many releases the generated repository has: 3 objects each.
const RELEASES: usize = 300;

/// A generated repository of [`RELEASES`] releases in a new namespace, which also holds the lock.
fn repository(cluster: &TestCluster, name: &str) -> (Repo, String) {
    let ns = cluster.namespace(name);
    let repo = Repo::empty();
    generate_repo_in(repo.path(), RELEASES, &ns);
    let path = repo.path().join("environments/bench.yaml");
    let env = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("cluster:\n  lockNamespace: {ns}\n{env}")).unwrap();
    (repo, ns)
}

fn spawn_apply(repo: &Repo, cluster: &TestCluster, extra: &[&str]) -> Child {
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let mut args = vec!["--kubeconfig", &kubeconfig, "apply", "--env", "bench", "-o", "json"];
    args.extend_from_slice(extra);
    repo.spawn(&args)
}

/// The ConfigMaps of the generated releases in `ns`.
fn applied_config_maps(cluster: &TestCluster, ns: &str) -> usize {
    let items = cluster.list("v1", "ConfigMap", "configmaps", ns);
    items.iter().filter(|c| c["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("svc-"))).count()
}

/// Waits until the apply has created `count` ConfigMaps, failing if it ends first.
fn wait_for_progress(cluster: &TestCluster, ns: &str, apply: &mut Child, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let applied = applied_config_maps(cluster, ns);
        if applied >= count {
            return;
        }
        if let Some(status) = apply.try_wait().unwrap() {
            panic!("the apply ended ({status}) after only {applied} ConfigMaps, before the server was restarted");
        }
        assert!(Instant::now() < deadline, "the apply made no progress: {applied} ConfigMaps");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Exit code, stdout and stderr.
fn finish(apply: Child) -> (i32, String, String) {
    let out = apply.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn an_apply_rides_out_a_restart_of_the_api_server() {
    let cluster = TestCluster::start();
    let Some(restarter) = cluster.restarter() else { return };
    let (repo, ns) = repository(&cluster, "blip");
    let mut apply = spawn_apply(&repo, &cluster, &[]);
    wait_for_progress(&cluster, &ns, &mut apply, RELEASES / 10);
    let down = Instant::now();
    restarter.restart(Duration::from_secs(10));
    let outage = down.elapsed();
    let (code, stdout, stderr) = finish(apply);
    assert_eq!(code, 0, "the apply did not ride out {outage:?} of outage:\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("apply -o json prints JSON");
    assert_eq!(report["failed"], false);
    assert_eq!(report["summary"]["created"], 3 * RELEASES, "{}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    let retried = report["retriedRequests"].as_u64().expect("retriedRequests is a count");
    assert!(retried > 0, "no request was retried: the server was not restarted mid-apply");
    assert_eq!(applied_config_maps(&cluster, &ns), RELEASES);
    let statuses: Vec<&Value> = report["releases"].as_array().unwrap().iter().map(|r| &r["status"]).collect();
    assert!(statuses.iter().all(|s| *s == "deployed"), "{statuses:?}");

    // The text summary says it too.
    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let again = repo.weaver(&["--kubeconfig", kubeconfig, "apply", "--env", "bench"]);
    let text = again.success();
    assert!(text.contains(&format!("0 created, 0 configured, {} unchanged", 3 * RELEASES)), "{text}");
    assert!(!text.contains("retried"), "nothing to retry on a healthy server: {text}");
}

#[test]
fn an_apply_against_a_server_that_stays_down_fails_within_the_retry_budget() {
    let cluster = TestCluster::start();
    // Only the fake can be left down: a real server's restart command brings it back.
    let Some(fake) = cluster.fake("leaving the API server down") else { return };
    let (repo, ns) = repository(&cluster, "down");
    let mut apply = spawn_apply(&repo, &cluster, &["--retry-budget", "3s"]);
    wait_for_progress(&cluster, &ns, &mut apply, RELEASES / 10);
    fake.stop();
    let down = Instant::now();
    let (code, stdout, stderr) = finish(apply);
    let took = down.elapsed();
    fake.restart();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    // One budget for the whole run, not one per request: 270 releases each waiting 3 s, 32 at a
    // time, would take half a minute.
    assert!(took < Duration::from_secs(12), "the apply took {took:?} to give up on a dead server");
    let report: Value = serde_json::from_str(&stdout).expect("a failed apply -o json still prints its report");
    assert_eq!(report["failed"], true);
    assert!(report["retriedRequests"].as_u64().unwrap() > 0, "{}", report["retriedRequests"]);
    assert!(report["summary"]["failed"].as_u64().unwrap() > 0, "{}", report["summary"]);
    let messages: Vec<&str> = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .filter(|o| o["result"] == "failed")
        .filter_map(|o| o["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("cannot reach the cluster") && m.contains("longer than the retry budget of 3s")),
        "{messages:?}"
    );
    assert!(stderr.contains("the apply of environment `bench` failed"), "{stderr}");
}

#[test]
fn a_wait_rides_out_a_restart_of_the_api_server() {
    let cluster = TestCluster::start();
    let Some(restarter) = cluster.restarter() else { return };
    let ns = cluster.namespace("waitblip");
    // A kind no controller acts on, so the test says when it is ready, on any cluster; without
    // a status subresource, so the chart can start it not ready.
    let group = format!("{}.example.com", cluster.prefix);
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    cluster.apply(&[crd], "test");
    let repo = Repo::empty();
    repo.write("charts/gadget/chart.yaml", "name: gadget\nversion: 0.1.0\n")
        .write(
            "charts/gadget/templates/gadget.yaml",
            &format!(
                "apiVersion: {group}/v1\nkind: Gadget\nmetadata:\n  name: g\nstatus:\n  conditions:\n    - \
                 {{type: Ready, status: 'False', reason: Building}}\n"
            ),
        )
        .write(
            "environments/bench.yaml",
            &format!(
                "namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n  - name: gadget\n    chart: gadget\n"
            ),
        );
    let mut apply = spawn_apply(&repo, &cluster, &["--wait", "--timeout", "3m"]);
    let gadget =
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget", "metadata": {"name": "g", "namespace": ns}});
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.get(&gadget).is_none() {
        assert!(apply.try_wait().unwrap().is_none(), "the apply ended before it applied the Gadget");
        assert!(Instant::now() < deadline, "the apply did not apply the Gadget");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A round or two of readiness reads, then the restart.
    std::thread::sleep(Duration::from_secs(2));
    assert!(apply.try_wait().unwrap().is_none(), "the apply did not wait for the Gadget");
    restarter.restart(Duration::from_secs(10));
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Built"}]}});
    cluster.merge_patch(&gadget, &ready, "gadget-controller");
    let (code, stdout, stderr) = finish(apply);
    assert_eq!(code, 0, "the wait did not ride out the restart:\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("apply -o json prints JSON");
    assert_eq!(report["releases"][0]["status"], "deployed", "{report:#}");
    assert!(report["retriedRequests"].as_u64().unwrap() > 0, "{}", report["retriedRequests"]);
}

#[test]
fn diff_and_drift_say_how_many_requests_they_retried() {
    let cluster = TestCluster::start();
    let Some(fake) = cluster.fake("injecting 503s") else { return };
    let ns = cluster.namespace("said");
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", &format!("namespace: {ns}\nreleases:\n  - name: app\n    chart: app\n"));
    let kubeconfig = cluster.kubeconfig().to_str().unwrap();
    let quiet = repo.weaver(&["--kubeconfig", kubeconfig, "diff", "--env", "dev", "--exit-code"]);
    assert_eq!(quiet.code, 2, "{}{}", quiet.stdout, quiet.stderr);
    assert!(!quiet.stderr.contains("retried"), "{}", quiet.stderr);
    for command in ["diff", "drift"] {
        fake.inject(weaver_test_apiserver::Fault::status("GET", &format!("/api/v1/namespaces/{ns}/"), 503).times(2));
        let out = repo.weaver(&["--kubeconfig", kubeconfig, command, "--env", "dev"]);
        assert!(out.code != 1, "{command}: {}", out.stderr);
        assert!(out.stderr.contains("request(s) to context `fake` were retried"), "{command}: {}", out.stderr);
    }
}
