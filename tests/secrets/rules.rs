//! `.sops.yaml` creation rules and `--age` overrides.

use std::path::Path;

use weaver_secrets::{CreationRules, SecretsError, Selector, encryption_settings};

use super::common::key_pair;

#[test]
fn first_matching_rule_relative_to_the_config_directory() {
    let (_, a) = key_pair();
    let (_, b) = key_pair();
    let (_, c) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("secrets/.sops.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "creation_rules:\n  - path_regex: ^prod\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: >-\n      {a},\n      {b}\n\
             \x20 - path_regex: \\.yaml$\n    age: [{c}]\n    mac_only_encrypted: true\n\
             destination_rules: []\nstores: {{yaml: {{indent: 2}}}}\n"
        ),
    )
    .unwrap();
    let rules = CreationRules::load(&config).unwrap().unwrap();
    let prod = encryption_settings(&dir.path().join("secrets/prod.yaml"), Some(&rules), &[]).unwrap();
    assert_eq!(prod.recipients, [a.clone(), b.clone()]);
    assert!(matches!(&prod.selector, Selector::EncryptedRegex(r) if r.as_str() == "^(data|stringData)$"));
    assert!(!prod.mac_only_encrypted);
    let dev = encryption_settings(&dir.path().join("secrets/dev.yaml"), Some(&rules), &[]).unwrap();
    assert_eq!(dev.recipients, std::slice::from_ref(&c));
    assert!(matches!(&dev.selector, Selector::UnencryptedSuffix(s) if s == "_unencrypted"));
    assert!(dev.mac_only_encrypted);
    // --age replaces the rule's recipients (comma-separated lists allowed); the selector stays.
    let overridden =
        encryption_settings(&dir.path().join("secrets/prod.yaml"), Some(&rules), &[format!("{c}, {a}"), a.clone()])
            .unwrap();
    assert_eq!(overridden.recipients, [c.clone(), a.clone()]);
    assert!(matches!(overridden.selector, Selector::EncryptedRegex(_)));
    // No rule matches a JSON file.
    let err = encryption_settings(&dir.path().join("secrets/x.json"), Some(&rules), &[]).unwrap_err();
    assert!(matches!(err, SecretsError::NoRecipients { .. }));
    assert!(err.to_string().contains("no creation rule in"), "{err}");
}

#[test]
fn missing_config_and_overrides() {
    assert!(CreationRules::load(Path::new("/nonexistent/.sops.yaml")).unwrap().is_none());
    let err = encryption_settings(Path::new("secrets/a.yaml"), None, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secrets/a.yaml: no age recipients to encrypt to: no --age given and no .sops.yaml creation rules"
    );
    let err = encryption_settings(Path::new("secrets/a.yaml"), None, &["age1notakey".into()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid age recipient `age1notakey` (from --age): expected an age1… X25519 public key"
    );
}

#[test]
fn invalid_rules_are_errors() {
    let (_, a) = key_pair();
    let cases = [
        (format!("creation_rules:\n  - age: {a}\n    pgp: FINGERPRINT\n"), "creation rule 1: it uses `pgp`"),
        (format!("creation_rules:\n  - age: {a}\n    encrypted_regex: a\n    unencrypted_suffix: _u\n"), "only one of"),
        ("creation_rules:\n  - age: age1bad\n".to_owned(), "invalid age recipient `age1bad`"),
        (
            format!("creation_rules:\n  - path_regex: '('\n    age: {a}\n"),
            "path_regex is not a valid regular expression",
        ),
        (format!("creation_rules:\n  - age: {a}\n    encrypted_comment_regex: x\n"), "not supported by weaver"),
    ];
    for (text, expected) in cases {
        let err = CreationRules::parse(Path::new("secrets/.sops.yaml"), &text).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("secrets/.sops.yaml: "), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    assert!(CreationRules::parse(Path::new(".sops.yaml"), "").is_ok());
    let err = weaver_core::error::Error::from(
        CreationRules::parse(Path::new(".sops.yaml"), "creation_rules: [\n").unwrap_err(),
    );
    assert!(err.to_string().starts_with(".sops.yaml:1:17: invalid creation rules: "), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
    let text = "creation_rules: []\ncreation_rules: []\n";
    let err = weaver_core::error::Error::from(CreationRules::parse(Path::new(".sops.yaml"), text).unwrap_err());
    assert_eq!(
        err.to_string(),
        ".sops.yaml:2:1: invalid creation rules: duplicate key `creation_rules` (first defined at line 1)"
    );
}
