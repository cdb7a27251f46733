//! Fleets: selecting environments by name, glob and label (`--env`, `--env-selector`), and
//! the commands that plan many environments in one run.

mod common;

use common::Repo;
use serde_json::Value;

/// Chart `app` (one ConfigMap) in five environments: an abstract base with labels, two prod
/// regions extending it, staging and dev.
fn fleet_repo() -> Repo {
    let repo = Repo::minimal();
    repo.write(
        "environments/base.yaml",
        "abstract: true\nlabels: {tier: prod}\nreleases:\n  - name: app\n    chart: app\n",
    )
    .write("environments/prod-eu.yaml", "extends: base\nnamespace: apps-eu\nlabels: {region: eu}\n")
    .write("environments/prod-us.yaml", "extends: base\nnamespace: apps-us\nlabels: {region: us}\n")
    .write(
        "environments/staging.yaml",
        "namespace: apps-staging\nlabels: {tier: staging, region: eu}\nreleases:\n  - name: app\n    chart: app\n",
    );
    repo
}

fn names(envs: &Value) -> Vec<&str> {
    envs["environments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect()
}

#[test]
fn envs_shows_labels_and_takes_the_selection() {
    let repo = fleet_repo();
    let all: Value = serde_json::from_str(repo.weaver(&["envs", "-o", "json"]).success()).unwrap();
    assert_eq!(names(&all), ["base", "dev", "prod-eu", "prod-us", "staging"]);
    let prod_us = &all["environments"][3];
    assert_eq!(prod_us["labels"], serde_json::json!({"region": "us", "tier": "prod"}), "inherited from base");
    let text = repo.weaver(&["envs"]).success().to_string();
    assert!(text.lines().next().unwrap().starts_with("ENVIRONMENT      LABELS"), "{text}");
    assert!(text.contains("prod-us          region=us,tier=prod"), "{text}");

    let selected = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["envs", "-o", "json"];
        all.extend_from_slice(args);
        let out: Value = serde_json::from_str(repo.weaver(&all).success()).unwrap();
        names(&out).into_iter().map(String::from).collect()
    };
    assert_eq!(selected(&["--env", "prod-*"]), ["prod-eu", "prod-us"]);
    assert_eq!(selected(&["--env", "staging,dev"]), ["dev", "staging"]);
    assert_eq!(selected(&["--env", "staging", "--env", "dev"]), ["dev", "staging"]);
    assert_eq!(selected(&["--env-selector", "region in (eu,us),tier=prod"]), ["prod-eu", "prod-us"]);
    assert_eq!(selected(&["--env-selector", "region=eu"]), ["prod-eu", "staging"]);
    // `*` matches the abstract base too, which is never selected.
    assert_eq!(selected(&["--env", "*"]), ["dev", "prod-eu", "prod-us", "staging"]);
}

#[test]
fn names_globs_and_selectors_selecting_nothing_are_errors_naming_the_flag() {
    let repo = fleet_repo();
    let err = repo.weaver(&["render", "--env", "dev,prod"]).failure().to_string();
    assert!(err.contains("error: unknown environment `prod` (--env)"), "{err}");
    assert!(err.contains("environments: dev, prod-eu (region=eu,tier=prod), prod-us (region=us,tier=prod)"), "{err}");
    let err = repo.weaver(&["diff", "--env", "qa-*"]).failure().to_string();
    assert!(err.contains("error: --env `qa-*` matches no environment"), "{err}");
    let err = repo.weaver(&["drift", "--env-selector", "tier=dev"]).failure().to_string();
    assert!(err.contains("error: no environment matches the selection (--env-selector 'tier=dev')"), "{err}");
    let err = repo.weaver(&["envs", "--env-selector", "tier in (a"]).failure().to_string();
    assert!(err.contains("invalid label selector `tier in (a` (--env-selector)"), "{err}");
    let err = repo.weaver(&["render", "--env", "base"]).failure().to_string();
    assert!(err.contains("environment `base` is abstract"), "{err}");
    let err = repo.weaver(&["render"]).failure().to_string();
    assert!(err.contains("error: no environment selected: give --env NAME"), "{err}");
}

#[test]
fn render_of_a_fleet_is_each_environment_s_stream_after_a_summary() {
    let repo = fleet_repo();
    let out = repo.weaver(&["render", "--env", "prod-*"]).success().to_string();
    assert!(
        out.starts_with("# weaver render: 2 environments (prod-eu, prod-us)\n# === environment prod-eu ===\n---\n"),
        "{out}"
    );
    let eu = out.find("namespace: apps-eu").unwrap();
    let us_heading = out.find("# === environment prod-us ===").unwrap();
    assert!(eu < us_heading && out[us_heading..].contains("namespace: apps-us"), "{out}");
    // One plain --env is rendered as it always was, with no heading.
    let dev = repo.weaver(&["render", "--env", "dev"]).success().to_string();
    assert!(dev.starts_with("---\n# Source: "), "{dev}");
}

#[test]
fn an_environment_that_fails_is_reported_and_the_others_still_are_with_exit_code_1() {
    let repo = fleet_repo();
    repo.write("environments/broken.yaml", "namespace: b\nreleases:\n  - name: app\n    chart: missing\n");
    let run = repo.weaver(&["render", "--env", "dev,broken"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("# weaver render: 2 environments (broken, dev); failed: broken\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("# === environment dev ===\n---\n"), "{}", run.stdout);
    assert!(run.stderr.contains("error: environment `broken`: "), "{}", run.stderr);

    let empty = repo.path().join("live.yaml");
    std::fs::write(&empty, "").unwrap();
    let live = empty.to_str().unwrap();
    let run = repo.weaver(&["diff", "--env", "dev,broken", "--live-from", live, "-o", "json", "--exit-code"]);
    assert_eq!(run.code, 1, "a failure wins over changes: {}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"], serde_json::json!({"environments": 2, "changed": 1, "failed": 1}));
    assert!(report["environments"][0]["error"].as_str().unwrap().contains("missing"), "{report:#}");
    assert_eq!(report["environments"][0]["report"], Value::Null);
    assert_eq!(report["environments"][1]["report"]["summary"]["create"], 1);
}

#[test]
fn diff_of_a_fleet_as_text_json_and_markdown() {
    let repo = fleet_repo();
    let empty = repo.path().join("live.yaml");
    std::fs::write(&empty, "").unwrap();
    let live = empty.to_str().unwrap();
    let diff = |args: &[&str]| {
        let mut all = vec!["diff", "--env-selector", "tier=prod", "--live-from", live];
        all.extend_from_slice(args);
        repo.weaver(&all)
    };
    let text = diff(&[]).success().to_string();
    assert!(text.starts_with("2 environments: 2 with changes, 0 failed\nENVIRONMENT  CREATE  UPDATE  DELETE  UNCHANGED  RESULT\nprod-eu      1       0       0       0          changes\n"), "{text}");
    assert!(text.contains("\n=== environment prod-us ===\n+ v1 ConfigMap apps-us/app (release app)\n"), "{text}");
    assert_eq!(diff(&["--exit-code"]).code, 2);

    let report: Value = serde_json::from_str(diff(&["-o", "json"]).success()).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    let environments = report["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 2);
    assert_eq!(environments[1]["environment"], "prod-us");
    assert_eq!(environments[1]["error"], Value::Null);
    // Each environment's report is the one `diff --env NAME -o json` prints.
    assert_eq!(environments[1]["report"]["environment"], "prod-us");
    assert_eq!(environments[1]["report"]["objects"][0]["namespace"], "apps-us");

    let markdown = diff(&["-o", "markdown"]).success().to_string();
    assert!(markdown.starts_with("### weaver diff: 2 environments\n\n"), "{markdown}");
    assert!(markdown.contains("| `prod-eu` | 1 | 0 | 0 | 0 |\n| `prod-us` | 1 | 0 | 0 | 0 |\n"), "{markdown}");
    assert!(
        markdown.contains("<details><summary><code>prod-us</code>: 1 to create, 0 to update, 0 to delete</summary>"),
        "{markdown}"
    );

    let err = diff(&["-o", "html"]).failure().to_string();
    assert!(err.contains("-o html shows one environment: the selection is a fleet of 2 (prod-eu, prod-us)"), "{err}");
}

#[test]
fn a_selection_of_one_environment_applies_as_that_environment_and_of_more_is_refused() {
    let repo = fleet_repo();
    // One environment by glob goes on to connect (and fails there, for want of a cluster).
    let one = repo.weaver(&["apply", "--env", "prod-e*", "--kubeconfig", "/nonexistent"]).failure().to_string();
    assert!(!one.contains("the selection holds") && one.contains("/nonexistent"), "{one}");
    let err = repo.weaver(&["apply", "--env", "prod-*", "--kubeconfig", "/nonexistent"]).failure().to_string();
    assert!(
        err.contains("the selection holds 2 environments (prod-eu, prod-us): apply takes one environment at a time"),
        "{err}"
    );
}

/// [`fleet_repo`]'s `app` in environments `a` and `b`, each in a namespace of the test cluster
/// of its own, and `c` in `a`'s.
fn cluster_fleet(cluster: &common::cluster::TestCluster) -> Repo {
    let repo = Repo::minimal();
    let lock = cluster.namespace("lock");
    let (a, b) = (cluster.namespace("a"), cluster.namespace("b"));
    for (env, ns) in [("a", &a), ("b", &b), ("c", &a)] {
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {lock}}}\nlabels: {{fleet: test}}\nreleases:\n  - name: app\n    chart: app\n"),
        );
    }
    repo
}

#[test]
fn diff_and_drift_of_a_fleet_against_a_cluster() {
    let cluster = common::cluster::TestCluster::start();
    let repo = cluster_fleet(&cluster);
    let weaver = |args: &[&str]| repo.weaver_on(&cluster, args);
    weaver(&["apply", "--env", "a"]).success();
    let run = weaver(&["diff", "--env", "a,b", "-o", "json", "--exit-code"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"], serde_json::json!({"environments": 2, "changed": 1, "failed": 0}));
    assert_eq!(report["environments"][0]["report"]["summary"]["unchanged"], 1);
    assert_eq!(report["environments"][1]["report"]["summary"]["create"], 1);

    // Drift: a is in sync, b was never applied; then a is edited by hand.
    let ns_a = format!("{}-a", cluster.prefix);
    cluster.apply(
        &[serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns_a}, "data": {"greeting": "hi"}})],
        "kubectl-edit",
    );
    let run = weaver(&["drift", "--env", "a,b", "-o", "junit"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let junit = &run.stdout;
    assert!(
        junit.contains("<testsuites name=\"weaver drift\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\">"),
        "{junit}"
    );
    assert!(junit.contains("  <testsuite name=\"a\" tests=\"1\" failures=\"1\""), "{junit}");
    assert!(
        junit.contains("  <testsuite name=\"b\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\">"),
        "{junit}"
    );
    let text = weaver(&["drift", "--env-selector", "fleet=test", "--env", "a,b"]).stdout;
    assert!(text.starts_with("2 environments: 1 drifted, 0 failed\n"), "{text}");
    assert!(text.contains("=== environment a ===\n~ v1 ConfigMap"), "{text}");
}

#[test]
fn two_environments_owning_one_object_of_a_cluster_are_refused_naming_both() {
    let cluster = common::cluster::TestCluster::start();
    let repo = cluster_fleet(&cluster);
    // d fails on its own: its error is told as well as the collision.
    repo.write("environments/d.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: nowhere\n");
    let run = repo.weaver_on(&cluster, &["diff", "--env", "a,b,c,d"]);
    let err = run.failure();
    let ns_a = format!("{}-a", cluster.prefix);
    assert!(err.contains("1 object(s) would be owned by two selected environments in the same cluster"), "{err}");
    assert!(err.contains(&format!("ConfigMap {ns_a}/app in ")), "{err}");
    assert!(err.contains(": environments `a` and `c`"), "{err}");
    assert!(err.contains("nowhere"), "the failed environment d is told of: {err}");
    // Without c there is no collision.
    assert_eq!(repo.weaver_on(&cluster, &["diff", "--env", "a,b"]).code, 0);
}
