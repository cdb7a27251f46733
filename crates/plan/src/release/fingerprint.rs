//! What a judgment of a release read, summed up in a [`Fingerprint`], so that a reader that keeps
//! judgments between reads of one environment (`weaver ui`'s page views, `action::judgments`)
//! judges a release's plan, health or drift again only when something it read changed:
//! - the release's record: its revision, status and time (a record's objects never change once
//!   written; a new apply writes a new revision);
//! - each live object it found, by its uid and resourceVersion (the API server changes the
//!   latter with every write), and, for health, the dependents under it;
//! - for a plan, the rendered objects themselves: a Helm chart's `lookup` can render
//!   differently from one view to the next.
//!
//! The environment's files (releases, health checks, ignore rules) are not in it: the render
//! that holds these judgments is dropped with them when any file changes (`action::renders`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use super::drift::{Found, recorded_objects};
use super::record::Record;
use weaver_core::manifest::ObjectKey;
use weaver_core::manifest::Owned;

/// What a judgment of one release read, hashed.
pub struct Fingerprint(DefaultHasher);

impl Fingerprint {
    /// Starts with the release's record (none: a release never applied).
    pub fn of(record: Option<&Record>) -> Fingerprint {
        let mut hasher = DefaultHasher::new();
        record.map(|r| (r.revision, r.status.as_str(), &r.time, &r.commit, r.manifests.len())).hash(&mut hasher);
        Fingerprint(hasher)
    }

    /// A live object, or none found.
    pub fn live(&mut self, object: Option<&Value>) {
        match object {
            Some(object) => {
                1u8.hash(&mut self.0);
                self.0.write_u64(identity(object));
            }
            None => 0u8.hash(&mut self.0),
        }
    }

    /// What a record's object was found as: not served, missing, or live.
    pub fn found(&mut self, found: &Found) {
        match found {
            Found::Unserved => 2u8.hash(&mut self.0),
            Found::Missing => self.live(None),
            Found::Live(object) => self.live(Some(object)),
        }
    }

    /// Anything else read (the Helm release a plan adopts from).
    pub fn add(&mut self, read: impl Hash) {
        read.hash(&mut self.0);
    }

    /// An object's whole content.
    pub fn content(&mut self, object: &Value) {
        object.hash(&mut self.0);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// What a judgment of a release's health or drift reads: its record, each object the record
/// names as found in `live` (`place`d as [`recorded_objects`] places it), and, with `owned`,
/// what each owns down to `depth` levels (the dependents health shows).
pub fn of_recorded(
    record: Option<&Record>,
    live: &HashMap<ObjectKey, &Value>,
    place: impl Fn(&Value) -> Option<Option<String>>,
    owned: Option<(&Owned, usize)>,
) -> u64 {
    let mut fingerprint = Fingerprint::of(record);
    for recorded in record.into_iter().flat_map(|r| recorded_objects(r, live, &place)) {
        fingerprint.found(&recorded.live);
        if let (Found::Live(object), Some((owned, depth))) = (recorded.live, owned) {
            fingerprint.0.write_u64(dependents(object, owned, depth));
        }
    }
    fingerprint.finish()
}

/// What changes with every write to a live object: its uid and resourceVersion; all of it
/// where it has no resourceVersion.
fn identity(object: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    // Looked up directly, not by JSON pointer: this runs for each of thousands of objects a view.
    let metadata = object.get("metadata");
    let at = |field| metadata.and_then(|m| m.get(field)).and_then(Value::as_str);
    match at("resourceVersion") {
        Some(version) => (at("uid"), version).hash(&mut hasher),
        None => object.hash(&mut hasher),
    }
    hasher.finish()
}

/// The identities of what `owner` owns, down to `depth` levels, in whatever order the
/// listing gave them (a sum: the same dependents in another order sum the same).
fn dependents(owner: &Value, owned: &Owned, depth: usize) -> u64 {
    let uid = owner.get("metadata").and_then(|m| m.get("uid")).and_then(Value::as_str).unwrap_or_default();
    let children = owned.get(uid).filter(|_| depth > 0).map(Vec::as_slice).unwrap_or_default();
    children.iter().fold(children.len() as u64, |sum, child| {
        let below = dependents(child, owned, depth - 1);
        sum.wrapping_add(identity(child).rotate_left(1) ^ below)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, version: &str, owner: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "uid": format!("uid-{name}"),
            "resourceVersion": version, "ownerReferences": [{"uid": owner}]}})
    }

    /// The fingerprint of health's reads of a release that applied Deployment `web`, live
    /// as `deployment`, with `dependents` listed.
    fn health_read(deployment: &Value, dependents: &[Value]) -> u64 {
        let manifest =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}});
        let record = Record::of_manifests(vec![manifest]);
        let live: HashMap<ObjectKey, &Value> = [(ObjectKey::of(deployment), deployment)].into();
        let owned = weaver_core::manifest::owned_by(dependents);
        of_recorded(Some(&record), &live, |_| Some(Some("shop".to_string())), Some((&owned, 4)))
    }

    #[test]
    fn a_write_to_an_object_or_to_what_it_owns_changes_the_fingerprint_and_listing_order_does_not() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "resourceVersion": "5"}});
        let replicas = pod("web-1", "7", "uid-web");
        let (a, b) = (pod("a", "8", "uid-web-1"), pod("b", "9", "uid-web-1"));
        let before = health_read(&deployment, &[replicas.clone(), a.clone(), b.clone()]);
        assert_eq!(before, health_read(&deployment, &[b.clone(), replicas.clone(), a.clone()]));
        let written = pod("b", "10", "uid-web-1");
        assert_ne!(before, health_read(&deployment, &[replicas.clone(), a.clone(), written]));
        assert_ne!(before, health_read(&deployment, &[replicas.clone(), a.clone()]), "a Pod gone");
        let mut deployment_written = deployment.clone();
        deployment_written["metadata"]["resourceVersion"] = json!("6");
        assert_ne!(before, health_read(&deployment_written, &[replicas.clone(), a.clone(), b.clone()]));
        let elsewhere = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "other", "uid": "uid-web", "resourceVersion": "5"}});
        assert_ne!(before, health_read(&elsewhere, &[replicas, a, b]), "not found where the record has it");
    }

    #[test]
    fn a_record_of_another_revision_or_status_changes_the_fingerprint() {
        use crate::release::record::Status;
        let record = |revision, status| Record { revision, status, ..Record::of_manifests(Vec::new()) };
        let print = |record: &Record| Fingerprint::of(Some(record)).finish();
        let deployed = print(&record(3, Status::Deployed));
        assert_eq!(deployed, print(&record(3, Status::Deployed)));
        assert_ne!(deployed, print(&record(3, Status::Superseded)));
        assert_ne!(deployed, print(&record(4, Status::Deployed)));
        assert_ne!(deployed, Fingerprint::of(None).finish());
    }
}
