//! What `weaver import` wrote: `weaver-import.lock` at the repository's root lists each file it
//! wrote with the SHA-256 of the text it wrote. `--force` replaces a file only when the record
//! lists it and it is unchanged since, so that no file the import did not write (a helmfile's
//! values kept where weaver writes an environment, a manifest the Flux tree applies) and no
//! change made to one it wrote is ever lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use weaver_core::error::{Error, Location, Result};

/// The record's file, at the repository's root. Not `.yaml`: nothing that reads a directory's
/// YAML files (Flux's generated kustomizations, `kubectl apply -f`) takes it for a manifest.
pub const RECORD: &str = "weaver-import.lock";

const HEADER: &str = "# Written by `weaver import`: each file it wrote, with the SHA-256 of the text it wrote.\n\
                      # `weaver import --force` replaces a file only when it is listed here and unchanged\n\
                      # since, and never any other file. Commit it with the files.\n";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
    /// Repository path (`/`-separated) → `sha256:<hex>` of what was written there.
    files: BTreeMap<String, String>,
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn key(file: &Path) -> String {
    file.to_string_lossy().replace('\\', "/")
}

impl Record {
    /// The repository's record; empty when there is none. One that is not a record (a file of
    /// that name the import did not write) is an error: it is never replaced either.
    pub(super) fn read(repo: &Path) -> Result<Record> {
        let path = repo.join(RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(err) => return Err(Error::io("read", Path::new(RECORD), err)),
        };
        let text = weaver_project::source::utf8(Path::new(RECORD), bytes)?;
        weaver_yaml::from_str::<Option<Record>>(Path::new(RECORD), &text)
            .map(Option::unwrap_or_default)
            .map_err(|err| {
                Error::at(
                    err.location.clone().unwrap_or_else(|| Location::file(RECORD)),
                    format!("not the record `weaver import` writes ({}), and an import never replaces a file it did not write", err.message),
                )
                .with_help(format!("move it away (weaver import keeps its record of the files it wrote in {RECORD}), and import again"))
            })
    }

    /// Refuses, before anything is written, to replace a file of `files` (repository paths)
    /// that exists and that the record does not list as written by the import and unchanged
    /// since; `in_the_way` tells what stands where a file goes (the file, or a file where one
    /// of its directories goes). Every such file is named.
    pub(super) fn refuse_foreign<'p>(
        &self,
        repo: &Path,
        files: impl Iterator<Item = &'p Path>,
        in_the_way: impl Fn(&Path) -> Option<PathBuf>,
    ) -> Result<()> {
        let mut refused: Vec<(PathBuf, &str)> = Vec::new();
        for file in files {
            let Some(found) = in_the_way(file) else { continue };
            if refused.iter().any(|(path, _)| *path == found) {
                continue;
            }
            let why = match (found == file, std::fs::read(repo.join(&found)), self.files.get(&key(file))) {
                (true, Ok(bytes), Some(written)) if digest(&bytes) == *written => continue,
                (true, Ok(_), Some(_)) => "changed since `weaver import` wrote it",
                _ => "not written by `weaver import`",
            };
            refused.push((found, why));
        }
        let Some(((first, why), others)) = refused.split_first() else { return Ok(()) };
        let and = match others {
            [] => String::new(),
            others => {
                let named: Vec<String> =
                    others.iter().map(|(path, why)| format!("{}: {why}", path.display())).collect();
                format!(" (and {})", named.join("; "))
            }
        };
        Err(Error::at(
            Location::file(first),
            format!(
                "already exists, {why}{and}: --force replaces only the files weaver import wrote, as it wrote them \
                 ({RECORD} lists them): nothing was written"
            ),
        )
        .with_help(
            "move the file out of the way (a helmfile's or Flux's own file: to another directory, changing the paths \
             that name it), or remove a file weaver import wrote to have it written again, then import again",
        ))
    }

    /// Notes that `files` were written, and writes the record (leaving out files that are gone).
    pub(super) fn write(mut self, repo: &Path, files: &[(PathBuf, String)]) -> Result<()> {
        for (file, text) in files {
            self.files.insert(key(file), digest(text.as_bytes()));
        }
        self.files.retain(|file, _| repo.join(file).is_file());
        let text = format!("{HEADER}{}", weaver_yaml::to_yaml_string(&serde_json::json!({ "files": self.files })));
        let path = repo.join(RECORD);
        std::fs::write(&path, text).map_err(|err| Error::io("write", &path, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(repo: &Path, path: &str, text: &str) {
        let full = repo.join(path);
        std::fs::create_dir_all(full.parent().expect("a file in a directory")).expect("create the directory");
        std::fs::write(full, text).expect("write the file");
    }

    fn files(texts: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        texts.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect()
    }

    /// The record lists each file written with the digest of its text, keeps those of an
    /// earlier import that are still there, and forgets those that are gone.
    #[test]
    fn the_record_keeps_the_files_still_there_and_forgets_those_gone() {
        let repo = tempfile::tempdir().unwrap();
        let first = files(&[("environments/dev.yaml", "dev\n"), ("environments/prod.yaml", "prod\n")]);
        for (path, text) in &first {
            write(repo.path(), path.to_str().unwrap(), text);
        }
        Record::read(repo.path()).unwrap().write(repo.path(), &first).unwrap();
        std::fs::remove_file(repo.path().join("environments/prod.yaml")).unwrap();
        let second = files(&[("environments/base.yaml", "base\n")]);
        write(repo.path(), "environments/base.yaml", "base\n");
        Record::read(repo.path()).unwrap().write(repo.path(), &second).unwrap();

        let record = Record::read(repo.path()).unwrap();
        let listed: Vec<(&str, &str)> = record.files.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (base, dev) = (digest(b"base\n"), digest(b"dev\n"));
        assert_eq!(listed, [("environments/base.yaml", base.as_str()), ("environments/dev.yaml", dev.as_str())]);
    }

    /// With the record, a listed file unchanged may be replaced; a file standing where a
    /// directory of one goes never, named by its own path.
    #[test]
    fn a_file_where_a_directory_goes_is_refused_by_its_own_path() {
        let repo = tempfile::tempdir().unwrap();
        let written = files(&[("environments/dev.yaml", "dev\n")]);
        write(repo.path(), "environments/dev.yaml", "dev\n");
        Record::read(repo.path()).unwrap().write(repo.path(), &written).unwrap();
        write(repo.path(), "flux-import", "a file of someone else's\n");

        let record = Record::read(repo.path()).unwrap();
        let in_the_way = |file: &Path| super::super::super::in_the_way(repo.path(), file);
        let unchanged = [Path::new("environments/dev.yaml")];
        assert!(record.refuse_foreign(repo.path(), unchanged.into_iter(), in_the_way).is_ok());
        let both = [Path::new("environments/dev.yaml"), Path::new("flux-import/dev/app/kustomization.yaml")];
        let err = record.refuse_foreign(repo.path(), both.into_iter(), in_the_way).unwrap_err();
        assert_eq!(err.location, Some(Location::file("flux-import")));
        assert!(err.message.starts_with("already exists, not written by `weaver import`: "), "{}", err.message);
    }
}
