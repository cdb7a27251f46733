//! The subset of apiserver validation weaver's tests can trip over: the
//! object's schema (types, required fields, formats, quantities; checked by
//! `weaver-kube-schema`, as weaver's offline validation checks them, when the
//! object is decoded), object names, workload selectors and containers,
//! service ports, a few immutable fields. Messages follow
//! `k8s.io/apimachinery/pkg/util/validation`.

use crate::error::{Cause, field};
use crate::resources::Resource;
use serde_json::Value;

use weaver_kube_schema::apimachinery::{DNS1123_LABEL_MSG, is_dns1123_label};

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
    // A name's form is the schema check's (`weaver_kube_schema::apimachinery`).
    if obj["metadata"]["name"].as_str().unwrap_or_default().is_empty() {
        causes.push(field::required("metadata.name", "name or generateName is required"));
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
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj, &mut causes),
        // What core/v1 clients read as firstTimestamp, lastTimestamp, count and source: never
        // set at events.k8s.io/v1, nor changed there (`ValidateEventCreate`, `ValidateEventUpdate`).
        ("events.k8s.io", "Event") => {
            let kept = [
                ("deprecatedFirstTimestamp", "firstTimestamp"),
                ("deprecatedLastTimestamp", "lastTimestamp"),
                ("deprecatedCount", "count"),
                ("deprecatedSource", "source"),
            ];
            for (field, core) in kept {
                match old {
                    None if !obj[field].is_null() => {
                        causes.push(field::invalid(core, &Value::String(String::new()), "needs to be unset"))
                    }
                    Some(old) if old[field] != obj[field] => {
                        causes.push(field::invalid(core, &obj[field], "field is immutable"))
                    }
                    _ => {}
                }
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

/// A CRD's conversion and stored versions, as apiextensions' `ValidateCustomResourceDefinition`
/// checks them (the fields' paths are its internal type's: `webhookClientConfig`).
fn crd(obj: &Value, causes: &mut Vec<Cause>) {
    let conversion = &obj["spec"]["conversion"];
    let strategy = conversion["strategy"].as_str().unwrap_or("None");
    let client = &conversion["webhook"]["clientConfig"];
    match strategy {
        "None" if !client.is_null() => causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: should not be set when strategy is not set to Webhook".into(),
            field: "spec.conversion.webhookClientConfig".into(),
        }),
        "None" => {}
        "Webhook" => {
            if client.is_null() {
                causes.push(field::required(
                    "spec.conversion.webhookClientConfig",
                    "required when strategy is set to Webhook",
                ));
            } else if client["url"].is_string() == client["service"].is_object() {
                causes.push(field::required(
                    "spec.conversion.webhookClientConfig",
                    "exactly one of url or service is required",
                ));
            }
            let reviews = conversion["webhook"]["conversionReviewVersions"].as_array().map_or(0, Vec::len);
            if reviews == 0 {
                causes.push(field::required(
                    "spec.conversion.conversionReviewVersions",
                    "must include at least one of v1, v1beta1",
                ));
            }
        }
        other => causes.push(field::not_supported("spec.conversion.strategy", other, &["None", "Webhook"])),
    }
    let versions: Vec<&Value> = obj["spec"]["versions"].as_array().into_iter().flatten().map(|v| &v["name"]).collect();
    for (i, stored) in obj["status"]["storedVersions"].as_array().into_iter().flatten().enumerate() {
        if !versions.contains(&stored) {
            causes.push(field::invalid(&format!("status.storedVersions[{i}]"), stored, "must appear in spec.versions"));
        }
    }
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
                } else if !is_dns1123_label(n) || n.len() > 63 {
                    causes.push(field::invalid(&format!("{p}.name"), &c["name"], DNS1123_LABEL_MSG));
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
