//! Helm hooks in `weaver apply`, against the fake API server or a real cluster
//! (WEAVER_TEST_KUBECONFIG). The hook Jobs name another controller in `spec.managedBy`, so
//! neither the real kube-controller-manager nor the fake's runs them: the test is their
//! controller. It notes each Job as the server shows it, with whether the release's ConfigMap
//! existed at that moment (so the order is the server's, not weaver's account of it), and
//! writes the Job's status: Complete, or Failed for the names it is told to fail.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::cluster::TestCluster;
use common::{Repo, Run};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller the hook Jobs name, so the built-in Job controller leaves them alone.
const TEST_CONTROLLER: &str = "weaver.example.com/hook-test";

/// A Helm chart `app`: a ConfigMap (whose value the test changes to upgrade) and hook Jobs.
struct Chart {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
    /// The environment: `dev`, or one of the test's own where records of other tests' `dev`
    /// environments in a shared cluster would count.
    env: String,
}

/// A hook Job: `events` (`helm.sh/hook`), weight, and delete policy if any.
fn hook_job(name: &str, events: &str, weight: i64, policy: Option<&str>) -> String {
    let policy = policy.map(|p| format!("\n    \"helm.sh/hook-delete-policy\": {p}")).unwrap_or_default();
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations:
    "helm.sh/hook": {events}
    "helm.sh/hook-weight": "{weight}"{policy}
spec:
  managedBy: {TEST_CONTROLLER}
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: run
          image: busybox:1.36
          command: ["true"]
"#
    )
}

impl Chart {
    /// The chart with `hooks` (file name, template text), in a namespace of the test.
    fn new(hooks: &[(&str, String)]) -> Chart {
        Chart::build(hooks, false)
    }

    /// The chart, released in an environment named after the test's namespace.
    fn in_own_environment(hooks: &[(&str, String)]) -> Chart {
        Chart::build(hooks, true)
    }

    fn build(hooks: &[(&str, String)], own_environment: bool) -> Chart {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("hooks");
        let repo = Repo::empty();
        repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
            .write("charts/app/values.yaml", "greeting: hello\n")
            .write(
                "charts/app/templates/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: {{ .Values.greeting }}\n",
            );
        for (file, text) in hooks {
            repo.write(&format!("charts/app/templates/{file}"), text);
        }
        let env = if own_environment { ns.clone() } else { "dev".to_string() };
        let chart = Chart { cluster, repo, ns, env };
        chart.environment("");
        chart
    }

    /// The environment, with `extra` lines in the release.
    fn environment(&self, extra: &str) {
        let releases = format!("releases:\n  - name: app\n    chart: app\n{extra}");
        write_environment(&self.repo, &self.env, &self.ns, &self.ns, &releases);
    }

    fn weaver(&self, args: &[&str]) -> Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    /// `weaver apply -o json`, with the test acting as the hook Jobs' controller and failing
    /// those named in `fail`. Returns the run and what the controller saw, in order.
    fn apply(&self, fail: &[&str]) -> (Run, Vec<Seen>) {
        self.with_controller(&["apply", "--env", &self.env, "-o", "json", "--timeout", "60s"], fail)
    }

    /// Runs weaver with `args` while the test acts as the hook Jobs' controller.
    fn with_controller(&self, args: &[&str], fail: &[&str]) -> (Run, Vec<Seen>) {
        let done = Arc::new(AtomicBool::new(false));
        let kubeconfig = self.cluster.kubeconfig().to_path_buf();
        let (ns, fail): (String, Vec<String>) = (self.ns.clone(), fail.iter().map(|f| f.to_string()).collect());
        let controller = {
            let done = done.clone();
            std::thread::spawn(move || run_jobs(&kubeconfig, &ns, &fail, &done))
        };
        let run = self.weaver(args);
        done.store(true, Ordering::SeqCst);
        (run, controller.join().unwrap())
    }

    fn job(&self, name: &str) -> Option<Value> {
        self.cluster
            .get(&json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": self.ns}}))
    }

    fn config_map(&self) -> Option<Value> {
        self.cluster
            .get(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": self.ns}}))
    }

    /// The release's records, decoded, by revision.
    fn records(&self) -> Vec<weaver_plan::release::record::Record> {
        let secrets = self.cluster.list("v1", "Secret", "secrets", &self.ns);
        let mut records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
        records.sort_by_key(|r| r.revision);
        records
    }
}

/// Writes environment `env` of `repo`: its namespace, its lock's namespace, then `rest` (its
/// releases, and any other setting).
fn write_environment(repo: &Repo, env: &str, namespace: &str, lock_namespace: &str, rest: &str) {
    repo.write(
        &format!("environments/{env}.yaml"),
        &format!("namespace: {namespace}\ncluster:\n  lockNamespace: {lock_namespace}\n{rest}"),
    );
}

/// A hook Job as the test's controller first saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    job: String,
    uid: String,
    /// Whether the release's ConfigMap existed when the Job was first seen.
    config_map_existed: bool,
}

/// Acts as the controller of the namespace's Jobs until `done`: each new Job (by uid) is
/// noted, then finished (Complete, or Failed when its name is in `fail`) with the status
/// fields Kubernetes 1.32 requires of a finished Job.
fn run_jobs(kubeconfig: &Path, ns: &str, fail: &[String], done: &AtomicBool) -> Vec<Seen> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let mut seen: Vec<Seen> = Vec::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        loop {
            let stop = done.load(Ordering::SeqCst);
            for job in jobs.list(&ListParams::default()).await.unwrap().items {
                let name = job.metadata.name.clone().unwrap();
                let uid = job.metadata.uid.clone().unwrap();
                let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
                // Jobs of an earlier apply are done already.
                let done_before =
                    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" || c.type_ == "Failed"));
                if job.spec.as_ref().and_then(|s| s.managed_by.as_deref()) != Some(TEST_CONTROLLER)
                    || finished.contains(&uid)
                    || done_before
                {
                    continue;
                }
                let config_map_existed = config_maps.get_opt("app").await.unwrap().is_some();
                if fail.contains(&name) {
                    // The pod a Job controller would have started (no kubelet runs it).
                    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("{name}-pod"), "labels": {"job-name": name}},
                        "spec": {"containers": [{"name": "run", "image": "busybox:1.36"}]}});
                    pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap()).await.unwrap();
                }
                seen.push(Seen { job: name.clone(), uid: uid.clone(), config_map_existed });
                let status = finished_status(fail.contains(&name));
                let params = PatchParams::default();
                jobs.patch_status(&name, &params, &Patch::Merge(&json!({"status": status})))
                    .await
                    .unwrap_or_else(|e| panic!("writing the status of Job {name}: {e}"));
                finished.insert(uid);
            }
            if stop {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// A finished Job's status as 1.32 validates it: startTime, SuccessCriteriaMet before
/// Complete with completionTime and the succeeded count; FailureTarget before Failed.
fn finished_status(failed: bool) -> Value {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let condition = |kind: &str, reason: &str| {
        json!({"type": kind, "status": "True", "reason": reason, "message": "set by the test",
            "lastProbeTime": now, "lastTransitionTime": now})
    };
    if failed {
        json!({"startTime": now, "failed": 1, "active": 0, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [condition("FailureTarget", "BackoffLimitExceeded"), condition("Failed", "BackoffLimitExceeded")]})
    } else {
        json!({"startTime": now, "completionTime": now, "succeeded": 1, "active": 0, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [condition("SuccessCriteriaMet", "CompletionsReached"), condition("Complete", "CompletionsReached")]})
    }
}

fn seen_jobs(seen: &[Seen]) -> Vec<(&str, bool)> {
    seen.iter().map(|s| (s.job.as_str(), s.config_map_existed)).collect()
}

fn report_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("apply -o json prints JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// `(event, name, result)` of the release's hooks in an apply report.
fn hook_results(report: &Value) -> Vec<(String, String, String)> {
    report["releases"][0]["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["event"].as_str().unwrap().into(),
                h["name"].as_str().unwrap().into(),
                h["result"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn triple(event: &str, name: &str, result: &str) -> (String, String, String) {
    (event.into(), name.into(), result.into())
}

#[test]
fn pre_install_hooks_run_before_the_objects_and_post_install_after_in_weight_order() {
    let chart = Chart::new(&[
        ("pre-b.yaml", hook_job("pre-b", "pre-install", 5, None)),
        ("pre-a.yaml", hook_job("pre-a", "pre-install", 5, None)),
        ("pre-first.yaml", hook_job("pre-first", "pre-install", -3, None)),
        ("post.yaml", hook_job("post", "post-install", 0, None)),
        ("upgrade.yaml", hook_job("upgrade", "pre-upgrade", 0, None)),
    ]);
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The server's view: each pre-install Job existed (and was done) before the ConfigMap,
    // in weight order, then name; the post-install Job came after it. No upgrade hook.
    assert_eq!(seen_jobs(&seen), [("pre-first", false), ("pre-a", false), ("pre-b", false), ("post", true)]);
    let report = report_of(&run);
    assert_eq!(
        hook_results(&report),
        [
            triple("pre-install", "pre-first", "succeeded"),
            triple("pre-install", "pre-a", "succeeded"),
            triple("pre-install", "pre-b", "succeeded"),
            triple("post-install", "post", "succeeded"),
        ]
    );
    // Hooks are not the release's objects: not in the apply's objects, nor the record's.
    let objects: Vec<&str> =
        report["releases"][0]["objects"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(objects, ["ConfigMap"]);
    let records = chart.records();
    let record = records.last().unwrap();
    assert_eq!(record.objects.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(), ["ConfigMap"]);
    assert_eq!(record.hooks.len(), 5, "the record keeps every hook, to run delete hooks later");
    let runs: Vec<(&str, &str)> = record.hook_runs.iter().map(|r| (r.event.as_str(), r.name.as_str())).collect();
    assert_eq!(
        runs,
        [("pre-install", "pre-first"), ("pre-install", "pre-a"), ("pre-install", "pre-b"), ("post-install", "post")]
    );

    // Nothing changed: a second apply runs no hook and records nothing.
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), []);
    assert_eq!(report_of(&run)["releases"][0]["revision"], Value::Null);
}

#[test]
fn a_failing_hook_stops_the_apply_and_the_record_says_what_ran() {
    let chart = Chart::new(&[
        ("migrate.yaml", hook_job("migrate", "pre-install", 0, None)),
        ("later.yaml", hook_job("later", "pre-install", 1, None)),
        ("post.yaml", hook_job("post", "post-install", 0, None)),
    ]);
    let (run, seen) = chart.apply(&["migrate"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(seen_jobs(&seen), [("migrate", false)], "nothing runs after the failed hook");
    assert!(chart.config_map().is_none(), "the release's objects are not applied");
    let report = report_of(&run);
    assert_eq!(
        hook_results(&report),
        [
            triple("pre-install", "migrate", "failed"),
            triple("pre-install", "later", "not-run"),
            triple("post-install", "post", "not-run"),
        ]
    );
    let summary = &report["summary"];
    assert_eq!(
        (&summary["hooksSucceeded"], &summary["hooksFailed"], &summary["hooksNotRun"]),
        (&json!(0), &json!(1), &json!(2))
    );
    let message = report["releases"][0]["hooks"][0]["message"].as_str().unwrap();
    assert!(message.contains("Failed=True BackoffLimitExceeded"), "{message}");
    // The test fails the Job itself: without a kubelet its pod logged nothing; on a cluster with
    // nodes a kubelet may still be starting it, and the message says its log could not be read.
    assert!(
        message.contains("pod migrate-pod logged nothing")
            || message.contains("the log of pod migrate-pod could not be read"),
        "{message}"
    );
    assert_eq!(report["releases"][0]["objects"][0]["result"], "not-applied");
    assert!(report["releases"][0]["error"].as_str().unwrap().contains("hook pre-install Job.batch"), "{report}");

    let records = chart.records();
    let record = records.last().unwrap();
    assert_eq!(record.status, weaver_plan::release::record::Status::Failed);
    assert!(!record.objects[0].applied);
    let runs: Vec<(&str, &str, weaver_plan::release::record::HookOutcome)> =
        record.hook_runs.iter().map(|r| (r.event.as_str(), r.name.as_str(), r.outcome)).collect();
    use weaver_plan::release::record::HookOutcome::{Failed, NotRun};
    assert_eq!(
        runs,
        [("pre-install", "migrate", Failed), ("pre-install", "later", NotRun), ("post-install", "post", NotRun)]
    );

    let history = chart.weaver(&["history", "--env", "dev", "app", "-o", "json"]);
    let history: Value = serde_json::from_str(history.success()).unwrap();
    let runs: Vec<(&str, &str)> = history["revisions"][0]["hookRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(runs, [("migrate", "failed"), ("later", "not-run"), ("post", "not-run")]);

    // A failed revision is no deployed record: the next apply is an install again, and the
    // failed Job is replaced (before-hook-creation, helm's default).
    let first_uid = chart.job("migrate").expect("a failed hook stays without hook-failed")["metadata"]["uid"].clone();
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), [("migrate", false), ("later", false), ("post", true)]);
    assert_ne!(chart.job("migrate").unwrap()["metadata"]["uid"], first_uid);
}

#[test]
fn an_upgrade_runs_upgrade_hooks_and_delete_policies_are_honoured() {
    let chart = Chart::new(&[
        ("install.yaml", hook_job("install", "pre-install", 0, Some("hook-succeeded"))),
        ("migrate.yaml", hook_job("migrate", "pre-install,pre-upgrade", 0, None)),
        ("after.yaml", hook_job("after", "post-upgrade", 0, Some("hook-succeeded"))),
        ("broken.yaml", hook_job("broken", "post-upgrade", 1, Some("hook-failed"))),
    ]);
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), [("install", false), ("migrate", false)]);
    assert!(chart.job("install").is_none(), "hook-succeeded: deleted once done");
    let migrate_uid =
        chart.job("migrate").expect("before-hook-creation keeps it until next time")["metadata"]["uid"].clone();

    // An upgrade: pre-upgrade and post-upgrade hooks, never pre-install.
    chart.environment("    values:\n      greeting: hi\n");
    let (run, seen) = chart.apply(&["broken"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(seen_jobs(&seen), [("migrate", true), ("after", true), ("broken", true)]);
    assert_ne!(chart.job("migrate").unwrap()["metadata"]["uid"], migrate_uid, "recreated (before-hook-creation)");
    assert!(chart.job("broken").is_none(), "hook-failed: deleted when it failed");
    assert!(chart.job("after").is_some(), "hook-succeeded deletes only when every hook of the event succeeded");
    assert_eq!(chart.config_map().unwrap()["data"]["greeting"], "hi", "post hooks run after the objects");
}

#[test]
fn removing_a_release_runs_its_delete_hooks_from_the_record() {
    let chart = Chart::new(&[
        ("cleanup.yaml", hook_job("cleanup", "pre-delete", 0, None)),
        ("goodbye.yaml", hook_job("goodbye", "post-delete", 0, None)),
    ]);
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), [], "delete hooks do not run on install");

    chart.environment("    installed: false\n");
    // The chart is gone too: the hooks come from the release record.
    std::fs::remove_dir_all(chart.repo.path().join("charts/app")).unwrap();
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        seen_jobs(&seen),
        [("cleanup", true), ("goodbye", false)],
        "pre-delete before the prune, post-delete after"
    );
    assert!(chart.config_map().is_none());
    assert_eq!(
        hook_results(&report_of(&run)),
        [triple("pre-delete", "cleanup", "succeeded"), triple("post-delete", "goodbye", "succeeded"),]
    );

    // Removed: a further apply runs nothing.
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), []);
}

/// `(name, runs)` of the hooks in a `diff -o json` plan.
fn planned_hooks(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let runs = h["runs"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
            (h["name"].as_str().unwrap().to_string(), runs)
        })
        .collect()
}

#[test]
fn diff_shows_hooks_as_hooks_and_which_will_run() {
    let chart = Chart::new(&[
        ("migrate.yaml", hook_job("migrate", "pre-install,pre-upgrade", 2, Some("hook-succeeded"))),
        ("cleanup.yaml", hook_job("cleanup", "pre-delete", 0, None)),
    ]);
    let diff = |args: &[&str]| {
        let mut all = vec!["diff", "--env", "dev"];
        all.extend_from_slice(args);
        chart.weaver(&all)
    };
    // `render` prints hooks after the objects, as `helm template` does, marked.
    let rendered = chart.repo.weaver(&["render", "--env", "dev"]);
    let rendered = rendered.success();
    let (config_map, migrate) = (
        rendered.find("kind: ConfigMap").unwrap(),
        rendered.find("# Hook: pre-install,pre-upgrade, weight 2\n").unwrap(),
    );
    assert!(config_map < migrate && rendered[migrate..].contains("name: migrate"), "{rendered}");
    assert!(rendered.contains("# Hook: pre-delete, weight 0\n"), "{rendered}");

    let plan: Value = serde_json::from_str(diff(&["-o", "json"]).success()).unwrap();
    let objects: Vec<&str> = plan["objects"].as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(objects, ["ConfigMap"], "hooks are not objects to create");
    assert_eq!(plan["summary"]["create"], 1);
    assert_eq!(planned_hooks(&plan), [("migrate".into(), vec!["pre-install".to_string()]), ("cleanup".into(), vec![])]);
    let migrate = &plan["hooks"][0];
    assert_eq!(
        (&migrate["kind"], &migrate["weight"], &migrate["events"], &migrate["deletePolicies"]),
        (&json!("Job"), &json!(2), &json!(["pre-install", "pre-upgrade"]), &json!(["hook-succeeded"]))
    );
    let text = diff(&[]);
    let text = text.success();
    assert!(
        text.contains(&format!(
            "» hook batch/v1 Job {}/migrate (release app, weight 2): runs at pre-install (before the release's objects)",
            chart.ns
        )),
        "{text}"
    );
    assert!(text.ends_with("1 to create, 0 to update, 0 to delete, 0 unchanged, 1 hook to run\n"), "{text}");
    let html = diff(&["-o", "html"]);
    let html = html.success();
    let hooks = &html[html.find("<ul id=\"hooks\">").expect("a list of the hooks to run")..];
    assert!(
        hooks[..hooks.find("</ul>").unwrap()].contains(&format!(
            "<li><code>» hook batch/v1 Job {}/migrate (release app, weight 2): runs at pre-install (before the release&#39;s objects)</code></li>",
            chart.ns
        )) && !hooks[..hooks.find("</ul>").unwrap()].contains("cleanup"),
        "{html}"
    );

    let (run, _) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Applied: nothing changes, so no hook runs and nothing would be pruned.
    let plan: Value = serde_json::from_str(diff(&["-o", "json"]).success()).unwrap();
    // Hooks that do not run come by weight, then name.
    assert_eq!(planned_hooks(&plan), [("cleanup".into(), vec![]), ("migrate".into(), vec![])]);
    assert!(plan["objects"].as_array().unwrap().iter().all(|o| o["action"] == "unchanged"), "{plan}");
    // An upgrade runs the pre-upgrade event; a removal the recorded pre-delete hook.
    chart.environment("    values:\n      greeting: hi\n");
    let plan: Value = serde_json::from_str(diff(&["-o", "json"]).success()).unwrap();
    assert_eq!(planned_hooks(&plan), [("migrate".into(), vec!["pre-upgrade".to_string()]), ("cleanup".into(), vec![])]);
    chart.environment("    installed: false\n");
    let plan: Value = serde_json::from_str(diff(&["-o", "json"]).success()).unwrap();
    assert_eq!(planned_hooks(&plan), [("cleanup".into(), vec!["pre-delete".to_string()]), ("migrate".into(), vec![])]);
    let deleted: Vec<&str> =
        plan["objects"].as_array().unwrap().iter().map(|o| o["action"].as_str().unwrap()).collect();
    assert_eq!(deleted, ["delete"], "only the ConfigMap is pruned, never a hook");
}

#[test]
fn a_hook_a_record_holds_as_an_object_is_not_pruned() {
    let chart = Chart::new(&[("migrate.yaml", hook_job("migrate", "pre-install,pre-upgrade", 0, None))]);
    let (run, _) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A record written before weaver ran hooks: the hook Job among the release's objects.
    let mut record = chart.records().pop().unwrap();
    record.revision += 1;
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": chart.ns}});
    record.manifests.push(job);
    record.hooks.clear();
    chart.cluster.apply(&weaver_plan::release::record::to_secrets(&record, &chart.ns).unwrap(), "weaver");

    chart.environment("    values:\n      greeting: hi\n");
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), [("migrate", true)], "it runs as a pre-upgrade hook");
    let report = report_of(&run);
    let acted: Vec<(&str, &str)> = report["releases"][0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["result"].as_str().unwrap()))
        .collect();
    assert_eq!(acted, [("ConfigMap", "configured")], "the hook is neither applied nor pruned as an object");
    assert!(chart.job("migrate").is_some());
}

#[test]
fn a_rollback_runs_the_revision_s_rollback_hooks() {
    let chart = Chart::new(&[
        ("undo.yaml", hook_job("undo", "pre-rollback", 0, Some("hook-succeeded"))),
        ("redo.yaml", hook_job("redo", "post-rollback", 0, None)),
    ]);
    let (run, seen) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), []);
    chart.environment("    values:\n      greeting: hi\n");
    let (run, _) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let (run, seen) = chart.with_controller(&["rollback", "--env", "dev", "app", "-o", "json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The ConfigMap goes back to revision 1's value between the two hooks.
    assert_eq!(seen_jobs(&seen), [("undo", true), ("redo", true)]);
    assert_eq!(chart.config_map().unwrap()["data"]["greeting"], "hello");
    assert_eq!(
        hook_results(&report_of(&run)),
        [triple("pre-rollback", "undo", "succeeded"), triple("post-rollback", "redo", "succeeded"),]
    );
    assert!(chart.job("undo").is_none(), "hook-succeeded");
    let records = chart.records();
    assert_eq!(records.last().unwrap().hooks.len(), 2, "the rolled-back revision keeps its hooks");
}

/// `(release, name, action)` of the objects in a `diff -o json` plan.
fn planned_objects(plan: &Value) -> Vec<(String, String, String)> {
    let objects = plan["objects"].as_array().unwrap().iter();
    objects
        .map(|o| triple(o["release"].as_str().unwrap(), o["name"].as_str().unwrap(), o["action"].as_str().unwrap()))
        .collect()
}

#[test]
fn a_release_gone_from_the_environment_is_removed_with_prune_releases() {
    let chart = Chart::in_own_environment(&[
        ("cleanup.yaml", hook_job("cleanup", "pre-delete", 0, None)),
        ("goodbye.yaml", hook_job("goodbye", "post-delete", 0, None)),
    ]);
    let (run, _) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // The environment now deploys another release; `app` and its chart are gone from it.
    let (ns, env) = (&chart.ns, chart.env.as_str());
    chart
        .repo
        .write("charts/other/Chart.yaml", "apiVersion: v2\nname: other\nversion: 1.0.0\n")
        .write("charts/other/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n");
    write_environment(&chart.repo, env, ns, ns, "releases:\n  - name: other\n    chart: other\n");
    std::fs::remove_dir_all(chart.repo.path().join("charts/app")).unwrap();

    let diff = |extra: &[&str]| -> Value {
        let mut args = vec!["diff", "--env", env, "-o", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(chart.weaver(&args).success()).unwrap()
    };
    // Another project's environment of the same name (another lock namespace) deploys
    // `stranger`: its records are not this environment's, whatever the name.
    let elsewhere = chart.cluster.namespace("elsewhere");
    let stranger = Repo::empty();
    stranger
        .write("charts/other/Chart.yaml", "apiVersion: v2\nname: other\nversion: 1.0.0\n")
        .write("charts/other/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stranger\n");
    write_environment(&stranger, env, &elsewhere, &elsewhere, "releases:\n  - name: stranger\n    chart: other\n");
    let kubeconfig = chart.cluster.kubeconfig().to_str().unwrap().to_string();
    stranger.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", env]).success();
    // A release recorded before records carried their lock namespace: whose it is cannot be
    // told, so it is left, with a warning.
    let mut ancient = chart.records().into_iter().next().expect("app's record");
    (ancient.release, ancient.lock_namespace) = ("ancient".into(), None);
    (ancient.manifests, ancient.objects, ancient.hooks) = (Vec::new(), Vec::new(), Vec::new());
    chart.cluster.apply(&weaver_plan::release::record::to_secrets(&ancient, ns).unwrap(), "weaver");
    // Without the flag the release is left alone.
    let plan = diff(&[]);
    assert_eq!(planned_objects(&plan), [triple("other", "other", "create")]);
    assert_eq!(planned_hooks(&plan), []);
    // With it, its removal is planned: its objects deleted, its recorded delete hooks run.
    let plan = diff(&["--prune-releases"]);
    assert_eq!(planned_objects(&plan), [triple("other", "other", "create"), triple("app", "app", "delete")]);
    assert_eq!(
        planned_hooks(&plan),
        [("cleanup".into(), vec!["pre-delete".to_string()]), ("goodbye".into(), vec!["post-delete".to_string()])]
    );
    // A selection of releases cannot say what else to remove.
    let refused = chart.weaver(&["apply", "--env", env, "-r", "other", "--prune-releases"]);
    let message = refused.failure();
    assert!(message.contains("--prune-releases") && message.contains("--release"), "{message}");
    assert!(chart.config_map().is_some(), "nothing was removed");

    let args = ["apply", "--env", env, "-o", "json", "--timeout", "60s", "--prune-releases"];
    let (run, seen) = chart.with_controller(&args, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("release `app` (namespace {ns}) is no longer in environment `{env}`")),
        "{}",
        run.stderr
    );
    let ancient = format!(
        "release `ancient` has a deployed revision of environment `{env}` in namespace {ns} written before weaver labelled records with their lock namespace"
    );
    assert!(run.stderr.contains(&ancient), "{}", run.stderr);
    assert_eq!(
        seen_jobs(&seen),
        [("cleanup", true), ("goodbye", false)],
        "pre-delete before the prune, post-delete after"
    );
    assert!(chart.config_map().is_none(), "the release's ConfigMap is pruned");
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": ns}});
    assert!(chart.cluster.get(&other).is_some());
    let last = chart.records().into_iter().rfind(|r| r.release == "app").unwrap();
    assert!(last.manifests.is_empty() && last.objects.is_empty(), "the release's record holds nothing: {last:?}");
    assert_eq!(last.hook_runs.len(), 2, "{last:?}");

    // Removed: a further apply removes nothing and runs nothing.
    let (run, seen) = chart.with_controller(&args, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), []);
    assert!(!run.stderr.contains("no longer in environment"), "{}", run.stderr);
}

#[test]
fn a_renamed_release_keeps_its_objects_under_prune_releases() {
    let chart = Chart::in_own_environment(&[("cleanup.yaml", hook_job("cleanup", "pre-delete", 0, None))]);
    let (run, _) = chart.apply(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (ns, env) = (&chart.ns, chart.env.as_str());
    let renamed = "releases:\n  - name: renamed\n    chart: app\n";
    write_environment(&chart.repo, env, ns, ns, renamed);
    // The ConfigMap moves to the new release instead of being deleted while it is applied, and
    // the old release's delete hook does not run against it.
    let plan: Value =
        serde_json::from_str(chart.weaver(&["diff", "--env", env, "-o", "json", "--prune-releases"]).success())
            .unwrap();
    // The old release's labelled ConfigMap is seen (the LIST selects any weaver object the
    // environment renders): an update of its release label, of the same environment.
    assert_eq!(planned_objects(&plan), [triple("renamed", "app", "update")]);
    assert_eq!(planned_hooks(&plan), [("cleanup".into(), vec![])]);
    let (run, seen) = chart.with_controller(&["apply", "--env", env, "--timeout", "60s", "--prune-releases"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(seen_jobs(&seen), [], "no delete hook runs");
    let warning = format!(
        "release `app` (namespace {ns}) is no longer in environment `{env}`, but release `renamed` renders its objects"
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    let config_map = chart.config_map().expect("the ConfigMap stays");
    assert_eq!(config_map["metadata"]["labels"]["weaver.example.com/release"], "renamed");
    let last = chart.records().into_iter().rfind(|r| r.release == "app").unwrap();
    assert_eq!(last.manifests.len(), 1, "the old release is left as it was: {last:?}");

    // A release moved to another namespace is not removed from the one it left: said, not done.
    let moved = chart.cluster.namespace("moved");
    write_environment(&chart.repo, env, &moved, ns, renamed);
    let run = chart.weaver(&["diff", "--env", env, "-o", "json", "--prune-releases"]);
    let plan: Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!(planned_objects(&plan), [triple("renamed", "app", "create")]);
    let warning = format!(
        "release `renamed` has a deployed revision of environment `{env}` in namespace {ns}, which now deploys it in namespace {moved}"
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
}

/// A failed hook's message carries the last 20 lines of its pod's log, with the environment's
/// decrypted values redacted, in text and in JSON. Fake only: a log comes from the kubelet,
/// which neither the fake nor the test's real server runs, so the fake is told what it says.
#[test]
fn a_failed_hooks_last_log_lines_are_shown_with_secrets_redacted() {
    let chart = Chart::new(&[("migrate.yaml", hook_job("migrate", "pre-install", 0, None))]);
    let Some(fake) = chart.cluster.fake("a pod's log (it needs a kubelet)") else { return };
    let password = "hunter2-7f3a9c-db";
    std::fs::copy(common::project_root().join("secrets/dev.agekey"), chart.repo.path().join("dev.agekey")).unwrap();
    let secrets = chart.repo.path().join("secrets.yaml");
    std::fs::write(&secrets, format!("db:\n  password: {password}\n")).unwrap();
    let recipient = common::demo::DEMO_RECIPIENT;
    chart.repo.weaver(&["secrets", "encrypt", "--age", recipient, secrets.to_str().unwrap()]).success();
    let ns = &chart.ns;
    let rest = "secrets: [secrets.yaml]\nidentityFile: dev.agekey\nreleases:\n  - name: app\n    chart: app\n";
    write_environment(&chart.repo, "dev", ns, ns, rest);
    // A Secret of the chart itself, its value written in the template, not decrypted.
    let token = "chart-literal-9d2f";
    chart.repo.write(
        "charts/app/templates/token.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: {token}\n"),
    );
    let log: String = (1..=25)
        .map(|n| match n {
            23 => format!("line {n}: token {token}\n"),
            24 => format!("line {n}: connecting with {password}\n"),
            _ => format!("line {n}\n"),
        })
        .collect();
    fake.set_pod_log(ns, "migrate-pod", &log);

    let (run, _) = chart.with_controller(&["apply", "--env", "dev", "--timeout", "60s"], &["migrate"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("last 20 lines of pod migrate-pod's log:"), "{output}");
    assert!(output.contains("| line 6\n") && output.contains("| line 25\n"), "{output}");
    assert!(!output.contains("| line 5\n"), "only the last 20 lines: {output}");
    assert!(output.contains("| line 24: connecting with <redacted"), "{output}");
    assert!(!output.contains(password), "the decrypted password is in the output: {output}");
    assert!(output.contains("| line 23: token <redacted") && !output.contains(token), "{output}");

    // The same in JSON, from a second failing install (its pod made again by the test).
    chart
        .cluster
        .delete(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "migrate-pod", "namespace": ns}}));
    let (run, _) = chart.apply(&["migrate"]);
    let message = report_of(&run)["releases"][0]["hooks"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("line 25") && message.contains("<redacted"), "{message}");
    assert!(!message.contains(password), "{message}");
}
