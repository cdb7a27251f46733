//! `--verify-commits` (issue 92): commits that git itself signed with ssh-keygen's keys
//! (`gpg.format=ssh`), checked against an `allowed_signers` file before anything is read.

use std::path::Path;

use weaver_test_support::signing::{self, Gpg, signing_with_openpgp, signing_with_ssh, ssh_fingerprint, ssh_key};

use crate::common::{Repo, interop_available, weaver_in};

/// Runs git in `dir` with no configuration but `config` (`-c` pairs).
fn git(dir: &Path, config: &[&str], args: &[&str]) -> String {
    signing::git(dir, &[], config, args)
}

fn tools_available(tools: &[&str]) -> bool {
    interop_available(tools.join(" and ").as_str(), signing::missing(tools).is_none())
}

#[test]
fn only_a_commit_a_listed_key_signed_is_read_and_every_other_is_refused_naming_why() {
    if !tools_available(&["git", "ssh-keygen"]) {
        return;
    }
    let repo = Repo::minimal();
    let dir = repo.path();
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_public) = ssh_key(keys.path(), "alice", &["-t", "ed25519"]);
    let (bob, bob_public) = ssh_key(keys.path(), "bob", &["-t", "ecdsa", "-b", "256"]);
    let (carol, carol_public) = ssh_key(keys.path(), "carol", &["-t", "rsa", "-b", "2048"]);
    let (dave, dave_public) = ssh_key(keys.path(), "dave", &["-t", "ecdsa", "-b", "384"]);
    let (mallory, _) = ssh_key(keys.path(), "mallory", &["-t", "ed25519"]);
    let trust = keys.path().join("allowed_signers");
    let list = format!(
        "# who may deploy\nalice@example.com namespaces=\"git\" {alice_public}\nbob@example.com {bob_public}\n\
         carol@example.com valid-after=\"20200101\" {carol_public}\ndave@example.com {dave_public}\n"
    );
    std::fs::write(&trust, list).unwrap();
    let trust = trust.to_str().unwrap();
    let sign_as = |key: &Path| signing_with_ssh(key)[1].clone();
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
    let mallory_key = ssh_fingerprint(&mallory.with_extension("pub"));
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
    // Nor is it taken through a hard link outside: the same file, which a commit could change.
    let linked = keys.path().join("linked_signers");
    std::fs::hard_link(&carried, &linked).unwrap();
    use std::os::unix::fs::MetadataExt;
    let device = |path: &Path| std::fs::metadata(path).unwrap().dev();
    assert_eq!(device(&linked), device(dir), "the test's directories are on one file system");
    let run = weaver_in(dir, &["envs", "--rev", "main", "--verify-commits", linked.to_str().unwrap()], &[]);
    let stderr = run.failure();
    assert!(
        stderr.contains(&format!(
            "{}: trust list: it has 2 hard links on the repository's file system, and one could be a file of the \
             repository",
            linked.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir.join("ci")).unwrap();
    // Its other link gone, the same file is a list of its own: alice's commit passes.
    let run = weaver_in(dir, &["envs", "--rev", &signed, "--verify-commits", linked.to_str().unwrap()], &[]);
    run.success();

    // The commands that read a cluster are refused before they do: none is configured here.
    for command in [&["apply", "--env", "dev"][..], &["diff", "--env", "dev"], &["drift", "--env", "dev"]]
        .into_iter()
        .chain([&["status", "--env", "dev"][..], &["charts", "fetch"], &["promote", "--to", "dev"]])
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
        run.failure().contains(&format!("{trust}:1:18: trust list: expected a key after the principals")),
        "{}",
        run.stderr
    );
    // A file given by mistake is named by line and column, and no byte of it is printed. The
    // age key is made for this run: no private key is kept in the repository.
    let identity = age::x25519::Identity::generate();
    let age_key = format!("# keys\n{}\n", age::secrecy::ExposeSecret::expose_secret(&identity.to_string()));
    let mistakes = [
        ("password: hunter2-SECRET-TOKEN-123\n", "1:11: trust list: unknown option or key type"),
        (age_key.as_str(), "2:75: trust list: expected a key"),
        ("ci valid-after=\"SECRET\" ssh-ed25519 AAAA\n", "1:4: trust list: valid-after: expected a time"),
        ("ci ssh-ed25519 SECRET-hunter2\n", "1:16: trust list: expected the base64 of the ssh-ed25519 key"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nSECRET-hunter2\n-----END PGP PUBLIC KEY BLOCK-----\n",
            "1: trust list: an OpenPGP key cannot be read: expected OpenPGP public keys",
        ),
    ];
    for (text, said) in mistakes {
        std::fs::write(keys.path().join("allowed_signers"), text).unwrap();
        let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "HEAD", "--verify-commits", trust], &[]);
        let stderr = run.failure();
        assert!(stderr.contains(&format!("{trust}:{said}")), "{text}: {stderr}");
        assert!(
            !stderr.contains("SECRET") && !stderr.contains("hunter2") && !run.stdout.contains("SECRET"),
            "{stderr}"
        );
    }
    std::fs::write(keys.path().join("allowed_signers"), "# nobody yet\n").unwrap();
    let run = weaver_in(dir, &["render", "--env", "dev", "--rev", "HEAD", "--verify-commits", trust], &[]);
    assert!(run.failure().contains("trust list: it holds no key, so no commit can pass"), "{}", run.stderr);
    // The working tree has no signature to check.
    let run = weaver_in(dir, &["render", "--env", "dev", "--verify-commits", trust], &[]);
    assert!(run.failure().contains("--rev"), "a usage error, exit 1: {}", run.stderr);
}

#[test]
fn commits_signed_with_gnupg_are_checked_against_armored_public_keys() {
    if !tools_available(&["git", "gpg", "ssh-keygen"]) {
        return;
    }
    let repo = Repo::minimal();
    let dir = repo.path();
    let gpg = Gpg::new();
    let alice = gpg.key("Alice <alice@example.com>");
    let mallory = gpg.key("Mallory <mallory@example.com>");
    let keys = tempfile::tempdir().unwrap();
    let trust = keys.path().join("alice.asc");
    std::fs::write(&trust, gpg.export(&alice)).unwrap();
    let trust = trust.to_str().unwrap();
    let [format, alice_key] = signing_with_openpgp(&alice);
    git(dir, &[], &["init", "-q", "-b", "main"]);
    git(dir, &[], &["add", "-A"]);
    signing::git(dir, &gpg.env(), &[&format, &alice_key], &["commit", "-q", "-S", "-m", "signed by alice"]);
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
    let [format, mallory_key] = signing_with_openpgp(&mallory);
    signing::git(dir, &gpg.env(), &[&format, &mallory_key], &["commit", "-q", "-S", "--allow-empty", "-m", "mallory"]);
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
    let (ssh_signer, _) = ssh_key(keys.path(), "ssh", &["-t", "ed25519"]);
    let [format, sign_as] = signing_with_ssh(&ssh_signer);
    git(dir, &[&format, &sign_as], &["commit", "-q", "-S", "--allow-empty", "-m", "ssh"]);
    git(dir, &[], &["branch", "ssh"]);
    refused("ssh", "it is signed with SSH, which this trust list (OpenPGP keys) cannot check");

    // What weaver commits with an OpenPGP key (the controller's promotions) GnuPG accepts, as
    // weaver's own check does.
    let secret = gpg.run(&["--armor", "--export-secret-keys", &alice]);
    let key = std::sync::Arc::new(weaver_verify::SigningKey::parse(&secret).expect("a signing key"));
    let git_repo =
        weaver_git::GitRepo::open(dir).unwrap().with_identity("Bot", "bot@example.com").with_signing_key(key);
    let base = git_repo.resolve("main", "--rev").unwrap().commit;
    let changes = [("promoted.txt".to_string(), Some(b"v2\n".to_vec()))].into_iter().collect();
    let ours = git_repo.commit_detached(base, &changes, "promote").unwrap();
    git(dir, &[], &["branch", "ours", &ours]);
    let shown = signing::git(dir, &gpg.env(), &[], &["log", "-1", "--format=%G? %GF", "ours"]);
    assert_eq!(shown.trim(), format!("G {alice}"), "git and GnuPG accept the signature");
    let run = weaver_in(dir, &["envs", "--rev", "ours", "--verify-commits", trust], &[]);
    run.success();
    assert!(run.stderr.contains("is signed by Alice <alice@example.com>"), "{}", run.stderr);
}

/// Signatures that GnuPG 2.2 refuses, each made by gpg itself (issue 106): `git verify-commit`
/// refuses each commit (gpg is the oracle), and so does weaver, naming why; what gpg takes
/// (SHA-1, the keys before their usage changed) weaver takes too.
#[test]
fn commits_gnupg_refuses_are_refused_with_why_as_git_verify_commit_refuses_them() {
    if !tools_available(&["git", "gpg"]) {
        return;
    }
    let repo = Repo::minimal();
    let dir = repo.path();
    let gpg = Gpg::new();
    let rsa = gpg.rsa_key("Digest <digest@example.com>");
    let primary = gpg.key("Primary <primary@example.com>");
    let with_subkey = gpg.key("Sub <sub@example.com>");
    let subkey = gpg.add_subkey(&with_subkey, "rsa2048", "sign");
    let old = gpg.key_made_at("Old <old@example.com>", "20200101T000000");
    let keys = tempfile::tempdir().unwrap();
    let trust_file = keys.path().join("trusted.asc");
    let export_all = || {
        let all: String = [&rsa, &primary, &with_subkey, &old].iter().map(|key| gpg.export(key)).collect();
        std::fs::write(&trust_file, all).unwrap();
    };
    export_all();
    let trust = trust_file.to_str().unwrap();
    // Each commit on a branch of its name, signed by `key` with gpg given `options` first.
    let commit = |branch: &str, key: &str, options: &[&str]| {
        let [format, sign_as] = signing_with_openpgp(key);
        let program = gpg.program_with(options);
        signing::git(
            dir,
            &gpg.env(),
            &[&format, &sign_as, &program],
            &["commit", "-q", "-S", "--allow-empty", "-m", branch],
        );
        git(dir, &[], &["branch", branch]);
    };
    git(dir, &[], &["init", "-q", "-b", "main"]);
    git(dir, &[], &["add", "-A"]);
    git(dir, &[], &["commit", "-q", "-m", "base"]);
    let accepted = |rev: &str, who: &str| {
        assert_eq!(gpg.verify_commit(dir, rev), Ok(()), "{rev}: GnuPG takes it");
        let run = weaver_in(dir, &["envs", "--rev", rev, "--verify-commits", trust], &[]);
        run.success();
        assert!(run.stderr.contains(&format!("({rev}) is signed by {who}")), "{rev}: {}", run.stderr);
    };
    let refused = |rev: &str, gnupg_says: &str, why: &str| {
        let said = gpg.verify_commit(dir, rev).expect_err(rev);
        assert!(said.contains(gnupg_says), "{rev}: GnuPG refuses it for another reason: {said}");
        let run = weaver_in(dir, &["envs", "--rev", rev, "--verify-commits", trust], &[]);
        let stderr = run.failure();
        assert!(stderr.contains(&format!("({rev}) is refused: {why}")), "{rev}: {stderr}");
    };

    commit("sha1", &rsa, &["--digest-algo", "SHA1"]);
    accepted("sha1", "Digest <digest@example.com>");
    commit("md5", &rsa, &["--digest-algo", "MD5"]);
    refused(
        "md5",
        "signatures using the MD5 algorithm are rejected",
        &format!(
            "its signature by OpenPGP {rsa} (Digest <digest@example.com>) is made with the digest MD5, which GnuPG refuses"
        ),
    );
    // A signature of 2020-01-02 made to last a day, by a key of 2020-01-01 that lasts.
    commit("expired", &old, &["--faked-system-time", "20200102T000000!", "--default-sig-expire", "1d"]);
    refused(
        "expired",
        "Expired signature",
        &format!("its signature by OpenPGP {old} (Old <old@example.com>) expired at 2020-01-03T00:00:00Z"),
    );
    // A signature dated before its key was made (gpg signs it only when told to ignore that).
    // The clock frozen (`!`): under load gpg's faked clock ticks on before it signs.
    commit("before", &rsa, &["--faked-system-time", "20200101T000000!", "--ignore-time-conflict"]);
    refused(
        "before",
        "Time conflict",
        &format!(
            "its signature by OpenPGP {rsa} (Digest <digest@example.com>) is dated 2020-01-01T00:00:00Z, before that key was made at"
        ),
    );

    // Keys whose usage then changes: their signatures pass until it does.
    commit("by-primary", &primary, &[]);
    commit("by-subkey", &format!("{subkey}!"), &[]);
    accepted("by-primary", "Primary <primary@example.com>");
    accepted("by-subkey", "Sub <sub@example.com>");
    // The primary key to certify alone; the signing subkey to encrypt alone.
    gpg.change_usage(&primary, 0, &["S"]);
    gpg.change_usage(&with_subkey, 1, &["S", "E"]);
    export_all();
    refused(
        "by-primary",
        "Wrong key usage",
        &format!(
            "it is signed by OpenPGP {primary} (Primary <primary@example.com>), whose key flags do not allow signing"
        ),
    );
    refused(
        "by-subkey",
        "Wrong key usage",
        &format!(
            "it is signed by subkey {subkey} of OpenPGP {with_subkey} (Sub <sub@example.com>), whose key flags do not allow signing"
        ),
    );
}
