//! From rendered files to `helm template`'s documents: releaseutil.SplitManifests, the hook
//! annotations (`--skip-tests` drops test hooks; unknown hooks are dropped as helm drops them),
//! and InstallOrder's kind sort.

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

/// SplitManifests: the non-empty documents of a rendered file, trimmed, in order. Helm splits at
/// `(?:^|\s*\n)---\s*`, read here by hand (compiling the pattern cost as much as rendering a
/// small chart): a separator is `---` at the start of the text or after a newline, with the
/// whitespace (Go's `\s`) before that newline and all of it after the dashes.
pub fn split(text: &str) -> Vec<&str> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r');
    let text = text.trim();
    let bytes = text.as_bytes();
    let after_dashes = |at: usize| at + bytes[at..].iter().take_while(|b| is_space(b)).count();
    let mut start = if text.starts_with("---") { after_dashes(3) } else { 0 };
    let mut pieces = Vec::new();
    while let Some(newline) = memchr::memmem::find(&bytes[start..], b"\n---").map(|i| start + i) {
        let before = bytes[start..newline].iter().rev().take_while(|b| is_space(b)).count();
        pieces.push(&text[start..newline - before]);
        start = after_dashes(newline + 4);
    }
    pieces.push(&text[start..]);
    pieces.into_iter().filter(|d| !d.is_empty()).map(str::trim).collect()
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

    /// The hand-written splitter cuts where helm's pattern does, around every arrangement of
    /// separators, whitespace and text.
    #[test]
    fn splits_where_the_pattern_splits() {
        let pattern =
            regex::RegexBuilder::new(r"(?:^|[ \t\n\x0c\r]*\n)---[ \t\n\x0c\r]*").unicode(false).build().unwrap();
        let parts = ["a", "---", "\n", " ", "\x0b", "-", "b: 1", "\t"];
        let mut cases = vec![String::new()];
        for _ in 0..6 {
            cases = cases.iter().flat_map(|c| parts.iter().map(move |p| format!("{c}{p}"))).collect();
            for case in &cases {
                let trimmed = case.trim();
                let expected: Vec<&str> = pattern.split(trimmed).filter(|d| !d.is_empty()).map(str::trim).collect();
                assert_eq!(split(case), expected, "{case:?}");
            }
        }
    }

    #[test]
    fn hooks() {
        let hook = |h: &str| classify(&serde_json::json!({"metadata": {"annotations": {"helm.sh/hook": h}}}));
        assert!(matches!(hook("pre-install, post-install"), Kind::Hook));
        assert!(matches!(hook("test"), Kind::Test));
        assert!(matches!(hook("bogus"), Kind::Skipped));
    }
}
