//! Secrets: SOPS files encrypted to age recipients (the format sops, Flux and helm-secrets
//! read and write) and whole-file age encryption.
//!
//! - Reading: [`decrypt_file`] / [`decrypt_bytes`] give the plaintext [`Document`] of a SOPS
//!   file (MAC verified) or of a `*.age` file; [`Document::to_json`] feeds templates.
//! - Writing: [`encrypt`] for new files; [`SopsFile::decrypt`] then [`Decrypted::reencrypt`],
//!   [`Decrypted::rotate`] or [`Decrypted::update_keys`]; [`EditSession`] for `edit`.
//! - Keys: [`IdentitySources`] → [`Identities`]; recipients and selectors from
//!   [`CreationRules`] (`secrets/.sops.yaml`) via [`encryption_settings`].
//! - Output safety: [`Redactor`].
//!
//! Paths passed in label every error, so pass them as users should see them (repo-relative).

mod cipher;
mod document;
mod edit;
mod error;
pub mod hmac;
mod json;
mod keys;
pub mod record_key;
pub mod redact;
mod rules;
mod sops;
mod tree;
mod yaml;

use std::io::Write;
use std::path::Path;

pub use document::{Document, Format};
pub use edit::{EditOutcome, EditSession, private_temp_root};
pub use error::SecretsError;
pub use keys::{
    Identities, IdentityOrigin, IdentitySources, KEY_VARIABLES, NewIdentity, SECRET_KEY_PREFIX, SOPS_KEY_FILE,
    check_recipient, config_dir,
};
pub use redact::Redactor;
pub use rules::{CreationRules, EncryptionSettings, Selector, encryption_settings};
pub use sops::{Decrypted, KeyUpdate, SOPS_VERSION, SopsFile, encrypt};
pub use tree::{Item, Mapping, Sequence, Value};

/// Decrypts a secrets file: a SOPS file (`.yaml`, `.yml`, `.json`) or a whole-file age file
/// (`.age`, binary or armored, holding YAML).
pub fn decrypt_file(path: &Path, ids: &Identities) -> Result<Document, SecretsError> {
    let bytes = std::fs::read(path).map_err(|source| SecretsError::Io { path: path.to_owned(), source })?;
    decrypt_bytes(path, &bytes, ids)
}

/// [`decrypt_file`] for contents already read (e.g. from a git tree); `path` picks the format.
pub fn decrypt_bytes(path: &Path, bytes: &[u8], ids: &Identities) -> Result<Document, SecretsError> {
    let not_text = |what: &str| SecretsError::Parse {
        path: path.to_owned(),
        line: 1,
        column: 1,
        message: format!("{what} is not UTF-8 text"),
    };
    if path.extension().is_some_and(|e| e == "age") {
        let plain = keys::decrypt_age_file(path, bytes, ids)?;
        let text = String::from_utf8(plain).map_err(|_| not_text("the decrypted content"))?;
        return Document::parse_as(path, &text, Format::Yaml);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| not_text("the file"))?;
    Ok(SopsFile::parse(path, text)?.decrypt(ids)?.into_plaintext())
}

/// A random password of `length` letters and digits, from the operating system's generator.
pub fn random_password(length: usize) -> secrecy::SecretString {
    use rand::Rng;
    let password: String =
        rand::rngs::OsRng.sample_iter(&rand::distributions::Alphanumeric).take(length).map(char::from).collect();
    password.into()
}

/// Replaces `path` with `contents` atomically (temporary file in the same directory, then
/// rename), keeping the old file's permissions. For encrypted output only.
pub fn write_atomically(path: &Path, contents: &str) -> Result<(), SecretsError> {
    let io_error = |source| SecretsError::Io { path: path.to_owned(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".weaver-").tempfile_in(dir).map_err(io_error)?;
    file.write_all(contents.as_bytes()).and_then(|()| file.as_file().sync_all()).map_err(io_error)?;
    if let Ok(old) = std::fs::metadata(path) {
        std::fs::set_permissions(file.path(), old.permissions()).map_err(io_error)?;
    }
    file.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

/// The top-level keys of an environment's `secrets` files, read without decrypting (SOPS keeps
/// keys in clear text), to tell which releases read them; None when a file does not show them
/// (an `.age` file, or one that cannot be read: decrypting it will say why).
pub fn environment_secrets_keys(
    source: &dyn weaver_project::Source,
    env: &weaver_project::Environment,
) -> Option<std::collections::BTreeSet<String>> {
    let mut keys = std::collections::BTreeSet::new();
    for sops in environment_sops_files(source, env) {
        keys.extend(sops?.top_level_keys().map(str::to_string));
    }
    Some(keys)
}

/// The age recipients the environment's SOPS `secrets` files name (in clear text, read without
/// decrypting); the files that do not show them (`.age` files, unreadable ones) add none.
pub fn environment_recipients(
    source: &dyn weaver_project::Source,
    env: &weaver_project::Environment,
) -> std::collections::BTreeSet<String> {
    environment_sops_files(source, env).flatten().flat_map(|sops| sops.recipients()).collect()
}

/// Each of the environment's `secrets` files as SOPS metadata shows it without decrypting; None
/// for a file that does not show it (an `.age` file, or one that cannot be read or parsed).
fn environment_sops_files<'a>(
    source: &'a dyn weaver_project::Source,
    env: &'a weaver_project::Environment,
) -> impl Iterator<Item = Option<SopsFile>> + 'a {
    env.secrets.iter().map(move |file| {
        if file.path.extension().is_some_and(|e| e == "age") {
            return None;
        }
        let bytes = source.read_named(&file.path, &file.at, "secrets file").ok()??;
        SopsFile::parse(&file.path, std::str::from_utf8(&bytes).ok()?).ok()
    })
}

/// Decrypts an environment's `secrets` files (read through `source`), registers every value
/// with `redactor`, and merges them in order: later files override earlier ones key by key.
/// Nothing is returned unless every file decrypts.
pub fn load_environment_secrets(
    source: &dyn weaver_project::Source,
    env: &weaver_project::Environment,
    ids: &Identities,
    redactor: &Redactor,
) -> weaver_core::Result<serde_json::Map<String, serde_json::Value>> {
    let mut merged = serde_json::Map::new();
    for file in &env.secrets {
        let bytes = source
            .read_named(&file.path, &file.at, "secrets file")?
            .ok_or_else(|| source.missing(&file.path, &file.at, "secrets file"))?;
        let tree = decrypt_bytes(&file.path, &bytes, ids)?.to_json();
        redactor.register_tree(&tree);
        match tree {
            serde_json::Value::Object(map) => weaver_project::values::deep_merge(&mut merged, map),
            _ => {
                return Err(weaver_core::Error::at(
                    weaver_core::error::Location::file(&file.path),
                    "a secrets file must hold one mapping at the top level",
                ));
            }
        }
    }
    Ok(merged)
}

/// Decrypts the SOPS files among `files` (values files written as helm-secrets writes them:
/// those with a top-level `sops` key) and registers every value with `redactor`. `ids` is
/// called once, and only when one is encrypted; a file that cannot be read is left to its
/// reader.
pub fn load_encrypted_values_files<'f, 'i>(
    source: &dyn weaver_project::Source,
    files: impl IntoIterator<Item = &'f weaver_project::source::PathRef>,
    ids: impl FnOnce() -> weaver_core::Result<&'i Identities>,
    redactor: &Redactor,
) -> weaver_core::Result<std::collections::HashMap<std::path::PathBuf, serde_json::Map<String, serde_json::Value>>> {
    let mut encrypted: Vec<(&std::path::Path, SopsFile)> = Vec::new();
    for file in files {
        if encrypted.iter().any(|(path, _)| *path == file.path) {
            continue;
        }
        let Ok(Some(bytes)) = source.read_named(&file.path, &file.at, "values file") else { continue };
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        // SOPS writes its metadata as a top-level key (`sops:` in YAML, `"sops":` in JSON).
        if text.lines().any(|line| line.starts_with("sops:") || line.trim_start().starts_with("\"sops\":")) {
            encrypted.push((&file.path, SopsFile::parse(&file.path, text)?));
        }
    }
    let mut decrypted = std::collections::HashMap::new();
    if encrypted.is_empty() {
        return Ok(decrypted);
    }
    let ids = ids()?;
    for (path, sops) in encrypted {
        let tree = sops.decrypt(ids)?.into_plaintext().to_json();
        redactor.register_tree(&tree);
        let serde_json::Value::Object(map) = tree else {
            return Err(weaver_core::Error::at(
                weaver_core::error::Location::file(path),
                "must be a mapping of values at the top level",
            ));
        };
        decrypted.insert(path.to_path_buf(), map);
    }
    Ok(decrypted)
}
