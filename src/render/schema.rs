//! `values.schema.json`: merged values are checked before any template runs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Location, Result};

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
    pub fn validate(&self, values: &Value, release: &str, release_at: &Location) -> Result<()> {
        let mut problems: Vec<String> = self
            .validator
            .iter_errors(values)
            .map(|e| format!("at `{}`: {}", pointer(e.instance_path().as_str()), crate::helm::schema_violation(&e)))
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
        Err(Error::at(
            release_at.clone(),
            format!("values of release `{release}` do not match {}:\n  {listed}", self.path.display()),
        )
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
        let err = schema.validate(&values, "app", &Location::file(Path::new("environments/dev.yaml"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "at `/mode`: value must be one of the following: \"a\", \"b\", \"c\", \"d\", \"e\", \"f\", 7"
            ),
            "{text}"
        );
        assert!(!text.contains("SEEDTOKEN"), "{text}");
    }
}
