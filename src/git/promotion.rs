//! The branch `weaver promote` writes a promotion to: new, from HEAD's commit, committed to in
//! the object database as `weaver hydrate` commits (never the working tree, index or HEAD).

use std::collections::BTreeMap;

use git2::{ErrorCode, Oid};

use super::{GitRepo, git_error};
use crate::error::{Error, Result};

impl GitRepo {
    /// Commits `changes` (paths relative to the weaver repository, each with its new content)
    /// over `base`'s tree on a new branch `name`, with `message`. A branch that exists already
    /// is refused: a promotion is a new pull request. Returns the new commit's SHA.
    pub fn commit_new_branch(
        &self,
        name: &str,
        base: Oid,
        changes: &BTreeMap<String, Vec<u8>>,
        message: &str,
    ) -> Result<String> {
        let refname = format!("refs/heads/{name}");
        {
            let repo = self.lock();
            match repo.find_reference(&refname) {
                Ok(_) => {
                    return Err(Error::new(format!("branch `{name}` exists already"))
                        .with_help("a promotion goes to a new branch: delete the old one once its pull request is closed, or name another with --branch"));
                }
                Err(e) if e.code() == ErrorCode::NotFound => {}
                Err(e) => return Err(git_error(&format!("read branch `{name}`"), &e)),
            }
        }
        // The branch starts at `base`; the commit moves it only from there.
        let branch = {
            let repo = self.lock();
            repo.reference(&refname, base, false, "weaver promote: branch from HEAD")
                .map_err(|e| git_error(&format!("create branch `{name}`"), &e))?;
            drop(repo);
            self.hydrated_branch(name)
        };
        let prefixed: BTreeMap<String, Option<Vec<u8>>> = changes
            .iter()
            .map(|(path, bytes)| (self.prefix.join(path).to_string_lossy().into_owned(), Some(bytes.clone())))
            .collect();
        let committed = branch.and_then(|branch| branch.commit(&prefixed, message.trim_end(), None));
        if committed.is_err()
            && let Ok(mut reference) = self.lock().find_reference(&refname)
        {
            let _ = reference.delete();
        }
        committed
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
