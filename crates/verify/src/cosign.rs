//! cosign's keyed signatures of OCI artifacts (images, OCI charts), in the format `cosign sign
//! --key` writes to a registry (cosign 1 and 2; cosign 3 with `--new-bundle-format=false`): the
//! artifact `sha256:HEX` is signed by the manifest at the tag `sha256-HEX.sig` of its
//! repository, each layer of which is a "simple signing" payload (JSON naming the digest
//! signed, `critical.image.docker-manifest-digest`) with its ECDSA P-256 signature (ASN.1 DER,
//! base64, over the payload's bytes with SHA-256) in the annotation
//! `dev.cosignproject.cosign/signature`. [`CosignKeys`] are the public keys trusted, as
//! `cosign generate-key-pair` writes `cosign.pub`.
//!
//! What cosign's `verify --key` also reads and this does not: the transparency log's bundle
//! (`dev.sigstore.cosign/bundle`), as `--insecure-ignore-tlog` skips it; certificates of
//! keyless signing; the new bundle format (OCI referrers).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use p256::pkcs8::der::Decode;
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{KeyName, ParseError, Signer};

/// A layer's media type: a simple signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation of a layer that holds its payload's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of an image signature's payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The tag whose manifest holds the signatures of `digest` (`sha256:HEX` → `sha256-HEX.sig`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// Whether `tag` is one of cosign's own (`sha256-HEX.sig`, `.att`, `.sbom`): a signature,
/// attestation or SBOM of an image, never an image to run.
pub fn is_cosign_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else { return false };
    let Some((hex, kind)) = rest.split_once('.') else { return false };
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(kind, "sig" | "att" | "sbom")
}

/// The ECDSA P-256 public keys a signature may be made by.
#[derive(Debug, Clone, Default)]
pub struct CosignKeys {
    keys: Vec<(VerifyingKey, KeyName, String)>,
}

/// Curves and algorithms by their object identifiers, to name a key that is not P-256.
const KINDS: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.7", "ECDSA P-256"),
    ("1.3.132.0.34", "ECDSA P-384"),
    ("1.3.132.0.35", "ECDSA P-521"),
    ("1.2.840.113549.1.1.1", "RSA"),
    ("1.3.101.112", "ED25519"),
];

impl CosignKeys {
    /// PEM public keys (`-----BEGIN PUBLIC KEY-----`, one or several), named in messages as
    /// `name` (the file they came from). A private key, a key of another kind than ECDSA P-256
    /// or a block that cannot be read is an error naming its line, never quoting it.
    pub fn parse(name: &str, text: &str) -> Result<CosignKeys, ParseError> {
        let mut keys = Vec::new();
        let mut lines = text.lines().enumerate();
        while let Some((index, line)) = lines.next() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let error = |message: &str| ParseError { line: index + 1, column: 1, message: message.to_string() };
            let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
                return Err(error("expected `-----BEGIN PUBLIC KEY-----` (a PEM public key, as cosign.pub holds one)"));
            };
            if label.contains("PRIVATE KEY") {
                return Err(error(
                    "this is a private key: give the public key (`cosign public-key --key cosign.key`, or cosign.pub)",
                ));
            }
            if label != "PUBLIC KEY" {
                return Err(error("a PEM block of another kind: expected `-----BEGIN PUBLIC KEY-----`"));
            }
            let end = "-----END PUBLIC KEY-----";
            let mut body = String::new();
            let mut ended = false;
            for (_, line) in lines.by_ref() {
                if line.trim() == end {
                    ended = true;
                    break;
                }
                body.push_str(line.trim());
            }
            if !ended {
                return Err(error(&format!("the key has no `{end}` line")));
            }
            let der = STANDARD.decode(&body).map_err(|_| error("the key's base64 cannot be read"))?;
            let spki = SubjectPublicKeyInfoRef::from_der(&der)
                .map_err(|_| error("the key cannot be read as a public key (SubjectPublicKeyInfo)"))?;
            let oid = spki
                .algorithm
                .parameters_oid()
                .ok()
                .filter(|_| spki.algorithm.oid.to_string() == "1.2.840.10045.2.1")
                .unwrap_or(spki.algorithm.oid)
                .to_string();
            let kind = KINDS.iter().find(|(id, _)| *id == oid).map_or("an unknown kind", |(_, kind)| kind);
            if kind != "ECDSA P-256" {
                return Err(error(&format!(
                    "the key is {kind}: cosign's keys (`cosign generate-key-pair`) are ECDSA P-256, the only kind checked"
                )));
            }
            let key =
                VerifyingKey::from_public_key_der(&der).map_err(|_| error("the key is not a point of curve P-256"))?;
            let fingerprint = format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&der)));
            keys.push((key, KeyName { kind: "ECDSA P-256".into(), fingerprint }, name.to_string()));
        }
        Ok(CosignKeys { keys })
    }

    /// These keys and `other`'s (several files of keys, each naming its own).
    pub fn with(mut self, other: CosignKeys) -> CosignKeys {
        self.keys.extend(other.keys);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What caches a verdict by: the keys, each with the file that names it (the signer named).
    pub fn id(&self) -> String {
        self.keys.iter().map(|(_, key, file)| format!("{file}={}", key.fingerprint)).collect::<Vec<_>>().join(",")
    }

    /// Checks one layer of a signature manifest: `signature` (the annotation's base64) over
    /// `payload` (the layer's blob) by one of the keys, then that the payload signs `digest`.
    /// The payload is read only once a key vouches for it.
    pub fn verify(&self, payload: &[u8], signature: &str, digest: &str) -> Result<Signer, CosignRefusal> {
        let compact: String = signature.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes =
            STANDARD.decode(compact).map_err(|_| CosignRefusal::Malformed("its signature is not base64".into()))?;
        // ASN.1 DER, as cosign writes and reads it.
        let signature = Signature::from_der(&bytes).map_err(|_| {
            CosignRefusal::Malformed("its signature is not an ECDSA P-256 signature (ASN.1 DER)".into())
        })?;
        let Some((_, key, name)) = self.keys.iter().find(|(key, _, _)| key.verify(payload, &signature).is_ok()) else {
            return Err(CosignRefusal::NoKeyHolds { keys: self.keys.iter().map(|(_, key, _)| key.clone()).collect() });
        };
        let signer = Signer { principals: vec![name.clone()], key: key.clone() };
        let payload: Payload = serde_json::from_slice(payload).map_err(|_| {
            CosignRefusal::Malformed(format!("its payload, signed by {signer}, is not cosign's simple signing JSON"))
        })?;
        if payload.critical.kind != PAYLOAD_TYPE {
            return Err(CosignRefusal::Malformed(format!(
                "its payload, signed by {signer}, is of type `{}`, not `{PAYLOAD_TYPE}`",
                shown(&payload.critical.kind)
            )));
        }
        let signed = payload.critical.image.docker_manifest_digest;
        if signed != digest {
            return Err(CosignRefusal::OtherDigest { signer, signed: shown(&signed) });
        }
        Ok(signer)
    }
}

/// Why a signature of an OCI artifact is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CosignRefusal {
    /// No signature manifest (`sha256-HEX.sig`), or one without a simple signing layer.
    Unsigned,
    /// A signature or payload that cannot be read.
    Malformed(String),
    /// A signature manifest or payload larger than its bound (what it is, and the bound): not
    /// read, since a registry is not trusted to bound what it serves.
    Oversized(String),
    /// The signature holds for none of the keys: another key made it, or the payload changed
    /// after (ECDSA cannot tell which).
    NoKeyHolds { keys: Vec<KeyName> },
    /// A trusted key signed another digest: a signature copied from another artifact.
    OtherDigest { signer: Signer, signed: String },
}

impl CosignRefusal {
    /// As a tag passed over is listed, one line for every tag so refused.
    pub fn reason(&self) -> &'static str {
        match self {
            CosignRefusal::Unsigned => "not signed (no cosign signature, sha256-DIGEST.sig)",
            CosignRefusal::Malformed(_) => "its cosign signature cannot be read",
            CosignRefusal::Oversized(_) => "its cosign signature is larger than a signature's bounds (not read)",
            CosignRefusal::NoKeyHolds { .. } => {
                "its cosign signature holds for no key of verify.publicKeyRef (another key, or changed after signing)"
            }
            CosignRefusal::OtherDigest { .. } => "its cosign signature is another image's (it names another digest)",
        }
    }
}

impl fmt::Display for CosignRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CosignRefusal::Unsigned => f.write_str("it is not signed: its repository has no cosign signature for it"),
            CosignRefusal::Malformed(why) => write!(f, "its cosign signature cannot be read: {why}"),
            CosignRefusal::Oversized(why) => write!(f, "its cosign signature is not read: {why}"),
            CosignRefusal::NoKeyHolds { keys } => write!(
                f,
                "its cosign signature holds for no trusted key ({}): another key signed it, or it changed after it was signed",
                keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            CosignRefusal::OtherDigest { signer, signed } => {
                write!(f, "its cosign signature by {signer} is for {signed}: a signature of another artifact, copied")
            }
        }
    }
}

/// A payload's text as a message shows it: escaped, and at most 100 characters.
fn shown(text: &str) -> String {
    let escaped: String = text.escape_debug().take(100).collect();
    if escaped.len() < text.escape_debug().count() { format!("{escaped}…") } else { escaped }
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_test_support::cosign::TestSigner;

    // A signature cosign made (`cosign sign --key`) of registry-testing.svc.lan/busybox, with
    // its payload and public key, as sigstore-rs keeps them for its own tests.
    const COSIGN_PUB: &str = include_str!("../testdata/cosign.pub");
    const COSIGN_PAYLOAD: &[u8] = include_bytes!("../testdata/cosign-payload.json");
    const COSIGN_SIGNATURE: &str = include_str!("../testdata/cosign-payload.sig");
    const SIGNED: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";

    #[test]
    fn a_signature_cosign_made_passes_with_its_key_and_for_its_digest_only() {
        let keys = CosignKeys::parse("cosign.pub", COSIGN_PUB).expect("cosign's public key");
        let signer = keys.verify(COSIGN_PAYLOAD, COSIGN_SIGNATURE, SIGNED).expect("cosign's signature holds");
        assert_eq!(signer.principals, ["cosign.pub"]);
        assert_eq!(signer.key.kind, "ECDSA P-256");
        assert!(signer.to_string().starts_with("cosign.pub (ECDSA P-256 key SHA256:"), "{signer}");

        let other = SIGNED.replace("f3cf", "0000");
        let refused = keys.verify(COSIGN_PAYLOAD, COSIGN_SIGNATURE, &other).unwrap_err();
        assert!(matches!(&refused, CosignRefusal::OtherDigest { signed, .. } if signed == SIGNED), "{refused}");
        let changed = String::from_utf8(COSIGN_PAYLOAD.to_vec()).unwrap().replace("f3cf", "0000");
        let refused = keys.verify(changed.as_bytes(), COSIGN_SIGNATURE, &other).unwrap_err();
        assert!(matches!(refused, CosignRefusal::NoKeyHolds { .. }), "{refused}");
        assert!(refused.to_string().contains(&signer.key.fingerprint), "{refused}");
        let refused = keys.verify(COSIGN_PAYLOAD, "not base64!", SIGNED).unwrap_err();
        assert_eq!(refused, CosignRefusal::Malformed("its signature is not base64".into()));
    }

    #[test]
    fn the_test_signer_writes_what_cosign_writes_and_cosigns_key_does_not_hold_for_it() {
        let signer = TestSigner::generate();
        let payload = signer.payload("registry-testing.svc.lan/busybox", SIGNED);
        assert_eq!(payload, COSIGN_PAYLOAD, "the payload is byte for byte cosign's");
        let signature = signer.sign(&payload);
        let own = CosignKeys::parse("test.pub", &signer.public_pem()).unwrap();
        assert_eq!(own.verify(&payload, &signature, SIGNED).unwrap().principals, ["test.pub"]);
        let cosigns = CosignKeys::parse("cosign.pub", COSIGN_PUB).unwrap();
        assert!(matches!(cosigns.verify(&payload, &signature, SIGNED), Err(CosignRefusal::NoKeyHolds { .. })));
        // Either key of a file of both passes.
        let both = CosignKeys::parse("both.pub", &format!("{COSIGN_PUB}\n{}", signer.public_pem())).unwrap();
        assert!(both.verify(COSIGN_PAYLOAD, COSIGN_SIGNATURE, SIGNED).is_ok());
        assert!(both.verify(&payload, &signature, SIGNED).is_ok());
        // A raw r||s signature is not cosign's: refused as unreadable, as cosign refuses it.
        let raw = STANDARD.encode(Signature::from_der(&STANDARD.decode(&signature).unwrap()).unwrap().to_bytes());
        assert!(matches!(own.verify(&payload, &raw, SIGNED), Err(CosignRefusal::Malformed(_))));
    }

    #[test]
    fn keys_that_are_not_cosigns_are_named_by_line_and_never_quoted() {
        let private =
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        let err = CosignKeys::parse("k", private).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("private key") && !err.message.contains("c2VjcmV0"), "{err}");
        // An ED25519 SPKI (`openssl genpkey -algorithm ed25519 | openssl pkey -pubout`).
        let ed25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let err = CosignKeys::parse("k", &format!("\n{ed25519}")).unwrap_err();
        assert_eq!((err.line, err.message.contains("the key is ED25519")), (2, true), "{err}");
        let err = CosignKeys::parse("k", "ssh-ed25519 AAAA").unwrap_err();
        assert!(err.message.contains("expected `-----BEGIN PUBLIC KEY-----`"), "{err}");
        let err = CosignKeys::parse("k", "-----BEGIN PUBLIC KEY-----\nAAAA\n").unwrap_err();
        assert!(err.message.contains("no `-----END PUBLIC KEY-----` line"), "{err}");
        assert!(CosignKeys::parse("k", "\n").unwrap().is_empty());
        // No part of a file given by mistake is in the error: a PEM label, a line, a body.
        let mistakes = [
            "-----BEGIN SECRET hunter2-----\nAAAA\n-----END SECRET hunter2-----\n",
            "password: hunter2-SECRET-TOKEN-123\n",
            "-----BEGIN PUBLIC KEY-----\nSECRET-hunter2!\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nU0VDUkVULWh1bnRlcjI=\n-----END PUBLIC KEY-----\n",
        ];
        for text in mistakes {
            let err = CosignKeys::parse("k", text).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("SECRET") && !shown.contains("hunter2"), "{text}: {shown}");
            assert_eq!((err.line, err.column), (1, 1), "{text}: {shown}");
        }
    }

    #[test]
    fn cosigns_own_tags_are_told_from_images() {
        let hex = &SIGNED["sha256:".len()..];
        assert_eq!(signature_tag(SIGNED), format!("sha256-{hex}.sig"));
        for kind in ["sig", "att", "sbom"] {
            assert!(is_cosign_tag(&format!("sha256-{hex}.{kind}")));
        }
        for tag in ["sha256-abc.sig", "1.2.3", &format!("sha256-{hex}.tar"), &format!("sha256-{hex}")] {
            assert!(!is_cosign_tag(tag), "{tag}");
        }
    }
}
