//! `weaver import helmfile`: realistic helmfiles converted, the converted repository rendered
//! against what `helm template` gives for the same chart and values (helm v3.17.1 at
//! $WEAVER_HELM or on PATH; skipped, saying so, without it unless WEAVER_REQUIRE_INTEROP=1),
//! what is listed as not converted, and the errors.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::Repo;
use serde_json::Value;

/// A Helm chart whose objects show every value it is given.
fn write_chart(repo: &Repo) {
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.2.0\nappVersion: \"2.0\"\n")
        .write(
            "charts/app/values.yaml",
            "replicas: 1\nimage:\n  repository: example/app\n  tag: latest\nconfig:\n  level: info\n  tags: [a]\nenv: []\n",
        )
        .write(
            "charts/app/templates/deployment.yaml",
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          env:
            {{- range .Values.env }}
            - name: {{ .name }}
              value: {{ .value | quote }}
            {{- end }}
"#,
        )
        .write(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  config.yaml: |\n{{ toYaml .Values.config | indent 4 }}\n",
        );
}

/// The helmfile of the conversion tests, with its values files: two environments with values
/// files and inline values; a local chart with values files, inline values, `set`, `needs`,
/// labels; a release not installed; one with hooks and one with a postRenderer.
fn write_helmfile(repo: &Repo) {
    repo.write("env/common.yaml", "domain: example.com\nlog:\n  level: info\n")
        .write("env/prod.yaml", "log:\n  level: warn\n")
        .write("env/dev.yaml.gotmpl", "tier: {{ .Environment.Name }}-{{ .Values.log.level }}\n")
        .write("values/app.yaml", "replicas: 2\nimage:\n  tag: \"1.4\"\nconfig:\n  tags: [x, y]\n")
        .write(
            "values/app.yaml.gotmpl",
            "config:\n  host: app.{{ .Values.domain }}\n  level: {{ .Values.log.level }}\n  env: {{ .Environment.Name }}\n",
        )
        .write(
            "helmfile.yaml",
            r#"environments:
  dev:
    values:
      - env/common.yaml
      - env/dev.yaml.gotmpl
      - replicasOverride: 1
    kubeContext: kind-dev
  prod:
    values:
      - env/common.yaml
      - env/prod.yaml
      - extra: {enabled: true}
    kubeContext: prod-eu

helmDefaults:
  wait: true
  timeout: 600
  createNamespace: true

releases:
  - name: db
    chart: ./charts/app
    namespace: shop
    labels: {tier: data}
  - name: app
    chart: ./charts/app
    namespace: shop
    needs: [shop/db]
    labels:
      tier: front
    values:
      - values/app.yaml
      - values/app.yaml.gotmpl
      - image:
          repository: registry.example.com/app
        env:
          - {name: MODE, value: web}
    set:
      - name: replicas
        value: 3
      - name: config.flags
        values: [fast, safe]
    setString:
      - name: image.tag
        value: "1.5"
  - name: legacy
    chart: ./charts/app
    namespace: shop
    installed: false
  - name: migrate
    chart: ./charts/app
    namespace: shop
    hooks:
      - events: [presync]
        command: ./scripts/migrate.sh
  - name: tweaked
    chart: ./charts/app
    namespace: shop
    postRenderer: ./scripts/kustomize.sh
"#,
        );
}

/// Objects by `kind/name`, weaver's labels and namespaces left out.
fn by_key(text: &str) -> BTreeMap<String, Value> {
    weaver_yaml::documents(Path::new("render"), text)
        .unwrap()
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|mut o| {
            let meta = o["metadata"].as_object_mut().unwrap();
            meta.remove("namespace");
            if let Some(Value::Object(labels)) = meta.get_mut("labels") {
                labels.retain(|k, _| !k.starts_with("weaver.example.com/") && k != "app.kubernetes.io/managed-by");
                if labels.is_empty() {
                    meta.remove("labels");
                }
            }
            (format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), o)
        })
        .collect()
}

fn import(repo: &Repo, args: &[&str]) -> common::Run {
    let helmfile = repo.path().join("helmfile.yaml");
    let mut all = vec!["import", "helmfile", helmfile.to_str().unwrap()];
    all.extend(args);
    repo.weaver(&all)
}

#[test]
fn a_helmfile_becomes_a_base_and_one_environment_file_each_listing_what_is_left_out() {
    let repo = Repo::empty();
    write_chart(&repo);
    write_helmfile(&repo);
    let run = import(&repo, &[]);
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "wrote environments/base.yaml\nwrote environments/dev.yaml\nwrote environments/prod.yaml\nwrote weaver-import.lock\n"
    );
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert_eq!(
        base,
        r#"# Imported from helmfile.yaml by `weaver import helmfile`.
abstract: true
releases:
- name: db
  chart: app
  namespace: shop
  labels:
    tier: data
- name: app
  chart: app
  namespace: shop
  needs:
  - db
  labels:
    tier: front
  valuesFiles:
  - values/app.yaml
  - values/app.yaml.gotmpl
  values:
    config:
      flags:
      - fast
      - safe
    env:
    - name: MODE
      value: web
    replicas: 3
    image:
      repository: registry.example.com/app
      tag: '1.5'
- name: legacy
  chart: app
  namespace: shop
  installed: false
- name: migrate
  chart: app
  namespace: shop
- name: tweaked
  chart: app
  namespace: shop
"#
    );
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    assert_eq!(
        dev,
        "# Imported from helmfile.yaml by `weaver import helmfile`.\nextends: base\ncluster:\n  context: kind-dev\n\
         valuesFiles:\n- env/common.yaml\nvalues:\n  tier: dev-info\n  replicasOverride: 1\n"
    );
    let prod = std::fs::read_to_string(repo.path().join("environments/prod.yaml")).unwrap();
    assert!(
        prod.contains("valuesFiles:\n- env/common.yaml\n- env/prod.yaml\nvalues:\n  extra:\n    enabled: true\n"),
        "{prod}"
    );

    let file = repo.path().join("helmfile.yaml").display().to_string();
    let expected = [
        format!(
            "not converted: {file}:16: helmDefaults wait: weaver waits for readiness when applied with `weaver apply --wait`"
        ),
        format!("not converted: {file}:17: helmDefaults timeout: give `weaver apply --wait --timeout DURATION`"),
        format!("not converted: {file}:54: release `migrate`: hook on presync: weaver runs no commands"),
        format!("not converted: {file}:59: release `tweaked`: postRenderer: weaver runs no commands"),
    ];
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{}", run.stderr);
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.starts_with(want.as_str()), "\n{line}\nshould start with\n{want}");
    }
    assert!(lines.last().unwrap().starts_with("4 things were not converted"), "{}", run.stderr);

    // The converted repository is a valid one.
    let envs = repo.weaver(&["envs"]);
    assert!(envs.success().lines().any(|l| l.starts_with("dev ") && l.contains(" app ")), "{}", envs.stdout);
}

#[test]
fn the_converted_repository_renders_what_helm_template_gives_for_the_same_values() {
    let Some(helm) = common::helm_or_skip() else { return };
    let repo = Repo::empty();
    write_chart(&repo);
    write_helmfile(&repo);
    assert_eq!(import(&repo, &[]).code, 2);

    for env in ["dev", "prod"] {
        // What helmfile gives helm: the values files (the .gotmpl one rendered), the inline
        // values as a file, then --set and --set-string.
        let level = if env == "prod" { "warn" } else { "info" };
        repo.write(
            &format!(".helm/{env}-rendered.yaml"),
            &format!("config:\n  host: app.example.com\n  level: {level}\n  env: {env}\n"),
        )
        .write(
            ".helm/inline.yaml",
            "image:\n  repository: registry.example.com/app\nenv:\n  - {name: MODE, value: web}\n",
        );
        let out = Command::new(&helm)
            .current_dir(repo.path())
            .args(["template", "app", "charts/app", "-n", "shop", "--kube-version", "v1.32.0"])
            .args(["--include-crds", "--skip-tests", "-f", "values/app.yaml"])
            .args(["-f", &format!(".helm/{env}-rendered.yaml"), "-f", ".helm/inline.yaml"])
            .args(["--set", "replicas=3", "--set", "config.flags={fast,safe}", "--set-string", "image.tag=1.5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let expected = by_key(&String::from_utf8(out.stdout).unwrap());
        let rendered = repo.weaver(&["render", "--env", env, "-r", "app"]);
        let actual = by_key(rendered.success());
        assert_eq!(actual, expected, "environment {env}");
        assert_eq!(actual["Deployment/app"]["spec"]["replicas"], 3);
    }
    // A release with `installed: false` renders nothing; the others render.
    let all = by_key(repo.weaver(&["render", "--env", "dev"]).success());
    assert!(all.contains_key("Deployment/db") && !all.contains_key("Deployment/legacy"), "{:?}", all.keys());
}

#[test]
fn remote_charts_repositories_conditions_and_patches_are_converted() {
    let repo = Repo::empty();
    repo.write(
        "helmfile.yaml",
        r#"repositories:
  - name: bitnami
    url: https://charts.bitnami.com/bitnami
  - name: internal
    url: registry.example.com/charts
    oci: true
    username: robot
environments:
  default:
    values:
      - metrics: {enabled: false}
  staging:
    values:
      - metrics: {enabled: true}
releases:
  - name: db
    chart: bitnami/postgresql
    version: ~16.2.0
    namespace: data
    createNamespace: false
  - name: api
    chart: internal/api
    version: 1.x
    needs: [data/db]
    strategicMergePatches:
      - apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api}
        spec: {replicas: 2}
    jsonPatches:
      - target: {group: apps, version: v1, kind: Deployment, name: api}
        patch:
          - {op: add, path: /spec/paused, value: true}
  - name: metrics
    chart: oci://ghcr.io/example/charts/metrics
    condition: metrics.enabled
"#,
    );
    let run = import(&repo, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert_eq!(
        base,
        r#"# Imported from helmfile.yaml by `weaver import helmfile`.
abstract: true
repositories:
- name: bitnami
  url: https://charts.bitnami.com/bitnami
- name: internal
  url: oci://registry.example.com/charts
releases:
- name: db
  chart: bitnami/postgresql
  version: ~16.2.0
  namespace: data
  createNamespace: false
- name: api
  chart: internal/api
  version: '1.x'
  needs:
  - db
  patches:
  - target:
      apiVersion: apps/v1
      kind: Deployment
      name: api
    patch:
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: api
      spec:
        replicas: 2
  - target:
      apiVersion: apps/v1
      kind: Deployment
      name: api
    ops:
    - op: add
      path: /spec/paused
      value: true
- name: metrics
  chart: oci://ghcr.io/example/charts/metrics
"#
    );
    // The condition is false in `default`: the release is not installed there.
    let default = std::fs::read_to_string(repo.path().join("environments/default.yaml")).unwrap();
    assert!(default.ends_with("releases:\n- name: metrics\n  installed: false\n"), "{default}");
    let staging = std::fs::read_to_string(repo.path().join("environments/staging.yaml")).unwrap();
    assert!(!staging.contains("releases:"), "{staging}");
    assert!(
        run.stderr.contains(":7: repository `internal`: username: credentials come from the machine"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("next: `weaver charts lock` pins the remote charts (bitnami/postgresql, internal/api, oci://ghcr.io/example/charts/metrics)"), "{}", run.stderr);
    // weaver reads what it wrote.
    let envs = repo.weaver(&["envs"]);
    assert!(envs.success().contains("metrics (not installed)"), "{}", envs.stdout);
}

/// A `.gotmpl` helmfile as real repositories write them: environments in the first part, the
/// releases rendered with their values in the next, values files named after the environment,
/// a release only one environment has, one a value turns off, and a repository weaver cannot
/// load.
fn write_templated_helmfile(repo: &Repo) {
    write_chart(repo);
    repo.write("env/dev.yaml", "namespace: shop-dev\npostgres: {enabled: true}\n")
        .write("env/prod.yaml", "namespace: shop\npostgres: {enabled: false}\nreplicas: 3\n")
        .write("values/app/dev.yaml", "image:\n  tag: dev\n")
        .write("values/app/prod.yaml", "image:\n  tag: \"1.4\"\nconfig:\n  level: warn\n")
        .write(
            "helmfile.yaml.gotmpl",
            r#"environments:
  dev:
    values: [env/dev.yaml]
  prod:
    values: [env/prod.yaml]
    kubeContext: prod-eu
---
repositories:
  - name: bitnami
    url: https://charts.bitnami.com/bitnami
  - name: private
    url: git+https://github.com/example/charts@charts?ref=main
releases:
  - name: app
    chart: ./charts/app
    namespace: {{ .Values.namespace }}
    values:
      - values/app/{{ .Environment.Name }}.yaml
      - replicas: {{ .Values | get "replicas" 1 }}
  - name: postgres
    chart: bitnami/postgresql
    version: 16.2.0
    namespace: {{ .Values.namespace }}
    installed: {{ .Values.postgres.enabled }}
{{- if eq .Environment.Name "prod" }}
  - name: backup
    chart: ./charts/app
    namespace: {{ .Values.namespace }}
    needs: [postgres]
{{- end }}
  - name: tools
    chart: private/tools
"#,
        );
}

#[test]
fn a_templated_helmfile_is_rendered_for_each_environment_and_what_differs_goes_into_its_file() {
    let repo = Repo::empty();
    write_templated_helmfile(&repo);
    let helmfile = repo.path().join("helmfile.yaml.gotmpl");
    let run = repo.weaver(&["import", "helmfile", helmfile.to_str().unwrap()]);
    assert_eq!(run.code, 2, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let file = helmfile.display().to_string();
    let lines = common::not_converted(&run.stderr);
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(
        lines[0].starts_with(&format!(
            "not converted: {file}:11: repository `private`: not a chart repository weaver can load"
        )),
        "{}",
        run.stderr
    );
    assert!(
        lines[1].starts_with(&format!(
            "not converted: {file}:32: release `tools`: chart `private/tools`: its repository `private` was left out"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("github.com"), "a repository URL may hold credentials: {}", run.stderr);

    let read = |name: &str| std::fs::read_to_string(repo.path().join("environments").join(name)).unwrap();
    let header = "# Imported from helmfile.yaml.gotmpl by `weaver import helmfile`.\n";
    assert_eq!(
        read("base.yaml"),
        format!(
            "{header}abstract: true\nrepositories:\n- name: bitnami\n  url: https://charts.bitnami.com/bitnami\nreleases:\n\
             - name: app\n  chart: app\n- name: postgres\n  chart: bitnami/postgresql\n  version: '16.2.0'\n"
        )
    );
    assert_eq!(
        read("dev.yaml"),
        format!(
            "{header}extends: base\nvaluesFiles:\n- env/dev.yaml\nreleases:\n\
             - name: app\n  namespace: shop-dev\n  valuesFiles:\n  - values/app/dev.yaml\n  values:\n    replicas: 1\n\
             - name: postgres\n  namespace: shop-dev\n"
        )
    );
    // postgres is not installed in prod, as helmfile says; backup is prod's alone.
    assert_eq!(
        read("prod.yaml"),
        format!(
            "{header}extends: base\ncluster:\n  context: prod-eu\nvaluesFiles:\n- env/prod.yaml\nreleases:\n- name: app\n  namespace: shop\n  valuesFiles:\n  - values/app/prod.yaml\n  values:\n    \
             replicas: 3\n- name: postgres\n  namespace: shop\n  installed: false\n- name: backup\n  chart: app\n  namespace: shop\n  \
             needs:\n  - postgres\n"
        )
    );

    // What was written loads: every environment, with every release.
    let envs = repo.weaver(&["envs"]);
    let listed = envs.success();
    for (env, release, namespace) in [
        ("dev", "app", "shop-dev"),
        ("dev", "postgres", "shop-dev"),
        ("prod", "backup", "shop"),
        ("prod", "postgres", "shop"),
    ] {
        assert!(
            listed.lines().any(|l| l.starts_with(&format!("{env} "))
                && l.contains(&format!(" {release} "))
                && l.contains(namespace)),
            "{env} {release} {namespace}:\n{listed}"
        );
    }
    assert!(!listed.lines().any(|l| l.starts_with("dev ") && l.contains(" backup ")), "{listed}");

    // Each environment's app renders what helm template gives with the values helmfile passes:
    // its environment's values file, then the inline values.
    let Some(helm) = common::helm_or_skip() else { return };
    for (env, namespace, replicas) in [("dev", "shop-dev", "1"), ("prod", "shop", "3")] {
        let out = Command::new(&helm)
            .current_dir(repo.path())
            .args(["template", "app", "charts/app", "-n", namespace, "--kube-version", "v1.32.0"])
            .args(["--include-crds", "--skip-tests", "-f", &format!("values/app/{env}.yaml")])
            .args(["--set", &format!("replicas={replicas}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rendered = repo.weaver(&["render", "--env", env, "-r", "app"]);
        let actual = by_key(rendered.success());
        assert_eq!(actual, by_key(&String::from_utf8(out.stdout).unwrap()), "environment {env}");
        assert_eq!(actual["Deployment/app"]["spec"]["replicas"].to_string(), replicas);
    }
}

#[test]
fn an_environment_that_does_not_render_is_listed_and_one_that_none_renders_is_an_error() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n").write(
        "helmfile.yaml.gotmpl",
        "environments:\n  dev: {}\n  prod: {}\n---\nreleases:\n- name: web\n  chart: ./charts/web\n\
         {{- if eq .Environment.Name \"prod\" }}\n  namespace: {{ .Values.namespace }}\n{{- end }}\n",
    );
    let run = repo.weaver(&["import", "helmfile", repo.path().join("helmfile.yaml.gotmpl").to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let file = repo.path().join("helmfile.yaml.gotmpl").display().to_string();
    assert!(
        run.stderr.starts_with(&format!("not converted: {file}:9: environment `prod`: helmfile template: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("map has no entry for key \"namespace\""), "{}", run.stderr);
    assert_eq!(run.stdout, "wrote environments/base.yaml\nwrote environments/dev.yaml\nwrote weaver-import.lock\n");

    repo.write(
        "helmfile.yaml",
        "releases:\n- name: web\n  chart: ./charts/web\n  namespace: {{ requiredEnv \"WEAVER_TEST_SURELY_UNSET\" }}\n",
    );
    let stderr = import(&repo, &["--force"]).failure().to_string();
    let file = repo.path().join("helmfile.yaml").display().to_string();
    assert!(stderr.starts_with(&format!("error: {file}:4:")), "{stderr}");
    assert!(stderr.contains("required env var `WEAVER_TEST_SURELY_UNSET` is not set"), "{stderr}");
}

/// A value the helmfile's templates read from an environment variable (often a credential)
/// never reaches the files or the output, however the templates encode it (b64enc) and however
/// short it is: the templates get a placeholder, and each read is listed with its line.
#[test]
fn a_value_read_from_an_environment_variable_is_never_written() {
    use base64::Engine;
    let secrets = [("WEAVER_TEST_PASSWORD", "s3cret-from-the-environment"), ("WEAVER_TEST_SHORT", "pw")];
    for (state, variable, line) in [
        (
            "environments:\n  prod:\n    values:\n    - password: {{ requiredEnv \"WEAVER_TEST_PASSWORD\" }}\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: shop\n",
            "WEAVER_TEST_PASSWORD",
            4,
        ),
        (
            "environments:\n  prod: {}\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: shop\n  values:\n  - password: {{ env \"WEAVER_TEST_PASSWORD\" }}\n",
            "WEAVER_TEST_PASSWORD",
            9,
        ),
        (
            "environments:\n  prod: {}\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: shop\n  set:\n  - name: auth\n    value: {{ requiredEnv \"WEAVER_TEST_PASSWORD\" | b64enc }}\n",
            "WEAVER_TEST_PASSWORD",
            10,
        ),
        (
            "environments:\n  prod: {}\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: shop\n  values:\n  - pin: {{ env \"WEAVER_TEST_SHORT\" | quote }}\n",
            "WEAVER_TEST_SHORT",
            9,
        ),
    ] {
        let repo = Repo::empty();
        repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
            .write("helmfile.yaml.gotmpl", state);
        let helmfile = repo.path().join("helmfile.yaml.gotmpl");
        let run = repo.weaver_env(&["import", "helmfile", helmfile.to_str().unwrap()], &secrets);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        let listed = format!("helmfile.yaml.gotmpl:{line}: environment variable `{variable}`: ");
        assert!(run.stderr.contains(&listed), "{listed}\n{}", run.stderr);
        let written: Vec<String> = ["base", "prod"]
            .iter()
            .map(|env| std::fs::read_to_string(repo.path().join(format!("environments/{env}.yaml"))).unwrap())
            .collect();
        let placeholder = format!("FROM-ENV-{variable}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&placeholder);
        assert!(written.iter().any(|text| text.contains(&placeholder) || text.contains(&encoded)), "{written:?}");
        for (_, value) in secrets {
            let b64 = base64::engine::general_purpose::STANDARD.encode(value);
            for text in written.iter().chain([&run.stdout, &run.stderr]) {
                assert!(!text.contains(&b64), "{b64} in {text}");
                // The short value is in common words (`prod`): only a whole scalar is its.
                assert!(!text.contains(&format!(" {value}\n")) && !text.contains(&format!("\"{value}\"")), "{text}");
                assert!(value.len() < 4 || !text.contains(value), "{text}");
            }
        }
    }
}

#[test]
fn a_helmfile_with_nothing_left_out_exits_0() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("helmfile.yaml", "releases:\n  - name: web\n    chart: charts/web\n    namespace: shop\n");
    let run = import(&repo, &[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "wrote environments/base.yaml\nwrote environments/default.yaml\nwrote weaver-import.lock\n", "")
    );
}

#[test]
fn the_api_versions_helmfile_gives_helm_template_become_the_environment_s_and_the_chart_renders() {
    let repo = Repo::empty();
    repo.write("charts/routes/Chart.yaml", "apiVersion: v2\nname: routes\nversion: 0.1.0\n")
        .write(
            "charts/routes/templates/routes.yaml",
            "{{- if not (.Capabilities.APIVersions.Has \"gateway.networking.k8s.io/v1\") }}{{ fail \"needs the Gateway API\" }}{{ end }}\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: routes\ndata:\n  \
             monitor: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1/ServiceMonitor\" | quote }}\n  \
             kube: {{ .Capabilities.KubeVersion.Version | quote }}\n",
        )
        .write(
            "helmfile.yaml",
            "apiVersions: [monitoring.coreos.com/v1/ServiceMonitor]\nhelmDefaults:\n  templateArgs:\n    \
             - --api-versions=gateway.networking.k8s.io/v1 --kube-version v1.31.0\n    - --dry-run=server\n\
             releases:\n  - name: routes\n    chart: charts/routes\n    namespace: web\n",
        );
    let run = import(&repo, &[]);
    let stderr = run.stderr.replace(&format!("{}/", repo.path().display()), "");
    assert_eq!(
        (run.code, stderr.trim_end()),
        (
            2,
            "not converted: helmfile.yaml:5: helmDefaults templateArgs: --dry-run=server: not supported: weaver runs no helm binary\n\
             1 thing was not converted (listed above): edit the environment files for what you need of it"
        ),
    );
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert!(
        base.contains(
            "kubeVersion: v1.31.0\napiVersions:\n- monitoring.coreos.com/v1/ServiceMonitor\n- gateway.networking.k8s.io/v1\n"
        ),
        "{base}"
    );
    let objects = by_key(repo.weaver(&["render", "--env", "default"]).success());
    assert_eq!(objects["ConfigMap/routes"]["data"], serde_json::json!({"monitor": "true", "kube": "v1.31.0"}));
}

#[test]
fn existing_environment_files_are_never_replaced_without_force() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("helmfile.yaml", "releases:\n  - name: web\n    chart: ./charts/web\n");
    assert_eq!(import(&repo, &[]).code, 0);
    repo.write("environments/default.yaml", "releases: []\n");
    let run = import(&repo, &[]);
    assert_eq!(
        run.failure(),
        "error: environments/base.yaml: already exists (and environments/default.yaml)\n  help: weaver import never \
         replaces environment files silently: move them away, or give --force\n"
    );
    assert_eq!(std::fs::read_to_string(repo.path().join("environments/default.yaml")).unwrap(), "releases: []\n");
    // A file weaver import wrote, as it wrote it, is replaced with --force: not one changed since.
    let stderr = import(&repo, &["--force"]).failure().to_string();
    assert!(
        stderr.starts_with(
            "error: environments/default.yaml: already exists, changed since `weaver import` wrote it: --force \
             replaces only the files weaver import wrote, as it wrote them (weaver-import.lock lists them): nothing \
             was written\n"
        ),
        "{stderr}"
    );
    repo.remove("environments/default.yaml");
    assert_eq!(import(&repo, &["--force"]).code, 0);
    assert!(std::fs::read_to_string(repo.path().join("environments/default.yaml")).unwrap().contains("extends: base"));
    assert_eq!(import(&repo, &["--force"]).code, 0, "what it wrote, unchanged, is replaced again");
}

/// `--force` replaces only the files `weaver import` wrote, unchanged since (weaver-import.lock
/// lists them): a file it did not write at a name it writes (helmfile data in
/// environments/base.yaml) and a file the helmfile reads with `readFile` where weaver writes an
/// environment are refused, naming them, and no byte of any file changes.
#[test]
fn force_never_replaces_a_file_weaver_import_did_not_write() {
    let reads_dev = "environments:\n  dev: {}\n---\nreleases:\n  - name: web\n    chart: ./charts/web\n    values:\n    \
                     - notes: {{ readFile \"environments/dev.yaml\" | quote }}\n";
    for (helmfile, (kept, text)) in [
        ("releases:\n  - name: web\n    chart: ./charts/web\n", ("environments/base.yaml", "some: data\n")),
        (reads_dev, ("environments/dev.yaml", "notes kept by hand\n")),
    ] {
        let repo = Repo::empty();
        repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
            .write("helmfile.yaml", helmfile)
            .write(kept, text);
        let before = common::fs::digests(repo.path());
        let run = import(&repo, &["--force"]);
        assert!(
            run.failure().starts_with(&format!("error: {kept}: already exists, not written by `weaver import`: ")),
            "{}",
            run.stderr
        );
        assert_eq!(common::fs::digests(repo.path()), before, "{kept}");
    }
}

#[test]
fn an_unreadable_or_invalid_helmfile_is_an_error_naming_it() {
    let repo = Repo::empty();
    let missing = repo.weaver(&["import", "helmfile", repo.path().join("nope.yaml").to_str().unwrap()]);
    let stderr = missing.failure();
    assert!(stderr.starts_with("error: ") && stderr.contains("nope.yaml: cannot read helmfile: "), "{stderr}");

    repo.write("helmfile.yaml", "releases:\n  - name: web\n    chart: [unclosed\n");
    let stderr = import(&repo, &[]).failure().to_string();
    let file = repo.path().join("helmfile.yaml").display().to_string();
    assert!(stderr.starts_with(&format!("error: {file}:")), "{stderr}");
    assert!(stderr.contains("invalid helmfile"), "{stderr}");
    assert!(!repo.path().join("environments").exists());

    repo.write("helmfile.yaml", "- just\n- a list\n");
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(stderr.contains(&format!("{file}:1:1: invalid helmfile: expected a mapping")), "{stderr}");
}

#[test]
fn a_release_s_secrets_become_its_own_secrets_applied_after_its_values() {
    let repo = Repo::empty();
    write_chart(&repo);
    repo.write("values/app.yaml", "replicas: 2\n").write("secrets/app.yaml", "sops: {}\n").write(
        "helmfile.yaml",
        "releases:\n  - name: app\n    chart: ./charts/app\n    namespace: shop\n    values: [values/app.yaml]\n    secrets: [secrets/app.yaml]\n",
    );
    let run = import(&repo, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert!(base.contains("  valuesFiles:\n  - values/app.yaml\n  secrets:\n  - secrets/app.yaml\n"), "{base}");
}

#[test]
fn helmfile_files_in_environments_that_weaver_would_refuse_stop_the_import_before_it_writes() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("environments/_defaults.yaml", "domain: example.org\n")
        .write(
            "helmfile.yaml",
            "environments:\n  dev:\n    values: [environments/_defaults.yaml]\n---\nreleases:\n- name: web\n  \
             chart: ./charts/web\n",
        );
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(stderr.starts_with("error: environments/_defaults.yaml: not a weaver environment"), "{stderr}");
    assert!(
        !repo.path().join("environments/dev.yaml").exists() && !repo.path().join("environments/base.yaml").exists()
    );

    // Moved out, the import writes what weaver loads.
    std::fs::rename(repo.path().join("environments/_defaults.yaml"), repo.path().join("defaults.yaml")).unwrap();
    repo.write(
        "helmfile.yaml",
        "environments:\n  dev:\n    values: [defaults.yaml]\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  \
         namespace: '{{ .Values.domain | replace \".\" \"-\" }}'\n",
    );
    assert_eq!(import(&repo, &[]).code, 0);
    let envs = repo.weaver(&["envs"]);
    assert!(envs.success().lines().any(|l| l.starts_with("dev ") && l.contains("example-org")), "{}", envs.stdout);
}

#[test]
fn a_chart_outside_charts_is_named_by_its_path_and_environment_values_files_stay_files() {
    let repo = Repo::empty();
    write_chart(&repo);
    std::fs::create_dir_all(repo.path().join("deploy")).unwrap();
    std::fs::rename(repo.path().join("charts/app"), repo.path().join("deploy/app")).unwrap();
    repo.write("env/common.yaml", "domain: example.com\nreplicas: 1\n")
        .write("env/prod.yaml", "domain: prod.example.com\n")
        .write("values/app.yaml.gotmpl", "replicas: {{ .Values.replicas }}\nconfig:\n  host: app.{{ .Values.domain }}\n")
        .write(
            "helmfile.yaml",
            "environments:\n  dev:\n    values: [env/common.yaml]\n  prod:\n    values: [env/common.yaml, env/prod.yaml, {replicas: 3}]\n\
             ---\nreleases:\n- name: app\n  chart: ./deploy/app\n  namespace: shop\n  values: [values/app.yaml.gotmpl]\n",
        );
    let run = import(&repo, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let read = |path: &str| std::fs::read_to_string(repo.path().join(path)).unwrap();
    assert!(
        read("environments/base.yaml").contains("- name: app\n  chart: ./deploy/app\n"),
        "{}",
        read("environments/base.yaml")
    );
    // The environments' values files are listed, not copied; what follows them inline is written.
    assert!(
        read("environments/dev.yaml").ends_with("extends: base\nvaluesFiles:\n- env/common.yaml\n"),
        "{}",
        read("environments/dev.yaml")
    );
    assert!(
        read("environments/prod.yaml")
            .ends_with("valuesFiles:\n- env/common.yaml\n- env/prod.yaml\nvalues:\n  replicas: 3\n"),
        "{}",
        read("environments/prod.yaml")
    );

    let helm = common::helm_or_skip();
    for (env, host, replicas) in [("dev", "app.example.com", 1), ("prod", "app.prod.example.com", 3)] {
        // The release's template values file sees the values the environment's files give.
        let rendered = by_key(repo.weaver(&["render", "--env", env]).success());
        assert_eq!(rendered["Deployment/app"]["spec"]["replicas"], replicas, "{env}");
        let Some(helm) = &helm else { continue };
        // What helmfile gives helm: the rendered values file.
        repo.write(".helm/app.yaml", &format!("replicas: {replicas}\nconfig:\n  host: {host}\n"));
        let out = Command::new(helm)
            .current_dir(repo.path())
            .args(["template", "app", "./deploy/app", "-n", "shop", "--kube-version", "v1.32.0"])
            .args(["--include-crds", "--skip-tests", "-f", ".helm/app.yaml"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(rendered, by_key(&String::from_utf8(out.stdout).unwrap()), "environment {env}");
    }

    // A change to the chart, or to an environment's values file, affects what uses it.
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "imported");
    let changed = |edit: &dyn Fn()| {
        edit();
        let out = repo.weaver(&["changed", "--base", "HEAD", "-o", "json"]);
        let report: Value = serde_json::from_str(out.success()).unwrap();
        let affected: Vec<String> = report["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}/{}", r["environment"].as_str().unwrap(), r["release"].as_str().unwrap()))
            .collect();
        assert_eq!(report["unattributed"], serde_json::json!([]), "{report}");
        common::git::commit_all(&git, "edit");
        affected
    };
    let template = repo.path().join("deploy/app/templates/configmap.yaml");
    assert_eq!(
        changed(&|| std::fs::write(&template, std::fs::read_to_string(&template).unwrap() + "  more: x\n").unwrap()),
        ["dev/app", "prod/app"]
    );
    assert_eq!(
        changed(&|| {
            repo.write("env/prod.yaml", "domain: eu.example.com\n");
        }),
        ["prod/app"]
    );
}

#[test]
fn a_local_chart_s_file_dependencies_are_read_as_helm_dependency_build_vendors_them() {
    let repo = Repo::empty();
    repo.write(
        "apps/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n- name: common\n  version: 1.0.0\n  \
         repository: file://../../lib/common\n",
    )
    .write("apps/web/templates/cm.yaml", "{{ include \"common.configmap\" . }}\n")
    .write("apps/web/values.yaml", "greeting: hello\n")
    .write("lib/common/Chart.yaml", "apiVersion: v2\nname: common\nversion: 1.0.0\ntype: library\n")
    .write(
        "lib/common/templates/_cm.tpl",
        "{{- define \"common.configmap\" -}}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n\
         data:\n  greeting: {{ .Values.greeting }}\n{{- end }}\n",
    )
    .write("helmfile.yaml", "releases:\n- {name: web, chart: ./apps/web, namespace: shop}\n");
    let run = import(&repo, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rendered = by_key(repo.weaver(&["render", "--env", "default"]).success());
    assert_eq!(rendered["ConfigMap/web"]["data"]["greeting"], "hello");
    let Some(helm) = common::helm_or_skip() else { return };
    // What helmfile does before it renders a local chart: `helm dependency build`.
    let copy = tempfile::tempdir().unwrap();
    for dir in ["apps", "lib"] {
        common::fs::copy_dir(&repo.path().join(dir), &copy.path().join(dir));
    }
    let build =
        Command::new(&helm).current_dir(copy.path()).args(["dependency", "build", "apps/web"]).output().unwrap();
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
    let out = Command::new(&helm)
        .current_dir(copy.path())
        .args([
            "template",
            "web",
            "apps/web",
            "-n",
            "shop",
            "--kube-version",
            "v1.32.0",
            "--include-crds",
            "--skip-tests",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rendered, by_key(&String::from_utf8(out.stdout).unwrap()));
}

/// A common helmfile layout keeps each environment's values in `environments/<env>.yaml`,
/// where weaver writes environment `<env>`: the import refuses, naming both roles, and leaves
/// the file as it was, --force or not.
#[test]
fn a_values_file_where_weaver_writes_an_environment_is_never_overwritten_even_with_force() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("environments/prod.yaml", "replicas: 3\n")
        .write(
            "helmfile.yaml",
            "environments:\n  prod:\n    values:\n    - environments/{{ .Environment.Name }}.yaml\n---\nreleases:\n\
             - name: web\n  chart: ./charts/web\n  values:\n  - replicas: {{ .Values.replicas }}\n",
        );
    let file = repo.path().join("helmfile.yaml").display().to_string();
    for args in [&[][..], &["--force"][..]] {
        let run = import(&repo, args);
        assert_eq!(
            run.failure(),
            format!(
                "error: {file}:4: environment `prod` values file `environments/prod.yaml`: weaver writes environment \
                 `prod` to this file (environments/prod.yaml), and an import never overwrites a file it reads, --force \
                 or not\n  help: weaver reads every file of environments/ as an environment: move this one out of it \
                 (to values/prod.yaml, say), change the helmfile's paths to it, and import again\n"
            )
        );
        assert_eq!(std::fs::read_to_string(repo.path().join("environments/prod.yaml")).unwrap(), "replicas: 3\n");
        assert!(!repo.path().join("environments/base.yaml").exists());
    }
}

/// `weaver import helmfile` without a file reads helmfile's default: `helmfile.yaml`, else
/// `helmfile.yaml.gotmpl`. A state elsewhere is named by its path, in the files' header and
/// in errors, with one line and column.
#[test]
fn the_default_helmfile_and_a_state_elsewhere_are_named_by_their_paths() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("helmfile.yaml.gotmpl", "releases:\n- name: web\n  chart: ./charts/web\n");
    // In the repository, as a helmfile user runs it.
    let import_here = |repo: &Repo, args: &[&str]| {
        let out = Command::new(common::WEAVER)
            .args(["import", "helmfile"])
            .args(args)
            .current_dir(repo.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        common::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    };
    let run = import_here(&repo, &[]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "wrote environments/base.yaml\nwrote environments/default.yaml\nwrote weaver-import.lock\n"),
        "{}",
        run.stderr
    );
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert!(base.starts_with("# Imported from helmfile.yaml.gotmpl by `weaver import helmfile`.\n"), "{base}");

    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n").write(
        "charts/helmfile.yaml",
        "environments:\n  dev: {}\n---\nreleases:\n- name: web\n  chart: ./web\n  namespace: {{ .Values.ns }}\n",
    );
    let stderr = import_here(&repo, &["charts/helmfile.yaml"]).failure().to_string();
    assert_eq!(
        stderr,
        "error: charts/helmfile.yaml:7:24: helmfile template: at <.Values.ns>: map has no entry for key \"ns\"\n"
    );
    repo.write("charts/helmfile.yaml", "releases:\n- name: web\n  chart: ./web\n");
    assert_eq!(import_here(&repo, &["charts/helmfile.yaml"]).code, 0);
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert!(base.starts_with("# Imported from charts/helmfile.yaml by `weaver import helmfile`.\n"), "{base}");
}

/// A chart whose ConfigMap shows what a `.gotmpl` values file made of the environment's values.
fn write_show_chart(repo: &Repo) {
    repo.write("charts/show/Chart.yaml", "apiVersion: v2\nname: show\nversion: 0.1.0\n")
        .write(
            "charts/show/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: show\ndata:\n  values: {{ toJson .Values | quote }}\n",
        )
        .write(
            "values/show.yaml.gotmpl",
            "mode: {{ .Values.mode }}\nhasOpt: {{ hasKey .Values \"opt\" }}\nhasTilde: {{ hasKey .Values \"tilde\" }}\n\
             opt: {{ .Values.opt | toJson }}\nhasInl: {{ hasKey .Values \"inl\" }}\nnested: {{ .Values.nested | toJson }}\n\
             over: {{ .Values.over | toJson }}\nall: {{ .Values | toJson | quote }}\n",
        );
}

/// An environment's values reach a release's `.gotmpl` values file exactly as helmfile passes
/// them: its values files read as helmfile reads them (`0755` is 493), and every `null` or `~`
/// kept, in the files and inline, a later one over an earlier value (`hasKey` finds them).
/// The expected values are what helmfile 0.166 (helm 3.17) renders for this helmfile.
#[test]
fn environment_values_reach_templates_as_helmfile_passes_them_octals_and_nulls_included() {
    let repo = Repo::empty();
    write_show_chart(&repo);
    repo.write("env/dev.yaml", "mode: 0755\nopt: null\ntilde: ~\nnested:\n  a: 1\n  b: null\nover: 1\n")
        .write("env/dev2.yaml", "over: null\n")
        .write(
            "helmfile.yaml",
            "environments:\n  dev:\n    values:\n    - env/dev.yaml\n    - env/dev2.yaml\n    - inl: null\n      \
             nested: {c: null}\n---\nreleases:\n- name: show\n  chart: ./charts/show\n  values: [values/show.yaml.gotmpl]\n",
        );
    let run = import(&repo, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let render = repo.weaver(&["render", "--env", "dev"]);
    let shown: Value =
        serde_json::from_str(by_key(render.success())["ConfigMap/show"]["data"]["values"].as_str().unwrap()).unwrap();
    assert_eq!(
        shown,
        serde_json::json!({
            "all": "{\"inl\":null,\"mode\":493,\"nested\":{\"a\":1,\"b\":null,\"c\":null},\"opt\":null,\"over\":null,\"tilde\":null}",
            "hasInl": true, "hasOpt": true, "hasTilde": true, "mode": 493,
            "nested": {"a": 1, "b": null, "c": null}, "opt": null, "over": null,
        })
    );
}

/// An environment's values file that is not YAML, not UTF-8 or a directory stops the import,
/// as it stops helmfile: exit 1, naming the file and line, and nothing written. A release's
/// values file that is not YAML stops it too (helm stops on it); one that is a directory is
/// listed as one.
#[test]
fn a_values_file_that_does_not_read_stops_the_import_naming_its_line() {
    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n").write(
        "helmfile.yaml",
        "environments:\n  dev:\n    values: [env/dev.yaml]\n---\nreleases:\n- {name: web, chart: ./charts/web}\n",
    );
    let env = repo.path().join("env/dev.yaml").display().to_string();
    repo.write("env/dev.yaml", "a: 1\nb: [unclosed\n");
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(
        stderr.starts_with(&format!("error: {env}:"))
            && stderr.contains(": environment `dev` values file `env/dev.yaml`: invalid YAML"),
        "{stderr}"
    );
    std::fs::write(repo.path().join("env/dev.yaml"), b"a: 1\nb: caf\xe9\n").unwrap();
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(
        stderr
            .starts_with(&format!("error: {env}:2:7: environment `dev` values file `env/dev.yaml`: not UTF-8 text\n")),
        "{stderr}"
    );
    repo.remove("env/dev.yaml");
    std::fs::create_dir_all(repo.path().join("env/dev.yaml")).unwrap();
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(
        stderr.starts_with(&format!(
            "error: {env}: environment `dev` values file `env/dev.yaml`: a directory, not a file\n"
        )),
        "{stderr}"
    );
    assert!(!repo.path().join("environments").exists());

    let repo = Repo::empty();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write("values/web.yaml", "replicas: 2\nimage: {tag: [\n")
        .write("helmfile.yaml", "releases:\n- {name: web, chart: ./charts/web, values: [values/web.yaml]}\n");
    let stderr = import(&repo, &[]).failure().to_string();
    assert!(
        stderr.starts_with(&format!(
            "error: {}:2: release `web` values file `values/web.yaml`: invalid YAML",
            repo.path().join("values/web.yaml").display()
        )),
        "{stderr}"
    );
    assert!(!repo.path().join("environments").exists());
    repo.remove("values/web.yaml");
    std::fs::create_dir_all(repo.path().join("values/web.yaml")).unwrap();
    let run = import(&repo, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("helmfile.yaml:2: release `web` values file `values/web.yaml`: a directory, not a file"),
        "{}",
        run.stderr
    );
}

/// A state that reads variables, nesting one (`helmfiles:`) in a directory of its own, the
/// helmfile given by a path from elsewhere: each place a variable is read is named by the path
/// it was given as, the nested state's included; a variable that is not set is said to be
/// unset, by name, never as a placeholder the files do not hold.
#[test]
fn variables_are_named_where_each_state_reads_them_and_unset_ones_said_unset() {
    let repo = Repo::empty();
    let (set, unset) = ("WEAVER_TEST_TOKEN", "WEAVER_TEST_UNSET_107");
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write(
            "deploy/helmfile.yaml.gotmpl",
            &format!(
                "helmfiles:\n- path: apps/helmfile.yaml.gotmpl\nreleases:\n- name: top\n  chart: ../charts/web\n  \
                 namespace: a\n  values:\n  - token: {{{{ env \"{set}\" }}}}\n"
            ),
        )
        .write(
            "deploy/apps/helmfile.yaml.gotmpl",
            &format!(
                "releases:\n- name: web\n  chart: ../../charts/web\n  namespace: a\n  values:\n  - a: {{{{ env \"{unset}\" }}}}\n  \
                 - b: {{{{ env \"{set}\" }}}}\n  - c: {{{{ env \"{unset}\" }}}}\n"
            ),
        );
    let given = repo.path().join("deploy/helmfile.yaml.gotmpl");
    let run = repo.weaver_env(&["import", "helmfile", given.to_str().unwrap()], &[(set, "s3cret-107")]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    // Named from the directory the helmfile was given in.
    let stderr = run.stderr.replace(&format!("{}/", repo.path().display()), "");
    let lines: Vec<&str> = stderr.lines().collect();
    let said = |start: &str| lines.iter().find(|l| l.starts_with(start)).copied();
    let token = said(&format!("not converted: deploy/helmfile.yaml.gotmpl:8: environment variable `{set}` "));
    assert_eq!(
        token.map(|l| l.split(": weaver imports").next().unwrap()),
        Some(
            format!(
                "not converted: deploy/helmfile.yaml.gotmpl:8: environment variable `{set}` (also read at \
                 deploy/apps/helmfile.yaml.gotmpl:7)"
            )
            .as_str()
        ),
        "{}",
        run.stderr
    );
    let unset_line =
        said(&format!("not converted: deploy/apps/helmfile.yaml.gotmpl:6: environment variable `{unset}`"))
            .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        unset_line.starts_with(&format!(
            "not converted: deploy/apps/helmfile.yaml.gotmpl:6: environment variable `{unset}`, unset (also read at \
             deploy/apps/helmfile.yaml.gotmpl:8): not set when imported: the templates read it as empty"
        )),
        "{unset_line}"
    );
    assert!(!stderr.contains(&format!("FROM-ENV-{unset}")), "{stderr}");
    let base = std::fs::read_to_string(repo.path().join("environments/base.yaml")).unwrap();
    assert!(!base.contains(&format!("FROM-ENV-{unset}")) && base.contains(&format!("FROM-ENV-{set}")), "{base}");
    for text in [&base, &run.stdout, &run.stderr] {
        assert!(!text.contains("s3cret-107"), "{text}");
    }
}
