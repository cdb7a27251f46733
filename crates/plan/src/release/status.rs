//! `weaver status`: the health of each object of each release's last applied revision (the
//! newest, deployed or failed: a failed wait left its objects), as the cluster has it now. The release record says which objects a release has (nothing is
//! rendered, no age key is needed); what healthy means for each is `weaver_cluster::ready`'s
//! (kstatus's conventions, the environment's CEL `healthChecks`), handed in by the caller.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::release::drift::{Found, RecordedObject, Revision, recorded_objects, unserved};
use crate::release::record::{Record, Status};
use weaver_core::manifest::{ObjectKey, Owned};
use weaver_project::Release;

/// How an object is doing; ordered from best to worst, so a release is as healthy as its
/// worst object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    Healthy,
    Progressing,
    /// A health rule could not say (its CEL expression could not be evaluated).
    Unknown,
    /// It will not become healthy without a change, or it is gone.
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectHealth {
    pub api_version: String,
    pub key: ObjectKey,
    pub health: Health,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// The latest `lastTransitionTime` of its live conditions (RFC 3339): when its state last
    /// changed, as far as the object says.
    pub changed_at: Option<String>,
    /// The live objects it owns (their `ownerReferences` name it), each with its own: a
    /// Deployment's ReplicaSets and their Pods. Empty unless the caller listed them.
    pub dependents: Vec<ObjectHealth>,
}

/// How deep a tree of dependents goes: Deployment, ReplicaSet, Pod, and a level to spare. A
/// cycle of owner references (which the garbage collector would refuse) ends here too.
pub const DEPENDENT_DEPTH: usize = 4;

/// What `owner` owns, judged by `health_of`, down to [`DEPENDENT_DEPTH`].
fn dependents(
    owner: &Value,
    owned: &Owned,
    health_of: &impl Fn(&Value) -> (Health, Option<String>),
    depth: usize,
) -> Vec<ObjectHealth> {
    let uid = owner.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let children = if depth < DEPENDENT_DEPTH { owned.get(uid).map(Vec::as_slice) } else { None };
    let mut found: Vec<ObjectHealth> = children
        .unwrap_or_default()
        .iter()
        .map(|child| {
            let (health, reason) = health_of(child);
            ObjectHealth {
                api_version: child.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                key: ObjectKey::of(child),
                health,
                reason,
                changed_at: last_transition(child),
                dependents: dependents(child, owned, health_of, depth + 1),
            }
        })
        .collect();
    found.sort_by(|a, b| (&a.key.kind, &a.key.name).cmp(&(&b.key.kind, &b.key.name)));
    found
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseHealth {
    pub name: String,
    pub namespace: String,
    /// The environment's `installed`: a release that is not installed and has no record is as
    /// it should be.
    pub installed: bool,
    /// The last applied revision, and whether it was deployed or failed; None when there is
    /// none.
    pub revision: Option<(Revision, Status)>,
    /// The revision's objects in apply order.
    pub objects: Vec<ObjectHealth>,
}

impl ReleaseHealth {
    /// The worst of its objects' health; None without objects.
    pub fn health(&self) -> Option<Health> {
        self.objects.iter().map(|o| o.health).max()
    }
}

/// The health of the selected releases of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub environment: String,
    /// The kubeconfig context and server that were read.
    pub context: String,
    pub server: String,
    pub releases: Vec<ReleaseHealth>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub healthy: usize,
    pub progressing: usize,
    pub unknown: usize,
    pub failed: usize,
    pub releases_without_record: usize,
}

impl Report {
    /// The worst health of any object: healthy when there are none.
    pub fn health(&self) -> Health {
        self.releases.iter().filter_map(ReleaseHealth::health).max().unwrap_or(Health::Healthy)
    }

    pub fn summary(&self) -> Summary {
        let objects = || self.releases.iter().flat_map(|r| &r.objects);
        let count = |health| objects().filter(|o| o.health == health).count();
        Summary {
            healthy: count(Health::Healthy),
            progressing: count(Health::Progressing),
            unknown: count(Health::Unknown),
            failed: count(Health::Failed),
            releases_without_record: self.releases.iter().filter(|r| r.revision.is_none()).count(),
        }
    }
}

/// The health of the objects of one release's `record`. `place` says where the cluster keeps a
/// recorded object (as for drift: `Some(namespace)`, None when its kind is not served);
/// `health_of` judges a live object, and each one's dependents among `owned`.
pub fn release_health(
    release: &Release,
    record: Option<&Record>,
    live: &HashMap<ObjectKey, &Value>,
    owned: &Owned,
    place: impl Fn(&Value) -> Option<Option<String>>,
    health_of: impl Fn(&Value) -> (Health, Option<String>),
) -> ReleaseHealth {
    let mut health = ReleaseHealth {
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        installed: release.installed,
        revision: record.map(|r| (Revision::of(r), r.status)),
        objects: Vec::new(),
    };
    for recorded in record.into_iter().flat_map(|r| recorded_objects(r, live, &place)) {
        let RecordedObject { api_version, key, live, .. } = recorded;
        let ((state, reason), dependents, changed_at) = match live {
            Found::Unserved => ((Health::Failed, Some(unserved(&api_version, &key.kind))), Vec::new(), None),
            Found::Missing => {
                ((Health::Failed, Some("not found: deleted since it was applied".to_string())), Vec::new(), None)
            }
            Found::Live(object) => {
                (health_of(object), dependents(object, owned, &health_of, 1), last_transition(object))
            }
        };
        health.objects.push(ObjectHealth { api_version, key, health: state, reason, changed_at, dependents });
    }
    health
}

/// The latest `lastTransitionTime` of `object`'s `status.conditions`.
fn last_transition(object: &Value) -> Option<String> {
    let conditions = object.pointer("/status/conditions").and_then(Value::as_array)?;
    let times = conditions.iter().filter_map(|c| c.get("lastTransitionTime").and_then(Value::as_str));
    times.filter_map(|t| t.parse::<jiff::Timestamp>().ok().map(|parsed| (parsed, t))).max().map(|(_, t)| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::drift::tests::release;
    use serde_json::json;
    use weaver_core::manifest::owned_by;

    #[test]
    fn each_recorded_object_is_judged_and_missing_ones_fail() {
        let manifests = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}}),
        ];
        let record = Record::of_manifests(manifests.clone());
        let live: HashMap<ObjectKey, &Value> = manifests[..2].iter().map(|m| (ObjectKey::of(m), m)).collect();
        let place = |m: &Value| (m["kind"] != "Widget").then(|| Some("shop".to_string()));
        let judge = |o: &Value| match o["kind"].as_str() {
            Some("Deployment") => (Health::Progressing, Some("1 of 3 replicas updated".to_string())),
            _ => (Health::Healthy, None),
        };
        let health = release_health(&release("web"), Some(&record), &live, &Owned::new(), place, judge);
        let states: Vec<(&str, Health)> = health.objects.iter().map(|o| (o.key.name.as_str(), o.health)).collect();
        assert_eq!(states, [("settings", Health::Healthy), ("web", Health::Progressing), ("w", Health::Failed)]);
        assert_eq!(health.objects[2].reason.as_deref(), Some("the cluster does not serve example.com/v1 Widget"));
        assert_eq!(health.health(), Some(Health::Failed));

        let gone: HashMap<ObjectKey, &Value> = HashMap::new();
        let health = release_health(&release("web"), Some(&record), &gone, &Owned::new(), place, judge);
        assert_eq!(health.objects[0].reason.as_deref(), Some("not found: deleted since it was applied"));
        let none = release_health(&release("web"), None, &live, &Owned::new(), place, judge);
        assert!(none.revision.is_none() && none.objects.is_empty() && none.health().is_none());
    }

    #[test]
    fn dependents_hang_under_their_owners_by_uid() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1"}});
        let record = Record::of_manifests(vec![deployment.clone()]);
        let live: HashMap<ObjectKey, &Value> = [(ObjectKey::of(&deployment), &deployment)].into_iter().collect();
        let owned_by_uid = |kind: &str, name: &str, uid: &str, owner: &str| {
            json!({"apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" }, "kind": kind,
                "metadata": {"name": name, "namespace": "shop", "uid": uid, "ownerReferences": [{"uid": owner}]}})
        };
        let others = vec![
            owned_by_uid("ReplicaSet", "web-7d", "r1", "d1"),
            owned_by_uid("Pod", "web-7d-b", "p2", "r1"),
            owned_by_uid("Pod", "web-7d-a", "p1", "r1"),
            owned_by_uid("ReplicaSet", "loop", "l1", "l1"),
            owned_by_uid("Pod", "stranger", "s1", "x"),
        ];
        let owned = owned_by(&others);
        let place = |_: &Value| Some(Some("shop".to_string()));
        let judge = |o: &Value| match o["kind"].as_str() {
            Some("Pod") => (Health::Progressing, Some("not ready".to_string())),
            _ => (Health::Healthy, None),
        };
        let health = release_health(&release("web"), Some(&record), &live, &owned, place, judge);
        let web = &health.objects[0];
        let names = |o: &ObjectHealth| o.dependents.iter().map(|d| d.key.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(web), ["web-7d"]);
        assert_eq!(names(&web.dependents[0]), ["web-7d-a", "web-7d-b"], "sorted, the stranger left out");
        assert_eq!(web.dependents[0].dependents[0].health, Health::Progressing);
        // An object owning itself ends at the depth limit instead of looping.
        let looped = dependents(&others[3], &owned, &judge, 1);
        assert_eq!(looped.len(), 1);
    }

    #[test]
    fn an_object_changed_when_its_latest_condition_did() {
        let object = json!({"status": {"conditions": [
            {"type": "Available", "status": "True", "lastTransitionTime": "2026-11-26T10:20:00Z"},
            {"type": "Progressing", "status": "True", "lastTransitionTime": "2026-11-26T09:00:00Z"},
            {"type": "Odd", "status": "True", "lastTransitionTime": "not a time"},
        ]}});
        assert_eq!(last_transition(&object).as_deref(), Some("2026-11-26T10:20:00Z"));
        assert_eq!(last_transition(&json!({"data": {}})), None);
    }

    #[test]
    fn a_report_is_as_healthy_as_its_worst_object() {
        let object = |health| ObjectHealth {
            api_version: "v1".into(),
            key: ObjectKey { group: String::new(), kind: "ConfigMap".into(), namespace: None, name: "c".into() },
            health,
            reason: None,
            changed_at: None,
            dependents: Vec::new(),
        };
        let mut report =
            Report { environment: "dev".into(), context: String::new(), server: String::new(), releases: vec![] };
        assert_eq!(report.health(), Health::Healthy);
        let release = |objects| ReleaseHealth {
            name: "web".into(),
            namespace: "shop".into(),
            installed: true,
            revision: None,
            objects,
        };
        report.releases = vec![release(vec![object(Health::Healthy), object(Health::Progressing)])];
        assert_eq!(report.health(), Health::Progressing);
        report.releases.push(release(vec![object(Health::Unknown)]));
        assert_eq!(report.health(), Health::Unknown);
        report.releases.push(release(vec![object(Health::Failed)]));
        assert_eq!(report.health(), Health::Failed);
        let summary = report.summary();
        assert_eq!((summary.healthy, summary.progressing, summary.unknown, summary.failed), (1, 1, 1, 1));
        assert_eq!(summary.releases_without_record, 3);
    }
}
