//! Keyed lists that server-side apply rejects (an element without its key, or one twice): diff
//! and apply say which object, which list and which key, before anything is sent.

use super::{Case, run_cases};

const LIVE: (&str, &str) = ("live.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: apps}\n");
const DIFF: &[&str] = &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"];
/// A missing key is also a missing required field, which offline validation (on by default,
/// tests/validate.rs) reports first; without it, diff's own check must still catch it.
const DIFF_UNVALIDATED: &[&str] = &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml", "--validate=ignore"];

const CASES: &[Case] = &[
    Case {
        name: "an env name twice",
        files: &[
            LIVE,
            (
                "charts/app/templates/web.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n    - name: web\n      image: nginx:1\n      env:\n        - {name: A, value: seed-password-8b2d}\n        - {name: A, value: \"2\"}\n",
            ),
        ],
        args: DIFF,
        env: &[],
        expect: &[
            "charts/app/templates/web.yaml",
            "Pod apps/web (release app): spec.containers[name=web].env[name=A] appears twice",
            "help: server-side apply tells the elements of this list apart by `name`",
        ],
    },
    Case {
        name: "an env entry without a name",
        files: &[
            LIVE,
            (
                "charts/app/templates/web.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n    - name: web\n      image: nginx:1\n      env:\n        - {name: A, value: \"1\"}\n        - {value: seed-password-8b2d}\n",
            ),
        ],
        args: DIFF_UNVALIDATED,
        env: &[],
        expect: &[
            "charts/app/templates/web.yaml",
            "Pod apps/web (release app): element 2 of spec.containers[name=web].env has no `name`",
            "by `name`: each needs one",
        ],
    },
    Case {
        name: "a container port twice, once with the default protocol",
        files: &[
            LIVE,
            (
                "charts/app/templates/web.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n    - name: web\n      image: nginx:1\n      ports:\n        - {containerPort: 80}\n        - {containerPort: 80, protocol: TCP}\n",
            ),
        ],
        args: DIFF,
        env: &[],
        expect: &[
            "charts/app/templates/web.yaml",
            "spec.containers[name=web].ports[containerPort=80,protocol=TCP] appears twice",
            "apart by `containerPort+protocol`",
        ],
    },
    Case {
        name: "a finalizer twice",
        files: &[
            LIVE,
            (
                "charts/app/templates/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  finalizers: [example.com/keep, example.com/keep]\n",
            ),
        ],
        args: DIFF,
        env: &[],
        expect: &[
            "charts/app/templates/configmap.yaml",
            "ConfigMap apps/cm (release app): metadata.finalizers[example.com/keep] appears twice",
        ],
    },
];

#[test]
fn keyed_lists_server_side_apply_rejects_are_errors() {
    run_cases(CASES);
}
