//! Rollback: re-apply a recorded revision of a release, pruning what it did not have, and
//! record the result as a new revision that says it is a rollback.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::apply::{Applied, Locked, Settings, apply_options, execute};
use super::{Context, Progress, connect, open_project, release};
use crate::cluster::ConnectOptions;
use crate::cluster::observe::release_records;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ObjectKey};
use crate::release_record::{Record, RecordedObject, Status, secret_name};
use crate::render::RenderedRelease;
use crate::secrets::Redactor;

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub repo: PathBuf,
    pub env: String,
    pub release: String,
    /// The revision to re-apply; the one deployed before the current one when None.
    pub revision: Option<u32>,
    pub connect: ConnectOptions,
    pub settings: Settings,
}

/// Re-applies the revision. `interrupted` (Ctrl-C) stops starting new work.
pub async fn rollback(options: &RollbackOptions, cx: Context<'_>, interrupted: &AtomicBool) -> Result<Applied> {
    let Context { redactor, on } = cx;
    let env = open_project(&options.repo, None)?.environment(&options.env)?;
    let release = release(&env, &options.release)?;
    let cluster = connect(options.connect.clone(), &env, "applying to", on).await?;
    let records = release_records(&cluster, release, &env.name).await?;
    let current = records.iter().rev().find(|r| r.status == Status::Deployed);
    let target = match options.revision {
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
        on(Progress::Warning(format!(
            "revision {} failed when it was applied; re-applying all of it",
            target.revision
        )));
    }
    register_secret_values(redactor, target);
    let source = PathBuf::from(format!("record {}", secret_name(&release.name, target.revision, 0)));
    let recorded = |objects: &[serde_json::Value]| -> Vec<Manifest> {
        objects
            .iter()
            .map(|object| Manifest {
                release: release.name.clone(),
                source: source.clone(),
                document: 0,
                object: object.clone(),
                patched_by: Vec::new(),
            })
            .collect()
    };
    // The revision's hooks come back with it: its pre- and post-rollback hooks run, and a later
    // removal runs its delete hooks.
    let rendered = RenderedRelease {
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        chart: release.chart.clone(),
        chart_meta: target.chart.clone(),
        installed: true,
        manifests: recorded(&target.manifests),
        hooks: recorded(&target.hooks),
        warnings: Vec::new(),
        // The environment's rules of today: a rollback fights the fields' owners no more than an apply.
        ignore_differences: release.ignore_differences.clone(),
    };
    let provenance = target.commit.clone().map(|commit| (commit, target.dirty.unwrap_or(false)));
    let mut apply_options = apply_options(&env, &options.settings, provenance, Some(target.revision));
    apply_options.sensitive = target.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
    let desired = async { Ok(Locked { releases: vec![rendered], options: apply_options, looked_up: Vec::new() }) };
    execute(&cluster, &env, &options.settings, desired, interrupted, on).await
}

/// Rollback (and removing a release the environment no longer has) decrypts nothing, so the
/// redactor learns the recorded values that came from the environment's secrets instead: the
/// Secrets' data, and every string of objects the record marks `sensitive` (a template copied
/// a secret into them; which string is unknown, so some harmless text in their spec or data is
/// redacted too). A server message or a diff quoting one must not print it.
pub(super) fn register_secret_values(redactor: &Redactor, target: &Record) {
    let sensitive: HashSet<ObjectKey> =
        target.objects.iter().filter(|o| o.sensitive).map(RecordedObject::key).collect();
    for hook in target.hooks.iter().filter(|h| crate::diff::is_secret(h)) {
        redactor.register_secret_data(hook);
    }
    for manifest in &target.manifests {
        if crate::diff::is_secret(manifest) {
            redactor.register_secret_data(manifest);
        } else if sensitive.contains(&ObjectKey::of(manifest)) {
            // Its identity (apiVersion, kind, metadata) names it in every message: not secret.
            let fields = manifest.as_object().into_iter().flatten();
            fields
                .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                .for_each(|(_, value)| redactor.register_tree(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn recorded_secret_values_and_values_of_sensitive_objects_are_redacted_but_names_are_not() {
        let redactor = Redactor::new();
        let mut record = Record::of_manifests(vec![
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secrets", "namespace": "shop"},
                "data": {"API_KEY": "ZGV2LWFwaS1rZXktNGYxYzlhN2U="}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
                "data": {"COPY": "copied-secret-value"}}),
        ]);
        record.status = Status::Superseded;
        for object in &mut record.objects {
            object.sensitive = true;
        }
        register_secret_values(&redactor, &record);
        let message =
            "Invalid value: \"dev-api-key-4f1c9a7e\" and \"copied-secret-value\" in ConfigMap shop/web-config";
        let redacted = redactor.redact(message);
        assert!(!redacted.contains("dev-api-key-4f1c9a7e") && !redacted.contains("copied-secret-value"), "{redacted}");
        assert!(redacted.contains("ConfigMap shop/web-config"), "{redacted}");
    }
}
