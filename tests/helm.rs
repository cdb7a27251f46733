//! Helm charts as releases: weaver's render against `helm template` (helm v3.17.1 at
//! $WEAVER_HELM or on PATH; skipped, saying so, without it unless WEAVER_REQUIRE_INTEROP=1), the
//! errors bad charts give, and a Helm-chart release applied to the test cluster.

use crate::common;

use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cluster::TestCluster;
use common::{Repo, copy_dir};
use serde_json::{Value, json};

const FIXTURE: &str = "tests/helm/repo";
const PACKAGED: &str = "tests/helm/packaged/queue";
const WEAVER_LABELS: [&str; 3] =
    ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"];

/// Packs a chart directory as `helm package` does: gzip'd tar, entries under the chart's name.
fn pack(chart_dir: &Path, name: &str, archive: &Path) {
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let file = std::fs::File::create(archive).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(name, chart_dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

/// The fixture repository with its packaged charts built.
fn helm_repo() -> Repo {
    let repo = Repo::empty();
    let root = common::project_root();
    copy_dir(&root.join(FIXTURE), repo.path());
    let packaged = root.join(PACKAGED);
    pack(&packaged, "queue", &repo.path().join("vendor/queue-0.3.0.tgz"));
    pack(&packaged, "queue", &repo.path().join("charts/shop/charts/queue-0.3.0.tgz"));
    repo
}

/// Objects by `kind/name`, weaver's labels and the namespace weaver defaults left out.
fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|mut o| {
            let meta = o["metadata"].as_object_mut().expect("metadata");
            meta.remove("namespace");
            if let Some(Value::Object(labels)) = meta.get_mut("labels") {
                for label in WEAVER_LABELS {
                    labels.remove(label);
                }
                if labels.is_empty() {
                    meta.remove("labels");
                }
            }
            (format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), o)
        })
        .collect()
}

fn rendered(repo: &Repo, release: &str) -> BTreeMap<String, Value> {
    let out = repo.weaver(&["render", "--env", "dev", "-r", release, "--show-secrets"]);
    by_key(weaver_yaml::documents(Path::new("render"), out.success()).unwrap())
}

/// `helm template NAME CHART -n shop --kube-version v1.32.0 --include-crds --skip-tests` with
/// the release's values files and values.
fn helm_template(helm: &Path, repo: &Repo, release: &str, chart: &str, values_files: &[&str], values: Value) -> String {
    let overrides = repo.path().join(format!(".values-{release}.json"));
    std::fs::write(&overrides, values.to_string()).unwrap();
    let mut cmd = Command::new(helm);
    cmd.current_dir(repo.path()).args(["template", release, chart, "-n", "shop", "--kube-version", "v1.32.0"]);
    cmd.args(["--include-crds", "--skip-tests"]);
    for file in values_files {
        cmd.args(["-f", file]);
    }
    cmd.arg("-f").arg(&overrides);
    let out = cmd.output().expect("run helm");
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn helm_charts_render_the_objects_helm_template_gives() {
    let Some(helm) = common::helm_or_skip() else { return };
    let repo = helm_repo();
    let cases = [
        ("web", "charts/shop", vec!["environments/values/web.yaml"], json!({"replicas": 3, "dropMe": null})),
        ("jobs", "vendor/queue-0.3.0.tgz", vec![], json!({"size": 2})),
    ];
    for (release, chart, files, values) in cases {
        let text = helm_template(&helm, &repo, release, chart, &files, values);
        let expected = by_key(weaver_yaml::documents(Path::new("helm"), &text).unwrap());
        let actual = rendered(&repo, release);
        assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "release {release}");
        for (key, object) in &expected {
            assert_eq!(&actual[key], object, "release {release}: {key} differs from helm template's");
        }
    }
}

#[test]
fn a_helm_chart_release_renders_its_chart_subcharts_crds_and_hooks() {
    let repo = helm_repo();
    let objects = rendered(&repo, "web");
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ConfigMap/generated",
            "ConfigMap/web-shop-config",
            "CustomResourceDefinition/widgets.shop.example.org",
            "Deployment/web-shop",
            "Job/web-shop-migrate",
            "Secret/web-shop-secret",
            "Service/web-cache",
            "Service/web-sessions",
            "StatefulSet/web-queue",
            "Widget/web-widget",
        ],
        "the test hook, the library's template, the disabled subchart and the comment-only document render nothing"
    );
    let deployment = &objects["Deployment/web-shop"];
    let env: BTreeMap<&str, &str> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(env["ENABLED"], "true", "YAML 1.1: `yes` is a boolean");
    assert_eq!(env["TEMPLATE"], "shop/templates/deployment.yaml");
    assert_eq!(env["IMPORTED"], "parent", "a parent's own value wins over an imported one");
    assert_eq!(env["SESSIONS"], "6379", "import-values with child and parent");
    assert_eq!(env["TPL"], "web-templated");
    assert_eq!(env["KUBE"], "v1.32.0");
    assert_eq!(deployment["spec"]["replicas"], 3, "the release's values win over the chart's");
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "example/shop:2.0");
    let config = &objects["ConfigMap/web-shop-config"]["data"];
    assert_eq!(config["helmignored"], "", ".helmignore'd files are not .Files");
    assert_eq!(config["fromjson"], "1e+06", "numbers are float64, printed as Go prints them");
    assert_eq!(config["lookup"], "0");
    let blob = std::fs::read(repo.path().join("charts/shop/files/blob.bin")).unwrap();
    assert!(std::str::from_utf8(&blob).is_err(), "the fixture must not be UTF-8");
    assert_eq!(
        config["blob.b64"],
        base64::engine::general_purpose::STANDARD.encode(&blob),
        "a binary file's bytes reach b64enc unchanged"
    );
    assert!(
        !config["values"].as_str().unwrap().contains("dropMe"),
        "a null in the release's values deletes the default"
    );

    // -v counts the hook apart from the objects, and validation counts both.
    let verbose = repo.weaver(&["render", "--env", "dev", "-r", "web", "-v"]);
    verbose.success();
    assert!(verbose.stderr.contains("rendered 9 objects and 1 hook(s) of 1 releases\n"), "{}", verbose.stderr);
    assert!(verbose.stderr.contains("validated 10 object(s)"), "{}", verbose.stderr);

    let jobs = rendered(&repo, "jobs");
    let queue = &jobs["StatefulSet/jobs-queue"];
    assert_eq!(queue["spec"]["replicas"], 2);
    assert_eq!(queue["metadata"]["annotations"]["yaml11-key"], "fire", "`on:` is the key \"true\" in helm");
    assert_eq!(queue["metadata"]["annotations"]["chart-api"], "v1");
}

#[test]
fn the_environment_sets_the_kubernetes_version_helm_charts_see() {
    let repo = helm_repo();
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write("environments/dev.yaml", &dev.replace("namespace: shop\n", "namespace: shop\nkubeVersion: v1.29.3\n"));
    let objects = rendered(&repo, "web");
    let env = &objects["Deployment/web-shop"]["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.as_array().unwrap().contains(&json!({"name": "KUBE", "value": "v1.29.3"})), "{env}");

    repo.write("environments/dev.yaml", &dev.replace("namespace: shop\n", "namespace: shop\nkubeVersion: v1.19.0\n"));
    let err = repo.weaver(&["render", "--env", "dev"]);
    let err = err.failure();
    assert!(err.contains("charts/shop/Chart.yaml"), "{err}");
    assert!(
        err.contains("chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.0"),
        "{err}"
    );

    repo.write("environments/dev.yaml", &dev.replace("namespace: shop\n", "namespace: shop\nkubeVersion: latest\n"));
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert!(err.failure().contains("environments/dev.yaml:4"), "{}", err.stderr);
}

/// A chart that `fail`s without the Gateway API, as charts that render an HTTPRoute do.
const GATEWAY_CHART: &str = "{{- if not (.Capabilities.APIVersions.Has \"gateway.networking.k8s.io/v1\") }}\
    {{- fail \"this chart needs the Gateway API (gateway.networking.k8s.io/v1)\" }}{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: routes
data:
  monitor: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1/ServiceMonitor\" | quote }}
  apps: {{ .Capabilities.APIVersions.Has \"apps/v1\" | quote }}
  last: {{ last .Capabilities.APIVersions | quote }}
";

#[test]
fn an_environment_s_api_versions_are_what_helm_charts_see_offline_as_helm_template_s_api_versions() {
    let repo = chart_repo(&[("templates/routes.yaml", GATEWAY_CHART)]);
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert_has(
        err.failure(),
        &["charts/app/templates/routes.yaml:1", "this chart needs the Gateway API (gateway.networking.k8s.io/v1)"],
    );

    let declared = ["gateway.networking.k8s.io/v1", "monitoring.coreos.com/v1/ServiceMonitor"];
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: apps\napiVersions:\n  - {}\n  - {}\nreleases:\n  - name: app\n    chart: app\n",
            declared[0], declared[1]
        ),
    );
    let objects = by_key(
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap(),
    );
    assert_eq!(
        objects["ConfigMap/routes"]["data"],
        json!({"monitor": "true", "apps": "true", "last": "monitoring.coreos.com/v1/ServiceMonitor"}),
        "helm's default group/versions, then the environment's"
    );

    repo.write(
        "environments/dev.yaml",
        "namespace: apps\napiVersions:\n  - apps/v1\n  - gateway.networking.k8s.io\nreleases:\n  - name: app\n    chart: app\n",
    );
    assert_has(
        repo.weaver(&["render", "--env", "dev"]).failure(),
        &[
            "environments/dev.yaml:4:5",
            "`apiVersions` entry `gateway.networking.k8s.io` is not an API version",
            "group/version (gateway.networking.k8s.io/v1) or group/version/Kind",
        ],
    );

    let Some(helm) = common::helm_or_skip() else { return };
    let template = |extra: &[&str]| {
        let mut cmd = Command::new(&helm);
        cmd.current_dir(repo.path()).args(["template", "app", "charts/app", "-n", "apps", "--kube-version", "v1.32.0"]);
        for api_version in extra {
            cmd.args(["--api-versions", api_version]);
        }
        cmd.output().expect("run helm")
    };
    let without = template(&[]);
    assert!(!without.status.success(), "helm template fails without --api-versions too");
    assert!(String::from_utf8_lossy(&without.stderr).contains("this chart needs the Gateway API"));
    let with = template(&declared);
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    let expected = by_key(weaver_yaml::documents(Path::new("helm"), &String::from_utf8(with.stdout).unwrap()).unwrap());
    assert_eq!(objects, expected, "helm template --api-versions gives the same");
}

/// A repository whose release `app` (namespace `apps`) uses the Helm chart `app` made of `files`.
fn chart_repo(files: &[(&str, &str)]) -> Repo {
    let repo = Repo::empty();
    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    for (path, text) in files {
        repo.write(&format!("charts/app/{path}"), text);
    }
    repo
}

fn render_error(files: &[(&str, &str)]) -> String {
    let repo = chart_repo(files);
    repo.weaver(&["render", "--env", "dev"]).failure().to_string()
}

#[track_caller]
fn assert_has(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
}

#[test]
fn bad_charts_are_errors_naming_the_file_line_and_action() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n";
    assert_has(
        &render_error(&[("templates/cm.yaml", &format!("{cm}  a: {{{{ if }}}}\n"))]),
        &["charts/app/templates/cm.yaml:6", "parse error at (app/templates/cm.yaml:6): missing value for if"],
    );
    assert_has(
        &render_error(&[("templates/cm.yaml", &format!("{cm}  a: {{{{ nosuch 1 }}}}\n"))]),
        &["charts/app/templates/cm.yaml:6", r#"function "nosuch" not defined"#],
    );
    assert_has(
        &render_error(&[("templates/cm.yaml", &format!("{cm}  a: {{{{ required \"set db.host\" .Values.db }}}}\n"))]),
        &["charts/app/templates/cm.yaml:6:9", "execution error at (app/templates/cm.yaml:6:8): set db.host"],
    );
    assert_has(
        &render_error(&[
            ("templates/_h.tpl", "{{ define \"x\" }}{{ fail \"no way\" }}{{ end }}"),
            ("templates/cm.yaml", &format!("{cm}  a: {{{{ include \"x\" . }}}}\n")),
        ]),
        &["charts/app/templates/_h.tpl:1:20", "execution error at (app/templates/cm.yaml:6:8): no way"],
    );
    assert_has(
        &render_error(&[
            ("templates/_h.tpl", "{{ define \"loop\" }}{{ include \"loop\" . }}{{ end }}"),
            ("templates/cm.yaml", &format!("{cm}  a: {{{{ include \"loop\" . }}}}\n")),
        ]),
        &["rendering template has a nested reference name: loop: unable to execute template"],
    );
    let library = chart_repo(&[]);
    library.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\ntype: library\n");
    assert_has(
        library.weaver(&["render", "--env", "dev"]).failure(),
        &["environments/dev.yaml:4:12", "chart `app` is a library chart: library charts are not installable"],
    );
    assert_has(
        &render_error(&[("templates/cm.yaml", &format!("{cm}  a: {{{{ .Values.a.b.c }}}}\n"))]),
        &[
            "charts/app/templates/cm.yaml:6:16",
            r#"template: app/templates/cm.yaml:6:15: executing "app/templates/cm.yaml" at <.Values.a.b.c>: nil pointer evaluating interface {}.b"#,
        ],
    );
}

/// A template building a dict 200,000 levels deep, as Go builds it: weaver renders it, and a
/// function that walks one deeper than the bound (5,000 levels: each such render built the
/// 200,000 before, 0.45 s of CPU apiece) fails naming the bound, the template and the release (or the
/// `helmCharts` entry of a kustomization that inflates the chart), exit 1: the value's recursive
/// drop and walks overflowed the render thread's stack, exit 134.
#[test]
fn a_value_nested_deeper_than_the_bound_is_an_error_not_a_crash() {
    // Built 200,000 deep and dropped once; the walks that stop at the bound need only pass it.
    let deep = |levels: usize| {
        format!(r#"{{{{- $d := dict }}}}{{{{- range until {levels} }}}}{{{{- $d = dict "a" $d }}}}{{{{- end }}}}"#)
    };
    let chart_of = |levels: usize, call: &str| {
        format!(
            "{}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{{{ {call} }}}}\n",
            deep(levels)
        )
    };
    let chart = |call: &str| chart_of(5_000, call);
    let built = chart_repo(&[("templates/cm.yaml", &chart_of(200_000, "len $d | quote"))]);
    let out = built.weaver(&["render", "--env", "dev"]).success().to_string();
    assert!(out.contains("a: '1'"), "{out}");
    let bound = "value nested deeper than 1000 levels";
    for (function, call) in [
        ("deepCopy", "deepCopy $d"),
        ("deepEqual", r#"deepEqual $d (dict "a" $d)"#),
        ("mergeOverwrite", r#"mergeOverwrite (dict "a" $d) $d"#),
        ("toYaml", "toYaml $d"),
        ("toJson", "toJson $d"),
    ] {
        assert_has(
            &render_error(&[("templates/cm.yaml", &chart(call))]),
            &["release `app`", "charts/app/templates/cm.yaml:7:9", &format!("error calling {function}: {bound}")],
        );
    }
    let kustomized = Repo::empty();
    kustomized
        .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: inflated\n    kustomize: app\n")
        .write("app/kustomization.yaml", "helmCharts:\n  - name: deep\n")
        .write("app/charts/deep/Chart.yaml", "apiVersion: v2\nname: deep\nversion: 1.0.0\n")
        .write("app/charts/deep/values.yaml", "{}\n")
        .write("app/charts/deep/templates/cm.yaml", &chart("deepCopy $d"));
    assert_has(
        kustomized.weaver(&["render", "--env", "dev"]).failure(),
        &[
            "app/charts/deep/templates/cm.yaml:7:9",
            "`helmCharts` entry `deep` of app/kustomization.yaml",
            &format!("error calling deepCopy: {bound}"),
        ],
    );
}

#[test]
fn built_in_objects_have_helm_s_go_types() {
    let types = "{{ typeOf . }} {{ typeOf .Values }} {{ kindOf .Values }} {{ typeOf .Values.nested }} \
        {{ typeOf .Template }} {{ typeOf .Release }} {{ typeOf .Chart }} {{ kindOf .Chart }} {{ typeOf .Files }} \
        {{ kindOf .Files }} {{ typeOf .Capabilities }} {{ kindOf .Capabilities }} \
        {{ typeOf .Capabilities.KubeVersion }} {{ kindOf .Capabilities.KubeVersion }} \
        {{ typeOf .Capabilities.APIVersions }} {{ typeOf .Subcharts }}";
    // chartutil.Values passes as a map[string]interface{} (set changes .Values), but is not one.
    let uses = "{{ $_ := set .Values \"added\" 1 }}{{ .Values.added }} {{ hasKey .Values \"nested\" }} \
        {{ typeIs \"map[string]interface {}\" .Values }} {{ dig \"nested\" \"a\" 0 .Values.AsMap }} \
        {{ .Values.YAML | quote }} {{ .Capabilities.KubeVersion }} {{ .Capabilities.KubeVersion | quote }}";
    let repo = chart_repo(&[
        ("values.yaml", "nested: {a: 2}\n"),
        (
            "templates/cm.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: types\ndata:\n  types: {{{{ tpl `{types}` . | quote }}}}\n  uses: {{{{ tpl `{uses}` . | quote }}}}\n"
            ),
        ),
    ]);
    let objects = by_key(
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap(),
    );
    let data = &objects["ConfigMap/types"]["data"];
    assert_eq!(
        data["types"],
        "chartutil.Values chartutil.Values map map[string]interface {} chartutil.Values map[string]interface {} \
         struct { chart.Metadata; IsRoot bool } struct engine.files map *chartutil.Capabilities ptr \
         chartutil.KubeVersion struct chartutil.VersionSet map[string]interface {}"
    );
    // KubeVersion's String method has a pointer receiver: a function gets a struct.
    assert_eq!(data["uses"], "1 true false 2 \"added: 1\\nnested:\\n  a: 2\\n\" v1.32.0 \"{v1.32.0 1 32}\"");
    let err = chart_repo(&[(
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ dig \"a\" 0 .Values }}\n",
    )]);
    assert_has(
        err.weaver(&["render", "--env", "dev"]).failure(),
        &["interface conversion: interface {} is chartutil.Values, not map[string]interface {}"],
    );

    let Some(helm) = common::helm_or_skip() else { return };
    let text = helm_template(&helm, &repo, "app", "charts/app", &[], json!({}));
    let expected = by_key(weaver_yaml::documents(Path::new("helm"), &text).unwrap());
    assert_eq!(objects["ConfigMap/types"], expected["ConfigMap/types"], "helm template's types differ");
}

/// Values past Go's number ranges read as helm reads them: a float past f64's range is the
/// string it was written as (`strconv.ParseFloat` fails on it), an integer past i64 is unsigned
/// and then, like every number of helm's values, a float64.
#[test]
fn values_past_go_s_number_ranges_read_as_helm_reads_them() {
    let repo = chart_repo(&[
        (
            "values.yaml",
            "big: 1e400\nneg: -1e400\ntiny: 1e-400\nunsigned: 18446744073709551615\nhuge: 18446744073709551616\nsplit: 1_0.5\n",
        ),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kinds\ndata:\n{{- range $k, $v := .Values }}\n  {{ $k }}: {{ printf \"%s %v\" (kindOf $v) $v | quote }}\n{{- end }}\n",
        ),
    ]);
    let objects = by_key(
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap(),
    );
    assert_eq!(
        objects["ConfigMap/kinds"]["data"],
        json!({
            "big": "string 1e400",
            "neg": "string -1e400",
            "tiny": "float64 0",
            "unsigned": "float64 1.8446744073709552e+19",
            "huge": "float64 1.8446744073709552e+19",
            "split": "float64 10.5",
        })
    );
    assert_same_as_helm(&repo, &objects);
}

/// `actual`, weaver's objects of release `app` of a [`chart_repo`], against `helm template` of
/// its chart (skipped, saying so, without helm).
#[track_caller]
fn assert_same_as_helm(repo: &Repo, actual: &BTreeMap<String, Value>) {
    let Some(helm) = common::helm_or_skip() else { return };
    let text = helm_template(&helm, repo, "app", "charts/app", &[], json!({}));
    assert_eq!(actual, &by_key(weaver_yaml::documents(Path::new("helm"), &text).unwrap()));
}

const WIDGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: { kind: Widget, plural: widgets }\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }\n";

#[test]
fn a_crd_bundled_twice_identical_is_rendered_once_with_a_warning() {
    // Two subcharts of one chart bring the same CRD in their crds/.
    let needs = "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: one\n    version: 1.0.0\n  - name: two\n    version: 1.0.0\n";
    let mut files = vec![("Chart.yaml", needs)];
    let one = "apiVersion: v2\nname: one\nversion: 1.0.0\n";
    let two = "apiVersion: v2\nname: two\nversion: 1.0.0\n";
    files.extend([("charts/one/Chart.yaml", one), ("charts/one/crds/widget.yaml", WIDGET_CRD)]);
    files.extend([("charts/two/Chart.yaml", two), ("charts/two/crds/widget.yaml", WIDGET_CRD)]);
    let repo = chart_repo(&files);
    let run = repo.weaver(&["render", "--env", "dev"]);
    let documents = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
    assert_eq!(documents.iter().filter(|d| d["kind"] == "CustomResourceDefinition").count(), 1, "{}", run.stdout);
    assert_has(
        &run.stderr,
        &[
            "charts/app/charts/one/crds/widget.yaml",
            "charts/app/charts/two/crds/widget.yaml",
            "widgets.example.com",
            "twice, identical",
        ],
    );
    assert_same_as_helm(&repo, &by_key(documents));

    // Two releases whose charts bundle it: the first release's copy is applied.
    let repo = Repo::empty();
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: a\n    chart: a\n  - name: b\n    chart: b\n",
    );
    for chart in ["a", "b"] {
        repo.write(&format!("charts/{chart}/Chart.yaml"), &format!("apiVersion: v2\nname: {chart}\nversion: 1.0.0\n"))
            .write(&format!("charts/{chart}/crds/widget.yaml"), WIDGET_CRD);
    }
    let run = repo.weaver(&["render", "--env", "dev"]);
    let documents = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
    let crds: Vec<&Value> = documents.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    assert_eq!(crds.len(), 1, "{}", run.stdout);
    assert_eq!(crds[0]["metadata"]["labels"]["weaver.example.com/release"], "a", "{}", run.stdout);
    assert_has(&run.stderr, &["release `b`, charts/b/crds/widget.yaml", "identical, by release `a`"]);

    // A different copy is still an error.
    repo.write("charts/b/crds/widget.yaml", &WIDGET_CRD.replace("scope: Namespaced", "scope: Cluster"));
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert_has(err.failure(), &["widgets.example.com is rendered twice", "release `a`", "release `b`"]);

    // A weaver chart, alone in its environment, with the same CRD twice in its crds/: no other
    // release, and one copy all the same.
    let repo = Repo::empty();
    repo.write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: w\n    chart: w\n");
    repo.write("charts/w/chart.yaml", "name: w\nversion: 0.1.0\n")
        .write("charts/w/crds/a.yaml", WIDGET_CRD)
        .write("charts/w/crds/b.yaml", WIDGET_CRD);
    let run = repo.weaver(&["render", "--env", "dev"]);
    let documents = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
    assert_eq!(documents.iter().filter(|d| d["kind"] == "CustomResourceDefinition").count(), 1, "{}", run.stdout);
    assert_has(&run.stderr, &["release `w`, charts/w/crds/b.yaml", "identical, by release `w`"]);
}

#[test]
fn an_object_a_chart_renders_twice_keeps_its_last_copy_with_a_warning_as_the_server_does() {
    // A subchart's Deployment twice, and a CRD in two subcharts with different content.
    let needs = "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: one\n    version: 1.0.0\n  - name: two\n    version: 1.0.0\n";
    let deployment = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n"
        )
    };
    let (first, second) = (deployment("web:1"), deployment("web:2"));
    let cluster_crd = WIDGET_CRD.replace("scope: Namespaced", "scope: Cluster");
    let repo = chart_repo(&[
        ("Chart.yaml", needs),
        ("charts/one/Chart.yaml", "apiVersion: v2\nname: one\nversion: 1.0.0\n"),
        ("charts/one/crds/widget.yaml", WIDGET_CRD),
        ("charts/one/templates/a.yaml", &first),
        ("charts/one/templates/b.yaml", &second),
        ("charts/two/Chart.yaml", "apiVersion: v2\nname: two\nversion: 1.0.0\n"),
        ("charts/two/crds/widget.yaml", &cluster_crd),
    ]);
    let run = repo.weaver(&["render", "--env", "dev"]);
    let actual = by_key(weaver_yaml::documents(Path::new("render"), run.success()).unwrap());
    assert_eq!(actual["Deployment/web"]["spec"]["template"]["spec"]["containers"][0]["image"], "web:2");
    assert_eq!(actual["CustomResourceDefinition/widgets.example.com"]["spec"]["scope"], "Cluster");
    assert_has(
        &run.stderr,
        &[
            "renders Deployment.apps apps/web twice, with different content, by charts/app/charts/one/templates/a.yaml document 1 and by charts/app/charts/one/templates/b.yaml document 1: the last is kept",
            "renders CustomResourceDefinition.apiextensions.k8s.io widgets.example.com twice, with different content, by charts/app/charts/one/crds/widget.yaml",
        ],
    );
    // helm template prints both copies; by_key keeps the last, as the server does.
    assert_same_as_helm(&repo, &actual);
}

#[test]
fn quoted_scalars_with_under_indented_lines_read_as_helm_reads_them() {
    // A generated CRD's long single-quoted description, and a template's double-quoted value,
    // continued on lines no more indented than their key: go-yaml reads both.
    let crd = WIDGET_CRD.replace(
        "  group: example.com\n",
        "  group: example.com\n  preserveUnknownFields: false\n  conversion:\n    strategy: 'None'\n",
    )
    .replace(
        "schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }",
        "schema:\n        openAPIV3Schema:\n          description: 'Widget is a thing that''s\n          described at length.'\n          type: object\n          x-kubernetes-preserve-unknown-fields: true",
    );
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: opts\ndata:\n  opts: \"\n  -Da=b\n    \"\n";
    let repo = chart_repo(&[("crds/widget.yaml", &crd), ("templates/cm.yaml", template)]);
    let actual = rendered(&repo, "app");
    assert_eq!(
        actual["CustomResourceDefinition/widgets.example.com"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"],
        "Widget is a thing that's described at length."
    );
    assert_same_as_helm(&repo, &actual);
}

#[test]
fn a_crd_file_holding_template_syntax_is_refused_at_its_line_as_kubectl_refuses_it() {
    // spotahome's redis-operator chart: helm prints crds/ as written, unrendered; go-yaml (kubectl,
    // helm install) refuses this text: "did not find expected node content".
    let crd = WIDGET_CRD.replace(
        "metadata:\n",
        "metadata:\n  annotations:\n    {{- with .Values.crds.annotations }}\n    {{- toYaml . | nindent 4 }}\n    {{- end }}\n",
    );
    assert_has(
        &render_error(&[("crds/widget.yaml", &crd)]),
        &["charts/app/crds/widget.yaml:5", "invalid YAML in a CRD file", "files in crds/ are not templates"],
    );
}

#[test]
fn a_namespace_on_a_cluster_scoped_object_is_kept_as_helm_keeps_it_and_no_part_of_its_identity() {
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  namespace: {{ .Release.Namespace }}\nrules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get]\n";
    let repo = chart_repo(&[("templates/role.yaml", role)]);
    let objects =
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap();
    assert_eq!(objects[0]["metadata"]["namespace"], "apps", "{objects:?}");
    if let Some(helm) = common::helm_or_skip() {
        let text = helm_template(&helm, &repo, "app", "charts/app", &[], json!({}));
        let expected = weaver_yaml::documents(Path::new("helm"), &text).unwrap();
        assert_eq!(expected[0]["metadata"]["namespace"], "shop", "{text}");
        assert_same_as_helm(&repo, &by_key(objects.clone()));
    }

    // The server clears it: the live object has none, and is the same object, unchanged.
    let mut live = objects[0].clone();
    live["metadata"].as_object_mut().unwrap().remove("namespace");
    repo.write("live.yaml", &json!({"apiVersion": "v1", "kind": "List", "items": [live]}).to_string());
    let live_from = repo.path().join("live.yaml");
    let run = repo.weaver(&["diff", "--env", "dev", "--live-from", live_from.to_str().unwrap()]);
    assert!(run.success().ends_with("0 to create, 0 to update, 0 to delete, 1 unchanged\n"), "{}", run.stdout);
}

#[test]
fn dependencies_must_be_vendored_and_a_wrong_version_renders_as_helm_renders_it() {
    let needs = "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: db\n    version: ~2.1.0\n    alias: database\n    condition: database.enabled\n";
    let repo = chart_repo(&[]);
    repo.write("charts/app/Chart.yaml", needs);
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert_has(err.failure(), &["charts/app/Chart.yaml", "depends on `db`", "missing in charts/ directory: db"]);

    // Vendored outside its range, the subchart keeps its own name: the entry's alias and
    // condition do not reach it, and its values are under `db`.
    repo.write("charts/app/charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 2.2.0\n")
        .write("charts/app/charts/db/values.yaml", "greeting: hello\n")
        .write("charts/app/charts/db/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n")
        .write("charts/app/values.yaml", "database:\n  enabled: false\ndb:\n  greeting: hi\n");
    let run = repo.weaver(&["render", "--env", "dev", "--show-secrets"]);
    let warning = run.stderr.lines().find(|l| l.contains("wrong version")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert_has(warning, &["charts/app/Chart.yaml", "`db` version ~2.1.0", "charts/app/charts/db 2.2.0"]);
    let actual = by_key(weaver_yaml::documents(Path::new("render"), run.success()).unwrap());
    assert_eq!(actual["ConfigMap/app-db"]["data"], json!({"greeting": "hi"}));
    assert_same_as_helm(&repo, &actual);
}

#[test]
fn a_subchart_s_missing_dependency_is_left_out_with_a_warning_as_helm_renders_it() {
    let needs = "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: db\n    version: 1.0.0\n";
    let db = "apiVersion: v2\nname: db\nversion: 1.0.0\ndependencies:\n  - name: gone\n    version: 1.0.0\n    condition: gone.enabled\n";
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  values: {{ toJson .Values | quote }}\n";
    let repo = chart_repo(&[("Chart.yaml", needs), ("charts/db/Chart.yaml", db), ("charts/db/templates/cm.yaml", cm)]);
    let run = repo.weaver(&["render", "--env", "dev"]);
    let warning = run.stderr.lines().find(|l| l.contains("`gone`")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert_has(warning, &["charts/app/charts/db/Chart.yaml", "subchart `db`", "rendered without it"]);
    let actual = by_key(weaver_yaml::documents(Path::new("render"), run.success()).unwrap());
    assert_eq!(actual["ConfigMap/db"]["data"]["values"], "{\"global\":{}}");
    assert_same_as_helm(&repo, &actual);
}

#[test]
fn a_schema_ref_with_brackets_in_its_fragment_resolves_as_helm_resolves_it() {
    // As written and percent-encoded: helm 3.17's gojsonschema reads both as the pointer
    // `/$defs/revisions[0]`.
    let schema = r##"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "$defs": {"revisions[0]": {"type": "object", "properties": {"port": {"type": "integer"}}}},
        "properties": {"revisions": {"type": "array", "items": {"$ref": "#/$defs/revisions[0]"}},
                       "first": {"$ref": "#/$defs/revisions%5B0%5D"}}}"##;
    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  port: {{ .Values.first.port | quote }}\n";
    let values = "revisions:\n  - port: 1\nfirst:\n  port: 2\n";
    let repo = chart_repo(&[("values.schema.json", schema), ("values.yaml", values), ("templates/cm.yaml", cm)]);
    let actual = rendered(&repo, "app");
    assert_eq!(actual["ConfigMap/cm"]["data"]["port"], "2");
    assert_same_as_helm(&repo, &actual);

    repo.write("charts/app/values.yaml", "revisions:\n  - port: one\nfirst:\n  port: two\n");
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert_has(err.failure(), &["charts/app/values.schema.json", "- first.port:", "- revisions.0.port:"]);
}

#[test]
fn values_that_break_the_schema_are_errors_that_never_show_the_value() {
    let repo = chart_repo(&[
        ("values.schema.json", r#"{"type": "object", "properties": {"port": {"type": "integer"}}}"#),
        ("templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
    ]);
    repo.write(
        "environments/dev.yaml",
        "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    values:\n      port: hunter2-secret\n",
    );
    let err = repo.weaver(&["render", "--env", "dev"]);
    let err = err.failure();
    assert_has(err, &["charts/app/values.schema.json", "don't meet the specifications", "- port:"]);
    assert!(!err.contains("hunter2"), "{err}");

    // helm fetches a remote `$ref`; weaver renders offline and says so.
    repo.write(
        "charts/app/values.schema.json",
        r#"{"properties": {"port": {"$ref": "https://schemas.example.com/defs.json#/port"}}}"#,
    );
    let err = repo.weaver(&["render", "--env", "dev"]);
    assert_has(
        err.failure(),
        &[
            "charts/app/values.schema.json",
            "`$ref` to https://schemas.example.com/defs.json",
            "reads no schema from the network",
        ],
    );
}

#[test]
fn a_helm_chart_release_applies_and_then_diffs_clean() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("shop");
    let lock = cluster.namespace("lock");
    let repo = helm_repo();
    // The CRD and its Widget are left out: a real cluster would share the CRD between tests.
    std::fs::remove_file(repo.path().join("charts/shop/crds/widgets.yaml")).unwrap();
    std::fs::remove_file(repo.path().join("charts/shop/templates/widget.yaml")).unwrap();
    // The pre-install hook is a Job: only the fake finishes one without a kubelet (as tests/wait.rs,
    // rollouts that must finish are the fake's; tests/hooks.rs covers hooks on both).
    if cluster.fake("a chart's hook Job that must finish (it needs a kubelet)").is_none() {
        std::fs::remove_file(repo.path().join("charts/shop/templates/tests.yaml")).unwrap();
    }
    // A namespace written on a cluster-scoped object, which the server clears: the object still
    // diffs clean. (A rule, not `rules: []`: a real server returns an empty list as null.)
    repo.write(
        "charts/shop/templates/reader.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Release.Namespace }}-reader\n  namespace: {{ .Release.Namespace }}\nrules:\n  - {apiGroups: [\"\"], resources: [pods], verbs: [get]}\n",
    );
    cluster.delete_later(&serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": format!("{ns}-reader")}}));
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write(
        "environments/dev.yaml",
        &dev.replace("namespace: shop\n", &format!("namespace: {ns}\ncluster:\n  lockNamespace: {lock}\n")),
    );
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        repo.weaver(&all)
    };
    run(&["apply", "--env", "dev"]).success();
    let live = cluster.get(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web-shop", "namespace": ns}}));
    assert_eq!(live.expect("the Deployment is live")["spec"]["replicas"], 3);
    let diff = run(&["diff", "--env", "dev", "--exit-code"]);
    assert_eq!(diff.code, 0, "diff after apply is not clean:\n{}\n{}", diff.stdout, diff.stderr);
}

#[test]
fn diff_and_apply_give_helm_charts_the_cluster_s_version_and_api_versions() {
    let cluster = TestCluster::start();
    let ns = cluster.namespace("caps");
    let group = format!("{}.example.org", cluster.prefix);
    cluster.apply(
        &[json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("gadgets.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})],
        "test",
    );
    let template = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caps\ndata:\n  \
         kube: \"{{{{ .Capabilities.KubeVersion }}}}\"\n  \
         minor: {{{{ .Capabilities.KubeVersion.Minor | quote }}}}\n  \
         crd: {{{{ .Capabilities.APIVersions.Has \"{group}/v1\" | quote }}}}\n  \
         crdKind: {{{{ .Capabilities.APIVersions.Has \"{group}/v1/Gadget\" | quote }}}}\n  \
         deployment: {{{{ .Capabilities.APIVersions.Has \"apps/v1/Deployment\" | quote }}}}\n  \
         unserved: {{{{ .Capabilities.APIVersions.Has \"{group}/v2\" | quote }}}}\n"
    );
    let repo = chart_repo(&[("templates/cm.yaml", &template)]);
    // A weaver chart's capabilities are never the cluster's: the environment's apiVersions, with
    // or without one, so that `render` gives what `apply` sends.
    repo.write("charts/own/chart.yaml", "name: own\nversion: 0.1.0\n").write(
        "charts/own/templates/cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own\ndata:\n  \
             ownDeclared: \"{{{{ '{group}/v2' in capabilities.apiVersions }}}}\"\n  \
             ownServed: \"{{{{ '{group}/v1' in capabilities.apiVersions }}}}\"\n"
        ),
    );
    // An explicit kubeVersion and apiVersions are for rendering offline: against a cluster, helm
    // uses the server's version and discovery (only `helm template` takes --api-versions).
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {ns}\nkubeVersion: v1.29.3\napiVersions: [{group}/v2]\ncluster:\n  lockNamespace: {ns}\n\
             releases:\n  - name: app\n    chart: app\n  - name: own\n    chart: own\n"
        ),
    );
    let own = json!({"ownDeclared": "true", "ownServed": "false"});
    let offline = by_key(
        weaver_yaml::documents(Path::new("render"), repo.weaver(&["render", "--env", "dev"]).success()).unwrap(),
    );
    assert_eq!(
        offline["ConfigMap/caps"]["data"],
        json!({"kube": "v1.29.3", "minor": "29", "crd": "false", "crdKind": "false", "deployment": "false", "unserved": "true"}),
        "offline: the environment's kubeVersion, helm's default group/versions (no kinds) and the environment's apiVersions"
    );
    assert_eq!(offline["ConfigMap/own"]["data"], own);

    let server = cluster.server_version();
    let minor = server.trim_start_matches('v').split('.').nth(1).unwrap().to_string();
    let expected = json!({"kube": server, "minor": minor, "crd": "true", "crdKind": "true", "deployment": "true", "unserved": "false"});
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let diff = repo.weaver(&["--kubeconfig", &kubeconfig, "diff", "--env", "dev"]);
    for (key, value) in expected.as_object().unwrap().iter().chain(own.as_object().unwrap()) {
        let prefix = format!("+  {key}: ");
        let shown = diff.stdout.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim_matches(['\'', '"']));
        assert_eq!(shown, value.as_str(), "{key} in:\n{}\n{}", diff.stdout, diff.stderr);
    }
    repo.weaver(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev"]).success();
    let live =
        cluster.get(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "caps", "namespace": ns}}));
    assert_eq!(live.expect("the ConfigMap is live")["data"], expected);
    let live =
        cluster.get(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "own", "namespace": ns}}));
    assert_eq!(live.expect("the weaver chart's ConfigMap is live")["data"], own);
}

#[test]
fn changed_maps_subchart_and_archive_edits_to_their_releases_and_rev_renders_a_commit() {
    let repo = helm_repo();
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "helm charts");
    let text = std::fs::read_to_string(repo.path().join("charts/shop/charts/cache/values.yaml")).unwrap();
    repo.write("charts/shop/charts/cache/values.yaml", &text.replace("port: 6379\nexported", "port: 6380\nexported"));
    let changed = repo.weaver(&["changed", "--base", "HEAD", "-o", "json"]);
    let report: Value = serde_json::from_str(changed.success()).unwrap();
    let releases: Vec<&str> =
        report["releases"].as_array().unwrap().iter().map(|r| r["release"].as_str().unwrap()).collect();
    assert_eq!(releases, ["web"], "{report}");

    let copy = repo.path().join("queue-copy");
    copy_dir(&common::project_root().join(PACKAGED), &copy);
    std::fs::write(copy.join("values.yaml"), "size: 5\n").unwrap();
    pack(&copy, "queue", &repo.path().join("vendor/queue-0.3.0.tgz"));
    std::fs::remove_dir_all(&copy).unwrap();
    let changed = repo.weaver(&["changed", "--base", "HEAD", "-o", "json"]);
    let report: Value = serde_json::from_str(changed.success()).unwrap();
    let releases: Vec<&str> =
        report["releases"].as_array().unwrap().iter().map(|r| r["release"].as_str().unwrap()).collect();
    assert_eq!(releases, ["jobs", "web"], "{report}");
    assert_eq!(report["unattributed"], json!([]), "{report}");

    // The committed tree renders as committed, the working tree's edits aside.
    let out = repo.weaver(&["render", "--env", "dev", "-r", "jobs", "--rev", "HEAD"]);
    let objects = by_key(weaver_yaml::documents(Path::new("render"), out.success()).unwrap());
    assert_eq!(objects["StatefulSet/jobs-queue"]["spec"]["replicas"], 2);
}

/// A repository with a Helm chart `app` whose Secret `db` shows `.Values.db`, the test age key
/// that opens what is encrypted to the recipient returned with it.
fn secret_chart_repo() -> (Repo, PathBuf, &'static str) {
    let key = common::project_root().join("tests/fixtures/prod-test.agekey");
    let recipient = "age1uuhc92sjcyu2z5vaxq74mfmanu36huwuugwfqeu4wzk8wum5d50st4m9ny";
    let repo = Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    repo.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: {{ .Values.db.password | quote }}\n  user: {{ .Values.db.user }}\n",
    );
    (repo, key, recipient)
}

/// helm-secrets' habit: a SOPS file in `valuesFiles`. It is decrypted with the environment's
/// identities and its values redacted; without a key that opens it, it is an error naming the
/// file, never values read as plain YAML (which would deploy `ENC[…]`).
#[test]
fn an_encrypted_values_file_is_decrypted_redacted_and_without_a_key_an_error() {
    let (repo, key, recipient) = secret_chart_repo();
    repo.write("values/app.yaml", "db:\n  user: app\n");
    repo.write("values/app-secrets.yaml", "db:\n  password: SEEDTOKEN-hunter2\n");
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    namespace: shop\n    valuesFiles: [values/app.yaml, values/app-secrets.yaml]\n",
    );
    let file = repo.path().join("values/app-secrets.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    let encrypted = std::fs::read_to_string(repo.path().join("values/app-secrets.yaml")).unwrap();
    assert!(encrypted.contains("ENC[AES256_GCM") && !encrypted.contains("hunter2"), "{encrypted}");

    let key_env = [("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];
    let shown = repo.weaver_env(&["render", "--env", "dev", "--show-secrets"], &key_env);
    let objects = by_key(weaver_yaml::documents(Path::new("render"), shown.success()).unwrap());
    let secret = objects.values().find(|o| o["kind"] == "Secret").unwrap();
    assert_eq!(secret["stringData"], serde_json::json!({"password": "SEEDTOKEN-hunter2", "user": "app"}));

    let redacted = repo.weaver_env(&["render", "--env", "dev"], &key_env);
    assert!(!redacted.success().contains("hunter2"), "{}", redacted.success());

    // Another key: the file does not open.
    let other = age::x25519::Identity::generate();
    let other_key = repo.path().join("other.agekey");
    std::fs::write(&other_key, format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&other.to_string()))).unwrap();
    let without_key =
        repo.weaver_env(&["render", "--env", "dev"], &[("SOPS_AGE_KEY_FILE", other_key.to_str().unwrap())]);
    let error = without_key.failure();
    assert!(error.contains("values/app-secrets.yaml"), "{error}");
    assert!(!error.contains("hunter2") && !error.contains("ENC["), "{error}");
}

/// Issue 53: a chart that copies a decrypted value into a ConfigMap through the usual template
/// transformations (case, `replace`, quoting, JSON, base64 of it or of a basic-auth pair, twice)
/// has none of them printed; the encrypted file's plain values (a port, `default`) are masked only
/// where they stand whole, not inside other objects' names and URLs.
#[test]
fn a_decrypted_value_transformed_by_templates_is_redacted_and_plain_values_only_where_whole() {
    let (repo, key, recipient) = secret_chart_repo();
    let password = "Seed-Token_hunter2.x";
    repo.write("values/app.yaml", "db:\n  user: app\n");
    repo.write(
        "values/app-secrets.yaml",
        &format!("db:\n  password: {password}\n  port: 8080\n  namespace: default\n"),
    );
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    namespace: shop\n    valuesFiles: [values/app.yaml, values/app-secrets.yaml]\n",
    );
    repo.write(
        "charts/app/templates/leaks.yaml",
        concat!(
            "{{- $pair := printf \"%s:%s\" .Values.db.user .Values.db.password }}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaks\ndata:\n",
            "  upper: {{ .Values.db.password | upper }}\n",
            "  replaced: {{ .Values.db.password | replace \"-\" \"_\" | replace \".\" \"_\" }}\n",
            "  twice: {{ .Values.db.password | b64enc | b64enc }}\n",
            "  basic: Basic {{ $pair | b64enc }}\n",
            "  docker: {{ dict \"auths\" (dict \"r.example\" (dict \"auth\" ($pair | b64enc))) | toJson | quote }}\n",
            "  json: {{ dict \"p\" .Values.db.password | toJson | b64enc }}\n",
            "  url: http://db.shop:8080/health\n",
            "  token: default-token-x7\n",
            "  namespace: {{ .Values.db.namespace }}\n",
        ),
    );
    let file = repo.path().join("values/app-secrets.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    let key_env = [("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];

    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let forms = [
        password.to_uppercase(),
        password.replace(['-', '.'], "_"),
        b64(&b64(password)),
        b64(&format!("app:{password}")),
        b64(&format!("{{\"p\":\"{password}\"}}")),
    ];
    let shown = repo.weaver_env(&["render", "--env", "dev", "--show-secrets"], &key_env);
    for form in &forms {
        assert!(shown.success().contains(form.as_str()), "the chart shows {form:?}:\n{}", shown.stdout);
    }
    let run = repo.weaver_env(&["render", "--env", "dev", "-v"], &key_env);
    let out = run.success();
    for leaked in forms.iter().map(String::as_str).chain([password, "hunter2"]) {
        assert!(!out.contains(leaked) && !run.stderr.contains(leaked), "{leaked:?} leaked:\n{out}{}", run.stderr);
    }
    let leaks = by_key(weaver_yaml::documents(Path::new("render"), out).unwrap())["ConfigMap/leaks"]["data"].clone();
    assert_eq!(leaks["url"], "http://db.shop:8080/health");
    assert_eq!(leaks["token"], "default-token-x7");
    assert!(leaks["namespace"].as_str().unwrap().starts_with("<redacted:"), "{leaks}");
    assert!(leaks["basic"].as_str().unwrap().starts_with("Basic <redacted:"), "{leaks}");
}

#[test]
fn command_line_values_override_as_helm_s_set_flags_do() {
    let Some(helm) = common::helm_or_skip() else { return };
    let repo = helm_repo();
    let flags_dir = tempfile::tempdir().unwrap();
    let over = flags_dir.path().join("over.yaml");
    std::fs::write(&over, "ports: [1, 2]\nglobal:\n  domain: override.example.org\n").unwrap();
    let conf = flags_dir.path().join("conf.txt");
    std::fs::write(&conf, "from = file\n").unwrap();
    let (over, conf) = (over.to_str().unwrap(), conf.to_str().unwrap());
    let set_file = format!("config={conf}");
    // `ports[1]` changes an item of the list --values gave (a new list would be [null, 9443]),
    // `image.tag` one key of the map web.yaml gave; the string wins over --set's number.
    let flags = [
        "--values",
        over,
        "--set",
        r"replicas=5,ports[1]=9443,tags.observability=true,names={a,b},dotted\.key=x",
        "--set",
        "image.tag=7",
        "--set-string",
        "image.tag=0010",
        "--set-json",
        r#"extra={"k":[1,2]},n=1"#,
        "--set-file",
        &set_file,
    ];
    let mut args = vec!["render", "--env", "dev", "-r", "web", "--show-secrets"];
    args.extend(flags);
    let run = repo.weaver(&args);
    let actual = by_key(weaver_yaml::documents(Path::new("render"), run.success()).unwrap());
    assert!(run.stderr.contains("--set `replicas=…`") && !run.stderr.contains("0010"), "{}", run.stderr);

    let values = repo.path().join(".values-web.json");
    std::fs::write(&values, json!({"replicas": 3, "dropMe": null}).to_string()).unwrap();
    let mut cmd = Command::new(&helm);
    cmd.current_dir(repo.path()).args(["template", "web", "charts/shop", "-n", "shop", "--kube-version", "v1.32.0"]);
    cmd.args(["--include-crds", "--skip-tests", "-f", "environments/values/web.yaml", "-f"]).arg(&values).args(flags);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let expected = by_key(weaver_yaml::documents(Path::new("helm"), &String::from_utf8(out.stdout).unwrap()).unwrap());
    let config = &expected["ConfigMap/web-shop-config"]["data"];
    assert!(config["values"].as_str().unwrap().contains("- 9443"), "the flags reach helm: {config}");
    assert_eq!(actual, expected);
}

/// A repository with a Helm chart `app` whose ConfigMap `app` shows every value it is given.
fn values_chart_repo() -> Repo {
    let repo = Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    repo.write(
        "charts/app/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  values: {{ toYaml .Values | quote }}\n",
    );
    repo
}

/// A Helm chart whose ConfigMap shows every value, in a repository whose environment `dev` gives
/// its release `app` the values file `values/app.yaml.gotmpl` (`template`).
fn templated_values_repo(template: &str) -> Repo {
    let repo = values_chart_repo();
    repo.write("values/note.txt", "from a file\n");
    repo.write(
        "environments/dev.yaml",
        "namespace: shop\nvalues:\n  domain: dev.example.org\n  replicas: 2\nreleases:\n  - name: app\n    chart: app\n    labels: {tier: web}\n    valuesFiles: [values/app.yaml.gotmpl]\n",
    );
    repo.write("values/app.yaml.gotmpl", template);
    repo
}

/// helmfile hands a `.gotmpl` values file its environment's values as go-yaml read them:
/// integers are Go `int`s (`kindOf` says int, `%d` prints them, `until` takes them, a large one
/// prints whole), as helmfile 0.166 renders them; floats stay floats.
#[test]
fn a_templated_values_files_integers_are_gos_ints_as_helmfile_gives_them() {
    let template = r#"kind: {{ kindOf .Values.replicas }}
printed: {{ printf "%d" .Values.replicas }}
ranged: {{ range until .Values.replicas }}x{{ end }}
million: {{ .Values.million }}
ratio: {{ kindOf .Values.ratio }}
"#;
    let repo = templated_values_repo(template);
    repo.write(
        "environments/dev.yaml",
        "namespace: shop\nvalues:\n  replicas: 2\n  million: 10000000\n  ratio: 0.5\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/app.yaml.gotmpl]\n",
    );
    let rendered = repo.weaver(&["render", "--env", "dev"]);
    let values = rendered.success();
    // The ConfigMap shows the values helm got, as toYaml wrote them.
    for want in ["kind: int", "printed: 2", "ranged: xx", "million: 10000000", "ratio: float64"] {
        assert!(values.contains(want), "no `{want}` in\n{values}");
    }
}

#[test]
fn templated_values_files_render_as_helmfile_renders_them() {
    let template = r#"host: app.{{ .Values.domain }}
environment: {{ .Environment.Name }}
state: {{ .StateValues.replicas }}
release: {{ .Release.Name }}/{{ .Release.Namespace }}/{{ .Release.Labels.tier }}
note: {{ readFile "values/note.txt" | trim | quote }}
region: {{ env "WEAVER_TEST_REGION" | default "none" }}
token: {{ requiredEnv "WEAVER_TEST_TOKEN" }}
fallback: {{ .Values | get "absent.key" "dflt" }}
{{- if eq .Environment.Name "dev" }}
debug: true
{{- end }}
"#;
    let repo = templated_values_repo(template);
    let env = [("WEAVER_TEST_REGION", "eu-1"), ("WEAVER_TEST_TOKEN", "t0k")];
    let actual = by_key(
        weaver_yaml::documents(Path::new("render"), repo.weaver_env(&["render", "--env", "dev"], &env).success())
            .unwrap(),
    );
    // What helmfile hands helm for that template.
    let plain = "host: app.dev.example.org\nenvironment: dev\nstate: 2\nrelease: app/shop/web\nnote: \"from a file\"\nregion: eu-1\ntoken: t0k\nfallback: dflt\ndebug: true\n";
    repo.write("values/plain.yaml", plain);
    let Some(helm) = common::helm_or_skip() else { return };
    let text = helm_template(&helm, &repo, "app", "charts/app", &["values/plain.yaml"], json!({}));
    assert_eq!(actual, by_key(weaver_yaml::documents(Path::new("helm"), &text).unwrap()));
}

/// Issue 53.6: helmfile's `isFile`, `isDir` and `readDir`, over the repository (confined).
#[test]
fn templated_values_files_look_at_files_and_directories_as_helmfile_does() {
    let template = r#"hasNote: {{ isFile "values/note.txt" }}
hasOther: {{ isFile "values/other.txt" }}
valuesIsFile: {{ isFile "values" }}
valuesIsDir: {{ isDir "values" }}
files:
{{- range readDir "values/extra" }}
  - {{ . }}: {{ readFile . | trim }}
{{- end }}
"#;
    let repo = templated_values_repo(template);
    repo.write(
        "values/extra/a.txt",
        "one
",
    )
    .write(
        "values/extra/b.txt",
        "two
",
    )
    .write(
        "values/extra/sub/c.txt",
        "x
",
    );
    let out = repo.weaver(&["render", "--env", "dev"]).success().to_string();
    let documents = weaver_yaml::documents(Path::new("render"), &out).unwrap();
    assert_eq!(
        documents[0]["data"]["values"],
        "files:\n- values/extra/a.txt: one\n- values/extra/b.txt: two\nhasNote: true\nhasOther: false\nvaluesIsDir: true\nvaluesIsFile: false",
        "{out}"
    );
    let repo = templated_values_repo("a: {{ readDir \"../\" }}\n");
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("values/app.yaml.gotmpl:1:") && err.contains("outside the repository"), "{err}");
    let repo = templated_values_repo("a: {{ readDir \"values/none\" }}\n");
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("values/none is not a directory of the repository"), "{err}");
}

#[test]
fn templated_values_files_refuse_commands_and_name_the_line_of_each_mistake() {
    let cases = [
        ("a: 1\nb: {{ exec \"cat\" (list \"/etc/passwd\") }}\n", ":2:", "does not run commands"),
        ("a: {{ requiredEnv \"WEAVER_TEST_UNSET\" }}\n", ":1:", "`WEAVER_TEST_UNSET` is not set"),
        ("a: {{ .Values.nope }}\n", ":1:", "map has no entry for key \"nope\""),
        ("a: {{ nofunc 1 }}\n", ":1", "function \"nofunc\" not defined"),
        ("a: {{ fetchSecretValue \"ref+vault://x\" }}\n", ":1:", "vals references are not supported"),
        ("a: {{ readFile \"../outside\" }}\n", ":1:", "outside the repository"),
        ("a: {{ .Values | get \"domain.x\" }}\n", ":1:", "not a map"),
        // Age keys never reach values: not the variables weaver takes keys from, nor any
        // variable or file holding one.
        ("a: {{ env \"SOPS_AGE_KEY_FILE\" }}\n", ":1:", "`SOPS_AGE_KEY_FILE` names an age key"),
        ("a: {{ env \"WEAVER_TEST_HELD_KEY\" }}\n", ":1:", "`WEAVER_TEST_HELD_KEY` names an age key"),
        ("a: {{ readFile \"keys/dev.agekey\" }}\n", ":1:", "keys/dev.agekey holds an age secret key"),
    ];
    // A key made for this run (no private key is kept in the repository), in a file of the
    // repository and in a variable.
    let identity = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string();
    for (template, line, expected) in cases {
        let repo = templated_values_repo(template);
        repo.write("keys/dev.agekey", &format!("# created: 2026-11-24\n{secret}\n"));
        let key = [("WEAVER_TEST_HELD_KEY", secret.as_str())];
        let error = repo.weaver_env(&["render", "--env", "dev"], &key).failure().to_string();
        let body = secret.trim_start_matches(weaver_secrets::SECRET_KEY_PREFIX);
        assert!(!error.contains(body), "{template}: a key printed: {error}");
        assert!(error.contains(&format!("values/app.yaml.gotmpl{line}")), "{template}: {error}");
        assert!(error.contains(expected), "{template}: {error}");
        assert!(!error.contains("dev.example.org"), "{template}: a value printed: {error}");
    }
}

#[test]
fn a_release_s_own_secrets_are_decrypted_over_its_values_and_must_be_encrypted() {
    let (repo, key, recipient) = secret_chart_repo();
    repo.write("values/app-secrets.yaml", "db:\n  password: SEEDTOKEN-hunter2\n  user: from-secrets\n");
    // helmfile's layout: `secrets:` beside the release's values, and over them.
    let env = "releases:\n  - name: app\n    chart: app\n    namespace: shop\n    values: {db: {user: app, password: plain}}\n    secrets: [values/app-secrets.yaml]\n";
    repo.write("environments/dev.yaml", env);
    let plain = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(plain.contains("values/app-secrets.yaml is listed in `secrets` but SOPS did not encrypt it"), "{plain}");
    assert!(plain.contains("weaver secrets encrypt") && !plain.contains("hunter2"), "{plain}");

    let file = repo.path().join("values/app-secrets.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    let key_env = [("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];
    let shown = repo.weaver_env(&["render", "--env", "dev", "--show-secrets"], &key_env);
    let objects = by_key(weaver_yaml::documents(Path::new("render"), shown.success()).unwrap());
    assert_eq!(objects["Secret/db"]["stringData"], json!({"password": "SEEDTOKEN-hunter2", "user": "from-secrets"}));
    let redacted = repo.weaver_env(&["render", "--env", "dev"], &key_env);
    assert!(!redacted.success().contains("hunter2"), "{}", redacted.stdout);

    repo.write("environments/dev.yaml", &env.replace("app-secrets", "gone"));
    let missing = repo.weaver_env(&["render", "--env", "dev"], &key_env).failure().to_string();
    assert!(missing.contains("values/gone.yaml does not exist"), "{missing}");
}

#[test]
fn releases_that_read_none_of_the_environment_s_secrets_render_without_its_key() {
    let recipient = "age1uuhc92sjcyu2z5vaxq74mfmanu36huwuugwfqeu4wzk8wum5d50st4m9ny";
    let repo = Repo::empty();
    repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n");
    repo.write(
        "charts/app/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  password: {{ .Values.password | default \"none\" | quote }}\n",
    );
    repo.write("secrets/dev.yaml", "web:\n  password: SEEDTOKEN-hunter2\n");
    let file = repo.path().join("secrets/dev.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    repo.write(
        "environments/dev.yaml",
        "namespace: shop\nsecrets: [secrets/dev.yaml]\nreleases:\n  - name: web\n    chart: app\n  - name: worker\n    chart: app\n",
    );
    // No key here: worker is not a key of the secrets file, so nothing needs decrypting.
    let worker = repo.weaver(&["render", "--env", "dev", "-r", "worker", "-v"]);
    assert!(worker.success().contains("password: none"), "{}", worker.stdout);
    assert!(worker.stderr.contains("read none of the environment's secrets: not decrypted"), "{}", worker.stderr);
    let web = repo.weaver(&["render", "--env", "dev", "-r", "web"]).failure().to_string();
    assert!(web.contains("secrets/dev.yaml: no age identity available"), "{web}");
    let key = common::project_root().join("tests/fixtures/prod-test.agekey");
    let shown = repo.weaver_env(
        &["render", "--env", "dev", "-r", "web", "--show-secrets"],
        &[("SOPS_AGE_KEY_FILE", key.to_str().unwrap())],
    );
    assert!(shown.success().contains("SEEDTOKEN-hunter2"), "{}", shown.stdout);
}

#[test]
fn a_key_a_values_file_writes_twice_keeps_the_last_value_as_helm_does_and_is_warned_of() {
    let repo = values_chart_repo();
    repo.write("values/app.yaml", "image:\n  tag: SEEDTOKEN-first\n  tag: \"2.0\"\n");
    repo.write(
        "environments/dev.yaml",
        "releases:\n  - name: app\n    chart: app\n    valuesFiles: [values/app.yaml]\n",
    );
    let run = repo.weaver(&["render", "--env", "dev"]);
    let actual = by_key(weaver_yaml::documents(Path::new("render"), run.success()).unwrap());
    assert!(
        run.stderr.contains("values/app.yaml:3: `image.tag` is set again (first at line 2); the last value is used"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SEEDTOKEN"), "a value printed: {}", run.stderr);
    let Some(helm) = common::helm_or_skip() else { return };
    let text = helm_template(&helm, &repo, "app", "charts/app", &["values/app.yaml"], json!({}));
    assert_eq!(actual, by_key(weaver_yaml::documents(Path::new("helm"), &text).unwrap()));
}
