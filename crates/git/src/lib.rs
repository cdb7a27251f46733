//! Git: the repository holding the weaver repository, revisions, the files of a commit, the
//! paths that changed between two versions, and which commit an apply deploys.
//!
//! The weaver repository (`--repo`) may be a subdirectory of a git repository; every path this
//! module returns is relative to the weaver repository, and changes outside it are ignored.

pub mod hydrated;
pub mod promotion;
pub mod tree_source;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use git2::{Delta, DiffOptions, ErrorCode, Oid, Repository, RepositoryOpenFlags};

pub use tree_source::TreeSource;
use weaver_core::error::{Error, Result};
use weaver_verify::{Signer, SigningKey, TrustList};

/// A revision as the user wrote it, resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// What the user wrote: a branch, tag, SHA or an expression such as `HEAD~2`.
    pub spec: String,
    pub commit: Oid,
}

impl Revision {
    /// The first 8 hex digits of the commit, as shown in messages.
    pub fn short(&self) -> String {
        short(&self.commit.to_string()).to_string()
    }
}

/// A commit id's first 8 characters, as messages show one.
fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "commit {} ({})", self.short(), self.spec)
    }
}

/// A path that differs between two versions, relative to the weaver repository. A rename is
/// the old path deleted plus the new path added, so both sides of it are seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangedPath {
    pub path: PathBuf,
    /// The path exists in the base version (false: added).
    pub in_base: bool,
    /// The path exists in the head version (false: deleted).
    pub in_head: bool,
}

/// The commit an apply deploys, for the release record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// The full SHA.
    pub commit: String,
    /// The working tree had uncommitted changes (untracked files included, ignored ones not)
    /// under the weaver repository, so what was applied is not exactly `commit`.
    pub dirty: bool,
}

/// The git repository containing a weaver repository. Cheap to clone: clones share one
/// libgit2 handle, which is not thread-safe, behind a lock.
#[derive(Clone)]
pub struct GitRepo {
    repo: Arc<Mutex<Repository>>,
    /// The weaver repository's directory inside the git tree (empty when they are the same).
    prefix: PathBuf,
    /// The weaver repository's directory on disk, as given with --repo.
    root: PathBuf,
    /// Who commits (name, email), in place of the repository's user.name and user.email.
    identity: Option<(String, String)>,
    /// The key commits are signed with (the controller's, when its environments verify).
    signing_key: Option<Arc<SigningKey>>,
}

impl GitRepo {
    /// Opens the git repository containing `root`, searching parent directories as git does
    /// (GIT_CEILING_DIRECTORIES and the other variables git reads are honoured); `None` when
    /// there is none.
    ///
    /// A path below a bare repository (which has no working tree to hold it), such as
    /// `MIRROR/clusters/prod`, names the weaver repository at that directory of each commit's
    /// tree: how the controller reads an EnvironmentSync's `spec.source.path` from its mirror.
    pub fn discover(root: &Path) -> Result<Option<GitRepo>> {
        if let Some(git) = GitRepo::below_bare(root) {
            return Ok(Some(git));
        }
        let canonical = std::fs::canonicalize(root).map_err(|e| Error::io("open the repository directory", root, e))?;
        let no_ceiling: [&std::ffi::OsStr; 0] = [];
        let repo = match Repository::open_ext(&canonical, RepositoryOpenFlags::FROM_ENV, no_ceiling) {
            Ok(repo) => repo,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(format!(
                    "cannot open the git repository containing {}: {}",
                    root.display(),
                    e.message()
                )));
            }
        };
        // A bare repository has no working tree: its trees are read from the top.
        let prefix = match repo.workdir() {
            Some(workdir) => {
                let workdir =
                    std::fs::canonicalize(workdir).map_err(|e| Error::io("open git working tree", workdir, e))?;
                canonical.strip_prefix(&workdir).map(Path::to_path_buf).unwrap_or_default()
            }
            None => PathBuf::new(),
        };
        Ok(Some(GitRepo {
            repo: Arc::new(Mutex::new(repo)),
            prefix,
            root: root.to_path_buf(),
            identity: None,
            signing_key: None,
        }))
    }

    /// `root` when it lies below a bare repository: the nearest ancestor that is one, `root`'s
    /// rest the prefix. Whether that rest exists on disk does not matter: `MIRROR/hooks` names
    /// the tree's `hooks/`, not the mirror's own directory of that name.
    fn below_bare(root: &Path) -> Option<GitRepo> {
        let bare = root.ancestors().skip(1).find(|dir| dir.join("HEAD").is_file() && dir.join("objects").is_dir())?;
        let repo = Repository::open_bare(bare).ok().filter(Repository::is_bare)?;
        let prefix = root.strip_prefix(bare).ok()?.to_path_buf();
        Some(GitRepo {
            repo: Arc::new(Mutex::new(repo)),
            prefix,
            root: root.to_path_buf(),
            identity: None,
            signing_key: None,
        })
    }

    /// Like [`GitRepo::discover`], but no repository is an error: what needs git history.
    pub fn open(root: &Path) -> Result<GitRepo> {
        GitRepo::discover(root)?.ok_or_else(|| {
            Error::new(format!("{} is not inside a git repository", root.display())).with_help(
                "--rev, --changed-since and `weaver changed` read git history: point --repo at a git checkout",
            )
        })
    }

    /// This repository, committing as `name` <`email`> (the controller's, whose mirrors have
    /// no identity of their own).
    pub fn with_identity(self, name: &str, email: &str) -> GitRepo {
        GitRepo { identity: Some((name.to_string(), email.to_string())), ..self }
    }

    /// This repository, signing each commit it makes with `key` (a `gpgsig` header, as `git
    /// commit -S` writes it).
    pub fn with_signing_key(self, key: Arc<SigningKey>) -> GitRepo {
        GitRepo { signing_key: Some(key), ..self }
    }

    /// The identity commits are made with: the one given, else user.name and user.email.
    fn signature(&self, repo: &Repository) -> std::result::Result<git2::Signature<'static>, git2::Error> {
        match &self.identity {
            Some((name, email)) => git2::Signature::now(name, email),
            None => repo.signature(),
        }
    }

    /// The git repository's working tree; `None` for a bare one.
    pub fn work_tree(&self) -> Option<PathBuf> {
        self.lock().workdir().map(Path::to_path_buf)
    }

    /// The weaver repository's directory on disk.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> MutexGuard<'_, Repository> {
        // libgit2 leaves the handle usable after a panic elsewhere.
        self.repo.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves `spec` (branch, tag, SHA, `HEAD~2`…) to a commit; `flag` names where it was
    /// given, for errors.
    pub fn resolve(&self, spec: &str, flag: &str) -> Result<Revision> {
        let repo = self.lock();
        let object = repo.revparse_single(spec).map_err(|e| self.unknown_revision(&repo, spec, flag, &e))?;
        let commit = object.peel_to_commit().map_err(|_| {
            let kind = object.kind().map_or("object", |k| k.str());
            Error::new(format!("`{spec}` ({flag}) names a {kind}, not a commit"))
        })?;
        Ok(Revision { spec: spec.to_string(), commit: commit.id() })
    }

    fn unknown_revision(&self, repo: &Repository, spec: &str, flag: &str, err: &git2::Error) -> Error {
        // `components` drops the trailing slash libgit2 gives directories.
        let location = repo.workdir().unwrap_or(repo.path()).components().as_path().display().to_string();
        if err.code() == ErrorCode::Ambiguous {
            return Error::new(format!("`{spec}` ({flag}) is ambiguous in {location}: several objects start with it"))
                .with_help("give more digits of the SHA");
        }
        if repo.is_shallow() {
            return Error::new(format!(
                "`{spec}` ({flag}) is not in {location}, a shallow clone: its history is cut off, and the commit may \
                 be in the part that was not fetched"
            ))
            .with_help(
                "fetch the history weaver needs: `git fetch --unshallow` (or `git fetch --deepen=N`); \
                 in CI clone with full history (GitHub Actions: `fetch-depth: 0`, GitLab CI: `GIT_DEPTH: 0`)",
            );
        }
        let detail = if err.code() == ErrorCode::NotFound { String::new() } else { format!(" ({})", err.message()) };
        Error::new(format!(
            "unknown revision `{spec}` ({flag}): no branch, tag or commit of {location} is called that{detail}"
        ))
        .with_help("give a branch, tag, commit SHA or an expression such as HEAD~2 (`git log --oneline` lists commits)")
    }

    /// The commit HEAD points at; `None` before the first commit.
    pub fn head(&self) -> Result<Option<Revision>> {
        let repo = self.lock();
        let head = match repo.head() {
            Ok(head) => head,
            Err(e) if matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => return Ok(None),
            Err(e) => return Err(git_error("read HEAD", &e)),
        };
        let commit = head.peel_to_commit().map_err(|e| git_error("read HEAD", &e))?;
        Ok(Some(Revision { spec: "HEAD".to_string(), commit: commit.id() }))
    }

    /// Checks who signed `revision` (git's `gpgsig` header, over the commit without it) against
    /// `trust`, at the commit's committer time, as `git verify-commit` checks an SSH signature.
    /// A refusal names the commit; the caller names the trust list.
    pub fn verify(&self, revision: &Revision, trust: &TrustList) -> Result<Signer> {
        let repo = self.lock();
        let commit = repo.find_commit(revision.commit).map_err(|e| git_error("read the commit", &e))?;
        let time = jiff::Timestamp::from_second(commit.committer().when().seconds())
            .map_err(|_| Error::new(format!("{revision} has a committer time out of range")))?;
        // Split as git splits it (libgit2's `extract_signature` reads past the headers).
        let odb = repo.odb().map_err(|e| git_error("read the commit", &e))?;
        let object = odb.read(revision.commit).map_err(|e| git_error("read the commit", &e))?;
        let refused = |refusal| Error::new(format!("{revision} is refused: {refusal}"));
        let (signature, signed) = weaver_verify::split_commit(object.data()).map_err(refused)?;
        trust.verify(weaver_verify::GIT_NAMESPACE, signature.as_deref(), &signed, time).map_err(refused)
    }

    /// The commits `head` has that `since` has not (`git rev-list since..head`: a merge's other
    /// parents' too), newest first, each named `in SINCE..HEAD`; more than `limit` is an error,
    /// which bounds what a repository's history can cost its reader.
    pub fn commits_since(&self, head: &Revision, since: &str, limit: usize) -> Result<Vec<Revision>> {
        let repo = self.lock();
        let walked = || -> std::result::Result<Vec<Oid>, git2::Error> {
            let since = repo.revparse_single(since)?.peel_to_commit()?.id();
            let mut walk = repo.revwalk()?;
            walk.push(head.commit)?;
            walk.hide(since)?;
            walk.take(limit + 1).collect()
        };
        let commits = walked().map_err(|e| {
            Error::new(format!("cannot list the commits from {} to {head}: {}", short(since), e.message()))
        })?;
        if commits.len() > limit {
            return Err(Error::new(format!(
                "there are more than {limit} commits from {} to {head}, more than weaver checks in one go",
                short(since)
            )));
        }
        let range = format!("in {}..{}", short(since), head.short());
        Ok(commits.into_iter().map(|commit| Revision { spec: range.clone(), commit }).collect())
    }

    /// The weaver repository's files as they are in `revision`.
    pub fn tree_source(&self, revision: &Revision) -> Result<TreeSource> {
        let tree = {
            let repo = self.lock();
            repo.find_commit(revision.commit).and_then(|c| c.tree()).map_err(|e| git_error("read commit", &e))?.id()
        };
        Ok(TreeSource::new(self.repo.clone(), tree, self.prefix.clone(), revision.clone()))
    }

    /// The weaver repository's files as a checkout of `revision` gives them, by path relative to
    /// it (`/`-separated), with their modes (0755 for an executable, else 0644): what `weaver
    /// push artifact` packs. A symbolic link or a submodule is refused, naming it: an artifact
    /// holds regular files only, which its reader can check without following anything.
    pub fn files(&self, revision: &Revision) -> Result<std::collections::BTreeMap<String, (Vec<u8>, u32)>> {
        let repo = self.lock();
        let read = |e: git2::Error| git_error("read the commit's tree", &e);
        let root = repo.find_commit(revision.commit).and_then(|c| c.tree()).map_err(read)?;
        let tree = match self.prefix.as_os_str().is_empty() {
            true => root,
            false => {
                let entry = root.get_path(&self.prefix).map_err(|_| {
                    Error::new(format!(
                        "{} is not in {revision}: commit the weaver repository first",
                        self.prefix.display()
                    ))
                })?;
                repo.find_tree(entry.id()).map_err(read)?
            }
        };
        let mut files = std::collections::BTreeMap::new();
        let mut refused = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let path = format!("{dir}{}", entry.name().unwrap_or_default());
            match (entry.kind(), entry.filemode()) {
                (Some(git2::ObjectType::Tree), _) => git2::TreeWalkResult::Ok,
                (Some(git2::ObjectType::Blob), mode) if mode == 0o100644 || mode == 0o100755 => {
                    match repo.find_blob(entry.id()) {
                        Ok(blob) => {
                            let mode = if mode == 0o100755 { 0o755 } else { 0o644 };
                            files.insert(path, (blob.content().to_vec(), mode));
                            git2::TreeWalkResult::Ok
                        }
                        Err(e) => {
                            refused = Some(git_error(&format!("read {path}"), &e));
                            git2::TreeWalkResult::Abort
                        }
                    }
                }
                _ => {
                    let what = if entry.filemode() == 0o120000 { "a symbolic link" } else { "a submodule" };
                    refused = Some(
                        Error::new(format!("{path} is {what} in {revision}: an artifact holds regular files only"))
                            .with_help(
                                "replace it with the file it stands for, or move it out of the weaver repository",
                            ),
                    );
                    git2::TreeWalkResult::Abort
                }
            }
        })
        .or_else(|e| if refused.is_some() { Ok(()) } else { Err(read(e)) })?;
        match refused {
            Some(err) => Err(err),
            None => Ok(files),
        }
    }

    /// The paths under the weaver repository that differ between `base` and `head`, sorted;
    /// `head` `None` is the working tree, with staged, unstaged and untracked (not ignored)
    /// files.
    pub fn changed_paths(&self, base: &Revision, head: Option<&Revision>) -> Result<Vec<ChangedPath>> {
        let repo = self.lock();
        let tree_of = |revision: &Revision| {
            repo.find_commit(revision.commit).and_then(|c| c.tree()).map_err(|e| git_error("read commit", &e))
        };
        let base_tree = tree_of(base)?;
        let mut options = DiffOptions::new();
        // Only which paths differ matters, never their content.
        options.ignore_submodules(true).skip_binary_check(true).include_typechange(true);
        if !self.prefix.as_os_str().is_empty() {
            options.pathspec(&self.prefix).disable_pathspec_match(true);
        }
        let diff = match head {
            Some(head) => repo.diff_tree_to_tree(Some(&base_tree), Some(&tree_of(head)?), Some(&mut options)),
            None => {
                if repo.is_bare() {
                    return Err(Error::new(format!(
                        "{} is a bare git repository: there is no working tree to compare",
                        self.root.display()
                    ))
                    .with_help("name the version to compare with --head REV"));
                }
                options.include_untracked(true).recurse_untracked_dirs(true);
                repo.diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut options))
            }
        }
        .map_err(|e| git_error("compare versions", &e))?;

        let mut paths = Vec::new();
        for delta in diff.deltas() {
            let (in_base, in_head) = match delta.status() {
                Delta::Added | Delta::Untracked => (false, true),
                Delta::Deleted => (true, false),
                Delta::Unmodified | Delta::Ignored => continue,
                _ => (true, true),
            };
            let file = if in_head { delta.new_file() } else { delta.old_file() };
            let Some(path) = file.path().and_then(|p| p.strip_prefix(&self.prefix).ok()) else { continue };
            paths.push(ChangedPath { path: path.to_path_buf(), in_base, in_head });
        }
        paths.sort();
        Ok(paths)
    }
}

/// Which commit applying from `root` deploys: `rev`'s commit (never dirty), or HEAD and whether
/// the working tree differs from it under the weaver repository. `None` when `root` is in no
/// git repository or HEAD has no commit yet.
pub fn provenance(root: &Path, rev: Option<&str>) -> Result<Option<Provenance>> {
    let Some(git) = GitRepo::discover(root)? else { return Ok(None) };
    let (commit, dirty) = match rev {
        Some(spec) => (git.resolve(spec, "--rev")?, false),
        None => {
            let Some(head) = git.head()? else { return Ok(None) };
            let dirty = !git.changed_paths(&head, None)?.is_empty();
            (head, dirty)
        }
    };
    Ok(Some(Provenance { commit: commit.commit.to_string(), dirty }))
}

fn git_error(action: &str, err: &git2::Error) -> Error {
    Error::new(format!("git: cannot {action}: {}", err.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit of an empty tree on `parents`, with `message`.
    fn commit(repo: &Repository, message: &str, parents: &[Oid]) -> Oid {
        let signature = git2::Signature::new("t", "t@weaver.invalid", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let tree = repo.find_tree(repo.treebuilder(None).unwrap().write().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = parents.iter().map(|p| repo.find_commit(*p).unwrap()).collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &signature, &signature, message, &tree, &parents).unwrap()
    }

    #[test]
    fn the_commits_since_another_are_a_merges_both_sides_bounded_and_named_by_their_range() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let base = commit(&repo, "base", &[]);
        let main = commit(&repo, "main", &[base]);
        let side = commit(&repo, "side", &[base]);
        let merge = commit(&repo, "merge", &[main, side]);
        let git = GitRepo::open(dir.path()).unwrap();
        let head = git.resolve(&merge.to_string(), "--rev").unwrap();

        let since = git.commits_since(&head, &base.to_string(), 3).unwrap();
        let mut found: Vec<Oid> = since.iter().map(|r| r.commit).collect();
        found.sort();
        let mut expected = vec![merge, main, side];
        expected.sort();
        assert_eq!(found, expected, "the merge, and each side's commit");
        let range = format!("in {}..{}", &base.to_string()[..8], &merge.to_string()[..8]);
        assert!(since.iter().all(|r| r.spec == range), "{since:?}");
        assert!(git.commits_since(&head, &merge.to_string(), 3).unwrap().is_empty());

        let err = git.commits_since(&head, &base.to_string(), 2).unwrap_err();
        assert!(err.message.contains("there are more than 2 commits from"), "{err}");
        let err = git.commits_since(&head, "0123456789abcdef0123456789abcdef01234567", 3).unwrap_err();
        assert!(err.message.contains("cannot list the commits from 01234567 to commit"), "{err}");
    }
}
