//! Identity sources: order, several keys per source, comments, and errors that never show keys.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use weaver_secrets::{IdentityOrigin, IdentitySources, SecretsError};

use super::common::key_pair;

fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn sources_are_read_in_order_and_all_keys_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<(String, String)> = (0..6).map(|_| key_pair()).collect();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let flag = write("flag.txt", format!("# created: today\n# public key: {}\n{}\n", keys[0].1, keys[0].0));
    let weaver_file = write("weaver.txt", format!("{}\n\n  {}  \n", keys[1].0, keys[2].0));
    let sops_file = write("sops.txt", format!("{}\n", keys[3].0));
    let environment = write("env.agekey", format!("{}\n", keys[5].0));
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("sops/age")).unwrap();
    std::fs::write(config.join("sops/age/keys.txt"), format!("{}\n{}\n", keys[0].0, keys[4].0)).unwrap();
    let sources = IdentitySources::from_env(
        Some(flag.clone()),
        Some(environment.clone()),
        env(&[
            ("WEAVER_AGE_KEY_FILE", weaver_file.display().to_string()),
            ("SOPS_AGE_KEY_FILE", sops_file.display().to_string()),
            ("SOPS_AGE_KEY", format!("# from the environment\n{}", keys[4].0)),
            ("XDG_CONFIG_HOME", config.display().to_string()),
            ("HOME", "/nonexistent".into()),
        ]),
    );
    assert_eq!(sources.default_file, Some(config.join("sops/age/keys.txt")));
    let ids = sources.load().unwrap();
    let loaded: Vec<(String, IdentityOrigin)> = ids.public_keys().map(|(k, o)| (k.to_owned(), o.clone())).collect();
    assert_eq!(
        loaded,
        [
            (keys[0].1.clone(), IdentityOrigin::Flag(flag)),
            (keys[1].1.clone(), IdentityOrigin::WeaverKeyFile(weaver_file.clone())),
            (keys[2].1.clone(), IdentityOrigin::WeaverKeyFile(weaver_file)),
            (keys[3].1.clone(), IdentityOrigin::SopsKeyFile(sops_file)),
            // Each key once, with the first place it was found.
            (keys[4].1.clone(), IdentityOrigin::SopsKey),
            (keys[5].1.clone(), IdentityOrigin::EnvironmentFile(environment)),
        ]
    );
    // Debug shows public keys only.
    let debug = format!("{ids:?} {sources:?}");
    assert!(!debug.contains("AGE-SECRET-KEY"), "{debug}");
    assert!(debug.contains(&keys[0].1));
}

#[test]
fn default_path_falls_back_to_home_and_empty_vars_are_unset() {
    let sources = IdentitySources::from_env(
        None,
        None,
        env(&[("HOME", "/home/u".into()), ("XDG_CONFIG_HOME", "relative/dir".into()), ("SOPS_AGE_KEY", String::new())]),
    );
    assert_eq!(sources.default_file, Some(PathBuf::from("/home/u/.config/sops/age/keys.txt")));
    assert_eq!(sources.sops_key, None);
    assert_eq!(IdentitySources::from_env(None, None, env(&[])).default_file, None);
}

#[test]
fn named_files_must_exist_but_the_default_may_not() {
    let missing = PathBuf::from("/nonexistent/key.txt");
    let err = IdentitySources { flag: Some(missing.clone()), ..Default::default() }.load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "--identity /nonexistent/key.txt: cannot read the identity file: no such file or directory"
    );
    let err = IdentitySources { sops_key_file: Some(missing.clone()), ..Default::default() }.load().unwrap_err();
    assert!(err.to_string().starts_with("SOPS_AGE_KEY_FILE=/nonexistent/key.txt: "), "{err}");
    let ids = IdentitySources { default_file: Some(missing), ..Default::default() }.load().unwrap();
    assert!(ids.is_empty());
}

#[test]
fn invalid_lines_are_reported_by_number_only() {
    let (secret, _) = key_pair();
    let mangled = secret.replace(concat!("AGE-SECRET-KEY-", "1"), concat!("AGE-SECRET-KEY-", "2"));
    let err =
        IdentitySources { sops_key: Some(format!("# ok\n\n{mangled}\n")), ..Default::default() }.load().unwrap_err();
    assert!(matches!(err, SecretsError::InvalidIdentity { line: 3, .. }));
    assert_eq!(
        err.to_string(),
        "SOPS_AGE_KEY: line 3: the age secret key is malformed (wrong length or checksum; the key is not shown)"
    );
    // A truncated key is a malformed key too, not "a line not starting with AGE-SECRET-KEY-".
    let err = IdentitySources { sops_key: Some(concat!("AGE-SECRET-KEY-", "1XYZ").into()), ..Default::default() }
        .load()
        .unwrap_err();
    assert!(err.to_string().starts_with("SOPS_AGE_KEY: line 1: the age secret key is malformed"), "{err}");
    let err = IdentitySources { sops_key: Some("age1notasecret".into()), ..Default::default() }.load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "SOPS_AGE_KEY: line 1: not an age identity (expected a line starting with AGE-SECRET-KEY-)"
    );
    let err =
        IdentitySources { sops_key: Some("AGE-PLUGIN-YUBIKEY-1QQQ".into()), ..Default::default() }.load().unwrap_err();
    assert!(err.to_string().contains("plugin identities are not supported"));
}
