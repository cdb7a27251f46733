//! Commits signed with OpenPGP (git's default `gpg.format`): a detached signature armored in the
//! `gpgsig` header, checked against a keyring of armored public keys (`gpg --armor --export`),
//! as `git verify-commit` has GnuPG check it against the keys it trusts.

use std::io::Cursor;

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
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
        Keyring::from_bytes(text.as_bytes())
    }

    /// Reads public keys armored, or in OpenPGP's binary form (a `pubring.gpg`, as `gpg
    /// --export` writes it and `helm --keyring` reads it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, ParseError> {
        // Not the parser's errors: they name what it read (an armor's type, a packet's), and
        // no part of a file given by mistake (it may hold credentials) is printed.
        let error = |message: String| ParseError { line: 1, column: 0, message };
        let expected = "expected OpenPGP public keys, armored (`gpg --armor --export`) or binary (`gpg --export`)";
        let armored = bytes.windows(10).any(|w| w == b"-----BEGIN");
        let keys = match armored {
            true => SignedPublicKey::from_armor_many(Cursor::new(bytes)).map(|(keys, _)| keys),
            false => SignedPublicKey::from_bytes_many(Cursor::new(bytes)),
        }
        .map_err(|_| error(format!("the OpenPGP keys cannot be read: {expected}")))?;
        let mut keyring = Vec::new();
        for key in keys {
            let key = key.map_err(|_| error(format!("an OpenPGP key cannot be read: {expected}")))?;
            key.verify_bindings()
                .map_err(|_| error(format!("OpenPGP key {:X}: its self-signatures do not hold", key.fingerprint())))?;
            keyring.push(key);
        }
        Ok(Keyring { keys: keyring })
    }

    /// A keyring of `key` alone.
    pub fn of(key: SignedPublicKey) -> Keyring {
        Keyring { keys: vec![key] }
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
        self.verify_signature(&signature.signature, message)
    }

    /// Checks the clear-signed `text` (`-----BEGIN PGP SIGNED MESSAGE-----`, as `gpg --clearsign`
    /// and `helm package --sign` write it); Ok holds the signer and the text that was signed.
    pub fn verify_cleartext(&self, text: &str) -> Result<(Signer, String), Refusal> {
        let (message, _) =
            CleartextSignedMessage::from_string(text).map_err(|err| Refusal::Malformed(err.to_string()))?;
        let Some(signature) = message.signatures().first() else { return Err(Refusal::Unsigned) };
        let signer = self.verify_signature(signature, message.signed_text().as_bytes())?;
        // What was signed, with the line ends it was written with.
        Ok((signer, message.signed_text().replace("\r\n", "\n")))
    }

    /// Checks `signature` over `message` with the key or subkey that issued it.
    fn verify_signature(&self, signature: &Signature, message: &[u8]) -> Result<Signer, Refusal> {
        let by_fingerprint = signature.issuer_fingerprint();
        let by_id = signature.issuer_key_id();
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
            let certifications =
                key.details.users.iter().flat_map(|u| &u.signatures).chain(&key.details.direct_signatures);
            let primary_expiry = expiry(key, key.primary_key.created_at(), certifications, &CERTIFICATIONS);
            let (verified, expires, subkey_revoked) = if issued(&key.primary_key) {
                (signature.verify(&key.primary_key, message).is_ok(), primary_expiry, false)
            } else {
                match key.public_subkeys.iter().find(|subkey| issued(&subkey.key)) {
                    Some(subkey) => {
                        let binding = [SignatureType::SubkeyBinding];
                        let subkey_expiry = expiry(key, subkey.key.created_at(), &subkey.signatures, &binding);
                        let revoked = subkey
                            .signatures
                            .iter()
                            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation) && issued_by(s, key));
                        let expires = primary_expiry.into_iter().chain(subkey_expiry).min();
                        (signature.verify(&subkey.key, message).is_ok(), expires, revoked)
                    }
                    None => continue,
                }
            };
            let principals = key.details.users.iter().map(|user| String::from_utf8_lossy(user.id.id()).into_owned());
            let principals = principals.collect();
            let key_name = KeyName { kind: "OpenPGP".into(), fingerprint: format!("{:X}", key.fingerprint()) };
            return match verified {
                _ if !key.details.revocation_signatures.is_empty() || subkey_revoked => {
                    Err(Refusal::KeyRevoked { key: key_name, principals })
                }
                // As GnuPG has git refuse it (EXPKEYSIG): expired now, whenever it signed.
                true if expires.is_some_and(|at| at <= jiff::Timestamp::now()) => {
                    Err(Refusal::KeyExpired { key: key_name, principals, at: expires.unwrap_or_default() })
                }
                true => Ok(Signer { principals, key: key_name }),
                false => Err(Refusal::BadSignature { key: key_name, principals }),
            };
        }
        Err(Refusal::UntrustedKey { key: KeyName { kind: "OpenPGP".into(), fingerprint: issuer } })
    }
}

/// When a key made at `created` expires, by the newest of `signatures` of the types `kinds`
/// that `key`'s primary key made itself (its self-certifications of user IDs or direct-key
/// signature, or a subkey's binding): their key expiration time, none or zero for never. A key's
/// expiry is changed by a newer self-signature (`gpg --quick-set-expire`).
fn expiry<'s>(
    key: &SignedPublicKey,
    created: pgp::types::Timestamp,
    signatures: impl IntoIterator<Item = &'s Signature>,
    kinds: &[SignatureType],
) -> Option<jiff::Timestamp> {
    let own =
        |signature: &&Signature| signature.typ().is_some_and(|typ| kinds.contains(&typ)) && issued_by(signature, key);
    let newest = signatures.into_iter().filter(own).max_by_key(|s| s.created().map(|t| t.as_secs()))?;
    let lasts = newest.key_expiration_time().map(|d| d.as_secs()).filter(|secs| *secs > 0)?;
    jiff::Timestamp::from_second(i64::from(created.as_secs()) + i64::from(lasts)).ok()
}

/// Whether `key`'s primary key issued `signature`.
fn issued_by(signature: &Signature, key: &SignedPublicKey) -> bool {
    signature.issuer_fingerprint().iter().any(|f| **f == key.fingerprint())
        || signature.issuer_key_id().iter().any(|id| **id == key.legacy_key_id())
}

/// The self-signatures that say when a primary key expires.
const CERTIFICATIONS: [SignatureType; 5] = [
    SignatureType::CertGeneric,
    SignatureType::CertPersona,
    SignatureType::CertCasual,
    SignatureType::CertPositive,
    SignatureType::Key,
];
