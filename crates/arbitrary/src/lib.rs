//! Test inputs shared by the property tests of several crates (a dev-dependency only).

/// YAML-ish text for property tests of readers: structured documents over the keys weaver's
/// files use, and soups of YAML fragments at random indentation.
pub fn arbitrary_yaml() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const KEYS: &[&str] = &[
        "extends",
        "namespace",
        "values",
        "releases",
        "name",
        "chart",
        "patches",
        "ops",
        "op",
        "path",
        "value",
        "target",
        "kind",
        "secrets",
        "valuesFiles",
        "needs",
        "labels",
        "cluster",
        "context",
        "apiVersion",
        "clusters",
        "users",
        "contexts",
        "user",
        "token",
        "current-context",
        "server",
        "sops",
        "age",
        "recipient",
        "enc",
        "mac",
        "lastmodified",
        "version",
        "data",
        "a",
        "<<",
    ];
    const SCALARS: &[&str] = &[
        "",
        "~",
        "null",
        "true",
        "1",
        "-1",
        "0x1f",
        "1e400",
        ".nan",
        "x",
        "base",
        "'q'",
        "\"d\"",
        "ENC[AES256_GCM,data:,iv:,tag:,type:str]",
        "ENC[AES256_GCM,data:QQ==,iv:QQ==,tag:QQ==,type:int]",
        "age1x",
        "-",
        "[",
        "{",
        "]",
        "}",
        "&a",
        "*a",
        "!!binary QQ==",
        "!!int x",
        "|",
        ">-",
        "? x",
        "%YAML 1.2",
        "---",
        "...",
        "#c",
        "\t",
        "\u{feff}",
        "é",
    ];
    let scalar = proptest::sample::select(SCALARS).prop_map(str::to_string);
    let key = proptest::sample::select(KEYS);
    let tree = scalar.clone().prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                items.iter().map(|i| format!("- {}", i.replace('\n', "\n  "))).collect::<Vec<_>>().join("\n")
            }),
            proptest::collection::vec((key.clone(), inner), 0..4).prop_map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}:\n  {}", v.replace('\n', "\n  ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
        ]
    });
    let line = (0..6usize, proptest::sample::select(KEYS), proptest::sample::select(SCALARS), any::<bool>()).prop_map(
        |(indent, k, v, keyed)| {
            if keyed { format!("{}{k}: {v}", " ".repeat(indent)) } else { format!("{}- {v}", " ".repeat(indent)) }
        },
    );
    prop_oneof![tree, proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))]
}
