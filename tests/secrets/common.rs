use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use weaver_secrets::{EncryptionSettings, Identities, IdentitySources, Selector};

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sops-age")
}

/// A fresh key pair: (secret key text, public key).
pub fn key_pair() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    (identity.to_string().expose_secret().to_owned(), identity.to_public().to_string())
}

/// Identities from key text, as if given in SOPS_AGE_KEY.
pub fn identities(secret_keys: &str) -> Identities {
    IdentitySources { sops_key: Some(secret_keys.to_owned()), ..Default::default() }.load().unwrap()
}

pub fn settings(recipients: &[&str], selector: Selector) -> EncryptionSettings {
    EncryptionSettings {
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        selector,
        mac_only_encrypted: false,
    }
}

/// YAML parsed by an independent parser, as JSON.
pub fn yaml_value(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap()
}
