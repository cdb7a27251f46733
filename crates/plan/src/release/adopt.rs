//! Adoption from Helm: a weaver release takes over what the Helm release of the same name
//! installed in the same namespace. Pure: this module recognises Helm's release records (the
//! Secrets `sh.helm.release.v1.<name>.v<N>`, labelled `owner=helm`, `name`, `status` and
//! `version`) from their metadata, and the objects Helm installed (annotated
//! `meta.helm.sh/release-name` and `meta.helm.sh/release-namespace`). `engine::observe` lists
//! them; `diff` plans the adoption; `apply` forces the apply of those objects and can delete the
//! Helm release's records. A record's content (the whole release, values included) is never
//! read: its labels say everything weaver needs.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use weaver_core::manifest::{label, namespace_of};

/// The field manager Helm's client-side creates and updates are recorded under.
pub const HELM_MANAGER: &str = "helm";
pub const ANNOTATION_RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const ANNOTATION_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// The label Helm sets on its release records, and the selector that finds them.
pub const HELM_OWNER_SELECTOR: &str = "owner=helm";
/// The label Helm sets on every object it installs.
pub const HELM_MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=Helm";
const RECORD_PREFIX: &str = "sh.helm.release.v1.";

/// A Helm release, as its record Secrets' labels describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    /// The current revision: the newest deployed one, else the newest.
    pub revision: u32,
    /// Its status (`deployed`, `failed`, `pending-upgrade`, …), as Helm labels it.
    pub status: String,
    /// The names of its record Secrets, every revision, oldest first.
    #[serde(skip)]
    pub secrets: Vec<String>,
}

/// The Helm releases `secrets` (Secrets or their metadata, listed with [`HELM_OWNER_SELECTOR`])
/// hold, by `(namespace, name)`. A release whose newest revision is `uninstalled` (kept by
/// `helm uninstall --keep-history`) installed nothing that is still there, and is left out.
pub fn helm_releases<'a>(secrets: impl IntoIterator<Item = &'a Value>) -> HashMap<(String, String), HelmRelease> {
    // (namespace, name) → version → (status, secret name)
    let mut found: HashMap<(String, String), BTreeMap<u32, (String, String)>> = HashMap::new();
    for secret in secrets {
        let Some(secret_name) = secret.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        let (Some(name), Some(namespace)) = (label(secret, "name"), namespace_of(secret)) else { continue };
        if label(secret, "owner") != Some("helm") || !secret_name.starts_with(RECORD_PREFIX) {
            continue;
        }
        let Some(version) = label(secret, "version").and_then(|v| v.parse::<u32>().ok()) else { continue };
        let status = label(secret, "status").unwrap_or("unknown").to_string();
        found
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .insert(version, (status, secret_name.to_string()));
    }
    found
        .into_iter()
        .filter_map(|((namespace, name), revisions)| {
            let (newest, (newest_status, _)) = revisions.iter().next_back()?;
            if newest_status == "uninstalled" {
                return None;
            }
            let deployed = revisions.iter().rev().find(|(_, (status, _))| status == "deployed");
            let (revision, status) = match deployed {
                Some((revision, (status, _))) => (*revision, status.clone()),
                None => (*newest, newest_status.clone()),
            };
            let secrets = revisions.into_values().map(|(_, secret)| secret).collect();
            Some(((namespace.clone(), name.clone()), HelmRelease { name, namespace, revision, status, secrets }))
        })
        .collect()
}

/// Whether Helm installed `object` as part of `helm`: its annotations name the release and its
/// namespace.
pub fn installed_by(object: &Value, helm: &HelmRelease) -> bool {
    let annotation = |name: &str| object.pointer("/metadata/annotations").and_then(|a| a.get(name)?.as_str());
    annotation(ANNOTATION_RELEASE_NAME) == Some(helm.name.as_str())
        && annotation(ANNOTATION_RELEASE_NAMESPACE) == Some(helm.namespace.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(name: &str, version: u32, status: &str) -> Value {
        json!({"metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{version}"),
            "namespace": "shop",
            "labels": {"owner": "helm", "name": name, "status": status, "version": version.to_string()},
        }})
    }

    #[test]
    fn the_current_revision_is_the_newest_deployed_and_uninstalled_releases_are_left_out() {
        let secrets = [
            record("web", 1, "superseded"),
            record("web", 2, "deployed"),
            record("web", 3, "failed"),
            record("api", 1, "pending-install"),
            record("gone", 1, "uninstalled"),
            // Not Helm's: another owner, or a name Helm does not give its records.
            json!({"metadata": {"name": "x", "namespace": "shop", "labels": {"owner": "helm", "name": "x", "version": "1"}}}),
        ];
        let releases = helm_releases(&secrets);
        let web = &releases[&("shop".to_string(), "web".to_string())];
        assert_eq!((web.revision, web.status.as_str()), (2, "deployed"));
        assert_eq!(
            web.secrets,
            ["sh.helm.release.v1.web.v1", "sh.helm.release.v1.web.v2", "sh.helm.release.v1.web.v3"]
        );
        let api = &releases[&("shop".to_string(), "api".to_string())];
        assert_eq!((api.revision, api.status.as_str()), (1, "pending-install"));
        assert_eq!(releases.len(), 2);
        let object = json!({"metadata": {"annotations": {ANNOTATION_RELEASE_NAME: "web", ANNOTATION_RELEASE_NAMESPACE: "shop"}}});
        assert!(installed_by(&object, web));
        assert!(!installed_by(&object, api));
    }
}
