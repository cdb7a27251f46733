//! The weaver repository's files as they are in a commit, read from git objects without a
//! checkout. Blobs are read as stored: no checkout filters (end-of-line conversion, LFS).

use std::collections::{BTreeMap, HashMap};
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
    /// Each directory of the commit read so far, parsed once: libgit2 keeps no tree of more than
    /// 4 KiB parsed (its object cache's default), so a directory of 20,000 templates was read
    /// and parsed again for each of its files (142 s against 0.6 s from the working tree).
    directories: Mutex<HashMap<Oid, Arc<Directory>>>,
}

/// A directory's entries whose names are UTF-8, by name (the order listings give).
type Directory = BTreeMap<String, Item>;

/// One entry of a directory.
#[derive(Clone, Copy)]
struct Item {
    id: Oid,
    kind: Option<ObjectType>,
    mode: i32,
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
        TreeSource { repo, tree, prefix, revision, directories: Mutex::default() }
    }

    /// The directory whose tree is `id`, parsed at its first use.
    fn directory(&self, repo: &Repository, id: Oid) -> io::Result<Arc<Directory>> {
        if let Some(directory) = self.directories.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(directory.clone());
        }
        #[cfg(test)]
        tests::TREES_PARSED.with(|parsed| parsed.set(parsed.get() + 1));
        let tree = repo.find_tree(id).map_err(io::Error::other)?;
        let items = tree.iter().filter_map(|entry| {
            let item = Item { id: entry.id(), kind: entry.kind(), mode: entry.filemode() };
            Some((entry.name().ok()?.to_string(), item))
        });
        let directory = Arc::new(items.collect::<Directory>());
        self.directories.lock().unwrap_or_else(PoisonError::into_inner).insert(id, directory.clone());
        Ok(directory)
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
            let directory = self.directory(repo, trail.last().expect("the top tree is never popped").1)?;
            let Some(&entry) = directory.get(&name) else {
                // What does not exist is kept as written, to be checked lexically below.
                pending.push(name);
                stopped = Some(None);
                break;
            };
            match entry.kind {
                Some(ObjectType::Tree) => trail.push((name, entry.id)),
                Some(ObjectType::Blob) if entry.mode == SYMLINK_MODE => {
                    links += 1;
                    let blob = repo.find_blob(entry.id).map_err(io::Error::other)?;
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
                    trail.push((name, entry.id));
                    stopped = Some(pending.is_empty().then_some(Node::Blob(entry.id)));
                    break;
                }
                // Submodules are not part of this repository's files.
                _ => {
                    trail.push((name, entry.id));
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

    /// From the object's header: the blob is not loaded.
    fn size(&self, path: &Path) -> io::Result<Option<u64>> {
        let repo = self.lock();
        match self.lookup(&repo, path)?.node {
            Some(Node::Blob(id)) => {
                let (size, _) = repo.odb().and_then(|odb| odb.read_header(id)).map_err(io::Error::other)?;
                Ok(Some(size as u64))
            }
            _ => Ok(None),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let repo = self.lock();
        let Some(Node::Tree(id)) = self.lookup(&repo, dir)?.node else { return Ok(None) };
        let mut entries = Vec::new();
        // By name: git orders a directory as if its name ended in '/', listings do not.
        for (name, entry) in self.directory(&repo, id)?.iter() {
            let is_dir = match entry.kind {
                Some(ObjectType::Tree) => true,
                // A link leading out is listed as a file, so that reading it reports the escape.
                Some(ObjectType::Blob) if entry.mode == SYMLINK_MODE => {
                    matches!(self.lookup(&repo, &dir.join(name)), Ok(Lookup { node: Some(Node::Tree(_)), .. }))
                }
                Some(ObjectType::Blob) => false,
                _ => continue,
            };
            entries.push(Entry { name: name.clone(), is_dir });
        }
        Ok(Some(entries))
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self.lookup(&self.lock(), path)?.path)
    }

    fn describe(&self) -> String {
        self.revision.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use git2::{FileMode, Odb};

    use super::*;

    thread_local! {
        /// Trees this thread's lookups parsed: the work reads at a commit cost.
        pub(super) static TREES_PARSED: Cell<usize> = const { Cell::new(0) };
    }

    /// An entry to write: its name, its blob's bytes or a tree written before, its mode.
    type Written<'a> = (&'a str, Result<&'a [u8], Oid>, FileMode);

    /// A tree of `entries` written to `repo`.
    fn tree(repo: &Repository, entries: &[Written<'_>]) -> Oid {
        let mut builder = repo.treebuilder(None).unwrap();
        for (name, content, mode) in entries {
            let id = match content {
                Ok(bytes) => repo.blob(bytes).unwrap(),
                Err(tree) => *tree,
            };
            builder.insert(name, id, i32::from(*mode)).unwrap();
        }
        builder.write().unwrap()
    }

    #[test]
    fn reading_every_file_of_a_large_directory_parses_each_tree_once() {
        // In memory: no working tree, nothing on disk.
        let odb = Odb::new().unwrap();
        odb.add_new_mempack_backend(1).unwrap();
        let repo = Repository::from_odb(odb).unwrap();
        let names: Vec<String> = (0..2_000).map(|i| format!("t-{i:04}.yaml")).collect();
        let mut templates: Vec<Written<'_>> =
            names.iter().map(|name| (name.as_str(), Ok(name.as_bytes()), FileMode::Blob)).collect();
        templates.push(("link.yaml", Ok(b"../values.yaml"), FileMode::Link));
        templates.push(("out.yaml", Ok(b"../../../../outside"), FileMode::Link));
        let templates = tree(&repo, &templates);
        let chart =
            tree(&repo, &[("templates", Err(templates), FileMode::Tree), ("values.yaml", Ok(b"v: 1"), FileMode::Blob)]);
        let charts = tree(&repo, &[("web", Err(chart), FileMode::Tree)]);
        let root = tree(&repo, &[("charts", Err(charts), FileMode::Tree)]);
        let revision = Revision { spec: "HEAD".into(), commit: Oid::ZERO_SHA1 };
        let source = TreeSource::new(Arc::new(Mutex::new(repo)), root, PathBuf::new(), revision);

        TREES_PARSED.with(|parsed| parsed.set(0));
        let dir = Path::new("charts/web/templates");
        let listed = source.list(dir).unwrap().unwrap();
        assert_eq!(listed.len(), names.len() + 2);
        for name in &names {
            let path = dir.join(name);
            assert_eq!(source.read(&path).unwrap().as_deref(), Some(name.as_bytes()), "{name}");
            assert_eq!(source.resolve(&path).unwrap(), path);
        }
        // The top, charts, web and templates: once each, not once per file read.
        assert_eq!(TREES_PARSED.with(Cell::get), 4);

        // Links are still resolved inside the commit, and one leading out still refused.
        assert_eq!(source.read(&dir.join("link.yaml")).unwrap().as_deref(), Some(&b"v: 1"[..]));
        let escape = source.read(&dir.join("out.yaml")).unwrap_err();
        assert!(Escape::of(&escape).is_some(), "{escape}");
    }

    #[test]
    fn a_blob_s_size_is_told_through_links_and_a_directory_has_none() {
        let odb = Odb::new().unwrap();
        odb.add_new_mempack_backend(1).unwrap();
        let repo = Repository::from_odb(odb).unwrap();
        let big = vec![b'#'; 100_000];
        let dir = tree(&repo, &[("big.yaml", Ok(&big), FileMode::Blob)]);
        let linked = [("dir", Err(dir), FileMode::Tree), ("link.yaml", Ok(&b"dir/big.yaml"[..]), FileMode::Link)];
        let root = tree(&repo, &linked);
        let revision = Revision { spec: "HEAD".into(), commit: Oid::ZERO_SHA1 };
        let source = TreeSource::new(Arc::new(Mutex::new(repo)), root, PathBuf::new(), revision);
        assert_eq!(source.size(Path::new("dir/big.yaml")).unwrap(), Some(100_000));
        assert_eq!(source.size(Path::new("link.yaml")).unwrap(), Some(100_000));
        assert_eq!(source.size(Path::new("dir")).unwrap(), None, "a directory is no file");
        assert_eq!(source.size(Path::new("missing.yaml")).unwrap(), None);
    }
}
