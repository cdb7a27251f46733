//! Kustomizations as releases: weaver's objects against `kubectl kustomize` (kubectl with
//! kustomize v5 at $WEAVER_KUBECTL or on PATH; skipped, saying so, without it unless
//! WEAVER_REQUIRE_INTEROP=1), and the errors bad kustomizations give.
//!
//! `tests/kustomize/repo` is a weaver repository whose environment `dev` has one release per
//! kustomization; each is compared object by object, order aside, weaver's own labels aside,
//! and the release's namespace aside where kustomize left an object without one.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Repo, copy_dir};
use serde_json::Value;

const FIXTURE: &str = "tests/kustomize/repo";
const RELEASE_NAMESPACE: &str = "kust-test";
const WEAVER_LABELS: [&str; 3] =
    ["app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment"];

/// kubectl with kustomize v5, or why not.
fn kubectl() -> Result<PathBuf, String> {
    common::tools::kubectl_kustomize_v5().map(|(kubectl, _)| kubectl)
}

/// Objects by `apiVersion kind namespace/name`.
fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|o| {
            let key = format!(
                "{} {} {}/{}",
                o["apiVersion"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect()
}

/// weaver's objects with what weaver adds taken away: its labels, and the release's namespace
/// where kustomize's object has none.
fn without_weaver(mut object: Value, kustomize: &BTreeMap<String, Value>) -> Value {
    let meta = object["metadata"].as_object_mut().expect("metadata");
    if let Some(Value::Object(labels)) = meta.get_mut("labels") {
        for label in WEAVER_LABELS {
            labels.remove(label);
        }
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    if meta.get("namespace").and_then(Value::as_str) == Some(RELEASE_NAMESPACE) {
        meta.remove("namespace");
        let unset = by_key(vec![object.clone()]);
        if !unset.keys().all(|k| kustomize.contains_key(k)) {
            object["metadata"]["namespace"] = RELEASE_NAMESPACE.into();
        }
    }
    object
}

fn releases(repo: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo.join("environments/dev.yaml")).unwrap();
    let env: Value = weaver_yaml::from_str(Path::new("dev.yaml"), &text).unwrap();
    env["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["kustomize"].as_str().unwrap().to_string()))
        .collect()
}

/// Each release of the fixture renders what `kubectl kustomize` builds, in weaver's process and
/// in a render worker alike.
#[test]
fn kustomizations_render_the_objects_kubectl_kustomize_builds() {
    let kubectl = match kubectl() {
        Ok(kubectl) => kubectl,
        Err(reason) => {
            common::skip::interop_or_skip(Some(&reason));
            return;
        }
    };
    let repo = Repo::empty();
    copy_dir(&common::project_root().join(FIXTURE), repo.path());
    let helm = common::tools::helm().ok().map(|(helm, _)| helm);
    let mut failures = Vec::new();
    for (release, dir) in releases(repo.path()) {
        let mut kustomize = weaver_test_support::kubectl::command(&kubectl);
        kustomize.arg("kustomize").arg(repo.path().join(&dir));
        match &helm {
            Some(helm) => {
                kustomize.arg("--enable-helm").arg("--helm-command").arg(helm);
            }
            None if std::fs::read_to_string(repo.path().join(&dir).join("kustomization.yaml"))
                .is_ok_and(|k| k.contains("helmCharts:")) =>
            {
                common::skip::interop_or_skip(Some(&format!(
                    "release {release} ({dir}) inflates Helm charts, and `kubectl kustomize --enable-helm` needs helm \
                     ($WEAVER_HELM or helm on PATH)"
                )));
                continue;
            }
            None => {}
        }
        let out = kustomize.output().unwrap();
        assert!(out.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = by_key(weaver_yaml::documents(Path::new(&dir), &String::from_utf8(out.stdout).unwrap()).unwrap());
        let run = repo.weaver(&["render", "--env", "dev", "-r", &release, "--show-secrets"]);
        // Built in a render worker, reading the repository through weaver's process: the same.
        let args = ["render", "--env", "dev", "-r", &release, "--show-secrets", "--render-timeout", "600s"];
        assert!(repo.weaver(&args).success() == run.success(), "release {release} ({dir}) built in a render worker");
        let objects = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
        let ours = by_key(objects.into_iter().map(|o| without_weaver(o, &theirs)).collect());
        if ours != theirs {
            let (only_ours, only_theirs): (Vec<_>, Vec<_>) = (
                ours.keys().filter(|k| !theirs.contains_key(*k)).collect(),
                theirs.keys().filter(|k| !ours.contains_key(*k)).collect(),
            );
            let differing: Vec<String> = ours
                .iter()
                .filter(|(k, v)| theirs.get(*k).is_some_and(|t| t != *v))
                .map(|(k, v)| format!("{k}:\n  weaver:  {v}\n  kubectl: {}", theirs[k]))
                .collect();
            failures.push(format!(
                "release {release} ({dir}): only weaver: {only_ours:?}; only kubectl: {only_theirs:?}\n{}",
                differing.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A repository whose environment `dev` has release `app`, the kustomization in `app/`.
fn bad_repo(files: &[(&str, &str)]) -> Repo {
    let repo = Repo::empty();
    repo.write("environments/dev.yaml", "namespace: kust-test\nreleases:\n  - name: app\n    kustomize: app\n");
    for (path, text) in files {
        repo.write(path, text);
    }
    repo
}

const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n";

/// weaver's error for the release, after checking that kubectl kustomize refuses it too (when
/// `kubectl_refuses` and kubectl is there).
fn bad_input(files: &[(&str, &str)], kubectl_refuses: bool) -> String {
    let repo = bad_repo(files);
    if kubectl_refuses {
        // Without kubectl only weaver's half is checked, and the output says so.
        match kubectl() {
            Ok(kubectl) => {
                let out = weaver_test_support::kubectl::command(kubectl)
                    .arg("kustomize")
                    .arg(repo.path().join("app"))
                    .output()
                    .unwrap();
                assert!(!out.status.success(), "kubectl kustomize accepts {files:?}");
            }
            Err(reason) => {
                common::skip::interop_or_skip(Some(&format!("that kubectl kustomize refuses {files:?} too: {reason}")));
            }
        }
    }
    let run = repo.weaver(&["render", "--env", "dev"]);
    // Built in a render worker (reading the repository through weaver's process), the same error.
    let in_worker = repo.weaver(&["render", "--env", "dev", "--render-timeout", "60s"]);
    assert_eq!(in_worker.failure(), run.failure(), "in a render worker, for {files:?}");
    run.failure().to_string()
}

#[test]
fn bad_kustomizations_are_clear_errors_naming_the_file_and_field() {
    // What it is, its files, whether kubectl refuses it too, what weaver's message says.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool, &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "a missing resource",
            &[("app/kustomization.yaml", "resources:\n  - cm.yaml\n  - missing.yaml\n"), ("app/cm.yaml", CONFIG_MAP)],
            true,
            &["app/kustomization.yaml:3:5", "`resources`", "app/missing.yaml does not exist"],
        ),
        (
            "a cycle of bases",
            &[
                ("app/kustomization.yaml", "resources:\n  - ../base\n"),
                ("base/kustomization.yaml", "resources:\n  - ../app\n"),
            ],
            true,
            &[
                "base/kustomization.yaml:2:5",
                "cycle of kustomizations",
                "app/kustomization.yaml → base/kustomization.yaml → app/kustomization.yaml",
            ],
        ),
        (
            "a transformer plugin",
            &[
                ("app/kustomization.yaml", "resources:\n  - cm.yaml\ntransformers:\n  - plugin.yaml\n"),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/plugin.yaml", "apiVersion: example.com/v1\nkind: SopsDecryptor\nmetadata:\n  name: x\n"),
            ],
            true,
            &["app/kustomization.yaml:4:5", "`transformers`", "`example.com/v1` `SopsDecryptor` is a plugin"],
        ),
        (
            "a generator plugin (issue 89: builtin generators are built)",
            &[
                ("app/kustomization.yaml", "generators:\n  - plugin.yaml\n"),
                ("app/plugin.yaml", "apiVersion: example.com/v1\nkind: VaultSecrets\nmetadata:\n  name: x\n"),
            ],
            true,
            &["app/kustomization.yaml:2:5", "`generators`", "`example.com/v1` `VaultSecrets` is a plugin"],
        ),
        (
            "an empty kustomization",
            &[("app/kustomization.yaml", "# nothing yet\nkind: Kustomization\n")],
            true,
            &["app/kustomization.yaml", "the kustomization is empty"],
        ),
        (
            "a ../ path out of the repository",
            &[("app/kustomization.yaml", "resources:\n  - ../../../../../../etc/hostname\n")],
            false,
            &["app/kustomization.yaml:2:5", "leads outside the repository"],
        ),
        (
            "an absolute path",
            &[("app/kustomization.yaml", "resources:\n  - /etc/hostname\n")],
            false,
            &["app/kustomization.yaml:2:5", "leads outside the repository"],
        ),
        (
            "a file outside the kustomization's directory (LoadRestrictionsRootOnly)",
            &[("app/kustomization.yaml", "resources:\n  - ../shared/cm.yaml\n"), ("shared/cm.yaml", CONFIG_MAP)],
            true,
            &["app/kustomization.yaml:2:5", "outside the kustomization's directory app", "LoadRestrictionsRootOnly"],
        ),
        (
            "a URL resource",
            &[("app/kustomization.yaml", "resources:\n  - https://github.com/example/repo//base?ref=v1\n")],
            false,
            &["app/kustomization.yaml:2:5", "is a remote location", "vendor the remote base"],
        ),
        (
            "a strategic merge patch of an object that does not exist",
            &[
                ("app/kustomization.yaml", "resources:\n  - cm.yaml\npatchesStrategicMerge:\n  - patch.yaml\n"),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/patch.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  c: d\n"),
            ],
            true,
            &[
                "app/kustomization.yaml:4:5",
                "`patchesStrategicMerge`: no object matches the patch of v1 ConfigMap other",
            ],
        ),
        (
            "a generator name collision",
            &[(
                "app/kustomization.yaml",
                "configMapGenerator:\n  - name: settings\n    literals: [a=b]\n  - name: settings\n    literals: [c=d]\n",
            )],
            true,
            &["app/kustomization.yaml:4:5", "`configMapGenerator`: ConfigMap settings already exists"],
        ),
        (
            "a generated object colliding with a resource",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: settings\n    literals: [c=d]\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:3:5", "ConfigMap settings already exists"],
        ),
        (
            "merging into a generated object that does not exist",
            &[(
                "app/kustomization.yaml",
                "configMapGenerator:\n  - name: settings\n    behavior: merge\n    literals: [a=b]\n",
            )],
            true,
            &["app/kustomization.yaml:2:5", "does not exist in the resources, so it cannot be merged or replaced"],
        ),
        (
            "an unknown field",
            &[("app/kustomization.yaml", "resources: []\nnamePrefx: a-\n")],
            true,
            &["app/kustomization.yaml:2", "unknown field `namePrefx`"],
        ),
        (
            "a directory without a kustomization",
            &[("app/kustomization.yaml", "resources:\n  - ../plain\n"), ("plain/cm.yaml", CONFIG_MAP)],
            true,
            &["app/kustomization.yaml:2:5", "plain has no kustomization"],
        ),
        (
            "a replacement target field that does not exist, without create",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nreplacements:\n  - source: {kind: ConfigMap}\n    targets:\n      - select: {kind: ConfigMap}\n        fieldPaths: [data.missing]\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &[
                "app/kustomization.yaml:3:5",
                "`replacements`: unable to find field `data.missing` in ConfigMap settings",
            ],
        ),
        (
            "a replacement source that selects nothing",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nreplacements:\n  - source: {kind: Secret, name: db}\n    targets:\n      - select: {kind: ConfigMap}\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:3:5", "no object is selected by the source {kind: Secret, name: db}"],
        ),
        (
            "a replacement's text that does not read as the integer its target holds",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml, deploy.yaml]\nreplacements:\n  - source: {kind: ConfigMap, fieldPath: data.a}\n    targets:\n      - select: {kind: Deployment}\n        fieldPaths: [spec.replicas]\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
                (
                    "app/deploy.yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n",
                ),
            ],
            true,
            &[
                "app/kustomization.yaml:3:5",
                "field `spec.replicas` of Deployment web: the source's value does not read as an integer, which the target field holds",
            ],
        ),
        (
            "a replacement with both a path and a source",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nreplacements:\n  - path: r.yaml\n    source: {kind: ConfigMap}\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/r.yaml", "[]\n"),
            ],
            true,
            &["app/kustomization.yaml:3:5", "either `path` or `source` and `targets`, not both"],
        ),
        (
            "a crds file that is not valid JSON",
            &[
                ("app/kustomization.yaml", "resources: [cm.yaml]\ncrds: [defs.json]\n"),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/defs.json", "{\"a\": \n"),
            ],
            true,
            &["app/kustomization.yaml:2:8", "`crds`: app/defs.json is not valid JSON"],
        ),
        (
            "a var that names no object",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nvars:\n  - name: DB\n    objref: {kind: Service, name: db, apiVersion: v1}\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:3:5", "var `DB` cannot be mapped to a field of any object of the build"],
        ),
        (
            "a var defined twice",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]\nvars:\n  - name: CM\n    objref: {kind: ConfigMap, name: settings, apiVersion: v1}\n  - name: CM\n    objref: {kind: ConfigMap, name: settings, apiVersion: v1}\n",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:5:5", "var `CM` is defined twice (first at app/kustomization.yaml:3:5)"],
        ),
        (
            "a missing configurations file",
            &[
                ("app/kustomization.yaml", "resources: [cm.yaml]\nconfigurations: [missing.yaml]\n"),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:2:18", "`configurations`", "missing.yaml does not exist"],
        ),
        (
            "a Helm chart that is not in the repository",
            &[(
                "app/kustomization.yaml",
                "helmCharts:\n  - name: redis\n    repo: https://charts.example.com\n    version: 1.2.3\n",
            )],
            true,
            &[
                "app/kustomization.yaml:2:5",
                "`helmCharts`: no Helm chart at app/charts/redis-1.2.3/redis",
                "weaver pulls no charts: vendor it there",
            ],
        ),
        (
            "an unknown valuesMerge",
            &[("app/kustomization.yaml", "helmCharts:\n  - name: redis\n    valuesMerge: deep\n")],
            true,
            &["app/kustomization.yaml:2:5", "`valuesMerge: deep` is not one of override, merge, replace"],
        ),
        (
            "a NamespaceTransformer's unknown setRoleBindingSubjects",
            &[
                ("app/kustomization.yaml", "resources: [cm.yaml]\ntransformers: [ns.yaml]\n"),
                ("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"),
                (
                    "app/ns.yaml",
                    "apiVersion: builtin\nkind: NamespaceTransformer\nmetadata: {name: n, namespace: x}\nsetRoleBindingSubjects: some\n",
                ),
            ],
            true,
            &["app/kustomization.yaml:2:", "invalid value `some` for setRoleBindingSubjects"],
        ),
        (
            "a namespace field specification naming a list",
            &[
                ("app/kustomization.yaml", "resources: [rb.yaml]\ntransformers: [ns.yaml]\n"),
                (
                    "app/rb.yaml",
                    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: r\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n  - {kind: ServiceAccount, name: a}\n",
                ),
                (
                    "app/ns.yaml",
                    "apiVersion: builtin\nkind: NamespaceTransformer\nmetadata: {name: n, namespace: x}\nfieldSpecs:\n  - {path: subjects, kind: RoleBinding}\n",
                ),
            ],
            true,
            &["namespace field specs must target scalar fields: `subjects` of RoleBinding x/r is not one"],
        ),
        (
            "a RoleBinding's ServiceAccount subject with `namespace:` left blank (issue 89)",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [rb.yaml]
",
                ),
                (
                    "app/rb.yaml",
                    "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: r
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - kind: ServiceAccount
    name: a
    namespace:
",
                ),
            ],
            true,
            &["app/rb.yaml", "RoleBinding r: ServiceAccount subject `a`", "has `namespace:` without a value"],
        ),
        (
            "`sortOptions` with `legacySortOptions` beside `order: fifo` (issue 89)",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]
sortOptions:
  order: fifo
  legacySortOptions: {orderFirst: [Namespace]}
",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:3:3", "`sortOptions.legacySortOptions` is set but the order is `fifo`"],
        ),
        (
            "an unknown key of a `configurations` file (issue 89: kustomize reads it strictly)",
            &[
                ("app/kustomization.yaml", "namePrefix: p-\nresources: [cm.yaml]\nconfigurations: [conf.yaml]\n"),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/conf.yaml", "unknownKey: 1\nnamePrefix:\n- {path: metadata/name, kind: ConfigMap}\n"),
            ],
            true,
            &["app/conf.yaml:1:1", "invalid transformer configuration: unknown field `unknownKey`"],
        ),
        (
            "an unknown key of a `configurations` file's nameReference (issue 89)",
            &[
                ("app/kustomization.yaml", "resources: [cm.yaml]\nconfigurations: [conf.yaml]\n"),
                ("app/cm.yaml", CONFIG_MAP),
                ("app/conf.yaml", "nameReference:\n- kind: ConfigMap\n  unknownToo: x\n  fieldSpecs: []\n"),
            ],
            true,
            &["app/conf.yaml:3:3", "invalid transformer configuration: `nameReference[0]`: unknown field `unknownToo`"],
        ),
        (
            "`sortOptions` without `order` (issue 89)",
            &[
                (
                    "app/kustomization.yaml",
                    "resources: [cm.yaml]
sortOptions:
  legacySortOptions: {orderLast: [Service]}
",
                ),
                ("app/cm.yaml", CONFIG_MAP),
            ],
            true,
            &["app/kustomization.yaml:3:3", "`sortOptions.order` must be `fifo` or `legacy`"],
        ),
    ];
    for (what, files, kubectl_refuses, expected) in cases {
        let stderr = bad_input(files, *kubectl_refuses);
        for part in *expected {
            assert!(stderr.contains(part), "{what}: expected `{part}` in:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

/// Issue 68: kustomize reads `images` fields as strings through Go's decoder, which refuses a
/// YAML number or boolean (`newTag: 1.10` is the number 1.1): weaver refused none of them.
#[test]
fn image_fields_written_as_numbers_or_booleans_are_refused_as_kubectl_kustomize_refuses_them() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - {name: web, image: nginx}\n";
    for (field, found) in [
        ("newTag: 1.10", "a number"),
        ("newTag: 5", "an integer"),
        ("newTag: true", "a boolean"),
        ("newTag: yes", "a boolean"),
        ("newName: 5", "an integer"),
        ("digest: 1.5", "a number"),
        ("tagSuffix: 1", "an integer"),
    ] {
        let kustomization = format!("resources: [deploy.yaml]\nimages:\n  - name: nginx\n    {field}\n");
        let files = [("app/kustomization.yaml", kustomization.as_str()), ("app/deploy.yaml", deployment)];
        let stderr = bad_input(&files, true);
        assert!(stderr.starts_with("error: app/kustomization.yaml:4:"), "{field}: {stderr}");
        assert!(stderr.contains(&format!("expected a string (quote it), found {found}")), "{field}: {stderr}");
    }
    // Quoted, they are the strings kubectl kustomize takes; a null is no tag, as in Go.
    for (field, image) in
        [("newTag: \"1.10\"", "nginx:1.10"), ("newTag: 1.10.3", "nginx:1.10.3"), ("newTag: ~", "nginx")]
    {
        let kustomization = format!("resources: [deploy.yaml]\nimages:\n  - name: nginx\n    {field}\n");
        let repo = bad_repo(&[("app/kustomization.yaml", kustomization.as_str()), ("app/deploy.yaml", deployment)]);
        let objects = rendered(&repo.weaver(&["render", "--env", "dev"]));
        let deploy = objects.values().find(|o| o["kind"] == "Deployment").expect("the Deployment");
        assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], image, "{field}");
    }
}

/// kustomize decodes a kustomization with `encoding/json` after sigs.k8s.io/yaml's YAML 1.1
/// typing: a value of another type than its field's is refused (`namespace: 123`, `yes` for a
/// string, a quoted `"3"` for a number), where weaver read any scalar as a string; a key in
/// another case is its field, a null is nothing, and `count: 010` is 8, as kubectl builds them.
#[test]
fn kustomization_fields_are_read_with_the_types_kubectl_kustomize_reads_them_with() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - {name: web, image: nginx}\n";
    for (field, expected) in [
        ("namespace: 123", "2:12: invalid kustomization: `namespace`: expected a string (quote it), found an integer"),
        ("namePrefix: on", "2:13: invalid kustomization: `namePrefix`: expected a string (quote it), found a boolean"),
        (
            "commonAnnotations: {a: yes}",
            "2:24: invalid kustomization: `commonAnnotations.a`: expected a string (quote it), found a boolean",
        ),
        (
            "commonLabels: {tier: 1}",
            "2:22: invalid kustomization: `commonLabels.tier`: expected a string (quote it), found an integer",
        ),
        (
            "labels: [{pairs: {tier: 1.5}}]",
            "2:25: invalid kustomization: `labels[0].pairs.tier`: expected a string (quote it), found a number",
        ),
        (
            "metadata: {name: app, labels: {tier: 1}}",
            "2:38: invalid kustomization: `metadata.labels.tier`: expected a string (quote it), found an integer",
        ),
        (
            "replicas: [{name: web, count: \"3\"}]",
            "2:31: invalid kustomization: `replicas[0].count`: expected a whole number (unquote it), found a string",
        ),
    ] {
        let kustomization = format!("resources: [deploy.yaml]\n{field}\n");
        let files = [("app/kustomization.yaml", kustomization.as_str()), ("app/deploy.yaml", deployment)];
        let stderr = bad_input(&files, true);
        assert!(stderr.starts_with(&format!("error: app/kustomization.yaml:{expected}\n")), "{field}: {stderr}");
    }
    let kustomization = "resources: [deploy.yaml]\nconfigMapgenerator:\n  - name: settings\n    literals: [a=b]\n    \
                         options: {disableNameSuffixHash: yes}\nCommonLabels: {tier: ~}\nreplicas: [{name: web, count: 010}]\n\
                         imageTags: [{name: nginx, newTag: \"1.27\"}]\n";
    let repo = bad_repo(&[("app/kustomization.yaml", kustomization), ("app/deploy.yaml", deployment)]);
    let ours = rendered(&repo.weaver(&["render", "--env", "dev"]));
    let (configmap, deploy) = (&ours["ConfigMap/settings"], &ours["Deployment/web"]);
    assert_eq!(configmap["data"], serde_json::json!({"a": "b"}));
    assert_eq!((&deploy["spec"]["replicas"], &deploy["metadata"]["labels"]["tier"]), (&8.into(), &"".into()));
    assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    match kubectl() {
        Ok(kubectl) => {
            let out = weaver_test_support::kubectl::command(kubectl)
                .arg("kustomize")
                .arg(repo.path().join("app"))
                .output()
                .unwrap();
            assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
            let theirs =
                by_key(weaver_yaml::documents(Path::new("kubectl"), &String::from_utf8(out.stdout).unwrap()).unwrap());
            let ours: BTreeMap<String, Value> =
                by_key(ours.into_values().map(|o| without_weaver(o, &theirs)).collect());
            assert_eq!(ours, theirs, "as kubectl kustomize builds it");
        }
        Err(reason) => {
            common::skip::interop_or_skip(Some(&format!("kubectl kustomize's objects: {reason}")));
        }
    }
}

/// Issue 68: label values are strings for the API server, which refuses `app: 1`, `enabled: true`
/// or a mapping (kubectl kustomize passes them through): refused where the file writes them.
#[test]
fn labels_whose_values_are_not_strings_are_refused_where_the_file_writes_them() {
    for (labels, found) in
        [("{app: 1}", "a number"), ("{enabled: true}", "a boolean"), ("\n    tier:\n      a: b", "an object")]
    {
        let objects =
            format!("{CONFIG_MAP}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  labels: {labels}\n");
        let files = [("app/kustomization.yaml", "resources: [objects.yaml]\n"), ("app/objects.yaml", objects.as_str())];
        let stderr = bad_input(&files, false);
        let key = if labels.contains("tier") { "tier" } else { labels[1..].split(':').next().unwrap() };
        let line = if labels.contains("tier") { 14 } else { 12 };
        assert!(stderr.starts_with(&format!("error: app/objects.yaml:{line}: ")), "{labels}: {stderr}");
        assert!(
            stderr.contains(&format!("(document 2) has a label `{key}` whose value is {found}, not a string")),
            "{labels}: {stderr}"
        );
    }
    // kustomize reads annotations as strings, `1` as "1", a list or map as "": the server takes
    // what it builds.
    let objects = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  \
                   annotations: {replicas: 1, enabled: true, owner: {team: a}, list: [x]}\n";
    let repo = bad_repo(&[("app/kustomization.yaml", "resources: [objects.yaml]\n"), ("app/objects.yaml", objects)]);
    let built = rendered(&repo.weaver(&["render", "--env", "dev"]));
    let expected = serde_json::json!({"replicas": "1", "enabled": "true", "owner": "", "list": ""});
    assert_eq!(built["ConfigMap/a"]["metadata"]["annotations"], expected);
    match kubectl() {
        Ok(kubectl) => {
            let out = weaver_test_support::kubectl::command(kubectl)
                .arg("kustomize")
                .arg(repo.path().join("app"))
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let built = weaver_yaml::documents(Path::new("kubectl"), &text).unwrap();
            assert_eq!(built[0]["metadata"]["annotations"], expected, "as kubectl kustomize builds it");
        }
        Err(reason) => {
            common::skip::interop_or_skip(Some(&format!("kubectl kustomize's annotations: {reason}")));
        }
    }
}

/// kustomize ignores a `patches` entry whose target selects nothing, and so does weaver.
#[test]
fn a_patch_target_that_selects_nothing_is_no_error_as_in_kustomize() {
    let repo = bad_repo(&[
        (
            "app/kustomization.yaml",
            "resources: [cm.yaml]\npatches:\n  - target: {kind: Deployment}\n    patch: '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\n",
        ),
        ("app/cm.yaml", CONFIG_MAP),
    ]);
    let out = repo.weaver(&["render", "--env", "dev"]);
    assert!(out.success().contains("name: settings"));
}

/// `weaver changed`: an edit to a file a kustomization reads, at any depth of bases and
/// components, affects every release whose kustomization includes it, and only those.
#[test]
fn an_edited_base_affects_every_release_including_it_at_any_depth() {
    let repo = Repo::empty();
    copy_dir(&common::project_root().join(FIXTURE), repo.path());
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "fixture");
    let changed = |edits: &[(&str, &str)]| -> Vec<String> {
        for (path, text) in edits {
            repo.write(path, text);
        }
        let run = repo.weaver(&["changed", "-o", "json", "--base", "HEAD"]);
        let report: Value = serde_json::from_str(run.success()).unwrap();
        let mut names: Vec<String> =
            report["releases"].as_array().unwrap().iter().map(|r| r["release"].as_str().unwrap().to_string()).collect();
        let unattributed = report["unattributed"].as_array().unwrap();
        assert!(unattributed.is_empty(), "unattributed: {unattributed:?}");
        names.sort();
        std::process::Command::new("git").args(["checkout", "--", "."]).current_dir(repo.path()).status().unwrap();
        names
    };
    let base = std::fs::read_to_string(repo.path().join("apps/base/config.yaml")).unwrap();
    assert_eq!(
        changed(&[("apps/base/config.yaml", &base.replace("hello", "bye"))]),
        ["base", "nested", "patched", "prod", "replaced", "staging", "transformers", "vars"]
    );
    let labels = std::fs::read_to_string(repo.path().join("apps/transformers/labels.yaml")).unwrap();
    assert_eq!(changed(&[("apps/transformers/labels.yaml", &labels.replace("shop", "store"))]), ["transformers"]);
    // Two levels below `nested`, through `prod`'s `extra` directory.
    assert_eq!(
        changed(&[(
            "apps/overlays/prod/extra/job.yaml",
            &std::fs::read_to_string(repo.path().join("apps/overlays/prod/extra/job.yaml"))
                .unwrap()
                .replace("0 *", "5 *")
        )]),
        ["nested", "prod"]
    );
    // A component, a patch file and a generator's env file.
    assert_eq!(changed(&[("components/debug/kustomization.yaml", "kind: Component\n")]), ["patched"]);
    assert_eq!(changed(&[("apps/overlays/patched/patches/ops.yaml", "[]\n")]), ["patched"]);
    assert_eq!(changed(&[("apps/generated/base/app.env", "A=b\n")]), ["generated"]);
    // A file of replacements, and a base's transformer configuration.
    assert_eq!(changed(&[("apps/overlays/replaced/replacements.yaml", "[]\n")]), ["replaced"]);
    assert_eq!(changed(&[("apps/overlays/replaced/widget/config.yaml", "{}\n")]), ["replaced"]);
    assert_eq!(changed(&[("apps/overlays/crds/bee-definitions.json", "{}\n")]), ["crds"]);
    // A template of a chart `helmCharts` inflates, and its values file.
    assert_eq!(changed(&[("apps/helm/charts/greeter/templates/config.yaml", "# gone\n")]), ["helm"]);
    assert_eq!(changed(&[("apps/helm/quiet-values.yaml", "greeting: shh\n")]), ["helm"]);
}

#[test]
fn values_flags_given_to_kustomizations_alone_are_an_error() {
    let repo = Repo::empty();
    copy_dir(&common::project_root().join(FIXTURE), repo.path());
    let error = repo.weaver(&["render", "--env", "dev", "-r", "base", "--set", "replicas=2"]).failure().to_string();
    assert!(error.contains("--set `replicas=…`") && error.contains("all kustomizations"), "{error}");
    assert!(error.contains("select chart releases"), "{error}");
}

/// The objects of a successful `weaver render`, by `Kind/name`.
fn rendered(run: &common::Run) -> BTreeMap<String, Value> {
    weaver_yaml::documents(Path::new("render"), run.success())
        .unwrap()
        .into_iter()
        .map(|o| (format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()), o))
        .collect()
}

/// A kustomization written for Flux: `${var}` in names, numbers and strings.
fn flux_repo(release: &str) -> Repo {
    let repo = Repo::empty();
    repo.write(
        "environments/base.yaml",
        "abstract: true\nnamespace: shop\nreleases:\n  - name: app\n    kustomize: app\n    substitute:\n      cluster_name: base-cluster\n      replicas: 2\n      debug: false\n      q: '\"'\n",
    )
    .write("environments/dev.yaml", &format!("extends: base\nreleases:\n{release}"))
    .write("app/kustomization.yaml", "namePrefix: team-\nresources: [web.yaml, raw.yaml, plain.yaml]\n")
    .write(
        "app/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-${cluster_name}\n  annotations:\n    cluster/${cluster_name}: owned\nspec:\n  replicas: ${replicas}\n  paused: ${debug}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: nginx:${tag:=1.27}\n          args: [\"$${cluster_name}\", \"$HOME\", \"${region:-eu}\", \"${q}${port}${q}\"]\n          ports:\n            - containerPort: ${port}\n",
    )
    .write(
        "app/raw.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  script: echo ${cluster_name} ${undefined}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw-label\n  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  script: echo $${kept}\n",
    )
    .write("app/plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  port: \"${q}${port}${q}\"\n")
    .write("vars/first.yaml", "port: 8080\ncluster_name: from-a-file\n")
    .write("vars/second.yaml", "port: \"9090\"\n");
    repo
}

/// Flux's `postBuild.substitute` and `substituteFrom`: after the build (so after `namePrefix`),
/// in names, keys and values, each string read again as YAML as Flux reads its re-written text
/// (`"${port}"` becomes a number too; a variable holding `"` keeps a string); defaults, `$$` escapes, `$var` left alone, objects labelled or
/// annotated `disabled` untouched; `substitute` wins over the files, a later file over an
/// earlier one, and a derived environment's variable over its base's.
#[test]
fn flux_variables_are_substituted_after_the_build() {
    let repo = flux_repo(
        "  - name: app\n    substituteFrom: [vars/first.yaml, vars/second.yaml]\n    substitute:\n      cluster_name: eu-1\n",
    );
    let objects = rendered(&repo.weaver(&["render", "--env", "dev"]));
    let web = &objects["Deployment/team-web-eu-1"];
    assert_eq!(web["metadata"]["annotations"]["cluster/eu-1"], "owned");
    assert_eq!(web["spec"]["replicas"], 2);
    assert_eq!(web["spec"]["paused"], false);
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["args"], serde_json::json!(["${cluster_name}", "$HOME", "eu", "9090"]));
    assert_eq!(container["ports"][0]["containerPort"], 9090);
    assert_eq!(objects["ConfigMap/team-plain"]["data"]["port"], "9090");
    assert_eq!(objects["ConfigMap/team-raw"]["data"]["script"], "echo ${cluster_name} ${undefined}");
    assert_eq!(objects["ConfigMap/team-raw-label"]["data"]["script"], "echo $${kept}");

    // Without `substitute` in dev, the base's variables and the files' (a later file winning).
    let repo = flux_repo("  - name: app\n    substituteFrom: [vars/second.yaml, vars/first.yaml]\n");
    let objects = rendered(&repo.weaver(&["render", "--env", "dev"]));
    let web = &objects["Deployment/team-web-base-cluster"];
    assert_eq!(web["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 8080);
    assert_eq!(objects["ConfigMap/team-plain"]["data"]["port"], "8080");

    // `"${port}"` is a number once Flux has written the object again: the server refuses it in
    // a ConfigMap's data, and so does the render.
    repo.write(
        "app/plain.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  port: \"${port}\"\n",
    );
    let refused = repo.weaver(&["render", "--env", "dev"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(refused.stderr.contains("ConfigMap") && refused.stderr.contains("data.port"), "{}", refused.stderr);
}

/// A release without `substitute` or `substituteFrom` is left as kustomize builds it.
#[test]
fn a_release_without_variables_keeps_its_dollars() {
    let repo = bad_repo(&[
        ("app/kustomization.yaml", "resources: [cm.yaml]\n"),
        ("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: ${x}\n  b: $${y}\n"),
    ]);
    let objects = rendered(&repo.weaver(&["render", "--env", "dev"]));
    assert_eq!(objects["ConfigMap/cm"]["data"], serde_json::json!({"a": "${x}", "b": "$${y}"}));
    // A variable in a name, without variables: the error says where they come from.
    repo.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${x}\n");
    let error = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(error.contains("has an invalid `metadata.name` `cm-${x}`"), "{error}");
    assert!(error.contains("give the release `substitute` or `substituteFrom`"), "{error}");
}

/// An unset variable without a default is an error (Flux's strict substitution) naming the
/// release, the object and the variable; so is an operator weaver does not run.
#[test]
fn an_unset_variable_is_an_error_naming_the_release_object_and_variable() {
    let repo = flux_repo("  - name: app\n    substitute:\n      cluster_name: eu-1\n");
    repo.write("app/kustomization.yaml", "namespace: shop\nresources: [web.yaml]\n");
    let error = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert_eq!(
        error.lines().next().unwrap(),
        "error: app/web.yaml: release `app`: substituting variables in the kustomization's Deployment shop/web-${cluster_name}: variable `port` is not set"
    );
    assert!(error.contains("help: set `port` in the release's `substitute` or a `substituteFrom` file"), "{error}");
    assert!(!error.contains("eu-1"), "{error}");

    repo.write("vars/first.yaml", "port: 80\n").write(
        "environments/dev.yaml",
        "extends: base\nreleases:\n  - name: app\n    substituteFrom: [vars/first.yaml]\n",
    );
    repo.write("app/web.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: ${port^^}\n");
    let error = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(
        error.contains(
            "ConfigMap shop/cm: `^^` in a reference to `port` is an envsubst operator weaver does not support"
        ),
        "{error}"
    );
    // A substituteFrom file's variable names are checked, naming the file and line.
    repo.write("vars/first.yaml", "port: 80\nbad-name: x\n");
    let error = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(error.starts_with("error: vars/first.yaml:2:1: `bad-name` is not a variable name"), "{error}");
}

/// A SOPS-encrypted `substituteFrom` file is decrypted with the environment's identities, as
/// encrypted values files are; the values it gives objects are redacted wherever weaver prints
/// them, and without a key that opens it the error names the file.
#[test]
fn an_encrypted_substitute_from_file_is_decrypted_and_never_printed() {
    let vectors = common::project_root().join("tests/vectors/sops-age/flux-kustomize-controller");
    let key = vectors.join("age.txt");
    let recipient = "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29";
    let repo = bad_repo(&[
        ("app/kustomization.yaml", "namespace: kust-test\nresources: [db.yaml]\n"),
        (
            "app/db.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  url: postgres://app:${db_password}@db:${port}\n",
        ),
        ("vars/plain.yaml", "port: 5432\n"),
        ("vars/secret.yaml", "db_password: SEEDTOKEN-hunter2\n"),
    ]);
    repo.write(
        "environments/dev.yaml",
        "namespace: kust-test\nreleases:\n  - name: app\n    kustomize: app\n    substituteFrom: [vars/plain.yaml, vars/secret.yaml]\n",
    );
    let file = repo.path().join("vars/secret.yaml");
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    let encrypted = std::fs::read_to_string(&file).unwrap();
    assert!(encrypted.contains("ENC[AES256_GCM") && !encrypted.contains("hunter2"), "{encrypted}");
    let with_key = [("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];

    let shown = repo.weaver_env(&["render", "--env", "dev", "--show-secrets"], &with_key);
    assert_eq!(rendered(&shown)["ConfigMap/db"]["data"]["url"], "postgres://app:SEEDTOKEN-hunter2@db:5432");
    let redacted = repo.weaver_env(&["render", "--env", "dev"], &with_key);
    assert!(!redacted.success().contains("hunter2"), "{}", redacted.stdout);
    assert!(redacted.success().contains("postgres://app:<redacted:"), "{}", redacted.stdout);

    // A diff against live objects (offline, from a file) shows the change, not the value.
    repo.write(
        "live.yaml",
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: db, namespace: kust-test}\n    data: {url: 'postgres://app:old@db:5432'}\n",
    );
    let live = repo.path().join("live.yaml");
    let diff = repo.weaver_env(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap()], &with_key);
    let diff = diff.success();
    assert!(diff.contains("+  url: postgres://app:<redacted:") && !diff.contains("hunter2"), "{diff}");

    // A decrypted value that reads as YAML once substituted into a plain scalar: its fields'
    // strings are redacted too, not only the whole value.
    repo.write(
        "vars/secret.yaml",
        "db_password: SEEDTOKEN-hunter2\ndb_json: '{\"user\": \"app\", \"token\": \"SEEDTOKEN-json\"}'\n",
    );
    repo.weaver(&["secrets", "encrypt", "--age", recipient, file.to_str().unwrap()]).success();
    repo.write(
        "app/db.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  url: postgres://app:${db_password}@db:${port}\n---\napiVersion: example.com/v1\nkind: Database\nmetadata:\n  name: db\nspec:\n  auth: ${db_json}\n",
    );
    let shown = repo.weaver_env(&["render", "--env", "dev", "--show-secrets", "--validate=ignore"], &with_key);
    assert_eq!(rendered(&shown)["Database/db"]["spec"]["auth"]["token"], "SEEDTOKEN-json");
    let redacted = repo.weaver_env(&["render", "--env", "dev", "--validate=ignore"], &with_key);
    assert!(!redacted.success().contains("SEEDTOKEN"), "{}", redacted.stdout);

    // An error quoting an object that holds the value: the value is redacted there too.
    repo.write(
        "app/db.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db-${db_password}\ndata:\n  port: \"${port}\"\n",
    );
    let error = repo.weaver_env(&["render", "--env", "dev"], &with_key);
    let error = error.failure();
    assert!(error.contains("has an invalid `metadata.name` `db-<redacted:"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");

    // Another key: the file does not open, and the error names it.
    let other = age::x25519::Identity::generate();
    let other_key = repo.path().join("other.agekey");
    std::fs::write(&other_key, format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&other.to_string()))).unwrap();
    let without = repo.weaver_env(&["render", "--env", "dev"], &[("SOPS_AGE_KEY_FILE", other_key.to_str().unwrap())]);
    let error = without.failure();
    assert!(error.starts_with("error: vars/secret.yaml:"), "{error}");
    assert!(!error.contains("hunter2") && !error.contains("ENC["), "{error}");
}

/// `weaver changed`: a `substituteFrom` file is an input of the releases listing it.
#[test]
fn an_edited_substitute_from_file_affects_the_releases_listing_it() {
    let repo = flux_repo(
        "  - name: app\n    substituteFrom: [vars/first.yaml]\n  - name: other\n    kustomize: app\n    namespace: other\n    substituteFrom: [vars/second.yaml]\n",
    );
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "flux layout");
    let changed = || -> (Vec<String>, Value) {
        let run = repo.weaver(&["changed", "-o", "json", "--base", "HEAD"]);
        let report: Value = serde_json::from_str(run.success()).unwrap();
        let names = report["releases"].as_array().unwrap().iter().map(|r| r["release"].as_str().unwrap().to_string());
        (names.collect(), report["unattributed"].clone())
    };
    repo.write("vars/first.yaml", "port: 8081\ncluster_name: from-a-file\n");
    assert_eq!(changed(), (vec!["app".to_string()], serde_json::json!([])));
    repo.write("vars/second.yaml", "port: \"9091\"\n");
    assert_eq!(changed(), (vec!["app".to_string(), "other".to_string()], serde_json::json!([])));
}

/// kubectl kustomize keeps a namespace written on a cluster-scoped object, and so does weaver's
/// render; the API server ignores it, so a diff against the object as the server returns it
/// (without one) is no change.
#[test]
fn a_namespace_kept_on_a_cluster_scoped_object_is_no_change() {
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  namespace: monitoring\nrules: []\n";
    let repo =
        bad_repo(&[("app/kustomization.yaml", "namespace: shop\nresources: [role.yaml]\n"), ("app/role.yaml", role)]);
    let objects = rendered(&repo.weaver(&["render", "--env", "dev"]));
    let mut live = objects["ClusterRole/reader"].clone();
    assert_eq!(live["metadata"]["namespace"], "monitoring");
    live["metadata"].as_object_mut().unwrap().remove("namespace");
    repo.write("live.yaml", &serde_json::to_string(&live).unwrap());
    let live = repo.path().join("live.yaml");
    let diff = repo.weaver(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap()]);
    assert!(diff.success().contains("0 to create, 0 to update, 0 to delete, 1 unchanged"), "{}", diff.stdout);
}

/// Issue 53.4: one object in two versions (`v1beta2` and `v1beta3` of one Widget), which
/// `kubectl kustomize` prints both of: applied in order, the API server keeps the last, and so
/// does weaver, with a warning naming both documents, where it refused the kustomization.
#[test]
fn an_object_in_two_versions_keeps_its_last_copy_with_a_warning() {
    let repo = Repo::empty();
    repo.write("app/kustomization.yaml", "resources: [widgets.yaml]\n")
        .write(
            "app/widgets.yaml",
            "apiVersion: example.com/v1beta2\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n---\n\
             apiVersion: example.com/v1beta3\nkind: Widget\nmetadata: {name: w}\nspec: {size: 2}\n",
        )
        .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    kustomize: app\n");
    let run = repo.weaver(&["render", "--env", "dev", "--validate=ignore"]);
    let objects = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
    assert_eq!(objects.len(), 1, "{}", run.stdout);
    assert_eq!(
        (objects[0]["apiVersion"].as_str(), &objects[0]["spec"]["size"]),
        (Some("example.com/v1beta3"), &serde_json::json!(2))
    );
    assert!(
        run.stderr.contains("warning: release `app` renders Widget.example.com apps/w twice, with different content, by app/widgets.yaml document 1 and by app/widgets.yaml document 2: the last is kept"),
        "{}",
        run.stderr
    );
    match kubectl() {
        Ok(kubectl) => {
            let out = weaver_test_support::kubectl::command(kubectl)
                .arg("kustomize")
                .arg(repo.path().join("app"))
                .output()
                .unwrap();
            let theirs = String::from_utf8(out.stdout).unwrap();
            assert!(theirs.contains("v1beta2") && theirs.contains("v1beta3"), "kubectl prints both: {theirs}");
        }
        Err(reason) => {
            common::skip::interop_or_skip(Some(&format!("that kubectl kustomize prints both versions: {reason}")));
        }
    }
}

/// Issue 68.14: a kustomization's custom resource whose CRD the render does not hold gets the
/// release's namespace when it has none, as kustomize's `namespace:` (Flux's `targetNamespace`,
/// which the import makes the release's namespace) gives it; render and hydrate agree, and a
/// known cluster-scoped kind keeps none.
#[test]
fn a_kustomization_s_custom_resources_of_unknown_scope_get_the_release_namespace() {
    let repo = Repo::empty();
    repo.write("app/kustomization.yaml", "resources: [objects.yaml]\n")
        .write(
            "app/objects.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n",
        )
        // What kustomize-controller builds for a Flux Kustomization with `targetNamespace: team`.
        .write("flux/kustomization.yaml", "namespace: team\nresources: [../app]\n")
        .write("environments/dev.yaml", "namespace: team\nreleases:\n  - name: app\n    kustomize: app\n");
    let namespaces = |objects: Vec<Value>| -> BTreeMap<String, Option<String>> {
        objects
            .iter()
            .map(|o| (o["kind"].as_str().unwrap().to_string(), o["metadata"]["namespace"].as_str().map(str::to_string)))
            .collect()
    };
    let expected: BTreeMap<String, Option<String>> =
        [("ClusterRole".to_string(), None), ("Widget".to_string(), Some("team".to_string()))].into();
    let run = repo.weaver(&["render", "--env", "dev", "--validate=ignore"]);
    assert_eq!(namespaces(weaver_yaml::documents(Path::new("render"), run.success()).unwrap()), expected);

    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "source");
    let out = tempfile::tempdir().unwrap();
    let run = repo.weaver(&["hydrate", "--env", "dev", "--out", out.path().to_str().unwrap(), "--validate=ignore"]);
    assert_eq!(run.code, 2, "hydrate writes: {}", run.stderr);
    let hydrated = std::fs::read_to_string(out.path().join("dev/app.yaml")).unwrap();
    assert_eq!(namespaces(weaver_yaml::documents(Path::new("hydrated"), &hydrated).unwrap()), expected);

    match kubectl() {
        Ok(kubectl) => {
            let out = weaver_test_support::kubectl::command(kubectl)
                .arg("kustomize")
                .arg(repo.path().join("flux"))
                .output()
                .unwrap();
            let theirs = weaver_yaml::documents(Path::new("flux"), &String::from_utf8(out.stdout).unwrap()).unwrap();
            assert_eq!(namespaces(theirs), expected);
        }
        Err(reason) => {
            common::skip::interop_or_skip(Some(&reason));
        }
    }
}

/// Issue 68.17: the copy of an object at two versions that a release keeps is the one last in
/// `kubectl kustomize`'s output, which `kubectl apply` of it leaves: kustomize sorts the copies
/// by version (`v1` before `v1beta1`) whatever order the file lists them in, unless the
/// kustomization asks for `sortOptions: {order: fifo}`.
#[test]
fn of_an_object_at_two_versions_the_copy_kubectl_kustomize_prints_last_is_kept() {
    let repo = Repo::empty();
    let widgets = "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n---\n\
                   apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 2}\n";
    repo.write("sorted/kustomization.yaml", "resources: [widgets.yaml]\n")
        .write("sorted/widgets.yaml", widgets)
        .write("fifo/kustomization.yaml", "resources: [widgets.yaml]\nsortOptions: {order: fifo}\n")
        .write("fifo/widgets.yaml", widgets)
        .write(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: sorted\n    kustomize: sorted\n  - name: fifo\n    kustomize: fifo\n",
        );
    let kept = |release: &str| {
        let run = repo.weaver(&["render", "--env", "dev", "-r", release, "--validate=ignore"]);
        let objects = weaver_yaml::documents(Path::new("render"), run.success()).unwrap();
        assert_eq!(objects.len(), 1, "{}", run.stdout);
        objects[0]["apiVersion"].as_str().unwrap().to_string()
    };
    assert_eq!(kept("sorted"), "example.com/v1beta1");
    assert_eq!(kept("fifo"), "example.com/v1");
    match kubectl() {
        Ok(kubectl) => {
            for dir in ["sorted", "fifo"] {
                let out = weaver_test_support::kubectl::command(&kubectl)
                    .arg("kustomize")
                    .arg(repo.path().join(dir))
                    .output()
                    .unwrap();
                let theirs = weaver_yaml::documents(Path::new(dir), &String::from_utf8(out.stdout).unwrap()).unwrap();
                assert_eq!(theirs.len(), 2, "kubectl prints both");
                assert_eq!(theirs[1]["apiVersion"].as_str().unwrap(), kept(dir), "{dir}");
            }
        }
        Err(reason) => {
            common::skip::interop_or_skip(Some(&reason));
        }
    }
}
