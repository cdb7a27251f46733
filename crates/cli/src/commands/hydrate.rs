//! `weaver hydrate`: write environments' rendered objects to a directory, a git branch or an
//! OCI artifact.

use std::process::ExitCode;
use std::sync::Arc;

use super::Ui;
use crate::cli::{GlobalArgs, HydrateArgs, HydrateSecrets, ListFormat};
use weaver_core::error::{Error, Result};
use weaver_engine::action::fleet::{FleetContext, select_environments};
use weaver_engine::action::hydrate::{HydrateOptions, Hydrated, SecretObjects, Target, TargetReport, hydrate};
use weaver_engine::action::render::{IfEmpty, RenderOptions, Selection};
use weaver_source::charts::oci::Artifact;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &HydrateArgs) -> Result<ExitCode> {
    let selection = super::environment_selection(&args.environments);
    if selection.envs.is_empty() && selection.selectors.is_empty() {
        return Err(super::no_environment_selected());
    }
    let rev = args.source.rev.clone();
    let environments = select_environments(&global.repo, rev.as_deref(), &selection)?;
    let renders = environments
        .into_iter()
        .map(|env| RenderOptions {
            selection: Selection {
                env: env.name.clone(),
                repo: global.repo.clone(),
                rev: rev.clone(),
                loaded: Some(Arc::new(env)),
                project: None,
                ..Selection::default()
            },
            keys: weaver_engine::action::Keys::Search(args.identity.identity.clone()),
            if_empty: IfEmpty::Warn,
            validate: super::validate_mode(&args.validate),
            overrides: Default::default(),
            charts: weaver_source::charts::Archives::Machine,
            limits: Default::default(),
        })
        .collect();
    if args.plain_http && args.oci.is_none() {
        return Err(Error::new("--plain-http is for --oci: a directory or a branch is written locally")
            .with_help("drop --plain-http, or push with --oci REGISTRY/REPO:TAG --plain-http"));
    }
    let oci = args.oci.as_deref().map(|reference| Artifact::parse(reference, args.plain_http, "--oci")).transpose()?;
    let target = (args.out.clone().map(Target::Directory))
        .or_else(|| args.branch.clone().map(Target::Branch))
        .or_else(|| oci.map(Target::Oci))
        .ok_or_else(|| Error::new("nowhere to hydrate to: give --out DIR, --branch NAME or --oci REGISTRY/REPO:TAG"))?;
    let secrets = match args.secrets {
        HydrateSecrets::Encrypt => SecretObjects::Encrypted,
        HydrateSecrets::Omit => SecretObjects::Omitted,
    };
    let hydrated = hydrate(
        &HydrateOptions { renders, target, secrets },
        FleetContext::new(&ui.redactor, &|env, p| ui.fleet_progress(env, p)),
    )?;
    let text = match args.output {
        ListFormat::Json => weaver_engine::report::json::to_text(&hydrated),
        ListFormat::Text => summary(&hydrated),
    };
    super::write_stdout(ui.redactor.redact(&text).as_bytes())?;
    Ok(if hydrated.changed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// A line per environment, then the commit made (if any).
fn summary(hydrated: &Hydrated) -> String {
    let mut text = String::new();
    for env in &hydrated.environments {
        let state = if env.changed {
            format!("{} written, {} removed, {} unchanged", env.written.len(), env.removed.len(), env.unchanged.len())
        } else {
            "unchanged".to_string()
        };
        let secrets = match env.secrets.values().filter(|s| **s == SecretObjects::Omitted).count() {
            0 if env.secrets.is_empty() => String::new(),
            0 => format!(" ({} Secret(s) encrypted)", env.secrets.len()),
            omitted => format!(" ({omitted} Secret(s) left out)"),
        };
        text.push_str(&format!("{}: {state}{secrets}\n", env.environment));
    }
    match (&hydrated.target, &hydrated.commit) {
        (TargetReport::Oci(artifact), _) if !hydrated.changed => match &hydrated.digest {
            Some(digest) => text.push_str(&format!("nothing changed: {artifact}@{digest} holds it already\n")),
            None => text.push_str("nothing changed: nothing pushed\n"),
        },
        (_, None) if !hydrated.changed => text.push_str("nothing changed: nothing written\n"),
        (TargetReport::Branch(branch), Some(commit)) => {
            text.push_str(&format!("committed {} to branch {branch}\n", &commit[..12]));
        }
        (TargetReport::Directory(dir), _) => text.push_str(&format!("wrote to {}\n", dir.display())),
        (TargetReport::Oci(artifact), _) => {
            text.push_str(&format!("pushed {artifact}@{}\n", hydrated.digest.as_deref().unwrap_or_default()));
        }
        (TargetReport::Branch(_), None) => {}
    }
    text
}
