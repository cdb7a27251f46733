//! `weaver rollback`: re-apply a recorded revision of a release, pruning what it did not have,
//! and record the result as a new revision that says it is a rollback.

use std::process::ExitCode;

use super::history::{records_of, release};
use super::{Ui, block_on, open_project};
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::error::{Error, Result};
use std::collections::HashSet;

use crate::manifest::{Manifest, ObjectKey};
use crate::release_record::{Record, RecordedObject, Status, secret_name};
use crate::render::RenderedRelease;

pub fn run(global: &GlobalArgs, ui: &Ui, args: &RollbackArgs) -> Result<ExitCode> {
    let env = open_project(global, None)?.environment(&args.env)?;
    let release = release(&env, &args.release)?;
    let (report, options) = block_on(async {
        let cluster = super::apply::connect(&args.cluster, ui, &env).await?;
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
        register_secret_values(ui, target);
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
                    document: 0,
                    object: object.clone(),
                })
                .collect(),
        };
        let provenance = target.commit.clone().map(|commit| (commit, target.dirty.unwrap_or(false)));
        let mut options = super::apply::options(&env, &args.apply, provenance, Some(target.revision));
        options.sensitive = target.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
        let inputs = super::apply::inputs(&env, vec![rendered]);
        let report = super::apply::execute(&cluster, ui, &env, inputs, &args.apply, &options).await?;
        Ok::<_, Error>((report, options))
    })?;
    super::apply::finish(ui, &report, &args.apply, &options)
}

/// Rollback decrypts nothing, so the redactor learns the recorded values that came from the
/// environment's secrets instead: the Secrets' data, and every string of objects the record
/// marks `sensitive` (a template copied a secret into them; which string is unknown, so some
/// harmless text in their spec or data is redacted too). A server message quoting one must not print it.
fn register_secret_values(ui: &Ui, target: &Record) {
    use base64::Engine;
    let sensitive: HashSet<ObjectKey> =
        target.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
    for manifest in &target.manifests {
        if crate::diff::is_secret(manifest) {
            let data = manifest.get("data").and_then(serde_json::Value::as_object);
            for value in data.into_iter().flat_map(|d| d.values()).filter_map(serde_json::Value::as_str) {
                let decoded = base64::engine::general_purpose::STANDARD.decode(value).ok();
                match decoded.and_then(|bytes| String::from_utf8(bytes).ok()) {
                    Some(plain) => ui.redactor.register(&plain),
                    None => ui.redactor.register(value),
                }
            }
        } else if sensitive.contains(&ObjectKey::of(manifest)) {
            // Its identity (apiVersion, kind, metadata) names it in every message: not secret.
            let fields = manifest.as_object().into_iter().flatten();
            fields
                .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                .for_each(|(_, value)| ui.redactor.register_tree(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::secrets::Redactor;

    #[test]
    fn recorded_secret_values_and_values_of_sensitive_objects_are_redacted_but_names_are_not() {
        let ui = Ui { color_stdout: false, color_stderr: false, verbose: 0, redactor: Redactor::new() };
        let object = |kind: &str, name: &str, sensitive: bool| RecordedObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
            applied: true,
            sensitive,
        };
        let record = Record {
            release: "web".into(),
            environment: "dev".into(),
            revision: 1,
            status: Status::Superseded,
            time: "2026-11-21T10:00:00Z".into(),
            commit: None,
            dirty: None,
            rollback_of: None,
            objects: vec![object("Secret", "web-secrets", true), object("ConfigMap", "web-config", true)],
            manifests: vec![
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secrets", "namespace": "shop"},
                    "data": {"API_KEY": "ZGV2LWFwaS1rZXktNGYxYzlhN2U="}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
                    "data": {"COPY": "copied-secret-value"}}),
            ],
        };
        register_secret_values(&ui, &record);
        let message =
            "Invalid value: \"dev-api-key-4f1c9a7e\" and \"copied-secret-value\" in ConfigMap shop/web-config";
        let redacted = ui.redactor.redact(message);
        assert!(!redacted.contains("dev-api-key-4f1c9a7e") && !redacted.contains("copied-secret-value"), "{redacted}");
        assert!(redacted.contains("ConfigMap shop/web-config"), "{redacted}");
    }
}
