//! The architecture page's crate table is the truth: every crate of the workspace has a row, and
//! no crate depends on a weaver crate its row does not allow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PAGE: &str = "docs/src/architecture/README.md";

/// The table's rows: each crate and the weaver crates it may depend on.
fn allowed(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let crate_name = |cell: &str| -> Vec<String> {
        cell.split('`').skip(1).step_by(2).filter(|name| name.starts_with("weaver-")).map(str::to_string).collect()
    };
    page.lines()
        .filter(|line| line.starts_with("| `weaver-"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            let name = crate_name(cells[0]).remove(0);
            let may = crate_name(cells.last().expect("a row has cells")).into_iter().collect();
            (name, may)
        })
        .collect()
}

/// Each workspace crate's name and the weaver crates among its normal dependencies.
fn dependencies(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let manifest = entry.expect("an entry of crates/").path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let name = parsed["package"]["name"].as_str().expect("package.name").to_string();
        let weaver = parsed
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|deps| deps.keys().filter(|k| k.starts_with("weaver-")).cloned().collect())
            .unwrap_or_default();
        found.insert(name, weaver);
    }
    found
}

/// What the table and the crates disagree on: a crate without a row, a dependency its row does not
/// allow, a row without a crate.
fn disagreements(
    allowed: &BTreeMap<String, BTreeSet<String>>,
    actual: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, deps) in actual {
        match allowed.get(name) {
            None => wrong.push(format!("{name} has no row in the table")),
            Some(may) => wrong.extend(
                deps.difference(may).map(|dep| format!("{name} depends on {dep}, which its row does not allow")),
            ),
        }
    }
    wrong.extend(
        allowed.keys().filter(|name| !actual.contains_key(*name)).map(|name| format!("{name} has a row, but no crate")),
    );
    wrong
}

#[test]
fn every_crate_depends_only_on_what_the_architecture_page_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join(PAGE)).expect(PAGE);
    let wrong = disagreements(&allowed(&page), &dependencies(root));
    assert!(wrong.is_empty(), "{PAGE} and the crates disagree:\n{}", wrong.join("\n"));
}

#[test]
fn an_edge_the_table_does_not_allow_and_a_crate_without_a_row_are_found() {
    let page = "| crate | owns | may depend on |\n|---|---|---|\n| `weaver-a` | a, on `weaver-b`'s side | nothing of weaver |\n| `weaver-b` | b | `weaver-a` |\n";
    let allowed = allowed(page);
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let fine = BTreeMap::from([("weaver-a".to_string(), set(&[])), ("weaver-b".to_string(), set(&["weaver-a"]))]);
    assert_eq!(disagreements(&allowed, &fine), Vec::<String>::new());
    let upward =
        BTreeMap::from([("weaver-a".to_string(), set(&["weaver-b"])), ("weaver-b".to_string(), set(&["weaver-a"]))]);
    assert_eq!(disagreements(&allowed, &upward), ["weaver-a depends on weaver-b, which its row does not allow"]);
    let unlisted = BTreeMap::from([("weaver-c".to_string(), set(&[]))]);
    assert_eq!(
        disagreements(&allowed, &unlisted),
        ["weaver-c has no row in the table", "weaver-a has a row, but no crate", "weaver-b has a row, but no crate"]
    );
}
