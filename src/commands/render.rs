//! `weaver render`: print (or write) an environment's objects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{Map, Value};

use super::{Ui, open_project};
use crate::cli::{GlobalArgs, IdentityArgs, ReleaseFilter, RenderArgs, SelectArgs};
use crate::error::{Error, Location, Result};
use crate::git::ReleaseStatus;
use crate::manifest::Manifest;
use crate::project::{Environment, Project, Release, Selector, select_releases};
use crate::render::Rendered;
use crate::secrets::redact::redact_secret_object;

/// Loads the environment, selects releases and renders them: the desired state every command
/// starts from.
pub fn desired_state(
    global: &GlobalArgs,
    ui: &Ui,
    select: &SelectArgs,
    identity: &IdentityArgs,
    empty: IfEmpty,
) -> Result<(Project, Environment, Rendered)> {
    let started = Instant::now();
    let project = open_project(global, select.source.rev.as_deref())?;
    let env = deployable_environment(&project, &select.env)?;
    let changed = changed_since(global, ui, select, &env.name)?;
    let changed = select.changed_since.as_deref().zip(changed.as_ref());
    let releases = selected_releases(ui, &env, &select.filter, changed, empty)?;
    ui.timing("load", started);
    let started = Instant::now();
    let secrets = decrypt_secrets(global, identity, ui, &project, &env)?;
    ui.timing("decrypt", started);
    let started = Instant::now();
    let rendered = crate::render::render(&project, &env, &releases, &secrets)?;
    ui.timing("render", started);
    ui.info(&format!("rendered {} objects of {} releases", rendered.manifests().count(), releases.len()));
    Ok((project, env, rendered))
}

/// What an empty selection of releases is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfEmpty {
    /// A warning: nothing to show is a fine answer.
    Warn,
    /// An error (apply): applying no release is a mistake, not a request to change nothing.
    Refuse,
}

/// The releases `-r` and `-l` pick (and `changed`: those `--changed-since REV` reports). When
/// there are none, says what is true: the environment has none, nothing matched the selection,
/// or nothing changed (never refused: a pipeline's usual case).
pub fn selected_releases<'a>(
    ui: &Ui,
    env: &'a Environment,
    filter: &ReleaseFilter,
    changed: Option<(&str, &BTreeSet<String>)>,
    empty: IfEmpty,
) -> Result<Vec<&'a Release>> {
    let selector = Selector::parse_all(&filter.selectors)?;
    let releases = select_releases(env, &filter.releases, &selector, changed.map(|(_, names)| names))?;
    if !releases.is_empty() {
        return Ok(releases);
    }
    let name = &env.name;
    let (message, help) = if env.releases.is_empty() {
        let file = env.files.first().map_or_else(String::new, |f| format!(" ({})", f.display()));
        (format!("environment `{name}` has no releases{file}"), "add releases to the environment".to_string())
    } else if let Some((base, _)) = changed
        && !select_releases(env, &filter.releases, &selector, None)?.is_empty()
    {
        ui.warn(&format!("no selected release of environment `{name}` changed since `{base}` (--changed-since)"));
        return Ok(releases);
    } else {
        let mut flags: Vec<String> = filter.releases.iter().map(|r| format!("-r {r}")).collect();
        flags.extend(filter.selectors.iter().map(|l| format!("-l '{l}'")));
        let known: Vec<&str> = env.releases.iter().map(|r| r.name.as_str()).collect();
        (
            format!("no release of environment `{name}` matches the selection ({})", flags.join(" ")),
            format!("its releases: {}", known.join(", ")),
        )
    };
    match empty {
        IfEmpty::Warn => {
            ui.warn(&message);
            Ok(releases)
        }
        IfEmpty::Refuse => Err(Error::new(format!("{message}: there is nothing to apply")).with_help(help)),
    }
}

/// Loads environment `name`, which must not be abstract (a base that is never deployed).
pub fn deployable_environment(project: &Project, name: &str) -> Result<Environment> {
    let env = project.environment(name)?;
    if env.is_abstract {
        let concrete: Vec<String> = project
            .environment_names()?
            .into_iter()
            .filter(|name| {
                project.environment(name).is_ok_and(|e| !e.is_abstract && e.files.iter().any(|f| f == &env.files[0]))
            })
            .collect();
        return Err(Error::new(format!(
            "environment `{}` is abstract (a base for others) and is never deployed itself",
            env.name
        ))
        .with_help(if concrete.is_empty() {
            "pick a concrete environment (`weaver envs` lists them)".to_string()
        } else {
            format!("environments extending it: {}", concrete.join(", "))
        }));
    }
    Ok(env)
}

/// With --changed-since, the releases of `env` that `weaver changed --base REV` reports as
/// changed or added, against --rev or the working tree. Removed releases have nothing to
/// render: they are named on stderr and left out.
fn changed_since(global: &GlobalArgs, ui: &Ui, select: &SelectArgs, env: &str) -> Result<Option<BTreeSet<String>>> {
    let Some(base) = &select.changed_since else { return Ok(None) };
    let head = select.source.rev.as_deref().map(|rev| (rev, "--rev"));
    let mut selected = BTreeSet::new();
    for affected in super::compare(global, (base, "--changed-since"), head)?.environment(env)? {
        if affected.status == ReleaseStatus::Removed {
            ui.status(&format!(
                "release `{}` of environment `{env}` was removed since `{base}`: it has nothing to render",
                affected.release
            ));
        } else {
            selected.insert(affected.release);
        }
    }
    Ok(Some(selected))
}

/// Decrypts the environment's secrets files, registering every value with the redactor.
fn decrypt_secrets(
    global: &GlobalArgs,
    identity: &IdentityArgs,
    ui: &Ui,
    project: &Project,
    env: &Environment,
) -> Result<Map<String, serde_json::Value>> {
    if env.secrets.is_empty() {
        return Ok(Map::new());
    }
    let ids = super::load_identities(global, identity, env.identity_file.as_ref())?;
    let secrets = crate::secrets::load_environment_secrets(project.source.as_ref(), env, &ids, &ui.redactor)?;
    ui.info(&format!("decrypted {} secrets file(s)", env.secrets.len()));
    Ok(secrets)
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &RenderArgs) -> Result<ExitCode> {
    let (_, _, mut rendered) = desired_state(global, ui, &args.select, &args.identity, IfEmpty::Warn)?;
    // Without --show-secrets, Secret values become markers and any decrypted value a template
    // copied elsewhere is redacted too, on the objects themselves so no quoting can hide it.
    let mut redacted = 0;
    if !args.show_secrets {
        for manifest in rendered.releases.iter_mut().flat_map(|r| r.manifests.iter_mut()) {
            let before = manifest.object.clone();
            redact_secret_object(&mut manifest.object);
            if !ui.redactor.is_empty() {
                ui.redactor.redact_value(&mut manifest.object);
            }
            redacted += changed_values(&before, &manifest.object);
        }
    }
    // Placeholders deployed by `weaver render | kubectl apply -f -` break things quietly.
    if redacted > 0 {
        if let Some(dir) = args.output_dir.as_ref().filter(|_| !args.redact) {
            return Err(Error::new(format!(
                "--output-dir {} would get {redacted} redacted value(s): files that look deployable but hold `<redacted:…>` placeholders",
                dir.display()
            ))
            .with_help("add --show-secrets to write the real values, or --redact to write the placeholders"));
        }
        ui.warn(&format!(
            "{redacted} Secret or decrypted value(s) are redacted as `<redacted:…>`, so this output cannot be applied as it is; --show-secrets prints them"
        ));
    }
    match &args.output_dir {
        Some(dir) => {
            let (written, removed) = write_files(dir, &rendered)?;
            ui.status(&format!("wrote {written} files, removed {removed} stale files to {}", dir.display()));
        }
        None => super::write_stdout(to_stream(&rendered).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// How many values (leaves) of an object its redacted copy changed.
fn changed_values(before: &Value, after: &Value) -> usize {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().map(|(k, v)| b.get(k).map_or(1, |w| changed_values(v, w))).sum()
        }
        (Value::Array(a), Value::Array(b)) => a.iter().zip(b).map(|(v, w)| changed_values(v, w)).sum(),
        (a, b) => usize::from(a != b),
    }
}

/// A multi-document YAML stream; each document says which file and release it came from.
pub fn to_stream(rendered: &Rendered) -> String {
    let mut out = String::with_capacity(rendered.manifests().count() * 1024);
    for m in rendered.manifests() {
        out.push_str("---\n");
        push_source_comment(&mut out, m);
        crate::yaml::write_yaml(&mut out, &m.object);
    }
    out
}

fn push_source_comment(out: &mut String, m: &Manifest) {
    out.push_str(&format!("# Source: {} (release {})\n", m.source.display(), m.release));
}

/// The file in an --output-dir listing the files weaver wrote there, so the next render removes
/// those it no longer writes and never a file of the user's.
const WRITTEN_LIST: &str = ".weaver-render";

/// `DIR/<release>/<kind>-<name>.yaml`, or `DIR/<release>/<namespace>/<kind>-<name>.yaml` for
/// objects of a release that share kind and name in several namespaces (a Role per target
/// namespace). Two objects that would still share a file (kinds of one name in two API groups)
/// are an error rather than one silently overwriting the other. Files the previous render wrote
/// and this one does not are removed. Returns how many files were written and removed.
fn write_files(dir: &Path, rendered: &Rendered) -> Result<(usize, usize)> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::at(Location::file(dir), "--output-dir is not a directory")
            .with_help("name a directory (it is created if missing)"));
    }
    let file_name = |m: &Manifest| format!("{}-{}.yaml", m.kind().to_lowercase(), m.name());
    let mut per_file = BTreeMap::<(&str, String), usize>::new();
    for m in rendered.manifests() {
        *per_file.entry((m.release.as_str(), file_name(m))).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    for m in rendered.manifests() {
        let name = file_name(m);
        let relative = match m.namespace() {
            Some(namespace) if per_file[&(m.release.as_str(), name.clone())] > 1 => {
                Path::new(&m.release).join(namespace).join(name)
            }
            _ => Path::new(&m.release).join(name),
        };
        if !seen.insert(relative.clone()) {
            return Err(Error::new(format!(
                "two objects of release `{}` would both be written to {}",
                m.release,
                relative.display()
            ))
            .with_help(
                "kinds of one name in different API groups cannot be written with --output-dir; print them instead",
            ));
        }
        let path = dir.join(&relative);
        refuse_links(dir, &relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
        }
        let mut text = String::new();
        push_source_comment(&mut text, m);
        crate::yaml::write_yaml(&mut text, &m.object);
        std::fs::write(&path, text).map_err(|e| Error::io("write file", &path, e))?;
    }
    let list_path = dir.join(WRITTEN_LIST);
    refuse_links(dir, Path::new(WRITTEN_LIST))?;
    let previous = match std::fs::read_to_string(&list_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read", &list_path, e)),
    };
    let mut removed = 0;
    let listed = previous.lines().filter(|l| !l.starts_with('#')).map(PathBuf::from);
    for stale in listed.filter(|p| is_written_path(p) && !seen.contains(p)) {
        let path = dir.join(&stale);
        refuse_links(dir, &stale)?;
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove stale file", &path, e)),
        }
        // A release directory left empty goes too; one holding anything else stays.
        if let Some(parent) = path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    let mut list = String::from(
        "# Files `weaver render --output-dir` wrote; the next render removes those it no longer writes.\n",
    );
    for path in &seen {
        list.push_str(&format!("{}\n", path.display()));
    }
    std::fs::write(&list_path, list).map_err(|e| Error::io("write file", &list_path, e))?;
    Ok((seen.len(), removed))
}

/// Every step of `relative` below `dir` that exists must be a plain file or directory: a link
/// (say, committed in a checkout the directory comes from) would make weaver write or remove
/// files elsewhere.
fn refuse_links(dir: &Path, relative: &Path) -> Result<()> {
    let mut path = dir.to_path_buf();
    for part in relative.components() {
        path.push(part);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::at(
                Location::file(&path),
                "is a symbolic link: --output-dir writes and removes only its own files, never through links",
            )
            .with_help("remove the link, or name another --output-dir"));
        }
    }
    Ok(())
}

/// `<release>/<file>.yaml` and nothing else: a hand-edited list cannot reach outside DIR.
fn is_written_path(path: &Path) -> bool {
    let parts: Vec<Component> = path.components().collect();
    parts.len() == 2
        && parts.iter().all(|c| matches!(c, Component::Normal(_)))
        && path.extension().is_some_and(|e| e == "yaml")
}
