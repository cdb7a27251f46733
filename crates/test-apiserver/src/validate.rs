//! The subset of apiserver validation weaver's tests can trip over: the
//! object's schema (types, required fields, formats, quantities; checked by
//! `weaver-kube-schema`, as weaver's offline validation checks them, when the
//! object is decoded), object names, workload selectors and containers,
//! service ports, a few immutable fields. Messages follow
//! `k8s.io/apimachinery/pkg/util/validation`.

use crate::error::{Cause, field};
use crate::resources::Resource;
use serde_json::Value;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_label)
}

/// Name rules per kind (`ValidateObjectMeta` with the kind's name validator).
fn name_errors(res: &Resource, name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") => {
            if name.len() > 63 {
                errs.push("must be no more than 63 characters".into());
            }
            if !is_label(name) {
                errs.push(LABEL_MSG.into());
            }
        }
        ("", "Service") => {
            if name.len() > 63 {
                errs.push("must be no more than 63 characters".into());
            }
            if !(is_label(name) && name.as_bytes()[0].is_ascii_lowercase()) {
                errs.push(DNS1035_MSG.into());
            }
        }
        ("rbac.authorization.k8s.io", _) => {
            if name == "." || name == ".." {
                errs.push(format!("may not be '{name}'"));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    errs.push(format!("may not contain '{bad}'"));
                }
            }
        }
        _ => {
            if name.len() > 253 {
                errs.push("must be no more than 253 characters".into());
            }
            if !is_subdomain(name) {
                errs.push(SUBDOMAIN_MSG.into());
            }
        }
    }
    errs
}

/// What the object's schema refuses. Unknown fields are not among them: decoding prunes them
/// first, and warns or refuses as `fieldValidation` says. (A real server refuses a built-in
/// kind's wrong types before validation, as a typed-patch or conversion error; here they are
/// causes of a 422 Invalid, worded as for a custom resource.)
pub fn schema_causes(res: &Resource, obj: &Value) -> Vec<Cause> {
    let echo = !res.is("", "Secret");
    let builtins = weaver_kube_schema::Builtins::get();
    let issues = match &res.crd_check {
        Some(check) => weaver_kube_schema::check(builtins, &check.0, check.1, obj, true, echo),
        None => {
            let Some(&id) = builtins.kinds.get(&(res.api_version().as_str(), res.kind.as_str())) else {
                return Vec::new();
            };
            // A built-in kind's status is the server's (its zero values lack required fields).
            let mut obj = obj.clone();
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
            weaver_kube_schema::check(builtins, &builtins.schemas, id, &obj, false, echo)
        }
    };
    issues
        .into_iter()
        .filter(|issue| !issue.unknown)
        .map(|issue| {
            let message =
                issue.message.strip_prefix(&format!("{}: ", issue.path)).unwrap_or(&issue.message).to_string();
            let reason = if message.starts_with("Required value") {
                "FieldValueRequired"
            } else if message.starts_with("Unsupported value") {
                "FieldValueNotSupported"
            } else {
                "FieldValueInvalid"
            };
            Cause { reason: reason.into(), message, field: issue.path }
        })
        .collect()
}

/// Validation on create and update; `old` is the live object on update.
pub fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        causes.push(field::required("metadata.name", "name or generateName is required"));
    } else {
        for e in name_errors(res, name) {
            causes.push(field::invalid("metadata.name", &Value::String(name.into()), &e));
        }
    }
    if res.is_crd() {
        return causes;
    }
    let spec = &obj["spec"];
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            workload(spec, "spec", &mut causes);
            if let Some(old) = old
                && old["spec"]["selector"] != spec["selector"]
            {
                causes.push(field::invalid("spec.selector", &spec["selector"], "field is immutable"));
            }
            if res.kind == "StatefulSet"
                && let Some(old) = old
            {
                let mutable = [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ];
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(m) = v.as_object_mut() {
                        for k in mutable {
                            m.remove(k);
                        }
                    }
                    v
                };
                if strip(&old["spec"]) != strip(spec) {
                    causes.push(Cause {
                        reason: "FieldValueForbidden".into(),
                        message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
                        field: "spec".into(),
                    });
                }
            }
        }
        ("batch", "Job") => {
            pod_spec(&spec["template"]["spec"], "spec.template.spec", &mut causes);
            job_restart_policy(&spec["template"]["spec"], "spec.template.spec.restartPolicy", &mut causes);
            if let Some(old) = old
                && old["spec"]["template"] != spec["template"]
            {
                causes.push(field::invalid("spec.template", &spec["template"], "field is immutable"));
            }
        }
        ("batch", "CronJob") => {
            if spec["schedule"].as_str().unwrap_or_default().is_empty() {
                causes.push(field::required("spec.schedule", ""));
            }
            let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
            pod_spec(pod, "spec.jobTemplate.spec.template.spec", &mut causes);
            job_restart_policy(pod, "spec.jobTemplate.spec.template.spec.restartPolicy", &mut causes);
        }
        ("", "Pod") => pod_spec(spec, "spec", &mut causes),
        ("", "Service") => {
            let ports = spec["ports"].as_array().map(Vec::len).unwrap_or(0);
            let headless = spec["clusterIP"] == "None";
            if ports == 0 && spec["type"] != "ExternalName" && !headless {
                causes.push(field::required("spec.ports", ""));
            }
        }
        ("", "ConfigMap" | "Secret") => {
            if let Some(old) = old
                && old["immutable"] == Value::Bool(true)
            {
                for f in ["data", "binaryData"] {
                    if old[f] != obj[f] {
                        causes.push(Cause {
                            reason: "FieldValueForbidden".into(),
                            message: "Forbidden: field is immutable when `immutable` is set".into(),
                            field: f.into(),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    causes
}

fn workload(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let selector = &spec["selector"];
    if selector.is_null() {
        causes.push(field::required(&format!("{path}.selector"), ""));
    } else {
        let labels = &spec["template"]["metadata"]["labels"];
        let matches = selector["matchLabels"].as_object().into_iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
        let empty = selector["matchLabels"].as_object().is_none_or(|m| m.is_empty())
            && selector["matchExpressions"].as_array().is_none_or(|m| m.is_empty());
        if empty {
            causes.push(field::invalid(
                &format!("{path}.selector"),
                selector,
                "empty selector is invalid for deployment",
            ));
        } else if !matches {
            causes.push(field::invalid(
                &format!("{path}.template.metadata.labels"),
                labels,
                "`selector` does not match template `labels`",
            ));
        }
    }
    pod_spec(&spec["template"]["spec"], &format!("{path}.template.spec"), causes);
}

fn pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec["containers"].as_array().map(Vec::as_slice).unwrap_or_default();
    if containers.is_empty() {
        causes.push(field::required(&format!("{path}.containers"), ""));
    }
    let mut seen = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => causes.push(field::required(&format!("{p}.name"), "")),
            Some(n) => {
                if seen.contains(&n) {
                    causes.push(field::duplicate(&format!("{p}.name"), &c["name"]));
                } else if !is_label(n) || n.len() > 63 {
                    causes.push(field::invalid(&format!("{p}.name"), &c["name"], LABEL_MSG));
                }
                seen.push(n);
            }
        }
        if c["image"].as_str().unwrap_or_default().is_empty() {
            causes.push(field::required(&format!("{p}.image"), ""));
        }
    }
}

fn job_restart_policy(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let p = spec["restartPolicy"].as_str().unwrap_or_default();
    if p != "OnFailure" && p != "Never" {
        causes.push(field::not_supported(path, p, &["OnFailure", "Never"]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_subdomain("web.example-1"));
        assert!(!is_subdomain("Web"));
        assert!(!is_subdomain("-web"));
        assert!(is_label("a-1"));
        assert!(!is_label("a.b"));
    }
}
