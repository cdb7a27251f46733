//! Who signed what weaver applies. A commit signed in git's SSH format (`gpg.format=ssh`: an
//! SSHSIG armored in the commit's `gpgsig` header, over the commit without that header, in the
//! namespace `git`) is checked against a trust list in the `allowed_signers` format that git's
//! `gpg.ssh.allowedSignersFile` and `ssh-keygen -Y verify` read, as they check it: the key must
//! be listed, for the namespace, at the commit's time, and the signature must hold.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};

/// The namespace git signs commits and tags in.
pub const GIT_NAMESPACE: &str = "git";

/// The keys an `allowed_signers` file trusts.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    principals: Vec<String>,
    key: PublicKey,
    /// `namespaces="git,file"`: the patterns the key may sign in; any namespace when absent.
    namespaces: Option<Vec<String>>,
    valid_after: Option<Timestamp>,
    valid_before: Option<Timestamp>,
}

/// A line of an `allowed_signers` file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// From 1.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Who signed: the principals the trust list names for the key, and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub principals: Vec<String>,
    /// `ED25519 SHA256:…`, as `ssh-keygen -l` shows a key.
    pub key: String,
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} key {})", self.principals.join(", "), self.key_type(), self.fingerprint())
    }
}

impl Signer {
    fn key_type(&self) -> &str {
        self.key.split_once(' ').map_or("", |(kind, _)| kind)
    }

    fn fingerprint(&self) -> &str {
        self.key.split_once(' ').map_or(&self.key, |(_, fingerprint)| fingerprint)
    }
}

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No signature at all.
    Unsigned,
    /// A signature in another format (`OpenPGP`, `X.509`) than the trust list's keys.
    OtherFormat(&'static str),
    /// Not an SSH signature that can be read.
    Malformed(String),
    /// Made for another namespace than the one checked (a file signature on a commit).
    WrongNamespace { signed: String, expected: String },
    /// Made by a key (`ED25519 SHA256:…`) the trust list does not hold.
    UntrustedKey { key: String },
    /// Made by a listed key that the list does not allow in this namespace.
    KeyNotForNamespace { key: String, principals: Vec<String>, namespace: String },
    /// Made by a listed key outside its `valid-after`/`valid-before` window.
    KeyNotValidAt { key: String, principals: Vec<String>, at: Timestamp },
    /// Made by a listed key, but it does not match what is signed: the content changed after.
    BadSignature { key: String, principals: Vec<String> },
    /// Made by a listed key of a type weaver does not check (ECDSA P-384 or P-521, DSA).
    UncheckableKey { key: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned => write!(f, "it is not signed"),
            Refusal::OtherFormat(format) => {
                write!(f, "it is signed with {format}, which this trust list (SSH keys) cannot check")
            }
            Refusal::Malformed(why) => write!(f, "its signature cannot be read: {why}"),
            Refusal::WrongNamespace { signed, expected } => {
                write!(f, "its signature was made for namespace `{signed}`, not `{expected}`")
            }
            Refusal::UntrustedKey { key } => write!(f, "it is signed by {key}, a key the trust list does not hold"),
            Refusal::KeyNotForNamespace { key, principals, namespace } => write!(
                f,
                "it is signed by {key} ({}), which the trust list does not allow for namespace `{namespace}`",
                principals.join(", ")
            ),
            Refusal::KeyNotValidAt { key, principals, at } => write!(
                f,
                "it is signed by {key} ({}), which the trust list does not allow at the commit's time {at}",
                principals.join(", ")
            ),
            Refusal::UncheckableKey { key } => write!(
                f,
                "it is signed by {key}, a key type weaver does not check (ED25519, ECDSA P-256 and RSA it does)"
            ),
            Refusal::BadSignature { key, principals } => write!(
                f,
                "its signature by {key} ({}) does not match its content: it was changed after it was signed",
                principals.join(", ")
            ),
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
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| ParseError { line: index + 1, message };
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

    /// Checks `signature` (armored, as in a commit's `gpgsig` header; `None`: unsigned) over
    /// `message` in `namespace`, made at `time` (a commit's committer time).
    pub fn verify(
        &self,
        namespace: &str,
        signature: Option<&[u8]>,
        message: &[u8],
        time: Timestamp,
    ) -> Result<Signer, Refusal> {
        let Some(signature) = signature else { return Err(Refusal::Unsigned) };
        let armored = String::from_utf8_lossy(signature);
        let armored = armored.trim_start();
        if armored.starts_with("-----BEGIN PGP") {
            return Err(Refusal::OtherFormat("OpenPGP"));
        }
        if armored.starts_with("-----BEGIN SIGNED MESSAGE") {
            return Err(Refusal::OtherFormat("X.509"));
        }
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
        if !checkable(signing_key.key_data()) {
            return Err(Refusal::UncheckableKey { key });
        }
        signing_key
            .verify(namespace, message, &sshsig)
            .map_err(|_| Refusal::BadSignature { key: key.clone(), principals: principals.clone() })?;
        Ok(Signer { principals, key })
    }
}

/// Whether the key's signatures can be checked here (the crates built in): a failed check of
/// another type would read as a changed commit.
fn checkable(key: &KeyData) -> bool {
    match key {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) | KeyData::Rsa(_) | KeyData::SkEcdsaSha2NistP256(_) => true,
        KeyData::Ecdsa(key) => key.curve() == EcdsaCurve::NistP256,
        _ => false,
    }
}

/// `ED25519 SHA256:…`: a key's type and fingerprint, as `ssh-keygen -l` names it.
fn describe(key: &PublicKey) -> String {
    let kind = match key.algorithm() {
        Algorithm::Ed25519 => "ED25519".to_string(),
        Algorithm::Ecdsa { .. } => "ECDSA".to_string(),
        Algorithm::Rsa { .. } => "RSA".to_string(),
        other => other.as_str().to_uppercase(),
    };
    format!("{kind} {}", key.fingerprint(HashAlg::Sha256))
}

impl Entry {
    fn parse(line: &str) -> Result<Entry, String> {
        let fields = fields(line)?;
        let mut fields = fields.iter().map(String::as_str);
        let principals = fields.next().ok_or("expected principals, then a key")?;
        let principals: Vec<String> = unquote(principals).split(',').map(str::to_string).collect();
        let mut next = fields.next().ok_or("expected a key after the principals")?;
        let mut entry =
            Entry { principals, key: placeholder_key(), namespaces: None, valid_after: None, valid_before: None };
        if Algorithm::new(next).is_err() {
            entry.options(next)?;
            next = fields.next().ok_or("expected a key after the options")?;
        }
        let algorithm = Algorithm::new(next).map_err(|_| format!("`{next}` is not an SSH key type"))?;
        let base64 = fields.next().ok_or_else(|| format!("expected the base64 of the {next} key"))?;
        let key = PublicKey::from_openssh(&format!("{next} {base64}"))
            .map_err(|err| format!("the {next} key cannot be read: {err}"))?;
        if key.algorithm() != algorithm {
            return Err(format!("the key is a {}, not a {next}", key.algorithm()));
        }
        entry.key = key;
        Ok(entry)
    }

    fn options(&mut self, text: &str) -> Result<(), String> {
        for option in split_outside_quotes(text, ',') {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name, Some(unquote(value))),
                None => (option.as_str(), None),
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("namespaces", Some(list)) => self.namespaces = Some(list.split(',').map(str::to_string).collect()),
                ("valid-after", Some(time)) => self.valid_after = Some(timestamp(time)?),
                ("valid-before", Some(time)) => self.valid_before = Some(timestamp(time)?),
                ("cert-authority", None) => {
                    return Err(
                        "cert-authority (keys of SSH certificates) is not supported: list the signers' keys".into()
                    );
                }
                _ => {
                    return Err(format!(
                        "unknown option `{option}`: expected namespaces=\"…\", valid-after=\"…\" or valid-before=\"…\""
                    ));
                }
            }
        }
        Ok(())
    }

    fn allows(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|patterns| pattern_list_matches(patterns, namespace))
    }

    fn valid_at(&self, time: Timestamp) -> bool {
        self.valid_after.is_none_or(|after| time >= after) && self.valid_before.is_none_or(|before| time <= before)
    }
}

/// A key for an entry being read, replaced before the entry is kept.
fn placeholder_key() -> PublicKey {
    PublicKey::from(KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([0; 32])))
}

/// A line's fields: separated by spaces or tabs outside double quotes.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                field.push(c);
            }
            ' ' | '\t' if !quoted => {
                if !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                }
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    if !field.is_empty() {
        fields.push(field);
    }
    Ok(fields)
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().expect("one part at least").push(c);
            }
            c if c == separator && !quoted => parts.push(String::new()),
            c => parts.last_mut().expect("one part at least").push(c),
        }
    }
    parts
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in the system's time zone unless it ends in `Z`.
fn timestamp(text: &str) -> Result<Timestamp, String> {
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(digits) => (digits, true),
        None => (text, false),
    };
    let bad = || format!("`{text}` is not a time: expected YYYYMMDD[HHMM[SS]][Z]");
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
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
    .map_err(|_| bad())?;
    let zone = if utc { TimeZone::UTC } else { TimeZone::system() };
    datetime.to_zoned(zone).map(|zoned| zoned.timestamp()).map_err(|_| bad())
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
    fn a_line_that_cannot_be_read_is_named_with_what_was_expected() {
        let cases = [
            ("alice\n", 1, "expected a key after the principals"),
            ("# c\nalice ssh-ed25519\n", 2, "expected the base64 of the ssh-ed25519 key"),
            ("alice ssh-ed25519 AAAA\n", 1, "the ssh-ed25519 key cannot be read"),
            (
                "alice cert-authority ssh-ed25519 AAAA\n",
                1,
                "cert-authority (keys of SSH certificates) is not supported",
            ),
            ("alice valid-after=\"2026\" ssh-ed25519 AAAA\n", 1, "`2026` is not a time"),
            ("alice from=\"*.example.com\" ssh-ed25519 AAAA\n", 1, "unknown option `from=\"*.example.com\"`"),
            ("alice namespaces=\"git ssh-ed25519 AAAA\n", 1, "a double quote is not closed"),
            ("alice dss-key AAAA\n", 1, "unknown option `dss-key`"),
        ];
        for (text, line, message) in cases {
            let err = AllowedSigners::parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text}");
            assert!(err.message.contains(message), "{text}: {}", err.message);
        }
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
        let signers = AllowedSigners::parse(&format!("alice {KEY}\n")).unwrap();
        let now = Timestamp::now();
        assert_eq!(signers.verify(GIT_NAMESPACE, None, b"x", now), Err(Refusal::Unsigned));
        let pgp = b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        assert_eq!(signers.verify(GIT_NAMESPACE, Some(pgp), b"x", now), Err(Refusal::OtherFormat("OpenPGP")));
        let garbled = b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n";
        assert!(matches!(signers.verify(GIT_NAMESPACE, Some(garbled), b"x", now), Err(Refusal::Malformed(_))));
    }
}
