//! Templated values files (`*.gotmpl` in a release's `valuesFiles`), as helmfile renders them
//! before handing them to helm, and helmfile's state files as `weaver import helmfile` renders
//! them ([`render_with`], over the data it gives): Go templates with sprig and helm's `toYaml`, `fromYaml`,
//! `toJson`, `fromJson`, `required`, `fail`, `tpl` and `include`, over the data helmfile gives:
//! `.Environment.Name`, `.Environment.Values` (also `.Values` and `.StateValues`: the
//! environment's `values`), `.Environment.KubeContext`, `.Namespace`, and `.Release.Name`,
//! `.Release.Namespace`, `.Release.Labels`, `.Release.Chart`. A missing key is an error, as in
//! helmfile (`get "a.b" "default" .Values` reads one that may be missing).
//!
//! helmfile's own functions: `env` and `requiredEnv` read the environment (see [`Variables`]); `readFile` reads a
//! file of the repository (confined to it, as every read is; the path is relative to the
//! repository's root); `isFile`, `isDir` and `readDir` (the files of a directory, as paths joined
//! to the one given) look at the repository the same way (`isFile` and `isDir` answer `false`
//! for a path outside it, which they never look at); `get` and `getOrNil` read a dotted path. Neither reads an age key (the
//! variables weaver takes keys from, a value or file holding `AGE-SECRET-KEY-`). `exec` is refused: rendering
//! runs for pull requests, which must not run commands. `fetchSecretValue` and
//! `expandSecretRefs` (vals references) are refused too: secrets come from SOPS files.

use std::path::Path;
use std::sync::Arc;

use gotemplate::{FuncError, Function, MissingKey, Numbers, Templates, Type, Value};
use serde_json::json;

use weaver_core::error::{Error, Location, Result};
use weaver_core::limits::RenderLimits;
use weaver_project::source::Source;
use weaver_project::{Environment, Release};
use weaver_secrets::{KEY_VARIABLES, SECRET_KEY_PREFIX};

/// What `env` and `requiredEnv` give a template.
#[derive(Debug, Clone)]
pub enum Variables {
    /// This machine's variables: the CLI's own values files.
    Read,
    /// The variables of the process that started this render worker, asked of it (see
    /// `variable`, which it answers with).
    Asked(Asker),
    /// None: the controller renders a tenant's files, and its variables are not the tenant's.
    Refused,
    /// Whether each is set, and [`placeholder`] for its value, which is never read:
    /// `weaver import helmfile`, whose files must not hold a value read from the environment
    /// (often a credential), however a template encodes it.
    Placeholders,
}

/// How a render worker asks its parent for a variable: its value, or why not.
pub type Ask = dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync;

/// [`Ask`], shared by the template's functions.
#[derive(Clone)]
pub struct Asker(pub Arc<Ask>);

impl std::fmt::Debug for Asker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Asker")
    }
}

/// What `env "NAME"` and `requiredEnv "NAME"` give in [`Variables::Placeholders`] for a variable
/// that is set: text that YAML reads as a plain string wherever a template puts it.
pub fn placeholder(name: &str) -> String {
    format!("FROM-ENV-{name}")
}

/// Whether environment variable `name` is set, as [`Variables::Placeholders`] tells templates:
/// with a value that is not empty (helmfile's `requiredEnv` refuses an empty one).
pub fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

/// Whether a values file is a template.
pub fn is_template(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "gotmpl")
}

/// The text of the values file at `path` (as written, `text`) rendered for `release` of `env`.
pub(crate) fn render(
    source: &Arc<dyn Source>,
    path: &Path,
    text: &str,
    (env, release): (&Environment, &Release),
    own_environment: bool,
    limits: &RenderLimits,
) -> Result<String> {
    let variables = if own_environment { Variables::Read } else { Variables::Refused };
    let data = data(env, release);
    render_within(source, path, text, &data, (variables, "values template"), (limits, &release.name))
}

/// What a values template of `release` of `env` is rendered over, as helmfile gives it.
pub(crate) fn data(env: &Environment, release: &Release) -> serde_json::Value {
    // As helmfile merges them: a `null` written in them is a key whose value is null.
    let values = serde_json::Value::Object(env.helmfile_values.clone());
    json!({
        "Environment": {"Name": env.name, "KubeContext": env.context.clone().unwrap_or_default(), "Values": values},
        "Values": values,
        "StateValues": values,
        "Namespace": env.namespace,
        "Release": {
            "Name": release.name,
            "Namespace": release.namespace,
            "Labels": release.labels,
            "Chart": release.chart,
        },
    })
}

/// [`render`] in a render worker, over the `data` its parent made.
pub(crate) fn render_in_worker(
    source: &Arc<dyn Source>,
    (path, text): (&Path, &str),
    data: &serde_json::Value,
    variables: Variables,
    (limits, release): (&RenderLimits, &str),
) -> Result<String> {
    render_within(source, path, text, data, (variables, "values template"), (limits, release))
}

/// `text`, the file at `path`, rendered over `data` with helmfile's functions (`what` it is
/// begins the messages of errors in its execution): a values file, or a helmfile state
/// (`weaver import helmfile`). Errors name the file, line and column, with the data values Go's
/// messages embed redacted.
pub fn render_with(
    source: &Arc<dyn Source>,
    path: &Path,
    text: &str,
    data: &serde_json::Value,
    variables: Variables,
    what: &str,
) -> Result<String> {
    render_within(source, path, text, data, (variables, what), (&RenderLimits::default(), ""))
}

/// [`render_with`] within `limits`, for the release they name.
fn render_within(
    source: &Arc<dyn Source>,
    path: &Path,
    text: &str,
    data: &serde_json::Value,
    (variables, what): (Variables, &str),
    (limits, release): (&RenderLimits, &str),
) -> Result<String> {
    let name = path.display().to_string();
    let mut set = Templates::new(name.clone());
    set.set_missing_key(MissingKey::Error);
    sprig::register(&mut set);
    weaver_helm::funcs::register(&mut set);
    register(&mut set, source, variables);
    let located = |e: &gotemplate::Error| match e.location() {
        Some(at) => Location::at(path, at.line as u64, at.column.map_or(0, |c| c as u64 + 1)),
        None => Location::file(path),
    };
    // Go's text starts with the position the location gives (by the name the text was parsed
    // under, its column from 0): once is enough, with the action that failed and why.
    let message = |e: &gotemplate::Error| match (e.location(), e.context()) {
        (None, _) => e.redacted(),
        (Some(_), Some(action)) => format!("at <{action}>: {}", e.redacted_message()),
        (Some(_), None) => e.redacted_message(),
    };
    set.parse(&name, text).map_err(|e| Error::at(located(&e), message(&e)))?;
    let stop = || limits.stop_reason().map(|why| why.to_string());
    let bounds =
        gotemplate::Limits { stop: Some(&stop), max_bytes: limits.max_rendered_bytes.as_ref().map(|b| b.value) };
    let out =
        set.execute_within(&name, &Value::from_json(data, Numbers::KeepIntegers), &mut (), bounds).map_err(|e| {
            let mut innermost = &e;
            while let Some(inner) = innermost.source_error().filter(|inner| inner.location().is_some()) {
                innermost = inner;
            }
            let message = message(&e);
            // `required` and `fail` messages, as helm's own errors show them.
            let message =
                match (message.find(weaver_helm::funcs::ERR_START), message.rfind(weaver_helm::funcs::ERR_END)) {
                    (Some(start), Some(end)) if start + weaver_helm::funcs::ERR_START.len() <= end => {
                        message[start + weaver_helm::funcs::ERR_START.len()..end].to_string()
                    }
                    _ => message,
                };
            let error = Error::at(located(innermost), format!("{what}: {message}"));
            // A stop, or the byte bound's error, names the setting to raise.
            limits.limit_error(error, e.is_too_large(), release)
        })?;
    limits.check_rendered(out.len(), &format!("the output of {}", path.display()), release)?;
    Ok(out)
}

/// helmfile's functions, and the refusals.
fn register(set: &mut Templates, source: &Arc<dyn Source>, variables: Variables) {
    let env = Arc::new(move |name: &str| match &variables {
        Variables::Read => variable(name),
        Variables::Asked(ask) => (ask.0)(name).map_err(FuncError::new),
        Variables::Refused => Err(FuncError::new(format!(
            "`{name}`: environment variables are not read in the cluster (the controller's are not a tenant's)"
        ))),
        Variables::Placeholders => Ok(if is_set(name) { placeholder(name) } else { String::new() }),
    });
    let variable = Arc::clone(&env);
    set.add_function(
        "env",
        Function::new(&[Type::String], move |_, args| Ok(Value::from(variable(str_arg(args, 0))?))),
    );
    set.add_function(
        "requiredEnv",
        Function::new(&[Type::String], move |_, args| match env(str_arg(args, 0))? {
            value if !value.is_empty() => Ok(Value::from(value)),
            _ => Err(FuncError::new(format!("required env var `{}` is not set", str_arg(args, 0)))),
        }),
    );
    let files = Arc::clone(source);
    set.add_function(
        "readFile",
        Function::new(&[Type::String], move |_, args| {
            let path = Path::new(str_arg(args, 0));
            match read(files.as_ref(), path)? {
                Some(bytes) if holds_a_key(&bytes) => Err(FuncError::new(format!(
                    "{} holds an age secret key, which never reaches values",
                    path.display()
                ))),
                Some(bytes) => Ok(Value::string_from_bytes(&bytes)),
                None => Err(FuncError::new(format!("{} does not exist in the repository", path.display()))),
            }
        }),
    );
    let files = Arc::clone(source);
    set.add_function(
        "isFile",
        Function::new(&[Type::String], move |_, args| {
            let found = files.read(Path::new(str_arg(args, 0))).map(|found| found.is_some());
            inside_only(found, str_arg(args, 0))
        }),
    );
    let files = Arc::clone(source);
    set.add_function(
        "isDir",
        Function::new(&[Type::String], move |_, args| {
            let found = files.list(Path::new(str_arg(args, 0))).map(|entries| entries.is_some());
            inside_only(found, str_arg(args, 0))
        }),
    );
    let files = Arc::clone(source);
    set.add_function(
        "readDir",
        Function::new(&[Type::String], move |_, args| {
            let written = str_arg(args, 0);
            let path = Path::new(written);
            let Some(entries) = listed(files.as_ref(), path)? else {
                return Err(FuncError::new(format!("{} is not a directory of the repository", path.display())));
            };
            // helmfile's: the files of the directory (not its directories), as paths joined to the one given.
            let names = entries
                .into_iter()
                .filter(|e| !e.is_dir)
                .map(|e| Value::from(path.join(&e.name).display().to_string()));
            Ok(Value::list(names.collect::<Vec<_>>()))
        }),
    );
    set.add_function("get", Function::variadic(&[Type::String], Type::Any, |_, args| get(args, false)));
    set.add_function("getOrNil", Function::variadic(&[Type::String], Type::Any, |_, args| get(args, true)));
    set.add_function(
        "exec",
        Function::variadic(&[], Type::Any, |_, _| {
            Err(FuncError::new("weaver does not run commands from templates (a pull request could run anything)"))
        }),
    );
    for vals in ["fetchSecretValue", "expandSecretRefs"] {
        set.add_function(
            vals,
            Function::variadic(&[], Type::Any, |_, _| {
                Err(FuncError::new(
                    "vals references are not supported: keep secrets in SOPS files listed in `secrets` or `valuesFiles`",
                ))
            }),
        );
    }
}

/// The file `path` of the repository, or `None` when there is none; leaving the repository is
/// an error, as for every read.
fn read(source: &dyn Source, path: &Path) -> std::result::Result<Option<Vec<u8>>, FuncError> {
    source.read_named(path, &Location::file(path), "file").map_err(|e| FuncError::new(e.to_string()))
}

/// The entries of directory `path` of the repository, or `None` when there is none; leaving
/// the repository is an error, as for every read.
fn listed(
    source: &dyn Source,
    path: &Path,
) -> std::result::Result<Option<Vec<weaver_project::source::Entry>>, FuncError> {
    source.list(path).map_err(|e| FuncError::new(Error::io("list directory", path, e).to_string()))
}

/// What `isFile` or `isDir` answers for `path`: whether the repository has it. A path outside
/// the repository is `false`, never looked at: this machine's files are not the repository's
/// (helmfile's `{{ if isDir "/helm-values" }}` answers `false` where there is none, so weaver
/// renders as helmfile does on a machine without it), and a pull request's template must not
/// learn what the machine that renders it holds.
fn inside_only(found: std::io::Result<bool>, path: &str) -> std::result::Result<Value, FuncError> {
    match found {
        Ok(found) => Ok(Value::Bool(found)),
        Err(err) if weaver_core::error::Escape::of(&err).is_some() => Ok(Value::Bool(false)),
        Err(err) => Err(FuncError::new(Error::io("look at", Path::new(path), err).to_string())),
    }
}

/// An environment variable (empty when unset), unless it holds an age key: a pull request's
/// template must not print the key that decrypts the repository's secrets.
pub(crate) fn variable(name: &str) -> std::result::Result<String, FuncError> {
    let value = std::env::var(name).unwrap_or_default();
    if KEY_VARIABLES.contains(&name) || holds_a_key(value.as_bytes()) {
        return Err(FuncError::new(format!("`{name}` names an age key, which never reaches values")));
    }
    Ok(value)
}

fn holds_a_key(bytes: &[u8]) -> bool {
    bytes.windows(SECRET_KEY_PREFIX.len()).any(|w| w.eq_ignore_ascii_case(SECRET_KEY_PREFIX.as_bytes()))
}

/// helmfile's `get PATH [DEFAULT] MAP` and `getOrNil PATH MAP`: the value at a dotted path.
fn get(args: &[Value], or_nil: bool) -> std::result::Result<Value, FuncError> {
    let path = str_arg(args, 0);
    let (default, map) = match &args[1..] {
        [map] => (None, map),
        [default, map] if !or_nil => (Some(default), map),
        _ => return Err(FuncError::new("expected a path, an optional default and a map")),
    };
    let mut value = map.clone();
    for key in path.split('.').filter(|key| !key.is_empty()) {
        value = match &value {
            Value::Map(map) => match map.get(key) {
                Some(found) => found,
                None => {
                    return match default {
                        Some(default) => Ok(default.clone()),
                        None if or_nil => Ok(Value::Nil),
                        None => Err(FuncError::new(format!("no value exists at path `{path}` (at `{key}`)"))),
                    };
                }
            },
            _ if or_nil => return Ok(Value::Nil),
            _ => return Err(FuncError::new(format!("`{path}`: `{key}` is below a value that is not a map"))),
        };
    }
    Ok(value)
}

fn str_arg(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weaver_project::source::FsSource;

    #[test]
    fn is_file_and_is_dir_answer_false_outside_the_repository_without_looking() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir(repo.path().join("conf")).unwrap();
        std::fs::write(repo.path().join("conf/a.yaml"), "").unwrap();
        let source: Arc<dyn Source> = Arc::new(FsSource::new(repo.path()));
        // `/` and the repository's parent exist on every machine: they are still not looked at.
        let text = r#"{{ isDir "conf" }} {{ isFile "conf/a.yaml" }} {{ isDir "/helm-values" }} {{ isDir "/" }} {{ isDir ".." }} {{ isFile "../x" }}"#;
        let out = render_with(&source, Path::new("values.yaml.gotmpl"), text, &json!({}), Variables::Read, "values");
        assert_eq!(out.unwrap(), "true true false false false false");
    }
}
