//! `weaver render`: print (or write) an environment's objects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use super::{Environments, Ui};
use crate::cli::{GlobalArgs, RenderArgs};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::Manifest;
use weaver_engine::action::fleet::{self, FleetContext};
use weaver_engine::action::render::{Format, RenderOptions, Texts, render, render_formatted};
use weaver_engine::action::{Context, Progress};
use weaver_render::Rendered;
use weaver_secrets::Redactor;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &RenderArgs) -> Result<ExitCode> {
    let options = |env: &str| super::render_options(global, &args.render, env, &args.identity);
    // Without --show-secrets, Secret values become markers and any decrypted value a template
    // copied elsewhere is redacted too, on the objects themselves so no quoting can hide it.
    // The markers are keyed by the environment's identities (its redactor), so a marker
    // changes from one render to the next exactly when its value does.
    let redact = |object: &mut serde_json::Value, redactor: &Redactor| -> usize {
        if args.show_secrets {
            return 0;
        }
        let mut count = redactor.redact_secret_object(object);
        if !redactor.is_empty() {
            count += redactor.redact_value(object);
        }
        count
    };
    // Each document is formatted as soon as it is final; nothing of an environment is printed
    // before its whole run rendered and validated without an error.
    // A document may be formatted twice (a run that renders again): the count is the kept
    // text's.
    let format = |m: &mut Manifest, hook: bool, redactor: &Redactor| {
        let redacted = redact(&mut m.object, redactor);
        let mut out = String::with_capacity(1024);
        out.push_str("---\n");
        push_source_comment(&mut out, m, hook);
        weaver_yaml::write_yaml(&mut out, &m.object);
        (out, redacted)
    };
    let environments = match super::environments(global, &args.render.select)? {
        Environments::One(env) => return one(ui, args, &options(&env), &redact, &format),
        Environments::Fleet(environments) => environments,
    };
    if let Some(dir) = &args.output_dir {
        return Err(Error::new(format!(
            "--output-dir {} takes one environment: the selection is a fleet",
            dir.display()
        ))
        .with_help("render each environment into a directory of its own: --env NAME --output-dir DIR/NAME"));
    }
    let rendered = fleet::render_formatted(
        &environments,
        options,
        &format,
        FleetContext::new(&ui.redactor, &|env, p| ui.fleet_progress(env, p)),
    );
    let failed: Vec<&str> = rendered.iter().filter(|o| o.result.is_err()).map(|o| o.environment.as_str()).collect();
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let mut heading = format!("# weaver render: {} environments ({})", rendered.len(), names.join(", "));
    if !failed.is_empty() {
        heading.push_str(&format!("; failed: {}", failed.join(", ")));
    }
    let mut texts = vec![heading + "\n"];
    let mut redacted = 0;
    for outcome in &rendered {
        if let Ok(rendered) = &outcome.result {
            texts.push(format!("# === environment {} ===\n", outcome.environment));
            texts.extend(rendered.texts.iter().cloned());
            redacted += rendered.redacted;
        }
    }
    warn_redacted(ui, redacted);
    super::report_failures(ui, &rendered);
    write_stream(&texts)?;
    Ok(super::fleet_exit_code(&rendered))
}

/// One environment, as `weaver render --env NAME` always rendered it.
fn one(
    ui: &Ui,
    args: &RenderArgs,
    options: &RenderOptions,
    redact: &dyn Fn(&mut serde_json::Value, &Redactor) -> usize,
    format: Format,
) -> Result<ExitCode> {
    let on = |p: Progress<'_>| ui.progress(p);
    let cx = Context::new(&ui.redactor, &on);
    let Some(dir) = &args.output_dir else {
        let Texts { texts, redacted } = render_formatted(options, cx, format)?;
        warn_redacted(ui, redacted);
        write_stream(&texts)?;
        return Ok(ExitCode::SUCCESS);
    };
    weaver_engine::action::refuse_repository_dirs("--output-dir", dir, &options.selection.repo)?;
    let desired = render(options, cx)?;
    let mut rendered = desired.rendered;
    let redactor = &desired.redactor;
    let redacted: usize = rendered
        .releases
        .iter_mut()
        .flat_map(|r| r.documents_mut())
        .map(|(m, _)| redact(&mut m.object, redactor))
        .sum();
    // Placeholders deployed by `weaver render | kubectl apply -f -` break things quietly.
    if redacted > 0 && !args.redact {
        return Err(Error::new(format!(
            "--output-dir {} would get {redacted} redacted value(s): files that look deployable but hold `<redacted:…>` placeholders",
            dir.display()
        ))
        .with_help("add --show-secrets to write the real values, or --redact to write the placeholders"));
    }
    warn_redacted(ui, redacted);
    let (written, removed) = write_files(dir, &rendered)?;
    ui.status(&format!("wrote {written} files, removed {removed} stale files to {}", dir.display()));
    Ok(ExitCode::SUCCESS)
}

fn warn_redacted(ui: &Ui, redacted: usize) {
    if redacted > 0 {
        ui.warn(&format!(
            "{redacted} Secret or decrypted value(s) are redacted as `<redacted:…>`, so this output cannot be applied as it is; --show-secrets prints them"
        ));
    }
}

/// Writes a multi-document YAML stream, each release's documents as they were formatted.
/// Written a chunk at a time: the text is never copied whole.
fn write_stream(texts: &[String]) -> Result<()> {
    let mut chunk = String::new();
    for text in texts {
        chunk.push_str(text);
        if chunk.len() >= STREAM_CHUNK {
            super::write_stdout(chunk.as_bytes())?;
            chunk.clear();
        }
    }
    super::write_stdout(chunk.as_bytes())
}

/// How many bytes of the stream are written at once.
const STREAM_CHUNK: usize = 1 << 20;

/// `# Source: FILE (release R)`, and for a hook `# Hook: EVENTS, weight W`: apply runs it
/// around the release rather than keeping it.
fn push_source_comment(out: &mut String, m: &Manifest, hook: bool) {
    out.push_str(&format!("# Source: {} (release {})\n", m.source.display(), m.release));
    if let Some(spec) = hook.then(|| weaver_helm::hooks::Spec::of(&m.object)).flatten() {
        let events: Vec<&str> = spec.events.iter().map(|e| e.as_str()).collect();
        out.push_str(&format!("# Hook: {}, weight {}\n", events.join(","), spec.weight));
    }
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
    for (m, _) in rendered.documents() {
        *per_file.entry((m.release.as_str(), file_name(m))).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    for (m, hook) in rendered.documents() {
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
        push_source_comment(&mut text, m, hook);
        weaver_yaml::write_yaml(&mut text, &m.object);
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
        // Directories (namespace, release) left empty go too; one holding anything else stays.
        for parent in stale.ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()) {
            if std::fs::remove_dir(dir.join(parent)).is_err() {
                break;
            }
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

/// `<release>/<file>.yaml` or `<release>/<namespace>/<file>.yaml` and nothing else: a
/// hand-edited list cannot reach outside DIR.
fn is_written_path(path: &Path) -> bool {
    let parts: Vec<Component> = path.components().collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|c| matches!(c, Component::Normal(_)))
        && path.extension().is_some_and(|e| e == "yaml")
}
