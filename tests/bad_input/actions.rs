//! Mistakes the action layer catches before it reaches a cluster: drift selects releases as
//! render, diff and apply do (so it takes --rev and --changed-since too), and history and
//! rollback name the release they could not find.

use super::{Case, run_cases};

/// An empty git repository, written as files: every revision is unknown.
const EMPTY_GIT: &[(&str, &str)] = &[
    (".git/HEAD", "ref: refs/heads/main\n"),
    (".git/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"),
    (".git/objects/.keep", ""),
    (".git/refs/heads/.keep", ""),
];

const CASES: &[Case] = &[
    Case {
        name: "drift --changed-since outside a git repository",
        files: &[],
        args: &["drift", "--env", "dev", "--changed-since", "main"],
        env: &[],
        expect: &["is not inside a git repository", "--changed-since"],
    },
    Case {
        name: "drift --changed-since naming no revision",
        files: EMPTY_GIT,
        args: &["drift", "--env", "dev", "--changed-since", "nope"],
        env: &[],
        expect: &["unknown revision `nope` (--changed-since): no branch, tag or commit of {repo} is called that"],
    },
    Case {
        name: "drift --rev naming no revision",
        files: EMPTY_GIT,
        args: &["drift", "--env", "dev", "--rev", "nope"],
        env: &[],
        expect: &["unknown revision `nope` (--rev): no branch, tag or commit of {repo} is called that"],
    },
    Case {
        name: "drift of an abstract environment",
        files: &[("environments/base.yaml", "abstract: true\nnamespace: apps\nreleases: []\n")],
        args: &["drift", "--env", "base"],
        env: &[],
        expect: &["environment `base` is abstract (a base for others) and is never deployed itself"],
    },
    Case {
        name: "drift -r naming no release of the environment",
        files: &[],
        args: &["drift", "--env", "dev", "-r", "nope"],
        env: &[],
        expect: &["environment `dev` has no release `nope` (-r/--release)", "its releases: app"],
    },
    Case {
        name: "history of a release the environment does not have",
        files: &[],
        args: &["history", "--env", "dev", "nope"],
        env: &[],
        expect: &["environment `dev` has no release `nope`", "its releases: app"],
    },
    Case {
        name: "rollback of a release the environment does not have",
        files: &[],
        args: &["rollback", "--env", "dev", "nope", "3"],
        env: &[],
        expect: &["environment `dev` has no release `nope`", "its releases: app"],
    },
];

#[test]
fn action_errors_name_the_flag_or_the_release() {
    run_cases(CASES);
}
