//! A test-only signer in cosign's keyed format (`cosign sign --key`), for the tests of image and
//! OCI chart signatures: cosign cannot be installed from this project's registries. What it
//! writes is checked against a signature cosign made (weaver-verify's `cosign` tests): the same
//! payload, byte for byte, and a signature the same verifier takes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An ECDSA P-256 key, as `cosign generate-key-pair` makes one.
pub struct TestSigner {
    key: SigningKey,
}

impl TestSigner {
    /// The key derived from `seed`: the same seed, the same key.
    pub fn new(seed: &str) -> TestSigner {
        let scalar = Sha256::digest(seed.as_bytes());
        TestSigner { key: SigningKey::from_slice(&scalar).expect("a sha256 is a P-256 scalar") }
    }

    /// A key of its own.
    pub fn generate() -> TestSigner {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        TestSigner::new(&format!("{}-{}", std::process::id(), nanos.as_nanos()))
    }

    /// The public key as `cosign.pub` holds it.
    pub fn public_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }

    /// cosign's simple signing payload for the image `reference` (`registry/repository`) at
    /// `digest`, as cosign writes it.
    pub fn payload(&self, reference: &str, digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    /// The annotation's value: the ASN.1 DER signature over `payload` (SHA-256), base64.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.key.sign(payload);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// The config blob of a signature manifest, as cosign writes it for `payloads` (their digests).
pub fn signature_config(payload_digests: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": payload_digests},
        "config": {}
    }))
    .expect("JSON")
}

/// The manifest pushed at `sha256-HEX.sig`: the config (its digest and size), and a layer per
/// signature: the payload's digest and size, and the signature in its annotation.
pub fn signature_manifest(config: (&str, usize), layers: &[(String, usize, String)]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.1, "digest": config.0},
        "layers": layers.iter().map(|(digest, size, signature)| json!({
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": size,
            "digest": digest,
            "annotations": {"dev.cosignproject.cosign/signature": signature}
        })).collect::<Vec<_>>()
    })
}
