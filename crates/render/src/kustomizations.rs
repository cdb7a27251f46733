//! Kustomization releases: the objects `kubectl kustomize` builds, with the release's variables
//! (`substitute`, `substituteFrom` files) substituted as Flux's kustomize-controller does.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{self, Manifest};
use weaver_project::{Project, Release};

use super::Secrets;
use crate::values::read_files;

/// A kustomization release: the objects `kubectl kustomize <dir>` builds, with the release's
/// variables substituted (when it has any), each checked as a rendered document is.
pub(super) fn render_kustomization(
    project: &Project,
    release: &Release,
    dir: &Path,
    secrets: &Secrets,
    workers: Option<&crate::isolated::Workers>,
) -> Result<Vec<Manifest>> {
    let source = project.source.as_ref();
    let built = match workers {
        Some(workers) => {
            workers.build_kustomization(source, (dir, &release.chart_at, release.load_restrictions), &release.name)
        }
        None => weaver_kustomize::build(source, dir, &release.chart_at, release.load_restrictions, &secrets.limits),
    };
    let mut resources = built
        .map(|built| built.resources)
        .map_err(|e| if e.help.is_none() { e.with_help(format!("release `{}`", release.name)) } else { e })?;
    if !release.substitute.is_empty() || !release.substitute_from.is_empty() {
        substitute(project, release, secrets, &mut resources)?;
    }
    let mut manifests = Vec::with_capacity(resources.len());
    for resource in resources {
        if let Some(problem) = manifest::object_problem(&resource.object) {
            let unsubstituted = weaver_kustomize::substitute::in_identity(&resource.object)
                && release.substitute.is_empty()
                && release.substitute_from.is_empty();
            let help = match unsubstituted {
                true => format!(
                    "release `{}`: `${{…}}` is a variable, as Flux substitutes them: give the release `substitute` or `substituteFrom`",
                    release.name
                ),
                false => format!("release `{}`", release.name),
            };
            // A label's value the API server refuses is shown where the file writes it.
            let line = manifest::metadata_value(&resource.object)
                .filter(|(_, of_value)| *of_value == problem)
                .and_then(|(pointer, _)| {
                    let text = project.source.read(&resource.source).ok()??;
                    weaver_yaml::scalars::line_of(std::str::from_utf8(&text).ok()?, resource.document - 1, &pointer)
                });
            let at = match line {
                Some(line) => Location::at(&resource.source, line as u64, 0),
                None => Location::file(&resource.source),
            };
            return Err(Error::at(
                at,
                format!("the kustomization's {} (document {}) {problem}", resource.describe(), resource.document),
            )
            .with_help(help));
        }
        manifests.push(Manifest {
            release: release.name.clone(),
            source: resource.source,
            document: resource.document,
            object: resource.object,
            patched_by: Vec::new(),
        });
    }
    Ok(manifests)
}

/// Substitutes the release's variables in its kustomization's objects, as Flux's
/// kustomize-controller does after its build (see `weaver_kustomize::substitute`).
pub(super) fn substitute(
    project: &Project,
    release: &Release,
    secrets: &Secrets,
    resources: &mut [weaver_kustomize::Resource],
) -> Result<()> {
    use weaver_kustomize::substitute::substitute;
    let vars = variables(project, release, secrets)?;
    for resource in resources {
        let what = resource.describe();
        substitute(&mut resource.object, &vars).map_err(|problem| {
            let help = match &problem {
                weaver_kustomize::substitute::Problem::Unset(name) => format!(
                    "set `{name}` in the release's `substitute` or a `substituteFrom` file, or give a default (`${{{name}:=…}}`); `$${{{name}}}` keeps the text `${{{name}}}`"
                ),
                _ => format!(
                    "references are `${{name}}`, `${{name:=default}}` or `${{name:-default}}`, and `$$` is a `$`; label or annotate the object `{}: disabled` to leave it as it is",
                    weaver_kustomize::substitute::DISABLE_KEY
                ),
            };
            Error::at(
                Location::file(&resource.source),
                format!("release `{}`: substituting variables in the kustomization's {what}: {problem}", release.name),
            )
            .with_help(help)
        })?;
    }
    Ok(())
}

/// A release's variables: its `substituteFrom` files in order (a later file's variable wins),
/// then its `substitute` over them, as Flux's `substitute` wins over its `substituteFrom`.
pub(super) fn variables(project: &Project, release: &Release, secrets: &Secrets) -> Result<HashMap<String, String>> {
    use weaver_project::environment::variable_value;
    use weaver_project::{VARIABLE_NAME_HELP, is_variable_name};
    let mut vars = HashMap::new();
    let files = read_files(project, &release.substitute_from, "substituteFrom file", None, secrets, |path, text| {
        weaver_yaml::from_str::<Option<Value>>(path, text)
    })?;
    for (file, map) in release.substitute_from.iter().zip(files) {
        let map = substitute_from_variables(map).map_err(|message| {
            Error::at(file.at.clone(), format!("substituteFrom file {}: {message}", file.path.display()))
        })?;
        for (name, value) in map {
            let problem = match variable_value(&value) {
                _ if !is_variable_name(&name) => Some((format!("`{name}` is not a variable name"), VARIABLE_NAME_HELP)),
                None => Some((
                    format!("variable `{name}` is not a string, number or boolean"),
                    "a substituteFrom file is a flat mapping of variable names to values",
                )),
                Some(text) => {
                    vars.insert(name.clone(), text);
                    None
                }
            };
            if let Some((message, help)) = problem {
                return Err(Error::at(key_location(project, &file.path, &name), message)
                    .with_help(format!("release `{}`: {help}", release.name)));
            }
        }
    }
    vars.extend(release.substitute.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(vars)
}

/// The variables of a `substituteFrom` file: the file itself, or, when it holds a ConfigMap or
/// a Secret (as Flux's substituteFrom names them, SOPS-encrypted or not), its data: a Secret's
/// `data` base64-decoded, then its `stringData` over it, as the API server merges them.
pub fn substitute_from_variables(map: Map<String, Value>) -> std::result::Result<Map<String, Value>, String> {
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if map.get("apiVersion").and_then(Value::as_str) != Some("v1") || !matches!(kind.as_str(), "ConfigMap" | "Secret") {
        return Ok(map);
    }
    let mut vars = Map::new();
    for (name, value) in map.get("data").and_then(Value::as_object).into_iter().flatten() {
        let value = match (kind.as_str(), value.as_str()) {
            ("Secret", Some(encoded)) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| format!("the Secret's `data.{name}` is not base64"))?;
                Value::String(String::from_utf8(bytes).map_err(|_| format!("the Secret's `data.{name}` is not text"))?)
            }
            _ => value.clone(),
        };
        vars.insert(name.clone(), value);
    }
    if kind == "Secret" {
        for (name, value) in map.get("stringData").and_then(Value::as_object).into_iter().flatten() {
            vars.insert(name.clone(), value.clone());
        }
    }
    Ok(vars)
}

/// Where a top-level `key` is written in the file at `path` (keys of SOPS files are in clear
/// text), or the file alone.
pub(super) fn key_location(project: &Project, path: &Path, key: &str) -> Location {
    let text = project.source.read(path).ok().flatten().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
    let line = text.lines().position(|line| {
        [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|k| line.starts_with(k.as_str()))
    });
    match line {
        Some(index) => Location::at(path, index as u64 + 1, 1),
        None => Location::file(path),
    }
}
