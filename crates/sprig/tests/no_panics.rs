//! Templates are user input: no template may make a sprig function panic. Every prefix of every
//! case, and every function called with awkward arguments, renders or fails with an error.

use crate::common;

use gotemplate::{Map, Value};

/// Functions too slow to call thousands of times (key generation, bcrypt, scrypt); the cases cover them.
const SLOW: &[&str] =
    &["genPrivateKey", "genCA", "genSelfSignedCert", "genSignedCert", "bcrypt", "htpasswd", "derivePassword"];

#[test]
fn every_prefix_of_every_case_renders_or_fails() {
    for case in common::cases() {
        if SLOW.iter().any(|s| case.template.contains(s)) {
            continue;
        }
        for truncated in case.prefixes() {
            let _ = common::render(&truncated);
        }
    }
}

/// Every function name the table calls: identifiers that start an action or follow `(` or `|`.
fn function_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let set = common::templates();
    for case in common::cases() {
        for word in case.template.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.is_empty()
                && word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && set.clone().parse("probe", &format!("{{{{ {word} }}}}")).is_ok()
                && !names.iter().any(|n| n == word)
                && !SLOW.iter().any(|s| word.starts_with(s))
                && !matches!(word, "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block")
                && !matches!(word, "true" | "false" | "nil" | "break" | "continue")
            {
                names.push(word.to_string());
            }
        }
    }
    names
}

#[test]
fn every_function_with_awkward_arguments_renders_or_fails() {
    let pool = [
        "nil",
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "1.5",
        "\"\"",
        "\"é,x\"",
        "(list)",
        "(list 1 \"a\" nil)",
        "(dict \"a\" (dict \"b\" 1))",
        "true",
        "(splitList \",\" \"a\")",
        "now",
        "(semver \"1.0.0\")",
        ".Values.missing",
        ".Values.self",
    ];
    let names = function_names();
    assert!(names.len() > 150, "found {} function names", names.len());
    let self_map = Map::new();
    self_map.insert("self", Value::Map(self_map.clone()));
    let data = Value::Map(Map::from_iter([("Values".to_string(), Value::Map(self_map.clone()))]));
    let mut calls = 0;
    for name in &names {
        let mut arg_lists: Vec<String> = vec![String::new()];
        for a in &pool {
            arg_lists.push(a.to_string());
            for b in &pool {
                arg_lists.push(format!("{a} {b}"));
            }
        }
        for a in &pool[..7] {
            for b in &pool[..7] {
                for c in &pool[..7] {
                    arg_lists.push(format!("{a} {b} {c}"));
                }
            }
        }
        let mut set = common::templates();
        for (i, args) in arg_lists.iter().enumerate() {
            let template = format!("t{i}");
            if set.parse(&template, &format!("{{{{ {name} {args} }}}}")).is_ok() {
                let _ = set.execute(&template, &data);
                calls += 1;
            }
        }
    }
    // The map that contains itself is a cycle of reference counts: break it.
    self_map.remove("self");
    assert!(calls > 10_000, "{calls} calls");
}
