//! `weaver import helmfile` and `weaver import flux`: read a helmfile and the files it names,
//! or a Flux repository, convert them (`weaver_import`), and write the environment files into
//! the repository, never over existing ones unless told to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weaver_core::error::{Error, Location, Result};
use weaver_import::flux;
use weaver_import::helmfile::{self, Files, Found};
use weaver_project::environment::{ENVIRONMENTS_DIR, environment_path, list_environments, load_environment};
use weaver_project::source::{Entry, FsSource, Overlay, Source, lexical, utf8};
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
    /// What was not converted, by file and line.
    pub left_out: Vec<NotConverted>,
    /// The remote charts releases name, which `weaver charts lock` pins.
    pub remote_charts: Vec<String>,
    /// What the import decided by itself, one line each (the Flux clusters it took, and why).
    pub notes: Vec<String>,
}

/// One thing an import did not convert (or not exactly).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotConverted {
    /// The file, as the user names it (the helmfile's files by the path it was given as).
    pub file: PathBuf,
    pub line: u64,
    /// What it is: `HelmRelease podinfo/podinfo: spec.install`.
    pub what: String,
    /// Why, and what to do instead: often the same for many (a setting of every HelmRelease).
    pub why: String,
}

impl std::fmt::Display for NotConverted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file.display(), self.line, self.what, self.why)
    }
}

/// The files of the helmfile's directory, as paths of the repository at `repo`.
struct DiskFiles {
    /// The helmfile's directory, absolute.
    dir: PathBuf,
    /// The repository, absolute and without symbolic links.
    repo: PathBuf,
    /// What templates read: the repository, or the helmfile's directory when it is outside it.
    source: Arc<dyn Source>,
    /// The helmfile, as the user gave it: what the conversion names relative to the helmfile's
    /// directory is named from there.
    given: PathBuf,
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

    fn is_set(&self, name: &str) -> bool {
        gotmpl::is_set(name)
    }

    fn named(&self, file: &str) -> String {
        self.as_given(Path::new(file)).display().to_string()
    }
}

impl DiskFiles {
    /// A path relative to the helmfile's directory, by the path the helmfile was given as.
    fn as_given(&self, file: &Path) -> PathBuf {
        match Some(file.as_os_str()) == self.given.file_name() {
            true => self.given.clone(),
            false => self.given.parent().unwrap_or(Path::new("")).join(file),
        }
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
    let files = DiskFiles { dir, repo: repo.clone(), source, given: path.clone() };
    // What the conversion names by its path relative to the helmfile's directory, by the path
    // the helmfile was given as.
    let imported = helmfile::convert(path, &text, &files).map_err(|mut err| {
        if let Some(at) = err.location.as_mut() {
            at.path = files.as_given(&at.path);
        }
        err
    })?;
    let written = write_files(&repo, &imported.files, options.force)?;
    let left_out = imported
        .left_out
        .iter()
        .map(|l| NotConverted {
            file: files.as_given(Path::new(&l.file)),
            line: l.line,
            what: l.what.clone(),
            why: l.why.clone(),
        })
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
    let imported = flux::convert(&FsSource::new(&repo), root, options.clusters.as_deref()).map_err(|mut err| {
        // The Flux repository's root (`.` for the repository's), named as it was given.
        if let Some(at) = err.location.as_mut()
            && at.line.is_none()
            && (at.path == root || root.as_os_str().is_empty() && at.path == Path::new("."))
        {
            at.path = given.clone();
        }
        err
    })?;
    // What the import writes must load, which is said here rather than left for the next
    // command to find; it is checked as it would be read once written, before anything is
    // written, so that a refused import leaves the repository as it was.
    let on_disk = FsSource::new(&repo);
    let repository =
        Overlay::new(&on_disk, imported.files.iter().map(|(path, text)| (path.as_path(), text.as_bytes())));
    for name in list_environments(&repository)? {
        let path = environment_path(&name);
        if imported.files.iter().any(|(file, _)| *file == path)
            && let Err(err) = load_environment(&repository, &name)
        {
            return Err(Error::at(
                Location::file(&path),
                format!(
                    "the environment weaver import would write does not load ({}); nothing was written",
                    err.message
                ),
            )
            .with_help(
                "when the Flux repository says so itself (its dependsOn in a cycle, which Flux refuses too), fix it \
                 there and import again; else it is a defect of the import: report it with the Flux repository's \
                 files that this release comes from",
            ));
        }
    }
    let written = write_files(&repo, &imported.files, options.force)?;
    let left_out = imported
        .left_out
        .iter()
        .map(|l| NotConverted { file: l.file.clone(), line: l.line, what: l.what.clone(), why: l.why.clone() })
        .collect();
    Ok(ImportReport { written, left_out, remote_charts: imported.remote_charts, notes: imported.clusters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::action::testing::failure;
    use sha2::Digest;

    /// A weaver repository to import into, in a directory of its own, with chart `web`.
    struct Target(tempfile::TempDir);

    impl Target {
        fn new() -> Target {
            let target = Target(tempfile::tempdir().expect("a temporary directory"));
            target.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
            target
        }

        fn path(&self) -> PathBuf {
            // Without symbolic links, as the import names what it reads.
            std::fs::canonicalize(self.0.path()).expect("the directory")
        }

        fn write(&self, path: &str, content: impl AsRef<[u8]>) {
            let full = self.0.path().join(path);
            std::fs::create_dir_all(full.parent().expect("a file in a directory")).expect("create the directory");
            std::fs::write(full, content).expect("write the file");
        }

        fn read(&self, path: &str) -> String {
            std::fs::read_to_string(self.0.path().join(path)).expect("read the file")
        }

        /// Every file and its bytes, to tell that nothing changed.
        fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
            let source = FsSource::new(self.0.path());
            let files = source.walk(Path::new("")).expect("walk the directory");
            files.into_iter().map(|file| (file.clone(), std::fs::read(self.0.path().join(&file)).unwrap())).collect()
        }

        /// `weaver import helmfile <helmfile>`, the helmfile named by its absolute path.
        fn import(&self, helmfile: &str, force: bool) -> Result<ImportReport> {
            let helmfile = Some(self.path().join(helmfile));
            import_helmfile(&ImportOptions { repo: self.path(), helmfile, force })
        }
    }

    /// Environment `dev` with a values file, and release `web` whose replicas come from it.
    const HELMFILE: &str = "environments:\n  dev:\n    values: [values/dev.yaml]\n---\nhelmDefaults:\n  wait: true\n\
                            releases:\n  - name: web\n    chart: ./charts/web\n    namespace: shop\n    values:\n      \
                            - replicas: {{ .Values.replicas }}\n";

    fn written(report: &ImportReport) -> Vec<&str> {
        report.written.iter().map(|p| p.to_str().expect("UTF-8")).collect()
    }

    fn sha256(text: &str) -> String {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(text.as_bytes())))
    }

    /// A helmfile becomes a base of its releases and a file per environment, which load, and
    /// the record of what was written; what is not converted is listed at the helmfile's line,
    /// by the path it was given as.
    #[test]
    fn a_helmfile_becomes_a_base_and_an_environment_file_and_their_record() {
        let target = Target::new();
        target.write("values/dev.yaml", "replicas: 2\n");
        target.write("helmfile.yaml", HELMFILE);
        let report = target.import("helmfile.yaml", false).unwrap();
        assert_eq!(written(&report), ["environments/base.yaml", "environments/dev.yaml", RECORD]);
        let given = target.path().join("helmfile.yaml");
        let left_out: Vec<String> = report.left_out.iter().map(ToString::to_string).collect();
        assert_eq!(
            left_out,
            [format!(
                "{}:6: helmDefaults wait: weaver waits for readiness when applied with `weaver apply --wait`",
                given.display()
            )]
        );

        let source = FsSource::new(target.path());
        let dev = load_environment(&source, "dev").expect("the environment written loads");
        let names: Vec<(&str, &str)> = dev.releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
        assert_eq!(names, [("web", "shop")]);
        let base = target.read("environments/base.yaml");
        assert!(base.contains("  values:\n    replicas: 2\n"), "the environment's value rendered: {base}");

        let record = target.read(RECORD);
        for file in ["environments/base.yaml", "environments/dev.yaml"] {
            let line = format!("  {file}: {}\n", sha256(&target.read(file)));
            assert!(record.contains(&line), "{line} in\n{record}");
        }
    }

    /// Without --force, a file the import would write that exists stops it, named, before
    /// anything is written.
    #[test]
    fn an_existing_file_is_never_replaced_without_force_and_nothing_is_written() {
        let target = Target::new();
        target.write("values/dev.yaml", "replicas: 2\n");
        target.write("helmfile.yaml", HELMFILE);
        target.write("environments/dev.yaml", "releases: []\n");
        let before = target.files();
        let err = target.import("helmfile.yaml", false).err().expect("refused");
        assert_eq!(err.location, Some(Location::file("environments/dev.yaml")));
        assert_eq!(
            (err.message.as_str(), err.help.as_deref()),
            (
                "already exists",
                Some("weaver import never replaces environment files silently: move them away, or give --force")
            )
        );
        assert_eq!(target.files(), before, "nothing written");
    }

    /// Importing again with --force replaces what the import wrote, as the helmfile has it now;
    /// a file changed since, or one it never wrote, is refused, naming each, and nothing is
    /// written.
    #[test]
    fn force_replaces_only_the_files_the_import_wrote_unchanged() {
        let target = Target::new();
        target.write("values/dev.yaml", "replicas: 2\n");
        target.write("helmfile.yaml", HELMFILE);
        target.import("helmfile.yaml", false).unwrap();
        target.write("values/dev.yaml", "replicas: 3\n");
        let again = target.import("helmfile.yaml", true).unwrap();
        assert_eq!(written(&again), ["environments/base.yaml", "environments/dev.yaml", RECORD]);
        let base = target.read("environments/base.yaml");
        assert!(base.contains("replicas: 3\n"), "written again, as the helmfile has it now: {base}");
        assert!(target.read(RECORD).contains(&sha256(&base)), "the record has what was written again");

        target.write("environments/dev.yaml", format!("{}# kept by hand\n", target.read("environments/dev.yaml")));
        target.write("environments/prod.yaml", "releases: []\n");
        target.write(
            "helmfile.yaml",
            HELMFILE.replace(
                "  dev:\n    values: [values/dev.yaml]\n",
                "  dev:\n    values: [values/dev.yaml]\n  prod:\n    values: [{replicas: 5}]\n",
            ),
        );
        let before = target.files();
        let err = target.import("helmfile.yaml", true).err().expect("refused");
        assert_eq!(err.location, Some(Location::file("environments/dev.yaml")));
        assert_eq!(
            err.message,
            format!(
                "already exists, changed since `weaver import` wrote it (and environments/prod.yaml: not written by \
                 `weaver import`): --force replaces only the files weaver import wrote, as it wrote them ({RECORD} lists \
                 them): nothing was written"
            )
        );
        assert_eq!(target.files(), before, "nothing written");
    }

    /// weaver reads every file of environments/ as an environment: one that is not (a
    /// helmfile's values kept there) stops the import before it writes, named.
    #[test]
    fn a_file_of_environments_that_is_no_environment_stops_the_import_before_it_writes() {
        let target = Target::new();
        target.write("environments/_defaults.yaml", "replicas: 2\n");
        target.write("helmfile.yaml", HELMFILE.replace("values/dev.yaml", "environments/_defaults.yaml"));
        let before = target.files();
        let err = target.import("helmfile.yaml", false).err().expect("refused");
        assert_eq!(err.location, Some(Location::file("environments/_defaults.yaml")));
        assert!(err.message.starts_with("not a weaver environment ("), "{}", err.message);
        assert!(err.message.ends_with("), and weaver reads every file of environments/ as one"), "{}", err.message);
        assert_eq!(target.files(), before, "nothing written");
    }

    /// What the importer refuses is named by the path the helmfile was given as (a file it
    /// names, relative to it), with the line; nothing is written.
    #[test]
    fn what_the_importer_refuses_is_named_by_the_given_path_and_nothing_is_written() {
        let target = Target::new();
        target.write("deploy/helmfile.yaml", "- just\n- a list\n");
        let before = target.files();
        let err = target.import("deploy/helmfile.yaml", false).err().expect("refused");
        let given = target.path().join("deploy/helmfile.yaml");
        assert_eq!(err.location, Some(Location::at(&given, 1, 1)));
        assert!(err.message.starts_with("invalid helmfile: expected a mapping"), "{}", err.message);
        assert_eq!(target.files(), before, "nothing written");

        // A values file of the helmfile's, named below the helmfile's directory as given; the
        // first byte that is not UTF-8 is found at its line and column.
        target.write("deploy/values/dev.yaml", b"replicas: 2\nname: caf\xff\n");
        target.write("deploy/helmfile.yaml", HELMFILE.replace("./charts/web", "../charts/web"));
        let before = target.files();
        let err = target.import("deploy/helmfile.yaml", false).err().expect("refused");
        assert_eq!(err.location, Some(Location::at(target.path().join("deploy/values/dev.yaml"), 2, 10)));
        assert_eq!(err.message, "environment `dev` values file `values/dev.yaml`: not UTF-8 text");
        assert_eq!(target.files(), before, "nothing written");
    }

    /// A file where the import keeps its record that is not a record is never replaced: the
    /// import stops, naming it.
    #[test]
    fn a_file_in_the_record_s_place_that_is_no_record_stops_the_import() {
        let target = Target::new();
        target.write("values/dev.yaml", "replicas: 2\n");
        target.write("helmfile.yaml", HELMFILE);
        target.write(RECORD, "notes: mine\n");
        let before = target.files();
        let message = failure(target.import("helmfile.yaml", true));
        assert!(
            message.starts_with("not the record `weaver import` writes (")
                && message.contains(&format!(
                    "move it away (weaver import keeps its record of the files it wrote in {RECORD})"
                )),
            "{message}"
        );
        assert_eq!(target.files(), before, "nothing written");
    }

    /// A Flux repository's cluster becomes an environment that loads, with what it builds and
    /// the record; the cluster taken is said.
    #[test]
    fn a_flux_cluster_becomes_an_environment_that_loads() {
        let target = Target::new();
        target.write("clusters/dev/app.yaml", weaver_test_support::flux::kustomization("app", "./apps"));
        target.write(
            "apps/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\ndata:\n  a: b\n",
        );
        let options = ImportFluxOptions { repo: target.path(), path: None, force: false, clusters: None };
        let report = import_flux(&options).unwrap();
        // The kustomization Flux would generate for `./apps` is written beside, under flux-import/.
        let kustomization = "flux-import/dev/app/kustomization.yaml";
        assert_eq!(written(&report), ["environments/dev.yaml", kustomization, RECORD]);
        assert!(target.read(RECORD).contains(&sha256(&target.read(kustomization))), "the record lists it too");
        let dev = load_environment(&FsSource::new(target.path()), "dev").expect("the environment written loads");
        assert_eq!(dev.releases.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["app"]);
        assert!(
            report.notes.iter().any(|n| n.starts_with("cluster clusters/dev → environments/dev.yaml")),
            "{:?}",
            report.notes
        );
    }

    /// A Flux repository outside the weaver repository is refused, named as given.
    #[test]
    fn a_flux_repository_outside_the_weaver_repository_is_refused() {
        let (target, elsewhere) = (Target::new(), Target::new());
        let before = target.files();
        let options =
            ImportFluxOptions { repo: target.path(), path: Some(elsewhere.path()), force: false, clusters: None };
        let err = import_flux(&options).err().expect("refused");
        assert_eq!(
            (err.location, err.message.as_str()),
            (Some(Location::file(elsewhere.path())), "is outside the weaver repository")
        );
        assert_eq!(target.files(), before, "nothing written");
    }
}
