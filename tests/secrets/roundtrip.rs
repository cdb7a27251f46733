//! encrypt → decrypt round trips over every value type, comments and each key selector.

use std::path::Path;

use regex::Regex;
use weaver_secrets::{Document, Format, Item, Selector, SopsFile, Value, encrypt};

use super::common::{identities, key_pair, settings};

const SAMPLE: &str = r#"# top comment
str: plain string
quoted: "needs: quoting # here"
empty: ""
int: 42
negative: -7
hex: 0x1F
float: 3.25
float_whole: 2.0
exp: 1e20
bool_t: true
bool_f: false
null_value: null
tilde: ~
unicode: "ünïcödé ✓ 日本語"
emoji: "🔐 key"
multi: |
    line one
      indented line
    line three
multi_keep: |+
    kept

multi_strip: |-
    stripped
spaces: "  leading and trailing  "
tricky: "yes"
number_string: "123"
timestamp_like: 2021-04-06T09:07:05Z
colon: "a: b"
hash: "a #b"
tab: "a\tb"
nested:
    # nested comment
    inner: value # inline comment
    deeper:
        key: v
        empty_map: {}
list:
    - one
    - 2
    - true
    # a comment in a list
    - name: first # item comment
      value: 1
    - name: second
      value: [a, b]
    - []
    - - nested
      - list
password_unencrypted: visible
data:
    token: abc
    note_enc: hidden
# trailing comment
"#;

fn sample() -> Document {
    Document::parse(Path::new("sample.yaml"), SAMPLE).unwrap()
}

/// Top-level keys whose values stay in clear text under `selector`.
fn clear_keys(encrypted: &str) -> Vec<String> {
    let doc = Document::parse(Path::new("enc.yaml"), encrypted).unwrap();
    let mut clear = Vec::new();
    fn has_clear(value: &Value) -> bool {
        match value {
            Value::Str(s) => !s.is_empty() && !s.starts_with("ENC["),
            Value::Map(items) => items.iter().any(|i| matches!(i, Item::Entry { value, .. } if has_clear(value))),
            Value::Seq(items) => items.iter().any(|i| matches!(i, Item::Entry { value, .. } if has_clear(value))),
            Value::Null => false,
            _ => true,
        }
    }
    for item in &doc.docs()[0] {
        if let Item::Entry { key, value, .. } = item
            && key != "sops"
            && has_clear(value)
        {
            clear.push(key.clone());
        }
    }
    clear
}

fn round_trip(selector: Selector) -> String {
    let (secret, public) = key_pair();
    let plain = sample();
    let encrypted = encrypt(Path::new("sample.yaml"), &plain, &settings(&[&public], selector)).unwrap();
    let opened = SopsFile::parse(Path::new("sample.yaml"), &encrypted).unwrap().decrypt(&identities(&secret)).unwrap();
    // Values, key order and comments all survive.
    assert_eq!(opened.plaintext(), &plain);
    assert_eq!(opened.plaintext().render(), plain.render());
    encrypted
}

#[test]
fn default_selector_encrypts_all_but_unencrypted_suffix() {
    let encrypted = round_trip(Selector::default());
    assert_eq!(clear_keys(&encrypted), ["password_unencrypted"]);
    assert!(encrypted.contains("unencrypted_suffix: _unencrypted"));
    // Comments are encrypted too (they have no path-based exemption here).
    assert!(!encrypted.contains("top comment") && !encrypted.contains("inline comment"));
    assert!(encrypted.contains("#ENC[AES256_GCM,"));
}

#[test]
fn encrypted_suffix_encrypts_only_matching_keys() {
    let encrypted = round_trip(Selector::EncryptedSuffix("_enc".into()));
    let clear = clear_keys(&encrypted);
    assert!(!encrypted.contains("hidden"));
    assert!(clear.contains(&"str".to_owned()) && clear.contains(&"data".to_owned()));
    assert!(encrypted.contains("encrypted_suffix: _enc"));
}

#[test]
fn unencrypted_regex_leaves_matching_keys() {
    let encrypted = round_trip(Selector::UnencryptedRegex(Regex::new("^(list|str)$").unwrap()));
    assert_eq!(clear_keys(&encrypted), ["str", "list"]);
    assert!(encrypted.contains("unencrypted_regex: ^(list|str)$"));
}

#[test]
fn encrypted_regex_encrypts_only_matching_keys() {
    let encrypted = round_trip(Selector::EncryptedRegex(Regex::new("^(data|nested)$").unwrap()));
    let clear = clear_keys(&encrypted);
    assert!(!clear.contains(&"data".to_owned()) && !clear.contains(&"nested".to_owned()));
    assert!(clear.contains(&"password_unencrypted".to_owned()) && clear.contains(&"int".to_owned()));
    // Top-level comments are outside any matching key: sops leaves them in clear text.
    assert!(encrypted.contains("# top comment"));
    assert!(!encrypted.contains("nested comment"));
}

#[test]
fn mac_only_encrypted_ignores_clear_values() {
    let (secret, public) = key_pair();
    let ids = identities(&secret);
    for mac_only in [false, true] {
        let mut s = settings(&[&public], Selector::default());
        s.mac_only_encrypted = mac_only;
        let encrypted = encrypt(Path::new("s.yaml"), &sample(), &s).unwrap();
        assert_eq!(encrypted.contains("mac_only_encrypted: true"), mac_only);
        let tampered = encrypted.replace("password_unencrypted: visible", "password_unencrypted: changed");
        let result = SopsFile::parse(Path::new("s.yaml"), &tampered).unwrap().decrypt(&ids);
        if mac_only {
            let opened = result.unwrap();
            assert_eq!(opened.plaintext().to_json()["password_unencrypted"], "changed");
        } else {
            assert!(result.err().unwrap().to_string().contains("MAC mismatch"));
        }
    }
}

#[test]
fn values_keep_their_types() {
    let (secret, public) = key_pair();
    let encrypted = encrypt(Path::new("s.yaml"), &sample(), &settings(&[&public], Selector::default())).unwrap();
    for kind in ["str", "int", "float", "bool", "comment"] {
        assert!(encrypted.contains(&format!("type:{kind}]")), "{kind}");
    }
    let json = SopsFile::parse(Path::new("s.yaml"), &encrypted)
        .unwrap()
        .decrypt(&identities(&secret))
        .unwrap()
        .into_plaintext()
        .to_json();
    assert_eq!(json["int"], 42);
    assert_eq!(json["hex"], 31);
    assert_eq!(json["float"], 3.25);
    assert!(json["float_whole"].is_f64());
    assert_eq!(json["exp"], 1e20);
    assert_eq!(json["bool_f"], false);
    assert!(json["null_value"].is_null() && json["tilde"].is_null());
    assert_eq!(json["empty"], "");
    assert_eq!(json["number_string"], "123");
    assert_eq!(json["tricky"], "yes");
    assert_eq!(json["timestamp_like"], "2021-04-06T09:07:05Z");
    assert_eq!(json["multi"], "line one\n  indented line\nline three\n");
    assert_eq!(json["multi_keep"], "kept\n\n");
    assert_eq!(json["multi_strip"], "stripped");
    assert_eq!(json["tab"], "a\tb");
    assert_eq!(json["list"][4]["value"][1], "b");
    assert_eq!(json["list"][6][1], "list");
}

#[test]
fn json_round_trip() {
    let (secret, public) = key_pair();
    let text =
        r#"{"b": "two", "a": {"n": 1, "f": 1.5, "t": true, "z": null, "l": ["x", {"y": ""}]}, "c_unencrypted": 3}"#;
    let plain = Document::parse(Path::new("s.json"), text).unwrap();
    assert_eq!(plain.format(), Format::Json);
    let encrypted = encrypt(Path::new("s.json"), &plain, &settings(&[&public], Selector::default())).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&encrypted).unwrap();
    assert!(parsed["b"].as_str().unwrap().starts_with("ENC[AES256_GCM,"));
    assert_eq!(parsed["c_unencrypted"], 3);
    assert_eq!(parsed["sops"]["version"], weaver_secrets::SOPS_VERSION);
    assert!(encrypted.contains("\n\t\"b\""), "tab-indented like sops");
    let opened = SopsFile::parse(Path::new("s.json"), &encrypted).unwrap().decrypt(&identities(&secret)).unwrap();
    assert_eq!(opened.plaintext(), &plain);
    // Key order is kept.
    let keys: Vec<_> = opened.plaintext().to_json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["b", "a", "c_unencrypted"]);
}

#[test]
fn multi_document_yaml_round_trip() {
    let (secret, public) = key_pair();
    let plain = Document::parse(Path::new("m.yaml"), "a: 1\n---\n# second\nb: two\n").unwrap();
    assert_eq!(plain.docs().len(), 2);
    let encrypted = encrypt(Path::new("m.yaml"), &plain, &settings(&[&public], Selector::default())).unwrap();
    assert_eq!(encrypted.matches("\nsops:\n").count(), 2, "sops writes the metadata into every document");
    let opened = SopsFile::parse(Path::new("m.yaml"), &encrypted).unwrap().decrypt(&identities(&secret)).unwrap();
    assert_eq!(opened.plaintext(), &plain);
    assert_eq!(opened.plaintext().to_json(), serde_json::json!([{"a": 1}, {"b": "two"}]));
}

#[test]
fn several_recipients_each_decrypt() {
    let (secret_a, public_a) = key_pair();
    let (secret_b, public_b) = key_pair();
    let encrypted =
        encrypt(Path::new("s.yaml"), &sample(), &settings(&[&public_a, &public_b], Selector::default())).unwrap();
    for secret in [&secret_a, &secret_b] {
        let file = SopsFile::parse(Path::new("s.yaml"), &encrypted).unwrap();
        assert_eq!(file.recipients(), [public_a.clone(), public_b.clone()]);
        assert_eq!(file.decrypt(&identities(secret)).unwrap().plaintext(), &sample());
    }
}

#[test]
fn rotate_changes_the_data_key_and_every_ciphertext() {
    let (secret, public) = key_pair();
    let (new_secret, new_public) = key_pair();
    let encrypted = encrypt(Path::new("s.yaml"), &sample(), &settings(&[&public], Selector::default())).unwrap();
    let opened = SopsFile::parse(Path::new("s.yaml"), &encrypted).unwrap().decrypt(&identities(&secret)).unwrap();
    let rotated = opened.rotate(std::slice::from_ref(&new_public)).unwrap();
    let old_values: Vec<&str> = encrypted.lines().filter(|l| l.contains("ENC[")).collect();
    assert!(rotated.lines().all(|l| !old_values.contains(&l)));
    let file = SopsFile::parse(Path::new("s.yaml"), &rotated).unwrap();
    assert!(file.decrypt(&identities(&secret)).is_err(), "the old key no longer opens it");
    let reopened = SopsFile::parse(Path::new("s.yaml"), &rotated).unwrap().decrypt(&identities(&new_secret)).unwrap();
    assert_eq!(reopened.plaintext(), &sample());
}

#[test]
fn update_keys_rewraps_the_same_data_key() {
    let (secret_a, public_a) = key_pair();
    let (secret_b, public_b) = key_pair();
    let encrypted = encrypt(Path::new("s.yaml"), &sample(), &settings(&[&public_a], Selector::default())).unwrap();
    let opened = SopsFile::parse(Path::new("s.yaml"), &encrypted).unwrap().decrypt(&identities(&secret_a)).unwrap();
    let update = opened.update_keys(&[public_a.clone(), public_b.clone()]).unwrap();
    assert_eq!(update.added, std::slice::from_ref(&public_b));
    assert!(update.removed.is_empty());
    // Values, MAC and lastmodified are untouched; a's entry is kept as it was.
    let unchanged = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.contains("ENC[") || l.contains("lastmodified")).map(str::to_owned).collect()
    };
    assert_eq!(unchanged(&update.text), unchanged(&encrypted));
    for secret in [&secret_a, &secret_b] {
        let reopened =
            SopsFile::parse(Path::new("s.yaml"), &update.text).unwrap().decrypt(&identities(secret)).unwrap();
        assert_eq!(reopened.plaintext(), &sample());
    }
    let removed = SopsFile::parse(Path::new("s.yaml"), &update.text)
        .unwrap()
        .decrypt(&identities(&secret_b))
        .unwrap()
        .update_keys(std::slice::from_ref(&public_b))
        .unwrap();
    assert_eq!(removed.removed, [public_a]);
    assert!(SopsFile::parse(Path::new("s.yaml"), &removed.text).unwrap().decrypt(&identities(&secret_a)).is_err());
}

/// Emitting then parsing gives back the same tree, for strings that need every quoting style.
#[test]
fn awkward_strings_survive_yaml() {
    let strings = [
        "",
        " ",
        "   ",
        " lead",
        "trail ",
        "- dash",
        "-",
        "--- doc",
        "... end",
        ": colon",
        "a: b",
        "a:",
        "#hash",
        "a #b",
        "a#b",
        "'single",
        "\"double",
        "null",
        "Null",
        "~",
        "true",
        "False",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "0o17",
        "0x1F",
        "1_000",
        "012",
        "08",
        "+1",
        "-1",
        ".5",
        "1e3",
        "1.",
        ".inf",
        "-.inf",
        ".nan",
        "2021-01-01",
        "<<",
        "*alias",
        "&anchor",
        "!tag",
        "%pct",
        "@at",
        "`tick",
        "|pipe",
        ">fold",
        "[a]",
        "{a}",
        "a, b",
        "?q",
        "\u{7}bell",
        "tab\there",
        "\ttab",
        "cr\r\nlf",
        "\u{2028}sep",
        "\u{FEFF}bom",
        "ünï",
        "日本",
        "🔐",
        "line\n",
        "line",
        "a\nb",
        "a\nb\n",
        "a\nb\n\n",
        "\nlead newline",
        " lead\nspace",
        "trail \nspace ",
        "\n",
        "\n\n",
        "a\n  \nb",
        "back\\slash",
        "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
    ];
    let mut items = Vec::new();
    for (i, s) in strings.iter().enumerate() {
        items.push(Item::Entry { key: s.to_string(), value: Value::Str(s.to_string()), comment: None });
        items.push(Item::Entry {
            key: format!("k{i}"),
            value: Value::Seq(vec![Item::Entry { key: (), value: Value::Str(s.to_string()), comment: None }]),
            comment: None,
        });
    }
    let text = Document::parse(
        Path::new("x.json"),
        &serde_json::to_string(&serde_json::Value::Object(
            items
                .iter()
                .map(|i| match i {
                    Item::Entry { key, value, .. } => (key.clone(), value.to_json()),
                    Item::Comment(_) => unreachable!(),
                })
                .collect(),
        ))
        .unwrap(),
    )
    .unwrap()
    .render_as(Format::Yaml);
    let reparsed = Document::parse(Path::new("x.yaml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(reparsed.to_json(), Value::Map(items).to_json(), "{text}");
}
