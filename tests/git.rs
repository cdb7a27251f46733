//! Git: `--rev` and provenance, over temporary repositories built with git2.

mod common;
use common::git::{commit_all, init};
use common::{Repo, weaver_in};

use std::path::Path;

use serde_json::Value;

/// The demo repository, committed once.
fn demo_history() -> (Repo, git2::Repository) {
    let repo = Repo::demo();
    let git = init(repo.path());
    commit_all(&git, "demo");
    (repo, git)
}

/// A demo history whose older commit differs from the newer one in values, a template and an
/// environment, and uses a symlinked values file and a symlinked chart directory.
fn history_with_an_older_commit(dir: &Path) -> (git2::Repository, git2::Oid) {
    let repo = Repo::demo();
    common::copy_dir(repo.path(), dir);
    let at = |path: &str| dir.join(path);
    std::fs::create_dir_all(at("shared")).unwrap();
    std::fs::rename(at("environments/values/web-dev.yaml"), at("shared/web-dev.yaml")).unwrap();
    std::os::unix::fs::symlink("../../shared/web-dev.yaml", at("environments/values/web-dev.yaml")).unwrap();
    std::os::unix::fs::symlink("redis", at("charts/cache")).unwrap();
    let dev = std::fs::read_to_string(at("environments/dev.yaml")).unwrap();
    std::fs::write(at("environments/dev.yaml"), dev + "  - name: cache\n    chart: cache\n").unwrap();
    let git = init(dir);
    let older = commit_all(&git, "older");

    let edit = |path: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(at(path)).unwrap();
        assert!(text.contains(from), "{path}: {from}");
        std::fs::write(at(path), text.replace(from, to)).unwrap();
    };
    edit("shared/web-dev.yaml", "LOG_LEVEL: debug", "LOG_LEVEL: trace");
    edit("charts/web-app/templates/configmap.yaml", "data:", "data:\n  EDITION: newer");
    edit("environments/base.yaml", "domain: shop.example.org", "domain: shop.example.com");
    commit_all(&git, "newer");
    (git, older)
}

#[test]
fn render_rev_of_an_older_commit_equals_a_render_of_its_checkout_byte_for_byte() {
    let source = tempfile::tempdir().unwrap();
    let (git, older) = history_with_an_older_commit(source.path());
    // Uncommitted edits must not leak into --rev.
    std::fs::write(source.path().join("charts/redis/values.yaml"), "broken: [\n").unwrap();
    let status_before = git.statuses(None).unwrap().len();

    let checkout = tempfile::tempdir().unwrap();
    let clone = git2::Repository::clone(source.path().to_str().unwrap(), checkout.path()).unwrap();
    clone
        .checkout_tree(&clone.find_object(older, None).unwrap(), Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    clone.set_head_detached(older).unwrap();
    assert!(checkout.path().join("environments/values/web-dev.yaml").is_symlink());

    for env in ["dev", "staging"] {
        let expected = weaver_in(checkout.path(), &["render", "--env", env], &[]);
        let expected = expected.success();
        for rev in ["HEAD~1", &older.to_string(), &older.to_string()[..10]] {
            let got = weaver_in(source.path(), &["render", "--env", env, "--rev", rev], &[]);
            assert!(got.success() == expected, "render --env {env} --rev {rev} differs from the checkout");
        }
        let newer = weaver_in(source.path(), &["render", "--env", env, "--rev", "HEAD"], &[]);
        assert_ne!(newer.success(), expected, "the test needs commits that render differently");
    }
    let dev = weaver_in(source.path(), &["render", "--env", "dev", "--rev", "HEAD~1"], &[]);
    assert!(dev.stdout.contains("LOG_LEVEL: debug") && dev.stdout.contains("(release cache)"));
    // The working tree is untouched.
    assert_eq!(git.statuses(None).unwrap().len(), status_before);
    assert_eq!(std::fs::read_to_string(source.path().join("charts/redis/values.yaml")).unwrap(), "broken: [\n");
}

/// A git repository at `top` holding an application's `main.go` and, in `deploy/`, a copy of
/// `weaver_repo`; nothing committed yet.
fn nested(top: &Path, weaver_repo: &Repo) -> (std::path::PathBuf, git2::Repository) {
    let deploy = top.join("deploy");
    common::copy_dir(weaver_repo.path(), &deploy);
    std::fs::write(top.join("main.go"), "package main\n").unwrap();
    (deploy, init(top))
}

#[test]
fn render_rev_reads_a_weaver_repository_in_a_subdirectory_and_envs_rev_lists_old_environments() {
    let top = tempfile::tempdir().unwrap();
    let (deploy, git) = nested(top.path(), &Repo::demo());
    commit_all(&git, "app and deploy");
    std::fs::remove_file(deploy.join("environments/prod.yaml")).unwrap();
    commit_all(&git, "no prod");

    let envs = weaver_in(&deploy, &["envs", "--rev", "HEAD~1", "-o", "json"], &[]);
    let names: Vec<String> = serde_json::from_str::<Value>(envs.success()).unwrap()["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["base", "dev", "prod", "staging"]);
    let now = weaver_in(&deploy, &["envs"], &[]);
    assert!(!now.success().contains("prod"));
    let old = weaver_in(&deploy, &["render", "--env", "dev", "--rev", "HEAD~1"], &[]);
    assert_eq!(old.success(), weaver_in(&deploy, &["render", "--env", "dev"], &[]).success());
}

#[test]
fn an_unknown_rev_is_an_error_naming_it_and_its_flag() {
    let (repo, _git) = demo_history();
    for args in [
        vec!["render", "--env", "dev", "--rev", "no-such-branch"],
        vec!["envs", "--rev", "no-such-branch"],
        vec!["envs", "--rev", "HEAD~5"],
    ] {
        let run = repo.weaver(&args);
        let stderr = run.failure();
        let rev = args.last().unwrap();
        assert!(stderr.contains(&format!("error: unknown revision `{rev}` (--rev)")), "{args:?}: {stderr}");
        assert!(stderr.contains("help: give a branch, tag, commit SHA"), "{stderr}");
    }
    let run = repo.weaver(&["envs", "--rev", "HEAD^{tree}"]);
    assert!(run.failure().contains("error: `HEAD^{tree}` (--rev) names a tree, not a commit"), "{}", run.stderr);
}

#[test]
fn a_path_outside_any_git_repository_is_an_error() {
    let outside = Repo::minimal();
    let parent = outside.path().parent().unwrap().to_str().unwrap().to_string();
    // Stop git's search at the temporary directory, whatever lies above it.
    let ceiling = [("GIT_CEILING_DIRECTORIES", parent.as_str())];
    for args in [vec!["render", "--env", "dev", "--rev", "HEAD"], vec!["envs", "--rev", "HEAD"]] {
        let run = outside.weaver_env(&args, &ceiling);
        let stderr = run.failure();
        assert!(
            stderr.contains(&format!("error: {} is not inside a git repository", outside.path().display())),
            "{stderr}"
        );
    }
    // Without git, rendering the directory still works.
    outside.weaver_env(&["render", "--env", "dev"], &ceiling).success();
    let missing = outside.path().join("missing");
    let run = weaver_in(&missing, &["envs", "--rev", "HEAD"], &ceiling);
    assert!(
        run.failure().contains("cannot open the repository directory: no such file or directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn provenance_is_the_commit_and_whether_the_weaver_repository_has_uncommitted_changes() {
    use weaver::git::{Provenance, provenance};
    let top = tempfile::tempdir().unwrap();
    let (deploy, git) = nested(top.path(), &Repo::minimal());
    std::fs::write(top.path().join(".gitignore"), "*.local\n").unwrap();
    let first = commit_all(&git, "first").to_string();
    let clean = Provenance { commit: first.clone(), dirty: false };
    assert_eq!(provenance(&deploy, None).unwrap(), Some(clean.clone()));

    // Outside the weaver repository, and ignored files, do not make it dirty.
    std::fs::write(top.path().join("main.go"), "package main // edited\n").unwrap();
    std::fs::write(deploy.join("scratch.local"), "ignored\n").unwrap();
    assert_eq!(provenance(&deploy, None).unwrap(), Some(clean.clone()));

    std::fs::write(deploy.join("notes.txt"), "untracked\n").unwrap();
    assert_eq!(provenance(&deploy, None).unwrap(), Some(Provenance { commit: first.clone(), dirty: true }));
    std::fs::remove_file(deploy.join("notes.txt")).unwrap();
    std::fs::write(deploy.join("environments/dev.yaml"), "namespace: other\n").unwrap();
    assert!(provenance(&deploy, None).unwrap().unwrap().dirty);
    let second = commit_all(&git, "second").to_string();
    assert_eq!(provenance(&deploy, None).unwrap(), Some(Provenance { commit: second, dirty: false }));

    // --rev: that commit, whatever the working tree holds.
    std::fs::write(deploy.join("environments/dev.yaml"), "namespace: third\n").unwrap();
    assert_eq!(provenance(&deploy, Some("HEAD~1")).unwrap(), Some(clean));

    let plain = tempfile::tempdir().unwrap();
    // Only meaningful where the temporary directory is not itself inside a git repository.
    if git2::Repository::discover(plain.path()).is_err() {
        assert_eq!(provenance(plain.path(), None).unwrap(), None);
    }
    let unborn = tempfile::tempdir().unwrap();
    init(unborn.path());
    assert_eq!(provenance(unborn.path(), None).unwrap(), None);
}
