//! Ownership between environments across runs: an object labelled as one environment's is not
//! taken by another environment's apply (nor previewed as taken by its diff) unless that one
//! takes ownership (`--take-ownership`); a rollback or a drift correction never takes it back.
//! Objects moving between releases of one environment move as they did.

use crate::common;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

const ENVIRONMENT: &str = "weaver.example.com/environment";
const RELEASE: &str = "weaver.example.com/release";

fn config_map(name: &str, namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}})
}

/// The live object's environment and release labels.
fn owner(cluster: &TestCluster, object: &Value) -> (String, String) {
    let live = cluster.get(object).expect("the object is live");
    let label = |name: &str| live["metadata"]["labels"][name].as_str().unwrap_or_default().to_string();
    (label(ENVIRONMENT), label(RELEASE))
}

/// The names of the release records of `environment` in `namespace`.
fn records_of(cluster: &TestCluster, namespace: &str, environment: &str) -> Vec<String> {
    let secrets = cluster.list("v1", "Secret", "secrets", namespace);
    let records = secrets.iter().filter(|s| s["metadata"]["labels"][ENVIRONMENT] == environment);
    records.map(|s| s["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

/// `a` applies `app`; `c` (another environment, its release rendering the same ConfigMap) is
/// refused by apply, dry run and diff until it takes ownership; then `a` is refused in turn,
/// and neither a's rollback nor its drift correction takes the object back.
#[test]
fn an_object_of_another_environment_is_taken_only_with_take_ownership() {
    let cluster = TestCluster::start();
    let repo = Repo::cluster_fleet(&cluster);
    let weaver = |args: &[&str]| repo.weaver_on(&cluster, args);
    let ns = format!("{}-a", cluster.prefix);
    let object = config_map("app", &ns);
    weaver(&["apply", "--env", "a"]).success();
    // A second revision of a, for its rollback below.
    repo.write("charts/app/values.yaml", "greeting: hi\n");
    weaver(&["apply", "--env", "a"]).success();
    repo.write("charts/app/values.yaml", "greeting: hello\n");
    assert_eq!(owner(&cluster, &object), ("a".into(), "app".into()));

    let refused = format!("v1 ConfigMap {ns}/app (release app) is environment `a`'s (release app)");
    for args in [&["apply", "--env", "c"][..], &["apply", "--env", "c", "--dry-run"]] {
        let err = weaver(args).failure().to_string();
        assert!(
            err.contains("error: environment `c` would take 1 object(s) from another environment, each applying its own over the other's; nothing was applied"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&refused), "{err}");
        assert!(
            err.contains("help: remove the object(s) from one of the environments, or pass --take-ownership to move them to environment `c`"),
            "{err}"
        );
    }
    assert_eq!(owner(&cluster, &object), ("a".into(), "app".into()), "the object is still a's");
    assert_eq!(cluster.get(&object).unwrap()["data"]["greeting"], "hi", "and unchanged");
    assert!(records_of(&cluster, &ns, "c").is_empty(), "no record of c was written");

    // The diff shows the conflict and fails as the apply would; with the flag it previews it.
    let diff = weaver(&["diff", "--env", "c"]);
    assert_eq!(diff.code, 1, "{}", diff.stderr);
    assert!(diff.stdout.contains(&format!("~ v1 ConfigMap {ns}/app (release app)\n! owned by environment `a` (release app): an apply takes it only with --take-ownership\n")), "{}", diff.stdout);
    assert!(
        diff.stdout.contains("0 to create, 1 to update, 0 to delete, 0 unchanged; 1 owned by another environment"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stderr.contains(&refused) && diff.stderr.contains("an apply would refuse it and write nothing"),
        "{}",
        diff.stderr
    );
    let json = weaver(&["diff", "--env", "c", "-o", "json"]);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["objects"][0]["ownedBy"], json!({"environment": "a", "release": "app"}));
    for format in ["markdown", "html"] {
        let run = weaver(&["diff", "--env", "c", "-o", format]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stdout.contains("owned by environment"), "{format}: {}", run.stdout);
    }
    let preview = weaver(&["diff", "--env", "c", "--take-ownership", "-o", "json", "--exit-code"]);
    assert_eq!(preview.code, 2, "a change, no error: {}", preview.stderr);
    let report: Value = serde_json::from_str(&preview.stdout).unwrap();
    assert_eq!(report["objects"][0]["ownedBy"]["environment"], "a");
    // b owns nothing of anyone's: its diff has no `ownedBy`.
    let report: Value = serde_json::from_str(weaver(&["diff", "--env", "b", "-o", "json"]).success()).unwrap();
    assert_eq!(report["objects"][0].get("ownedBy"), None);

    let out = weaver(&["apply", "--env", "c", "--take-ownership"]).success().to_string();
    assert!(
        out.contains(&format!(
            "configured v1 ConfigMap {ns}/app (release app): taken from environment `a` (release app)"
        )),
        "{out}"
    );
    assert_eq!(owner(&cluster, &object), ("c".into(), "app".into()));
    let history: Value =
        serde_json::from_str(weaver(&["history", "--env", "c", "app", "-o", "json"]).success()).unwrap();
    assert_eq!(
        history["revisions"][0]["takenFrom"],
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "name": "app", "environment": "a", "release": "app"}])
    );
    // Applied again, c owns it: nothing is taken, nothing is recorded as taken.
    weaver(&["apply", "--env", "c"]).success();

    // Now a is refused, and neither its rollback nor its drift correction takes it back.
    let theirs = format!("v1 ConfigMap {ns}/app (release app) is environment `c`'s (release app)");
    let err = weaver(&["apply", "--env", "a"]).failure().to_string();
    assert!(err.contains("environment `a` would take 1 object(s)") && err.contains(&theirs), "{err}");
    let err = weaver(&["rollback", "--env", "a", "app"]).failure().to_string();
    assert!(err.contains(&theirs), "{err}");
    let correct = weaver(&["drift", "--env", "a", "--correct"]);
    assert_eq!(correct.code, 1, "{}\n{}", correct.stdout, correct.stderr);
    assert!(correct.stderr.contains(&theirs), "{}", correct.stderr);
    assert_eq!(owner(&cluster, &object), ("c".into(), "app".into()), "still c's");
    assert_eq!(records_of(&cluster, &ns, "a").len(), 2, "a recorded nothing more");
}

/// Chart `shared` renders ConfigMap `shared` and Secret `shared` whatever its release's name.
fn with_shared_chart(repo: &Repo) {
    repo.write("charts/shared/chart.yaml", "name: shared\nversion: 0.1.0\n")
        .write(
            "charts/shared/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  by: {{ release.name }}\n",
        )
        .write(
            "charts/shared/templates/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shared\nstringData:\n  token: not-a-real-token-8c1f\n",
        );
}

/// Environments whose releases of different names render one object: the second environment
/// sees the object although its release label names a release it does not have.
#[test]
fn an_object_of_another_environment_s_release_of_another_name_is_refused_too() {
    let cluster = TestCluster::start();
    let repo = Repo::minimal();
    with_shared_chart(&repo);
    let (ns, lock) = (cluster.namespace("x"), cluster.namespace("lock"));
    for (env, release) in [("one", "first"), ("two", "second")] {
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nreleases:\n  - name: {release}\n    chart: shared\n"),
        );
    }
    let weaver = |args: &[&str]| repo.weaver_on(&cluster, args);
    weaver(&["apply", "--env", "one"]).success();
    let err = weaver(&["apply", "--env", "two"]).failure().to_string();
    for kind in ["ConfigMap", "Secret"] {
        let refused = format!("v1 {kind} {ns}/shared (release second) is environment `one`'s (release first)");
        assert!(err.contains(&refused), "{err}");
    }
    let object = config_map("shared", &ns);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared", "namespace": ns}});
    for object in [&object, &secret] {
        assert_eq!(owner(&cluster, object), ("one".into(), "first".into()));
    }
    assert!(records_of(&cluster, &ns, "two").is_empty());
    weaver(&["apply", "--env", "two", "--take-ownership"]).success();
    for object in [&object, &secret] {
        assert_eq!(owner(&cluster, object), ("two".into(), "second".into()));
    }
}

/// Moving an object from one release of an environment to another is a refactor, not a
/// conflict: applying the release it moved to alone takes it, and the release it left, applied
/// next, no longer prunes it (its label names the other release).
#[test]
fn an_object_moves_between_releases_of_one_environment_without_take_ownership() {
    let cluster = TestCluster::start();
    let repo = Repo::minimal();
    with_shared_chart(&repo);
    let (ns, lock) = (cluster.namespace("x"), cluster.namespace("lock"));
    let env = |releases: &str| {
        repo.write(
            "environments/dev.yaml",
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nreleases:\n{releases}"),
        );
    };
    env("  - name: old\n    chart: shared\n");
    let weaver = |args: &[&str]| repo.weaver_on(&cluster, args);
    weaver(&["apply", "--env", "dev"]).success();
    let object = config_map("shared", &ns);
    assert_eq!(owner(&cluster, &object), ("dev".into(), "old".into()));
    // `shared` moves to release `new`; `old` now renders the app chart's ConfigMap `old`.
    env("  - name: old\n    chart: app\n  - name: new\n    chart: shared\n");
    let out = weaver(&["apply", "--env", "dev", "-r", "new"]).success().to_string();
    assert!(out.contains(&format!("configured v1 ConfigMap {ns}/shared (release new)\n")), "{out}");
    assert_eq!(owner(&cluster, &object), ("dev".into(), "new".into()));
    let out = weaver(&["apply", "--env", "dev", "-r", "old"]).success().to_string();
    assert!(!out.contains("pruned v1 ConfigMap"), "{out}");
    assert_eq!(owner(&cluster, &object), ("dev".into(), "new".into()), "not pruned by `old`");
    let out = weaver(&["apply", "--env", "dev"]).success().to_string();
    assert!(out.contains("Apply summary: 0 created, 0 configured, 3 unchanged, 0 pruned"), "{out}");
}
