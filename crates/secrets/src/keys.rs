//! age identities (where they come from, loading them) and age encryption of data keys and
//! whole files.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format as ArmorFormat};
use age::x25519;

use super::SecretsError;
use super::cipher::DataKey;
use super::hmac::HmacSha256;

/// The environment variables weaver reads age keys from, in the order it tries them:
/// `WEAVER_AGE_KEY_FILE`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY` (the keys themselves).
pub const KEY_VARIABLES: [&str; 3] = ["WEAVER_AGE_KEY_FILE", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY"];

/// What an age secret key starts with, in a key file or a variable.
pub const SECRET_KEY_PREFIX: &str = "AGE-SECRET-KEY-";

/// sops's key file, relative to the user's configuration directory ([`config_dir`]).
pub const SOPS_KEY_FILE: &str = "sops/age/keys.txt";

/// The user's configuration directory as sops finds it, through `env` (pass `|k|
/// std::env::var_os(k)`): `$XDG_CONFIG_HOME`, else `$HOME/.config`. Empty variables count as
/// unset.
pub fn config_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    // Go's os.UserConfigDir (what sops uses) ignores a relative XDG_CONFIG_HOME.
    var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")))
}

/// Where identities may come from, in the order they are tried. All sources that exist are
/// loaded and every key is tried, as sops does with its sources.
#[derive(Clone, Default)]
pub struct IdentitySources {
    /// `--identity FILE`.
    pub flag: Option<PathBuf>,
    /// `WEAVER_AGE_KEY_FILE`.
    pub weaver_key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY_FILE`.
    pub sops_key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY`: the keys themselves, one per line.
    pub sops_key: Option<String>,
    /// The environment's `identityFile` (resolved by the caller, e.g. against the repo root).
    pub environment_file: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME/sops/age/keys.txt`, else `$HOME/.config/sops/age/keys.txt`; a missing
    /// file here is not an error, unlike every explicitly named file.
    pub default_file: Option<PathBuf>,
}

// `sops_key` holds secret keys: never print it.
impl fmt::Debug for IdentitySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySources")
            .field("flag", &self.flag)
            .field("weaver_key_file", &self.weaver_key_file)
            .field("sops_key_file", &self.sops_key_file)
            .field("sops_key", &self.sops_key.as_ref().map(|_| "<set>"))
            .field("environment_file", &self.environment_file)
            .field("default_file", &self.default_file)
            .finish()
    }
}

impl IdentitySources {
    /// Reads the environment through `env` (pass `|k| std::env::var_os(k)`; tests pass a map).
    /// Empty variables count as unset.
    pub fn from_env(
        flag: Option<PathBuf>,
        environment_file: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> IdentitySources {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let config_dir = config_dir(&env);
        IdentitySources {
            flag,
            weaver_key_file: var(KEY_VARIABLES[0]).map(PathBuf::from),
            sops_key_file: var(KEY_VARIABLES[1]).map(PathBuf::from),
            sops_key: var(KEY_VARIABLES[2]).map(|v| v.to_string_lossy().into_owned()),
            environment_file,
            default_file: config_dir.map(|dir| dir.join(SOPS_KEY_FILE)),
        }
    }

    /// The files [`IdentitySources::load`] reads, when they exist.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.flag, &self.weaver_key_file, &self.sops_key_file, &self.environment_file, &self.default_file]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Loads every available source. A named file that cannot be read, or a line that is not a
    /// key, is an error; finding no keys at all is not (decrypting then says what was searched).
    pub fn load(&self) -> Result<Identities, SecretsError> {
        let mut ids = Identities::default();
        let files = [
            (&self.flag, IdentityOrigin::Flag as fn(PathBuf) -> IdentityOrigin, "--identity not given"),
            (&self.weaver_key_file, IdentityOrigin::WeaverKeyFile, "WEAVER_AGE_KEY_FILE unset"),
            (&self.sops_key_file, IdentityOrigin::SopsKeyFile, "SOPS_AGE_KEY_FILE unset"),
        ];
        for (path, origin, unset) in files {
            match path {
                Some(path) => ids.load_file(origin(path.clone()), path)?,
                None => ids.searched.push(unset.into()),
            }
        }
        match &self.sops_key {
            Some(text) => ids.load_text(IdentityOrigin::SopsKey, text)?,
            None => ids.searched.push("SOPS_AGE_KEY unset".into()),
        }
        match &self.environment_file {
            Some(path) => ids.load_file(IdentityOrigin::EnvironmentFile(path.clone()), path)?,
            None => ids.searched.push("no identityFile in the environment".into()),
        }
        match &self.default_file {
            Some(path) if path.exists() => ids.load_file(IdentityOrigin::DefaultFile(path.clone()), path)?,
            Some(path) => ids.searched.push(format!("{} missing", path.display())),
            None => ids.searched.push("no default key file (HOME unset)".into()),
        }
        Ok(ids)
    }
}

/// Where an identity was found; shown next to its public key in errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityOrigin {
    Flag(PathBuf),
    WeaverKeyFile(PathBuf),
    SopsKeyFile(PathBuf),
    SopsKey,
    EnvironmentFile(PathBuf),
    DefaultFile(PathBuf),
    /// Handed over whole, such as the controller's from a Secret (`Secret team/age-keys`).
    Given(String),
}

impl fmt::Display for IdentityOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityOrigin::Flag(p) => write!(f, "--identity {}", p.display()),
            IdentityOrigin::WeaverKeyFile(p) => write!(f, "WEAVER_AGE_KEY_FILE={}", p.display()),
            IdentityOrigin::SopsKeyFile(p) => write!(f, "SOPS_AGE_KEY_FILE={}", p.display()),
            IdentityOrigin::SopsKey => f.write_str("SOPS_AGE_KEY"),
            IdentityOrigin::EnvironmentFile(p) => write!(f, "identityFile {}", p.display()),
            IdentityOrigin::DefaultFile(p) => write!(f, "{}", p.display()),
            IdentityOrigin::Given(what) => f.write_str(what),
        }
    }
}

/// Loaded age identities. Only public keys and origins are ever shown.
#[derive(Default)]
pub struct Identities {
    keys: Vec<Loaded>,
    /// What was looked at without finding keys, for the "no identity" message.
    searched: Vec<String>,
}

struct Loaded {
    identity: x25519::Identity,
    public: String,
    origin: IdentityOrigin,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.public_keys().map(|(key, origin)| format!("{key} (from {origin})"))).finish()
    }
}

impl Identities {
    /// The identities of `text` (age's identity file format) alone: no file or variable is
    /// searched.
    pub fn given(origin: IdentityOrigin, text: &str) -> Result<Identities, SecretsError> {
        let mut ids = Identities::default();
        ids.load_text(origin, text)?;
        Ok(ids)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public key of each identity and where it came from.
    pub fn public_keys(&self) -> impl Iterator<Item = (&str, &IdentityOrigin)> {
        self.keys.iter().map(|k| (k.public.as_str(), &k.origin))
    }

    fn load_file(&mut self, origin: IdentityOrigin, path: &Path) -> Result<(), SecretsError> {
        use std::io::Read;
        // Key files are a few hundred bytes; `identityFile: /dev/zero` must not eat the runner.
        const MAX_IDENTITY_FILE: u64 = 1 << 20;
        let failed = |source| SecretsError::IdentityFile { origin: origin.to_string(), source };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_IDENTITY_FILE + 1).read_to_end(&mut bytes))
            .map_err(failed)?;
        if bytes.len() as u64 > MAX_IDENTITY_FILE {
            return Err(failed(std::io::Error::other("larger than 1 MiB, which no age identity file is")));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))?;
        self.load_text(origin, &text)
    }

    fn load_text(&mut self, origin: IdentityOrigin, text: &str) -> Result<(), SecretsError> {
        let before = self.keys.len();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: &str| SecretsError::InvalidIdentity {
                origin: origin.to_string(),
                line: index + 1,
                reason: reason.into(),
            };
            if line.starts_with("AGE-PLUGIN-") {
                return Err(invalid("age plugin identities are not supported"));
            }
            let identity = x25519::Identity::from_str(line).map_err(|_| {
                invalid(if line.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                    "the age secret key is malformed (wrong length or checksum; the key is not shown)"
                } else {
                    "not an age identity (expected a line starting with AGE-SECRET-KEY-)"
                })
            })?;
            let public = identity.to_public().to_string();
            // The same key in several sources is tried (and reported) once.
            if !self.keys.iter().any(|k| k.public == public) {
                self.keys.push(Loaded { identity, public, origin: origin.clone() });
            }
        }
        if self.keys.len() == before {
            self.searched.push(format!("{origin}: no keys in it"));
        }
        Ok(())
    }

    /// The key of the redaction markers of an environment whose files are encrypted to
    /// `recipients` (see [`crate::Redactor::keyed`]): a hash of the secret keys of the
    /// identities held among them (of every identity held when none is: a whole-file age file
    /// names no recipient), sorted by public key, under HMAC with a label of its use. Stable for
    /// whoever holds those keys, whatever other keys they hold and wherever they load them from;
    /// unknowable to whoever holds none. None without an identity.
    pub fn marker_key(&self, recipients: &BTreeSet<String>) -> Option<[u8; 32]> {
        use secrecy::ExposeSecret;
        use sha2::{Digest, Sha256};
        let among: Vec<&Loaded> = self.keys.iter().filter(|k| recipients.contains(&k.public)).collect();
        let mut used = if among.is_empty() { self.keys.iter().collect() } else { among };
        if used.is_empty() {
            return None;
        }
        used.sort_by(|a, b| a.public.cmp(&b.public));
        let mut secret_keys = Sha256::new();
        for loaded in used {
            secret_keys.update(loaded.identity.to_string().expose_secret().as_bytes());
            secret_keys.update(b"\n");
        }
        Some(HmacSha256::new(&secret_keys.finalize()).mac(b"weaver redaction markers v1"))
    }

    fn has_public(&self, recipient: &str) -> bool {
        self.keys.iter().any(|k| k.public == recipient)
    }

    fn as_dyn(&self) -> Vec<&dyn age::Identity> {
        self.keys.iter().map(|k| &k.identity as &dyn age::Identity).collect()
    }

    fn tried(&self) -> Vec<String> {
        self.public_keys().map(|(key, origin)| format!("{key} (from {origin})")).collect()
    }

    fn no_identity(&self, path: &Path, recipients: Vec<String>) -> SecretsError {
        SecretsError::NoIdentity { path: path.to_owned(), recipients, searched: self.searched.clone() }
    }
}

/// A new age X25519 identity, as `age-keygen` makes one: a new repository's key.
pub struct NewIdentity(x25519::Identity);

impl NewIdentity {
    pub fn generate() -> NewIdentity {
        NewIdentity(x25519::Identity::generate())
    }

    /// Its public key (`age1…`), what files are encrypted to.
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
    }

    /// Writes the identity to `path` as `age-keygen -o` does (its creation time and public key
    /// as comments, then the secret key). The file is created with mode 0600, so that it is
    /// never readable by others even for an instant, and an existing file is never replaced
    /// (one this call made and could not finish writing is removed); missing parent directories
    /// are made with mode 0700.
    pub fn write_new_file(&self, path: &Path) -> Result<(), SecretsError> {
        use secrecy::ExposeSecret;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io_error = |source| SecretsError::Io { path: path.to_owned(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io_error)?;
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_error)?;
        let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
        let header = format!("# created: {created}\n# public key: {}\n", self.recipient());
        let secret = self.0.to_string();
        file.write_all(header.as_bytes())
            .and_then(|()| file.write_all(secret.expose_secret().as_bytes()))
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|err| {
                // A part of a key is no key, and would stand in the way of the next try as a
                // file never replaced: it goes (this call made it).
                let _ = std::fs::remove_file(path);
                io_error(err)
            })
    }
}

/// Checks that `recipient` is an age X25519 public key; `origin` says where it was written.
pub fn check_recipient(recipient: &str, origin: &str) -> Result<(), SecretsError> {
    parse_recipient(recipient, origin).map(drop)
}

/// Parses an age recipient; `origin` says where it was written, for the message.
pub(crate) fn parse_recipient(recipient: &str, origin: &str) -> Result<x25519::Recipient, SecretsError> {
    x25519::Recipient::from_str(recipient)
        .map_err(|_| SecretsError::InvalidRecipient { recipient: recipient.to_owned(), origin: origin.to_owned() })
}

/// The data key as an armored age file for one recipient (what `sops.age[].enc` holds).
pub(crate) fn wrap_data_key(key: &DataKey, recipient: &x25519::Recipient) -> String {
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .expect("one X25519 recipient is always a valid recipient set");
    // Everything here writes to memory, which cannot fail.
    let armored = ArmoredWriter::wrap_output(Vec::new(), ArmorFormat::AsciiArmor).expect("in-memory write");
    let mut writer = encryptor.wrap_output(armored).expect("in-memory write");
    writer.write_all(&key.0).expect("in-memory write");
    let armored = writer.finish().and_then(ArmoredWriter::finish).expect("in-memory write");
    String::from_utf8(armored).expect("armor is ASCII")
}

/// One `sops.age[]` entry.
#[derive(Clone)]
pub(crate) struct AgeStanza {
    pub(crate) recipient: String,
    pub(crate) enc: String,
}

enum Unwrap {
    NotForUs,
    Damaged(String),
}

/// Recovers the data key: every identity is tried against every stanza.
pub(crate) fn unwrap_data_key(path: &Path, stanzas: &[AgeStanza], ids: &Identities) -> Result<DataKey, SecretsError> {
    let recipients = || stanzas.iter().map(|s| s.recipient.clone()).collect();
    if ids.is_empty() {
        return Err(ids.no_identity(path, recipients()));
    }
    let identities = ids.as_dyn();
    let mut damaged = None;
    for (index, stanza) in stanzas.iter().enumerate() {
        let outcome = decrypt_age(stanza.enc.as_bytes(), &identities).and_then(|plain| {
            <[u8; 32]>::try_from(plain)
                .map_err(|p| Unwrap::Damaged(format!("it holds {} bytes instead of a 32-byte data key", p.len())))
        });
        match outcome {
            Ok(key) => return Ok(DataKey(key)),
            // A stanza for a recipient we hold the identity of should open: if it does not, the
            // file was damaged, which matters more than any other stanza being foreign.
            Err(failure) if damaged.is_none() && ids.has_public(&stanza.recipient) => {
                let reason = match failure {
                    Unwrap::NotForUs => "the identity for this recipient does not open it".to_owned(),
                    Unwrap::Damaged(reason) => reason,
                };
                damaged = Some((index, stanza.recipient.clone(), reason));
            }
            Err(_) => {}
        }
    }
    Err(match damaged {
        Some((index, recipient, reason)) => SecretsError::DataKey { path: path.to_owned(), index, recipient, reason },
        None => SecretsError::WrongIdentity { path: path.to_owned(), recipients: recipients(), tried: ids.tried() },
    })
}

/// Decrypts a whole-file age payload, binary or armored.
pub(crate) fn decrypt_age_file(path: &Path, bytes: &[u8], ids: &Identities) -> Result<Vec<u8>, SecretsError> {
    // X25519 stanzas do not name their recipients.
    if ids.is_empty() {
        return Err(ids.no_identity(path, Vec::new()));
    }
    decrypt_age(bytes, &ids.as_dyn()).map_err(|failure| match failure {
        Unwrap::NotForUs => {
            SecretsError::WrongIdentity { path: path.to_owned(), recipients: Vec::new(), tried: ids.tried() }
        }
        Unwrap::Damaged(reason) => SecretsError::AgeFile { path: path.to_owned(), reason },
    })
}

fn decrypt_age(input: &[u8], identities: &[&dyn age::Identity]) -> Result<Vec<u8>, Unwrap> {
    // ArmoredReader passes binary input through unchanged.
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(BufReader::new(input)))
        .map_err(|e| Unwrap::Damaged(age_reason(&e)))?;
    let mut reader = decryptor.decrypt(identities.iter().copied()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => Unwrap::NotForUs,
        e => Unwrap::Damaged(age_reason(&e)),
    })?;
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).map_err(|e| Unwrap::Damaged(io_reason(&e)))?;
    Ok(plain)
}

/// age's errors in weaver's words ("Header is invalid", "failed to fill whole buffer").
fn age_reason(err: &age::DecryptError) -> String {
    use age::DecryptError as D;
    match err {
        D::InvalidHeader | D::UnknownFormat => "its header is not an age header".to_owned(),
        D::InvalidMac => "its header MAC does not match".to_owned(),
        D::DecryptionFailed => "its content does not decrypt (it was modified or truncated)".to_owned(),
        D::KeyDecryptionFailed => "its file key does not decrypt".to_owned(),
        D::Io(e) => io_reason(e),
        other => other.to_string(),
    }
}

fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => "it ends too early (truncated)".to_owned(),
        _ => weaver_core::error::io_reason(err),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// A fresh key: (secret key text, public key).
    fn key() -> (String, String) {
        let identity = x25519::Identity::generate();
        (identity.to_string().expose_secret().to_owned(), identity.to_public().to_string())
    }

    fn held(keys: &[&str]) -> Identities {
        Identities::given(IdentityOrigin::SopsKey, &keys.join("\n")).unwrap()
    }

    /// Issue 68.16: the markers' key is the same for whoever holds the environment's identity,
    /// whatever other keys they hold and in whichever order; another identity gives another.
    #[test]
    fn the_marker_key_comes_from_the_identities_among_the_recipients() {
        let ((alice, alice_public), (bob, bob_public), (other, _)) = (key(), key(), key());
        let recipients = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<String>>();
        let for_alice = recipients(&[&alice_public]);
        let alone = held(&[&alice]).marker_key(&for_alice);
        assert!(alone.is_some());
        assert_eq!(held(&[&other, &alice]).marker_key(&for_alice), alone, "a key not a recipient counts for nothing");
        assert_ne!(held(&[&bob]).marker_key(&recipients(&[&bob_public])), alone);
        // Several recipients held: all of them, in any order.
        let both = recipients(&[&alice_public, &bob_public]);
        assert_eq!(held(&[&alice, &bob]).marker_key(&both), held(&[&bob, &alice]).marker_key(&both));
        assert_ne!(held(&[&alice, &bob]).marker_key(&both), alone);
        // No recipient known (a whole-file age file, no secrets): every key held.
        assert_eq!(held(&[&alice]).marker_key(&BTreeSet::new()), alone);
        assert_ne!(held(&[&other, &alice]).marker_key(&BTreeSet::new()), alone);
        assert_eq!(held(&[]).marker_key(&for_alice), None);
    }
}
