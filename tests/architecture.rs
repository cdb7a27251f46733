//! The architecture page is the truth: every crate of the workspace has a level in its table, no
//! crate depends on a crate of its own level or above, and the cycles between a crate's modules
//! are those it lists as kept. Also read across crates here: which crates log.

mod modules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PAGE: &str = "docs/src/architecture/README.md";

/// Where a crate sits: a level (1 the lowest), or among the crates only tests depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Of(u32),
    Tests,
}

/// The levels table's rows (`| 3 | `weaver-core` |`, under `| level | crates |`): each crate's
/// level, and the crates listed at more than one.
fn levels(page: &str) -> (BTreeMap<String, Level>, Vec<String>) {
    let (mut found, mut twice) = (BTreeMap::new(), Vec::new());
    let table = page.split("| level | crates |").nth(1).expect("the page's table of levels");
    for line in table.lines().skip(2).take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let level = match cells[0] {
            "tests" => Level::Tests,
            number => Level::Of(number.parse().unwrap_or_else(|_| panic!("a level is a number or `tests`: {line}"))),
        };
        let crates = cells.get(1).copied().unwrap_or_default();
        for name in crates.split('`').skip(1).step_by(2).filter(|name| name.starts_with("weaver-")) {
            if found.insert(name.to_string(), level).is_some() {
                twice.push(format!("{name} is listed at more than one level"));
            }
        }
    }
    (found, twice)
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

/// What the rule and the crates disagree on: a crate without a level, an edge to a crate of the
/// same level or above (or to a crate only tests may use), a level given to no crate.
fn disagreements(levels: &BTreeMap<String, Level>, actual: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, deps) in actual {
        let Some(&level) = levels.get(name) else {
            wrong.push(format!("{name} has no level in the table"));
            continue;
        };
        for dep in deps {
            let allowed = match (level, levels.get(dep)) {
                (_, None) => continue, // reported as that crate's own
                (Level::Of(from), Some(Level::Of(to))) => to < &from,
                (Level::Tests, Some(Level::Of(_))) => true,
                (_, Some(Level::Tests)) => false,
            };
            if !allowed {
                let level_of = |level: &Level| match level {
                    Level::Of(n) => format!("level {n}"),
                    Level::Tests => "tests only".to_string(),
                };
                wrong.push(format!(
                    "{name} ({}) depends on {dep} ({}): a crate depends only on crates of lower levels",
                    level_of(&level),
                    level_of(&levels[dep])
                ));
            }
        }
    }
    wrong.extend(
        levels
            .keys()
            .filter(|name| !actual.contains_key(*name))
            .map(|name| format!("{name} has a level, but no crate")),
    );
    wrong
}

#[test]
fn every_crate_depends_only_on_crates_of_lower_levels() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join(PAGE)).expect(PAGE);
    let (levels, mut wrong) = levels(&page);
    wrong.extend(disagreements(&levels, &dependencies(root)));
    assert!(wrong.is_empty(), "{PAGE} and the crates disagree:\n{}", wrong.join("\n"));
}

#[test]
fn an_edge_up_or_across_a_level_and_a_crate_without_one_are_found() {
    let page =
        "| level | crates |\n|---|---|\n| 2 | `weaver-b`, `weaver-c` |\n| 1 | `weaver-a` |\n| tests | `weaver-t` |\n";
    let listed_twice = levels("| level | crates |\n|---|---|\n| 2 | `weaver-a` |\n| 1 | `weaver-a` |\n").1;
    assert_eq!(listed_twice, ["weaver-a is listed at more than one level"]);
    let (levels, twice) = levels(page);
    assert_eq!(twice, Vec::<String>::new());
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    let crates = |edges: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        let mut all: BTreeMap<String, BTreeSet<String>> =
            ["weaver-a", "weaver-b", "weaver-c", "weaver-t"].iter().map(|n| (n.to_string(), set(&[]))).collect();
        all.extend(edges.iter().map(|(from, to)| (from.to_string(), set(to))));
        all
    };
    let fine = crates(&[("weaver-b", &["weaver-a"]), ("weaver-c", &["weaver-a"]), ("weaver-t", &["weaver-a"])]);
    assert_eq!(disagreements(&levels, &fine), Vec::<String>::new());
    let wrong = crates(&[("weaver-a", &["weaver-b"]), ("weaver-b", &["weaver-c", "weaver-t"])]);
    assert_eq!(
        disagreements(&levels, &wrong),
        [
            "weaver-a (level 1) depends on weaver-b (level 2): a crate depends only on crates of lower levels",
            "weaver-b (level 2) depends on weaver-c (level 2): a crate depends only on crates of lower levels",
            "weaver-b (level 2) depends on weaver-t (tests only): a crate depends only on crates of lower levels",
        ]
    );
    let mut unlisted = fine.clone();
    unlisted.insert("weaver-d".to_string(), set(&[]));
    unlisted.remove("weaver-t");
    assert_eq!(
        disagreements(&levels, &unlisted),
        ["weaver-d has no level in the table", "weaver-t has a level, but no crate"]
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

/// `-v` shows the debug events of the crates `LOGGING_CRATES` lists: it names each crate under
/// crates/ whose code logs.
#[test]
fn the_crates_verbose_logs_show_are_those_that_log() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let name = format!("weaver_{}", dir.file_name().unwrap().to_string_lossy().replace('-', "_"));
        let logs = files_logging(&dir.join("src"));
        assert_eq!(
            weaver_cli::commands::operator::LOGGING_CRATES.contains(&name.as_str()),
            logs,
            "{name}: logs {logs}, listed in LOGGING_CRATES?"
        );
    }
}

/// Whether a source file below `dir` sends tracing events or spans (macros, `#[instrument]`).
fn files_logging(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.map(|e| e.unwrap().path()).any(|path| match path.extension() {
        Some(ext) if ext == "rs" => {
            let text = std::fs::read_to_string(&path).unwrap();
            [
                "tracing::info!",
                "tracing::debug!",
                "tracing::warn!",
                "tracing::error!",
                "tracing::trace!",
                "tracing::event!",
                "_span!",
                "tracing::instrument",
                "use tracing::",
            ]
            .iter()
            .any(|event| text.contains(event))
        }
        _ => path.is_dir() && files_logging(&path),
    })
}

/// The files a crate's source names by path (`include_str!`, `include_bytes!`, `#[path]`, and
/// joins onto `CARGO_MANIFEST_DIR`) that lie outside the crate, as `file: path`.
fn reads_outside(crate_dir: &Path) -> Vec<String> {
    let named = regex::Regex::new(
        r#"include_(?:str|bytes)!\("([^"]+)"\)|#\[path = "([^"]+)"\]|CARGO_MANIFEST_DIR"\)\)\.join\("([^"]+)"\)|concat!\(env!\("CARGO_MANIFEST_DIR"\), "/([^"]+)"\)"#,
    )
    .unwrap();
    let mut outside = Vec::new();
    let mut files = vec![crate_dir.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        // A build script is no test: engine's embeds the chart it installs.
        if path.extension().is_none_or(|e| e != "rs") || path.file_name().is_some_and(|n| n == "build.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for found in named.captures_iter(&text) {
            let (from, written) = match (found.get(1).or(found.get(2)), found.get(3).or(found.get(4))) {
                (Some(relative), _) => (path.parent().unwrap(), relative.as_str()),
                (None, Some(joined)) => (crate_dir, joined.as_str()),
                (None, None) => unreachable!("the pattern captures one of them"),
            };
            let mut resolved = from.to_path_buf();
            for part in Path::new(written).components() {
                match part {
                    std::path::Component::ParentDir => _ = resolved.pop(),
                    std::path::Component::CurDir => {}
                    other => resolved.push(other),
                }
            }
            if !resolved.starts_with(crate_dir) {
                outside.push(format!("{}: {written}", path.display()));
            }
        }
    }
    outside
}

#[test]
fn no_crate_reads_a_file_outside_itself() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut outside = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        outside.extend(reads_outside(&entry.unwrap().path()));
    }
    assert!(outside.is_empty(), "read from outside their crate:\n{}", outside.join("\n"));
}

#[test]
fn a_file_named_outside_its_crate_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("a");
    std::fs::create_dir_all(crate_dir.join("src/x")).unwrap();
    std::fs::write(
        crate_dir.join("src/x/m.rs"),
        "include_str!(\"../../data.txt\"); include_bytes!(\"../../../b/data\");\n\
         #[path = \"../../../b/cases.rs\"]\nmod cases;\n\
         Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"../../environments\");\n\
         Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"tests/data\");\n\
         concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../b/flood.py\"); concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/own.json\");\n",
    )
    .unwrap();
    let m = crate_dir.join("src/x/m.rs").display().to_string();
    assert_eq!(
        reads_outside(&crate_dir),
        [
            format!("{m}: ../../../b/data"),
            format!("{m}: ../../../b/cases.rs"),
            format!("{m}: ../../environments"),
            format!("{m}: ../b/flood.py"),
        ]
    );
}
