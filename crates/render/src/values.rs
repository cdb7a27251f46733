//! A release's values: chart defaults < `valuesFiles` < its `values` < the command line's
//! overrides, its own decrypted `secrets` files, and files of values read in their dialect
//! (decrypted, or rendered first when they are templates).

use std::path::Path;

use serde_json::{Map, Value};
use weaver_core::error::{Error, Result};
use weaver_project::values::deep_merge;
use weaver_project::{Chart, Environment, Project, Release};

use super::Secrets;

/// Chart defaults < `valuesFiles` in order < the release's `values` < the command line's
/// overrides, one more layer merged the same way.
pub(super) fn release_values(
    project: &Project,
    env: &Environment,
    release: &Release,
    chart: &Chart,
    secrets: &Secrets,
    workers: Option<&crate::isolated::Workers>,
) -> Result<Value> {
    let mut values = chart.values.clone();
    let parse = weaver_yaml::from_str::<Option<Value>>;
    let template = Some((env, release, workers));
    for map in read_files(project, &release.values_files, "values file", template, secrets, parse)? {
        deep_merge(&mut values, map);
    }
    deep_merge(&mut values, release.values.clone());
    for map in release_secrets(project, release, secrets)? {
        deep_merge(&mut values, map);
    }
    if !secrets.overrides.is_empty() {
        let mut overrides = Map::new();
        secrets.overrides.apply(&mut overrides).map_err(|e| e.with_help(format!("release `{}`", release.name)))?;
        deep_merge(&mut values, overrides);
    }
    Ok(Value::Object(values))
}

/// The release's own `secrets` files, decrypted (see `action::render::prepare`), in order: a file
/// there that SOPS did not encrypt is an error, since its values would be taken for secrets.
pub(super) fn release_secrets(
    project: &Project,
    release: &Release,
    secrets: &Secrets,
) -> Result<Vec<Map<String, Value>>> {
    let mut layers = Vec::new();
    for file in &release.secrets {
        match secrets.values_files.get(&file.path) {
            Some(decrypted) => layers.push(decrypted.clone()),
            None if project.source.read_named(&file.path, &file.at, "secrets file")?.is_none() => {
                return Err(project.source.missing(&file.path, &file.at, "secrets file"));
            }
            None => {
                return Err(Error::at(
                    file.at.clone(),
                    format!(
                        "release `{}`: {} is listed in `secrets` but SOPS did not encrypt it",
                        release.name,
                        file.path.display()
                    ),
                )
                .with_help(format!(
                    "encrypt it with `weaver secrets encrypt {}`, or list it in `valuesFiles`",
                    file.path.display()
                )));
            }
        }
    }
    Ok(layers)
}

/// Files of values (a release's `valuesFiles` or `substituteFrom`, `what` says which), in
/// order, each read with `parse` (its YAML dialect): decrypted beforehand when SOPS encrypted
/// it, or rendered first when it is a template (`*.gotmpl`, see [`crate::gotmpl`]) and `template`
/// gives the environment and release it is rendered for.
pub(super) fn read_files(
    project: &Project,
    files: &[weaver_project::source::PathRef],
    what: &str,
    template: Option<(&Environment, &Release, Option<&crate::isolated::Workers>)>,
    secrets: &Secrets,
    parse: impl Fn(&Path, &str) -> Result<Option<Value>>,
) -> Result<Vec<Map<String, Value>>> {
    let mut layers = Vec::new();
    for file in files {
        if let Some(decrypted) = secrets.values_files.get(&file.path) {
            layers.push(decrypted.clone());
            continue;
        }
        // Its size before its bytes: a file past the bound is refused unread.
        if let Some(bound) = &secrets.limits.max_values_bytes {
            let size = project
                .source
                .size(&file.path)
                .map_err(|err| Error::io_at(file.at.clone(), &format!("read {what}"), &file.path, err))?;
            let Some(size) = size else { return Err(project.source.missing(&file.path, &file.at, what)) };
            if let Some(refused) = bound.refuses_file(&file.path, size) {
                return Err(Error::at(file.at.clone(), format!("{what} {refused}"))
                    .with_help(format!("raise {} if the file is meant to be that large", bound.setting)));
            }
        }
        let Some(bytes) = project.source.read_named(&file.path, &file.at, what)? else {
            return Err(project.source.missing(&file.path, &file.at, what));
        };
        let mut text = weaver_project::source::utf8(&file.path, bytes)?;
        let templated = template.filter(|_| crate::gotmpl::is_template(&file.path));
        if let Some((env, release, workers)) = templated {
            let (source, limits) = (&project.source, &secrets.limits);
            let own = secrets.own_environment;
            text = match workers {
                Some(workers) => {
                    let data = crate::gotmpl::data(env, release);
                    workers.render_values_template(source.as_ref(), (&file.path, &text), data, own, &release.name)?
                }
                None => crate::gotmpl::render(source, &file.path, &text, (env, release), own, limits)?,
            };
        }
        let parsed = parse(&file.path, &text).map_err(|e| match templated {
            Some(_) => e.with_help("the line is that of the template's output, not of the template"),
            None => e,
        })?;
        layers.push(weaver_project::values::layer(file, what, parsed)?);
    }
    Ok(layers)
}
