//! `charts/<chart>/`: metadata, default values, the optional values schema, CRDs, templates
//! and the other files templates may read with `files.get`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Location, Result};
use crate::project::source::Source;

pub const CHARTS_DIR: &str = "charts";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChartFile {
    name: String,
    version: String,
    description: Option<String>,
    app_version: Option<String>,
}

/// A template file: rendered on its own unless its name starts with `_`.
#[derive(Debug, Clone)]
pub struct Template {
    /// Repository-relative path; also the template's name in the engine, so errors name it.
    pub path: PathBuf,
    pub source: String,
}

impl Template {
    /// `_helpers.j2` and the like hold macros and partials only.
    pub fn is_partial(&self) -> bool {
        self.path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('_'))
    }
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub app_version: Option<String>,
    pub dir: PathBuf,
    pub values: Map<String, Value>,
    /// `values.schema.json`, with its path.
    pub schema: Option<(PathBuf, Value)>,
    /// `crds/*.yaml`, applied first and never templated.
    pub crds: Vec<Template>,
    pub templates: Vec<Template>,
    /// Every other file of the chart, by path relative to the chart directory.
    pub files: Arc<BTreeMap<String, String>>,
}

pub fn chart_dir(name: &str) -> PathBuf {
    Path::new(CHARTS_DIR).join(name)
}

/// The names of the charts in the repository, sorted.
pub fn list_charts(source: &dyn Source) -> Result<Vec<String>> {
    let dir = Path::new(CHARTS_DIR);
    let entries = source.list(dir).map_err(|e| Error::io("list directory", dir, e))?.unwrap_or_default();
    Ok(entries.into_iter().filter(|e| e.is_dir).map(|e| e.name).collect())
}

/// Loads `charts/<name>`; `referenced_at` is where a release names the chart.
pub fn load_chart(source: &dyn Source, name: &str, referenced_at: &Location) -> Result<Chart> {
    let dir = chart_dir(name);
    let meta_path = dir.join("chart.yaml");
    if !source.exists(&meta_path) {
        let known = list_charts(source)?;
        return Err(Error::at(
            referenced_at.clone(),
            format!("chart `{name}` not found: {} does not exist", meta_path.display()),
        )
        .with_help(format!(
            "charts in this repository: {}",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    let meta: ChartFile = crate::yaml::from_str_as(&meta_path, &source.read_text(&meta_path)?, "invalid chart.yaml")?;

    let values_path = dir.join("values.yaml");
    let values = if source.exists(&values_path) {
        let text = source.read_text(&values_path)?;
        match crate::yaml::from_str::<Option<Value>>(&values_path, &text)? {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(Error::at(Location::file(&values_path), "must be a mapping of values at the top level"));
            }
        }
    } else {
        Map::new()
    };

    let schema_path = dir.join("values.schema.json");
    let schema = if source.exists(&schema_path) {
        let text = source.read_text(&schema_path)?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| {
            Error::at(
                Location::at(&schema_path, e.line() as u64, e.column() as u64),
                format!("invalid JSON: {}", crate::error::json_reason(&e)),
            )
        })?;
        Some((schema_path, schema))
    } else {
        None
    };

    let mut crds = Vec::new();
    let mut templates = Vec::new();
    let mut files = BTreeMap::new();
    let special = ["chart.yaml", "values.yaml", "values.schema.json"];
    for path in source.walk(&dir)? {
        let relative = path.strip_prefix(&dir).unwrap_or(&path);
        let relative_str = relative.to_string_lossy().replace('\\', "/");
        if relative.starts_with("templates") {
            templates.push(Template { source: source.read_text(&path)?, path });
        } else if relative.starts_with("crds") {
            if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                crds.push(Template { source: source.read_text(&path)?, path });
            }
        } else if !special.contains(&relative_str.as_str()) {
            // Binary files are not readable through `files.get`; skip them rather than fail.
            if let Ok(text) = source.read_text(&path) {
                files.insert(relative_str, text);
            }
        }
    }

    Ok(Chart {
        name: meta.name,
        version: meta.version,
        description: meta.description,
        app_version: meta.app_version,
        dir,
        values,
        schema,
        crds,
        templates,
        files: Arc::new(files),
    })
}
