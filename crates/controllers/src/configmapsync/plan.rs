//! What one reconcile of a ConfigMapSync should do, decided from what was observed: a pure
//! function, so every rule of the sync (ownership, conflicts, removal, the source going away) is
//! tested without a server. The controller carries the actions out as the tenant's
//! ServiceAccount and reports each target's outcome in the status.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use super::api::ConfigMapSync;

/// Labels that name the ConfigMapSync owning a target. Only ConfigMaps carrying both, with this
/// CR's namespace and name, are ever changed or deleted.
pub const OWNER_NAMESPACE_LABEL: &str = "weaver.example.com/sync-namespace";
pub const OWNER_NAME_LABEL: &str = "weaver.example.com/sync-name";
/// The source's resourceVersion the target was copied from.
pub const SOURCE_VERSION_ANNOTATION: &str = "weaver.example.com/source-resource-version";

/// What the controller observed for one ConfigMapSync.
pub struct Observed<'a> {
    pub sync: &'a ConfigMapSync,
    /// The source ConfigMap, when it exists.
    pub source: Option<&'a ConfigMap>,
    /// Every namespace of the cluster (for the selector and to tell a missing one).
    pub namespaces: &'a [Arc<Namespace>],
    /// Each target namespace as the tenant's ServiceAccount read it (see [`target_namespaces`]);
    /// one not read is taken as empty.
    pub targets: &'a BTreeMap<String, Seen>,
    /// Every ConfigMap carrying this CR's owner labels, wherever it is.
    pub owned: &'a [Arc<ConfigMap>],
}

/// A target as the tenant read it: what the operator could see with its own rights is told in
/// the status only where the tenant could see it too.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// The ConfigMap of the source's name there, if any.
    Readable(Option<Arc<ConfigMap>>),
    /// The API server's answer.
    Forbidden(String),
}

/// How a namespace became a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in `targetNamespaces`: the tenant named it, so it is always reported.
    Named,
    /// Matched by `namespaceSelector` only: reported only where the tenant may read, so a
    /// selector cannot list or probe namespaces the tenant cannot see.
    Selected,
}

/// One step of a reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the target (it does not exist).
    Create(ConfigMap),
    /// Replace an owned target whose content differs from the source (the resourceVersion it
    /// had is kept for an optimistic update).
    Update(ConfigMap),
    /// Delete an owned target in a namespace that is no longer a target.
    Delete { namespace: String, name: String },
}

/// Why a target needs no write this time.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The target equals the source.
    InSync,
    /// A ConfigMap of that name exists without this CR's owner labels: never touched.
    Conflict,
    /// The namespace does not exist (yet).
    NamespaceNotFound,
    /// The namespace is being deleted: a write there would be refused or deleted with it.
    NamespaceTerminating,
    /// The source is gone: the target is left as it is.
    SourceNotFound,
    /// The tenant may not read the target there (the API server's message).
    Forbidden(String),
}

/// The plan for one ConfigMapSync.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Target namespaces, sorted, each with a write to make or the reason none is needed.
    pub targets: BTreeMap<String, Result<Action, Settled>>,
    /// Deletions of owned targets that are no longer wanted.
    pub removals: Vec<Action>,
    /// False when the source is missing: targets are then left as they are.
    pub source_found: bool,
}

/// The namespaces a ConfigMapSync targets: its list plus those its selector matches, never its
/// own namespace (the source lives there).
pub fn target_namespaces(sync: &ConfigMapSync, namespaces: &[Arc<Namespace>]) -> BTreeMap<String, Origin> {
    let own = sync.namespace().unwrap_or_default();
    let mut targets = BTreeMap::new();
    if let Some(selector) = &sync.spec.namespace_selector {
        // An invalid selector (the schema cannot rule out every bad operator) selects nothing.
        if let Ok(selector) = Selector::try_from(selector.clone()) {
            for ns in namespaces.iter().filter(|ns| selector.matches(ns.labels())) {
                targets.insert(ns.name_any(), Origin::Selected);
            }
        }
    }
    targets.extend(sync.spec.target_namespaces.iter().map(|ns| (ns.clone(), Origin::Named)));
    targets.remove(&own);
    targets
}

/// Whether `config_map` carries the owner labels of `sync`.
pub fn is_owned_by(config_map: &ConfigMap, sync: &ConfigMapSync) -> bool {
    let labels = config_map.labels();
    labels.get(OWNER_NAMESPACE_LABEL).map(String::as_str) == sync.namespace().as_deref()
        && labels.get(OWNER_NAME_LABEL).map(String::as_str) == Some(sync.name_any().as_str())
}

/// The target ConfigMap in `namespace`: the source's data and binaryData, labels naming the owner.
pub fn desired_target(sync: &ConfigMapSync, source: &ConfigMap, namespace: &str) -> ConfigMap {
    let mut target = ConfigMap::default();
    target.metadata.name = Some(source.name_any());
    target.metadata.namespace = Some(namespace.to_string());
    target.metadata.labels = Some(BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), "configmapsync-operator".to_string()),
        (OWNER_NAMESPACE_LABEL.to_string(), sync.namespace().unwrap_or_default()),
        (OWNER_NAME_LABEL.to_string(), sync.name_any()),
    ]));
    target.metadata.annotations =
        Some(BTreeMap::from([(SOURCE_VERSION_ANNOTATION.to_string(), source.resource_version().unwrap_or_default())]));
    target.data = source.data.clone();
    target.binary_data = source.binary_data.clone();
    target.immutable = source.immutable;
    target
}

/// Whether a live owned target already says what `desired` says (what the operator writes:
/// content, owner labels and the source version).
fn in_sync(live: &ConfigMap, desired: &ConfigMap) -> bool {
    let empty_if_none = |m: &Option<BTreeMap<String, String>>| m.clone().unwrap_or_default();
    let subset = |want: &Option<BTreeMap<String, String>>, have: &Option<BTreeMap<String, String>>| {
        let have = empty_if_none(have);
        empty_if_none(want).iter().all(|(k, v)| have.get(k) == Some(v))
    };
    empty_if_none(&live.data) == empty_if_none(&desired.data)
        && live.binary_data.clone().unwrap_or_default() == desired.binary_data.clone().unwrap_or_default()
        && subset(&desired.metadata.labels, &live.metadata.labels)
        && subset(&desired.metadata.annotations, &live.metadata.annotations)
}

/// Decides every write of one reconcile.
pub fn plan(observed: &Observed) -> Plan {
    let sync = observed.sync;
    // Each existing namespace, and whether it is being deleted.
    let existing: BTreeMap<String, bool> = observed
        .namespaces
        .iter()
        .map(|ns| {
            let terminating = ns.metadata.deletion_timestamp.is_some()
                || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
            (ns.name_any(), terminating)
        })
        .collect();
    let targets = target_namespaces(sync, observed.namespaces);
    let live_in = |namespace: &str| match observed.targets.get(namespace) {
        Some(Seen::Readable(live)) => live.as_deref(),
        _ => None,
    };

    let mut plan = Plan { source_found: observed.source.is_some(), ..Plan::default() };
    for (namespace, origin) in &targets {
        if let Some(Seen::Forbidden(message)) = observed.targets.get(namespace) {
            if *origin == Origin::Named {
                plan.targets.insert(namespace.clone(), Err(Settled::Forbidden(message.clone())));
            }
            continue;
        }
        let decision = if !existing.contains_key(namespace) {
            Err(Settled::NamespaceNotFound)
        } else if existing[namespace] {
            Err(Settled::NamespaceTerminating)
        } else {
            match (observed.source, live_in(namespace)) {
                (_, Some(live)) if !is_owned_by(live, sync) => Err(Settled::Conflict),
                // Without a source the targets stay as they are.
                (None, _) => Err(Settled::SourceNotFound),
                (Some(source), None) => Ok(Action::Create(desired_target(sync, source, namespace))),
                (Some(source), Some(live)) => {
                    let mut desired = desired_target(sync, source, namespace);
                    if in_sync(live, &desired) {
                        Err(Settled::InSync)
                    } else {
                        desired.metadata.resource_version = live.resource_version();
                        Ok(Action::Update(desired))
                    }
                }
            }
        };
        plan.targets.insert(namespace.clone(), decision);
    }
    plan.removals = observed
        .owned
        .iter()
        .filter(|cm| is_owned_by(cm, sync) && !targets.contains_key(&cm.namespace().unwrap_or_default()))
        .map(|cm| delete(cm))
        .collect();
    plan
}

/// The deletion of a target.
pub fn delete(target: &ConfigMap) -> Action {
    Action::Delete { namespace: target.namespace().unwrap_or_default(), name: target.name_any() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configmapsync::api::{ConfigMapSyncSpec, SourceRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn sync(targets: &[&str], selector: Option<BTreeMap<String, String>>) -> ConfigMapSync {
        let mut sync = ConfigMapSync::new(
            "share",
            ConfigMapSyncSpec {
                source: SourceRef { name: "settings".into() },
                target_namespaces: targets.iter().map(|t| t.to_string()).collect(),
                namespace_selector: selector
                    .map(|labels| LabelSelector { match_labels: Some(labels), ..Default::default() }),
                service_account_name: "syncer".into(),
            },
        );
        sync.metadata.namespace = Some("team".into());
        sync
    }

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        ns.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        ns
    }

    fn config_map(namespace: &str, data: &[(&str, &str)], version: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("settings".into());
        cm.metadata.namespace = Some(namespace.into());
        cm.metadata.resource_version = Some(version.into());
        cm.data = Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        cm
    }

    /// Plans as the controller observes: each target read as the tenant (those in `forbidden`
    /// refused), the owned ones found by their labels, among `existing` ConfigMaps.
    fn plan_seeing(
        sync: &ConfigMapSync,
        source: Option<&ConfigMap>,
        existing: &[ConfigMap],
        forbidden: &[&str],
    ) -> Plan {
        let namespaces = namespaces();
        let targets = target_namespaces(sync, &namespaces)
            .into_keys()
            .map(|ns| {
                let seen = if forbidden.contains(&ns.as_str()) {
                    Seen::Forbidden("configmaps is forbidden".into())
                } else {
                    Seen::Readable(
                        existing
                            .iter()
                            .find(|cm| cm.namespace().as_deref() == Some(ns.as_str()))
                            .cloned()
                            .map(Arc::new),
                    )
                };
                (ns, seen)
            })
            .collect();
        let owned: Vec<Arc<ConfigMap>> =
            existing.iter().filter(|cm| is_owned_by(cm, sync)).cloned().map(Arc::new).collect();
        plan(&Observed { sync, source, namespaces: &namespaces, targets: &targets, owned: &owned })
    }

    fn namespaces() -> Vec<Arc<Namespace>> {
        let mut leaving = namespace("leaving", &[]);
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        [
            namespace("team", &[]),
            namespace("dev", &[("team", "a")]),
            namespace("qa", &[("team", "a")]),
            namespace("other", &[]),
            leaving,
        ]
        .into_iter()
        .map(Arc::new)
        .collect()
    }

    #[test]
    fn missing_targets_are_created_with_the_source_content_and_owner_labels() {
        let sync = sync(&["dev", "qa"], None);
        let source = config_map("team", &[("level", "debug")], "7");
        let plan = plan_seeing(&sync, Some(&source), &[], &[]);
        assert_eq!(plan.targets.len(), 2);
        let Ok(Action::Create(target)) = &plan.targets["dev"] else { panic!("{plan:?}") };
        assert_eq!(target.data, source.data);
        assert_eq!(target.namespace().as_deref(), Some("dev"));
        assert!(is_owned_by(target, &sync));
        assert_eq!(target.annotations()[SOURCE_VERSION_ANNOTATION], "7");
    }

    #[test]
    fn an_owned_target_in_sync_is_left_alone_and_a_changed_one_is_updated() {
        let sync = sync(&["dev", "qa"], None);
        let source = config_map("team", &[("level", "debug")], "7");
        let mut dev = desired_target(&sync, &source, "dev");
        dev.metadata.resource_version = Some("11".into());
        let mut qa = dev.clone();
        qa.metadata.namespace = Some("qa".into());
        qa.data = Some(BTreeMap::from([("level".into(), "edited by hand".into())]));
        let plan = plan_seeing(&sync, Some(&source), &[dev, qa], &[]);
        assert_eq!(plan.targets["dev"], Err(Settled::InSync));
        let Ok(Action::Update(update)) = &plan.targets["qa"] else { panic!("{plan:?}") };
        assert_eq!(update.data, source.data);
        assert_eq!(update.resource_version().as_deref(), Some("11"), "an optimistic update");
    }

    #[test]
    fn a_foreign_configmap_is_a_conflict_and_never_written() {
        let sync = sync(&["dev"], None);
        let source = config_map("team", &[("level", "debug")], "7");
        let foreign = config_map("dev", &[("mine", "yes")], "3");
        let plan = plan_seeing(&sync, Some(&source), &[foreign], &[]);
        assert_eq!(plan.targets["dev"], Err(Settled::Conflict));
        // Another ConfigMapSync's target is foreign too.
        let mut other = desired_target(&sync, &source, "dev");
        other.labels_mut().insert(OWNER_NAME_LABEL.into(), "someone-else".into());
        let plan = plan_for(&sync, Some(&source), &[other]);
        assert_eq!(plan.targets["dev"], Err(Settled::Conflict));
        assert!(plan.removals.is_empty());
    }

    fn plan_for(sync: &ConfigMapSync, source: Option<&ConfigMap>, existing: &[ConfigMap]) -> Plan {
        plan_seeing(sync, source, existing, &[])
    }

    #[test]
    fn the_selector_adds_namespaces_and_a_dropped_target_is_deleted() {
        let sync = sync(&[], Some(BTreeMap::from([("team".into(), "a".into())])));
        let source = config_map("team", &[("level", "debug")], "7");
        let stale = desired_target(&sync, &source, "other");
        let plan = plan_for(&sync, Some(&source), &[stale]);
        assert_eq!(plan.targets.keys().collect::<Vec<_>>(), ["dev", "qa"]);
        assert_eq!(plan.removals, [Action::Delete { namespace: "other".into(), name: "settings".into() }]);
    }

    #[test]
    fn a_missing_or_terminating_namespace_is_reported_and_the_own_namespace_is_never_a_target() {
        let sync = sync(&["team", "later", "leaving"], None);
        let source = config_map("team", &[], "7");
        let plan = plan_for(&sync, Some(&source), &[]);
        assert_eq!(plan.targets.keys().collect::<Vec<_>>(), ["later", "leaving"]);
        assert_eq!(plan.targets["later"], Err(Settled::NamespaceNotFound));
        assert_eq!(plan.targets["leaving"], Err(Settled::NamespaceTerminating));
    }

    #[test]
    fn what_the_tenant_may_not_read_is_forbidden_if_named_and_unmentioned_if_only_selected() {
        let sync = sync(&["dev"], Some(BTreeMap::from([("team".into(), "a".into())])));
        let source = config_map("team", &[("level", "debug")], "7");
        // The operator sees a foreign ConfigMap in qa and dev; the tenant may read neither.
        let existing = [config_map("dev", &[], "1"), config_map("qa", &[], "2")];
        let plan = plan_seeing(&sync, Some(&source), &existing, &["dev", "qa"]);
        assert_eq!(plan.targets.keys().collect::<Vec<_>>(), ["dev"], "qa was only selected: not reported");
        assert_eq!(plan.targets["dev"], Err(Settled::Forbidden("configmaps is forbidden".into())), "not Conflict");
    }

    #[test]
    fn without_a_source_targets_stay_as_they_are() {
        let sync = sync(&["dev", "qa"], None);
        let source = config_map("team", &[("level", "debug")], "7");
        let dev = desired_target(&sync, &source, "dev");
        let plan = plan_for(&sync, None, &[dev]);
        assert!(!plan.source_found);
        assert!(plan.targets.values().all(|d| d == &Err(Settled::SourceNotFound)), "{plan:?}");
        assert!(plan.removals.is_empty());
    }
}
