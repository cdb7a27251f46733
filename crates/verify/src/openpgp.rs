//! Commits signed with OpenPGP (git's default `gpg.format`): a detached signature armored in the
//! `gpgsig` header, checked against a keyring of armored public keys (`gpg --armor --export`),
//! as `git verify-commit` has GnuPG check it against the keys it trusts.

use std::io::Cursor;

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{KeyFlags, Signature, SignatureType, SubpacketData};
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
        let expected = "expected OpenPGP public keys, armored (`gpg --armor --export`) or binary (`gpg --export`)";
        let armored = bytes.windows(10).any(|w| w == b"-----BEGIN");
        let mut keyring = Vec::new();
        // Each armored block on its own (rpgp reads the first of several, as `gpg --armor --export
        // A >> keys.asc` and then B's make them), named by the line it starts on.
        let blocks = match armored {
            true => armored_blocks(bytes),
            false => vec![(1, bytes)],
        };
        for (line, block) in blocks {
            let error = |message: String| ParseError { line, column: 0, message };
            let keys = match armored {
                true => SignedPublicKey::from_armor_many(Cursor::new(block)).map(|(keys, _)| keys),
                false => SignedPublicKey::from_bytes_many(Cursor::new(block)),
            }
            .map_err(|_| error(format!("the OpenPGP keys cannot be read: {expected}")))?;
            for key in keys {
                let key = key.map_err(|_| error(format!("an OpenPGP key cannot be read: {expected}")))?;
                key.verify_bindings().map_err(|_| {
                    error(format!("OpenPGP key {:X}: its self-signatures do not hold", key.fingerprint()))
                })?;
                keyring.push(key);
            }
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

    /// Checks `signature` over `message` with the key or subkey that issued it, as GnuPG 2.2
    /// decides it (`g10/sig-check.c`), whose verdict `git verify-commit` takes.
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
            let primary_revoked = !key.details.revocation_signatures.is_empty();
            let issuing = if issued(&key.primary_key) {
                Issuing {
                    subkey: None,
                    created: key.primary_key.created_at(),
                    may_sign: may_sign(key.primary_key.algorithm(), primary_key_flags(key).as_ref()),
                    verified: signature.verify(&key.primary_key, message).is_ok(),
                    expires: primary_expiry,
                    revoked: primary_revoked,
                }
            } else {
                let Some(subkey) = key.public_subkeys.iter().find(|subkey| issued(&subkey.key)) else { continue };
                let binding = [SignatureType::SubkeyBinding];
                let subkey_expiry = expiry(key, subkey.key.created_at(), &subkey.signatures, &binding);
                Issuing {
                    subkey: Some(format!("{:X}", subkey.key.fingerprint()).into()),
                    created: subkey.key.created_at(),
                    may_sign: subkey_may_sign(key, &subkey.key, &subkey.signatures),
                    verified: signature.verify(&subkey.key, message).is_ok(),
                    expires: primary_expiry.into_iter().chain(subkey_expiry).min(),
                    revoked: primary_revoked
                        || subkey
                            .signatures
                            .iter()
                            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation) && issued_by(s, key)),
                }
            };
            let principals = key.details.users.iter().map(|user| String::from_utf8_lossy(user.id.id()).into_owned());
            let key_name = KeyName { kind: "OpenPGP".into(), fingerprint: format!("{:X}", key.fingerprint()) };
            return issuing.decide(signature, key_name, principals.collect());
        }
        Err(Refusal::UntrustedKey { key: KeyName { kind: "OpenPGP".into(), fingerprint: issuer } })
    }
}

/// The armored public key blocks of `bytes`, each from its `-----BEGIN PGP PUBLIC KEY BLOCK-----`
/// to the next, with the line it starts on (from 1); all of `bytes` when it has no such line.
fn armored_blocks(bytes: &[u8]) -> Vec<(usize, &[u8])> {
    const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    let starts: Vec<usize> = (0..bytes.len()).filter(|at| bytes[*at..].starts_with(BEGIN)).collect();
    if starts.is_empty() {
        return vec![(1, bytes)];
    }
    let ends = starts.iter().skip(1).copied().chain([bytes.len()]);
    let line = |at: usize| 1 + bytes[..at].iter().filter(|byte| **byte == b'\n').count();
    starts.iter().zip(ends).map(|(start, end)| (line(*start), &bytes[*start..end])).collect()
}

/// The key or subkey that issued a signature, and what GnuPG reads of it.
struct Issuing {
    /// The subkey's fingerprint; None: the primary key.
    subkey: Option<Box<str>>,
    created: pgp::types::Timestamp,
    may_sign: bool,
    /// Whether the signature holds over what it signs.
    verified: bool,
    /// When the key (a subkey: the sooner of it and its primary key) expires.
    expires: Option<jiff::Timestamp>,
    /// The key, or a subkey's primary key, carries a revocation.
    revoked: bool,
}

impl Issuing {
    /// Whether GnuPG 2.2 takes `signature` by this key (`key`, named `principals`), in the order it
    /// checks (`check_signature2`): the digest, the signature's date against the key's, the key's
    /// usage, the signature itself; then the key's expiry and the signature's, which git refuses
    /// (EXPKEYSIG, EXPSIG). A revoked key refuses whatever it signed.
    fn decide(self, signature: &Signature, key: KeyName, principals: Vec<String>) -> Result<Signer, Refusal> {
        if self.revoked {
            return Err(Refusal::KeyRevoked { key, principals });
        }
        let subkey = self.subkey;
        let digest = signature.hash_alg();
        if !digest.is_some_and(|digest| DIGESTS.contains(&digest)) {
            let digest = digest.map_or_else(|| "none".to_string(), |digest| digest.to_string());
            return Err(Refusal::DigestRefused { key, principals, digest });
        }
        // A signature of no creation time is as old as can be (GnuPG reads its time as 0).
        let signed = signature.created().map_or(0, |at| at.as_secs());
        if signed < self.created.as_secs() {
            let (signed, created) = (at(signed.into()), at(self.created.as_secs().into()));
            return Err(Refusal::SignedBeforeKey { key, principals, subkey, signed, created });
        }
        if !self.may_sign {
            return Err(Refusal::KeyMayNotSign { key, principals, subkey });
        }
        if !self.verified {
            return Err(Refusal::BadSignature { key, principals });
        }
        let now = jiff::Timestamp::now();
        // Expired now, whenever it signed.
        if let Some(at) = self.expires.filter(|expires| *expires <= now) {
            return Err(Refusal::KeyExpired { key, principals, at });
        }
        let lasts = signature.signature_expiration_time().map(|lasts| lasts.as_secs()).filter(|secs| *secs > 0);
        match lasts.map(|lasts| at(i64::from(signed) + i64::from(lasts))) {
            Some(at) if at <= now => Err(Refusal::SignatureExpired { key, principals, at }),
            _ => Ok(Signer { principals, key }),
        }
    }
}

/// The digests GnuPG 2.2 checks signatures made with (`openpgp_md_test_algo`), less MD5, which it
/// refuses as weak (unless told `--allow-weak-digest-algos`); SHA-3 it does not know.
const DIGESTS: [HashAlgorithm; 6] = [
    HashAlgorithm::Sha1,
    HashAlgorithm::Ripemd160,
    HashAlgorithm::Sha224,
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

/// Whether a key of `algorithm` may sign, as GnuPG 2.2 reads it (`g10/getkey.c`): by `flags`,
/// those of its newest self-signature or binding, unless the algorithm only encrypts; with no
/// key flags, by what the algorithm can do (`openpgp_pk_algo_usage`).
fn may_sign(algorithm: PublicKeyAlgorithm, flags: Option<&KeyFlags>) -> bool {
    use PublicKeyAlgorithm::*;
    match flags {
        Some(flags) => flags.sign() && !matches!(algorithm, RSAEncrypt | ECDH | ElgamalEncrypt),
        None => matches!(algorithm, RSA | RSASign | DSA | ECDSA | EdDSALegacy),
    }
}

/// Whether `subkey` may sign, by the newest binding `primary` made of it (`bindings`, the
/// subkey's signatures); a subkey that `primary` never bound may not.
pub(crate) fn subkey_may_sign(primary: &impl KeyDetails, subkey: &impl KeyDetails, bindings: &[Signature]) -> bool {
    let newest = newest_own(primary, bindings, &[SignatureType::SubkeyBinding]);
    newest.is_some_and(|binding| may_sign(subkey.algorithm(), key_flags(binding).as_ref()))
}

/// The key flags that say what `key`'s primary key may do, as GnuPG 2.2 takes them
/// (`merge_selfsigs_main`): those of its newest direct-key self-signature, or else of the newest
/// of its user IDs' newest self-certifications that carries key flags.
fn primary_key_flags(key: &SignedPublicKey) -> Option<KeyFlags> {
    let direct = newest_own(key, &key.details.direct_signatures, &[SignatureType::Key]);
    direct.and_then(key_flags).or_else(|| {
        let newest_per_user =
            key.details.users.iter().filter_map(|user| newest_own(key, &user.signatures, &CERTIFICATIONS));
        let flagged = newest_per_user.filter_map(|signature| Some((signature.created()?, key_flags(signature)?)));
        flagged.max_by_key(|(created, _)| created.as_secs()).map(|(_, flags)| flags)
    })
}

/// The key flags subpacket of `signature`'s hashed area; None when it has none (an empty one is
/// flags that allow nothing).
fn key_flags(signature: &Signature) -> Option<KeyFlags> {
    signature.config()?.hashed_subpackets().find_map(|subpacket| match &subpacket.data {
        SubpacketData::KeyFlags(flags) => Some(flags.clone()),
        _ => None,
    })
}

/// `seconds` since the epoch (what an OpenPGP time of 32 bits always is).
fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(seconds).unwrap_or_default()
}

/// When a key made at `created` expires, by the newest of `signatures` of the types `kinds`
/// that `key`'s primary key made itself (its self-certifications of user IDs or direct-key
/// signature, or a subkey's binding): their key expiration time, none or zero for never. A key's
/// expiry is changed by a newer self-signature (`gpg --quick-set-expire`).
fn expiry<'s>(
    key: &impl KeyDetails,
    created: pgp::types::Timestamp,
    signatures: impl IntoIterator<Item = &'s Signature>,
    kinds: &[SignatureType],
) -> Option<jiff::Timestamp> {
    let newest = newest_own(key, signatures, kinds)?;
    let lasts = newest.key_expiration_time().map(|d| d.as_secs()).filter(|secs| *secs > 0)?;
    Some(at(i64::from(created.as_secs()) + i64::from(lasts)))
}

/// The newest of `signatures` of the types `kinds` that `key`'s primary key made.
fn newest_own<'s>(
    key: &impl KeyDetails,
    signatures: impl IntoIterator<Item = &'s Signature>,
    kinds: &[SignatureType],
) -> Option<&'s Signature> {
    let own =
        |signature: &&Signature| signature.typ().is_some_and(|typ| kinds.contains(&typ)) && issued_by(signature, key);
    signatures.into_iter().filter(own).max_by_key(|s| s.created().map(|t| t.as_secs()))
}

/// Whether `key`'s primary key issued `signature`.
fn issued_by(signature: &Signature, key: &impl KeyDetails) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_may_sign_by_its_flags_unless_its_algorithm_only_encrypts_and_without_flags_by_its_algorithm() {
        let mut sign = KeyFlags::default();
        sign.set_sign(true);
        let mut encrypt = KeyFlags::default();
        encrypt.set_encrypt_comms(true);
        encrypt.set_encrypt_storage(true);
        let none = KeyFlags::default();
        use PublicKeyAlgorithm::*;
        let cases = [
            (EdDSALegacy, Some(&sign), true),
            (RSA, Some(&sign), true),
            (RSA, Some(&encrypt), false),
            // Flags that allow nothing are not missing flags.
            (RSA, Some(&none), false),
            // An algorithm that only encrypts cannot sign, whatever its flags say.
            (RSAEncrypt, Some(&sign), false),
            (ECDH, Some(&sign), false),
            (RSA, None, true),
            (RSASign, None, true),
            (EdDSALegacy, None, true),
            (DSA, None, true),
            (RSAEncrypt, None, false),
            (ECDH, None, false),
            // GnuPG 2.2 does not know RFC 9580's algorithms: usage only by their flags.
            (Ed25519, None, false),
            (Ed25519, Some(&sign), true),
        ];
        for (algorithm, flags, expected) in cases {
            assert_eq!(may_sign(algorithm, flags), expected, "{algorithm:?} {flags:?}");
        }
    }
}
