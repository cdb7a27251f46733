//! `weaver diff` against a cluster: the in-process fake, or a real cluster with
//! WEAVER_TEST_KUBECONFIG. Every scenario runs in client and server mode, which must agree.

use crate::common;

use common::Repo;
use common::cluster::TestCluster;
use common::demo::Demo;
use serde_json::{Value, json};

impl Demo {
    /// `weaver diff -o json` in both modes; asserts they agree on every object's action and
    /// changed paths, and returns the client plan.
    fn plan(&self) -> Value {
        let client = self.json(&["diff", "--env", "dev", "-o", "json"]);
        let server = self.json(&["diff", "--env", "dev", "-o", "json", "--server-side"]);
        let essentials = |plan: &Value| -> Vec<Value> {
            plan["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| json!([o["action"], o["kind"], o["namespace"], o["name"], o["changes"]]))
                .collect()
        };
        assert_eq!(essentials(&client), essentials(&server), "client and server mode disagree");
        assert_eq!(client["summary"], server["summary"]);
        client
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(self.weaver(args).success()).expect("diff -o json prints JSON")
    }

    /// `weaver diff` text in client mode. Server mode must list the same objects with the same
    /// headers and summary (its diff lines may add what the server defaults in new elements).
    fn text(&self) -> String {
        let client = self.weaver(&["diff", "--env", "dev"]).success().to_string();
        let server = self.server_text();
        let headers = |text: &str| -> Vec<String> { text.lines().filter(|l| is_header(l)).map(String::from).collect() };
        assert_eq!(
            headers(&client),
            headers(&server),
            "client and server mode list different objects:\n{client}\n---\n{server}"
        );
        client
    }

    fn server_text(&self) -> String {
        self.weaver(&["diff", "--env", "dev", "--server-side"]).success().to_string()
    }
}

/// The plan entry of the (only) object of `kind`.
fn planned<'p>(plan: &'p Value, kind: &str) -> &'p Value {
    plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {plan:#}"))
}

fn changed_objects(plan: &Value) -> Vec<(String, String, String)> {
    plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] != "unchanged")
        .map(|o| {
            (
                o["action"].as_str().unwrap().into(),
                o["kind"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// The `+`/`-` lines of a text diff, without the hunk and object headers.
fn changed_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| (l.starts_with('+') || l.starts_with('-')) && !is_header(l)).collect()
}

/// `~ apps/v1 Deployment shop/web (release web)` and the summary line.
fn is_header(line: &str) -> bool {
    (line.ends_with(')') && line.contains(" (release ")) || line.contains(" to create, ")
}

#[test]
fn nothing_to_do_right_after_an_apply_although_the_server_defaulted_fields() {
    let demo = Demo::new();
    demo.apply_rendered();
    let plan = demo.plan();
    assert_eq!(changed_objects(&plan), Vec::<(String, String, String)>::new(), "{plan:#}");
    assert_eq!(plan["summary"], json!({"create": 0, "update": 0, "delete": 0, "unchanged": 7}));
    let text = demo.text();
    assert_eq!(text, "0 to create, 0 to update, 0 to delete, 7 unchanged\n");
    assert_eq!(demo.server_text(), text);
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0);
}

#[test]
fn a_changed_value_is_exactly_one_line_pair() {
    let demo = Demo::new();
    demo.apply_rendered();
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 3");
    let text = demo.text();
    assert!(text.contains(&format!("~ apps/v1 Deployment {}/web (release web)\n", demo.ns)), "{text}");
    assert_eq!(changed_lines(&text), vec!["-  replicas: 1", "+  replicas: 3"], "{text}");
    assert_eq!(changed_lines(&demo.server_text()), vec!["-  replicas: 1", "+  replicas: 3"]);
    assert!(text.ends_with("0 to create, 1 to update, 0 to delete, 6 unchanged\n"), "{text}");
    let plan = demo.plan();
    let web = planned(&plan, "Deployment");
    assert_eq!(web["changes"], json!([{"path": "spec.replicas", "op": "replace"}]));
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 2);
}

#[test]
fn a_field_removed_from_the_chart_shows_as_a_removal() {
    let demo = Demo::new();
    demo.apply_rendered();
    demo.edit("charts/web-app/templates/deployment.yaml", "            initialDelaySeconds: 10\n", "");
    let text = demo.text();
    assert_eq!(changed_lines(&text), vec!["-          initialDelaySeconds: 10"], "{text}");
    assert_eq!(changed_lines(&demo.server_text()), vec!["-          initialDelaySeconds: 10"]);
    let plan = demo.plan();
    let web = planned(&plan, "Deployment");
    assert_eq!(
        web["changes"],
        json!([{"path": "spec.template.spec.containers[name=web].livenessProbe.initialDelaySeconds", "op": "remove"}])
    );
}

#[test]
fn a_reordered_env_is_a_change_in_both_modes() {
    let demo = Demo::new();
    demo.set_web_env(&["A", "B", "C"]);
    demo.apply_rendered();
    assert_eq!(changed_objects(&demo.plan()), Vec::<(String, String, String)>::new());

    // Order matters in env ($(VAR) sees only earlier entries) and server-side apply follows the
    // applied order (Kubernetes 1.24+).
    demo.set_web_env(&["C", "A", "B"]);
    let plan = demo.plan();
    assert_eq!(changed_objects(&plan), vec![("update".into(), "Deployment".into(), "web".into())], "{plan:#}");
    assert_eq!(
        planned(&plan, "Deployment")["changes"],
        json!([{"path": "spec.template.spec.containers[name=web].env", "op": "replace"}])
    );
    let text = demo.text();
    assert!(text.contains(&format!("~ apps/v1 Deployment {}/web (release web)\n", demo.ns)), "{text}");
    let moved = ["-        - name: C", "-          value: c", "+        - name: C", "+          value: c"];
    let lines = changed_lines(&text);
    assert!(moved.iter().all(|m| lines.contains(m)) && lines.len() == 4, "{text}");
    assert_eq!(changed_lines(&demo.server_text()), lines);
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 2);
}

const SIDECAR_PATCH: &str = "    patches:
      - target: { kind: Deployment, name: web }
        patch:
          spec:
            template:
              spec:
                containers:
                  - name: sidecar
                    image: busybox:1.36
                    args: [sleep, infinity]
";

#[test]
fn a_container_added_or_removed_shows_just_that_container() {
    let demo = Demo::new();
    demo.apply_rendered();
    demo.append("environments/dev.yaml", SIDECAR_PATCH);
    let text = demo.text();
    let added = changed_lines(&text);
    assert!(added.iter().all(|l| l.starts_with('+')), "only additions: {text}");
    assert!(added.contains(&"+      - args:"), "{text}");
    assert!(added.contains(&"+        image: busybox:1.36"), "{text}");
    assert!(added.contains(&"+        name: sidecar"), "{text}");
    let plan = demo.plan();
    let web = planned(&plan, "Deployment");
    assert_eq!(web["changes"], json!([{"path": "spec.template.spec.containers[name=sidecar]", "op": "add"}]));

    // Deployed with the sidecar, then the patch goes: only the sidecar is removed.
    demo.apply_rendered();
    assert_eq!(changed_objects(&demo.plan()), Vec::<(String, String, String)>::new());
    let dev = std::fs::read_to_string(demo.repo.path().join("environments/dev.yaml")).unwrap();
    demo.repo.write("environments/dev.yaml", &dev.replace(SIDECAR_PATCH, ""));
    let plan = demo.plan();
    let web = planned(&plan, "Deployment");
    assert_eq!(web["changes"], json!([{"path": "spec.template.spec.containers[name=sidecar]", "op": "remove"}]));
    let text = demo.text();
    assert!(changed_lines(&text).iter().all(|l| l.starts_with('-')), "{text}");
    assert!(text.contains("-        name: sidecar"), "{text}");
}

#[test]
fn secret_values_never_appear_and_changed_keys_are_listed() {
    let demo = Demo::new();
    demo.apply_rendered();
    let secret = demo.rendered().into_iter().find(|o| o["kind"] == "Secret").unwrap();
    let mut values: Vec<String> = Vec::new();
    for (field, b64) in [("data", true), ("stringData", false)] {
        for value in secret.get(field).and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
            let text = value.as_str().unwrap().to_string();
            if b64 {
                use base64::Engine;
                let plain = base64::engine::general_purpose::STANDARD.decode(&text).unwrap();
                values.push(String::from_utf8(plain).unwrap());
            } else {
                use base64::Engine;
                values.push(base64::engine::general_purpose::STANDARD.encode(&text));
            }
            values.push(text);
        }
    }
    assert!(!values.is_empty());
    demo.append(
        "environments/dev.yaml",
        "    patches:\n      - target: { kind: Secret, name: web-secrets }\n        patch: { stringData: { API_KEY: brand-new-api-key-value } }\n",
    );
    values.push("brand-new-api-key-value".into());
    let text = demo.text();
    let json = demo.weaver(&["diff", "--env", "dev", "-o", "json"]).success().to_string();
    for value in &values {
        assert!(!text.contains(value.as_str()), "a secret value leaked into the diff:\n{text}");
        assert!(!json.contains(value.as_str()), "a secret value leaked into the JSON plan");
    }
    assert_eq!(changed_lines(&text), vec!["-  API_KEY: <redacted>", "+  API_KEY: <redacted, changed>"], "{text}");
    assert_eq!(changed_lines(&demo.server_text()), changed_lines(&text));
    let plan = demo.plan();
    let secret = planned(&plan, "Secret");
    assert_eq!(secret["changes"], json!([{"path": "data.API_KEY", "op": "replace"}]));
}

#[test]
fn a_custom_resource_whose_crd_is_also_desired_shows_as_create() {
    let demo = Demo::new();
    let group = format!("{}.example.com", demo.cluster.prefix);
    demo.repo
        .write("charts/widgets/chart.yaml", "name: widgets\nversion: 0.1.0\n")
        .write(
            "charts/widgets/crds/widget.yaml",
            &format!(
                "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  names: {{ kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {{ type: object, x-kubernetes-preserve-unknown-fields: true }}
"
            ),
        )
        .write(
            "charts/widgets/templates/widget.yaml",
            &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: gear\nspec:\n  teeth: 12\n"),
        );
    demo.append("environments/dev.yaml", "  - name: widgets\n    chart: widgets\n");
    demo.apply_rendered_except("widgets");
    let plan = demo.plan();
    assert_eq!(
        changed_objects(&plan),
        vec![
            ("create".to_string(), "CustomResourceDefinition".to_string(), format!("widgets.{group}")),
            ("create".to_string(), "Widget".to_string(), "gear".to_string()),
        ]
    );
    let text = demo.text();
    assert!(text.contains(&format!("+ {group}/v1 Widget {}/gear (release widgets)\n", demo.ns)), "{text}");
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 2);
}

impl Demo {
    fn apply_rendered_except(&self, release: &str) {
        let objects: Vec<Value> = self
            .rendered()
            .into_iter()
            .filter(|o| {
                o.pointer("/metadata/labels/weaver.example.com~1release").and_then(Value::as_str) != Some(release)
            })
            .collect();
        self.cluster.apply(&objects, "weaver");
    }
}

#[test]
fn a_cluster_scoped_kind_has_no_namespace() {
    let demo = Demo::new();
    let name = format!("{}-reader", demo.cluster.prefix);
    demo.repo.write(
        "charts/web-app/templates/clusterrole.yaml",
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\nrules:\n  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get]\n"
        ),
    );
    let plan = demo.plan();
    let role = planned(&plan, "ClusterRole");
    assert_eq!(role["action"], "create");
    assert_eq!(role["namespace"], Value::Null);
    let text = demo.text();
    assert!(text.contains(&format!("+ rbac.authorization.k8s.io/v1 ClusterRole {name} (release web)\n")), "{text}");
    demo.apply_rendered();
    let plan = demo.plan();
    assert_eq!(changed_objects(&plan), Vec::<(String, String, String)>::new(), "{plan:#}");
}

#[test]
fn an_object_deleted_by_hand_shows_as_create() {
    let demo = Demo::new();
    demo.apply_rendered();
    let config = demo
        .rendered()
        .into_iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "web-config")
        .unwrap();
    demo.cluster.delete(&config);
    let plan = demo.plan();
    assert_eq!(changed_objects(&plan), vec![("create".to_string(), "ConfigMap".to_string(), "web-config".to_string())]);
    let text = demo.text();
    assert!(text.contains(&format!("+ v1 ConfigMap {}/web-config (release web)\n", demo.ns)), "{text}");
    assert!(text.contains("+  DOMAIN: dev.shop.example.org"), "{text}");
}

#[test]
fn exit_codes_say_nothing_changes_changes_or_error() {
    let demo = Demo::new();
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 2, "everything to create");
    assert_eq!(demo.weaver(&["diff", "--env", "dev"]).code, 0, "without --exit-code, changes are not an error");
    demo.apply_rendered();
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code"]).code, 0);
    assert_eq!(demo.weaver(&["diff", "--env", "dev", "--exit-code", "--server-side"]).code, 0);
    let err = demo.weaver(&["diff", "--env", "dev", "--exit-code", "--context", "nope"]);
    err.failure();
}

#[test]
fn last_applied_from_the_release_record_drives_removals_and_deletions() {
    let demo = Demo::new();
    demo.apply_rendered();
    // Revision 1 also had a ConfigMap that is gone from the chart, and a label on web-config
    // that another manager now co-owns (so managedFields alone would not remove it).
    let mut applied = demo.rendered();
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web-legacy", "namespace": demo.ns, "labels": {"app.kubernetes.io/managed-by": "weaver",
            "weaver.example.com/release": "web", "weaver.example.com/environment": "dev"}},
        "data": {"old": "yes"}});
    applied.push(old.clone());
    let config = applied.iter_mut().find(|o| o["metadata"]["name"] == "web-config").unwrap();
    config["metadata"]["labels"]["legacy"] = json!("true");
    demo.cluster.apply(&[old.clone(), config.clone()], "weaver");
    demo.cluster.merge_patch(config, &json!({"metadata": {"labels": {"legacy": "true"}}}), "kubectl-edit");
    let web: Vec<Value> = applied
        .iter()
        .filter(|o| o.pointer("/metadata/labels/weaver.example.com~1release").and_then(Value::as_str) == Some("web"))
        .cloned()
        .collect();
    let record = weaver_plan::release::record::Record {
        time: "2026-11-21T10:00:00Z".into(),
        ..weaver_plan::release::record::Record::deployed("web", "dev", web)
    };
    demo.cluster.apply(&weaver_plan::release::record::to_secrets(&record, &demo.ns).unwrap(), "weaver");

    let plan = demo.plan();
    assert_eq!(
        changed_objects(&plan),
        vec![
            ("update".to_string(), "ConfigMap".to_string(), "web-config".to_string()),
            ("delete".to_string(), "ConfigMap".to_string(), "web-legacy".to_string()),
        ],
        "{plan:#}"
    );
    let config = plan["objects"].as_array().unwrap().iter().find(|o| o["name"] == "web-config").unwrap();
    assert_eq!(config["changes"], json!([{"path": "metadata.labels.legacy", "op": "remove"}]));
    let text = demo.text();
    assert!(text.contains(&format!("- v1 ConfigMap {}/web-legacy (release web)\n", demo.ns)), "{text}");
    assert!(text.ends_with("0 to create, 1 to update, 1 to delete, 6 unchanged\n"), "{text}");
}

#[test]
fn one_discovery_pass_and_one_list_per_resource_and_namespace() {
    let demo = Demo::new();
    demo.apply_rendered();
    let Some(fake) = demo.cluster.fake("counting requests") else { return };
    fake.clear_requests();
    demo.weaver(&["diff", "--env", "dev"]).success();
    let mut requests = fake.requests();
    // The releases have no record yet (applied as weaver would, without weaver): one more LIST
    // per namespace looks for the Helm releases they would adopt (their records' metadata).
    let helm = |r: &weaver_test_apiserver::RequestRecord| r.query.contains("labelSelector=owner%3Dhelm");
    let helm_lists: Vec<_> = requests.iter().filter(|r| helm(r)).map(|r| r.path.clone()).collect();
    assert_eq!(helm_lists, [format!("/api/v1/namespaces/{}/secrets", demo.ns)], "{requests:#?}");
    requests.retain(|r| !helm(r));
    // Where the run renders a Secret, one more LIST of weaver's Secrets that are not records:
    // another environment's, which an apply must not take (records are listed by release name).
    let foreign = |r: &weaver_test_apiserver::RequestRecord| r.query.contains("%21weaver.example.com%2Fstatus");
    let foreign_lists: Vec<_> = requests.iter().filter(|r| foreign(r)).map(|r| r.path.clone()).collect();
    assert_eq!(foreign_lists, [format!("/api/v1/namespaces/{}/secrets", demo.ns)], "{requests:#?}");
    requests.retain(|r| !foreign(r));
    let discovery: Vec<_> = requests.iter().filter(|r| r.path == "/api" || r.path == "/apis").collect();
    assert_eq!(discovery.len(), 2, "aggregated discovery is /api and /apis: {requests:#?}");
    let lists: Vec<&str> =
        requests.iter().filter(|r| r.path != "/api" && r.path != "/apis").map(|r| r.path.as_str()).collect();
    assert!(requests.iter().all(|r| r.method == "GET"), "diff only reads: {requests:#?}");
    let mut unique = lists.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lists.len(), "a resource was listed twice: {lists:#?}");
    let ns = &demo.ns;
    let mut expected = vec![
        format!("/api/v1/namespaces/{ns}/configmaps"),
        format!("/api/v1/namespaces/{ns}/secrets"),
        format!("/api/v1/namespaces/{ns}/services"),
        format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        format!("/apis/apps/v1/namespaces/{ns}/statefulsets"),
    ];
    expected.sort();
    assert_eq!(unique, expected);
    for list in requests.iter().filter(|r| r.path.ends_with('s') && r.path != "/apis") {
        assert!(list.query.contains("labelSelector=weaver.example.com%2Frelease"), "{list:?}");
    }
}

/// `--live-from` with the shipped example: a `kubectl get -o yaml` List of the demo's dev objects,
/// in which someone scaled the web Deployment to 3 and set LOG_LEVEL to info. Regenerate with
/// WEAVER_UPDATE_FIXTURES=1 (against the fake).
#[test]
fn diffs_offline_against_a_kubectl_list() {
    let fixture = common::project_root().join("tests/fixtures/live-dev.yaml");
    if std::env::var("WEAVER_UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
        write_live_fixture(&fixture);
    }
    let repo = Repo::demo();
    let path = fixture.to_str().unwrap();
    let run = repo.weaver(&["diff", "--env", "dev", "--live-from", path, "--exit-code"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let text = &run.stdout;
    assert!(text.contains("~ apps/v1 Deployment shop-dev/web (release web)\n"), "{text}");
    assert!(text.contains("~ v1 ConfigMap shop-dev/web-config (release web)\n"), "{text}");
    assert_eq!(
        changed_lines(text),
        vec!["-  LOG_LEVEL: info", "+  LOG_LEVEL: debug", "-  replicas: 3", "+  replicas: 1"],
        "{text}"
    );
    assert!(text.ends_with("0 to create, 2 to update, 0 to delete, 40 unchanged\n"), "{text}");
    // The fixture holds the demo Secret's data; the diff must not.
    let live = std::fs::read_to_string(&fixture).unwrap();
    let secret_data: Vec<&str> = live.lines().filter_map(|l| l.strip_prefix("    API_KEY: ")).collect();
    assert_eq!(secret_data.len(), 1);
    assert!(!text.contains(secret_data[0]));

    let list = repo.weaver(&["diff", "--env", "dev", "--live-from", "/nonexistent.yaml"]).failure().to_string();
    assert!(list.contains("/nonexistent.yaml: cannot read live objects: no such file or directory"), "{list}");
    assert!(
        repo.weaver(&["diff", "--env", "dev", "--live-from", path, "--server-side"])
            .failure()
            .contains("cannot be used with")
    );
}

fn write_live_fixture(path: &std::path::Path) {
    let cluster = TestCluster::start();
    assert!(cluster.is_fake(), "the fixture is generated against the fake API server");
    for namespace in ["shop-dev", "weaver-system"] {
        cluster.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}));
    }
    let rendered = weaver_yaml::documents(
        std::path::Path::new("render"),
        common::weaver_in(&common::project_root(), &["render", "--env", "dev", "--show-secrets"], &[]).success(),
    )
    .unwrap();
    cluster.apply(&rendered, "weaver");
    let find = |kind: &str, name: &str| {
        rendered.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap().clone()
    };
    cluster.merge_patch(&find("Deployment", "web"), &json!({"spec": {"replicas": 3}}), "kubectl-scale");
    cluster.merge_patch(&find("ConfigMap", "web-config"), &json!({"data": {"LOG_LEVEL": "info"}}), "kubectl-edit");
    let mut items = Vec::new();
    for object in &rendered {
        let mut item = cluster.get(object).expect("applied");
        // As `kubectl get -o yaml` prints it: kind and apiVersion first, no managedFields.
        item["metadata"].as_object_mut().unwrap().shift_remove("managedFields");
        let mut ordered = serde_json::Map::new();
        ordered.insert("apiVersion".into(), object["apiVersion"].clone());
        ordered.insert("kind".into(), object["kind"].clone());
        for (key, value) in item.as_object().unwrap() {
            if key != "apiVersion" && key != "kind" {
                ordered.insert(key.clone(), value.clone());
            }
        }
        items.push(Value::Object(ordered));
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
    let header = "# `kubectl get -o yaml` of every object of the demo's dev environment (in apply order), after\n\
        # someone scaled web to 3 and set LOG_LEVEL to info. The Secret holds the DEMO ONLY values.\n\
        # Regenerate: WEAVER_UPDATE_FIXTURES=1 cargo test --test suite diff::diffs_offline\n";
    std::fs::write(path, format!("{header}{}", weaver_yaml::to_yaml_string(&list))).unwrap();
}

/// `weaver diff --base REV`: a pull request's rendered objects before (the base commit's
/// render, as if applied) and after (the working tree's), per environment, with no cluster.
#[test]
fn diff_base_shows_the_rendered_objects_before_and_after_without_a_cluster() {
    let repo = Repo::demo_without_operator();
    let dev = std::fs::read_to_string(repo.path().join("environments/dev.yaml")).unwrap();
    repo.write("environments/dev.yaml", &format!("{dev}  - name: cache\n    chart: redis\n"));
    let git = common::git::init(repo.path());
    let base = common::git::commit_all(&git, "base").to_string();
    // The pull request: three replicas, the cache release gone, a Secret's value changed, and
    // a new environment.
    repo.write(
        "environments/dev.yaml",
        &format!(
            "{}    patches:\n      - target: {{ kind: Secret, name: web-secrets }}\n        patch: {{ stringData: {{ API_KEY: brand-new-api-key-value }} }}\n",
            dev.replace("replicas: 1", "replicas: 3")
        ),
    );
    repo.write("environments/preview.yaml", "extends: base\nnamespace: shop-preview\nlabels: { tier: preview }\n");
    let no_cluster = [("KUBECONFIG", "/nonexistent/kubeconfig")];
    let secret_values = {
        let out = repo.weaver(&["render", "--env", "dev", "--show-secrets", "--rev", "HEAD"]);
        let objects = weaver_yaml::documents(std::path::Path::new("render"), out.success()).unwrap();
        let secret = objects.into_iter().find(|o| o["kind"] == "Secret").unwrap();
        let mut values: Vec<String> =
            secret["stringData"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()).collect();
        values.push("brand-new-api-key-value".to_string());
        values
    };

    let json = repo.weaver_env(&["diff", "--env", "dev", "--base", "HEAD", "-o", "json"], &no_cluster);
    let plan: Value = serde_json::from_str(json.success()).unwrap();
    assert_eq!(plan["base"], base.as_str());
    let mut changed = changed_objects(&plan);
    changed.sort();
    let expected: Vec<(String, String, String)> = [
        ("delete", "ConfigMap", "cache-config"),
        ("delete", "Service", "cache"),
        ("delete", "StatefulSet", "cache"),
        ("update", "Deployment", "web"),
        ("update", "Secret", "web-secrets"),
    ]
    .iter()
    .map(|(a, k, n)| (a.to_string(), k.to_string(), n.to_string()))
    .collect();
    assert_eq!(changed, expected);
    let deployment = planned(&plan, "Deployment");
    assert_eq!(deployment["changes"], json!([{"path": "spec.replicas", "op": "replace"}]));

    let markdown = repo.weaver_env(&["diff", "--env", "dev", "--base", "HEAD", "-o", "markdown"], &no_cluster);
    let text = markdown.success();
    assert!(text.contains(&format!("compared with the render of commit `{base}` (no cluster)")), "{text}");
    assert!(text.contains("-  replicas: 1") && text.contains("+  replicas: 3"), "{text}");
    for value in &secret_values {
        assert!(!text.contains(value.as_str()) && !json.stdout.contains(value.as_str()), "a Secret value in the diff");
    }

    // A fleet, as a pull request comment: the new environment is all created.
    let fleet = repo.weaver_env(&["diff", "--env", "dev,preview", "--base", "HEAD", "-o", "json"], &no_cluster);
    let report: Value = serde_json::from_str(fleet.success()).unwrap();
    let preview = report["environments"].as_array().unwrap().iter().find(|e| e["environment"] == "preview").unwrap();
    let summary = &preview["report"]["summary"];
    assert!(summary["create"].as_u64().unwrap() >= 3, "{preview}");
    assert_eq!((summary["update"].as_u64(), summary["delete"].as_u64()), (Some(0), Some(0)), "{preview}");
    let comment = repo.weaver_env(&["diff", "--env", "dev,preview", "--base", "HEAD", "-o", "markdown"], &no_cluster);
    assert!(comment.success().contains("compared with the render of commit"), "{}", comment.stdout);
    // Nothing changed between a commit and itself.
    let same =
        repo.weaver_env(&["diff", "--env", "dev", "--rev", "HEAD", "--base", "HEAD", "--exit-code"], &no_cluster);
    assert_eq!(same.code, 0, "{}\n{}", same.stdout, same.stderr);
    let bad = repo.weaver_env(&["diff", "--env", "dev", "--base", "nope"], &no_cluster);
    assert!(bad.failure().contains("unknown revision `nope` (--base)"), "{}", bad.stderr);
}
