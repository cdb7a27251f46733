//! The JSON reports (`-o json`) of `diff`, `drift`, `apply` and `rollback`, `history`, `changed`,
//! `envs`, `status`, `sync` and fleets, a file each. Their schemas are documented in the book (docs/src/reference/json-output.md,
//! and docs/src/concepts/records.md for history): these types are that schema, so fields may
//! be added within a schema version, never renamed or removed.

mod apply;
mod changed;
mod diff;
mod drift;
mod envs;
mod fleet;
mod history;
mod status;
mod sync;

pub use apply::{ApplyHelm, ApplyHook, ApplyObject, ApplyRelease, ApplyReport};
pub use changed::{ChangedBase, ChangedHead, ChangedRelease, ChangedReport};
pub use diff::{DiffAdoption, DiffHook, DiffObject, DiffReport, LineCounts};
pub use drift::{Cluster, DriftObject, DriftRelease, DriftReport, DriftRevision};
pub use envs::{EnvsEnvironment, EnvsRelease, EnvsReport};
pub use fleet::{
    AnyFleetReport, FleetApplyEnvironment, FleetApplyState, FleetApplySummary, FleetCommand, FleetEnvironment,
    FleetReport, FleetSummary,
};
pub use history::{HistoryReport, HistoryRevision};
pub use status::{StatusObject, StatusRelease, StatusReport, StatusRevision};
pub use sync::{PreviewEntry, PreviewsReport, SyncEntry, SyncReport};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// An object as every report names it: `apiVersion`, `kind`, `namespace` (null for
/// cluster-scoped kinds) and `name`, in that order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity<'a> {
    pub api_version: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    pub name: Cow<'a, str>,
}

impl<'a> ObjectIdentity<'a> {
    fn new(api_version: &'a str, key: &'a weaver_core::manifest::ObjectKey) -> Self {
        ObjectIdentity {
            api_version: api_version.into(),
            kind: (&key.kind).into(),
            namespace: key.namespace.as_deref().map(Cow::Borrowed),
            name: (&key.name).into(),
        }
    }
}

/// Pretty JSON with a final newline.
pub fn to_text(report: &impl Serialize) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}

/// The commit and dirtiness a report names, from the repository's provenance.
fn commit_of(provenance: Option<&weaver_git::Provenance>) -> (Option<std::borrow::Cow<'_, str>>, Option<bool>) {
    (provenance.map(|p| std::borrow::Cow::Borrowed(p.commit.as_str())), provenance.map(|p| p.dirty))
}
