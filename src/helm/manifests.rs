//! From rendered files to `helm template`'s documents: releaseutil.SplitManifests, the hook
//! annotations (`--skip-tests` drops test hooks; unknown hooks are dropped as helm drops them),
//! and InstallOrder's kind sort.

use std::sync::LazyLock;

use serde_json::Value as Json;

/// releaseutil.InstallOrder.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// `(?:^|\s*\n)---\s*`, with Go's ASCII `\s` (which also compiles faster than Unicode's).
static SEPARATOR: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::RegexBuilder::new(r"(?:^|\s*\n)---\s*").unicode(false).build().expect("a valid pattern"));

/// SplitManifests: the non-empty documents of a rendered file, trimmed, in order.
pub fn split(text: &str) -> Vec<&str> {
    SEPARATOR.split(text.trim()).filter(|d| !d.is_empty()).map(str::trim).collect()
}

/// One document of the output, with the template file it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The template's name (`chart/templates/x.yaml`).
    pub template: String,
    /// Its parsed content; `Null` for a document of only comments.
    pub object: Json,
}

/// Where a document goes in `helm template`'s output.
pub enum Kind {
    Manifest,
    Hook,
    /// A test hook (dropped by `--skip-tests`).
    Test,
    /// A hook helm does not know, which it skips.
    Skipped,
}

pub fn classify(object: &Json) -> Kind {
    let Some(hook) = object.pointer("/metadata/annotations/helm.sh~1hook") else { return Kind::Manifest };
    let hook = match hook {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let events: Vec<String> = hook.split(',').map(|e| e.trim().to_ascii_lowercase()).collect();
    if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
        return Kind::Skipped;
    }
    if events.iter().any(|e| e == "test" || e == "test-success") { Kind::Test } else { Kind::Hook }
}

fn kind_of(document: &Document) -> &str {
    document.object.get("kind").and_then(Json::as_str).unwrap_or_default()
}

/// A kind's place in InstallOrder; unknown kinds after every known one.
pub fn install_rank(kind: &str) -> usize {
    INSTALL_ORDER.iter().position(|k| *k == kind).unwrap_or(INSTALL_ORDER.len())
}

/// lessByKind: InstallOrder's kinds first in its order, unknown kinds last by name; stable.
pub fn sort_by_kind(documents: &mut [Document]) {
    documents.sort_by(|a, b| {
        let (ka, kb) = (kind_of(a), kind_of(b));
        install_rank(ka).cmp(&install_rank(kb)).then_with(|| match install_rank(ka) == INSTALL_ORDER.len() {
            true => ka.cmp(kb),
            false => std::cmp::Ordering::Equal,
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_helm() {
        assert_eq!(split("---\na: 1\n---   \nb: 2\n\n---\n\n"), vec!["a: 1", "b: 2"]);
        assert_eq!(split("a: 1\n--- # x\nb: 2"), vec!["a: 1", "# x\nb: 2"]);
    }

    #[test]
    fn hooks() {
        let hook = |h: &str| classify(&serde_json::json!({"metadata": {"annotations": {"helm.sh/hook": h}}}));
        assert!(matches!(hook("pre-install, post-install"), Kind::Hook));
        assert!(matches!(hook("test"), Kind::Test));
        assert!(matches!(hook("bogus"), Kind::Skipped));
    }
}
