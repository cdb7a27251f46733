//! Signing what weaver commits itself (the controller's promotions and image updates), so that an
//! environment that verifies its commits accepts them: git's SSH format (an SSHSIG in the
//! namespace `git`, as `gpg.format=ssh` makes) or an OpenPGP detached signature (git's default),
//! armored for a commit's `gpgsig` header.

use std::fmt;
use std::io::Cursor;

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey, SignedSecretSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use crate::openpgp::subkey_may_sign;
use crate::{GIT_NAMESPACE, KeyName, Keyring, TrustList, describe};

/// A private key commits are signed with. Its `Debug` names the key, never its secret.
pub struct SigningKey {
    kind: Kind,
    name: KeyName,
}

enum Kind {
    Ssh(Box<PrivateKey>),
    OpenPgp(Box<SignedSecretKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.name)
    }
}

impl SigningKey {
    /// An OpenSSH private key (`ssh-keygen`'s file) or an armored OpenPGP secret key (`gpg
    /// --armor --export-secret-keys`), without a passphrase: where it is kept (a Secret)
    /// protects it. The error says what was expected, never a part of the text.
    pub fn parse(text: &str) -> Result<SigningKey, String> {
        if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return openpgp(text);
        }
        if !text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            return Err("it is no OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`) or armored OpenPGP \
                        secret key (`-----BEGIN PGP PRIVATE KEY BLOCK-----`)"
                .into());
        }
        let key = PrivateKey::from_openssh(text.trim()).map_err(|_| "the OpenSSH private key cannot be read")?;
        if key.is_encrypted() {
            return Err("the OpenSSH private key is protected by a passphrase, which weaver cannot be given: \
                        remove it (`ssh-keygen -p -N ''`); the Secret protects the key"
                .into());
        }
        let public = key.public_key().to_openssh().map_err(|_| "the OpenSSH key's public half cannot be written")?;
        let name = describe(key.public_key());
        let signing = SigningKey { kind: Kind::Ssh(Box::new(key)), name };
        signing.checked_by(TrustList::parse(&format!("weaver {public}")).map_err(|e| e.message)?)
    }

    /// This key, once a signature it makes passes a trust list of its own public half: a key
    /// that cannot sign, or whose signatures weaver would refuse (a kind it cannot check, an
    /// expired or revoked OpenPGP key), says so now, not at the next reader of its commits.
    fn checked_by(self, own: TrustList) -> Result<SigningKey, String> {
        let commit = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
        let signature = self.sign(commit)?;
        let now = jiff::Timestamp::now();
        match own.verify(GIT_NAMESPACE, Some(signature.as_bytes()), commit, now) {
            Ok(_) => Ok(self),
            Err(refusal) => Err(format!("what the key {} signs would be refused: {refusal}", self.name)),
        }
    }

    /// The key, as messages name it.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The armored signature of `commit` (a commit object without its `gpgsig` header).
    pub fn sign(&self, commit: &[u8]) -> Result<String, String> {
        match &self.kind {
            Kind::Ssh(key) => key
                .sign(GIT_NAMESPACE, HashAlg::Sha512, commit)
                .and_then(|signature| signature.to_pem(LineEnding::LF))
                .map_err(|err| format!("the SSH key {} cannot sign: {err}", self.name)),
            Kind::OpenPgp(key) => {
                let may_sign = |sub: &&SignedSecretSubKey| subkey_may_sign(&key.primary_key, &sub.key, &sub.signatures);
                let signed = match key.secret_subkeys.iter().rev().find(may_sign) {
                    Some(subkey) => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &subkey.key,
                        &Password::empty(),
                        HashAlgorithm::Sha256,
                        commit,
                    ),
                    None => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &key.primary_key,
                        &Password::empty(),
                        HashAlgorithm::Sha256,
                        commit,
                    ),
                };
                signed
                    .and_then(|signature| signature.to_armored_string(ArmorOptions::default()))
                    .map_err(|err| format!("the OpenPGP key {} cannot sign: {err}", self.name))
            }
        }
    }
}

fn openpgp(text: &str) -> Result<SigningKey, String> {
    let (key, _) = SignedSecretKey::from_armor_single(Cursor::new(text.as_bytes()))
        .map_err(|_| "the OpenPGP secret key cannot be read")?;
    let name = KeyName { kind: "OpenPGP".into(), fingerprint: format!("{:X}", key.fingerprint()) };
    let own = TrustList::of_keyring(Keyring::of(key.to_public_key()));
    let signing = SigningKey { kind: Kind::OpenPgp(Box::new(key)), name };
    signing.sign(b"").map_err(|_| {
        format!(
            "the OpenPGP key {} cannot sign: it is protected by a passphrase (remove it: `gpg --passwd`, an empty \
             one), or no key of it may sign",
            signing.name
        )
    })?;
    signing.checked_by(own)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{Refusal, TrustList};

    // Test-only keys, made for these tests (`ssh-keygen -t ed25519 -N ''`, `gpg --quick-gen-key
    // … ed25519 sign`): they sign nothing anywhere else.
    const SSH_KEY: &str = include_str!("../testdata/signer_ed25519");
    const SSH_PUBLIC: &str = include_str!("../testdata/signer_ed25519.pub");
    const OPENPGP_KEY: &str = include_str!("../testdata/signer_openpgp.sec.asc");
    const OPENPGP_PUBLIC: &str = include_str!("../testdata/signer_openpgp.pub.asc");
    const ENCRYPTED_SSH_KEY: &str = include_str!("../testdata/encrypted_ed25519");
    const P384_KEY: &str = include_str!("../testdata/signer_p384");
    const RSA_1024_KEY: &str = include_str!("../testdata/signer_rsa1024");
    /// The expired key of `crate::tests`' expiry case, its secret half.
    const EXPIRED_OPENPGP_KEY: &str = include_str!("../testdata/expired_openpgp.sec.asc");

    const COMMIT: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
                            author Bot <bot@example.com> 1700000000 +0000\n\
                            committer Bot <bot@example.com> 1700000000 +0000\n\npromote\n";

    fn check(trust: &TrustList, signature: &str, commit: &[u8]) -> Result<crate::Signer, Refusal> {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        trust.verify(GIT_NAMESPACE, Some(signature.as_bytes()), commit, at)
    }

    #[test]
    fn what_each_kind_of_key_signs_passes_a_trust_list_of_its_public_half_and_a_changed_commit_does_not() {
        let ssh_trust = TrustList::parse(&format!("bot@example.com {SSH_PUBLIC}")).unwrap();
        let openpgp_trust = TrustList::parse(OPENPGP_PUBLIC).unwrap();
        let both = ssh_trust.clone().with(openpgp_trust.clone());
        for (key, trust, kind) in [(SSH_KEY, &ssh_trust, "ED25519"), (OPENPGP_KEY, &openpgp_trust, "OpenPGP")] {
            let key = SigningKey::parse(key).expect("a signing key");
            assert_eq!(key.name().kind, kind);
            let signature = key.sign(COMMIT).expect("signed");
            let signer = check(trust, &signature, COMMIT).expect("accepted");
            assert_eq!(&signer.key, key.name());
            assert_eq!(check(&both, &signature, COMMIT).expect("accepted by the merged list").key, signer.key);
            let changed = [COMMIT, b"more"].concat();
            assert!(
                matches!(check(trust, &signature, &changed), Err(Refusal::BadSignature { .. })),
                "{kind}: a changed commit is refused"
            );
        }
        let ssh_signature = SigningKey::parse(SSH_KEY).unwrap().sign(COMMIT).unwrap();
        assert_eq!(
            check(&openpgp_trust, &ssh_signature, COMMIT),
            Err(Refusal::OtherFormat { signed: crate::Format::Ssh, trusted: crate::Format::OpenPgp })
        );
    }

    #[test]
    fn a_key_that_cannot_sign_is_refused_by_what_it_lacks_and_no_message_quotes_it() {
        let refused = |text: &str| SigningKey::parse(text).expect_err("refused");
        assert!(refused(ENCRYPTED_SSH_KEY).contains("passphrase"), "{}", refused(ENCRYPTED_SSH_KEY));
        assert!(refused(SSH_PUBLIC).contains("no OpenSSH private key"));
        // A key that cannot sign here, or whose signatures weaver would refuse, is refused.
        for key in [P384_KEY, RSA_1024_KEY] {
            assert!(refused(key).contains("cannot sign"), "{}", refused(key));
        }
        let expired = refused(EXPIRED_OPENPGP_KEY);
        assert!(
            expired.contains("would be refused: it is signed by OpenPGP 3EF3736B")
                && expired.contains("expired at 2020-01-02"),
            "{expired}"
        );
        let garbled = SSH_KEY.replace("AAAA", "ZZZZ");
        for text in [garbled.as_str(), &OPENPGP_KEY.replace("l", "L")] {
            let message = refused(text);
            let secret_lines = text.lines().filter(|line| line.len() > 20 && !line.starts_with("-----"));
            for line in secret_lines {
                assert!(!message.contains(line), "{message}");
            }
        }
        let key = SigningKey::parse(SSH_KEY).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.starts_with("SigningKey(ED25519 SHA256:") && !debug.contains("b3BlbnNzaC1rZXkt"), "{debug}");
    }
}
