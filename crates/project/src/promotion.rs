//! `promotion:` of an environment file (what it takes from which environment, after how long,
//! on which checks) and the file `weaver promote` writes for it, `promotions/<env>.yaml`: the
//! pinned chart versions, image tags and values, which loading the environment lays over its
//! releases. The environment file is the user's; the promotions file is weaver's (as
//! `charts.lock` is), so a promotion rewrites it whole and a pull request shows only the pins.
//!
//! Precedence: a pinned value is one more layer over the release's `values` (under its SOPS
//! `secrets` and the command line's flags); a pinned chart version replaces the release's
//! `version`; a pinned image tag is set on every container whose image has that repository,
//! after rendering (kustomize's `images:`, so it holds whatever the chart's values are).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::health::Expression;
use super::source::Source;
use weaver_core::error::{Error, Location, Result};

/// Where `weaver promote` writes what an environment takes: `promotions/<env>.yaml`.
pub const PROMOTIONS_DIR: &str = "promotions";

pub fn promoted_path(environment: &str) -> PathBuf {
    Path::new(PROMOTIONS_DIR).join(format!("{environment}.yaml"))
}

/// `promotion:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PromotionFile {
    from: Spanned<String>,
    soak_time: Option<Spanned<String>>,
    pins: Vec<Spanned<PinFile>>,
    checks: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PinFile {
    release: String,
    chart: Option<bool>,
    image: Option<String>,
    values: Option<String>,
}

/// What an environment takes from another, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// The source environment.
    pub from: String,
    /// How long the source's last apply must have been healthy; zero when not given.
    pub soak_time: Duration,
    pub pins: Vec<Pin>,
    /// CEL expressions over the source's status (`status`), each of which must be true.
    pub checks: Vec<Expression>,
    /// What `weaver promote` wrote last (`promotions/<env>.yaml`), empty before the first.
    pub promoted: Promoted,
    /// Where `promotion:` is written.
    pub at: Location,
}

/// One thing a release takes from the source's release of the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub release: String,
    pub what: Pinned,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The remote chart's version the source applied (its record's chart).
    Chart,
    /// The tag (and digest) of the source's containers of this image repository.
    Image(String),
    /// The value at this dotted path of the source release's `values` as applied.
    Values(String),
}

impl Pinned {
    /// `chart`, `image registry.example/web`, `values image.tag`: as messages name a pin.
    pub fn describe(&self) -> String {
        match self {
            Pinned::Chart => "chart version".to_string(),
            Pinned::Image(repository) => format!("image {repository}"),
            Pinned::Values(path) => format!("values {path}"),
        }
    }
}

/// `promotions/<env>.yaml`: what each release took, and from which revision of the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Promoted {
    /// The environment promoted from; empty for the images `weaver images update` chose.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default)]
    pub releases: BTreeMap<String, PromotedRelease>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromotedRelease {
    /// The source's revision the pins were taken from, its commit and apply time; none for the
    /// images `weaver images update` chose (zero, empty).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub applied: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Image repository → the tag (`1.4.2`, `1.4.2@sha256:…` or `@sha256:…`) its containers get.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub values: Map<String, Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Promoted {
    /// The file's text, with a header saying whose it is.
    pub fn to_text(&self, environment: &str) -> String {
        let value = serde_json::to_value(self).expect("a promotions file is JSON");
        if self.from.is_empty() {
            return format!(
                "# Written by `weaver images update`: the images environments/{environment}.yaml's `imageUpdates:` chose.\n# Do not edit: the next update rewrites it.\n{}",
                weaver_yaml::to_yaml_string(&value)
            );
        }
        format!(
            "# Written by `weaver promote`: what environments/{environment}.yaml's `promotion:` took from `{}`.\n# Do not edit: the next promotion rewrites it.\n{}",
            self.from,
            weaver_yaml::to_yaml_string(&value)
        )
    }
}

impl Promotion {
    /// `promoted` is left empty: the environment's own promotions file is read once its name is known.
    pub(super) fn parse(file: &Path, spanned: Spanned<PromotionFile>) -> Result<Promotion> {
        let at = location(file, &spanned.referenced);
        let fields = spanned.value;
        if !super::source::is_plain_name(&fields.from.value) {
            return Err(Error::at(
                location(file, &fields.from.referenced),
                format!("`promotion.from: {}` is not an environment name", fields.from.value),
            ));
        }
        let soak_time = match fields.soak_time {
            None => Duration::ZERO,
            Some(text) => super::parse_duration_up_to(&text.value, super::MAX_SOAK_TIME)
                .map_err(|why| Error::at(location(file, &text.referenced), format!("`soakTime`: {why}")))?,
        };
        if fields.pins.is_empty() {
            return Err(Error::at(at, "`promotion.pins` is empty: a promotion takes something").with_help(
                "pin a release's values path, image repository or chart: pins: [{ release: web, values: image.tag }]",
            ));
        }
        let mut pins = Vec::new();
        for spanned in fields.pins {
            let pin_at = location(file, &spanned.referenced);
            let pin = spanned.value;
            let what = match (pin.chart, pin.image, pin.values) {
                (Some(true), None, None) => Pinned::Chart,
                (None, Some(repository), None) if !repository.is_empty() && !repository.contains(['@', ' ']) => {
                    Pinned::Image(repository)
                }
                (None, None, Some(path)) if !path.is_empty() && path.split('.').all(|s| !s.is_empty()) => {
                    Pinned::Values(path)
                }
                _ => {
                    return Err(Error::at(pin_at, format!("pin of release `{}`: expected one of `chart: true`, `image: <repository>` or `values: <path>`", pin.release))
                        .with_help("a pin takes one thing: the chart's version, the tag of an image repository (registry.example/shop/web), or the value at a dotted values path (image.tag)"));
                }
            };
            if let Some(twice) = pins.iter().find(|p: &&Pin| p.release == pin.release && p.what == what) {
                let what = format!("the pin `{}` of release `{}`", what.describe(), pin.release);
                return Err(super::defined_twice(pin_at, &what, "`pins`", &twice.at));
            }
            pins.push(Pin { release: pin.release, what, at: pin_at });
        }
        let checks = fields
            .checks
            .unwrap_or_default()
            .into_iter()
            .map(|text| Expression::compile(file, "checks", text))
            .collect::<Result<Vec<_>>>()?;
        Ok(Promotion { from: fields.from.value, soak_time, pins, checks, promoted: Promoted::default(), at })
    }
}

pub(crate) fn read_promoted(source: &dyn Source, environment: &str) -> Result<Promoted> {
    let path = promoted_path(environment);
    let Some(bytes) = source.read(&path).map_err(|err| Error::io("read promotions file", &path, err))? else {
        return Ok(Promoted::default());
    };
    let text = super::source::utf8(&path, bytes)?;
    weaver_yaml::from_str_as(&path, &text, "invalid promotions file")
}

fn location(path: &Path, span: &serde_saphyr::Location) -> Location {
    Location::at(path, span.line(), span.column())
}

/// The value at dotted `path` of `values`.
pub fn value_at<'v>(values: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut value = values.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Sets the value at dotted `path` of `values`, making the mappings on the way.
pub fn set_value_at(values: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut map = values;
    for part in parts {
        let entry = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        map = entry.as_object_mut().expect("made a mapping");
    }
    map.insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_read_and_set_by_dotted_paths() {
        let mut values = json!({"image": {"tag": "1.0"}, "replicas": 2}).as_object().unwrap().clone();
        assert_eq!(value_at(&values, "image.tag"), Some(&json!("1.0")));
        assert_eq!(value_at(&values, "replicas.x"), None);
        set_value_at(&mut values, "image.tag", json!("1.1"));
        set_value_at(&mut values, "a.b.c", json!(true));
        set_value_at(&mut values, "replicas.x", json!(1));
        assert_eq!(
            Value::Object(values),
            json!({"image": {"tag": "1.1"}, "replicas": {"x": 1}, "a": {"b": {"c": true}}})
        );
    }

    #[test]
    fn a_promotions_file_reads_back_as_written() {
        let mut promoted = Promoted { from: "staging".into(), releases: BTreeMap::new() };
        promoted.releases.insert(
            "web".into(),
            PromotedRelease {
                revision: 4,
                commit: Some("abc".into()),
                applied: "2026-11-26T03:00:00Z".into(),
                version: Some("1.2.3".into()),
                images: [("registry.example/web".to_string(), "1.4.2".to_string())].into(),
                values: json!({"image": {"tag": "1.4.2"}}).as_object().unwrap().clone(),
            },
        );
        let text = promoted.to_text("prod");
        assert!(text.starts_with("# Written by `weaver promote`"), "{text}");
        let read: Promoted = weaver_yaml::from_str(Path::new("promotions/prod.yaml"), &text).unwrap();
        assert_eq!(read, promoted);
    }
}
