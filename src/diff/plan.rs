//! Plans: what an apply of rendered releases would do to each object, against a live cluster
//! or against objects read from a file.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::{Change, Kind, as_stored, changes, client_merge, key_problem, normalize, redact_secret_values};
use crate::cluster::{ApplyError, Cluster, ListTarget, Unserved};
use crate::error::{Error, Location, Result};
use crate::manifest::{LABEL_RELEASE, Manifest, ObjectKey, api_group};
use crate::release_record::{self, Record};
use crate::render::RenderedRelease;

/// Objects carrying this annotation are never pruned, so never planned for deletion.
pub const PRUNE_ANNOTATION: &str = "weaver.example.com/prune";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// What would happen to one object.
#[derive(Debug, Clone)]
pub struct ObjectPlan {
    pub release: String,
    pub api_version: String,
    pub key: ObjectKey,
    pub action: Action,
    /// The live object, normalized, Secret values replaced by markers (None when not live).
    pub before: Option<Value>,
    /// The object after the apply, normalized and redacted the same way (None for a delete).
    pub after: Option<Value>,
    /// For updates: the field paths that change.
    pub changes: Vec<Change>,
    /// Server mode: the server reports that the apply would take fields from another manager.
    pub conflict: Option<String>,
    /// What an apply would send (prepared, not redacted): never printed.
    pub(crate) desired: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<ObjectPlan>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for object in &self.objects {
            match object.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
                Action::Unchanged => summary.unchanged += 1,
            }
        }
        summary
    }

    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(|o| o.action != Action::Unchanged)
    }
}

fn kind_of(object: &Value) -> Kind<'_> {
    Kind {
        api_version: object.get("apiVersion").and_then(Value::as_str).unwrap_or_default(),
        kind: object.get("kind").and_then(Value::as_str).unwrap_or_default(),
    }
}

/// Plans one object in client mode: `desired` prepared, `live` as listed, `last_applied`
/// prepared.
fn plan_object(
    release: &str,
    desired: Option<&Value>,
    live: Option<&Value>,
    last_applied: Option<&Value>,
) -> ObjectPlan {
    let after = desired.map(|d| live.map_or_else(|| d.clone(), |l| client_merge(d, l, last_applied)));
    compare(release, live, after.as_ref(), desired)
}

/// The plan of one object from the live object and the object after the apply (both raw).
fn compare(release: &str, live: Option<&Value>, after: Option<&Value>, desired: Option<&Value>) -> ObjectPlan {
    let reference = desired.or(live).expect("an object is desired or live");
    let key = ObjectKey::of(reference);
    let api_version = kind_of(reference).api_version.to_string();
    let mut before = live.map(normalize);
    let mut after = after.map(normalize);
    let (action, changes) = match (&before, &after) {
        (None, _) => (Action::Create, Vec::new()),
        (Some(_), None) => (Action::Delete, Vec::new()),
        (Some(b), Some(a)) if b == a => (Action::Unchanged, Vec::new()),
        (Some(b), Some(a)) => (Action::Update, changes(b, a, kind_of(a))),
    };
    if action == Action::Unchanged {
        // Nothing to show; keeping 3,000 copies of unchanged objects helps nobody.
        before = None;
        after = None;
    }
    redact_secret_values(before.as_mut(), after.as_mut());
    ObjectPlan {
        release: release.to_string(),
        api_version,
        key,
        action,
        before,
        after,
        changes,
        conflict: None,
        desired: desired.cloned(),
    }
}

fn prune_disabled(object: &Value) -> bool {
    object.pointer("/metadata/annotations").and_then(|a| a.get(PRUNE_ANNOTATION)).and_then(Value::as_str)
        == Some("disabled")
}

/// Plans every object of `releases` against `live` objects (records among them are used, not
/// planned). Deletions come from the releases' last deployed records.
pub fn plan_against(releases: &[RenderedRelease], environment: &str, live: &[Value]) -> Result<Plan> {
    plan_with_records(releases, &release_record::last_deployed(live, environment)?, live)
}

/// Plans every object of `releases` against `live` objects, given their last deployed records.
///
/// # Errors
/// A desired object with a keyed list that server-side apply would reject (an element without
/// its key, or one twice).
pub fn plan_with_records(
    releases: &[RenderedRelease],
    records: &HashMap<String, Record>,
    live: &[Value],
) -> Result<Plan> {
    let live_by_key: HashMap<ObjectKey, &Value> =
        live.iter().filter(|o| !release_record::is_record(o)).map(|o| (ObjectKey::of(o), o)).collect();
    let mut plan = Plan::default();
    for release in releases {
        let record = records.get(&release.name);
        let last_applied: HashMap<ObjectKey, Value> =
            record.map(|r| r.manifests.iter().map(|m| (ObjectKey::of(m), as_stored(m))).collect()).unwrap_or_default();
        let mut desired_keys = HashSet::new();
        for manifest in &release.manifests {
            let desired = as_stored(&manifest.object);
            let key = manifest.key();
            if let Some((what, keys)) = key_problem(&desired, kind_of(&desired)) {
                let error =
                    Error::at(Location::file(&manifest.source), format!("{key} (release {}): {what}", release.name));
                return Err(error.with_help(format!(
                    "server-side apply tells the elements of this list apart by {keys}: each needs one, and a different one"
                )));
            }
            let live = live_by_key.get(&key).copied();
            plan.objects.push(plan_object(&release.name, Some(&desired), live, last_applied.get(&key)));
            desired_keys.insert(key);
        }
        let Some(record) = record else { continue };
        for recorded in &record.manifests {
            let key = ObjectKey::of(recorded);
            if desired_keys.contains(&key) {
                continue;
            }
            if let Some(live) = live_by_key.get(&key).filter(|l| !prune_disabled(l)) {
                plan.objects.push(plan_object(&release.name, None, Some(live), None));
            }
        }
    }
    Ok(plan)
}

/// Reads live objects from a file: a `kubectl get -o yaml` List, or a stream of documents.
pub fn read_live_file(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::io("read live objects", path, err))?;
    let mut objects = Vec::new();
    for (index, document) in crate::yaml::documents(path, &text)?.into_iter().enumerate() {
        let is_list = document.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
            && document.get("items").is_some();
        let items = if is_list {
            match document.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            }
        } else {
            vec![document]
        };
        for item in items {
            let key = ObjectKey::of(&item);
            if key.kind.is_empty() || key.name.is_empty() || item.get("apiVersion").and_then(Value::as_str).is_none() {
                return Err(Error::at(
                    Location::file(path),
                    format!("document {} has an object without apiVersion, kind and metadata.name", index + 1),
                ));
            }
            objects.push(super::as_stored(&item));
        }
    }
    Ok(objects)
}

/// Options of a plan against a cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterPlanOptions {
    pub server_side: bool,
    pub concurrency: usize,
}

/// Plans `releases` against the cluster (see [`observe`]); server mode then asks the server.
pub async fn plan_cluster(
    cluster: &Cluster,
    releases: &mut [RenderedRelease],
    environment: &str,
    options: ClusterPlanOptions,
) -> Result<Plan> {
    let live = observe(cluster, releases, environment, options.concurrency).await?;
    let mut plan = plan_with_records(releases, &live.records, &live.objects)?;
    if options.server_side {
        refine_on_server(cluster, &mut plan, &live.objects, options.concurrency).await?;
    }
    Ok(plan)
}

/// What the cluster holds of `releases`: their live objects and their release records.
/// Discovery decides scopes (setting them on the manifests), live objects come from one LIST
/// per (resource, namespace) with weaver's release label, and the records from the Secrets
/// LIST of each release namespace.
pub async fn observe(
    cluster: &Cluster,
    releases: &mut [RenderedRelease],
    environment: &str,
    concurrency: usize,
) -> Result<Live> {
    let pending_kinds = crds_in(releases);
    let mut targets = BTreeSet::new();
    for release in releases.iter_mut() {
        for manifest in &mut release.manifests {
            let (api_version, kind) = (manifest.api_version().to_string(), manifest.kind().to_string());
            match cluster.resolve(&api_version, &kind) {
                Ok(served) => {
                    set_scope(manifest, served.namespaced, &release.namespace);
                    targets.insert(ListTarget {
                        api_version,
                        kind,
                        namespace: manifest.namespace().map(str::to_string),
                    });
                }
                // Its CRD is applied first, in this same run: nothing of it can be live yet.
                Err(unserved) => match pending_kinds.get(&(api_group(&api_version).to_string(), kind.clone())) {
                    Some(&namespaced) => set_scope(manifest, namespaced, &release.namespace),
                    None => return Err(unserved_error(cluster, manifest, unserved)),
                },
            }
        }
    }
    let names: Vec<(&str, &str)> = releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
    list_live(cluster, targets, &names, environment, concurrency).await
}

/// What the cluster has of some releases: the objects carrying their release label, and the
/// last deployed record of each.
pub struct Live {
    /// Listed objects, the record Secrets among them.
    pub objects: Vec<Value>,
    /// The newest `deployed` record of each release, for the environment.
    pub records: HashMap<String, Record>,
}

/// Lists `targets` plus the Secrets of every release namespace (where the release records
/// are), then whatever else the last deployed records name, all with the release label of
/// `releases` (`(name, namespace)`): one LIST per (resource, namespace). Recorded objects of
/// kinds the cluster no longer serves are left out (they cannot be live).
pub async fn list_live(
    cluster: &Cluster,
    mut targets: BTreeSet<ListTarget>,
    releases: &[(&str, &str)],
    environment: &str,
    concurrency: usize,
) -> Result<Live> {
    for (_, namespace) in releases {
        // Records live in the release namespace; this LIST returns them with the live Secrets.
        targets.insert(ListTarget {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some(namespace.to_string()),
        });
    }
    if releases.is_empty() {
        return Ok(Live { objects: Vec::new(), records: HashMap::new() });
    }
    let names: Vec<&str> = releases.iter().map(|(name, _)| *name).collect();
    let selector = release_selector(&names);
    let mut objects = cluster.list(&targets, &selector, concurrency).await?;

    // Objects that only the records name may need more LISTs.
    let records = release_record::last_deployed(&objects, environment)?;
    let mut more = BTreeSet::new();
    for (release, namespace) in releases {
        for manifest in records.get(*release).into_iter().flat_map(|r| &r.manifests) {
            if let Some(target) = recorded_target(cluster, manifest, namespace)
                && !targets.contains(&target)
            {
                more.insert(target);
            }
        }
    }
    if !more.is_empty() {
        objects.extend(cluster.list(&more, &selector, concurrency).await?);
    }
    Ok(Live { objects, records })
}

/// `weaver.example.com/release in (a,b)`.
fn release_selector(names: &[&str]) -> String {
    format!("{LABEL_RELEASE} in ({})", names.join(","))
}

/// Where a recorded object would be listed, or None when the cluster does not serve its kind.
/// A namespaced object the record names without a namespace is in the release namespace.
pub fn recorded_target(cluster: &Cluster, manifest: &Value, release_namespace: &str) -> Option<ListTarget> {
    let key = ObjectKey::of(manifest);
    let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let served = cluster.resolve(api_version, &key.kind).ok()?;
    let namespace = served.namespaced.then(|| key.namespace.unwrap_or_else(|| release_namespace.to_string()));
    Some(ListTarget { api_version: api_version.to_string(), kind: key.kind, namespace })
}

/// `(group, kind)` of every CustomResourceDefinition in the desired set, and whether its
/// objects are namespaced.
fn crds_in(releases: &[RenderedRelease]) -> HashMap<(String, String), bool> {
    releases
        .iter()
        .flat_map(|r| &r.manifests)
        .filter(|m| m.kind() == "CustomResourceDefinition")
        .filter_map(|m| {
            let group = m.object.pointer("/spec/group")?.as_str()?;
            let kind = m.object.pointer("/spec/names/kind")?.as_str()?;
            let namespaced = m.object.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
            Some(((group.to_string(), kind.to_string()), namespaced))
        })
        .collect()
}

/// Discovery is the authority on scope: cluster-scoped objects lose any namespace, namespaced
/// ones without one get the release namespace.
fn set_scope(manifest: &mut Manifest, namespaced: bool, release_namespace: &str) {
    let Some(Value::Object(meta)) = manifest.object.get_mut("metadata") else { return };
    if !namespaced {
        meta.shift_remove("namespace");
    } else if !meta.contains_key("namespace") {
        meta.insert("namespace".into(), Value::String(release_namespace.to_string()));
    }
}

fn unserved_error(cluster: &Cluster, manifest: &Manifest, unserved: Unserved) -> Error {
    let what = format!(
        "{} (release {}) is a {} {}, which the cluster (context `{}`) does not serve",
        manifest.key(),
        manifest.release,
        manifest.api_version(),
        manifest.kind(),
        cluster.info.context
    );
    let error = Error::at(Location::file(&manifest.source), what);
    match unserved {
        Unserved::Version(versions) => error.with_help(format!("the cluster serves this kind as {}", versions.join(", "))),
        Unserved::Kind => error.with_help(
            "install its CustomResourceDefinition first (or ship it in the chart's crds/), or check apiVersion and kind",
        ),
    }
}

/// What the server answered to a dry-run apply.
struct DryRun {
    result: Value,
    /// The conflict the apply hit without force (the result is then that of a forced apply).
    conflict: Option<String>,
}

/// Server mode: a dry-run server-side apply of every object client mode found changed; the
/// server's answer replaces the client's merge. Client mode orders lists as the server does
/// (`applied_order`), so an object whose only change is a list's order is among them.
async fn refine_on_server(cluster: &Cluster, plan: &mut Plan, live: &[Value], concurrency: usize) -> Result<()> {
    let candidates: Vec<usize> = plan
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o.action, Action::Create | Action::Update))
        .map(|(i, _)| i)
        .collect();
    let results: Vec<(usize, Option<DryRun>)> = futures::stream::iter(candidates.into_iter().map(|index| {
        let object = &plan.objects[index];
        async move {
            let desired = object.desired.as_ref().expect("creates and updates are desired");
            let Ok(served) = cluster.resolve(&object.api_version, &object.key.kind) else {
                return Ok((index, None)); // a kind whose CRD this run creates
            };
            match cluster.apply(desired, &served, true, false).await {
                Ok(result) => Ok((index, Some(DryRun { result, conflict: None }))),
                Err(ApplyError::Conflict(message)) => match cluster.apply(desired, &served, true, true).await {
                    Ok(result) => Ok((index, Some(DryRun { result, conflict: Some(message) }))),
                    Err(ApplyError::Other(err)) => Err(err),
                    Err(ApplyError::Conflict(m) | ApplyError::NotFound(m)) => {
                        Err(Error::new(format!("dry-run apply of {} (release {}): {m}", object.key, object.release)))
                    }
                },
                // The namespace is created by the apply itself: the client's answer stands.
                Err(ApplyError::NotFound(_)) => Ok((index, None)),
                Err(ApplyError::Other(err)) => Err(err),
            }
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .collect::<Vec<Result<_>>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    let live_by_key: HashMap<ObjectKey, &Value> = live.iter().map(|o| (ObjectKey::of(o), o)).collect();
    for (index, outcome) in results {
        let Some(DryRun { result, conflict }) = outcome else { continue };
        let object = &plan.objects[index];
        if object.action == Action::Create {
            // Validated by the dry run; shown as desired, like client mode, rather than with
            // every default and allocated field of a new object.
            continue;
        }
        let live = live_by_key.get(&object.key).copied();
        let refined = compare(&object.release, live, Some(&result), object.desired.as_ref());
        plan.objects[index] = ObjectPlan { conflict, ..refined };
    }
    Ok(())
}
