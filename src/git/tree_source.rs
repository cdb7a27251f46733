//! The weaver repository's files as they are in a commit, read from git objects without a
//! checkout. Blobs are read as stored: no checkout filters (end-of-line conversion, LFS).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use git2::{ObjectType, Oid, Repository};

use super::Revision;
use crate::project::source::{Entry, Source};

/// The file mode git records for a symbolic link; the blob holds the link's target.
const SYMLINK_MODE: i32 = 0o120000;
/// Links followed while resolving one path before giving up, as Linux does (ELOOP).
const MAX_SYMLINKS: usize = 40;

/// A commit's tree, seen from the weaver repository's directory inside it.
pub struct TreeSource {
    repo: Arc<Mutex<Repository>>,
    /// The commit's root tree.
    tree: Oid,
    /// The weaver repository's directory inside the tree (empty when it is the top).
    prefix: PathBuf,
    revision: Revision,
}

/// What a path names in the tree.
enum Node {
    Blob(Oid),
    Tree(Oid),
}

impl TreeSource {
    pub(super) fn new(repo: Arc<Mutex<Repository>>, tree: Oid, prefix: PathBuf, revision: Revision) -> Self {
        TreeSource { repo, tree, prefix, revision }
    }

    /// Resolves `path` (relative to the weaver repository) one component at a time, following
    /// symbolic links inside the git tree as a checkout would; links leaving it resolve to
    /// nothing.
    fn lookup(&self, repo: &Repository, path: &Path) -> Result<Option<Node>, git2::Error> {
        let Some(full) = self.prefix.join(path).to_str().map(str::to_string) else { return Ok(None) };
        // Components still to resolve, the next one last.
        let mut pending: Vec<String> = full.split('/').rev().map(str::to_string).collect();
        // The trees from the top to the current directory.
        let mut trail = vec![self.tree];
        let mut links = 0;
        while let Some(name) = pending.pop() {
            match name.as_str() {
                "" | "." => continue,
                ".." => {
                    if trail.len() == 1 {
                        return Ok(None);
                    }
                    trail.pop();
                    continue;
                }
                _ => {}
            }
            let tree = repo.find_tree(*trail.last().expect("the top tree is never popped"))?;
            let Some(entry) = tree.get_name(&name) else { return Ok(None) };
            match entry.kind() {
                Some(ObjectType::Tree) => trail.push(entry.id()),
                Some(ObjectType::Blob) if entry.filemode() == SYMLINK_MODE => {
                    links += 1;
                    let blob = repo.find_blob(entry.id())?;
                    let Ok(target) = std::str::from_utf8(blob.content()) else { return Ok(None) };
                    if links > MAX_SYMLINKS || target.starts_with('/') {
                        return Ok(None);
                    }
                    pending.extend(target.split('/').rev().map(str::to_string));
                }
                Some(ObjectType::Blob) => return Ok(pending.is_empty().then_some(Node::Blob(entry.id()))),
                // Submodules are not part of this repository's files.
                _ => return Ok(None),
            }
        }
        Ok(Some(Node::Tree(*trail.last().expect("the top tree is never popped"))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Repository> {
        self.repo.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Source for TreeSource {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let repo = self.lock();
        match self.lookup(&repo, path).map_err(io::Error::other)? {
            Some(Node::Blob(id)) => Ok(Some(repo.find_blob(id).map_err(io::Error::other)?.content().to_vec())),
            _ => Ok(None),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let repo = self.lock();
        let Some(Node::Tree(id)) = self.lookup(&repo, dir).map_err(io::Error::other)? else { return Ok(None) };
        let tree = repo.find_tree(id).map_err(io::Error::other)?;
        let mut entries = Vec::new();
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            let is_dir = match entry.kind() {
                Some(ObjectType::Tree) => true,
                Some(ObjectType::Blob) if entry.filemode() == SYMLINK_MODE => {
                    matches!(self.lookup(&repo, &dir.join(name)).map_err(io::Error::other)?, Some(Node::Tree(_)))
                }
                Some(ObjectType::Blob) => false,
                _ => continue,
            };
            entries.push(Entry { name: name.to_string(), is_dir });
        }
        // Git orders a directory as if its name ended in '/'; listings are sorted by name.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(entries))
    }

    fn describe(&self) -> String {
        self.revision.to_string()
    }
}
