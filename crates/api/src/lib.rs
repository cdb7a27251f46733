//! The custom resources weaver's controllers serve, as Flux's `api/` module holds its own: their
//! types, the CRDs kube derives from them, and the kstatus conditions they report.

pub mod conditions;
pub mod configmap_sync;
pub mod environment_sync;
pub mod windows;

/// The operator's name: its controllers report Events as it, its chart labels its objects
/// `app.kubernetes.io/name` with it, and its leader Lease bears it (a shard's, `<name>-<shard>`).
pub const OPERATOR_NAME: &str = "configmapsync-operator";
