//! Commits signed by the real tools, for the signature tests and benchmark: git itself signs,
//! with keys from `ssh-keygen` (`gpg.format=ssh`) or from GnuPG (`gpg.format=openpgp`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tools of `tools` that cannot be run (`--version`, or `-?` for ssh-keygen), for a skip.
pub fn missing(tools: &[&str]) -> Option<String> {
    let runs = |tool: &str| {
        let arg = if tool == "ssh-keygen" { "-?" } else { "--version" };
        Command::new(tool).arg(arg).output().is_ok()
    };
    let missing: Vec<&str> = tools.iter().copied().filter(|tool| !runs(tool)).collect();
    (!missing.is_empty()).then(|| format!("{} cannot be run (to sign commits)", missing.join(" and ")))
}

/// Runs git in `dir` with no configuration but `config` (`-c` pairs, after a user and
/// `gpg.format=ssh`) and the environment `envs` (`GNUPGHOME`); returns stdout.
pub fn git(dir: &Path, envs: &[(&str, &Path)], config: &[&str], args: &[&str]) -> String {
    let mut command = Command::new("git");
    command.current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
    command.envs(envs.iter().copied());
    command.args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "gpg.format=ssh"]);
    for pair in config {
        command.args(["-c", pair]);
    }
    let out = command.args(args).output().expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("git's output is UTF-8")
}

/// A new key made by `ssh-keygen` with `kind` (`-t ed25519`, `-t rsa -b 2048`): its private key
/// file and its public line.
pub fn ssh_key(dir: &Path, name: &str, kind: &[&str]) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("the public key");
    (key, public.trim().to_string())
}

/// `ssh-keygen -l`'s `SHA256:…` of a public key file.
pub fn ssh_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(public).output().expect("run ssh-keygen");
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).expect("a fingerprint").to_string()
}

/// GnuPG in a home of its own, whose agent is stopped when it is dropped.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    /// Under /tmp: the agent's socket path must be short.
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("gpg").tempdir_in("/tmp").expect("a GnuPG home");
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    /// `GNUPGHOME` for git.
    pub fn env(&self) -> [(&'static str, &Path); 1] {
        [("GNUPGHOME", self.home.path())]
    }

    pub fn run(&self, args: &[&str]) -> String {
        String::from_utf8(self.run_bytes(args)).expect("gpg's output is UTF-8")
    }

    /// [`Gpg::run`], its output as bytes (`--export`: a binary keyring).
    pub fn run_bytes(&self, args: &[&str]) -> Vec<u8> {
        self.run_with_input(args, b"")
    }

    /// [`Gpg::run_bytes`] with `input` on its standard input (`--command-fd 0`).
    fn run_with_input(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gpg");
        child.stdin.take().expect("gpg's stdin").write_all(input).expect("write to gpg");
        let out = child.wait_with_output().expect("run gpg");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// A new ED25519 signing key for `uid`: its fingerprint.
    pub fn key(&self, uid: &str) -> String {
        self.key_of(uid, "ed25519", &[])
    }

    /// A new RSA 2048 signing key for `uid` (what `helm package --sign` can use): its fingerprint.
    pub fn rsa_key(&self, uid: &str) -> String {
        self.key_of(uid, "rsa2048", &[])
    }

    /// A new ED25519 signing key for `uid` made with the clock at `time` (`20200101T000000`):
    /// its fingerprint.
    pub fn key_made_at(&self, uid: &str, time: &str) -> String {
        self.key_of(uid, "ed25519", &["--faked-system-time", time])
    }

    fn key_of(&self, uid: &str, algorithm: &str, options: &[&str]) -> String {
        self.run(&[options, &["--quick-gen-key", uid, algorithm, "sign", "never"]].concat());
        self.fingerprints(uid).swap_remove(0)
    }

    /// The fingerprints of the key of `uid`: its primary key's, then its subkeys'.
    fn fingerprints(&self, uid: &str) -> Vec<String> {
        let listing = self.run(&["--with-colons", "--list-keys", uid]);
        let fingerprints = listing.lines().filter_map(|line| line.strip_prefix("fpr:"));
        fingerprints.map(|fpr| fpr.trim_matches(':').to_string()).collect()
    }

    /// Adds a subkey of `algorithm` (`rsa2048`) for `usage` (`sign`, `encr`) to the key
    /// `fingerprint`: the subkey's fingerprint.
    pub fn add_subkey(&self, fingerprint: &str, algorithm: &str, usage: &str) -> String {
        self.run(&["--quick-add-key", fingerprint, algorithm, usage, "never"]);
        self.fingerprints(fingerprint).pop().expect("the new subkey")
    }

    /// Changes what the key `fingerprint` (`subkey` 0) or its subkey number `subkey` may do, by a
    /// new self-signature or binding, as `gpg --expert --edit-key`'s `change-usage` does:
    /// `toggles` are its answers (`S` sign, `E` encrypt, `A` authenticate, each toggled).
    pub fn change_usage(&self, fingerprint: &str, subkey: usize, toggles: &[&str]) {
        let commands = format!("key {subkey}\nchange-usage\n{}\nQ\nsave\n", toggles.join("\n"));
        self.run_with_input(&["--expert", "--command-fd", "0", "--edit-key", fingerprint], commands.as_bytes());
    }

    /// A `gpg.program` pair for [`git`]'s config that has git sign with gpg given `options` first
    /// (`--digest-algo MD5`, `--faked-system-time …`): a script in this home.
    pub fn program_with(&self, options: &[&str]) -> String {
        let script = tempfile::Builder::new().prefix("gpg-program").tempfile_in(self.home.path()).expect("a script");
        let quoted: Vec<String> = options.iter().map(|option| format!("'{option}'")).collect();
        std::fs::write(script.path(), format!("#!/bin/sh\nexec gpg {} \"$@\"\n", quoted.join(" "))).unwrap();
        std::fs::set_permissions(script.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = script.into_temp_path().keep().expect("the script kept");
        format!("gpg.program={}", path.display())
    }

    /// What `git verify-commit REV` in `dir` says with this home's keys (GnuPG as git runs it,
    /// with no configuration): Err holds gpg's words when git refuses the commit.
    pub fn verify_commit(&self, dir: &Path, rev: &str) -> Result<(), String> {
        let out = Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GNUPGHOME", self.home.path())
            .args(["verify-commit", rev])
            .output()
            .expect("run git");
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() { Ok(()) } else { Err(said) }
    }

    /// The armored public key, as a trust list holds it.
    pub fn export(&self, fingerprint: &str) -> String {
        self.run(&["--armor", "--export", fingerprint])
    }
}

impl Default for Gpg {
    fn default() -> Gpg {
        Gpg::new()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.home.path()).args(["--kill", "gpg-agent"]).output();
    }
}

/// The `-c` pairs that have git sign with the SSH key file `key`.
pub fn signing_with_ssh(key: &Path) -> [String; 2] {
    ["gpg.format=ssh".to_string(), format!("user.signingkey={}", key.display())]
}

/// The `-c` pairs that have git sign with the GnuPG key `fingerprint`.
pub fn signing_with_openpgp(fingerprint: &str) -> [String; 2] {
    ["gpg.format=openpgp".to_string(), format!("user.signingkey={fingerprint}")]
}
