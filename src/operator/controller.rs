//! The ConfigMapSync controller on `kube::runtime::Controller`, shaped like kube-rs's
//! controller-rs: `reconcile` and `error_policy` with a shared [`Context`]. It reads with the
//! operator's own identity (ConfigMapSyncs, Namespaces, the targets' current state) and writes
//! every target as the tenant's ServiceAccount (see `tenant`). Decisions are made by
//! `plan::plan` and `status::after_reconcile`; this file only observes and carries them out.
//! It logs through `tracing`; the command that runs it decides where logs go.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Error as FinalizerError, Event as Finalizing, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::api::{ConfigMapSync, ConfigMapSyncStatus};
use super::plan::{self, Action as Step, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, Observed};
use super::status::{self, Blocked, Outcome};
use super::telemetry::Telemetry;
use super::tenant::{TenantError, Tenants};

/// Deletes every target before its ConfigMapSync goes.
pub const FINALIZER: &str = "weaver.example.com/configmapsync";
/// The field manager and event reporter.
pub const CONTROLLER_NAME: &str = "configmapsync-operator";
/// Even without events, every ConfigMapSync is looked at this often (missed events, expired
/// tokens, RBAC granted later).
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a ConfigMapSync with a target out of sync is looked at again.
const RETRY_UNFINISHED: Duration = Duration::from_secs(10);

/// What a reconcile can fail with; `error_policy` retries all of them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Tenant(#[from] TenantError),
    #[error("cannot delete every target: {0}")]
    Cleanup(String),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// What every reconcile shares.
pub struct Context {
    /// The operator's own identity: reads, status, finalizers, token requests and events.
    pub client: kube::Client,
    pub tenants: Tenants,
    pub recorder: Recorder,
    pub telemetry: Arc<Telemetry>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        base: kube::Config,
        telemetry: Arc<Telemetry>,
        rate: Option<crate::cluster::RequestRate>,
    ) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.to_string(),
            instance: std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()),
        };
        Context {
            tenants: Tenants::new(client.clone(), base, rate),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            telemetry,
        }
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
    pub rate: Option<crate::cluster::RequestRate>,
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
    let index = SourceIndex::default();
    let indexer = index.clone();
    // Ready once the first list of ConfigMapSyncs is in the cache. (Seen on the event stream:
    // a second waiter on the store's readiness would steal the controller's wake-up.)
    let telemetry = settings.telemetry.clone();
    telemetry.set_ready(false);
    let trigger = watcher(syncs, selected)
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                indexer.observe(event);
                if matches!(event, watcher::Event::InitDone) {
                    telemetry.set_ready(true);
                }
            }
        })
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default());
    let controller = Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency));
    let by_namespace = controller.store();
    controller
        // Sources map back through the index; targets through their owner labels.
        .watches(Api::<ConfigMap>::all(client.clone()), watcher::Config::default(), move |config_map| {
            let mut owners = index.syncs_of(&config_map.namespace().unwrap_or_default(), &config_map.name_any());
            let labels = config_map.labels();
            if let (Some(ns), Some(owner)) = (labels.get(OWNER_NAMESPACE_LABEL), labels.get(OWNER_NAME_LABEL)) {
                owners.push(ObjectRef::new(owner).within(ns));
            }
            owners
        })
        // A namespace created, deleted or relabelled can add or remove a target.
        .watches(Api::<Namespace>::all(client.clone()), watcher::Config::default(), move |namespace| {
            let name = namespace.name_any();
            by_namespace
                .state()
                .iter()
                .filter(|sync| sync.spec.namespace_selector.is_some() || sync.spec.target_namespaces.contains(&name))
                .map(|sync| ObjectRef::from_obj(sync.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, Arc::new(Context::new(client, base, settings.telemetry, settings.rate)))
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(configmapsync = %object, "reconciled"),
                // Deleted while queued (its finalizer already ran): nothing left to do.
                Err(kube::runtime::controller::Error::ObjectNotFound(object)) => {
                    tracing::debug!(configmapsync = %object, "gone before its reconcile")
                }
                Err(err) => tracing::warn!(error = %err, "reconcile failed"),
            }
        })
        .await;
}

/// Where this replica stands in the leader election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Another replica holds the Lease; this one waits and does not reconcile.
    Following { leader: String },
    /// This replica holds the Lease and runs the controller.
    Leading,
}

/// Runs the controller only while this replica holds the leader Lease (`election`), or at once
/// without one. Returns when `shutdown` completes (releasing the Lease, so another replica
/// takes over at once) or with an error when the Lease is lost: the process should then exit,
/// as client-go's leader election does, and start campaigning again.
pub async fn run_elected(
    client: kube::Client,
    base: kube::Config,
    settings: Settings,
    election: Option<(crate::cluster::Cluster, crate::cluster::LockOptions)>,
    mut on_role: impl FnMut(Role),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    let Some((cluster, options)) = election else {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(());
        });
        run(client, base, settings, async {
            let _ = stopped.await;
        })
        .await;
        return Ok(());
    };
    let mut shutdown = Box::pin(shutdown);
    let telemetry = settings.telemetry.clone();
    let acquiring = cluster.acquire_lock(&options, |crate::cluster::LockEvent::Waiting { holder, .. }| {
        // A follower is a healthy standby.
        telemetry.set_ready(true);
        on_role(Role::Following { leader: holder })
    });
    let lease = tokio::select! {
        () = &mut shutdown => return Ok(()),
        lease = acquiring => lease?,
    };
    on_role(Role::Leading);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let lost = lease.on_loss();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            () = lost => {}
        }
        let _ = stop.send(());
    });
    run(client, base, settings, async {
        let _ = stopped.await;
    })
    .await;
    lease.check()?;
    lease.release().await
}

/// ConfigMapSyncs by the source they copy, (namespace, ConfigMap name), kept up to date from
/// the ConfigMapSync watch, so a ConfigMap's events find their ConfigMapSyncs without a scan.
#[derive(Clone, Default)]
struct SourceIndex(Arc<std::sync::RwLock<SourceEntries>>);

#[derive(Default)]
struct SourceEntries {
    /// (namespace, source name) → names of the ConfigMapSyncs copying it.
    syncs: HashMap<(String, String), BTreeSet<String>>,
    /// (namespace, ConfigMapSync name) → its source's name, to move an entry when it changes.
    sources: HashMap<(String, String), String>,
}

impl SourceIndex {
    fn observe(&self, event: &watcher::Event<ConfigMapSync>) {
        let mut entries = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let forget = |entries: &mut SourceEntries, namespace: &str, name: &str| {
            if let Some(source) = entries.sources.remove(&(namespace.to_string(), name.to_string()))
                && let Some(names) = entries.syncs.get_mut(&(namespace.to_string(), source.clone()))
            {
                names.remove(name);
                if names.is_empty() {
                    entries.syncs.remove(&(namespace.to_string(), source));
                }
            }
        };
        match event {
            // A relist follows: start afresh.
            watcher::Event::Init => *entries = SourceEntries::default(),
            watcher::Event::Apply(sync) | watcher::Event::InitApply(sync) => {
                let (namespace, name) = (sync.namespace().unwrap_or_default(), sync.name_any());
                forget(&mut entries, &namespace, &name);
                let source = sync.spec.source.name.clone();
                entries.syncs.entry((namespace.clone(), source.clone())).or_default().insert(name.clone());
                entries.sources.insert((namespace, name), source);
            }
            watcher::Event::Delete(sync) => {
                forget(&mut entries, &sync.namespace().unwrap_or_default(), &sync.name_any())
            }
            watcher::Event::InitDone => {}
        }
    }

    fn syncs_of(&self, namespace: &str, config_map: &str) -> Vec<ObjectRef<ConfigMapSync>> {
        let entries = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .syncs
            .get(&(namespace.to_string(), config_map.to_string()))
            .into_iter()
            .flatten()
            .map(|name| ObjectRef::new(name).within(namespace))
            .collect()
    }
}

/// Brings one ConfigMapSync's targets to its source, or removes them all when it is deleted.
pub async fn reconcile(sync: Arc<ConfigMapSync>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let syncs: Api<ConfigMapSync> = Api::namespaced(ctx.client.clone(), &namespace);
    let started = tokio::time::Instant::now();
    let telemetry = ctx.telemetry.clone();
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
        other => other.map_err(|err| Error::Finalizer(Box::new(err))),
    };
    telemetry.reconciled(started.elapsed(), result.is_err());
    result
}

/// Failed reconciles are tried again soon; the reason is already in the log and the status.
pub fn error_policy(sync: Arc<ConfigMapSync>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(configmapsync = %ObjectRef::from_obj(sync.as_ref()), error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
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

async fn event(ctx: &Context, sync: &ConfigMapSync, type_: EventType, reason: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: "Sync".into(), secondary: None };
    if let Err(err) = ctx.recorder.publish(&event, &sync.object_ref(&())).await {
        tracing::warn!(error = %err, reason, "cannot record an event");
    }
}

/// Every ConfigMap carrying this ConfigMapSync's owner labels (read with the operator's
/// rights; each is deleted as the tenant, so nothing the tenant may not touch is touched).
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
    let account = &sync.spec.service_account_name;
    let generation = sync.meta().generation;
    let mut previous = sync.status.clone();
    if previous.as_ref().is_none_or(|s| s.conditions.is_empty()) {
        let first = status::first_visit(generation, &now());
        patch_status(sync, ctx, &first).await?;
        previous = Some(first);
    }
    let tenant = match ctx.tenants.client(&namespace, account).await {
        Ok(tenant) => tenant,
        Err(TenantError::ServiceAccountNotFound(_)) => {
            let blocked = Blocked::ServiceAccountNotFound(account.clone());
            let status =
                status::after_reconcile(generation, true, Some(&blocked), &BTreeMap::new(), previous.as_ref(), &now());
            ctx.telemetry.set_targets(&metrics_key(sync), Some(&status));
            if previous.as_ref() != Some(&status) {
                patch_status(sync, ctx, &status).await?;
                event(ctx, sync, EventType::Warning, "ServiceAccountNotFound", status.conditions[0].message.clone())
                    .await;
            }
            return Ok(Action::requeue(RETRY_UNFINISHED));
        }
        Err(err) => return Err(err.into()),
    };

    // The source is read as the tenant too: a ConfigMapSync cannot copy what its
    // ServiceAccount may not read.
    let source = match Api::<ConfigMap>::namespaced(tenant.clone(), &namespace).get_opt(&sync.spec.source.name).await {
        Err(kube::Error::Api(status)) if status.code == 401 => {
            ctx.tenants.forget(&namespace, account).await;
            return Err(Error::Kube(kube::Error::Api(status)));
        }
        other => other?,
    };
    let namespaces = Api::<Namespace>::all(ctx.client.clone()).list(&ListParams::default()).await?.items;
    let owned = owned_targets(sync, ctx).await?;
    // Each target is read as the tenant: the plan and the status then say only what the
    // tenant's account could find out itself.
    let mut targets = BTreeMap::new();
    for namespace in plan::target_namespaces(sync, &namespaces).into_keys() {
        let api: Api<ConfigMap> = Api::namespaced(tenant.clone(), &namespace);
        let seen = match api.get_opt(&sync.spec.source.name).await {
            Err(kube::Error::Api(status)) if status.code == 403 => plan::Seen::Forbidden(status.message),
            other => plan::Seen::Readable(other?.map(Box::new)),
        };
        targets.insert(namespace, seen);
    }
    let observed =
        Observed { sync, source: source.as_ref(), namespaces: &namespaces, targets: &targets, owned: &owned };
    let plan = plan::plan(&observed);

    let mut outcomes = BTreeMap::new();
    for (target, decision) in &plan.targets {
        let outcome = match decision {
            Err(settled) => Outcome::Settled(settled.clone()),
            Ok(step) => match execute(&tenant, step).await {
                Ok(()) => Outcome::Synced,
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
            event(ctx, sync, EventType::Warning, "DeleteFailed", note).await;
        }
    }

    let status = status::after_reconcile(generation, plan.source_found, None, &outcomes, previous.as_ref(), &now());
    ctx.telemetry.set_targets(&metrics_key(sync), Some(&status));
    let ready = status.conditions.iter().any(|c| c.status == "True");
    if previous.as_ref() != Some(&status) {
        for target in status.targets.iter().filter(|t| !t.synced) {
            let was = previous.as_ref().and_then(|p| p.targets.iter().find(|p| p.namespace == target.namespace));
            if was.is_none_or(|was| was.reason != target.reason) {
                let reason = target.reason.clone().unwrap_or_default();
                let note = format!(
                    "target {}: {}",
                    target.namespace,
                    target.message.clone().unwrap_or_else(|| reason.clone())
                );
                event(ctx, sync, EventType::Warning, &reason, note).await;
            }
        }
        patch_status(sync, ctx, &status).await?;
    }
    // Permissions granted later, a namespace that appears, a source created later: no watch
    // event says so, so an unfinished sync is looked at again soon.
    Ok(Action::requeue(if ready { RESYNC } else { RETRY_UNFINISHED }))
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
/// finalizer stays (the ConfigMapSync is not deleted), the condition says why and an event is
/// recorded.
async fn remove_targets(sync: &ConfigMapSync, ctx: &Context) -> Result<Action, Error> {
    let namespace = sync.namespace().unwrap_or_default();
    let owned: Vec<Step> = owned_targets(sync, ctx).await?.iter().map(plan::delete).collect();
    if owned.is_empty() {
        ctx.telemetry.set_targets(&metrics_key(sync), None);
        return Ok(Action::await_change());
    }
    let failure = match ctx.tenants.client(&namespace, &sync.spec.service_account_name).await {
        Err(err) => Some(err.to_string()),
        Ok(tenant) => {
            let mut failures = Vec::new();
            for step in &owned {
                if let (Err(err), Step::Delete { namespace, name }) = (execute(&tenant, step).await, step) {
                    failures.push(format!("{namespace}/{name}: {}", describe(&outcome_of(err))));
                }
            }
            (!failures.is_empty()).then(|| failures.join("; "))
        }
    };
    match failure {
        None => {
            ctx.telemetry.set_targets(&metrics_key(sync), None);
            Ok(Action::await_change())
        }
        Some(why) => {
            let mut status = sync.status.clone().unwrap_or_default();
            status.conditions = vec![status::cleanup_failed(sync.meta().generation, &why, &now())];
            patch_status(sync, ctx, &status).await?;
            event(ctx, sync, EventType::Warning, "CleanupFailed", why.clone()).await;
            Err(Error::Cleanup(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::api::{ConfigMapSyncSpec, SourceRef};

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

    fn names(refs: Vec<ObjectRef<ConfigMapSync>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn the_source_index_follows_changes_deletions_and_relists() {
        let index = SourceIndex::default();
        index.observe(&watcher::Event::Apply(sync("a", "settings")));
        index.observe(&watcher::Event::Apply(sync("b", "settings")));
        assert_eq!(names(index.syncs_of("team", "settings")), ["a", "b"]);
        assert!(index.syncs_of("other", "settings").is_empty(), "sources are per namespace");
        index.observe(&watcher::Event::Apply(sync("a", "flags")));
        assert_eq!(names(index.syncs_of("team", "settings")), ["b"]);
        assert_eq!(names(index.syncs_of("team", "flags")), ["a"]);
        index.observe(&watcher::Event::Delete(sync("b", "settings")));
        assert!(index.syncs_of("team", "settings").is_empty());
        index.observe(&watcher::Event::Init);
        index.observe(&watcher::Event::InitApply(sync("c", "settings")));
        index.observe(&watcher::Event::InitDone);
        assert!(index.syncs_of("team", "flags").is_empty(), "a relist forgets what it no longer lists");
        assert_eq!(names(index.syncs_of("team", "settings")), ["c"]);
    }
}
