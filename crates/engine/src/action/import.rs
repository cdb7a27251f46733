//! `weaver import helmfile` and `weaver import flux`: read a helmfile and the files it names,
//! or a Flux repository, convert them (`weaver_import`), and write the environment files into
//! the repository, never over existing ones unless told to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weaver_core::error::{Error, Location, Result};
use weaver_import::flux;
use weaver_import::helmfile::{self, Files, Found};
use weaver_project::environment::{ENVIRONMENTS_DIR, environment_path, list_environments, load_environment};
use weaver_project::source::{Entry, FsSource, Source, lexical, utf8};
use weaver_render::gotmpl;

mod record;
pub use record::RECORD;
use record::Record;

pub struct ImportOptions {
    /// The weaver repository to write into.
    pub repo: PathBuf,
    /// The helmfile, relative to the current directory; `None` for helmfile's default.
    pub helmfile: Option<PathBuf>,
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
    /// What the import decided by itself, one line each (the Flux clusters it took, and why).
    pub notes: Vec<String>,
}

/// The files of the helmfile's directory, as paths of the repository at `repo`.
struct DiskFiles {
    /// The helmfile's directory, absolute.
    dir: PathBuf,
    /// The repository, absolute and without symbolic links.
    repo: PathBuf,
    /// What templates read: the repository, or the helmfile's directory when it is outside it.
    source: Arc<dyn Source>,
}

/// A directory of a source, as templates of a state in it read it: helmfile resolves their
/// paths relative to the state's directory, or as absolute paths. Reads stay confined to the
/// source.
struct Within {
    source: Arc<dyn Source>,
    /// The source's root, absolute: an absolute path below it is one of the source's.
    root: PathBuf,
    dir: PathBuf,
}

impl Within {
    fn path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(inside) => inside.to_path_buf(),
            Err(_) => self.dir.join(path),
        }
    }
}

impl Source for Within {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        self.source.read(&self.path(path))
    }
    fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<Entry>>> {
        self.source.list(&self.path(dir))
    }
    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        self.source.resolve(&self.path(path))
    }
    fn describe(&self) -> String {
        self.source.describe()
    }
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

    fn read(&self, path: &str) -> Result<Option<String>> {
        let full = self.dir.join(path);
        match std::fs::read(&full) {
            Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|err| {
                // Where the first byte that is not UTF-8 is.
                let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
                let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
                let column = valid.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
                Error::at(Location::at(path, line, column), "not UTF-8 text")
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(_) if full.is_dir() => Err(Error::at(Location::file(path), "a directory, not a file")),
            Err(err) => Err(Error::at(Location::file(path), weaver_core::error::io_reason(&err))),
        }
    }

    fn glob(&self, pattern: &str) -> Vec<String> {
        // The files below the pattern's directories without wildcards, as the source reads
        // them, matched.
        let Some(pattern) = lexical(Path::new(pattern)) else { return Vec::new() };
        let base = self.dir.strip_prefix(&self.repo).unwrap_or(Path::new("")).to_path_buf();
        let fixed: PathBuf =
            pattern.components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).collect();
        let Ok(glob) = globset::GlobBuilder::new(&pattern.to_string_lossy()).literal_separator(true).build() else {
            return Vec::new();
        };
        let glob = glob.compile_matcher();
        let Ok(files) = self.source.walk(&base.join(&fixed)) else { return Vec::new() };
        files
            .into_iter()
            .filter_map(|file| file.strip_prefix(&base).ok().map(Path::to_path_buf))
            .filter(|file| glob.is_match(file))
            .map(|file| file.to_string_lossy().replace('\\', "/"))
            .collect()
    }

    fn render(&self, path: &str, dir: &str, text: &str, data: &serde_json::Value) -> Result<String> {
        // `dir` as a path of what `source` reads.
        let full = self.dir.join(dir);
        let dir = full.strip_prefix(&self.repo).or_else(|_| full.strip_prefix(&self.dir)).unwrap_or(Path::new(""));
        let root = if self.dir.starts_with(&self.repo) { &self.repo } else { &self.dir };
        let within: Arc<dyn Source> =
            Arc::new(Within { source: Arc::clone(&self.source), root: root.clone(), dir: dir.to_path_buf() });
        // No value of an environment variable reaches the conversion, so none can be written.
        gotmpl::render_with(&within, Path::new(path), text, data, gotmpl::Variables::Placeholders, "helmfile template")
    }

    fn placeholder(&self, name: &str) -> String {
        gotmpl::placeholder(name)
    }
}

/// Converts the helmfile and writes the environment files it gives.
pub fn import_helmfile(options: &ImportOptions) -> Result<ImportReport> {
    // helmfile's own default: `helmfile.yaml`, else `helmfile.yaml.gotmpl`.
    let path = &options.helmfile.clone().unwrap_or_else(|| {
        let gotmpl = PathBuf::from("helmfile.yaml.gotmpl");
        match !Path::new("helmfile.yaml").exists() && gotmpl.is_file() {
            true => gotmpl,
            false => PathBuf::from("helmfile.yaml"),
        }
    });
    let bytes = std::fs::read(path).map_err(|err| Error::io("read helmfile", path, err))?;
    let text = utf8(path, bytes)?;
    let repo =
        std::fs::canonicalize(&options.repo).map_err(|err| Error::io("open the repository", &options.repo, err))?;
    let absolute = std::path::absolute(path).map_err(|err| Error::io("resolve path", path, err))?;
    let dir = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    // The helmfile's directory without symbolic links, as the repository is.
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let source: Arc<dyn Source> = match dir.starts_with(&repo) {
        true => Arc::new(FsSource::new(&repo)),
        false => Arc::new(FsSource::new(&dir)),
    };
    let files = DiskFiles { dir, repo: repo.clone(), source };
    // What the conversion names by its path relative to the helmfile's directory, by the path
    // the helmfile was given as.
    let given_dir = path.parent().unwrap_or(Path::new(""));
    let as_given = |file: &Path| match Some(file.as_os_str()) == path.file_name() {
        true => path.clone(),
        false => given_dir.join(file),
    };
    let imported = helmfile::convert(path, &text, &files).map_err(|mut err| {
        if let Some(at) = err.location.as_mut() {
            at.path = as_given(&at.path);
        }
        err
    })?;
    let written = write_files(&repo, &imported.files, options.force)?;
    let left_out = imported
        .left_out
        .iter()
        .map(|l| format!("{}: {l}", Location { path: as_given(Path::new(&l.file)), line: Some(l.line), column: None }))
        .collect();
    Ok(ImportReport { written, left_out, remote_charts: imported.remote_charts, notes: Vec::new() })
}

/// Writes the files an import gives into the repository at `repo`, refusing (before writing
/// any) to replace one that exists unless `force`, with `force` one that the import did not
/// write or that changed since ([`record`]), or to write into an environments/ that holds a
/// file weaver would refuse as an environment. The record then lists the files written.
fn write_files(repo: &Path, files: &[(PathBuf, String)], force: bool) -> Result<Vec<PathBuf>> {
    let record = Record::read(repo)?;
    let paths = files.iter().map(|(file, _)| file.as_path());
    match force {
        false => super::refuse_existing(
            repo,
            paths,
            "weaver import never replaces environment files silently: move them away, or give --force",
        )?,
        true => record.refuse_foreign(repo, paths, |file| super::in_the_way(repo, file))?,
    }
    // weaver reads every file of environments/ as an environment: one that is not (helmfile's
    // environment values kept there) would make it refuse the repository the import writes.
    let repository: &dyn Source = &FsSource::new(repo);
    let existing = match repo.join(ENVIRONMENTS_DIR).is_dir() {
        true => list_environments(repository)?,
        false => Vec::new(),
    };
    for name in existing {
        let path = environment_path(&name);
        if files.iter().any(|(file, _)| *file == path) {
            continue;
        }
        if let Err(err) = load_environment(repository, &name) {
            return Err(Error::at(
                Location::file(&path),
                format!("not a weaver environment ({}), and weaver reads every file of environments/ as one", err.message),
            )
            .with_help("move the files that are not environments out of environments/, and import again (changing the paths that name them)"));
        }
    }
    let mut written = super::write_files(repo, files, force)?;
    record.write(repo, files)?;
    written.push(PathBuf::from(RECORD));
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
    /// The clusters' directory, or one cluster's, from the Flux repository's root; `None` to
    /// find them.
    pub clusters: Option<PathBuf>,
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
    let imported = flux::convert(&FsSource::new(&repo), root, options.clusters.as_deref())?;
    let written = write_files(&repo, &imported.files, options.force)?;
    // What the import writes must load; one that does not is the import's defect, not the
    // Flux repository's, and is said so rather than left for the next command to find.
    let repository: &dyn Source = &FsSource::new(&repo);
    for name in list_environments(repository)? {
        let path = environment_path(&name);
        if written.contains(&path)
            && let Err(err) = load_environment(repository, &name)
        {
            return Err(Error::at(
                Location::file(&path),
                format!("the environment weaver import wrote does not load ({}): a defect of the import", err.message),
            )
            .with_help("report it with the Flux repository's files that this release comes from"));
        }
    }
    let left_out = imported.left_out.iter().map(ToString::to_string).collect();
    Ok(ImportReport { written, left_out, remote_charts: imported.remote_charts, notes: imported.clusters })
}
