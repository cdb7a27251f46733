//! Repository confinement (issue 16): paths that leave the repository. Symbolic links need
//! set-up code: they are in tests/confine.rs.

use crate::{Case, run_cases};

const CASES: &[Case] = &[
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
        expect: &["environments/dev.yaml:4:12", "/etc resolves to /etc, outside the repository"],
    },
    Case {
        name: "chart with `..` out of the repository",
        files: &[
            ("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: ../../app\n"),
            ("live.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
        ],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["environments/dev.yaml:4:12", "charts/../../app resolves to", "outside the repository"],
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
];

#[test]
fn confinement_cases() {
    run_cases(CASES);
}
