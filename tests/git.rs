//! Git: `weaver changed`, `--changed-since`, `--rev` and provenance, over temporary
//! repositories built with git2.

use crate::common;
use common::git::{commit_all, init};
use common::{Repo, interop_available, numbered_markers, weaver_in};

use std::path::Path;

use serde_json::Value;

/// The demo repository, committed once.
fn demo_history() -> (Repo, git2::Repository) {
    let repo = Repo::demo();
    let git = init(repo.path());
    commit_all(&git, "demo");
    (repo, git)
}

fn read(repo: &Repo, path: &str) -> String {
    std::fs::read_to_string(repo.path().join(path)).unwrap()
}

/// Replaces `from` by `to` in a file, failing when `from` is not there (so no test edits
/// nothing by accident).
fn replace(repo: &Repo, path: &str, from: &str, to: &str) {
    let text = read(repo, path);
    assert!(text.contains(from), "{path} does not contain {from:?}");
    repo.write(path, &text.replacen(from, to, 1));
}

fn append(repo: &Repo, path: &str, text: &str) {
    repo.write(path, &(read(repo, path) + text));
}

/// `weaver changed --base HEAD` after `edit` to the committed demo.
fn changed_after(edit: impl FnOnce(&Repo)) -> Value {
    let (repo, _git) = demo_history();
    edit(&repo);
    changed_json(&repo, &["--base", "HEAD"])
}

fn changed_json(repo: &Repo, args: &[&str]) -> Value {
    let run = repo.weaver(&[&["changed", "-o", "json"], args].concat());
    serde_json::from_str(run.success()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// `environment/release status` for each affected release, in report order.
fn affected(report: &Value) -> Vec<String> {
    report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{} {}",
                r["environment"].as_str().unwrap(),
                r["release"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// The paths that affect `environment/release`.
fn reasons(report: &Value, pair: &str) -> Vec<String> {
    let release = report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| format!("{}/{}", r["environment"].as_str().unwrap(), r["release"].as_str().unwrap()) == pair)
        .unwrap_or_else(|| panic!("{pair} is not in the report: {report:#}"));
    release["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

fn unattributed(report: &Value) -> Vec<&str> {
    report["unattributed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect()
}

/// The releases a render printed, from its `# Source:` comments, without repeats.
fn rendered_releases(output: &str) -> Vec<String> {
    let mut releases: Vec<String> = output
        .lines()
        .filter_map(|l| l.strip_prefix("# Source: ")?.rsplit_once("(release ")?.1.strip_suffix(')').map(String::from))
        .collect();
    releases.dedup();
    releases
}

#[test]
fn a_chart_edit_affects_every_release_using_it_in_every_environment() {
    let report = changed_after(|repo| append(repo, "charts/web-app/values.yaml", "extraLabel: x\n"));
    // base is abstract: its web is never deployed itself.
    assert_eq!(affected(&report), ["dev/web changed", "prod/web changed", "staging/web changed"]);
    assert_eq!(reasons(&report, "prod/web"), ["charts/web-app/values.yaml"]);
    assert!(unattributed(&report).is_empty());
}

#[test]
fn an_environment_edit_affects_the_releases_it_redefines_or_all_for_an_environment_wide_setting() {
    let (repo, git) = demo_history();
    replace(&repo, "environments/prod.yaml", "maxReplicas: 12", "maxReplicas: 20");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), ["prod/web changed"]);
    assert_eq!(reasons(&report, "prod/web"), ["environments/prod.yaml"]);
    commit_all(&git, "prod web scales further");

    replace(&repo, "environments/prod.yaml", "namespace: shop\n", "namespace: shop-eu\n");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), ["prod/redis changed", "prod/web changed"]);
    // Against an older base, both edits count.
    let report = changed_json(&repo, &["--base", "HEAD~1"]);
    assert_eq!(affected(&report), ["prod/redis changed", "prod/web changed"]);
}

#[test]
fn a_comment_only_environment_edit_affects_nothing_and_is_not_unattributed() {
    let report = changed_after(|repo| append(repo, "environments/staging.yaml", "# reviewed\n"));
    assert!(affected(&report).is_empty(), "{report:#}");
    assert!(unattributed(&report).is_empty());
}

#[test]
fn a_base_edit_affects_the_environments_extending_it_transitively() {
    let repo = Repo::demo();
    // prod-eu2 extends prod, which extends base.
    repo.write("environments/prod-eu2.yaml", "extends: prod\nnamespace: shop-eu2\n");
    let git = init(repo.path());
    commit_all(&git, "demo with a second prod");

    replace(&repo, "environments/base.yaml", "replicas: 2", "replicas: 4");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    // staging and prod do not set replicas; dev overrides it, so dev/web's effective release is unchanged.
    assert_eq!(affected(&report), ["prod/web changed", "prod-eu2/web changed", "staging/web changed"]);
    assert_eq!(reasons(&report, "prod-eu2/web"), ["environments/base.yaml"]);

    replace(&repo, "environments/base.yaml", "team: shop", "team: shop-platform");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    // dev also deploys the operator and its two tenants.
    let dev = ["redis", "settings-sync", "staging-sync", "weaver", "web"].map(|r| format!("dev/{r} changed"));
    let everything: Vec<String> = dev
        .into_iter()
        .chain(
            ["prod", "prod-eu2", "staging"]
                .iter()
                .flat_map(|env| ["redis", "web"].map(|r| format!("{env}/{r} changed"))),
        )
        .collect();
    assert_eq!(affected(&report), everything);
}

#[test]
fn a_values_file_edit_affects_the_releases_listing_it() {
    let report =
        changed_after(|repo| replace(repo, "environments/values/web-dev.yaml", "LOG_LEVEL: debug", "LOG_LEVEL: trace"));
    assert_eq!(affected(&report), ["dev/web changed"]);
    assert_eq!(reasons(&report, "dev/web"), ["environments/values/web-dev.yaml"]);
}

#[test]
fn a_release_s_own_secrets_file_affects_that_release_alone() {
    let (repo, git) = demo_history();
    replace(
        &repo,
        "environments/dev.yaml",
        "valuesFiles: [environments/values/web-dev.yaml]",
        "valuesFiles: [environments/values/web-dev.yaml]\n    secrets: [secrets/web-dev.yaml]",
    );
    repo.write("secrets/web-dev.yaml", "sops: {}\n");
    commit_all(&git, "web has its own secrets");
    append(&repo, "secrets/web-dev.yaml", "# re-encrypted\n");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), ["dev/web changed"]);
    assert_eq!(reasons(&report, "dev/web"), ["secrets/web-dev.yaml"]);
}

#[test]
fn a_secrets_edit_affects_its_environments_releases() {
    let report = changed_after(|repo| append(repo, "secrets/dev.yaml", "# re-encrypted\n"));
    assert_eq!(
        affected(&report),
        [
            "dev/redis changed",
            "dev/settings-sync changed",
            "dev/staging-sync changed",
            "dev/weaver changed",
            "dev/web changed"
        ]
    );
    assert_eq!(reasons(&report, "dev/redis"), ["secrets/dev.yaml"]);
}

#[test]
fn sops_rules_and_identity_files_are_attributed_but_deploy_nothing() {
    let report = changed_after(|repo| {
        append(repo, "secrets/.sops.yaml", "# reviewed\n");
        append(repo, "secrets/dev.agekey", "\n");
    });
    assert!(affected(&report).is_empty(), "{report:#}");
    assert!(unattributed(&report).is_empty(), "{report:#}");
}

#[test]
fn a_renamed_environment_is_removed_under_its_old_name_and_added_under_the_new() {
    let report = changed_after(|repo| {
        repo.write("environments/qa.yaml", &read(repo, "environments/staging.yaml"));
        repo.remove("environments/staging.yaml");
    });
    assert_eq!(affected(&report), ["qa/redis added", "qa/web added", "staging/redis removed", "staging/web removed"]);
    assert_eq!(reasons(&report, "staging/web"), ["environments/staging.yaml"]);
    assert_eq!(reasons(&report, "qa/web"), ["environments/qa.yaml"]);
}

#[test]
fn a_renamed_values_file_counts_on_both_sides() {
    let (repo, git) = demo_history();
    repo.write("environments/values/dev/web.yaml", &read(&repo, "environments/values/web-dev.yaml"));
    repo.remove("environments/values/web-dev.yaml");
    replace(&repo, "environments/dev.yaml", "environments/values/web-dev.yaml", "environments/values/dev/web.yaml");
    commit_all(&git, "move the values file");
    let report = changed_json(&repo, &["--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(affected(&report), ["dev/web changed"]);
    assert_eq!(
        reasons(&report, "dev/web"),
        ["environments/dev.yaml", "environments/values/dev/web.yaml", "environments/values/web-dev.yaml"]
    );
}

#[test]
fn deleted_environments_and_releases_are_removed() {
    let repo = Repo::demo();
    append(&repo, "environments/staging.yaml", "  - name: cache\n    chart: redis\n");
    let git = init(repo.path());
    commit_all(&git, "staging has a cache");

    replace(&repo, "environments/staging.yaml", "  - name: cache\n    chart: redis\n", "");
    repo.remove("environments/prod.yaml");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), ["prod/redis removed", "prod/web removed", "staging/cache removed"]);
}

#[test]
fn a_new_release_is_added_and_leaves_its_neighbours_alone() {
    let report = changed_after(|repo| append(repo, "environments/dev.yaml", "  - name: cache\n    chart: redis\n"));
    assert_eq!(affected(&report), ["dev/cache added"]);
    assert_eq!(reasons(&report, "dev/cache"), ["environments/dev.yaml"]);
}

#[test]
fn paths_weaver_cannot_attribute_are_listed() {
    let report = changed_after(|repo| {
        repo.write("scripts/deploy.sh", "#!/bin/sh\n").write("environments/values/unused.yaml", "a: 1\n");
        append(repo, "charts/redis/chart.yaml", "# touched\n");
    });
    assert_eq!(unattributed(&report), ["environments/values/unused.yaml", "scripts/deploy.sh"]);
    assert_eq!(affected(&report), ["dev/redis changed", "prod/redis changed", "staging/redis changed"]);
}

#[test]
fn the_default_head_is_the_working_tree_with_uncommitted_and_untracked_files_but_not_ignored_ones() {
    let (repo, git) = demo_history();
    repo.write(".gitignore", "*.local\n");
    commit_all(&git, "ignore local files");
    append(&repo, "charts/redis/values.yaml", "# uncommitted\n"); // tracked, modified
    repo.write("notes.txt", "untracked\n").write("charts/web-app/files/banner.local", "ignored\n");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), ["dev/redis changed", "prod/redis changed", "staging/redis changed"]);
    assert_eq!(unattributed(&report), ["notes.txt"]);
    // A staged change counts too.
    let mut index = git.index().unwrap();
    index.add_path(Path::new("charts/redis/values.yaml")).unwrap();
    index.write().unwrap();
    assert_eq!(changed_json(&repo, &["--base", "HEAD"]), report);
    // With --head HEAD (or its alias --rev), the working tree does not count.
    for flag in ["--head", "--rev"] {
        let committed = changed_json(&repo, &["--base", "HEAD~1", flag, "HEAD"]);
        assert!(affected(&committed).is_empty(), "{committed:#}");
        assert_eq!(unattributed(&committed), [".gitignore"]);
    }
}

#[test]
fn json_output_follows_the_documented_schema() {
    let (repo, git) = demo_history();
    let base = git.head().unwrap().target().unwrap().to_string();
    append(&repo, "environments/values/web-dev.yaml", "extra: 1\n");
    repo.write("README.md", "hello\n");
    let expected = serde_json::json!({
        "base": { "rev": "HEAD", "commit": base },
        "head": { "rev": null, "commit": base, "workingTree": true },
        "environments": ["dev"],
        "releases": [
            { "environment": "dev", "release": "web", "status": "changed", "paths": ["environments/values/web-dev.yaml"] }
        ],
        "unattributed": ["README.md"],
    });
    assert_eq!(changed_json(&repo, &["--base", "HEAD"]), expected);

    let head = commit_all(&git, "second").to_string();
    let report = changed_json(&repo, &["--base", &base, "--head", "HEAD"]);
    assert_eq!(report["head"], serde_json::json!({ "rev": "HEAD", "commit": head, "workingTree": false }));
    assert_eq!(report["base"]["rev"], base);
}

#[test]
fn text_output_names_the_versions_releases_and_unattributed_paths() {
    let (repo, git) = demo_history();
    let short = &git.head().unwrap().target().unwrap().to_string()[..8];
    append(&repo, "secrets/dev.yaml", "# re-encrypted\n");
    repo.write("README.md", "hello\n");
    let out = repo.weaver(&["changed", "--base", "HEAD"]).success().to_string();
    let expected = format!(
        "base: commit {short} (HEAD)\nhead: the working tree (on commit {short})\n\n\
         environments: dev\n\n\
         ENVIRONMENT  RELEASE        STATUS   BECAUSE OF\n\
         dev          redis          changed  secrets/dev.yaml\n\
         dev          settings-sync  changed  secrets/dev.yaml\n\
         dev          staging-sync   changed  secrets/dev.yaml\n\
         dev          weaver         changed  secrets/dev.yaml\n\
         dev          web            changed  secrets/dev.yaml\n\n\
         unattributed (weaver cannot tell which releases these affect):\n  README.md\n"
    );
    assert_eq!(out, expected);
    repo.remove("README.md");
    replace(&repo, "secrets/dev.yaml", "# re-encrypted\n", "");
    let out = repo.weaver(&["changed", "--base", "HEAD"]).success().to_string();
    assert!(out.ends_with("\n\nno release is affected\n"), "{out}");
}

#[test]
fn changed_since_selects_exactly_what_changed_reports_for_the_environment() {
    // prod renders with the test key from a stand-in of its secrets, committed.
    let repo = Repo::demo();
    let fixtures = common::project_root().join("tests/fixtures");
    std::fs::copy(fixtures.join("prod-secrets.yaml"), repo.path().join("secrets/prod.yaml")).unwrap();
    let key = fixtures.join("prod-test.agekey");
    let envs = [("SOPS_AGE_KEY_FILE", key.to_str().unwrap())];
    let git = init(repo.path());
    commit_all(&git, "demo");
    replace(&repo, "environments/base.yaml", "replicas: 2", "replicas: 4"); // staging/web, prod/web
    append(&repo, "environments/dev.yaml", "  - name: cache\n    chart: redis\n"); // dev/cache added
    append(&repo, "charts/redis/values.yaml", "# touched\n"); // every redis
    commit_all(&git, "changes");
    replace(&repo, "environments/staging.yaml", "  - name: redis\n    values:\n      storage: 2Gi\n", "");

    for (base, head) in [("HEAD~1", None), ("HEAD~1", Some("HEAD")), ("HEAD", None)] {
        let mut changed_args = vec!["--base", base];
        changed_args.extend(head.iter().flat_map(|h| ["--head", *h]));
        let report = changed_json(&repo, &changed_args);
        for env in ["dev", "prod", "staging"] {
            let mut expected: Vec<String> = report["releases"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["environment"] == env && r["status"] != "removed")
                .map(|r| r["release"].as_str().unwrap().to_string())
                .collect();
            let mut args = vec!["render", "--env", env, "--changed-since", base];
            args.extend(head.iter().flat_map(|h| ["--rev", *h]));
            let run = repo.weaver_env(&args, &envs);
            let mut got = rendered_releases(run.success());
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "render --env {env} --changed-since {base} --rev {head:?}");
        }
    }
    // The sanity of the cases above: something was selected, and something was left out.
    let dev = repo.weaver(&["render", "--env", "dev", "--changed-since", "HEAD~1", "--rev", "HEAD"]);
    assert_eq!(rendered_releases(dev.success()), ["redis", "cache"]);
}

#[test]
fn changed_since_names_removed_releases_and_combines_with_other_selectors() {
    let (repo, _git) = demo_history();
    append(&repo, "charts/redis/values.yaml", "# touched\n");
    append(&repo, "charts/web-app/values.yaml", "# touched\n");
    let run = repo.weaver(&["render", "--env", "dev", "--changed-since", "HEAD", "-l", "tier=data"]);
    assert_eq!(rendered_releases(run.success()), ["redis"]);

    replace(&repo, "environments/dev.yaml", "extends: base\n", "extends: base\nabstract: true\n");
    repo.write("environments/dev-local.yaml", "extends: dev\n");
    let run = repo.weaver(&["render", "--env", "dev-local", "--changed-since", "HEAD"]);
    assert_eq!(rendered_releases(run.success()), ["redis", "web", "weaver", "settings-sync", "staging-sync"]);
    let run = repo.weaver(&["render", "--env", "staging", "--changed-since", "HEAD", "-r", "web"]);
    assert_eq!(rendered_releases(run.success()), ["web"]);

    let (repo, _git) = demo_history();
    repo.write("environments/staging.yaml", "extends: base\nnamespace: shop-staging\nreleases: []\n");
    replace(&repo, "environments/base.yaml", "  - name: redis\n    chart: redis\n    labels: { tier: data }\n", "");
    replace(&repo, "environments/base.yaml", "    needs: [redis]\n", "");
    let run = repo.weaver(&["render", "--env", "staging", "--changed-since", "HEAD"]);
    assert!(run.stderr.contains("release `redis` of environment `staging` was removed since `HEAD`"), "{}", run.stderr);
    assert_eq!(rendered_releases(run.success()), ["web"]);
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
    // "\ndata:", not "data:": `metadata:` ends with it too.
    edit("charts/web-app/templates/configmap.yaml", "\ndata:", "\ndata:\n  EDITION: newer");
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
        // Markers are keyed per run: what must match is which values are equal.
        let render = |dir: &Path, args: &[&str]| numbered_markers(weaver_in(dir, args, &[]).success());
        let expected = render(checkout.path(), &["render", "--env", env]);
        for rev in ["HEAD~1", &older.to_string(), &older.to_string()[..10]] {
            let got = render(source.path(), &["render", "--env", env, "--rev", rev]);
            assert!(got == expected, "render --env {env} --rev {rev} differs from the checkout");
        }
        let newer = render(source.path(), &["render", "--env", env, "--rev", "HEAD"]);
        assert_ne!(newer, expected, "the test needs commits that render differently");
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
    let now = weaver_in(&deploy, &["render", "--env", "dev"], &[]);
    assert_eq!(numbered_markers(old.success()), numbered_markers(now.success()));
}

#[test]
fn changed_in_a_subdirectory_maps_paths_relative_to_it_and_ignores_the_rest() {
    let top = tempfile::tempdir().unwrap();
    let (deploy, git) = nested(top.path(), &Repo::demo());
    commit_all(&git, "app and deploy");
    std::fs::write(top.path().join("main.go"), "package main // edited\n").unwrap();
    std::fs::write(top.path().join("charts.txt"), "outside\n").unwrap();
    let values = deploy.join("charts/redis/values.yaml");
    std::fs::write(&values, std::fs::read_to_string(&values).unwrap() + "# edited\n").unwrap();
    commit_all(&git, "edits");

    let run = weaver_in(&deploy, &["changed", "--base", "HEAD~1", "--head", "HEAD", "-o", "json"], &[]);
    let report: Value = serde_json::from_str(run.success()).unwrap();
    assert_eq!(affected(&report), ["dev/redis changed", "prod/redis changed", "staging/redis changed"]);
    assert_eq!(reasons(&report, "dev/redis"), ["charts/redis/values.yaml"]);
    assert!(unattributed(&report).is_empty(), "{report:#}");
}

#[test]
fn errors_loading_the_base_name_its_commit() {
    let (repo, git) = demo_history();
    repo.write("environments/staging.yaml", "extends: base\nreleasez: []\n");
    let broken = commit_all(&git, "broken staging").to_string();
    repo.write("environments/staging.yaml", "extends: base\n");
    let run = repo.weaver(&["changed", "--base", "HEAD"]);
    let stderr = run.failure();
    let expected = format!(
        "error: in commit {} (HEAD): environments/staging.yaml:2:1: invalid environment file: unknown field `releasez`",
        &broken[..8]
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn an_unknown_rev_is_an_error_naming_it_and_its_flag() {
    let (repo, _git) = demo_history();
    for (args, flag) in [
        (vec!["render", "--env", "dev", "--rev", "no-such-branch"], "--rev"),
        (vec!["envs", "--rev", "no-such-branch"], "--rev"),
        (vec!["changed", "--base", "no-such-branch"], "--base"),
        (vec!["changed", "--base", "HEAD", "--head", "no-such-branch"], "--head"),
        (vec!["render", "--env", "dev", "--changed-since", "no-such-branch"], "--changed-since"),
        (vec!["changed", "--base", "HEAD~5"], "--base"),
    ] {
        let run = repo.weaver(&args);
        let stderr = run.failure();
        let rev = args.last().unwrap();
        assert!(stderr.contains(&format!("error: unknown revision `{rev}` ({flag})")), "{args:?}: {stderr}");
        assert!(stderr.contains("help: give a branch, tag, commit SHA"), "{stderr}");
    }
    let run = repo.weaver(&["changed", "--base", "HEAD^{tree}"]);
    assert!(run.failure().contains("error: `HEAD^{tree}` (--base) names a tree, not a commit"), "{}", run.stderr);
}

#[test]
fn a_path_outside_any_git_repository_is_an_error() {
    let outside = Repo::minimal();
    let parent = outside.path().parent().unwrap().to_str().unwrap().to_string();
    // Stop git's search at the temporary directory, whatever lies above it.
    let ceiling = [("GIT_CEILING_DIRECTORIES", parent.as_str())];
    for args in [
        vec!["changed", "--base", "HEAD"],
        vec!["render", "--env", "dev", "--rev", "HEAD"],
        vec!["render", "--env", "dev", "--changed-since", "HEAD"],
    ] {
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
    let run = weaver_in(&missing, &["changed", "--base", "HEAD"], &ceiling);
    assert!(
        run.failure().contains("cannot open the repository directory: no such file or directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_shallow_clone_missing_the_base_commit_says_so() {
    let git_cli = std::process::Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success());
    if !interop_available("git", git_cli) {
        return;
    }
    let (repo, git) = demo_history();
    let first = git.head().unwrap().target().unwrap().to_string();
    append(&repo, "charts/redis/values.yaml", "# second\n");
    commit_all(&git, "second");
    let shallow = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    let out = std::process::Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", &url])
        .arg(shallow.path().join("clone"))
        .output()
        .unwrap();
    assert!(out.status.success(), "git clone: {}", String::from_utf8_lossy(&out.stderr));
    let clone = shallow.path().join("clone");
    for base in ["HEAD~1", first.as_str()] {
        let run = weaver_in(&clone, &["changed", "--base", base], &[]);
        let stderr = run.failure();
        assert!(stderr.contains(&format!("error: `{base}` (--base) is not in ")), "{stderr}");
        assert!(stderr.contains("a shallow clone"), "{stderr}");
        assert!(stderr.contains("help: fetch the history weaver needs: `git fetch --unshallow`"), "{stderr}");
    }
    // What the clone has still works.
    weaver_in(&clone, &["changed", "--base", "HEAD"], &[]).success();
}

#[test]
fn provenance_is_the_commit_and_whether_the_weaver_repository_has_uncommitted_changes() {
    use weaver_git::{Provenance, provenance};
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

/// `weaver.yaml`'s `ignorePaths` (read from head) take paths out of the comparison: a chart's
/// README no longer affects its releases, code and docs are not unattributed; other paths are.
#[test]
fn ignored_paths_affect_nothing_and_are_not_unattributed() {
    let (repo, _git) = demo_history();
    let report = changed_after(|repo| {
        repo.write("src/main.rs", "fn main() {}\n").write("charts/web-app/README.md", "# web\n");
    });
    assert_eq!(unattributed(&report), ["src/main.rs"], "without settings, code is unattributed");
    assert_eq!(affected(&report).len(), 3, "and a chart's README affects its releases: {report:#}");

    repo.write("weaver.yaml", "ignorePaths:\n  - src/**\n  - \"*.md\"\n  - \"charts/*/README.md\"\n");
    repo.write("src/main.rs", "fn main() {}\n")
        .write("src/deep/er.rs", "\n")
        .write("README.md", "# repo\n")
        .write("charts/web-app/README.md", "# web\n")
        .write("docs/guide.md", "# not matched: `*` stays in its directory\n")
        .write("scripts/deploy.sh", "#!/bin/sh\n");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), Vec::<String>::new(), "{report:#}");
    // weaver.yaml itself deploys nothing and is not unattributed.
    assert_eq!(unattributed(&report), ["docs/guide.md", "scripts/deploy.sh"], "{report:#}");
    let run = repo.weaver(&["render", "--env", "dev", "--changed-since", "HEAD"]);
    assert_eq!(rendered_releases(run.success()), Vec::<String>::new(), "{}", run.stderr);
}

/// This checkout is the demo repository too: its weaver.yaml leaves out everything of the
/// engine (every top-level entry other than the demo's own), so a commit touching only code
/// reports nothing. A new top-level entry must be added to weaver.yaml (or to this list).
#[test]
fn the_demo_repository_ignores_its_own_engine_sources() {
    let (repo, _git) = demo_history();
    let root = common::project_root();
    repo.write("weaver.yaml", &std::fs::read_to_string(root.join("weaver.yaml")).unwrap());
    let demo = ["environments", "charts", "secrets", "weaver.yaml", "target", ".git"];
    let mut touched = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if demo.contains(&name.as_str()) {
            continue;
        }
        let path = if entry.file_type().unwrap().is_dir() { format!("{name}/some/file.rs") } else { name };
        repo.write(&path, "changed\n");
        touched.push(path);
    }
    assert!(touched.len() >= 8, "{touched:?}");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    assert_eq!(affected(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(unattributed(&report), Vec::<&str>::new(), "touched {touched:?}: {report:#}");
}

/// helmfile's layout: the abstract base leaves `web`'s chart to the environments extending it.
/// Every command that reads all environments reads it; a base edit affects the children it reaches.
#[test]
fn an_abstract_base_leaving_a_chart_to_its_children_works_for_every_command() {
    let (repo, git) = demo_history();
    replace(&repo, "environments/base.yaml", "  - name: web\n    chart: web-app\n", "  - name: web\n");
    for env in ["dev", "staging", "prod"] {
        replace(&repo, &format!("environments/{env}.yaml"), "  - name: web\n", "  - name: web\n    chart: web-app\n");
    }
    commit_all(&git, "web's chart in each environment");
    let envs: Value = serde_json::from_str(repo.weaver(&["envs", "-o", "json"]).success()).unwrap();
    let names: Vec<&str> =
        envs["environments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["base", "dev", "prod", "staging"]);
    repo.weaver(&["charts", "lock"]).success();
    replace(&repo, "environments/base.yaml", "replicas: 2", "replicas: 3");
    let report = changed_json(&repo, &["--base", "HEAD"]);
    // dev sets its own `replicas`: its web is the same.
    assert_eq!(affected(&report), ["prod/web changed", "staging/web changed"]);
}
