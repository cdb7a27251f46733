//! Names that must be RFC 1123 labels: release names (at most 53 characters) and namespaces
//! (at most 63), one check with two lengths.

use super::{Case, run_cases};

#[test]
fn names() {
    run_cases(CASES);
}

const CASES: &[Case] = &[
    Case {
        name: "a release name one character over 53",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\nreleases:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    chart: app\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:3:5: invalid release name `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`",
            "use at most 53 lowercase letters",
        ],
    },
    Case {
        name: "a namespace one character over 63",
        files: &[(
            "environments/dev.yaml",
            "namespace: nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\nreleases:\n  - name: app\n    chart: app\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &[
            "environments/dev.yaml:1:12: invalid namespace name `nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn`",
            "an RFC 1123 label: at most 63",
        ],
    },
    Case {
        name: "a lock namespace that is not a label",
        files: &[(
            "environments/dev.yaml",
            "namespace: apps\ncluster:\n  lockNamespace: Locks.Here\nreleases:\n  - name: app\n    chart: app\n",
        )],
        args: &["render", "--env", "dev"],
        env: &[],
        expect: &["environments/dev.yaml:3:18: invalid namespace name `Locks.Here`", "an RFC 1123 label"],
    },
];
