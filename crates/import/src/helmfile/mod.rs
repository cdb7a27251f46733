//! `weaver import helmfile`: a helmfile state file as weaver environment files.
//!
//! The state is loaded once per environment as helmfile loads it (`load`): its parts rendered
//! as Go templates over that environment's values, `bases:` and nested `helmfiles:` read. Each
//! environment's state is converted, and what every environment has alike goes into an
//! abstract base the environment files `extend`: `repositories`, the releases (each field that
//! is the same everywhere), the state's `values`, `helmDefaults.kubeContext`. What differs
//! (a namespace, values files named after the environment, a release only some environments
//! have) is written in each environment's file. What has no weaver equivalent (hooks running
//! commands, helm flags) is left out and listed with its file and line, and so is what weaver
//! could only approximate. Pure: [`Files`] is the caller's view of the files the helmfile names.

mod load;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::node::{Key, Node, line};
use weaver_core::error::{Error, Location, Result};
use weaver_helm::strvals::{self, Kind};
use weaver_project::source::is_plain_name;
use weaver_project::values::{deep_merge, merge_overrides};

/// What is at a path of the weaver repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    File,
    /// A directory with a `Chart.yaml`.
    HelmChart,
    /// A directory with a `kustomization.yaml` (or `.yml`, `Kustomization`).
    Kustomization,
    Directory,
}

/// The files a helmfile names, as the caller sees them. Paths as written in the helmfile are
/// relative to its directory.
pub trait Files {
    /// `path` (as written) as a path of the weaver repository; `None` when it is outside it.
    fn repository_path(&self, path: &str) -> Option<PathBuf>;
    /// What is at `path`, a path of the weaver repository.
    fn found(&self, path: &Path) -> Found;
    /// The text of the file at `path` (as written); `Ok(None)` when there is none.
    fn read(&self, path: &str) -> std::result::Result<Option<String>, String>;
    /// The files a glob (as written: `*` within a directory, `**` across them) matches, as
    /// written, sorted.
    fn glob(&self, pattern: &str) -> Vec<String>;
    /// `text`, the file at `path` (as written), rendered as helmfile renders its templates: Go
    /// templates with sprig and helmfile's functions over `data`, the paths they read relative
    /// to `dir` (as written: the directory of the state file, helmfile's base path), `env` and
    /// `requiredEnv` giving [`Files::placeholder`] for a variable that is set, never its value.
    /// Errors name `path`, line and column.
    fn render(&self, path: &str, dir: &str, text: &str, data: &Value) -> Result<String>;
    /// What templates get for the value of environment variable `name`.
    fn placeholder(&self, name: &str) -> String;
}

/// Something of the helmfile that is not in the files written, or not exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The file, as a path relative to the imported helmfile's directory.
    pub file: String,
    pub line: u64,
    /// What it is: `release `web`: hooks`.
    pub what: String,
    /// Why, and what to do instead.
    pub why: String,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// The converted repository.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Repository paths and their text: the base first, then one file per environment.
    pub files: Vec<(PathBuf, String)>,
    /// In the order of their lines.
    pub left_out: Vec<LeftOut>,
    /// The remote charts releases name (`repo/chart`, `oci://…`), for `weaver charts lock`.
    pub remote_charts: Vec<String>,
}

/// The environment files for the helmfile at `file` (its name is only for the files' header
/// comment) whose text is `text`. An error only when the text is not a helmfile at all
/// (invalid YAML, not a mapping, or no environment renders); everything else that cannot be
/// converted is listed.
pub fn convert(file: &Path, text: &str, files: &dyn Files) -> Result<Imported> {
    let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut convert = Convert {
        files,
        left_out: Vec::new(),
        ctx: Rc::new(load::Ctx::default()),
        variables: Vec::new(),
        named: Vec::new(),
    };
    if let Some(path) = files.repository_path(&name) {
        let role = LeftOut { file: name.clone(), line: 1, what: "the helmfile".into(), why: String::new() };
        convert.named.push((path.to_string_lossy().replace('\\', "/"), role));
    }
    let mut states = Vec::new();
    let mut first_error = None;
    for env in convert.environment_names(&name, text) {
        match convert.load(&name, text, load::EnvState::named(&env), None, 0) {
            Ok(loaded) => states.push(convert.env_state(loaded)),
            Err(err) => {
                let at = err.location.clone().unwrap_or_else(|| Location::file(&name));
                convert.left_out.push(LeftOut {
                    file: at.path.display().to_string(),
                    line: at.line.unwrap_or(1),
                    what: format!("environment `{env}`"),
                    why: format!(
                        "{}: not written (helmfile fails on it too, or it needs what weaver refuses)",
                        err.message
                    ),
                });
                first_error.get_or_insert(err);
            }
        }
    }
    if let (true, Some(err)) = (states.is_empty(), first_error) {
        return Err(err);
    }
    let named = std::mem::take(&mut convert.named);
    let imported = convert.files_of(&name, states);
    // A helmfile's environment values are often kept in `environments/<env>.yaml`, where weaver
    // writes environment `<env>`: writing it would lose the user's values, --force or not.
    let overwritten = named.iter().find_map(|(path, role)| {
        imported.files.iter().find(|(file, _)| file == Path::new(path)).map(|(file, _)| (file, role))
    });
    if let Some((file, role)) = overwritten {
        let env = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        return Err(Error::at(
            Location::at(&role.file, role.line, 0),
            format!(
                "{}: weaver writes environment `{env}` to this file ({}), and an import never overwrites a file it \
                 reads, --force or not",
                role.what,
                file.display()
            ),
        )
        .with_help(format!(
            "weaver reads every file of {}/ as an environment: move this one out of it (to values/{env}.yaml, say), \
             change the helmfile's paths to it, and import again",
            file.parent().map(|p| p.display().to_string()).unwrap_or_default()
        )));
    }
    Ok(imported)
}

/// The documents of `text` as helmfile v1 reads them (go-yaml v3: only `true` and `false` are
/// booleans, so `on:` and `n` stay strings; `0777` is octal).
fn documents<T: de::DeserializeOwned>(path: &Path, text: &str, what: &str) -> Result<Vec<T>> {
    let mut options = weaver_yaml::options();
    options.strict_booleans = true;
    // go-yaml v3 still reads YAML 1.1's `0777` as octal (511), as helm's reader does.
    options.legacy_octal_numbers = true;
    serde_saphyr::from_str_multiple_with_options(text, options).map_err(|err| {
        // weaver's reader words the same syntax error with its line and column.
        match weaver_yaml::documents_as::<Spanned<Node>>(path, text, what) {
            Err(located) => located,
            Ok(_) => {
                let at =
                    err.location().map_or_else(|| Location::file(path), |l| Location::at(path, l.line(), l.column()));
                Error::at(at, format!("{what}: {}", err.without_snippet()))
            }
        }
    })
}

/// helm's flags helmfile sets, and what weaver has instead.
fn flag_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "wait" | "waitForJobs" | "waitRetries" => "weaver waits for readiness when applied with `weaver apply --wait`",
        "timeout" => "give `weaver apply --wait --timeout DURATION` (helmfile's is in seconds)",
        "atomic" | "rollbackOnFailure" | "cleanupOnFail" => {
            "not supported: a failed apply is recorded as failed; `weaver rollback` re-applies a revision"
        }
        "forceConflicts" => "give `weaver apply --force-conflicts`",
        "force" | "recreatePods" => "not supported: weaver applies server-side and never replaces objects",
        "historyMax" => "not supported: weaver keeps a release record per revision",
        "verify" | "keyring" => "not supported: `weaver charts lock` pins each chart's digest instead",
        "devel" => "write a `version` constraint that allows pre-releases, such as `>=1.0.0-0`",
        "skipDeps" | "skipRefresh" => "not needed: weaver renders subcharts vendored or pinned in charts.lock",
        "args" | "diffArgs" | "syncArgs" => "not supported: weaver runs no helm binary",
        "reuseValues" => "not supported: weaver renders from the repository's values only",
        "disableValidation" | "disableOpenAPIValidation" | "disableValidationOnInstall" | "skipSchemaValidation" => {
            "give `--validate=warn` or `--validate=ignore` to render, diff and apply"
        }
        "postRenderer" | "postRendererArgs" => {
            "weaver runs no commands: write what it changes as the release's `patches:` (strategic merge or RFC 6902)"
        }
        "transformers" => "not supported: write what they change as the release's `patches:`",
        "hooks" => "weaver runs no commands (a Helm chart's own `helm.sh/hook` objects are run)",
        "enableDNS" => "not supported: weaver's Helm rendering never reaches the network",
        "cascade" | "deleteWait" | "deleteTimeout" => "not supported: weaver deletes in the foreground",
        "adopt" | "takeOwnership" => {
            "not supported: `weaver apply --force-conflicts` takes fields that other managers own"
        }
        "insecureSkipTLSVerify" | "plainHttp" => {
            "a repository's setting in weaver: `plainHttp` on an oci:// repository"
        }
        _ => return None,
    })
}

/// Whether a flag's value is its default, so that nothing is lost without it.
fn is_default(node: &Node) -> bool {
    match node {
        Node::Null | Node::Scalar(Value::Bool(false)) => true,
        Node::List(items) => items.is_empty(),
        Node::Map(entries) => entries.is_empty(),
        Node::Scalar(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// The variable whose placeholder (`prefix` and its name) a node holds, the first if several.
fn variable_in(node: &Spanned<Node>, prefix: &str) -> Option<String> {
    match &node.value {
        Node::Scalar(Value::String(text)) => placeholder_variable(text, prefix),
        Node::List(items) => items.iter().find_map(|item| variable_in(item, prefix)),
        Node::Map(entries) => entries.iter().find_map(|(_, value)| variable_in(value, prefix)),
        _ => None,
    }
}

/// The variable whose placeholder (`prefix` and its name) `text` holds, the first if several.
fn placeholder_variable(text: &str, prefix: &str) -> Option<String> {
    let after = text.split(prefix).nth(1)?;
    Some(after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
}

/// helmfile's escaping of a `set` name or value for helm's `--set`.
fn escape(text: &str) -> String {
    text.replace('{', "\\{").replace('}', "\\}").replace(',', "\\,")
}

/// What a values file that is not there is to the conversion, as helmfile's
/// `missingFileHandler` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// helmfile stops (`Error`, its default for an environment's values files): so does the
    /// environment's conversion.
    Refused,
    /// helmfile passes over it (`Warn`, `Info`, `Debug`): listed, as weaver has no optional files.
    Optional,
    /// Listed, and the conversion goes on.
    Listed,
}

struct Convert<'a> {
    files: &'a dyn Files,
    left_out: Vec<LeftOut>,
    /// The file the nodes being converted come from.
    ctx: Rc<load::Ctx>,
    /// The calls of `env` and `requiredEnv` in the states' templates, with their files, in the
    /// order they were read.
    variables: Vec<(String, load::VariableRead)>,
    /// The files of the repository the helmfile names (read, or referenced by what is written),
    /// by repository path, with where and as what: none may be written over.
    named: Vec<(String, LeftOut)>,
}

/// One environment's state, converted.
struct EnvConverted {
    env: load::EnvState,
    /// By name, in order.
    repositories: Vec<(String, Value)>,
    releases: Vec<Converted>,
    /// `helmDefaults.kubeContext`.
    context: Option<String>,
    /// What Helm charts see offline: the state's `kubeVersion` and `apiVersions` with
    /// `helmDefaults.templateArgs`' flags.
    offline: Offline,
}

/// What Helm charts see when rendered offline, as helm's `--kube-version` and `--api-versions`
/// give it: weaver's environment `kubeVersion` and `apiVersions`.
#[derive(Debug, Clone, Default)]
struct Offline {
    kube_version: Option<String>,
    api_versions: Vec<String>,
}

impl Offline {
    /// `self` (the state's or a release's fields) with `args` (`helmDefaults.templateArgs`'
    /// flags), which helmfile passes after them: their API versions join, their
    /// `--kube-version` wins.
    fn with(&self, args: &Offline) -> Offline {
        let mut api_versions = self.api_versions.clone();
        api_versions.extend(args.api_versions.iter().filter(|v| !self.api_versions.contains(v)).cloned());
        Offline { kube_version: args.kube_version.clone().or_else(|| self.kube_version.clone()), api_versions }
    }

    /// The API versions as `.Capabilities.APIVersions.Has` tells them apart: a set.
    fn api_version_set(&self) -> BTreeSet<&str> {
        self.api_versions.iter().map(String::as_str).collect()
    }
}

/// A release as converted, before it is written into the base.
struct Converted {
    name: String,
    /// Where it is written: its file and its line in the rendered text.
    ctx: Rc<load::Ctx>,
    line: u64,
    fields: Map<String, Value>,
    /// `condition`, evaluated per environment, and its line.
    condition: Option<(String, u64)>,
}

/// What every release sees of the rest of the helmfile.
struct Shared {
    repositories: BTreeSet<String>,
    /// Repositories left out (a kind weaver cannot load): their releases are too.
    refused: BTreeSet<String>,
    /// Every release's name and namespace, in order (duplicates included).
    releases: Vec<(String, Option<String>)>,
    context: Option<String>,
    create_namespace: Option<bool>,
    common_labels: Map<String, Value>,
    /// The state's own `kubeVersion` and `apiVersions`.
    offline: Offline,
    /// What `helmDefaults.templateArgs` gives of them (`--kube-version`, `--api-versions`).
    template_args: Offline,
    /// The environment's template data, for the templates of releases.
    data: Value,
    /// Whether a missing values file is passed over (`missingFileHandler` other than `Error`).
    missing_ok: bool,
}

impl Convert<'_> {
    /// Lists what is left out at `line` of the rendered text being converted.
    fn leave(&mut self, line: u64, what: impl Into<String>, why: impl Into<String>) {
        let at = self.ctx.source_line(line);
        self.left_out.push(LeftOut { file: self.ctx.file.clone(), line: at, what: what.into(), why: why.into() });
    }

    /// Notes that the file at `path` (as written, relative to the imported helmfile's
    /// directory), named at `line` of the rendered text being converted as `what`, is the
    /// helmfile's: the import must not write over it.
    fn name_file(&mut self, line: u64, what: &str, path: &str) {
        if let Some(repository_path) = self.files.repository_path(path) {
            let at = self.ctx.source_line(line);
            let role = LeftOut { file: self.ctx.file.clone(), line: at, what: what.to_string(), why: String::new() };
            self.named.push((repository_path.to_string_lossy().replace('\\', "/"), role));
        }
    }

    /// A scalar's text, or `None` (listed) when it is not a scalar.
    fn text(&mut self, node: &Spanned<Node>, what: &str) -> Option<String> {
        let text = match &node.value {
            Node::Scalar(Value::String(s)) => s.clone(),
            Node::Scalar(other) => other.to_string(),
            _ => {
                self.leave(line(node), what.to_string(), "expected a single value");
                return None;
            }
        };
        Some(text)
    }

    fn bool(&mut self, node: &Spanned<Node>, what: &str) -> Option<bool> {
        match &node.value {
            Node::Scalar(Value::Bool(b)) => Some(*b),
            _ => {
                let text = self.text(node, what)?;
                self.leave(line(node), format!("{what}: `{text}`"), "expected true or false");
                None
            }
        }
    }

    /// The node as a value.
    fn value(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        Some(match &node.value {
            Node::Null => Value::Null,
            Node::Scalar(v) => v.clone(),
            Node::List(items) => Value::Array(items.iter().filter_map(|item| self.value(item, what)).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let inner = format!("{what} `{}`", key.value.0);
                    if let Some(v) = self.value(value, &inner) {
                        map.insert(key.value.0.clone(), v);
                    }
                }
                Value::Object(map)
            }
        })
    }

    fn map(&mut self, node: &Spanned<Node>, what: &str) -> Option<Map<String, Value>> {
        match self.value(node, what)? {
            Value::Object(map) => Some(map),
            Value::Null => Some(Map::new()),
            _ => {
                self.leave(line(node), what.to_string(), "expected a mapping");
                None
            }
        }
    }

    fn list<'n>(&mut self, node: &'n Spanned<Node>, what: &str) -> &'n [Spanned<Node>] {
        match &node.value {
            Node::List(items) => items,
            Node::Null => &[],
            _ => {
                self.leave(line(node), what.to_string(), "expected a list");
                &[]
            }
        }
    }

    fn entries<'n>(&mut self, node: &'n Spanned<Node>, what: &str) -> &'n [(Spanned<Key>, Spanned<Node>)] {
        match &node.value {
            Node::Map(entries) => entries,
            Node::Null => &[],
            _ => {
                self.leave(line(node), what.to_string(), "expected a mapping");
                &[]
            }
        }
    }

    /// An environment's (or the state's) `values:` list merged into `into`: inline maps and
    /// YAML files, in order, as helmfile merges them; a `.gotmpl` file rendered first over `env`
    /// with the values merged so far, as helmfile renders it (an error when it does not render:
    /// helmfile stops there too). `written` gets the same but for a file that reads environment
    /// variables: what it gives may be a secret, which is never written into a file. With
    /// `files`, the plain YAML files before anything written inline go there instead of into
    /// `written`: the environment's file lists them in `valuesFiles`, under its `values`.
    fn environment_values(
        &mut self,
        node: &Spanned<Node>,
        what: &str,
        (into, written): (&mut Map<String, Value>, &mut Map<String, Value>),
        mut files: Option<&mut Vec<(String, Map<String, Value>)>>,
        env: &load::EnvState,
        missing: Missing,
    ) -> Result<()> {
        for item in self.list(node, what) {
            match &item.value {
                Node::Map(_) => {
                    if let Some(map) = self.map(item, what) {
                        deep_merge(into, map.clone());
                        deep_merge(written, map);
                        files = None;
                    }
                }
                _ => {
                    let Some(given) = self.text(item, &format!("{what} file")) else { continue };
                    let file = format!("{what} file `{given}`");
                    // helmfile reads each file a glob matches, in order.
                    let paths = match load::is_glob(&given) {
                        true => self.files.glob(&self.ctx.local(&given)),
                        false => vec![self.ctx.local(&given)],
                    };
                    if paths.is_empty() {
                        self.missing(line(item), &file, "matches no file", missing)?;
                    }
                    for path in paths {
                        let file = match load::is_glob(&given) {
                            true => format!("{file} ({path})"),
                            false => file.clone(),
                        };
                        let referenced = self.values_file(
                            item,
                            &file,
                            &path,
                            (&mut *into, &mut *written),
                            files.as_deref_mut(),
                            (env, missing),
                        )?;
                        if !referenced {
                            files = None;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The values file at `path` (as written, from `item`, `file` for messages) merged into
    /// `into` and `written`, or for a plain YAML file of the weaver repository into `into` and
    /// `files` when given, as [`Convert::environment_values`] merges it. Whether it went into
    /// `files`, or nothing was written of it.
    fn values_file(
        &mut self,
        item: &Spanned<Node>,
        file: &str,
        path: &str,
        (into, written): (&mut Map<String, Value>, &mut Map<String, Value>),
        files: Option<&mut Vec<(String, Map<String, Value>)>>,
        (env, missing): (&load::EnvState, Missing),
    ) -> Result<bool> {
        let text = match self.files.read(path) {
            Ok(Some(text)) => {
                self.name_file(line(item), file, path);
                text
            }
            Ok(None) => {
                self.missing(line(item), file, "not found", missing)?;
                return Ok(true);
            }
            Err(reason) => {
                self.leave(line(item), file, format!("not read: {reason}"));
                return Ok(true);
            }
        };
        let templated = path.ends_with(".gotmpl");
        let reads_variables = templated && !load::variables_read(&text).is_empty();
        let text = match templated {
            true => {
                let mut so_far = env.clone();
                deep_merge(&mut so_far.values, into.clone());
                self.files.render(path, self.ctx.dir(), &text, &so_far.data())?
            }
            false => text,
        };
        let docs = match documents::<Option<Map<String, Value>>>(Path::new(path), &text, "invalid YAML") {
            Ok(docs) => docs,
            Err(err) => {
                self.leave(line(item), file, format!("not read: {err}"));
                return Ok(true);
            }
        };
        // weaver reads one plain YAML mapping of the repository per file, as it is.
        let repository_path = self.files.repository_path(path).filter(|_| !templated && docs.len() <= 1);
        if let (Some(files), Some(repository_path)) = (files, repository_path) {
            let values = docs.into_iter().flatten().next().unwrap_or_default();
            deep_merge(into, values.clone());
            files.push((repository_path.to_string_lossy().replace('\\', "/"), values));
            return Ok(true);
        }
        for map in docs.into_iter().flatten() {
            deep_merge(into, map.clone());
            if !reads_variables {
                deep_merge(written, map);
            }
        }
        if reads_variables {
            self.leave(
                line(item),
                file,
                format!(
                    "reads environment variables (`env`, `requiredEnv`), which may hold secrets: the state was \
                     rendered with its values (a placeholder, `{}`, for each variable's), but they are not written; \
                     put them in the environment's `values:`, or in a SOPS file the releases list",
                    self.files.placeholder("<NAME>")
                ),
            );
        }
        Ok(reads_variables)
    }

    /// A values file (`what`, named at `at`) that is not there (`why`), as `missing` takes it:
    /// an error, as in helmfile, or listed.
    fn missing(&mut self, at: u64, what: &str, why: &str, missing: Missing) -> Result<()> {
        let from_variable = placeholder_variable(what, &self.files.placeholder("")).map(|variable| {
            format!("{why}: its path holds environment variable `{variable}`, whose value the import does not read")
        });
        let why = from_variable.as_deref().unwrap_or(why);
        match missing {
            Missing::Refused => Err(Error::at(
                Location::at(&self.ctx.file, self.ctx.source_line(at), 0),
                match from_variable {
                    Some(_) => format!("{what}: {why}"),
                    None => format!(
                        "{what}: {why} (helmfile stops on it; with the environment's `missingFileHandler: Warn` it \
                         passes over it)"
                    ),
                },
            )),
            Missing::Optional => {
                self.optional(at, what, why);
                Ok(())
            }
            Missing::Listed => {
                self.leave(at, what, why);
                Ok(())
            }
        }
    }

    /// Lists a values file that is not there (`why`) and that helmfile passes over: weaver has
    /// nothing to say "read it if it exists", and a file added later must not be ignored.
    fn optional(&mut self, at: u64, what: &str, why: &str) {
        self.leave(
            at,
            what,
            format!(
                "{why}, and optional (`missingFileHandler`): weaver has no optional values files, so it is not in \
                 `valuesFiles`; add it there once it exists"
            ),
        );
    }

    /// A path the helmfile names as a path of the weaver repository, or `None` (listed).
    fn repository_path(&mut self, at: u64, what: &str, path: &str) -> Option<String> {
        match self.files.repository_path(&self.ctx.local(path)) {
            Some(p) => Some(p.to_string_lossy().replace('\\', "/")),
            None => {
                self.leave(
                    at,
                    format!("{what} `{path}`"),
                    "outside the weaver repository (--repo): move it into the repository",
                );
                None
            }
        }
    }

    /// The state `loaded` for one environment, converted.
    fn env_state(&mut self, loaded: load::Loaded) -> EnvConverted {
        let mut repositories: Vec<(String, Value)> = Vec::new();
        let mut releases: Vec<(Rc<load::Ctx>, Spanned<Node>)> = Vec::new();
        let mut shared = Shared {
            repositories: BTreeSet::new(),
            refused: BTreeSet::new(),
            releases: Vec::new(),
            context: None,
            create_namespace: None,
            common_labels: Map::new(),
            offline: Offline::default(),
            template_args: Offline::default(),
            data: loaded.env.data(),
            missing_ok: false,
        };
        let mut templates: Vec<(String, Spanned<Node>)> = Vec::new();
        let mut default_inherit: Vec<String> = Vec::new();
        for (ctx, key, node) in &loaded.entries {
            self.ctx = Rc::clone(ctx);
            let at = line(key);
            match key.value.0.as_str() {
                "repositories" => {
                    for item in self.list(node, "repositories") {
                        match self.repository(item) {
                            Ok((name, repository)) => {
                                if !repositories.iter().any(|(n, _)| *n == name) {
                                    repositories.push((name, repository));
                                }
                            }
                            Err(Some(name)) => {
                                shared.refused.insert(name);
                            }
                            Err(None) => {}
                        }
                    }
                }
                "releases" => releases.extend(self.list(node, "releases").iter().map(|r| (Rc::clone(ctx), r.clone()))),
                "helmDefaults" => self.helm_defaults(node, &mut shared),
                "commonLabels" => {
                    if let Some(labels) = self.labels(node, "commonLabels") {
                        shared.common_labels.extend(labels);
                    }
                }
                "kubeVersion" => shared.offline.kube_version = self.kube_version(node, "kubeVersion"),
                "apiVersions" => shared.offline.api_versions = self.api_versions(node, "apiVersions"),
                // Definitions releases reach through YAML anchors (`<<: *name`), which the
                // parser resolves, or `inherit:` and `defaultInherit`.
                "templates" => {
                    for (name, template) in self.entries(node, "templates") {
                        templates.push((name.value.0.clone(), template.clone()));
                    }
                }
                "defaultInherit" => match &node.value {
                    Node::List(items) => {
                        default_inherit = items.iter().filter_map(|i| self.text(i, "defaultInherit")).collect()
                    }
                    _ => default_inherit = self.text(node, "defaultInherit").into_iter().collect(),
                },
                "hooks" => self.leave(at, "hooks", flag_reason("hooks").unwrap_or_default()),
                "lockFilePath" => {
                    self.leave(at, "lockFilePath", "weaver pins charts in charts.lock: run `weaver charts lock`")
                }
                "missingFileHandler" => {
                    shared.missing_ok = self.text(node, "missingFileHandler").is_some_and(|h| h != "Error")
                }
                "missingFileHandlerConfig" => {}
                "helmBinary" | "kustomizeBinary" => {
                    self.leave(at, key.value.0.clone(), "not needed: weaver renders charts and kustomizations itself")
                }
                other if is_default(&node.value) => {
                    let _ = other;
                }
                other => match flag_reason(other) {
                    Some(why) => self.leave(at, other.to_string(), why),
                    None => self.leave(at, other.to_string(), "not a helmfile key weaver knows: not converted"),
                },
            }
        }
        shared.repositories = repositories.iter().map(|(name, _)| name.clone()).collect();

        // Release names and namespaces first: `needs` refers to them.
        for (_, release) in &releases {
            let mut name = None;
            let mut namespace = None;
            if let Node::Map(fields) = &release.value {
                for (key, value) in fields {
                    match (key.value.0.as_str(), &value.value) {
                        ("name", Node::Scalar(Value::String(s))) => name = Some(s.clone()),
                        ("namespace", Node::Scalar(Value::String(s))) => namespace = Some(s.clone()),
                        _ => {}
                    }
                }
            }
            shared.releases.push((name.unwrap_or_default(), namespace));
        }
        let values = loaded.env.merged();
        let mut converted: Vec<Converted> = Vec::new();
        for (ctx, release) in &releases {
            self.ctx = Rc::clone(ctx);
            let release = self.inherit(release, &templates, &default_inherit);
            let Some(mut release) = self.release(&release, &shared) else { continue };
            if converted.iter().any(|r| r.name == release.name) {
                self.leave(
                    release.line,
                    format!("release `{}`", release.name),
                    "a second release of this name (in another namespace): weaver's release names are unique in an \
                     environment; rename it (or put it in another environment) and add it by hand",
                );
                continue;
            }
            if let Some((condition, at)) = release.condition.take() {
                match lookup(&values, &condition) {
                    Some(Value::Bool(true)) => {}
                    Some(Value::Bool(false)) => {
                        release.fields.insert("installed".into(), Value::Bool(false));
                    }
                    found => self.leave(
                        at,
                        format!(
                            "release `{}`: condition `{condition}` in environment `{}`",
                            release.name, loaded.env.name
                        ),
                        match found {
                            None => "the environment's values have no such key: write `installed:` in its file",
                            Some(_) => "not true or false in the environment's values: write `installed:` in its file",
                        },
                    ),
                }
            }
            converted.push(release);
        }

        // A release left out cannot be needed: weaver refuses `needs` naming no release.
        let names: BTreeSet<String> = converted.iter().map(|r| r.name.clone()).collect();
        for release in &mut converted {
            let Some(Value::Array(needs)) = release.fields.get_mut("needs") else { continue };
            let mut dropped = Vec::new();
            needs.retain(|n| {
                let keep = n.as_str().is_some_and(|n| names.contains(n));
                if !keep {
                    dropped.push(n.as_str().unwrap_or_default().to_string());
                }
                keep
            });
            if needs.is_empty() {
                release.fields.remove("needs");
            }
            self.ctx = Rc::clone(&release.ctx);
            for need in dropped {
                let why = match shared.releases.iter().any(|(name, _)| *name == need) {
                    true => "the release it names was left out (see its line), so this need is too".to_string(),
                    false => format!("environment `{}` has no such release, so this need is left out", loaded.env.name),
                };
                self.leave(release.line, format!("release `{}`: needs `{need}`", release.name), why);
            }
        }
        let offline = shared.offline.with(&shared.template_args);
        EnvConverted { env: loaded.env, repositories, releases: converted, context: shared.context, offline }
    }

    /// The files of every environment's converted state: what they all have alike in the
    /// abstract base, the rest in each one's file.
    fn files_of(self, file_name: &str, states: Vec<EnvConverted>) -> Imported {
        let base = if states.iter().any(|s| s.env.name == "base") { "helmfile-base" } else { "base" };
        // The helmfile by its path in the repository (`deploy/helmfile.yaml`), as the files name theirs.
        let shown = self.files.repository_path(file_name).map(|p| p.to_string_lossy().replace('\\', "/"));
        let header =
            format!("# Imported from {} by `weaver import helmfile`.\n", shown.as_deref().unwrap_or(file_name));
        let alike = |of: &dyn Fn(&EnvConverted) -> Value| {
            let first = states.first().map(of);
            states.iter().all(|s| Some(of(s)) == first)
        };
        let context_alike = alike(&|s| serde_json::json!(s.context));
        let kube_version_alike = alike(&|s| serde_json::json!(s.offline.kube_version));
        let api_versions_alike = alike(&|s| serde_json::json!(s.offline.api_versions));
        let defaults_alike = alike(&|s| Value::Object(s.env.written.defaults.clone()));
        let mut repositories: Vec<&(String, Value)> = Vec::new();
        for repository in states.iter().flat_map(|s| &s.repositories) {
            if !repositories.iter().any(|(name, _)| *name == repository.0) {
                repositories.push(repository);
            }
        }
        // Releases in the order they first appear.
        let mut names: Vec<&str> = Vec::new();
        for release in states.iter().flat_map(|s| &s.releases) {
            if !names.contains(&release.name.as_str()) {
                names.push(&release.name);
            }
        }

        let mut base_file = Map::new();
        base_file.insert("abstract".into(), Value::Bool(true));
        let first = states.first();
        if let (true, Some(Some(context))) = (context_alike, first.map(|s| &s.context)) {
            base_file.insert("cluster".into(), serde_json::json!({ "context": context }));
        }
        if let (true, Some(Some(version))) = (kube_version_alike, first.map(|s| &s.offline.kube_version)) {
            base_file.insert("kubeVersion".into(), Value::String(version.clone()));
        }
        if let (true, Some(versions)) = (api_versions_alike, first.map(|s| &s.offline.api_versions))
            && !versions.is_empty()
        {
            base_file.insert("apiVersions".into(), serde_json::json!(versions));
        }
        if let (true, Some(defaults)) = (defaults_alike, first.map(|s| &s.env.written.defaults))
            && !defaults.is_empty()
        {
            base_file.insert("values".into(), Value::Object(defaults.clone()));
        }
        if !repositories.is_empty() {
            base_file.insert("repositories".into(), repositories.iter().map(|(_, r)| r.clone()).collect());
        }
        // Each environment's releases as its file writes them: whole where the base has none
        // of the name, else the fields that differ from the base's.
        let mut own: Vec<Vec<Value>> = vec![Vec::new(); states.len()];
        let mut base_releases = Vec::new();
        for name in &names {
            let found: Vec<Option<&Converted>> =
                states.iter().map(|s| s.releases.iter().find(|r| r.name == *name)).collect();
            let everywhere: Option<Vec<&Converted>> = found.iter().copied().collect();
            let Some(everywhere) = everywhere else {
                for (i, release) in found.iter().enumerate() {
                    if let Some(release) = release {
                        own[i].push(Value::Object(release.fields.clone()));
                    }
                }
                continue;
            };
            let mut common = Map::new();
            for (key, value) in &everywhere[0].fields {
                if everywhere.iter().all(|r| r.fields.get(key) == Some(value)) {
                    common.insert(key.clone(), value.clone());
                }
            }
            for (i, release) in everywhere.iter().enumerate() {
                let differ: Map<String, Value> = release
                    .fields
                    .iter()
                    .filter(|(k, _)| !common.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !differ.is_empty() {
                    let mut entry = Map::new();
                    entry.insert("name".into(), Value::String(name.to_string()));
                    entry.extend(differ);
                    own[i].push(Value::Object(entry));
                }
            }
            base_releases.push(Value::Object(common));
        }
        if !base_releases.is_empty() {
            base_file.insert("releases".into(), Value::Array(base_releases));
        }
        let mut files =
            vec![(base_path(base), format!("{header}{}", weaver_yaml::to_yaml_string(&Value::Object(base_file))))];

        for (state, releases) in states.iter().zip(own) {
            let mut map = Map::new();
            map.insert("extends".into(), Value::String(base.to_string()));
            let context = state.env.context.as_ref().or(state.context.as_ref().filter(|_| !context_alike));
            if let Some(context) = context {
                map.insert("cluster".into(), serde_json::json!({ "context": context }));
            }
            if let (false, Some(version)) = (kube_version_alike, &state.offline.kube_version) {
                map.insert("kubeVersion".into(), Value::String(version.clone()));
            }
            if !api_versions_alike && !state.offline.api_versions.is_empty() {
                map.insert("apiVersions".into(), serde_json::json!(state.offline.api_versions));
            }
            // The environment's values files are under what its base gives, and over the
            // state's values: kept as files when those are in the base.
            let values = match defaults_alike {
                true => {
                    let files: Vec<Value> =
                        state.env.written.files.iter().map(|(path, _)| Value::String(path.clone())).collect();
                    if !files.is_empty() {
                        map.insert("valuesFiles".into(), Value::Array(files));
                    }
                    state.env.written.values.clone()
                }
                false => state.env.written.merged(),
            };
            if !values.is_empty() {
                map.insert("values".into(), Value::Object(values));
            }
            if !releases.is_empty() {
                map.insert("releases".into(), Value::Array(releases));
            }
            files.push((
                base_path(&state.env.name),
                format!("{header}{}", weaver_yaml::to_yaml_string(&Value::Object(map))),
            ));
        }

        let mut remote_charts: Vec<String> = Vec::new();
        for state in &states {
            for release in &state.releases {
                if let Some(Value::String(chart)) = release.fields.get("chart")
                    && (chart.starts_with("oci://")
                        || chart.split_once('/').is_some_and(|(r, _)| state.repositories.iter().any(|(n, _)| n == r)))
                    && !remote_charts.contains(chart)
                {
                    remote_charts.push(chart.clone());
                }
            }
        }
        // Each environment lists what all of them leave out: once is enough.
        let mut left_out = self.left_out;
        // A variable is listed once, where it is first read, with the other places it is read.
        let mut listed: Vec<&Option<String>> = Vec::new();
        for (file, read) in &self.variables {
            if listed.contains(&&read.name) {
                continue;
            }
            listed.push(&read.name);
            let also: Vec<String> = self
                .variables
                .iter()
                .filter(|(other_file, other)| other.name == read.name && (other_file, other.line) != (file, read.line))
                .map(|(other_file, other)| format!("{other_file}:{}", other.line))
                .collect();
            left_out.push(read.left_out(file, &also, self.files));
        }
        left_out.sort_by(|a, b| (&a.file, a.line, &a.what, &a.why).cmp(&(&b.file, b.line, &b.what, &b.why)));
        left_out.dedup();
        let main = file_name.to_string();
        left_out.sort_by_key(|l| (l.file != main, l.file.clone(), l.line));
        Imported { files, left_out, remote_charts }
    }

    /// A repository as weaver writes it; `Err` with its name when it is of a kind weaver cannot
    /// load (its releases are left out then), `Err(None)` when it is not one at all.
    fn repository(&mut self, item: &Spanned<Node>) -> std::result::Result<(String, Value), Option<String>> {
        let mut name = None;
        let mut url = None;
        let mut oci = false;
        let mut plain_http = false;
        let at = line(item);
        let mut credentials = Vec::new();
        for (key, value) in self.entries(item, "repository") {
            match key.value.0.as_str() {
                "name" => name = self.text(value, "repository name"),
                "url" => url = Some(value),
                "oci" => oci = self.bool(value, "repository oci").unwrap_or(false),
                "plainHttp" => plain_http = self.bool(value, "repository plainHttp").unwrap_or(false),
                _ if is_default(&value.value) => {}
                other => credentials.push((line(key), other.to_string())),
            }
        }
        let Some(name) = name else {
            self.leave(at, "repository", "has no `name`");
            return Err(None);
        };
        for (at, key) in credentials {
            let upper: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
            let why = match key.as_str() {
                "username" | "password" => format!(
                    "credentials come from the machine, never the repository: WEAVER_REPOSITORY_{upper}_USERNAME \
                     and _PASSWORD, the credentials file, or helm's and docker's registry logins"
                ),
                "caFile" => format!("give the CA on the machine: WEAVER_REPOSITORY_{upper}_CA_FILE"),
                "certFile" | "keyFile" => "not supported: weaver has no client certificates for repositories".into(),
                "passCredentials" => "not supported: credentials are sent only to the repository's host".into(),
                "skipTLSVerify" => "not supported: give the repository's CA instead".into(),
                _ => "not a repository key weaver knows: not converted".into(),
            };
            self.leave(at, format!("repository `{name}`: {key}"), why);
        }
        let Some(url) = url.and_then(|url| self.text(url, &format!("repository `{name}` url"))) else {
            self.leave(at, format!("repository `{name}`"), "has no `url`: its releases are left out");
            return Err(Some(name));
        };
        let url = if oci && !url.starts_with("oci://") {
            format!("oci://{}", url.split_once("://").map_or(url.as_str(), |(_, rest)| rest))
        } else {
            url.trim_end_matches('/').to_string()
        };
        // What weaver loads (`weaver_project::environment`): anything else would make every
        // command refuse the environment. The URL is not repeated: it may hold credentials.
        let scheme = ["https://", "http://", "oci://"].into_iter().find(|s| url.starts_with(s));
        if scheme.is_none_or(|s| url.len() == s.len()) || url.contains(['?', '#', '@']) {
            self.leave(
                at,
                format!("repository `{name}`"),
                "not a chart repository weaver can load (an https:// repository with an index.yaml or an oci:// \
                 registry, without credentials or a query in its URL; helm plugins' `git+https://`, `s3://`… are \
                 not): it and its releases are left out",
            );
            return Err(Some(name));
        }
        let mut repository = Map::new();
        repository.insert("name".into(), Value::String(name.clone()));
        repository.insert("url".into(), Value::String(url.clone()));
        if plain_http {
            if url.starts_with("oci://") {
                repository.insert("plainHttp".into(), Value::Bool(true));
            } else {
                self.leave(at, format!("repository `{name}`: plainHttp"), "weaver takes it for oci:// registries only");
            }
        }
        Ok((name, Value::Object(repository)))
    }

    /// The spec of the environment being loaded, `env`, applied to it: its values merged over
    /// the ones it has, its `kubeContext`.
    fn environment(&mut self, spec: &Spanned<Node>, env: &mut load::EnvState) -> Result<()> {
        let what = format!("environment `{}`", env.name);
        let (mut values, mut written, mut files) = (Map::new(), Map::new(), Vec::new());
        let entries = self.entries(spec, &what);
        // helmfile's default for an environment's values files is `Error`.
        let missing = match entries.iter().find(|(key, _)| key.value.0 == "missingFileHandler") {
            Some((_, handler))
                if self.text(handler, &format!("{what} missingFileHandler")).is_some_and(|h| h != "Error") =>
            {
                Missing::Optional
            }
            _ => Missing::Refused,
        };
        for (key, value) in entries {
            match key.value.0.as_str() {
                "values" => self.environment_values(
                    value,
                    &format!("{what} values"),
                    (&mut values, &mut written),
                    Some(&mut files),
                    env,
                    missing,
                )?,
                "kubeContext" => {
                    if let Some(context) = self.text(value, &format!("{what} kubeContext")) {
                        env.context = Some(context);
                    }
                }
                "secrets" => {
                    for item in self.list(value, "secrets") {
                        if let Some(path) = self.text(item, &format!("{what} secrets file")) {
                            self.leave(
                                line(item),
                                format!("{what} secrets file `{path}`"),
                                "helmfile merges it into the environment's values; weaver's environment `secrets:` \
                                 reach templates as `secrets` and Helm charts under the release's name: list it in \
                                 the `valuesFiles` of the releases that use it (weaver decrypts SOPS files there)",
                            );
                        }
                    }
                }
                "mergeStrategy" if matches!(&value.value, Node::Scalar(Value::String(s)) if s == "override") => {}
                "missingFileHandler" | "missingFileHandlerConfig" => {}
                other if is_default(&value.value) => {
                    let _ = other;
                }
                other => self.leave(
                    line(key),
                    format!("{what}: {other}"),
                    if other == "mergeStrategy" {
                        "not supported: later values override earlier ones".to_string()
                    } else {
                        "not an environment key weaver knows: not converted".to_string()
                    },
                ),
            }
        }
        deep_merge(&mut env.values, values);
        env.written.add(files, written);
        Ok(())
    }

    fn helm_defaults(&mut self, node: &Spanned<Node>, shared: &mut Shared) {
        for (key, value) in self.entries(node, "helmDefaults") {
            match key.value.0.as_str() {
                "kubeContext" => shared.context = self.text(value, "helmDefaults kubeContext"),
                "createNamespace" => shared.create_namespace = self.bool(value, "helmDefaults createNamespace"),
                "templateArgs" => shared.template_args = self.template_args(value),
                _ if is_default(&value.value) => {}
                other => {
                    let why = flag_reason(other).unwrap_or("not a helmDefaults key weaver knows: not converted");
                    self.leave(line(key), format!("helmDefaults {other}"), why);
                }
            }
        }
    }

    /// `helmDefaults.templateArgs`: the flags helmfile adds to `helm template` (and to
    /// helm-diff's render), split into flags as helmfile splits them. `--api-versions` (`-a`)
    /// and `--kube-version` are what weaver's offline renders see; every other flag is listed,
    /// one line each.
    fn template_args(&mut self, node: &Spanned<Node>) -> Offline {
        const WHAT: &str = "helmDefaults templateArgs";
        let mut words: Vec<(String, u64)> = Vec::new();
        for item in self.list(node, WHAT) {
            if let Some(text) = self.text(item, WHAT) {
                words.extend(text.split(' ').filter(|w| !w.is_empty()).map(|w| (w.to_string(), line(item))));
            }
        }
        let mut found = Offline::default();
        let mut words = words.into_iter().peekable();
        while let Some((word, at)) = words.next() {
            let (flag, attached) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                // pflag's shorthand with its value attached: `-agateway.networking.k8s.io/v1`.
                None if word.len() > 2 && word.starts_with("-a") && !word.starts_with("--") => {
                    ("-a".to_string(), Some(word[2..].to_string()))
                }
                None => (word.clone(), None),
            };
            // helmfile takes the next word for a flag's value unless it is a flag itself.
            let next = match attached {
                Some(_) => None,
                None => words.next_if(|(next, _)| !next.starts_with('-')).map(|(next, _)| next),
            };
            let shown = next.as_ref().map_or_else(|| word.clone(), |next| format!("{word} {next}"));
            let value = attached.or(next);
            match (flag.as_str(), value) {
                ("--api-versions" | "-a", Some(value)) => {
                    let what = format!("{WHAT}: {flag}");
                    for entry in value.split(',') {
                        self.api_version(at, &what, entry, &mut found.api_versions);
                    }
                }
                ("--kube-version", Some(value)) if weaver_core::manifest::is_kube_version(&value) => {
                    found.kube_version = Some(value)
                }
                ("--kube-version", Some(_)) => self.leave(
                    at,
                    format!("{WHAT}: {shown}"),
                    "not a Kubernetes version (such as v1.32.0): not converted",
                ),
                (_, _) => {
                    let why = match flag.as_str() {
                        "--api-versions" | "-a" | "--kube-version" => "has no value: not converted",
                        _ => "not supported: weaver runs no helm binary",
                    };
                    self.leave(at, format!("{WHAT}: {shown}"), why);
                }
            }
        }
        found
    }

    /// A `kubeVersion` (the state's or a release's), when it is a Kubernetes version.
    fn kube_version(&mut self, node: &Spanned<Node>, what: &str) -> Option<String> {
        let version = self.text(node, what)?;
        if weaver_core::manifest::is_kube_version(&version) {
            return Some(version);
        }
        self.leave(
            line(node),
            format!("{what}: `{version}`"),
            "not a Kubernetes version (such as v1.32.0): not converted",
        );
        None
    }

    /// An `apiVersions` list (the state's or a release's): its API versions, each that is not one
    /// listed.
    fn api_versions(&mut self, node: &Spanned<Node>, what: &str) -> Vec<String> {
        let mut found = Vec::new();
        for item in self.list(node, what) {
            if let Some(entry) = self.text(item, what) {
                // helm's `--api-versions` splits its value at commas, as helmfile passes it.
                for entry in entry.split(',') {
                    self.api_version(line(item), what, entry, &mut found);
                }
            }
        }
        found
    }

    /// One API version of helm's `--api-versions`, into `found` unless it is not one (listed) or
    /// already there.
    fn api_version(&mut self, at: u64, what: &str, entry: &str, found: &mut Vec<String>) {
        if !weaver_core::manifest::is_api_version(entry) {
            self.leave(
                at,
                format!("{what}: `{entry}`"),
                "not an API version (group/version or group/version/Kind, such as gateway.networking.k8s.io/v1): \
                 not converted",
            );
        } else if !found.iter().any(|v| v == entry) {
            found.push(entry.to_string());
        }
    }

    fn labels(&mut self, node: &Spanned<Node>, what: &str) -> Option<Map<String, Value>> {
        let mut labels = Map::new();
        for (key, value) in self.entries(node, what) {
            if let Some(text) = self.text(value, &format!("{what} `{}`", key.value.0)) {
                labels.insert(key.value.0.clone(), Value::String(text));
            }
        }
        Some(labels)
    }

    /// A release with the release templates it inherits (its `inherit:`, after the state's
    /// `defaultInherit`) merged in, as helmfile merges them: a field the release or an earlier
    /// template has stays, lists are appended, a template's `except` fields are left out.
    fn inherit(
        &mut self,
        node: &Spanned<Node>,
        templates: &[(String, Spanned<Node>)],
        default: &[String],
    ) -> Spanned<Node> {
        let Node::Map(fields) = &node.value else { return node.clone() };
        let mut inherits: Vec<(String, Vec<String>, u64)> =
            default.iter().map(|name| (name.clone(), Vec::new(), line(node))).collect();
        if let Some((key, value)) = fields.iter().find(|(k, _)| k.value.0 == "inherit") {
            let items = match &value.value {
                Node::List(items) => items.clone(),
                _ => vec![value.clone()],
            };
            for item in &items {
                let (mut name, mut except) = (None, Vec::new());
                for (k, v) in self.entries(item, "inherit") {
                    match (k.value.0.as_str(), &v.value) {
                        ("template", _) => name = self.text(v, "inherit template"),
                        ("except", Node::List(keys)) => {
                            except = keys.iter().filter_map(|k| self.text(k, "inherit except")).collect()
                        }
                        _ => {}
                    }
                }
                match name {
                    Some(name) => {
                        inherits.retain(|(n, _, _)| *n != name);
                        inherits.push((name, except, line(key)));
                    }
                    None => self.leave(line(item), "inherit", "names no `template`"),
                }
            }
        }
        if inherits.is_empty() {
            return node.clone();
        }
        let mut merged: Vec<(Spanned<Key>, Spanned<Node>)> = Vec::new();
        for (name, except, at) in inherits {
            let Some((_, template)) = templates.iter().find(|(n, _)| *n == name) else {
                self.leave(at, format!("inherit `{name}`"), "no such template in `templates:`: not inherited");
                continue;
            };
            if let Node::Map(entries) = &template.value {
                let kept = entries.iter().filter(|(k, _)| !except.contains(&k.value.0) && k.value.0 != "inherit");
                fill(&mut merged, kept.cloned().collect());
            }
        }
        fill(&mut merged, fields.iter().filter(|(k, _)| k.value.0 != "inherit").cloned().collect());
        /// `from`'s fields into `into`, as mergo merges without overriding: lists appended,
        /// mappings key by key, any other field kept where `into` has it.
        fn fill(into: &mut Vec<(Spanned<Key>, Spanned<Node>)>, from: Vec<(Spanned<Key>, Spanned<Node>)>) {
            for (key, value) in from {
                match into.iter_mut().find(|(k, _)| k.value.0 == key.value.0) {
                    None => into.push((key, value)),
                    Some((_, have)) => match (&mut have.value, value.value) {
                        (Node::List(items), Node::List(more)) => items.extend(more),
                        (Node::Map(entries), Node::Map(more)) => fill(entries, more),
                        (Node::Null, other) => have.value = other,
                        _ => {}
                    },
                }
            }
        }
        Spanned { value: Node::Map(merged), referenced: node.referenced, defined: node.defined }
    }

    /// A release with the templates of its fields rendered, as helmfile renders a release's
    /// own once the state is read (`{{ .Release.Name }}` in a values file's path): over the
    /// environment's data and the release's name, namespace, labels and chart. Inline values are
    /// data, not templates. A field that does not render is listed, and the release left out.
    fn release_templates(&mut self, node: &Spanned<Node>, shared: &Shared) -> Option<Spanned<Node>> {
        let Node::Map(fields) = &node.value else { return Some(node.clone()) };
        fn has_template(node: &Node) -> bool {
            match node {
                Node::Scalar(Value::String(s)) => s.contains("{{"),
                Node::List(items) => items.iter().any(|i| has_template(&i.value)),
                Node::Map(entries) => entries.iter().any(|(_, v)| has_template(&v.value)),
                _ => false,
            }
        }
        let templated = |(key, value): &(Spanned<Key>, Spanned<Node>)| match (key.value.0.as_str(), &value.value) {
            ("hooks", _) => false,
            ("values", Node::List(items)) => {
                items.iter().any(|i| matches!(&i.value, Node::Scalar(_)) && has_template(&i.value))
            }
            _ => has_template(&value.value),
        };
        if !fields.iter().any(templated) {
            return Some(node.clone());
        }
        let field = |name: &str| {
            fields.iter().find(|(k, _)| k.value.0 == name).map(|(_, v)| match &v.value {
                Node::Scalar(Value::String(s)) => Value::String(s.clone()),
                Node::Map(entries) => Value::Object(
                    entries
                        .iter()
                        .filter_map(|(k, v)| match &v.value {
                            Node::Scalar(value) => Some((
                                k.value.0.clone(),
                                Value::String(value.as_str().map_or_else(|| value.to_string(), str::to_string)),
                            )),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => Value::Null,
            })
        };
        let mut data = shared.data.clone();
        data["Release"] = serde_json::json!({
            "Name": field("name").unwrap_or_default(),
            "Namespace": field("namespace").unwrap_or_else(|| Value::String(String::new())),
            "Labels": with_common_labels(
                match field("labels") {
                    Some(Value::Object(own)) => own,
                    _ => Map::new(),
                },
                &shared.common_labels,
            ),
            "Chart": field("chart").unwrap_or_default(),
            "KubeContext": field("kubeContext").unwrap_or_else(|| Value::String(String::new())),
        });
        let name = field("name").and_then(|n| n.as_str().map(str::to_string)).unwrap_or_default();
        let mut out = node.clone();
        let Node::Map(fields) = &mut out.value else { return Some(out) };
        let mut failed = None;
        for (key, value) in fields.iter_mut() {
            let mut render = |text: &mut String, at: u64| {
                if !text.contains("{{") || failed.is_some() {
                    return;
                }
                match self.files.render(&self.ctx.file, self.ctx.dir(), text, &data) {
                    Ok(rendered) => *text = rendered,
                    Err(err) => failed = Some((at, format!("release `{name}`: {}", key.value.0), err.message)),
                }
            };
            fn walk(node: &mut Spanned<Node>, inline: bool, render: &mut dyn FnMut(&mut String, u64)) {
                let at = node.referenced.line();
                match &mut node.value {
                    Node::Scalar(Value::String(s)) => render(s, at),
                    Node::List(items) => items.iter_mut().for_each(|i| walk(i, inline, render)),
                    Node::Map(_) if inline => {}
                    Node::Map(entries) => entries.iter_mut().for_each(|(_, v)| walk(v, false, render)),
                    _ => {}
                }
            }
            // Hooks are rendered when they run (`.Event`), and left out anyway.
            if key.value.0 != "hooks" {
                walk(value, key.value.0 == "values", &mut render);
            }
        }
        if let Some((at, what, message)) = failed {
            self.leave(at, what, format!("{message}: the release is left out"));
            return None;
        }
        Some(out)
    }

    fn release(&mut self, node: &Spanned<Node>, shared: &Shared) -> Option<Converted> {
        let node = &self.release_templates(node, shared)?;
        let at = line(node);
        let fields = self.entries(node, "release");
        let name_node = fields.iter().find(|(k, _)| k.value.0 == "name").map(|(_, v)| v);
        let Some(name_node) = name_node else {
            self.leave(at, "release", "has no `name`");
            return None;
        };
        let name = self.text(name_node, "release name")?;
        let what = format!("release `{name}`");
        // A name, namespace or path from a variable's placeholder would deploy something else.
        let prefix = self.files.placeholder("");
        for (key, value) in fields {
            let decisive = match (key.value.0.as_str(), &value.value) {
                ("values" | "secrets", Node::List(items)) => items
                    .iter()
                    .filter(|item| matches!(item.value, Node::Scalar(_)))
                    .find_map(|i| variable_in(i, &prefix)),
                ("values" | "set" | "setString" | "hooks" | "description", _) => None,
                _ => variable_in(value, &prefix),
            };
            if let Some(variable) = decisive {
                self.leave(
                    line(key),
                    format!("{what}: {}", key.value.0),
                    format!(
                        "comes from environment variable `{variable}`, whose value the import does not read: the \
                         release is left out; add it by hand"
                    ),
                );
                return None;
            }
        }
        let mut chart: Option<(String, u64)> = None;
        let mut version: Option<(String, u64)> = None;
        let mut namespace = None;
        let mut create_namespace = shared.create_namespace.filter(|c| !c);
        let mut needs = Vec::new();
        let mut labels = Map::new();
        let mut installed = None;
        let mut condition = None;
        let mut patches = Vec::new();
        let mut missing_ok = shared.missing_ok;
        // `values` and `secrets` in helmfile's order: values, then secrets, each in order.
        let mut values_items: Vec<&Spanned<Node>> = Vec::new();
        let mut secrets_items: Vec<&Spanned<Node>> = Vec::new();
        let mut sets: Vec<(&Spanned<Node>, Kind)> = Vec::new();
        for (key, value) in fields {
            let field = key.value.0.as_str();
            let field_what = format!("{what}: {field}");
            match field {
                "name" => {}
                "chart" => chart = self.text(value, &format!("{what} chart")).map(|c| (c, line(value))),
                "version" => version = self.text(value, &format!("{what} version")).map(|v| (v, line(value))),
                "namespace" => namespace = self.text(value, &format!("{what} namespace")),
                "createNamespace" => create_namespace = self.bool(value, &field_what),
                "installed" => installed = self.bool(value, &field_what),
                "labels" => {
                    if let Some(own) = self.labels(value, &format!("{what} labels")) {
                        labels = own;
                    }
                }
                "condition" => condition = self.text(value, &field_what).map(|c| (c, line(value))),
                "values" => values_items.extend(self.list(value, &field_what)),
                "secrets" => secrets_items.extend(self.list(value, &field_what)),
                "set" => sets.extend(self.list(value, &field_what).iter().map(|s| (s, Kind::Typed))),
                "setString" => sets.extend(self.list(value, &field_what).iter().map(|s| (s, Kind::String))),
                "needs" => {
                    for need in self.list(value, &field_what) {
                        if let Some(text) = self.text(need, &format!("{what} needs"))
                            && let Some(resolved) = self.need(line(need), &what, &text, shared)
                            && !needs.contains(&resolved)
                        {
                            needs.push(resolved);
                        }
                    }
                }
                "strategicMergePatches" => {
                    for patch in self.list(value, &field_what) {
                        if let Some(p) = self.strategic_patch(patch, &what) {
                            patches.push(p);
                        }
                    }
                }
                "jsonPatches" => {
                    for patch in self.list(value, &field_what) {
                        if let Some(p) = self.json_patch(patch, &what) {
                            patches.push(p);
                        }
                    }
                }
                "hooks" => {
                    for hook in self.list(value, &field_what) {
                        let events = match &hook.value {
                            Node::Map(entries) => {
                                entries.iter().find(|(k, _)| k.value.0 == "events").and_then(|(_, v)| match &v.value {
                                    Node::List(items) => Some(
                                        items
                                            .iter()
                                            .filter_map(|i| match &i.value {
                                                Node::Scalar(Value::String(s)) => Some(s.clone()),
                                                _ => None,
                                            })
                                            .collect::<Vec<_>>()
                                            .join(", "),
                                    ),
                                    _ => None,
                                })
                            }
                            _ => None,
                        };
                        let hook_what = match events {
                            Some(events) if !events.is_empty() => format!("{what}: hook on {events}"),
                            _ => format!("{what}: hook"),
                        };
                        self.leave(line(hook), hook_what, flag_reason("hooks").unwrap_or_default());
                    }
                }
                "kubeContext" => {
                    let context = self.text(value, &field_what);
                    if context.is_some() && context != shared.context {
                        self.leave(
                            line(key),
                            field_what,
                            "weaver deploys an environment to one cluster (`cluster.context`): put the release in \
                             an environment of that context",
                        );
                    }
                }
                "apiVersions" => {
                    let own = Offline { api_versions: self.api_versions(value, &field_what), ..shared.offline.clone() };
                    let environment = shared.offline.with(&shared.template_args);
                    // helmfile: a release's list, when it has one, replaces the state's.
                    if !own.api_versions.is_empty()
                        && own.with(&shared.template_args).api_version_set() != environment.api_version_set()
                    {
                        let listed = |versions: &[String]| match versions {
                            [] => "none".to_string(),
                            _ => versions.join(", "),
                        };
                        self.leave(
                            line(key),
                            field_what,
                            format!(
                                "weaver sets `apiVersions` per environment: this release's ({}), which replace the \
                                 state's ({}) in helmfile, are not converted; add them to the environment's \
                                 `apiVersions` if its other releases may see them too",
                                own.api_versions.join(", "),
                                listed(&shared.offline.api_versions),
                            ),
                        );
                    }
                }
                "kubeVersion" => {
                    let environment = shared.offline.with(&shared.template_args).kube_version;
                    // helmfile: templateArgs' `--kube-version`, else the release's, else the state's.
                    let own = self.kube_version(value, &field_what);
                    let release = shared.template_args.kube_version.clone().or(own).or(environment.clone());
                    if release != environment {
                        self.leave(
                            line(key),
                            field_what,
                            format!(
                                "weaver sets `kubeVersion` per environment, and this release's ({}) differs from the \
                                 environment's ({}): not converted",
                                release.unwrap_or_default(),
                                environment.unwrap_or_else(|| format!(
                                    "none: helm's default {}",
                                    weaver_helm::DEFAULT_KUBE_VERSION
                                ))
                            ),
                        );
                    }
                }
                "description" | "missingFileHandlerConfig" => {}
                "missingFileHandler" => missing_ok = self.text(value, &field_what).is_some_and(|h| h != "Error"),
                "valuesTemplate" | "setTemplate" | "installedTemplate" | "conditionTemplate" | "waitTemplate"
                | "verifyTemplate" => {
                    self.leave(line(key), field_what, "templated: helmfile evaluates it when it runs")
                }
                _ if is_default(&value.value) => {}
                other => {
                    let why = flag_reason(other).unwrap_or("not a release key weaver knows: not converted");
                    self.leave(line(key), field_what, why);
                }
            }
        }

        let Some((chart, chart_at)) = chart else {
            self.leave(at, what, "has no `chart` it could be converted with: left out");
            return None;
        };
        let reference = self.chart(chart_at, &what, &chart, shared)?;
        let has_values = !values_items.is_empty() || !secrets_items.is_empty() || !sets.is_empty();

        let mut out = Map::new();
        out.insert("name".into(), Value::String(name.clone()));
        match reference {
            Chart::Remote(chart) => {
                out.insert("chart".into(), Value::String(chart));
                if let Some((version, _)) = version {
                    out.insert("version".into(), Value::String(version));
                }
            }
            // helm ignores `--version` for a chart directory, and so does weaver: nothing is lost.
            Chart::Local(chart) => {
                out.insert("chart".into(), Value::String(chart));
            }
            Chart::Kustomize(dir) => {
                if has_values {
                    self.leave(
                        chart_at,
                        format!("{what}: chart `{chart}`"),
                        "a kustomization with values (helmfile makes a chart of it): weaver's `kustomize:` releases \
                         take no values; left out",
                    );
                    return None;
                }
                out.insert("kustomize".into(), Value::String(dir));
            }
        }
        if let Some(namespace) = namespace {
            out.insert("namespace".into(), Value::String(namespace));
        }
        if let Some(create) = create_namespace.filter(|c| !c) {
            out.insert("createNamespace".into(), Value::Bool(create));
        }
        if !needs.is_empty() {
            out.insert("needs".into(), Value::Array(needs.into_iter().map(Value::String).collect()));
        }
        let labels = with_common_labels(labels, &shared.common_labels);
        if !labels.is_empty() {
            out.insert("labels".into(), Value::Object(labels));
        }

        // Values files and inline values, in helmfile's order.
        let mut values_files: Vec<Value> = Vec::new();
        // helmfile's release `secrets` go after its values: weaver's release `secrets` too.
        let mut secret_files: Vec<Value> = Vec::new();
        let mut inline = Map::new();
        let mut inline_before_file: Option<u64> = None;
        let mut inline_line = None;
        for (item, secret) in values_items.iter().map(|i| (i, false)).chain(secrets_items.iter().map(|i| (i, true))) {
            match &item.value {
                Node::Map(_) if !secret => {
                    if let Some(map) = self.map(item, &format!("{what} values")) {
                        merge_overrides(&mut inline, map);
                        inline_line.get_or_insert(line(item));
                    }
                }
                _ => {
                    let kind = if secret { "secrets file" } else { "values file" };
                    let Some(path) = self.text(item, &format!("{what} {kind}")) else { continue };
                    let Some(repo_path) = self.repository_path(line(item), &format!("{what} {kind}"), &path) else {
                        continue;
                    };
                    if self.files.found(Path::new(&repo_path)) != Found::File {
                        // helmfile passes over a missing file unless its handler says `Error`.
                        let file = format!("{what} {kind} `{path}`");
                        match missing_ok {
                            true => self.optional(line(item), &file, "not found"),
                            false => self.leave(line(item), file, "not found"),
                        }
                        continue;
                    }
                    let local = self.ctx.local(&path);
                    self.name_file(line(item), &format!("{what} {kind} `{path}`"), &local);
                    if secret {
                        secret_files.push(Value::String(repo_path));
                        continue;
                    }
                    if let Some(at) = inline_line {
                        inline_before_file.get_or_insert(at);
                    }
                    values_files.push(Value::String(repo_path));
                }
            }
        }
        if let Some(at) = inline_before_file {
            self.leave(
                at,
                format!("{what}: inline values before a values file"),
                "converted, but weaver applies the release's `values` over all its `valuesFiles`, where helmfile \
                 applied the files after them: check the keys they share",
            );
        }
        for (item, kind) in sets {
            self.set(item, kind, &what, !values_files.is_empty(), &mut inline);
        }
        if !values_files.is_empty() {
            out.insert("valuesFiles".into(), Value::Array(values_files));
        }
        if !inline.is_empty() {
            out.insert("values".into(), Value::Object(inline));
        }
        if !secret_files.is_empty() {
            out.insert("secrets".into(), Value::Array(secret_files));
        }
        if installed == Some(false) {
            out.insert("installed".into(), Value::Bool(false));
        }
        if !patches.is_empty() {
            out.insert("patches".into(), Value::Array(patches));
        }
        Some(Converted { name, ctx: Rc::clone(&self.ctx), line: at, fields: out, condition })
    }

    fn chart(&mut self, at: u64, what: &str, chart: &str, shared: &Shared) -> Option<Chart> {
        if chart.starts_with("oci://") {
            return Some(Chart::Remote(chart.to_string()));
        }
        if let Some((repository, rest)) = chart.split_once('/')
            && is_plain_name(rest)
        {
            if shared.repositories.contains(repository) {
                return Some(Chart::Remote(chart.to_string()));
            }
            if shared.refused.contains(repository) {
                self.leave(
                    at,
                    format!("{what}: chart `{chart}`"),
                    format!("its repository `{repository}` was left out (see its line): left out"),
                );
                return None;
            }
        }
        let what = format!("{what}: chart `{chart}`");
        let path = self.repository_path(at, &what, chart)?;
        let repo_path = Path::new(&path);
        match self.files.found(repo_path) {
            Found::HelmChart => match (repo_path.parent(), repo_path.file_name()) {
                (Some(parent), Some(name)) if parent == Path::new("charts") => {
                    Some(Chart::Local(name.to_string_lossy().into_owned()))
                }
                // weaver names a chart elsewhere by its path from the repository's root.
                (_, Some(_)) => Some(Chart::Local(format!("./{path}"))),
                (_, None) => {
                    self.leave(
                        at,
                        what,
                        "the repository's root is a chart: weaver names a chart by a directory below it",
                    );
                    None
                }
            },
            Found::File if path.ends_with(".tgz") => Some(Chart::Local(path)),
            Found::Kustomization => Some(Chart::Kustomize(path)),
            Found::Missing if !chart.starts_with('.') && chart.split('/').count() == 2 => {
                let repository = chart.split('/').next().unwrap_or_default();
                self.leave(
                    at,
                    what,
                    format!("no repository `{repository}` in `repositories:` and no such path: left out"),
                );
                None
            }
            Found::Missing => {
                self.leave(at, what, "not found: left out");
                None
            }
            Found::File | Found::Directory => {
                self.leave(at, what, "neither a Helm chart (Chart.yaml), a packaged .tgz nor a kustomization");
                None
            }
        }
    }

    /// `name`, `namespace/name` or `context/namespace/name` as the release name weaver expects.
    fn need(&mut self, at: u64, what: &str, need: &str, shared: &Shared) -> Option<String> {
        let parts: Vec<&str> = need.split('/').collect();
        let (namespace, name) = match parts.as_slice() {
            [name] => (None, *name),
            [namespace, name] | [_, namespace, name] => (Some(*namespace), *name),
            _ => {
                self.leave(at, format!("{what}: needs `{need}`"), "expected [[context/]namespace/]name");
                return None;
            }
        };
        let named: Vec<&Option<String>> = shared.releases.iter().filter(|(n, _)| n == name).map(|(_, ns)| ns).collect();
        let exact = named.iter().filter(|ns| namespace.is_none_or(|want| ns.as_deref() == Some(want))).count();
        match (named.len(), exact) {
            (0, _) => {
                self.leave(at, format!("{what}: needs `{need}`"), format!("no release `{name}` in this helmfile"));
                None
            }
            (1, _) => Some(name.to_string()),
            (_, 1) if namespace.is_some() => {
                self.leave(
                    at,
                    format!("{what}: needs `{need}`"),
                    format!(
                        "converted as `{name}`, but several releases are named `{name}` and weaver keeps only the \
                         first (release names are unique in an environment)"
                    ),
                );
                Some(name.to_string())
            }
            _ => {
                self.leave(
                    at,
                    format!("{what}: needs `{need}`"),
                    format!(
                        "ambiguous: several releases are named `{name}`; converted as `{name}`, the first of them, \
                         the one weaver keeps"
                    ),
                );
                Some(name.to_string())
            }
        }
    }

    /// One `set` (or `setString`) entry into the release's inline values, as helm's `--set`.
    fn set(&mut self, item: &Spanned<Node>, kind: Kind, what: &str, has_files: bool, into: &mut Map<String, Value>) {
        let mut name = None;
        let mut value = None;
        let mut file = None;
        let mut list = None;
        for (key, v) in self.entries(item, &format!("{what}: set")) {
            match key.value.0.as_str() {
                "name" => name = self.text(v, &format!("{what}: set name")),
                "value" if !matches!(v.value, Node::Null) => value = self.text(v, &format!("{what}: set value")),
                "file" => file = self.text(v, &format!("{what}: set file")),
                "values" => {
                    let items: Vec<Option<String>> =
                        self.list(v, &format!("{what}: set values")).iter().map(|i| self.text(i, what)).collect();
                    list = items.into_iter().collect::<Option<Vec<_>>>();
                }
                _ => {}
            }
        }
        let Some(name) = name else { return };
        let set_what = format!("{what}: set `{name}`");
        if name.contains('[') && has_files {
            self.leave(
                line(item),
                set_what,
                "a list item: helm sets it in the list the values files give, weaver's `values` replace a list \
                 whole: write the whole list in the release's `values`",
            );
            return;
        }
        let files = self.files;
        let ctx = Rc::clone(&self.ctx);
        let read = move |path: &str| match files.read(&ctx.local(path)) {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(format!("{path} not found")),
            Err(reason) => Err(reason),
        };
        let (line_text, kind) = match (value, file, list) {
            (Some(value), _, _) if !value.is_empty() => (format!("{}={}", escape(&name), escape(&value)), kind),
            (_, Some(file), _) if kind == Kind::Typed => (format!("{}={file}", escape(&name)), Kind::File),
            (_, _, Some(list)) if !list.is_empty() => {
                let items: Vec<String> = list.iter().map(|i| escape(i)).collect();
                (format!("{}={{{}}}", escape(&name), items.join(",")), kind)
            }
            _ => return,
        };
        if let Err(reason) = strvals::parse_into(&line_text, into, kind, &read) {
            self.leave(line(item), set_what, format!("not converted: {reason}"));
        }
    }

    fn strategic_patch(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        let patch_what = format!("{what}: strategicMergePatches");
        let patch = match self.value(node, &patch_what)? {
            Value::Object(map) => map,
            _ => {
                self.leave(line(node), patch_what, "expected a mapping (an object's fields to merge)");
                return None;
            }
        };
        let mut target = Map::new();
        for (field, key) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
            if let Some(Value::String(s)) = patch.get(key) {
                target.insert(field.into(), Value::String(s.clone()));
            }
        }
        for key in ["name", "namespace"] {
            if let Some(Value::String(s)) = patch.get("metadata").and_then(|m| m.get(key)) {
                target.insert(key.into(), Value::String(s.clone()));
            }
        }
        if !target.contains_key("kind") || !target.contains_key("name") {
            self.leave(line(node), patch_what, "names no object: a patch needs its `kind` and `metadata.name`");
            return None;
        }
        Some(serde_json::json!({ "target": target, "patch": patch }))
    }

    fn json_patch(&mut self, node: &Spanned<Node>, what: &str) -> Option<Value> {
        let patch_what = format!("{what}: jsonPatches");
        let Some(Value::Object(spec)) = self.value(node, &patch_what) else {
            self.leave(line(node), patch_what, "expected a mapping with `target` and `patch`");
            return None;
        };
        let empty = Map::new();
        let given = spec.get("target").and_then(Value::as_object).unwrap_or(&empty);
        let text = |key: &str| given.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut target = Map::new();
        let api_version = match (text("group"), text("version")) {
            (Some(group), Some(version)) => Some(format!("{group}/{version}")),
            (Some(group), None) => Some(group.to_string()),
            (None, Some(version)) => Some(version.to_string()),
            (None, None) => None,
        };
        if let Some(api_version) = api_version {
            target.insert("apiVersion".into(), Value::String(api_version));
        }
        for key in ["kind", "name", "namespace"] {
            if let Some(s) = text(key) {
                target.insert(key.into(), Value::String(s.to_string()));
            }
        }
        let unknown: Vec<&String> =
            given.keys().filter(|k| !["group", "version", "kind", "name", "namespace"].contains(&k.as_str())).collect();
        if target.is_empty() || !unknown.is_empty() {
            self.leave(line(node), patch_what, "its `target` must name a group, version, kind, name or namespace only");
            return None;
        }
        let ops = match spec.get("patch") {
            Some(Value::Array(ops)) => ops.clone(),
            Some(Value::String(text)) => match weaver_yaml::from_str::<Vec<Value>>(Path::new("patch"), text) {
                Ok(ops) => ops,
                Err(err) => {
                    self.leave(line(node), patch_what, format!("its `patch` is not a list of operations: {err}"));
                    return None;
                }
            },
            _ => {
                self.leave(line(node), patch_what, "its `patch` must be a list of RFC 6902 operations");
                return None;
            }
        };
        Some(serde_json::json!({ "target": target, "ops": ops }))
    }
}

enum Chart {
    Remote(String),
    Local(String),
    Kustomize(String),
}

fn base_path(name: &str) -> PathBuf {
    weaver_project::environment::environment_path(name)
}

/// A release's labels with the state's `commonLabels` merged in, as helmfile merges them before
/// it renders the release's own templates: a common label wins over the release's of that name.
fn with_common_labels(mut own: Map<String, Value>, common: &Map<String, Value>) -> Map<String, Value> {
    own.extend(common.iter().map(|(k, v)| (k.clone(), v.clone())));
    own
}

/// The value at the dotted `path` of `values`, as helmfile reads a `condition`.
fn lookup<'v>(values: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut current = values.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The helmfile's directory is the repository's root; `files` are what it holds.
    #[derive(Clone)]
    struct Memory(Vec<(&'static str, &'static str)>);

    /// The files below a directory of a [`Memory`], as templates of a file there read them.
    struct Below(Memory, PathBuf);

    impl weaver_project::source::Source for Below {
        fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
            let path = self.1.join(path);
            Ok(self.0.0.iter().find(|(p, _)| Path::new(p) == path).map(|(_, text)| text.as_bytes().to_vec()))
        }
        fn list(&self, dir: &Path) -> std::io::Result<Option<Vec<weaver_project::source::Entry>>> {
            let dir = self.1.join(dir);
            let entries: Vec<_> = self
                .0
                .0
                .iter()
                .filter_map(|(p, _)| Path::new(p).strip_prefix(&dir).ok())
                .filter(|rest| rest.components().count() == 1)
                .map(|rest| weaver_project::source::Entry { name: rest.display().to_string(), is_dir: false })
                .collect();
            Ok((!entries.is_empty()).then_some(entries))
        }
        fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
            Ok(self.1.join(path))
        }
        fn describe(&self) -> String {
            "memory".to_string()
        }
    }

    impl Files for Memory {
        fn glob(&self, pattern: &str) -> Vec<String> {
            let glob = globset::GlobBuilder::new(pattern).literal_separator(true).build().unwrap().compile_matcher();
            let mut found: Vec<String> =
                self.0.iter().filter(|(p, _)| glob.is_match(p)).map(|(p, _)| p.to_string()).collect();
            found.sort();
            found
        }
        fn render(&self, path: &str, dir: &str, text: &str, data: &Value) -> Result<String> {
            let source: std::sync::Arc<dyn weaver_project::source::Source> =
                std::sync::Arc::new(Below(self.clone(), PathBuf::from(dir)));
            let variables = weaver_render::gotmpl::Variables::Placeholders;
            weaver_render::gotmpl::render_with(&source, Path::new(path), text, data, variables, "helmfile template")
        }
        fn placeholder(&self, name: &str) -> String {
            weaver_render::gotmpl::placeholder(name)
        }
        fn repository_path(&self, path: &str) -> Option<PathBuf> {
            weaver_project::source::lexical(Path::new(path))
        }
        fn found(&self, path: &Path) -> Found {
            let path = path.to_string_lossy();
            if self.0.iter().any(|(p, _)| *p == path) {
                Found::File
            } else if self.0.iter().any(|(p, _)| *p == format!("{path}/Chart.yaml")) {
                Found::HelmChart
            } else {
                Found::Missing
            }
        }
        fn read(&self, path: &str) -> std::result::Result<Option<String>, String> {
            Ok(self.0.iter().find(|(p, _)| *p == path).map(|(_, text)| text.to_string()))
        }
    }

    fn convert_text(text: &str, files: &[(&'static str, &'static str)]) -> Imported {
        convert(Path::new("helmfile.yaml"), text, &Memory(files.to_vec())).unwrap()
    }

    fn base(imported: &Imported) -> &str {
        &imported.files[0].1
    }

    #[test]
    fn set_entries_are_helm_s_set_flags_as_helmfile_escapes_them() {
        let imported = convert_text(
            "releases:\n- name: web\n  chart: ./charts/web\n  set:\n  - {name: a.b, value: 'x,y'}\n  \
             - {name: n, value: 10}\n  - {name: on, value: 'true'}\n  - {name: 'dot\\.key', value: '{z}'}\n  \
             - {name: ca, file: ca.pem}\n  setString:\n  - {name: s, value: 10}\n",
            &[("charts/web/Chart.yaml", ""), ("ca.pem", "CERT\n")],
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported).ends_with(
                "  values:\n    a:\n      b: x,y\n    'n': 10\n    'on': true\n    dot.key: '{z}'\n    ca: |\n      CERT\n    s: '10'\n"
            ),
            "{}",
            base(&imported)
        );
    }

    #[test]
    fn api_and_kube_versions_come_from_the_state_s_fields_and_template_args() {
        let imported = convert_text(
            "kubeVersion: v1.30.0\napiVersions:\n- monitoring.coreos.com/v1/ServiceMonitor\nhelmDefaults:\n  \
             templateArgs:\n  - --api-versions gateway.networking.k8s.io/v1\n  - --api-versions=example.com/v1,example.com/v2\n  \
             - -a\n  - v1/Pod\n  - --kube-version v1.31.2\n  - --dry-run=server --skip-crds\n  - -a apps\n\
             releases:\n- name: web\n  chart: ./charts/web\n- name: same\n  chart: ./charts/web\n  \
             apiVersions: [monitoring.coreos.com/v1/ServiceMonitor]\n  kubeVersion: v1.29.0\n\
             - name: other\n  chart: ./charts/web\n  apiVersions: [cert-manager.io/v1]\n",
            &[("charts/web/Chart.yaml", "")],
        );
        assert!(
            base(&imported).starts_with(
                "# Imported from helmfile.yaml by `weaver import helmfile`.\nabstract: true\nkubeVersion: v1.31.2\n\
                 apiVersions:\n- monitoring.coreos.com/v1/ServiceMonitor\n- gateway.networking.k8s.io/v1\n\
                 - example.com/v1\n- example.com/v2\n- v1/Pod\nreleases:\n"
            ),
            "{}",
            base(&imported)
        );
        let left_out: Vec<String> = imported.left_out.iter().map(|l| format!("{}:{}: {l}", l.file, l.line)).collect();
        assert_eq!(
            left_out,
            [
                "helmfile.yaml:11: helmDefaults templateArgs: --dry-run=server: not supported: weaver runs no helm binary",
                "helmfile.yaml:11: helmDefaults templateArgs: --skip-crds: not supported: weaver runs no helm binary",
                "helmfile.yaml:12: helmDefaults templateArgs: -a: `apps`: not an API version (group/version or \
                 group/version/Kind, such as gateway.networking.k8s.io/v1): not converted",
                "helmfile.yaml:22: release `other`: apiVersions: weaver sets `apiVersions` per environment: this \
                 release's (cert-manager.io/v1), which replace the state's (monitoring.coreos.com/v1/ServiceMonitor) in \
                 helmfile, are not converted; add them to the environment's `apiVersions` if its other releases may see \
                 them too",
            ]
        );

        // Without templateArgs, a release's own kubeVersion is the one helmfile gives it.
        let imported = convert_text(
            "kubeVersion: v1.30.0\nreleases:\n- {name: web, chart: ./charts/web, kubeVersion: v1.30.0}\n\
             - {name: old, chart: ./charts/web, kubeVersion: v1.29.0}\n- {name: bad, chart: ./charts/web, apiVersions: [apps]}\n",
            &[("charts/web/Chart.yaml", "")],
        );
        let left_out: Vec<String> = imported.left_out.iter().map(|l| format!("{}:{}: {l}", l.file, l.line)).collect();
        assert_eq!(
            left_out,
            [
                "helmfile.yaml:4: release `old`: kubeVersion: weaver sets `kubeVersion` per environment, and this \
                 release's (v1.29.0) differs from the environment's (v1.30.0): not converted",
                "helmfile.yaml:5: release `bad`: apiVersions: `apps`: not an API version (group/version or \
                 group/version/Kind, such as gateway.networking.k8s.io/v1): not converted",
            ]
        );
        assert!(base(&imported).contains("\nkubeVersion: v1.30.0\n") && !base(&imported).contains("apiVersions"));
    }

    #[test]
    fn needs_with_a_context_and_namespace_name_the_release() {
        let imported = convert_text(
            "releases:\n- {name: db, chart: ./charts/web, namespace: data}\n- name: web\n  chart: ./charts/web\n  \
             needs: [kind/data/db, db]\n",
            &[("charts/web/Chart.yaml", "")],
        );
        assert_eq!(imported.left_out, []);
        assert!(base(&imported).contains("- name: web\n  chart: web\n  needs:\n  - db\n"), "{}", base(&imported));
    }

    #[test]
    fn a_chart_outside_charts_is_named_by_its_path_and_a_missing_repository_listed_with_its_line() {
        let imported = convert_text(
            "releases:\n- {name: a, chart: ./vendor/a}\n- {name: b, chart: nope/b}\n- {name: c, chart: ./charts/c}\n",
            &[("vendor/a/Chart.yaml", ""), ("charts/c/Chart.yaml", "")],
        );
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(listed, [(3, "release `b`: chart `nope/b`")]);
        assert!(imported.left_out[0].why.contains("no repository `nope`"), "{:?}", imported.left_out);
        assert!(
            base(&imported).ends_with("releases:\n- name: a\n  chart: ./vendor/a\n- name: c\n  chart: c\n"),
            "{}",
            base(&imported)
        );
    }

    fn file<'i>(imported: &'i Imported, name: &str) -> &'i str {
        let path = base_path(name);
        imported.files.iter().find(|(p, _)| *p == path).map(|(_, text)| text.as_str()).unwrap_or_default()
    }

    #[test]
    fn helmfile_s_functions_render_the_state() {
        let imported = convert_text(
            r#"environments:
  default:
    values:
      - name: shop
        db: {host: db.local}
---
releases:
- name: web
  chart: ./charts/web
  namespace: {{ .Values | get "name" }}-{{ .Values | getOrNil "missing" | default "x" }}-{{ .Values | get "none" "d" }}
  values:
  - fromFile: {{ readFile "data.txt" | trim | quote }}
    isFile: {{ isFile "data.txt" }}
    noFile: {{ isFile "nope.txt" }}
    dir: {{ readDir "conf" | toJson }}
    path: {{ env "PATH" | empty | not }}
    host: {{ .Values.db | toYaml | fromYaml | get "host" }}
    tpl: {{ tpl "{{ .Values.name }}-tpl" . }}
    required: {{ required "name is needed" .Values.name }}
    env: {{ .Environment.Name }}
"#,
            &[("charts/web/Chart.yaml", ""), ("data.txt", "from a file\n"), ("conf/a.yaml", "")],
        );
        // A variable's value is never read: a placeholder stands for it, and the read is listed.
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(listed, [(16, "environment variable `PATH`")]);
        assert!(imported.left_out[0].why.contains("the files have `FROM-ENV-PATH`"), "{:?}", imported.left_out);
        let default = file(&imported, "default");
        assert!(default.contains("values:\n  name: shop\n  db:\n    host: db.local\n"), "{default}");
        assert!(
            base(&imported).ends_with(
                "  namespace: shop-x-d\n  values:\n    fromFile: from a file\n    isFile: true\n    noFile: false\n    \
                 dir:\n    - conf/a.yaml\n    path: true\n    host: db.local\n    tpl: shop-tpl\n    required: shop\n    \
                 env: default\n"
            ),
            "{}",
            base(&imported)
        );
    }

    #[test]
    fn the_environments_part_is_read_first_and_the_rest_rendered_with_its_values() {
        let files = [
            ("charts/web/Chart.yaml", ""),
            ("env/prod.yaml.gotmpl", "ns: {{ .Values.team }}-{{ .Environment.Name }}\n"),
        ];
        let imported = convert_text(
            "values:\n- team: shop\n---\nenvironments:\n  dev:\n    values: [{ns: dev}]\n  prod:\n    values: [env/prod.yaml.gotmpl]\n\
             ---\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: {{ .Values.ns }}\n",
            &files,
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported).contains("values:\n  team: shop\nreleases:\n- name: web\n  chart: web\n"),
            "{}",
            base(&imported)
        );
        assert!(
            file(&imported, "dev").ends_with("releases:\n- name: web\n  namespace: dev\n"),
            "{}",
            file(&imported, "dev")
        );
        assert!(
            file(&imported, "prod")
                .ends_with("values:\n  ns: shop-prod\nreleases:\n- name: web\n  namespace: shop-prod\n"),
            "{}",
            file(&imported, "prod")
        );

        // In the part that defines them, the environment's values are not there yet (helmfile
        // renders a part before it reads it): the error names the line.
        let err = convert(
            Path::new("helmfile.yaml"),
            "environments:\n  dev:\n    values: [{ns: dev}]\nreleases:\n- name: web\n  chart: ./charts/web\n  namespace: {{ .Values.ns }}\n",
            &Memory(files.to_vec()),
        )
        .unwrap_err();
        assert_eq!(err.location.as_ref().and_then(|l| l.line), Some(7), "{err}");
        assert!(err.message.contains("map has no entry for key \"ns\""), "{err}");
    }

    #[test]
    fn what_environments_share_is_in_the_base_and_what_differs_in_each_file() {
        let imported = convert_text(
            r#"environments:
  dev: {values: [{replicas: 1, db: true}]}
  prod: {values: [{replicas: 3, db: false}]}
---
releases:
- name: web
  chart: ./charts/web
  namespace: shop
  values:
  - values/{{ .Environment.Name }}.yaml
  - replicas: {{ .Values.replicas }}
- name: db
  chart: ./charts/web
  installed: {{ .Values.db }}
{{- if eq .Environment.Name "prod" }}
- name: backup
  chart: ./charts/web
  needs: [db]
{{- end }}
"#,
            &[("charts/web/Chart.yaml", ""), ("values/dev.yaml", ""), ("values/prod.yaml", "")],
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported)
                .ends_with("releases:\n- name: web\n  chart: web\n  namespace: shop\n- name: db\n  chart: web\n"),
            "{}",
            base(&imported)
        );
        assert!(
            file(&imported, "dev")
                .ends_with("releases:\n- name: web\n  valuesFiles:\n  - values/dev.yaml\n  values:\n    replicas: 1\n"),
            "{}",
            file(&imported, "dev")
        );
        assert!(
            file(&imported, "prod").ends_with(
                "releases:\n- name: web\n  valuesFiles:\n  - values/prod.yaml\n  values:\n    replicas: 3\n- name: db\n  \
                 installed: false\n- name: backup\n  chart: web\n  needs:\n  - db\n"
            ),
            "{}",
            file(&imported, "prod")
        );
    }

    #[test]
    fn an_environment_that_does_not_render_is_listed_with_its_line_and_the_others_written() {
        let imported = convert_text(
            r#"environments:
  dev: {}
  prod: {}
  ci: {}
---
releases:
- name: web
  chart: ./charts/web
{{- if eq .Environment.Name "prod" }}
  namespace: {{ requiredEnv "WEAVER_TEST_SURELY_UNSET" }}
{{- end }}
{{- if eq .Environment.Name "ci" }}
  namespace: {{ exec "kubectl" (list "get" "ns") }}
{{- end }}
"#,
            &[("charts/web/Chart.yaml", "")],
        );
        let listed: Vec<(&str, u64, &str)> =
            imported.left_out.iter().map(|l| (l.file.as_str(), l.line, l.what.as_str())).collect();
        // The state reads a variable (which prod's render needs): listed as every read is.
        let variable = ("helmfile.yaml", 10, "environment variable `WEAVER_TEST_SURELY_UNSET`");
        assert_eq!(
            listed,
            [("helmfile.yaml", 10, "environment `prod`"), variable, ("helmfile.yaml", 13, "environment `ci`")]
        );
        assert!(
            imported.left_out[0].why.contains("required env var `WEAVER_TEST_SURELY_UNSET` is not set"),
            "{:?}",
            imported.left_out
        );
        assert!(imported.left_out[2].why.contains("weaver does not run commands"), "{:?}", imported.left_out);
        let written: Vec<String> = imported.files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(written, ["environments/base.yaml", "environments/dev.yaml"]);
    }

    #[test]
    fn bases_and_nested_helmfiles_are_read_for_each_environment() {
        let imported = convert_text(
            "bases: [common/environments.yaml]\n---\nhelmfiles: [apps/helmfile.yaml, 'apps/*/helmfile.yaml']\n\
             releases:\n- {name: web, chart: ./charts/web, namespace: '{{ .Values.ns }}'}\n",
            &[
                ("charts/web/Chart.yaml", ""),
                (
                    "common/environments.yaml",
                    // A base's paths are relative to the helmfile naming it, as helmfile reads them.
                    "environments:\n  dev:\n    values: ['common/dev*.yaml']\n  prod:\n    values: [{ns: prod}]\n",
                ),
                ("common/dev.yaml", "ns: dev\n"),
                (
                    "apps/helmfile.yaml",
                    "environments:\n  dev: {values: [{api: v1}]}\n  prod: {}\n---\nreleases:\n- name: api\n  chart: ../charts/web\n  \
                     values: [api/{{ .Environment.Name }}.yaml]\n",
                ),
                ("apps/api/dev.yaml", ""),
                ("apps/api/prod.yaml", ""),
            ],
        );
        let listed: Vec<(&str, u64, &str)> =
            imported.left_out.iter().map(|l| (l.file.as_str(), l.line, l.what.as_str())).collect();
        assert_eq!(listed, [("helmfile.yaml", 3, "helmfiles `apps/*/helmfile.yaml`")]);
        // The base's values file stays a file; the nested helmfile's values are written.
        assert!(
            file(&imported, "dev").contains("valuesFiles:\n- common/dev.yaml\nvalues:\n  api: v1\n"),
            "{}",
            file(&imported, "dev")
        );
        assert!(
            file(&imported, "prod").ends_with(
                "releases:\n- name: web\n  namespace: prod\n- name: api\n  valuesFiles:\n  - apps/api/prod.yaml\n"
            ),
            "{}",
            file(&imported, "prod")
        );
        assert!(base(&imported).ends_with("- name: api\n  chart: web\n"), "{}", base(&imported));
    }

    #[test]
    fn a_repository_weaver_cannot_load_is_left_out_with_its_releases() {
        let imported = convert_text(
            "repositories:\n- {name: private, url: 'git+https://github.com/example/charts@charts?ref=main'}\n\
             - {name: stable, url: 'https://charts.example.com/'}\nreleases:\n- {name: tools, chart: private/tools}\n\
             - {name: web, chart: stable/web}\n",
            &[],
        );
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(listed, [(2, "repository `private`"), (5, "release `tools`: chart `private/tools`")]);
        // Its URL may hold credentials: it is not repeated.
        assert!(imported.left_out.iter().all(|l| !l.why.contains("github.com")), "{:?}", imported.left_out);
        assert!(
            base(&imported).ends_with(
                "repositories:\n- name: stable\n  url: https://charts.example.com\nreleases:\n- name: web\n  chart: stable/web\n"
            ),
            "{}",
            base(&imported)
        );
    }

    #[test]
    fn values_read_from_environment_variables_render_the_state_but_are_never_written() {
        let imported = convert_text(
            "environments:\n  default:\n    values: [env.yaml.gotmpl, {ns: shop}]\n---\nreleases:\n\
             - {name: web, chart: ./charts/web, namespace: '{{ .Values.ns }}-{{ .Values.home | empty | not }}'}\n",
            &[("charts/web/Chart.yaml", ""), ("env.yaml.gotmpl", "home: {{ requiredEnv \"PATH\" | quote }}\n")],
        );
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(listed, [(3, "environment `default` values file `env.yaml.gotmpl`")]);
        let default = file(&imported, "default");
        assert!(default.contains("values:\n  ns: shop\n"), "{default}");
        assert!(!default.contains("home"), "{default}");
        assert!(base(&imported).contains("  namespace: shop-true\n"), "{}", base(&imported));
    }

    #[test]
    fn a_release_s_own_templates_are_rendered_with_the_release() {
        // helmfile v1 renders no `helmfile.yaml`: its release templates are rendered with the
        // release; a v0 file escapes them so that they survive its state's rendering.
        for text in [
            "releases:\n- name: web\n  chart: ./charts/web\n  namespace: shop\n  missingFileHandler: Warn\n  \
             values: ['values/{{ .Release.Name }}.yaml', 'values/{{ .Release.Namespace }}-missing.yaml']\n",
            "releases:\n- name: web\n  chart: ./charts/web\n  namespace: {{ \"shop\" }}\n  missingFileHandler: Warn\n  \
             values: ['values/{{`{{ .Release.Name }}`}}.yaml', 'values/{{`{{ .Release.Namespace }}`}}-missing.yaml']\n",
        ] {
            let imported = convert_text(text, &[("charts/web/Chart.yaml", ""), ("values/web.yaml", "")]);
            // The missing file helmfile passes over is listed: a file added later must not be ignored.
            let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
            assert_eq!(listed, [(6, "release `web` values file `values/shop-missing.yaml`")]);
            assert!(imported.left_out[0].why.contains("optional (`missingFileHandler`)"), "{:?}", imported.left_out);
            assert!(
                base(&imported).ends_with("  namespace: shop\n  valuesFiles:\n  - values/web.yaml\n"),
                "{}",
                base(&imported)
            );
        }
    }

    #[test]
    fn release_templates_see_common_labels_which_win_over_the_release_labels() {
        // helmfile 0.166: `helmfile list` shows `both:fromcommon,scope:deps` for this release.
        let imported = convert_text(
            "commonLabels:\n  scope: deps\n  both: fromcommon\nreleases:\n- name: web\n  chart: ./charts/web\n  \
             labels: {both: fromrelease, own: yes}\n  \
             values: ['values/{{`{{ .Release.Labels.scope }}`}}-{{`{{ .Release.Labels.both }}`}}.yaml']\n",
            &[("charts/web/Chart.yaml", ""), ("values/deps-fromcommon.yaml", "")],
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported).ends_with(
                "- name: web\n  chart: web\n  labels:\n    both: fromcommon\n    own: 'yes'\n    scope: deps\n  \
                 valuesFiles:\n  - values/deps-fromcommon.yaml\n"
            ),
            "{}",
            base(&imported)
        );
    }

    #[test]
    fn releases_inherit_templates_as_helmfile_merges_them() {
        let imported = convert_text(
            "templates:\n  default:\n    chart: ./charts/web\n    namespace: shop\n    values: [values/common.yaml]\n    \
             labels: {tier: web}\n  db:\n    namespace: data\n    labels: {tier: db}\n\
             defaultInherit: default\nreleases:\n- name: web\n  namespace: ignored\n  values: [values/web.yaml]\n\
             - name: db\n  inherit: [{template: db}, {template: default, except: [values]}]\n",
            &[("charts/web/Chart.yaml", ""), ("values/common.yaml", ""), ("values/web.yaml", "")],
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported).ends_with(
                "- name: web\n  chart: web\n  namespace: shop\n  labels:\n    tier: web\n  valuesFiles:\n  - values/common.yaml\n  \
                 - values/web.yaml\n- name: db\n  chart: web\n  namespace: data\n  labels:\n    tier: db\n"
            ),
            "{}",
            base(&imported)
        );
    }

    #[test]
    fn a_file_the_helmfile_names_is_never_written_over() {
        // helmfile's environment values in environments/<env>.yaml, where weaver writes <env>.
        let files = [("charts/web/Chart.yaml", ""), ("environments/dev.yaml", "replicas: 2\n")];
        let text = "environments:\n  dev:\n    values: [environments/dev.yaml]\n---\nreleases:\n- {name: web, chart: ./charts/web}\n";
        let err = convert(Path::new("helmfile.yaml"), text, &Memory(files.to_vec())).unwrap_err();
        assert_eq!(err.location, Some(Location::at("helmfile.yaml", 3, 0)), "{err}");
        assert_eq!(
            err.message,
            "environment `dev` values file `environments/dev.yaml`: weaver writes environment `dev` to this file \
             (environments/dev.yaml), and an import never overwrites a file it reads, --force or not"
        );
        // So is a release's values file where the base goes.
        let files = [("charts/web/Chart.yaml", ""), ("environments/base.yaml", "")];
        let text = "releases:\n- name: web\n  chart: ./charts/web\n  values: [environments/base.yaml]\n";
        let err = convert(Path::new("helmfile.yaml"), text, &Memory(files.to_vec())).unwrap_err();
        assert_eq!(err.location, Some(Location::at("helmfile.yaml", 4, 0)), "{err}");
        assert!(err.message.starts_with("release `web` values file `environments/base.yaml`: weaver writes"), "{err}");
    }

    #[test]
    fn yaml_1_1_octals_are_read_as_helmfile_reads_them() {
        // go-yaml v3 (helmfile's): `0777` is octal as in YAML 1.1, `yes` is a string.
        let imported = convert_text(
            "environments:\n  default:\n    values: [{umask: 022}]\n---\nreleases:\n- name: web\n  chart: ./charts/web\n  \
             values:\n  - {mode: 0777, o: 0o17, x: 0x1F, neg: -0777, zero: 0, plain: 777, quoted: '0777', word: yes}\n",
            &[("charts/web/Chart.yaml", "")],
        );
        assert_eq!(imported.left_out, []);
        assert!(
            base(&imported).ends_with(
                "  values:\n    mode: 511\n    o: 15\n    x: 31\n    neg: -511\n    zero: 0\n    plain: 777\n    \
                 quoted: '0777'\n    word: 'yes'\n"
            ),
            "{}",
            base(&imported)
        );
        assert!(file(&imported, "default").contains("values:\n  umask: 18\n"), "{}", file(&imported, "default"));
    }

    #[test]
    fn a_missing_environment_values_file_is_refused_unless_its_handler_passes_over_it() {
        let imported = convert_text(
            "environments:\n  dev:\n    values: [env/dev.yaml]\n  prod:\n    missingFileHandler: Warn\n    \
             values: [env/prod.yaml, env/credentials.yaml]\n---\nreleases:\n- {name: web, chart: ./charts/web}\n",
            &[("charts/web/Chart.yaml", ""), ("env/prod.yaml", "a: 1\n")],
        );
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(
            listed,
            [(3, "environment `dev`"), (6, "environment `prod` values file `env/credentials.yaml`")],
            "{:?}",
            imported.left_out
        );
        // helmfile stops on dev: so does its conversion.
        assert!(
            imported.left_out[0]
                .why
                .starts_with("environment `dev` values file `env/dev.yaml`: not found (helmfile stops on it"),
            "{:?}",
            imported.left_out
        );
        assert!(imported.left_out[1].why.contains("weaver has no optional values files"), "{:?}", imported.left_out);
        let written: Vec<String> = imported.files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(written, ["environments/base.yaml", "environments/prod.yaml"]);
        assert!(file(&imported, "prod").contains("valuesFiles:\n- env/prod.yaml\n"), "{}", file(&imported, "prod"));
    }

    #[test]
    fn a_release_named_or_placed_by_a_variable_is_left_out_and_each_variable_listed_once() {
        // PATH is set wherever tests run: templates get its placeholder, never its value.
        let imported = convert_text(
            "releases:\n- name: web\n  chart: ./charts/web\n  namespace: {{ env \"PATH\" }}\n- name: api\n  \
             chart: ./charts/web\n  values:\n  - values/{{ requiredEnv \"PATH\" }}.yaml\n  - token: {{ env \"PATH\" }}\n\
             - name: db\n  chart: ./charts/web\n  values:\n  - password: {{ requiredEnv \"PATH\" }}\n",
            &[("charts/web/Chart.yaml", "")],
        );
        let listed: Vec<(u64, &str)> = imported.left_out.iter().map(|l| (l.line, l.what.as_str())).collect();
        assert_eq!(
            listed,
            [
                (4, "environment variable `PATH` (also read at helmfile.yaml:8, helmfile.yaml:9, helmfile.yaml:13)"),
                (4, "release `web`: namespace"),
                (7, "release `api`: values"),
            ]
        );
        assert!(
            imported.left_out[1].why.starts_with("comes from environment variable `PATH`"),
            "{:?}",
            imported.left_out
        );
        // A value from a variable is its placeholder, which the release keeps.
        assert!(
            base(&imported).ends_with("releases:\n- name: db\n  chart: web\n  values:\n    password: FROM-ENV-PATH\n"),
            "{}",
            base(&imported)
        );
    }
}
