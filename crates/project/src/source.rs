//! Where the repository's files come from: the working tree, or a commit's tree (`--rev`, see
//! `weaver_git::TreeSource`). Every path is relative to the repository root, so errors name
//! files the way users see them.
//!
//! This is the one place that confines reads: a path the repository names is resolved
//! lexically and through every symbolic link, and one that ends outside the repository is an
//! [`Escape`], never read. Repository content comes from untrusted pull requests in CI, and
//! whatever weaver reads can end up in rendered output (Argo CD's CVE-2022-24348).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use weaver_core::error::Escape;
use weaver_core::error::{Error, Location, Result};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// A repository path as written in a file, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRef {
    pub path: PathBuf,
    pub at: Location,
}

/// Read-only access to the repository's files. Implementations resolve every path with
/// [`Source::resolve`] and refuse one that leads outside the repository with an [`Escape`].
pub trait Source: Send + Sync {
    /// The file's bytes, or `None` when there is no such file.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The file's size in bytes, or `None` when there is no such file: checked against a bound
    /// before the file is read, so that a file of gigabytes is refused unread. Sources that can
    /// tell it without reading (the working tree, a git tree) say so; others read the file.
    fn size(&self, path: &Path) -> io::Result<Option<u64>> {
        Ok(self.read(path)?.map(|bytes| bytes.len() as u64))
    }
    /// The directory's entries sorted by name, or `None` when there is no such directory. An
    /// entry that is a link leading outside the repository is listed as a file, so that reading
    /// it reports the escape.
    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>>;
    /// Where `path` leads, relative to the repository root, after `..` and every symbolic link;
    /// a part that does not exist is kept as written. An [`Escape`] when it leaves the
    /// repository.
    fn resolve(&self, path: &Path) -> io::Result<PathBuf>;
    /// What to call this source in messages (`/path/to/repo`, `commit 1a2b3c4d (main)`).
    fn describe(&self) -> String;

    /// A file that the repository names at `at` (`what` it is, for messages), or `None` when it
    /// does not exist; errors, an escape among them, are reported at `at`.
    fn read_named(&self, path: &Path, at: &Location, what: &str) -> Result<Option<Vec<u8>>> {
        self.read(path).map_err(|err| Error::io_at(at.clone(), &format!("read {what}"), path, err))
    }

    /// The error for a file the repository names at `at` that [`Source::read_named`] did not
    /// find: a directory is told as one.
    fn missing(&self, path: &Path, at: &Location, what: &str) -> Error {
        match self.list(path) {
            Ok(Some(entries)) => {
                let files: Vec<&str> = entries.iter().filter(|e| !e.is_dir).map(|e| e.name.as_str()).take(5).collect();
                let help = match files.as_slice() {
                    [] => "name a file; this directory holds none".to_string(),
                    files => format!("name each file to read in the list, such as {}", path.join(files[0]).display()),
                };
                Error::at(at.clone(), format!("{what} {} is a directory, not a file", path.display())).with_help(help)
            }
            _ => Error::at(at.clone(), format!("{what} {} does not exist", path.display())),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        matches!(self.read(path), Ok(Some(_)))
    }

    /// Every file below `dir`, recursively, as paths relative to the repository, sorted.
    fn walk(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        // Each directory with where its ancestors lead: a link back to one of them is a loop,
        // which would otherwise branch without end (two links to `.` double the paths at each
        // level). Two links to one directory elsewhere are not: it is walked under both.
        let mut pending = vec![(dir.to_path_buf(), Vec::<PathBuf>::new())];
        while let Some((current, mut above)) = pending.pop() {
            let real = self.resolve(&current).map_err(|err| Error::io("list directory", &current, err))?;
            if above.contains(&real) {
                return Err(Error::at(
                    Location::file(&current),
                    format!("leads back to {} through a symbolic link (a loop)", real.display()),
                )
                .with_help("remove the link"));
            }
            above.push(real);
            let entries =
                self.list(&current).map_err(|err| Error::io("list directory", &current, err))?.unwrap_or_default();
            for entry in entries {
                let path = current.join(&entry.name);
                if entry.is_dir { pending.push((path, above.clone())) } else { out.push(path) }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Whether `name` can name a file or directory in one directory of the repository (an
/// environment, a chart): not empty, no `/` or `\`, and not starting with `.` (so neither
/// `..` nor `.git`).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\'])
}

/// A file's bytes as UTF-8 text.
pub fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::at(Location::file(path), "is not valid UTF-8 text"))
}

/// A file named by its path from the repository's root (`keys/charts.gpg`), as written: None
/// when it is absolute, empty, or climbs out of the repository.
pub fn inside_repository(written: &str) -> Option<String> {
    let path = Path::new(written);
    lexical(path).filter(|p| !p.as_os_str().is_empty() && !path.is_absolute()).map(|p| p.to_string_lossy().into_owned())
}

/// `path` with `.` and `..` applied lexically, or `None` when it is absolute or climbs above
/// where it starts.
pub fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The working tree of a repository on disk.
#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
    /// `root` without symbolic links, found once (every read checks against it).
    real_root: std::sync::OnceLock<PathBuf>,
    /// Directories already resolved, by their path as read: resolving a path costs a `readlink`
    /// per component, and a chart tree reads thousands of files from a few dozen directories.
    real_dirs: Arc<Mutex<HashMap<OsString, PathBuf>>>,
    /// Files a listing showed to be no symbolic link, by their path as read: resolving one needs
    /// no `lstat` (a chart's files were each looked at twice, a fifth of a render's system
    /// calls), and reading it opens it with `O_NOFOLLOW`, so a link put in its place since is
    /// refused rather than followed.
    plain_files: Arc<Mutex<HashSet<OsString>>>,
}

impl FsSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsSource {
            root: root.into(),
            real_root: std::sync::OnceLock::new(),
            real_dirs: Arc::default(),
            plain_files: Arc::default(),
        }
    }

    /// [`canonicalize_existing`], with directories' resolutions kept for their entries: an entry
    /// that is no symbolic link (one `lstat`, or its directory's listing) lies where its
    /// directory really is.
    fn resolve_links(&self, full: &Path) -> io::Result<PathBuf> {
        let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else { return canonicalize_existing(full) };
        let Some(real_parent) = self.real_dir(parent) else { return canonicalize_existing(full) };
        if self.plain_files.lock().unwrap_or_else(|e| e.into_inner()).contains(full.as_os_str()) {
            return Ok(real_parent.join(name));
        }
        match std::fs::symlink_metadata(full) {
            Ok(meta) if !meta.file_type().is_symlink() => Ok(real_parent.join(name)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(real_parent.join(name)),
            _ => canonicalize_existing(full),
        }
    }

    /// Where the existing directory `dir` really is, resolved from its parent's resolution.
    fn real_dir(&self, dir: &Path) -> Option<PathBuf> {
        if let Some(real) = self.real_dirs.lock().unwrap_or_else(|e| e.into_inner()).get(dir.as_os_str()) {
            return Some(real.clone());
        }
        let meta = std::fs::symlink_metadata(dir).ok()?;
        let real = match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) if meta.is_dir() => self.real_dir(parent)?.join(name),
            _ => std::fs::canonicalize(dir).ok()?,
        };
        if !real.is_dir() {
            return None;
        }
        self.real_dirs.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.as_os_str().to_owned(), real.clone());
        Some(real)
    }

    fn real_root(&self) -> io::Result<&PathBuf> {
        if let Some(root) = self.real_root.get() {
            return Ok(root);
        }
        let root = std::fs::canonicalize(&self.root)?;
        Ok(self.real_root.get_or_init(|| root))
    }

    /// The absolute, symlink-free path that `path` leads to, inside the repository.
    fn real_path(&self, path: &Path) -> io::Result<PathBuf> {
        let root = self.real_root()?;
        let escape = |resolved: PathBuf| {
            Escape { path: path.to_path_buf(), resolved, within: format!("the repository {}", root.display()) }
                .into_io()
        };
        let Some(relative) = lexical(path) else {
            let full = root.join(path);
            return Err(escape(canonicalize_existing(&full).unwrap_or(full)));
        };
        let real = self.resolve_links(&root.join(relative))?;
        // `.git` holds the clone's credentials (CI checkouts keep tokens in .git/config): it is
        // never repository content.
        let git = |below: &Path| {
            below.as_os_str().as_bytes().strip_prefix(b".git").is_some_and(|r| r.is_empty() || r[0] == b'/')
        };
        if below(&real, root).is_some_and(|below| !git(below)) { Ok(real) } else { Err(escape(real)) }
    }
}

/// The part of `path` below `dir` (empty for `dir` itself), both absolute and as resolving makes
/// them (no `.`, `..`, repeated or trailing `/`), compared as bytes: `Path`'s `starts_with` and
/// `strip_prefix` parse both into components, which was a third of resolving a path.
fn below<'p>(path: &'p Path, dir: &Path) -> Option<&'p Path> {
    let dir = dir.as_os_str().as_bytes();
    let rest = path.as_os_str().as_bytes().strip_prefix(dir)?;
    // `dir` ends where a `/` of `path` is, or is `/` itself.
    let rest = if rest.is_empty() || dir.ends_with(b"/") { rest } else { rest.strip_prefix(b"/")? };
    Some(Path::new(std::ffi::OsStr::from_bytes(rest)))
}

/// `path` with every symbolic link of its longest existing ancestor resolved, and the rest (what
/// does not exist yet) appended as written.
fn canonicalize_existing(path: &Path) -> io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => return Ok(missing.iter().rev().fold(real, |real, name| real.join(name))),
            Err(err) if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else { return Err(err) };
                missing.push(name);
                existing = parent;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The file at `real`, a path without symbolic links, as [`std::fs::read`] reads it (its size
/// asked once, then read to its end), except that a symbolic link put at its end since it was
/// resolved is refused (`ELOOP`), not followed.
fn read_no_link(real: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt as _;
    /// The file read as any reader: `File`'s own `read_to_end` asks its size and position
    /// again (two more system calls a file).
    struct Reader(std::fs::File);
    impl Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(real)?;
    let size = file.metadata().map(|meta| meta.len() as usize).unwrap_or(0);
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(size)?;
    Reader(file).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The error for a symbolic link at the end of `real`, a resolved path: one whose target does
/// not exist (resolving keeps such a path as written), refused as helm refuses it, saying where
/// it leads; otherwise one put there since the path was resolved (`ELOOP`).
fn link_at_end(real: &Path) -> io::Error {
    let missing = matches!(std::fs::metadata(real), Err(err) if err.kind() == io::ErrorKind::NotFound);
    match std::fs::read_link(real) {
        Ok(target) if missing => {
            io::Error::other(format!("a symbolic link to {}, which does not exist", target.display()))
        }
        _ => io::Error::from_raw_os_error(libc::ELOOP),
    }
}

fn missing_is_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => Ok(None),
        Err(err) => Err(err),
    }
}

impl Source for FsSource {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let Some(full) = missing_is_none(self.real_path(path))? else { return Ok(None) };
        match read_no_link(&full) {
            Err(err) if err.kind() == io::ErrorKind::IsADirectory => Ok(None),
            Err(err) if err.raw_os_error() == Some(libc::ELOOP) => Err(link_at_end(&full)),
            read => missing_is_none(read),
        }
    }

    fn size(&self, path: &Path) -> io::Result<Option<u64>> {
        let Some(full) = missing_is_none(self.real_path(path))? else { return Ok(None) };
        // Of the file itself: a link left at the end of a resolved path is refused as a read
        // refuses it.
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => Err(link_at_end(&full)),
            meta => Ok(missing_is_none(meta)?.filter(|meta| meta.is_file()).map(|meta| meta.len())),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let Some(full) = missing_is_none(self.real_path(dir))? else { return Ok(None) };
        let Some(reader) = missing_is_none(std::fs::read_dir(&full))? else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        let mut plain_files = Vec::new();
        for entry in reader {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            // Follow symlinks that stay inside, as git checkouts and kustomize do; any other
            // entry of a directory inside is inside.
            let file_type = entry.file_type()?;
            if file_type.is_file() {
                plain_files.push(full.join(&name).into_os_string());
            }
            let is_dir = if !file_type.is_symlink() {
                file_type.is_dir()
            } else {
                match self.real_path(&dir.join(&name)) {
                    Ok(real) => real.is_dir(),
                    Err(err) if Escape::of(&err).is_some() => false,
                    Err(err) => return Err(err),
                }
            };
            entries.push(Entry { name, is_dir });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        self.plain_files.lock().unwrap_or_else(|e| e.into_inner()).extend(plain_files);
        Ok(Some(entries))
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let root = self.real_root()?;
        let real = self.real_path(path)?;
        Ok(below(&real, root).map(Path::to_path_buf).unwrap_or_default())
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// A repository whose files past a bound are refused unread (a tenant's, under the
/// controller's `--max-values-bytes`; the CLI's with that flag): every file a render reads after
/// its environment (charts, templates, values, kustomizations), not only values files. Its
/// size is asked first, which the working tree and a git tree tell without reading.
pub struct Bounded {
    inner: Arc<dyn Source>,
    bound: weaver_core::limits::Bound<usize>,
}

impl Bounded {
    pub fn new(inner: Arc<dyn Source>, bound: weaver_core::limits::Bound<usize>) -> Bounded {
        Bounded { inner, bound }
    }
}

impl Source for Bounded {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.inner.size(path)? {
            None => Ok(None),
            Some(size) => match self.bound.refuses_file(path, size) {
                Some(refused) => Err(io::Error::other(refused)),
                None => self.inner.read(path),
            },
        }
    }

    fn size(&self, path: &Path) -> io::Result<Option<u64>> {
        self.inner.size(path)
    }

    /// By its size, not a read: a file past the bound exists, and reading it says why it is
    /// refused (rather than "not found").
    fn exists(&self, path: &Path) -> bool {
        matches!(self.inner.size(path), Ok(Some(_)))
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        self.inner.list(dir)
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.resolve(path)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Files held in memory, by path relative to the repository root: what a binary embeds (the
/// chart `weaver install` applies, beside the environment it writes for it). It has no links:
/// only a path that climbs above the root escapes.
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    files: BTreeMap<PathBuf, Arc<[u8]>>,
}

impl MemorySource {
    /// An empty repository that messages call `name` (`the chart weaver 0.1.0 built in`).
    pub fn new(name: impl Into<String>) -> Self {
        MemorySource { name: name.into(), files: BTreeMap::new() }
    }

    /// Adds (or replaces) the file at `path`, relative to the root.
    pub fn insert(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Arc<[u8]>>) {
        self.files.insert(path.into(), bytes.into());
    }

    /// The files, by path.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &[u8])> {
        self.files.iter().map(|(path, bytes)| (path.as_path(), &bytes[..]))
    }

    fn inside(&self, path: &Path) -> io::Result<PathBuf> {
        lexical(path).ok_or_else(|| {
            Escape { path: path.to_path_buf(), resolved: path.to_path_buf(), within: self.name.clone() }.into_io()
        })
    }
}

impl Source for MemorySource {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files.get(&self.inside(path)?).map(|bytes| bytes.to_vec()))
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let dir = self.inside(dir)?;
        let mut entries: Vec<Entry> = Vec::new();
        for path in self.files.keys().filter(|path| path.starts_with(&dir) && **path != dir) {
            let mut below = path.strip_prefix(&dir).unwrap_or(path).components();
            let Some(first) = below.next() else { continue };
            let name = first.as_os_str().to_string_lossy().into_owned();
            if entries.last().is_none_or(|last| last.name != name) {
                entries.push(Entry { name, is_dir: below.next().is_some() });
            }
        }
        Ok((!entries.is_empty() || dir.as_os_str().is_empty()).then_some(entries))
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        self.inside(path)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// A source with files laid over it, read before the source's own: what a check or a build
/// reads of files not written yet (an import's environments before they are written, a
/// kustomization copied without its remote entries). Paths resolve as in the source, which
/// keeps a part that does not exist as written.
pub struct Overlay<'a> {
    source: &'a dyn Source,
    files: BTreeMap<&'a Path, &'a [u8]>,
}

impl<'a> Overlay<'a> {
    /// `files` over `source`, by path relative to the root; the last of a path wins.
    pub fn new(source: &'a dyn Source, files: impl IntoIterator<Item = (&'a Path, &'a [u8])>) -> Overlay<'a> {
        Overlay { source, files: files.into_iter().collect() }
    }
}

impl Source for Overlay<'_> {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match self.files.get(path) {
            Some(bytes) => Ok(Some(bytes.to_vec())),
            None => self.source.read(path),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let mut entries = self.source.list(dir)?;
        for file in self.files.keys() {
            let Ok(below) = file.strip_prefix(dir) else { continue };
            let mut parts = below.components();
            let Some(first) = parts.next() else { continue };
            let name = first.as_os_str().to_string_lossy().into_owned();
            let listed = entries.get_or_insert_with(Vec::new);
            if !listed.iter().any(|e| e.name == name) {
                listed.push(Entry { name, is_dir: parts.next().is_some() });
                listed.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        Ok(entries)
    }

    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        self.source.resolve(path)
    }

    fn describe(&self) -> String {
        self.source.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with a directory `in` holding `files` (name, text).
    fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("in")).unwrap();
        for (name, text) in files {
            std::fs::write(repo.path().join("in").join(name), text).unwrap();
        }
        repo
    }

    #[test]
    fn lexical_paths_stay_below_where_they_start() {
        assert_eq!(lexical(Path::new("a/./b/../c")), Some(PathBuf::from("a/c")));
        assert_eq!(lexical(Path::new("a/../../c")), None);
        assert_eq!(lexical(Path::new("/etc/hostname")), None);
    }

    #[test]
    fn the_working_tree_refuses_paths_and_links_that_leave_it() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        let repo = repo_with(&[("file", "ok")]);
        std::os::unix::fs::symlink(outside.path().join("secret"), repo.path().join("in/out")).unwrap();
        std::os::unix::fs::symlink("file", repo.path().join("in/inside")).unwrap();
        let source = FsSource::new(repo.path());
        let escape = |path: &str| source.read(Path::new(path)).map_err(|e| Escape::of(&e).cloned()).unwrap_err();
        let secret = std::fs::canonicalize(outside.path().join("secret")).unwrap();
        assert_eq!(escape("in/out").unwrap().resolved, secret);
        assert!(escape("../x").is_some());
        assert!(escape(&secret.display().to_string()).is_some());
        assert_eq!(source.read(Path::new("in/inside")).unwrap(), Some(b"ok".to_vec()));
        assert_eq!(source.resolve(Path::new("in/inside")).unwrap(), PathBuf::from("in/file"));
        assert_eq!(source.read(Path::new("in/../in/missing")).unwrap(), None);
        let listed = source.list(Path::new("in")).unwrap().unwrap();
        assert!(listed.iter().all(|e| !e.is_dir), "{listed:?}");
    }

    #[test]
    fn below_is_what_strip_prefix_gives_for_resolved_paths() {
        for (path, dir) in [("/a/b", "/a"), ("/a", "/a"), ("/ab", "/a"), ("/a/b/c", "/"), ("/a", "/a/b"), ("/", "/")] {
            let (path, dir) = (Path::new(path), Path::new(dir));
            assert_eq!(below(path, dir), path.strip_prefix(dir).ok(), "{path:?} below {dir:?}");
        }
    }

    /// A link whose target does not exist is refused as such (helm refuses it too), where its
    /// content was read as empty before.
    #[test]
    fn a_link_to_nothing_is_refused_by_what_it_leads_to() {
        let repo = repo_with(&[]);
        std::os::unix::fs::symlink("../gone/values.yaml", repo.path().join("in/values.yaml")).unwrap();
        let source = FsSource::new(repo.path());
        assert_eq!(
            source.list(Path::new("in")).unwrap().unwrap(),
            [Entry { name: "values.yaml".into(), is_dir: false }]
        );
        let refused = source.read(Path::new("in/values.yaml")).unwrap_err();
        assert_eq!(refused.to_string(), "a symbolic link to ../gone/values.yaml, which does not exist");
        // Under a bound too, which asks the size first.
        let bounded = Bounded::new(Arc::new(source), weaver_core::limits::Bound::new(1 << 20, "--max-values-bytes"));
        let refused = bounded.read(Path::new("in/values.yaml")).unwrap_err();
        assert_eq!(refused.to_string(), "a symbolic link to ../gone/values.yaml, which does not exist");
    }

    /// A listed file is read without looking at it again, and a link put in its place since the
    /// listing is refused, not followed out of the repository.
    #[test]
    fn a_listed_file_turned_into_a_link_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let repo = repo_with(&[("file", "ok")]);
        let source = FsSource::new(repo.path());
        assert_eq!(source.list(Path::new("in")).unwrap().unwrap(), [Entry { name: "file".into(), is_dir: false }]);
        assert_eq!(source.read(Path::new("in/file")).unwrap(), Some(b"ok".to_vec()));
        // Read whole whatever its size, an empty file too.
        let large: Vec<u8> = (0..100_003u32).map(|i| (i % 251) as u8).collect();
        for bytes in [&large[..], b""] {
            std::fs::write(repo.path().join("in/file"), bytes).unwrap();
            assert_eq!(source.read(Path::new("in/file")).unwrap().as_deref(), Some(bytes));
        }
        std::fs::remove_file(repo.path().join("in/file")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), repo.path().join("in/file")).unwrap();
        let refused = source.read(Path::new("in/file")).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ELOOP), "{refused}");
    }

    #[test]
    fn memory_lists_directories_and_refuses_climbing_out() {
        let mut source = MemorySource::new("the chart built in");
        source.insert("charts/weaver/Chart.yaml", &b"name: weaver"[..]);
        source.insert("charts/weaver/templates/a.yaml", &b"a"[..]);
        source.insert("environments/weaver.yaml", &b"releases: []"[..]);
        let names = |dir: &str| {
            source
                .list(Path::new(dir))
                .unwrap()
                .map(|es| es.into_iter().map(|e| (e.name, e.is_dir)).collect::<Vec<_>>())
        };
        assert_eq!(names(""), Some(vec![("charts".into(), true), ("environments".into(), true)]));
        assert_eq!(names("charts/weaver"), Some(vec![("Chart.yaml".into(), false), ("templates".into(), true)]));
        assert_eq!(names("charts/missing"), None);
        assert_eq!(source.read(Path::new("charts/./weaver/Chart.yaml")).unwrap(), Some(b"name: weaver".to_vec()));
        assert_eq!(source.read(Path::new("charts/weaver")).unwrap(), None);
        let escape = source.read(Path::new("../etc/passwd")).unwrap_err();
        assert!(Escape::of(&escape).is_some(), "{escape}");
    }

    #[test]
    fn a_bounded_source_refuses_a_file_past_its_bound_unread() {
        let mut memory = MemorySource::new("a repository");
        memory.insert("charts/app/values.yaml", vec![b'#'; 2000]);
        memory.insert("charts/app/chart.yaml", &b"name: app"[..]);
        let bound = weaver_core::limits::Bound::new(1000, "--max-values-bytes");
        let bounded = Bounded::new(Arc::new(memory), bound);
        assert_eq!(bounded.read(Path::new("charts/app/chart.yaml")).unwrap(), Some(b"name: app".to_vec()));
        let refused = bounded.read(Path::new("charts/app/values.yaml")).unwrap_err().to_string();
        assert_eq!(refused, "charts/app/values.yaml holds 2000 bytes, over the limit of 1000 (--max-values-bytes)");
        assert_eq!(bounded.read(Path::new("missing")).unwrap(), None);
    }
}
