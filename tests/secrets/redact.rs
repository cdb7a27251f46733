//! The redactor.

use base64::Engine;
use weaver_secrets::Redactor;

#[test]
fn registered_values_and_their_forms_are_replaced() {
    let r = Redactor::new();
    r.register("hunter2-password");
    let text = "password=hunter2-password b64=aHVudGVyMi1wYXNzd29yZA== other=fine";
    assert_eq!(
        r.redact(text),
        format!("password={} b64={} other=fine", r.marker("hunter2-password"), r.marker("aHVudGVyMi1wYXNzd29yZA=="))
    );
    assert_eq!(r.marker("hunter2-password").len(), "<redacted:12345678>".len());
    assert!(r.marker("x").starts_with("<redacted:") && r.marker("x") != r.marker("y"));
}

#[test]
fn unmatched_text_is_borrowed() {
    let r = Redactor::new();
    assert!(matches!(r.redact("nothing registered"), std::borrow::Cow::Borrowed(_)));
    r.register("secret-value");
    assert!(matches!(r.redact("nothing here"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn short_strings_match_as_whole_words_and_single_characters_bools_nulls_small_numbers_not_at_all() {
    let r = Redactor::new();
    r.register_tree(&serde_json::json!({"a": "1", "b": true, "c": null, "d": "abc", "e": 7, "port": 5432}));
    assert_eq!(r.redact("1 true null abc 7 MQ=="), format!("1 true null {} 7 MQ==", r.marker("abc")));
    assert_eq!(r.redact("xabc abcx 'abc'"), format!("xabc abcx '{}'", r.marker("abc")));
    assert_eq!(r.redact("port 5432"), format!("port {}", r.marker("5432")));
    // A short number written as a string is a short number too: JSON keeps its numbers.
    r.register("12");
    assert_eq!(r.redact(r#"{"number": 12, "n": "12"}"#), r#"{"number": 12, "n": "12"}"#);
    let mut tree = serde_json::json!({"n": "12"});
    r.redact_value(&mut tree);
    assert_eq!(tree["n"], r.marker("12"), "a string equal to it is still replaced in trees");
}

#[test]
fn longest_overlapping_value_wins() {
    let r = Redactor::new();
    r.register("token");
    r.register("token-extended");
    assert_eq!(
        r.redact("x token-extended y token"),
        format!("x {} y {}", r.marker("token-extended"), r.marker("token"))
    );
}

#[test]
fn trees_multiline_and_json_escaped_values() {
    let r = Redactor::new();
    let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n";
    r.register_tree(&serde_json::json!({"nested": {"list": ["list-secret"], "pem": pem, "quote": "say \"hi\" now"}}));
    let indented = "key: |\n    MIIBOgIBAAJBAKj34GkxFhD9\n";
    assert!(!r.redact(indented).contains("MIIBOgIBAAJBAKj34GkxFhD9"));
    assert!(!r.redact("[\"list-secret\"]").contains("list-secret"));
    let json = serde_json::to_string(&serde_json::json!({"v": "say \"hi\" now"})).unwrap();
    assert!(!r.redact(&json).contains("hi"), "{}", r.redact(&json));
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    assert_eq!(r.redact(&b64), r.marker(&b64));
}

#[test]
fn shared_across_threads_and_clones() {
    let r = Redactor::new();
    let clone = r.clone();
    std::thread::spawn(move || clone.register("from-another-thread")).join().unwrap();
    assert_eq!(r.redact("from-another-thread"), r.marker("from-another-thread"));
    // Registering after a redaction rebuilds the matcher.
    r.register("later-value");
    assert_eq!(r.redact("later-value"), r.marker("later-value"));
}

#[test]
fn many_values() {
    let r = Redactor::new();
    for i in 0..5000 {
        r.register(&format!("value-{i:05}"));
    }
    let text: String = (0..5000).step_by(7).map(|i| format!("value-{i:05} ")).collect();
    let redacted = r.redact(&text);
    assert!(!redacted.contains("value-"));
}

#[test]
fn finds_in_says_whether_redacting_a_tree_would_change_it_without_changing_it() {
    let r = Redactor::new();
    let tree = serde_json::json!({"data": {"url": "postgres://app:hunter2-password@db", "port": 5432, "on": true},
        "list": ["plain", 12345678]});
    assert!(!r.finds_in(&tree), "nothing registered");
    r.register("unrelated-value");
    assert!(!r.finds_in(&tree));
    for secret in ["hunter2-password", "12345678", "5432"] {
        let r = Redactor::new();
        r.register(secret);
        assert!(r.finds_in(&tree), "{secret}");
        let mut redacted = tree.clone();
        assert!(r.redact_value(&mut redacted) > 0, "{secret}: redact_value agrees");
    }
}
