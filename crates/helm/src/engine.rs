//! helm's engine (pkg/engine) for one release: the built-in objects of every chart of the tree,
//! every template parsed into one set (in helm's order, so that helm's `define` wins), each
//! non-partial template executed, and the output assembled as `helm template --include-crds
//! --skip-tests` prints it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gotemplate::{Map, MissingKey, Numbers, Templates, Value};
use serde_json::Value as Json;

use super::builtins::{ChartMetadata, Files, Values};
use super::chart::Chart;
use super::manifests::{self, Document, Kind};
use super::values::Scoped;
use super::{HelmChart, ReleaseInput, RenderedDocument};
use weaver_core::error::{Error, Location};

/// A template of the tree: its name in the set and where its file is.
struct TemplateFile {
    name: String,
    source: PathBuf,
    text: Arc<[u8]>,
    /// The built-in objects its chart's templates see (shared, as helm shares one map).
    data: Map,
    base_path: String,
}

/// The parsed template sets of a chart, one per tree shape (aliases and conditions change
/// which templates there are, and their names).
#[derive(Default)]
pub struct ParsedSets(Mutex<BTreeMap<Vec<String>, Arc<Templates>>>);

/// A set with helm's options and functions: sprig's first, then helm's own, which replace
/// sprig's of the same name as in helm's FuncMap.
fn new_set() -> Templates {
    let mut set = Templates::new("gotpl");
    set.set_missing_key(MissingKey::Zero);
    sprig::register(&mut set);
    super::funcs::register(&mut set);
    set
}

pub fn execute(helm: &HelmChart, root: &Scoped, values: &Json, input: &ReleaseInput<'_>) -> Result<Executed, Error> {
    let chart = &helm.chart;
    if let Some(range) = chart.metadata.kube_version.as_deref().filter(|r| !r.is_empty()) {
        let kube = input.capabilities.kube_version();
        let compatible =
            weaver_semver::Version::parse(kube).is_ok_and(|v| weaver_semver::satisfies(range, &v).unwrap_or(false));
        if !compatible {
            return Err(Error::at(
                Location::file(chart.origin.join("Chart.yaml")),
                format!("chart requires kubeVersion: {range} which is incompatible with Kubernetes {kube}"),
            )
            .with_help(
                "diff and apply check the cluster's version; render the environment's `kubeVersion` (default v1.32.0)",
            ));
        }
    }
    let release = Value::Map(Map::from_iter([
        ("Name".to_string(), Value::from(input.name)),
        ("Namespace".to_string(), Value::from(input.namespace)),
        ("IsUpgrade".to_string(), Value::Bool(false)),
        ("IsInstall".to_string(), Value::Bool(true)),
        ("Revision".to_string(), Value::Int(1)),
        ("Service".to_string(), Value::from("Helm")),
    ]));
    let capabilities = Value::Object(input.capabilities.clone() as Arc<dyn gotemplate::Object>);
    let values = match Value::from_json(values, Numbers::Float64) {
        Value::Map(ref map) => map.clone(),
        _ => Map::new(),
    };
    let mut templates = Vec::new();
    collect(root, None, &values, &release, &capabilities, &mut templates);
    // sortTemplates: deeper paths first, then reverse lexical order; the last parsed `define` wins.
    templates.sort_by(|a, b| {
        let depth = |t: &TemplateFile| t.name.matches('/').count();
        depth(b).cmp(&depth(a)).then_with(|| b.name.cmp(&a.name))
    });
    let set = parsed_set(helm, &templates)?;

    let mut state = super::funcs::RenderState::new(input.name, input.live.clone());
    let mut rendered: BTreeMap<&str, (String, &TemplateFile)> = BTreeMap::new();
    let stop = || input.limits.stop_reason().map(|why| why.to_string());
    let limits = gotemplate::Limits {
        stop: Some(&stop),
        max_bytes: input.limits.max_rendered_bytes.as_ref().map(|bound| bound.value),
    };
    let mut rendered_bytes = 0;
    for template in &templates {
        if base_name(&template.name).starts_with('_') {
            continue;
        }
        template.data.insert(
            "Template",
            Values::value(Map::from_iter([
                ("Name".to_string(), Value::from(template.name.as_str())),
                ("BasePath".to_string(), Value::from(template.base_path.as_str())),
            ])),
        );
        let out = set
            .execute_within(&template.name, &Values::value(template.data.clone()), &mut state, limits)
            .map_err(|e| {
                let error = exec_error(&e, &templates, &chart.metadata.name);
                input.limits.limit_error(error, e.is_too_large(), input.name)
            })?;
        rendered_bytes += out.len();
        input.limits.check_rendered(rendered_bytes, &format!("the output of {}", template.name), input.name)?;
        // helm drops what Go prints for a missing value; most outputs hold none, and a search
        // for them costs less than a copy of a large output.
        let out = if memchr::memmem::find(out.as_bytes(), b"<no value>").is_some() {
            out.replace("<no value>", "")
        } else {
            out
        };
        rendered.insert(&template.name, (out, template));
    }
    let outputs = rendered
        .into_iter()
        .filter(|(name, (text, _))| !name.ends_with("NOTES.txt") && !text.trim().is_empty())
        .map(|(name, (text, template))| TemplateOutput {
            name: name.to_string(),
            source: template.source.clone(),
            text,
        })
        .collect();
    let crds = match input.output.include_crds {
        true => crds(root),
        false => Vec::new(),
    };
    Ok(Executed { outputs, crds })
}

/// A release's templates executed ([`execute`]), before their output is read as YAML: what a
/// render worker sends back, so that the objects are parsed once, where they are kept.
pub struct Executed {
    /// The outputs that hold documents (not NOTES.txt, not blank), by template name.
    pub outputs: Vec<TemplateOutput>,
    /// The CRD files of the chart and of its enabled subcharts, when the output includes them.
    pub crds: Vec<PathBuf>,
}

/// A template's output.
pub struct TemplateOutput {
    pub name: String,
    pub source: PathBuf,
    pub text: String,
}

/// The documents of an executed release ([`execute`]) as `helm template` prints them: its CRDs,
/// then its manifests and hooks sorted by kind.
pub fn documents(helm: &HelmChart, executed: Executed, output: super::Output) -> Result<Vec<RenderedDocument>, Error> {
    let mut manifests = Vec::new();
    let mut hooks = Vec::new();
    for TemplateOutput { name, source, text } in &executed.outputs {
        for piece in manifests::split(text) {
            // helm reads each manifest trimmed and followed by a line break.
            let object = weaver_yaml::helm::from_str_line_ended(piece)
                .map_err(|e| {
                    Error::at(Location::file(source), format!("YAML parse error on {name}: {e}"))
                        .with_help("the template's output is not valid YAML")
                })?
                .unwrap_or(Json::Null);
            let document = Document { template: name.to_string(), object };
            match manifests::classify(&document.object) {
                Kind::Manifest => manifests.push(document),
                Kind::Test if output.skip_tests => {}
                Kind::Hook | Kind::Test if output.hooks => hooks.push(document),
                Kind::Hook | Kind::Test | Kind::Skipped => {}
            }
        }
    }
    manifests::sort_by_kind(&mut manifests);
    manifests::sort_by_kind(&mut hooks);

    let sources: BTreeMap<&str, &PathBuf> = executed.outputs.iter().map(|t| (t.name.as_str(), &t.source)).collect();
    let mut out = Vec::new();
    let mut crd_files = std::collections::HashMap::new();
    if !executed.crds.is_empty() {
        every_crd_file(&helm.chart, &mut crd_files);
    }
    for source in &executed.crds {
        let data = crd_files
            .get(source)
            .ok_or_else(|| Error::at(Location::file(source), "a CRD file the chart does not hold"))?;
        let text = text_of(data);
        for (index, object) in
            weaver_yaml::helm::documents(&text).map_err(|e| crd_file_error(source, &text, &e))?.into_iter().enumerate()
        {
            out.push(RenderedDocument { source: source.clone(), document: index + 1, object });
        }
    }
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    for document in manifests.into_iter().chain(hooks) {
        let count = counters.entry(document.template.clone()).or_default();
        *count += 1;
        if document.object.is_null() {
            continue;
        }
        let source =
            sources.get(document.template.as_str()).map_or_else(|| PathBuf::from(&document.template), |s| (*s).clone());
        out.push(RenderedDocument { source, document: *count, object: document.object });
    }
    Ok(out)
}

/// A CRD file weaver cannot read. helm does not render `crds/` (`helm template --include-crds`
/// prints them as written), so template syntax there is read as YAML: kubectl and `helm install`
/// refuse it too, and the help says so.
fn crd_file_error(source: &Path, text: &str, e: &weaver_yaml::helm::YamlError) -> Error {
    let error = Error::at(
        Location::at(source, e.line.unwrap_or(0) as u64, 0),
        format!("invalid YAML in a CRD file: {}", e.message),
    );
    if text.contains("{{") {
        error.with_help(
            "files in crds/ are not templates: helm prints them as written, and kubectl and `helm install` refuse this one as YAML too; write it without template syntax",
        )
    } else {
        error
    }
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// recAllTpls: the objects each chart's templates see, and the templates, with their names.
fn collect(
    node: &Scoped,
    parent: Option<(&str, &Map)>,
    values: &Map,
    release: &Value,
    capabilities: &Value,
    out: &mut Vec<TemplateFile>,
) -> Map {
    let chart: &Chart = &node.chart;
    let full_path = match parent {
        None => node.name.clone(),
        Some((parent_path, _)) => format!("{parent_path}/charts/{}", node.name),
    };
    // Values.Table("Values.<name>"): the parent's entry when it is a map, else an empty one.
    let scoped_values = match parent {
        None => values.clone(),
        Some((_, parent_data)) => {
            let parent_values = parent_data.get("Values").and_then(|v| match &v {
                Value::Object(object) => object.as_map(),
                _ => None,
            });
            match parent_values.and_then(|p| p.get(&node.name)) {
                Some(Value::Map(ref m)) => m.clone(),
                _ => Map::new(),
            }
        }
    };
    let subcharts = Map::new();
    let data = Map::from_iter([
        (
            "Chart".to_string(),
            Value::Object(Arc::new(ChartMetadata::new(&chart.metadata, &node.name, parent.is_none()))),
        ),
        ("Files".to_string(), Value::Object(Arc::new(Files::new(&chart.files)))),
        ("Release".to_string(), release.clone()),
        ("Capabilities".to_string(), capabilities.clone()),
        ("Values".to_string(), Values::value(scoped_values)),
        ("Subcharts".to_string(), Value::Map(subcharts.clone())),
    ]);
    for dependency in &node.dependencies {
        let child = collect(dependency, Some((&full_path, &data)), values, release, capabilities, out);
        subcharts.insert(dependency.name.clone(), Value::Map(child));
    }
    for template in &chart.templates {
        if chart.is_library() && !base_name(&template.name).starts_with('_') {
            continue;
        }
        out.push(TemplateFile {
            name: format!("{full_path}/{}", template.name),
            source: chart.origin.join(&template.name),
            text: template.data.clone(),
            data: data.clone(),
            base_path: format!("{full_path}/templates"),
        });
    }
    data
}

/// The set for these templates, parsed once per tree shape and kept with the chart.
fn parsed_set(helm: &HelmChart, templates: &[TemplateFile]) -> Result<Arc<Templates>, Error> {
    let shape: Vec<String> = templates.iter().map(|t| t.name.clone()).collect();
    let mut sets = helm.parsed.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(set) = sets.get(&shape) {
        return Ok(set.clone());
    }
    let mut set = new_set();
    for template in templates {
        let text = String::from_utf8(template.text.to_vec())
            .map_err(|_| Error::at(Location::file(&template.source), "is not valid UTF-8 text"))?;
        set.parse(&template.name, &text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line as u64);
            let message = e.to_string();
            let reason = message.rsplit(": ").next().unwrap_or(&message);
            Error::at(
                Location::at(&template.source, line, 0),
                format!("chart `{}`: parse error at ({}:{line}): {reason}", helm.chart.metadata.name, template.name),
            )
        })?;
    }
    let set = Arc::new(set);
    sets.insert(shape, set.clone());
    Ok(set)
}

/// How many nested template calls an error shows in full.
const MAX_SHOWN_CALLS: usize = 4;

/// A template error in weaver's form: located at the innermost failing action's file, line and
/// column; `required` and `fail` messages as helm shows them; other messages with the data
/// values Go embeds replaced by `[redacted]`.
fn exec_error(err: &gotemplate::Error, templates: &[TemplateFile], chart: &str) -> Error {
    let mut innermost = err;
    let mut depth = 1;
    while let Some(inner) = innermost.source_error() {
        if inner.location().is_none() {
            break;
        }
        innermost = inner;
        depth += 1;
    }
    let source_of = |name: &str| templates.iter().find(|t| t.name == name).map(|t| t.source.clone());
    let location = [innermost, err].into_iter().find_map(|e| {
        let at = e.location()?;
        Some(Location::at(source_of(&at.parse_name)?, at.line as u64, at.column.map_or(0, |c| c as u64 + 1)))
    });
    let full = err.to_string();
    let outer =
        err.location().map(|l| format!("{}:{}:{}", l.parse_name, l.line, l.column.unwrap_or(0))).unwrap_or_default();
    let message = match (full.find(super::funcs::ERR_START), full.rfind(super::funcs::ERR_END)) {
        (Some(start), Some(end)) if start + super::funcs::ERR_START.len() <= end => {
            format!("execution error at ({outer}): {}", &full[start + super::funcs::ERR_START.len()..end])
        }
        // A deep chain (a recursive include) would repeat itself a thousand times: the first
        // and last calls say where and why.
        _ if depth > MAX_SHOWN_CALLS => format!(
            "template: {outer}: executing {} at <{}>: … {} nested template calls … {}",
            gotemplate::strconv::quote(err.template(), false),
            err.context().unwrap_or_default(),
            depth - 2,
            innermost.redacted()
        ),
        _ => err.redacted(),
    };
    let mut error = Error::new(format!("chart `{chart}`: {message}"));
    if let Some(location) = location {
        error = error.with_location(location);
    }
    error
}

/// A file's text as helm reads it, invalid UTF-8 replaced. Valid text, the usual case, goes
/// through the standard library's fast check: the lossy decoder's is several times slower on
/// megabytes of CRDs.
fn text_of(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(data).into_owned(),
    }
}

/// CRDObjects: `crds/*.yaml|yml|json` of the chart, then of its enabled subcharts.
fn crds(node: &Scoped) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in &node.chart.files {
        if is_crd_file(&file.name) {
            out.push(node.chart.origin.join(&file.name));
        }
    }
    for dependency in &node.dependencies {
        out.extend(crds(dependency));
    }
    out
}

fn is_crd_file(name: &str) -> bool {
    name.starts_with("crds/") && [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
}

/// The CRD files of `chart` and of every subchart, enabled or not, by the path [`crds`] names
/// them with (the first of a path, as subcharts named twice hold the same files).
fn every_crd_file<'a>(chart: &'a Chart, into: &mut std::collections::HashMap<PathBuf, &'a [u8]>) {
    for file in chart.files.iter().filter(|file| is_crd_file(&file.name)) {
        into.entry(chart.origin.join(&file.name)).or_insert(&file.data[..]);
    }
    chart.dependencies.iter().for_each(|sub| every_crd_file(sub, into));
}
