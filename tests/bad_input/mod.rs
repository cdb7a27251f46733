//! The bad-input suite: every user mistake is an error (exit 1, never a panic), names the file
//! and line, the object or the flag, says what was expected, and never shows a credential.
//!
//! Each area has a table of cases. A case writes its files over a minimal repository
//! (`Repo::minimal()`: chart `app`, environment `dev`), runs weaver, and is checked by
//! [`check`]. `{repo}` in arguments and environment values stands for the repository's path.
//! Inputs may contain the seeded credentials in [`SEEDS`]; none may appear in any output.

mod actions;
mod confine;
mod keyed_lists;
mod names;

mod cli;

use crate::common::{self, Repo};

mod ci;
mod inputs;

/// Distinctive values planted in inputs (tokens, keys, secret values). Seeing one in stdout or
/// stderr is a leak.
pub const SEEDS: &[&str] = &["SEEDTOKEN-4f1c9a7e", "seed-password-8b2d", FAKE_AGE_KEY];

/// A malformed stand-in for an age private key (no key at all: wrong length and checksum),
/// written in two parts so that no file of the repository looks like it holds a private key.
pub const FAKE_AGE_KEY: &str = concat!("AGE-SECRET-KEY-", "1SEEDKEYQQQQ");

/// One mistake a user can make, and what weaver must answer.
pub struct Case {
    pub name: &'static str,
    /// Files written over `Repo::minimal()`, as (path, content).
    pub files: &'static [(&'static str, &'static str)],
    pub args: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
    /// Each must appear in stderr: where (file:line, object or flag) and what was expected.
    pub expect: &'static [&'static str],
}

/// Runs every case and reports all that fail at once, so one broken case hides no other.
#[track_caller]
pub fn run_cases(cases: &[Case]) {
    run_cases_in(cases, Repo::minimal);
}

/// [`run_cases`] over repositories `base` makes instead of `Repo::minimal()` (say, one committed
/// to git, for commands that compare versions).
#[track_caller]
pub fn run_cases_in(cases: &[Case], base: fn() -> Repo) {
    let failures: Vec<String> = cases.iter().filter_map(|case| check(base(), case).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

/// Runs one case; the error says which case failed and how.
pub fn check(repo: Repo, case: &Case) -> Result<(), String> {
    let root = repo.path().display().to_string();
    let expand = |s: &str| s.replace("{repo}", &root);
    for (path, content) in case.files {
        repo.write(path, &expand(content));
    }
    let args: Vec<String> = case.args.iter().map(|a| expand(a)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(String, String)> = case.env.iter().map(|(k, v)| (k.to_string(), expand(v))).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = repo.weaver_env(&args, &env);
    let fail = |why: String| {
        Err(format!(
            "case `{}` ({}): {why}\nstdout:\n{}\nstderr:\n{}",
            case.name,
            args.join(" "),
            run.stdout,
            run.stderr
        ))
    };
    if run.code != 1 {
        return fail(format!("exit code {}, expected 1", run.code));
    }
    let stderr = run.stderr.replace(&root, "{repo}");
    for expected in case.expect {
        if !stderr.contains(expected) {
            return fail(format!("stderr does not contain {expected:?}"));
        }
    }
    for seed in SEEDS {
        if run.stdout.contains(seed) || run.stderr.contains(seed) {
            return fail(format!("the seeded credential {seed:?} appears in the output"));
        }
    }
    if run.stderr.contains("panicked") || run.stderr.contains("RUST_BACKTRACE") {
        return fail("weaver panicked".to_string());
    }
    Ok(())
}

#[test]
fn an_unknown_environment_names_the_file_it_looked_for() {
    run_cases(&[Case {
        name: "unknown environment",
        files: &[],
        args: &["render", "--env", "nope"],
        env: &[],
        expect: &["environments/nope.yaml"],
    }]);
}
