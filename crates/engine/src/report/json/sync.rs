//! `weaver sync get -o json` (and `-o yaml`).

use serde::Serialize;

/// `weaver sync get -o json` (and `-o yaml`): EnvironmentSyncs as the controller left them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport<'a> {
    pub schema_version: u32,
    /// Where they were looked for; null with `-A`.
    pub namespace: Option<&'a str>,
    /// Every one listed is Ready at its generation (exit code 0).
    pub ready: bool,
    pub syncs: Vec<SyncEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEntry<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `metadata.creationTimestamp`, RFC 3339.
    pub created: Option<String>,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// The Ready condition's status: `True`, `False` or `Unknown`.
    pub ready: &'a str,
    /// Ready is True and the controller has seen the current generation.
    pub up_to_date: bool,
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    pub reconciling: bool,
    pub stalled: bool,
    pub suspended: bool,
    /// `Automatic` or `Manual`.
    pub approval: weaver_api::environment_sync::Approval,
    pub approved_plan: Option<&'a str>,
    pub url: &'a str,
    /// The commit every selected environment was last applied at.
    pub revision: Option<&'a str>,
    pub attempted_revision: Option<&'a str>,
    pub last_handled_reconcile_at: Option<&'a str>,
    /// `ready/selected`.
    pub environments_ready: Option<&'a str>,
    pub drift: Option<&'a weaver_api::environment_sync::DriftSummary>,
    pub environments: &'a [weaver_api::environment_sync::EnvironmentStatus],
    pub pending_plan: Option<&'a weaver_api::environment_sync::PendingPlan>,
    /// The window that held the last apply back (`spec.windows`), and until when.
    pub held: Option<&'a weaver_api::environment_sync::WindowHold>,
    /// The last auto-promotion (`spec.promotion`) and image update (`spec.imageUpdates`), as
    /// `status.promotion` and `status.imageUpdates`; their outcomes are the `Promoted` and
    /// `ImagesUpdated` conditions.
    pub promotion: Option<&'a weaver_api::environment_sync::PromotionStatus>,
    pub image_updates: Option<&'a weaver_api::environment_sync::ImageUpdatesStatus>,
    /// Every condition, as `status.conditions` has them (Ready, Reconciling, Stalled, Promoted, ImagesUpdated, WatchRefused).
    pub conditions: &'a [weaver_api::environment_sync::Condition],
    pub history: &'a [weaver_api::environment_sync::HistoryEntry],
    /// `status.previews` (`spec.previews`), as `weaver previews list` gives them.
    pub previews: &'a [weaver_api::environment_sync::PreviewStatus],
}

impl<'a> SyncReport<'a> {
    /// `syncs`, each with its state (`weaver_api::environment_sync::state`).
    pub fn new(
        namespace: Option<&'a str>,
        syncs: &'a [(weaver_api::environment_sync::EnvironmentSync, weaver_api::environment_sync::State)],
    ) -> SyncReport<'a> {
        let entries = syncs
            .iter()
            .map(|(sync, state)| {
                let status = sync.status.as_ref();
                let empty: &[_] = &[];
                SyncEntry {
                    namespace: sync.metadata.namespace.as_deref().unwrap_or_default(),
                    name: sync.metadata.name.as_deref().unwrap_or_default(),
                    created: sync.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()),
                    generation: sync.metadata.generation,
                    observed_generation: status.and_then(|s| s.observed_generation),
                    ready: &state.ready,
                    up_to_date: state.up_to_date,
                    reason: state.reason.as_deref(),
                    message: state.message.as_deref(),
                    reconciling: state.reconciling,
                    stalled: state.stalled,
                    suspended: sync.spec.suspend,
                    approval: sync.spec.approval.unwrap_or_default(),
                    approved_plan: sync.spec.approved_plan.as_deref(),
                    url: sync.spec.source.location(),
                    revision: status.and_then(|s| s.last_applied_revision.as_deref()),
                    attempted_revision: status.and_then(|s| s.last_attempted_revision.as_deref()),
                    last_handled_reconcile_at: status.and_then(|s| s.last_handled_reconcile_at.as_deref()),
                    environments_ready: status.and_then(|s| s.environments_ready.as_deref()),
                    drift: status.and_then(|s| s.drift.as_ref()),
                    environments: status.map_or(empty, |s| &s.environments),
                    pending_plan: status.and_then(|s| s.pending_plan.as_ref()),
                    held: status.and_then(|s| s.held.as_ref()),
                    promotion: status.and_then(|s| s.promotion.as_ref()),
                    image_updates: status.and_then(|s| s.image_updates.as_ref()),
                    conditions: status.map_or(&[], |s| &s.conditions),
                    history: status.map_or(&[], |s| &s.history),
                    previews: status.map_or(&[], |s| &s.previews),
                }
            })
            .collect();
        SyncReport {
            schema_version: 1,
            namespace,
            ready: syncs.iter().all(|(_, state)| state.up_to_date),
            syncs: entries,
        }
    }
}

/// `weaver previews list -o json` (and `-o yaml`): the previews (`spec.previews`) of
/// EnvironmentSyncs, as their status says them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewsReport<'a> {
    pub schema_version: u32,
    /// Where the EnvironmentSyncs were looked for; null with `-A`.
    pub namespace: Option<&'a str>,
    /// By the EnvironmentSync's namespace and name, then the preview's name.
    pub previews: Vec<PreviewEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewEntry<'a> {
    /// The EnvironmentSync's namespace and name.
    pub sync_namespace: &'a str,
    pub sync: &'a str,
    /// `status.previews[]` as the controller writes it: the preview's own `namespace` among them.
    #[serde(flatten)]
    pub preview: &'a weaver_api::environment_sync::PreviewStatus,
}

impl<'a> PreviewsReport<'a> {
    /// The previews of `syncs` (sorted by namespace, then name).
    pub fn new(namespace: Option<&'a str>, syncs: &'a [weaver_api::environment_sync::EnvironmentSync]) -> Self {
        let previews = syncs
            .iter()
            .flat_map(|sync| {
                let listed = sync.status.as_ref().map(|s| s.previews.as_slice()).unwrap_or_default();
                listed.iter().map(move |preview| PreviewEntry {
                    sync_namespace: sync.metadata.namespace.as_deref().unwrap_or_default(),
                    sync: sync.metadata.name.as_deref().unwrap_or_default(),
                    preview,
                })
            })
            .collect();
        PreviewsReport { schema_version: 1, namespace, previews }
    }
}
