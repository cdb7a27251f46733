//! `weaver.yaml` at the root of the weaver repository (`--repo`): settings of the repository
//! itself. `ignorePaths` lists glob patterns of paths that never affect a release (the code,
//! tests and docs of a repository that also holds them), which `weaver changed` and
//! `--changed-since` leave out entirely: they affect nothing and are not unattributed.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Source;
use super::source::utf8;
use weaver_core::error::{Error, Location, Result};

pub const SETTINGS_FILE: &str = "weaver.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SettingsFile {
    ignore_paths: Option<Vec<Spanned<String>>>,
}

/// The repository's settings; the defaults when there is no `weaver.yaml`.
#[derive(Debug, Default)]
pub struct Settings {
    ignore_paths: GlobSet,
}

impl Settings {
    /// Reads `weaver.yaml` from `source`.
    ///
    /// # Errors
    /// A file that is not YAML, has an unknown key or a value of the wrong type, or a pattern
    /// that is not a glob: each at its line and column.
    pub fn load(source: &dyn Source) -> Result<Settings> {
        let path = Path::new(SETTINGS_FILE);
        let Some(bytes) = source.read(path).map_err(|err| Error::io("read settings", path, err))? else {
            return Ok(Settings::default());
        };
        let text = utf8(path, bytes)?;
        let file: Option<SettingsFile> = weaver_yaml::from_str_as(path, &text, "invalid weaver.yaml")?;
        let mut globs = GlobSetBuilder::new();
        for pattern in file.unwrap_or_default().ignore_paths.unwrap_or_default() {
            let at = Location::at(path, pattern.referenced.line(), pattern.referenced.column());
            globs.add(glob(&pattern.value).map_err(|why| {
                Error::at(at, format!("ignorePaths: `{}` is not a glob pattern: {why}", pattern.value))
                    .with_help("patterns are relative to the repository, like src/**, docs/** or *.md")
            })?);
        }
        let ignore_paths = globs.build().map_err(|err| Error::at(Location::file(path), err.to_string()))?;
        Ok(Settings { ignore_paths })
    }

    /// Whether `path` (relative to the repository, with `/`) is one that never affects a release.
    pub fn ignores(&self, path: &Path) -> bool {
        self.ignore_paths.is_match(path)
    }
}

/// `*` stays within one directory, `**` crosses any number; a leading `/` would never match a
/// relative path, so it is refused rather than silently matching nothing.
fn glob(pattern: &str) -> std::result::Result<Glob, String> {
    if pattern.starts_with('/') {
        return Err("it starts with `/`; write it relative to the repository".into());
    }
    if pattern.is_empty() {
        return Err("it is empty".into());
    }
    GlobBuilder::new(pattern).literal_separator(true).build().map_err(|err| err.kind().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(patterns: &[&str]) -> Settings {
        let mut globs = GlobSetBuilder::new();
        for p in patterns {
            globs.add(glob(p).unwrap());
        }
        Settings { ignore_paths: globs.build().unwrap() }
    }

    #[test]
    fn a_star_stays_in_its_directory_and_two_cross_them() {
        let s = settings(&["src/**", "*.md", "docs/*.txt"]);
        assert!(s.ignores(Path::new("src/main.rs")));
        assert!(s.ignores(Path::new("src/a/b/c.rs")));
        assert!(s.ignores(Path::new("README.md")));
        assert!(!s.ignores(Path::new("charts/web/README.md")), "`*` does not cross `/`");
        assert!(s.ignores(Path::new("docs/a.txt")));
        assert!(!s.ignores(Path::new("docs/x/a.txt")));
        assert!(!s.ignores(Path::new("srcs/main.rs")));
        assert!(!Settings::default().ignores(Path::new("src/main.rs")));
    }

    #[test]
    fn patterns_that_match_nothing_or_do_not_parse_are_refused() {
        assert!(glob("/src/**").unwrap_err().contains("starts with `/`"));
        assert_eq!(glob("").unwrap_err(), "it is empty");
        assert!(glob("src/[a").unwrap_err().contains("unclosed character class"), "{:?}", glob("src/[a"));
    }
}
