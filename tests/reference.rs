//! The book's command reference (docs/src/reference/weaver*.md) and the man pages (docs/man/)
//! are generated from the clap definitions, so they cannot drift from `--help`. This test is
//! the generator: it fails when a committed file differs from what it generates, and
//! `WEAVER_BLESS=1 cargo test --test suite reference::` writes them anew.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use weaver_cli::cli::Cli;

/// The width `--help` wraps at when it does not print to a terminal (clap's default, under the
/// CLI's own `max_term_width`), so the pages match what a pipe or a file gets.
const HELP_WIDTH: usize = 100;

fn root() -> PathBuf {
    common::project_root()
}

/// The CLI as the binary builds it, global options propagated to every subcommand.
fn command() -> clap::Command {
    let mut cmd = Cli::command().term_width(HELP_WIDTH);
    cmd.build();
    cmd
}

/// `weaver`, then each command, then each subcommand of a command group: (words after
/// `weaver`, the command). Hidden commands (`render-worker`, which weaver runs itself) have
/// no page.
fn commands(cmd: &clap::Command) -> Vec<(Vec<String>, clap::Command)> {
    let mut out = vec![(Vec::new(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        out.push((vec![sub.get_name().to_string()], sub.clone()));
        for leaf in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            out.push((vec![sub.get_name().to_string(), leaf.get_name().to_string()], leaf.clone()));
        }
    }
    out
}

/// The text `weaver WORDS --help` prints: clap's answer to that command line (long or short
/// form, as clap chooses for the command).
fn help(words: &[String]) -> String {
    let args = std::iter::once("weaver").chain(words.iter().map(String::as_str)).chain(["--help"]);
    let err = Cli::command().term_width(HELP_WIDTH).try_get_matches_from(args).expect_err("--help");
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    err.render().to_string()
}

/// docs/src/reference/weaver.md and weaver-<command>.md: each command's `--help`, a group's
/// subcommands on its page.
fn reference_pages() -> BTreeMap<PathBuf, String> {
    let cmd = command();
    let mut pages: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (words, sub) in commands(&cmd) {
        let file = match words.first() {
            None => "weaver.md".to_string(),
            Some(first) => format!("weaver-{first}.md"),
        };
        let title = std::iter::once("weaver").chain(words.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
        let man = std::iter::once("weaver").chain(words.iter().map(String::as_str)).collect::<Vec<_>>().join("-");
        let page = pages.entry(root().join("docs/src/reference").join(&file)).or_insert_with(|| {
            "<!-- Generated from the clap definitions (crates/cli/src/cli.rs) by tests/reference.rs: do not edit.\n     \
             Refresh with: WEAVER_BLESS=1 cargo test --test suite reference:: -->\n"
                .to_string()
        });
        let heading = if words.len() < 2 { "#" } else { "##" };
        let about = sub.get_about().map(|a| format!("{a}\n\n")).unwrap_or_default();
        page.push_str(&format!(
            "\n{heading} `{title}`\n\n{about}```text\n$ {title} --help\n{}```\n\nMan page: `man {man}` (docs/man/{man}.1).\n",
            help(&words).trim_end().to_string() + "\n"
        ));
    }
    pages
}

/// docs/man/weaver.1 and weaver-<command>[-<subcommand>].1, by clap_mangen.
fn man_pages() -> BTreeMap<PathBuf, String> {
    let cmd = command();
    let mut pages = BTreeMap::new();
    for (words, sub) in commands(&cmd) {
        let name = std::iter::once("weaver").chain(words.iter().map(String::as_str)).collect::<Vec<_>>().join("-");
        let mut out = Vec::new();
        // A subcommand's page is named as git's are (weaver-render); clap takes names as
        // `&'static str` (its `string` feature is off), and the test runs this once.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        clap_mangen::Man::new(sub.name(static_name)).render(&mut out).expect("render the man page");
        pages.insert(root().join("docs/man").join(format!("{name}.1")), String::from_utf8(out).unwrap());
    }
    pages
}

/// Compares generated files with the committed ones (or writes them under WEAVER_BLESS=1), and
/// reports committed files in `dir` matching `prefix` that nothing generates any more.
fn check(generated: BTreeMap<PathBuf, String>, dir: &Path, is_generated: impl Fn(&str) -> bool) {
    let bless = std::env::var_os("WEAVER_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, text) in &generated {
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if committed != *text {
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            } else {
                stale.push(format!("{} differs from what crates/cli/src/cli.rs generates", path.display()));
            }
        }
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_generated(&name) && !generated.contains_key(&entry.path()) {
            if bless {
                std::fs::remove_file(entry.path()).unwrap();
            } else {
                stale.push(format!("{} is for a command that no longer exists", entry.path().display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nrefresh with: WEAVER_BLESS=1 cargo test --test suite reference:: (and commit the result)",
        stale.join("\n")
    );
}

#[test]
fn the_command_reference_is_generated_from_the_cli() {
    let dir = root().join("docs/src/reference");
    check(reference_pages(), &dir, |name| {
        name == "weaver.md" || (name.starts_with("weaver-") && name.ends_with(".md"))
    });
}

#[test]
fn the_man_pages_are_generated_from_the_cli() {
    let dir = root().join("docs/man");
    check(man_pages(), &dir, |name| name.ends_with(".1"));
}

/// The pages hold what the binary prints: `weaver … --help` run for real, not only clap's
/// rendering in this process.
#[test]
fn the_reference_matches_what_help_prints() {
    let pages = reference_pages();
    let all: String = pages.values().cloned().collect();
    let repo = common::Repo::empty();
    for (words, _) in commands(&command()) {
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        let run = std::process::Command::new(common::WEAVER)
            .args(&args)
            .current_dir(repo.path())
            .env_remove("COLUMNS")
            .output()
            .expect("run weaver --help");
        assert!(run.status.success(), "weaver {args:?}");
        let printed = String::from_utf8(run.stdout).unwrap();
        let title = std::iter::once("weaver").chain(words.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
        let block = format!("$ {title} --help\n{}", printed.trim_end());
        assert!(all.contains(&block), "the reference's `{title} --help` is not what the binary prints:\n{printed}");
    }
}

/// Every command's `--help` ends with examples, and each example parses with the current CLI.
#[test]
fn every_command_has_help_examples_that_parse() {
    let cmd = command();
    for (words, sub) in commands(&cmd) {
        if words.len() != 1 {
            continue; // the top level lists the commands; a group's examples cover its subcommands
        }
        let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        let examples: Vec<&str> = help
            .strip_prefix("Examples:\n")
            .unwrap_or_else(|| panic!("`weaver {}` --help has no examples", words[0]))
            .lines()
            .collect();
        let mut named = false;
        for line in examples {
            let line = line.split(" # ").next().unwrap().trim();
            // The command itself: the words from `weaver` up to a pipe or redirection.
            let Some(start) = line.find("weaver ") else { continue };
            let text = line[start..].split(['|', '>', ')', '\'']).next().unwrap();
            let args: Vec<String> =
                text.split_whitespace().map(|w| w.trim_matches('"').replace("$BASE", "origin/main")).collect();
            if let Err(err) = Cli::try_parse_from(&args) {
                panic!("the help example `{line}` does not parse:\n{}", err.render());
            }
            named |= args.get(1) == Some(&words[0]);
        }
        assert!(named, "`weaver {}` --help has no example of itself", words[0]);
    }
}

/// An option whose help says its default (`[default: none]`, `[default: not served]`) has clap's
/// own hidden: `--help` printed both, `[default: ""]` under `[default: none]`.
#[test]
fn no_option_states_its_default_twice() {
    let mut twice = Vec::new();
    for (words, sub) in commands(&command()) {
        for arg in sub.get_arguments() {
            let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
            if help.contains("[default:") && !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set() {
                twice.push(format!("weaver {} --{}", words.join(" "), arg.get_long().unwrap_or_default()));
            }
        }
    }
    assert!(twice.is_empty(), "these say their default in their help and clap says it again: {twice:?}");
}

/// The synopsis of docs/src/reference/cli.md is written by hand: every option it gives a
/// command must be one of that command's (or its subcommands').
#[test]
fn the_synopsis_names_only_options_that_exist() {
    let page = std::fs::read_to_string(root().join("docs/src/reference/cli.md")).unwrap();
    let synopsis = page.split("```\n").nth(1).expect("cli.md opens with a synopsis block");
    let cmd = command();
    let flag = regex::Regex::new(r"--[a-z][a-z-]*").unwrap();
    let mut unknown = Vec::new();
    for line in synopsis.lines().filter(|l| l.starts_with("weaver ")) {
        let name = line.split_whitespace().nth(1).unwrap();
        let sub = cmd.find_subcommand(name).unwrap_or_else(|| panic!("cli.md: no command `{name}`"));
        let longs: Vec<String> = std::iter::once(sub)
            .chain(sub.get_subcommands())
            .flat_map(|c| c.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")))
            .collect();
        for found in flag.find_iter(line) {
            if !longs.iter().any(|l| l == found.as_str()) {
                unknown.push(format!("{name}: {}", found.as_str()));
            }
        }
    }
    assert!(unknown.is_empty(), "docs/src/reference/cli.md names options that do not exist: {unknown:?}");
}
