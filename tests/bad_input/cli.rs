//! The command line: flags, durations, label selectors, selections and flag-named files.

use super::{Case, run_cases};

const CASES: &[Case] = &[
    Case {
        name: "a duration that overflowed the old parser",
        files: &[],
        args: &["render", "--env", "dev", "--request-timeout", "18446744073709551615s1s"],
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
];

#[test]
fn command_line_mistakes() {
    run_cases(CASES);
}
