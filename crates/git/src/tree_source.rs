//! The weaver repository's files as they are in a commit, read from git objects without a
//! checkout. Blobs are read as stored: no checkout filters (end-of-line conversion, LFS).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use git2::{ObjectType, Oid, Repository};

use super::Revision;
use weaver_project::source::{Entry, Escape, Source, lexical};

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

/// Where a path leads in the tree.
struct Lookup {
    /// The resolved path, relative to the weaver repository's directory.
    path: PathBuf,
    /// `None` when nothing is there.
    node: Option<Node>,
}

impl TreeSource {
    pub(super) fn new(repo: Arc<Mutex<Repository>>, tree: Oid, prefix: PathBuf, revision: Revision) -> Self {
        TreeSource { repo, tree, prefix, revision }
    }

    /// Resolves `path` (relative to the weaver repository) one component at a time, following
    /// symbolic links inside the git tree as a checkout would, never on disk. A path or link
    /// that leads outside the weaver repository's directory is an [`Escape`].
    fn lookup(&self, repo: &Repository, path: &Path) -> io::Result<Lookup> {
        let escape = |resolved: PathBuf| {
            Escape { path: path.to_path_buf(), resolved, within: format!("the repository in {}", self.revision) }
                .into_io()
        };
        let Some(relative) = path.to_str().filter(|_| path.is_relative()) else {
            return Err(escape(path.to_path_buf()));
        };
        // Components still to resolve, the next one last.
        let mut pending: Vec<String> = relative.split('/').rev().map(str::to_string).collect();
        pending.extend(self.prefix.iter().rev().map(|c| c.to_string_lossy().into_owned()));
        // The trees from the top to the current directory, with their names.
        let mut trail: Vec<(String, Oid)> = vec![(String::new(), self.tree)];
        let mut links = 0;
        // What the walk stopped at, when it stopped before the end of the path.
        let mut stopped: Option<Option<Node>> = None;
        while let Some(name) = pending.pop() {
            match name.as_str() {
                "" | "." => continue,
                ".." => {
                    if trail.len() == 1 {
                        let rest: Vec<String> = pending.drain(..).rev().collect();
                        return Err(escape(self.relative_to_repository(&[".."], &rest)));
                    }
                    trail.pop();
                    continue;
                }
                _ => {}
            }
            let tree =
                repo.find_tree(trail.last().expect("the top tree is never popped").1).map_err(io::Error::other)?;
            let Some(entry) = tree.get_name(&name) else {
                // What does not exist is kept as written, to be checked lexically below.
                pending.push(name);
                stopped = Some(None);
                break;
            };
            match entry.kind() {
                Some(ObjectType::Tree) => trail.push((name, entry.id())),
                Some(ObjectType::Blob) if entry.filemode() == SYMLINK_MODE => {
                    links += 1;
                    let blob = repo.find_blob(entry.id()).map_err(io::Error::other)?;
                    let Ok(target) = std::str::from_utf8(blob.content()) else { return Ok(self.missing(&trail)) };
                    if target.starts_with('/') {
                        return Err(escape(PathBuf::from(target)));
                    }
                    if links > MAX_SYMLINKS {
                        // As on disk (ELOOP): a loop is an error, not an empty place, or a
                        // walk through two links to `.` would branch without end.
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    pending.extend(target.split('/').rev().map(str::to_string));
                }
                Some(ObjectType::Blob) => {
                    trail.push((name, entry.id()));
                    stopped = Some(pending.is_empty().then_some(Node::Blob(entry.id())));
                    break;
                }
                // Submodules are not part of this repository's files.
                _ => {
                    trail.push((name, entry.id()));
                    stopped = Some(None);
                    break;
                }
            }
        }
        let names: Vec<&str> = trail[1..].iter().map(|(name, _)| name.as_str()).collect();
        let rest: Vec<String> = pending.into_iter().rev().collect();
        let full = lexical(&names.iter().copied().chain(rest.iter().map(String::as_str)).collect::<PathBuf>());
        let inside = full.as_ref().and_then(|full| full.strip_prefix(&self.prefix).ok());
        let Some(inside) = inside else {
            return Err(escape(self.relative_to_repository(&names, &rest)));
        };
        let node = stopped.unwrap_or_else(|| Some(Node::Tree(trail.last().expect("the top tree is never popped").1)));
        Ok(Lookup { path: inside.to_path_buf(), node })
    }

    /// A lookup that found nothing (a link that is not UTF-8), at the trees walked.
    fn missing(&self, trail: &[(String, Oid)]) -> Lookup {
        let full: PathBuf = trail[1..].iter().map(|(name, _)| name.as_str()).collect();
        Lookup { path: full.strip_prefix(&self.prefix).map(Path::to_path_buf).unwrap_or(full), node: None }
    }

    /// A path from the top of the git tree, as seen from the weaver repository's directory.
    fn relative_to_repository(&self, names: &[impl AsRef<str>], rest: &[String]) -> PathBuf {
        let up = self.prefix.iter().map(|_| "..");
        up.chain(names.iter().map(AsRef::as_ref)).chain(rest.iter().map(String::as_str)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Repository> {
        self.repo.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Source for TreeSource {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let repo = self.lock();
        match self.lookup(&repo, path)?.node {
            Some(Node::Blob(id)) => Ok(Some(repo.find_blob(id).map_err(io::Error::other)?.content().to_vec())),
            _ => Ok(None),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let repo = self.lock();
        let Some(Node::Tree(id)) = self.lookup(&repo, dir)?.node else { return Ok(None) };
        let tree = repo.find_tree(id).map_err(io::Error::other)?;
        let mut entries = Vec::new();
        for entry in tree.iter() {
            let Ok(name) = entry.name() else { continue };
            let is_dir = match entry.kind() {
                Some(ObjectType::Tree) => true,
                // A link leading out is listed as a file, so that reading it reports the escape.
                Some(ObjectType::Blob) if entry.filemode() == SYMLINK_MODE => {
                    matches!(self.lookup(&repo, &dir.join(name)), Ok(Lookup { node: Some(Node::Tree(_)), .. }))
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

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self.lookup(&self.lock(), path)?.path)
    }

    fn describe(&self) -> String {
        self.revision.to_string()
    }
}
