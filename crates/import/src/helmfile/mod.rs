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

mod fields;
mod files;
mod load;
mod releases;
mod state;
mod values;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use weaver_core::error::{Error, Location, Result};

use super::node::{Node, line};

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
    /// The text of the file at `path` (as written); `Ok(None)` when there is none. An error is
    /// located at `path` (and the line, for text that is not UTF-8).
    fn read(&self, path: &str) -> Result<Option<String>>;
    /// The files a glob (as written: `*` within a directory, `**` across them) matches, as
    /// written, sorted.
    fn glob(&self, pattern: &str) -> Vec<String>;
    /// `text`, the file at `path` (as written), rendered as helmfile renders its templates: Go
    /// templates with sprig and helmfile's functions over `data`, the paths they read relative
    /// to `dir` (as written: the directory of the state file, helmfile's base path), `env` and
    /// `requiredEnv` giving [`Files::placeholder`] for a variable that is set, never its value.
    /// Errors name `path`, line and column.
    fn render(&self, path: &str, dir: &str, text: &str, data: &Value) -> Result<String>;
    /// What templates get for the value of environment variable `name`, when it is set.
    fn placeholder(&self, name: &str) -> String;
    /// Whether environment variable `name` is set (templates get an empty value otherwise).
    fn is_set(&self, name: &str) -> bool;
    /// A file as the user names it, from its path as written (relative to the helmfile's
    /// directory): how the caller names the helmfile and the files its messages name.
    fn named(&self, file: &str) -> String {
        file.to_string()
    }
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
        stopped: None,
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
    if let Some(err) = convert.stopped.take() {
        return Err(err);
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
    /// The first values file that does not read or is not YAML values: helmfile stops on it,
    /// and so does the import, whichever environment named it.
    stopped: Option<Error>,
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
        fn is_set(&self, name: &str) -> bool {
            weaver_render::gotmpl::is_set(name)
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
        fn read(&self, path: &str) -> Result<Option<String>> {
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
        // The state reads a variable (which prod's render needs): listed as every read is, and
        // said to be unset.
        let variable = ("helmfile.yaml", 10, "environment variable `WEAVER_TEST_SURELY_UNSET`, unset");
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
