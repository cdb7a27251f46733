//! The command line: flags, durations, label selectors, selections and flag-named files.

use super::{Case, run_cases};

const CASES: &[Case] = &[
    Case {
        name: "a duration that overflowed the old parser",
        files: &[],
        args: &["diff", "--env", "dev", "--request-timeout", "18446744073709551615s1s"],
        env: &[],
        expect: &["'--request-timeout <DURATION>'", "is not a duration: expected a number with a unit, like 30s"],
    },
    Case {
        name: "a zero duration",
        files: &[],
        args: &["apply", "--env", "dev", "--timeout", "0s"],
        env: &[],
        expect: &["'--timeout <DURATION>'", "`0s` is zero: expected a duration longer than zero"],
    },
    Case {
        name: "a negative duration",
        files: &[],
        args: &["apply", "--env", "dev", "--lock-timeout=-5m"],
        env: &[],
        expect: &["'--lock-timeout <DURATION>'", "`-5m` is negative"],
    },
    Case {
        name: "a duration with an unknown unit",
        files: &[],
        args: &["diff", "--env", "dev", "--request-timeout", "5x"],
        env: &[],
        expect: &["'--request-timeout <DURATION>'", "`5x` is not a duration: expected a number with a unit"],
    },
    Case {
        name: "a duration longer than a day",
        files: &[],
        args: &["diff", "--env", "dev", "--request-timeout", "25h"],
        env: &[],
        expect: &["'--request-timeout <DURATION>'", "`25h` is too long: expected at most 24h"],
    },
    Case {
        name: "a selector with an operator and no value",
        files: &[],
        args: &["render", "--env", "dev", "-l", "tier=="],
        env: &[],
        expect: &[
            "invalid label selector `tier==` (-l/--selector): `tier==` has no value after `==`",
            "expected comma-separated requirements",
        ],
    },
    Case {
        name: "a selector with an unclosed set",
        files: &[],
        args: &["diff", "--env", "dev", "-l", "tier in (a"],
        env: &[],
        expect: &["invalid label selector `tier in (a` (-l/--selector): `(` is not closed with `)`"],
    },
    Case {
        name: "a selector without a key",
        files: &[],
        args: &["render", "--env", "dev", "-l", "=x"],
        env: &[],
        expect: &["invalid label selector `=x` (-l/--selector): `=x` has no key before `=`"],
    },
    Case {
        name: "a selector key with invalid characters",
        files: &[],
        args: &["render", "--env", "dev", "-l", "ti$r=web"],
        env: &[],
        expect: &["(-l/--selector): `ti$r` is not a valid label key", "at most 63 letters, digits"],
    },
    Case {
        name: "a selector with an empty set",
        files: &[],
        args: &["drift", "--env", "dev", "-l", "tier notin ()"],
        env: &[],
        expect: &[
            "invalid label selector `tier notin ()` (-l/--selector)",
            "after `notin` has an empty entry or is empty",
        ],
    },
    Case {
        name: "apply of an environment without releases",
        files: &[("environments/dev.yaml", "namespace: apps\nreleases: []\n")],
        args: &["apply", "--env", "dev"],
        env: &[],
        expect: &["environment `dev` has no releases (environments/dev.yaml): there is nothing to apply"],
    },
    Case {
        name: "apply of a selection that matches nothing",
        files: &[],
        args: &["apply", "--env", "dev", "-l", "tier=nothing"],
        env: &[],
        expect: &[
            "no release of environment `dev` matches the selection (-l 'tier=nothing'): there is nothing to apply",
            "its releases: app",
        ],
    },
    Case {
        name: "--output-dir naming a file",
        files: &[("out.yaml", "kind: List\n")],
        args: &["render", "--env", "dev", "--output-dir", "{repo}/out.yaml"],
        env: &[],
        expect: &["{repo}/out.yaml: --output-dir is not a directory"],
    },
    Case {
        name: "--output-dir with redacted values and neither --show-secrets nor --redact",
        files: &[(
            "charts/app/templates/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  password: seed-password-8b2d\n",
        )],
        args: &["render", "--env", "dev", "--output-dir", "{repo}/out"],
        env: &[],
        expect: &["--output-dir {repo}/out would get 1 redacted value(s)", "add --show-secrets", "or --redact"],
    },
    Case {
        name: "--concurrency 0",
        files: &[],
        args: &["diff", "--env", "dev", "--concurrency", "0"],
        env: &[],
        expect: &["invalid value '0' for '--concurrency <N>'", "1..=1000"],
    },
    Case {
        name: "--concurrency that is not a number",
        files: &[],
        args: &["apply", "--env", "dev", "--concurrency", "many"],
        env: &[],
        expect: &["invalid value 'many' for '--concurrency <N>'"],
    },
    Case {
        name: "an unknown output format",
        files: &[],
        args: &["diff", "--env", "dev", "-o", "yaml"],
        env: &[],
        expect: &["invalid value 'yaml' for '--output <OUTPUT>'", "[possible values: text, json, markdown, html]"],
    },
    Case {
        name: "an unknown environment",
        files: &[],
        args: &["diff", "--env", "prod"],
        env: &[],
        expect: &["unknown environment `prod`: environments/prod.yaml does not exist", "known environments: dev"],
    },
    Case {
        name: "an unknown release",
        files: &[],
        args: &["render", "--env", "dev", "-r", "web"],
        env: &[],
        expect: &["environment `dev` has no release `web` (-r/--release)", "its releases: app"],
    },
    Case {
        name: "--live-from a missing file",
        files: &[],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml: cannot read live objects: no such file or directory"],
    },
    Case {
        name: "--live-from a file that is not YAML",
        files: &[("live.yaml", "apiVersion: v1\nkind: [ConfigMap\n")],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml:2:", "invalid YAML"],
    },
    Case {
        name: "--live-from objects without kind",
        files: &[("live.yaml", "apiVersion: v1\nmetadata:\n  name: app\n")],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml: document 1 has an object without apiVersion, kind and metadata.name"],
    },
    Case {
        name: "--live-from objects without metadata.name",
        files: &[(
            "live.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        )],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml: document 2 has an object without apiVersion, kind and metadata.name"],
    },
    Case {
        name: "--live-from a YAML list of numbers",
        files: &[("live.yaml", "- 1\n- 2\n")],
        args: &["diff", "--env", "dev", "--live-from", "{repo}/live.yaml"],
        env: &[],
        expect: &["{repo}/live.yaml: document 1 has an object without apiVersion, kind and metadata.name"],
    },
    Case {
        name: "--rev outside a git repository",
        files: &[],
        args: &["render", "--env", "dev", "--rev", "v1.0"],
        env: &[],
        expect: &["is not inside a git repository", "--rev"],
    },
    Case {
        name: "--rev naming no revision (an empty git repository, written as files)",
        files: &[
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"),
            (".git/objects/.keep", ""),
            (".git/refs/heads/.keep", ""),
        ],
        args: &["render", "--env", "dev", "--rev", "nope"],
        env: &[],
        expect: &["unknown revision `nope` (--rev): no branch, tag or commit of {repo} is called that"],
    },
    Case {
        name: "a cluster option on a command that talks to no cluster",
        files: &[],
        args: &["render", "--env", "dev", "--kubeconfig", "{repo}/kubeconfig"],
        env: &[],
        expect: &["unexpected argument '--kubeconfig' found", "Usage: weaver render"],
    },
    Case {
        name: "no kubeconfig at all, in what looks like a pod without a ServiceAccount token",
        files: &[],
        args: &["diff", "--env", "dev"],
        env: &[("KUBERNETES_SERVICE_HOST", "127.0.0.1"), ("KUBERNETES_SERVICE_PORT", "1")],
        expect: &["cannot use the pod's ServiceAccount to reach the cluster", "pass --kubeconfig FILE"],
    },
    Case {
        name: "a cluster option before a command that talks to no cluster",
        files: &[],
        args: &["--request-timeout", "10s", "envs"],
        env: &[],
        expect: &[
            "--request-timeout does nothing for this command",
            "diff, apply, history, rollback, drift and operator run take",
        ],
    },
    Case {
        name: "--identity before a command that decrypts nothing",
        files: &[],
        args: &["--identity", "{repo}/key.txt", "drift", "--env", "dev"],
        env: &[],
        expect: &["--identity does nothing for this command: it decrypts nothing"],
    },
];

#[test]
fn command_line_mistakes() {
    run_cases(CASES);
}
