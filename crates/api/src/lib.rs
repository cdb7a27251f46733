//! The custom resources weaver's controllers serve, as Flux's `api/` module holds its own: their
//! types, the CRDs kube derives from them, and the kstatus conditions they report.

pub mod conditions;
pub mod configmap_sync;
pub mod environment_sync;
pub mod windows;
