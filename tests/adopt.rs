//! Adoption from Helm: a chart installed by the real `helm` binary (`$WEAVER_HELM`), then
//! taken over by weaver's release of the same name. Against the fake API server, or the real
//! cluster of WEAVER_TEST_KUBECONFIG, unchanged.

use crate::common;

use std::path::PathBuf;

use common::Repo;
use common::cluster::TestCluster;
use serde_json::{Value, json};

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";
const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
  mode: {{ .Values.mode | quote }}
";
const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 8080
";
/// Only helm renders it (`legacy: true`): weaver's release no longer does.
const LEGACY: &str = "{{- if .Values.legacy }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-legacy
data:
  old: \"yes\"
{{- end }}
";
/// A Secret, so that Helm's release record holds a secret value (and the test can check that
/// weaver never shows it).
const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-token
stringData:
  token: {{ .Values.token | quote }}
";
const TOKEN: &str = "s3cr3t-helm-token-value";

struct Adopt {
    cluster: TestCluster,
    repo: Repo,
    ns: String,
    helm: PathBuf,
}

impl Adopt {
    /// Chart `web` in a repository whose `dev` environment deploys it into a namespace of the
    /// test cluster, installed there by helm (greeting `hello-helm`, with the legacy ConfigMap).
    fn installed() -> Option<Adopt> {
        let helm = common::helm_or_skip()?;
        let cluster = TestCluster::start();
        let ns = cluster.namespace("shop");
        let lock = cluster.namespace("lock");
        let repo = Repo::empty();
        repo.write("charts/web/Chart.yaml", CHART)
            .write("charts/web/values.yaml", "greeting: hello\nmode: normal\nlegacy: false\ntoken: none\n")
            .write("charts/web/templates/config.yaml", CONFIG)
            .write("charts/web/templates/service.yaml", SERVICE)
            .write("charts/web/templates/legacy.yaml", LEGACY)
            .write("charts/web/templates/secret.yaml", SECRET)
            .write(
                "environments/dev.yaml",
                &format!(
                    "namespace: {ns}\ncluster:\n  lockNamespace: {lock}\nreleases:\n  - name: web\n    chart: web\n    values: {{ greeting: hello-weaver, token: {TOKEN} }}\n"
                ),
            );
        let adopt = Adopt { cluster, repo, ns, helm };
        adopt.helm(&[
            "install",
            "web",
            "charts/web",
            "--set",
            "greeting=hello-helm,legacy=true",
            "--set-string",
            &format!("token={TOKEN}"),
        ]);
        Some(adopt)
    }

    fn helm(&self, args: &[&str]) -> String {
        let home = self.repo.path().join(".helm-home");
        let out = weaver_test_support::helm::command(&self.helm, &home)
            .current_dir(self.repo.path())
            .args(args)
            .args(["-n", &self.ns, "--kubeconfig"])
            .arg(self.cluster.client_go_kubeconfig())
            .env_remove("KUBECONFIG")
            .env("HOME", &home)
            .output()
            .expect("run helm");
        assert!(out.status.success(), "helm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn weaver(&self, args: &[&str]) -> common::Run {
        self.repo.weaver_on(&self.cluster, args)
    }

    fn live(&self, kind: &str, name: &str) -> Option<Value> {
        self.cluster.get(&json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": self.ns}}))
    }

    /// The names of Helm's release records in the namespace.
    fn helm_records(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cluster
            .list("v1", "Secret", "secrets", &self.ns)
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .filter(|name| name.starts_with("sh.helm.release.v1.web."))
            .collect();
        names.sort();
        names
    }
}

/// The fields (`f:…` paths, flattened) `manager` owns in `object`.
fn owned_by(object: &Value, manager: &str) -> String {
    let entries = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    entries.iter().filter(|e| e["manager"] == manager).map(|e| e["fieldsV1"].to_string()).collect()
}

fn no_secret(out: &str) {
    assert!(!out.contains(TOKEN), "the token appears:\n{out}");
    assert!(!out.contains("H4sI"), "a gzip'd payload (a Helm release record?) appears:\n{out}");
}

#[track_caller]
fn assert_code(run: &common::Run, code: i32) {
    assert_eq!(run.code, code, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

#[test]
fn diff_says_once_that_the_helm_release_is_adopted_and_apply_takes_its_fields() {
    let Some(adopt) = Adopt::installed() else { return };
    let ns = &adopt.ns;
    let helmed = adopt.live("ConfigMap", "web-config").expect("helm installed web-config");
    assert!(owned_by(&helmed, "helm").contains("f:greeting"), "helm owns data.greeting: {helmed}");

    let diff = adopt.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_code(&diff, 2);
    let text = &diff.stdout;
    no_secret(&format!("{}{}", diff.stdout, diff.stderr));
    assert!(
        text.starts_with("release `web` will be adopted from Helm release `web` (revision 1): its 3 object(s) Helm installed take weaver's labels, and their fields move from field manager `helm` to `weaver`"),
        "{text}"
    );
    assert!(text.contains(&format!("release `web`: 1 object(s) Helm installed are not rendered, and are left as they are (weaver prunes only what it applied): v1 ConfigMap {ns}/web-legacy\n")), "{text}");
    assert_eq!(text.matches("will be adopted").count(), 1, "{text}");
    // The real change is shown; the labels the adoption changes on every object are not.
    assert!(text.contains(&format!("~ v1 ConfigMap {ns}/web-config (release web)\n")), "{text}");
    assert!(text.contains("-  greeting: hello-helm\n+  greeting: hello-weaver\n"), "{text}");
    assert!(!text.contains("web-token"), "the Secret does not change: {text}");
    assert!(!text.contains("managed-by") && !text.contains("weaver.example.com/"), "label noise: {text}");
    assert!(!text.contains("Service"), "the Service does not change: {text}");
    assert!(text.ends_with("0 to create, 1 to update, 0 to delete, 2 unchanged; 3 adopted from Helm\n"), "{text}");

    let server = adopt.weaver(&["diff", "--env", "dev", "--server-side"]);
    assert!(!server.success().contains("conflict"), "adopted objects are applied with force: {}", server.stdout);
    no_secret(&format!("{}{}", server.stdout, server.stderr));

    let json_run = adopt.weaver(&["diff", "--env", "dev", "-o", "json"]);
    no_secret(&format!("{}{}", json_run.stdout, json_run.stderr));
    let json: Value = serde_json::from_str(json_run.success()).unwrap();
    assert_eq!(
        json["adoptions"],
        json!([{"release": "web", "namespace": ns, "helmRelease": "web", "helmRevision": 1, "helmStatus": "deployed",
            "objects": 3, "notRendered": [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "name": "web-legacy"}]}])
    );
    let adopted: Vec<&str> = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["adopted"] == true)
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(adopted.len(), 3, "{json}");

    let apply = adopt.weaver(&["apply", "--env", "dev"]);
    let out = apply.success();
    no_secret(&format!("{out}{}", apply.stderr));
    assert!(out.contains("release web: adopted from Helm release `web` (revision 1): 3 object(s) taken over from field manager `helm`\n"), "{out}");
    assert!(out.contains("the records of Helm release `web` (revision 1) are kept (helm still lists it); --forget-helm-release deletes them"), "{out}");
    let config = adopt.live("ConfigMap", "web-config").unwrap();
    assert_eq!(config["data"]["greeting"], "hello-weaver");
    assert_eq!(config["metadata"]["labels"]["app.kubernetes.io/managed-by"], "weaver");
    assert_eq!(config["metadata"]["labels"]["weaver.example.com/release"], "web");
    assert!(owned_by(&config, "weaver").contains("f:greeting"), "weaver owns data.greeting: {config}");
    assert!(!owned_by(&config, "helm").contains("f:greeting"), "helm no longer owns data.greeting: {config}");
    assert!(!owned_by(&config, "helm").contains("f:managed-by"), "helm no longer owns the label: {config}");
    // Fields only helm set stay, as after `kubectl apply --server-side --force-conflicts`.
    assert_eq!(config["metadata"]["annotations"]["meta.helm.sh/release-name"], "web");
    // What weaver does not render is left as it is.
    let legacy = adopt.live("ConfigMap", "web-legacy").expect("web-legacy is not pruned");
    assert_eq!(legacy["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm");
    assert_eq!(adopt.helm_records(), ["sh.helm.release.v1.web.v1"]);

    let history: Value =
        serde_json::from_str(adopt.weaver(&["history", "--env", "dev", "web", "-o", "json"]).success()).unwrap();
    assert_eq!(history["revisions"][0]["adoptedFrom"], json!({"helmRelease": "web", "helmRevision": 1}));

    // Adopted: the release has a record now, so nothing more to say, or to do.
    let again = adopt.weaver(&["diff", "--env", "dev", "--exit-code"]);
    assert_code(&again, 0);
    assert!(!again.stdout.contains("Helm"), "{}", again.stdout);

    // Helm's records go when asked, after the adoption as well.
    let forget = adopt.weaver(&["apply", "--env", "dev", "--forget-helm-release"]);
    let out = forget.success();
    assert!(out.contains("release web: deleted the records of Helm release `web` (revision 1) (--forget-helm-release): sh.helm.release.v1.web.v1\n"), "{out}");
    assert_eq!(adopt.helm_records(), Vec::<String>::new());
    assert!(!adopt.helm(&["list", "-q"]).contains("web"), "helm still lists the release");
}

#[test]
fn forget_helm_release_deletes_helm_records_only_after_the_whole_release_applied() {
    let Some(adopt) = Adopt::installed() else { return };
    let ns = &adopt.ns;
    // Helm upgraded once: both revisions' records go.
    adopt.helm(&["upgrade", "web", "charts/web", "--reuse-values", "--set", "mode=upgraded"]);
    assert_eq!(adopt.helm_records(), ["sh.helm.release.v1.web.v1", "sh.helm.release.v1.web.v2"]);
    // Another release-less object the weaver release also renders, owned by another manager
    // with another value: not Helm's, so no force: it conflicts, and the release fails.
    adopt.repo.write(
        "charts/web/templates/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  owner: weaver\n",
    );
    let extra = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": ns},
        "data": {"owner": "someone-else"}});
    adopt.cluster.apply(std::slice::from_ref(&extra), "someone-else");

    let failed = adopt.weaver(&["apply", "--env", "dev", "--forget-helm-release"]);
    assert_code(&failed, 1);
    let out = &failed.stdout;
    no_secret(&format!("{out}{}", failed.stderr));
    assert!(out.contains(&format!("failed v1 ConfigMap {ns}/extra (release web): ")), "{out}");
    assert!(out.contains("conflict"), "{out}");
    assert!(out.contains("release web: adopted from Helm release `web` (revision 2): "), "{out}");
    assert!(out.contains(" not (failed or not applied: they are still Helm's)"), "{out}");
    assert!(out.contains("release web: the records of Helm release `web` (revision 2) were not deleted (--forget-helm-release): release `web` did not apply completely: 1 object(s) failed to apply; rerun the apply to finish the adoption\n"), "{out}");
    assert_eq!(adopt.helm_records().len(), 2, "Helm's records stay after a failed apply");
    assert_eq!(adopt.live("ConfigMap", "extra").unwrap()["data"]["owner"], "someone-else");

    // The other manager's object goes; the rerun finishes the adoption and forgets Helm's release.
    adopt.cluster.delete(&extra);
    let rerun = adopt.weaver(&["apply", "--env", "dev", "--forget-helm-release", "-o", "json"]);
    let report: Value = serde_json::from_str(rerun.success()).unwrap();
    let helm = &report["releases"][0]["helm"];
    assert_eq!(helm["release"], "web");
    assert_eq!(helm["revision"], 2);
    assert_eq!(helm["adoptedBefore"], false);
    assert_eq!(helm["notTaken"], 0);
    assert_eq!(
        helm["records"],
        json!({"state": "deleted", "secrets": ["sh.helm.release.v1.web.v1", "sh.helm.release.v1.web.v2"]})
    );
    assert_eq!(adopt.helm_records(), Vec::<String>::new());
    let service = adopt.live("Service", "web").unwrap();
    assert_eq!(service["metadata"]["labels"]["weaver.example.com/release"], "web");
    // weaver's value, taken from helm's manager with force.
    assert_eq!(adopt.live("ConfigMap", "web-config").unwrap()["data"]["mode"], "normal");
}

#[test]
fn an_adopted_release_runs_its_upgrade_hooks_not_its_install_hooks() {
    let Some(adopt) = Adopt::installed() else { return };
    let hook = |name: &str, event: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    helm.sh/hook: {event}\ndata:\n  ran: \"yes\"\n"
        )
    };
    adopt.repo.write("charts/web/templates/install-hook.yaml", &hook("install-hook", "pre-install"));
    adopt.repo.write("charts/web/templates/upgrade-hook.yaml", &hook("upgrade-hook", "pre-upgrade"));
    let json: Value = serde_json::from_str(adopt.weaver(&["diff", "--env", "dev", "-o", "json"]).success()).unwrap();
    let runs = |name: &str| {
        json["hooks"].as_array().unwrap().iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("{json}"))["runs"]
            .clone()
    };
    assert_eq!(runs("install-hook"), json!([]), "Helm installed the release already");
    assert_eq!(runs("upgrade-hook"), json!(["pre-upgrade"]));
    adopt.weaver(&["apply", "--env", "dev"]).success();
    assert!(adopt.live("ConfigMap", "install-hook").is_none(), "the install hook did not run");
    assert!(adopt.live("ConfigMap", "upgrade-hook").is_some(), "the upgrade hook ran");
}
