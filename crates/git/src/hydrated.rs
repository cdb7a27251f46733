//! A branch that `weaver hydrate` writes rendered objects to: read from its tip, committed to
//! in the object database (never the working tree or the index), each commit linked with the
//! source commit it was rendered from both ways: a trailer in the commit's message and a git
//! note on the source commit.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{ErrorCode, Index, IndexEntry, IndexTime, Oid, Reference};

use super::{GitRepo, git_error};
use weaver_core::error::{Error, Result};

/// The notes ref the source commit's note goes to: `git log --notes=weaver-hydrated` shows it.
pub const NOTES_REF: &str = "refs/notes/weaver-hydrated";

/// The trailer naming the source commit in a hydrated commit's message.
pub const SOURCE_TRAILER: &str = "Weaver-Source-Commit";

/// A branch to hydrate to, as it was when opened.
pub struct Branch {
    git: GitRepo,
    name: String,
    refname: String,
    /// The branch's commit when opened; `None` when it does not exist yet.
    tip: Option<Oid>,
    /// For a branch that does not exist yet, the parent of its first commit (a promotion's
    /// HEAD); `None`: a commit without parent.
    base: Option<Oid>,
}

impl GitRepo {
    /// The branch `name` (created on the first commit), refused when git refuses the name or
    /// when it is the branch checked out here: moving it under the working tree would make
    /// every file look changed.
    pub fn hydrated_branch(&self, name: &str) -> Result<Branch> {
        let refname = format!("refs/heads/{name}");
        if name.starts_with('-') || !Reference::is_valid_name(&refname) {
            return Err(Error::new(format!("--branch `{name}` is not a branch name git accepts"))
                .with_help("see `git check-ref-format --branch`: no spaces, `..`, `~`, `^`, `:`, `?`, `*`, `[`, `\\`, nor a trailing `/`, `.lock` or `.`"));
        }
        let repo = self.lock();
        let help = "hydrate to a branch of its own (such as `hydrated`); weaver never touches a working tree";
        if !repo.is_bare() && head_of(&repo).as_deref() == Some(refname.as_str()) {
            return Err(
                Error::new(format!("--branch `{name}` is the branch checked out in this working tree")).with_help(help)
            );
        }
        if let Some(dir) = checked_out_elsewhere(&repo, &refname) {
            return Err(Error::new(format!(
                "--branch `{name}` is the branch checked out in the working tree {}",
                dir.display()
            ))
            .with_help(help));
        }
        let tip = match repo.find_reference(&refname) {
            Ok(reference) => {
                Some(reference.peel_to_commit().map_err(|e| git_error(&format!("read branch `{name}`"), &e))?.id())
            }
            Err(e) if e.code() == ErrorCode::NotFound => None,
            Err(e) => return Err(git_error(&format!("read branch `{name}`"), &e)),
        };
        drop(repo);
        Ok(Branch { git: self.clone(), name: name.to_string(), refname, tip, base: None })
    }
}

impl Branch {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The branch's commit when opened (full SHA), `None` for a new branch.
    pub fn tip(&self) -> Option<String> {
        self.tip.map(|oid| oid.to_string())
    }

    /// The same new branch, its first commit a child of `base`: the branch is created by that
    /// commit, never before it, so it never names `base` itself.
    pub(super) fn with_base(self, base: Oid) -> Branch {
        Branch { base: Some(base), ..self }
    }

    /// The file at `path` (from the branch's root) in its tip, `None` when there is none.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        let Some(tip) = self.tip else { return Ok(None) };
        let repo = self.git.lock();
        let tree = repo.find_commit(tip).and_then(|c| c.tree()).map_err(|e| git_error("read the branch", &e))?;
        let entry = match tree.get_path(path) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(git_error("read the branch", &e)),
        };
        match entry.to_object(&repo).map(|o| o.into_blob()) {
            Ok(Ok(blob)) => Ok(Some(blob.content().to_vec())),
            Ok(Err(_)) => Ok(None),
            Err(e) => Err(git_error("read the branch", &e)),
        }
    }

    /// Commits the tip's tree with `changes` (a path's new content, or `None` to remove it) on
    /// the branch, as the repository's configured identity (user.name, user.email), signed when
    /// the repository has a signing key; the message ends with the source trailer. The branch
    /// moves only if it is still where it was when opened (a new branch is created only if it
    /// still does not exist). With a source commit, its note in [`NOTES_REF`] names the new
    /// commit. Returns the new commit's SHA.
    pub fn commit(
        &self,
        changes: &BTreeMap<String, Option<Vec<u8>>>,
        subject: &str,
        source: Option<&super::Provenance>,
    ) -> Result<String> {
        let repo = self.git.lock();
        let signature = self.git.signature(&repo).map_err(|e| {
            Error::new(format!("git: no identity to commit to --branch `{}` with: {}", self.name, e.message()))
                .with_help("set one: git config user.name NAME; git config user.email EMAIL")
        })?;
        let parent = (self.tip.or(self.base).map(|parent| repo.find_commit(parent)).transpose())
            .map_err(|e| git_error("read the branch", &e))?;
        // An index of its own, in memory: the repository's index is never read or written.
        let mut index = Index::new().map_err(|e| git_error("build the tree", &e))?;
        if let Some(parent) = &parent {
            index
                .read_tree(&parent.tree().map_err(|e| git_error("read the branch", &e))?)
                .map_err(|e| git_error("build the tree", &e))?;
        }
        for (path, content) in changes {
            let built = match content {
                None => index.remove_path(Path::new(path)),
                Some(bytes) => repo.blob(bytes).and_then(|id| index.add(&blob_entry(path, id, bytes.len()))),
            };
            built.map_err(|e| git_error(&format!("write {path} to the tree"), &e))?;
        }
        let tree = index
            .write_tree_to(&repo)
            .and_then(|id| repo.find_tree(id))
            .map_err(|e| git_error("write the tree", &e))?;
        let mut message = format!("{subject}\n");
        if let Some(source) = source {
            message.push_str(&format!("\n{SOURCE_TRAILER}: {}\n", source.commit));
        }
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let commit = match &self.git.signing_key {
            None => repo.commit(None, &signature, &signature, &message, &tree, &parents),
            Some(key) => {
                let content = repo
                    .commit_create_buffer(&signature, &signature, &message, &tree, &parents)
                    .map_err(|e| git_error("commit", &e))?;
                let gpgsig =
                    key.sign(&content).map_err(|why| Error::new(format!("git: cannot sign the commit: {why}")))?;
                let content = std::str::from_utf8(&content).map_err(|_| Error::new("git: the commit is not UTF-8"))?;
                // libgit2 writes a last newline as a line of its own; git writes none.
                repo.commit_signed(content, gpgsig.trim_end(), None)
            }
        }
        .map_err(|e| git_error("commit", &e))?;
        let log = subject.lines().next().unwrap_or_default();
        let moved = match self.tip {
            Some(tip) => repo.reference_matching(&self.refname, commit, true, tip, log),
            None => repo.reference(&self.refname, commit, false, log),
        };
        moved.map_err(|e| {
            Error::new(format!("git: cannot move branch `{}`: {}", self.name, e.message()))
                .with_help("another process changed the branch meanwhile: run the command again")
        })?;
        if let Some(source) = source {
            write_note(&repo, &signature, source, &self.name, &commit.to_string())?;
        }
        Ok(commit.to_string())
    }
}

/// The ref HEAD names (`refs/heads/…`), if it names one.
fn head_of(repo: &git2::Repository) -> Option<String> {
    repo.head().ok().and_then(|head| head.name().ok().map(str::to_string))
}

/// The working tree (other than `repo`'s) that has `refname` checked out, if one has: the
/// main one, or one of `git worktree add`'s. Moving the branch under it would make every file
/// look changed there.
fn checked_out_elsewhere(repo: &git2::Repository, refname: &str) -> Option<std::path::PathBuf> {
    let main = git2::Repository::open(repo.commondir()).ok()?;
    let mut trees: Vec<git2::Repository> = Vec::new();
    for name in main.worktrees().ok()?.iter().flatten().flatten() {
        let Ok(worktree) = main.find_worktree(name) else { continue };
        if let Ok(opened) = git2::Repository::open_from_worktree(&worktree) {
            trees.push(opened);
        }
    }
    trees.push(main);
    let this = repo.workdir().and_then(|dir| std::fs::canonicalize(dir).ok());
    trees.into_iter().find_map(|tree| {
        let dir = std::fs::canonicalize(tree.workdir()?).ok()?;
        (Some(&dir) != this.as_ref() && head_of(&tree).as_deref() == Some(refname)).then_some(dir)
    })
}

/// What an artifact pushed from a source commit says of it, as `flux push artifact` annotates
/// one (`org.opencontainers.image.*`).
pub struct ArtifactSource {
    /// The commit's time, RFC 3339 in UTC: the same tree from the same commit is the same
    /// artifact, wherever and whenever it is pushed.
    pub created: String,
    /// The `origin` remote's URL without credentials; empty without one.
    pub url: String,
    /// `sha1:<commit>`, Flux's revision format for a commit.
    pub revision: String,
}

impl GitRepo {
    /// See [`ArtifactSource`].
    pub fn artifact_source(&self, source: &super::Provenance) -> Result<ArtifactSource> {
        let repo = self.lock();
        let oid = Oid::from_str(&source.commit).map_err(|e| git_error("read the source commit", &e))?;
        let seconds = repo.find_commit(oid).map_err(|e| git_error("read the source commit", &e))?.time().seconds();
        let created = jiff::Timestamp::from_second(seconds)
            .map_err(|e| Error::new(format!("the source commit's time is out of range: {e}")))?
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let url = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(weaver_source::redact_url))
            .unwrap_or_default();
        Ok(ArtifactSource { created, url, revision: format!("sha1:{}", source.commit) })
    }

    /// Notes on the source commit that `artifact` holds what was rendered from it, as
    /// `<artifact> <digest>` (see [`NOTES_REF`]). False when the repository has no identity
    /// to write the note as (the artifact is pushed all the same).
    pub fn note_artifact(&self, source: &super::Provenance, artifact: &str, digest: &str) -> Result<bool> {
        let repo = self.lock();
        let Ok(signature) = repo.signature() else { return Ok(false) };
        write_note(&repo, &signature, source, artifact, digest)?;
        Ok(true)
    }
}

/// Sets `key`'s line of the source commit's note in [`NOTES_REF`] to `value`.
fn write_note(
    repo: &git2::Repository,
    signature: &git2::Signature<'_>,
    source: &super::Provenance,
    key: &str,
    value: &str,
) -> Result<()> {
    let source_oid = Oid::from_str(&source.commit).map_err(|e| git_error("read the source commit", &e))?;
    let note = note_lines(
        repo.find_note(Some(NOTES_REF), source_oid).ok().and_then(|n| n.message().ok().map(str::to_string)),
        key,
        &format!("{value}{}", if source.dirty { " (from a working tree with uncommitted changes)" } else { "" }),
    );
    repo.note(signature, signature, Some(NOTES_REF), source_oid, &note, true)
        .map_err(|e| git_error("write the note on the source commit", &e))?;
    Ok(())
}

/// The note on a source commit: one line per branch or artifact hydrated from it, `<branch>
/// <commit>` or `<artifact> <digest>`; this one's line replaced, the others' kept.
fn note_lines(existing: Option<String>, branch: &str, hydrated: &str) -> String {
    let mut lines: BTreeMap<String, String> = existing
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| line.split_once(' ').map(|(b, rest)| (b.to_string(), rest.to_string())))
        .collect();
    lines.insert(branch.to_string(), hydrated.to_string());
    lines.iter().map(|(branch, commit)| format!("{branch} {commit}\n")).collect()
}

/// An index entry for a regular file's blob.
fn blob_entry(path: &str, id: Oid, size: usize) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: size as u32,
        id,
        // The low 12 bits hold the path's length (0xfff for longer ones), as git writes them.
        flags: path.len().min(0xfff) as u16,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::note_lines;

    #[test]
    fn a_note_keeps_other_branches_lines_and_replaces_its_own() {
        let first = note_lines(None, "hydrated", "aaa");
        assert_eq!(first, "hydrated aaa\n");
        let second = note_lines(Some(first), "prod-hydrated", "bbb");
        assert_eq!(second, "hydrated aaa\nprod-hydrated bbb\n");
        assert_eq!(note_lines(Some(second), "hydrated", "ccc"), "hydrated ccc\nprod-hydrated bbb\n");
    }
}
