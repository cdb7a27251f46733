//! `weaver promote` against a cluster (the in-process fake, or a real one with
//! WEAVER_TEST_KUBECONFIG): pins taken from what the source last applied (its signed records),
//! gates that refuse an unhealthy, drifted, too recently applied or edited source naming the
//! evidence, a commit on a new branch that changes exactly the pins, waves over three
//! environments. `soakTime` is a second, so the tests wait two.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

/// Chart `web`: a ConfigMap (`ok` says whether it is healthy, by the environments' rule) and
/// a Deployment of two images, its own (tag from values) and a sidecar (tag from values).
const CHART: &[(&str, &str)] = &[
    ("charts/web/chart.yaml", "name: web\nversion: 0.1.0\n"),
    ("charts/web/values.yaml", "ok: \"yes\"\ngreeting: hello\n"),
    (
        "charts/web/templates/all.yaml",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  ok: \"{{ values.ok }}\"
  greeting: {{ values.greeting }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/shop/web:{{ values.image.tag }}
        - name: sidecar
          image: registry.example/shop/sidecar:{{ values.sidecar }}
",
    ),
];

/// Neither server runs controllers: a Deployment is healthy by this rule, a ConfigMap when its
/// `ok` says so.
const HEALTH: &str = "healthChecks:
  - {apiVersion: apps/v1, kind: Deployment, current: 'true'}
  - {apiVersion: v1, kind: ConfigMap, current: \"data.ok == 'yes'\"}
";

struct Setup {
    cluster: TestCluster,
    repo: Repo,
    git: git2::Repository,
    lock: String,
    /// Namespace by environment.
    namespaces: Vec<(String, String)>,
    /// The record key's file (outside the repository).
    key: tempfile::NamedTempFile,
}

impl Setup {
    fn new(environments: &[&str]) -> Setup {
        let cluster = TestCluster::start();
        let lock = cluster.namespace("lock");
        let namespaces = environments.iter().map(|env| (env.to_string(), cluster.namespace(env))).collect();
        let repo = Repo::empty();
        for (path, text) in CHART {
            repo.write(path, text);
        }
        let git = common::git::init(repo.path());
        let mut config = git.config().unwrap();
        config.set_str("user.name", "Promoter").unwrap();
        config.set_str("user.email", "promoter@weaver.invalid").unwrap();
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), "a record key of more than thirty-two bytes\n").unwrap();
        Setup { cluster, repo, git, lock, namespaces, key }
    }

    fn namespace(&self, env: &str) -> &str {
        &self.namespaces.iter().find(|(e, _)| e == env).unwrap().1
    }

    /// Writes environment `env` (wave `wave`, label tier=`tier`) with `values` for release
    /// web and `promotion` (YAML, or empty).
    fn environment(&self, env: &str, wave: i32, tier: &str, values: &str, promotion: &str) {
        self.repo.write(
            &format!("environments/{env}.yaml"),
            &format!(
                "namespace: {}\ncluster: {{lockNamespace: {}}}\nwave: {wave}\nlabels: {{tier: {tier}}}\n{HEALTH}{promotion}releases:\n  - name: web\n    chart: web\n    values: {values}\n",
                self.namespace(env),
                self.lock
            ),
        );
    }

    fn commit(&self, message: &str) -> git2::Oid {
        common::git::commit_all(&self.git, message)
    }

    fn key_env(&self) -> [(&str, &str); 1] {
        [("WEAVER_RECORD_KEY_FILE", self.key.path().to_str().unwrap())]
    }

    /// weaver on the cluster, with the record key.
    fn weaver(&self, args: &[&str]) -> common::Run {
        self.weaver_with(args, &self.key_env())
    }

    fn weaver_with(&self, args: &[&str], envs: &[(&str, &str)]) -> common::Run {
        let kubeconfig = self.cluster.kubeconfig().to_str().unwrap().to_string();
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        self.repo.weaver_env(&all, envs)
    }

    fn apply(&self, env: &str) {
        self.weaver(&["apply", "--env", env]).success();
    }

    fn branches(&self) -> Vec<String> {
        let branches = self.git.branches(Some(git2::BranchType::Local)).unwrap();
        let mut names: Vec<String> = branches.map(|b| b.unwrap().0.name().unwrap().unwrap().to_string()).collect();
        names.sort();
        names
    }

    /// Moves HEAD and the working tree to `branch`'s commit: its pull request merged.
    fn merge(&self, branch: &str) {
        let commit = self.git.find_branch(branch, git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
        let head = self.git.head().unwrap();
        let name = head.name().unwrap().to_string();
        self.git.reference(&name, commit.id(), true, "merge").unwrap();
        self.git.checkout_head(Some(git2::build::CheckoutBuilder::new().force())).unwrap();
    }

    /// The paths `branch`'s commit changes against its parent.
    fn changed_paths(&self, branch: &str) -> Vec<String> {
        let commit = self.git.find_branch(branch, git2::BranchType::Local).unwrap().get().peel_to_commit().unwrap();
        assert_eq!(commit.parent_count(), 1);
        let parent = commit.parent(0).unwrap();
        let diff =
            self.git.diff_tree_to_tree(Some(&parent.tree().unwrap()), Some(&commit.tree().unwrap()), None).unwrap();
        diff.deltas().map(|d| d.new_file().path().unwrap().display().to_string()).collect()
    }

    /// `weaver render` of `env` at `rev`, as objects.
    fn render(&self, env: &str, rev: &str) -> Vec<Value> {
        let out = self.repo.weaver(&["render", "--env", env, "--rev", rev]);
        weaver_yaml::documents(Path::new("render"), out.success()).unwrap()
    }
}

fn images(objects: &[Value]) -> Vec<String> {
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    containers.iter().map(|c| c["image"].as_str().unwrap().to_string()).collect()
}

/// Promotion pins: the web image's tag by values path, the sidecar's by image repository.
fn promotion(from: &str, soak: &str) -> String {
    format!(
        "promotion:
  from: {from}
  soakTime: {soak}
  pins:
    - {{release: web, values: image.tag}}
    - {{release: web, image: registry.example/shop/sidecar}}
  checks:
    - \"status.releases.all(r, r.health == 'healthy')\"
"
    )
}

const STAGING: &str = "{image: {tag: 1.1.0}, sidecar: '2.0', greeting: staging}";
const PROD: &str = "{image: {tag: 1.0.0}, sidecar: '1.0', greeting: prod}";

/// Lets a second-long `soakTime` pass (records keep whole seconds).
fn soak() {
    std::thread::sleep(Duration::from_millis(2100));
}

#[test]
fn a_promotion_in_waves_writes_exactly_the_pins_on_a_new_branch() {
    let setup = Setup::new(&["staging", "prod-a", "prod-b"]);
    setup.environment("staging", 0, "staging", STAGING, "");
    setup.environment("prod-a", 1, "prod", PROD, &promotion("staging", "1s"));
    setup.environment("prod-b", 2, "prod", PROD, &promotion("prod-a", "1s"));
    let base = setup.commit("three environments");
    for env in ["staging", "prod-a", "prod-b"] {
        setup.apply(env);
    }
    soak();

    // A dry run shows the gates, the change and the plan, and writes nothing; what is not
    // committed is not promoted, and it says so.
    let before = setup.branches();
    setup.repo.write("notes.txt", "uncommitted");
    let dry = setup.weaver(&["promote", "--env-selector", "tier=prod", "--wave", "1", "--dry-run"]);
    assert_eq!(dry.code, 2, "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stderr.contains("uncommitted changes: weaver promote reads and branches from HEAD's commit"),
        "{}",
        dry.stderr
    );
    setup.repo.remove("notes.txt");
    let body = &dry.stdout;
    assert!(body.contains("## Promote `staging` → `prod-a`"), "{body}");
    for gate in ["**healthy**", "**soak**", "**no-drift**", "**signed**", "**check**"] {
        assert!(body.contains(&format!("- {gate}")), "{gate} missing:\n{body}");
    }
    assert!(!body.contains("❌") && body.contains("`promotions/prod-a.yaml` would be written"), "{body}");
    assert!(body.contains("| `web` | values `image.tag` | `\"1.0.0\"` | `\"1.1.0\"` |"), "{body}");
    assert!(body.contains("| `web` | image `registry.example/shop/sidecar` | — | `\"2.0\"` |"), "{body}");
    assert!(body.contains("### weaver diff: `prod-a`") && body.contains("to update"), "{body}");
    assert!(!body.contains("prod-b"), "wave 2 is not selected:\n{body}");
    assert_eq!(setup.branches(), before, "a dry run creates no branch");
    assert!(!setup.repo.path().join("promotions").exists(), "a dry run writes no file");

    // Wave 1: prod-a takes staging's pins, on a new branch; HEAD and the working tree stay.
    let json =
        setup.weaver(&["promote", "--env-selector", "tier=prod", "--wave", "1", "--branch", "promote-a", "-o", "json"]);
    assert_eq!(json.code, 2, "{}", json.stderr);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["branch"], "promote-a");
    assert_eq!(report["targets"][0]["environment"], "prod-a");
    assert_eq!(report["targets"][0]["passed"], true);
    let gates: Vec<&str> =
        report["targets"][0]["gates"].as_array().unwrap().iter().map(|g| g["gate"].as_str().unwrap()).collect();
    assert_eq!(gates, ["healthy", "soak", "no-drift", "signed", "check"]);
    assert_eq!(setup.git.head().unwrap().peel_to_commit().unwrap().id(), base);
    assert!(!setup.repo.path().join("promotions").exists(), "the working tree is not touched");
    assert_eq!(setup.changed_paths("promote-a"), ["promotions/prod-a.yaml"]);
    // The branch was created at its commit, never at HEAD's before it: its log has one entry.
    let reflog = setup.git.reflog("refs/heads/promote-a").unwrap();
    let created: Vec<(bool, git2::Oid)> = reflog.iter().map(|e| (e.id_old().is_zero(), e.id_new())).collect();
    let tip = setup.git.find_branch("promote-a", git2::BranchType::Local).unwrap().get().target().unwrap();
    assert_eq!(created, [(true, tip)]);
    assert_eq!(report["commit"], tip.to_string());

    // The branch's prod-a renders staging's images, and nothing else changes.
    let staging = images(&setup.render("staging", "HEAD"));
    let before = setup.render("prod-a", "HEAD");
    let after = setup.render("prod-a", "promote-a");
    assert_eq!(images(&after), staging);
    assert_ne!(images(&before), staging);
    let expected = serde_json::to_string(&before)
        .unwrap()
        .replace("registry.example/shop/web:1.0.0", "registry.example/shop/web:1.1.0")
        .replace("registry.example/shop/sidecar:1.0", "registry.example/shop/sidecar:2.0");
    assert_eq!(serde_json::to_string(&after).unwrap(), expected);

    // Merged and applied, prod-a is wave 2's source: prod-b takes what prod-a applied.
    setup.merge("promote-a");
    setup.apply("prod-a");
    let again = setup.weaver(&["promote", "--to", "prod-a"]);
    assert_eq!(again.code, 0, "nothing to promote: {}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("Nothing to promote"), "{}", again.stdout);
    soak();
    let wave2 = setup.weaver(&["promote", "--env-selector", "tier=prod", "--wave", "2", "--branch", "promote-b"]);
    assert_eq!(wave2.code, 2, "{}{}", wave2.stdout, wave2.stderr);
    assert!(wave2.stdout.contains("## Promote `prod-a` → `prod-b`"), "{}", wave2.stdout);
    assert!(wave2.stdout.contains("`promotions/prod-b.yaml` is written on branch `promote-b`"), "{}", wave2.stdout);
    assert_eq!(setup.changed_paths("promote-b"), ["promotions/prod-b.yaml"]);
    assert_eq!(images(&setup.render("prod-b", "promote-b")), staging);
}

#[test]
fn a_source_too_recent_drifted_unsigned_edited_or_unhealthy_is_refused_naming_the_gate() {
    let setup = Setup::new(&["staging", "prod"]);
    setup.environment("staging", 0, "staging", STAGING, "");
    setup.environment("prod", 1, "prod", PROD, &promotion("staging", "1h"));
    setup.commit("staging and prod");
    setup.apply("staging");
    let refused = |run: common::Run, gate: &str, evidence: &str| {
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        let expected = format!("gate `{gate}`");
        assert!(
            run.stderr.contains(&expected) && run.stderr.contains(evidence),
            "{expected}, {evidence}:\n{}",
            run.stderr
        );
        assert!(run.stdout.contains("**Refused: a gate failed.**"), "{}", run.stdout);
    };
    let branches = setup.branches();

    // Applied seconds ago, against an hour.
    refused(setup.weaver(&["promote", "--to", "prod"]), "soak", "of 1h, healthy now");
    setup.environment("prod", 1, "prod", PROD, &promotion("staging", "1s"));
    setup.commit("a second is enough");
    soak();

    // An object changed by hand.
    let settings = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": setup.namespace("staging")}});
    setup.cluster.merge_patch(&settings, &json!({"data": {"greeting": "edited"}}), "kubectl-edit");
    refused(setup.weaver(&["promote", "--to", "prod"]), "no-drift", "drifted: data.greeting");
    setup.cluster.merge_patch(&settings, &json!({"data": {"greeting": "staging"}}), "kubectl-edit");

    // No key to check the records' signatures with.
    refused(setup.weaver_with(&["promote", "--to", "prod"], &[]), "signed", "no record key");

    // A record edited in the cluster (its tag changed): its signature no longer matches.
    let namespace = setup.namespace("staging");
    let secrets: Vec<Value> = setup.cluster.list("v1", "Secret", "secrets", namespace);
    let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
    let original = records.last().unwrap().clone();
    assert!(original.signature.is_some(), "apply signs with the key");
    let mut edited = original.clone();
    edited.values["image"]["tag"] = json!("6.6.6");
    setup.cluster.apply(&weaver_plan::release::record::to_secrets(&edited, namespace).unwrap(), "weaver");
    refused(setup.weaver(&["promote", "--to", "prod"]), "signed", "the record was changed after its apply");
    setup.cluster.apply(&weaver_plan::release::record::to_secrets(&original, namespace).unwrap(), "weaver");
    let passes = setup.weaver(&["promote", "--to", "prod", "--dry-run"]);
    assert_eq!(passes.code, 2, "the original record passes again: {}{}", passes.stdout, passes.stderr);

    // Unhealthy: the ConfigMap says it is not ok; the check over the status fails with it.
    setup.environment(
        "staging",
        0,
        "staging",
        "{image: {tag: 1.1.0}, sidecar: '2.0', greeting: staging, ok: 'no'}",
        "",
    );
    setup.commit("staging breaks");
    setup.apply("staging");
    soak();
    let run = setup.weaver(&["promote", "--to", "prod"]);
    refused(run, "healthy", &format!("ConfigMap {namespace}/settings progressing"));
    let run = setup.weaver(&["promote", "--to", "prod"]);
    assert!(
        run.stderr.contains("gate `check` `status.releases.all(r, r.health == 'healthy')` failed"),
        "{}",
        run.stderr
    );
    assert_eq!(setup.branches(), branches, "a refusal writes nothing");
}

#[test]
fn a_promotion_names_what_it_cannot_take() {
    let repo = Repo::minimal();
    repo.write(
        "environments/prod.yaml",
        "namespace: apps\npromotion: {from: dev, pins: [{release: app, image: x, values: a}]}\nreleases:\n  - name: app\n    chart: app\n",
    );
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(
        stderr.contains("environments/prod.yaml:2:") && stderr.contains("expected one of `chart: true`"),
        "{stderr}"
    );
    repo.write(
        "environments/prod.yaml",
        "namespace: apps\npromotion: {from: dev, pins: [{release: web, values: a}]}\nreleases:\n  - name: app\n    chart: app\n",
    );
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(stderr.contains("release `web`, which is not one of this environment"), "{stderr}");
    repo.write(
        "environments/prod.yaml",
        "namespace: apps\npromotion: {from: dev, pins: [{release: app, chart: true}]}\nreleases:\n  - name: app\n    chart: app\n",
    );
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(stderr.contains("a chart pin is for a remote chart"), "{stderr}");
    // Days are written in hours, as Go's durations, up to 90 days.
    let soaking = |soak: &str| {
        format!(
            "namespace: apps\npromotion: {{from: dev, soakTime: {soak}, pins: [{{release: app, values: a}}]}}\nreleases:\n  - name: app\n    chart: app\n"
        )
    };
    repo.write("environments/prod.yaml", &soaking("3d"));
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(stderr.contains("environments/prod.yaml:2:") && stderr.contains("like 72h for 3d"), "{stderr}");
    repo.write("environments/prod.yaml", &soaking("2400h"));
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(stderr.contains("`soakTime`: `2400h` is too long: expected at most 2160h"), "{stderr}");
    repo.write("environments/prod.yaml", &soaking("72h"));
    repo.weaver(&["render", "--env", "prod"]).success();
    repo.write("environments/prod.yaml", "namespace: apps\npromotion: {from: dev, pins: []}\nreleases: []\n");
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(stderr.contains("environments/prod.yaml:2:") && stderr.contains("`promotion.pins` is empty"), "{stderr}");
    // A target that promotes nothing: the error names its file.
    common::git::commit_all(&common::git::init(repo.path()), "first");
    let stderr = repo.weaver(&["promote", "--to", "dev", "--dry-run"]).failure().to_string();
    assert!(stderr.contains("environments/dev.yaml") && stderr.contains("has no `promotion:`"), "{stderr}");
}

#[test]
fn a_change_of_values_alone_is_recorded_for_promotions_to_read() {
    let setup = Setup::new(&["staging"]);
    setup.environment("staging", 0, "staging", STAGING, "");
    setup.apply("staging");
    setup.apply("staging");
    let revisions = |setup: &Setup| {
        let out = setup.weaver(&["history", "--env", "staging", "web", "-o", "json"]);
        let history: Value = serde_json::from_str(out.success()).unwrap();
        history["revisions"].as_array().unwrap().len()
    };
    assert_eq!(revisions(&setup), 1, "an apply that changes nothing records nothing");
    // The chart reads no `image.digest`: the objects stay, the values a pin would read change.
    setup.environment(
        "staging",
        0,
        "staging",
        "{image: {tag: 1.1.0, digest: abc}, sidecar: '2.0', greeting: staging}",
        "",
    );
    setup.apply("staging");
    assert_eq!(revisions(&setup), 2);
    let secrets = setup.cluster.list("v1", "Secret", "secrets", setup.namespace("staging"));
    let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
    assert_eq!(records.last().unwrap().values["image"]["digest"], "abc");

    // Applied without the key, then with it and nothing else changed: a signed revision.
    setup.environment("staging", 0, "staging", "{image: {tag: 1.2.0}, sidecar: '2.0', greeting: staging}", "");
    setup.weaver_with(&["apply", "--env", "staging"], &[]).success();
    assert_eq!(revisions(&setup), 3);
    setup.apply("staging");
    assert_eq!(revisions(&setup), 4, "a record another apply left unsigned is signed again");
    let secrets = setup.cluster.list("v1", "Secret", "secrets", setup.namespace("staging"));
    let records = weaver_plan::release::record::from_secrets(&secrets).unwrap();
    assert!(records.last().unwrap().signature.is_some());
    setup.apply("staging");
    assert_eq!(revisions(&setup), 4, "a signed record is not written again");
}

/// The record key is read before the environment's lock is taken: a key file that is missing or
/// too short fails the apply naming the file, with no Lease taken and nothing applied.
#[test]
fn an_unreadable_record_key_fails_an_apply_before_its_lock_is_taken() {
    let setup = Setup::new(&["staging"]);
    setup.environment("staging", 0, "staging", STAGING, "");
    let short = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(short.path(), "too short\n").unwrap();
    let missing = short.path().with_extension("missing");
    for (file, why) in [(missing.as_path(), "cannot read the record key"), (short.path(), "has 9 bytes")] {
        let run =
            setup.weaver_with(&["apply", "--env", "staging"], &[("WEAVER_RECORD_KEY_FILE", file.to_str().unwrap())]);
        let stderr = run.failure();
        assert!(stderr.contains(&file.display().to_string()) && stderr.contains(why), "{stderr}");
        let leases = setup.cluster.list("coordination.k8s.io/v1", "Lease", "leases", &setup.lock);
        assert!(leases.is_empty(), "a Lease was taken: {leases:?}");
        let objects = setup.cluster.list("v1", "ConfigMap", "configmaps", setup.namespace("staging"));
        assert!(objects.iter().all(|o| o["metadata"]["name"] != "settings"), "something was applied");
    }
    setup.apply("staging");
    assert_eq!(setup.cluster.list("coordination.k8s.io/v1", "Lease", "leases", &setup.lock).len(), 1);
}

/// A promotion reads its source's health, records and drift and plans its target over one
/// client and one discovery of the server, as a fleet's environments share them.
#[test]
fn a_promotion_discovers_the_server_once() {
    let setup = Setup::new(&["staging", "prod"]);
    setup.environment("staging", 0, "staging", STAGING, "");
    setup.environment("prod", 1, "prod", PROD, &promotion("staging", "1s"));
    setup.commit("staging and prod");
    setup.apply("staging");
    setup.apply("prod");
    soak();
    let Some(fake) = setup.cluster.fake("counting requests") else { return };
    fake.clear_requests();
    let run = setup.weaver(&["promote", "--to", "prod", "--dry-run"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let requests = fake.requests();
    let mut discovery: Vec<&str> =
        requests.iter().filter(|r| r.path == "/api" || r.path == "/apis").map(|r| r.path.as_str()).collect();
    discovery.sort();
    assert_eq!(discovery, ["/api", "/apis"], "one discovery pass for status, drift and the plan");
}

/// A chart pin end to end: staging applied chart `web` 1.1.0 from a chart repository, prod
/// 1.0.0; the promotion writes 1.1.0, and prod's render on the branch is then staging's.
#[test]
fn a_chart_pin_promotes_the_remote_chart_version_the_source_applied() {
    use crate::remote_charts::{PASSWORD, USER, served_chart_repository};
    let (_served, _archives, server) = served_chart_repository();
    let setup = Setup::new(&["staging", "prod"]);
    let environment = |env: &str, version: &str, promotion: &str| {
        setup.repo.write(
            &format!("environments/{env}.yaml"),
            &format!(
                "namespace: {}\ncluster: {{lockNamespace: {}}}\nrepositories:\n{}{promotion}releases:\n  - name: web\n    chart: stable/web\n    version: {version}\n",
                setup.namespace(env),
                setup.lock,
                server.as_stable()
            ),
        );
    };
    environment("staging", "1.1.0", "");
    let pins = "promotion:\n  from: staging\n  soakTime: 1s\n  pins: [{release: web, chart: true}]\n";
    environment("prod", "1.0.0", pins);
    let cache = tempfile::tempdir().unwrap();
    let key = setup.key.path().to_str().unwrap();
    let envs = [
        ("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
        ("WEAVER_RECORD_KEY_FILE", key),
    ];
    setup.repo.weaver_env(&["charts", "lock"], &envs).success();
    setup.commit("staging at web 1.1.0, prod at 1.0.0");
    for env in ["staging", "prod"] {
        setup.weaver_with(&["apply", "--env", env], &envs).success();
    }
    soak();

    let run = setup.weaver_with(&["promote", "--to", "prod", "--branch", "promote-chart", "-o", "json"], &envs);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let change = json!({"release": "web", "pin": "chart", "name": "", "from": "1.0.0", "to": "1.1.0", "revision": 1});
    assert_eq!(report["targets"][0]["changes"], json!([change]));
    assert_eq!(setup.changed_paths("promote-chart"), ["promotions/prod.yaml"]);
    let promoted = setup.git.revparse_single("promote-chart:promotions/prod.yaml").unwrap();
    let text = String::from_utf8(promoted.as_blob().unwrap().content().to_vec()).unwrap();
    assert!(text.contains("    version: '1.1.0'\n"), "{text}");

    // Prod's render on the branch is staging's (but for the namespace and the environment's
    // label): the chart at 1.1.0.
    let render = |env: &str, rev: &str| -> Vec<Value> {
        let out = setup.repo.weaver_env(&["render", "--env", env, "--rev", rev], &envs);
        let mut objects = weaver_yaml::documents(Path::new("render"), out.success()).unwrap();
        for object in &mut objects {
            object["metadata"].as_object_mut().unwrap().remove("namespace");
            object["metadata"]["labels"].as_object_mut().unwrap().remove("weaver.example.com/environment");
        }
        objects
    };
    let staging = render("staging", "HEAD");
    assert_eq!(staging[0]["data"]["version"], "1.1.0", "{staging:?}");
    assert_ne!(render("prod", "HEAD"), staging);
    assert_eq!(render("prod", "promote-chart"), staging);
}
