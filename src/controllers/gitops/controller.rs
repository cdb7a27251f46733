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
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::api::{EnvironmentSync, EnvironmentSyncStatus};
use super::plan::{self, Gate};
use super::reconcile::{self, Shared, seconds_since};
use super::status::{self, Outcome, Working};
use crate::controllers::configmapsync::controller::api_message;

/// The event reporter, and the Lease of leader election.
pub const CONTROLLER_NAME: &str = "environmentsync-controller";

/// How a controller is run.
pub struct Settings {
    /// Only EnvironmentSyncs whose labels match (`weaver.example.com/shard=a`), to shard them
    /// between controllers, as Flux's `--watch-label-selector`.
    pub label_selector: Option<String>,
    /// How many EnvironmentSyncs are reconciled at once (`--concurrent`).
    pub concurrency: u16,
}

/// What every reconcile shares.
pub struct Context {
    shared: Shared,
    recorder: Recorder,
    syncs: Store<EnvironmentSync>,
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
pub async fn run(shared: Shared, settings: Settings, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = shared.client.clone();
    let mut selected = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        selected = selected.labels(selector);
    }
    let (reader, writer) = reflector::store();
    let trigger = watcher(Api::<EnvironmentSync>::all(client.clone()), selected)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_request, PredicateConfig::default());
    let reporter = Reporter {
        controller: CONTROLLER_NAME.to_string(),
        instance: std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()),
    };
    let context = Arc::new(Context { shared, recorder: Recorder::new(client, reporter), syncs: reader.clone() });
    Controller::for_stream(trigger, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(crate::controllers::log_queue)
        .await;
}

/// What a reconcile can fail with: only writing its own status; everything else is an outcome.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the status: {}", api_message(.0))]
pub struct Error(#[from] kube::Error);

pub async fn reconcile(sync: Arc<EnvironmentSync>, cx: Arc<Context>) -> Result<Action, Error> {
    if sync.meta().deletion_timestamp.is_some() {
        // What it applied stays, as Flux's `prune: false` leaves it: records and objects are
        // the environment's, which a CLI apply or another EnvironmentSync may take on.
        return Ok(Action::await_change());
    }
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
            Gate::Invalid { reason, message } => Outcome::Invalid { reason, message: message.clone() },
            Gate::Go(spec) => {
                let others = |namespace: &str, name: &str| cx.syncs.get(&ObjectRef::new(name).within(namespace));
                reconcile::reconcile(&sync, spec, &cx.shared, others, &working).await
            }
        }
    };
    let writing = async {
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
    };
    let (outcome, written) = tokio::join!(reconciling, writing);
    let request = plan::requested(&sync);
    let now = Time(jiff::Timestamp::now());
    // Built on the status as last written, so the conditions' transitions count the apply's.
    let current = EnvironmentSync { status: Some(written.clone()), ..(*sync).clone() };
    let status = status::after(&current, &outcome, request, &now, seconds_since(started));
    cx.shared.metrics.reconciled(&outcome, started.elapsed());
    if status != written {
        write_status(&sync, &cx, &written, &status).await?;
    }
    // Against the outcome before this reconcile, not its progress: a retry failing as the last
    // one did records no second Event.
    tell(&sync, &cx, &outcome, &sync.status.clone().unwrap_or_default(), &status).await;
    let wait = match (&gate, &outcome) {
        (Gate::Go(spec), Outcome::Failed { .. }) => spec.retry_interval,
        (_, Outcome::Waiting { .. }) => plan::DEPENDENCY_RETRY,
        (Gate::Go(spec), Outcome::Done(done)) if done.environments.iter().any(|e| e.result == "Failed") => {
            spec.retry_interval
        }
        (Gate::Go(spec), _) => spec.interval,
        _ => return Ok(Action::await_change()),
    };
    tracing::info!(
        environmentsync = %ObjectRef::from_obj(sync.as_ref()),
        ready = ?status.conditions.first().map(|c| (&c.status, &c.reason)),
        "reconciled; next in {}s",
        wait.as_secs()
    );
    Ok(Action::requeue(wait))
}

pub fn error_policy(sync: Arc<EnvironmentSync>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(environmentsync = %ObjectRef::from_obj(sync.as_ref()), "{error}; retrying in 10s");
    Action::requeue(Duration::from_secs(10))
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
    syncs
        .patch_status(&sync.name_any(), &PatchParams::default(), &Patch::Merge(&serde_json::json!({"status": patch})))
        .await?;
    Ok(())
}

/// An Event when the Ready condition changed, or an apply changed something.
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
        Outcome::Done(done) => done.environments.iter().any(|e| e.result == "Applied"),
        _ => false,
    };
    if !changed && !applied {
        return;
    }
    let type_ = if now.status == "True" { EventType::Normal } else { EventType::Warning };
    let event = Event {
        type_,
        reason: now.reason.clone(),
        note: Some(now.message.clone()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = cx.recorder.publish(&event, &sync.object_ref(&())).await {
        tracing::warn!(reason = now.reason, "cannot record an event: {}", api_message(&err));
    }
}
