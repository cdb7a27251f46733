//! The ConfigMapSync controller on `kube::runtime::Controller`, shaped like kube-rs's
//! controller-rs: `reconcile` and `error_policy` with a shared [`Context`]. It reads with the
//! operator's own identity, from watch caches (ConfigMapSyncs, ConfigMaps, Namespaces), asks
//! what the tenant's ServiceAccount may see with remembered SubjectAccessReviews (`access`), and
//! writes every target as that ServiceAccount (`tenant`). A reconcile that finds every target in
//! sync makes no API request. Decisions are made by `plan::plan` and `status::after_reconcile`;
//! this file only observes and carries them out. It logs through `tracing`, one line per event
//! in its own words; the command that runs it decides where logs go.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::finalizer::{Error as FinalizerError, Event as Finalizing, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::access::{self, Account, Verdict};
use super::api::{ConfigMapSync, ConfigMapSyncStatus, SyncReason};
use super::plan::{self, Action as Step, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, Observed};
use super::status::{self, Blocked, Outcome};
use crate::Backoff;
use crate::conditions::{READY, TypedReason};
use crate::events::Recorder;
use crate::telemetry::Telemetry;
use crate::tenant::{TenantError, Tenants};
use weaver_cluster::{Access, api_message};

/// Deletes every target before its ConfigMapSync goes.
pub const FINALIZER: &str = "weaver.example.com/configmapsync";
/// The field manager and event reporter.
pub const CONTROLLER_NAME: &str = weaver_api::OPERATOR_NAME;
/// What the controller's cache holds, as `/readyz` names it.
const CACHE: &str = "ConfigMapSync";
/// Even without events, every ConfigMapSync is looked at this often (missed events, expired
/// tokens, authorizers other than RBAC).
const RESYNC: Duration = Duration::from_secs(300);
/// A ConfigMapSync that is not in sync, or whose reconcile failed, is looked at again after this,
/// doubled for each further attempt up to [`RETRY_MAX`]. What usually unblocks it (a namespace,
/// a source, an RBAC grant) is watched and reconciles it at once anyway.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = RESYNC;
/// A write refused because the cache was behind (409): looked at again this soon.
const RETRY_STALE: Duration = Duration::from_secs(1);

/// What a reconcile can fail with; `error_policy` retries all of them, backing off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", api_message(.0))]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Tenant(#[from] TenantError),
    #[error("cannot delete every target, so the finalizer stays: {0}")]
    Cleanup(String),
    #[error("{}", finalizer_message(.0))]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("the operator's watch caches stopped")]
    CacheGone,
}

fn finalizer_message(err: &kube::runtime::finalizer::Error<Error>) -> String {
    match err {
        FinalizerError::ApplyFailed(inner) | FinalizerError::CleanupFailed(inner) => inner.to_string(),
        FinalizerError::AddFinalizer(inner) => format!("cannot add the finalizer: {}", api_message(inner)),
        FinalizerError::RemoveFinalizer(inner) => format!("cannot remove the finalizer: {}", api_message(inner)),
        FinalizerError::UnnamedObject => "the ConfigMapSync has no name".into(),
        FinalizerError::InvalidFinalizer => "the finalizer name is invalid".into(),
    }
}

impl Error {
    /// The CamelCase reason logged with the error.
    fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiError",
            Error::Tenant(_) => "TenantClientFailed",
            Error::Cleanup(_) => "CleanupFailed",
            Error::Finalizer(inner) => match inner.as_ref() {
                FinalizerError::ApplyFailed(inner) | FinalizerError::CleanupFailed(inner) => inner.reason(),
                FinalizerError::AddFinalizer(_) | FinalizerError::RemoveFinalizer(_) => "FinalizerFailed",
                _ => "InvalidObject",
            },
            Error::CacheGone => "CacheGone",
        }
    }
}

/// The operator's watch caches, which reconciles read instead of the API server.
struct Caches {
    /// Every ConfigMap and Namespace.
    config_maps: Store<ConfigMap>,
    namespaces: Store<Namespace>,
    /// The ConfigMaps carrying each ConfigMapSync's owner labels.
    owned: Index<ConfigMap>,
    /// How many of the two stores have listed once. (kube's `Store::wait_until_ready` wakes
    /// only one of several waiters, and reconciles run several at once.)
    listed: tokio::sync::watch::Receiver<u8>,
}

/// What every reconcile shares.
pub struct Context {
    /// The operator's own identity: status, finalizers, token requests, reviews and events.
    pub client: kube::Client,
    pub tenants: Tenants,
    pub access: Access,
    pub recorder: Recorder,
    pub telemetry: Arc<Telemetry>,
    caches: Caches,
    /// Attempts since each ConfigMapSync was last in sync.
    retries: Backoff<ObjectRef<ConfigMapSync>>,
}

impl Context {
    fn new(client: kube::Client, base: kube::Config, settings: &Settings, caches: Caches) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.to_string(),
            instance: std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()),
        };
        Context {
            tenants: Tenants::new(client.clone(), base, settings.rate.clone()),
            access: Access::new(client.clone(), access::ANSWER_AGE),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            telemetry: settings.telemetry.clone(),
            caches,
            retries: Backoff::new(RETRY_FIRST, RETRY_MAX),
        }
    }

    /// How long until `sync` is looked at again after an attempt that left it not in sync.
    fn back_off(&self, sync: &ConfigMapSync) -> Duration {
        self.retries.failed(ObjectRef::from_obj(sync))
    }

    /// `sync` is in sync (or gone): the next failure starts the back-off afresh.
    fn settled(&self, sync: &ConfigMapSync) {
        self.retries.settled(&ObjectRef::from_obj(sync));
    }
}

/// Changes worth a reconcile of the ConfigMapSync itself: its spec (generation), its
/// finalizers and its deletion. Status writes, the operator's own, are not.
fn spec_or_lifecycle(sync: &ConfigMapSync) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (sync.meta().generation, sync.finalizers(), sync.meta().deletion_timestamp.is_some()).hash(&mut hasher);
    Some(hasher.finish())
}

/// How a controller is run.
#[derive(Clone)]
pub struct Settings {
    /// Only ConfigMapSyncs whose labels match (as `kubectl -l`), to shard them between
    /// operators, as Flux's `--watch-label-selector` does.
    pub label_selector: Option<String>,
    /// How many ConfigMapSyncs are reconciled at once.
    pub concurrency: u16,
    /// Metrics and readiness, which the HTTP endpoints serve.
    pub telemetry: Arc<Telemetry>,
    /// The request budget tenants' clients share with the operator's own (`--kube-api-qps`).
    pub rate: Option<weaver_cluster::RequestRate>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { label_selector: None, concurrency: DEFAULT_CONCURRENCY, telemetry: Arc::default(), rate: None }
    }
}

/// Reconciles at once, by default.
pub const DEFAULT_CONCURRENCY: u16 = 4;

/// Runs the controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    client: kube::Client,
    base: kube::Config,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let syncs: Api<ConfigMapSync> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let mut selected = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        selected = selected.labels(selector);
    }
    let sources = Index::new(source_of);
    let indexer = sources.clone();
    // Ready once the first list of ConfigMapSyncs is in the cache. (Seen on the event stream:
    // a second waiter on the store's readiness would steal the controller's wake-up.)
    let telemetry = settings.telemetry.clone();
    telemetry.readiness.set_synced(CACHE, false);
    let trigger = watcher(syncs, selected)
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                indexer.observe(event);
                if matches!(event, watcher::Event::InitDone) {
                    telemetry.readiness.set_synced(CACHE, true);
                }
            }
        })
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default());
    let controller = Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency));
    let by_namespace = controller.store();
    // Reconciles read ConfigMaps and Namespaces from these caches, fed by the same watches that
    // trigger them: a reconcile triggered by an event sees at least that event.
    let (listed, caches_listed) = tokio::sync::watch::channel(0u8);
    let listed = Arc::new(listed);
    let (config_maps, config_map_cache) = reflector::store();
    let owned = Index::new(owner_of);
    let owned_indexer = owned.clone();
    let config_map_events = watcher(Api::<ConfigMap>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(config_map_cache)
        .inspect(move |event| {
            if let Ok(event) = event {
                owned_indexer.observe(event);
            }
        })
        .inspect(first_list_done(listed.clone()))
        .touched_objects();
    let (namespaces, namespace_cache) = reflector::store();
    let namespace_events = watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(namespace_cache)
        .inspect(first_list_done(listed))
        .touched_objects();
    let caches = Caches { config_maps, owned, namespaces, listed: caches_listed };
    let context = Arc::new(Context::new(client.clone(), base, &settings, caches));
    // Any RBAC change can grant or revoke what a tenant's account may do: remembered answers go,
    // and every ConfigMapSync is looked at again (a reconcile in sync costs no request).
    let access = context.clone();
    let rbac_changes = futures::stream::select_all([
        rbac_changes::<rbac::Role>(&client),
        rbac_changes::<rbac::RoleBinding>(&client),
        rbac_changes::<rbac::ClusterRole>(&client),
        rbac_changes::<rbac::ClusterRoleBinding>(&client),
    ])
    .map(move |()| access.access.forget_all());
    controller
        // Sources map back through the index; targets through their owner labels.
        .watches_stream(config_map_events, move |config_map| {
            let namespace = config_map.namespace().unwrap_or_default();
            sources
                .get((&namespace, &config_map.name_any()))
                .into_iter()
                .chain(owner_of(&config_map))
                .map(|(ns, name)| ObjectRef::new(&name).within(&ns))
                .collect::<Vec<_>>()
        })
        // A namespace created, deleted, relabelled or terminating can add or remove a target.
        .watches_stream(namespace_events, move |namespace| {
            let name = namespace.name_any();
            by_namespace
                .state()
                .iter()
                .filter(|sync| sync.spec.namespace_selector.is_some() || sync.spec.target_namespaces.contains(&name))
                .map(|sync| ObjectRef::from_obj(sync.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(rbac_changes)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(crate::log_queue)
        .await;
}

/// Counts a cache in `listed` when its first list is complete.
fn first_list_done<K>(
    listed: Arc<tokio::sync::watch::Sender<u8>>,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    let mut done = false;
    move |event| {
        if !done && matches!(event, Ok(watcher::Event::InitDone)) {
            done = true;
            listed.send_modify(|listed| *listed += 1);
        }
    }
}

/// A `()` for every change to objects of kind `K` after the first list, and once a list is
/// complete (a watch that was cut may have missed changes).
fn rbac_changes<K>(client: &kube::Client) -> futures::stream::BoxStream<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .filter_map(|event| {
            std::future::ready(match event {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => Some(()),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(err) => {
                    tracing::warn!("the RBAC watch failed, retrying: {err}");
                    None
                }
            })
        })
        .boxed()
}

pub use crate::election::Role;

/// Runs the controller only while this replica holds the leader Lease (`election`), or at once
/// without one (see [`crate::election::lead`]).
pub async fn run_elected(
    client: kube::Client,
    base: kube::Config,
    settings: Settings,
    election: Option<(weaver_cluster::Cluster, weaver_cluster::LockOptions)>,
    on_role: impl FnMut(Role),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> weaver_core::Result<()> {
    let telemetry = settings.telemetry.clone();
    let ready = move |standby| telemetry.readiness.set_standby(standby);
    crate::election::lead(election, ready, on_role, shutdown, |stopped| run(client, base, settings, stopped)).await
}

/// Objects by a key each may carry, kept up to date from their watch, so an event or a
/// reconcile finds the objects of one key without scanning a cache: ConfigMapSyncs by the source
/// they copy, (namespace, ConfigMap name); ConfigMaps by the ConfigMapSync their owner labels
/// name, (namespace, name).
#[derive(Clone)]
struct Index<K> {
    key_of: fn(&K) -> Option<(String, String)>,
    entries: Arc<std::sync::RwLock<IndexEntries>>,
}

#[derive(Default)]
struct IndexEntries {
    /// key → the (namespace, name) of each object carrying it.
    objects: HashMap<(String, String), BTreeSet<(String, String)>>,
    /// (namespace, name) → its key, to move an entry when it changes.
    keys: HashMap<(String, String), (String, String)>,
}

impl<K: Resource> Index<K> {
    fn new(key_of: fn(&K) -> Option<(String, String)>) -> Self {
        Index { key_of, entries: Arc::default() }
    }

    fn observe(&self, event: &watcher::Event<K>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let forget = |entries: &mut IndexEntries, object: &(String, String)| {
            if let Some(key) = entries.keys.remove(object)
                && let Some(objects) = entries.objects.get_mut(&key)
            {
                objects.remove(object);
                if objects.is_empty() {
                    entries.objects.remove(&key);
                }
            }
        };
        let id = |object: &K| {
            (object.meta().namespace.clone().unwrap_or_default(), object.meta().name.clone().unwrap_or_default())
        };
        match event {
            // A relist follows: start afresh.
            watcher::Event::Init => *entries = IndexEntries::default(),
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                let id = id(object);
                forget(&mut entries, &id);
                if let Some(key) = (self.key_of)(object) {
                    entries.objects.entry(key.clone()).or_default().insert(id.clone());
                    entries.keys.insert(id, key);
                }
            }
            watcher::Event::Delete(object) => forget(&mut entries, &id(object)),
            watcher::Event::InitDone => {}
        }
    }

    /// The (namespace, name) of every object carrying `key`.
    fn get(&self, key: (&str, &str)) -> Vec<(String, String)> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.objects.get(&(key.0.to_string(), key.1.to_string())).into_iter().flatten().cloned().collect()
    }
}

/// A ConfigMapSync's key in the source index: its namespace and source.
fn source_of(sync: &ConfigMapSync) -> Option<(String, String)> {
    Some((sync.namespace().unwrap_or_default(), sync.spec.source.name.clone()))
}

/// A ConfigMap's key in the owner index: the ConfigMapSync its owner labels name.
fn owner_of(config_map: &ConfigMap) -> Option<(String, String)> {
    let labels = config_map.labels();
    Some((labels.get(OWNER_NAMESPACE_LABEL)?.clone(), labels.get(OWNER_NAME_LABEL)?.clone()))
}

/// Brings one ConfigMapSync's targets to its source, or removes them all when it is deleted.
pub async fn reconcile(sync: Arc<ConfigMapSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let syncs: Api<ConfigMapSync> = Api::namespaced(ctx.client.clone(), &namespace);
    let started = tokio::time::Instant::now();
    let telemetry = ctx.telemetry.clone();
    // Nothing is decided on a cache that has not listed yet.
    if ctx.caches.listed.clone().wait_for(|listed| *listed == 2).await.is_err() {
        return Err(Error::CacheGone);
    }
    let result = finalizer(&syncs, FINALIZER, sync, |event| async {
        match event {
            Finalizing::Apply(sync) => sync_targets(&sync, &ctx).await,
            Finalizing::Cleanup(sync) => remove_targets(&sync, &ctx).await,
        }
    })
    .await;
    let result = match result {
        // Two reconciles raced to remove the finalizer: the ConfigMapSync is gone, as wanted.
        Err(FinalizerError::RemoveFinalizer(kube::Error::Api(status))) if status.code == 404 => {
            Ok(Action::await_change())
        }
        // The finalizer patch tests that the list is as the cache saw it: the cache was behind
        // (another reconcile has just added it). Look again once the cache has caught up.
        Err(FinalizerError::AddFinalizer(kube::Error::Api(status))) if status.code == 422 => {
            Ok(Action::requeue(RETRY_STALE))
        }
        other => other.map_err(|err| Error::Finalizer(Box::new(err))),
    };
    telemetry.reconciled(started.elapsed(), result.is_err());
    result
}

/// A failed reconcile is tried again, backing off; the log says why in one line.
pub fn error_policy(sync: Arc<ConfigMapSync>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.back_off(&sync);
    tracing::warn!(
        configmapsync = %ObjectRef::from_obj(sync.as_ref()),
        reason = error.reason(),
        "{error}; retrying in {}s",
        delay.as_secs()
    );
    Action::requeue(delay)
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

async fn patch_status(sync: &ConfigMapSync, ctx: &Context, status: &ConfigMapSyncStatus) -> Result<(), Error> {
    let syncs: Api<ConfigMapSync> = Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    let patch = serde_json::json!({"status": status});
    syncs.patch_status(&sync.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn event(ctx: &Context, sync: &ConfigMapSync, type_: EventType, reason: &impl TypedReason, note: String) {
    if let Err(err) = ctx.recorder.publish(type_, reason, "Sync", &note, &sync.object_ref(&())).await {
        tracing::warn!(reason = reason.as_str(), "cannot record an event: {}", api_message(&err));
    }
}

/// Every ConfigMap carrying this ConfigMapSync's owner labels, listed from the API server (not
/// the cache, which may not have seen a target created a moment ago): the finalizer must not
/// leave one behind. Each is deleted as the tenant, so nothing the tenant may not touch is.
async fn owned_targets(sync: &ConfigMapSync, ctx: &Context) -> Result<Vec<ConfigMap>, Error> {
    let owner = format!(
        "{OWNER_NAMESPACE_LABEL}={},{OWNER_NAME_LABEL}={}",
        sync.namespace().unwrap_or_default(),
        sync.name_any()
    );
    Ok(Api::<ConfigMap>::all(ctx.client.clone()).list(&ListParams::default().labels(&owner)).await?.items)
}

/// A failed write, as the target's status says it.
fn outcome_of(err: kube::Error) -> Outcome {
    match err {
        kube::Error::Api(status) if status.code == 403 => Outcome::Forbidden(status.message),
        kube::Error::Api(status) => Outcome::Failed(status.message),
        other => Outcome::Failed(other.to_string()),
    }
}

async fn execute(tenant: &kube::Client, step: &Step) -> Result<(), kube::Error> {
    let params = PostParams { field_manager: Some(CONTROLLER_NAME.into()), ..PostParams::default() };
    match step {
        Step::Create(target) => {
            let api: Api<ConfigMap> = Api::namespaced(tenant.clone(), &target.namespace().unwrap_or_default());
            api.create(&params, target).await.map(drop)
        }
        Step::Update(target) => {
            let api: Api<ConfigMap> = Api::namespaced(tenant.clone(), &target.namespace().unwrap_or_default());
            api.replace(&target.name_any(), &params, target).await.map(drop)
        }
        Step::Delete { namespace, name } => {
            let api: Api<ConfigMap> = Api::namespaced(tenant.clone(), namespace);
            match api.delete(name, &DeleteParams::default()).await {
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                other => other.map(drop),
            }
        }
    }
}

async fn sync_targets(sync: &ConfigMapSync, ctx: &Context) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let account = Account { namespace: namespace.clone(), name: sync.spec.service_account_name.clone() };
    let tenant = match ctx.tenants.client(&namespace, &account.name).await {
        Ok(tenant) => tenant,
        Err(TenantError::ServiceAccountNotFound(_)) => {
            return blocked(sync, ctx, Blocked::ServiceAccountNotFound(account.name)).await;
        }
        Err(TenantError::TokenRequest { source, .. }) => {
            let blocked_by =
                Blocked::TokenRequestFailed { account: account.name.clone(), message: api_message(&source) };
            return blocked(sync, ctx, blocked_by).await;
        }
        Err(err) => return Err(err.into()),
    };
    // The source is copied only if the account may read it itself.
    if let Verdict::Denied(message) =
        access::may(&ctx.access, &account, &namespace, "get", &sync.spec.source.name).await?
    {
        return blocked(sync, ctx, Blocked::SourceForbidden(message)).await;
    }
    let caches = &ctx.caches;
    let cached = |namespace: &str, name: &str| caches.config_maps.get(&ObjectRef::new(name).within(namespace));
    let source = cached(&namespace, &sync.spec.source.name);
    let namespaces = caches.namespaces.state();
    let owned: Vec<Arc<ConfigMap>> = caches
        .owned
        .get((&namespace, &sync.name_any()))
        .iter()
        .filter_map(|(namespace, name)| cached(namespace, name))
        .collect();
    // Each target as the account could read it: the plan and the status then say only what the
    // tenant could find out itself.
    let mut targets = BTreeMap::new();
    for target in plan::target_namespaces(sync, &namespaces).into_keys() {
        let seen = match access::may(&ctx.access, &account, &target, "get", &sync.spec.source.name).await? {
            Verdict::Denied(message) => plan::Seen::Forbidden(message),
            Verdict::Allowed => plan::Seen::Readable(cached(&target, &sync.spec.source.name)),
        };
        targets.insert(target, seen);
    }
    let observed =
        Observed { sync, source: source.as_deref(), namespaces: &namespaces, targets: &targets, owned: &owned };
    let plan = plan::plan(&observed);

    let mut outcomes = BTreeMap::new();
    for (target, decision) in &plan.targets {
        let outcome = match decision {
            Err(settled) => Outcome::Settled(settled.clone()),
            Ok(step) => match execute(&tenant, step).await {
                Ok(()) => Outcome::Synced,
                // The cache was behind the server (a target created or changed a moment ago):
                // decide again once it has caught up, rather than report a passing state.
                Err(kube::Error::Api(status)) if status.code == 409 => return Ok(Action::requeue(RETRY_STALE)),
                // The token was refused: Tenants requests another for the retry.
                Err(kube::Error::Api(status)) if status.code == 401 => {
                    return Err(Error::Kube(kube::Error::Api(status)));
                }
                Err(err) => outcome_of(err),
            },
        };
        outcomes.insert(target.clone(), outcome);
    }
    for step in &plan.removals {
        if let (Err(err), Step::Delete { namespace, name }) = (execute(&tenant, step).await, step) {
            let note = format!(
                "cannot delete ConfigMap {namespace}/{name}, no longer a target: {}",
                describe(&outcome_of(err))
            );
            event(ctx, sync, EventType::Warning, &SyncReason::DeleteFailed, note).await;
        }
    }
    let status = status::after_reconcile(
        sync.meta().generation,
        plan.source_found,
        None,
        &outcomes,
        sync.status.as_ref(),
        &now(),
    );
    report(sync, ctx, status).await
}

/// Nothing can be synced: Ready is False, with the reason, from the first attempt on.
async fn blocked(sync: &ConfigMapSync, ctx: &Context, why: Blocked) -> Result<Action, Error> {
    let status = status::after_reconcile(
        sync.meta().generation,
        true,
        Some(&why),
        &BTreeMap::new(),
        sync.status.as_ref(),
        &now(),
    );
    report(sync, ctx, status).await
}

/// Writes `status` if it changed, with a Warning event and a log line for each new failure
/// (the whole ConfigMapSync's, or a target's), and says when to look again.
async fn report(sync: &ConfigMapSync, ctx: &Context, status: ConfigMapSyncStatus) -> Result<Action, Error> {
    ctx.telemetry.set_targets(&metrics_key(sync), Some(&status));
    let previous = sync.status.as_ref();
    if previous != Some(&status) {
        let ready = &status.conditions[0];
        let was = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == ready.type_));
        // As `status::after_reconcile` wrote it, from a SyncReason.
        let reason = SyncReason::parse(&ready.reason);
        // TargetsNotSynced is told per target, below.
        if ready.status == "False"
            && reason != SyncReason::TargetsNotSynced
            && was.is_none_or(|was| was.reason != ready.reason)
        {
            tracing::warn!(configmapsync = %ObjectRef::from_obj(sync), %reason, "{}", ready.message);
            event(ctx, sync, EventType::Warning, &reason, ready.message.clone()).await;
        }
        for target in status.targets.iter().filter(|t| !t.synced) {
            let was = previous.and_then(|p| p.targets.iter().find(|p| p.namespace == target.namespace));
            // Every target `status::after_reconcile` made has its reason.
            if let Some(reason) = &target.reason
                && was.is_none_or(|was| was.reason != target.reason)
            {
                let note = format!(
                    "target {}: {}",
                    target.namespace,
                    target.message.clone().unwrap_or_else(|| reason.to_string())
                );
                tracing::info!(configmapsync = %ObjectRef::from_obj(sync), %reason, "{note}");
                event(ctx, sync, EventType::Warning, reason, note).await;
            }
        }
        patch_status(sync, ctx, &status).await?;
    }
    if status.conditions.iter().any(|c| c.type_ == READY && c.status == "True") {
        ctx.settled(sync);
        Ok(Action::requeue(RESYNC))
    } else {
        Ok(Action::requeue(ctx.back_off(sync)))
    }
}

/// `namespace/name`: one ConfigMapSync in the metrics' bookkeeping.
fn metrics_key(sync: &ConfigMapSync) -> String {
    format!("{}/{}", sync.namespace().unwrap_or_default(), sync.name_any())
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Forbidden(message) | Outcome::Failed(message) => message.clone(),
        other => format!("{other:?}"),
    }
}

/// The finalizer's work: every target goes, deleted as the tenant. If that is not allowed, the
/// finalizer stays (the ConfigMapSync is not deleted), the condition says which targets and
/// why, an event is recorded, and the deletion is tried again (at once when RBAC changes).
async fn remove_targets(sync: &ConfigMapSync, ctx: &Context) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let owned: Vec<Step> = owned_targets(sync, ctx).await?.iter().map(plan::delete).collect();
    if owned.is_empty() {
        ctx.telemetry.set_targets(&metrics_key(sync), None);
        ctx.settled(sync);
        return Ok(Action::await_change());
    }
    let failure = match ctx.tenants.client(&namespace, &sync.spec.service_account_name).await {
        Err(err) => Some(err.to_string()),
        Ok(tenant) => {
            let mut failures = Vec::new();
            for step in &owned {
                if let (Err(err), Step::Delete { namespace, name }) = (execute(&tenant, step).await, step) {
                    failures.push(format!("ConfigMap {name} in namespace {namespace}: {}", describe(&outcome_of(err))));
                }
            }
            (!failures.is_empty()).then(|| failures.join("; "))
        }
    };
    match failure {
        None => {
            ctx.telemetry.set_targets(&metrics_key(sync), None);
            ctx.settled(sync);
            Ok(Action::await_change())
        }
        Some(why) => {
            let mut status = sync.status.clone().unwrap_or_default();
            let condition = status::cleanup_failed(sync.meta().generation, &why, &now());
            let changed = status.conditions.first().is_none_or(|c| c.message != condition.message);
            if changed {
                status.conditions = vec![condition];
                patch_status(sync, ctx, &status).await?;
                event(ctx, sync, EventType::Warning, &SyncReason::CleanupFailed, why.clone()).await;
            }
            Err(Error::Cleanup(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configmapsync::api::{ConfigMapSyncSpec, SourceRef};

    fn sync(name: &str, source: &str) -> ConfigMapSync {
        let mut sync = ConfigMapSync::new(
            name,
            ConfigMapSyncSpec {
                source: SourceRef { name: source.into() },
                target_namespaces: vec!["dev".into()],
                namespace_selector: None,
                service_account_name: "syncer".into(),
            },
        );
        sync.metadata.namespace = Some("team".into());
        sync
    }

    fn names(entries: Vec<(String, String)>) -> Vec<String> {
        let mut names: Vec<String> = entries.into_iter().map(|(_, name)| name).collect();
        names.sort();
        names
    }

    #[test]
    fn the_source_index_follows_changes_deletions_and_relists() {
        let index = Index::new(source_of);
        index.observe(&watcher::Event::Apply(sync("a", "settings")));
        index.observe(&watcher::Event::Apply(sync("b", "settings")));
        assert_eq!(names(index.get(("team", "settings"))), ["a", "b"]);
        assert!(index.get(("other", "settings")).is_empty(), "sources are per namespace");
        index.observe(&watcher::Event::Apply(sync("a", "flags")));
        assert_eq!(names(index.get(("team", "settings"))), ["b"]);
        assert_eq!(names(index.get(("team", "flags"))), ["a"]);
        index.observe(&watcher::Event::Delete(sync("b", "settings")));
        assert!(index.get(("team", "settings")).is_empty());
        index.observe(&watcher::Event::Init);
        index.observe(&watcher::Event::InitApply(sync("c", "settings")));
        index.observe(&watcher::Event::InitDone);
        assert!(index.get(("team", "flags")).is_empty(), "a relist forgets what it no longer lists");
        assert_eq!(names(index.get(("team", "settings"))), ["c"]);
    }

    #[test]
    fn the_owner_index_follows_owner_labels() {
        let copy = |namespace: &str, owner: Option<&str>| {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("settings".into());
            cm.metadata.namespace = Some(namespace.into());
            if let Some(owner) = owner {
                cm.metadata.labels = Some(BTreeMap::from([
                    (OWNER_NAMESPACE_LABEL.to_string(), "team".to_string()),
                    (OWNER_NAME_LABEL.to_string(), owner.to_string()),
                ]));
            }
            cm
        };
        let index = Index::new(owner_of);
        index.observe(&watcher::Event::Apply(copy("dev", Some("share"))));
        index.observe(&watcher::Event::Apply(copy("qa", Some("share"))));
        index.observe(&watcher::Event::Apply(copy("prod", None)));
        let mut owned = index.get(("team", "share"));
        owned.sort();
        assert_eq!(owned, [("dev".to_string(), "settings".to_string()), ("qa".to_string(), "settings".to_string())]);
        // Relabelled by hand: no longer the ConfigMapSync's.
        index.observe(&watcher::Event::Apply(copy("qa", None)));
        assert_eq!(index.get(("team", "share")), [("dev".to_string(), "settings".to_string())]);
        index.observe(&watcher::Event::Delete(copy("dev", Some("share"))));
        assert!(index.get(("team", "share")).is_empty());
    }
}
