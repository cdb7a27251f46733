//! `weaver.example.com/v1beta1` ConfigMapSync, the storage version: the API types, with the schema validation a
//! real API server enforces (names are DNS labels, a source and a ServiceAccount are required,
//! at least one way of naming targets).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::typed_reasons;
use crate::open_enum::open_enum;

/// A DNS-1123 label, as Kubernetes validates namespace and ConfigMap-in-namespace names.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The ConfigMapSync CRD's name.
pub const CRD_NAME: &str = "configmapsyncs.weaver.example.com";

/// Copies the ConfigMap `source` into every target namespace, writing as `serviceAccountName`.
// Each `printcolumn(...)` repeats `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "weaver.example.com",
    version = "v1beta1",
    kind = "ConfigMapSync",
    plural = "configmapsyncs",
    namespaced,
    shortname = "cms",
    shortname = "cmsync",
    // Never pruned by weaver (as Helm never deletes a chart's CRDs): a chart that drops it, or
    // `weaver uninstall`, would otherwise delete every resource of it with it.
    annotation("weaver.example.com/prune", "disabled"),
    status = "ConfigMapSyncStatus",
    doc = "Copies a ConfigMap into other namespaces, as a ServiceAccount whose RBAC bounds every write",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Targets In Sync", type_ = "string", json_path = ".status.targetsInSync"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("anyOf" = [{"required": ["targetNamespaces"]}, {"required": ["namespaceSelector"]}]))]
pub struct ConfigMapSyncSpec {
    /// The ConfigMap to copy, in the ConfigMapSync's own namespace.
    pub source: SourceRef,
    /// Namespaces to copy the ConfigMap into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1), inner(regex(pattern = DNS_LABEL), length(min = 1, max = 63)))]
    pub target_namespaces: Vec<String>,
    /// Namespaces whose labels match are targets too, including ones created later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "label_selector_schema")]
    pub namespace_selector: Option<LabelSelector>,
    /// The ServiceAccount, in the ConfigMapSync's namespace, whose permissions bound every write.
    #[schemars(regex(pattern = DNS_LABEL), length(min = 1, max = 63))]
    pub service_account_name: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SourceRef {
    /// The source ConfigMap's name.
    #[schemars(
        regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
}

/// What the operator last observed, following the API conventions: conditions (no phases),
/// `observedGeneration`, and one line per target.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapSyncStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True when every target is in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        schema_with = "crate::conditions::condition_list_schema",
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"])
    )]
    pub conditions: Vec<Condition>,
    /// One entry per target namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["namespace"]))]
    pub targets: Vec<TargetStatus>,
    /// `synced/total`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets_in_sync: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct TargetStatus {
    pub namespace: String,
    pub synced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<TargetReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

open_enum!(
    /// Why a target is or is not in sync.
    pub TargetReason {
        Synced => "Synced",
        /// The account may not write the target (its RBAC).
        Forbidden => "Forbidden",
        /// A ConfigMap of that name in the target is not the operator's.
        Conflict => "Conflict",
        NamespaceNotFound => "NamespaceNotFound",
        NamespaceTerminating => "NamespaceTerminating",
        SourceNotFound => "SourceNotFound",
        Failed => "Failed",
    }
);

open_enum!(
    /// The reasons of a ConfigMapSync's Ready (and Stalled) condition, and of its Events that
    /// are not a target's ([`TargetReason`]).
    pub SyncReason {
        /// Every target is in sync.
        Synced => "Synced",
        /// Some targets are not; each says why in `status.targets`.
        TargetsNotSynced => "TargetsNotSynced",
        ServiceAccountNotFound => "ServiceAccountNotFound",
        /// The API server refused the operator a token for the account.
        TokenRequestFailed => "TokenRequestFailed",
        /// The account may not read the source.
        SourceForbidden => "SourceForbidden",
        SourceNotFound => "SourceNotFound",
        /// Being deleted, a target cannot be.
        CleanupFailed => "CleanupFailed",
        /// An Event's: a ConfigMap no longer a target cannot be deleted.
        DeleteFailed => "DeleteFailed",
    }
);

typed_reasons!(SyncReason, TargetReason);

/// An optional `meta/v1` LabelSelector's schema, as the API server publishes it (written out for
/// the reason [`crate::conditions::condition_list_schema`] gives).
fn label_selector_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "nullable": true,
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "items": {
                    "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
                    "properties": {
                        "key": {
                            "description": "key is the label key that the selector applies to.",
                            "type": "string"
                        },
                        "operator": {
                            "description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.",
                            "type": "string"
                        },
                        "values": {
                            "description": "values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty. This array is replaced during a strategic merge patch.",
                            "items": {"type": "string"},
                            "type": "array"
                        }
                    },
                    "required": ["key", "operator"],
                    "type": "object"
                },
                "type": "array"
            },
            "matchLabels": {
                "additionalProperties": {"type": "string"},
                "description": "matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed.",
                "type": "object"
            }
        },
        "type": "object"
    })
}
