//! Helm's `lookup` reading the live cluster in `weaver diff` and `apply`, against the fake API
//! server or a real cluster (WEAVER_TEST_KUBECONFIG); nothing in `render`; the objects of a
//! `--live-from` file.

use crate::common;

use common::cluster::TestCluster;
use common::{Repo, Run};
use serde_json::{Value, json};

/// A Helm chart that keeps a generated password across upgrades, as charts do with `lookup`,
/// and reports what two other lookups found (a list, and an object that does not exist).
const SECRET_TEMPLATE: &str = r#"{{- $existing := lookup "v1" "Secret" .Release.Namespace "app-password" }}
apiVersion: v1
kind: Secret
metadata:
  name: app-password
type: Opaque
data:
  {{- if $existing }}
  password: {{ index $existing.data "password" }}
  {{- else }}
  password: {{ randAlphaNum 24 | b64enc }}
  {{- end }}
"#;

const REPORT_TEMPLATE: &str = r#"{{- $maps := lookup "v1" "ConfigMap" .Release.Namespace "" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-lookups
data:
  listKind: {{ $maps.kind | default "nothing" | quote }}
  found: "{{ range $maps.items }}{{ if eq .metadata.name "seed" }}seed{{ end }}{{ end }}"
  absent: {{ lookup "v1" "ConfigMap" .Release.Namespace "no-such-map" | toJson | quote }}
"#;

struct Chart {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
}

impl Chart {
    fn new() -> Chart {
        let cluster = TestCluster::start();
        let ns = cluster.namespace("lookup");
        let repo = Repo::empty();
        repo.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n")
            .write("charts/app/templates/secret.yaml", SECRET_TEMPLATE)
            .write("charts/app/templates/report.yaml", REPORT_TEMPLATE)
            .write(
                "environments/dev.yaml",
                &format!(
                    "namespace: {ns}\ncluster:\n  lockNamespace: {ns}\nreleases:\n  - name: app\n    chart: app\n"
                ),
            );
        Chart { cluster, repo, ns }
    }

    fn weaver(&self, args: &[&str]) -> Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    fn live(&self, kind: &str, name: &str) -> Option<Value> {
        self.cluster.get(&json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": self.ns}}))
    }

    fn password(&self) -> String {
        let secret = self.live("Secret", "app-password").expect("the Secret is applied");
        secret["data"]["password"].as_str().expect("a password").to_string()
    }
}

#[test]
fn a_generated_password_kept_with_lookup_diffs_clean_after_apply_twice() {
    let chart = Chart::new();
    // A ConfigMap weaver does not manage: lookup sees every object, not only the release's.
    chart.cluster.create(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "seed", "namespace": chart.ns}, "data": {"k": "v"}}));

    let run = chart.weaver(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let password = chart.password();
    let report = chart.live("ConfigMap", "app-lookups").expect("the report is applied");
    assert_eq!(report["data"]["listKind"], "ConfigMapList");
    assert_eq!(report["data"]["found"], "seed", "the list holds the unmanaged ConfigMap: {report}");
    assert_eq!(report["data"]["absent"], "{}");

    for round in 1..=2 {
        if let Some(fake) = chart.cluster.fake("counting the lookups' requests") {
            fake.clear_requests();
        }
        let run = chart.weaver(&["diff", "--env", "dev", "--exit-code"]);
        assert_eq!(run.code, 0, "diff {round} after apply: {}\n{}", run.stdout, run.stderr);
        let decoded = String::from_utf8(base64_decode(&password)).unwrap();
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(!output.contains(&password) && !output.contains(&decoded), "diff {round} shows the password");
        if let Some(fake) = chart.cluster.fake("counting the lookups' requests") {
            let requests = fake.requests();
            let lists = |kind: &str| {
                requests
                    .iter()
                    .filter(|r| r.method == "GET" && r.path == format!("/api/v1/namespaces/{}/{kind}", chart.ns))
                    .map(|r| r.query.clone())
                    .collect::<Vec<String>>()
            };
            // One LIST per (resource, namespace) serves every lookup and the diff's observation.
            for kind in ["secrets", "configmaps"] {
                let queries = lists(kind);
                assert_eq!(queries.len(), 1, "{kind} listed once: {queries:?}");
                assert!(!queries[0].contains("labelSelector"), "the lookups' LIST has no selector: {queries:?}");
            }
            let gets: Vec<&str> = requests
                .iter()
                .filter(|r| r.method == "GET" && (r.path.contains("/secrets/") || r.path.contains("/configmaps/")))
                .map(|r| r.path.as_str())
                .collect();
            assert!(gets.is_empty(), "no GET per lookup: {gets:?}");
        }
    }
    // A second apply keeps the password too.
    let run = chart.weaver(&["apply", "--env", "dev"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(chart.password(), password);

    // A template error quoting a looked-up value shows it redacted, encoded or not.
    chart.repo.write(
        "charts/app/templates/fail.yaml",
        r#"{{- $s := lookup "v1" "Secret" .Release.Namespace "app-password" }}
{{- if $s }}{{ fail (printf "refusing %s / %s" (index $s.data "password") (index $s.data "password" | b64dec)) }}{{ end }}
"#,
    );
    let run = chart.weaver(&["diff", "--env", "dev"]);
    let decoded = String::from_utf8(base64_decode(&password)).unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("refusing"), "{}", run.stderr);
    assert!(!run.stderr.contains(&password) && !run.stderr.contains(&decoded), "{}", run.stderr);
}

/// An apply waiting for the environment's lock looks up only once it holds it: what a
/// concurrent apply (here, the test) created meanwhile is what its lookups find.
#[test]
fn apply_looks_up_once_it_holds_the_lock() {
    let chart = Chart::new();
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "weaver-lock-dev", "namespace": chart.ns},
        "spec": {"holderIdentity": "other@ci pid 1", "acquireTime": now, "renewTime": now,
                 "leaseDurationSeconds": 300},
    });
    chart.cluster.create(&lease);
    let kubeconfig = chart.cluster.kubeconfig().to_str().unwrap().to_string();
    let mut apply = chart.repo.spawn(&["--kubeconfig", &kubeconfig, "apply", "--env", "dev", "--lock-timeout", "2m"]);
    let mut stderr = std::io::BufReader::new(apply.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("waiting for the lock") {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "weaver ended before waiting for the lock:\n{seen}");
        seen.push_str(&line);
    }
    // What the lock's holder installed while this apply waited.
    let kept = "a2VwdC1ieS10aGUtaG9sZGVy"; // kept-by-the-holder
    chart.cluster.create(&json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app-password", "namespace": chart.ns}, "data": {"password": kept}}));
    chart.cluster.delete(&lease);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = apply.wait().unwrap();
    assert!(status.success(), "{seen}{rest}");
    assert_eq!(chart.password(), kept, "the apply looked up before it held the lock");
}

/// A chart that refuses to render when its lookup finds nothing, as `helm template` refuses
/// it, is diffed from what the cluster has; what that render gives is what gets validated.
#[test]
fn a_chart_failing_when_lookup_finds_nothing_diffs_against_the_cluster() {
    let chart = Chart::new();
    chart.repo.write(
        "charts/app/templates/copy.yaml",
        r#"{{- $settings := lookup "v1" "ConfigMap" .Release.Namespace "settings" }}
{{- if not $settings }}{{ fail "ConfigMap settings must exist before this chart is installed" }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: copy
data:
  value: {{ $settings.data.value | quote }}
{{- if eq $settings.data.value "invalid" }}
bogus: true
{{- end }}
"#,
    );
    let run = chart.repo.weaver(&["render", "--env", "dev"]);
    assert!(run.failure().contains("ConfigMap settings must exist"), "{}", run.stderr);
    let run = chart.weaver(&["diff", "--env", "dev"]);
    assert!(run.failure().contains("ConfigMap settings must exist"), "the cluster has none either: {}", run.stderr);

    let settings = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": chart.ns}, "data": {"value": "from-the-cluster"}});
    chart.cluster.create(&settings);
    let run = chart.weaver(&["diff", "--env", "dev", "-o", "json", "--exit-code"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let copy = plan["objects"].as_array().unwrap().iter().find(|o| o["name"] == "copy").expect("copy is planned");
    assert_eq!(copy["action"], "create", "{copy}");
    assert!(copy["diff"].as_str().unwrap().contains("from-the-cluster"), "{copy}");

    // The render for the cluster is validated: its unknown field is refused, named.
    chart.cluster.merge_patch(&settings, &json!({"data": {"value": "invalid"}}), "test");
    let run = chart.weaver(&["diff", "--env", "dev"]);
    let stderr = run.failure();
    assert!(stderr.contains("ConfigMap") && stderr.contains("copy") && stderr.contains(".bogus"), "{stderr}");
}

#[test]
fn render_finds_nothing_and_live_from_finds_the_files_objects() {
    let chart = Chart::new();
    let rendered = |args: &[&str]| -> Vec<Value> {
        let run = chart.repo.weaver(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_saphyr::from_multiple::<Value>(&run.stdout).unwrap().into_iter().filter(|v| !v.is_null()).collect()
    };
    let find = |objects: &[Value], name: &str| objects.iter().find(|o| o["metadata"]["name"] == name).cloned().unwrap();

    // No cluster: every lookup is empty, and the password is generated (and shown redacted).
    let objects = rendered(&["render", "--env", "dev"]);
    let report = find(&objects, "app-lookups");
    assert_eq!((report["data"]["listKind"].as_str(), report["data"]["found"].as_str()), (Some("nothing"), Some("")));

    // --live-from: lookup reads the file's objects.
    let live = chart.repo.path().join("live.yaml");
    let kept = "a2VwdC1wYXNzd29yZA=="; // kept-password
    std::fs::write(
        &live,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-password\n  namespace: {ns}\ndata:\n  password: {kept}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed\n  namespace: {ns}\n",
            ns = chart.ns
        ),
    )
    .unwrap();
    let run = chart.repo.weaver(&["diff", "--env", "dev", "--live-from", live.to_str().unwrap(), "-o", "json"]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    assert!(!run.stdout.contains(kept) && !run.stdout.contains("kept-password"), "the looked-up value is redacted");
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let object = |name: &str| {
        plan["objects"].as_array().unwrap().iter().find(|o| o["name"] == name).cloned().unwrap_or(Value::Null)
    };
    // The Secret kept the file's password: its data is not among the changes.
    let secret = object("app-password");
    let paths: Vec<&str> = secret["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert!(!paths.is_empty() && !paths.iter().any(|p| p.starts_with("data")), "{secret}");
    // The list lookup found the file's ConfigMap.
    assert!(object("app-lookups")["diff"].as_str().unwrap().contains("+  found: seed"), "{}", run.stdout);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}
