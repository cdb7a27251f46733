//! Bad input in every file a user writes or points weaver at: environments, values, charts,
//! templates, patches, secrets files, age keys, kubeconfigs and `--live-from` files.

use super::*;

/// The demo's dev secrets (encrypted to the committed demo key) and that key.
const DEV_SECRETS: &str = include_str!("../../secrets/dev.yaml");
const DEV_KEY: &str = include_str!("../../secrets/dev.agekey");
/// The same file with one value (redis.password) removed: its MAC no longer matches.
const TAMPERED_SECRETS: &str = include_str!("fixtures/tampered-dev-secrets.yaml");
/// A key that does not open the dev secrets.
const OTHER_KEY: &str = include_str!("../fixtures/prod-test.agekey");
const WITH_SECRETS: &str = "namespace: apps\nsecrets: [secrets/dev.yaml]\nreleases:\n  - name: app\n    chart: app\n";
const KC_ARGS: &[&str] = &["diff", "--env", "dev", "--kubeconfig", "{repo}/kc.yaml"];
const KC_VALID: &str = "apiVersion: v1\nkind: Config\ncurrent-context: here\nclusters:\n- name: c\n  cluster: { server: 'https://127.0.0.1:1' }\nusers:\n- name: u\n  user:\n    token: SEEDTOKEN-4f1c9a7e\ncontexts:\n- name: here\n  context: { cluster: c, user: u }\n";

const CASES: &[Case] = &[
    Case {
        name: "an auth provider's id-token with a line break",
        files: &[(
            "kc.yaml",
            "apiVersion: v1\nkind: Config\ncurrent-context: here\nclusters:\n- name: c\n  cluster: { server: 'https://127.0.0.1:1' }\nusers:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n      config: { id-token: \"SEEDTOKEN-4f1c9a7e\\nmore\", client-id: x, idp-issuer-url: 'https://127.0.0.1:1' }\ncontexts:\n- name: here\n  context: { cluster: c, user: u }\n",
        )],
        args: KC_ARGS,
        env: &[],
        expect: &["the user of context `here`", "has a token that cannot be sent"],
    },
    Case {
        name: "a kubeconfig token with a line break",
        files: &[(
            "kc.yaml",
            "apiVersion: v1\nkind: Config\ncurrent-context: here\nclusters:\n- name: c\n  cluster: { server: 'https://127.0.0.1:1' }\nusers:\n- name: u\n  user:\n    token: \"SEEDTOKEN-4f1c9a7e\\nmore\"\ncontexts:\n- name: here\n  context: { cluster: c, user: u }\n",
        )],
        args: KC_ARGS,
        env: &[],
        expect: &["the user of context `here`", "has a token that cannot be sent", "its value is not shown"],
    },
    // Environments.
    Case {
        name: "unknown key in a release",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuez: {}\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:5:5: invalid environment file: unknown field `valuez`, expected one of"],
    },
    Case {
        name: "wrong type of a field",
        files: &[("environments/dev.yaml", "namespace: [apps]\nreleases: []\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:1:12: invalid environment file: expected a string"],
    },
    Case {
        name: "extends a missing environment",
        files: &[("environments/dev.yaml", "extends: nope\nnamespace: apps\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:1:10: `extends: nope`: environments/nope.yaml does not exist"],
    },
    Case {
        name: "valuesFiles entry that does not exist",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/missing.yaml]\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:5:19: values file values/missing.yaml does not exist"],
    },
    Case {
        name: "duplicate key in an environment",
        files: &[("environments/dev.yaml", "namespace: apps\nreleases: []\nnamespace: other\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:3:1: invalid environment file: duplicate key `namespace` (first defined at line 1)",
        ],
    },
    // Values.
    Case {
        name: "values that do not match the chart's schema",
        files: &[
            ("charts/app/values.schema.json", r#"{"type": "object", "properties": {"greeting": {"type": "integer"}}}"#),
            (
                "environments/dev.yaml",
                "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    values: { greeting: seed-password-8b2d }\n",
            ),
        ],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:3:5: values of release `app` do not match charts/app/values.schema.json",
            "at `/greeting`",
        ],
    },
    Case {
        name: "a values file that is not a mapping",
        files: &[
            ("values/app.yaml", "- seed-password-8b2d\n"),
            (
                "environments/dev.yaml",
                "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [values/app.yaml]\n",
            ),
        ],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["values/app.yaml: must be a mapping of values at the top level"],
    },
    // Charts.
    Case {
        name: "chart.yaml with a wrong type",
        files: &[("charts/app/chart.yaml", "name: app\nversion: [1]\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/chart.yaml:2:10: invalid chart.yaml: expected a string"],
    },
    Case {
        name: "values.schema.json that is not JSON",
        files: &[("charts/app/values.schema.json", "{\"type\": \"object\",\n}\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/values.schema.json:2:1: invalid JSON: trailing comma\n"],
    },
    Case {
        name: "a release naming a missing chart",
        files: &[("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: nope\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:4:12: chart `nope` not found: charts/nope has neither chart.yaml (a weaver chart) nor Chart.yaml (a Helm chart)",
        ],
    },
    // Templates.
    Case {
        name: "undefined value behind a filter",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ values.greting | quote }}\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml:6: template error: undefined value: `values.greting` is undefined (given to filter `quote`)",
        ],
    },
    Case {
        name: "template syntax error",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/templates/configmap.yaml:4: template error: syntax error"],
    },
    Case {
        name: "fail in a template",
        files: &[("charts/app/templates/configmap.yaml", "\n{{ fail('this chart needs values.mode') }}\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml:2: template error: invalid operation: this chart needs values.mode",
        ],
    },
    Case {
        name: "an indent too wide to allocate",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "a:\n{{ values.greeting | nindent(18446744073709551615) }}\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml:2: template error: invalid operation: indent: width 18446744073709551615 is too large (at most 1024)",
        ],
    },
    Case {
        name: "required value missing",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "a: {{ values.host | required('values.host is required') }}\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/templates/configmap.yaml:1: template error: invalid operation: values.host is required"],
    },
    // Patches.
    Case {
        name: "patch that replaces the whole object",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: ConfigMap }\n        ops: [{ op: replace, path: '', value: 1 }]\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:6:9: patch 1 of release `app` on ConfigMap apps/app: the patched object is not a mapping",
        ],
    },
    Case {
        name: "patch with an unknown operation",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: ConfigMap }\n        ops: [{ op: frobnicate, path: /data }]\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:6:9: patch failed on ConfigMap apps/app: JSON patch operation 0 is invalid: `op` must be one of add, remove",
        ],
    },
    Case {
        name: "patch on a missing path",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: ConfigMap }\n        ops: [{ op: test, path: /data/greeting, value: seed-password-8b2d }, { op: remove, path: /data/missing }]\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:6:9: patch failed on ConfigMap apps/app: JSON patch operation 0 (`test` at /data/greeting) failed",
        ],
    },
    Case {
        name: "patch target that matches nothing",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    patches:\n      - target: { kind: Deployment }\n        patch: { spec: { replicas: 2 } }\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:6:9: patch target {kind: Deployment} matches no object of release `app`"],
    },
    // Secrets files.
    Case {
        name: "secrets file that is not SOPS",
        files: &[("environments/dev.yaml", WITH_SECRETS), ("secrets/dev.yaml", "password: seed-password-8b2d\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["secrets/dev.yaml: is not a SOPS file: it has no `sops` metadata block"],
    },
    Case {
        name: "secrets file with a tampered MAC",
        files: &[
            ("environments/dev.yaml", WITH_SECRETS),
            ("secrets/dev.yaml", TAMPERED_SECRETS),
            ("dev.agekey", DEV_KEY),
        ],
        args: &["render", "--env", "dev", "--identity", "{repo}/dev.agekey"],
        env: &[],
        expect: &["secrets/dev.yaml: MAC mismatch"],
    },
    Case {
        name: "secrets file and the wrong key",
        files: &[
            ("environments/dev.yaml", WITH_SECRETS),
            ("secrets/dev.yaml", DEV_SECRETS),
            ("other.agekey", OTHER_KEY),
        ],
        args: &["render", "--env", "dev", "--identity", "{repo}/other.agekey"],
        env: &[],
        expect: &["secrets/dev.yaml", "age1x3tz69kdh3y6tlqccymajnzrxfqnz352azev25z805fqv55qdu7sxhepq0"],
    },
    // Keys.
    Case {
        name: "malformed SOPS_AGE_KEY",
        files: &[("environments/dev.yaml", WITH_SECRETS), ("secrets/dev.yaml", DEV_SECRETS)],
        args: &["render", "--env", "dev"],
        env: &[("SOPS_AGE_KEY", super::FAKE_AGE_KEY)],
        expect: &["SOPS_AGE_KEY: line 1: the age secret key is malformed"],
    },
    Case {
        name: "malformed key in an identity file",
        files: &[
            ("environments/dev.yaml", WITH_SECRETS),
            ("secrets/dev.yaml", DEV_SECRETS),
            ("k.agekey", concat!("# mine\n", "AGE-SECRET-KEY-", "1SEEDKEYQQQQ\n")),
        ],
        args: &["render", "--env", "dev", "--identity", "{repo}/k.agekey"],
        env: &[],
        expect: &["--identity {repo}/k.agekey: line 2: the age secret key is malformed"],
    },
    Case {
        name: "missing identity file",
        files: &[("environments/dev.yaml", WITH_SECRETS), ("secrets/dev.yaml", DEV_SECRETS)],
        args: &["render", "--env", "dev", "--identity", "{repo}/missing.agekey"],
        env: &[],
        expect: &["--identity {repo}/missing.agekey: cannot read the identity file: no such file or directory"],
    },
    // Kubeconfigs: they fail before any network; the valid one points at a closed port.
    Case {
        name: "kubeconfig syntax error right after a token",
        files: &[(
            "kc.yaml",
            "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: SEEDTOKEN-4f1c9a7e\n      bad: x\n",
        )],
        args: KC_ARGS,
        env: &[],
        expect: &["{repo}/kc.yaml:6:10: invalid kubeconfig: "],
    },
    Case {
        name: "kubeconfig with a wrong type",
        files: &[("kc.yaml", "users: SEEDTOKEN-4f1c9a7e\n")],
        args: KC_ARGS,
        env: &[],
        expect: &["{repo}/kc.yaml:1:8: invalid kubeconfig: expected a list"],
    },
    Case {
        name: "missing kubeconfig",
        files: &[],
        args: KC_ARGS,
        env: &[],
        expect: &["{repo}/kc.yaml: cannot read kubeconfig: no such file or directory", "--kubeconfig"],
    },
    Case {
        name: "unknown context",
        files: &[("kc.yaml", KC_VALID)],
        args: &["diff", "--env", "dev", "--kubeconfig", "{repo}/kc.yaml", "--context", "nope"],
        env: &[],
        expect: &["context `nope` (from --context) is not in kubeconfig {repo}/kc.yaml", "here"],
    },
    Case {
        name: "context naming a cluster that is not defined",
        files: &[(
            "kc.yaml",
            "current-context: here\nusers:\n- name: u\n  user: { token: SEEDTOKEN-4f1c9a7e }\ncontexts:\n- name: here\n  context: { cluster: nope, user: u }\n",
        )],
        args: KC_ARGS,
        env: &[],
        expect: &[
            "context `here` names cluster `nope`, which kubeconfig {repo}/kc.yaml (from --kubeconfig) does not define",
        ],
    },
    Case {
        name: "context naming a user that is not defined",
        files: &[(
            "kc.yaml",
            "clusters:\n- name: c\n  cluster: { server: 'https://127.0.0.1:1' }\ncontexts:\n- name: here\n  context: { cluster: c, user: nobody }\n",
        )],
        args: &["diff", "--env", "dev", "--kubeconfig", "{repo}/kc.yaml", "--context", "here"],
        env: &[],
        expect: &[
            "context `here` names user `nobody`, which kubeconfig {repo}/kc.yaml (from --kubeconfig) does not define",
        ],
    },
    Case {
        name: "KUBECONFIG whose files are all missing",
        files: &[],
        args: &["diff", "--env", "dev"],
        env: &[("KUBECONFIG", "{repo}/a.yaml:{repo}/b.yaml")],
        expect: &["none of the files in KUBECONFIG exists ({repo}/a.yaml:{repo}/b.yaml)"],
    },
    Case {
        name: "KUBECONFIG skips a missing file and reports the broken one",
        files: &[(
            "b.yaml",
            "clusters:\n- name: c\n  cluster: { server: x }\nusers:\n- name: u\n  user: { token: SEEDTOKEN-4f1c9a7e }\n  user: {}\n",
        )],
        args: &["diff", "--env", "dev"],
        env: &[("KUBECONFIG", "{repo}/a.yaml:{repo}/b.yaml")],
        expect: &["{repo}/b.yaml:7:3: invalid kubeconfig: duplicate key `user` (first defined at line 6)"],
    },
    // --live-from files may hold Secrets.
    Case {
        name: "live-from file with a syntax error after a secret value",
        files: &[(
            "live.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: { name: s }\nstringData:\n  password: seed-password-8b2d\n    bad: x\n",
        )],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml:6:"],
    },
];

#[test]
fn bad_inputs_are_located_explained_and_never_leak() {
    run_cases(CASES);
}
