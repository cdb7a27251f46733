//! Kubernetes objects as weaver handles them: identity, scope and apply order.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_RELEASE: &str = "weaver.example.com/release";
pub const LABEL_ENVIRONMENT: &str = "weaver.example.com/environment";
pub const MANAGER: &str = "weaver";

/// The value of an object's label `name`.
pub fn label<'v>(object: &'v Value, name: &str) -> Option<&'v str> {
    object.get("metadata")?.get("labels")?.get(name)?.as_str()
}

/// The namespace in an object's metadata.
pub fn namespace_of(object: &Value) -> Option<&str> {
    object.get("metadata")?.get("namespace")?.as_str()
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// What identifies an object in a cluster: group, kind, namespace and name (not the version).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    /// `Deployment shop/web`, `ClusterRole reader`, with the group when not core (`Deployment.apps`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " {ns}/{}", self.name),
            None => write!(f, " {}", self.name),
        }
    }
}

/// One rendered object, with the release and file it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub release: String,
    /// The template (or CRD file) that produced it.
    pub source: PathBuf,
    /// Which YAML document of `source` it is, from 1 (0 when it did not come from a file).
    pub document: usize,
    pub object: Value,
    /// The release's patches that changed it, where each is written: a problem found in the
    /// object may be theirs rather than the template's.
    pub patched_by: Vec<crate::error::Location>,
}

fn str_at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(object, |v, key| v.get(key))?.as_str()
}

impl Manifest {
    pub fn api_version(&self) -> &str {
        str_at(&self.object, &["apiVersion"]).unwrap_or_default()
    }
    pub fn kind(&self) -> &str {
        str_at(&self.object, &["kind"]).unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        str_at(&self.object, &["metadata", "name"]).unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        namespace_of(&self.object)
    }
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(&self.object)
    }
}

impl ObjectKey {
    /// The identity of any object given as JSON.
    pub fn of(object: &Value) -> ObjectKey {
        ObjectKeyRef::of(object).into()
    }

    pub fn borrowed(&self) -> ObjectKeyRef<'_> {
        ObjectKeyRef { group: &self.group, kind: &self.kind, namespace: self.namespace.as_deref(), name: &self.name }
    }
}

/// An [`ObjectKey`] borrowed from the object: what indexes the objects of a plan, tens of
/// thousands in a fleet, without copying four strings of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectKeyRef<'v> {
    pub group: &'v str,
    pub kind: &'v str,
    pub namespace: Option<&'v str>,
    pub name: &'v str,
}

impl<'v> ObjectKeyRef<'v> {
    pub fn of(object: &'v Value) -> ObjectKeyRef<'v> {
        let (group, kind) = (
            api_group(str_at(object, &["apiVersion"]).unwrap_or_default()),
            str_at(object, &["kind"]).unwrap_or_default(),
        );
        ObjectKeyRef {
            group,
            kind,
            // The API server ignores a namespace on a cluster-scoped object, which a
            // kustomization may leave there (`kubectl kustomize` keeps it).
            namespace: namespace_of(object).filter(|_| builtin_scope(group, kind) != Some(false)),
            name: str_at(object, &["metadata", "name"]).unwrap_or_default(),
        }
    }
}

impl From<ObjectKeyRef<'_>> for ObjectKey {
    fn from(key: ObjectKeyRef<'_>) -> ObjectKey {
        ObjectKey {
            group: key.group.to_string(),
            kind: key.kind.to_string(),
            namespace: key.namespace.map(str::to_string),
            name: key.name.to_string(),
        }
    }
}

/// Built-in kinds and whether they are namespaced, for offline use.
/// Source: `kubectl api-resources` of Kubernetes 1.34.
const BUILTIN_SCOPES: &[(&str, &str, bool)] = &[
    ("", "Binding", true),
    ("", "ComponentStatus", false),
    ("", "ConfigMap", true),
    ("", "Endpoints", true),
    ("", "Event", true),
    ("", "LimitRange", true),
    ("", "Namespace", false),
    ("", "Node", false),
    ("", "PersistentVolume", false),
    ("", "PersistentVolumeClaim", true),
    ("", "Pod", true),
    ("", "PodTemplate", true),
    ("", "ReplicationController", true),
    ("", "ResourceQuota", true),
    ("", "Secret", true),
    ("", "Service", true),
    ("", "ServiceAccount", true),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", false),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", false),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", false),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", false),
    ("apiextensions.k8s.io", "CustomResourceDefinition", false),
    ("apiregistration.k8s.io", "APIService", false),
    ("apps", "ControllerRevision", true),
    ("apps", "DaemonSet", true),
    ("apps", "Deployment", true),
    ("apps", "ReplicaSet", true),
    ("apps", "StatefulSet", true),
    ("autoscaling", "HorizontalPodAutoscaler", true),
    ("batch", "CronJob", true),
    ("batch", "Job", true),
    ("certificates.k8s.io", "CertificateSigningRequest", false),
    ("certificates.k8s.io", "ClusterTrustBundle", false),
    ("coordination.k8s.io", "Lease", true),
    ("discovery.k8s.io", "EndpointSlice", true),
    ("events.k8s.io", "Event", true),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", false),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", false),
    ("networking.k8s.io", "IngressClass", false),
    ("networking.k8s.io", "Ingress", true),
    ("networking.k8s.io", "IPAddress", false),
    ("networking.k8s.io", "NetworkPolicy", true),
    ("networking.k8s.io", "ServiceCIDR", false),
    ("node.k8s.io", "RuntimeClass", false),
    ("policy", "PodDisruptionBudget", true),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", false),
    ("rbac.authorization.k8s.io", "ClusterRole", false),
    ("rbac.authorization.k8s.io", "RoleBinding", true),
    ("rbac.authorization.k8s.io", "Role", true),
    ("scheduling.k8s.io", "PriorityClass", false),
    ("storage.k8s.io", "CSIDriver", false),
    ("storage.k8s.io", "CSINode", false),
    ("storage.k8s.io", "CSIStorageCapacity", true),
    ("storage.k8s.io", "StorageClass", false),
    ("storage.k8s.io", "VolumeAttachment", false),
];

fn builtin_scope(group: &str, kind: &str) -> Option<bool> {
    // Asked for every object a run renders and plans: a scan of the table was 6 % of a fleet's
    // render.
    static SCOPES: std::sync::LazyLock<HashMap<(&str, &str), bool>> = std::sync::LazyLock::new(|| {
        BUILTIN_SCOPES.iter().map(|&(group, kind, namespaced)| ((group, kind), namespaced)).collect()
    });
    let scopes: &HashMap<(&str, &str), bool> = &SCOPES;
    scopes.get(&(group, kind)).copied()
}

/// Decides whether a kind is namespaced: CRDs known to this run (rendered or discovered) first,
/// then the built-in table; unknown kinds are taken as namespaced, as most custom resources are.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    custom: HashMap<(String, String), bool>,
}

impl Scopes {
    /// The scopes the CustomResourceDefinitions among `manifests` define (a later one of a kind
    /// wins), over the built-in table.
    pub fn of_crds<'m>(manifests: impl IntoIterator<Item = &'m Manifest>) -> Scopes {
        let mut scopes = Scopes::default();
        for crd in manifests.into_iter().filter(|m| m.kind() == "CustomResourceDefinition") {
            scopes.learn_crd(&crd.object);
        }
        scopes
    }

    /// Learns the scope of the kind a CustomResourceDefinition object defines: its (group, kind).
    pub fn learn_crd(&mut self, crd: &Value) -> Option<(String, String)> {
        let group = str_at(crd, &["spec", "group"]);
        let kind = str_at(crd, &["spec", "names", "kind"]);
        let (Some(group), Some(kind)) = (group, kind) else { return None };
        let namespaced = str_at(crd, &["spec", "scope"]) != Some("Cluster");
        self.custom.insert((group.to_string(), kind.to_string()), namespaced);
        Some((group.to_string(), kind.to_string()))
    }

    pub fn is_namespaced(&self, api_version: &str, kind: &str) -> bool {
        self.is_namespaced_in(api_group(api_version), kind)
    }

    /// [`Scopes::is_namespaced`] by API group.
    pub fn is_namespaced_in(&self, group: &str, kind: &str) -> bool {
        self.known(group, kind).unwrap_or(true)
    }

    /// Whether the scope of the kind is known (built in, or a CRD learned) rather than taken.
    pub fn is_known(&self, api_version: &str, kind: &str) -> bool {
        self.known(api_group(api_version), kind).is_some()
    }

    /// Whether the kind is namespaced, when that is known (built in, or a CRD learned).
    pub fn known(&self, group: &str, kind: &str) -> Option<bool> {
        self.learned(group, kind).or_else(|| builtin_scope(group, kind))
    }

    /// Whether the kind is namespaced, when a CRD learned says so (the built-in table aside).
    pub fn learned(&self, group: &str, kind: &str) -> Option<bool> {
        if self.custom.is_empty() {
            return None;
        }
        self.custom.get(&(group.to_string(), kind.to_string())).copied()
    }
}

/// Live objects by the uid of each owner their `ownerReferences` name.
pub type Owned<'a> = HashMap<&'a str, Vec<&'a Value>>;

/// `objects` by the owners they name.
pub fn owned_by<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Owned<'a> {
    let mut owned: Owned = HashMap::new();
    for object in objects {
        let owners = object.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten();
        for uid in owners.filter_map(|owner| owner.get("uid").and_then(Value::as_str)) {
            owned.entry(uid).or_default().push(object);
        }
    }
    owned
}

use weaver_kube_schema::apimachinery::NameRule;
pub use weaver_kube_schema::apimachinery::is_dns1123_label;

/// What an RFC 1123 label is, for messages.
pub const DNS1123_LABEL: &str = NameRule::Dns1123Label.describe();

/// What `metadata.name` must be for this kind, as the API server validates it
/// (`weaver_kube_schema::apimachinery::NameRule`), or `None` when `name` is valid.
pub fn name_problem(api_version: &str, kind: &str, name: &str) -> Option<&'static str> {
    let rule = NameRule::of(api_group(api_version), kind);
    (!rule.errors(name).is_empty()).then(|| rule.describe())
}

/// The text of a base64 field (a Secret's `data`, a ConfigMap's `binaryData`) as the API
/// server reads it: Go's decoder skips the line breaks kustomize's generators write.
pub fn unwrapped_base64(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect()
}

/// Why `object` is not a Kubernetes object weaver can send, if it is not: rendered documents
/// and patched objects alike need apiVersion, kind and a name (and namespace) the API server
/// accepts, checked as it checks them, so that nothing it would refuse is sent and
/// `--output-dir` file names are safe.
pub fn object_problem(object: &Value) -> Option<String> {
    shape_problem(object)
        .or_else(|| identity_problem(object))
        .or_else(|| metadata_value(object).map(|(_, problem)| problem))
}

/// The first label or annotation whose value the API server refuses (it decodes both as maps of
/// strings; a null is an empty string), as its JSON pointer in `object` and why. Not part of
/// [`shape_problem`]: kustomize reads annotations as strings (`1` becomes `"1"`), so a
/// kustomization's objects are judged once built.
pub fn metadata_value(object: &Value) -> Option<(String, String)> {
    for (field, what) in [("labels", "a label"), ("annotations", "an annotation")] {
        let Some(Value::Object(map)) = object["metadata"].get(field) else { continue };
        if let Some((key, value)) = map.iter().find(|(_, v)| !matches!(v, Value::Null | Value::String(_))) {
            let pointer = format!("/metadata/{field}/{}", key.replace('~', "~0").replace('/', "~1"));
            let problem = format!(
                "has {what} `{key}` whose value is {}, not a string (the API server takes only strings: quote it)",
                weaver_patch::type_name(value)
            );
            return Some((pointer, problem));
        }
    }
    None
}

/// Why `object` is not a Kubernetes object at all: not a mapping, or without apiVersion, kind
/// or a name. A kustomize build checks only this on what it reads: its transformers change
/// names and namespaces (the namespace transformer renames a Namespace `_` to the target
/// namespace), so [`object_problem`] judges them once the build is done.
pub fn shape_problem(object: &Value) -> Option<String> {
    if object.is_object() && object.get("apiVersion").and_then(Value::as_str).is_none() {
        return Some("has no `apiVersion`".to_string());
    }
    shape_problem_but_api_version(object)
}

/// [`shape_problem`] but for a missing `apiVersion`, which kustomize reads objects without
/// (kyaml asks for a kind and a name only).
pub fn shape_problem_but_api_version(object: &Value) -> Option<String> {
    let Value::Object(map) = object else { return Some("is not a mapping (a Kubernetes object)".to_string()) };
    let Some(kind) = map.get("kind").and_then(Value::as_str) else {
        return Some("has no `kind`".to_string());
    };
    if map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("has no `metadata.name`".to_string());
    }
    if !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Some("has a `kind` that is not a Kubernetes kind name (letters and digits)".to_string());
    }
    // The API server refuses them; weaver's labels must not quietly replace a malformed one.
    for field in ["labels", "annotations"] {
        match map["metadata"].get(field) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => {
                return Some(format!(
                    "has a `metadata.{field}` that is {}, not a mapping of names to values",
                    weaver_patch::type_name(other)
                ));
            }
        }
    }
    None
}

/// Why a well-shaped object's name or namespace is one the API server refuses.
fn identity_problem(object: &Value) -> Option<String> {
    let (api_version, kind) = (object["apiVersion"].as_str()?, object["kind"].as_str()?);
    let metadata = |field: &str| object["metadata"][field].as_str();
    let name = metadata("name")?;
    if let Some(rule) = name_problem(api_version, kind, name) {
        return Some(format!("has an invalid `metadata.name` `{name}`: a {kind} name must be {rule}"));
    }
    metadata("namespace")
        .filter(|ns| !ns.is_empty() && !is_dns1123_label(ns))
        .map(|ns| format!("has an invalid `metadata.namespace` `{ns}`: a namespace name must be {DNS1123_LABEL}"))
}

/// Where one LIST goes (cluster::Cluster lists; helm's `lookup` asks): a resource, and a namespace unless it is cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListTarget {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
}

/// One LIST's answer: its items, with their `apiVersion` and `kind`, and the list's `metadata`
/// (its `resourceVersion`).
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub items: Vec<Value>,
    pub metadata: Value,
}

/// Apply phases, in order (the book's concepts/apply.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    CustomResourceDefinitions,
    Namespaces,
    ClusterConfig,
    AccessControl,
    /// ConfigMaps and Secrets, plus the storage and quota objects workloads need first.
    Config,
    Services,
    Workloads,
    Other,
    CustomResources,
}

pub fn phase(api_version: &str, kind: &str) -> Phase {
    let group = api_group(api_version);
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Phase::CustomResourceDefinitions,
        ("", "Namespace") => Phase::Namespaces,
        ("", "ServiceAccount") | ("rbac.authorization.k8s.io", "Role" | "RoleBinding") => Phase::AccessControl,
        ("", "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "LimitRange" | "ResourceQuota") => Phase::Config,
        ("", "Service") => Phase::Services,
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod" | "ReplicationController") => Phase::Workloads,
        _ => match builtin_scope(group, kind) {
            Some(false) => Phase::ClusterConfig,
            Some(true) => Phase::Other,
            None => Phase::CustomResources,
        },
    }
}

/// Sorts one release's objects into apply order: by phase, then kind, namespace and name, so
/// that output is the same whatever order templates produced them in.
pub fn sort_for_apply(manifests: &mut [Manifest]) {
    // The keys borrow from the objects (an owned ObjectKey is four copies an object, made for
    // every object of a run), so the order is found first and the objects moved into it after.
    let mut order: Vec<usize> = (0..manifests.len()).collect();
    {
        let keys: Vec<_> = manifests
            .iter()
            .map(|m| {
                let (api_version, kind) = (m.api_version(), m.kind());
                (phase(api_version, kind), api_group(api_version), kind, m.namespace(), m.name())
            })
            .collect();
        // Stable: objects of one key (an error found later) keep their order.
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    }
    if order.iter().enumerate().all(|(place, &index)| place == index) {
        return;
    }
    let mut taken: Vec<Manifest> = manifests.iter_mut().map(std::mem::take).collect();
    for (slot, index) in manifests.iter_mut().zip(order) {
        *slot = std::mem::take(&mut taken[index]);
    }
}

/// Whether `version` is a Kubernetes version as helm's `--kube-version` takes it: `v1.32.0`,
/// `1.32` or `1.32.0`.
pub fn is_kube_version(version: &str) -> bool {
    let numbers = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<&str> = numbers.split('.').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `entry` is an API version as discovery lists them and helm's `--api-versions` takes
/// them: `group/version` or `group/version/Kind`, and for the core group `v1` or `v1/Pod`.
/// helm takes any text, which `.Capabilities.APIVersions.Has` then never matches: a typo would
/// pass unseen.
pub fn is_api_version(entry: &str) -> bool {
    // The core group's versions are Kubernetes versions: `v1`, `v2beta1`.
    let core_version = |version: &str| {
        let Some(number) = version.strip_prefix('v') else { return false };
        let digits = number.bytes().take_while(u8::is_ascii_digit).count();
        let stage = number[digits..].strip_prefix("alpha").or_else(|| number[digits..].strip_prefix("beta"));
        digits > 0
            && !number.starts_with('0')
            && (digits == number.len() || stage.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    };
    let kind = |kind: &str| {
        kind.starts_with(|c: char| c.is_ascii_uppercase()) && kind.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let group_version = |group: &str, version: &str| {
        group.len() <= 253 && group.split('.').all(is_dns1123_label) && is_dns1123_label(version)
    };
    match entry.split('/').collect::<Vec<_>>()[..] {
        [version] => core_version(version),
        [version, of_kind] if of_kind.starts_with(|c: char| c.is_ascii_uppercase()) => {
            core_version(version) && kind(of_kind)
        }
        [group, version] => group_version(group, version),
        [group, version, of_kind] => group_version(group, version) && kind(of_kind),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A namespace written on a cluster-scoped object (kustomize keeps one) is no part of its
    /// identity, as the API server ignores it; a namespaced or unknown kind's is.
    #[test]
    fn keys_ignore_a_namespace_on_a_cluster_scoped_object() {
        let object = |api_version: &str, kind: &str| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "a", "namespace": "ns"}});
        assert_eq!(
            ObjectKey::of(&object("rbac.authorization.k8s.io/v1", "ClusterRole")).to_string(),
            "ClusterRole.rbac.authorization.k8s.io a"
        );
        assert_eq!(ObjectKey::of(&object("v1", "ConfigMap")).namespace.as_deref(), Some("ns"));
        assert_eq!(ObjectKey::of(&object("example.com/v1", "Widget")).namespace.as_deref(), Some("ns"));
    }

    /// The order is the one sorting by (phase, owned key) gives, stably, whatever order the
    /// objects come in.
    #[test]
    fn sort_for_apply_orders_by_phase_then_identity_keeping_ties_in_order() {
        let object = |api_version: &str, kind: &str, namespace: Option<&str>, name: &str, document: usize| {
            let mut object = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
            if let Some(ns) = namespace {
                object["metadata"]["namespace"] = json!(ns);
            }
            Manifest { release: "r".into(), source: "t.yaml".into(), document, object, patched_by: Vec::new() }
        };
        let objects = [
            object("apps/v1", "Deployment", Some("b"), "web", 1),
            object("v1", "ConfigMap", Some("a"), "web", 2),
            object("v1", "ConfigMap", None, "web", 3),
            object("example.com/v1", "Widget", None, "w", 4),
            object("v1", "ConfigMap", Some("a"), "web", 5),
            object("rbac.authorization.k8s.io/v1", "ClusterRole", None, "reader", 6),
            object("v1", "Service", Some("a"), "api", 7),
        ];
        for rotation in 0..objects.len() {
            let mut manifests = objects.to_vec();
            manifests.rotate_left(rotation);
            manifests.swap(0, rotation / 2);
            let mut expected = manifests.clone();
            expected.sort_by_cached_key(|m| (phase(m.api_version(), m.kind()), m.key()));
            sort_for_apply(&mut manifests);
            let documents = |ms: &[Manifest]| ms.iter().map(|m| m.document).collect::<Vec<_>>();
            assert_eq!(documents(&manifests), documents(&expected));
        }
    }

    #[test]
    fn phases_follow_design_order() {
        let order = [
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("v1", "Namespace"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("v1", "ServiceAccount"),
            ("v1", "Secret"),
            ("v1", "Service"),
            ("apps/v1", "Deployment"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("example.com/v1", "Widget"),
        ];
        let phases: Vec<Phase> = order.iter().map(|(a, k)| phase(a, k)).collect();
        let mut sorted = phases.clone();
        sorted.sort();
        assert_eq!(phases, sorted);
        assert_eq!(phases.len(), phases.iter().collect::<std::collections::HashSet<_>>().len());
    }

    #[test]
    fn scopes_use_crds_before_builtin_table() {
        let mut scopes = Scopes::default();
        assert!(!scopes.is_namespaced("v1", "Namespace"));
        assert!(scopes.is_namespaced("apps/v1", "Deployment"));
        assert!(scopes.is_namespaced("example.com/v1", "Widget"));
        scopes.learn_crd(&json!({"spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}}}));
        assert!(!scopes.is_namespaced("example.com/v1", "Widget"));
    }

    #[test]
    fn names_are_validated_by_kind() {
        assert_eq!(name_problem("v1", "ConfigMap", "web.config-1"), None);
        assert!(name_problem("v1", "ConfigMap", "Web_Config").is_some());
        assert!(name_problem("v1", "ConfigMap", "").is_some());
        assert!(name_problem("v1", "Namespace", "a.b").is_some());
        assert!(name_problem("v1", "Service", "1web").is_some());
        assert_eq!(name_problem("apps/v1", "Deployment", "1web"), None);
        assert_eq!(name_problem("rbac.authorization.k8s.io/v1", "ClusterRole", "system:reader"), None);
        assert!(name_problem("example.com/v1", "Widget", "a..b").is_some());
        assert!(name_problem("v1", "ConfigMap", &"a".repeat(254)).is_some());
        // A subdomain's parts are not limited to a label's 63 characters (the API server agrees).
        assert_eq!(name_problem("monitoring.coreos.com/v1", "PrometheusRule", &"a".repeat(100)), None);
        assert!(name_problem("v1", "Namespace", &"a".repeat(64)).is_some());
    }

    #[test]
    fn key_display_names_group_and_namespace() {
        let m = Manifest {
            release: "web".into(),
            source: "x".into(),
            document: 1,
            object: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
            patched_by: Vec::new(),
        };
        assert_eq!(m.key().to_string(), "Deployment.apps shop/web");
    }

    #[test]
    fn api_versions_are_group_versions_or_kinds_of_them_as_discovery_lists_them() {
        for entry in [
            "v1",
            "v1/Pod",
            "apps/v1",
            "apps/v1/Deployment",
            "gateway.networking.k8s.io/v1",
            "gateway.networking.k8s.io/v1beta1/HTTPRoute",
            "monitoring.coreos.com/v1/ServiceMonitor",
            "example.com/v2alpha3",
        ] {
            assert!(is_api_version(entry), "{entry}");
        }
        for entry in [
            "",
            "apps",
            "gateway.networking.k8s.io",
            "HTTPRoute",
            "apps/Deployment",
            "gateway.networking.k8s.io/HTTPRoute",
            "monitoring.coreos.com/v1/servicemonitor",
            "Apps/v1",
            "apps/V1",
            "apps/v1/Deployment/x",
            "apps//v1",
            " apps/v1",
            "--api-versions=apps/v1",
            "apps/v1,batch/v1",
            "v01",
            "v1gamma1",
        ] {
            assert!(!is_api_version(entry), "{entry:?}");
        }
    }
}
