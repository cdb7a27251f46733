//! The branch `weaver promote` writes a promotion to: new, from HEAD's commit, committed to in
//! the object database as `weaver hydrate` commits (never the working tree, index or HEAD).

use std::collections::BTreeMap;

use git2::{ErrorCode, Oid};

use super::{GitRepo, git_error};
use weaver_core::error::{Error, Result};

impl GitRepo {
    /// Commits `changes` (paths relative to the weaver repository, each with its new content)
    /// over `base`'s tree on a new branch `name`, with `message`: the commit is written first,
    /// then the branch created at it, only if it still does not exist. A branch that exists
    /// already is refused: a promotion is a new pull request. Returns the new commit's SHA.
    pub fn commit_new_branch(
        &self,
        name: &str,
        base: Oid,
        changes: &BTreeMap<String, Vec<u8>>,
        message: &str,
    ) -> Result<String> {
        let branch = self.hydrated_branch(name)?;
        if branch.tip().is_some() {
            return Err(Error::new(format!("branch `{name}` exists already"))
                .with_help("a promotion goes to a new branch: delete the old one once its pull request is closed, or name another with --branch"));
        }
        let prefixed: BTreeMap<String, Option<Vec<u8>>> = changes
            .iter()
            .map(|(path, bytes)| (self.prefix.join(path).to_string_lossy().into_owned(), Some(bytes.clone())))
            .collect();
        branch.with_base(base).commit(&prefixed, message.trim_end(), None)
    }

    /// Commits `changes` (paths from the top of the git tree, each with its new content or
    /// `None` to remove it) over `base`'s tree, as a child of `base` that no branch here names
    /// (for the caller to push: `weaver bootstrap`'s commit). Returns its SHA.
    pub fn commit_detached(
        &self,
        base: Oid,
        changes: &BTreeMap<String, Option<Vec<u8>>>,
        message: &str,
    ) -> Result<String> {
        let local = format!("weaver/detached/{}", jiff::Timestamp::now().as_nanosecond());
        let commit = self.hydrated_branch(&local)?.with_base(base).commit(changes, message.trim_end(), None)?;
        self.delete_branch(&local)?;
        Ok(commit)
    }

    /// Removes branch `name`, which need not exist (a promotion's local branch, once pushed).
    pub fn delete_branch(&self, name: &str) -> Result<()> {
        let repo = self.lock();
        match repo.find_reference(&format!("refs/heads/{name}")) {
            Ok(mut reference) => reference.delete().map_err(|e| git_error(&format!("delete branch `{name}`"), &e)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(git_error(&format!("read branch `{name}`"), &e)),
        }
    }
}
