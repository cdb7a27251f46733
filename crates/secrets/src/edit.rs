//! `weaver secrets edit`: decrypt into a private temporary file, let the user edit it,
//! re-encrypt keeping the ciphertext of unchanged values.
//!
//! The plaintext lives in a directory created with mode 0700 (editors put swap and backup
//! files next to the file, so a private directory keeps those private too) holding one file
//! with mode 0600, preferably on a RAM-backed file system (see [`private_temp_root`]). The
//! directory is owned by the [`EditSession`] and removed when it is dropped: after success,
//! on errors, when an edit that no longer parses is abandoned, and while unwinding from a
//! panic.
//!
//! Signals: a dropped session cannot help if the process is killed, so while the editor runs
//! the command ignores SIGINT and SIGQUIT in weaver itself (Ctrl-C in a terminal goes to the
//! whole foreground process group and belongs to the editor, as in `git commit`), and on
//! SIGTERM or SIGHUP stops the editor, so the session drops normally (see
//! `commands::secrets::run_editor`).

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::keys::Identities;
use super::sops::{Decrypted, SopsFile};
use super::{SecretsError, write_atomically};

/// Where to create the private directory: `$XDG_RUNTIME_DIR` (per-user tmpfs), else
/// `/dev/shm` (tmpfs), else the system temporary directory. `env` reads the environment.
pub fn private_temp_root(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    env("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir)
}

/// The private directory; removed (and unregistered) on drop.
struct PrivateDir {
    dir: TempDir,
}

impl PrivateDir {
    fn create(root: &Path) -> io::Result<PrivateDir> {
        let dir = tempfile::Builder::new()
            .prefix("weaver-edit-")
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(root)?;
        Ok(PrivateDir { dir })
    }
}

/// What became of one editor run.
#[derive(Debug)]
pub enum EditOutcome {
    /// The file was re-encrypted and written.
    Saved,
    /// The plaintext was not changed; the file was not touched.
    Unchanged,
    /// The edited text does not parse (or adds a `sops` key). The edit is kept in the session's
    /// file: run the editor again to fix it, or drop the session to abandon it.
    Invalid(SecretsError),
}

/// An open edit: the decrypted file and its private plaintext copy.
pub struct EditSession {
    opened: Decrypted,
    /// What was written to the plaintext file, to tell "saved unchanged" from an edit.
    original: String,
    file: PathBuf,
    // Declared last: dropped (and the plaintext removed) after everything else.
    _dir: PrivateDir,
}

impl EditSession {
    /// Decrypts `path` and writes its plaintext into a new private directory under `temp_root`.
    pub fn open(path: &Path, ids: &Identities, temp_root: &Path) -> Result<EditSession, SecretsError> {
        let opened = SopsFile::read(path)?.decrypt(ids)?;
        let dir =
            PrivateDir::create(temp_root).map_err(|source| SecretsError::Io { path: temp_root.to_owned(), source })?;
        let name = path.file_name().map_or_else(|| OsString::from("secrets.yaml"), OsString::from);
        let file = dir.dir.path().join(name);
        let original = opened.plaintext().render();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(original.as_bytes()))
            .map_err(|source| SecretsError::Io { path: file.clone(), source })?;
        Ok(EditSession { opened, original, file, _dir: dir })
    }

    /// The plaintext file to open in the editor.
    /// The decrypted document as it was opened.
    pub fn plaintext(&self) -> &super::Document {
        self.opened.plaintext()
    }

    pub fn plaintext_path(&self) -> &Path {
        &self.file
    }

    /// Runs `editor` on the plaintext file, then re-encrypts and writes the secrets file if the
    /// text changed and parses.
    pub fn run(&mut self, editor: impl FnOnce(&Path) -> io::Result<()>) -> Result<EditOutcome, SecretsError> {
        let target = self.opened.path().to_owned();
        editor(&self.file).map_err(|source| SecretsError::Editor { path: target.clone(), source })?;
        let text =
            fs::read_to_string(&self.file).map_err(|source| SecretsError::Io { path: self.file.clone(), source })?;
        if text == self.original {
            return Ok(EditOutcome::Unchanged);
        }
        let edited = match super::Document::parse_as(&target, &text, self.opened.plaintext().format()) {
            // Only layout changed: nothing to write.
            Ok(doc) if doc == *self.opened.plaintext() => return Ok(EditOutcome::Unchanged),
            Ok(doc) => doc,
            Err(e) => return Ok(EditOutcome::Invalid(e)),
        };
        let encrypted = match self.opened.reencrypt(&edited) {
            Ok(encrypted) => encrypted,
            Err(e @ SecretsError::AlreadyEncrypted { .. }) => return Ok(EditOutcome::Invalid(e)),
            Err(e) => return Err(e),
        };
        write_atomically(&target, &encrypted)?;
        Ok(EditOutcome::Saved)
    }
}
