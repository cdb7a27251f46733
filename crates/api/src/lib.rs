//! The custom resources weaver's controllers serve, as Flux's `api/` module holds its own: their
//! types, the CRDs kube derives from them, and the kstatus conditions they report. The types are
//! the storage version's (`v1beta1`); `v1alpha1` holds the older version's schema and the
//! conversion between them.

pub mod conditions;
pub mod configmap_sync;
pub mod environment_sync;
mod open_enum;
pub mod v1alpha1;
pub mod windows;

/// The operator's name: its controllers report Events and write as it (the field manager, and
/// the `app.kubernetes.io/managed-by` label of ConfigMapSync targets), and its leader Lease bears
/// it (a shard's, `<name>-<shard>`). Not the chart's (`charts/weaver`) or its release's name:
/// renaming it would leave existing targets and Leases to no one.
pub const OPERATOR_NAME: &str = "configmapsync-operator";

/// The API group of every weaver resource.
pub const GROUP: &str = "weaver.example.com";
