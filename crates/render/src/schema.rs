//! `values.schema.json`: merged values are checked before any template runs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use weaver_core::error::{Error, Location, Result};

pub struct ValuesSchema {
    path: PathBuf,
    validator: jsonschema::Validator,
}

/// At most this many violations are listed; the rest are counted.
const MAX_LISTED: usize = 10;

impl ValuesSchema {
    pub fn compile(path: &Path, schema: &Value) -> Result<ValuesSchema> {
        let validator = jsonschema::validator_for(schema).map_err(|e| {
            Error::at(
                Location::file(path),
                format!("invalid JSON Schema at `{}`: {}", pointer(e.schema_path().as_str()), e.masked()),
            )
        })?;
        Ok(ValuesSchema { path: path.to_path_buf(), validator })
    }

    /// Names each failing value's path. Messages are masked: they never quote the value itself.
    /// `flag_setting(path)` names the command-line flag that set a value (`--set a=…`): an
    /// error whose every failing value a flag set blames the flags, not the environment file.
    pub fn validate(
        &self,
        values: &Value,
        release: &str,
        release_at: &Location,
        flag_setting: impl Fn(&str) -> Option<String>,
    ) -> Result<()> {
        let found: Vec<(String, Option<String>)> = self
            .validator
            .iter_errors(values)
            .map(|e| {
                let path = e.instance_path().as_str();
                (format!("at `{}`: {}", pointer(path), weaver_helm::schema_violation(&e)), flag_setting(path))
            })
            .collect();
        let from_files = found.iter().any(|(_, flag)| flag.is_none());
        let mut flags: Vec<String> = found.iter().filter_map(|(_, flag)| flag.clone()).collect();
        // Beside problems of the repository's values, each one a flag made says so.
        let mut problems: Vec<String> = found
            .into_iter()
            .map(|(problem, flag)| match flag {
                Some(flag) if from_files => format!("{problem} (set by {flag})"),
                _ => problem,
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort();
        problems.dedup();
        let total = problems.len();
        let mut listed = problems.into_iter().take(MAX_LISTED).collect::<Vec<_>>().join("\n  ");
        if total > MAX_LISTED {
            listed.push_str(&format!("\n  … and {} more", total - MAX_LISTED));
        }
        let message = format!("values of release `{release}` do not match {}:\n  {listed}", self.path.display());
        if !from_files {
            flags.sort();
            flags.dedup();
            return Err(Error::new(format!("{}: {message}", flags.join(", ")))
                .with_help("fix the value given on the command line"));
        }
        Err(Error::at(release_at.clone(), message)
            .with_help("fix the values in the environment, its valuesFiles or the chart's values.yaml"))
    }
}

fn pointer(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enum_violation_lists_every_allowed_value_and_never_the_value() {
        let schema = serde_json::json!({"properties": {"mode": {"enum": ["a", "b", "c", "d", "e", "f", 7]}}});
        let schema = ValuesSchema::compile(Path::new("values.schema.json"), &schema).unwrap();
        let values = serde_json::json!({"mode": "SEEDTOKEN-x"});
        let at = Location::file(Path::new("environments/dev.yaml"));
        let err = schema.validate(&values, "app", &at, |_| None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "at `/mode`: value must be one of the following: \"a\", \"b\", \"c\", \"d\", \"e\", \"f\", 7"
            ),
            "{text}"
        );
        assert!(!text.contains("SEEDTOKEN"), "{text}");
        // Set by a flag, the value's error names the flag and not the environment file.
        let err = schema.validate(&values, "app", &at, |path| (path == "/mode").then(|| "--set `mode=…`".into()));
        let text = err.unwrap_err().to_string();
        assert!(text.starts_with("--set `mode=…`: values of release `app` do not match"), "{text}");
        assert!(!text.contains("dev.yaml") && !text.contains("SEEDTOKEN"), "{text}");
    }
}
