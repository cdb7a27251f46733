//! Shell completion with clap_complete's dynamic engine: the shell asks weaver itself
//! (`COMPLETE=bash weaver -- weaver render --env …`), so `--env <TAB>` completes the
//! repository's environments and `-r <TAB>` the releases of the chosen one. The argument
//! definitions (`cli`) name these completers; `weaver completions` prints the script.

use std::ffi::OsStr;
use std::sync::Arc;

use clap_complete::engine::CompletionCandidate;

use weaver_project::{FsSource, Project};

/// The deployable environments of the repository the completed command line names with --repo.
pub fn environments(current: &OsStr) -> Vec<CompletionCandidate> {
    let line = completed_line();
    let project = project(&line);
    let names = project.environment_names().unwrap_or_default();
    let deployable = names.into_iter().filter(|name| project.environment(name).is_ok_and(|env| !env.is_abstract));
    candidates(deployable, current)
}

/// The releases of the environment the completed command line names with --env.
pub fn releases(current: &OsStr) -> Vec<CompletionCandidate> {
    let line = completed_line();
    let Some(env) = flag_value(&line, &["--env", "-e"]) else { return Vec::new() };
    let names = project(&line).environment(env).map(|env| env.releases.into_iter().map(|r| r.name).collect());
    candidates(names.unwrap_or_else(|_| Vec::new()), current)
}

/// A completer sees only the word being completed, not the other flags, so --repo and --env
/// are read from the command line the shell passed after `--`.
fn completed_line() -> Vec<String> {
    std::env::args_os().map(|a| a.to_string_lossy().into_owned()).skip_while(|a| a != "--").skip(1).collect()
}

fn project(line: &[String]) -> Project {
    Project::new(Arc::new(FsSource::new(flag_value(line, &["--repo"]).unwrap_or("."))))
}

/// The value of the last `--flag VALUE` or `--flag=VALUE`, as clap would take it.
fn flag_value<'a>(line: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut value = None;
    for (i, arg) in line.iter().enumerate() {
        for name in names {
            if arg == name {
                value = line.get(i + 1).map(String::as_str);
            } else if let Some(v) = arg.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
                value = Some(v);
            }
        }
    }
    value
}

fn candidates(names: impl IntoIterator<Item = String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names.into_iter().filter(|name| name.starts_with(current.as_ref())).map(CompletionCandidate::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_as_clap_reads_them() {
        let line: Vec<String> = ["weaver", "--repo", "a", "render", "--env=dev", "--repo=b", "-e", "prod", "-r", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag_value(&line, &["--repo"]), Some("b"));
        assert_eq!(flag_value(&line, &["--env", "-e"]), Some("prod"));
        assert_eq!(flag_value(&line, &["--context"]), None);
    }
}
