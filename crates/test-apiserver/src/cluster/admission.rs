//! Validating admission: the `PodSecurity` plugin (`pod-security-admission/admission`), with
//! kube-apiserver 1.32's default configuration (every mode `privileged:latest` unless the
//! namespace's labels say otherwise, no exemptions). It runs after validation, on dry runs too,
//! on creates and updates of the main resource:
//! - Namespaces: invalid `pod-security.kubernetes.io/*` labels are refused (422); making the
//!   enforce level stricter warns about the namespace's pods that violate it.
//! - Pods: the enforce level refuses them (403); the warn level warns.
//! - Workloads with a pod template (Deployments, Jobs, …): the warn level warns, nothing is
//!   refused.

use super::{Cluster, ObjKey, meta_str};
use crate::error::ApiError;
use crate::pod_security::{self, LevelVersion, Policy, Violation};
use crate::resources::Resource;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The pod (metadata and spec) a workload of this resource describes, if it has a template.
/// (The plugin also reads ReplicationControllers and PodTemplates, which the fake does not serve.)
fn pod_template<'a>(res: &Resource, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let template = match (res.group.as_str(), res.plural.as_str()) {
        ("apps", "replicasets" | "deployments" | "statefulsets" | "daemonsets") | ("batch", "jobs") => {
            &obj["spec"]["template"]
        }
        ("batch", "cronjobs") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    (!template.is_null()).then(|| (&template["metadata"], &template["spec"]))
}

fn labels(obj: &Value) -> Map<String, Value> {
    obj["metadata"]["labels"].as_object().cloned().unwrap_or_default()
}

fn warning(policy: LevelVersion, violations: &[Violation]) -> String {
    format!("would violate PodSecurity \"{policy}\": {}", pod_security::forbidden_detail(violations))
}

impl Cluster {
    /// Admits the create (`live` None) or update of `obj`, or refuses it; what it warns about
    /// goes to `warnings`.
    pub(super) fn admit(
        &self,
        res: &Resource,
        obj: &Value,
        live: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        if res.is_crd() {
            return Ok(());
        }
        if res.is("", "Namespace") {
            return self.admit_namespace(obj, live, warnings);
        }
        let is_pod = res.is("", "Pod");
        let (meta, spec) = if is_pod {
            if live.is_some_and(|old| !significant_pod_update(obj, old)) {
                return Ok(());
            }
            (&obj["metadata"], &obj["spec"])
        } else {
            match pod_template(res, obj) {
                Some(pod) => pod,
                None => return Ok(()),
            }
        };
        let namespace = meta_str(obj, "namespace");
        let key = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: namespace.into(),
        };
        let Some(ns) = self.objects.get(&key) else { return Ok(()) };
        let (policy, _) = pod_security::policy(&labels(ns));
        if is_pod {
            let violations = pod_security::evaluate(policy.enforce, meta, spec);
            if !violations.is_empty() {
                let why = format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    pod_security::forbidden_detail(&violations)
                );
                return Err(ApiError::forbidden(&res.gr(), meta_str(obj, "name"), &why));
            }
        }
        let violations = pod_security::evaluate(policy.warn, meta, spec);
        if !violations.is_empty() {
            warnings.push(warning(policy.warn, &violations));
        }
        Ok(())
    }

    fn admit_namespace(&self, obj: &Value, live: Option<&Value>, warnings: &mut Vec<String>) -> Result<(), ApiError> {
        let name = meta_str(obj, "name");
        let (policy, errors) = pod_security::policy(&labels(obj));
        let invalid = || ApiError::invalid("Namespace", "", name, errors.clone());
        let Some(live) = live else {
            return if errors.is_empty() { Ok(()) } else { Err(invalid()) };
        };
        let (old, old_errors) = pod_security::policy(&labels(live));
        // Labels that were already invalid, the same way, do not block other changes.
        if !errors.is_empty() && (old_errors.is_empty() || errors != old_errors) {
            return Err(invalid());
        }
        if !enforce_got_stricter(&policy, &old) {
            return Ok(());
        }
        warnings.extend(self.pods_violating(name, policy.enforce));
        Ok(())
    }

    /// `EvaluatePodsInNamespace`: the pods of `namespace` that `enforce` would refuse, one
    /// warning per set of reasons naming the lexically first such pod and how many others.
    fn pods_violating(&self, namespace: &str, enforce: LevelVersion) -> Vec<String> {
        let mut by_reasons: BTreeMap<String, (&str, usize)> = BTreeMap::new();
        for (key, pod) in self.objects.of_resource("", "pods", Some(namespace)) {
            let violations = pod_security::evaluate(enforce, &pod["metadata"], &pod["spec"]);
            if violations.is_empty() {
                continue;
            }
            let entry = by_reasons.entry(pod_security::forbidden_reason(&violations)).or_insert((&key.name, 0));
            entry.0 = entry.0.min(key.name.as_str());
            entry.1 += 1;
        }
        if by_reasons.is_empty() {
            return Vec::new();
        }
        let mut pods: Vec<String> = by_reasons
            .into_iter()
            .map(|(reasons, (first, count))| match count {
                1 => format!("{first}: {reasons}"),
                2 => format!("{first} (and 1 other pod): {reasons}"),
                _ => format!("{first} (and {} other pods): {reasons}", count - 1),
            })
            .collect();
        pods.sort();
        let head = format!(
            "existing pods in namespace \"{namespace}\" violate the new PodSecurity enforce level \"{enforce}\""
        );
        std::iter::once(head).chain(pods).collect()
    }
}

/// Whether existing pods must be checked against a namespace's new enforce level: it changed,
/// is not `privileged`, and is not merely a looser level of the same version.
fn enforce_got_stricter(new: &Policy, old: &Policy) -> bool {
    let (new, old) = (new.enforce, old.enforce);
    if new == old || new.level == pod_security::Level::Privileged {
        return false;
    }
    !(new.version == old.version && new.level <= old.level)
}

/// `isSignificantPodUpdate`: only a changed image or container list can make an admitted pod
/// violate its policy (the rest of a pod's spec is immutable).
fn significant_pod_update(new: &Value, old: &Value) -> bool {
    let list = |pod: &Value, field: &str| pod["spec"][field].as_array().cloned().unwrap_or_default();
    for field in ["containers", "initContainers"] {
        let (new, old) = (list(new, field), list(old, field));
        if new.len() != old.len() || new.iter().zip(&old).any(|(n, o)| n["image"] != o["image"]) {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|container| {
        old_ephemeral.iter().find(|o| o["name"] == container["name"]).is_none_or(|o| o["image"] != container["image"])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_security::Version;
    use serde_json::json;

    #[test]
    fn only_a_stricter_or_other_version_enforce_level_checks_existing_pods() {
        let policy = |enforce: &str, version: Version| {
            let level = match enforce {
                "privileged" => pod_security::Level::Privileged,
                "baseline" => pod_security::Level::Baseline,
                _ => pod_security::Level::Restricted,
            };
            let lv = LevelVersion { level, version };
            Policy { enforce: lv, warn: lv }
        };
        let latest = Version::Latest;
        assert!(enforce_got_stricter(&policy("restricted", latest), &policy("baseline", latest)));
        assert!(!enforce_got_stricter(&policy("baseline", latest), &policy("restricted", latest)));
        assert!(!enforce_got_stricter(&policy("privileged", latest), &policy("baseline", latest)));
        assert!(enforce_got_stricter(&policy("baseline", Version::Minor(20)), &policy("restricted", latest)));
    }

    #[test]
    fn pod_updates_matter_when_images_or_containers_change() {
        let pod = |image: &str, ephemeral: Value| json!({"spec": {"containers": [{"name": "a", "image": image}], "ephemeralContainers": ephemeral}});
        assert!(!significant_pod_update(&pod("x", json!([])), &pod("x", json!([]))));
        assert!(significant_pod_update(&pod("y", json!([])), &pod("x", json!([]))));
        assert!(significant_pod_update(
            &pod("x", json!([{"name": "debug", "image": "busybox"}])),
            &pod("x", json!([]))
        ));
    }
}
