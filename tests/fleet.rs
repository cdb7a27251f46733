//! Fleets: selecting environments by name, glob and label (`--env`, `--env-selector`), and
//! the commands that plan many environments in one run.

use crate::common;

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
fn a_fleet_apply_refuses_a_cycle_a_need_of_a_later_wave_and_an_unknown_need_before_connecting() {
    let repo = fleet_repo();
    repo.write("environments/x.yaml", "namespace: x\nneeds: [y]\nreleases:\n  - name: app\n    chart: app\n")
        .write("environments/y.yaml", "namespace: y\nneeds: [dev, x]\nreleases:\n  - name: app\n    chart: app\n")
        .write("environments/early.yaml", "namespace: e\nwave: 1\nneeds: [late]\n")
        .write("environments/late.yaml", "namespace: l\nwave: 2\n")
        .write("environments/typo.yaml", "namespace: t\nneeds:\n  - stagin\n");
    // Nothing connects: the kubeconfig does not exist, and the errors come first.
    let apply = |envs: &str| repo.weaver(&["apply", "--env", envs, "--kubeconfig", "/nonexistent"]);
    let err = apply("dev,x,y").failure().to_string();
    assert!(err.contains("error: environments/x.yaml:2:9: cycle in environments' `needs`: x → y → x"), "{err}");
    assert!(err.contains("nothing was applied") && !err.contains("/nonexistent"), "{err}");
    let err = apply("early,late").failure().to_string();
    assert!(
        err.contains("environments/early.yaml:3:9: environment `early` (wave 1) needs `late`, of a later wave (2)"),
        "{err}"
    );
    let err = apply("typo,dev").failure().to_string();
    assert!(
        err.contains("environments/typo.yaml:3:5: environment `typo` needs `stagin`, which is not an environment"),
        "{err}"
    );
    assert!(err.contains("help: environments: "), "{err}");
    // A fleet of one environment goes on to connect (and fails there, for want of a cluster).
    let one = apply("prod-e*");
    assert_eq!(one.code, 1);
    assert!(
        one.stderr.contains("error: environment `prod-eu`: ") && one.stderr.contains("/nonexistent"),
        "{}",
        one.stderr
    );
    assert!(one.stdout.starts_with("1 environments: 0 applied, 1 failed,"), "{}", one.stdout);
}
#[test]
fn diff_and_drift_of_a_fleet_against_a_cluster() {
    let cluster = common::cluster::TestCluster::start();
    let repo = Repo::cluster_fleet(&cluster);
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
    let repo = Repo::cluster_fleet(&cluster);
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

/// A fleet apply refuses the collision before anything is written (issue 53: `diff` refused
/// it, `apply` applied both, the second taking over the first's objects): no object, no
/// record, no lock; a dry run is refused alike, and so is a fleet drift correction.
#[test]
fn a_fleet_apply_of_two_environments_owning_one_object_writes_nothing() {
    let cluster = common::cluster::TestCluster::start();
    let repo = Repo::cluster_fleet(&cluster);
    let (ns_a, ns_b) = (format!("{}-a", cluster.prefix), format!("{}-b", cluster.prefix));
    for args in [&["apply", "--env", "a,b,c"][..], &["apply", "--env-selector", "fleet=test", "--dry-run"]] {
        let err = repo.weaver_on(&cluster, args).failure().to_string();
        assert!(
            err.contains("1 object(s) would be owned by two selected environments in the same cluster, each applying its own and pruning the other's; nothing was applied"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&format!("ConfigMap {ns_a}/app in ")), "{err}");
        assert!(err.contains(": environments `a` and `c`"), "{err}");
    }
    let config_map = |ns: &str| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}});
    assert_eq!(cluster.get(&config_map(&ns_a)), None, "nothing of a (or c) was applied");
    assert_eq!(cluster.get(&config_map(&ns_b)), None, "b, which collides with no one, was not applied either");
    for ns in [&ns_a, &ns_b, &format!("{}-lock", cluster.prefix)] {
        let records = cluster.list("v1", "Secret", "secrets", ns);
        assert!(records.is_empty(), "no release record in {ns}: {records:?}");
        let leases = cluster.list("coordination.k8s.io/v1", "Lease", "leases", ns);
        assert!(leases.is_empty(), "no lock taken in {ns}: {leases:?}");
    }
    let err = repo.weaver_on(&cluster, &["drift", "--env", "a,c", "--correct"]).failure().to_string();
    assert!(err.contains("--correct corrects one environment"), "{err}");
    // Without c, the same fleet applies.
    repo.weaver_on(&cluster, &["apply", "--env", "a,b"]).success();
    assert!(cluster.get(&config_map(&ns_a)).is_some() && cluster.get(&config_map(&ns_b)).is_some());
}

/// An object applied by an environment the selection leaves out: a fleet apply of which one
/// environment would take it is refused before any of them writes (alone, that environment's
/// apply refuses it under its lock, but by then the others may have written); with
/// `--take-ownership` it moves.
#[test]
fn a_fleet_apply_that_would_take_an_unselected_environment_s_object_writes_nothing() {
    let cluster = common::cluster::TestCluster::start();
    let repo = Repo::cluster_fleet(&cluster);
    let (ns_a, ns_b) = (format!("{}-a", cluster.prefix), format!("{}-b", cluster.prefix));
    repo.weaver_on(&cluster, &["apply", "--env", "a"]).success();
    let config_map = |ns: &str| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}});
    let before = cluster.get(&config_map(&ns_a)).expect("a applied its ConfigMap");

    let err = repo.weaver_on(&cluster, &["apply", "--env", "b,c"]).failure().to_string();
    assert!(err.contains("1 object(s) would be owned by two environments in the same cluster"), "{err}");
    assert!(err.contains(&format!("ConfigMap {ns_a}/app in ")), "{err}");
    assert!(
        err.contains(
            "environment `c`, and environment `a` (release app), whose labels it carries and which is not selected"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was applied") && err.contains("--take-ownership"), "{err}");
    let after = cluster.get(&config_map(&ns_a)).expect("a's ConfigMap");
    assert_eq!(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"], "c wrote a's ConfigMap");
    assert_eq!(cluster.get(&config_map(&ns_b)), None, "b, which takes nothing, was applied");
    let leases = cluster.list("coordination.k8s.io/v1", "Lease", "leases", &format!("{}-lock", cluster.prefix));
    let locked: Vec<&str> = leases.iter().filter_map(|l| l["metadata"]["name"].as_str()).collect();
    assert!(!locked.contains(&"weaver-lock-b") && !locked.contains(&"weaver-lock-c"), "{locked:?}");

    repo.weaver_on(&cluster, &["apply", "--env", "b,c", "--take-ownership"]).success();
    let moved = cluster.get(&config_map(&ns_a)).expect("the ConfigMap");
    assert_eq!(moved["metadata"]["labels"]["weaver.example.com/environment"], "c", "{moved}");
    assert!(cluster.get(&config_map(&ns_b)).is_some(), "b was not applied");
}

/// Environments of chart `app`, each in its own namespace of the test cluster: `(name, extra
/// lines of its file)`, which follow `cluster:`'s `lockNamespace` (indented, they are more of
/// `cluster:`); `bad` ones name a chart that does not exist.
fn apply_fleet(cluster: &common::cluster::TestCluster, envs: &[(&str, &str)]) -> Repo {
    let repo = Repo::minimal();
    let lock = cluster.namespace("lock");
    for (env, extra) in envs {
        let chart = if env.starts_with("bad") { "missing" } else { "app" };
        let ns = if env.starts_with("bad") { format!("{}-bad", cluster.prefix) } else { cluster.namespace(env) };
        repo.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {ns}\ncluster:\n  lockNamespace: {lock}\n{extra}releases:\n  - name: app\n    chart: {chart}\n"),
        );
    }
    repo
}

/// The position of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{text}"))
}

#[test]
fn a_fleet_applies_wave_by_wave_each_environment_after_those_it_needs() {
    let cluster = common::cluster::TestCluster::start();
    let repo = apply_fleet(
        &cluster,
        &[("zeta", ""), ("alpha", "wave: 1\nneeds: [mu]\n"), ("mu", "wave: 1\n"), ("omega", "wave: 2\n")],
    );
    let run = repo.weaver_on(&cluster, &["apply", "--env", "zeta,alpha,mu,omega", "--max-parallel", "4"]);
    let out = run.success();
    let summary = &out[out.find("4 environments: ").unwrap_or_else(|| panic!("no summary in:\n{out}"))..];
    assert!(
        summary.starts_with("4 environments: 4 applied, 0 failed, 0 interrupted, 0 skipped, 0 not started\n"),
        "{out}"
    );
    // The table is in the order applied: zeta (wave 0), then mu before alpha, which needs it.
    let table: Vec<&str> = summary.lines().skip(2).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(table, ["zeta", "mu", "alpha", "omega"], "{out}");
    assert!(out.contains("zeta         0     applied  1        0           0          0       0"), "{out}");
    // Each environment's objects are told as they are applied, named by their environment; an
    // environment starts once those it waits for are done.
    let created = |env: &str| line_of(out, &format!("[{env}] created v1 ConfigMap"));
    assert!(created("zeta") < created("mu") && created("mu") < created("alpha"), "{out}");
    assert!(created("alpha") < created("omega"), "{out}");
    for env in ["zeta", "alpha", "mu", "omega"] {
        let ns = format!("{}-{env}", cluster.prefix);
        let object =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": ns}});
        assert!(cluster.get(&object).is_some(), "{env} applied");
    }
}

#[test]
fn a_failure_skips_the_environments_that_need_it_and_the_later_waves_and_fail_fast_stops_the_rest() {
    let cluster = common::cluster::TestCluster::start();
    let repo = apply_fleet(
        &cluster,
        &[("first", ""), ("bad", ""), ("needs-bad", "needs: [bad]\n"), ("other", ""), ("second", "wave: 1\n")],
    );
    let run = repo.weaver_on(&cluster, &["apply", "--env", "first,bad,needs-bad,other,second", "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("error: environment `bad`: "), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["summary"],
        serde_json::json!({"environments": 5, "changed": 2, "failed": 1, "applied": 2, "interrupted": 0, "skipped": 2, "notStarted": 0})
    );
    let states: Vec<(&str, &str, Value)> = report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["environment"].as_str().unwrap(), e["state"].as_str().unwrap(), e["reason"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("bad", "failed", Value::Null),
            ("first", "applied", Value::Null),
            ("needs-bad", "skipped", "it needs environment `bad`, which failed".into()),
            ("other", "applied", Value::Null),
            ("second", "skipped", "wave 0 did not complete: environment `bad` failed".into()),
        ]
    );
    let first = &report["environments"][1];
    assert_eq!(first["wave"], 0);
    assert_eq!(first["report"]["environment"], "first", "the environment's own `apply -o json`");
    assert_eq!(first["report"]["summary"]["created"], 1);
    assert!(report["environments"][0]["error"].as_str().unwrap().contains("missing"), "{report:#}");
    assert_eq!(report["environments"][2]["report"], Value::Null);

    // --fail-fast, one at a time (bad first, in name order): once bad failed, nothing more
    // starts, where without it first and other applied.
    let run = repo.weaver_on(&cluster, &["apply", "--env", "bad,first,other", "--fail-fast", "--max-parallel", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out = &run.stdout;
    assert!(out.starts_with("3 environments: 0 applied, 1 failed, 0 interrupted, 0 skipped, 2 not started\n"), "{out}");
    assert!(out.contains("\nbad          0     failed"), "{out}");
    assert!(out.contains("\nfirst        0     not started  -        -"), "{out}");
    assert!(out.contains("\nother        0     not started  -        -"), "{out}");
    assert!(out.contains("an environment failed (--fail-fast)\n"), "{out}");
}

/// The test kubeconfig with contexts `names` added, each a copy of its current context.
fn kubeconfig_with_contexts(cluster: &common::cluster::TestCluster, dir: &std::path::Path, names: &[&str]) -> String {
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let mut config: Value = serde_saphyr::from_str(&text).unwrap();
    let current = config["current-context"].as_str().unwrap().to_string();
    let contexts = config["contexts"].as_array_mut().unwrap();
    let context = contexts.iter().find(|c| c["name"] == current.as_str()).unwrap().clone();
    for name in names {
        let mut copy = context.clone();
        copy["name"] = (*name).into();
        contexts.push(copy);
    }
    let path = dir.join("kubeconfig-contexts");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn environments_in_two_contexts_of_one_server_share_its_budget_of_requests_its_discovery_and_a_context_s_connections_in_apply_diff_and_drift()
 {
    let cluster = common::cluster::TestCluster::start();
    let repo =
        apply_fleet(&cluster, &[("a", "  context: ctx-a\n"), ("b", "  context: ctx-b\n"), ("c", "  context: ctx-a\n")]);
    let kubeconfig = kubeconfig_with_contexts(&cluster, repo.path(), &["ctx-a", "ctx-b"]);
    let fake = cluster.fake("counting requests in flight and discovery requests");
    if let Some(fake) = fake {
        // Slow answers, so that requests overlap.
        fake.inject(weaver_test_apiserver::Fault::delay("*", "/", std::time::Duration::from_millis(20)).times(100_000));
        fake.reset_peak_in_flight();
        fake.reset_connections();
        fake.clear_requests();
    }
    let weaver = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", &kubeconfig, "-v"];
        all.extend_from_slice(args);
        repo.weaver(&all)
    };
    // Three environments at once, each keeping up to 2 requests in flight, send at most 2 at
    // once to their one server between them; discovery (aggregated: /api and /apis) is read
    // once for the three; a and c, of one context, share its connections, so there are no
    // more than 2 for each context (a client per environment would open about 2 for each
    // environment). So for apply, diff and drift.
    let within_one_budget = |what: &str| {
        if let Some(fake) = fake {
            let peak = fake.peak_in_flight();
            assert!((1..=2).contains(&peak), "{what}: {peak} requests at once");
            let connections = fake.connections();
            assert!((2..=4).contains(&connections), "{what}: {connections} connections");
            fake.reset_connections();
            let discovery = fake.requests().iter().filter(|r| r.path == "/apis").count();
            assert_eq!(discovery, 1, "{what}: {:#?}", fake.requests().iter().map(|r| &r.path).collect::<Vec<_>>());
            fake.reset_peak_in_flight();
            fake.clear_requests();
        }
    };
    let run = weaver(&["apply", "--env", "a,b,c", "--concurrency", "2"]);
    assert!(run.success().contains("3 environments: 3 applied"), "{}", run.stdout);
    assert!(run.stderr.contains("environment `a`: applying to context `ctx-a` ("), "{}", run.stderr);
    assert!(run.stderr.contains("environment `b`: applying to context `ctx-b` ("), "{}", run.stderr);
    assert!(run.stderr.contains("environment `c`: applying to context `ctx-a` ("), "{}", run.stderr);
    within_one_budget("apply");
    let run = weaver(&["diff", "--env", "a,b,c", "--concurrency", "2"]);
    assert!(run.success().starts_with("3 environments: 0 with changes, 0 failed"), "{}", run.stdout);
    assert!(run.stderr.contains("environment `b`: comparing with context `ctx-b` ("), "{}", run.stderr);
    within_one_budget("diff");
    let run = weaver(&["drift", "--env", "a,b,c", "--concurrency", "2"]);
    assert!(run.success().starts_with("3 environments: 0 drifted, 0 failed"), "{}", run.stdout);
    within_one_budget("drift");
}

#[test]
fn environments_of_one_context_send_their_requests_over_the_same_connections() {
    let cluster = common::cluster::TestCluster::start();
    let Some(fake) = cluster.fake("counting the connections the server accepted") else { return };
    let names = ["e1", "e2", "e3", "e4", "e5", "e6"];
    let repo = apply_fleet(&cluster, &names.map(|name| (name, "")));
    fake.reset_connections();
    // One request in flight at a time: a client per environment would open at least one
    // connection for each of the 6; one client for the context reuses its connections (a
    // second may open while the first still delivers an answer's body).
    let run = repo.weaver_on(&cluster, &["diff", "--env", "e*", "--concurrency", "1"]);
    assert!(run.stdout.starts_with("6 environments: 6 with changes, 0 failed"), "{}\n{}", run.stdout, run.stderr);
    let connections = fake.connections();
    assert!((1..=3).contains(&connections), "{connections} connections for 6 environments of one context");
}

#[test]
fn an_interrupted_fleet_apply_stops_its_environments_as_one_apply_does_and_starts_no_more() {
    let cluster = common::cluster::TestCluster::start();
    if cluster.is_fake() {
        // A real test cluster runs no pods; on the fake, Deployments stay unready too.
        cluster.fake("unready Deployments").unwrap().set_auto_ready(false);
    }
    let repo = apply_fleet(&cluster, &[("waits", ""), ("locked", ""), ("later", "wave: 1\n")]);
    repo.write(
        "charts/app/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: registry.example/web:1}]\n",
    );
    // `locked`'s lock is held by another apply, which keeps renewing it (as far as this run sees).
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    cluster.create(&serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-locked", "namespace": format!("{}-lock", cluster.prefix)},
        "spec": {"holderIdentity": "alice@ci pid 1", "acquireTime": now, "renewTime": now, "leaseDurationSeconds": 300},
    }));
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let args = ["--kubeconfig", &kubeconfig, "apply", "--env", "waits,locked,later", "--wait", "-o", "json"];
    let child = repo.spawn(&args);
    let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": format!("{}-waits", cluster.prefix)}});
    common::eventually("the Deployment of `waits` to be applied", || {
        cluster.get(&deployment).map(|_| ()).ok_or_else(|| "not yet".to_string())
    });
    // `waits` waits for its Deployment, `locked` for its lock; then SIGTERM, as a cancelled CI
    // job gets.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("weaver: interrupted; finishing requests in flight"), "{stderr}");
    assert!(stderr.contains("waiting for the lock of environment `locked`"), "{stderr}");
    assert!(stderr.contains("the apply of environment `waits` interrupted"), "{stderr}");
    assert!(stderr.contains("the apply of environment `locked` interrupted"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(
        report["summary"],
        serde_json::json!({"environments": 3, "changed": 1, "failed": 0, "applied": 0, "interrupted": 2, "skipped": 0, "notStarted": 1})
    );
    let env = |name: &str| {
        let all = report["environments"].as_array().unwrap();
        all.iter().find(|e| e["environment"] == name).unwrap().clone()
    };
    // `waits` stopped waiting for readiness, and recorded what it applied.
    assert_eq!(env("waits")["state"], "interrupted");
    assert_eq!(env("waits")["report"]["summary"]["created"], 2);
    assert_eq!(env("waits")["report"]["releases"][0]["status"], "failed");
    // `locked` stopped waiting for its lock: it applied nothing.
    assert_eq!(env("locked")["state"], "interrupted");
    assert_eq!(env("locked")["report"]["releases"], serde_json::json!([]));
    assert_eq!(env("later")["state"], "notStarted");
    assert_eq!(env("later")["reason"], "the apply was interrupted");
    // `later` never started: nothing of it is in the cluster.
    let later = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": format!("{}-later", cluster.prefix)}});
    assert!(cluster.get(&later).is_none());
}

#[test]
fn shards_and_waves_split_a_selection_over_runners_the_same_way_every_time() {
    let repo = fleet_repo();
    repo.write("environments/prod-eu.yaml", "extends: base\nnamespace: apps-eu\nlabels: {region: eu}\nwave: 1\n")
        .write("environments/prod-us.yaml", "extends: base\nnamespace: apps-us\nlabels: {region: us}\nwave: 1\n");
    let selected = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["envs", "-o", "json", "--env", "*"];
        all.extend_from_slice(args);
        let out: Value = serde_json::from_str(repo.weaver(&all).success()).unwrap();
        names(&out).into_iter().map(String::from).collect()
    };
    assert_eq!(selected(&["--wave", "1"]), ["prod-eu", "prod-us"]);
    let envs: Value = serde_json::from_str(repo.weaver(&["envs", "-o", "json", "--env", "prod-*"]).success()).unwrap();
    assert_eq!(
        (&envs["environments"][1]["wave"], &envs["environments"][1]["needs"]),
        (&1.into(), &serde_json::json!([]))
    );
    assert_eq!(selected(&["--wave", "0"]), ["dev", "staging"]);
    // Round-robin within each wave, by name: each runner gets part of every wave.
    assert_eq!(selected(&["--shard", "1/2"]), ["dev", "prod-eu"]);
    assert_eq!(selected(&["--shard", "2/2"]), ["prod-us", "staging"]);
    assert_eq!(selected(&["--shard", "2/2", "--wave", "1"]), ["prod-us"]);
    // A runner with nothing to do says so and succeeds.
    let empty = repo.path().join("live.yaml");
    std::fs::write(&empty, "").unwrap();
    let run =
        repo.weaver(&["diff", "--env", "*", "--wave", "1", "--shard", "3/3", "--live-from", empty.to_str().unwrap()]);
    assert!(run.success().starts_with("0 environments: 0 with changes, 0 failed\n"), "{}", run.stdout);
    let err = repo.weaver(&["render", "--env", "*", "--wave", "7"]).failure().to_string();
    assert!(err.contains("error: no selected environment is in wave 7 (--env * --wave 7)"), "{err}");
    assert!(err.contains("help: the waves of the selection: 0, 1"), "{err}");
    let err = repo.weaver(&["render", "--env", "*", "--shard", "0/2"]).failure().to_string();
    assert!(err.contains("invalid value '0/2' for '--shard <INDEX/COUNT>': expected INDEX/COUNT"), "{err}");
    let err = repo.weaver(&["render", "--wave", "1"]).failure().to_string();
    assert!(err.contains("error: no environment selected"), "{err}");
}
