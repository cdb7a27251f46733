//! SOPS files: metadata, decryption with MAC verification, and the three ways of writing one
//! (new file, re-encryption after an edit, rotation) plus key updates.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use super::SecretsError;
use super::cipher::{self, DataKey, DecryptError, Stash, plain_bytes};
use super::document::{Document, Format};
use super::keys::{AgeStanza, Identities, parse_recipient, unwrap_data_key, wrap_data_key};
use super::rules::{EncryptionSettings, Selector};
use super::tree::{Item, Leaf, Mapping, TreePath, Value, container_aads, walk_leaves};

/// The sops version weaver writes files as (the format is unchanged across 3.x).
pub const SOPS_VERSION: &str = "3.9.4";

/// sops' `MACOnlyEncryptedInitialization` (sha256 of "sops"): it seeds the MAC when only
/// encrypted values are hashed, so the two modes never produce the same MAC.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Key types other than age, kept verbatim (sops 3.9 writes them as empty lists).
const OTHER_KEY_TYPES: [&str; 5] = ["kms", "gcp_kms", "azure_kv", "hc_vault", "pgp"];

#[derive(Clone)]
struct Metadata {
    age: Vec<AgeStanza>,
    other_keys: Vec<(&'static str, Value)>,
    lastmodified: String,
    mac: String,
    selector: Selector,
    mac_only_encrypted: bool,
}

impl Metadata {
    fn parse(path: &Path, items: &Mapping) -> Result<Metadata, SecretsError> {
        let error = |message: String| SecretsError::Metadata { path: path.to_owned(), message };
        let get = |name: &str| {
            items.iter().find_map(|item| match item {
                Item::Entry { key, value, .. } if key == name => Some(value),
                _ => None,
            })
        };
        let text = |name: &str| match get(name) {
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(_) => Err(error(format!("`{name}` must be a string"))),
            None => Err(error(format!("`{name}` is missing"))),
        };
        if matches!(get("key_groups"), Some(Value::Seq(groups)) if !groups.is_empty()) {
            return Err(SecretsError::Unsupported {
                path: path.to_owned(),
                what: "a file with key_groups (Shamir secret sharing)".into(),
            });
        }
        let age = match get("age") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Seq(entries)) => entries
                .iter()
                .filter_map(|item| match item {
                    Item::Entry { value, .. } => Some(value),
                    Item::Comment(_) => None,
                })
                .enumerate()
                .map(|(i, entry)| {
                    let field = |name: &str| match entry {
                        Value::Map(fields) => fields.iter().find_map(|f| match f {
                            Item::Entry { key, value: Value::Str(s), .. } if key == name => Some(s.clone()),
                            _ => None,
                        }),
                        _ => None,
                    };
                    match (field("recipient"), field("enc")) {
                        (Some(recipient), Some(enc)) => Ok(AgeStanza { recipient, enc }),
                        _ => Err(error(format!("sops.age[{i}] needs a `recipient` and an `enc` string"))),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(error("`age` must be a list".into())),
        };
        let other_keys: Vec<(&'static str, Value)> = OTHER_KEY_TYPES
            .iter()
            .map(|&name| match get(name) {
                None | Some(Value::Null) => (name, Value::Seq(Vec::new())),
                Some(value) => (name, value.clone()),
            })
            .collect();
        if age.is_empty() {
            let others = non_empty(&other_keys);
            return Err(if others.is_empty() {
                error("it lists no keys".into())
            } else {
                SecretsError::NoAgeRecipient { path: path.to_owned(), key_types: others }
            });
        }
        let selector = Selector::from_fields(|name| match get(name) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        })
        .map_err(error)?;
        let mac_only_encrypted = match get("mac_only_encrypted") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(error("`mac_only_encrypted` must be true or false".into())),
        };
        Ok(Metadata {
            age,
            other_keys,
            lastmodified: text("lastmodified")?,
            mac: text("mac")?,
            selector,
            mac_only_encrypted,
        })
    }

    /// The `sops` block in sops 3.9's field order.
    fn to_mapping(&self) -> Mapping {
        let entry = |key: &str, value: Value| Item::Entry { key: key.to_owned(), value, comment: None };
        let other = |name: &str| {
            let value = self.other_keys.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
            entry(name, value.unwrap_or(Value::Seq(Vec::new())))
        };
        let age = self
            .age
            .iter()
            .map(|stanza| Item::Entry {
                key: (),
                value: Value::Map(vec![
                    entry("recipient", Value::Str(stanza.recipient.clone())),
                    entry("enc", Value::Str(stanza.enc.clone())),
                ]),
                comment: None,
            })
            .collect();
        let (selector_name, selector_value) = self.selector.field();
        let mut items = vec![
            other("kms"),
            other("gcp_kms"),
            other("azure_kv"),
            other("hc_vault"),
            entry("age", Value::Seq(age)),
            entry("lastmodified", Value::Str(self.lastmodified.clone())),
            entry("mac", Value::Str(self.mac.clone())),
            other("pgp"),
            entry(selector_name, Value::Str(selector_value.to_owned())),
        ];
        if self.mac_only_encrypted {
            items.push(entry("mac_only_encrypted", Value::Bool(true)));
        }
        items.push(entry("version", Value::Str(SOPS_VERSION.into())));
        items
    }
}

/// The kinds of the keys other than age that the file lists, as sops' users name them.
fn non_empty(other_keys: &[(&'static str, Value)]) -> Vec<&'static str> {
    other_keys
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Seq(items) if items.is_empty()))
        .map(|(name, _)| match *name {
            "kms" => "AWS KMS",
            "gcp_kms" => "GCP KMS",
            "azure_kv" => "Azure Key Vault",
            "hc_vault" => "HashiCorp Vault transit",
            _ => "PGP",
        })
        .collect()
}

/// An encrypted SOPS file as read: values still encrypted, metadata parsed.
pub struct SopsFile {
    path: PathBuf,
    format: Format,
    data: Vec<Mapping>,
    meta: Metadata,
}

impl SopsFile {
    /// The top-level keys of the document sops reads (the first), which SOPS keeps in clear text.
    pub fn top_level_keys(&self) -> impl Iterator<Item = &str> {
        self.data.first().into_iter().flatten().filter_map(|item| match item {
            Item::Entry { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }

    pub fn read(path: &Path) -> Result<SopsFile, SecretsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SecretsError::Io { path: path.to_owned(), source })?;
        SopsFile::parse(path, &text)
    }

    /// Parses a file's text; `path` decides the format and labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<SopsFile, SecretsError> {
        let Document { format, mut docs } = Document::parse(path, text)?;
        // sops appends the metadata to every YAML document and reads the first.
        let mut metadata = None;
        for doc in &mut docs {
            if let Some(at) = doc.iter().position(|i| matches!(i, Item::Entry { key, .. } if key == "sops"))
                && let Item::Entry { value, .. } = doc.remove(at)
            {
                metadata.get_or_insert(value);
            }
        }
        let meta = match metadata {
            Some(Value::Map(items)) => Metadata::parse(path, &items)?,
            Some(other) => {
                return Err(SecretsError::Metadata {
                    path: path.to_owned(),
                    message: format!("`sops` is a {}, not a mapping", other.type_name()),
                });
            }
            None => {
                return Err(SecretsError::NotSops { path: path.to_owned() });
            }
        };
        Ok(SopsFile { path: path.to_owned(), format, data: docs, meta })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The age recipients the data key is encrypted to.
    pub fn recipients(&self) -> Vec<String> {
        self.meta.age.iter().map(|s| s.recipient.clone()).collect()
    }

    /// Recovers the data key, decrypts every value and verifies the MAC.
    pub fn decrypt(self, ids: &Identities) -> Result<Decrypted, SecretsError> {
        let key = unwrap_data_key(&self.path, &self.meta.age, ids)?;
        let mut stash = Stash::default();
        let plain = self.open_values(&key, &mut stash)?;
        Ok(Decrypted { plaintext: Document { format: self.format, docs: plain }, file: self, key, stash })
    }

    fn open_values(&self, key: &DataKey, stash: &mut Stash) -> Result<Vec<Mapping>, SecretsError> {
        let mut plain = self.data.clone();
        let mut mac = Mac::new(self.meta.mac_only_encrypted);
        let mut other_paths = None;
        walk_leaves(&mut plain, &mut |leaf, path| {
            let encrypted = self.meta.selector.should_encrypt(path.keys());
            match leaf {
                Leaf::Value(value) => {
                    if encrypted {
                        *value = self.open_value(key, value, path, stash)?;
                    }
                    mac.add(value, encrypted);
                }
                // Only comments in sops' format are decrypted: old sops versions left them in clear.
                Leaf::Comment(text) if encrypted && text.starts_with("ENC[AES256_GCM,") => {
                    let others = other_paths.get_or_insert_with(|| container_aads(&self.data));
                    *text = self.open_comment(key, text, path, others, stash)?;
                }
                Leaf::Comment(_) => {}
            }
            Ok::<_, SecretsError>(())
        })?;
        let computed = mac.finish();
        let aad = go_rfc3339(&self.meta.lastmodified).ok_or_else(|| SecretsError::Metadata {
            path: self.path.clone(),
            message: "`lastmodified` is not an RFC 3339 time".into(),
        })?;
        let stored = match cipher::decrypt(key, &self.meta.mac, &aad, &mut Stash::default()) {
            Ok(opened) => opened.plain,
            Err(DecryptError::Integrity) => {
                return Err(SecretsError::MacUnreadable { path: self.path.clone() });
            }
            Err(DecryptError::Malformed(reason)) => {
                return Err(SecretsError::Metadata {
                    path: self.path.clone(),
                    message: format!("`mac` is malformed: {reason}"),
                });
            }
        };
        if stored != computed.as_bytes() {
            return Err(SecretsError::MacMismatch { path: self.path.clone() });
        }
        Ok(plain)
    }

    fn open_value(
        &self,
        key: &DataKey,
        value: &Value,
        path: &TreePath,
        stash: &mut Stash,
    ) -> Result<Value, SecretsError> {
        let malformed =
            |reason: String| SecretsError::MalformedValue { path: self.path.clone(), key_path: path.display(), reason };
        let Value::Str(enc) = value else {
            return Err(malformed(format!("it is a {}, not an encrypted value", value.type_name())));
        };
        if enc.is_empty() {
            return Ok(Value::Str(String::new()));
        }
        if !enc.starts_with("ENC[") {
            // Never quote it: it is probably plaintext added by hand.
            return Err(malformed("it is not encrypted (expected ENC[AES256_GCM,…])".into()));
        }
        match cipher::decrypt(key, enc, &path.aad(), stash) {
            Ok(opened) => opened.into_value().map_err(malformed),
            Err(DecryptError::Malformed(reason)) => Err(malformed(reason)),
            Err(DecryptError::Integrity) => {
                Err(SecretsError::ValueIntegrity { path: self.path.clone(), key_path: path.display() })
            }
        }
    }

    /// A comment's path is its container's. sops' YAML library may attach a comment to a
    /// neighbouring container, so if its own path fails the file's other paths are tried
    /// (comments are not covered by the MAC, so this costs no integrity).
    fn open_comment(
        &self,
        key: &DataKey,
        text: &str,
        path: &TreePath,
        others: &[String],
        stash: &mut Stash,
    ) -> Result<String, SecretsError> {
        let key_path = format!("{} (comment)", path.display());
        let own = path.aad();
        for aad in std::iter::once(&own).chain(others.iter().filter(|a| **a != own)) {
            match cipher::decrypt(key, text, aad, stash) {
                Ok(opened) => {
                    return opened.into_comment().map_err(|reason| SecretsError::MalformedValue {
                        path: self.path.clone(),
                        key_path,
                        reason,
                    });
                }
                Err(DecryptError::Integrity) => {}
                Err(DecryptError::Malformed(reason)) => {
                    return Err(SecretsError::MalformedValue { path: self.path.clone(), key_path, reason });
                }
            }
        }
        Err(SecretsError::ValueIntegrity { path: self.path.clone(), key_path })
    }
}

/// A decrypted SOPS file: the plaintext plus what is needed to write it back.
pub struct Decrypted {
    file: SopsFile,
    key: DataKey,
    stash: Stash,
    plaintext: Document,
}

/// The result of [`Decrypted::update_keys`].
pub struct KeyUpdate {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// The file with the new recipient list; values, MAC and `lastmodified` are unchanged.
    pub text: String,
}

impl Decrypted {
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn recipients(&self) -> Vec<String> {
        self.file.recipients()
    }

    pub fn plaintext(&self) -> &Document {
        &self.plaintext
    }

    pub fn into_plaintext(self) -> Document {
        self.plaintext
    }

    /// Re-encrypts an edited plaintext with the same data key, recipients and selector.
    /// Values whose path and plaintext are unchanged keep their exact ciphertext.
    pub fn reencrypt(&self, edited: &Document) -> Result<String, SecretsError> {
        if edited.has_sops_key() {
            return Err(SecretsError::AlreadyEncrypted { path: self.file.path.clone() });
        }
        Ok(seal_file(self.file.format, &edited.docs, &self.key, &mut self.stash.clone(), self.file.meta.clone()))
    }

    /// A new data key for `recipients`; every value is encrypted afresh.
    pub fn rotate(&self, recipients: &[String]) -> Result<String, SecretsError> {
        let others = non_empty(&self.file.meta.other_keys);
        if !others.is_empty() {
            return Err(SecretsError::Unsupported {
                path: self.file.path.clone(),
                what: format!(
                    "rotating a file that also has {} keys (only age recipients can get the new data key)",
                    others.join(", ")
                ),
            });
        }
        let key = DataKey::generate();
        let age = stanzas(&self.file.path, &key, recipients, &[])?;
        let meta = Metadata { age, ..self.file.meta.clone() };
        Ok(seal_file(self.file.format, &self.plaintext.docs, &key, &mut Stash::default(), meta))
    }

    /// The same data key, wrapped for `recipients`: entries for recipients already present are
    /// kept as they are. Removed recipients may have kept the data key: rotate to lock them out.
    pub fn update_keys(&self, recipients: &[String]) -> Result<KeyUpdate, SecretsError> {
        let old = self.file.recipients();
        let age = stanzas(&self.file.path, &self.key, recipients, &self.file.meta.age)?;
        let added = age.iter().filter(|s| !old.contains(&s.recipient)).map(|s| s.recipient.clone()).collect();
        let removed = old.iter().filter(|r| !age.iter().any(|s| &s.recipient == *r)).cloned().collect();
        let meta = Metadata { age, ..self.file.meta.clone() };
        Ok(KeyUpdate { added, removed, text: render_file(self.file.format, &self.file.data, &meta) })
    }
}

/// Encrypts a plaintext document into a new SOPS file (its text).
pub fn encrypt(path: &Path, plain: &Document, settings: &EncryptionSettings) -> Result<String, SecretsError> {
    if plain.has_sops_key() {
        return Err(SecretsError::AlreadyEncrypted { path: path.to_owned() });
    }
    let key = DataKey::generate();
    let meta = Metadata {
        age: stanzas(path, &key, &settings.recipients, &[])?,
        other_keys: Vec::new(),
        lastmodified: String::new(),
        mac: String::new(),
        selector: settings.selector.clone(),
        mac_only_encrypted: settings.mac_only_encrypted,
    };
    Ok(seal_file(plain.format, &plain.docs, &key, &mut Stash::default(), meta))
}

/// `sops.age` for `recipients`, reusing the entry of a recipient found in `existing`.
fn stanzas(
    path: &Path,
    key: &DataKey,
    recipients: &[String],
    existing: &[AgeStanza],
) -> Result<Vec<AgeStanza>, SecretsError> {
    if recipients.is_empty() {
        return Err(SecretsError::NoRecipients { path: path.to_owned(), reason: "the recipient list is empty".into() });
    }
    let mut out: Vec<AgeStanza> = Vec::new();
    for recipient in recipients {
        if out.iter().any(|s| &s.recipient == recipient) {
            continue;
        }
        let stanza = match existing.iter().find(|s| &s.recipient == recipient) {
            Some(stanza) => stanza.clone(),
            None => AgeStanza {
                recipient: recipient.clone(),
                enc: wrap_data_key(key, &parse_recipient(recipient, "the recipient list")?),
            },
        };
        out.push(stanza);
    }
    Ok(out)
}

/// Encrypts `plain` under `key` (reusing stashed IVs), stamps `lastmodified` and the MAC into
/// `meta`, and renders the file.
fn seal_file(format: Format, plain: &[Mapping], key: &DataKey, stash: &mut Stash, meta: Metadata) -> String {
    let mut data = plain.to_vec();
    let mut mac = Mac::new(meta.mac_only_encrypted);
    walk_leaves(&mut data, &mut |leaf, path| {
        let encrypted = meta.selector.should_encrypt(path.keys());
        match leaf {
            Leaf::Value(value) => {
                mac.add(value, encrypted);
                if encrypted {
                    let (kind, bytes) = plain_bytes(value);
                    *value = Value::Str(cipher::encrypt(key, kind, &bytes, &path.aad(), stash));
                }
            }
            Leaf::Comment(text) if encrypted => {
                *text = cipher::encrypt(key, "comment", text.as_bytes(), &path.aad(), stash);
            }
            Leaf::Comment(_) => {}
        }
        Ok::<_, std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    let lastmodified = now_rfc3339();
    let mac = cipher::encrypt(key, "str", mac.finish().as_bytes(), &lastmodified, &mut Stash::default());
    render_file(format, &data, &Metadata { lastmodified, mac, ..meta })
}

fn render_file(format: Format, data: &[Mapping], meta: &Metadata) -> String {
    let block = Item::Entry { key: "sops".to_owned(), value: Value::Map(meta.to_mapping()), comment: None };
    let docs = data
        .iter()
        .map(|doc| {
            let mut doc = doc.clone();
            doc.push(block.clone());
            doc
        })
        .collect();
    Document { format, docs }.render()
}

/// sops' MAC: uppercase hex SHA-512 over the plaintext of every non-null value in document
/// order (or only encrypted ones, with `mac_only_encrypted`).
struct Mac {
    hasher: Sha512,
    only_encrypted: bool,
}

impl Mac {
    fn new(only_encrypted: bool) -> Mac {
        let mut hasher = Sha512::new();
        if only_encrypted {
            hasher.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Mac { hasher, only_encrypted }
    }

    fn add(&mut self, value: &Value, encrypted: bool) {
        if encrypted || !self.only_encrypted {
            self.hasher.update(plain_bytes(value).1);
        }
    }

    fn finish(self) -> String {
        hex::encode_upper(self.hasher.finalize())
    }
}

/// `lastmodified` as sops writes it: RFC 3339 in UTC, second precision.
fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The MAC's additional data: `lastmodified` as Go re-formats it after parsing (RFC 3339
/// without fractional seconds, `Z` for a zero offset).
fn go_rfc3339(s: &str) -> Option<String> {
    let base = s.get(..19)?;
    let shape_ok = base.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let zone = match rest.as_bytes() {
        b"Z" => "Z",
        [b'+' | b'-', h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()) => {
            if &rest[1..] == "00:00" { "Z" } else { rest }
        }
        _ => return None,
    };
    shape_ok.then(|| format!("{base}{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real SOPS file, encrypted once per run to a key made for it (no key is kept in the
    /// repository), and that key: maps, lists, a multi-line string, numbers, a boolean, a comment.
    static SEALED: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
        use secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate();
        let plain = "# the database\ndb:\n  user: app\n  password: s3cret\n  port: 5432\n\
                     tls: true\ncerts:\n  - |\n    -----BEGIN-----\n    abc\n  - two\n";
        let path = Path::new("dev.yaml");
        let settings = EncryptionSettings {
            recipients: vec![identity.to_public().to_string()],
            selector: Selector::default(),
            mac_only_encrypted: false,
        };
        let sealed = encrypt(path, &Document::parse(path, plain).unwrap(), &settings).unwrap();
        (sealed, identity.to_string().expose_secret().to_owned())
    });

    fn sealed_key() -> Identities {
        crate::IdentitySources { sops_key: Some(SEALED.1.clone()), ..Default::default() }.load().unwrap()
    }

    #[test]
    fn the_sealed_file_decrypts_with_its_key() {
        let document = crate::decrypt_bytes(Path::new("s.yaml"), SEALED.0.as_bytes(), &sealed_key()).unwrap();
        assert_eq!(document.to_json()["db"]["password"], "s3cret");
        assert!(!SEALED.0.contains("s3cret"), "the value is encrypted in the file");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// Any input, and any damage to a real SOPS file, is a plaintext or an error, never a panic.
        #[test]
        fn arbitrary_input_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            yaml in weaver_arbitrary::arbitrary_yaml(),
            at in 0..SEALED.0.len(),
            cut in 0..40usize,
            insert in weaver_arbitrary::arbitrary_yaml(),
        ) {
            let (sealed, ids) = (&SEALED.0, sealed_key());
            for path in ["s.yaml", "s.json", "s.age"] {
                let _ = crate::decrypt_bytes(Path::new(path), &bytes, &ids);
                let _ = crate::decrypt_bytes(Path::new(path), yaml.as_bytes(), &ids);
            }
            let mut damaged = sealed.as_bytes()[..at].to_vec();
            damaged.extend_from_slice(insert.as_bytes());
            damaged.extend_from_slice(&sealed.as_bytes()[(at + cut).min(sealed.len())..]);
            let _ = crate::decrypt_bytes(Path::new("s.yaml"), &damaged, &ids);
        }
    }

    #[test]
    fn lastmodified_is_normalised_like_go() {
        assert_eq!(go_rfc3339("2021-04-06T09:07:05Z").as_deref(), Some("2021-04-06T09:07:05Z"));
        assert_eq!(go_rfc3339("2021-04-06T09:07:05.123456Z").as_deref(), Some("2021-04-06T09:07:05Z"));
        assert_eq!(go_rfc3339("2021-04-06T09:07:05+00:00").as_deref(), Some("2021-04-06T09:07:05Z"));
        assert_eq!(go_rfc3339("2021-04-06T11:07:05+02:00").as_deref(), Some("2021-04-06T11:07:05+02:00"));
        assert_eq!(go_rfc3339("2021-04-06 09:07:05Z"), None);
        assert_eq!(go_rfc3339("yesterday"), None);
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(go_rfc3339(&now).as_deref(), Some(now.as_str()));
        assert!(now.as_str() > "2024-01-01T00:00:00Z");
    }
}
