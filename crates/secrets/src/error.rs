//! The one error type of the secrets layer.
//!
//! Every message names the file (or identity source) it is about and none ever contains a
//! plaintext value: values are referred to by their key path, identities by their public key.

use std::fmt;
use std::io;
use std::path::PathBuf;

use weaver_core::error::Location;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{}: {}", path.display(), weaver_core::error::io_reason(source))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A YAML/JSON syntax error, or a structure SOPS cannot represent (non-string key,
    /// duplicate key, top level that is not a mapping).
    #[error("{}: line {line}, column {column}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, column: usize, message: String },

    #[error(
        "{}: is not a SOPS file: it has no `sops` metadata block; encrypt it with `weaver secrets encrypt {}`",
        path.display(), path.display()
    )]
    NotSops { path: PathBuf },

    #[error("{}: is already encrypted: it has a top-level `sops` key, which is reserved for SOPS metadata", path.display())]
    AlreadyEncrypted { path: PathBuf },

    #[error("{}: invalid `sops` metadata: {message}", path.display())]
    Metadata { path: PathBuf, message: String },

    /// A key path of `weaver secrets set` that the file cannot take; names the key, never a
    /// value.
    #[error("{}: key `{key}`: {reason}", path.display())]
    KeyPath { path: PathBuf, key: String, reason: String },

    #[error("{}: {what} is not supported by weaver", path.display())]
    Unsupported { path: PathBuf, what: String },

    #[error(
        "{}: encrypted only to {} keys, with no age recipient: weaver decrypts with age keys only",
        path.display(), key_types.join(", ")
    )]
    NoAgeRecipient { path: PathBuf, key_types: Vec<&'static str> },

    #[error(
        "{}: no age identity available to decrypt it; it is encrypted to {}; tried: nothing found ({})",
        path.display(), Recipients(recipients), searched.join(", ")
    )]
    NoIdentity { path: PathBuf, recipients: Vec<String>, searched: Vec<String> },

    #[error(
        "{}: none of the available age identities can decrypt it; it is encrypted to {}; tried {}",
        path.display(), Recipients(recipients), tried.join(", ")
    )]
    WrongIdentity {
        path: PathBuf,
        recipients: Vec<String>,
        /// "age1… (from SOURCE)" for each identity tried: public keys only.
        tried: Vec<String>,
    },

    #[error(
        "{}: sops.age[{index}].enc (for {recipient}) cannot be decrypted: {reason}; the encrypted data key is damaged or was tampered with",
        path.display()
    )]
    DataKey { path: PathBuf, index: usize, recipient: String, reason: String },

    #[error("{}: the encrypted value at `{key_path}` is malformed: {reason}", path.display())]
    MalformedValue { path: PathBuf, key_path: String, reason: String },

    #[error(
        "{}: the encrypted value at `{key_path}` failed its integrity check: it was modified, moved to another key, or encrypted with another data key",
        path.display()
    )]
    ValueIntegrity { path: PathBuf, key_path: String },

    #[error("{}: MAC mismatch: the file was modified after encryption or is corrupt", path.display())]
    MacMismatch { path: PathBuf },

    #[error(
        "{}: sops.mac cannot be decrypted: the MAC or sops.lastmodified was modified, or the file is corrupt",
        path.display()
    )]
    MacUnreadable { path: PathBuf },

    #[error("{}: cannot decrypt this age file: {reason}; it is damaged or not an age file", path.display())]
    AgeFile { path: PathBuf, reason: String },

    #[error("{origin}: cannot read the identity file: {}", weaver_core::error::io_reason(source))]
    IdentityFile {
        origin: String,
        #[source]
        source: io::Error,
    },

    /// Names the line only: the line itself may be a secret key.
    #[error("{origin}: line {line}: {reason}")]
    InvalidIdentity { origin: String, line: usize, reason: String },

    #[error("invalid age recipient `{recipient}` (from {origin}): expected an age1… X25519 public key")]
    InvalidRecipient { recipient: String, origin: String },

    #[error("{}: {message}", path.display())]
    Rules { path: PathBuf, message: String },

    #[error("{}: no age recipients to encrypt to: {reason}", path.display())]
    NoRecipients { path: PathBuf, reason: String },

    #[error("{}: the editor failed: {}", path.display(), weaver_core::error::io_reason(source))]
    Editor {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Formats a recipient list for messages; whole-file age files don't record theirs.
struct Recipients<'a>(&'a [String]);

impl fmt::Display for Recipients<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("age recipients that the file does not name")
        } else {
            f.write_str(&self.0.join(", "))
        }
    }
}

impl From<SecretsError> for weaver_core::Error {
    /// Secrets errors already name their file and never contain plaintext.
    fn from(err: SecretsError) -> Self {
        use SecretsError as S;
        let help = match &err {
            S::NoIdentity { .. } | S::WrongIdentity { .. } => Some(
                "give weaver the age key with --identity FILE, WEAVER_AGE_KEY_FILE, SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, \
                 the environment's identityFile, or ~/.config/sops/age/keys.txt",
            ),
            S::NoAgeRecipient { .. } => Some(
                "add an age recipient with sops where its keys work: put `age: age1…` (your public key, from \
                 `age-keygen -y`) in the file's creation rule in .sops.yaml and run `sops updatekeys FILE` (or \
                 `sops -r -i --add-age age1… FILE`), then commit the file; the existing keys stay, and weaver \
                 decrypts with the age key",
            ),
            _ => None,
        };
        let error = match &err {
            // One location format for every file weaver reads.
            S::Parse { path, line, column, message } => {
                weaver_core::Error::at(Location::at(path, *line as u64, *column as u64), message.clone())
            }
            _ => weaver_core::Error::new(err.to_string()),
        };
        match help {
            Some(help) => error.with_help(help),
            None => error,
        }
    }
}
