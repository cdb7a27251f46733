//! Values as helm computes them for `helm template`: `ProcessDependenciesWithMerge` (aliases,
//! `tags`, `condition`, `import-values`) and `CoalesceValues` (chart defaults under the user's
//! values, subcharts scoped under their name or alias, `global` copied down, `null` deleting
//! a default). Ported from pkg/chartutil/{coalesce,dependencies,values}.go, warnings dropped.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::chart::{Chart, Dependency};
use weaver_core::error::Error;

pub const GLOBAL: &str = "global";

/// A chart as one release renders it: its subcharts after aliases and conditions, and its
/// values after `import-values`.
#[derive(Debug, Clone)]
pub struct Scoped {
    pub chart: Arc<Chart>,
    /// The chart's name, or its alias in the parent's `dependencies`.
    pub name: String,
    pub values: Map<String, Json>,
    /// The parent's `dependencies` entries still enabled, names replaced by aliases.
    pub requirements: Vec<Dependency>,
    pub dependencies: Vec<Scoped>,
}

impl Scoped {
    pub fn new(chart: &Arc<Chart>) -> Scoped {
        Scoped {
            chart: chart.clone(),
            name: chart.name().to_string(),
            values: chart.values.clone(),
            requirements: chart.metadata.dependencies.clone(),
            dependencies: chart.dependencies.iter().map(Scoped::new).collect(),
        }
    }
}

/// Whether the vendored `version` satisfies a dependency's range (helm's `IsCompatibleRange`:
/// false when either does not parse).
pub fn compatible(range: &str, version: &str) -> bool {
    weaver_semver::Version::parse(version).is_ok_and(|v| weaver_semver::satisfies(range, &v).unwrap_or(false))
}

/// helm's `ProcessDependenciesWithMerge` for the user's values `user`.
pub fn process_dependencies(root: &mut Scoped, user: &Map<String, Json>) -> Result<(), Error> {
    process_enabled(root, user, "")?;
    process_import_values(root);
    Ok(())
}

fn process_enabled(c: &mut Scoped, v: &Map<String, Json>, path: &str) -> Result<(), Error> {
    if c.chart.metadata.dependencies.is_empty() && c.requirements.is_empty() {
        return Ok(());
    }
    let existing = std::mem::take(&mut c.dependencies);
    let mut dependencies: Vec<Scoped> = existing
        .iter()
        .filter(|e| {
            !c.requirements
                .iter()
                .any(|r| e.name == r.name && compatible(&r.version, e.chart.metadata.version.as_str()))
        })
        .cloned()
        .collect();
    for requirement in &mut c.requirements {
        if let Some(found) = existing
            .iter()
            .find(|e| e.name == requirement.name && compatible(&requirement.version, &e.chart.metadata.version))
        {
            let mut aliased = found.clone();
            if let Some(alias) = requirement.alias.as_ref().filter(|a| !a.is_empty()) {
                aliased.name = alias.clone();
            }
            dependencies.push(aliased);
        }
        if let Some(alias) = requirement.alias.as_ref().filter(|a| !a.is_empty()) {
            requirement.name = alias.clone();
        }
    }
    c.dependencies = dependencies;
    for requirement in &mut c.requirements {
        requirement.enabled = true;
    }
    let cvals = coalesce_values(c, v.clone(), false)?;
    process_tags(&mut c.requirements, &cvals);
    process_conditions(&mut c.requirements, &cvals, path);
    let disabled: Vec<String> = c.requirements.iter().filter(|r| !r.enabled).map(|r| r.name.clone()).collect();
    c.dependencies.retain(|d| !disabled.contains(&d.name));
    c.requirements.retain(|r| !disabled.contains(&r.name));
    for dependency in &mut c.dependencies {
        let subpath = format!("{path}{}.", dependency.name);
        process_enabled(dependency, &cvals, &subpath)?;
    }
    Ok(())
}

fn process_tags(requirements: &mut [Dependency], cvals: &Map<String, Json>) {
    let Some(Json::Object(tags)) = cvals.get("tags") else { return };
    for requirement in requirements {
        let (mut has_true, mut has_false) = (false, false);
        for tag in &requirement.tags {
            match tags.get(tag) {
                Some(Json::Bool(true)) => has_true = true,
                Some(Json::Bool(false)) => has_false = true,
                _ => {}
            }
        }
        requirement.enabled = has_true || !has_false;
    }
}

fn process_conditions(requirements: &mut [Dependency], cvals: &Map<String, Json>, path: &str) {
    for requirement in requirements {
        let Some(condition) = requirement.condition.as_deref() else { continue };
        for c in condition.trim().split(',') {
            if c.is_empty() {
                continue;
            }
            if let Some(Json::Bool(b)) = path_value(cvals, &format!("{path}{c}")) {
                requirement.enabled = b;
                break;
            }
        }
    }
}

/// helm's `Values.PathValue`: a non-table value at a dotted path.
fn path_value(values: &Map<String, Json>, path: &str) -> Option<Json> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, tables) = parts.split_last()?;
    let table = table(values, tables)?;
    table.get(*last).filter(|v| !v.is_object()).cloned()
}

/// helm's `Values.Table`: the map at a path of keys.
fn table<'a>(values: &'a Map<String, Json>, path: &[&str]) -> Option<&'a Map<String, Json>> {
    path.iter().try_fold(values, |table, key| table.get(*key).and_then(Json::as_object))
}

fn process_import_values(c: &mut Scoped) {
    for dependency in &mut c.dependencies {
        process_import_values(dependency);
    }
    if c.requirements.is_empty() {
        return;
    }
    let Ok(cvals) = coalesce_values(c, Map::new(), true) else { return };
    let mut imported = Map::new();
    for requirement in &c.requirements {
        for import in &requirement.import_values {
            let (child, parent) = match import {
                Json::Object(map) => (
                    map.get("child").and_then(Json::as_str).unwrap_or_default().to_string(),
                    map.get("parent").and_then(Json::as_str).unwrap_or_default().to_string(),
                ),
                Json::String(name) => (format!("exports.{name}"), ".".to_string()),
                _ => continue,
            };
            let path = format!("{}.{child}", requirement.name);
            let keys: Vec<&str> = path.split('.').collect();
            let Some(found) = table(&cvals, &keys) else { continue };
            let found = if parent == "." {
                found.clone()
            } else {
                parent
                    .split('.')
                    .rev()
                    .fold(found.clone(), |inner, key| Map::from_iter([(key.to_string(), Json::Object(inner))]))
            };
            merge_tables(&mut imported, found);
        }
    }
    let mut values = cvals;
    merge_tables(&mut values, imported);
    c.values = values;
}

/// helm's `MergeTables(dst, src)`: keys of `src` missing from `dst` are added, tables merge,
/// and `dst`'s other values win.
fn merge_tables(dst: &mut Map<String, Json>, src: Map<String, Json>) {
    tables(dst, src, true);
}

/// `coalesceTablesFullKey(dst, src, merge)`: `src` (defaults) under `dst` (overrides); without
/// `merge`, a null in `dst` deletes the key.
fn tables(dst: &mut Map<String, Json>, src: Map<String, Json>, merge: bool) {
    for (key, value) in src {
        match dst.get_mut(&key) {
            Some(Json::Null) if !merge => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, value);
            }
            Some(Json::Object(dv)) => {
                if let Json::Object(value) = value {
                    tables(dv, value, merge);
                }
            }
            Some(_) => {}
        }
    }
}

/// helm's `CoalesceValues(chart, vals)` (`merge` false) or `MergeValues` (true).
pub fn coalesce_values(c: &Scoped, mut dest: Map<String, Json>, merge: bool) -> Result<Map<String, Json>, Error> {
    coalesce(c, &mut dest, merge)?;
    Ok(dest)
}

fn coalesce(c: &Scoped, dest: &mut Map<String, Json>, merge: bool) -> Result<(), Error> {
    coalesce_chart_values(c, dest, merge);
    for sub in &c.dependencies {
        let globals = dest.get(GLOBAL).cloned();
        match dest.entry(sub.name.clone()).or_insert_with(|| Json::Object(Map::new())) {
            Json::Object(sub_values) => {
                coalesce_globals(sub_values, globals);
                coalesce(sub, sub_values, merge)?;
            }
            other => {
                return Err(Error::new(format!(
                    "values of chart `{}`: `{}` must be a map of values for the subchart `{}`, not a {}",
                    c.name,
                    sub.name,
                    sub.name,
                    json_kind(other)
                ))
                .with_help(format!("helm: type mismatch on {}", sub.name)));
            }
        }
    }
    Ok(())
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "map",
    }
}

/// The parent's `global` copied into the subchart's: the parent's scalars win, maps merge.
fn coalesce_globals(dest: &mut Map<String, Json>, src_global: Option<Json>) {
    let mut dg = match dest.get(GLOBAL) {
        None => Map::new(),
        Some(Json::Object(g)) => g.clone(),
        Some(_) => return,
    };
    let sg = match src_global {
        None => Map::new(),
        Some(Json::Object(g)) => g,
        Some(_) => return,
    };
    for (key, value) in sg {
        match value {
            Json::Object(mut vv) => match dg.get(&key) {
                None => {
                    dg.insert(key, Json::Object(vv));
                }
                Some(Json::Object(destv)) => {
                    tables(&mut vv, destv.clone(), true);
                    dg.insert(key, Json::Object(vv));
                }
                Some(_) => {}
            },
            other => {
                if !dg.get(&key).is_some_and(Json::is_object) {
                    dg.insert(key, other);
                }
            }
        }
    }
    dest.insert(GLOBAL.to_string(), Json::Object(dg));
}

/// `coalesceValues`: the chart's defaults under `v`.
fn coalesce_chart_values(c: &Scoped, v: &mut Map<String, Json>, merge: bool) {
    for (key, value) in c.values.clone() {
        match v.get_mut(&key) {
            None => {
                v.insert(key, value);
            }
            Some(Json::Null) if !merge => {
                v.remove(&key);
            }
            Some(Json::Object(dest)) => {
                if let Json::Object(src) = value {
                    let merge = merge || c.dependencies.iter().any(|d| d.name == key);
                    tables(dest, src, merge);
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn chart(yaml_files: &[(&str, &str)]) -> Arc<Chart> {
        let files = yaml_files
            .iter()
            .map(|(n, t)| super::super::chart::File { name: n.to_string(), data: Arc::from(t.as_bytes()) })
            .collect();
        Arc::new(Chart::from_files(files, Path::new("charts/p")).unwrap())
    }

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn coalesce_scopes_subcharts_and_copies_globals() {
        let parent = chart(&[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n- name: s\n  version: ^1\n  alias: t\n  condition: t.enabled\n",
            ),
            ("values.yaml", "global: {g: 1}\nkeep: 1\ndrop: 2\n"),
            ("charts/s/Chart.yaml", "apiVersion: v2\nname: s\nversion: 1.2.0\n"),
            ("charts/s/values.yaml", "x: 1\nz: {q: 2}\nenabled: true\n"),
        ]);
        let mut root = Scoped::new(&parent);
        let user = obj(json!({"drop": null, "t": {"z": {"w": 3}}, "global": {"h": 2}}));
        process_dependencies(&mut root, &user).unwrap();
        assert_eq!(root.dependencies.len(), 1);
        assert_eq!(root.dependencies[0].name, "t");
        let values = coalesce_values(&root, user, false).unwrap();
        assert_eq!(
            Json::Object(values),
            json!({"keep": 1, "global": {"g": 1, "h": 2}, "t": {"x": 1, "z": {"q": 2, "w": 3}, "enabled": true, "global": {"g": 1, "h": 2}}})
        );
        let mut off = Scoped::new(&parent);
        process_dependencies(&mut off, &obj(json!({"t": {"enabled": false}}))).unwrap();
        assert!(off.dependencies.is_empty());
    }

    #[test]
    fn import_values_both_forms() {
        let parent = chart(&[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n- name: s\n  version: 1.x\n  import-values: [data, {child: deep.inner, parent: fromchild}]\n",
            ),
            ("values.yaml", "mine: 1\n"),
            ("charts/s/Chart.yaml", "apiVersion: v2\nname: s\nversion: 1.0.0\n"),
            ("charts/s/values.yaml", "exports: {data: {imported: yes}}\ndeep: {inner: {v: 2}}\n"),
        ]);
        let mut root = Scoped::new(&parent);
        process_dependencies(&mut root, &Map::new()).unwrap();
        let values = coalesce_values(&root, Map::new(), false).unwrap();
        assert_eq!(values["imported"], json!(true));
        assert_eq!(values["fromchild"], json!({"v": 2}));
        assert_eq!(values["mine"], json!(1));
    }
}
