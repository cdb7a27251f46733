//! `--verify-commits` (issue 92): commits that git itself signed with ssh-keygen's keys
//! (`gpg.format=ssh`), checked against an `allowed_signers` file before anything is read.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Repo, interop_available, weaver_in};

/// Runs git in `dir`, with no configuration but the test's (`-c` pairs), and returns stdout.
fn git(dir: &Path, config: &[&str], args: &[&str]) -> String {
    git_with(dir, &[], config, args)
}

/// [`git`] with environment variables (`GNUPGHOME`).
fn git_with(dir: &Path, envs: &[(&str, &Path)], config: &[&str], args: &[&str]) -> String {
    let mut command = Command::new("git");
    command.current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
    command.envs(envs.iter().copied());
    command.args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "gpg.format=ssh"]);
    for pair in config {
        command.args(["-c", pair]);
    }
    let out = command.args(args).output().expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A new key (`ssh-keygen -t` and `-b` in `kind`): its private key file and its public line.
fn keygen(dir: &Path, name: &str, kind: &[&str]) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// `ssh-keygen -l`'s `SHA256:…` of a public key file.
fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(public).output().expect("run ssh-keygen");
    String::from_utf8(out.stdout).unwrap().split_whitespace().nth(1).expect("a fingerprint").to_string()
}

fn tools_available() -> bool {
    let runs = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok();
    interop_available("git and ssh-keygen (to sign commits)", runs("git", "--version") && runs("ssh-keygen", "-?"))
}

#[test]
fn only_a_commit_a_listed_key_signed_is_read_and_every_other_is_refused_naming_why() {
    if !tools_available() {
        return;
    }
    let repo = Repo::minimal();
    let dir = repo.path();
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_public) = keygen(keys.path(), "alice", &["-t", "ed25519"]);
    let (bob, bob_public) = keygen(keys.path(), "bob", &["-t", "ecdsa", "-b", "256"]);
    let (carol, carol_public) = keygen(keys.path(), "carol", &["-t", "rsa", "-b", "2048"]);
    let (dave, dave_public) = keygen(keys.path(), "dave", &["-t", "ecdsa", "-b", "384"]);
    let (mallory, _) = keygen(keys.path(), "mallory", &["-t", "ed25519"]);
    let trust = keys.path().join("allowed_signers");
    let list = format!(
        "# who may deploy\nalice@example.com namespaces=\"git\" {alice_public}\nbob@example.com {bob_public}\n\
         carol@example.com valid-after=\"20200101\" {carol_public}\ndave@example.com {dave_public}\n"
    );
    std::fs::write(&trust, list).unwrap();
    let trust = trust.to_str().unwrap();
    let sign_as = |key: &Path| format!("user.signingkey={}", key.display());
    git(dir, &[], &["init", "-q", "-b", "main"]);
    git(dir, &[], &["add", "-A"]);
    git(dir, &[&sign_as(&alice)], &["commit", "-q", "-S", "-m", "signed by alice"]);
    let signed = git(dir, &[], &["rev-parse", "HEAD"]).trim().to_string();

    // Signed by a listed key: read as it is, and the signer is named.
    let verified = weaver_in(dir, &["render", "--env", "dev", "--rev", "main", "--verify-commits", trust], &[]);
    let plain = weaver_in(dir, &["render", "--env", "dev", "--rev", "main"], &[]);
    assert_eq!(verified.success(), plain.success(), "the verified commit renders as itself");
    assert!(
        verified
            .stderr
            .contains(&format!("commit {} (main) is signed by alice@example.com (ED25519 key SHA256:", &signed[..8])),
        "{}",
        verified.stderr
    );

    // ECDSA P-256 and RSA keys sign as well.
    for (key, who, kind) in [(&bob, "bob", "ECDSA"), (&carol, "carol", "RSA")] {
        git(dir, &[&sign_as(key)], &["commit", "-q", "-S", "--allow-empty", "-m", who]);
        git(dir, &[], &["branch", who]);
        let run = weaver_in(dir, &["envs", "--rev", who, "--verify-commits", trust], &[]);
        run.success();
        assert!(run.stderr.contains(&format!("is signed by {who}@example.com ({kind} key SHA256:")), "{}", run.stderr);
    }

    let refused = |rev: &str, why: &str| {
        for command in [&["render", "--env", "dev"][..], &["hydrate", "--env", "dev", "--out", "out"], &["envs"]] {
            let run = weaver_in(dir, &[command, &["--rev", rev, "--verify-commits", trust]].concat(), &[]);
            let stderr = run.failure();
            assert!(stderr.contains(&format!("({rev}) is refused: {why}")), "{command:?} {rev}: {stderr}");
            assert!(stderr.contains(&format!("--verify-commits {trust} lists the keys")), "{stderr}");
            assert!(run.stdout.is_empty(), "nothing is rendered: {}", run.stdout);
        }
        assert!(!dir.join("out").exists(), "nothing is written");
    };
    // A listed key of a type not checked is not taken for a changed commit.
    git(dir, &[&sign_as(&dave)], &["commit", "-q", "-S", "--allow-empty", "-m", "dave"]);
    git(dir, &[], &["branch", "dave"]);
    refused("dave", "it is signed by ECDSA SHA256:");
    let run = weaver_in(dir, &["envs", "--rev", "dave", "--verify-commits", trust], &[]);
    assert!(
        run.failure()
            .contains("a key weaver cannot check (it checks ED25519, ECDSA P-256, and RSA keys of 2048 to 4096 bits"),
        "{}",
        run.stderr
    );
    // Not signed at all.
    git(dir, &[], &["commit", "-q", "--allow-empty", "-m", "unsigned"]);
    git(dir, &[], &["branch", "unsigned"]);
    refused("unsigned", "it is not signed");
    // Signed by a key the list does not hold, named by its fingerprint.
    git(dir, &[&sign_as(&mallory)], &["commit", "-q", "-S", "--allow-empty", "-m", "signed by mallory"]);
    git(dir, &[], &["branch", "mallory"]);
    let mallory_key = fingerprint(&mallory.with_extension("pub"));
    refused("mallory", &format!("it is signed by ED25519 {mallory_key}, a key the trust list does not hold"));
    // Alice's signature on a commit whose content changed after: the same header, another tree.
    let object = git(dir, &[], &["cat-file", "commit", &signed]);
    let tampered_text = object.replace("signed by alice", "signed by alice, then edited");
    let tampered_file = keys.path().join("tampered");
    std::fs::write(&tampered_file, &tampered_text).unwrap();
    let tampered = git(dir, &[], &["hash-object", "-t", "commit", "-w", tampered_file.to_str().unwrap()]);
    git(dir, &[], &["branch", "tampered", tampered.trim()]);
    refused("tampered", "its signature by ED25519 SHA256:");
    let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "tampered", "--verify-commits", trust], &[]);
    assert!(run.failure().contains("does not match its content: it was changed after it was signed"), "{}", run.stderr);

    // A list the repository carries could be given a key by the commit it vouches for.
    let carried = dir.join("ci/allowed_signers");
    std::fs::create_dir_all(dir.join("ci")).unwrap();
    std::fs::copy(trust, &carried).unwrap();
    let run = weaver_in(dir, &["envs", "--rev", "main", "--verify-commits", carried.to_str().unwrap()], &[]);
    let stderr = run.failure();
    assert!(stderr.contains("trust list: it is inside the repository whose commits it vouches for"), "{stderr}");
    std::fs::remove_dir_all(dir.join("ci")).unwrap();

    // The commands that read a cluster are refused before they do: none is configured here.
    for command in [&["apply", "--env", "dev"][..], &["diff", "--env", "dev"], &["drift", "--env", "dev"]]
        .into_iter()
        .chain([&["status", "--env", "dev"][..], &["charts", "fetch"]])
    {
        let args = [command, &["--rev", "unsigned", "--verify-commits", trust]].concat();
        let run = weaver_in(dir, &args, &[("KUBECONFIG", "/nonexistent")]);
        assert!(run.failure().contains("(unsigned) is refused: it is not signed"), "{command:?}: {}", run.stderr);
    }
}

#[test]
fn the_trust_list_and_the_flag_are_checked_first() {
    let repo = Repo::minimal();
    let dir = repo.path();
    let keys = tempfile::tempdir().unwrap();
    let trust = keys.path().join("allowed_signers");
    std::fs::write(&trust, "alice@example.com\n").unwrap();
    let trust = trust.to_str().unwrap();
    // Checked before the repository is: this one is no git repository.
    let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "HEAD", "--verify-commits", trust], &[]);
    assert!(
        run.failure().contains(&format!("{trust}:1:1: trust list: expected a key after the principals")),
        "{}",
        run.stderr
    );
    std::fs::write(keys.path().join("allowed_signers"), "# nobody yet\n").unwrap();
    let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "HEAD", "--verify-commits", trust], &[]);
    assert!(run.failure().contains("trust list: it holds no key, so no commit can pass"), "{}", run.stderr);
    // The working tree has no signature to check.
    let run = weaver_in(dir, &["render", "--env", "dev", "--verify-commits", trust], &[]);
    assert!(run.failure().contains("--rev"), "a usage error, exit 1: {}", run.stderr);
}

/// GnuPG in a home of its own, whose agent is stopped when it is dropped.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new ED25519 signing key for `uid`: its fingerprint.
    fn key(&self, uid: &str) -> String {
        self.run(&["--quick-gen-key", uid, "ed25519", "sign", "never"]);
        let listing = self.run(&["--with-colons", "--list-keys", uid]);
        let fpr = listing.lines().find_map(|line| line.strip_prefix("fpr:")).expect("a fingerprint");
        fpr.trim_matches(':').to_string()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.home.path()).args(["--kill", "gpg-agent"]).output();
    }
}

#[test]
fn commits_signed_with_gnupg_are_checked_against_armored_public_keys() {
    let runs = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success());
    if !interop_available("GnuPG and git (to sign commits with OpenPGP)", runs("gpg") && runs("git")) {
        return;
    }
    let repo = Repo::minimal();
    let dir = repo.path();
    let gpg = Gpg::new();
    let alice = gpg.key("Alice <alice@example.com>");
    let mallory = gpg.key("Mallory <mallory@example.com>");
    let keys = tempfile::tempdir().unwrap();
    let trust = keys.path().join("alice.asc");
    std::fs::write(&trust, gpg.run(&["--armor", "--export", &alice])).unwrap();
    let trust = trust.to_str().unwrap();
    let home = [("GNUPGHOME", gpg.home.path())];
    let openpgp = |fingerprint: &str| ["gpg.format=openpgp".to_string(), format!("user.signingkey={fingerprint}")];
    let [format, alice_key] = openpgp(&alice);
    git(dir, &[], &["init", "-q", "-b", "main"]);
    git(dir, &[], &["add", "-A"]);
    git_with(dir, &home, &[&format, &alice_key], &["commit", "-q", "-S", "-m", "signed by alice"]);
    let signed = git(dir, &[], &["rev-parse", "HEAD"]).trim().to_string();

    let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "main", "--verify-commits", trust], &[]);
    run.success();
    let named = format!("commit {} (main) is signed by Alice <alice@example.com> (OpenPGP key {alice})", &signed[..8]);
    assert!(run.stderr.contains(&named), "{}", run.stderr);

    let refused = |rev: &str, why: &str| {
        let run = weaver_in(dir, &["render", "--env", "dev", "--rev", rev, "--verify-commits", trust], &[]);
        let stderr = run.failure();
        assert!(stderr.contains(&format!("({rev}) is refused: {why}")), "{rev}: {stderr}");
    };
    let [format, mallory_key] = openpgp(&mallory);
    git_with(dir, &home, &[&format, &mallory_key], &["commit", "-q", "-S", "--allow-empty", "-m", "mallory"]);
    git(dir, &[], &["branch", "mallory"]);
    refused("mallory", &format!("it is signed by OpenPGP {mallory}, a key the trust list does not hold"));
    git(dir, &[], &["commit", "-q", "--allow-empty", "-m", "unsigned"]);
    git(dir, &[], &["branch", "unsigned"]);
    refused("unsigned", "it is not signed");
    let object = git(dir, &[], &["cat-file", "commit", &signed]);
    let tampered_file = keys.path().join("tampered");
    std::fs::write(&tampered_file, object.replace("signed by alice", "signed by alice, then edited")).unwrap();
    let tampered = git(dir, &[], &["hash-object", "-t", "commit", "-w", tampered_file.to_str().unwrap()]);
    git(dir, &[], &["branch", "tampered", tampered.trim()]);
    refused("tampered", "its signature by OpenPGP ");
    // An SSH signature cannot be checked against OpenPGP keys.
    let (ssh_key, _) = keygen(keys.path(), "ssh", &["-t", "ed25519"]);
    let sign_as = format!("user.signingkey={}", ssh_key.display());
    git(dir, &[&sign_as], &["commit", "-q", "-S", "--allow-empty", "-m", "ssh"]);
    git(dir, &[], &["branch", "ssh"]);
    refused("ssh", "it is signed with SSH, which this trust list (OpenPGP keys) cannot check");
}
