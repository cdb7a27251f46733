//! Checks `weaver_patch` against kubectl: `kubectl kustomize` (kustomize's
//! patches) and `kubectl patch --local` (the Kubernetes strategic merge patch
//! implementation). Works with kubectl 1.20 (Debian's) and later; without
//! kubectl the test is skipped, unless `WEAVER_REQUIRE_INTEROP=1` makes that a
//! failure.
//!
//! The kyaml-based kustomize of kubectl 1.21+ and `kubectl patch` disagree in
//! places: weaver's `Flavor::Kustomize` is checked against the one, `Flavor::Kubernetes`
//! against the other. Where weaver departs from one of them on purpose, the case says so.

use crate::common::skip;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use weaver_patch::json6902;
use weaver_patch::strategic::{self, Flavor};

enum Oracle {
    /// Checked against `kubectl kustomize` and `kubectl patch`.
    Both,
    /// Checked against `kubectl kustomize` only (when it is kyaml-based);
    /// weaver's Kubernetes flavor differs from `kubectl patch` because …
    Kustomize(&'static str),
    /// Checked against `kubectl patch` only (and kustomize 2); weaver's kustomize
    /// flavor differs from the kyaml-based `kubectl kustomize` because …
    KubectlPatch(&'static str),
}

struct Case {
    name: &'static str,
    base: &'static str,
    /// A strategic merge patch (a YAML object) or JSON patch operations (a YAML list).
    patch: &'static str,
    oracle: Oracle,
}

const DEPLOYMENT: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
  finalizers: [example.com/a, example.com/b]
spec:
  replicas: 1
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1}
  template:
    spec:
      initContainers:
      - {name: migrate, image: 'migrate:1'}
      - {name: wait, image: 'wait:1'}
      containers:
      - name: app
        image: 'app:1'
        args: ['--a', '--b']
        env:
        - {name: A, value: '1'}
        - {name: B, value: '2'}
        ports:
        - {containerPort: 80}
        - {containerPort: 53, protocol: UDP}
      - name: sidecar
        image: 'side:1'
      volumes:
      - name: data
        emptyDir: {}
      - name: conf
        configMap: {name: conf}
";

const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
";

// batch/v1beta1: kubectl 1.20 (Debian's) predates batch/v1 CronJob, and the merge
// keys only depend on the API group.
const CRONJOB: &str = "
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: job, image: 'job:1'}
          - {name: log, image: 'log:1'}
";

const WEBHOOKS: &str = "
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: checks
webhooks:
- name: a.example.com
  clientConfig:
    service: {name: checks, namespace: system, path: /validate}
  admissionReviewVersions: [v1]
  sideEffects: None
- name: b.example.com
  clientConfig: {url: 'https://example.com/b'}
  admissionReviewVersions: [v1]
  sideEffects: None
";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "container merge by name leaves the other container alone",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: 'app:2'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "patching the second container: Kubernetes keeps the order, kustomize moves it first",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: sidecar, image: 'side:2'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "init containers keep their order",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      initContainers:\n      - {name: wait, image: 'wait:2'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "env merges by name",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - {name: A, value: '11'}\n        - {name: C, value: '3'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "a new env variable: after its neighbour in Kubernetes, first in kustomize",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - {name: B, value: '22'}\n        - {name: C, value: '3'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "new env, ports, volume mounts and volumes",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env: [{name: X, value: x}, {name: B, value: '22'}]\n        ports: [{containerPort: 90}]\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n      volumes: [{name: tmp, emptyDir: {}}]\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "webhooks merge by name",
            base: WEBHOOKS,
            patch: "webhooks:\n- {name: b.example.com, failurePolicy: Ignore}\n- {name: a.example.com, timeoutSeconds: 5}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "service account secrets merge by name",
            base: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\nsecrets:\n- {name: token-a}\n",
            patch: "secrets:\n- {name: token-b}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$patch: replace on an element",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: sidecar, image: 'side:2', $patch: replace}\n      - {name: proxy, image: 'proxy:1', $patch: replace}\n",
            oracle: Oracle::Kustomize(
                "kubectl patch refuses `$patch: replace` on a list element; weaver replaces that element",
            ),
        },
        Case {
            name: "adding a container",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: proxy, image: 'proxy:1', ports: [{containerPort: 15001}]}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "nulls in a new container are dropped",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: proxy, image: 'proxy:1', command: null}\n",
            oracle: Oracle::Kustomize("kubectl patch copies `command: null` into the new container"),
        },
        Case {
            name: "deleting a container with $patch: delete",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: sidecar, $patch: delete}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "replacing a whole list with $patch: replace",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      volumes:\n      - $patch: replace\n      - {name: cache, emptyDir: {medium: Memory}}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "null deletes map keys and fields",
            base: DEPLOYMENT,
            patch: "metadata:\n  labels: {tier: null, absent: null}\nspec:\n  strategy: {rollingUpdate: null}\n  template:\n    spec:\n      containers:\n      - {name: app, args: null}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$patch: replace on a map",
            base: DEPLOYMENT,
            patch: "metadata:\n  labels: {$patch: replace, only: one}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$patch: delete on a map removes it",
            base: DEPLOYMENT,
            patch: "metadata:\n  labels: {$patch: delete}\n",
            oracle: Oracle::Kustomize("kubectl patch leaves `labels: {}` behind"),
        },
        Case {
            name: "container ports merge by containerPort",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        ports:\n        - {containerPort: 80, name: http}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "a port without protocol is the TCP port",
            base: "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - {port: 80, protocol: TCP, targetPort: 8080}\n",
            patch: "spec:\n  ports:\n  - {port: 80, targetPort: 9090}\n",
            oracle: Oracle::KubectlPatch(
                "kustomize silently ignores a port patch without `protocol` when the base port spells out `protocol: TCP`",
            ),
        },
        Case {
            name: "container ports merge by containerPort and protocol",
            base: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: dns\nspec:\n  containers:\n  - name: dns\n    ports:\n    - {containerPort: 53}\n    - {containerPort: 53, protocol: UDP}\n",
            patch: "spec:\n  containers:\n  - name: dns\n    ports:\n    - {containerPort: 53, protocol: UDP, name: dns-udp}\n",
            oracle: Oracle::Kustomize("kubectl patch matches ports by containerPort alone and patches the TCP port"),
        },
        Case {
            name: "volumes merge by name",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      volumes:\n      - {name: data, emptyDir: {sizeLimit: 1Gi}}\n      - {name: tmp, emptyDir: {}}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "service ports merge by port",
            base: SERVICE,
            patch: "spec:\n  ports:\n  - {port: 80, targetPort: 9090}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "args is atomic and replaced",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      containers:\n      - {name: app, args: ['--c']}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "finalizers are unioned",
            base: DEPLOYMENT,
            patch: "metadata:\n  finalizers: [example.com/c, example.com/a]\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "cron job pod template merges containers by name",
            base: CRONJOB,
            patch: "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - {name: job, image: 'job:2'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$deleteFromPrimitiveList",
            base: DEPLOYMENT,
            patch: "metadata:\n  $deleteFromPrimitiveList/finalizers: [example.com/a]\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$retainKeys",
            base: DEPLOYMENT,
            patch: "spec:\n  strategy:\n    $retainKeys: [type]\n    type: Recreate\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "$setElementOrder",
            base: DEPLOYMENT,
            patch: "spec:\n  template:\n    spec:\n      $setElementOrder/containers: [{name: sidecar}, {name: proxy}, {name: app}]\n      containers:\n      - {name: proxy, image: 'proxy:1'}\n",
            oracle: Oracle::Both,
        },
        Case {
            name: "JSON patch: add, replace and remove",
            base: DEPLOYMENT,
            patch: "
- {op: replace, path: /spec/replicas, value: 3}
- {op: add, path: /metadata/labels/env, value: prod}
- {op: add, path: /spec/template/spec/containers/-, value: {name: proxy, image: 'proxy:1'}}
- {op: remove, path: /spec/template/spec/containers/0/env/0}
",
            oracle: Oracle::Both,
        },
        Case {
            name: "JSON patch: test, move and copy",
            base: DEPLOYMENT,
            patch: "
- {op: test, path: /spec/template/spec/containers/1/name, value: sidecar}
- {op: copy, from: /spec/template/spec/containers/0/env, path: /spec/template/spec/containers/1/env}
- {op: move, from: /spec/template/spec/initContainers/1, path: /spec/template/spec/initContainers/0}
- {op: add, path: /metadata/labels/app.kubernetes.io~1name, value: web}
",
            oracle: Oracle::Both,
        },
        Case {
            name: "JSON patch: kubectl's negative indices, replace of a missing key, test for null",
            base: DEPLOYMENT,
            patch: "
- {op: replace, path: /metadata/annotations, value: {team: web}}
- {op: test, path: /metadata/namespace, value: null}
- {op: remove, path: /spec/template/spec/containers/0/args/-1}
- {op: add, path: /spec/template/spec/containers/-1, value: {name: proxy}}
",
            oracle: Oracle::Both,
        },
        Case {
            name: "JSON patch: a failing operation fails the patch",
            base: SERVICE,
            patch: "- {op: remove, path: /spec/clusterIP}\n",
            oracle: Oracle::Both,
        },
    ]
}

#[test]
fn patches_match_kubectl() {
    let Some(kubectl) = kubectl() else { return };
    eprintln!("checking patches against kubectl {}", kubectl.version);
    let mut failures = Vec::new();
    for case in cases() {
        let base: Value = serde_saphyr::from_str(case.base).unwrap();
        let patch: Value = serde_saphyr::from_str(case.patch).unwrap();
        let ours = |flavor: Flavor| {
            let mut ours = base.clone();
            match patch {
                Value::Array(_) => json6902::apply(&mut ours, &patch),
                _ => strategic::merge_as(
                    flavor,
                    &mut ours,
                    &patch,
                    str_field(&base, "apiVersion"),
                    str_field(&base, "kind"),
                ),
            }
            .map(|()| ours)
            .map_err(|err| err.to_string())
        };
        // kustomize 2 (before kubectl 1.21) merges like kubectl patch.
        let kustomize_flavor = if kubectl.kyaml { Flavor::Kustomize } else { Flavor::Kubernetes };

        let (check_kustomize, check_patch) = match case.oracle {
            Oracle::Both => (true, true),
            Oracle::Kustomize(why) if kubectl.kyaml => {
                eprintln!("{}: not checked against kubectl patch: {why}", case.name);
                (true, false)
            }
            Oracle::Kustomize(why) => {
                eprintln!("{}: not checked: {why}, and this kustomize merges like kubectl patch", case.name);
                (false, false)
            }
            // This kustomize merges like kubectl patch, without kyaml's quirks.
            Oracle::KubectlPatch(_) if !kubectl.kyaml => (true, true),
            Oracle::KubectlPatch(why) => {
                eprintln!("{}: not checked against kubectl kustomize: {why}", case.name);
                (false, true)
            }
        };
        let mut theirs = Vec::new();
        if check_kustomize {
            theirs.push(("kubectl kustomize", ours(kustomize_flavor), kustomize(&kubectl, &base, &patch)));
        }
        if check_patch {
            theirs.push(("kubectl patch", ours(Flavor::Kubernetes), kubectl_patch(&base, &patch)));
        }
        for (tool, ours, result) in theirs {
            match (&ours, result) {
                (Ok(ours), Ok(theirs)) if *ours == theirs => {}
                (Err(_), Err(_)) => {}
                (ours, theirs) => failures.push(format!(
                    "{}: weaver and {tool} disagree\n  weaver: {}\n  {tool}: {}",
                    case.name,
                    show(ours),
                    show(&theirs)
                )),
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn str_field<'v>(object: &'v Value, field: &str) -> &'v str {
    object[field].as_str().unwrap_or_default()
}

fn show(result: &Result<Value, String>) -> String {
    match result {
        Ok(value) => value.to_string(),
        Err(err) => format!("error: {err}"),
    }
}

struct Kubectl {
    version: String,
    /// kubectl 1.21 and later embed kustomize 4 or later, which reads `patches:`
    /// and merges with kyaml. Older ones embed kustomize 2, which reads only the
    /// legacy patch fields and merges like `kubectl patch`.
    kyaml: bool,
}

/// The installed kubectl, or `None` when the test should be skipped.
fn kubectl() -> Option<Kubectl> {
    let skip = |reason: String| {
        skip::interop_or_skip(Some(&reason));
        None
    };
    let out = match run(weaver_test_support::kubectl::command(crate::common::tools::kubectl())
        .args(["version", "--client", "-o", "json"]))
    {
        Ok(out) => out,
        Err(err) => return skip(err),
    };
    let info: Value = serde_json::from_str(&out).unwrap();
    let client = &info["clientVersion"];
    let minor: String = str_field(client, "minor").chars().take_while(char::is_ascii_digit).collect();
    Some(Kubectl {
        version: str_field(client, "gitVersion").to_owned(),
        kyaml: str_field(client, "major") != "1" || minor.parse::<u32>().is_ok_and(|minor| minor >= 21),
    })
}

fn run(command: &mut Command) -> Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.output().map_err(|err| format!("{program} cannot be run ({err}; set $WEAVER_KUBECTL)"))?;
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn write(dir: &Path, name: &str, value: &Value) {
    // JSON is YAML, and leaves no doubt about how scalars are typed.
    std::fs::write(dir.join(name), value.to_string()).unwrap();
}

/// Strategic merge patches name their target themselves; JSON patches get one
/// in the kustomization.
fn kustomize(kubectl: &Kubectl, base: &Value, patch: &Value) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.yaml", base);
    let (kind, name) = (str_field(base, "kind"), str_field(&base["metadata"], "name"));
    let patches = match (patch.is_array(), kubectl.kyaml) {
        (false, true) => "patches: [{path: patch.yaml}]".to_owned(),
        (false, false) => "patchesStrategicMerge: [patch.yaml]".to_owned(),
        (true, true) => {
            format!("patches: [{{path: patch.yaml, target: {{kind: {kind}, name: {name}}}}}]")
        }
        (true, false) => {
            let (group, version) = str_field(base, "apiVersion").rsplit_once('/').unwrap_or(("", "v1"));
            format!(
                "patchesJson6902: [{{path: patch.yaml, target: {{group: '{group}', version: {version}, kind: {kind}, name: {name}}}}}]"
            )
        }
    };
    let patch = if patch.is_array() { patch.clone() } else { with_identity(base, patch) };
    write(dir.path(), "patch.yaml", &patch);
    std::fs::write(dir.path().join("kustomization.yaml"), format!("resources: [base.yaml]\n{patches}\n")).unwrap();
    let out =
        run(weaver_test_support::kubectl::command(crate::common::tools::kubectl()).arg("kustomize").arg(dir.path()))?;
    Ok(serde_saphyr::from_str(&out).unwrap())
}

fn kubectl_patch(base: &Value, patch: &Value) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.yaml", base);
    let (kind, patch) =
        if patch.is_array() { ("json", patch.clone()) } else { ("strategic", with_identity(base, patch)) };
    let out = run(weaver_test_support::kubectl::command(crate::common::tools::kubectl())
        .args(["patch", "--local", "-o", "json", "--type", kind, "-p", &patch.to_string(), "-f"])
        .arg(dir.path().join("base.yaml")))?;
    Ok(serde_json::from_str(&out).unwrap())
}

/// Kustomize matches a strategic merge patch to its target by these fields.
fn with_identity(base: &Value, patch: &Value) -> Value {
    let mut patch = patch.clone();
    patch["apiVersion"] = base["apiVersion"].clone();
    patch["kind"] = base["kind"].clone();
    patch["metadata"]["name"] = base["metadata"]["name"].clone();
    patch
}

#[test]
fn at_least_eight_cases_go_through_kustomize() {
    let cases = cases();
    let kustomize = cases.iter().filter(|c| !matches!(c.oracle, Oracle::KubectlPatch(_))).count();
    assert!(kustomize >= 8, "only {kustomize} cases are checked against kubectl kustomize");
}
