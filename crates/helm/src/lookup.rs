//! helm's `lookup apiVersion kind namespace name`, answered from a snapshot of the cluster
//! rather than by a request per call: the engine never talks to Kubernetes. A render records
//! which (resource, namespace) it asked for and the snapshot did not hold; its caller lists
//! them and renders the release again (see `action::render`).
//!
//! Answers follow helm v3.17.1's `pkg/engine/lookup_func.go`: an object, or an empty map when
//! it is absent; with name "", the list object (`{apiVersion, kind: <Kind>List, items,
//! metadata}`); namespace "" lists every namespace of a namespaced kind, and names no object
//! of one (helm's GET of the cluster-wide path finds nothing); a cluster-scoped kind ignores
//! the namespace. A group/version the server does not serve is an error in helm's words.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{Value as Json, json};

/// Where one LIST of the snapshot goes: a resource, and a namespace unless the kind is
/// cluster-scoped or every namespace is listed. The cluster's own LIST target, so that what
/// renders ask for is listed as it is.
pub use weaver_core::manifest::ListTarget as Target;

/// One LIST's answer: its items (with `apiVersion` and `kind`) and the list's `metadata`.
pub use weaver_core::manifest::Listed as Listing;

/// The arguments of one `lookup apiVersion kind namespace name` call.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// How the cluster serves a kind, as far as `lookup` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub namespaced: bool,
    /// False for a kind whose CustomResourceDefinition this run creates: none of its objects
    /// can be live yet, so it is not listed.
    pub listable: bool,
}

/// What `lookup` reads.
#[derive(Default)]
pub enum Live {
    /// No cluster (`weaver render`, as `helm template`): lookup finds nothing.
    #[default]
    Nothing,
    /// Objects read from a file (`--live-from`): lookup finds what the file has.
    File(Vec<Json>),
    /// The cluster, as far as it was listed.
    Cluster(ClusterSnapshot),
    /// A cluster read by a later render (diff and apply render offline first): lookup finds
    /// nothing now, and the releases that asked may fail now without it being their error.
    Later(Mutex<BTreeSet<String>>),
    /// A render worker's: each lookup is asked of the process that started it, whose `Live`
    /// answers and keeps what was asked and seen.
    Asking(Box<Ask>),
}

/// How a render worker asks its parent a lookup's answer.
pub type Ask = dyn Fn(&str, &Query) -> Result<Json, String> + Send + Sync;

/// The cluster's kinds and the LISTs made so far, plus what renders asked for beyond them.
pub struct ClusterSnapshot {
    /// apiVersion → kind → how it is served (discovery's, and the kinds this run's CRDs create).
    served: HashMap<String, HashMap<String, Served>>,
    listed: RwLock<HashMap<Target, Arc<Listing>>>,
    /// Per release, the targets its lookups asked for that `listed` lacks.
    missing: Mutex<BTreeMap<String, BTreeSet<Target>>>,
    /// `(namespace, name)` of every Secret a lookup handed to a template.
    secrets_seen: Mutex<HashSet<(String, String)>>,
}

impl Live {
    /// A snapshot of a cluster serving `served` (apiVersion → kind → how), with nothing listed.
    pub fn cluster(served: HashMap<String, HashMap<String, Served>>) -> Live {
        Live::Cluster(ClusterSnapshot {
            served,
            listed: RwLock::default(),
            missing: Mutex::default(),
            secrets_seen: Mutex::default(),
        })
    }

    /// What `lookup` gives `release`; the error is helm's message.
    pub fn lookup(&self, release: &str, query: &Query) -> Result<Json, String> {
        let found = match self {
            Live::Nothing => return Ok(empty()),
            Live::Later(asked) => {
                asked.lock().unwrap_or_else(PoisonError::into_inner).insert(release.to_string());
                return Ok(empty());
            }
            Live::File(objects) => from_file(objects, query),
            Live::Cluster(snapshot) => snapshot.lookup(release, query)?,
            Live::Asking(ask) => return ask(release, query),
        };
        if let Live::Cluster(snapshot) = self {
            snapshot.saw_secrets(&found);
        }
        Ok(found)
    }

    /// Takes what each release's lookups asked for and the snapshot lacked, by release.
    pub fn take_missing(&self) -> BTreeMap<String, BTreeSet<Target>> {
        match self {
            Live::Cluster(snapshot) => {
                std::mem::take(&mut *snapshot.missing.lock().unwrap_or_else(PoisonError::into_inner))
            }
            Live::Nothing | Live::File(_) | Live::Later(_) | Live::Asking(_) => BTreeMap::new(),
        }
    }

    /// Whether `release`'s lookups asked for something the snapshot lacks: its output is
    /// incomplete, and it is rendered again once that is listed.
    pub fn is_waiting(&self, release: &str) -> bool {
        match self {
            Live::Cluster(snapshot) => {
                snapshot.missing.lock().unwrap_or_else(PoisonError::into_inner).contains_key(release)
            }
            Live::Nothing | Live::File(_) | Live::Later(_) | Live::Asking(_) => false,
        }
    }

    /// Whether an error rendering `release` may come from a lookup finding nothing in a render
    /// that a render reading the cluster follows: that render decides.
    pub fn defers_errors_of(&self, release: &str) -> bool {
        match self {
            Live::Later(asked) => asked.lock().unwrap_or_else(PoisonError::into_inner).contains(release),
            Live::Nothing | Live::File(_) | Live::Cluster(_) | Live::Asking(_) => false,
        }
    }

    /// Adds LISTs' answers.
    pub fn add(&self, lists: impl IntoIterator<Item = (Target, Arc<Listing>)>) {
        if let Live::Cluster(snapshot) = self {
            snapshot.listed.write().unwrap_or_else(PoisonError::into_inner).extend(lists);
        }
    }

    /// The Secrets lookups handed to templates (every one of a file's, which lookups may read
    /// whole): their values are credentials, which output must never show.
    pub fn secrets_seen(&self) -> Vec<Json> {
        match self {
            Live::Nothing | Live::Later(_) | Live::Asking(_) => Vec::new(),
            Live::File(objects) => objects.iter().filter(|o| is_secret(o)).cloned().collect(),
            Live::Cluster(snapshot) => {
                let seen = snapshot.secrets_seen.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.is_empty() {
                    return Vec::new();
                }
                let listed = snapshot.listed.read().unwrap_or_else(PoisonError::into_inner);
                // A Secret may be in two listings: its namespace's and every namespace's.
                let mut found = HashSet::new();
                listed
                    .values()
                    .flat_map(|listing| &listing.items)
                    .filter(|o| is_secret(o) && seen.contains(&identity(o)) && found.insert(identity(o)))
                    .cloned()
                    .collect()
            }
        }
    }
}

impl ClusterSnapshot {
    fn lookup(&self, release: &str, query: &Query) -> Result<Json, String> {
        let Query { api_version, kind, namespace, name } = *query;
        let served = self.served(api_version, kind)?;
        let Some(served) = served else {
            // A kind its group/version does not serve: helm's GET answers 404, an empty map.
            return Ok(empty());
        };
        if served.namespaced && namespace.is_empty() && !name.is_empty() {
            // helm GETs the cluster-wide path of a namespaced resource, which finds nothing.
            return Ok(empty());
        }
        let namespace = (served.namespaced && !namespace.is_empty()).then(|| namespace.to_string());
        let target = Target { api_version: api_version.to_string(), kind: kind.to_string(), namespace };
        if !served.listable {
            return Ok(answer(&target, &Listing::default(), name));
        }
        match self.listing(&target) {
            Some(listing) => Ok(answer(&target, &listing, name)),
            None => {
                let mut missing = self.missing.lock().unwrap_or_else(PoisonError::into_inner);
                missing.entry(release.to_string()).or_default().insert(target);
                Ok(empty())
            }
        }
    }

    /// How `kind` of `api_version` is served: None for a kind its (served) group/version lacks;
    /// an error, in helm's words, for a group/version the server does not serve.
    fn served(&self, api_version: &str, kind: &str) -> Result<Option<Served>, String> {
        // schema.FromAPIVersionAndKind: an apiVersion with more than one `/` has no group/version.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>()[..] {
            [version] => ("", version),
            [group, version] => (group, version),
            _ => ("", ""),
        };
        let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        let unserved = |reason: &str| {
            format!("unable to get apiresource from unstructured: {group}/{version}, Kind={kind}: {reason}")
        };
        if group_version.is_empty() {
            return Err(unserved("groupVersion shouldn't be empty"));
        }
        match self.served.get(&group_version) {
            Some(kinds) => Ok(kinds.get(kind).copied()),
            None => Err(unserved("the server could not find the requested resource")),
        }
    }

    /// The listing of `target`, or of its namespace within a listing of every namespace.
    fn listing(&self, target: &Target) -> Option<Arc<Listing>> {
        let listed = self.listed.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(listing) = listed.get(target) {
            return Some(listing.clone());
        }
        let namespace = target.namespace.as_deref()?;
        let every = listed.get(&Target { namespace: None, ..target.clone() })?;
        let items = every.items.iter().filter(|o| object_namespace(o) == Some(namespace)).cloned().collect();
        Some(Arc::new(Listing { items, metadata: every.metadata.clone() }))
    }

    fn saw_secrets(&self, found: &Json) {
        let objects: Vec<&Json> = match found.get("items").and_then(Json::as_array) {
            Some(items) => items.iter().collect(),
            None => vec![found],
        };
        let secrets: Vec<(String, String)> = objects.into_iter().filter(|o| is_secret(o)).map(identity).collect();
        if !secrets.is_empty() {
            self.secrets_seen.lock().unwrap_or_else(PoisonError::into_inner).extend(secrets);
        }
    }
}

/// The object `name` of `listing`, or the list object when `name` is "".
fn answer(target: &Target, listing: &Listing, name: &str) -> Json {
    if name.is_empty() {
        return list_object(&target.api_version, &target.kind, listing.items.clone(), listing.metadata.clone());
    }
    listing.items.iter().find(|o| object_name(o) == Some(name)).cloned().unwrap_or_else(empty)
}

/// A file's objects: by apiVersion and kind; a namespace matches objects in it and objects
/// without one (cluster-scoped); namespace "" matches all, but names only objects without one,
/// as helm finds no namespaced object by name without its namespace.
fn from_file(objects: &[Json], query: &Query) -> Json {
    let Query { api_version, kind, namespace, name } = *query;
    let mut matching = objects.iter().filter(|o| {
        o.get("apiVersion").and_then(Json::as_str) == Some(api_version)
            && o.get("kind").and_then(Json::as_str) == Some(kind)
            && (namespace.is_empty() || object_namespace(o).is_none_or(|ns| ns == namespace))
    });
    if name.is_empty() {
        return list_object(api_version, kind, matching.cloned().collect(), json!({}));
    }
    matching
        .find(|o| object_name(o) == Some(name) && (!namespace.is_empty() || object_namespace(o).is_none()))
        .cloned()
        .unwrap_or_else(empty)
}

fn list_object(api_version: &str, kind: &str, items: Vec<Json>, metadata: Json) -> Json {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "items": items, "metadata": metadata})
}

fn empty() -> Json {
    Json::Object(Default::default())
}

fn object_name(object: &Json) -> Option<&str> {
    object.pointer("/metadata/name").and_then(Json::as_str)
}

fn object_namespace(object: &Json) -> Option<&str> {
    object.pointer("/metadata/namespace").and_then(Json::as_str).filter(|ns| !ns.is_empty())
}

fn identity(object: &Json) -> (String, String) {
    (object_namespace(object).unwrap_or_default().to_string(), object_name(object).unwrap_or_default().to_string())
}

fn is_secret(object: &Json) -> bool {
    object.get("apiVersion").and_then(Json::as_str) == Some("v1")
        && object.get("kind").and_then(Json::as_str) == Some("Secret")
}
