//! Repository confinement and desired-set integrity (issue 16): paths that leave the
//! repository, duplicate objects and names the API server would refuse. Symbolic links need
//! set-up code: they are in tests/confine.rs.

use super::{Case, run_cases};

const CASES: &[Case] = &[
    Case {
        name: "chart `..`: the repository itself, .git included, as a chart",
        files: &[
            ("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: \"..\"\n"),
            (".git/config", "[http]\n\textraheader = AUTHORIZATION: basic SEEDTOKEN-4f1c9a7e\n"),
        ],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:4:12", "`chart: ..` is not a chart name"],
    },
    Case {
        name: "a valuesFiles entry inside .git",
        files: &[
            (
                "environments/dev.yaml",
                "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [.git/config]\n",
            ),
            (".git/config", "token: SEEDTOKEN-4f1c9a7e\n"),
        ],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:5:19", ".git/config resolves to", "outside the repository"],
    },
    Case {
        name: "an environment named as a path",
        files: &[],
        args: &["render", "--env", "./dev"],
        env: &[],
        expect: &["`./dev` is not an environment name", "weaver envs lists them"],
    },
    Case {
        name: "valuesFiles entry with `..` out of the repository",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    valuesFiles: [../values.yaml]\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:5:19", "../values.yaml resolves to", "outside the repository {repo}"],
    },
    Case {
        name: "secrets entry with an absolute path",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nsecrets: [/etc/hostname]\nreleases:\n  - name: app\n    chart: app\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:2:11", "/etc/hostname resolves to", "outside the repository"],
    },
    Case {
        name: "chart with an absolute path",
        files: &[("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: /etc\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:4:12", "`chart: /etc` is not a chart name", "a directory of charts/"],
    },
    Case {
        name: "chart with `..` out of the repository",
        files: &[
            ("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: ../../app\n"),
            ("live.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
        ],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["environments/dev.yaml:4:12", "`chart: ../../app` is not a chart name"],
    },
    Case {
        name: "extends with a path instead of an environment name",
        files: &[("environments/dev.yaml", "extends: ../x\nnamespace: apps\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:1:10",
            "`extends: ../x` is not an environment name",
            "a file of environments/",
        ],
    },
    Case {
        name: "files.get with `..` out of the chart",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  x: {{ files.get('../../environments/dev.yaml') }}\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/templates/configmap.yaml:6", "no file `../../environments/dev.yaml` in chart `app`"],
    },
    Case {
        name: "the same object from two releases",
        files: &[
            (
                "environments/dev.yaml",
                "namespace: apps\nreleases:\n  - name: app\n    chart: app\n  - name: other\n    chart: app\n",
            ),
            ("charts/app/templates/shared.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"),
        ],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "ConfigMap apps/shared is rendered twice",
            "by release `app`, charts/app/templates/shared.yaml document 1",
            "by release `other`, charts/app/templates/shared.yaml document 1",
        ],
    },
    Case {
        name: "the same object twice in one release, before anything is applied",
        files: &[(
            "charts/app/templates/shared.yaml",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n  namespace: ignored\n",
        )],
        args: &["apply", "--env", "dev"],
        env: &[("KUBECONFIG", "{repo}/no-kubeconfig")],
        expect: &[
            "ClusterRole.rbac.authorization.k8s.io reader is rendered twice",
            "document 1 and by release `app`, charts/app/templates/shared.yaml document 2",
        ],
    },
    Case {
        name: "an object name the API server refuses",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Web_Config\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml: document 1 of the rendered output has an invalid `metadata.name` `Web_Config`",
            "a ConfigMap name must be an RFC 1123 subdomain",
        ],
    },
    Case {
        name: "a Service name that is not an RFC 1035 label",
        files: &[("charts/app/templates/configmap.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["charts/app/templates/configmap.yaml: document 1", "a Service name must be an RFC 1035 label"],
    },
    Case {
        name: "an object namespace that is not a namespace name",
        files: &[(
            "charts/app/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: Shop.Dev\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml: document 1",
            "invalid `metadata.namespace` `Shop.Dev`",
            "an RFC 1123 label",
        ],
    },
    Case {
        name: "a release namespace that is not a namespace name",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: app\n    chart: app\n    namespace: shop_dev\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:5:16: invalid namespace name `shop_dev`", "an RFC 1123 label"],
    },
    Case {
        name: "an environment namespace that is not a namespace name",
        files: &[("environments/dev.yaml", "namespace: -apps\nreleases:\n  - name: app\n    chart: app\n")],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:1:12: invalid namespace name `-apps`"],
    },
];

#[test]
fn confinement_and_integrity_cases() {
    run_cases(CASES);
}
