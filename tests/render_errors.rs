//! Every user error of `weaver render`: exact message, with the file and line, and exit code 1.

use crate::common;
use common::Repo;

/// The first line of stderr, which must say what failed and where.
#[track_caller]
fn first_line(repo: &Repo, args: &[&str]) -> String {
    let run = repo.weaver(args);
    run.failure().lines().next().unwrap_or_default().to_string()
}

#[track_caller]
fn render_error(repo: &Repo) -> String {
    first_line(repo, &["render", "--env", "dev"])
}

#[test]
fn unknown_key_in_environment_names_file_and_line() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    replicaz: 3\n");
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:5:5: invalid environment file: unknown field `replicaz`, expected one of name, chart, version, kustomize, namespace, createNamespace, needs, labels, values, valuesFiles, secrets, substitute, substituteFrom, loadRestrictions, installed, patches, ignoreDifferences, healthChecks"
    );
}

#[test]
fn unknown_top_level_key() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "namespace: apps\nrelease: []\n");
    assert!(render_error(&repo).starts_with("error: environments/dev.yaml:2:1: invalid environment file: unknown field `release`, expected one of extends, abstract,"));
}

#[test]
fn wrong_type_names_file_and_line() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    needs: redis\n",
    );
    assert_eq!(render_error(&repo), "error: environments/dev.yaml:5:12: invalid environment file: expected a list");
}

#[test]
fn missing_chart_names_the_release_line_and_lists_charts() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: ap\n");
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:4:12: chart `ap` not found: charts/ap has neither chart.yaml (a weaver chart) nor Chart.yaml (a Helm chart)\n  help: charts in this repository: app\n"
    );
}

#[test]
fn release_without_chart() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases:\n  - name: app\n");
    assert_eq!(render_error(&repo), "error: environments/dev.yaml:2:5: release `app` has no `chart`");
}

#[test]
fn cycle_in_needs_names_the_cycle() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: a\n    chart: app\n    needs: [b]\n  - name: b\n    chart: app\n    needs: [c]\n  - name: c\n    chart: app\n    needs: [a]\n",
    );
    assert_eq!(render_error(&repo), "error: environments/dev.yaml:2:5: cycle in `needs`: a → b → c → a");
}

#[test]
fn needs_unknown_release() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases:\n  - name: a\n    chart: app\n    needs: [db]\n");
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:4:13: release `a` needs `db`, which is not a release of this environment\n  help: releases here: a\n"
    );
    // Written in a base file, in helmfile's form: the base's line, and what weaver expects.
    repo.write(
        "environments/base.yaml",
        "abstract: true\nreleases:\n  - name: a\n    chart: app\n    needs: [shop/db]\n",
    );
    repo.write("environments/dev.yaml", "extends: base\nreleases:\n  - name: a\n    values: {}\n");
    assert_eq!(
        repo.weaver(&["render", "--env", "dev"]).failure(),
        "error: environments/base.yaml:5:13: release `a` needs `shop/db`, which is not a release of this environment\n  help: `needs` names a release of this environment (`db`), not helmfile's `namespace/name`: release names are unique in an environment; releases here: a\n"
    );
}

#[test]
fn extends_cycle_names_the_chain() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "extends: base\n")
        .write("environments/base.yaml", "extends: dev\nabstract: true\n");
    assert_eq!(
        render_error(&repo),
        "error: environments/base.yaml:1:10: `extends` cycle: environments/dev.yaml → environments/base.yaml → environments/dev.yaml"
    );
}

#[test]
fn extends_missing_base() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "# comment\nextends: bsae\n");
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:2:10: `extends: bsae`: environments/bsae.yaml does not exist"
    );
}

#[test]
fn duplicate_release_in_one_file() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases:\n  - name: app\n    chart: app\n  - name: app\n    chart: app\n");
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:4:5: release `app` is defined twice in this file (first at line 2)"
    );
}

#[test]
fn invalid_yaml_syntax() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases: [\n");
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:1:11: invalid environment file: unclosed bracket '['"
    );
}

#[test]
fn unknown_environment_lists_known_ones() {
    let repo = Repo::minimal();
    let run = repo.weaver(&["render", "--env", "prod"]);
    assert_eq!(
        run.failure(),
        "error: unknown environment `prod`: environments/prod.yaml does not exist\n  help: known environments: dev\n"
    );
}

#[test]
fn abstract_environment_is_not_rendered() {
    let repo = Repo::minimal();
    repo.write("environments/base.yaml", "abstract: true\nreleases:\n  - name: app\n    chart: app\n")
        .write("environments/dev.yaml", "extends: base\n");
    let run = repo.weaver(&["render", "--env", "base"]);
    assert_eq!(
        run.failure(),
        "error: environment `base` is abstract (a base for others) and is never deployed itself\n  help: environments extending it: dev\n"
    );
}

#[test]
fn unknown_release_flag() {
    let repo = Repo::minimal();
    let run = repo.weaver(&["render", "--env", "dev", "-r", "ap"]);
    assert_eq!(
        run.failure(),
        "error: environment `dev` has no release `ap` (-r/--release)\n  help: its releases: app\n"
    );
}

#[test]
fn invalid_selector_flag() {
    let repo = Repo::minimal();
    assert_eq!(
        first_line(&repo, &["render", "--env", "dev", "-l", "tier=a b"]),
        "error: invalid label selector `tier=a b` (-l/--selector): `a b` is not a valid label value"
    );
}

#[test]
fn schema_violation_names_the_value_path() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/values.schema.json",
        r#"{"type": "object", "properties": {"replicas": {"type": "integer"}, "greeting": {"type": "string"}}}"#,
    )
    .write("environments/dev.yaml", "releases:\n  - name: app\n    chart: app\n    values:\n      replicas: three\n");
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:2:5: values of release `app` do not match charts/app/values.schema.json:\n  at `/replicas`: value is not of type \"integer\"\n  help: fix the values in the environment, its valuesFiles or the chart's values.yaml\n"
    );
}

#[test]
fn undefined_variable_names_template_line_and_variable() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ values.greting }}\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml:6: template error: undefined value: `values.greting` is undefined"
    );
}

#[test]
fn error_inside_import_names_the_partial_and_the_includer() {
    let repo = Repo::minimal();
    repo.write("charts/app/templates/_helpers.j2", "{% macro name(r) %}\n{{ r.nmae }}\n{% endmacro %}\n").write(
        "charts/app/templates/configmap.yaml",
        "{% import '_helpers.j2' as h %}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ h.name(release) }}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: charts/app/templates/_helpers.j2:2: template error: undefined value: `r.nmae` is undefined\n  help: while rendering charts/app/templates/configmap.yaml\n"
    );
}

#[test]
fn error_inside_include_names_the_partial() {
    let repo = Repo::minimal();
    repo.write("charts/app/templates/_labels.j2", "labels:\n  a: {{ values.nope }}\n").write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  {% include '_labels.j2' %}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: charts/app/templates/_labels.j2:2: template error: undefined value: `values.nope` is undefined\n  help: included from charts/app/templates/configmap.yaml:5\n"
    );
}

#[test]
fn template_syntax_error() {
    let repo = Repo::minimal();
    repo.write("charts/app/templates/configmap.yaml", "a: 1\nb: {{ values.greeting \n");
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml:2: template error: syntax error: unexpected end of input, expected end of variable block"
    );
}

#[test]
fn required_and_fail_show_the_authors_message() {
    let repo = Repo::minimal();
    repo.write("charts/app/templates/configmap.yaml", "a: {{ values.host | required('host is required') }}\n");
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml:1: template error: invalid operation: host is required"
    );
    repo.write("charts/app/templates/configmap.yaml", "\n{{ fail('this chart needs values.mode') }}\n");
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml:2: template error: invalid operation: this chart needs values.mode"
    );
}

#[test]
fn rendered_output_that_is_not_yaml() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {{ '[' }}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: charts/app/templates/configmap.yaml: the rendered output is not valid YAML (line 5 of the rendered output): unclosed bracket '['\n  help: release `app`\n"
    );
}

#[test]
fn rendered_document_without_name() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml: document 2 of the rendered output has no `metadata.name`"
    );
}

/// Issue 68.13: a `metadata.labels` that is not a mapping is refused where it is made, as the API
/// server refuses it, where weaver replaced it with its own labels.
#[test]
fn rendered_labels_that_are_not_a_mapping_are_refused() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: app=a\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml: document 1 of the rendered output has a `metadata.labels` that is a string, not a mapping of names to values"
    );
    repo.write("app/kustomization.yaml", "resources: [objects.yaml]\n")
        .write(
            "app/objects.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations: [x]\n",
        )
        .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    kustomize: app\n");
    let stderr = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(stderr.starts_with("error: app/objects.yaml: "), "{stderr}");
    assert!(stderr.contains("document 2 has a `metadata.annotations` that is a list, not a mapping"), "{stderr}");
}

/// Issue 68: label and annotation values are strings for the API server, which refuses a number,
/// a boolean or a mapping there (helm template passes them through): refused when rendered,
/// whatever `--validate` says.
#[test]
fn rendered_label_and_annotation_values_that_are_not_strings_are_refused() {
    let repo = Repo::minimal();
    for (metadata, problem) in [
        ("labels: {app: a, enabled: true}", "has a label `enabled` whose value is a boolean, not a string"),
        ("labels: {app: 1}", "has a label `app` whose value is a number, not a string"),
        ("labels: {app: {name: a}}", "has a label `app` whose value is an object, not a string"),
        ("annotations: {replicas: 3}", "has an annotation `replicas` whose value is a number, not a string"),
    ] {
        repo.write(
            "charts/app/templates/configmap.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  {metadata}\n"),
        );
        let stderr = repo.weaver(&["render", "--env", "dev", "--validate=ignore"]).failure().to_string();
        assert_eq!(
            stderr.lines().next().unwrap(),
            format!(
                "error: charts/app/templates/configmap.yaml: document 1 of the rendered output {problem} (the API server takes only strings: quote it)"
            )
        );
    }
    // A null is an empty value to the API server, which takes it.
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app: null}\n",
    );
    repo.weaver(&["render", "--env", "dev"]).success();
}

#[test]
fn rendered_names_that_the_api_server_refuses() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../escape\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml: document 1 of the rendered output has an invalid `metadata.name` `../../escape`: a ConfigMap name must be an RFC 1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit"
    );
    repo.write("charts/app/templates/configmap.yaml", "apiVersion: v1\nkind: ../Config\nmetadata:\n  name: x\n");
    assert_eq!(
        render_error(&repo),
        "error: charts/app/templates/configmap.yaml: document 1 of the rendered output has a `kind` that is not a Kubernetes kind name (letters and digits)"
    );
}

#[test]
fn patch_target_matching_nothing() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: Deployment, name: app }\n        patch: { spec: { replicas: 2 } }\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:5:9: patch target {kind: Deployment, name: app} matches no object of release `app`\n  help: the release renders: ConfigMap default/app\n"
    );
}

#[test]
fn json_patch_on_a_missing_path() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: ConfigMap }\n        ops: [{ op: remove, path: /data/missing }]\n",
    );
    let line = render_error(&repo);
    assert!(line.starts_with("error: environments/dev.yaml:5:9: patch failed on ConfigMap default/app: "), "{line}");
    assert!(line.contains("/data/missing"), "{line}");
}

#[test]
fn patch_with_both_bodies() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: ConfigMap }\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:5:9: a patch needs exactly one of `patch` (strategic merge) or `ops` (RFC 6902)"
    );
}

#[test]
fn missing_values_file() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    valuesFiles:\n      - environments/values/app.yaml\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:5:9: values file environments/values/app.yaml does not exist"
    );
}

#[test]
fn invalid_release_name() {
    let repo = Repo::minimal();
    repo.write("environments/dev.yaml", "releases:\n  - name: My_App\n    chart: app\n");
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:2:5: invalid release name `My_App`\n  help: use at most 53 lowercase letters, digits and '-', starting and ending with a letter or digit\n"
    );
}

/// Template errors must never print the values of the variables involved (later these include
/// decrypted secrets); a distinctive value in context must not appear in any error output.
#[test]
fn template_errors_never_print_variable_values() {
    const VALUE: &str = "Zq9-distinctive-value-7Kp";
    let templates = [
        "a: {{ values.token + 1 }}\n",
        "a: {{ values.token.missing }}\n",
        "a: {{ values.token | int + values.nope }}\n",
        "a: {{ values.token | b64decode }}\n",
        "a: {{ values.nested.deeper.nope }}\n",
        "{% for x in values.token %}{{ x.y }}{% endfor %}\n",
        "a: {{ values.token[5:] | required('need it') }}{{ values.list[7] }}\n",
        "a: {{ values.token is undefined_test }}\n",
        "{% if values.token > 3 %}x{% endif %}\n",
        "a: {{ values.token() }}\n",
        "a: {{ values.token | indent('x') }}\n",
    ];
    for template in templates {
        let repo = Repo::minimal();
        repo.write("charts/app/templates/configmap.yaml", template).write(
            "environments/dev.yaml",
            &format!("releases:\n  - name: app\n    chart: app\n    values:\n      token: {VALUE}\n      nested: {{ deeper: {{ k: {VALUE} }} }}\n      list: [{VALUE}]\n"),
        );
        let run = repo.weaver(&["render", "--env", "dev", "-v"]);
        assert_eq!(run.code, 1, "template {template:?} should fail");
        assert!(run.stderr.contains("charts/app/templates/configmap.yaml"), "{template:?}: {}", run.stderr);
        assert!(!run.stderr.contains(VALUE), "template {template:?} leaked the value:\n{}", run.stderr);
        assert!(!run.stdout.contains(VALUE));
    }
}

/// The demo charts pass every value through `| quote`: an undefined variable there is named
/// like one without a filter (minijinja reports it at the filter, unnamed), and a secret in
/// the context does not leak.
#[test]
fn undefined_variable_behind_a_filter_is_named() {
    const SECRET: &str = "seed-password-8b2d";
    let repo = Repo::demo();
    repo.write(
        "secrets/dev.yaml",
        &format!("web:\n  apiKey: {SECRET}\n  databaseUrl: {SECRET}\n  sessionSecret: {SECRET}\n"),
    );
    let plaintext = repo.path().join("secrets/dev.yaml");
    repo.weaver(&["secrets", "encrypt", plaintext.to_str().unwrap()]).success();
    let template = "charts/web-app/templates/secret.yaml";
    let original = std::fs::read_to_string(repo.path().join(template)).unwrap();
    for (from, to, expected) in [
        (
            "secrets.web.apiKey | quote",
            "secrets.web.apikey | quote",
            "error: charts/web-app/templates/secret.yaml:12: template error: undefined value: `secrets.web.apikey` is undefined (given to filter `quote`)",
        ),
        (
            "secrets.web.apiKey | quote",
            "env.values.domian | quote",
            "error: charts/web-app/templates/secret.yaml:12: template error: undefined value: `env.values.domian` is undefined (given to filter `quote`)",
        ),
    ] {
        repo.write(template, &original.replace(from, to));
        let run = repo.weaver(&["render", "--env", "dev"]);
        assert_eq!(run.failure().lines().next().unwrap(), expected);
        assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET), "{}", run.stderr);
    }
}

/// A patch that leaves no Kubernetes object (RFC 6902 may replace the root; a strategic merge
/// may delete `metadata.name`) is an error naming the patch, the release and the object.
#[test]
fn patch_that_leaves_no_object() {
    for (patch, problem) in [
        ("ops: [{ op: replace, path: '', value: 1 }]", "is not a mapping (a Kubernetes object)"),
        ("ops: [{ op: remove, path: /kind }]", "has no `kind`"),
        ("patch: { metadata: { name: null } }", "has no `metadata.name`"),
    ] {
        let repo = Repo::minimal();
        repo.write(
            "environments/dev.yaml",
            &format!("releases:\n  - name: app\n    chart: app\n    patches:\n      - target: {{ kind: ConfigMap }}\n        patch: {{}}\n      - target: {{ kind: ConfigMap }}\n        {patch}\n"),
        );
        let run = repo.weaver(&["render", "--env", "dev"]);
        assert_eq!(
            run.failure().lines().next().unwrap(),
            format!(
                "error: environments/dev.yaml:7:9: patch 2 of release `app` on ConfigMap default/app: the patched object {problem}"
            )
        );
    }
}

/// Arithmetic errors would quote the operands (minijinja: "unable to calculate 987654 // 0").
#[test]
fn arithmetic_errors_never_print_the_operands() {
    for (template, op) in [("{{ values.pin // 0 }}", "//"), ("{{ values.pin ** 99999 }}", "**")] {
        let repo = Repo::minimal();
        repo.write("charts/app/templates/configmap.yaml", &format!("a: {template}\n"))
            .write("environments/dev.yaml", "releases:\n  - name: app\n    chart: app\n    values: { pin: 987654 }\n");
        assert_eq!(
            render_error(&repo),
            format!(
                "error: charts/app/templates/configmap.yaml:1: template error: invalid operation: `{op}` cannot be calculated (division by zero, or a result too large)"
            )
        );
    }
}

#[test]
fn substitute_on_a_chart_release_is_refused_naming_the_field() {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    substitute:\n      cluster: eu-1\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(
        run.failure(),
        "error: environments/dev.yaml:6:16: release `app`: `substitute` is for kustomizations\n  help: variables are substituted in the objects of a `kustomize:` release, as Flux's postBuild does; a chart takes `values`\n"
    );
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    substituteFrom: [vars/dev.yaml]\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:5:22: release `app`: `substituteFrom` is for kustomizations"
    );
}

#[test]
fn secrets_on_a_kustomize_release_are_refused_naming_the_file() {
    let repo = Repo::minimal();
    repo.write("kust/kustomization.yaml", "resources: []\n");
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    kustomize: kust\n    secrets: [secrets/app.yaml]\n",
    );
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:5:15: release `app`: `secrets` is for chart releases"
    );
}

#[test]
fn a_substitute_variable_must_have_a_flux_name_and_a_scalar_value() {
    let repo = Repo::minimal();
    let env = |variables: &str| {
        format!("namespace: apps\nreleases:\n  - name: app\n    kustomize: app\n    substitute:\n{variables}")
    };
    repo.write("environments/dev.yaml", &env("      cluster: eu\n      1st: x\n"));
    assert_eq!(render_error(&repo), "error: environments/dev.yaml:7:12: release `app`: `1st` is not a variable name");
    repo.write("environments/dev.yaml", &env("      cluster: [eu]\n"));
    assert_eq!(
        render_error(&repo),
        "error: environments/dev.yaml:6:16: release `app`: variable `cluster` is not a string, number or boolean"
    );
}

/// Issue 53.6: a value a flag set that the chart's schema refuses blames the flag, not the
/// environment file's release entry; a repository's own bad value still names its file.
#[test]
fn a_schema_error_of_a_value_set_on_the_command_line_names_the_flag() {
    let repo = Repo::minimal();
    repo.write(
        "charts/app/values.schema.json",
        r#"{"properties": {"replicas": {"type": "integer"}, "greeting": {"type": "string"}}}"#,
    );
    let run = repo.weaver(&["render", "--env", "dev", "--set", "replicas=abc"]);
    assert!(
        run.failure().contains(
            "\nerror: --set `replicas=…`: values of release `app` do not match charts/app/values.schema.json:\n"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: fix the value given on the command line"), "{}", run.stderr);
    assert!(!run.stderr.contains("abc"), "the value typed is not quoted: {}", run.stderr);
    // Both: the file's problem keeps its place, the flag's says which flag made it.
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    values: {greeting: 3}\n",
    );
    let run = repo.weaver(&["render", "--env", "dev", "--set", "replicas=abc"]);
    assert!(
        run.stderr.contains("\nerror: environments/dev.yaml:3:5: values of release `app` do not match"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("at `/replicas`: value is not of type \"integer\" (set by --set `replicas=…`)"),
        "{}",
        run.stderr
    );
}

/// Issue 53.6: a `valuesFiles` entry naming a directory says so, where it said "does not exist".
#[test]
fn a_values_file_that_is_a_directory_is_told_as_one() {
    let repo = Repo::minimal();
    repo.write("values/dev/common.yaml", "greeting: hi\n");
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/dev]\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    assert!(
        run.failure()
            .starts_with("error: environments/dev.yaml:5:19: values file values/dev is a directory, not a file\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: name each file to read in the list, such as values/dev/common.yaml"),
        "{}",
        run.stderr
    );
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/none.yaml]\n",
    );
    assert!(repo.weaver(&["render", "--env", "dev"]).failure().contains("values file values/none.yaml does not exist"));
}

/// Issue 53.6: `--output-dir` refuses the repository's root and its charts/, environments/ and
/// secrets/ (the next render would read the files written there), and writes nothing.
#[test]
fn output_dir_refuses_the_directories_the_repository_reads() {
    let repo = Repo::minimal();
    let at = |dir: &str| repo.path().join(dir).to_str().unwrap().to_string();
    for dir in ["", "charts", "charts/app/rendered", "environments/out", "secrets"] {
        let run = repo.weaver(&["render", "--env", "dev", "--output-dir", &at(dir)]);
        let err = run.failure();
        assert!(err.contains("error: --output-dir "), "{dir}: {err}");
        assert!(err.contains("help: write to a directory of its own"), "{dir}: {err}");
    }
    assert!(!repo.path().join("charts/app/rendered").exists() && !repo.path().join("app").exists());
    std::os::unix::fs::symlink(repo.path().join("environments"), repo.path().join("out-link")).unwrap();
    repo.weaver(&["render", "--env", "dev", "--output-dir", &at("out-link/x")]).failure();
    repo.weaver(&["render", "--env", "dev", "--output-dir", &at("rendered")]).success();
    assert!(repo.path().join("rendered/app/configmap-app.yaml").exists());
}

/// The render limits' flags (a repository that is not trusted): off by default, each stopping
/// the render with its own message, naming the release and the flag to raise.
mod limits {
    use super::*;

    const LOOP: &str = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

    #[test]
    fn render_timeout_stops_a_template_loop() {
        let repo = Repo::minimal();
        repo.write("charts/app/templates/loop.yaml", LOOP);
        let started = std::time::Instant::now();
        let run = repo.weaver(&["render", "--env", "dev", "--render-timeout", "1s"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        assert_eq!(
            run.failure(),
            "error: charts/app/templates/loop.yaml: rendering stopped: rendering took longer than its limit of 1s \
             (--render-timeout)\n  help: release `app`: a template loops too long, or the repository is too large to \
             render in time; raise --render-timeout if it is not a loop\n"
        );
    }

    #[test]
    fn max_values_bytes_bounds_every_file_a_render_reads_not_only_values_files() {
        let repo = Repo::minimal();
        // A chart's own values.yaml and a template, each past the bound: refused unread, named.
        repo.write("charts/app/values.yaml", &format!("blob: \"{}\"\n", "#".repeat(4000)));
        let run = repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "1000"]);
        assert!(
            run.failure()
                .contains("charts/app/values.yaml holds 4009 bytes, over the limit of 1000 (--max-values-bytes)"),
            "{}",
            run.stderr
        );
        repo.write("charts/app/values.yaml", "greeting: hi\n");
        repo.write("charts/app/templates/big.yaml", &format!("# {}\n", "#".repeat(4000)));
        let run = repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "1000"]);
        assert!(run.failure().contains("charts/app/templates/big.yaml holds 4003 bytes"), "{}", run.stderr);
        repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "10000"]).success();
    }

    #[test]
    fn max_template_steps_stops_a_template_loop() {
        let repo = Repo::minimal();
        repo.write("charts/app/templates/loop.yaml", LOOP);
        let run = repo.weaver(&["render", "--env", "dev", "--max-template-steps", "100000"]);
        assert!(
            first_line_of(run.failure()).ends_with(
                "rendering stopped: charts/app/templates/loop.yaml ran more than 100000 template instructions \
                 (--max-template-steps)"
            ),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn max_rendered_bytes_bounds_a_release() {
        let repo = Repo::minimal();
        let run = repo.weaver(&["render", "--env", "dev", "--max-rendered-bytes", "40"]);
        assert_eq!(
            first_line_of(run.failure()),
            "error: charts/app/templates/configmap.yaml: the output of charts/app/templates/configmap.yaml exceeds \
             the limit of 40 bytes rendered per release (--max-rendered-bytes)"
        );
        repo.weaver(&["render", "--env", "dev", "--max-rendered-bytes", "1000"]).success();
    }

    #[test]
    fn max_values_bytes_bounds_a_values_file() {
        let repo = Repo::minimal();
        repo.write(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [big.yaml]\n",
        );
        // Past the chart's own files (the largest, its template, 108 bytes), which the bound
        // holds too.
        repo.write("big.yaml", &format!("greeting: {}\n", "x".repeat(200)));
        let run = repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "111"]);
        assert_eq!(
            first_line_of(run.failure()),
            "error: environments/dev.yaml:5:19: values file big.yaml holds 211 bytes, over the limit of 111 \
             (--max-values-bytes)"
        );
        repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "211"]).success();
        // Off by default.
        repo.weaver(&["render", "--env", "dev"]).success();
    }

    /// An environment file is read before any release: the bound holds it too.
    #[test]
    fn max_values_bytes_bounds_the_environment_file() {
        let repo = Repo::minimal();
        let environment = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
        repo.write("environments/dev.yaml", &format!("{environment}# {}\n", "#".repeat(3000)));
        let size = std::fs::metadata(repo.path().join("environments/dev.yaml")).unwrap().len();
        let run = repo.weaver(&["render", "--env", "dev", "--max-values-bytes", "1000"]);
        assert!(
            run.failure().contains(&format!(
                "environments/dev.yaml holds {size} bytes, over the limit of 1000 (--max-values-bytes)"
            )),
            "{}",
            run.stderr
        );
        repo.weaver(&["render", "--env", "dev", "--max-values-bytes", &size.to_string()]).success();
    }

    /// A chart that a kustomization's `helmCharts` inflates renders under the same bounds as a
    /// release's own chart: its output, and its loops.
    #[test]
    fn a_kustomizations_helm_charts_render_under_the_limits() {
        let repo = Repo::empty();
        repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    kustomize: app\n")
            .write("app/kustomization.yaml", "helmCharts:\n  - name: greeter\n")
            .write("app/charts/greeter/Chart.yaml", "apiVersion: v2\nname: greeter\nversion: 0.1.0\n")
            .write("app/charts/greeter/values.yaml", "{}\n")
            .write(
                "app/charts/greeter/templates/config.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeter\ndata:\n  text: {{ repeat 5000 \"x\" | quote }}\n",
            );
        let run = repo.weaver(&["render", "--env", "dev", "--max-rendered-bytes", "1000"]);
        assert!(run.failure().contains("a string exceeds the limit of 1000 bytes"), "{}", run.stderr);
        assert!(run.stderr.contains("raise --max-rendered-bytes"), "{}", run.stderr);
        repo.weaver(&["render", "--env", "dev", "--max-rendered-bytes", "10000"]).success();
        repo.write(
            "app/charts/greeter/templates/loop.yaml",
            "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
        );
        let started = std::time::Instant::now();
        let run = repo.weaver(&["render", "--env", "dev", "--render-timeout", "1s"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        assert!(
            run.failure().contains("rendering took longer than its limit of 1s (--render-timeout)"),
            "{}",
            run.stderr
        );
    }

    /// A template that doubles a string (`~`) grows where no check of minijinja sees it: in a
    /// worker process of its own, it is stopped at the memory bound, and the render says which
    /// release and which flag. The worker's own errors read as they do in weaver's process.
    #[test]
    fn max_render_memory_stops_a_string_that_doubles() {
        let repo = Repo::minimal();
        let doubling = "{% set s = \"xxxxxxxxxxxxxxxx\" %}".to_string() + &"{% set s = s ~ s %}".repeat(30);
        repo.write("charts/app/templates/grow.yaml", &doubling);
        let started = std::time::Instant::now();
        let run = repo.weaver(&["render", "--env", "dev", "--max-render-memory", "268435456"]);
        assert_eq!(
            run.failure(),
            "error: rendering stopped: the templates of release `app` took more than 268435456 bytes of memory \
             (--max-render-memory)\n  help: release `app`: a template builds a string or a list too large (a `~` \
             concatenation or `until` in a loop?); raise --max-render-memory if the chart needs that much\n"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        // An error of the template itself, and the time bound, as in weaver's own process.
        for template in ["{{ values.missing.deeper }}\n", "{% if %}\n"] {
            repo.write("charts/app/templates/grow.yaml", template);
            let in_process = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
            let in_worker = repo.weaver(&["render", "--env", "dev", "--max-render-memory", "268435456"]);
            assert_eq!(in_worker.failure(), in_process, "{template}");
        }
        repo.write("charts/app/templates/grow.yaml", LOOP);
        let run =
            repo.weaver(&["render", "--env", "dev", "--render-timeout", "1s", "--max-render-memory", "268435456"]);
        assert_eq!(
            run.failure(),
            "error: charts/app/templates/grow.yaml: rendering stopped: rendering took longer than its limit of 1s \
             (--render-timeout)\n  help: release `app`: a template loops too long, or the repository is too large to \
             render in time; raise --render-timeout if it is not a loop\n"
        );
    }

    /// A hostile Helm chart of release `hostile`, its one template `template`.
    fn hostile_helm_chart(template: &str) -> Repo {
        let repo = Repo::empty();
        repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: hostile\n    chart: hostile\n")
            .write("charts/hostile/Chart.yaml", "apiVersion: v2\nname: hostile\nversion: 0.1.0\n")
            .write("charts/hostile/templates/hostile.yaml", template);
        repo
    }

    /// weaver run to its end, with how long it took and the peak resident memory of the
    /// largest process of its tree (itself or a render worker), in KiB.
    fn measured(repo: &Repo, args: &[&str]) -> (common::Run, std::time::Duration, i64) {
        use std::io::Read;
        let started = std::time::Instant::now();
        // Reaped by wait4 below, which clippy does not see.
        #[allow(clippy::zombie_processes)]
        let mut child = repo.spawn(args);
        let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        });
        let mut err_text = String::new();
        stderr.read_to_string(&mut err_text).unwrap();
        let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
        // SAFETY: the child's pid, with valid out-pointers; it is not waited for elsewhere.
        let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        assert_eq!(waited, child.id() as i32, "wait4: {}", std::io::Error::last_os_error());
        let elapsed = started.elapsed();
        let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
        let run = common::Run { code, stdout: out.join().unwrap().unwrap(), stderr: err_text };
        (run, elapsed, usage.ru_maxrss)
    }

    /// A Helm chart's templates render in a worker process as weaver charts' do: a list
    /// `until` makes past memory is stopped at --max-render-memory, and a loop of calls that
    /// each take long (RSA keys), which no step check sees, at --render-timeout; each names
    /// the release and the bound, in time, and no process of the tree grows past 1 GB.
    #[test]
    fn a_helm_chart_s_templates_stop_at_the_memory_bound_and_the_deadline() {
        let repo = hostile_helm_chart("{{ $l := until 134217728 }}n: {{ len $l }}\n");
        let (run, took, peak_kib) = measured(&repo, &["render", "--env", "dev", "--max-render-memory", "536870912"]);
        assert_eq!(
            first_line_of(run.failure()),
            "error: rendering stopped: the templates of release `hostile` took more than 536870912 bytes of memory \
             (--max-render-memory)"
        );
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
        assert!(peak_kib < 1 << 20, "a process of the render's tree took {peak_kib} KiB");

        let repo = hostile_helm_chart("{{ range until 100000 }}{{ genPrivateKey \"rsa\" | len }}{{ end }}\n");
        stops_at_the_deadline(&repo, 1, "hostile");
    }

    /// `weaver render --render-timeout {seconds}s` stops within 5 s of its deadline, naming it
    /// and `release`.
    #[track_caller]
    fn stops_at_the_deadline(repo: &Repo, seconds: u64, release: &str) {
        let timeout = format!("{seconds}s");
        let started = std::time::Instant::now();
        let run = repo.weaver(&["render", "--env", "dev", "--render-timeout", &timeout]);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(seconds + 5), "the deadline of {timeout} was kept to {took:?}");
        let failure = run.failure();
        let stopped =
            format!("rendering stopped: rendering took longer than its limit of {timeout} (--render-timeout)");
        assert!(failure.contains(&stopped), "{failure}");
        assert!(failure.contains(&format!("release `{release}`")), "{failure}");
    }

    /// `lookup` in a worker is answered by weaver's process, from what `--live-from` holds:
    /// the same diff as rendered in weaver's own process.
    #[test]
    fn a_helm_chart_s_lookups_in_a_worker_are_answered_as_in_process() {
        let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: copy\n  namespace: apps\ndata:\n  \
                        found: {{ (lookup \"v1\" \"ConfigMap\" \"apps\" \"source\").data.text | quote }}\n";
        let repo = hostile_helm_chart(template);
        let diff = |extra: &[&str]| diff_with_live_source(&repo, extra).success().to_string();
        let in_process = diff(&[]);
        assert!(in_process.contains("found: from the cluster"), "{in_process}");
        assert_eq!(diff(&["--render-timeout", "60s"]), in_process);
    }

    /// `weaver diff --env dev` (and `extra`) against a live cluster holding one ConfigMap,
    /// `apps/source`, whose `text` is "from the cluster".
    fn diff_with_live_source(repo: &Repo, extra: &[&str]) -> common::Run {
        repo.write(
            "live.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: source\n  namespace: apps\ndata:\n  text: from the cluster\n",
        );
        let live = repo.path().join("live.yaml");
        let mut args = vec!["diff", "--env", "dev", "--live-from", live.to_str().unwrap()];
        args.extend_from_slice(extra);
        repo.weaver(&args)
    }

    /// A Helm chart's releases go to a worker in batches, the next batch sent before the
    /// answers to the one before are read: `lookup`s asked in the middle of a batch are
    /// answered, two charts' releases interleaved render as in process, and a release that
    /// fails, or runs its worker out of memory, is the one named.
    #[test]
    fn helm_releases_sent_to_a_worker_together_render_and_look_up_as_in_process() {
        let repo = Repo::empty();
        let chart_of = |n: usize| if n.is_multiple_of(3) { "other" } else { "looks" };
        let releases: String = (1..=14).map(|n| format!("  - name: r{n}\n    chart: {}\n", chart_of(n))).collect();
        let looks = |extra: &str| {
            format!(
                "{extra}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: copy-{{{{ .Release.Name }}}}\n  namespace: apps\n\
                 data:\n  found: {{{{ (lookup \"v1\" \"ConfigMap\" \"apps\" \"source\").data.text | quote }}}}\n"
            )
        };
        repo.write("environments/dev.yaml", &format!("namespace: apps\nreleases:\n{releases}"))
            .write("charts/looks/Chart.yaml", "apiVersion: v2\nname: looks\nversion: 0.1.0\n")
            .write("charts/looks/templates/cm.yaml", &looks(""))
            .write("charts/other/Chart.yaml", "apiVersion: v2\nname: other\nversion: 0.1.0\n")
            .write(
                "charts/other/templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other-{{ .Release.Name }}\n  namespace: apps\n",
            );
        // The CRDs of `other` and of its subchart: the worker says which files, this process reads them.
        let crd = |plural: &str| {
            format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.example.com\n\
                 spec:\n  group: example.com\n  names: {{kind: K{plural}, plural: {plural}}}\n  scope: Namespaced\n  versions:\n  \
                 - name: v1\n    served: true\n    storage: true\n    schema: {{openAPIV3Schema: {{type: object}}}}\n"
            )
        };
        repo.write("charts/other/crds/things.yaml", &crd("things"))
            .write("charts/other/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n")
            .write("charts/other/charts/sub/crds/subthings.yaml", &crd("subthings"));
        let diff = |extra: &[&str]| diff_with_live_source(&repo, extra);
        let in_process = diff(&[]).success().to_string();
        assert_eq!(in_process.matches("found: from the cluster").count(), 10, "{in_process}");
        assert_eq!(in_process.matches("name: other-r").count(), 4, "{in_process}");
        for crd in ["things.example.com", "subthings.example.com"] {
            assert!(in_process.contains(&format!("CustomResourceDefinition {crd}")), "{in_process}");
        }
        assert_eq!(diff(&["--render-timeout", "60s"]).success(), in_process);
        for n in [1, 7, 14] {
            let only = |text: &str| format!("{{{{ if eq .Release.Name \"r{n}\" }}}}{text}{{{{ end }}}}\n");
            repo.write("charts/looks/templates/cm.yaml", &looks(&only("{{ fail \"this release fails\" }}")));
            let failed = diff(&[]).failure().to_string();
            assert!(failed.contains(&format!("release `r{n}`")) && failed.contains("this release fails"), "{failed}");
            assert_eq!(diff(&["--render-timeout", "60s"]).failure(), failed, "r{n}");
            // Output that is not YAML, read by this process from what the worker's templates made.
            repo.write("charts/looks/templates/cm.yaml", &looks(&only("key: [unclosed")));
            let failed = diff(&[]).failure().to_string();
            assert!(failed.contains("YAML parse error on looks/templates/cm.yaml"), "{failed}");
            assert_eq!(diff(&["--render-timeout", "60s"]).failure(), failed, "r{n}");
            repo.write("charts/looks/templates/cm.yaml", &looks(&only("{{ $l := until 134217728 }}{{ len $l }}")));
            let run = diff(&["--max-render-memory", "536870912"]);
            assert_eq!(
                first_line_of(run.failure()),
                format!(
                    "error: rendering stopped: the templates of release `r{n}` took more than 536870912 bytes of memory \
                     (--max-render-memory)"
                ),
            );
        }
    }

    /// A kustomization whose bases form a diamond 14 levels deep is built once per path to
    /// each base (2^14 of them): the build stops at --render-timeout, naming the release.
    #[test]
    fn a_kustomization_diamond_stops_at_the_deadline() {
        let repo = Repo::empty();
        repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: diamond\n    kustomize: l0\n")
            .write("l0/kustomization.yaml", "resources: [../l1a, ../l1b]\n");
        let depth = 14;
        for level in 1..=depth {
            for side in ["a", "b"] {
                let resources = match level {
                    _ if level == depth => "[cm.yaml]".to_string(),
                    _ => format!("[../l{next}a, ../l{next}b]", next = level + 1),
                };
                repo.write(
                    &format!("l{level}{side}/kustomization.yaml"),
                    &format!("namePrefix: {side}-\nresources: {resources}\n"),
                );
            }
        }
        for side in ["a", "b"] {
            repo.write(
                &format!("l{depth}{side}/cm.yaml"),
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaf\n",
            );
        }
        stops_at_the_deadline(&repo, 1, "diamond");
    }

    /// A values template (`*.gotmpl`) renders in a worker too: `env`, `readFile` and the
    /// refusal of an age key's variable read through weaver's own process, as in it; its loop
    /// of RSA keys is stopped at --render-timeout, naming the release.
    #[test]
    fn a_values_template_renders_in_a_worker_reading_through_weaver_and_within_the_deadline() {
        let repo = Repo::minimal();
        repo.write(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [v.yaml.gotmpl]\n",
        )
        .write("v.yaml.gotmpl", "greeting: {{ env \"WEAVER_TEST_GREETING\" }} and {{ readFile \"note.txt\" }}\n")
        .write("note.txt", "a note");
        let variables = [("WEAVER_TEST_GREETING", "hi")];
        let in_process = repo.weaver_env(&["render", "--env", "dev"], &variables).success().to_string();
        assert!(in_process.contains("greeting: hi and a note"), "{in_process}");
        let args = ["render", "--env", "dev", "--render-timeout", "60s"];
        assert_eq!(repo.weaver_env(&args, &variables).success(), in_process);
        repo.write("v.yaml.gotmpl", "greeting: {{ env \"SOPS_AGE_KEY\" }}\n");
        // A key made for this run: no private key is kept in the repository.
        let identity = age::x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string();
        let key = [("SOPS_AGE_KEY", secret.as_str())];
        let refused = repo.weaver_env(&["render", "--env", "dev"], &key).failure().to_string();
        assert!(refused.contains("`SOPS_AGE_KEY` names an age key"), "{refused}");
        let in_worker = repo.weaver_env(&args, &key);
        assert_eq!(in_worker.failure(), refused);
        assert!(!in_worker.stderr.contains(&secret[16..]), "{}", in_worker.stderr);
        repo.write("v.yaml.gotmpl", "{{ range until 100000 }}{{ genPrivateKey \"rsa\" | len }}{{ end }}greeting: x\n");
        stops_at_the_deadline(&repo, 1, "app");
    }

    /// A release's templates go to its worker in one request, rendered ahead of the parent's
    /// parse: a template whose output is not YAML fails as in process, naming it, though the
    /// worker had rendered the next one (whose own error is not the one said), and so does the
    /// last template's; without them, the render in workers is the one in process.
    #[test]
    fn a_template_whose_output_is_not_yaml_fails_in_a_worker_as_in_process() {
        let repo = Repo::minimal();
        repo.write("charts/app/templates/a-bad.yaml", "kind: [unclosed\n")
            .write("charts/app/templates/b-fails.yaml", "{{ fail('the second template') }}\n");
        let args = ["render", "--env", "dev", "--render-timeout", "60s"];
        let in_process = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
        assert!(in_process.contains("a-bad.yaml") && !in_process.contains("the second template"), "{in_process}");
        assert_eq!(repo.weaver(&args).failure(), in_process);
        repo.write("charts/app/templates/b-fails.yaml", "kind: [unclosed too\n")
            .write("charts/app/templates/a-bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\n");
        let in_process = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
        assert!(in_process.contains("b-fails.yaml"), "{in_process}");
        assert_eq!(repo.weaver(&args).failure(), in_process);
        std::fs::remove_file(repo.path().join("charts/app/templates/a-bad.yaml")).unwrap();
        std::fs::remove_file(repo.path().join("charts/app/templates/b-fails.yaml")).unwrap();
        assert_eq!(repo.weaver(&args).success(), repo.weaver(&["render", "--env", "dev"]).success());
    }

    /// A worker is sent a weaver chart's releases in batches, one round trip for several:
    /// whatever its place in a batch, a release renders, and fails, as in process (the error
    /// naming it, not a release sent with it); one whose worker ran out of memory is named too,
    /// though its worker held the answers of the releases sent before it.
    #[test]
    fn releases_sent_to_a_worker_together_render_and_fail_as_in_process() {
        let repo = Repo::minimal();
        let releases: String = (1..=20)
            .map(|n| format!("  - name: r{n}\n    chart: app\n    values: {{greeting: hello-{n}}}\n"))
            .collect();
        repo.write("environments/dev.yaml", &format!("namespace: apps\nreleases:\n{releases}"));
        let in_worker = ["render", "--env", "dev", "--max-render-memory", "268435456"];
        let in_process = repo.weaver(&["render", "--env", "dev"]).success().to_string();
        assert_eq!(in_process.matches("greeting: hello-").count(), 20, "{in_process}");
        assert_eq!(repo.weaver(&in_worker).success(), in_process);
        let doubling = "{% set s = \"xxxxxxxxxxxxxxxx\" %}".to_string() + &"{% set s = s ~ s %}".repeat(30);
        for n in [1, 7, 13, 20] {
            let only = |text: &str| format!("{{% if release.name == 'r{n}' %}}{text}{{% endif %}}\n");
            for (template, says) in [
                (only("{{ fail(release.name ~ ' fails') }}"), format!("r{n} fails")),
                (only("kind: [unclosed"), format!("`r{n}`")),
            ] {
                repo.write("charts/app/templates/fails.yaml", &template);
                let in_process = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
                assert!(in_process.contains(&says), "{in_process}");
                assert_eq!(repo.weaver(&in_worker).failure(), in_process, "release r{n}: {template}");
            }
            repo.write("charts/app/templates/fails.yaml", &only(&doubling));
            let run = repo.weaver(&in_worker);
            assert_eq!(
                first_line_of(run.failure()),
                format!(
                    "error: rendering stopped: the templates of release `r{n}` took more than 268435456 bytes of memory (--max-render-memory)"
                )
            );
        }
    }

    /// SIGTERM into a render in workers (half a second after its first worker started, within
    /// ten seconds) leaves no process of it three seconds later. The render makes RSA keys on
    /// both cores until then: the test waits for what it needs, not a fixed time.
    #[test]
    fn sigterm_leaves_no_render_process_behind() {
        use std::time::{Duration, Instant};
        let repo = hostile_helm_chart("{{ range until 100000 }}{{ genPrivateKey \"rsa\" | len }}{{ end }}\n");
        let mut child = repo.spawn(&["render", "--env", "dev", "--render-timeout", "60s"]);
        let pid = child.id() as i32;
        let started = Instant::now();
        while children_of(pid).is_empty() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        let workers = children_of(pid);
        assert!(!workers.is_empty(), "no render worker was running {:?} into the render", started.elapsed());
        // SAFETY: a signal to our own child, not yet waited for.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let signalled = Instant::now();
        // A worker's state while it runs, or None once it is gone (or a zombie).
        let running = |worker: &i32| {
            let state = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap_or_default();
            (!state.is_empty() && !state.contains(") Z ")).then_some(state)
        };
        while (child.try_wait().unwrap().is_none() || workers.iter().any(|w| running(w).is_some()))
            && signalled.elapsed() < Duration::from_secs(3)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(child.try_wait().unwrap().is_some(), "weaver still runs 3 s after SIGTERM");
        for worker in &workers {
            assert_eq!(running(worker), None, "render worker {worker} still runs");
        }
    }

    /// The processes whose parent is `pid`.
    fn children_of(pid: i32) -> Vec<i32> {
        let tasks = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let mut children: Vec<i32> = tasks.split_whitespace().filter_map(|c| c.parse().ok()).collect();
        // A worker is the child of the thread that started it: every thread's children.
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
            let listed = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            children.extend(listed.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
        }
        children.sort_unstable();
        children.dedup();
        children
    }

    fn first_line_of(text: &str) -> &str {
        text.lines().next().unwrap_or_default()
    }
}
