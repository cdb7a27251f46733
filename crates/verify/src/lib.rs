//! Who signed what weaver applies. A commit's signature (its `gpgsig` header, over the commit
//! without that header: [`split_commit`]) is checked against a [`TrustList`]:
//! - git's SSH format (`gpg.format=ssh`: an SSHSIG in the namespace `git`) against an
//!   `allowed_signers` file, as git's `gpg.ssh.allowedSignersFile` and `ssh-keygen -Y verify`
//!   check it: the key listed, for the namespace, at the commit's time, the signature holding;
//! - OpenPGP (git's default) against armored public keys ([`Keyring`]).
//!
//! A Helm chart's provenance file is checked against a [`Keyring`] too
//! ([`check_provenance`]), and an OCI artifact's cosign signature against [`cosign::CosignKeys`].

pub mod cosign;
mod openpgp;
mod provenance;
mod signing;

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
pub use openpgp::Keyring;
pub use provenance::check_provenance;
pub use signing::SigningKey;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};

/// The namespace git signs commits and tags in.
pub const GIT_NAMESPACE: &str = "git";

/// A signature's format, by its armor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ssh,
    OpenPgp,
    X509,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ssh => "SSH",
            Format::OpenPgp => "OpenPGP",
            Format::X509 => "X.509",
        })
    }
}

/// Whose signatures are trusted: SSH keys (an `allowed_signers` file) and OpenPGP keys (armored
/// public keys, as `gpg --armor --export` writes them), read from one text or several
/// ([`TrustList::with`]: a Secret's values).
#[derive(Debug, Clone, Default)]
pub struct TrustList {
    ssh: AllowedSigners,
    openpgp: Keyring,
}

impl TrustList {
    /// Armored OpenPGP public keys, or else an `allowed_signers` file.
    pub fn parse(text: &str) -> Result<TrustList, ParseError> {
        match text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            true => Ok(TrustList { openpgp: Keyring::parse(text)?, ..TrustList::default() }),
            false => Ok(TrustList { ssh: AllowedSigners::parse(text)?, ..TrustList::default() }),
        }
    }

    /// The OpenPGP keys of `keyring`.
    pub fn of_keyring(keyring: Keyring) -> TrustList {
        TrustList { openpgp: keyring, ..TrustList::default() }
    }

    /// This list and `other`'s keys.
    pub fn with(mut self, other: TrustList) -> TrustList {
        self.ssh.entries.extend(other.ssh.entries);
        self.openpgp = self.openpgp.with(other.openpgp);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ssh.is_empty() && self.openpgp.is_empty()
    }

    /// Checks `signature` (armored, as in a commit's `gpgsig` header; `None`: unsigned) over
    /// `message`, made at `time` (a commit's committer time); an SSH signature in `namespace`
    /// (OpenPGP has none).
    pub fn verify(
        &self,
        namespace: &str,
        signature: Option<&[u8]>,
        message: &[u8],
        time: Timestamp,
    ) -> Result<Signer, Refusal> {
        let Some(signature) = signature else { return Err(Refusal::Unsigned) };
        let armored = String::from_utf8_lossy(signature);
        // A blank last line (libgit2's `commit_signed` writes one) is no part of the armor.
        let armored = armored.trim();
        let signed = match armored {
            a if a.starts_with("-----BEGIN SSH SIGNATURE-----") => Format::Ssh,
            a if a.starts_with("-----BEGIN PGP SIGNATURE-----") => Format::OpenPgp,
            a if a.starts_with("-----BEGIN SIGNED MESSAGE-----") => Format::X509,
            _ => return Err(Refusal::Malformed("it is no armored SSH, OpenPGP or X.509 signature".into())),
        };
        match signed {
            Format::Ssh if !self.ssh.is_empty() => self.ssh.verify(namespace, armored, message, time),
            Format::OpenPgp if !self.openpgp.is_empty() => self.openpgp.verify(armored, message),
            signed => {
                let trusted = match self.ssh.is_empty() {
                    true => Format::OpenPgp,
                    false => Format::Ssh,
                };
                Err(Refusal::OtherFormat { signed, trusted })
            }
        }
    }
}

/// The keys an `allowed_signers` file trusts.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    principals: Vec<String>,
    options: Options,
    key: PublicKey,
}

/// An entry's options.
#[derive(Debug, Clone, Default)]
struct Options {
    /// `namespaces="git,file"`: the patterns the key may sign in; any namespace when absent.
    namespaces: Option<Vec<String>>,
    valid_after: Option<Timestamp>,
    valid_before: Option<Timestamp>,
}

/// Where a trust list or key file cannot be read, and what was expected there. The message
/// never holds a byte of the file: one given by mistake (a credentials file, a private key)
/// is not printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// From 1.
    pub line: usize,
    /// From 1, in characters; 0 where the format does not say (an OpenPGP keyring).
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            0 => write!(f, "line {}: {}", self.line, self.message),
            column => write!(f, "line {}, column {column}: {}", self.line, self.message),
        }
    }
}

/// A key as messages name it: `ED25519 SHA256:…`, as `ssh-keygen -l` shows one, or `OpenPGP`
/// and its fingerprint in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName {
    pub kind: String,
    pub fingerprint: String,
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.fingerprint)
    }
}

/// Who signed: the principals the trust list names for the key (an OpenPGP key's user IDs), and
/// the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub principals: Vec<String>,
    pub key: KeyName,
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = format!("{} key {}", self.key.kind, self.key.fingerprint);
        match self.principals.is_empty() {
            true => f.write_str(&key),
            false => write!(f, "{} ({key})", self.principals.join(", ")),
        }
    }
}

/// `KEY (PRINCIPALS)`, or the key alone when the list names nobody for it.
fn by(key: &KeyName, principals: &[String]) -> String {
    match principals.is_empty() {
        true => key.to_string(),
        false => format!("{key} ({})", principals.join(", ")),
    }
}

/// `subkey SUBKEY of KEY (PRINCIPALS)`, or [`by`] when the primary key signed.
fn by_subkey(key: &KeyName, principals: &[String], subkey: Option<&str>) -> String {
    match subkey {
        Some(subkey) => format!("subkey {subkey} of {}", by(key, principals)),
        None => by(key, principals),
    }
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No signature at all.
    Unsigned,
    /// A signature in another format (`OpenPGP`, `SSH`, `X.509`) than the trust list's keys.
    OtherFormat { signed: Format, trusted: Format },
    /// Not an SSH signature that can be read.
    Malformed(String),
    /// Made for another namespace than the one checked (a file signature on a commit).
    WrongNamespace { signed: String, expected: String },
    /// Made by a key (`ED25519 SHA256:…`) the trust list does not hold.
    UntrustedKey { key: KeyName },
    /// Made by a listed key that the list does not allow in this namespace.
    KeyNotForNamespace { key: KeyName, principals: Vec<String>, namespace: String },
    /// Made by a listed key outside its `valid-after`/`valid-before` window.
    KeyNotValidAt { key: KeyName, principals: Vec<String>, at: Timestamp },
    /// Made by a listed key, but it does not match what is signed: the content changed after.
    BadSignature { key: KeyName, principals: Vec<String> },
    /// Made by a listed key that carries a revocation.
    KeyRevoked { key: KeyName, principals: Vec<String> },
    /// Made by a listed OpenPGP key that has expired (at `at`).
    KeyExpired { key: KeyName, principals: Vec<String>, at: Timestamp },
    /// Made by a listed key weaver cannot check (ECDSA P-384 or P-521, DSA, RSA under 2048 bits).
    UncheckableKey { key: KeyName },
    /// An OpenPGP signature made with a digest GnuPG refuses: MD5 (weak), or one it does not know.
    DigestRefused { key: KeyName, principals: Vec<String>, digest: String },
    /// An OpenPGP signature dated `signed`, before its key (or its subkey, by fingerprint) was
    /// made at `created`.
    SignedBeforeKey {
        key: KeyName,
        principals: Vec<String>,
        subkey: Option<Box<str>>,
        signed: Timestamp,
        created: Timestamp,
    },
    /// Made by a listed OpenPGP key (or its subkey) whose usage does not include signing: its key
    /// flags (an encryption subkey, a certify-only primary key), or its algorithm when it has none.
    KeyMayNotSign { key: KeyName, principals: Vec<String>, subkey: Option<Box<str>> },
    /// An OpenPGP signature whose own expiration time (`at`) has passed.
    SignatureExpired { key: KeyName, principals: Vec<String>, at: Timestamp },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned => write!(f, "it is not signed"),
            Refusal::OtherFormat { signed, trusted } => {
                write!(f, "it is signed with {signed}, which this trust list ({trusted} keys) cannot check")
            }
            Refusal::KeyRevoked { key, principals } => {
                write!(f, "it is signed by {}, which is revoked", by(key, principals))
            }
            Refusal::KeyExpired { key, principals, at } => write!(
                f,
                "it is signed by {}, which expired at {at}: its holder extends it (`gpg --quick-set-expire`) and the trust list takes it again",
                by(key, principals)
            ),
            Refusal::Malformed(why) => write!(f, "its signature cannot be read: {why}"),
            Refusal::WrongNamespace { signed, expected } => {
                write!(f, "its signature was made for namespace `{signed}`, not `{expected}`")
            }
            Refusal::UntrustedKey { key } => write!(f, "it is signed by {key}, a key the trust list does not hold"),
            Refusal::KeyNotForNamespace { key, principals, namespace } => write!(
                f,
                "it is signed by {}, which the trust list does not allow for namespace `{namespace}`",
                by(key, principals)
            ),
            Refusal::KeyNotValidAt { key, principals, at } => write!(
                f,
                "it is signed by {}, which the trust list does not allow at the commit's time {at}",
                by(key, principals)
            ),
            Refusal::UncheckableKey { key } => write!(
                f,
                "it is signed by {key}, a key weaver cannot check (it checks ED25519, ECDSA P-256, and RSA keys of 2048 to 4096 bits signing with SHA-2)"
            ),
            Refusal::BadSignature { key, principals } => write!(
                f,
                "its signature by {} does not match its content: it was changed after it was signed",
                by(key, principals)
            ),
            Refusal::DigestRefused { key, principals, digest } => write!(
                f,
                "its signature by {} is made with the digest {digest}, which GnuPG refuses (it checks SHA-2, SHA-1 and RIPEMD-160)",
                by(key, principals)
            ),
            Refusal::SignedBeforeKey { key, principals, subkey, signed, created } => write!(
                f,
                "its signature by {} is dated {signed}, before that key was made at {created}",
                by_subkey(key, principals, subkey.as_deref())
            ),
            Refusal::KeyMayNotSign { key, principals, subkey } => write!(
                f,
                "it is signed by {}, whose key flags do not allow signing",
                by_subkey(key, principals, subkey.as_deref())
            ),
            Refusal::SignatureExpired { key, principals, at } => {
                write!(f, "its signature by {} expired at {at}", by(key, principals))
            }
        }
    }
}

impl AllowedSigners {
    /// Reads an `allowed_signers` file's text: `principals [options] keytype base64 [comment]`
    /// a line, `#` comments and blank lines ignored. The options are `namespaces="…"`,
    /// `valid-after="…"` and `valid-before="…"` (`YYYYMMDD[HHMM[SS]]`, in the system's time zone
    /// unless it ends in `Z`); `cert-authority` (keys of certificates) is refused by its line.
    pub fn parse(text: &str) -> Result<AllowedSigners, ParseError> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |(column, message): (usize, String)| ParseError { line: index + 1, column, message };
            entries.push(Entry::parse(line).map_err(error)?);
        }
        Ok(AllowedSigners { entries })
    }

    /// How many keys the list holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the armored SSHSIG `armored` over `message` in `namespace`, made at `time`.
    fn verify(&self, namespace: &str, armored: &str, message: &[u8], time: Timestamp) -> Result<Signer, Refusal> {
        let sshsig = SshSig::from_pem(armored.as_bytes()).map_err(|err| Refusal::Malformed(err.to_string()))?;
        let signing_key = PublicKey::from(sshsig.public_key().clone());
        let key = describe(&signing_key);
        if sshsig.namespace() != namespace {
            return Err(Refusal::WrongNamespace { signed: sshsig.namespace().to_string(), expected: namespace.into() });
        }
        let listed: Vec<&Entry> =
            self.entries.iter().filter(|entry| entry.key.key_data() == signing_key.key_data()).collect();
        if listed.is_empty() {
            return Err(Refusal::UntrustedKey { key });
        }
        let principals = |entries: &[&Entry]| entries.iter().flat_map(|e| e.principals.iter().cloned()).collect();
        let for_namespace: Vec<&Entry> = listed.iter().copied().filter(|entry| entry.allows(namespace)).collect();
        if for_namespace.is_empty() {
            return Err(Refusal::KeyNotForNamespace {
                key,
                principals: principals(&listed),
                namespace: namespace.into(),
            });
        }
        let valid: Vec<&Entry> = for_namespace.iter().copied().filter(|entry| entry.valid_at(time)).collect();
        if valid.is_empty() {
            return Err(Refusal::KeyNotValidAt { key, principals: principals(&for_namespace), at: time });
        }
        let principals = principals(&valid);
        if !checkable(signing_key.key_data(), &sshsig) {
            return Err(Refusal::UncheckableKey { key });
        }
        signing_key
            .verify(namespace, message, &sshsig)
            .map_err(|_| Refusal::BadSignature { key: key.clone(), principals: principals.clone() })?;
        Ok(Signer { principals, key })
    }
}

/// A raw commit object (`git cat-file commit`) split as git splits it to check its signature
/// (`parse_buffer_signed_by_header`): the value of its `gpgsig` header (continuation lines
/// without their leading space), and the commit without it or any other `gpgsig…` header
/// (`gpgsig-sha256`). Only the headers are read: a signature in the message signs nothing. Two
/// `gpgsig` headers (which git would join into one unreadable signature) are refused.
pub fn split_commit(raw: &[u8]) -> Result<(Option<Vec<u8>>, Vec<u8>), Refusal> {
    #[derive(PartialEq)]
    enum Header {
        Signature,
        OtherSignature,
        Other,
    }
    let mut signature: Option<Vec<u8>> = None;
    let mut signed = Vec::with_capacity(raw.len());
    let mut header = Header::Other;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, next) = rest.split_at(end);
        if line == b"\n" {
            // The message, as it is.
            signed.extend_from_slice(rest);
            break;
        }
        match (line.first(), &mut signature) {
            (Some(b' '), Some(value)) if header == Header::Signature => value.extend_from_slice(&line[1..]),
            (Some(b' '), _) if header == Header::OtherSignature => {}
            _ if line.starts_with(b"gpgsig ") => {
                if signature.is_some() {
                    return Err(Refusal::Malformed("it has two gpgsig headers".into()));
                }
                signature = Some(line[b"gpgsig ".len()..].to_vec());
                header = Header::Signature;
            }
            _ if line.starts_with(b"gpgsig") => header = Header::OtherSignature,
            _ => {
                signed.extend_from_slice(line);
                header = Header::Other;
            }
        }
        rest = next;
    }
    Ok((signature, signed))
}

/// Whether `signature` by `key` can be checked here: a failed check of what cannot be would
/// read as a changed commit.
fn checkable(key: &KeyData, signature: &SshSig) -> bool {
    match key {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_) => true,
        KeyData::Ecdsa(key) => key.curve() == EcdsaCurve::NistP256,
        // The rsa crate takes keys of 2048 to 4096 bits, and SSHSIG's SHA-2 signatures, not
        // ssh-rsa's SHA-1 ones.
        KeyData::Rsa(key) => {
            let bits = key.n.as_positive_bytes().map_or(0, |n| n.len() * 8);
            (2048..=4096).contains(&bits)
                && matches!(signature.signature().algorithm(), Algorithm::Rsa { hash: Some(_) })
        }
        _ => false,
    }
}

/// `ED25519 SHA256:…`: a key's type and fingerprint, as `ssh-keygen -l` names it.
fn describe(key: &PublicKey) -> KeyName {
    let kind = match key.algorithm() {
        Algorithm::Ed25519 => "ED25519".to_string(),
        Algorithm::Ecdsa { .. } => "ECDSA".to_string(),
        Algorithm::Rsa { .. } => "RSA".to_string(),
        other => other.as_str().to_uppercase(),
    };
    KeyName { kind, fingerprint: key.fingerprint(HashAlg::Sha256).to_string() }
}

impl Entry {
    /// One line's entry; else the column where it cannot be read (from 1) and what was
    /// expected there, naming no token of the line.
    fn parse(line: &str) -> Result<Entry, (usize, String)> {
        let fields = split_unquoted(line, |c| c == ' ' || c == '\t').map_err(|column| (column, UNCLOSED.into()))?;
        let end = line.chars().count() + 1;
        let mut fields = fields.iter().map(|(column, field)| (*column, field.as_str()));
        let (_, principals) = fields.next().ok_or((end, "expected principals, then a key".to_string()))?;
        let principals: Vec<String> = unquote(principals).split(',').map(str::to_string).collect();
        let expected_key = || (end, "expected a key after the principals".to_string());
        let (mut column, mut next) = fields.next().ok_or_else(expected_key)?;
        let mut options = Options::default();
        let mut algorithm = known_algorithm(next);
        if algorithm.is_none() {
            options = Options::parse(next).map_err(|(offset, why)| (column + offset, why))?;
            (column, next) = fields.next().ok_or((end, "expected a key after the options".to_string()))?;
            algorithm = known_algorithm(next);
        }
        let Some(algorithm) = algorithm else {
            return Err((column, format!("expected an SSH key type ({KEY_TYPES})")));
        };
        let kind = algorithm.as_str();
        let (column, base64) = fields.next().ok_or_else(|| (end, format!("expected the base64 of the {kind} key")))?;
        let key = PublicKey::from_openssh(&format!("{kind} {base64}"))
            .map_err(|_| (column, format!("expected the base64 of the {kind} key: it cannot be read as one")))?;
        Ok(Entry { principals, options, key })
    }

    fn allows(&self, namespace: &str) -> bool {
        self.options.namespaces.as_ref().is_none_or(|patterns| pattern_list_matches(patterns, namespace))
    }

    fn valid_at(&self, time: Timestamp) -> bool {
        let Options { valid_after, valid_before, .. } = &self.options;
        valid_after.is_none_or(|after| time >= after) && valid_before.is_none_or(|before| time <= before)
    }
}

/// The key types an entry's line may name, as messages list them.
const KEY_TYPES: &str = "ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, sk-ssh-ed25519@openssh.com, …";
/// The message of a double quote not closed.
const UNCLOSED: &str = "a double quote is not closed: expected `\"` before the line ends";

/// `text` as an SSH key type ssh-key knows by name (another `name@domain` is a type it
/// cannot read, and a name from the file that messages would print).
fn known_algorithm(text: &str) -> Option<Algorithm> {
    Algorithm::new(text).ok().filter(|algorithm| !matches!(algorithm, Algorithm::Other(_)))
}

impl Options {
    /// The options of `text`; else where in it (from 0, in characters) one cannot be read, and
    /// what was expected.
    fn parse(text: &str) -> Result<Options, (usize, String)> {
        let mut options = Options::default();
        let unclosed = |offset: usize| (offset - 1, UNCLOSED.to_string());
        for (offset, option) in split_unquoted(text, |c| c == ',').map_err(unclosed)? {
            let offset = offset - 1;
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(unquote(value))),
                None => (option.as_str(), None),
            };
            let at = |message: &str| (offset, message.to_string());
            let time = |option: &str, value: &str| {
                timestamp(value).ok_or_else(|| at(&format!("{option}: expected a time YYYYMMDD[HHMM[SS]][Z]")))
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("namespaces", Some(list)) => options.namespaces = Some(list.split(',').map(str::to_string).collect()),
                ("valid-after", Some(value)) => options.valid_after = Some(time("valid-after", value)?),
                ("valid-before", Some(value)) => options.valid_before = Some(time("valid-before", value)?),
                ("cert-authority", None) => {
                    return Err(at(
                        "cert-authority (keys of SSH certificates) is not supported: list the signers' keys",
                    ));
                }
                _ => {
                    return Err(at(
                        "unknown option or key type: expected namespaces=\"…\", valid-after=\"…\" or valid-before=\"…\", then a key type",
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// `text` split at the characters `separator` takes outside double quotes, empty parts left
/// out, each with its column (from 1, in characters); else the column of the quote not closed.
fn split_unquoted(text: &str, separator: impl Fn(char) -> bool) -> Result<Vec<(usize, String)>, usize> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let (mut start, mut quote) = (1, None);
    for (index, c) in text.chars().enumerate() {
        if c == '"' {
            quote = match quote {
                None => Some(index + 1),
                Some(_) => None,
            };
        }
        if quote.is_none() && separator(c) {
            parts.extend((!part.is_empty()).then(|| (start, std::mem::take(&mut part))));
            start = index + 2;
        } else {
            part.push(c);
        }
    }
    if let Some(column) = quote {
        return Err(column);
    }
    parts.extend((!part.is_empty()).then_some((start, part)));
    Ok(parts)
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in the system's time zone unless it ends in
/// `Z`; None when it is not one.
fn timestamp(text: &str) -> Option<Timestamp> {
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(digits) => (digits, true),
        None => (text, false),
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range).map_or(0, |d| d.parse::<i16>().unwrap_or(0));
    let datetime = DateTime::new(
        number(0..4),
        number(4..6) as i8,
        number(6..8) as i8,
        number(8..10) as i8,
        number(10..12) as i8,
        number(12..14) as i8,
        0,
    )
    .ok()?;
    let zone = if utc { TimeZone::UTC } else { TimeZone::system() };
    datetime.to_zoned(zone).map(|zoned| zoned.timestamp()).ok()
}

/// OpenSSH's pattern lists: `*` and `?` wildcards, a `!` before a pattern that must not match.
fn pattern_list_matches(patterns: &[String], text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard(negated.as_bytes(), text.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= wildcard(pattern.as_bytes(), text.as_bytes()),
        }
    }
    matched
}

fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => wildcard(rest, text) || (!text.is_empty() && wildcard(pattern, &text[1..])),
        (Some((b'?', rest)), Some((_, text_rest))) => wildcard(rest, text_rest),
        (Some((p, rest)), Some((t, text_rest))) if p == t => wildcard(rest, text_rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7KjrFuurq0d46uzQHULpb7JDaRsUhxUzbr5AP+Ng/Y";

    /// What the fixtures sign, as a commit without its signature header.
    const MESSAGE: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@e> 1700000000 +0000\n\
                             committer A <a@e> 1700000000 +0000\n\nsigned\n";
    /// `ssh-keygen -Y sign -n git -f KEY` of MESSAGE by [`KEY`]'s private half.
    const GIT_SIGNATURE: &str = r"-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgbsqOsW66urR3jq7NAdQulvskNp
GxSHFTNuvkA/42D9gAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
AAAAQBfYbjcIpm3WP7ziGzld5Cc6V6uZQuxyyWqZbvz7mh8OjLSM0BIjawZ6N2+K9pQeZt
whtQfVYuLmwlbMs4HY3g4=
-----END SSH SIGNATURE-----
";
    /// The same in the namespace `file`.
    const FILE_SIGNATURE: &str = r"-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgbsqOsW66urR3jq7NAdQulvskNp
GxSHFTNuvkA/42D9gAAAAEZmlsZQAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gtZWQyNTUx
OQAAAEB31oTvfTVAeYNSpx+xklgVpwALcggnnypNO5tAKojVQ31n0yT8or+GowjcUtlgva
nHNyoWlSakKw50WqUs0nYJ
-----END SSH SIGNATURE-----
";
    /// A 1024-bit RSA key (`ssh-keygen -t rsa -b 1024`), and its signature of MESSAGE in `git`.
    const RSA_1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDpTxOg62rVjbuhxPIZavfsHocoDDP8Wrf57EvwcYu3QI9YA9MMb5bA3lLNKQCtAEsZAhrEpx0i70ujnaJ1dFgb9NEcv6HsYJIR1XRHjmPgypkgHVQesyDw6tf7WpxYQqM1tu1hW7uo/5plhadhl0+WwG+TENEVDh60/1UivSa63w== small";
    const RSA_1024_SIGNATURE: &str = r"-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAAJcAAAAHc3NoLXJzYQAAAAMBAAEAAACBAOlPE6DratWNu6HE8hlq9+
wehygMM/xat/nsS/Bxi7dAj1gD0wxvlsDeUs0pAK0ASxkCGsSnHSLvS6OdonV0WBv00Ry/
oexgkhHVdEeOY+DKmSAdVB6zIPDq1/tanFhCozW27WFbu6j/mmWFp2GXT5bAb5MQ0RUOHr
T/VSK9JrrfAAAAA2dpdAAAAAAAAAAGc2hhNTEyAAAAlAAAAAxyc2Etc2hhMi01MTIAAACA
ERfXR63HJ4a1/GKV+J7b1yr2gEIG3bx9gHTuzYcI2G1+Loaepdt2N0hYzCuwwn7dXPRNni
WupRMqRympZOgyBgkAk8nsOM/ebdEpX8aYf917rhHgfh0LqGDQAb+6NcnWxYQxVirxtXCn
/ldIgZRxt0tqtS7toQ57vHFgkOoEbgw=
-----END SSH SIGNATURE-----
";

    fn verify(signers: &str, signature: &str, message: &[u8]) -> Result<Signer, Refusal> {
        let signers = TrustList::parse(signers).expect("readable");
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        signers.verify(GIT_NAMESPACE, Some(signature.as_bytes()), message, at)
    }

    #[test]
    fn a_listed_key_s_signature_passes_for_its_namespace_its_window_and_the_content_it_signed() {
        let alice = |options: &str| format!("alice@example.com {options} {KEY}\n");
        let signer = verify(&alice(""), GIT_SIGNATURE, MESSAGE).expect("accepted");
        let blank_last_line = format!("{GIT_SIGNATURE}\n");
        assert_eq!(verify(&alice(""), &blank_last_line, MESSAGE).as_ref(), Ok(&signer), "as libgit2 writes it");
        assert_eq!(
            signer.to_string(),
            "alice@example.com (ED25519 key SHA256:LPpSEpyKkg14phzlhFxBY95LxzPR2eMzAWUpY2Vgr5E)"
        );
        let refusal = |list: &str, signature: &str, message: &[u8]| verify(list, signature, message).unwrap_err();
        assert!(matches!(refusal(&alice(""), FILE_SIGNATURE, MESSAGE), Refusal::WrongNamespace { .. }));
        let file_only = alice("namespaces=\"file\"");
        assert!(matches!(refusal(&file_only, GIT_SIGNATURE, MESSAGE), Refusal::KeyNotForNamespace { .. }));
        for window in ["valid-before=\"20200101Z\"", "valid-after=\"20300101\""] {
            assert!(
                matches!(refusal(&alice(window), GIT_SIGNATURE, MESSAGE), Refusal::KeyNotValidAt { .. }),
                "{window}"
            );
        }
        assert!(verify(&alice("valid-after=\"20231114\",valid-before=\"20231115Z\""), GIT_SIGNATURE, MESSAGE).is_ok());
        let changed = String::from_utf8(MESSAGE.to_vec()).unwrap().replace("signed", "signed, then changed");
        let refused = refusal(&alice(""), GIT_SIGNATURE, changed.as_bytes());
        assert!(matches!(refused, Refusal::BadSignature { .. }), "{refused:?}");
        let bob = format!("bob@example.com {RSA_1024}\n");
        assert!(matches!(refusal(&bob, GIT_SIGNATURE, MESSAGE), Refusal::UntrustedKey { .. }));
        let refused = refusal(&bob, RSA_1024_SIGNATURE, MESSAGE);
        assert!(matches!(refused, Refusal::UncheckableKey { .. }), "a short key is not a changed commit: {refused:?}");
    }

    #[test]
    fn an_openpgp_key_that_has_expired_is_refused_and_one_that_lasts_is_not() {
        // `gpg --faked-system-time 20200101T000000 --quick-gen-key … ed25519 sign 1d`, and its
        // signature of MESSAGE made the day it was valid; a key of 50 years and its signature.
        let expired = include_str!("../testdata/expired_openpgp.pub.asc");
        let expired_signature = include_str!("../testdata/expired_openpgp.sig.asc");
        let lasting = include_str!("../testdata/lasting_openpgp.pub.asc");
        let lasting_signature = include_str!("../testdata/lasting_openpgp.sig.asc");
        let refusal = verify(expired, expired_signature, MESSAGE).unwrap_err();
        let Refusal::KeyExpired { key, principals, at } = &refusal else { panic!("{refusal}") };
        assert_eq!(
            (key.fingerprint.as_str(), principals.as_slice(), at.to_string().as_str()),
            (
                "3EF3736B61A8B997713D514B6AA902B98011A878",
                &["Old Key <old@example.com>".to_string()][..],
                "2020-01-02T00:00:00Z"
            )
        );
        assert!(refusal.to_string().contains("which expired at 2020-01-02T00:00:00Z"), "{refusal}");
        let signer = verify(lasting, lasting_signature, MESSAGE).expect("a key that has not expired");
        assert_eq!(signer.key.fingerprint, "F9B18524F4B3CC732B7047795980E29F95FDCDCF");
    }

    #[test]
    fn a_signing_subkey_revoked_after_it_signed_refuses_what_it_signed() {
        // A certify-only primary key whose ED25519 signing subkey signed MESSAGE, then was
        // revoked (`gpg --edit-key … key 1 revkey`).
        let public = include_str!("../testdata/revoked_subkey.pub.asc");
        let signature = include_str!("../testdata/revoked_subkey.sig.asc");
        let refusal = verify(public, signature, MESSAGE).unwrap_err();
        let Refusal::KeyRevoked { key, principals } = &refusal else { panic!("{refusal}") };
        assert_eq!(key.fingerprint, "A17AE6313CEF05ACBA223A2CBB6A2A187F07C555");
        assert_eq!(principals, &["Sub Key <sub@example.com>".to_string()]);
    }

    /// The fixtures below are GnuPG 2.2's own signatures of MESSAGE, each of which `gpg --verify`
    /// refuses (testdata/README.md says how they were made).
    #[test]
    fn an_openpgp_signature_made_with_md5_is_refused_as_gnupg_refuses_it_and_one_with_sha1_is_not() {
        // `gpg --digest-algo MD5` (and SHA1) by an RSA key: GnuPG takes SHA-1, refuses MD5.
        let public = include_str!("../testdata/digest_openpgp.pub.asc");
        let signer = verify(public, include_str!("../testdata/sha1_openpgp.sig.asc"), MESSAGE).expect("SHA-1");
        assert_eq!(signer.key.fingerprint, "7AEB530AF07019E0807A5624501DADC47009B9ED");
        let refusal = verify(public, include_str!("../testdata/md5_openpgp.sig.asc"), MESSAGE).unwrap_err();
        let Refusal::DigestRefused { key, digest, .. } = &refusal else { panic!("{refusal}") };
        assert_eq!((key.fingerprint.as_str(), digest.as_str()), ("7AEB530AF07019E0807A5624501DADC47009B9ED", "MD5"));
        assert!(refusal.to_string().contains("is made with the digest MD5, which GnuPG refuses"), "{refusal}");
    }

    #[test]
    fn a_signature_by_a_subkey_whose_newest_binding_is_for_encryption_only_is_refused() {
        // An RSA subkey that signed MESSAGE, then bound anew for encryption alone (`gpg --expert
        // --edit-key … key 1 change-usage`): GnuPG says "Wrong key usage".
        let public = include_str!("../testdata/encryption_subkey.pub.asc");
        let refusal = verify(public, include_str!("../testdata/encryption_subkey.sig.asc"), MESSAGE).unwrap_err();
        let Refusal::KeyMayNotSign { key, subkey, .. } = &refusal else { panic!("{refusal}") };
        assert_eq!(key.fingerprint, "C624974AE4CF9FD166C4E43CDD4E6279016D629F");
        assert_eq!(subkey.as_deref(), Some("297500C9BA1C0FC38C5CDEFE1F6751160B3F73B3"));
        assert_eq!(
            refusal.to_string(),
            "it is signed by subkey 297500C9BA1C0FC38C5CDEFE1F6751160B3F73B3 of OpenPGP \
             C624974AE4CF9FD166C4E43CDD4E6279016D629F (Enc Sub <encsub@example.com>), whose key flags do not allow \
             signing"
        );
    }

    #[test]
    fn a_signature_by_a_primary_key_whose_newest_self_signature_drops_signing_is_refused() {
        // An ED25519 key that signed MESSAGE, then changed its usage to certify alone.
        let public = include_str!("../testdata/certify_only.pub.asc");
        let refusal = verify(public, include_str!("../testdata/certify_only.sig.asc"), MESSAGE).unwrap_err();
        let Refusal::KeyMayNotSign { key, subkey: None, .. } = &refusal else { panic!("{refusal}") };
        assert_eq!(key.fingerprint, "A769C85A0D63D86EB2CA795249879B0D546617A5");
    }

    #[test]
    fn an_openpgp_signature_past_its_own_expiry_is_refused() {
        // A key of 2020-01-01 that never expires; its signature of 2020-01-02, to last a day
        // (`gpg --faked-system-time 20200102T000000 --default-sig-expire 1d`).
        let public = include_str!("../testdata/expired_signature.pub.asc");
        let refusal = verify(public, include_str!("../testdata/expired_signature.sig.asc"), MESSAGE).unwrap_err();
        let Refusal::SignatureExpired { key, at, .. } = &refusal else { panic!("{refusal}") };
        assert_eq!(key.fingerprint, "F7798D73D9BACC741E2684B59E5B3DB8D73F5710");
        assert_eq!(at.to_string(), "2020-01-03T00:00:00Z");
    }

    #[test]
    fn an_openpgp_signature_dated_before_its_key_was_made_is_refused() {
        // A key made in 2026; a signature it made with the clock set to 2020-01-01
        // (`--faked-system-time … --ignore-time-conflict`): GnuPG says "Time conflict".
        let public = include_str!("../testdata/before_key.pub.asc");
        let refusal = verify(public, include_str!("../testdata/before_key.sig.asc"), MESSAGE).unwrap_err();
        let Refusal::SignedBeforeKey { key, subkey: None, signed, created, .. } = &refusal else { panic!("{refusal}") };
        assert_eq!(key.fingerprint, "2A7A02E7D5AEBB9E2626F72A1BAEE4934EA68C0A");
        assert_eq!(signed.to_string(), "2020-01-01T00:00:00Z");
        assert!(created > signed, "{created}");
        assert!(refusal.to_string().contains("is dated 2020-01-01T00:00:00Z, before that key was made at 2026-"));
    }

    #[test]
    fn every_key_of_a_file_of_several_armored_blocks_is_trusted_and_a_bad_block_is_named_by_its_line() {
        // `gpg --armor --export A > keys.asc; gpg --armor --export B >> keys.asc`.
        let digest = include_str!("../testdata/digest_openpgp.pub.asc");
        let expiring = include_str!("../testdata/expired_signature.pub.asc");
        let both = format!("# the team\n{digest}\n{expiring}");
        let signer = verify(&both, include_str!("../testdata/sha1_openpgp.sig.asc"), MESSAGE).expect("the first");
        assert_eq!(signer.key.fingerprint, "7AEB530AF07019E0807A5624501DADC47009B9ED");
        let refusal = verify(&both, include_str!("../testdata/expired_signature.sig.asc"), MESSAGE).unwrap_err();
        assert!(matches!(refusal, Refusal::SignatureExpired { .. }), "the second is trusted too: {refusal}");
        let garbled = format!("{digest}{}", expiring.replace("A", "b"));
        let error = TrustList::parse(&garbled).unwrap_err();
        assert_eq!(error.line, digest.lines().count() + 1, "{error}");
    }

    #[test]
    fn a_commit_is_split_as_git_splits_it() {
        let raw = b"tree t\nparent p\nauthor a\ncommitter c\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n \
                    -----END SSH SIGNATURE-----\ngpgsig-sha256 other\n more\ngpgsigparent q\nmergetag x\n\nmessage\n\
                    gpgsig not a header\n";
        let (signature, signed) = split_commit(raw).unwrap();
        assert_eq!(signature.unwrap(), b"-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n");
        assert_eq!(signed, b"tree t\nparent p\nauthor a\ncommitter c\nmergetag x\n\nmessage\ngpgsig not a header\n");
        let (signature, signed) = split_commit(b"tree t\n\ngpgsig in the message\n").unwrap();
        assert_eq!((signature, signed.as_slice()), (None, &b"tree t\n\ngpgsig in the message\n"[..]));
        assert!(matches!(split_commit(b"tree t\ngpgsig a\ngpgsig b\n\nm\n"), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn lines_with_options_quotes_and_comments_are_read() {
        let text = format!(
            "# the team\n\nalice@example.com {KEY} laptop\n\"bob@example.com,ci@example.com\" \
             namespaces=\"git,file\",valid-after=\"20260101\",valid-before=\"20261231235959Z\" {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text).expect("readable");
        assert_eq!(signers.len(), 2);
        let bob = &signers.entries[1];
        assert_eq!(bob.principals, ["bob@example.com", "ci@example.com"]);
        assert!(bob.allows("git") && bob.allows("file") && !bob.allows("ssh"));
        assert!(signers.entries[0].allows("anything"));
        let before: Timestamp = "2026-12-31T23:59:59Z".parse().unwrap();
        assert!(bob.valid_at(before) && !bob.valid_at("2027-01-01T00:00:00Z".parse().unwrap()));
        assert!(!bob.valid_at("2025-12-30T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_line_that_cannot_be_read_is_named_by_line_and_column_with_what_was_expected() {
        let cases = [
            ("alice\n", (1, 6), "expected a key after the principals"),
            ("# c\nalice ssh-ed25519\n", (2, 18), "expected the base64 of the ssh-ed25519 key"),
            ("alice ssh-ed25519 AAAA\n", (1, 19), "expected the base64 of the ssh-ed25519 key: it cannot be read"),
            (
                "alice cert-authority ssh-ed25519 AAAA\n",
                (1, 7),
                "cert-authority (keys of SSH certificates) is not supported",
            ),
            ("alice valid-after=\"2026\" ssh-ed25519 AAAA\n", (1, 7), "valid-after: expected a time YYYYMMDD"),
            (
                "alice namespaces=\"git\",valid-before=\"x\" ssh-ed25519 AAAA\n",
                (1, 24),
                "valid-before: expected a time",
            ),
            ("  alice from=\"*.example.com\" ssh-ed25519 AAAA\n", (1, 9), "unknown option or key type: expected"),
            ("alice namespaces=\"git ssh-ed25519 AAAA\n", (1, 18), "a double quote is not closed"),
            ("alice dss-key AAAA\n", (1, 7), "unknown option or key type"),
            ("alice namespaces=\"git\" AAAA\n", (1, 24), "expected an SSH key type (ssh-ed25519, "),
        ];
        for (text, (line, column), message) in cases {
            let err = AllowedSigners::parse(text).expect_err(text);
            assert_eq!((err.line, err.column), (line, column), "{text}: {err}");
            assert!(err.message.contains(message), "{text}: {}", err.message);
        }
        let err = AllowedSigners::parse("\talice\n").unwrap_err();
        assert_eq!(err.to_string(), "line 1, column 7: expected a key after the principals");
    }

    #[test]
    fn no_part_of_a_trust_list_is_ever_in_its_errors() {
        // Files given by mistake for a trust list: credentials, an age key, tokens where a
        // list's fields are expected.
        // An age key's shape, made here: no private key, real or not, is kept in the repository.
        let age_key = format!("{}-SECRET-KEY-1{}\n", "AGE", "Q".repeat(58));
        let texts = [
            "password: hunter2-SECRET-TOKEN-123\n",
            age_key.as_str(),
            "ci hunter2@SECRET.example AAAA\n",
            "ci x-SECRET-y=\"1\" ssh-ed25519 AAAA\n",
            "ci valid-after=\"SECRET\" ssh-ed25519 AAAA\n",
            "ci namespaces=\"SECRET ssh-ed25519 AAAA\n",
            "ci ssh-ed25519 SECRETSECRETSECRET\n",
            "ci ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNFQ1JFVA==\n",
            "token=SECRET\n",
        ];
        for text in texts {
            let err = TrustList::parse(text).expect_err(text);
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("SECRET") && !shown.contains("hunter2"), "{text}: {shown}");
            assert_eq!(err.line, 1, "{text}: {shown}");
        }
        let armored = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nSECRET-hunter2\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let err = TrustList::parse(armored).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRET"), "{err}");
        assert!(err.message.contains("expected OpenPGP public keys"), "{err}");
        let err = Keyring::from_bytes(b"\x99\x00SECRET-hunter2 binary").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRET"), "{err}");
    }

    #[test]
    fn namespace_patterns_take_wildcards_and_negations() {
        let patterns = |list: &str| list.split(',').map(str::to_string).collect::<Vec<_>>();
        assert!(pattern_list_matches(&patterns("g*"), "git"));
        assert!(pattern_list_matches(&patterns("file,g?t"), "git"));
        assert!(!pattern_list_matches(&patterns("*,!git"), "git"));
        assert!(!pattern_list_matches(&patterns("file"), "git"));
    }

    #[test]
    fn signatures_in_other_formats_and_none_are_refused_by_name() {
        let signers = TrustList::parse(&format!("alice {KEY}\n")).unwrap();
        let now = Timestamp::now();
        assert_eq!(signers.verify(GIT_NAMESPACE, None, b"x", now), Err(Refusal::Unsigned));
        let pgp = b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let other = Refusal::OtherFormat { signed: Format::OpenPgp, trusted: Format::Ssh };
        assert_eq!(signers.verify(GIT_NAMESPACE, Some(pgp), b"x", now), Err(other));
        let garbled = b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n";
        assert!(matches!(signers.verify(GIT_NAMESPACE, Some(garbled), b"x", now), Err(Refusal::Malformed(_))));
        assert!(matches!(signers.verify(GIT_NAMESPACE, Some(b"junk"), b"x", now), Err(Refusal::Malformed(_))));
    }
}
