//! The EnvironmentSync controller on `kube::runtime::Controller`, shaped as the ConfigMapSync
//! one: a watch of EnvironmentSyncs (by label, for shards), `reconcile` and `error_policy`.
//! A reconcile runs `reconcile::reconcile` (the CLI's actions, as the tenant), writes what an
//! apply is doing while it runs (`status::working`), then the status only when it changed,
//! records an Event when the outcome changed or something was applied, and asks to be woken at
//! the next interval, or sooner to retry.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::api::{EnvironmentResult, EnvironmentSync, EnvironmentSyncStatus, EventReason, Reason};
use super::plan::Work;
use super::plan::{self, Gate};
use super::reconcile::{self, Shared, credentials, seconds_since};
use super::status::{self, Done, Outcome, Working};
use crate::Backoff;
use crate::conditions::{IMAGES_UPDATED, PROMOTED, TypedReason};
use crate::events::Recorder;
use weaver_cluster::api_message;

/// The event reporter, and the Lease of leader election.
pub const CONTROLLER_NAME: &str = "environmentsync-controller";

/// How a controller is run.
pub struct Settings {
    /// Only EnvironmentSyncs whose labels match (`weaver.example.com/shard=a`), to shard them
    /// between controllers, as Flux's `--watch-label-selector`.
    pub label_selector: Option<String>,
    /// How many EnvironmentSyncs are reconciled at once (`--concurrent`).
    pub concurrency: u16,
    /// Told when the watch of EnvironmentSyncs has listed, for `/readyz`.
    pub readiness: crate::readiness::Readiness,
}

/// What the controller's cache holds, as `/readyz` names it.
const CACHE: &str = "EnvironmentSync";

/// What every reconcile shares.
pub struct Context {
    shared: Arc<Shared>,
    recorder: Recorder,
    syncs: Store<EnvironmentSync>,
    /// The status this controller last wrote to each EnvironmentSync, with the resourceVersion
    /// the write gave it: the watch's copy may not have it yet when the next reconcile starts.
    written: std::sync::Mutex<std::collections::HashMap<ObjectRef<EnvironmentSync>, (u64, EnvironmentSyncStatus)>>,
    /// Failed reconciles since each EnvironmentSync's last one that succeeded.
    retries: Backoff<ObjectRef<EnvironmentSync>>,
    /// When each EnvironmentSync's next reconcile was asked for.
    asked: Arc<Asked>,
}

/// When each EnvironmentSync's next reconcile was asked for: by a change the watch saw (its
/// spec, the `reconcile-requested-at` annotation a webhook sets), a dependency turned Ready, or
/// its interval or retry falling due. Its reconcile takes no fetch started before that
/// (`GitCache::fetch_since`): a push it was asked for after is always read.
#[derive(Default)]
struct Asked(std::sync::Mutex<std::collections::HashMap<ObjectRef<EnvironmentSync>, Asks>>);

#[derive(Default)]
struct Asks {
    /// The last change that asked for a reconcile, since the last reconcile began.
    changed: Option<Instant>,
    /// When the interval or the retry the last reconcile asked for falls due.
    due: Option<Instant>,
}

impl Asked {
    fn asks(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<ObjectRef<EnvironmentSync>, Asks>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self, sync: ObjectRef<EnvironmentSync>) {
        self.asks().entry(sync).or_default().changed = Some(Instant::now());
    }

    fn due_in(&self, sync: ObjectRef<EnvironmentSync>, wait: Duration) {
        self.asks().entry(sync).or_default().due = Instant::now().checked_add(wait);
    }

    fn forget(&self, sync: &ObjectRef<EnvironmentSync>) {
        self.asks().remove(sync);
    }

    /// When the reconcile of `sync` beginning now was asked for: the last change that asked
    /// for it, or its due time if reached, whichever is later; now when neither (a look at
    /// drift the watches woke). What asks for the next reconcile is counted from here.
    fn since(&self, sync: &ObjectRef<EnvironmentSync>) -> Instant {
        let now = Instant::now();
        let asks = self.asks().remove(sync).unwrap_or_default();
        asks.changed.into_iter().chain(asks.due.filter(|due| *due <= now)).max().unwrap_or(now)
    }
}

impl Context {
    /// What the reconciles share: `shared`, the EnvironmentSyncs `syncs` holds (those a
    /// `dependsOn` names), Events recorded as `reporter`.
    pub(super) fn new(shared: Arc<Shared>, reporter: Reporter, syncs: Store<EnvironmentSync>) -> Context {
        Context {
            recorder: Recorder::new(shared.client.clone(), reporter),
            shared,
            syncs,
            written: Default::default(),
            retries: Backoff::new(RETRY_FIRST, RETRY_MAX),
            asked: Default::default(),
        }
    }

    /// `sync` with the status last written, where the watch's copy is older than that write:
    /// a reconcile right after another builds on what that one wrote (its history), not on a
    /// status the write replaced.
    fn latest(&self, sync: Arc<EnvironmentSync>) -> Arc<EnvironmentSync> {
        let version =
            |sync: &EnvironmentSync| sync.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match (written.get(&ObjectRef::from_obj(sync.as_ref())), version(&sync)) {
            (Some((at, status)), Some(seen)) if seen < *at => {
                Arc::new(EnvironmentSync { status: Some(status.clone()), ..(*sync).clone() })
            }
            _ => sync,
        }
    }
}

/// Changes worth a reconcile: the spec (generation), a reconcile asked for by annotation, the
/// deletion. The controller's own status writes are not.
fn spec_or_request(sync: &EnvironmentSync) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let requested = sync.annotations().get(plan::RECONCILE_REQUESTED_AT);
    (sync.meta().generation, requested, sync.meta().deletion_timestamp.is_some()).hash(&mut hasher);
    Some(hasher.finish())
}

/// Runs the controller until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(shared: Arc<Shared>, settings: Settings, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let mut selected = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        selected = selected.labels(selector);
    }
    let (reader, writer) = reflector::store();
    let readiness = settings.readiness.clone();
    readiness.set_synced(CACHE, false);
    let reporter = Reporter {
        controller: CONTROLLER_NAME.to_string(),
        instance: std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()),
    };
    let changed = changed_environments(shared.live.changes(), reader.clone());
    let client = shared.client.clone();
    let context = Arc::new(Context::new(shared, reporter, reader.clone()));
    // Those waiting for an EnvironmentSync that turned Ready, read from the watch (whoever wrote
    // its status), after the store has the change.
    let (wake, woken) = futures::channel::mpsc::unbounded();
    let store = reader.clone();
    let (asked, asking) = (context.asked.clone(), context.asked.clone());
    let trigger = watcher(Api::<EnvironmentSync>::all(client), selected)
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(watcher::Event::InitDone) => readiness.set_synced(CACHE, true),
            Ok(watcher::Event::Apply(changed)) => {
                for waiting in plan::woken_by(changed, || store.state()) {
                    let waiting = ObjectRef::from_obj(waiting.as_ref());
                    asked.changed(waiting.clone());
                    let _ = wake.unbounded_send(waiting);
                }
            }
            Ok(watcher::Event::Delete(gone)) => asked.forget(&ObjectRef::from_obj(gone)),
            _ => {}
        })
        .applied_objects()
        .predicate_filter(spec_or_request, PredicateConfig::default())
        .inspect(move |changed| {
            if let Ok(changed) = changed {
                asking.changed(ObjectRef::from_obj(changed));
            }
        });
    Controller::for_stream(trigger, reader)
        .reconcile_on(changed)
        .reconcile_on(woken)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(crate::log_queue)
        .await;
}

/// The EnvironmentSyncs that applied the environment of an object someone else changed, as the
/// watches of live state tell it: drift is looked for when it happens, not at the next interval.
fn changed_environments(
    changes: tokio::sync::broadcast::Receiver<weaver_cluster::Changed>,
    syncs: Store<EnvironmentSync>,
) -> impl futures::Stream<Item = ObjectRef<EnvironmentSync>> + Send + 'static {
    let changed = futures::stream::unfold(changes, |mut changes| async move {
        loop {
            match changes.recv().await {
                Ok(changed) => return Some((changed, changes)),
                // Missed changes are caught by the interval.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    changed.flat_map(move |changed| {
        let applied = |sync: &Arc<EnvironmentSync>| {
            let environments = sync.status.as_ref().map(|s| s.environments.as_slice()).unwrap_or_default();
            environments.iter().any(|env| Some(&env.name) == changed.environment.as_ref())
        };
        let refs: Vec<ObjectRef<EnvironmentSync>> =
            syncs.state().iter().filter(|sync| applied(sync)).map(|sync| ObjectRef::from_obj(sync.as_ref())).collect();
        futures::stream::iter(refs)
    })
}

/// What a reconcile can fail with: only writing its own status; everything else (the source,
/// the render, the apply) is an outcome, told in the status with its reason and retried as
/// `plan::retry_after` says. `error_policy` retries a failure, backing off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the status: {}", api_message(.0))]
    StatusWrite(#[from] kube::Error),
}

impl Error {
    /// Its reason, as the log and the `reconcile_errors` metric label it.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::StatusWrite(_) => "StatusWriteFailed",
        }
    }
}

/// A failed reconcile is tried again after this, doubled for each further failure of the
/// object up to [`RETRY_MAX`]; a reconcile that succeeds starts it afresh.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);

pub async fn reconcile(sync: Arc<EnvironmentSync>, cx: Arc<Context>) -> Result<Action, Error> {
    let sync = cx.latest(sync);
    let asked = cx.asked.since(&ObjectRef::from_obj(sync.as_ref()));
    if sync.meta().deletion_timestamp.is_some() {
        cx.written.lock().unwrap_or_else(|e| e.into_inner()).remove(&ObjectRef::from_obj(sync.as_ref()));
        cx.retries.settled(&ObjectRef::from_obj(sync.as_ref()));
        // What it applied stays, as Flux's `prune: false` leaves it: records and objects are
        // the environment's, which a CLI apply or another EnvironmentSync may take on.
        return Ok(Action::await_change());
    }
    cx.shared.retain_registries(|namespace, name| cx.syncs.get(&ObjectRef::new(name).within(namespace)).is_some());
    // Another cluster's watches stop once no EnvironmentSync applies there.
    let remotes: std::collections::HashSet<String> = cx
        .syncs
        .state()
        .iter()
        .filter_map(|other| credentials::remote_cluster(other, &other.namespace().unwrap_or_default()))
        .chain(credentials::remote_cluster(&sync, &sync.namespace().unwrap_or_default()))
        .collect();
    cx.shared.live.retain_other_clusters(|remote| remotes.contains(remote));
    let started = Instant::now();
    let gate = plan::gate(&sync, cx.shared.default_account.as_deref());
    // The apply's progress goes to the status as it comes, the latest only, beside the reconcile.
    let (progress, mut heard) = tokio::sync::watch::channel::<Option<Working>>(None);
    let reconciling = async {
        let working = move |working: Working| {
            progress.send_replace(Some(working));
        };
        match &gate {
            Gate::Suspended => Outcome::Suspended,
            Gate::Invalid { reason, message } => Outcome::Invalid { reason: reason.clone(), message: message.clone() },
            Gate::Go(spec) => {
                let others = |namespace: &str, name: &str| cx.syncs.get(&ObjectRef::new(name).within(namespace));
                reconcile::reconcile(&sync, spec, &cx.shared, others, &working, asked).await
            }
        }
    };
    // A task of its own: the reconcile blocks its own while a fleet apply runs.
    let writing = tokio::spawn({
        let (sync, cx) = (sync.clone(), cx.clone());
        async move {
            let mut written = sync.status.clone().unwrap_or_default();
            // Ends when the reconcile does (and drops `progress`).
            while heard.changed().await.is_ok() {
                let Some(working) = heard.borrow_and_update().clone() else { continue };
                let status = status::working(&sync, &written, &working, &Time(jiff::Timestamp::now()));
                if status == written {
                    continue;
                }
                match write_status(&sync, &cx, &written, &status).await {
                    Ok(()) => written = status,
                    // The outcome's status is written all the same; progress is worth no retry.
                    Err(err) => tracing::warn!(
                        environmentsync = %ObjectRef::from_obj(sync.as_ref()),
                        "cannot write the apply's progress to the status: {}",
                        api_message(&err)
                    ),
                }
            }
            written
        }
    });
    let outcome = reconciling.await;
    let written = match writing.await {
        Ok(written) => written,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => sync.status.clone().unwrap_or_default(),
    };
    let request = plan::requested(&sync);
    let now = Time(jiff::Timestamp::now());
    // Built on the status as last written, so the conditions' transitions count the apply's.
    let current = EnvironmentSync { status: Some(written.clone()), ..(*sync).clone() };
    let status = status::after(&current, &outcome, request, &now, seconds_since(started));
    // What the account may not watch (a missing right in its Role), read from the watches its
    // apply or look at drift started: one condition, not a warning at every retry.
    let status = match (&gate, &outcome) {
        (_, Outcome::Suspended) => status,
        (Gate::Go(spec), _) => {
            let namespace = sync.namespace().unwrap_or_default();
            let refused = match credentials::remote_cluster(&sync, &namespace) {
                None => cx.shared.live.refused_watches(Some(&credentials::account_identity(&namespace, spec))),
                // Another cluster's cache is this Secret's alone: whatever it was refused.
                Some(remote) => {
                    cx.shared.live.another_cluster(&remote).map(|live| live.refused_watches(None)).unwrap_or_default()
                }
            };
            status::with_refused_watches(status, &refused, &written, &now)
        }
        _ => status::with_refused_watches(status, &[], &written, &now),
    };
    cx.shared.metrics.reconciled(&outcome, started.elapsed());
    if status != written {
        write_status(&sync, &cx, &written, &status).await?;
    }
    cx.retries.settled(&ObjectRef::from_obj(sync.as_ref()));
    // Against the outcome before this reconcile, not its progress: a retry failing as the last
    // one did records no second Event.
    tell(&sync, &cx, &outcome, &sync.status.clone().unwrap_or_default(), &status).await;
    let wait = match (&gate, &outcome) {
        (Gate::Go(spec), Outcome::Failed { reason, .. }) => {
            let began = status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.last_transition_time.0);
            let failing = began
                .map_or(Duration::ZERO, |at| Duration::try_from(now.0.duration_since(at)).unwrap_or(Duration::ZERO));
            plan::retry_after(spec, reason, failing)
        }
        (_, Outcome::Waiting { .. }) => plan::DEPENDENCY_RETRY,
        (Gate::Go(spec), Outcome::Done(done))
            if done.environments.iter().any(|e| e.result == EnvironmentResult::Failed) =>
        {
            spec.retry_interval
        }
        // Held by a window: again when it opens, if that is before the interval.
        (Gate::Go(spec), Outcome::Done(Done { held: Some(held), .. })) => {
            let opens = held.until.as_deref().and_then(|until| until.parse::<jiff::Timestamp>().ok());
            let left = opens.and_then(|at| Duration::try_from(at.duration_since(cx.shared.clock.now())).ok());
            left.map_or(spec.next(), |left| (left + Duration::from_secs(1)).min(spec.next()))
        }
        // Previews left for lack of time: the rest soon, not at the interval.
        (Gate::Go(spec), Outcome::Done(Done { previews: Some(previewed), .. })) if previewed.unfinished => {
            spec.retry_interval.min(spec.next())
        }
        (Gate::Go(spec), _) => spec.next(),
        _ => return Ok(Action::await_change()),
    };
    tracing::info!(
        environmentsync = %ObjectRef::from_obj(sync.as_ref()),
        ready = ?status.conditions.first().map(|c| (&c.status, &c.reason)),
        "reconciled; next in {}s",
        wait.as_secs()
    );
    cx.asked.due_in(ObjectRef::from_obj(sync.as_ref()), wait);
    Ok(Action::requeue(wait))
}

/// A failed reconcile is tried again, backing off; the log and the metrics say why.
pub fn error_policy(sync: Arc<EnvironmentSync>, error: &Error, cx: Arc<Context>) -> Action {
    let delay = cx.retries.failed(ObjectRef::from_obj(sync.as_ref()));
    cx.asked.due_in(ObjectRef::from_obj(sync.as_ref()), delay);
    cx.shared.metrics.reconcile_failed(error.reason());
    tracing::warn!(
        environmentsync = %ObjectRef::from_obj(sync.as_ref()),
        reason = error.reason(),
        "{error}; retrying in {}s",
        delay.as_secs()
    );
    Action::requeue(delay)
}

/// A merge patch of the status: what it no longer has is removed (null), the rest replaced.
async fn write_status(
    sync: &EnvironmentSync,
    cx: &Context,
    previous: &EnvironmentSyncStatus,
    status: &EnvironmentSyncStatus,
) -> Result<(), kube::Error> {
    let mut patch = serde_json::to_value(status).unwrap_or_default();
    if let (Some(new), serde_json::Value::Object(old)) =
        (patch.as_object_mut(), serde_json::to_value(previous).unwrap_or_default())
    {
        for key in old.keys() {
            new.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    let syncs: Api<EnvironmentSync> = Api::namespaced(cx.shared.client.clone(), &sync.namespace().unwrap_or_default());
    let patch = Patch::Merge(serde_json::json!({"status": patch}));
    let patched = syncs.patch_status(&sync.name_any(), &PatchParams::default(), &patch).await?;
    if let Some(version) = patched.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()) {
        let mut written = cx.written.lock().unwrap_or_else(|e| e.into_inner());
        written.insert(ObjectRef::from_obj(sync), (version, status.clone()));
    }
    Ok(())
}

/// An Event when the Ready condition changed, or an apply changed something; another when
/// drift was found that the last look did not find, or was put back.
async fn tell(
    sync: &EnvironmentSync,
    cx: &Context,
    outcome: &Outcome,
    previous: &EnvironmentSyncStatus,
    status: &EnvironmentSyncStatus,
) {
    let ready = |s: &EnvironmentSyncStatus| s.conditions.iter().find(|c| c.type_ == "Ready").cloned();
    let Some(now) = ready(status) else { return };
    let changed = ready(previous).is_none_or(|before| before.reason != now.reason || before.message != now.message);
    let applied = match outcome {
        // A look at drift carries the last apply's results: only an apply is news.
        Outcome::Done(done) => {
            done.work == Work::Apply && done.environments.iter().any(|e| e.result == EnvironmentResult::Applied)
        }
        _ => false,
    };
    if changed || applied {
        // The condition's reason, as `status::after` wrote it from the outcome.
        let (passed, reason, _) = outcome.ready();
        let type_ = if passed { EventType::Normal } else { EventType::Warning };
        publish(sync, cx, type_, &reason, &now.message).await;
    }
    // Once, when the approved plan is applied: a failed apply is retried, and the history
    // records each attempt's approval.
    if let Outcome::Done(done @ Done { approval: Some(approval), .. }) = outcome
        && done.environments.iter().all(|e| e.result.is_applied())
    {
        let who = if approval.approved_by.is_empty() { "someone unnamed" } else { approval.approved_by.as_str() };
        let when = approval.approved_at.as_deref().map(|at| format!(" at {at}")).unwrap_or_default();
        let note = format!(
            "{who} approved the plan {} of revision {}{when}; it was applied",
            approval.digest,
            plan::short(&done.revision)
        );
        publish(sync, cx, EventType::Normal, &EventReason::Approved, &note).await;
    }
    if let Outcome::Done(Done { previews: Some(previewed), .. }) = outcome {
        for note in &previewed.created {
            publish(sync, cx, EventType::Normal, &EventReason::PreviewCreated, note).await;
        }
        for note in &previewed.pruned {
            publish(sync, cx, EventType::Normal, &EventReason::PreviewPruned, note).await;
        }
    }
    if let Outcome::Done(done) = outcome {
        let promoted = done.promotion.as_ref().map(|p| (PROMOTED, p.passed, &p.reason, &p.message, p.pushed.is_some()));
        let updated =
            done.images.as_ref().map(|u| (IMAGES_UPDATED, u.passed, &u.reason, &u.message, u.pushed.is_some()));
        for (type_, passed, reason, message, pushed) in promoted.into_iter().chain(updated) {
            let condition = |s: &EnvironmentSyncStatus| {
                s.conditions.iter().find(|c| c.type_ == type_).map(|c| (c.reason.clone(), c.message.clone()))
            };
            // One Event per push; a refusal once, not at every interval that finds it so.
            if pushed {
                publish(sync, cx, EventType::Normal, reason, message).await;
            } else if !passed && condition(previous) != condition(status) {
                publish(sync, cx, EventType::Warning, reason, message).await;
            }
        }
    }
    let Outcome::Done(Done { work, drift: Some(drift), .. }) = outcome else { return };
    if drift.drifted + drift.missing == 0 {
        return;
    }
    match work {
        Work::CorrectDrift => {
            let note = format!("put back what changed in the cluster ({})", drift.summary);
            publish(sync, cx, EventType::Normal, &Reason::DriftCorrected, &note).await;
        }
        _ if previous.drift.as_ref() != Some(drift) => {
            let note = format!(
                "the cluster differs from what was applied ({}): weaver drift shows how; spec.correctDrift puts it back",
                drift.summary
            );
            publish(sync, cx, EventType::Warning, &Reason::DriftDetected, &note).await;
        }
        _ => {}
    }
}

async fn publish(sync: &EnvironmentSync, cx: &Context, type_: EventType, reason: &impl TypedReason, note: &str) {
    if let Err(err) = cx.recorder.publish(type_, reason, "Reconcile", note, &sync.object_ref(&())).await {
        tracing::warn!(reason = reason.as_str(), "cannot record an event: {}", api_message(&err));
    }
}
