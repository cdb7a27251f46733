//! Damaged, tampered, foreign and unreadable files: each a distinct error that names the file
//! and never shows a plaintext value.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use weaver_secrets::{Document, IdentitySources, SecretsError, Selector, SopsFile, decrypt_bytes, encrypt};

use super::common::{identities, key_pair, settings};

const PLAIN: &str = "api_token: s3cr3t-t0ken-value\nnested:\n    password: hunter2-long\n    port: 5432\nlist:\n    - first-item-secret\n";
const SECRETS: [&str; 4] = ["s3cr3t-t0ken-value", "hunter2-long", "5432", "first-item-secret"];

fn path() -> &'static Path {
    Path::new("secrets/prod.yaml")
}

fn fixture() -> (String, String, String) {
    let (secret, public) = key_pair();
    let plain = Document::parse(path(), PLAIN).unwrap();
    (encrypt(path(), &plain, &settings(&[&public], Selector::default())).unwrap(), secret, public)
}

fn decrypt(text: &str, secret_keys: &str) -> SecretsError {
    let err = decrypt_bytes(path(), text.as_bytes(), &identities(secret_keys)).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("secrets/prod.yaml: "), "{message}");
    for secret in SECRETS {
        assert!(!message.contains(secret), "plaintext in: {message}");
    }
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
    err
}

/// Replaces the base64 field `field` (`data`, `iv`, `tag`) of the value on the line starting
/// with `line_start` by `f(bytes)`.
fn tamper_field(text: &str, line_start: &str, field: &str, f: impl Fn(&mut Vec<u8>)) -> String {
    let line = text.lines().find(|l| l.trim_start().starts_with(line_start)).unwrap();
    let start = line.find(&format!("{field}:")).unwrap() + field.len() + 1;
    let end = start + line[start..].find(',').unwrap();
    let mut bytes = B64.decode(&line[start..end]).unwrap();
    f(&mut bytes);
    let new_line = format!("{}{}{}", &line[..start], B64.encode(bytes), &line[end..]);
    text.replace(line, &new_line)
}

#[test]
fn flipped_value_ciphertext_fails_its_integrity_check() {
    let (text, secret, _) = fixture();
    let tampered = tamper_field(&text, "password:", "data", |b| b[0] ^= 1);
    let err = decrypt(&tampered, &secret);
    assert!(matches!(&err, SecretsError::ValueIntegrity { key_path, .. } if key_path == "nested.password"), "{err}");
    assert!(err.to_string().contains("`nested.password` failed its integrity check"));
}

#[test]
fn value_moved_to_another_key_fails() {
    let (text, secret, _) = fixture();
    let enc = |key: &str| {
        text.lines().find(|l| l.trim_start().starts_with(key)).unwrap().split_once(": ").unwrap().1.to_owned()
    };
    let moved = text.replace(&enc("password:"), &enc("api_token:"));
    assert!(matches!(decrypt(&moved, &secret), SecretsError::ValueIntegrity { .. }));
}

#[test]
fn flipped_mac_is_unreadable() {
    let (text, secret, _) = fixture();
    let tampered = tamper_field(&text, "mac:", "data", |b| b[3] ^= 0x80);
    let err = decrypt(&tampered, &secret);
    assert!(matches!(err, SecretsError::MacUnreadable { .. }), "{err}");
    // Changing lastmodified (the MAC's additional data) is caught the same way.
    let line = text.lines().find(|l| l.contains("lastmodified:")).unwrap();
    let moved = text.replace(line, "    lastmodified: \"2020-01-01T00:00:00Z\"");
    assert!(matches!(decrypt(&moved, &secret), SecretsError::MacUnreadable { .. }));
}

#[test]
fn mac_mismatch_when_values_change_consistently() {
    // A value swapped for another validly encrypted value of the same path (here: an empty
    // string, which sops leaves unencrypted) passes value checks but not the MAC.
    let (text, secret, _) = fixture();
    let line = text.lines().find(|l| l.trim_start().starts_with("api_token:")).unwrap();
    let tampered = text.replace(line, "api_token: \"\"");
    let err = decrypt(&tampered, &secret);
    assert!(matches!(err, SecretsError::MacMismatch { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "secrets/prod.yaml: MAC mismatch: the file was modified after encryption or is corrupt"
    );
}

#[test]
fn flipped_data_key_block_is_reported_as_damaged() {
    let (text, secret, public) = fixture();
    // Flip one character of the last base64 line of the armored data key (the payload).
    let lines: Vec<&str> = text.lines().collect();
    let end = lines.iter().position(|l| l.contains("-----END AGE ENCRYPTED FILE-----")).unwrap();
    let last = lines[end - 1];
    let flipped_char = if last.trim_start().starts_with('A') { "B" } else { "A" };
    let indent = last.len() - last.trim_start().len();
    let new_last = format!("{}{}{}", &last[..indent], flipped_char, &last[indent + 1..]);
    let tampered = text.replace(last, &new_last);
    let err = decrypt(&tampered, &secret);
    match &err {
        SecretsError::DataKey { index: 0, recipient, .. } => assert_eq!(recipient, &public),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("sops.age[0].enc"));
}

#[test]
fn truncated_armor_is_reported_as_damaged() {
    let (text, secret, _) = fixture();
    let lines: Vec<&str> = text.lines().collect();
    let end = lines.iter().position(|l| l.contains("-----END AGE ENCRYPTED FILE-----")).unwrap();
    let truncated: Vec<&str> =
        lines.iter().enumerate().filter(|(i, _)| *i != end - 1 && *i != end).map(|(_, l)| *l).collect();
    let err = decrypt(&(truncated.join("\n") + "\n"), &secret);
    assert!(matches!(err, SecretsError::DataKey { index: 0, .. }), "{err}");
}

#[test]
fn bad_base64_names_the_key_path() {
    let (text, secret, _) = fixture();
    let line = text.lines().find(|l| l.trim_start().starts_with("- ENC[")).unwrap();
    let bad = line.replacen("data:", "data:!!", 1);
    let err = decrypt(&text.replace(line, &bad), &secret);
    assert!(matches!(&err, SecretsError::MalformedValue { key_path, .. } if key_path == "list[0]"), "{err}");
    assert!(err.to_string().contains("not valid base64"), "{err}");
}

#[test]
fn malformed_enc_and_hand_added_plaintext_name_the_key_path() {
    let (text, secret, _) = fixture();
    let line = text.lines().find(|l| l.trim_start().starts_with("api_token:")).unwrap();
    let err = decrypt(&text.replace(line, "api_token: ENC[AES256_GCM,data:abc]"), &secret);
    assert!(matches!(&err, SecretsError::MalformedValue { key_path, .. } if key_path == "api_token"), "{err}");
    let err = decrypt(&text.replace(line, "api_token: s3cr3t-t0ken-value"), &secret);
    assert!(err.to_string().contains("`api_token` is malformed: it is not encrypted"), "{err}");
    let short_iv = tamper_field(&text, "api_token:", "iv", |b| b.truncate(12));
    assert!(decrypt(&short_iv, &secret).to_string().contains("iv is 12 bytes, expected 32"));
}

#[test]
fn plain_yaml_is_not_a_sops_file() {
    let (_, secret, _) = fixture();
    let err = decrypt(PLAIN, &secret);
    assert!(matches!(err, SecretsError::NotSops { .. }));
    assert_eq!(
        err.to_string(),
        "secrets/prod.yaml: is not a SOPS file: it has no `sops` metadata block; encrypt it with `weaver secrets encrypt secrets/prod.yaml`"
    );
}

#[test]
fn no_identity_says_what_was_searched() {
    let (text, _, public) = fixture();
    let home = tempfile::tempdir().unwrap();
    let ids = IdentitySources::from_env(None, None, |k| (k == "HOME").then(|| home.path().into())).load().unwrap();
    let err = decrypt_bytes(path(), text.as_bytes(), &ids).unwrap_err();
    assert!(matches!(err, SecretsError::NoIdentity { .. }));
    let message = err.to_string();
    let expected = format!(
        "secrets/prod.yaml: no age identity available to decrypt it; it is encrypted to {public}; tried: nothing found \
         (--identity not given, WEAVER_AGE_KEY_FILE unset, SOPS_AGE_KEY_FILE unset, SOPS_AGE_KEY unset, \
         no identityFile in the environment, {}/.config/sops/age/keys.txt missing)",
        home.path().display()
    );
    assert_eq!(message, expected);
}

#[test]
fn wrong_identity_lists_public_keys_tried_never_secret_keys() {
    let (text, _, public) = fixture();
    let (other_secret, other_public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("other.agekey");
    std::fs::write(&key_file, format!("# a comment\n{other_secret}\n")).unwrap();
    let ids = IdentitySources { flag: Some(key_file.clone()), ..Default::default() }.load().unwrap();
    let err = decrypt_bytes(path(), text.as_bytes(), &ids).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SecretsError::WrongIdentity { .. }));
    assert!(message.contains(&format!("it is encrypted to {public}")), "{message}");
    assert!(message.contains(&format!("tried {other_public} (from --identity {})", key_file.display())), "{message}");
    assert!(!message.contains("AGE-SECRET-KEY"));
    let _ = decrypt(&text, &other_secret);
}

#[test]
fn syntax_errors_name_file_and_line_without_content() {
    let err = Document::parse(path(), "a: 1\nb: [unclosed-s3cr3t\n").unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("secrets/prod.yaml: line "), "{message}");
    assert!(!message.contains("s3cr3t"));
    let err = Document::parse(path(), "a: 1\na: 2\n").unwrap_err();
    assert_eq!(err.to_string(), "secrets/prod.yaml: line 2, column 1: duplicate key `a`");
    let err = Document::parse(path(), "- a\n").unwrap_err();
    assert!(err.to_string().contains("the top level must be a mapping"));
    let err = Document::parse(path(), "1: one\n").unwrap_err();
    assert!(err.to_string().contains("this key is a integer, not a string"), "{err}");
    let err = Document::parse(path(), "a: 1\n? [s3cr3t]\n: 2\n").unwrap_err();
    assert_eq!(err.to_string(), "secrets/prod.yaml: line 2, column 3: complex mapping keys are not supported");
    let err = Document::parse(path(), "a: &k s3cr3t\n*k : 2\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "secrets/prod.yaml: line 2, column 1: an alias as a key is not supported; write the key"
    );
    let err = Document::parse(Path::new("s.json"), "{\"a\": \"s3cr3t\" \"b\"}").unwrap_err();
    assert!(err.to_string().starts_with("s.json: line 1, column 16: expected `,` or `}`"), "{err}");
}

#[test]
fn debug_output_hides_values() {
    let (text, secret, _) = fixture();
    let plain = decrypt_bytes(path(), text.as_bytes(), &identities(&secret)).unwrap();
    let debug = format!("{plain:?}");
    assert!(debug.contains("\"api_token\": <string>"), "{debug}");
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn age_files_are_read_only() {
    let err = SopsFile::parse(Path::new("secrets/x.age"), "a: 1\n").err().unwrap();
    assert!(err.to_string().contains("weaver only decrypts them"), "{err}");
    let err = Document::parse(Path::new("secrets/x.txt"), "a: 1\n").unwrap_err();
    assert!(err.to_string().starts_with("secrets/x.txt: this file type"), "{err}");
}

#[test]
fn encrypting_twice_is_refused() {
    let (text, _, public) = fixture();
    let doc = Document::parse(path(), &text).unwrap();
    let err = encrypt(path(), &doc, &settings(&[&public], Selector::default())).unwrap_err();
    assert!(matches!(err, SecretsError::AlreadyEncrypted { .. }));
}

#[test]
fn unsupported_metadata_is_named() {
    let (text, secret, _) = fixture();
    let shamir = text.replace("    version:", "    key_groups:\n        - age: []\n    version:");
    assert!(decrypt(&shamir, &secret).to_string().contains("key_groups"));
    let two =
        text.replace("    unencrypted_suffix: _unencrypted", "    unencrypted_suffix: _u\n    encrypted_regex: ^a$");
    assert!(decrypt(&two, &secret).to_string().contains("only one of unencrypted_suffix, encrypted_regex"));
    let file = SopsFile::parse(path(), &text).unwrap();
    assert_eq!(file.path(), path());
}

/// A damaged whole-file age file says what is wrong in weaver's words, not age's
/// ("Header is invalid", "failed to fill whole buffer").
#[test]
fn damaged_age_files_are_explained_in_weavers_words() {
    let (secret, _) = key_pair();
    let ids = identities(&secret);
    let path = Path::new("secrets/dev.age");
    let err = decrypt_bytes(path, b"not an age file at all, but long enough to have a header\n", &ids).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secrets/dev.age: cannot decrypt this age file: its header is not an age header; it is damaged or not an age file"
    );
    let err = decrypt_bytes(path, b"age", &ids).unwrap_err();
    assert_eq!(
        err.to_string(),
        "secrets/dev.age: cannot decrypt this age file: it ends too early (truncated); it is damaged or not an age file"
    );
}

/// Issue 53.6: a file encrypted only to keys weaver cannot use (AWS KMS, PGP, …) names the key
/// types it found and the step that lets weaver read it: an age recipient added with sops.
#[test]
fn a_file_without_an_age_recipient_names_its_key_types_and_the_migration() {
    let (text, secret, _) = fixture();
    let start = text.find("    age:").unwrap();
    let end = text.find("    lastmodified:").unwrap();
    let foreign = format!("{}    age: []\n{}", &text[..start], &text[end..])
        .replace(
            "    kms: []",
            "    kms:\n        - arn: arn:aws:kms:eu-west-1:111122223333:key/x\n          enc: AQICAH\n",
        )
        .replace("    pgp: []", "    pgp:\n        - fp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21\n          enc: x\n");
    let err = decrypt(&foreign, &secret);
    assert_eq!(
        err.to_string(),
        "secrets/prod.yaml: encrypted only to AWS KMS, PGP keys, with no age recipient: weaver decrypts with age keys only"
    );
    let help = weaver_core::error::Error::from(err).help.unwrap();
    assert!(help.contains("sops updatekeys FILE") && help.contains("age-keygen -y"), "{help}");
}
