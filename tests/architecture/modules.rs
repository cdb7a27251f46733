//! Cycles between a crate's modules: the architecture page lists the ones kept, and the crates'
//! sources must show those and no others. A module's edges are the paths its non-test code names
//! (`use` trees, `crate::`, `super::` and `self::` paths in code), each resolved through the
//! modules and the imports it passes (a re-export names the module that defines the item). An edge
//! between two modules counts between their ancestors that are siblings: weaver-plan's
//! `release::drift` naming `diff::ignore` is an edge from `release` to `diff` among the crate's
//! top-level modules.
//!
//! Read with a small scanner rather than syn: syn for the tests would be built a second time
//! beside the proc macros' own (cargo does not share the host's build), a first run's cost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid regex")
}

/// `#[cfg(test)]` on an item, and `#![cfg(test)]` on a whole file.
static CFG_TEST: LazyLock<Regex> = LazyLock::new(|| regex(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]"));
static CFG_TEST_FILE: LazyLock<Regex> = LazyLock::new(|| regex(r"#!\[\s*cfg\s*\(\s*test\s*\)\s*\]"));
/// An item that `#[cfg(test)]` may stand on (and the scanner then removes whole).
static ITEM: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\s*\([^)]*\))?\s+)?(?:unsafe\s+)?(?:async\s+)?(?:mod|fn|impl|use|struct|enum|const|static|type|trait|macro_rules!)\b",
    )
});
static TOKEN: LazyLock<Regex> = LazyLock::new(|| regex(r"r#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*|::|[{},*]"));
static MOD: LazyLock<Regex> = LazyLock::new(|| regex(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*([;{])"));
static USE: LazyLock<Regex> = LazyLock::new(|| regex(r"\buse\s+([^;]*);"));
static PATH: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b(?:crate|super|self)(?:\s*::\s*(?:r#)?[A-Za-z_][A-Za-z0-9_]*)+"));

type ModulePath = Vec<String>;

/// Of a module's children, who names whom, and through which modules.
type SiblingEdges = BTreeMap<String, BTreeMap<String, (ModulePath, ModulePath)>>;

/// What one module's non-test code says: its child modules, the local names its `use` items bind
/// (to absolute paths), and the absolute paths it names.
#[derive(Default)]
struct Module {
    children: BTreeSet<String>,
    imports: BTreeMap<String, ModulePath>,
    named: Vec<ModulePath>,
}

/// A crate's modules, from `src/lib.rs` down.
#[derive(Default)]
pub(super) struct Crate {
    modules: BTreeMap<ModulePath, Module>,
    /// Glob imports of the crate's own modules outside tests, as `module: path::*`: the scanner
    /// does not know which items a module defines, so it cannot follow them.
    pub(super) globs: Vec<String>,
}

/// A cycle: the crate, the module whose children it joins (empty for the crate root) and those
/// children.
pub(super) type Cycle = (String, ModulePath, BTreeSet<String>);

/// The source with comments, string and character literals blanked, so that neither a doc link
/// nor a message reads as a path.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && (i == 0 || !ident(chars[i - 1]) || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('"') | Some('#'))
            && chars[i + 1..].iter().find(|&&c| c != '#') == Some(&'"')
        {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            i += 2 + hashes;
            while i < chars.len()
                && !(chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes)
            {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The offset just past the brace that closes the one at `open`.
fn closing_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (at, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + at + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The code without the items under `#[cfg(test)]` (a test module, inline or declared, a helper);
/// `#[cfg(test)]` on anything else (a field, a statement) is left, as code the scanner reads.
fn without_tests(code: &str) -> String {
    let mut kept = String::new();
    let mut rest = code;
    while let Some(found) = CFG_TEST.find(rest) {
        let item = &rest[found.end()..];
        kept.push_str(&rest[..found.end()]);
        rest = item;
        if !ITEM.is_match(item) {
            continue;
        }
        kept.truncate(kept.len() - found.len());
        rest = &item[item_end(item)..];
    }
    kept.push_str(rest);
    kept
}

/// Where the item at the start of `code` ends: after its body's closing brace, or after its `;`
/// (`mod tests;`), neither inside brackets or parentheses (`-> [u8; 3]`).
fn item_end(code: &str) -> usize {
    let mut depth = 0i32;
    for (at, c) in code.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' if depth == 0 => return at + 1,
            '{' if depth == 0 => return closing_brace(code, at),
            _ => {}
        }
    }
    code.len()
}

/// The paths a `use` item's tree brings in, each with the name it binds (none for a glob).
fn use_tree(tree: &str) -> Vec<(ModulePath, Option<String>)> {
    let tokens: Vec<&str> = TOKEN.find_iter(tree).map(|t| t.as_str().trim_start_matches("r#")).collect();
    let mut found = Vec::new();
    fn tree_at(
        tokens: &[&str],
        mut at: usize,
        prefix: &mut ModulePath,
        found: &mut Vec<(ModulePath, Option<String>)>,
    ) -> usize {
        let depth = prefix.len();
        loop {
            match tokens.get(at).copied() {
                Some("{") => {
                    at += 1;
                    while tokens.get(at).is_some_and(|t| *t != "}") {
                        at = tree_at(tokens, at, prefix, found);
                        if tokens.get(at) == Some(&",") {
                            at += 1;
                        }
                    }
                    at += 1;
                    break;
                }
                Some("*") => {
                    found.push((prefix.clone(), None));
                    at += 1;
                    break;
                }
                Some("::") => at += 1,
                Some(name) if name != "}" && name != "," => {
                    at += 1;
                    if tokens.get(at) == Some(&"::") {
                        prefix.push(name.to_string());
                        continue;
                    }
                    let (path, bound) = if name == "self" {
                        (prefix.clone(), prefix.last().cloned())
                    } else {
                        let mut path = prefix.clone();
                        path.push(name.to_string());
                        (path, Some(name.to_string()))
                    };
                    let bound = if tokens.get(at) == Some(&"as") {
                        at += 2;
                        tokens.get(at - 1).map(|alias| alias.to_string())
                    } else {
                        bound
                    };
                    found.push((path, bound.filter(|b| b != "_")));
                    break;
                }
                _ => break,
            }
        }
        prefix.truncate(depth);
        at
    }
    tree_at(&tokens, 0, &mut Vec::new(), &mut found);
    found
}

impl Crate {
    /// Reads the crate whose sources are under `src` (`lib.rs` its root).
    pub(super) fn read(src: &Path) -> Crate {
        let mut krate = Crate::default();
        krate.read_file(&src.join("lib.rs"), Vec::new());
        krate
    }

    fn read_file(&mut self, file: &Path, module: ModulePath) {
        let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = code_only(&source);
        // A file that is all test (`#![cfg(test)]`) names nothing the crate's code uses.
        let code = if CFG_TEST_FILE.is_match(&code) { String::new() } else { without_tests(&code) };
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "mod.rs") => file.parent().expect("a file's directory").to_path_buf(),
            _ => file.with_extension(""),
        };
        self.read_code(&code, &module, &dir);
    }

    /// Reads one module's code: its inline modules apart, its child files in turn.
    fn read_code(&mut self, code: &str, module: &ModulePath, dir: &Path) {
        let mut own = String::new();
        let mut rest = code;
        let mut children = Vec::new();
        while let Some(found) = MOD.captures(rest) {
            let whole = found.get(0).expect("a match");
            let name = found[1].to_string();
            own.push_str(&rest[..whole.end()]);
            if &found[2] == "{" {
                let end = closing_brace(rest, whole.end() - 1);
                children.push((name, Some(rest[whole.end()..end - 1].to_string())));
                rest = &rest[end..];
            } else {
                children.push((name, None));
                rest = &rest[whole.end()..];
            }
        }
        own.push_str(rest);
        let entry = self.modules.entry(module.clone()).or_default();
        entry.children.extend(children.iter().map(|(name, _)| name.clone()));
        self.read_paths(&own, module);
        for (name, inline) in children {
            let mut child = module.clone();
            child.push(name.clone());
            match inline {
                Some(code) => self.read_code(&code, &child, &dir.join(&name)),
                None => {
                    let file = [dir.join(format!("{name}.rs")), dir.join(&name).join("mod.rs")]
                        .into_iter()
                        .find(|f| f.is_file())
                        .unwrap_or_else(|| panic!("{}: no file for `mod {name}`", dir.display()));
                    self.read_file(&file, child);
                }
            }
        }
    }

    /// The `use` items and the `crate::`, `super::` and `self::` paths of a module's own code.
    fn read_paths(&mut self, code: &str, module: &ModulePath) {
        let children = self.modules[module].children.clone();
        // `crate::`, `self::` and `super::` lead anywhere in the crate; a child's name to the child;
        // anything else to another crate.
        let absolute = |relative: &[String]| -> Option<ModulePath> {
            let mut at = module.clone();
            let leading = relative.iter().take_while(|s| matches!(s.as_str(), "crate" | "self" | "super")).count();
            if leading == 0 && !relative.first().is_some_and(|first| children.contains(first)) {
                return None;
            }
            for segment in &relative[..leading] {
                match segment.as_str() {
                    "crate" => at.clear(),
                    "super" => {
                        at.pop();
                    }
                    _ => {}
                }
            }
            at.extend(relative[leading..].iter().cloned());
            Some(at)
        };
        let mut imports = BTreeMap::new();
        let mut named = Vec::new();
        for found in USE.captures_iter(code) {
            for (relative, bound) in use_tree(&found[1]) {
                if let Some(path) = absolute(&relative) {
                    match bound {
                        Some(bound) => {
                            imports.insert(bound, path.clone());
                        }
                        None => self.globs.push(format!("{}: {}::*", module.join("::"), path.join("::"))),
                    }
                    named.push(path);
                }
            }
        }
        for found in PATH.find_iter(code) {
            let relative: Vec<String> =
                found.as_str().split("::").map(|s| s.trim().trim_start_matches("r#").to_string()).collect();
            named.extend(absolute(&relative));
        }
        let entry = self.modules.get_mut(module).expect("the module read");
        entry.imports.extend(imports);
        entry.named.extend(named);
    }

    /// The module that defines what `path` names, following imports (a re-export) to their
    /// source.
    fn defining(&self, path: &[String], hops: usize) -> ModulePath {
        let mut at: ModulePath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let Some(module) = self.modules.get(&at) else { break };
            if module.children.contains(segment) {
                at.push(segment.clone());
            } else if let Some(source) = module.imports.get(segment).filter(|_| hops < 16) {
                // (Re-exports chain a few times at most; the bound stops a loop of imports.)
                let mut followed = source.clone();
                followed.extend(path[i + 1..].iter().cloned());
                return self.defining(&followed, hops + 1);
            } else {
                break;
            }
        }
        at
    }

    /// Edges between siblings: for each module whose children name each other, who names whom,
    /// and through which modules (the first seen: `plan::build` naming `release::record`).
    fn sibling_edges(&self) -> BTreeMap<ModulePath, SiblingEdges> {
        let mut edges: BTreeMap<ModulePath, SiblingEdges> = BTreeMap::new();
        for (from, module) in &self.modules {
            for named in &module.named {
                let to = self.defining(named, 0);
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common == from.len() || common == to.len() {
                    continue; // a module and its own ancestor or descendant
                }
                edges
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .entry(to[common].clone())
                    .or_insert_with(|| (from.clone(), to.clone()));
            }
        }
        edges
    }

    /// The cycles between sibling modules (each strongly connected set of two or more), each with
    /// its edges, told as `a → b (a::x names b::y)`.
    pub(super) fn cycles(&self, name: &str) -> BTreeMap<Cycle, Vec<String>> {
        let mut cycles = BTreeMap::new();
        for (parent, graph) in self.sibling_edges() {
            let reach = |start: &String| -> BTreeSet<String> {
                let mut seen = BTreeSet::new();
                let mut next = vec![start.clone()];
                while let Some(module) = next.pop() {
                    for to in graph.get(&module).into_iter().flat_map(|m| m.keys()) {
                        if seen.insert(to.clone()) {
                            next.push(to.clone());
                        }
                    }
                }
                seen
            };
            let reached: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
            for (module, from_it) in &reached {
                if !from_it.contains(*module) {
                    continue;
                }
                let set: BTreeSet<String> = from_it
                    .iter()
                    .filter(|other| reached.get(other).is_some_and(|back| back.contains(*module)))
                    .cloned()
                    .collect();
                let told = set
                    .iter()
                    .flat_map(|from| {
                        graph[from].iter().filter(|(to, _)| set.contains(*to)).map(move |(to, how)| (from, to, how))
                    })
                    .map(|(from, to, (a, b))| format!("{from} → {to} ({} names {})", a.join("::"), b.join("::")))
                    .collect();
                cycles.insert((name.to_string(), parent.clone(), set), told);
            }
        }
        cycles
    }
}

mod scanner {
    use super::*;

    fn crate_of(files: &[(&str, &str)]) -> (tempfile::TempDir, Crate) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("a directory");
            std::fs::write(&file, text).expect("a file");
        }
        let krate = Crate::read(dir.path());
        (dir, krate)
    }

    fn cycles(files: &[(&str, &str)]) -> Vec<String> {
        let (_dir, krate) = crate_of(files);
        krate
            .cycles("c")
            .into_keys()
            .map(|(_, parent, set)| format!("{}: {}", parent.join("::"), set.into_iter().collect::<Vec<_>>().join(" ")))
            .collect()
    }

    #[test]
    fn a_cycle_through_a_use_group_a_super_path_or_a_reexport_is_found() {
        let a = "use crate::{b::B, other};\npub struct A;\n";
        assert_eq!(
            cycles(&[
                ("lib.rs", "mod a;\nmod b;\nmod other;\n"),
                ("a.rs", a),
                ("b.rs", "fn f() -> super::a::A { todo!() }\n"),
                ("other.rs", "")
            ]),
            [": a b"]
        );
        // `crate::A` is `a`'s, re-exported at the root; `b` names it so, from a nested module.
        let lib = "mod a;\nmod b;\npub use a::A;\n";
        let b = "mod inner {\n    pub(crate) fn f() -> crate::A { todo!() }\n}\n";
        assert_eq!(
            cycles(&[("lib.rs", lib), ("a.rs", "use crate::b as other;\npub struct A;\n"), ("b/mod.rs", b)]),
            [": a b"]
        );
        let nested = "mod x;\nmod y;\n";
        assert_eq!(
            cycles(&[
                ("lib.rs", "mod n;\n"),
                ("n/mod.rs", nested),
                ("n/x.rs", "use super::y::Y as Why;\n"),
                ("n/y.rs", "type T = self::super::x::X;\npub struct Y;\n")
            ]),
            ["n: x y"]
        );
    }

    #[test]
    fn comments_strings_tests_and_one_way_imports_are_no_cycle() {
        let a = "//! Unlike [`crate::b`]\nuse crate::b::B;\nconst S: &str = \"crate::b\";\n";
        let b = "/* crate::a::A */\nconst C: char = '\"';\nconst R: &str = r#\"crate::a\"#;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n#[cfg(test)]\nfn helper() -> crate::a::A { todo!() }\n#[cfg(test)]\nmod more;\npub struct B;\n";
        assert_eq!(cycles(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", a), ("b.rs", b)]), Vec::<String>::new());
    }

    #[test]
    fn a_test_helper_with_brackets_is_removed_whole_and_a_test_field_removes_nothing_after_it() {
        let a = "#[cfg(test)]\nfn bytes() -> [u8; 3] { let _ = crate::b::B; [0; 3] }\npub struct A;\n";
        let b = "pub struct B {\n    #[cfg(test)]\n    probe: u8,\n    a: crate::a::A,\n}\n";
        assert_eq!(cycles(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", a), ("b.rs", b)]), Vec::<String>::new());
        let a = "pub struct A;\nfn f() -> crate::b::B { todo!() }\n";
        assert_eq!(cycles(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", a), ("b.rs", b)]), [": a b"]);
    }

    #[test]
    fn a_glob_import_of_the_crates_own_module_is_told() {
        let (_dir, krate) = crate_of(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", "use crate::b::*;\n"), ("b.rs", "")]);
        assert_eq!(krate.globs, ["a: b::*"]);
    }
}
