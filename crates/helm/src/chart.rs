//! A Helm chart as helm's loader (pkg/chart/loader) builds it from its files: `Chart.yaml`
//! (and a v1 chart's `requirements.yaml`), `values.yaml`, `values.schema.json`, `templates/`,
//! subcharts in `charts/` (directories or `.tgz`, unpacked by `archive`), and every other file as
//! `.Files`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{at, at_line};
use weaver_core::error::Error as HelmError;
use weaver_yaml::resolve::{Dialect, Resolved, resolve};

/// A file of a chart, by its path relative to the chart (`/`-separated). Serialized (to a
/// render worker) with its bytes in base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct File {
    pub name: String,
    #[serde(with = "base64_bytes")]
    pub data: Arc<[u8]>,
}

/// A value behind an `Arc`, serialized as the value (serde's `rc` feature, for one field).
pub mod shared {
    use std::sync::Arc;

    pub fn serialize<T: serde::Serialize, S: serde::Serializer>(value: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(value, s)
    }

    pub fn deserialize<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}

/// [`shared`], for a list.
mod shared_list {
    use serde::ser::SerializeSeq;
    use std::sync::Arc;

    pub fn serialize<T: serde::Serialize, S: serde::Serializer>(list: &[Arc<T>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        list.iter().try_for_each(|value| seq.serialize_element(&**value))?;
        seq.end()
    }

    pub fn deserialize<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Arc<T>>, D::Error> {
        <Vec<T> as serde::Deserialize>::deserialize(d).map(|list| list.into_iter().map(Arc::new).collect())
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::sync::Arc;

    pub fn serialize<S: serde::Serializer>(data: &Arc<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<[u8]>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map(Arc::from).map_err(serde::de::Error::custom)
    }
}

/// `Chart.yaml`, with helm's field names (also how a render worker is sent it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub maintainers: Vec<Maintainer>,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub app_version: Option<String>,
    #[serde(default, deserialize_with = "yaml_bool")]
    pub deprecated: bool,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub kube_version: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default, rename = "type")]
    pub chart_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Maintainer {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// An entry of `dependencies`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dependency {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "yaml_bool")]
    pub enabled: bool,
    /// Strings (`exports.NAME`) or `{child, parent}` maps.
    #[serde(default)]
    pub import_values: Vec<Json>,
    #[serde(default)]
    pub alias: Option<String>,
}

/// Chart.yaml's booleans arrive as strings (see `as_go_fields`) and are read back by YAML 1.1's
/// rules; a boolean is what they serialize as (to a render worker).
fn yaml_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Said {
        Text(String),
        Bool(bool),
    }
    Ok(match Option::<Said>::deserialize(d)? {
        Some(Said::Text(t)) => resolve(&t, Dialect::GoYamlV2) == Resolved::Bool(true),
        Some(Said::Bool(b)) => b,
        None => false,
    })
}

/// A chart as loaded; serialized whole when a render worker is sent it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chart {
    pub metadata: Metadata,
    /// `values.yaml`.
    pub values: Map<String, Json>,
    /// `values.schema.json`, parsed.
    pub schema: Option<Json>,
    pub templates: Vec<File>,
    /// What templates see as `.Files`: everything but Chart.yaml, values, templates and subcharts.
    pub files: Vec<File>,
    /// The subcharts found in `charts/`, by directory or archive name.
    #[serde(with = "shared_list")]
    pub dependencies: Vec<Arc<Chart>>,
    /// Where the chart is, for messages and the objects' sources: its directory or archive in the
    /// repository, or its path inside a parent's archive (`charts/a/charts/b-1.0.0.tgz`).
    pub origin: PathBuf,
}

impl Chart {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn is_library(&self) -> bool {
        self.metadata.chart_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("library"))
    }

    /// Loads a packaged chart (`.tgz`), as helm's `LoadArchive`; `origin` names it in messages.
    pub fn from_archive(data: &[u8], origin: &Path) -> Result<Chart, HelmError> {
        let files = crate::archive::unpack(data, origin)?;
        Chart::from_files(files.into_iter().map(|(name, data)| File { name, data }).collect(), origin)
    }

    /// Loads a chart from its files (paths relative to the chart), as helm's `LoadFiles`.
    pub fn from_files(files: Vec<File>, origin: &Path) -> Result<Chart, HelmError> {
        let path = |file: &str| origin.join(file);
        let chart_yaml = files.iter().find(|f| f.name == "Chart.yaml").ok_or_else(|| {
            at(origin, "Chart.yaml file is missing").with_help("a Helm chart needs Chart.yaml at its top")
        })?;
        let mut metadata: Metadata = read_metadata(&path("Chart.yaml"), &chart_yaml.data, "cannot load Chart.yaml")?;
        if metadata.api_version.is_empty() {
            metadata.api_version = "v1".into();
        }
        let mut chart = Chart {
            metadata,
            values: Map::new(),
            schema: None,
            templates: Vec::new(),
            files: Vec::new(),
            dependencies: Vec::new(),
            origin: origin.to_path_buf(),
        };
        let mut subcharts: std::collections::BTreeMap<String, Vec<File>> = Default::default();
        for file in files {
            let name = file.name.as_str();
            match name {
                "Chart.yaml" | "Chart.lock" => {}
                "values.yaml" => chart.values = read_values(&path(name), &file.data)?,
                "values.schema.json" => {
                    let text = text_of(&path(name), &file.data)?;
                    let mut schema = serde_json::from_str(&text)
                        .map_err(|e| at(path(name), format!("invalid JSON at line {}: {}", e.line(), e)))?;
                    encode_ref_fragments(&mut schema);
                    chart.schema = Some(schema);
                }
                "requirements.yaml" | "requirements.lock" => {
                    if name == "requirements.yaml" {
                        let requirements: Metadata =
                            read_metadata(&path(name), &file.data, "cannot load requirements.yaml")?;
                        chart.metadata.dependencies = requirements.dependencies;
                    }
                    if chart.metadata.api_version == "v1" {
                        chart.files.push(file);
                    }
                }
                _ if name.starts_with("templates/") => chart.templates.push(file),
                _ if name.starts_with("charts/") && !name.ends_with(".prov") => {
                    let rest = &name["charts/".len()..];
                    let (sub, inner) = rest.split_once('/').unwrap_or((rest, ""));
                    subcharts.entry(sub.to_string()).or_default().push(File { name: inner.to_string(), ..file });
                }
                _ => chart.files.push(file),
            }
        }
        chart.validate(&path("Chart.yaml"))?;
        // helm walks a map here (random order); sorted names make the order repeatable.
        for (name, files) in subcharts {
            if name.starts_with(['_', '.']) {
                continue;
            }
            let sub_origin = origin.join("charts").join(&name);
            let sub = if name.ends_with(".tgz") {
                let archive = files
                    .iter()
                    .find(|f| f.name.is_empty())
                    .ok_or_else(|| at(&sub_origin, format!("error unpacking subchart tar in {}", chart.name())))?;
                Chart::from_archive(&archive.data, &sub_origin)?
            } else {
                Chart::from_files(files.into_iter().filter(|f| !f.name.is_empty()).collect(), &sub_origin)?
            };
            chart.dependencies.push(Arc::new(sub));
        }
        Ok(chart)
    }

    /// helm's `Metadata.Validate`.
    fn validate(&self, chart_yaml: &Path) -> Result<(), HelmError> {
        let md = &self.metadata;
        let invalid = |message: String| Err(at(chart_yaml, format!("validation: {message}")));
        if md.name.is_empty() {
            return invalid("chart.metadata.name is required".into());
        }
        if md.name.contains(['/', '\\']) || md.name == ".." || md.name == "." {
            return invalid(format!("chart.metadata.name {:?} is invalid", md.name));
        }
        if md.version.is_empty() {
            return invalid("chart.metadata.version is required".into());
        }
        if weaver_semver::Version::parse(&md.version).is_err() {
            return invalid(format!("chart.metadata.version {:?} is invalid", md.version));
        }
        if !matches!(
            md.chart_type.as_deref().map(str::to_ascii_lowercase).as_deref(),
            None | Some("" | "application" | "library")
        ) {
            return invalid("chart.metadata.type must be application or library".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for dependency in &md.dependencies {
            if dependency.name.is_empty() {
                return invalid("dependencies must have a name".into());
            }
            let key = dependency.alias.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| dependency.name.clone());
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return invalid(format!("dependency {:?} has disallowed characters in the alias", dependency.name));
            }
            if !seen.insert(key.clone()) {
                return invalid(format!("more than one dependency with name or alias {key:?}"));
            }
        }
        Ok(())
    }
}

fn text_of(path: &Path, data: &[u8]) -> Result<String, HelmError> {
    String::from_utf8(data.to_vec()).map_err(|_| at(path, "is not valid UTF-8 text"))
}

fn read_metadata(path: &Path, data: &[u8], what: &str) -> Result<Metadata, HelmError> {
    let text = text_of(path, data)?;
    let json = weaver_yaml::helm::from_str(&text)
        .map_err(|e| at_line(path, e.line, format!("{what}: {}", e.message)))?
        .unwrap_or(Json::Object(Map::new()));
    serde_json::from_value(as_go_fields(json))
        .map_err(|e| at(path, format!("{what}: {}", without_value(&e.to_string()))))
}

/// What sigs.k8s.io/yaml's Unmarshal leaves in a Go struct whose fields are strings (helm's
/// Metadata, Dependency): a number is written as Go writes it (`appVersion: 1.0` is "1", `1.10`
/// is "1.1", at float32 precision), a boolean as `true`/`false`, and a null leaves the field at
/// its zero value (`keywords:` is an empty list).
fn as_go_fields(value: Json) -> Json {
    match value {
        Json::Object(map) => {
            Json::Object(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, as_go_fields(v))).collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(as_go_fields).collect()),
        Json::Number(n) => Json::String(match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) => gotemplate::strconv::format_float_bits(f, 'g', None, 32),
            _ => n.to_string(),
        }),
        Json::Bool(b) => Json::String(b.to_string()),
        other => other,
    }
}

/// serde's "invalid type: string \"x\", expected ..." without the value.
fn without_value(message: &str) -> String {
    match message.split_once(", expected ") {
        Some((found, expected)) => {
            let kind = found.trim_start_matches("invalid type: ").split([' ', '"']).next().unwrap_or("value");
            format!("expected {expected}, found a {kind}")
        }
        None => message.to_string(),
    }
}

/// A values file as helm reads one: the first document, YAML 1.1 scalars, a mapping or nothing.
pub fn read_values(path: &Path, data: &[u8]) -> Result<Map<String, Json>, HelmError> {
    let text = text_of(path, data)?;
    match weaver_yaml::helm::from_str(&text) {
        Ok(None | Some(Json::Null)) => Ok(Map::new()),
        Ok(Some(Json::Object(map))) => Ok(map),
        Ok(Some(_)) => Err(at(path, "must be a mapping of values at the top level")),
        Err(e) => Err(at_line(path, e.line, format!("invalid YAML: {}", e.message))),
    }
}

/// Percent-encodes the bytes of each `$ref`'s fragment that a URI fragment may not hold as
/// themselves (RFC 3986: `#/$defs/revisions[0]`). gojsonschema (helm 3.17) reads a fragment as
/// Go's url.Parse does, which takes any byte and decodes escapes, so the pointer keeps its
/// meaning; jsonschema refuses a `$ref` that is not a URI reference.
fn encode_ref_fragments(schema: &mut Json) {
    match schema {
        Json::Object(map) => map.iter_mut().for_each(|(key, value)| match value {
            Json::String(reference) if key == "$ref" => {
                if let Some((base, fragment)) = reference.split_once('#') {
                    let mut encoded = format!("{base}#");
                    for b in fragment.bytes() {
                        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
                            encoded.push(char::from(b));
                        } else {
                            encoded.push_str(&format!("%{b:02X}"));
                        }
                    }
                    *reference = encoded;
                }
            }
            _ => encode_ref_fragments(value),
        }),
        Json::Array(items) => items.iter_mut().for_each(encode_ref_fragments),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn ref_fragments_are_percent_encoded_where_a_uri_fragment_cannot_hold_the_byte() {
        let mut schema = json!({
            "$ref": "#/$defs/ok:@-_~",
            "items": [{"$ref": "other.json#/$defs/a[0] é%5B"}, {"$ref": "no-fragment[0].json"}],
            "properties": {"$ref": {"type": "string"}},
        });
        super::encode_ref_fragments(&mut schema);
        assert_eq!(
            schema,
            json!({
                "$ref": "#/$defs/ok:@-_~",
                "items": [{"$ref": "other.json#/$defs/a%5B0%5D%20%C3%A9%5B"}, {"$ref": "no-fragment[0].json"}],
                "properties": {"$ref": {"type": "string"}},
            })
        );
    }
}
