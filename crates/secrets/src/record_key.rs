//! The key that signs release records (`WEAVER_RECORD_KEY_FILE`): each apply that writes a
//! record MACs its content (HMAC-SHA256), and `weaver promote` checks the MAC before it trusts
//! what the record says was applied. It tells a record this key's holder wrote from one edited
//! by anyone who may write Secrets in the release namespace but does not hold the key; it does
//! not stop the key's holder, nor say which of several holders applied.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::hmac::HmacSha256;
use weaver_core::error::{Error, Result};

/// The variable naming the key's file, for applies (which sign) and promotions (which check).
pub const RECORD_KEY_VARIABLE: &str = "WEAVER_RECORD_KEY_FILE";

/// The fewest bytes a key has: 256 bits, as HMAC-SHA256's output.
const MIN_KEY_BYTES: usize = 32;

const SCHEME: &str = "hmac-sha256";

/// A record-signing key, named by its fingerprint (never shown itself).
#[derive(Clone)]
pub struct RecordKey {
    mac: Arc<HmacSha256>,
    /// The first 16 hex digits of the SHA-256 of the key: which key signed, in evidence.
    pub id: String,
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordKey({})", self.id)
    }
}

/// What a record's signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Valid,
    /// The record has no signature: its apply had no key.
    Unsigned,
    /// Signed with another key (its fingerprint).
    OtherKey(String),
    /// Signed with this key over other content: the record was changed since.
    Invalid,
}

impl RecordKey {
    /// The key of the file `WEAVER_RECORD_KEY_FILE` names (its bytes, a trailing newline
    /// trimmed), or None when the variable is not set.
    pub fn from_environment() -> Result<Option<RecordKey>> {
        let Some(path) = std::env::var_os(RECORD_KEY_VARIABLE).filter(|p| !p.is_empty()).map(PathBuf::from) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path).map_err(|err| {
            Error::io("read the record key", &path, err)
                .with_help(format!("{RECORD_KEY_VARIABLE} names the file of the key that signs release records"))
        })?;
        let key = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::new(format!(
                "the record key ({}, from {RECORD_KEY_VARIABLE}) has {} bytes: at least {MIN_KEY_BYTES} are needed",
                path.display(),
                key.len()
            ))
            .with_help("make one with: head -c 32 /dev/urandom | base64 > record.key"));
        }
        Ok(Some(RecordKey::new(key)))
    }

    pub fn new(key: &[u8]) -> RecordKey {
        RecordKey { mac: Arc::new(HmacSha256::new(key)), id: hex::encode(&Sha256::digest(key)[..8]) }
    }

    /// `hmac-sha256:<key id>:<hex MAC>` of `content`.
    pub fn sign(&self, content: &[u8]) -> String {
        format!("{SCHEME}:{}:{}", self.id, hex::encode(self.mac.mac(content)))
    }

    /// Whether `signature` is one of this key's (its scheme and key id; not checked against
    /// content: see [`RecordKey::verify`]).
    pub fn signed(&self, signature: Option<&str>) -> bool {
        signature
            .and_then(|s| s.strip_prefix(SCHEME))
            .and_then(|s| s.strip_prefix(':'))
            .is_some_and(|rest| rest.split_once(':').is_some_and(|(id, _)| id == self.id))
    }

    pub fn verify(&self, content: &[u8], signature: Option<&str>) -> Verified {
        let Some(signature) = signature else { return Verified::Unsigned };
        let mut parts = signature.splitn(3, ':');
        let (scheme, id, mac) = (parts.next(), parts.next().unwrap_or_default(), parts.next());
        if scheme != Some(SCHEME) || mac.is_none() {
            return Verified::Invalid;
        }
        if id != self.id {
            return Verified::OtherKey(id.to_string());
        }
        let given = mac.and_then(|mac| hex::decode(mac).ok()).unwrap_or_default();
        match bool::from(given.ct_eq(&self.mac.mac(content))) {
            true => Verified::Valid,
            false => Verified::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_content_and_key_only() {
        let key = RecordKey::new(&[7; 32]);
        let signature = key.sign(b"record");
        assert!(signature.starts_with(&format!("hmac-sha256:{}:", key.id)), "{signature}");
        assert_eq!(key.verify(b"record", Some(&signature)), Verified::Valid);
        assert_eq!(key.verify(b"recorD", Some(&signature)), Verified::Invalid);
        assert_eq!(key.verify(b"record", None), Verified::Unsigned);
        let other = RecordKey::new(&[8; 32]);
        assert_eq!(other.verify(b"record", Some(&signature)), Verified::OtherKey(key.id.clone()));
        assert_eq!(key.verify(b"record", Some("hmac-sha256:nonsense")), Verified::Invalid);
    }
}
