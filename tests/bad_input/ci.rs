//! CI-facing inputs: `weaver.yaml` (read by `weaver changed`, so each case's repository is
//! committed to git first, and the file is a working-tree change) and the report formats.

use super::common::Repo;
use super::common::git::{commit_all, init};
use super::{Case, run_cases, run_cases_in};

const CHANGED: &[&str] = &["changed", "--base", "HEAD"];

const SETTINGS: &[Case] = &[
    Case {
        name: "weaver.yaml that is not YAML",
        files: &[("weaver.yaml", "ignorePaths: [src/**\n")],
        args: CHANGED,
        env: &[],
        expect: &["weaver.yaml:", "invalid weaver.yaml"],
    },
    Case {
        name: "an unknown key in weaver.yaml",
        files: &[("weaver.yaml", "ignorePaths: []\nignore:\n  - SEEDTOKEN-4f1c9a7e\n")],
        args: CHANGED,
        env: &[],
        expect: &["weaver.yaml:2:1: invalid weaver.yaml: unknown field `ignore`, expected one of ignorePaths"],
    },
    Case {
        name: "ignorePaths that is not a list",
        files: &[("weaver.yaml", "ignorePaths: src/**\n")],
        args: CHANGED,
        env: &[],
        expect: &["weaver.yaml:1:14: invalid weaver.yaml: expected a list"],
    },
    Case {
        name: "a pattern that is not a glob",
        files: &[("weaver.yaml", "ignorePaths:\n  - src/**\n  - \"docs/[a\"\n")],
        args: CHANGED,
        env: &[],
        expect: &[
            "weaver.yaml:3:5: ignorePaths: `docs/[a` is not a glob pattern: unclosed character class",
            "help: patterns are relative to the repository",
        ],
    },
    Case {
        name: "an absolute pattern, which would match nothing",
        files: &[("weaver.yaml", "ignorePaths:\n  - /src/**\n")],
        args: CHANGED,
        env: &[],
        expect: &["weaver.yaml:2:5: ignorePaths: `/src/**` is not a glob pattern: it starts with `/`"],
    },
    Case {
        name: "an empty pattern",
        files: &[("weaver.yaml", "ignorePaths: [\"\"]\n")],
        args: CHANGED,
        env: &[],
        expect: &["weaver.yaml:1:15: ignorePaths: `` is not a glob pattern: it is empty"],
    },
];

/// `Repo::minimal()` committed once.
fn committed() -> Repo {
    let repo = Repo::minimal();
    commit_all(&init(repo.path()), "minimal");
    repo
}

#[test]
fn settings() {
    run_cases_in(SETTINGS, committed);
}

/// (`diff -o` with an unknown format is in cli.rs.)
#[test]
fn report_formats() {
    run_cases(&[Case {
        name: "markdown is for plans, not drift",
        files: &[],
        args: &["drift", "--env", "dev", "-o", "markdown"],
        env: &[],
        expect: &["invalid value 'markdown' for '--output <OUTPUT>'", "[possible values: text, json, junit, html]"],
    }]);
}
