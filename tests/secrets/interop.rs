//! Interop with the Debian `age` CLI. Skipped (with a printed reason) when `age` is not
//! installed, unless WEAVER_REQUIRE_INTEROP=1. (`sops` itself is not packaged for Debian 12.)

use std::path::Path;
use std::process::Command;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use weaver_secrets::{Document, Item, Selector, Value, decrypt_file, encrypt};

use super::common::{identities, key_pair, settings};

/// Whether the `age` CLI can be used; panics if it is required but missing.
#[track_caller]
fn age_cli() -> bool {
    let found = Command::new("age").arg("--version").output().is_ok_and(|o| o.status.success());
    crate::common::skip::interop_or_skip((!found).then_some("the age CLI is not installed (apt-get install age)"))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn whole_file_age_from_the_cli_decrypts() {
    if !age_cli() {
        return;
    }
    let (secret, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, "# note\ndb:\n    password: pa55-w0rd\n    port: 5432\nlist: [a, b]\n").unwrap();
    let expected = serde_json::json!({"db": {"password": "pa55-w0rd", "port": 5432}, "list": ["a", "b"]});
    for (name, armor) in [("binary.age", false), ("armored.age", true)] {
        let out = dir.path().join(name);
        let mut cmd = Command::new("age");
        if armor {
            cmd.arg("-a");
        }
        run(cmd.arg("-r").arg(&public).arg("-o").arg(&out).arg(&plain));
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), armor);
        let doc = decrypt_file(&out, &identities(&secret)).unwrap();
        assert_eq!(doc.to_json(), expected);
        // A key that is not a recipient fails with the wrong-identity error.
        let (other, _) = key_pair();
        let err = decrypt_file(&out, &identities(&other)).unwrap_err().to_string();
        assert!(err.contains("none of the available age identities can decrypt it"), "{err}");
    }
}

/// Whole-file age without the CLI (the age library writes the same format).
#[test]
fn whole_file_age_binary_and_armored() {
    use std::io::Write;
    let (secret, public) = key_pair();
    let recipient: age::x25519::Recipient = public.parse().unwrap();
    for format in [age::armor::Format::Binary, age::armor::Format::AsciiArmor] {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
        let armor = age::armor::ArmoredWriter::wrap_output(Vec::new(), format).unwrap();
        let mut writer = encryptor.wrap_output(armor).unwrap();
        writer.write_all(b"token: abc-def\n").unwrap();
        let bytes = writer.finish().and_then(|a| a.finish()).unwrap();
        let doc = weaver_secrets::decrypt_bytes(Path::new("s.age"), &bytes, &identities(&secret)).unwrap();
        assert_eq!(doc.to_json(), serde_json::json!({"token": "abc-def"}));
        let mut damaged = bytes.clone();
        let last = damaged.len() - 40;
        damaged[last] ^= 0x01;
        let err = weaver_secrets::decrypt_bytes(Path::new("s.age"), &damaged, &identities(&secret)).unwrap_err();
        assert!(err.to_string().starts_with("s.age: cannot decrypt this age file: "), "{err}");
    }
}

#[test]
fn data_key_wrapped_here_opens_with_the_cli() {
    if !age_cli() {
        return;
    }
    let (secret, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{secret}\n")).unwrap();
    let plain = Document::parse(Path::new("s.yaml"), "api:\n    token: t0k3n-value\n").unwrap();
    let encrypted = encrypt(Path::new("s.yaml"), &plain, &settings(&[&public], Selector::default())).unwrap();
    let doc = Document::parse(Path::new("s.yaml"), &encrypted).unwrap();
    let json = doc.to_json();
    let enc_file = dir.path().join("enc.txt");
    std::fs::write(&enc_file, json["sops"]["age"][0]["enc"].as_str().unwrap()).unwrap();
    let data_key = run(Command::new("age").arg("-d").arg("-i").arg(&key_file).arg(&enc_file));
    assert_eq!(data_key.len(), 32);
    // The CLI's data key opens the value with an independent AES-256-GCM (32-byte nonce).
    let value = json["api"]["token"].as_str().unwrap();
    let field = |name: &str| {
        let start = value.find(&format!("{name}:")).unwrap() + name.len() + 1;
        let end = start + value[start..].find([',', ']']).unwrap();
        B64.decode(&value[start..end]).unwrap()
    };
    let mut sealed = field("data");
    sealed.extend(field("tag"));
    let cipher = aes_gcm::AesGcm::<Aes256, U32>::new_from_slice(&data_key).unwrap();
    let opened = cipher
        .decrypt(aes_gcm::Nonce::<U32>::from_slice(&field("iv")), Payload { msg: &sealed, aad: b"api:token:" })
        .unwrap();
    assert_eq!(opened, b"t0k3n-value");
    assert!(matches!(&doc.docs()[0][0], Item::Entry { key, value: Value::Map(_), .. } if key == "api"));
}
