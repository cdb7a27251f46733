//! `weaver rollback`: re-apply a recorded revision of a release, pruning what it did not have,
//! and record the result as a new revision that says it is a rollback.

use std::process::ExitCode;

use super::history::{records_of, release};
use super::{Ui, block_on, open_project};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ObjectKey, api_group};
use crate::release_record::{Status, secret_name};
use crate::render::RenderedRelease;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &RollbackArgs) -> Result<ExitCode> {
    let env = open_project(global, None)?.environment(&args.env)?;
    let release = release(&env, &args.release)?;
    let (report, options) = block_on(async {
        let cluster = super::apply::connect(global, ui, &env).await?;
        let records = records_of(&cluster, release, &env).await?;
        let current = records.iter().rev().find(|r| r.status == Status::Deployed);
        let target = match args.revision {
            Some(revision) => records.iter().find(|r| r.revision == revision).ok_or_else(|| {
                let known: Vec<String> = records.iter().map(|r| r.revision.to_string()).collect();
                Error::new(format!("release `{}` has no recorded revision {revision}", release.name)).with_help(
                    if known.is_empty() {
                        "it has no records yet".to_string()
                    } else {
                        format!("its revisions: {}", known.join(", "))
                    },
                )
            })?,
            // The one deployed before the current one: failed revisions never were.
            None => records
                .iter()
                .rev()
                .filter(|r| current.is_none_or(|c| r.revision < c.revision))
                .find(|r| r.status == Status::Superseded)
                .ok_or_else(|| {
                    Error::new(format!("release `{}` has no earlier deployed revision to roll back to", release.name))
                        .with_help("`weaver history` lists its revisions; name one to re-apply it")
                })?,
        };
        if target.status == Status::Failed {
            ui.warn(&format!("revision {} failed when it was applied; re-applying all of it", target.revision));
        }
        register_secret_values(ui, &target.manifests);
        let source = std::path::PathBuf::from(format!("record {}", secret_name(&release.name, target.revision, 0)));
        let rendered = RenderedRelease {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
            chart: release.chart.clone(),
            installed: true,
            manifests: target
                .manifests
                .iter()
                .map(|object| Manifest {
                    release: release.name.clone(),
                    source: source.clone(),
                    object: object.clone(),
                })
                .collect(),
        };
        let provenance = target.commit.clone().map(|commit| (commit, target.dirty.unwrap_or(false)));
        let mut options = super::apply::options(&env, &args.apply, provenance, Some(target.revision));
        options.sensitive = target
            .objects
            .iter()
            .filter(|o| o.sensitive)
            .map(|o| ObjectKey {
                group: api_group(&o.api_version).to_string(),
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
            })
            .collect();
        let inputs = super::apply::inputs(&env, vec![rendered]);
        let report = super::apply::execute(&cluster, ui, &env, inputs, &args.apply, &options).await?;
        Ok::<_, Error>((report, options))
    })?;
    super::apply::finish(ui, &report, &args.apply, &options)
}

/// Rollback decrypts nothing, so the redactor learns the recorded Secrets' values instead:
/// a server message quoting one must not print it.
fn register_secret_values(ui: &Ui, manifests: &[serde_json::Value]) {
    use base64::Engine;
    let data = manifests.iter().filter(|m| crate::diff::is_secret(m)).filter_map(|m| m.get("data")?.as_object());
    for value in data.flat_map(|d| d.values()).filter_map(serde_json::Value::as_str) {
        match base64::engine::general_purpose::STANDARD.decode(value).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(plain) => ui.redactor.register(&plain),
            None => ui.redactor.register(value),
        }
    }
}
