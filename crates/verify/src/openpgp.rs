//! Commits signed with OpenPGP (git's default `gpg.format`): a detached signature armored in the
//! `gpgsig` header, checked against a keyring of armored public keys (`gpg --armor --export`),
//! as `git verify-commit` has GnuPG check it against the keys it trusts.

use std::io::Cursor;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;

use crate::{KeyName, ParseError, Refusal, Signer};

/// The public keys a keyring file trusts.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads armored public keys (one or more `PUBLIC KEY BLOCK`s); each key's self-signatures
    /// and subkey bindings must hold.
    pub fn parse(text: &str) -> Result<Keyring, ParseError> {
        let error = |message: String| ParseError { line: 1, message };
        let (keys, _) = SignedPublicKey::from_armor_many(Cursor::new(text.as_bytes()))
            .map_err(|err| error(format!("the OpenPGP keys cannot be read: {err}")))?;
        let mut keyring = Vec::new();
        for key in keys {
            let key = key.map_err(|err| error(format!("an OpenPGP key cannot be read: {err}")))?;
            key.verify_bindings().map_err(|err| {
                error(format!("OpenPGP key {:X}: its self-signatures do not hold ({err})", key.fingerprint()))
            })?;
            keyring.push(key);
        }
        Ok(Keyring { keys: keyring })
    }

    /// This keyring and `other`'s keys.
    pub fn with(mut self, other: Keyring) -> Keyring {
        self.keys.extend(other.keys);
        self
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the armored detached `signature` over `message`.
    pub fn verify(&self, signature: &str, message: &[u8]) -> Result<Signer, Refusal> {
        let (signature, _) = DetachedSignature::from_armor_single(Cursor::new(signature.as_bytes()))
            .map_err(|err| Refusal::Malformed(err.to_string()))?;
        let by_fingerprint = signature.signature.issuer_fingerprint();
        let by_id = signature.signature.issuer_key_id();
        let issuer = by_fingerprint
            .first()
            .map(|fingerprint| format!("{fingerprint:X}"))
            .or_else(|| by_id.first().map(|id| id.to_string().to_uppercase()))
            .unwrap_or_else(|| "of no issuer".to_string());
        let issued = |key: &dyn KeyDetails| {
            by_fingerprint.iter().any(|f| **f == key.fingerprint())
                || by_id.iter().any(|id| **id == key.legacy_key_id())
        };
        for key in &self.keys {
            let verified = if issued(&key.primary_key) {
                signature.verify(&key.primary_key, message).is_ok()
            } else {
                match key.public_subkeys.iter().find(|subkey| issued(&subkey.key)) {
                    Some(subkey) => signature.verify(&subkey.key, message).is_ok(),
                    None => continue,
                }
            };
            let principals = key.details.users.iter().map(|user| String::from_utf8_lossy(user.id.id()).into_owned());
            let principals = principals.collect();
            let key_name = KeyName { kind: "OpenPGP".into(), fingerprint: format!("{:X}", key.fingerprint()) };
            return match verified {
                _ if !key.details.revocation_signatures.is_empty() => {
                    Err(Refusal::KeyRevoked { key: key_name, principals })
                }
                true => Ok(Signer { principals, key: key_name }),
                false => Err(Refusal::BadSignature { key: key_name, principals }),
            };
        }
        Err(Refusal::UntrustedKey { key: KeyName { kind: "OpenPGP".into(), fingerprint: issuer } })
    }
}
