//! Where the repository's files come from: the working tree, or a commit's tree (`--rev`, see
//! `crate::git::TreeSource`). Every path is relative to the repository root, so errors name
//! files the way users see them.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// Read-only access to the repository's files.
pub trait Source: Send + Sync {
    /// The file's bytes, or `None` when there is no such file.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// The directory's entries sorted by name, or `None` when there is no such directory.
    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>>;
    /// What to call this source in messages (`/path/to/repo`, `commit 1a2b3c4d (main)`).
    fn describe(&self) -> String;

    /// The file as UTF-8 text; a missing file is an error naming it.
    fn read_text(&self, path: &Path) -> Result<String> {
        match self.read(path) {
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map_err(|_| Error::at(crate::error::Location::file(path), "is not valid UTF-8 text")),
            Ok(None) => Err(Error::io("read file", path, io::ErrorKind::NotFound.into())),
            Err(err) => Err(Error::io("read file", path, err)),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        matches!(self.read(path), Ok(Some(_)))
    }

    /// Every file below `dir`, recursively, as paths relative to the repository, sorted.
    fn walk(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            let entries =
                self.list(&current).map_err(|err| Error::io("list directory", &current, err))?.unwrap_or_default();
            for entry in entries {
                let path = current.join(&entry.name);
                if entry.is_dir { pending.push(path) } else { out.push(path) }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The working tree of a repository on disk.
#[derive(Debug, Clone)]
pub struct FsSource {
    root: PathBuf,
}

impl FsSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsSource { root: root.into() }
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
        let full = self.root.join(path);
        if full.is_dir() {
            return Ok(None);
        }
        missing_is_none(std::fs::read(full))
    }

    fn list(&self, dir: &Path) -> io::Result<Option<Vec<Entry>>> {
        let Some(reader) = missing_is_none(std::fs::read_dir(self.root.join(dir)))? else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        for entry in reader {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            // Follow symlinks, as git checkouts and kustomize do.
            let is_dir = std::fs::metadata(entry.path())?.is_dir();
            entries.push(Entry { name, is_dir });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(entries))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
