//! `weaver drift --correct` against a cluster (the in-process fake, or a real one with
//! WEAVER_TEST_KUBECONFIG): drifted objects are put back as the last deployed revision has
//! them, deleted ones created again, under the environment's lock, recorded in the history
//! without changing what a rollback goes back to.

use crate::common;

use common::demo::Demo;
use serde_json::{Value, json};

fn deployment(demo: &Demo) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}})
}

fn config_map(demo: &Demo, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": demo.ns}})
}

/// `weaver ARGS -o json`, with its exit code checked.
fn json_of(demo: &Demo, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-o", "json"]);
    let run = demo.weaver(&all);
    assert_eq!(run.code, code, "{args:?}: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON")
}

/// The drift report's entry for object `kind`/`name`.
fn object<'r>(report: &'r Value, kind: &str, name: &str) -> &'r Value {
    report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {report:#}"))
}

fn release<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["releases"].as_array().unwrap().iter().find(|r| r["release"] == name).unwrap()
}

/// (revision, status, correctionOf, rollbackOf) of a release's history.
fn history(demo: &Demo, name: &str) -> Vec<(u64, String, Value, Value)> {
    let report = json_of(demo, &["history", "--env", "dev", name], 0);
    report["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
                r["correctionOf"].clone(),
                r["rollbackOf"].clone(),
            )
        })
        .collect()
}

fn entry(revision: u64, status: &str, correction_of: Value, rollback_of: Value) -> (u64, String, Value, Value) {
    (revision, status.to_string(), correction_of, rollback_of)
}

/// Applied twice (web at revision 2 with 2 replicas), then changed by hand: web scaled to 4,
/// redis' ConfigMap deleted.
fn drifted() -> Demo {
    let demo = Demo::new();
    assert_eq!(demo.weaver(&["apply", "--env", "dev"]).code, 0);
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    assert_eq!(demo.weaver(&["apply", "--env", "dev"]).code, 0);
    demo.cluster.merge_patch(&deployment(&demo), &json!({"spec": {"replicas": 4}}), "kubectl-edit");
    demo.cluster.delete(&config_map(&demo, "redis-config"));
    demo
}

#[test]
fn a_changed_field_and_a_deleted_object_are_put_back_as_recorded_and_recorded_as_a_correction() {
    let demo = drifted();
    // The repository moved on; the correction puts back what was applied, not this.
    demo.edit("environments/dev.yaml", "replicas: 2", "replicas: 3");

    // A dry run: the server is asked, nothing changes, nothing is recorded.
    let dry = json_of(&demo, &["drift", "--env", "dev", "--correct", "--dry-run"], 2);
    assert_eq!(dry["correction"], json!({"dryRun": true, "failed": false}));
    assert_eq!(object(&dry, "Deployment", "web")["correction"]["result"], "corrected");
    assert_eq!(object(&dry, "ConfigMap", "redis-config")["correction"]["result"], "corrected");
    assert_eq!(release(&dry, "web")["correction"], json!({"revision": null, "error": null}));
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 4);
    assert!(demo.cluster.get(&config_map(&demo, "redis-config")).is_none());
    assert_eq!(history(&demo, "web").len(), 2);

    let corrected = json_of(&demo, &["drift", "--env", "dev", "--correct"], 2);
    assert_eq!(corrected["drifted"], true, "what was found is still reported");
    assert_eq!(object(&corrected, "Deployment", "web")["changes"][0]["path"], "spec.replicas");
    assert_eq!(object(&corrected, "Deployment", "web")["correction"], json!({"result": "corrected", "message": null}));
    assert_eq!(object(&corrected, "ConfigMap", "redis-config")["state"], "missing");
    assert_eq!(object(&corrected, "ConfigMap", "redis-config")["correction"]["result"], "corrected");
    assert_eq!(object(&corrected, "Service", "web")["correction"], Value::Null, "in sync: nothing to correct");
    assert_eq!(release(&corrected, "web")["correction"], json!({"revision": 3, "error": null}));
    assert_eq!(release(&corrected, "redis")["correction"], json!({"revision": 2, "error": null}));
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 2);
    assert!(demo.cluster.get(&config_map(&demo, "redis-config")).is_some());

    // A second run finds nothing, and takes nothing.
    let again = json_of(&demo, &["drift", "--env", "dev", "--correct"], 0);
    assert_eq!(again["correction"], json!({"dryRun": false, "failed": false}));
    assert_eq!(release(&again, "web")["correction"], Value::Null);
    assert_eq!(demo.weaver(&["drift", "--env", "dev"]).code, 0);

    // The history says so; a rollback still goes back to revision 1, the one before the
    // revision that was corrected.
    assert_eq!(
        history(&demo, "web"),
        vec![
            entry(1, "superseded", Value::Null, Value::Null),
            entry(2, "superseded", Value::Null, Value::Null),
            entry(3, "deployed", json!(2), Value::Null),
        ]
    );
    let text = demo.weaver(&["history", "--env", "dev", "web"]);
    assert!(text.stdout.contains("drift correction of 2"), "{}", text.stdout);
    assert_eq!(demo.weaver(&["rollback", "--env", "dev", "web"]).code, 0);
    assert_eq!(history(&demo, "web").last().unwrap(), &entry(4, "deployed", Value::Null, json!(1)));
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 1);
}

#[test]
fn ignored_fields_stay_and_a_failed_correction_fails_that_object_only() {
    let demo = drifted();
    demo.edit(
        "environments/dev.yaml",
        "secrets: [secrets/dev.yaml]",
        "secrets: [secrets/dev.yaml]\nignoreDifferences:\n  - kind: Deployment\n    jsonPointers: [/spec/replicas]",
    );
    // web's ConfigMap made immutable, its data removed: putting it back is refused.
    demo.cluster.merge_patch(
        &config_map(&demo, "web-config"),
        &json!({"immutable": true, "data": null}),
        "kubectl-edit",
    );
    let run = demo.weaver(&["drift", "--env", "dev", "--correct", "-o", "json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("the drift correction of environment `dev` failed"), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["correction"], json!({"dryRun": false, "failed": true}));
    let failed = &object(&report, "ConfigMap", "web-config")["correction"];
    assert_eq!(failed["result"], "failed", "{report:#}");
    assert!(failed["message"].as_str().unwrap().contains("immutable"), "{failed}");
    // The ignored replicas are neither drift nor put back; redis' ConfigMap is.
    assert_eq!(object(&report, "Deployment", "web")["state"], "in-sync");
    assert_eq!(object(&report, "Deployment", "web")["ignored"], 1);
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 4);
    assert_eq!(object(&report, "ConfigMap", "redis-config")["correction"]["result"], "corrected");
    assert!(demo.cluster.get(&config_map(&demo, "redis-config")).is_some());

    // Text, JUnit and HTML say the same.
    let text = demo.weaver(&["drift", "--env", "dev", "--correct", "--dry-run"]);
    assert_eq!(text.code, 1, "{}{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("correction failed"), "{}", text.stdout);
    let junit = demo.weaver(&["drift", "--env", "dev", "--correct", "--dry-run", "-o", "junit"]);
    assert!(junit.stdout.contains("<system-out>correction failed"), "{}", junit.stdout);
    let html = demo.weaver(&["drift", "--env", "dev", "--correct", "--dry-run", "-o", "html"]);
    assert!(html.stdout.contains("correction failed"), "{}", html.stdout);
}

#[test]
fn correct_is_for_one_environment_and_dry_run_needs_it() {
    let demo = Demo::new();
    let run = demo.weaver(&["drift", "--env", "dev", "--dry-run"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--correct"), "{}", run.stderr);
    let run = demo.weaver(&["drift", "--env", "dev,staging", "--correct"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--correct corrects one environment"), "{}", run.stderr);
}

#[test]
fn a_correction_waits_for_the_environment_s_lock_and_a_dry_run_takes_none() {
    let demo = drifted();
    let lease = demo.hold_lock();
    let run = demo.weaver(&["drift", "--env", "dev", "--correct", "--lock-timeout", "1s"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("another apply (pid 1)"), "{}", run.stderr);
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 4, "nothing corrected");
    // A dry run needs no lock.
    let dry = json_of(&demo, &["drift", "--env", "dev", "--correct", "--dry-run"], 2);
    assert_eq!(object(&dry, "Deployment", "web")["correction"]["result"], "corrected");
    // Released, the correction goes ahead, and releases the lock in turn.
    demo.cluster.delete(&lease);
    json_of(&demo, &["drift", "--env", "dev", "--correct", "--lock-timeout", "1s"], 2);
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 2);
    let lease = demo.cluster.get(&lease).expect("the correction took the lock");
    assert!(lease["spec"]["holderIdentity"].is_null(), "the lock was not released: {lease}");
}

#[test]
fn a_correction_rides_out_a_server_that_answers_503_for_a_while() {
    let demo = drifted();
    let Some(fake) = demo.cluster.fake("making the server answer 503") else { return };
    // The correction's patches of the Deployment fail twice before the server answers again:
    // drift --correct retries within its budget, as apply does.
    let deployments = format!("/apis/apps/v1/namespaces/{}/deployments/web", demo.ns);
    fake.inject(weaver_test_apiserver::Fault::status("PATCH", &deployments, 503).times(2));
    let corrected = json_of(&demo, &["drift", "--env", "dev", "--correct"], 2);
    assert_eq!(object(&corrected, "Deployment", "web")["correction"], json!({"result": "corrected", "message": null}));
    assert_eq!(demo.cluster.get(&deployment(&demo)).unwrap()["spec"]["replicas"], 2);
}
