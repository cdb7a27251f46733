//! The environment file's format, as serde reads it (positions kept for errors).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::PatchTarget;
use crate::health::HealthCheckFile;
use crate::ignore::IgnoreRuleFile;
use crate::image_updates::ImageUpdateFile;
use crate::notifications::NotificationFile;
use crate::promotion::PromotionFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EnvironmentFile {
    pub(super) extends: Option<Spanned<String>>,
    #[serde(rename = "abstract")]
    pub(super) is_abstract: Option<bool>,
    pub(super) cluster: Option<ClusterFile>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) needs: Option<Vec<Spanned<String>>>,
    pub(super) wave: Option<i32>,
    pub(super) namespace: Option<Spanned<String>>,
    pub(super) values: Option<Map<String, Value>>,
    pub(super) values_files: Option<Vec<Spanned<String>>>,
    pub(super) secrets: Option<Vec<Spanned<String>>>,
    pub(super) identity_file: Option<Spanned<String>>,
    pub(super) kube_version: Option<Spanned<String>>,
    pub(super) api_versions: Option<Vec<Spanned<String>>>,
    pub(super) repositories: Option<Vec<Spanned<RepositoryFile>>>,
    pub(super) ignore_differences: Option<Vec<Spanned<IgnoreRuleFile>>>,
    pub(super) notifications: Option<Vec<Spanned<NotificationFile>>>,
    pub(super) health_checks: Option<Vec<Spanned<HealthCheckFile>>>,
    pub(super) promotion: Option<Spanned<PromotionFile>>,
    pub(super) image_updates: Option<Spanned<Vec<Spanned<ImageUpdateFile>>>>,
    pub(super) releases: Option<Vec<Spanned<ReleaseFile>>>,
}

/// A chart repository releases name charts of (`chart: <name>/<chart>`), as helmfile's
/// `repositories:`. Credentials are never here: they come from the machine (see `weaver_source::charts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RepositoryFile {
    pub(super) name: String,
    pub(super) url: Spanned<String>,
    /// An `oci://` registry served over plain HTTP (helm's `--plain-http`).
    pub(super) plain_http: Option<bool>,
    /// Check each chart's signature: its provenance file (helm's `--verify`) against `keyring`,
    /// or for an `oci://` registry its cosign signature against `publicKeyRef`.
    pub(super) verify: Option<bool>,
    /// OpenPGP public keys (`gpg --export`, binary or armored), by path from the repository's root.
    pub(super) keyring: Option<Spanned<String>>,
    /// cosign's public keys (`cosign.pub`), by path from the repository's root.
    pub(super) public_key_ref: Option<Spanned<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ClusterFile {
    pub(super) context: Option<String>,
    pub(super) lock_namespace: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ReleaseFile {
    pub(super) name: String,
    pub(super) chart: Option<Spanned<String>>,
    pub(super) version: Option<Spanned<String>>,
    pub(super) kustomize: Option<Spanned<String>>,
    pub(super) namespace: Option<Spanned<String>>,
    pub(super) create_namespace: Option<bool>,
    pub(super) needs: Option<Vec<Spanned<String>>>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) values: Option<Map<String, Value>>,
    pub(super) values_files: Option<Vec<Spanned<String>>>,
    pub(super) secrets: Option<Vec<Spanned<String>>>,
    pub(super) substitute: Option<BTreeMap<String, Spanned<Value>>>,
    pub(super) substitute_from: Option<Vec<Spanned<String>>>,
    pub(super) load_restrictions: Option<Spanned<String>>,
    pub(super) installed: Option<bool>,
    pub(super) patches: Option<Vec<Spanned<PatchFile>>>,
    pub(super) ignore_differences: Option<Vec<Spanned<IgnoreRuleFile>>>,
    pub(super) health_checks: Option<Vec<Spanned<HealthCheckFile>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PatchFile {
    pub(super) target: PatchTarget,
    pub(super) patch: Option<Value>,
    pub(super) ops: Option<Vec<Value>>,
}
