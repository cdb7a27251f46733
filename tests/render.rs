//! `weaver render` on the demo repository: golden output, determinism, YAML 1.1 safety, and the
//! other read-only commands.

use crate::common;
use common::{Repo, interop_available, numbered_markers, project_root, weaver_in};

use std::path::Path;

/// Renders the demo. prod's real key is not in the repository, so prod renders from a copy
/// whose secrets/prod.yaml is the test fixture, decrypted with the test key.
fn render_demo(env: &str) -> String {
    render_demo_with(env, &[])
}

fn render_demo_with(env: &str, envs: &[(&str, &str)]) -> String {
    let repo = Repo::demo();
    let fixtures = project_root().join("tests/fixtures");
    std::fs::copy(fixtures.join("prod-secrets.yaml"), repo.path().join("secrets/prod.yaml")).unwrap();
    let key = fixtures.join("prod-test.agekey");
    let mut all_envs = vec![("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];
    all_envs.extend_from_slice(envs);
    numbered_markers(repo.weaver_env(&["render", "--env", env], &all_envs).success())
}

/// Weaver charts rendered in a worker process of their own (`--max-render-memory`) give the
/// same objects, in the same order, as rendered in weaver's own process.
#[test]
fn renders_in_a_worker_process_equal_the_golden_renders() {
    for env in ["dev", "staging", "prod"] {
        let repo = Repo::demo();
        let fixtures = project_root().join("tests/fixtures");
        std::fs::copy(fixtures.join("prod-secrets.yaml"), repo.path().join("secrets/prod.yaml")).unwrap();
        let key = fixtures.join("prod-test.agekey");
        let args = ["render", "--env", env, "--max-render-memory", "268435456"];
        let run = repo.weaver_env(&args, &[("SOPS_AGE_KEY_FILE", key.to_str().unwrap())]);
        let output = numbered_markers(run.success());
        let golden = std::fs::read_to_string(project_root().join("tests/golden").join(format!("{env}.yaml"))).unwrap();
        assert!(output == golden, "render --env {env} in a worker differs from its golden file:\n{output}");
    }
}

/// Golden files live in tests/golden/<env>.yaml; WEAVER_UPDATE_GOLDEN=1 rewrites them (review
/// the diff before committing).
#[test]
fn golden_renders_of_every_demo_environment() {
    for env in ["dev", "staging", "prod"] {
        let output = render_demo(env);
        let golden = project_root().join("tests/golden").join(format!("{env}.yaml"));
        if std::env::var("WEAVER_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&golden, &output).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        assert!(
            output == expected,
            "render --env {env} differs from {}; rerun with WEAVER_UPDATE_GOLDEN=1 and review:\n{output}",
            golden.display()
        );
    }
}

#[test]
fn rendering_is_byte_identical_across_runs_and_thread_counts() {
    let first = render_demo("prod");
    for threads in ["1", "2", "7"] {
        let again = render_demo_with("prod", &[("RAYON_NUM_THREADS", threads)]);
        assert_eq!(again, first, "output changed with RAYON_NUM_THREADS={threads}");
    }
}

/// 2,000 releases (6,000 objects) render to the same bytes on one thread as on all of them, and
/// every document is there: 63 of `weaver render`'s chunks of 32, about four times the 16 chunks
/// it renders ahead, each finished in the releases' order whichever thread rendered it. (The issue's large
/// workload, 10,000 releases, is `benches/render.rs`' to time: here, unoptimized, it took 10 of
/// the integration suite's CPU-seconds for nothing 2,000 do not check.)
#[test]
fn two_thousand_releases_render_byte_identically_on_one_thread_and_on_many() {
    let dir = tempfile::tempdir().unwrap();
    common::generated::generate_repo(dir.path(), 2_000);
    let args = ["render", "--env", "bench"];
    // The two renders run at once.
    let (parallel, serial) = std::thread::scope(|scope| {
        let serial = scope.spawn(|| weaver_in(dir.path(), &args, &[("RAYON_NUM_THREADS", "1")]).success().to_string());
        let parallel = weaver_in(dir.path(), &args, &[]).success().to_string();
        (parallel, serial.join().expect("the serial render's thread"))
    });
    assert_eq!(parallel.matches("\n---\n").count() + 1, 6_000, "every object is rendered");
    assert!(parallel.contains("name: svc-1999\n"), "the last release is rendered");
    assert!(serial == parallel, "the serial render differs from the parallel one");
}

#[test]
fn demo_objects_are_ordered_labelled_and_namespaced() {
    let output = render_demo("prod");
    let kinds: Vec<&str> = output.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
    // redis first (web needs it); inside a release: config, services, workloads, then the rest.
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Service",
            "StatefulSet",
            "ConfigMap",
            "Secret",
            "Service",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress"
        ]
    );
    assert_eq!(output.matches("app.kubernetes.io/managed-by: weaver").count(), kinds.len());
    assert_eq!(output.matches("weaver.example.com/environment: prod").count(), kinds.len());
    assert_eq!(output.matches("  namespace: shop\n").count(), kinds.len());
    // The prod patches: strategic merge into the container list, and an RFC 6902 replace.
    assert!(output.contains("priorityClassName: high"));
    assert!(output.contains("- name: GOMAXPROCS\n          value: '2'"), "{output}");
    assert!(output.contains("type: LoadBalancer"));
}

#[test]
fn selection_by_release_and_label() {
    let web = weaver_in(&project_root(), &["render", "--env", "dev", "-r", "web"], &[]);
    assert!(web.success().contains("release web") && !web.stdout.contains("release redis"));
    let data = weaver_in(&project_root(), &["render", "--env", "dev", "-l", "tier=data"], &[]);
    assert!(data.success().contains("release redis") && !data.stdout.contains("release web"));
    let none = weaver_in(&project_root(), &["render", "--env", "dev", "-l", "tier=nothing"], &[]);
    assert_eq!(none.success(), "");
    assert!(none.stderr.contains("warning: no release of environment `dev` matches the selection (-l 'tier=nothing')"));
}

#[test]
fn an_environment_without_releases_is_said_to_have_none() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "namespace: apps\nreleases: []\n");
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(run.success(), "");
    assert_eq!(run.stderr, "warning: environment `dev` has no releases (environments/dev.yaml)\n");
}

#[test]
fn installed_false_renders_nothing_for_that_release() {
    let repo = Repo::demo();
    repo.write(
        "environments/dev.yaml",
        "extends: base\nnamespace: shop-dev\nreleases:\n  - name: redis\n    installed: false\n",
    );
    let out = repo.weaver(&["render", "--env", "dev"]);
    assert!(!out.success().contains("release redis"));
    assert!(out.stdout.contains("release web"));
}

#[test]
fn capabilities_name_kubernetes_apis_and_those_of_the_crds_the_environment_deploys_whatever_is_selected() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  \
         apps: \"{{ 'apps/v1' in capabilities.apiVersions }}\"\n  \
         monitoring: \"{{ 'monitoring.coreos.com/v1' in capabilities.apiVersions }}\"\n  \
         alpha: \"{{ 'monitoring.coreos.com/v1alpha1' in capabilities.apiVersions }}\"\n",
    )
    .write("charts/monitoring-crds/chart.yaml", "name: monitoring-crds\nversion: 0.1.0\n")
    .write(
        "charts/monitoring-crds/crds/servicemonitors.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: { name: servicemonitors.monitoring.coreos.com }\n\
         spec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n\
         \x20 names: { plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor }\n\
         \x20 versions:\n    - { name: v1, served: true, storage: true }\n    - { name: v1alpha1, served: false, storage: false }\n",
    );
    let environment = |installed: bool| {
        format!(
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n  \
             - name: monitoring\n    chart: monitoring-crds\n    installed: {installed}\n"
        )
    };
    let data = |run: common::Run| {
        let objects: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(run.success()).unwrap();
        let config = objects.iter().find(|o| o["kind"] == "ConfigMap").expect("the app's ConfigMap").clone();
        (config["data"]["apps"].clone(), config["data"]["monitoring"].clone(), config["data"]["alpha"].clone())
    };
    repo.write("environments/dev.yaml", &environment(true));
    // The CRD's release is not selected: its CRD still counts, or applying `app` alone would
    // prune what a full apply creates.
    assert_eq!(
        data(repo.weaver(&["render", "--env", "dev", "-r", "app"])),
        ("true".into(), "true".into(), "false".into())
    );
    repo.write("environments/dev.yaml", &environment(false));
    assert_eq!(data(repo.weaver(&["render", "--env", "dev"])), ("true".into(), "false".into(), "false".into()));
}

/// An environment's `apiVersions` (APIs installed some other way than by its charts' CRDs) join
/// what weaver charts see, as they join what Helm charts see offline (helm's --api-versions),
/// entries as written: a `group/version/Kind` entry is not its group/version.
#[test]
fn an_environment_s_api_versions_are_in_what_weaver_charts_and_helm_charts_see() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\ndata:\n  \
         gateway: \"{{ 'gateway.networking.k8s.io/v1' in capabilities.apiVersions }}\"\n  \
         monitorKind: \"{{ 'monitoring.coreos.com/v1/ServiceMonitor' in capabilities.apiVersions }}\"\n  \
         monitor: \"{{ 'monitoring.coreos.com/v1' in capabilities.apiVersions }}\"\n",
    )
    .write("charts/helmapp/Chart.yaml", "apiVersion: v2\nname: helmapp\nversion: 1.0.0\n")
    .write(
        "charts/helmapp/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: helm\ndata:\n  \
         gateway: {{ .Capabilities.APIVersions.Has \"gateway.networking.k8s.io/v1\" | quote }}\n  \
         monitorKind: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1/ServiceMonitor\" | quote }}\n  \
         monitor: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n",
    );
    let environment = |api_versions: &str| {
        format!(
            "namespace: apps\n{api_versions}releases:\n  - name: app\n    chart: app\n  - name: helmapp\n    chart: helmapp\n"
        )
    };
    let data = |run: common::Run| {
        let objects: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(run.success()).unwrap();
        let of = |name: &str| objects.iter().find(|o| o["metadata"]["name"] == name).expect(name)["data"].clone();
        (of("own"), of("helm"))
    };
    repo.write("environments/dev.yaml", &environment(""));
    let none = serde_json::json!({"gateway": "false", "monitorKind": "false", "monitor": "false"});
    assert_eq!(data(repo.weaver(&["render", "--env", "dev"])), (none.clone(), none));
    repo.write(
        "environments/dev.yaml",
        &environment("apiVersions: [gateway.networking.k8s.io/v1, monitoring.coreos.com/v1/ServiceMonitor]\n"),
    );
    let declared = serde_json::json!({"gateway": "true", "monitorKind": "true", "monitor": "false"});
    assert_eq!(data(repo.weaver(&["render", "--env", "dev"])), (declared.clone(), declared));
}

#[test]
fn output_dir_writes_one_file_per_object() {
    let out = tempfile::tempdir().unwrap();
    let run =
        weaver_in(&project_root(), &["render", "--env", "staging", "--output-dir", out.path().to_str().unwrap()], &[]);
    assert_eq!(run.success(), "");
    assert_eq!(run.stderr, format!("wrote 7 files, removed 0 stale files to {}\n", out.path().display()));
    let mut files: Vec<String> =
        walk(out.path()).into_iter().map(|p| p.strip_prefix(out.path()).unwrap().display().to_string()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".weaver-render",
            "redis/configmap-redis-config.yaml",
            "redis/service-redis.yaml",
            "redis/statefulset-redis.yaml",
            "web/configmap-web-config.yaml",
            "web/deployment-web.yaml",
            "web/ingress-web.yaml",
            "web/service-web.yaml",
        ]
    );
    // Together the files hold exactly what the stream holds.
    let stream = render_demo("staging");
    let deployment = std::fs::read_to_string(out.path().join("web/deployment-web.yaml")).unwrap();
    assert!(stream.contains(&deployment));
}

#[test]
fn output_dir_removes_the_files_it_wrote_for_objects_no_longer_rendered_and_no_others() {
    let repo = Repo::minimal();
    repo.write("charts/app/templates/service.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    std::fs::create_dir_all(out.path().join("app")).unwrap();
    std::fs::write(out.path().join("README"), "mine\n").unwrap();
    std::fs::write(out.path().join("app/notes.yaml"), "mine: true\n").unwrap();
    let first = repo.weaver(&["render", "--env", "dev", "--output-dir", dir]);
    assert_eq!(first.success(), "");
    assert_eq!(first.stderr, format!("wrote 2 files, removed 0 stale files to {dir}\n"));
    assert!(out.path().join("app/service-app.yaml").exists());

    repo.remove("charts/app/templates/service.yaml");
    let second = repo.weaver(&["render", "--env", "dev", "--output-dir", dir]);
    assert_eq!(second.success(), "");
    assert_eq!(second.stderr, format!("wrote 1 files, removed 1 stale files to {dir}\n"));
    assert!(!out.path().join("app/service-app.yaml").exists());
    assert!(out.path().join("app/configmap-app.yaml").exists());
    assert_eq!(std::fs::read_to_string(out.path().join("README")).unwrap(), "mine\n");
    assert_eq!(std::fs::read_to_string(out.path().join("app/notes.yaml")).unwrap(), "mine: true\n");

    // A release that is gone takes its files and, once empty, its directory with it.
    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: other\n    chart: app\n");
    let third = repo.weaver(&["render", "--env", "dev", "--output-dir", dir]);
    assert_eq!(third.stderr, format!("wrote 1 files, removed 1 stale files to {dir}\n"));
    assert!(!out.path().join("app/configmap-app.yaml").exists());
    assert!(out.path().join("app/notes.yaml").exists(), "a user's file keeps its directory");
    assert!(out.path().join("other/configmap-other.yaml").exists());
}

/// Objects of one release sharing kind and name in several namespaces are written one level
/// down, and removed from there (their emptied directories too) once no longer rendered.
#[test]
fn output_dir_writes_same_named_objects_per_namespace_and_removes_them_when_stale() {
    let repo = Repo::demo();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    repo.weaver(&["render", "--env", "dev", "-r", "settings-sync", "--output-dir", dir]).success();
    let role = |namespace: &str| out.path().join(format!("settings-sync/{namespace}/role-settings-sync-writer.yaml"));
    for namespace in ["shop-dev-jobs", "shop-dev-reports"] {
        let text = std::fs::read_to_string(role(namespace)).unwrap();
        assert!(text.contains(&format!("namespace: {namespace}\n")), "{namespace}");
    }

    // One target namespace left: its Role is the only one of that name, so it moves up.
    let values = std::fs::read_to_string(repo.path().join("charts/settings-sync/values.yaml")).unwrap();
    repo.write("charts/settings-sync/values.yaml", &values.replace("[reports, jobs]", "[reports]"));
    let second = repo.weaver(&["render", "--env", "dev", "-r", "settings-sync", "--output-dir", dir]);
    // Both Roles and both RoleBindings under their namespaces, and the jobs Namespace.
    assert!(second.stderr.contains("removed 5 stale files"), "{}", second.stderr);
    assert!(!role("shop-dev-jobs").exists() && !role("shop-dev-reports").exists());
    assert!(!out.path().join("settings-sync/shop-dev-jobs").exists(), "the emptied namespace directory stays");
    assert!(out.path().join("settings-sync/role-settings-sync-writer.yaml").exists());
}

#[test]
fn output_dir_never_writes_or_removes_through_a_symbolic_link() {
    let repo = Repo::minimal();
    let out = tempfile::tempdir().unwrap();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("important.yaml"), "precious\n").unwrap();
    std::fs::write(victim.path().join("configmap-app.yaml"), "keep\n").unwrap();
    std::os::unix::fs::symlink(victim.path(), out.path().join("app")).unwrap();
    std::fs::write(out.path().join(".weaver-render"), "app/important.yaml\n").unwrap();
    let run = repo.weaver(&["render", "--env", "dev", "--output-dir", out.path().to_str().unwrap()]);
    let stderr = run.failure();
    assert!(stderr.contains("app: is a symbolic link: --output-dir writes and removes only its own files"), "{stderr}");
    assert_eq!(std::fs::read_to_string(victim.path().join("important.yaml")).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(victim.path().join("configmap-app.yaml")).unwrap(), "keep\n");
}

#[test]
fn render_says_when_it_redacted_values_and_output_dir_needs_a_choice() {
    let printed = weaver_in(&project_root(), &["render", "--env", "dev"], &[]);
    assert!(printed.success().contains("<redacted:"));
    assert_eq!(
        printed.stderr,
        "warning: 3 Secret or decrypted value(s) are redacted as `<redacted:…>`, so this output cannot be applied as it is; --show-secrets prints them\n"
    );
    let shown = weaver_in(&project_root(), &["render", "--env", "dev", "--show-secrets"], &[]);
    assert!(!shown.success().contains("<redacted:"));
    assert_eq!(shown.stderr, "");

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let refused = weaver_in(&project_root(), &["render", "--env", "dev", "--output-dir", dir], &[]);
    assert!(refused.failure().contains("--redact"), "{}", refused.stderr);
    assert!(walk(out.path()).is_empty(), "nothing is written when refused");
    let redacted = weaver_in(&project_root(), &["render", "--env", "dev", "--output-dir", dir, "--redact"], &[]);
    assert_eq!(redacted.success(), "");
    let secret = std::fs::read_to_string(out.path().join("web/secret-web-secrets.yaml")).unwrap();
    assert!(secret.contains("<redacted:"), "{secret}");
    // The tenant's Role of one name in each target namespace: a file each, one level down.
    for namespace in ["shop-dev-jobs", "shop-dev-reports"] {
        let role = std::fs::read_to_string(
            out.path().join(format!("settings-sync/{namespace}/role-settings-sync-writer.yaml")),
        );
        assert!(role.unwrap().contains(&format!("namespace: {namespace}\n")), "{namespace}");
    }
    let real = weaver_in(&project_root(), &["render", "--env", "dev", "--output-dir", dir, "--show-secrets"], &[]);
    assert_eq!(real.success(), "");
    let secret = std::fs::read_to_string(out.path().join("web/secret-web-secrets.yaml")).unwrap();
    assert!(!secret.contains("<redacted:"), "{secret}");
}

#[test]
fn verbose_twice_adds_the_time_of_each_phase() {
    let once = weaver_in(&project_root(), &["render", "--env", "dev", "-v"], &[]);
    once.success();
    assert!(once.stderr.contains("weaver: rendered 42 objects of 5 releases\n"), "{}", once.stderr);
    assert!(!once.stderr.contains("took"), "{}", once.stderr);
    let twice = weaver_in(&project_root(), &["render", "--env", "dev", "-vv"], &[]);
    twice.success();
    for phase in ["load", "decrypt", "render"] {
        assert!(twice.stderr.contains(&format!("weaver: {phase} took ")), "{phase}: {}", twice.stderr);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Whatever weaver prints must mean the same to a YAML 1.1 reader (kubectl, helm): PyYAML's
/// safe_load must give back exactly weaver's own model of the objects.
#[test]
fn rendered_yaml_reads_the_same_in_yaml_1_1() {
    let has_pyyaml = std::process::Command::new(common::tools::python3())
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !interop_available("python3 with PyYAML", has_pyyaml) {
        return;
    }
    let repo = Repo::minimal();
    let tricky = [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Y",
        "N",
        "1_000",
        "2024-01-01",
        "0755",
        "0x1F",
        "1:20",
        "~",
        "null",
        "true",
        ".inf",
        "-.5",
        "1e3",
        "=",
        "<<",
        "",
        " lead",
        "trail ",
        "a: b",
        "a #b",
        "- x",
        "multi\nline\n",
        "tab\there",
        "ünïcødé ✓",
    ];
    let mut template = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tricky\ndata:\n");
    for (i, _) in tricky.iter().enumerate() {
        template.push_str(&format!("  k{i}: {{{{ values.s{i} | tojson }}}}\n"));
    }
    template.push_str("  {{ 'yes' | tojson }}: keyed\n");
    let values: Vec<String> =
        tricky.iter().enumerate().map(|(i, s)| format!("s{i}: {}", serde_json::to_string(s).unwrap())).collect();
    repo.write("charts/app/templates/configmap.yaml", &template)
        .write("charts/app/values.yaml", &(values.join("\n") + "\n"));
    let rendered = repo.weaver(&["render", "--env", "dev"]).success().to_string();

    let script =
        "import sys, yaml, json\nprint(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))";
    let mut child = std::process::Command::new(common::tools::python3())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), rendered.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML could not read weaver's output:\n{rendered}");
    let from_yaml11: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let data = &from_yaml11[0]["data"];
    for (i, s) in tricky.iter().enumerate() {
        assert_eq!(
            data[format!("k{i}")],
            serde_json::Value::String(s.to_string()),
            "value {s:?} changed meaning for YAML 1.1:\n{rendered}"
        );
    }
    assert_eq!(data["yes"], "keyed");

    // And the demo, whole: the YAML 1.1 reading equals weaver's own.
    for env in ["dev", "staging", "prod"] {
        let rendered = render_demo(env);
        let mut child = std::process::Command::new(common::tools::python3())
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), rendered.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let yaml11: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&rendered).unwrap();
        assert_eq!(yaml11, serde_json::Value::Array(ours.into_iter().filter(|d| !d.is_null()).collect()), "env {env}");
    }
}

#[test]
fn envs_lists_environments_releases_charts_and_namespaces() {
    let run = weaver_in(&project_root(), &["envs"], &[]);
    let out = run.success();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ENVIRONMENT", "LABELS", "RELEASE", "CHART", "NAMESPACE", "NEEDS"]
    );
    assert!(
        lines.iter().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["base", "(abstract)", "team=shop", "web", "web-app", "shop", "redis"]),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["prod", "region=eu,team=shop,tier=prod", "redis", "redis", "shop", "-"]),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["dev", "team=shop,tier=dev", "web", "web-app", "shop-dev", "redis"]),
        "{out}"
    );

    let json: serde_json::Value =
        serde_json::from_str(weaver_in(&project_root(), &["envs", "-o", "json"], &[]).success()).unwrap();
    let prod = json["environments"].as_array().unwrap().iter().find(|e| e["name"] == "prod").unwrap();
    assert_eq!(prod["context"], "prod-eu");
    assert_eq!(prod["extends"], "base");
    assert_eq!(prod["releases"][1]["needs"], serde_json::json!(["redis"]));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = weaver_in(&project_root(), &["completions", shell], &[]);
        let script = run.success();
        // The script asks this weaver for candidates.
        assert!(script.contains("COMPLETE") && script.contains(common::WEAVER), "{shell}:\n{script}");
    }
    let run = weaver_in(&project_root(), &["completions", "tcsh"], &[]);
    assert_eq!(run.code, 1, "usage errors exit 1 (2 means changes found)");
    assert!(run.stderr.contains("invalid value 'tcsh'"), "{}", run.stderr);
}

/// What the shell gets for `weaver --repo DEMO <args>` with the cursor on the last word.
fn complete(repo: &Path, args: &[&str]) -> Vec<String> {
    let mut line = vec!["--", "weaver", "--repo", repo.to_str().unwrap()];
    line.extend_from_slice(args);
    let run = weaver_in(repo, &line, &[("COMPLETE", "fish")]);
    run.success().lines().map(|l| l.split('\t').next().unwrap().to_string()).collect()
}

#[test]
fn completion_offers_environments_releases_and_only_the_options_a_command_uses() {
    let repo = Repo::demo();
    assert_eq!(complete(repo.path(), &["render", "--env", ""]), ["dev", "prod", "staging"]);
    assert_eq!(complete(repo.path(), &["diff", "--env", "st"]), ["staging"]);
    assert_eq!(
        complete(repo.path(), &["render", "--env", "dev", "-r", ""]),
        ["redis", "web", "weaver", "settings-sync", "staging-sync"]
    );
    assert!(complete(repo.path(), &["history", "--env", "dev", ""]).contains(&"web".to_string()));
    assert_eq!(complete(repo.path(), &["diff", "--env", "dev", "--kube"]), ["--kubeconfig"]);
    assert!(complete(repo.path(), &["render", "--env", "dev", "--kube"]).is_empty());
    assert!(complete(repo.path(), &["drift", "--env", "dev", "--ident"]).is_empty());
}

#[test]
fn no_color_and_color_flags() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases: [\n");
    let plain = repo.weaver(&["render", "--env", "dev", "--color", "always"]);
    assert!(plain.stderr.starts_with("\x1b[31merror:\x1b[0m "), "{:?}", plain.stderr);
    let never = repo.weaver(&["render", "--env", "dev", "--color", "never"]);
    assert!(never.stderr.starts_with("error: "));
    // Not a terminal and NO_COLOR set (the test harness sets it): plain.
    assert!(repo.weaver(&["render", "--env", "dev"]).stderr.starts_with("error: "));
}

/// helm's rule at every level: `null` deletes the key from every lower layer (chart values.yaml
/// < valuesFiles < base environment < child environment), with or without `extends`.
#[test]
fn null_deletes_lower_layers_with_and_without_extends() {
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata:\n  values: {{ values | tojson | quote }}\n  env: {{ env.values | tojson | quote }}\n";
    let base_values = "    valuesFiles: [values/app.yaml]\n    values:\n      a: { x: 5 }\n";
    let child_values = "    values:\n      a: { y: null }\n      b: null\n      f: null\n";
    let extended = Repo::minimal();
    extended
        .write("environments/base.yaml", &format!("abstract: true\nnamespace: apps\nvalues: {{ d: 1, e: {{ g: 1, h: 1 }} }}\nreleases:\n  - name: app\n    chart: app\n{base_values}"))
        .write("environments/dev.yaml", &format!("extends: base\nvalues: {{ e: {{ g: null }} }}\nreleases:\n  - name: app\n{child_values}"));
    let single = Repo::minimal();
    single.write(
        "environments/dev.yaml",
        "namespace: apps\nvalues: { d: 1, e: { h: 1, g: null } }\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/app.yaml]\n    values:\n      a: { x: 5, y: null }\n      b: null\n      f: null\n",
    );
    for repo in [&extended, &single] {
        repo.write("charts/app/values.yaml", "a: { x: 1, y: 2 }\nb: 1\nc: 1\nf: 1\n")
            .write("charts/app/templates/configmap.yaml", template)
            .write("values/app.yaml", "c: null\nf: 2\n");
        let run = repo.weaver(&["render", "--env", "dev"]);
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(run.success()).unwrap();
        let data = &docs[0]["data"];
        assert_eq!(data["values"], r#"{"a":{"x":5}}"#, "{}", run.stdout);
        assert_eq!(data["env"], r#"{"d":1,"e":{"h":1}}"#, "{}", run.stdout);
    }
}

/// An I/O error is said in weaver's one style, without Rust's "(os error 28)".
#[test]
fn a_full_standard_output_is_reported_without_os_error_numbers() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        common::skip::say_skipped("this system has no /dev/full");
        return;
    };
    let repo = Repo::minimal();
    let out = std::process::Command::new(common::WEAVER)
        .args(["--repo", repo.path().to_str().unwrap(), "render", "--env", "dev"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "error: cannot write to standard output: no space left on device\n");
}

/// The generated repository of `releases` releases (more than `weaver render` renders at once,
/// 512), with a release `early` before them and `late` after them, of charts written here.
fn chunked_repo(releases: usize, early: &str, late: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::generated::generate_repo(dir.path(), releases);
    let write = |path: &str, text: &str| {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    };
    write("charts/widget/chart.yaml", "name: widget\nversion: 1.0.0\n");
    write("charts/widget/values.yaml", "size: 1\n");
    write(
        "charts/widget/templates/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {{ release.name }}\nspec:\n  size: {{ values.size }}\n",
    );
    let crd = |group: &str, kind: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Cluster\n  names: {{kind: {kind}, plural: {plural}, singular: {singular}, listKind: {kind}List}}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec:\n              type: object\n              properties:\n                size: {{type: integer}}\n",
            plural = format!("{}s", kind.to_lowercase()),
            singular = kind.to_lowercase(),
        )
    };
    write("charts/widget-crd/chart.yaml", "name: widget-crd\nversion: 1.0.0\n");
    write("charts/widget-crd/templates/crd.yaml", &crd("example.com", "Widget"));
    // Another CRD of Widget, whose `size` is a string.
    let more =
        crd("example.com", "Widget").replace("integer", "string").replace("widgets.example", "morewidgets.example");
    write("charts/widget-crd-string/chart.yaml", "name: widget-crd-string\nversion: 1.0.0\n");
    write("charts/widget-crd-string/templates/crd.yaml", &more);
    // The Widget CRD beside a kind no CRD of the run defines.
    write("charts/widget-crd-monitored/chart.yaml", "name: widget-crd-monitored\nversion: 1.0.0\n");
    write("charts/widget-crd-monitored/templates/crd.yaml", &crd("example.com", "Widget"));
    write(
        "charts/widget-crd-monitored/templates/monitor.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: widgets\nspec:\n  endpoints: [{port: metrics}]\n",
    );
    write("charts/deployment-crd/chart.yaml", "name: deployment-crd\nversion: 1.0.0\n");
    write("charts/deployment-crd/templates/crd.yaml", &crd("apps", "Deployment"));
    write("charts/broken/chart.yaml", "name: broken\nversion: 1.0.0\n");
    write("charts/broken/templates/broken.yaml", "{{ values.missing.field }}\n");
    let env_path = dir.path().join("environments/bench.yaml");
    let env = std::fs::read_to_string(&env_path).unwrap();
    let env = env.replacen("releases:\n", &format!("releases:\n{early}"), 1) + late;
    std::fs::write(env_path, env).unwrap();
    dir
}

/// What `-v` says when a late CRD makes a chunked render start again, holding every object.
const RENDERING_AGAIN: &str = "rendering again, holding every object";

/// The document of `kind` and `name` in a rendered stream.
fn document<'a>(stream: &'a str, kind: &str, name: &str) -> &'a str {
    stream
        .split("\n---\n")
        .find(|d| d.contains(&format!("\nkind: {kind}\n")) && d.contains(&format!("\n  name: {name}\n")))
        .unwrap_or_else(|| panic!("no {kind} {name} in the output"))
}

/// A release rendered before the CRD of its custom resource, many releases earlier, is
/// rendered with the CRD's scope (cluster-scoped: no namespace) and checked against its schema.
#[test]
fn a_crd_rendered_after_many_releases_still_decides_its_objects_scope_and_schema() {
    let late = "  - name: late\n    chart: widget-crd\n";
    let dir = chunked_repo(600, "  - name: early\n    chart: widget\n", late);
    let run = weaver_in(dir.path(), &["render", "--env", "bench", "-v"], &[]);
    let out = run.success().to_string();
    assert!(!run.stderr.contains(RENDERING_AGAIN), "the release waited for its CRD, in chunks:\n{}", run.stderr);
    let widget = document(&out, "Widget", "early");
    assert!(!widget.contains("namespace:"), "a cluster-scoped Widget has no namespace:\n{widget}");
    assert!(document(&out, "ConfigMap", "svc-0000").contains("namespace: bench"));
    assert!(out.starts_with("---\n# Source: charts/widget/templates/widget.yaml (release early)\n"), "order kept");

    let dir = chunked_repo(600, "  - name: early\n    chart: widget\n    values: {size: big}\n", late);
    refused_for_size(&weaver_in(dir.path(), &["render", "--env", "bench"], &[]), "early");
}

/// Validation refused `release`'s Widget for its `size` (and, as every failure, printed
/// nothing on stdout).
fn refused_for_size(run: &common::Run, release: &str) {
    let err = run.failure();
    assert!(err.contains(&format!("release `{release}`")) && err.contains(".spec.size"), "{err}");
}

/// A release carrying a CRD waits, with its objects, when it also has a kind no CRD of the run
/// defines (a ServiceMonitor): the releases using that CRD's kind, finished before it, are
/// still checked against its schema, in one chunk (the whole-run render) and in several.
#[test]
fn a_crd_in_a_release_that_waits_for_an_unknown_kind_gives_its_schema() {
    let monitored = "  - name: crd\n    chart: widget-crd-monitored\n";
    for (size, valid) in [("", true), ("    values: {size: big}\n", false)] {
        let user = format!("  - name: user\n    chart: widget\n{size}");
        // One chunk (the whole-run render), then several: the user comes after 600 releases.
        for (releases, early, late) in [(3, format!("{monitored}{user}"), String::new()), (600, monitored.into(), user)]
        {
            let dir = chunked_repo(releases, &early, &late);
            let run = weaver_in(dir.path(), &["render", "--env", "bench"], &[]);
            if valid {
                let out = run.success().to_string();
                assert!(!document(&out, "Widget", "user").contains("namespace:"), "a cluster-scoped Widget");
                assert!(document(&out, "ServiceMonitor", "widgets").contains("port: metrics"));
            } else {
                refused_for_size(&run, "user");
            }
        }
    }
}

/// Of two CRDs of one kind, the last one rendered gives its schema, even to objects rendered
/// (and checked) before it was.
#[test]
fn the_last_crd_of_a_kind_gives_the_schema_objects_rendered_before_it_are_checked_against() {
    let early = "  - name: crd\n    chart: widget-crd\n  - name: early\n    chart: widget\n    values: {size: big}\n";
    let dir = chunked_repo(600, early, "  - name: late\n    chart: widget-crd-string\n");
    let out = weaver_in(dir.path(), &["render", "--env", "bench"], &[]).success().to_string();
    assert!(document(&out, "Widget", "early").contains("size: big"));
}

/// A CRD rendered late that changes the scope of a kind earlier releases already used (here a
/// CRD of a built-in kind's name, which weaver's scopes take over the built-in table) gives the
/// same output as a render holding every object would.
#[test]
fn a_late_crd_changing_a_kind_already_rendered_gives_the_scope_it_says() {
    let dir = chunked_repo(600, "", "  - name: late\n    chart: deployment-crd\n");
    // A Secret value, redacted once though the run formats its release twice.
    std::fs::write(
        dir.path().join("charts/svc/templates/secret.yaml"),
        "{% if release.name == 'svc-0000' %}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: not-for-output\n{% endif %}\n",
    )
    .unwrap();
    let run = weaver_in(dir.path(), &["render", "--env", "bench", "-v"], &[]);
    let out = run.success().to_string();
    assert!(run.stderr.contains(RENDERING_AGAIN), "{}", run.stderr);
    assert!(run.stderr.contains(" 1 Secret or decrypted value(s) are redacted"), "{}", run.stderr);
    assert!(!out.contains("not-for-output"));
    let deployment = document(&out, "Deployment", "svc-0000");
    assert!(!deployment.contains("namespace:"), "the CRD says Deployments are cluster-scoped:\n{deployment}");
    assert!(document(&out, "ConfigMap", "svc-0000").contains("namespace: bench"));
}

/// Errors found late in a run come before any output, in the order a render holding every
/// object reports them: a template's error before an earlier release's invalid object.
#[test]
fn errors_found_after_many_releases_come_before_any_output() {
    let early = "  - name: early\n    chart: widget\n    values: {size: big}\n";
    let dir = chunked_repo(600, early, "  - name: late\n    chart: broken\n");
    let run = weaver_in(dir.path(), &["render", "--env", "bench"], &[]);
    let err = run.failure();
    assert!(err.contains("charts/broken/templates/broken.yaml") && !err.contains(".spec.size"), "{err}");
    assert_eq!(run.stdout, "");

    let dir = chunked_repo(600, "", "  - name: svc-0000-again\n    chart: svc\n");
    std::fs::write(
        dir.path().join("charts/svc/templates/extra.yaml"),
        "{% if release.name == 'svc-0000-again' %}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: svc-0000\n{% endif %}\n",
    )
    .unwrap();
    let run = weaver_in(dir.path(), &["render", "--env", "bench"], &[]);
    let err = run.failure();
    assert!(
        err.contains("ConfigMap bench/svc-0000 is rendered twice") && err.contains("release `svc-0000-again`"),
        "{err}"
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn an_empty_namespace_written_before_the_name_gets_the_release_s() {
    // `namespace:` with no value, before `name` (a chart's `namespace: {{ .Values.ns }}` left
    // empty): it used to make weaver panic.
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace:\n  name: x\ndata:\n  a: b\n",
    );
    let out = repo.weaver(&["render", "--env", "dev"]);
    let documents = weaver_yaml::documents(std::path::Path::new("render"), out.success()).unwrap();
    let keys: Vec<&String> = documents[0]["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["name", "namespace", "labels"]);
    assert_eq!(documents[0]["metadata"]["namespace"], "apps");
}
