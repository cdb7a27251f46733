//! The public sops+age vectors decrypt to their expected plaintext.

use std::path::Path;

use weaver_secrets::{IdentitySources, SopsFile, decrypt_file};

use super::common::{vectors, yaml_value};

fn check(dir: &str, encrypted: &str, key: &str, expected: &str) {
    let dir = vectors().join(dir);
    let ids = IdentitySources { flag: Some(dir.join(key)), ..Default::default() }.load().unwrap();
    let plain = decrypt_file(&dir.join(encrypted), &ids).unwrap();
    let expected = yaml_value(&std::fs::read_to_string(dir.join(expected)).unwrap());
    assert_eq!(plain.to_json(), expected);
}

#[test]
fn flux_vector_decrypts() {
    check("flux-kustomize-controller", "secret.age.yaml", "age.txt", "secret.expected.yaml");
}

#[test]
fn helm_secrets_vector_decrypts() {
    check("helm-secrets", "secrets.age.yaml", "key.txt", "secrets.expected.yaml");
}

/// Re-encrypting an unchanged vector keeps every value's ciphertext byte for byte (the stash).
#[test]
fn reencrypting_a_vector_keeps_value_ciphertexts() {
    for (dir, file, key) in
        [("flux-kustomize-controller", "secret.age.yaml", "age.txt"), ("helm-secrets", "secrets.age.yaml", "key.txt")]
    {
        let dir = vectors().join(dir);
        let ids = IdentitySources { flag: Some(dir.join(key)), ..Default::default() }.load().unwrap();
        let original = std::fs::read_to_string(dir.join(file)).unwrap();
        let opened = SopsFile::parse(&dir.join(file), &original).unwrap().decrypt(&ids).unwrap();
        let again = opened.reencrypt(opened.plaintext()).unwrap();
        let values = |text: &str| -> Vec<String> {
            text.lines()
                .take_while(|l| !l.starts_with("sops:"))
                .filter_map(|l| l.split_once("ENC[").map(|(_, enc)| enc.to_owned()))
                .collect()
        };
        assert!(!values(&original).is_empty());
        assert_eq!(values(&again), values(&original), "{}", dir.display());
        // The new file decrypts, with a new MAC over the same values.
        let path = Path::new("again.yaml");
        let reopened = SopsFile::parse(path, &again).unwrap().decrypt(&ids).unwrap();
        assert_eq!(reopened.plaintext().to_json(), opened.plaintext().to_json());
    }
}
