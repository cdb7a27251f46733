//! The architecture page is the truth: every crate of the workspace has a row in its table, no
//! crate depends on a weaver crate its row does not allow, and the cycles between a crate's modules
//! are those it lists as kept.

mod modules;

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

/// The page's list of module cycles kept: `- `weaver-x`: `a`, `b` (why)` or, among the children
/// of a module, `- `weaver-x`, in `m`: `a`, `b` (why)`.
fn kept_cycles(page: &str) -> BTreeSet<modules::Cycle> {
    let list = page.split("### Module cycles kept").nth(1).expect("the page's section ### Module cycles kept");
    list.lines()
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("- `"))
        .map(|line| {
            let (head, names) = line.split_once("`:").expect("`crate`: `module`, ...");
            let head: Vec<&str> = head.split('`').collect(); // crate, ", in ", module
            let parent = head.get(2).map(|m| m.split("::").map(str::to_string).collect()).unwrap_or_default();
            let names = names.split('(').next().unwrap_or_default();
            let set = names.split('`').skip(1).step_by(2).map(str::to_string).collect();
            (head[0].to_string(), parent, set)
        })
        .collect()
}

/// Cycles as the page lists them: `` `weaver-x`, in `m`: `a`, `b` ``.
fn described(cycles: &BTreeSet<modules::Cycle>) -> Vec<String> {
    cycles
        .iter()
        .map(|(name, parent, set)| {
            let set: Vec<String> = set.iter().map(|m| format!("`{m}`")).collect();
            match parent.is_empty() {
                true => format!("`{name}`: {}", set.join(", ")),
                false => format!("`{name}`, in `{}`: {}", parent.join("::"), set.join(", ")),
            }
        })
        .collect()
}

#[test]
fn the_cycles_between_a_crates_modules_are_those_the_architecture_page_keeps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join(PAGE)).expect(PAGE);
    let mut found = BTreeMap::new();
    let mut globs = Vec::new();
    for (name, _) in dependencies(root) {
        let dir = name.strip_prefix("weaver-").unwrap_or(&name);
        let krate = modules::Crate::read(&root.join("crates").join(dir).join("src"));
        found.extend(krate.cycles(&name));
        globs.extend(krate.globs.iter().map(|glob| format!("{name}: {glob}")));
    }
    assert!(
        globs.is_empty(),
        "name the items these glob imports bring in, for this test to follow them:\n{}",
        globs.join("\n")
    );
    let kept = kept_cycles(&page);
    let unlisted: Vec<String> = found
        .iter()
        .filter(|(cycle, _)| !kept.contains(*cycle))
        .map(|(cycle, edges)| format!("{}: {}", described(&BTreeSet::from([cycle.clone()]))[0], edges.join("; ")))
        .collect();
    let found: BTreeSet<modules::Cycle> = found.into_keys().collect();
    let gone = described(&kept.difference(&found).cloned().collect());
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "{PAGE}'s module cycles kept and the crates disagree:\nin the crates, not on the page:\n{}\non the page, not in the crates:\n{}",
        unlisted.join("\n"),
        gone.join("\n")
    );
}

#[test]
fn the_kept_cycles_are_read_with_the_module_they_are_under() {
    let page = "### Module cycles kept\n\n- `weaver-a`: `x`, `y` (why)\n- `weaver-b`, in `m::n`: `p`, `q`, `r` (why: `s`)\n\n## Next\n- `weaver-c`: `z`, `w`\n";
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        kept_cycles(page),
        BTreeSet::from([
            ("weaver-a".to_string(), Vec::new(), set(&["x", "y"])),
            ("weaver-b".to_string(), vec!["m".to_string(), "n".to_string()], set(&["p", "q", "r"])),
        ])
    );
}
