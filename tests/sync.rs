//! `weaver sync`: EnvironmentSyncs read and steered from the command line, against the fake API
//! server or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`. No controller runs: each test
//! writes the statuses a controller would (`patch_status`) and checks what the commands show,
//! their exit codes, and what they patch.

use crate::common;

use std::time::Duration;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

pub(crate) const MANAGER: &str = "sync-test";
pub(crate) const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub(crate) const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub(crate) const ANNOTATION: &str = "weaver.example.com/reconcile-requested-at";

pub(crate) fn setup() -> (TestCluster, String, Repo) {
    let cluster = TestCluster::start();
    cluster.apply_shared(&weaver_controllers::gitops::crd(), MANAGER);
    let ns = cluster.namespace("sync");
    (cluster, ns, Repo::empty())
}

pub(crate) fn create(cluster: &TestCluster, ns: &str, name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}},
        "environments": ["dev", "prod"],
        "serviceAccountName": "deployer",
    });
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let object = json!({
        "apiVersion": "weaver.example.com/v1beta1",
        "kind": "EnvironmentSync",
        "metadata": {"name": name, "namespace": ns, "labels": {"test": cluster.prefix}},
        "spec": spec,
    });
    cluster.create(&object);
    object
}

fn ready_condition(status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": "2025-01-01T00:00:00Z",
    })
}

pub(crate) fn ready_status(generation: i64) -> Value {
    json!({
        "observedGeneration": generation,
        "conditions": [ready_condition("True", "ReconciliationSucceeded", "applied revision 0123456789ab to 2 environment(s)", generation)],
        "lastAttemptedRevision": COMMIT,
        "lastAppliedRevision": COMMIT,
        "environmentsReady": "2/2",
        "drift": {"drifted": 0, "missing": 0, "summary": "none"},
        "environments": [
            {"name": "dev", "revision": COMMIT, "result": "Applied", "created": 1, "configured": 2, "unchanged": 3, "pruned": 0, "failed": 0},
            {"name": "prod", "revision": COMMIT, "result": "Unchanged", "created": 0, "configured": 0, "unchanged": 6, "pruned": 0, "failed": 0},
        ],
        "history": [{"revision": COMMIT, "time": "2025-01-01T00:00:00Z", "result": "ReconciliationSucceeded", "message": "applied", "durationSeconds": 1.5}],
    })
}

pub(crate) fn awaiting_status(generation: i64) -> Value {
    json!({
        "observedGeneration": generation,
        "conditions": [ready_condition("False", "AwaitingApproval", &format!("the plan of 0123456789ab waits for approval: set spec.approvedPlan to {DIGEST} (weaver sync approve)"), generation)],
        "lastAttemptedRevision": COMMIT,
        "pendingPlan": {"digest": DIGEST, "revision": COMMIT, "releases": [
            {"environment": "prod", "release": "web", "create": 1, "update": 2, "delete": 0},
        ]},
        "environments": [{"name": "prod", "revision": COMMIT, "result": "AwaitingApproval", "created": 0, "configured": 0, "unchanged": 0, "pruned": 0, "failed": 0}],
    })
}

fn weaver(repo: &Repo, cluster: &TestCluster, args: &[&str]) -> common::Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    repo.weaver_on(cluster, &all)
}

#[test]
fn get_shows_the_table_the_details_and_exits_by_readiness() {
    let (cluster, ns, repo) = setup();
    let ready = create(&cluster, &ns, "ready", json!({}));
    let waiting = create(&cluster, &ns, "waiting", json!({"approval": "Manual"}));
    cluster.patch_status(&ready, &ready_status(1));
    cluster.patch_status(&waiting, &awaiting_status(1));

    let run = weaver(&repo, &cluster, &["get", "-n", &ns]);
    assert_eq!(run.code, 2, "one waits for approval: {run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("READY  REVISION      ENVS  DRIFT  AGE"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with("ready") && lines[1].contains("True") && lines[1].contains("0123456789ab "),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].contains("2/2") && lines[1].contains("none") && lines[1].contains("applied revision"),
        "{}",
        run.stdout
    );
    assert!(lines[2].starts_with("waiting") && lines[2].contains("False") && lines[2].contains("waits for approval"));
    assert!(!run.stdout.contains(COMMIT), "the table shows 12 characters of a commit");

    let one = weaver(&repo, &cluster, &["get", "ready", "-n", &ns]);
    assert_eq!(one.code, 0, "{one:?}");
    assert!(one.stdout.contains("Environments:") && one.stdout.contains("History (newest first):"), "{}", one.stdout);
    let dev = one.stdout.lines().find(|l| l.starts_with("dev ")).expect("dev's row");
    assert_eq!(dev.split_whitespace().collect::<Vec<_>>(), ["dev", "Applied", "0123456789ab", "1", "2", "0", "0", "-"]);

    let plan = weaver(&repo, &cluster, &["get", "waiting", "-n", &ns]);
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains(&format!("digest:   {DIGEST}")), "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("weaver sync approve waiting -n {ns} --digest {DIGEST}")), "{}", plan.stdout);
    let web = plan.stdout.lines().find(|l| l.starts_with("prod ") && l.contains("web")).expect("web's changes");
    assert_eq!(web.split_whitespace().collect::<Vec<_>>(), ["prod", "web", "1", "2", "0"]);

    let json = weaver(&repo, &cluster, &["get", "-n", &ns, "-o", "json"]);
    assert_eq!(json.code, 2);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!((report["schemaVersion"].as_u64(), report["ready"].as_bool()), (Some(1), Some(false)));
    assert_eq!(report["namespace"], json!(ns));
    let syncs = report["syncs"].as_array().unwrap();
    assert_eq!(syncs.len(), 2);
    assert_eq!(syncs[0]["name"], "ready");
    assert_eq!((syncs[0]["ready"].as_str(), syncs[0]["upToDate"].as_bool()), (Some("True"), Some(true)));
    assert_eq!(syncs[0]["revision"], COMMIT);
    assert_eq!(syncs[0]["environments"][0]["configured"], 2);
    assert_eq!(
        (syncs[1]["reason"].as_str(), syncs[1]["approval"].as_str()),
        (Some("AwaitingApproval"), Some("Manual"))
    );
    assert_eq!(syncs[1]["pendingPlan"]["digest"], DIGEST);

    let yaml = weaver(&repo, &cluster, &["get", "ready", "-n", &ns, "-o", "yaml"]);
    assert_eq!(yaml.code, 0, "{yaml:?}");
    assert!(yaml.stdout.contains("schemaVersion: 1") && yaml.stdout.contains("upToDate: true"), "{}", yaml.stdout);

    // Every namespace, by label: the NAMESPACE column comes first.
    let selector = format!("test={}", cluster.prefix);
    let all = weaver(&repo, &cluster, &["get", "-A", "-l", &selector]);
    assert_eq!(all.code, 2);
    assert!(all.stdout.starts_with("NAMESPACE"), "{}", all.stdout);
    assert!(all.stdout.lines().nth(1).unwrap().starts_with(&format!("{ns}  ready")), "{}", all.stdout);

    // A spec change the controller has not handled yet: not ready, and said so.
    cluster.merge_patch(&ready, &json!({"spec": {"prune": false}}), MANAGER);
    let stale = weaver(&repo, &cluster, &["get", "ready", "-n", &ns]);
    assert_eq!(stale.code, 2, "{stale:?}");
    assert!(stale.stdout.contains("the controller has not handled generation 2 yet"), "{}", stale.stdout);

    let missing = weaver(&repo, &cluster, &["get", "nope", "-n", &ns]);
    let stderr = missing.failure();
    assert!(stderr.contains(&format!("EnvironmentSync `nope` not found in namespace `{ns}`")), "{stderr}");
    assert!(stderr.contains(&format!("weaver sync get -n {ns}")), "{stderr}");

    let empty = cluster.namespace("empty");
    let none = weaver(&repo, &cluster, &["get", "-n", &empty]);
    assert_eq!((none.code, none.stdout.as_str()), (0, ""), "{none:?}");
    assert!(none.stderr.contains("no EnvironmentSync found in namespace"), "{}", none.stderr);
}

/// What auto-promotion and image updates last did (their conditions and statuses) is shown
/// with one NAME, and in `-o json`.
#[test]
fn get_shows_what_the_last_promotion_and_image_update_did() {
    let (cluster, ns, repo) = setup();
    let author = json!({"name": "Bot", "email": "bot@weaver.invalid"});
    let object = create(
        &cluster,
        &ns,
        "chain",
        json!({"promotion": {"interval": "5m", "author": author}, "imageUpdates": {"interval": "5m", "author": author}}),
    );
    let pushed = "fedcba9876543210fedcba9876543210fedcba98";
    let pin = format!("registry.example/web 1.5.0@{DIGEST}");
    let mut status = ready_status(1);
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": 1, "lastTransitionTime": "2025-01-01T00:00:00Z"})
    };
    let conditions = status["conditions"].as_array_mut().unwrap();
    conditions.push(condition("Promoted", "False", "GatesFailed", "prod: the soak gate failed"));
    conditions.push(condition("ImagesUpdated", "True", "ImagesUpdated", "pushed fedcba987654 to branch main"));
    status["promotion"] = json!({"lastAttemptTime": "2025-01-01T00:01:00Z", "revision": COMMIT, "branch": "main",
        "targets": [{"environment": "prod", "from": "dev", "passed": false, "changes": ["web values image.tag: 1.4.2 -> 1.5.0"],
            "gates": [{"gate": "healthy", "passed": true, "evidence": []}, {"gate": "soak", "passed": false, "evidence": ["applied 2m ago, 10m asked"]}]}]});
    status["imageUpdates"] = json!({"lastAttemptTime": "2025-01-01T00:02:00Z", "revision": COMMIT, "branch": "main",
        "lastPushedCommit": pushed, "lastPushTime": "2025-01-01T00:02:01Z", "requests": 3,
        "images": [{"environment": "dev", "image": pin.split_once(' ').unwrap().0, "newest": pin.split_once(' ').unwrap().1}],
        "changes": [{"environment": "dev", "release": "web", "image": "registry.example/web", "from": "1.4.2", "to": format!("1.5.0@{DIGEST}")}]});
    cluster.patch_status(&object, &status);

    let one = weaver(&repo, &cluster, &["get", "chain", "-n", &ns]);
    assert_eq!(one.code, 0, "{one:?}");
    let text = &one.stdout;
    assert!(
        text.contains("Promotion (spec.promotion): Promoted=False (GatesFailed): prod: the soak gate failed"),
        "{text}"
    );
    assert!(text.contains("  gates last judged: 2025-01-01T00:01:00Z\n  nothing pushed to branch main yet"), "{text}");
    let prod = text.lines().find(|l| l.starts_with("prod ") && l.contains("dev")).expect("prod's target row");
    assert!(prod.contains("failed: soak") && prod.contains("web values image.tag: 1.4.2 -> 1.5.0"), "{prod}");
    assert!(
        text.contains("Image updates (spec.imageUpdates): ImagesUpdated=True (ImagesUpdated): pushed fedcba987654"),
        "{text}"
    );
    assert!(text.contains("  registries last asked: 2025-01-01T00:02:00Z (3 requests)"), "{text}");
    assert!(text.contains("  last push: fedcba987654 to branch main at 2025-01-01T00:02:01Z"), "{text}");
    assert!(text.contains(&format!("  newest allowed:\n    dev {pin}\n")), "{text}");
    assert!(text.contains("  changed by the last push:\n    dev: web registry.example/web 1.4.2 -> 1.5.0@"), "{text}");

    let json = weaver(&repo, &cluster, &["get", "chain", "-n", &ns, "-o", "json"]);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    let sync = &report["syncs"][0];
    assert_eq!(sync["imageUpdates"]["lastPushedCommit"], pushed);
    assert_eq!(sync["promotion"]["targets"][0]["gates"][1]["passed"], false);
    let types: Vec<&str> = sync["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Ready", "Promoted", "ImagesUpdated"]);

    // None of either: no section.
    let plain = create(&cluster, &ns, "plain", json!({}));
    cluster.patch_status(&plain, &ready_status(1));
    let text = weaver(&repo, &cluster, &["get", "plain", "-n", &ns]).stdout;
    assert!(!text.contains("Promotion (") && !text.contains("Image updates ("), "{text}");
}

#[test]
fn suspend_and_resume_patch_the_spec_and_resume_asks_for_a_reconcile() {
    let (cluster, ns, repo) = setup();
    let object = create(&cluster, &ns, "shop", json!({}));

    let run = weaver(&repo, &cluster, &["suspend", "shop", "-n", &ns]);
    assert!(run.success().contains(&format!("EnvironmentSync {ns}/shop suspended")), "{}", run.stdout);
    let live = cluster.get(&object).unwrap();
    assert_eq!(live["spec"]["suspend"], true);
    let again = weaver(&repo, &cluster, &["suspend", "shop", "-n", &ns]);
    assert!(again.success().contains("was already suspended"));

    // Nothing would handle a reconcile request of a suspended one.
    let refused = weaver(&repo, &cluster, &["reconcile", "shop", "-n", &ns, "--no-wait"]);
    assert!(refused.failure().contains("is suspended"), "{}", refused.stderr);

    let resumed = weaver(&repo, &cluster, &["resume", "shop", "-n", &ns]);
    assert!(resumed.success().contains(&format!("EnvironmentSync {ns}/shop resumed; asked for a reconcile")));
    let live = cluster.get(&object).unwrap();
    assert_eq!(live["spec"]["suspend"], false);
    let asked = live["metadata"]["annotations"][ANNOTATION].as_str().expect("the reconcile request");
    assert!(asked.parse::<jiff::Timestamp>().is_ok(), "RFC 3339: {asked}");
}

#[test]
fn approve_sets_the_pending_digest_and_refuses_a_plan_that_changed() {
    let (cluster, ns, repo) = setup();
    let object = create(&cluster, &ns, "shop", json!({"approval": "Manual"}));
    let approved = |cluster: &TestCluster| cluster.get(&object).unwrap()["spec"].get("approvedPlan").cloned();

    let nothing = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns, "--yes"]);
    assert!(nothing.failure().contains("nothing waits for approval"), "{}", nothing.stderr);

    cluster.patch_status(&object, &awaiting_status(1));
    // Without a terminal to ask on, only --yes approves.
    let unasked = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns]);
    assert!(unasked.failure().contains("help: pass --yes"), "{}", unasked.stderr);

    let other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let stale = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns, "--yes", "--digest", other]);
    let stderr = stale.failure();
    assert!(stderr.contains("the plan changed since you looked") && stderr.contains(DIGEST), "{stderr}");
    assert_eq!(approved(&cluster), None, "a refused approval patches nothing");

    let run = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns, "--yes", "--digest", DIGEST]);
    let stdout = run.success();
    assert!(stdout.contains(&format!("digest:   {DIGEST}")) && stdout.contains("approved:"), "{stdout}");
    let web = stdout.lines().find(|l| l.starts_with("prod ")).expect("the plan's changes");
    assert_eq!(web.split_whitespace().collect::<Vec<_>>(), ["prod", "web", "1", "2", "0"]);
    assert_eq!(approved(&cluster), Some(json!(DIGEST)));
    // Written as a field manager of its own, whose entry's time is the approval's.
    let live = cluster.get(&object).unwrap();
    let approver = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| !entry["fieldsV1"]["f:spec"]["f:approvedPlan"].is_null());
    assert_eq!(approver.map(|entry| &entry["manager"]), Some(&json!("weaver-approve")), "{}", live["metadata"]);

    let again = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns, "--yes"]);
    assert_eq!(again.code, 0);
    assert!(again.stderr.contains("is already approved"), "{}", again.stderr);
}

/// In a closed window, an approval is refused as the apply is held: `sync get` says which
/// window and until when, `sync approve` approves nothing. (The window opens every minute for an
/// hour: it is open whenever the test runs.)
#[test]
fn a_closed_window_refuses_approvals_and_sync_get_says_until_when() {
    let (cluster, ns, repo) = setup();
    let windows = json!([{"kind": "deny", "schedule": "* * * * *", "duration": "1h"}]);
    let object = create(&cluster, &ns, "shop", json!({"approval": "Manual", "windows": windows}));
    let mut status = awaiting_status(1);
    status["held"] = json!({"reason": "deny window \"* * * * *\" (UTC, 1h)"});
    cluster.patch_status(&object, &status);

    let got = weaver(&repo, &cluster, &["get", "shop", "-n", &ns]);
    assert!(
        got.stdout.contains("Held by a window: deny window \"* * * * *\" (UTC, 1h), until no opening found ahead"),
        "{}",
        got.stdout
    );
    let refused = weaver(&repo, &cluster, &["approve", "shop", "-n", &ns, "--yes", "--digest", DIGEST]);
    let stderr = refused.failure();
    assert!(
        stderr.contains(&format!(
            "EnvironmentSync {ns}/shop takes no approval now: its deny window \"* * * * *\" (UTC, 1h) holds applies and approvals"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was approved"), "{stderr}");
    assert!(cluster.get(&object).unwrap()["spec"].get("approvedPlan").is_none());
}

/// Writes, from a thread of its own, the status a controller writes once it handled the
/// reconcile request the object's annotation makes: `ready` or awaiting approval.
fn handle_request(cluster: &TestCluster, ns: &str, name: &str, ready: bool) -> std::thread::JoinHandle<()> {
    handle_request_with(cluster, ns, name, move |generation| match ready {
        true => ready_status(generation),
        false => awaiting_status(generation),
    })
}

/// Writes, from a thread of its own, `status(generation)` once the object's annotation makes a
/// reconcile request, saying it handled it.
fn handle_request_with(
    cluster: &TestCluster,
    ns: &str,
    name: &str,
    status: impl Fn(i64) -> Value + Send + 'static,
) -> std::thread::JoinHandle<()> {
    // A client of the thread's own runtime: the cluster's serves requests only while it runs.
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let (ns, name) = (ns.to_string(), name.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime.block_on(async {
            let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
            let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await.unwrap();
            kube::Client::try_from(config).unwrap()
        });
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client,
            &ns,
            &kube::api::ApiResource {
                group: "weaver.example.com".into(),
                version: "v1alpha1".into(),
                api_version: "weaver.example.com/v1beta1".into(),
                kind: "EnvironmentSync".into(),
                plural: "environmentsyncs".into(),
            },
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let live = serde_json::to_value(runtime.block_on(api.get(&name)).unwrap()).unwrap();
            if let Some(asked) = live["metadata"]["annotations"][ANNOTATION].as_str() {
                let generation = live["metadata"]["generation"].as_i64().unwrap();
                let mut status = status(generation);
                status["lastHandledReconcileAt"] = json!(asked);
                let patch = kube::api::Patch::Merge(json!({"status": status}));
                runtime.block_on(api.patch_status(&name, &Default::default(), &patch)).unwrap();
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no reconcile request came");
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn reconcile_waits_for_the_status_handling_its_request() {
    let (cluster, ns, repo) = setup();
    let object = create(&cluster, &ns, "shop", json!({}));
    // An earlier request's status does not count as this one's (it says another outcome, so a
    // reconcile that did not wait would print that one).
    let mut old = awaiting_status(1);
    old["lastHandledReconcileAt"] = json!("2025-01-01T00:00:00Z");
    cluster.patch_status(&object, &old);

    let controller = handle_request(&cluster, &ns, "shop", true);
    let run = weaver(&repo, &cluster, &["reconcile", "shop", "-n", &ns, "--timeout", "1m"]);
    controller.join().unwrap();
    let stdout = run.success();
    assert!(
        stdout.contains(&format!("EnvironmentSync {ns}/shop reconciled: Ready=True (ReconciliationSucceeded)")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("revision: {COMMIT}")) && stdout.contains("Unchanged"), "{stdout}");
    assert!(run.stderr.contains("asked for a reconcile"), "{}", run.stderr);

    // Ended not ready: exit 2.
    cluster.merge_patch(&object, &json!({"metadata": {"annotations": {ANNOTATION: null}}}), MANAGER);
    let controller = handle_request(&cluster, &ns, "shop", false);
    let run = weaver(&repo, &cluster, &["reconcile", "shop", "-n", &ns, "--timeout", "1m"]);
    controller.join().unwrap();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("Ready=False (AwaitingApproval)"), "{}", run.stdout);

    // Nobody handles it: a timeout, exit 1.
    let run = weaver(&repo, &cluster, &["reconcile", "shop", "-n", &ns, "--timeout", "2s"]);
    let stderr = run.failure();
    assert!(stderr.contains("did not handle the request for a reconcile") && stderr.contains("within 2s"), "{stderr}");

    // --no-wait only asks.
    let before = cluster.get(&object).unwrap()["metadata"]["annotations"][ANNOTATION].clone();
    let run = weaver(&repo, &cluster, &["reconcile", "shop", "-n", &ns, "--no-wait"]);
    assert!(run.success().contains("asked for a reconcile"));
    let after = cluster.get(&object).unwrap()["metadata"]["annotations"][ANNOTATION].clone();
    assert!(after.is_string() && after != before, "a new request: {before} then {after}");
}

/// `sync get NAME` lists the previews of `spec.previews` as the status says them: each one's
/// branch, commit (12 characters), state, namespace, URL and why it waits or failed.
#[test]
fn get_of_one_lists_its_previews() {
    let (cluster, ns, repo) = setup();
    let sync = create(&cluster, &ns, "shop", json!({}));
    let mut status = ready_status(1);
    status["previews"] = json!([
        {"name": "a", "branch": "preview/a", "commit": COMMIT, "namespace": format!("{ns}-a"), "state": "Ready"},
        {"name": "c", "branch": "preview/c", "commit": COMMIT, "namespace": format!("{ns}-c"), "state": "Waiting",
         "message": "over spec.previews.max (1)"},
    ]);
    cluster.patch_status(&sync, &status);
    let run = weaver(&repo, &cluster, &["get", "shop", "-n", &ns]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("\nPreviews (spec.previews):\nNAME  BRANCH"), "{}", run.stdout);
    let row = |name: &str| {
        let line =
            run.stdout.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{}", run.stdout));
        line.split_whitespace().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(row("a"), ["a", "preview/a", &COMMIT[..12], "Ready", &format!("{ns}-a"), "-", "-"]);
    assert_eq!(row("c")[..6], ["c", "preview/c", &COMMIT[..12], "Waiting", &format!("{ns}-c"), "-"]);
    assert!(row("c").join(" ").ends_with("over spec.previews.max (1)"), "{}", run.stdout);
    // The same, as the status says them, in -o json.
    let json = weaver(&repo, &cluster, &["get", "shop", "-n", &ns, "-o", "json"]);
    let report: Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert_eq!(report["syncs"][0]["previews"], status["previews"], "{}", json.stdout);
}

/// The status of `sync get_of_one_lists_its_previews`'s previews, in namespace `ns`: `a` Ready
/// with a URL, `c` waiting.
fn previews_status(ns: &str) -> Value {
    let mut status = ready_status(1);
    status["previews"] = json!([
        {"name": "a", "branch": "preview/a", "commit": COMMIT, "namespace": format!("{ns}-a"), "state": "Ready",
         "url": "https://a.preview.example.org/"},
        {"name": "c", "branch": "preview/c", "commit": COMMIT, "namespace": format!("{ns}-c"), "state": "Waiting",
         "message": "over spec.previews.max (1)"},
    ]);
    status
}

/// `previews list`: a row per preview of every EnvironmentSync listed, `--sync` narrowing, `-A`
/// naming each one's namespace, `-o json` as documented; exit 0 (1 for an unknown sync).
#[test]
fn previews_list_shows_each_syncs_previews_as_a_table_and_as_json() {
    let (cluster, ns, repo) = setup();
    let shop = create(&cluster, &ns, "shop", json!({}));
    cluster.patch_status(&shop, &previews_status(&ns));
    let other = create(&cluster, &ns, "other", json!({}));
    let mut status = ready_status(1);
    status["previews"] = json!([{"name": "b", "branch": "review/b", "commit": COMMIT, "namespace": "other-b",
                                 "state": "Failed", "message": "namespace other-b exists and is not this preview's"}]);
    cluster.patch_status(&other, &status);
    // Not ready: still exit 0 (the exit code says nothing of readiness here).
    create(&cluster, &ns, "bare", json!({}));

    let run = repo.weaver_on(&cluster, &["previews", "list", "-n", &ns]);
    let stdout = run.success();
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["SYNC", "NAME", "BRANCH", "COMMIT", "STATE", "NAMESPACE", "URL", "MESSAGE"], "{stdout}");
    assert_eq!(rows.len(), 4, "bare has none: {stdout}");
    assert_eq!(rows[1][..7], ["other", "b", "review/b", &COMMIT[..12], "Failed", "other-b", "-"], "{stdout}");
    let a_namespace = format!("{ns}-a");
    let a = ["shop", "a", "preview/a", &COMMIT[..12], "Ready", &a_namespace, "https://a.preview.example.org/", "-"];
    assert_eq!(rows[2], a, "{stdout}");
    assert!(stdout.lines().nth(3).unwrap().ends_with("over spec.previews.max (1)"), "{stdout}");

    let one = repo.weaver_on(&cluster, &["previews", "list", "-n", &ns, "--sync", "shop"]);
    assert_eq!(one.success().lines().count(), 3, "shop's two: {}", one.stdout);
    let all = repo.weaver_on(&cluster, &["previews", "list", "-A"]);
    assert!(all.success().lines().any(|l| l.starts_with(&format!("{ns}/shop "))), "{}", all.stdout);

    let json = repo.weaver_on(&cluster, &["previews", "list", "-n", &ns, "--sync", "shop", "-o", "json"]);
    let report: Value = serde_json::from_str(json.success()).unwrap();
    assert_eq!((report["schemaVersion"].as_u64(), &report["namespace"]), (Some(1), &json!(ns)));
    assert_eq!(
        report["previews"][0],
        json!({"syncNamespace": ns, "sync": "shop", "name": "a", "branch": "preview/a", "commit": COMMIT,
               "namespace": a_namespace, "state": "Ready", "url": "https://a.preview.example.org/"})
    );
    assert_eq!(report["previews"][1]["message"], "over spec.previews.max (1)");

    let none = repo.weaver_on(&cluster, &["previews", "list", "-n", &ns, "--sync", "bare"]);
    assert!(none.success().is_empty() && none.stderr.contains(&format!("EnvironmentSync {ns}/bare has no preview")));
    let unknown = repo.weaver_on(&cluster, &["previews", "list", "-n", &ns, "--sync", "nope"]);
    assert!(unknown.failure().contains(&format!("EnvironmentSync `nope` not found in namespace `{ns}`")));
}

/// `previews delete` writes the deletion request (the preview's annotation at its commit, with a
/// reconcile request) and, with `--wait`, waits for a status handling it that says Deleted.
#[test]
fn previews_delete_asks_the_controller_and_waits_for_the_deleted_state() {
    let (cluster, ns, repo) = setup();
    let shop = create(&cluster, &ns, "shop", json!({}));
    cluster.patch_status(&shop, &previews_status(&ns));
    let stale = "preview-delete.weaver.example.com/gone";
    cluster.merge_patch(&shop, &json!({"metadata": {"annotations": {stale: COMMIT}}}), MANAGER);

    let run = repo.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "-n", &ns]);
    assert!(run.success().contains(&format!("asked for the deletion of preview a (at {})", &COMMIT[..12])));
    let annotations = cluster.get(&shop).unwrap()["metadata"]["annotations"].clone();
    assert_eq!(annotations["preview-delete.weaver.example.com/a"], COMMIT, "{annotations}");
    assert!(annotations[ANNOTATION].is_string(), "a reconcile asked for: {annotations}");
    assert!(annotations.get(stale).is_none(), "the request of a preview no longer listed goes: {annotations}");

    // A controller that deletes it.
    cluster.merge_patch(&shop, &json!({"metadata": {"annotations": {ANNOTATION: null}}}), MANAGER);
    let deleted_ns = ns.clone();
    let controller = handle_request_with(&cluster, &ns, "shop", move |generation| {
        let mut status = previews_status(&deleted_ns);
        status["observedGeneration"] = json!(generation);
        status["previews"][0]["state"] = json!("Deleted");
        status["previews"][0]["message"] = json!("deleted on request");
        status
    });
    let run = repo.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "-n", &ns, "--wait"]);
    controller.join().unwrap();
    assert!(
        run.success()
            .contains(&format!("preview a of EnvironmentSync {ns}/shop deleted (its objects and namespace {ns}-a)")),
        "{run:?}"
    );
    let again = repo.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "-n", &ns, "--wait"]);
    assert!(again.success().contains("was already deleted"), "{again:?}");

    // Nobody handles it: a timeout, exit 1, naming what was asked.
    let run = repo
        .weaver_on(&cluster, &["previews", "delete", "c", "--sync", "shop", "-n", &ns, "--wait", "--timeout", "2s"]);
    let stderr = run.failure();
    assert!(
        stderr.contains("did not handle the request for the deletion of preview c") && stderr.contains("within 2s"),
        "{stderr}"
    );
    let unknown = repo.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "nope", "-n", &ns]);
    assert!(unknown.failure().contains(&format!("EnvironmentSync `nope` not found in namespace `{ns}`")));
    let flags = repo.weaver_on(&cluster, &["previews", "delete", "a", "--sync", "shop", "--timeout", "2s"]);
    assert!(flags.failure().contains("--wait"), "--timeout is --wait's: {flags:?}");
}
