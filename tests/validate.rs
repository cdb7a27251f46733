//! Offline schema validation (`--validate`): the table of tests/validate/cases.yaml through
//! `weaver render`, the error's format and exit code, no false positive on real workloads, and
//! agreement with a server's strict field validation on the same objects.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

struct Case {
    name: String,
    object: Value,
    /// The messages weaver must give, exactly; empty for a valid case.
    errors: BTreeSet<String>,
}

const CRD: &str = include_str!("validate/widget-crd.yaml");
const GROUP: &str = "validation.weaver.test";

/// `merge` into `base`: objects merge key by key, anything else (null included) replaces.
fn deep_merge(base: &mut Value, merge: &Value) {
    match (base, merge) {
        (Value::Object(base), Value::Object(merge)) => {
            for (key, value) in merge {
                match base.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => deep_merge(slot, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, merge) => *base = merge.clone(),
    }
}

fn remove(object: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = object.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    parent.as_object_mut().unwrap().remove(key).unwrap_or_else(|| panic!("nothing at {pointer}"));
}

/// The table: (invalid cases, valid cases).
fn cases() -> (Vec<Case>, Vec<Case>) {
    let text = include_str!("validate/cases.yaml");
    let table = weaver_yaml::documents(Path::new("tests/validate/cases.yaml"), text).unwrap().remove(0);
    let build = |list: &Value| -> Vec<Case> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|case| {
                let name = case["name"].as_str().unwrap().to_string();
                let mut object = table["bases"][case["base"].as_str().unwrap()].clone();
                assert!(object.is_object(), "case {name}: no base {}", case["base"]);
                deep_merge(&mut object, &json!({"metadata": {"name": name}}));
                if let Some(merge) = case.get("merge") {
                    deep_merge(&mut object, merge);
                }
                for pointer in case["remove"].as_array().into_iter().flatten() {
                    remove(&mut object, pointer.as_str().unwrap());
                }
                let errors = case["errors"].as_array().into_iter().flatten();
                Case { name, object, errors: errors.map(|e| e.as_str().unwrap().to_string()).collect() }
            })
            .collect()
    };
    (build(&table["invalid"]), build(&table["valid"]))
}

/// A repository whose chart `cases` renders `objects` (one template each) and has the Widget
/// CRD in its `crds/`; environment `dev` deploys it in namespace `cases`.
fn repo_with(objects: &[&Case]) -> Repo {
    let repo = Repo::empty();
    repo.write("charts/cases/chart.yaml", "name: cases\nversion: 0.1.0\n")
        .write("charts/cases/values.yaml", "{}\n")
        .write("charts/cases/crds/widget.yaml", CRD)
        .write("environments/dev.yaml", "namespace: cases\nreleases:\n  - name: cases\n    chart: cases\n");
    for case in objects {
        // JSON is YAML, and has no `{{`, `{%` or `{#` for the template engine.
        repo.write(
            &format!("charts/cases/templates/{}.yaml", case.name),
            &serde_json::to_string_pretty(&case.object).unwrap(),
        );
    }
    repo
}

/// The problems of each object in a failed render's error, by object name.
fn problems_by_object(stderr: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in stderr.lines().filter(|l| l.starts_with("  release `cases`, ")) {
        // `  release `cases`, charts/cases/templates/NAME.yaml: Kind cases/NAME: .path: message`
        let (_, rest) =
            line.split_once("charts/cases/templates/").unwrap_or_else(|| panic!("a problem outside the cases: {line}"));
        let (name, rest) = rest.split_once(".yaml: ").unwrap();
        let (_, rest) = rest.split_once(": .").unwrap_or_else(|| panic!("no path in {line}"));
        let (_, message) = rest.split_once(": ").unwrap();
        found.entry(name.to_string()).or_default().insert(message.to_string());
    }
    found
}

#[test]
fn the_table_has_enough_cases() {
    let (invalid, valid) = cases();
    assert!(invalid.len() >= 30, "{} invalid cases", invalid.len());
    assert!(valid.len() >= 20, "{} valid cases", valid.len());
    assert!(invalid.iter().any(|c| c.object["kind"] == "Widget") && valid.iter().any(|c| c.object["kind"] == "Widget"));
    assert!(invalid.iter().all(|c| !c.errors.is_empty()), "an invalid case without errors");
    let names: BTreeSet<&str> = invalid.iter().chain(&valid).map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), invalid.len() + valid.len(), "case names are unique");
}

#[test]
fn every_invalid_case_gets_exactly_its_errors_in_one_run() {
    let (invalid, _) = cases();
    let repo = repo_with(&invalid.iter().collect::<Vec<_>>());
    let run = repo.weaver(&["render", "--env", "dev"]);
    let stderr = run.failure();
    let found = problems_by_object(stderr);
    let mut wrong = Vec::new();
    for case in &invalid {
        let got = found.get(&case.name).cloned().unwrap_or_default();
        if got != case.errors {
            wrong.push(format!("{}:\n  expected {:?}\n  got      {:?}", case.name, case.errors, got));
        }
    }
    assert!(wrong.is_empty(), "{}\n\nstderr:\n{stderr}", wrong.join("\n"));
    let problems: usize = invalid.iter().map(|c| c.errors.len()).sum();
    assert!(
        stderr.contains(&format!(
            "error: {problems} problem(s) in {} object(s) found by offline schema validation:",
            invalid.len()
        )),
        "{stderr}"
    );
}

#[test]
fn every_valid_case_passes_and_is_validated() {
    let (_, valid) = cases();
    let repo = repo_with(&valid.iter().collect::<Vec<_>>());
    let run = repo.weaver(&["render", "--env", "dev", "-v"]);
    run.success();
    // The CRD and every case, none left unvalidated.
    assert!(run.stderr.contains(&format!("validated {} object(s) offline", valid.len() + 1)), "{}", run.stderr);
    assert!(!run.stderr.contains("not validated"), "{}", run.stderr);
}

#[test]
fn the_error_names_release_template_object_and_path_and_exits_1() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replcas: 3\n  replicas: three\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers: [{ name: web, image: nginx, imagePullPolice: Always }]\n",
    );
    let stderr = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    let expected = "error: 3 problem(s) in 1 object(s) found by offline schema validation:
  release `app`, charts/app/templates/deployment.yaml: Deployment.apps apps/web: .spec.replcas: unknown field \"spec.replcas\"
  release `app`, charts/app/templates/deployment.yaml: Deployment.apps apps/web: .spec.replicas: spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"
  release `app`, charts/app/templates/deployment.yaml: Deployment.apps apps/web: .spec.template.spec.containers[0].imagePullPolice: unknown field \"spec.template.spec.containers[0].imagePullPolice\"
  help: fix the templates; --validate=warn reports these without failing, --validate=ignore skips validation
";
    assert_eq!(stderr, expected);
    // diff validates before it connects: no cluster is needed to learn of the mistake.
    let diff = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", "/nonexistent"]);
    assert!(diff.failure().starts_with("error: 3 problem(s) in 1 object(s)"), "{}", diff.stderr);
    let apply = repo.weaver(&["apply", "--env", "dev", "--kubeconfig", "/nonexistent"]);
    assert!(apply.failure().starts_with("error: 3 problem(s) in 1 object(s)"), "{}", apply.stderr);
}

#[test]
fn a_problem_in_a_patched_object_names_the_patches_that_changed_it() {
    let repo = Repo::minimal();
    // The base is valid; the overlay's patch writes a list where a map belongs.
    repo.write(
        "environments/prod.yaml",
        "extends: dev\nreleases:\n  - name: app\n    patches:\n      - target: { kind: ConfigMap }\n        patch: { metadata: { labels: { tier: web } } }\n      - target: { kind: ConfigMap }\n        patch: { data: [greeting] }\n",
    );
    repo.weaver(&["render", "--env", "dev"]).success();
    let stderr = repo.weaver(&["render", "--env", "prod"]).failure().to_string();
    assert!(
        stderr.contains("  release `app`, charts/app/templates/configmap.yaml (patched by environments/prod.yaml:5:9, environments/prod.yaml:7:9): ConfigMap apps/app: .data: "),
        "{stderr}"
    );
    assert!(stderr.contains("help: fix the templates or the patches named;"), "{stderr}");
}

#[test]
fn validate_flag_warns_or_ignores_as_kubectl_does() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndatas: {}\n",
    );
    {
        let flag = "--validate=warn";
        let run = repo.weaver(&["render", "--env", "dev", flag]);
        assert!(run.success().contains("name: extra"));
        assert!(run.stderr.contains("warning: release `app`, charts/app/templates/extra.yaml: ConfigMap apps/extra: .datas: unknown field \"datas\""), "{}", run.stderr);
    }
    for flag in ["--validate=ignore", "--validate=false"] {
        let run = repo.weaver(&["render", "--env", "dev", flag]);
        assert!(run.success().contains("name: extra"));
        assert!(!run.stderr.contains("datas"), "{flag}: {}", run.stderr);
    }
    for flag in ["--validate=strict", "--validate=true", "--validate"] {
        repo.weaver(&["render", "--env", "dev", flag]).failure();
    }
    let run = repo.weaver(&["render", "--env", "dev", "--validate=maybe"]);
    assert!(run.stderr.contains("invalid value 'maybe' for '--validate"), "{}", run.stderr);
    assert_eq!(run.code, 1, "usage errors exit 1, as every error (2 is for changes found)");
}

#[test]
fn a_secret_value_is_never_echoed() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: hunter2-not-base64!\n",
    );
    let stderr = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(stderr.contains("data.password: Invalid value: \"[redacted]\""), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn removed_api_versions_are_warnings_for_the_target_version() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/pdb.yaml",
        "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n",
    );
    let run = repo.weaver(&["render", "--env", "dev", "-v"]);
    run.success();
    assert!(
        run.stderr.contains("warning: release `app`, charts/app/templates/pdb.yaml: PodDisruptionBudget.policy apps/web uses policy/v1beta1, which Kubernetes stopped serving in 1.25 (the target is v1.32.0): use policy/v1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 object(s) not validated"), "{}", run.stderr);
    assert!(run.stderr.contains("not validated: release `app`: PodDisruptionBudget.policy apps/web"), "{}", run.stderr);
    // An environment for Kubernetes 1.24 still has it.
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nkubeVersion: v1.24.0\nreleases:\n  - name: app\n    chart: app\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    run.success();
    assert!(!run.stderr.contains("stopped serving"), "{}", run.stderr);
}

#[test]
fn connected_to_a_cluster_removed_api_versions_are_judged_by_its_version() {
    let cluster = TestCluster::start();
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/pdb.yaml",
        "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n",
    );
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    // The cluster serves no policy/v1beta1 (the diff then fails), but the warning comes first.
    let run = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", &kubeconfig]);
    let target = format!("stopped serving in 1.25 (the target is {}): use policy/v1", cluster.server_version());
    assert!(run.stderr.contains(&target), "{}", run.stderr);
    // The environment's kubeVersion wins over the server's.
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nkubeVersion: v1.24.0\nreleases:\n  - name: app\n    chart: app\n",
    );
    let run = repo.weaver(&["diff", "--env", "dev", "--kubeconfig", &kubeconfig]);
    assert!(!run.stderr.contains("stopped serving"), "{}", run.stderr);
}

#[test]
fn custom_resources_are_validated_against_the_crds_of_releases_not_selected() {
    let repo = Repo::empty();
    repo.write("charts/widgets/chart.yaml", "name: widgets\nversion: 0.1.0\n")
        .write("charts/widgets/values.yaml", "{}\n")
        .write("charts/widgets/crds/widget.yaml", CRD)
        .write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n")
        .write("charts/app/values.yaml", "{}\n")
        .write(
            "charts/app/templates/widget.yaml",
            "apiVersion: validation.weaver.test/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: big\n",
        )
        .write(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: widgets\n    chart: widgets\n  - name: app\n    chart: app\n    needs: [widgets]\n",
        );
    let stderr = repo.weaver(&["render", "--env", "dev", "-r", "app"]).failure().to_string();
    assert!(stderr.contains(".spec.size: spec.size: Invalid value: \"string\""), "{stderr}");
}

#[test]
fn custom_resources_without_a_crd_are_counted_not_validated() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/monitor.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: web\nspec:\n  anything: [1]\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    run.success();
    assert!(run.stderr.contains("1 object(s) not validated: no schema describes their kind"), "{}", run.stderr);
    assert!(!run.stderr.contains("ServiceMonitor"), "listed only with -v: {}", run.stderr);
}

#[test]
fn no_false_positive_on_the_demo_and_the_operator_chart() {
    let repo = Repo::demo();
    for env in ["dev", "staging"] {
        let run = repo.weaver(&["render", "--env", env, "-v"]);
        run.success();
        assert!(!run.stderr.contains("not validated"), "{env}: {}", run.stderr);
        assert!(run.stderr.contains("validated "), "{env}: {}", run.stderr);
    }
    let fixtures = common::project_root().join("tests/fixtures");
    std::fs::copy(fixtures.join("prod-secrets.yaml"), repo.path().join("secrets/prod.yaml")).unwrap();
    let key = fixtures.join("prod-test.agekey");
    let prod = repo.weaver_env(&["render", "--env", "prod", "-v"], &[("SOPS_AGE_KEY_FILE", key.to_str().unwrap())]);
    prod.success();
    assert!(!prod.stderr.contains("not validated"), "prod: {}", prod.stderr);
}

// Its own `#![allow(dead_code)]` covers what this test does not use. It loads files of
// tests/common that the suite loads as `common` too, on purpose: the benches have them alone.
#[path = "../benches/support/mod.rs"]
#[allow(clippy::duplicate_mod)]
mod bench_support;

#[test]
fn no_false_positive_on_the_generated_1000_release_workload() {
    let dir = tempfile::tempdir().unwrap();
    bench_support::generate_repo(dir.path(), 1_000);
    let run = common::weaver_in(dir.path(), &["render", "--env", "bench", "-v"], &[]);
    run.success();
    assert!(run.stderr.contains("validated 3000 object(s) offline"), "{}", run.stderr);
}

/// The same objects through a server: a server-side apply, dry run, with
/// `fieldValidation=Strict`. What weaver refuses, the server refuses; what it accepts, the
/// server accepts. On the fake, or on a real cluster with WEAVER_TEST_KUBECONFIG.
#[test]
fn the_server_agrees_on_what_is_refused() {
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("validate");
    let group = format!("{}.{GROUP}", cluster.prefix);
    let crd = weaver_yaml::documents(Path::new("widget-crd.yaml"), &CRD.replace(GROUP, &group)).unwrap().remove(0);
    cluster.apply(&[crd], "weaver-test");
    let (invalid, valid) = cases();
    let mut disagreements = Vec::new();
    for (case, refuse) in invalid.iter().map(|c| (c, true)).chain(valid.iter().map(|c| (c, false))) {
        let mut object = case.object.clone();
        object["metadata"]["namespace"] = json!(namespace);
        if object["kind"] == "Widget" {
            object["apiVersion"] = json!(format!("{group}/v1"));
        }
        let answer = cluster.dry_run_apply_strict(&object, "weaver-test");
        let said = match &answer {
            Ok(warnings) => format!("accepted {warnings:?}"),
            Err(status) => format!("refused: {}", status.message),
        };
        eprintln!("{}: {said}", case.name);
        if answer.is_err() != refuse {
            disagreements.push(format!(
                "{}: weaver {} it, the server {said}",
                case.name,
                if refuse { "refuses" } else { "accepts" }
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
