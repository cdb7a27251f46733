//! The object store: objects by key, plus the indexes that keep every write
//! (and the controllers that run after it) independent of the store's size —
//! uids, owner references, namespace contents, objects pending deletion — and
//! the set of keys changed since the controllers last looked.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Default)]
pub(crate) struct Store {
    objects: BTreeMap<ObjKey, Value>,
    /// uid → key of the object that has it.
    uids: HashMap<String, ObjKey>,
    /// Owner uid (as referenced, whether or not it exists) → keys of the objects referencing it.
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    /// Namespace → keys of the namespaced objects in it.
    namespaces: HashMap<String, BTreeSet<ObjKey>>,
    /// Keys of objects with a deletionTimestamp.
    deleting: BTreeSet<ObjKey>,
    /// Keys stored or removed since [`Store::take_dirty`] (plus the dependents of removed objects).
    dirty: BTreeSet<ObjKey>,
}

fn uid_of(o: &Value) -> Option<&str> {
    o["metadata"]["uid"].as_str()
}

impl Store {
    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    pub fn contains_key(&self, key: &ObjKey) -> bool {
        self.objects.contains_key(key)
    }

    /// The objects of one resource, optionally in one namespace, in key order.
    pub fn of_resource<'a>(
        &'a self,
        group: &'a str,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> {
        let start = ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(k, _)| {
            k.group == group && k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns)
        })
    }

    /// Keys of the objects in namespace `ns`, in key order.
    pub fn in_namespace(&self, ns: &str) -> impl Iterator<Item = &ObjKey> {
        self.namespaces.get(ns).into_iter().flatten()
    }

    pub fn has_uid(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Keys of the objects whose ownerReferences name `uid`, in key order.
    pub fn dependents_of(&self, uid: &str) -> impl Iterator<Item = &ObjKey> {
        self.dependents.get(uid).into_iter().flatten()
    }

    /// Keys of the objects with a deletionTimestamp, in key order.
    pub fn deleting(&self) -> impl Iterator<Item = &ObjKey> {
        self.deleting.iter()
    }

    pub fn insert(&mut self, key: ObjKey, obj: Value) {
        if let Some(old) = self.objects.remove(&key) {
            self.unindex(&key, &old);
        }
        self.index(&key, &obj);
        self.dirty.insert(key.clone());
        self.objects.insert(key, obj);
    }

    /// Removes an object; it and the objects it owned become dirty.
    pub fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let obj = self.objects.remove(key)?;
        self.unindex(key, &obj);
        self.dirty.insert(key.clone());
        if let Some(uid) = uid_of(&obj)
            && let Some(deps) = self.dependents.get(uid)
        {
            self.dirty.extend(deps.iter().cloned());
        }
        Some(obj)
    }

    /// The keys changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<ObjKey> {
        std::mem::take(&mut self.dirty)
    }

    /// Keys changed since the last [`Store::take_dirty`], not yet taken.
    pub fn dirty(&self) -> &BTreeSet<ObjKey> {
        &self.dirty
    }

    /// Makes the controllers look at every object of one resource (or all, with `None`).
    pub fn mark_dirty(&mut self, resource: Option<(&str, &str)>) {
        let keys: Vec<ObjKey> = match resource {
            Some((g, r)) => self.of_resource(g, r, None).map(|(k, _)| k.clone()).collect(),
            None => self.objects.keys().cloned().collect(),
        };
        self.dirty.extend(keys);
    }

    fn index(&mut self, key: &ObjKey, obj: &Value) {
        if let Some(uid) = uid_of(obj) {
            self.uids.insert(uid.to_string(), key.clone());
        }
        for owner in owner_uids(obj) {
            self.dependents.entry(owner.to_string()).or_default().insert(key.clone());
        }
        if !key.namespace.is_empty() {
            self.namespaces.entry(key.namespace.clone()).or_default().insert(key.clone());
        }
        if obj["metadata"].get("deletionTimestamp").is_some() {
            self.deleting.insert(key.clone());
        }
    }

    fn unindex(&mut self, key: &ObjKey, obj: &Value) {
        if let Some(uid) = uid_of(obj)
            && self.uids.get(uid) == Some(key)
        {
            self.uids.remove(uid);
        }
        for owner in owner_uids(obj) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
        if let Some(set) = self.namespaces.get_mut(&key.namespace) {
            set.remove(key);
            if set.is_empty() {
                self.namespaces.remove(&key.namespace);
            }
        }
        self.deleting.remove(key);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

pub(crate) fn owner_uids(o: &Value) -> impl Iterator<Item = &str> {
    o["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(|r| r["uid"].as_str())
}
