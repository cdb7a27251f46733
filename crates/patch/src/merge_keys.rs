//! How lists in built-in Kubernetes kinds are merged.
//!
//! Source: the Kubernetes API types (`k8s.io/api`, v1.32), i.e. the
//! `patchStrategy`/`patchMergeKey` struct tags that the `OpenAPI` document publishes
//! as `x-kubernetes-patch-strategy`/`x-kubernetes-patch-merge-key`, plus
//! `x-kubernetes-list-map-keys` where a list is keyed by more than one field
//! (container and Service ports, topology spread constraints). Strategic merge
//! patch itself only matches on the first key; using all list-map keys is what
//! server-side apply does, and it keeps a TCP and a UDP port on the same number
//! apart. Both the strategic merge patch and the three-way diff read this table,
//! so they always agree on which list elements are "the same".
//!
//! Lists not named here are atomic: a patch or a new revision replaces them whole.

use std::collections::HashSet;
use std::hash::Hash;

use serde_json::Value;

/// One field of a list's merge key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeKey {
    pub field: &'static str,
    /// What the API server fills in when the field is absent, so that
    /// `{containerPort: 80}` and `{containerPort: 80, protocol: TCP}` are one element.
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Elements are objects identified by these fields; they merge element-wise.
    Merge { keys: &'static [MergeKey] },
    /// A set of scalars (e.g. `metadata.finalizers`): merging takes the union.
    MergePrimitives,
    /// The list is replaced as a whole.
    Atomic,
}

const fn key(field: &'static str) -> MergeKey {
    MergeKey { field, default: None }
}

const NAME: &[MergeKey] = &[key("name")];
const UID: &[MergeKey] = &[key("uid")];
const IP: &[MergeKey] = &[key("ip")];
const MOUNT_PATH: &[MergeKey] = &[key("mountPath")];
const DEVICE_PATH: &[MergeKey] = &[key("devicePath")];
const TOPOLOGY: &[MergeKey] = &[key("topologyKey"), key("whenUnsatisfiable")];
const CONTAINER_PORT: &[MergeKey] = &[key("containerPort"), MergeKey { field: "protocol", default: Some("TCP") }];
const SERVICE_PORT: &[MergeKey] = &[key("port"), MergeKey { field: "protocol", default: Some("TCP") }];

/// The merge strategy of the list at `path`, the field path from the object root
/// with list indices removed, e.g. `["spec", "template", "spec", "containers"]`.
#[must_use]
pub fn list_strategy(api_version: &str, kind: &str, path: &[&str]) -> ListStrategy {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    if let ["metadata", field] = path {
        return object_meta(field);
    }
    if let Some(pod_spec) = pod_spec_path(group, kind) {
        if let Some(rest) = path.strip_prefix(pod_spec) {
            return pod_spec_list(rest);
        }
        // The pod template's own metadata sits next to its spec.
        let template = &pod_spec[..pod_spec.len() - 1];
        if let Some(["metadata", field]) = path.strip_prefix(template) {
            return object_meta(field);
        }
    }
    match (group, kind, path) {
        ("", "Service", ["spec", "ports"]) => ListStrategy::Merge { keys: SERVICE_PORT },
        ("", "ServiceAccount", ["secrets"])
        | (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
            ["webhooks"],
        )
        | ("storage.k8s.io", "CSINode", ["spec", "drivers"]) => ListStrategy::Merge { keys: NAME },
        ("", "Node", ["spec", "podCIDRs"]) => ListStrategy::MergePrimitives,
        _ => ListStrategy::Atomic,
    }
}

/// Where the `PodSpec` lives in kinds that run pods.
fn pod_spec_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        ("", "Pod") => &["spec"],
        ("", "PodTemplate") => &["template", "spec"],
        ("", "ReplicationController")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

fn object_meta(field: &str) -> ListStrategy {
    match field {
        "finalizers" => ListStrategy::MergePrimitives,
        "ownerReferences" => ListStrategy::Merge { keys: UID },
        _ => ListStrategy::Atomic,
    }
}

/// `path` is relative to a `PodSpec`.
fn pod_spec_list(path: &[&str]) -> ListStrategy {
    let keys: &'static [MergeKey] = match path {
        [
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "imagePullSecrets"
            | "resourceClaims"
            | "schedulingGates",
        ] => NAME,
        ["hostAliases"] => IP,
        ["topologySpreadConstraints"] => TOPOLOGY,
        ["containers" | "initContainers" | "ephemeralContainers", field] => match *field {
            "env" => NAME,
            "ports" => CONTAINER_PORT,
            "volumeMounts" => MOUNT_PATH,
            "volumeDevices" => DEVICE_PATH,
            _ => return ListStrategy::Atomic,
        },
        _ => return ListStrategy::Atomic,
    };
    ListStrategy::Merge { keys }
}

/// The identity of `element` in a list merged by `keys`: one value per key field,
/// with defaults filled in.
///
/// # Errors
/// The first key field that the element lacks and that has no default.
pub fn element_key(keys: &[MergeKey], element: &Value) -> Result<Vec<Value>, &'static str> {
    keys.iter()
        .map(|k| match element.get(k.field).filter(|v| !v.is_null()) {
            Some(v) => Ok(v.clone()),
            None => k.default.map(Value::from).ok_or(k.field),
        })
        .collect()
}

/// Whether the elements two versions of a list both hold (by identity) come in another order.
/// Order matters in keyed lists (an `env` entry's `$(VAR)` sees only the entries before it) and
/// server-side apply follows the applied order, so a reorder is a change.
pub fn reordered<K: Hash + Eq>(before: &[K], after: &[K]) -> bool {
    let (in_before, in_after): (HashSet<&K>, HashSet<&K>) = (before.iter().collect(), after.iter().collect());
    let kept_before = before.iter().filter(|k| in_after.contains(k));
    let kept_after = after.iter().filter(|k| in_before.contains(k));
    !kept_before.eq(kept_after)
}

/// `keys` for messages, e.g. `containerPort+protocol`.
#[must_use]
pub fn describe_keys(keys: &[MergeKey]) -> String {
    keys.iter().map(|k| k.field).collect::<Vec<_>>().join("+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(strategy: ListStrategy) -> Vec<&'static str> {
        match strategy {
            ListStrategy::Merge { keys } => keys.iter().map(|k| k.field).collect(),
            other => panic!("expected a merge list, got {other:?}"),
        }
    }

    #[test]
    fn containers_merge_by_name_wherever_a_pod_template_lives() {
        let cases = [
            ("v1", "Pod", &["spec", "containers"][..]),
            ("v1", "PodTemplate", &["template", "spec", "initContainers"]),
            ("v1", "ReplicationController", &["spec", "template", "spec", "containers"]),
            ("apps/v1", "Deployment", &["spec", "template", "spec", "containers"]),
            ("apps/v1", "StatefulSet", &["spec", "template", "spec", "initContainers"]),
            ("apps/v1", "DaemonSet", &["spec", "template", "spec", "ephemeralContainers"]),
            ("apps/v1", "ReplicaSet", &["spec", "template", "spec", "containers"]),
            ("batch/v1", "Job", &["spec", "template", "spec", "containers"]),
            ("batch/v1", "CronJob", &["spec", "jobTemplate", "spec", "template", "spec", "containers"]),
        ];
        for (api_version, kind, path) in cases {
            assert_eq!(fields(list_strategy(api_version, kind, path)), ["name"], "{kind}");
        }
    }

    #[test]
    fn pod_spec_and_container_lists() {
        let pod = |path: &[&str]| list_strategy("apps/v1", "Deployment", path);
        let spec = |rest: &[&'static str]| {
            let mut path = vec!["spec", "template", "spec"];
            path.extend_from_slice(rest);
            pod(&path)
        };
        assert_eq!(fields(spec(&["containers", "env"])), ["name"]);
        assert_eq!(fields(spec(&["initContainers", "ports"])), ["containerPort", "protocol"]);
        assert_eq!(fields(spec(&["containers", "volumeMounts"])), ["mountPath"]);
        assert_eq!(fields(spec(&["containers", "volumeDevices"])), ["devicePath"]);
        assert_eq!(fields(spec(&["volumes"])), ["name"]);
        assert_eq!(fields(spec(&["imagePullSecrets"])), ["name"]);
        assert_eq!(fields(spec(&["hostAliases"])), ["ip"]);
        assert_eq!(fields(spec(&["resourceClaims"])), ["name"]);
        assert_eq!(fields(spec(&["topologySpreadConstraints"])), ["topologyKey", "whenUnsatisfiable"]);
        for atomic in [
            &["containers", "args"][..],
            &["containers", "command"],
            &["containers", "envFrom"],
            &["tolerations"],
            &["containers", "env", "valueFrom"],
        ] {
            assert_eq!(spec(atomic), ListStrategy::Atomic, "{atomic:?}");
        }
    }

    #[test]
    fn service_ports_and_object_meta() {
        assert_eq!(fields(list_strategy("v1", "Service", &["spec", "ports"])), ["port", "protocol"]);
        assert_eq!(fields(list_strategy("example.com/v1", "Widget", &["metadata", "ownerReferences"])), ["uid"]);
        assert_eq!(
            list_strategy("apps/v1", "Deployment", &["spec", "template", "metadata", "finalizers"]),
            ListStrategy::MergePrimitives
        );
        assert_eq!(list_strategy("v1", "ConfigMap", &["metadata", "finalizers"]), ListStrategy::MergePrimitives);
    }

    #[test]
    fn webhooks_service_account_secrets_and_csi_drivers_merge_by_name() {
        for api_version in ["admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1beta1"] {
            for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
                assert_eq!(fields(list_strategy(api_version, kind, &["webhooks"])), ["name"], "{api_version} {kind}");
            }
        }
        assert_eq!(fields(list_strategy("v1", "ServiceAccount", &["secrets"])), ["name"]);
        assert_eq!(fields(list_strategy("storage.k8s.io/v1", "CSINode", &["spec", "drivers"])), ["name"]);
        assert_eq!(list_strategy("v1", "Node", &["spec", "podCIDRs"]), ListStrategy::MergePrimitives);
        assert_eq!(list_strategy("v1", "ServiceAccount", &["imagePullSecrets"]), ListStrategy::Atomic);
    }

    #[test]
    fn everything_else_is_atomic() {
        assert_eq!(list_strategy("apps/v1", "StatefulSet", &["spec", "volumeClaimTemplates"]), ListStrategy::Atomic);
        // Same kind name in another API group is not the built-in kind.
        assert_eq!(
            list_strategy("example.com/v1", "Deployment", &["spec", "template", "spec", "containers"]),
            ListStrategy::Atomic
        );
        assert_eq!(list_strategy("v1", "Pod", &["spec", "ports"]), ListStrategy::Atomic);
        assert_eq!(list_strategy("v1", "Service", &["spec", "ipFamilies"]), ListStrategy::Atomic);
    }

    #[test]
    fn reordered_looks_at_the_elements_both_lists_hold() {
        assert!(reordered(&["A", "B", "C"], &["C", "A", "B"]));
        assert!(!reordered(&["A", "B", "C"], &["A", "B", "C"]));
        // Added, removed and interleaved elements are other changes, not a reorder.
        assert!(!reordered(&["A", "X", "B"], &["D", "A", "B"]));
        assert!(reordered(&["A", "X", "B"], &["B", "X", "A"]));
    }

    #[test]
    fn element_key_fills_defaults_and_names_missing_fields() {
        let port = |v: Value| element_key(CONTAINER_PORT, &v);
        assert_eq!(port(json!({"containerPort": 80})), port(json!({"containerPort": 80, "protocol": "TCP"})));
        assert_ne!(port(json!({"containerPort": 80})), port(json!({"containerPort": 80, "protocol": "UDP"})));
        assert_eq!(port(json!({"protocol": "UDP"})), Err("containerPort"));
        assert_eq!(element_key(NAME, &json!("not an object")), Err("name"));
    }
}
