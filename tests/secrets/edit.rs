//! Edit sessions: plaintext only in a private temporary directory that goes away on every
//! path out; unchanged values keep their ciphertext.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use weaver_secrets::{Document, EditOutcome, EditSession, SecretsError, Selector, encrypt};

use super::common::{identities, key_pair, settings};

const PLAIN: &str = "# database\ndb:\n    user: app-user\n    password: old-password # rotate me\nkeep: unchanged-value\nlist:\n    - same-item\n    - same-item\n";

struct Fixture {
    _dir: tempfile::TempDir,
    file: PathBuf,
    temp_root: PathBuf,
    secret: String,
}

fn fixture() -> Fixture {
    let (secret, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.yaml");
    let plain = Document::parse(&file, PLAIN).unwrap();
    std::fs::write(&file, encrypt(&file, &plain, &settings(&[&public], Selector::default())).unwrap()).unwrap();
    let temp_root = dir.path().join("tmp");
    std::fs::create_dir(&temp_root).unwrap();
    Fixture { _dir: dir, file, temp_root, secret }
}

fn enc_line(text: &str, key: &str) -> String {
    text.lines().find(|l| l.trim_start().starts_with(key)).unwrap().to_owned()
}

fn assert_gone(path: &Path) {
    assert!(!path.exists(), "{} still exists", path.display());
    assert!(!path.parent().unwrap().exists(), "private directory still exists");
}

#[test]
fn saved_edit_keeps_unchanged_ciphertext_and_removes_plaintext() {
    let f = fixture();
    let before = std::fs::read_to_string(&f.file).unwrap();
    let mut session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    let plain_path = session.plaintext_path().to_owned();
    assert_eq!(plain_path.file_name().unwrap(), "prod.yaml");
    assert_eq!(std::fs::metadata(&plain_path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(plain_path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let outcome = session
        .run(|path| {
            let text = std::fs::read_to_string(path)?;
            assert!(text.contains("password: old-password # rotate me"), "{text}");
            std::fs::write(path, text.replace("old-password", "new-password") + "added: value\n")
        })
        .unwrap();
    assert!(matches!(outcome, EditOutcome::Saved));
    drop(session);
    assert_gone(&plain_path);

    let after = std::fs::read_to_string(&f.file).unwrap();
    for key in ["user:", "keep:", "#ENC["] {
        assert_eq!(enc_line(&after, key), enc_line(&before, key), "{key}");
    }
    // The two equal list items keep their two distinct ciphertexts.
    let items =
        |t: &str| t.lines().filter(|l| l.trim_start().starts_with("- ENC[")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(items(&after), items(&before));
    assert_ne!(items(&before)[0], items(&before)[1]);
    assert_ne!(enc_line(&after, "password:"), enc_line(&before, "password:"));
    assert_ne!(enc_line(&after, "mac:"), enc_line(&before, "mac:"));
    let json = weaver_secrets::decrypt_file(&f.file, &identities(&f.secret)).unwrap().to_json();
    assert_eq!(json["db"]["password"], "new-password");
    assert_eq!(json["added"], "value");
}

#[test]
fn unchanged_edit_leaves_the_file_alone() {
    let f = fixture();
    let before = std::fs::read_to_string(&f.file).unwrap();
    let mut session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    assert!(matches!(session.run(|_| Ok(())).unwrap(), EditOutcome::Unchanged));
    // Only layout changed: still unchanged.
    let outcome =
        session.run(|p| std::fs::write(p, std::fs::read_to_string(p)?.replace("keep: ", "keep:    "))).unwrap();
    assert!(matches!(outcome, EditOutcome::Unchanged));
    drop(session);
    assert_eq!(std::fs::read_to_string(&f.file).unwrap(), before);
}

#[test]
fn editor_failure_removes_plaintext() {
    let f = fixture();
    let before = std::fs::read_to_string(&f.file).unwrap();
    let mut session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    let plain_path = session.plaintext_path().to_owned();
    let err = session.run(|_| Err(std::io::Error::other("editor exited with status 1"))).unwrap_err();
    assert!(matches!(err, SecretsError::Editor { .. }));
    assert!(err.to_string().ends_with("prod.yaml: the editor failed: editor exited with status 1"), "{err}");
    drop(session);
    assert_gone(&plain_path);
    assert_eq!(std::fs::read_to_string(&f.file).unwrap(), before);
}

#[test]
fn invalid_edit_is_kept_for_a_retry_then_removed_when_abandoned() {
    let f = fixture();
    let before = std::fs::read_to_string(&f.file).unwrap();
    let mut session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    let plain_path = session.plaintext_path().to_owned();
    let broken = |p: &Path| {
        std::fs::write(p, std::fs::read_to_string(p)?.replace("keep: unchanged-value", "keep: [oops-secret"))
    };
    match session.run(broken).unwrap() {
        EditOutcome::Invalid(err) => {
            let message = err.to_string();
            assert!(message.contains("prod.yaml: line "), "{message}");
            assert!(!message.contains("oops-secret"));
        }
        other => panic!("{other:?}"),
    }
    // The edit is still there for the retry.
    assert!(std::fs::read_to_string(&plain_path).unwrap().contains("[oops-secret"));
    // A `sops` key is refused the same way.
    let with_sops = |p: &Path| std::fs::write(p, "sops: {}\n");
    assert!(matches!(session.run(with_sops).unwrap(), EditOutcome::Invalid(SecretsError::AlreadyEncrypted { .. })));
    drop(session);
    assert_gone(&plain_path);
    assert_eq!(std::fs::read_to_string(&f.file).unwrap(), before);
}

#[test]
fn retry_after_invalid_edit_saves() {
    let f = fixture();
    let mut session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    let outcome = session.run(|p| std::fs::write(p, "a: [unclosed\n")).unwrap();
    assert!(matches!(outcome, EditOutcome::Invalid(_)));
    let outcome = session.run(|p| std::fs::write(p, "a: [closed]\n")).unwrap();
    assert!(matches!(outcome, EditOutcome::Saved));
    let json = weaver_secrets::decrypt_file(&f.file, &identities(&f.secret)).unwrap().to_json();
    assert_eq!(json, serde_json::json!({"a": ["closed"]}));
}

#[test]
fn panic_in_the_editor_callback_removes_plaintext() {
    let f = fixture();
    let session = EditSession::open(&f.file, &identities(&f.secret), &f.temp_root).unwrap();
    let plain_path = session.plaintext_path().to_owned();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut session = session;
        let _ = session.run(|_| panic!("editor crashed"));
    }));
    assert!(result.is_err());
    assert_gone(&plain_path);
}

#[test]
fn temp_root_prefers_the_runtime_dir() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().to_owned();
    assert_eq!(
        weaver_secrets::private_temp_root(|k| (k == "XDG_RUNTIME_DIR").then(|| runtime.clone().into())),
        runtime
    );
    let fallback = weaver_secrets::private_temp_root(|_| None);
    assert!(fallback == Path::new("/dev/shm") || fallback == std::env::temp_dir());
}

#[test]
fn opening_fails_cleanly_without_the_key() {
    let f = fixture();
    let (other, _) = key_pair();
    let err = EditSession::open(&f.file, &identities(&other), &f.temp_root).err().unwrap();
    assert!(matches!(err, SecretsError::WrongIdentity { .. }));
    assert_eq!(std::fs::read_dir(&f.temp_root).unwrap().count(), 0);
}
