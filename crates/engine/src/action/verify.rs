//! Who signed a commit, checked against a trust list of signers (SSH keys in an `allowed_signers`
//! file, armored OpenPGP public keys) before anything reads it: `--verify-commits` on the commit
//! a `--rev` names ([`commit`]), an EnvironmentSync's `spec.source.verify` on the fetched one
//! and those since the last applied ([`signed`]). The caller then reads that very commit, by
//! its SHA, so that a branch moved in between is not what is rendered.

use std::path::Path;

use weaver_core::error::{Error, Location, Result};
use weaver_git::GitRepo;
use weaver_verify::cosign::CosignKeys;
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
        Error::at(Location::at(trust_file, e.line as u64, e.column as u64), format!("trust list: {}", e.message)).with_help(
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
    if let Some(why) = git.work_tree().and_then(|tree| carried_by(trust_file, &tree)) {
        return Err(Error::at(Location::file(trust_file), format!("trust list: {why}")).with_help(
            "keep it outside the checkout, a file of its own: a CI secret file or a protected path, as Flux keeps it in a Secret",
        ));
    }
    signed_in(&git, Named { spec, what: "--rev", shown: None }, None, &trust).map_err(|err| {
        err.with_help(format!(
            "--verify-commits {} lists the keys whose commits weaver reads; sign with `git commit -S`",
            trust_file.display()
        ))
    })
}

/// Why the trust list at `trust_file` could be a file of the checkout `work_tree`, whose
/// commits could then add their own key to it; None when it cannot be. Inside the checkout,
/// a symbolic link's target too, it is one. A hard link is one file under two names, and the
/// other name cannot be found short of reading every file's: a list of more than one link on
/// the checkout's file system is refused, since one could be the checkout's (a hard link
/// cannot cross file systems, so one on another is not).
fn carried_by(trust_file: &Path, work_tree: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if let (Some(list), Some(tree)) = (super::resolved(trust_file), super::resolved(work_tree))
        && list.starts_with(tree)
    {
        return Some(
            "it is inside the repository whose commits it vouches for, where a commit could add its own key".into(),
        );
    }
    let (list, tree) = (std::fs::metadata(trust_file).ok()?, std::fs::metadata(work_tree).ok()?);
    (list.nlink() > 1 && list.dev() == tree.dev()).then(|| {
        format!(
            "it has {} hard links on the repository's file system, and one could be a file of the repository whose \
             commits it vouches for, where a commit could add its own key",
            list.nlink()
        )
    })
}

/// The most commits [`signed`] checks since another: about a second of work. A history with
/// more (a tenant's is not trusted to be small) is refused, and named so.
pub const MOST_COMMITS: usize = 20_000;

/// A commit as the user named it: `spec` (`main`, a SHA) given by `what` (`--rev`), shown in
/// messages as `shown` (`branch main`) when the spec is not what the user wrote.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub spec: &'a str,
    pub what: &'a str,
    pub shown: Option<&'a str>,
}

/// Checks who signed the commit `named` in the repository at `repo` against `trust`, and with
/// `since` every commit it has that `since` has not (a merge's other parents' too). The first
/// refusal is the error; Ok names the signer of the commit.
pub fn signed(repo: &Path, named: Named<'_>, since: Option<&str>, trust: &TrustList) -> Result<VerifiedCommit> {
    signed_in(&GitRepo::open(repo)?, named, since, trust)
}

/// [`signed`], in the repository `git`.
fn signed_in(git: &GitRepo, named: Named<'_>, since: Option<&str>, trust: &TrustList) -> Result<VerifiedCommit> {
    let mut revision = git.resolve(named.spec, named.what)?;
    if let Some(shown) = named.shown {
        revision.spec = shown.to_string();
    }
    let signer = git.verify(&revision, trust)?;
    if let Some(since) = since {
        // The range holds the commit itself, checked above.
        for earlier in git.commits_since(&revision, since, MOST_COMMITS)?.iter().filter(|r| r.commit != revision.commit)
        {
            git.verify(earlier, trust)?;
        }
    }
    Ok(VerifiedCommit { commit: revision.commit.to_string(), signer })
}

/// cosign's public keys at `path` of the repository, as `source` (the commit read) has them:
/// an image subscription's `verify.publicKeyRef` (written at `at`) or an `oci://` chart
/// registry's `publicKeyRef`. A file missing, unreadable or without a key is an error naming
/// it and the line, never quoting it.
pub(crate) fn cosign_keys(
    source: &dyn weaver_project::Source,
    path: &str,
    at: Option<&Location>,
) -> Result<CosignKeys> {
    let file = Path::new(path);
    let named_by = at.map_or_else(
        || "named by a repository's `publicKeyRef`".to_string(),
        |at| format!("named by `verify.publicKeyRef` ({at})"),
    );
    let bytes = source.read(file).map_err(|e| Error::io("read the public key", file, e))?.ok_or_else(|| {
        let message = format!("`publicKeyRef: {path}`: no such file in the repository");
        at.map_or_else(|| Error::at(Location::file(file), &message), |at| Error::at(at.clone(), &message))
            .with_help("commit cosign's public key (cosign.pub, from `cosign generate-key-pair`) at that path")
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::at(Location::file(file), "is not a PEM public key (not UTF-8 text)").with_help(&named_by)
    })?;
    let keys = CosignKeys::parse(path, &text)
        .map_err(|e| Error::at(Location::at(file, e.line as u64, e.column as u64), e.message).with_help(&named_by))?;
    if keys.is_empty() {
        return Err(Error::at(Location::file(file), "holds no public key, so nothing signed could pass")
            .with_help(format!("{named_by}: add cosign.pub's `-----BEGIN PUBLIC KEY-----` block")));
    }
    Ok(keys)
}
