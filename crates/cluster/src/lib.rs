//! Talking to a Kubernetes cluster: configuration from a kubeconfig, discovery, listing the
//! objects weaver manages, server-side apply, retries, and the per-environment lock. Async
//! (kube is); commands drive it from a small runtime. Nothing here prints.

mod access;
mod changes;
mod config;
mod error;
mod events;
mod hooks;
mod inspect;
mod live;
mod lock;
mod objects;
mod on_runtime;
mod rate_limit;
mod ready;
mod retry;
mod rollout;
mod servers;
mod stored;
mod syncs;
mod wait;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

pub use access::{Access, Question, Subject, review_token};
pub use changes::{Waited, Watched};
pub use config::{ConnectOptions, GivenCluster, config as kube_config, given_kubeconfig};
pub use error::{api_message, humanize};
pub use events::{EVENTS_SHOWN, ObjectEvent, newest_first};
pub use hooks::{PodLog, hook_done};
pub use live::{Changed, LiveCache, fields_parsed, for_watching};
pub use lock::{DEFAULT_LEASE_DURATION, HeldLock, LockEvent, LockOptions, LockSubject, this_process, this_replica};
pub use objects::Deleted;
pub use rate_limit::{Budgeted, RequestRate, operator_budget};
pub use ready::{Readiness, built_in_readiness, readiness, with_pods, workload_kind};
pub use retry::DEFAULT_RETRY_BUDGET;
use retry::{Retrier, transient_answer};
pub use rollout::{DeploymentReplica, Revisions};
pub use servers::SharedServers;
pub use stored::{Migrated, migrate_stored_versions};
pub use syncs::{Patched, SyncCache, Syncs};
pub use wait::{NotReady, ObjectRef, WaitOutcome, WaitProgress};

use weaver_core::error::{Error, Result};
pub use weaver_core::manifest::{ListTarget, Listed};
use weaver_core::manifest::{MANAGER, api_group};
use weaver_net::retry::RetryPolicy;

/// How many requests weaver keeps in flight at once, by default. Below the 49 seats a 1.32
/// server's API priority and fairness gives the `global-default` level (where a user's
/// requests land), so one weaver never takes a whole level; high enough that a server far
/// away is not waited on one round trip per 8 requests (docs/src/architecture/implementation-notes.md, "Cluster performance").
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Which cluster a client talks to, for messages.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub context: String,
    pub server: String,
    pub request_timeout: Duration,
    /// How long requests may keep failing before weaver gives up (`--retry-budget`).
    pub retry_budget: Duration,
}

/// A connected client plus what discovery learnt about the cluster's kinds (cached for the run).
pub struct Cluster {
    client: kube::Client,
    pub info: ClusterInfo,
    /// Shared by the clusters of a fleet that reach one server (see [`SharedServers`]).
    discovered: Arc<Discovered>,
    /// For requests that are safe to repeat (see `retry`); counts those retried.
    retry: Retrier,
    /// Where LISTs of weaver's objects are answered from watches (see `live`).
    live: Option<Watching>,
}

/// The watches a cluster's LISTs of weaver's objects are answered from: as whom, over which
/// client (one whose requests are not counted among those in flight: a watch is in flight for
/// as long as it lasts).
struct Watching {
    cache: LiveCache,
    identity: String,
    client: kube::Client,
}

/// What discovery found.
pub(crate) struct Discovered {
    discovery: Discovery,
    /// By apiVersion and kind: every object of a run is resolved, and discovery's own lookup
    /// copies a group version's whole resource list each time.
    kinds: HashMap<String, HashMap<String, ServedKind>>,
}

/// A kind as the cluster serves it.
#[derive(Debug, Clone)]
pub struct ServedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl ServedKind {
    /// `deployments.apps`, `configmaps`: how kubectl names a resource.
    pub fn resource_name(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// The kinds a CustomResourceDefinition serves, keyed by `(apiVersion, kind)`, for use before
/// discovery knows them.
pub fn served_kinds_of_crd(crd: &Value) -> Vec<((String, String), ServedKind)> {
    let text = |path: &str| crd.pointer(path).and_then(Value::as_str).unwrap_or_default().to_string();
    let (group, kind, plural) = (text("/spec/group"), text("/spec/names/kind"), text("/spec/names/plural"));
    let namespaced = text("/spec/scope") != "Cluster";
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(|version| {
            let api_version = format!("{group}/{version}");
            let resource = ApiResource {
                group: group.clone(),
                version: version.to_string(),
                api_version: api_version.clone(),
                kind: kind.clone(),
                plural: plural.clone(),
            };
            ((api_version, kind.clone()), ServedKind { resource, namespaced })
        })
        .collect()
}

/// What the API server is and serves, as helm reads it for `.Capabilities` when it installs:
/// the server's version (`/version`) and every group/version and `group/version/Kind`
/// discovery lists (subresources' kinds too, as helm's `GetVersionSet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// `gitVersion`, such as `v1.32.13`.
    pub git_version: String,
    pub major: String,
    pub minor: String,
    /// Sorted.
    pub api_versions: Vec<String>,
}

/// Why a kind could not be resolved.
pub enum Unserved {
    /// The group is not served at all, or does not have this kind.
    Kind,
    /// The kind exists, but not at this version; these versions serve it.
    Version(Vec<String>),
}

impl Cluster {
    /// Connects and runs discovery (see `discover`).
    pub async fn connect(options: &ConnectOptions) -> Result<Cluster> {
        Self::connect_sharing(options, None).await
    }

    /// Connects as [`Cluster::connect`] does; with `servers`, within the budget of requests in
    /// flight of the context's server, with what discovery found there, which the first
    /// cluster of the server to connect reads for all of them, and over the client of the first
    /// cluster to connect with the same context.
    pub async fn connect_sharing(options: &ConnectOptions, servers: Option<&SharedServers>) -> Result<Cluster> {
        let (config, info) = config::config(options).await?;
        let rate = match &options.given {
            Some(GivenCluster::Config { rate, .. }) => rate.as_ref(),
            _ => None,
        };
        if let Some(live) = options.live() {
            // Another cluster's watches are named for its kubeconfig, in what they tell.
            let identity = match &options.given {
                Some(GivenCluster::Kubeconfig { described, .. }) => {
                    format!("the user of context `{}` in {described}", info.context)
                }
                _ => info.context.clone(),
            };
            return Self::watching(config, info, identity, live.clone(), rate).await;
        }
        let Some(servers) = servers else {
            return Self::from_config(config, info, rate).await;
        };
        let server = servers.server(&info.server);
        let live = match servers.live() {
            Some(live) => {
                let client =
                    server.watch_client(&info.context, config.clone()).map_err(|err| client_error(&err, &info))?;
                Some(Watching { cache: live.clone(), identity: info.context.clone(), client })
            }
            None => None,
        };
        let client =
            server.client(&info.context, info.request_timeout, config).map_err(|err| client_error(&err, &info))?;
        let retry = Retrier::new(RetryPolicy::within(info.retry_budget));
        let discovery = servers.discovery(&info.server);
        let discovered = discovery.get_or_try_init(|| discover(&client, &info, &retry)).await?.clone();
        Ok(Cluster { client, info, discovered, retry, live })
    }

    /// Connects as `identity` with a client and discovery `live` keeps, LISTs of weaver's
    /// objects answered from its watches.
    async fn watching(
        config: kube::Config,
        info: ClusterInfo,
        identity: String,
        live: LiveCache,
        rate: Option<&RequestRate>,
    ) -> Result<Cluster> {
        let clients = live.clients(&identity, config, rate).map_err(|err| client_error(&err, &info))?;
        let client = clients.requests;
        let retry = Retrier::new(RetryPolicy::within(info.retry_budget));
        let discovered = live.discovered(&info.server, discover(&client, &info, &retry)).await?;
        let watching = Watching { cache: live, identity, client: clients.watches };
        Ok(Cluster { client, info, discovered, retry, live: Some(watching) })
    }

    /// Connects with settings already read (see [`kube_config`]), as [`Cluster::connect`] does,
    /// every request within `rate` when one is given.
    pub async fn from_config(config: kube::Config, info: ClusterInfo, rate: Option<&RequestRate>) -> Result<Cluster> {
        let client = match rate {
            Some(rate) => rate.client(config),
            None => kube::Client::try_from(config),
        };
        let client = client.map_err(|err| client_error(&err, &info))?;
        let retry = Retrier::new(RetryPolicy::within(info.retry_budget));
        let discovered = discover(&client, &info, &retry).await?;
        Ok(Cluster { client, info, discovered, retry, live: None })
    }

    /// How many requests were sent more than once (see `retry`) through this handle so far.
    pub fn retried_requests(&self) -> u64 {
        self.retry.retried()
    }

    /// The client, for work that drives kube itself (the operator's controller).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The server's version and what discovery found (one request: `/version`).
    pub async fn capabilities(&self) -> Result<ServerCapabilities> {
        let version = self
            .retry
            .run(|| self.client.apiserver_version())
            .await
            .map_err(|gave_up| gave_up.into_error("reading the server's version", &self.info))?;
        let mut api_versions = BTreeSet::new();
        for group in self.discovered.discovery.groups() {
            for version in group.versions() {
                let group_version =
                    if group.name().is_empty() { version.to_string() } else { format!("{}/{version}", group.name()) };
                for (resource, caps) in group.versioned_resources(version) {
                    let kinds = std::iter::once(&resource).chain(caps.subresources.iter().map(|(sub, _)| sub));
                    api_versions
                        .extend(kinds.filter(|r| !r.kind.is_empty()).map(|r| format!("{group_version}/{}", r.kind)));
                }
                api_versions.insert(group_version);
            }
        }
        Ok(ServerCapabilities {
            git_version: version.git_version,
            major: version.major,
            minor: version.minor,
            api_versions: api_versions.into_iter().collect(),
        })
    }

    /// How the cluster serves `kind` at `api_version`.
    pub fn resolve(&self, api_version: &str, kind: &str) -> std::result::Result<ServedKind, Unserved> {
        if let Some(served) = self.discovered.kinds.get(api_version).and_then(|kinds| kinds.get(kind)) {
            return Ok(served.clone());
        }
        let group = api_group(api_version);
        let served = self.discovered.discovery.get(group).ok_or(Unserved::Kind)?;
        let versions: Vec<String> = served
            .versions()
            .filter(|v| served.versioned_resources(v).iter().any(|(r, _)| r.kind == kind))
            .map(|v| format!("{}/{v}", group).trim_start_matches('/').to_string())
            .collect();
        Err(if versions.is_empty() { Unserved::Kind } else { Unserved::Version(versions) })
    }

    fn api(&self, kind: &ServedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            None => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// Every object matching `label_selector` in each target, `managed_fields` read as it says:
    /// one LIST per target, at most `concurrency` at a time. Targets must resolve (see
    /// [`Cluster::resolve`]).
    pub async fn list(
        &self,
        targets: &BTreeSet<ListTarget>,
        label_selector: &str,
        managed_fields: ManagedFields,
        concurrency: usize,
    ) -> Result<Vec<Value>> {
        let shared = self.list_shared(targets, label_selector, managed_fields, concurrency).await?;
        Ok(shared.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    /// [`Cluster::list`], the objects a watch answers with shared with it rather than copied:
    /// for readers that only read.
    pub async fn list_shared(
        &self,
        targets: &BTreeSet<ListTarget>,
        label_selector: &str,
        managed_fields: ManagedFields,
        concurrency: usize,
    ) -> Result<Vec<Arc<Value>>> {
        let (watched, to_list) = self.answered_by_watches(targets, label_selector, managed_fields).await;
        let mut objects: Vec<Arc<Value>> = watched.into_iter().flat_map(|(_, objects)| objects).collect();
        if to_list.is_empty() {
            return Ok(objects);
        }
        let lists = match managed_fields {
            ManagedFields::Parsed => self.list_each_as::<Value>(&to_list, Some(label_selector), concurrency).await?,
            ManagedFields::Text => {
                self.list_each_as::<WithFieldsAsText>(&to_list, Some(label_selector), concurrency).await?
            }
        };
        objects.extend(lists.into_iter().flat_map(|(_, listed)| listed.items).map(Arc::new));
        Ok(objects)
    }

    /// The targets a watch answers, each with what it holds that `label_selector` selects,
    /// and those that must be LISTed.
    async fn answered_by_watches(
        &self,
        targets: &BTreeSet<ListTarget>,
        label_selector: &str,
        managed_fields: ManagedFields,
    ) -> (Vec<(ListTarget, Vec<Arc<Value>>)>, BTreeSet<ListTarget>) {
        let (mut watched, mut to_list) = (Vec::new(), BTreeSet::new());
        for target in targets {
            match self.watched(target, label_selector, managed_fields).await {
                Some(objects) => watched.push((target.clone(), objects)),
                None => drop(to_list.insert(target.clone())),
            }
        }
        (watched, to_list)
    }

    /// `target`'s objects that `label_selector` selects, from a watch when this cluster has
    /// one for it (see `live`); None when they must be LISTed.
    pub(crate) async fn watched(
        &self,
        target: &ListTarget,
        label_selector: &str,
        managed_fields: ManagedFields,
    ) -> Option<Vec<Arc<Value>>> {
        let Watching { cache, identity, client } = self.live.as_ref()?;
        let served = self.resolve(&target.api_version, &target.kind).ok()?;
        cache.list(client, identity, &served, target, label_selector, managed_fields).await
    }

    /// Tells the watches of a write (`answer`: the object after it; None for a deletion), so
    /// that this process reads it back.
    fn wrote(&self, served: &ServedKind, namespace: Option<&str>, name: &str, answer: Option<&Value>) {
        if let Some(Watching { cache: live, .. }) = &self.live {
            let target = ListTarget {
                api_version: served.resource.api_version.clone(),
                kind: served.resource.kind.clone(),
                namespace: namespace.filter(|_| served.namespaced).map(str::to_string),
            };
            live.wrote(target, name, answer);
        }
    }

    /// Each target's LIST answer (every object, or those `label_selector` selects), as JSON:
    /// one LIST per target, at most `concurrency` at a time, in no particular order. Targets
    /// must resolve (see [`Cluster::resolve`]); a namespaced resource without a namespace is
    /// listed in all.
    pub async fn list_each(
        &self,
        targets: &BTreeSet<ListTarget>,
        label_selector: Option<&str>,
        concurrency: usize,
    ) -> Result<Vec<(ListTarget, Listed)>> {
        let (watched, to_list) =
            self.answered_by_watches(targets, label_selector.unwrap_or_default(), ManagedFields::Parsed).await;
        let mut lists: Vec<(ListTarget, Listed)> = watched
            .into_iter()
            .map(|(target, items)| {
                let items = items.into_iter().map(Arc::unwrap_or_clone).collect();
                (target, Listed { items, metadata: Default::default() })
            })
            .collect();
        if !to_list.is_empty() {
            lists.extend(self.list_each_as::<Value>(&to_list, label_selector, concurrency).await?);
        }
        Ok(lists)
    }

    /// [`Cluster::list_each`], each item read as `I`.
    async fn list_each_as<I: serde::de::DeserializeOwned + Into<Value>>(
        &self,
        targets: &BTreeSet<ListTarget>,
        label_selector: Option<&str>,
        concurrency: usize,
    ) -> Result<Vec<(ListTarget, Listed)>> {
        let params = match label_selector {
            Some(selector) => ListParams::default().labels(selector),
            None => ListParams::default(),
        };
        let lists = futures::stream::iter(
            targets
                .iter()
                .map(|target| {
                    let params = params.clone();
                    async move {
                        let served = self.resolve(&target.api_version, &target.kind).map_err(|_| {
                            Error::new(format!("the cluster does not serve {} {}", target.api_version, target.kind))
                        })?;
                        let doing = match &target.namespace {
                            Some(ns) if served.namespaced => {
                                format!("listing {} in namespace {ns}", served.resource_name())
                            }
                            None if served.namespaced => {
                                format!("listing {} in all namespaces", served.resource_name())
                            }
                            _ => format!("listing {}", served.resource_name()),
                        };
                        // Read as plain JSON: kube's typed list would parse every item's metadata into
                        // structs, only for weaver to turn them back into JSON.
                        let url = DynamicObject::url_path(
                            &served.resource,
                            target.namespace.as_deref().filter(|_| served.namespaced),
                        );
                        let list = self
                            .retry
                            .run(|| async {
                                let request =
                                    kube::core::Request::new(&url).list(&params).map_err(kube::Error::BuildRequest)?;
                                self.client.request::<ItemList<I>>(request).await
                            })
                            .await
                            .map_err(|gave_up| gave_up.into_error(&doing, &self.info))?;
                        let items =
                            list.items.into_iter().map(|item| with_kind(item.into(), &served.resource)).collect();
                        Ok::<_, Error>((target.clone(), Listed { items, metadata: list.metadata }))
                    }
                })
                .collect::<Vec<_>>(),
        )
        .buffer_unordered(concurrency.max(1));
        lists.try_collect().await
    }

    /// What discovery found, by apiVersion and kind: whether each kind is namespaced.
    pub fn served_scopes(&self) -> HashMap<String, HashMap<String, bool>> {
        self.discovered
            .kinds
            .iter()
            .map(|(api_version, kinds)| {
                (api_version.clone(), kinds.iter().map(|(kind, served)| (kind.clone(), served.namespaced)).collect())
            })
            .collect()
    }

    /// Server-side apply of `object` as field manager `weaver`; with `dry_run` the server
    /// computes the result without storing it. Returns the object as the server has (or would
    /// have) it. Transient failures are retried: applying the same configuration twice is safe.
    pub async fn apply(
        &self,
        object: &Value,
        served: &ServedKind,
        dry_run: bool,
        force: bool,
    ) -> std::result::Result<Value, ApplyError> {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
        let mut params = PatchParams::apply(MANAGER);
        if dry_run {
            params = params.dry_run();
        }
        if force {
            params = params.force();
        }
        let api = self.api(served, namespace);
        let patch = Patch::Apply(object);
        match self.retry.run(|| api.patch(name, &params, &patch)).await {
            Ok(result) => {
                let result = object_value(result, &served.resource).map_err(ApplyError::Other)?;
                if !dry_run {
                    self.wrote(served, namespace, name, Some(&result));
                }
                Ok(result)
            }
            Err(retry::GaveUp { error: kube::Error::Api(status), .. }) if status.code == 409 => {
                Err(ApplyError::Conflict(status.message.clone()))
            }
            Err(retry::GaveUp { error: kube::Error::Api(status), .. }) if status.code == 404 => {
                Err(ApplyError::NotFound(status.message.clone()))
            }
            Err(gave_up) => Err(ApplyError::Other(
                gave_up.into_error(&format!("applying {}", weaver_core::manifest::ObjectKey::of(object)), &self.info),
            )),
        }
    }
}

fn client_error(err: &kube::Error, info: &ClusterInfo) -> Error {
    let why = error::innermost(err);
    let error = Error::new(format!("cannot set up a client for context `{}` ({}): {why}", info.context, info.server));
    // rustls-platform-verifier's words for an empty trust store (no CA bundle, as in weaver's
    // image). An API server's certificate is signed by the cluster's own CA, which no public
    // root list holds: the kubeconfig must name it.
    match why.contains("No CA certificates were loaded from the system") {
        true => error.with_help(
            "the kubeconfig gives no certificate-authority-data for this cluster, and this machine has no trust store \
             to check the server with (weaver's image has none): add the cluster's CA to the kubeconfig",
        ),
        false => error,
    }
}

/// Runs discovery (two requests with aggregated discovery, as kubectl does). Discovery is the
/// first contact, so only the server's transient answers are retried: a cluster that cannot be
/// reached at all is reported after one request timeout.
async fn discover(client: &kube::Client, info: &ClusterInfo, retry: &Retrier) -> Result<Arc<Discovered>> {
    let doing = "discovering API kinds";
    let aggregated = retry.run_when(transient_answer, || Discovery::new(client.clone()).run_aggregated());
    let discovery = match aggregated.await {
        // The core group always exists; servers before 1.26 answer the aggregated request
        // with plain group lists, which read as nothing.
        Ok(discovery) if discovery.has_group("") => discovery,
        Ok(_) | Err(retry::GaveUp { error: kube::Error::Api(_) | kube::Error::SerdeError(_), .. }) => retry
            .run_when(group_gone_or_transient, || Discovery::new(client.clone()).run())
            .await
            .map_err(|gave_up| gave_up.into_error(doing, info))?,
        Err(gave_up) => return Err(gave_up.into_error(doing, info)),
    };
    let kinds = served_kinds(&discovery);
    Ok(Arc::new(Discovered { discovery, kinds }))
}

/// Every kind `discovery` found, by apiVersion and kind.
fn served_kinds(discovery: &Discovery) -> HashMap<String, HashMap<String, ServedKind>> {
    let mut kinds: HashMap<String, HashMap<String, ServedKind>> = HashMap::new();
    for group in discovery.groups() {
        for version in group.versions() {
            for (resource, caps) in group.versioned_resources(version) {
                let served = ServedKind { namespaced: caps.scope == Scope::Namespaced, resource };
                let by_kind = kinds.entry(served.resource.api_version.clone()).or_default();
                // The first resource of a kind is the one discovery's own lookup found.
                by_kind.entry(served.resource.kind.clone()).or_insert(served);
            }
        }
    }
    kinds
}

/// Per-group discovery lists the groups, then reads each: a group whose CRD was deleted in
/// between answers 404, and discovery starting again sees a consistent list.
fn group_gone_or_transient(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404) || transient_answer(err)
}

/// How a server-side apply can fail, where callers act on the difference.
#[derive(Debug)]
pub enum ApplyError {
    /// Another field manager owns fields this apply sets (the server's message names them).
    Conflict(String),
    /// The namespace (or the kind) does not exist yet.
    NotFound(String),
    Other(Error),
}

/// The items of a LIST answer, each read as `I`.
#[derive(serde::Deserialize)]
struct ItemList<I> {
    items: Vec<I>,
    #[serde(default)]
    metadata: Value,
}

/// How a LIST reads its items' `metadata.managedFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedFields {
    /// As JSON, like the rest of the object.
    Parsed,
    /// As the JSON text of the array, a string in its place, parsed only where asked
    /// (`diff::fields`): planning a release with a record never reads them, and they are a third
    /// to a half of a listed object's bytes (far more of its parsed nodes), which parsing and
    /// dropping cost as much as the rest.
    Text,
}

/// A listed object whose `metadata.managedFields` is kept as its JSON text
/// ([`ManagedFields::Text`]).
struct WithFieldsAsText(Value);

impl<'de> serde::Deserialize<'de> for WithFieldsAsText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor { metadata: false }).map(WithFieldsAsText)
    }
}

impl From<WithFieldsAsText> for Value {
    fn from(object: WithFieldsAsText) -> Value {
        object.0
    }
}

/// An object (`metadata`: its metadata), read as JSON but for its `managedFields`.
#[derive(Clone, Copy)]
struct ObjectVisitor {
    metadata: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectVisitor {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str(if self.metadata { "an object's metadata" } else { "an object" })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "metadata" if !self.metadata => map.next_value_seed(ObjectVisitor { metadata: true })?,
                "managedFields" if self.metadata => {
                    let text: Box<str> = map.next_value::<Box<serde_json::value::RawValue>>()?.into();
                    Value::String(text.into())
                }
                _ => map.next_value()?,
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    // A null metadata (the only other value the server could send) stays null.
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A returned object as JSON, with the `apiVersion` and `kind` that list items lack.
fn object_value(object: DynamicObject, resource: &ApiResource) -> Result<Value> {
    let value = serde_json::to_value(object)
        .map_err(|err| Error::new(format!("cannot read an object the server sent: {err}")))?;
    Ok(with_kind(value, resource))
}

/// `object` with the `apiVersion` and `kind` of `resource`, which list items lack.
fn with_kind(mut object: Value, resource: &ApiResource) -> Value {
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(resource.api_version.clone()));
        map.insert("kind".into(), Value::String(resource.kind.clone()));
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_read_with_managed_fields_as_text_differs_only_there_and_gives_the_same_owned_fields() {
        let fields = json!([
            {"manager": "weaver", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:b": {}}}}
        ]);
        let list = json!({"metadata": {"resourceVersion": "7"}, "items": [
            {"metadata": {"name": "a", "labels": {"x": "1"}, "managedFields": fields}, "data": {"a": "1", "managedFields": "b"}},
            {"metadata": {"name": "b"}, "data": {"managedFields": [1]}},
            {"metadata": null}
        ]});
        let text = list.to_string();
        let parsed: ItemList<Value> = serde_json::from_str(&text).unwrap();
        let compact: ItemList<WithFieldsAsText> = serde_json::from_str(&text).unwrap();
        let compact: Vec<Value> = compact.items.into_iter().map(Value::from).collect();
        // Only an item's metadata.managedFields is read differently: as the array's JSON text.
        let mut expected = parsed.items.clone();
        expected[0]["metadata"]["managedFields"] = Value::String(fields.to_string());
        assert_eq!(compact, expected);
        // The text is the array's JSON: what is read of it is the same either way.
        let text = compact[0]["metadata"]["managedFields"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), fields);
        assert_eq!(compact[1]["metadata"].get("managedFields"), None);
    }
}
