//! Built-in defaulting (`pkg/apis/*/v1/defaults.go`) for the served kinds.
//! Only what a real server fills in for objects weaver manages; defaulted
//! fields end up in the object but not in an applier's managed set.

use crate::resources::Resource;
use serde_json::{Map, Value, json};

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

/// Sets `key` unless present.
fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    m.entry(key.to_string()).or_insert(value);
}

/// The object at `key`, created empty if absent.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("object")
}

/// The quantities of the resource list at `key`, if any, rounded up to a milli: core/v1's
/// `SetDefaults_ResourceList`, which every resource list of its kinds gets (a container's
/// requests and limits, a ResourceQuota's `hard`, …); a real 1.32 server stores a request of
/// `1.5n` as `1m`, where an emptyDir's `sizeLimit` or a RuntimeClass's overhead keeps `2n`.
fn resource_list(m: &mut Map<String, Value>, key: &str) {
    let Some(list) = m.get_mut(key).and_then(obj) else { return };
    for value in list.values_mut() {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Some(rounded) = crate::quantity::canonicalize_at(&text, crate::quantity::MILLI) {
            *value = Value::String(rounded);
        }
    }
}

/// A `ResourceRequirements` at `key` (its requests and limits), if any.
fn requirements(m: &mut Map<String, Value>, key: &str) {
    if let Some(requirements) = m.get_mut(key).and_then(obj) {
        resource_list(requirements, "requests");
        resource_list(requirements, "limits");
    }
}

fn each_item(m: &mut Map<String, Value>, key: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(Value::Array(items)) = m.get_mut(key) {
        for item in items.iter_mut().filter_map(obj) {
            f(item);
        }
    }
}

pub fn apply(res: &Resource, o: &mut Value) {
    if res.is_crd() {
        return;
    }
    let Some(root) = obj(o) else { return };
    let name = root.get("metadata").and_then(|m| m["name"].as_str()).unwrap_or_default().to_string();
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") if !name.is_empty() => {
            child(child(root, "metadata"), "labels").insert("kubernetes.io/metadata.name".into(), name.into());
        }
        ("", "Secret") => default(root, "type", json!("Opaque")),
        ("", "Service") => service(child(root, "spec")),
        ("", "PersistentVolumeClaim") => {
            let spec = child(root, "spec");
            default(spec, "volumeMode", json!("Filesystem"));
            requirements(spec, "resources");
        }
        ("", "PersistentVolume") => resource_list(child(root, "spec"), "capacity"),
        ("", "ResourceQuota") => resource_list(child(root, "spec"), "hard"),
        ("", "LimitRange") => each_item(child(root, "spec"), "limits", |limit| {
            for key in ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"] {
                resource_list(limit, key);
            }
        }),
        ("", "Pod") => {
            let spec = child(root, "spec");
            pod_spec(spec);
            default(spec, "enableServiceLinks", json!(true));
        }
        ("apps", "Deployment") => {
            let spec = child(root, "spec");
            default(spec, "replicas", json!(1));
            let strategy = child(spec, "strategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let ru = child(strategy, "rollingUpdate");
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            template(spec);
        }
        ("apps", "StatefulSet") => {
            let spec = child(root, "spec");
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            let strategy = child(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                default(child(strategy, "rollingUpdate"), "partition", json!(0));
            }
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
            default(retention, "whenDeleted", json!("Retain"));
            default(retention, "whenScaled", json!("Retain"));
            each_item(spec, "volumeClaimTemplates", |pvc| {
                default(pvc, "apiVersion", json!("v1"));
                default(pvc, "kind", json!("PersistentVolumeClaim"));
                let spec = child(pvc, "spec");
                default(spec, "volumeMode", json!("Filesystem"));
                requirements(spec, "resources");
                default(child(pvc, "status"), "phase", json!("Pending"));
            });
            template(spec);
        }
        ("apps", "DaemonSet") => {
            let spec = child(root, "spec");
            let strategy = child(spec, "updateStrategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let ru = child(strategy, "rollingUpdate");
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
            default(spec, "revisionHistoryLimit", json!(10));
            template(spec);
        }
        ("apps", "ReplicaSet") => {
            let spec = child(root, "spec");
            default(spec, "replicas", json!(1));
            template(spec);
        }
        ("batch", "Job") => {
            let spec = child(root, "spec");
            job_spec(spec);
            let template_labels = spec.get("template").and_then(|t| t.pointer("/metadata/labels")).cloned();
            let meta = child(root, "metadata");
            if let Some(l) = template_labels
                && meta.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty)
            {
                meta.insert("labels".into(), l);
            }
        }
        ("batch", "CronJob") => {
            let spec = child(root, "spec");
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            template(child(child(spec, "jobTemplate"), "spec"));
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(child(root, "spec")),
        ("networking.k8s.io", "NetworkPolicy") => {
            let spec = child(root, "spec");
            if spec.get("policyTypes").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                let mut types = vec![json!("Ingress")];
                if spec.get("egress").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
                    types.push(json!("Egress"));
                }
                spec.insert("policyTypes".into(), Value::Array(types));
            }
            for direction in ["ingress", "egress"] {
                each_item(spec, direction, |rule| each_item(rule, "ports", |p| default(p, "protocol", json!("TCP"))));
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            each_item(root, "subjects", |s| {
                if s.get("apiGroup").and_then(Value::as_str).unwrap_or_default().is_empty()
                    && matches!(s["kind"].as_str(), Some("User" | "Group"))
                {
                    s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
                }
            });
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let spec = child(root, "spec");
            default(spec, "conversion", json!({"strategy": "None"}));
            let names = child(spec, "names");
            let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            if !kind.is_empty() {
                default(names, "singular", json!(kind.to_lowercase()));
                default(names, "listKind", json!(format!("{kind}List")));
            }
        }
        _ => {}
    }
}

fn job_spec(spec: &mut Map<String, Value>) {
    if !spec.contains_key("completions") && !spec.contains_key("parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    let backoff = if spec.contains_key("backoffLimitPerIndex") { i32::MAX } else { 6 };
    default(spec, "backoffLimit", json!(backoff));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let policy = if spec.contains_key("podFailurePolicy") { "Failed" } else { "TerminatingOrFailed" };
    default(spec, "podReplacementPolicy", json!(policy));
    template(spec);
}

fn template(spec: &mut Map<String, Value>) {
    pod_spec(child(child(spec, "template"), "spec"));
}

fn pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        each_item(spec, key, container);
    }
    each_item(spec, "volumes", volume);
    resource_list(spec, "overhead");
    requirements(spec, "resources");
}

fn container(c: &mut Map<String, Value>) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    requirements(c, "resources");
    default(c, "terminationMessagePolicy", json!("File"));
    if !c.contains_key("imagePullPolicy") {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let policy = if image_tag(image) == "latest" { "Always" } else { "IfNotPresent" };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    each_item(c, "ports", |p| default(p, "protocol", json!("TCP")));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(obj) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            handler(p);
        }
    }
    if let Some(l) = c.get_mut("lifecycle").and_then(obj) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(hook).and_then(obj) {
                handler(h);
            }
        }
    }
    each_item(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom").and_then(obj) {
            if let Some(f) = from.get_mut("fieldRef").and_then(obj) {
                default(f, "apiVersion", json!("v1"));
            }
            if let Some(r) = from.get_mut("resourceFieldRef").and_then(obj) {
                default(r, "divisor", json!("0"));
            }
        }
    });
}

fn handler(h: &mut Map<String, Value>) {
    if let Some(g) = h.get_mut("httpGet").and_then(obj) {
        default(g, "path", json!("/"));
        default(g, "scheme", json!("HTTP"));
    }
    if let Some(g) = h.get_mut("grpc").and_then(obj) {
        default(g, "service", json!(""));
    }
}

/// The tag `parsers.ParseImageName` yields: `latest` when neither tag nor digest is given.
fn image_tag(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None if digest.is_some() => "",
        None => "latest",
    }
}

fn volume(v: &mut Map<String, Value>) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES.iter().any(|s| v.contains_key(*s)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = v.get_mut(key).and_then(obj) {
            default(src, "defaultMode", json!(420));
            each_item(src, "items", |i| {
                if let Some(f) = i.get_mut("fieldRef").and_then(obj) {
                    default(f, "apiVersion", json!("v1"));
                }
            });
            each_item(src, "sources", |s| {
                if let Some(t) = s.get_mut("serviceAccountToken").and_then(obj) {
                    default(t, "expirationSeconds", json!(3600));
                }
            });
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(obj) {
        default(h, "type", json!(""));
    }
}

fn service(spec: &mut Map<String, Value>) {
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    if spec["sessionAffinity"] == "ClientIP" {
        default(child(child(spec, "sessionAffinityConfig"), "clientIP"), "timeoutSeconds", json!(10800));
    }
    each_item(spec, "ports", |p| {
        default(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    let ty = spec["type"].as_str().unwrap_or_default().to_string();
    if ty == "NodePort" || ty == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn hpa(spec: &mut Map<String, Value>) {
    default(spec, "minReplicas", json!(1));
    if spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(b) = spec.get_mut("behavior").and_then(obj) {
        let up = child(b, "scaleUp");
        default(up, "stabilizationWindowSeconds", json!(0));
        default(up, "selectPolicy", json!("Max"));
        default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        let down = child(b, "scaleDown");
        default(down, "stabilizationWindowSeconds", json!(300));
        default(down, "selectPolicy", json!("Max"));
        default(down, "policies", json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
    }
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("localhost:5000/nginx"), "latest");
        assert_eq!(image_tag("nginx@sha256:abc"), "");
        assert_eq!(image_tag("nginx:latest"), "latest");
    }
}
