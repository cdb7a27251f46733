//! `weaver import helmfile` and `weaver import flux`: read a helmfile and the files it names,
//! or a Flux repository, convert them (`crate::import`), and write the environment files into
//! the repository, never over existing ones unless told to.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::import::flux;
use crate::import::helmfile::{self, Files, Found};
use crate::project::source::{FsSource, lexical, utf8};

pub struct ImportOptions {
    /// The weaver repository to write into.
    pub repo: PathBuf,
    /// The helmfile, relative to the current directory.
    pub helmfile: PathBuf,
    /// Replace existing environment files.
    pub force: bool,
}

/// What an import did.
pub struct ImportReport {
    /// The files written, as paths of the repository.
    pub written: Vec<PathBuf>,
    /// What was not converted, one line each: `FILE:LINE: what: why`.
    pub left_out: Vec<String>,
    /// The remote charts releases name, which `weaver charts lock` pins.
    pub remote_charts: Vec<String>,
}

/// The files of the helmfile's directory, as paths of the repository at `repo`.
struct DiskFiles {
    /// The helmfile's directory, absolute.
    dir: PathBuf,
    /// The repository, absolute and without symbolic links.
    repo: PathBuf,
}

impl Files for DiskFiles {
    fn repository_path(&self, path: &str) -> Option<PathBuf> {
        let joined = self.dir.join(path);
        // Lexically, as helmfile resolves paths; then relative to the repository.
        let mut normal = PathBuf::new();
        for component in joined.components() {
            match component {
                std::path::Component::ParentDir => {
                    normal.pop();
                }
                std::path::Component::CurDir => {}
                other => normal.push(other),
            }
        }
        let relative = normal.strip_prefix(&self.repo).ok()?;
        lexical(relative).filter(|p| !p.as_os_str().is_empty())
    }

    fn found(&self, path: &Path) -> Found {
        let full = self.repo.join(path);
        match std::fs::metadata(&full) {
            Err(_) => Found::Missing,
            Ok(meta) if meta.is_file() => Found::File,
            Ok(_) if full.join("Chart.yaml").is_file() => Found::HelmChart,
            Ok(_)
                if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                    .iter()
                    .any(|k| full.join(k).is_file()) =>
            {
                Found::Kustomization
            }
            Ok(_) => Found::Directory,
        }
    }

    fn read(&self, path: &str) -> std::result::Result<Option<String>, String> {
        match std::fs::read(self.dir.join(path)) {
            Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| "not UTF-8 text".to_string()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(crate::error::io_reason(&err)),
        }
    }
}

/// Converts the helmfile and writes the environment files it gives.
pub fn import_helmfile(options: &ImportOptions) -> Result<ImportReport> {
    let path = &options.helmfile;
    let bytes = std::fs::read(path).map_err(|err| Error::io("read helmfile", path, err))?;
    let text = utf8(path, bytes)?;
    let repo =
        std::fs::canonicalize(&options.repo).map_err(|err| Error::io("open the repository", &options.repo, err))?;
    let absolute = std::path::absolute(path).map_err(|err| Error::io("resolve path", path, err))?;
    let dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    // The helmfile's directory without symbolic links, as the repository is.
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let files = DiskFiles { dir, repo: repo.clone() };
    let imported = helmfile::convert(path, &text, &files)?;

    let written = write_files(&repo, &imported.files, options.force)?;
    let left_out = imported
        .left_out
        .iter()
        .map(|l| format!("{}: {l}", Location { path: path.clone(), line: Some(l.line), column: None }))
        .collect();
    Ok(ImportReport { written, left_out, remote_charts: imported.remote_charts })
}

/// Writes the files an import gives into the repository at `repo`, refusing (before writing
/// any) to replace one that exists unless `force`.
fn write_files(repo: &Path, files: &[(PathBuf, String)], force: bool) -> Result<Vec<PathBuf>> {
    let existing: Vec<String> =
        files.iter().filter(|(file, _)| repo.join(file).exists()).map(|(file, _)| file.display().to_string()).collect();
    if !existing.is_empty() && !force {
        return Err(Error::at(
            Location::file(&existing[0]),
            format!(
                "already exists{}",
                match existing.len() {
                    1 => String::new(),
                    _ => format!(" (and {})", existing[1..].join(", ")),
                }
            ),
        )
        .with_help("weaver import never replaces environment files silently: move them away, or give --force"));
    }
    let mut written = Vec::new();
    for (file, content) in files {
        let full = repo.join(file);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io("create directory", parent, err))?;
        }
        std::fs::write(&full, content).map_err(|err| Error::io("write", &full, err))?;
        written.push(file.clone());
    }
    Ok(written)
}

/// What `weaver import flux` reads.
pub struct ImportFluxOptions {
    /// The weaver repository to write into.
    pub repo: PathBuf,
    /// The Flux repository's root (where its Kustomizations' paths start), relative to the
    /// current directory and inside `repo`; `None` for `repo` itself.
    pub path: Option<PathBuf>,
    /// Replace existing files.
    pub force: bool,
}

/// Converts the Flux repository and writes the environment files (and the kustomizations and
/// variable files they name) it gives.
pub fn import_flux(options: &ImportFluxOptions) -> Result<ImportReport> {
    let repo =
        std::fs::canonicalize(&options.repo).map_err(|err| Error::io("open the repository", &options.repo, err))?;
    let given = options.path.as_ref().unwrap_or(&options.repo);
    let path = std::fs::canonicalize(given).map_err(|err| Error::io("open the Flux repository", given, err))?;
    let Ok(root) = path.strip_prefix(&repo) else {
        return Err(Error::at(Location::file(given), "is outside the weaver repository").with_help(
            "import a Flux repository inside the weaver repository (--repo), such as its root: `weaver import flux`",
        ));
    };
    let imported = flux::convert(&FsSource::new(&repo), root)?;
    let written = write_files(&repo, &imported.files, options.force)?;
    let left_out = imported.left_out.iter().map(ToString::to_string).collect();
    Ok(ImportReport { written, left_out, remote_charts: imported.remote_charts })
}
