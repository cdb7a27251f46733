//! Who signed a commit (`--verify-commits`, issue 92), for commits git signed with an ssh-keygen
//! ED25519 key and with a GnuPG ED25519 key: the head commit, and the 100 commits since a last
//! applied one as `spec.source.verify.mode: all` checks them (a revision walk, each commit read
//! from the object database and checked against the trust list); then `weaver envs --rev HEAD` with and without
//! the check, end to end. Goal: under a tenth of a fetch (the git_fetch bench's incremental
//! fetch). Run with `cargo bench --bench verify`; skipped, saying so, without git, ssh-keygen or
//! gpg.

mod support;

use std::path::Path;
use std::time::Duration;

use weaver_engine::action::verify::{Named, signed};
use weaver_git::GitRepo;
use weaver_test_support::signing::{self, Gpg, signing_with_openpgp, signing_with_ssh, ssh_key};
use weaver_verify::TrustList;

const COMMITS: usize = 100;

fn main() {
    if let Some(missing) = signing::missing(&["git", "ssh-keygen", "gpg"]) {
        eprintln!("verify: skipped: {missing}");
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (ssh, ssh_public) = ssh_key(keys.path(), "alice", &["-t", "ed25519"]);
    let gpg = Gpg::new();
    let fingerprint = gpg.key("Alice <alice@example.com>");
    let cases = [
        ("SSH ED25519", signing_with_ssh(&ssh), format!("alice@example.com {ssh_public}\n")),
        ("OpenPGP ED25519", signing_with_openpgp(&fingerprint), gpg.export(&fingerprint)),
    ];
    for (name, [format, key], trust_text) in cases {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        write(dir, "charts/app/chart.yaml", "name: app\nversion: 0.1.0\n");
        write(dir, "charts/app/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n");
        write(dir, "environments/dev.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
        let git = |args: &[&str]| signing::git(dir, &gpg.env(), &[&format, &key], args);
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "-A"]);
        // One more than the range checked: the last applied commit it starts after.
        for i in 0..=COMMITS {
            git(&["commit", "-q", "-S", "--allow-empty", "-m", &format!("commit {i}")]);
        }
        let trust_file = keys.path().join(format!("trust-{}", name.replace(' ', "-")));
        std::fs::write(&trust_file, &trust_text).unwrap();

        let trust = TrustList::parse(&trust_text).expect("a trust list");
        let repository = GitRepo::open(dir).expect("the repository");
        let head_revision = repository.resolve("HEAD", "--rev").expect("a commit");
        let head = support::times_of(21, || {
            repository.verify(&head_revision, &trust).expect("signed");
        })[10];
        // As `spec.source.verify.mode: all` checks them: the range since the last applied
        // commit listed by a revision walk, each commit checked.
        let since = repository.resolve(&format!("HEAD~{COMMITS}"), "--rev").expect("a commit").commit.to_string();
        let named = Named { spec: "HEAD", what: "--rev", shown: None };
        let all = support::times_of(5, || {
            signed(dir, named, Some(&since), &trust).expect("signed");
        })[2];
        println!(
            "{name:<16} verify the head commit: {:>8.2} ms; {COMMITS} commits: {:>8.1} ms ({:.2} ms each)",
            ms(head),
            ms(all),
            ms(all) / COMMITS as f64
        );

        let repo_arg = dir.to_str().unwrap();
        let plain = ["--repo", repo_arg, "envs", "--rev", "HEAD"];
        let trust_arg = trust_file.to_str().unwrap();
        let verified = ["--repo", repo_arg, "envs", "--rev", "HEAD", "--verify-commits", trust_arg];
        for (what, args) in [("weaver envs --rev HEAD", &plain[..]), ("  … --verify-commits", &verified[..])] {
            support::time_weaver(args, 1);
            let timed = support::time_weaver(args, 11);
            println!(
                "{name:<16} {what:<24} median {}, CPU {}",
                support::ms(timed.median()),
                support::ms(timed.median_cpu())
            );
        }
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

/// Milliseconds with decimals: a check takes a fraction of one.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
