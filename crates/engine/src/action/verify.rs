//! `--verify-commits`: the commit a `--rev` names, checked against a trust list of signers (SSH
//! keys in an `allowed_signers` file, or armored OpenPGP public keys)
//! before anything reads it (issue 92). The caller then reads that very commit, by its SHA, so
//! that a branch moved in between is not what is rendered.

use std::path::Path;

use weaver_core::error::{Error, Location, Result};
use weaver_git::GitRepo;
use weaver_verify::{Signer, TrustList};

/// A commit whose signature the trust list accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCommit {
    /// The full SHA.
    pub commit: String,
    pub signer: Signer,
}

/// Reads the trust list at `trust_file` (see [`TrustList::parse`]), resolves `spec` in the
/// repository at `repo` and checks who signed that commit.
pub fn commit(repo: &Path, spec: &str, trust_file: &Path) -> Result<VerifiedCommit> {
    let text = std::fs::read_to_string(trust_file).map_err(|e| Error::io("read the trust list", trust_file, e))?;
    let trust = TrustList::parse(&text).map_err(|e| {
        Error::at(Location::at(trust_file, e.line as u64, 1), format!("trust list: {}", e.message)).with_help(
            "a trust list is an allowed_signers file (lines `PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY`, as git's gpg.ssh.allowedSignersFile) or armored OpenPGP public keys (`gpg --armor --export`)",
        )
    })?;
    if trust.is_empty() {
        return Err(Error::at(Location::file(trust_file), "trust list: it holds no key, so no commit can pass")
            .with_help(
                "list each signer's public key: `alice@example.com ssh-ed25519 AAAA…`, or an OpenPGP key block",
            ));
    }
    let git = GitRepo::open(repo)?;
    // A commit could add its own key to a list it carries: the list comes from elsewhere.
    let inside = |dir: &Path| Some(super::resolved(trust_file)?.starts_with(super::resolved(dir)?));
    if git.work_tree().as_deref().and_then(inside) == Some(true) {
        return Err(Error::at(
            Location::file(trust_file),
            "trust list: it is inside the repository whose commits it vouches for, where a commit could add its own key",
        )
        .with_help("keep it outside the checkout: a CI secret file or a protected path, as Flux keeps it in a Secret"));
    }
    let revision = git.resolve(spec, "--rev")?;
    let signer = git.verify(&revision, &trust).map_err(|err| {
        err.with_help(format!(
            "--verify-commits {} lists the keys whose commits weaver reads; sign with `git commit -S`",
            trust_file.display()
        ))
    })?;
    Ok(VerifiedCommit { commit: revision.commit.to_string(), signer })
}
