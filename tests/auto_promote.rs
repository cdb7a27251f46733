//! Auto-promotion from an EnvironmentSync (`spec.promotion`), with the controller in-process
//! against the fake API server or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`, and the
//! git server on loopback taking pushes: `weaver promote`'s gates judged on the interval,
//! nothing pushed while one fails (the condition names it and its evidence), the pins pushed
//! once they pass, applied by the next reconcile when pushed to the tracked branch, and nothing
//! pushed again when nothing is new.

use crate::common;
use crate::gitops::{
    ChartServer, Controller, Source, config_map, environment_sync, get, http_or_skip, spec, tenant, until_status,
};

use std::time::Duration;

use common::cluster::TestCluster;
use serde_json::{Value, json};

const KEY: &[u8] = b"a record key of more than thirty-two bytes";

/// A ConfigMap is healthy when its `ok` says so (neither server runs controllers).
const HEALTH: &str = "healthChecks:\n  - {apiVersion: v1, kind: ConfigMap, current: \"data.ok == 'yes'\"}\n";

/// Environment `env` in `namespace`, release `app` with `greeting` and `ok` (whether its
/// ConfigMap is healthy), and `promotion` (YAML). Chart `app`'s ConfigMap says both.
fn environment(source: &Source, env: &str, namespace: &str, greeting: &str, ok: &str, promotion: &str) {
    source.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  greeting: {{ values.greeting }}\n  ok: \"{{ values.ok }}\"\n",
    );
    source.write(
        &format!("environments/{env}.yaml"),
        &format!(
            "namespace: {namespace}\ncluster: {{lockNamespace: {namespace}}}\n{HEALTH}{promotion}releases:\n  - name: app\n    chart: app\n    values: {{greeting: {greeting}, ok: '{ok}'}}\n"
        ),
    );
}

fn promotion(soak: &str) -> String {
    format!("promotion:\n  from: staging\n  soakTime: {soak}\n  pins: [{{release: app, values: greeting}}]\n")
}

/// Namespace `staging`, where ServiceAccount `deployer` of `namespace` may do anything too.
fn staging(cluster: &TestCluster, namespace: &str) -> String {
    granted_namespace(cluster, namespace, "staging")
}

/// A namespace named after `name`, where ServiceAccount `deployer` of `namespace` may do anything too.
pub(crate) fn granted_namespace(cluster: &TestCluster, namespace: &str, name: &str) -> String {
    let staging = cluster.namespace(name);
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployer", "namespace": staging},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": staging},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}]
    }));
    staging
}

/// The Promoted condition's (status, reason, message).
fn promoted(sync: &Value) -> Option<(String, String, String)> {
    let conditions = sync.pointer("/status/conditions")?.as_array()?;
    let condition = conditions.iter().find(|c| c["type"] == "Promoted")?;
    let text = |key: &str| condition[key].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

fn branch(source: &Source, name: &str) -> Option<git2::Oid> {
    source.repo.find_reference(&format!("refs/heads/{name}")).ok().and_then(|r| r.target())
}

/// The file at `path` in `commit`'s tree.
fn file_at(source: &Source, commit: git2::Oid, path: &str) -> String {
    let tree = source.repo.find_commit(commit).unwrap().tree().unwrap();
    let blob = tree.get_path(std::path::Path::new(path)).unwrap().to_object(&source.repo).unwrap();
    String::from_utf8(blob.as_blob().unwrap().content().to_vec()).unwrap()
}

#[test]
fn a_sync_pushes_the_pins_once_the_gates_pass_applies_them_and_pushes_nothing_new() {
    if !http_or_skip() {
        return;
    }
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let staging_ns = staging(&cluster, &namespace);
    let source = Source::new(&namespace);
    // The pushes update the working tree, which the test commits in.
    weaver_test_support::git::follow_pushes(&source.repo);
    environment(&source, "staging", &staging_ns, "v2", "yes", "");
    environment(&source, "prod", &namespace, "v1", "yes", &promotion("1h"));
    let first = source.commit("staging and prod");
    apply_staging(&cluster, &source);

    let _controller = Controller::start_with_record_key(&cluster, weaver_secrets::record_key::RecordKey::new(KEY));
    let author = json!({"name": "Promoter Bot", "email": "promoter@weaver.invalid"});
    let extra = json!({"environments": ["prod"], "interval": "2s", "promotion": {"interval": "1s", "author": author}});
    let sync = environment_sync(&cluster, &namespace, "prod", spec(&source, extra));
    cluster.create(&sync);

    // Staging was applied less than the hour prod's soakTime asks: nothing is pushed, and the
    // condition says which gate and what it saw.
    let live = until_status(&cluster, &sync, "the soak gate failing", |live| {
        promoted(live).is_some_and(|(status, reason, _)| status == "False" && reason == "GatesFailed")
    });
    let (_, _, message) = promoted(&live).unwrap();
    assert!(message.contains("prod from staging: gate `soak` failed") && message.contains("of 1h"), "{message}");
    let gates = &live["status"]["promotion"]["targets"][0]["gates"];
    let soak = gates.as_array().unwrap().iter().find(|g| g["gate"] == "soak").unwrap();
    assert_eq!(soak["passed"], false);
    let healthy = gates.as_array().unwrap().iter().find(|g| g["gate"] == "healthy").unwrap();
    assert_eq!(healthy["passed"], true, "{gates}");
    let signed = gates.as_array().unwrap().iter().find(|g| g["gate"] == "signed").unwrap();
    assert_eq!(signed["passed"], true, "{gates}");
    assert_eq!(live["status"]["promotion"]["targets"][0]["changes"], json!(["app values greeting: \"v1\" -> \"v2\""]));
    assert_eq!(branch(&source, "main"), Some(first.parse().unwrap()), "nothing pushed");
    assert_eq!(config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "v1");

    // A soak of a second passes: the pins are pushed to main, whose next reconcile applies them.
    environment(&source, "prod", &namespace, "v1", "yes", &promotion("1s"));
    let second = source.commit("soak a second");
    let live = until_status(&cluster, &sync, "the promotion pushed", |live| {
        promoted(live).is_some_and(|(_, reason, _)| reason == "Promoted")
    });
    let pushed = live["status"]["promotion"]["lastPushedCommit"].as_str().unwrap().to_string();
    let (status, _, message) = promoted(&live).unwrap();
    assert_eq!(status, "True");
    assert!(message.contains(&format!("pushed {} to branch main", &pushed[..12])), "{message}");
    assert_eq!(branch(&source, "main").map(|o| o.to_string()), Some(pushed.clone()));
    let commit = source.repo.find_commit(pushed.parse().unwrap()).unwrap();
    assert_eq!(commit.parent_id(0).unwrap().to_string(), second);
    let author = commit.author();
    assert_eq!((author.name().ok(), author.email().ok()), (Some("Promoter Bot"), Some("promoter@weaver.invalid")));
    let file = file_at(&source, commit.id(), "promotions/prod.yaml");
    assert!(file.contains("from: staging") && file.contains("greeting: v2"), "{file}");
    // Recorded after the status is written.
    common::eventually("a Promoted event naming the commit", || {
        let events = cluster.list("events.k8s.io/v1", "Event", "events", &namespace);
        let note = |e: &Value| e["note"].as_str().unwrap_or_default().to_string();
        match events.iter().any(|e| e["reason"] == "Promoted" && note(e).contains(&pushed[..12])) {
            true => Ok(()),
            false => {
                Err(format!("events: {:?}", events.iter().map(|e| (e["reason"].clone(), note(e))).collect::<Vec<_>>()))
            }
        }
    });
    until_status(&cluster, &sync, "the promotion applied", |live| live["status"]["lastAppliedRevision"] == pushed);
    assert_eq!(config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "v2");

    // Judged again with nothing new: up to date, and nothing pushed.
    let attempted = get(&cluster, &sync)["status"]["promotion"]["lastAttemptTime"].clone();
    let live = until_status(&cluster, &sync, "a promotion with nothing new", |live| {
        live["status"]["promotion"]["lastAttemptTime"] != attempted
            && live["status"]["promotion"]["revision"] == pushed
            && promoted(live).is_some_and(|(_, reason, _)| reason == "UpToDate")
    });
    assert_eq!(live["status"]["promotion"]["lastPushedCommit"], pushed);
    assert_eq!(branch(&source, "main").map(|o| o.to_string()), Some(pushed));
}

#[test]
fn a_branch_of_its_own_gets_the_promotion_once_and_an_unhealthy_source_gets_none() {
    if !http_or_skip() {
        return;
    }
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let staging_ns = staging(&cluster, &namespace);
    let source = Source::new(&namespace);
    // Staging's ConfigMap says it is not ok: unhealthy by the environment's rule.
    environment(&source, "staging", &staging_ns, "v2", "no", "");
    environment(&source, "prod", &namespace, "v1", "yes", &promotion("1s"));
    // Prod also has a remote chart, which its plan renders from the controller's pulls.
    let charts = ChartServer::start(Duration::ZERO);
    let prod = std::fs::read_to_string(source.work().join("environments/prod.yaml")).unwrap();
    let remote = "  - name: web\n    chart: stable/web\n    version: 1.0.0\n";
    source.write("environments/prod.yaml", &format!("{prod}{remote}repositories:\n{}", charts.server.as_stable()));
    let cli_cache = tempfile::tempdir().unwrap();
    let cache = [("WEAVER_CHART_CACHE", cli_cache.path().to_str().unwrap())];
    common::weaver_in(&source.work(), &["charts", "lock"], &cache).success();
    source.commit("staging and prod");
    apply_staging(&cluster, &source);

    let _controller = Controller::start_with_record_key(&cluster, weaver_secrets::record_key::RecordKey::new(KEY));
    let push = json!({"branch": "weaver/promote-prod"});
    let author = json!({"name": "Promoter Bot", "email": "promoter@weaver.invalid"});
    let extra = json!({"environments": ["prod"], "interval": "2s",
                       "promotion": {"interval": "1s", "push": push, "author": author}});
    let sync = environment_sync(&cluster, &namespace, "prod", spec(&source, extra));
    cluster.create(&sync);
    let live = until_status(&cluster, &sync, "the healthy gate failing", |live| {
        promoted(live).is_some_and(|(_, reason, message)| reason == "GatesFailed" && message.contains("gate `healthy`"))
    });
    let (_, _, message) = promoted(&live).unwrap();
    assert!(message.contains("ConfigMap") && message.contains("app"), "{message}");
    assert_eq!(branch(&source, "weaver/promote-prod"), None, "nothing pushed");

    // Staging healthy, applied (the branch's parent stays the sync's commit, which has not
    // moved): the branch gets the promotion.
    environment(&source, "staging", &staging_ns, "v2", "yes", "");
    let ok: git2::Oid = source.commit("staging is ok").parse().unwrap();
    until_status(&cluster, &sync, "the sync at the new commit", |live| {
        live["status"]["lastAttemptedRevision"] == ok.to_string()
    });
    apply_staging(&cluster, &source);
    let live = until_status(&cluster, &sync, "the promotion pushed", |live| {
        promoted(live).is_some_and(|(_, reason, _)| reason == "Promoted")
    });
    let pushed = live["status"]["promotion"]["lastPushedCommit"].as_str().unwrap().to_string();
    assert_eq!(branch(&source, "weaver/promote-prod").map(|o| o.to_string()), Some(pushed.clone()));
    assert_eq!(source.repo.find_commit(pushed.parse().unwrap()).unwrap().parent_id(0).unwrap(), ok);
    assert_eq!(branch(&source, "main"), Some(ok), "the tracked branch is left alone");

    // The next runs find the branch holding this change: nothing pushed again.
    let attempted = live["status"]["promotion"]["lastAttemptTime"].clone();
    let live = until_status(&cluster, &sync, "a promotion already pushed", |live| {
        live["status"]["promotion"]["lastAttemptTime"] != attempted
            && promoted(live).is_some_and(|(_, reason, _)| reason == "UpToDate")
    });
    let (_, _, message) = promoted(&live).unwrap();
    assert!(message.contains("has this promotion already"), "{message}");
    assert_eq!(branch(&source, "weaver/promote-prod").map(|o| o.to_string()), Some(pushed.clone()));
    assert_eq!(live["status"]["promotion"]["lastPushedCommit"], pushed);
}

/// A template that loops only in the promotion's render (prod with staging's greeting) is
/// stopped at the EnvironmentSync's spec.timeout: the Promoted condition names the release and
/// the limit, and nothing is pushed.
#[test]
fn a_promotion_s_render_that_loops_is_stopped_at_spec_timeout() {
    if !http_or_skip() {
        return;
    }
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let staging_ns = staging(&cluster, &namespace);
    let source = Source::new(&namespace);
    environment(&source, "staging", &staging_ns, "v2", "yes", "");
    environment(&source, "prod", &namespace, "v1", "yes", &promotion("1s"));
    let nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let looping = format!("{{% if env.name == 'prod' and values.greeting == 'v2' %}}{nested}{{% endif %}}");
    source.write("charts/app/templates/loop.yaml", &looping);
    let first = source.commit("staging and prod, and a loop for prod at v2");
    apply_staging(&cluster, &source);

    let _controller = Controller::start_with_record_key(&cluster, weaver_secrets::record_key::RecordKey::new(KEY));
    let author = json!({"name": "Promoter Bot", "email": "promoter@weaver.invalid"});
    let extra = json!({"environments": ["prod"], "interval": "1h", "timeout": "2s",
                       "promotion": {"interval": "1s", "author": author}});
    let sync = environment_sync(&cluster, &namespace, "prod", spec(&source, extra));
    cluster.create(&sync);
    let live = until_status(&cluster, &sync, "the promotion's render stopped", |live| {
        promoted(live).is_some_and(|(_, reason, _)| reason == "PromotionFailed")
    });
    let (status, _, message) = promoted(&live).unwrap();
    assert_eq!(status, "False");
    assert!(
        message.contains("rendering stopped: rendering took longer than its limit of 2s (spec.timeout)"),
        "{message}"
    );
    assert!(message.contains("release `app`") && message.contains("loop.yaml"), "{message}");
    assert_eq!(branch(&source, "main"), Some(first.parse().unwrap()), "nothing pushed");
}

/// `weaver apply --env staging` of `source`, its records keyed with the controller's key (so the
/// controller reads what it applied).
fn apply_staging(cluster: &TestCluster, source: &Source) {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), KEY).unwrap();
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    common::weaver_in(
        &source.work(),
        &["apply", "--env", "staging", "--kubeconfig", &kubeconfig],
        &[("WEAVER_RECORD_KEY_FILE", key.path().to_str().unwrap())],
    )
    .success();
}
