//! What the cluster holds of some releases: discovery decides scopes, live objects come from
//! LISTs with weaver's release label, release records from the Secrets of each release
//! namespace, and server mode's dry-run applies. Only reads: nothing is stored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use weaver_cluster::{ApplyError, Cluster, ListTarget, ManagedFields, Unserved};
use weaver_core::error::{Error, Location, Result};
use weaver_core::manifest::{
    LABEL_ENVIRONMENT, LABEL_RELEASE, Manifest, ObjectKey, ObjectKeyRef, Scopes, api_group, label, namespace_of,
};
use weaver_plan::plan::Owner;
use weaver_plan::release::adopt::{
    HELM_MANAGED_SELECTOR, HELM_OWNER_SELECTOR, HelmRelease, helm_releases, installed_by,
};
use weaver_plan::release::record::{self, LABEL_LOCK_NAMESPACE, LABEL_STATUS, Record, Records, Status, Wanted};
use weaver_project::Release;
use weaver_project::RenderedRelease;

/// What the cluster has of some releases: the objects carrying their release label, and the
/// last deployed record of each.
pub struct Live {
    /// Listed objects, the record Secrets among them: shared with the watches that answered
    /// (`weaver ui`, the controller), not copied.
    pub objects: Vec<Arc<Value>>,
    /// The newest record of each release the listing wanted (`deployed`, or of any status),
    /// for the environment.
    pub records: Records,
    /// The Helm release of the same name in the same namespace, by weaver release, where
    /// [`observe_helm`] looked and found one.
    pub helm: HashMap<String, HelmRelease>,
    /// The (resource, namespace) pairs whose objects with the releases' label `objects` holds
    /// whole: another reader of the same releases lists only what is not among them.
    pub listed: BTreeSet<ListTarget>,
}

/// LISTs already made without a label selector (for Helm charts' `lookup`), by target: the
/// observation picks weaver's objects out of them instead of listing those targets again.
pub type Unlabelled<'a> = HashMap<ListTarget, &'a [Value]>;

/// What the cluster holds of `releases`: their live objects and their release records.
/// Discovery decides scopes (setting them on the manifests), live objects come from one LIST
/// per (resource, namespace) with weaver's release label, and the records from the Secrets
/// LIST of each release namespace.
/// `unlabelled` LISTs (made for `lookup`) are reused where they cover a target.
pub async fn observe_reusing(
    cluster: &Cluster,
    releases: &mut [RenderedRelease],
    environment: &str,
    concurrency: usize,
    unlabelled: &Unlabelled<'_>,
) -> Result<Live> {
    // CRDs this run applies first: nothing of their kinds can be live yet.
    let pending_kinds = Scopes::of_crds(releases.iter().flat_map(|r| &r.manifests));
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
                Err(unserved) => match pending_kinds.learned(api_group(&api_version), &kind) {
                    Some(namespaced) => set_scope(manifest, namespaced, &release.namespace),
                    None => return Err(unserved_error(cluster, manifest, unserved)),
                },
            }
        }
    }
    let names: Vec<(&str, &str)> = releases.iter().map(|r| (r.name.as_str(), r.namespace.as_str())).collect();
    let desired: HashSet<ObjectKey> = releases.iter().flat_map(|r| r.manifests.iter().map(Manifest::key)).collect();
    // Planning reads managedFields only where a release has no record (diff::fields).
    let wanted = Wanted::Deployed;
    let fields = ManagedFields::Text;
    list_live(cluster, targets, &names, &desired, environment, wanted, fields, concurrency, unlabelled).await
}

/// Lists `targets` plus the Secrets of every release namespace (where the release records
/// are), then whatever else the records `wanted` picks name, all with the release label of
/// `releases` (`(name, namespace)`): one LIST per (resource, namespace), none for a target
/// `unlabelled` covers, listed objects' `managed_fields` read as it says. Recorded objects of
/// kinds the cluster no longer serves are left out (they cannot be live).
///
/// Objects of `desired` carrying another release's label (another environment's, or another
/// release's of this one) are listed too, so that the plan sees whose they are: but for
/// Secrets, targets are listed with weaver's release label of any value, and what is neither
/// of `releases` nor desired is dropped. Secrets are listed by their release label only, since
/// the records of every release of the namespace are Secrets too.
#[allow(clippy::too_many_arguments)]
pub async fn list_live(
    cluster: &Cluster,
    mut targets: BTreeSet<ListTarget>,
    releases: &[(&str, &str)],
    desired: &HashSet<ObjectKey>,
    environment: &str,
    wanted: Wanted,
    managed_fields: ManagedFields,
    concurrency: usize,
    unlabelled: &Unlabelled<'_>,
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
        return Ok(Live { objects: Vec::new(), records: HashMap::new(), helm: HashMap::new(), listed: targets });
    }
    let names: Vec<&str> = releases.iter().map(|(name, _)| *name).collect();
    let labelled = Labelled { selector: release_selector(&names), names: &names, desired, unlabelled, managed_fields };
    let mut objects = labelled.list(cluster, &targets, concurrency).await?;

    // Objects that only the records name may need more LISTs.
    let records = own_records(&objects, releases, environment, wanted, &HashMap::new())?;
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
        // Only the records name these: no desired object is among them, so the releases' own
        // label selects them, not every weaver object of the namespace.
        let none = HashSet::new();
        let recorded = Labelled { desired: &none, ..labelled };
        objects.extend(recorded.list(cluster, &more, concurrency).await?);
    }
    targets.extend(more);
    Ok(Live { objects, records, helm: HashMap::new(), listed: targets })
}

/// The newest record `wanted` picks of each of `releases` (`(name, namespace)`) among `objects`
/// (listed Secrets), those `known` holds taken from there (`record::last_records_reusing`). A
/// release's records are those in its own namespace: another namespace listed may hold a
/// namesake's.
pub fn own_records(
    objects: &[Arc<Value>],
    releases: &[(&str, &str)],
    environment: &str,
    wanted: Wanted,
    known: &Records,
) -> Result<Records> {
    let namespaces: HashMap<&str, &str> = releases.iter().copied().collect();
    let own = objects.iter().map(|o| &**o).filter(|o| {
        record::is_record(o)
            && label(o, LABEL_RELEASE)
                .and_then(|release| namespaces.get(release))
                .is_some_and(|own| Some(*own) == namespace_of(o))
    });
    record::last_records_reusing(own, environment, wanted, known)
}

/// The objects of `targets` carrying the release label of `releases` (names), as [`list_live`]
/// lists what only the records name: for a reader of an observation made for other records.
pub async fn list_labelled(
    cluster: &Cluster,
    targets: &BTreeSet<ListTarget>,
    releases: &[&str],
    managed_fields: ManagedFields,
    concurrency: usize,
) -> Result<Vec<Arc<Value>>> {
    let (desired, unlabelled) = (HashSet::new(), Unlabelled::new());
    let labelled = Labelled {
        selector: release_selector(releases),
        names: releases,
        desired: &desired,
        unlabelled: &unlabelled,
        managed_fields,
    };
    labelled.list(cluster, targets, concurrency).await
}

/// Adoption from Helm (see `weaver_plan::release::adopt`): for each of `releases` (already observed into
/// `live`) that has no deployed record yet, or every one with `every`, whether a Helm release of
/// the same name has records in its namespace (one metadata-only LIST of Secrets per namespace,
/// selected by Helm's `owner` and `name` labels: their content is never read). For each one
/// found, the objects it installed that the release renders are listed (one LIST per resource
/// and namespace of the release, selected by Helm's `managed-by` label) and added to `live`.
/// A release with a record was adopted already (or never was Helm's): nothing is asked.
pub async fn observe_helm(
    cluster: &Cluster,
    releases: &[RenderedRelease],
    live: &mut Live,
    every: bool,
    concurrency: usize,
) -> Result<()> {
    let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for release in releases.iter().filter(|r| every || !live.records.contains_key(&r.name)) {
        by_namespace.entry(release.namespace.as_str()).or_default().push(release.name.as_str());
    }
    if by_namespace.is_empty() {
        return Ok(());
    }
    let secrets = cluster.resolve("v1", "Secret").map_err(|_| Error::new("the cluster does not serve v1 Secret"))?;
    let lists = futures::stream::iter(
        by_namespace
            .iter()
            .map(|(namespace, names)| {
                let selector = format!("{HELM_OWNER_SELECTOR},name in ({})", names.join(","));
                let secrets = &secrets;
                async move { cluster.list_metadata(secrets, namespace, &selector).await }
            })
            .collect::<Vec<_>>(),
    )
    .buffer_unordered(concurrency.max(1))
    .collect::<Vec<Result<Vec<Value>>>>()
    .await;
    let mut records = Vec::new();
    for list in lists {
        records.extend(list?);
    }
    let found = helm_releases(&records);
    let mut targets: BTreeSet<ListTarget> = BTreeSet::new();
    for release in releases {
        let Some(helm) = found.get(&(release.namespace.clone(), release.name.clone())) else { continue };
        live.helm.insert(release.name.clone(), helm.clone());
        if live.records.contains_key(&release.name) {
            continue; // adopted before: only its records are left to forget
        }
        for manifest in &release.manifests {
            if cluster.resolve(manifest.api_version(), manifest.kind()).is_ok() {
                targets.insert(ListTarget {
                    api_version: manifest.api_version().to_string(),
                    kind: manifest.kind().to_string(),
                    namespace: manifest.namespace().map(str::to_string),
                });
            }
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    let known: BTreeSet<ObjectKey> = live.objects.iter().map(|o| ObjectKey::of(o)).collect();
    // Planned as the other live objects are (observe_reusing).
    let installed = cluster.list_shared(&targets, HELM_MANAGED_SELECTOR, ManagedFields::Text, concurrency).await?;
    let adopted: Vec<&HelmRelease> = live.helm.values().collect();
    let taken: Vec<Arc<Value>> = installed
        .into_iter()
        .filter(|object| adopted.iter().any(|helm| installed_by(object, helm)))
        .filter(|object| !known.contains(&ObjectKey::of(object)))
        .collect();
    live.objects.extend(taken);
    Ok(())
}

/// The objects of some releases: a LIST with their release label, or what an unlabelled LIST
/// of the same target holds with that label.
struct Labelled<'a> {
    selector: String,
    names: &'a [&'a str],
    /// The objects the releases render: listed whatever release label they carry.
    desired: &'a HashSet<ObjectKey>,
    unlabelled: &'a Unlabelled<'a>,
    managed_fields: ManagedFields,
}

impl Labelled<'_> {
    async fn list(
        &self,
        cluster: &Cluster,
        targets: &BTreeSet<ListTarget>,
        concurrency: usize,
    ) -> Result<Vec<Arc<Value>>> {
        let (listed, to_list): (BTreeSet<ListTarget>, BTreeSet<ListTarget>) =
            targets.iter().cloned().partition(|target| self.unlabelled.contains_key(target));
        let ours = |object: &Value| label(object, LABEL_RELEASE).is_some_and(|release| self.names.contains(&release));
        let wanted = |object: &&Value| {
            ours(object)
                || (label(object, LABEL_RELEASE).is_some()
                    && !record::is_record(object)
                    && self.desired.contains(&ObjectKey::of(object)))
        };
        // Secrets (records among them) by the releases' label; the rest by weaver's label.
        let (secrets, others): (BTreeSet<ListTarget>, BTreeSet<ListTarget>) =
            to_list.into_iter().partition(|t| self.desired.is_empty() || (t.api_version == "v1" && t.kind == "Secret"));
        let mut objects = cluster.list_shared(&secrets, &self.selector, self.managed_fields, concurrency).await?;
        // A Secret this run renders may be labelled by another release (another environment's):
        // one more LIST of weaver's Secrets that are not records (records carry a status label),
        // only where this run renders a Secret.
        let renders_secret = |target: &ListTarget| {
            self.desired.iter().any(|k| k.group.is_empty() && k.kind == "Secret" && k.namespace == target.namespace)
        };
        let foreign: BTreeSet<ListTarget> = secrets.iter().filter(|t| renders_secret(t)).cloned().collect();
        if !foreign.is_empty() {
            let selector = format!("{LABEL_RELEASE},!{LABEL_STATUS}");
            let any = cluster.list_shared(&foreign, &selector, self.managed_fields, concurrency).await?;
            objects.extend(any.into_iter().filter(|o| !ours(o) && wanted(&&**o)));
        }
        if !others.is_empty() {
            let any = cluster.list_shared(&others, LABEL_RELEASE, self.managed_fields, concurrency).await?;
            objects.extend(any.into_iter().filter(|o| wanted(&&**o)));
        }
        let reused = listed.iter().flat_map(|target| self.unlabelled[target].iter()).filter(wanted);
        objects.extend(reused.map(|object| Arc::new(object.clone())));
        Ok(objects)
    }
}

/// `weaver.example.com/release in (a,b)`.
fn release_selector(names: &[&str]) -> String {
    format!("{LABEL_RELEASE} in ({})", names.join(","))
}

/// Where a recorded object would be listed, or None when the cluster does not serve its kind.
/// A namespaced object the record names without a namespace is in the release namespace.
pub fn recorded_target(cluster: &Cluster, manifest: &Value, release_namespace: &str) -> Option<ListTarget> {
    let key = ObjectKeyRef::of(manifest);
    let api_version = manifest.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let served = cluster.resolve(api_version, key.kind).ok()?;
    let namespace = served.namespaced.then(|| key.namespace.unwrap_or(release_namespace).to_string());
    Some(ListTarget { api_version: api_version.to_string(), kind: key.kind.to_string(), namespace })
}

/// Discovery is the authority on scope: cluster-scoped objects lose any namespace, namespaced
/// ones without one get the release namespace.
/// The objects of `releases` that are live and labelled as another environment's than
/// `environment`, with whose: what `environment`'s apply refuses under its lock
/// (`Plan::refuse_taking`), read before it, so that a fleet refuses them before any of its
/// environments writes. One LIST per (resource, namespace), of objects with weaver's
/// environment label; a kind the cluster does not serve (its CRD comes with it) has nothing
/// live.
pub async fn labelled_elsewhere(
    cluster: &Cluster,
    releases: &[RenderedRelease],
    environment: &str,
    concurrency: usize,
) -> Result<Vec<(ObjectKey, Owner)>> {
    let mut targets = BTreeSet::new();
    let mut keys = HashSet::new();
    for release in releases {
        for manifest in &release.manifests {
            let (api_version, kind) = (manifest.api_version(), manifest.kind());
            let Ok(served) = cluster.resolve(api_version, kind) else { continue };
            let namespace = served.namespaced.then(|| manifest.namespace().unwrap_or(&release.namespace).to_string());
            keys.insert(ObjectKey { namespace: namespace.clone(), ..manifest.key() });
            targets.insert(ListTarget { api_version: api_version.to_string(), kind: kind.to_string(), namespace });
        }
    }
    let live = cluster.list_shared(&targets, LABEL_ENVIRONMENT, ManagedFields::Text, concurrency).await?;
    let mut taken: Vec<(ObjectKey, Owner)> = live
        .iter()
        .filter_map(|object| {
            let owner = label(object, LABEL_ENVIRONMENT).filter(|owner| *owner != environment)?;
            let key = ObjectKey::of(object);
            let release = label(object, LABEL_RELEASE).unwrap_or_default().to_string();
            keys.contains(&key).then(|| (key, Owner { environment: owner.to_string(), release }))
        })
        .collect();
    taken.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(taken)
}

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
        "{} (release {}) is of kind {} ({}), which the cluster (context `{}`) does not serve",
        manifest.key(),
        manifest.release,
        manifest.kind(),
        manifest.api_version(),
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
pub struct DryRun {
    pub result: Value,
    /// The conflict the apply hit without force (the result is then that of a forced apply).
    pub conflict: Option<String>,
}

/// A dry-run server-side apply of each of `objects` (`(object, release)`), at most
/// `concurrency` at a time, answers in the same order: None where the server cannot answer
/// yet, because this run creates the object's kind (its CRD) or namespace.
pub async fn dry_run_apply(
    cluster: &Cluster,
    objects: &[(&Value, &str)],
    concurrency: usize,
) -> Result<Vec<Option<DryRun>>> {
    let answers: Vec<(usize, Option<DryRun>)> = futures::stream::iter(
        objects
            .iter()
            .enumerate()
            .map(|(index, &(object, release))| async move {
                let key = ObjectKey::of(object);
                let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
                let Ok(served) = cluster.resolve(api_version, &key.kind) else {
                    return Ok((index, None)); // a kind whose CRD this run creates
                };
                match cluster.apply(object, &served, true, false).await {
                    Ok(result) => Ok((index, Some(DryRun { result, conflict: None }))),
                    Err(ApplyError::Conflict(message)) => match cluster.apply(object, &served, true, true).await {
                        Ok(result) => Ok((index, Some(DryRun { result, conflict: Some(message) }))),
                        Err(ApplyError::Other(err)) => Err(err),
                        Err(ApplyError::Conflict(m) | ApplyError::NotFound(m)) => {
                            Err(Error::new(format!("dry-run apply of {key} (release {release}): {m}")))
                        }
                    },
                    // The namespace is created by the apply itself: the client's answer stands.
                    Err(ApplyError::NotFound(_)) => Ok((index, None)),
                    Err(ApplyError::Other(err)) => Err(err),
                }
            })
            .collect::<Vec<_>>(),
    )
    .buffer_unordered(concurrency.max(1))
    .collect::<Vec<Result<_>>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    let mut ordered: Vec<Option<DryRun>> = objects.iter().map(|_| None).collect();
    for (index, answer) in answers {
        ordered[index] = answer;
    }
    Ok(ordered)
}

/// The newest deployed records of `environment`'s releases anywhere in the cluster, found by
/// [`deployed_records_everywhere`].
pub struct DeployedRecords {
    /// Each release's newest deployed record with its namespace.
    pub records: Vec<(String, Arc<Record>)>,
    /// (namespace, release) of records written before weaver labelled records with their lock
    /// namespace: whether they are this project's cannot be told.
    pub unlabelled: Vec<(String, String)>,
}

/// The newest deployed record of each release of `environment` (with lock namespace
/// `lock_namespace`: another project's environment of the same name has another, or shares its
/// lock) that `wanted(namespace, release)` picks, wherever in the cluster its records are, with
/// its namespace: one LIST of Secrets in every namespace (or in each of `within`), selected by
/// the records' labels. Only
/// the records picked are decoded.
pub async fn deployed_records_everywhere(
    cluster: &Cluster,
    environment: &str,
    lock_namespace: &str,
    within: Option<&BTreeSet<String>>,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<DeployedRecords> {
    let target = |namespace: Option<&String>| ListTarget {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: namespace.cloned(),
    };
    let targets: BTreeSet<ListTarget> = match within {
        None => BTreeSet::from([target(None)]),
        Some(namespaces) => namespaces.iter().map(|ns| target(Some(ns))).collect(),
    };
    let selector = format!("{LABEL_ENVIRONMENT}={environment},{LABEL_STATUS}={}", Status::Deployed.as_str());
    // Only read: shared with a watch that answers, not copied.
    let secrets = cluster.list_shared(&targets, &selector, ManagedFields::Text, 1).await?;
    let mut by_namespace: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    let mut unlabelled = BTreeSet::new();
    for secret in secrets.iter().map(|s| &**s) {
        let namespace = namespace_of(secret).unwrap_or_default();
        let Some(release) = label(secret, LABEL_RELEASE).filter(|release| wanted(namespace, release)) else {
            continue;
        };
        match label(secret, LABEL_LOCK_NAMESPACE) {
            Some(own) if own == lock_namespace => by_namespace.entry(namespace).or_default().push(secret),
            Some(_) => {}
            None => {
                unlabelled.insert((namespace.to_string(), release.to_string()));
            }
        }
    }
    let mut records = Vec::new();
    for (namespace, secrets) in by_namespace {
        let mut newest: Vec<Arc<Record>> = record::last_deployed(secrets, environment)?.into_values().collect();
        newest.sort_by(|a, b| a.release.cmp(&b.release));
        records.extend(newest.into_iter().map(|record| (namespace.to_string(), record)));
    }
    // A release whose newest records are labelled is found by them.
    unlabelled.retain(|(namespace, release)| !records.iter().any(|(n, r)| n == namespace && &r.release == release));
    Ok(DeployedRecords { records, unlabelled: unlabelled.into_iter().collect() })
}

/// The complete records of `release` for `environment`, oldest first (one Secrets LIST).
pub async fn release_records(cluster: &Cluster, release: &Release, environment: &str) -> Result<Vec<Record>> {
    let target =
        ListTarget { api_version: "v1".into(), kind: "Secret".into(), namespace: Some(release.namespace.clone()) };
    let selector = format!("{LABEL_RELEASE}={}", release.name);
    let secrets = cluster.list(&BTreeSet::from([target]), &selector, ManagedFields::Text, 1).await?;
    Ok(record::from_secrets(&secrets)?.into_iter().filter(|r| r.environment == environment).collect())
}
