//! Apply: render, take the environment's lock, render for the cluster, observe, plan, apply, record. `rollback` runs
//! the same machinery over a recorded revision.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::notifications::notify;
use super::removed::removed_releases;
use super::render::{Desired, IfEmpty, Offline, Quotes, RenderOptions, prepare};
use super::{Context, Progress, connect_sharing, phase};
use crate::apply::{ApplyOptions, LockTakenOver, ReleaseInput, Report};
use crate::notify::Message;
use crate::observe::{Unlabelled, observe_helm, observe_reusing};
use weaver_cluster::{
    Cluster, ConnectOptions, HeldLock, ListTarget, Listed as Listing, LockEvent, LockOptions, SharedServers,
};
use weaver_core::error::{Error, Result};
use weaver_core::manifest::{ObjectKey, Scopes};
use weaver_plan::plan::{Owner, Plan, plan_adopting};
use weaver_project::Environment;
use weaver_project::RenderedRelease;

/// What `apply` and `rollback` share.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A server-side dry run: nothing is written, not even a record or the lock.
    pub dry_run: bool,
    /// Wait for readiness of what was applied.
    pub wait: bool,
    /// Bounds each release's waiting (CRDs Established, readiness).
    pub timeout: Duration,
    pub force_conflicts: bool,
    pub prune: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long to wait for another apply of the environment to finish.
    pub lock_timeout: Duration,
    /// How long the environment's lock stays held without renewal: after an applier that
    /// stopped (killed), the next one waits this long.
    pub lock_lease: Duration,
    /// Who applies, when not this process (`alice@build-7 pid 4242`): the EnvironmentSync that
    /// does. Named as the lock's holder, and recorded in each revision.
    pub applier: Option<String>,
    /// Apply objects labelled as another environment's (`--take-ownership`); without it they
    /// are refused before anything is written. Only `apply` sets it: a rollback or a drift
    /// correction never takes an object from another environment.
    pub take_ownership: bool,
    /// What must hold for this apply to write, checked under the lock, on the plan made
    /// there, before anything is written: the plan is an EnvironmentSync's approved one, or
    /// the EnvironmentSync a rollback goes through is still suspended.
    pub plan_check: Option<PlanCheck>,
    /// The key each record is signed with, read once by a long-running process (the
    /// controller's `WEAVER_RECORD_KEY_FILE`); None: the file `WEAVER_RECORD_KEY_FILE` names,
    /// read at each apply.
    pub record_key: Option<weaver_secrets::record_key::RecordKey>,
}

/// Whether an apply may write the plan made under the lock: Err says why not. A future, as a
/// check may read the cluster again (a watch's copy may lag what the lock orders).
#[derive(Clone)]
pub struct PlanCheck(pub Arc<CheckPlan>);

pub type CheckPlan = dyn Fn(&Plan) -> futures::future::BoxFuture<'static, Result<()>> + Send + Sync;

impl std::fmt::Debug for PlanCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCheck")
    }
}

#[derive(Debug, Clone)]
pub struct ApplyActionOptions {
    /// The releases to apply; an empty selection is refused.
    pub render: RenderOptions,
    pub connect: ConnectOptions,
    pub settings: Settings,
    /// Refuse to apply from a working tree with uncommitted changes.
    pub require_clean: bool,
    /// Also remove the releases the environment no longer has but the cluster does.
    pub prune_releases: super::removed::PruneReleases,
    /// Apply although values flags (`--set`, …) change what git holds; they are recorded.
    pub allow_overrides: bool,
    /// Delete the records of the Helm releases adopted once their release applied.
    pub forget_helm_release: bool,
    /// What the environments of a fleet share per API server (requests in flight, discovery).
    pub servers: Option<SharedServers>,
}

/// What an apply did.
pub struct Applied {
    pub report: Report,
    pub options: ApplyOptions,
    /// Another apply took the lock while this one ran: it stopped starting new work, and
    /// `report` says what it did before.
    pub lock_lost: Option<Error>,
}

/// Renders, connects, takes the environment's lock and, holding it, renders Helm charts again
/// with the cluster's capabilities and `lookup`, then applies. `cx.interrupted` (Ctrl-C) stops
/// starting new work; what was done is still recorded.
pub async fn apply(options: &ApplyActionOptions, cx: Context<'_>) -> Result<Applied> {
    let owned = options.clone();
    let offline = super::blocking_with(cx, move |cx| render_offline(&owned, cx)).await?;
    apply_rendered(options, offline, cx).await
}

/// What an apply (or a plan, [`super::plan::render_offline`]) renders before it connects: the
/// environment decrypted and rendered offline. A fleet apply renders every environment so,
/// before it writes anything, to refuse two that would own one object.
pub struct RenderedOffline {
    pub(super) prepared: Arc<super::render::Prepared>,
    pub(super) desired: Desired,
}

impl RenderedOffline {
    /// The objects the apply would own (hooks come and go, and are not owned). One of a kind
    /// whose scope the render could not tell (its CRD is not rendered) and without a namespace
    /// counts in its release's namespace, as most custom resources are namespaced; the cluster's
    /// discovery decides it when the apply connects.
    pub fn owned_keys(&self) -> Vec<ObjectKey> {
        let rendered = &self.desired.rendered;
        let scopes = Scopes::of_crds(rendered.manifests());
        let keys = rendered.releases.iter().flat_map(|release| {
            release.manifests.iter().map(|m| {
                let mut key = m.key();
                if key.namespace.is_none() && scopes.known(&key.group, &key.kind).is_none() {
                    key.namespace = Some(release.namespace.clone());
                }
                key
            })
        });
        keys.collect()
    }
}

impl RenderedOffline {
    /// The same, its render for the cluster (under the lock) given its whole time again from
    /// now, as an apply alone gives it: a fleet renders every environment before the first
    /// applies, which may wait long for its lock or its objects.
    pub(super) fn restarted(mut self) -> RenderedOffline {
        // Not shared yet: `render_offline` made it, and only the apply takes it.
        if let Some(prepared) = Arc::get_mut(&mut self.prepared) {
            prepared.restart_deadline();
        }
        self
    }

    /// Its objects that are live and labelled as another environment's, with whose: what its
    /// apply refuses under the lock, looked at before, so that a fleet refuses them before any
    /// of its environments writes (see [`crate::observe::labelled_elsewhere`]).
    pub async fn labelled_elsewhere(
        &self,
        options: &ApplyActionOptions,
        on: super::OnProgress<'_>,
    ) -> Result<Vec<(ObjectKey, Owner)>> {
        let env = &self.desired.env;
        let cluster = connect_sharing(options.connect.clone(), options.servers.as_ref(), env, "reading owners in", on)
            .await
            .map_err(|err| err.context(format!("environment `{}`: reading who owns its objects", env.name)))?;
        let releases = &self.desired.rendered.releases;
        crate::observe::labelled_elsewhere(&cluster, releases, &env.name, options.settings.concurrency).await
    }
}

/// The first half of [`apply`]: refuses values flags unless allowed, then decrypts and renders
/// offline.
pub fn render_offline(options: &ApplyActionOptions, cx: Context<'_>) -> Result<RenderedOffline> {
    if !options.allow_overrides && !options.render.overrides.is_empty() {
        return Err(Error::new("apply: values flags (--set, --values, …) would apply what is not in git")
            .with_help("commit the values to the environment, or add --allow-overrides to apply them anyway (the release records keep them)"));
    }
    let mut render_options = options.render.clone();
    if render_options.if_empty != IfEmpty::Remove {
        render_options.if_empty = IfEmpty::Refuse;
    }
    let prepared = prepare(&render_options, cx, Quotes::Cluster)?;
    let desired = prepared.render(Offline::BeforeCluster, cx.on)?;
    Ok(RenderedOffline { prepared: Arc::new(prepared), desired })
}

/// The rest of [`apply`], from what [`render_offline`] made with the same options.
pub async fn apply_rendered(
    options: &ApplyActionOptions,
    offline: RenderedOffline,
    cx: Context<'_>,
) -> Result<Applied> {
    let Context { redactor, on, .. } = cx;
    let RenderedOffline { prepared, desired: offline } = offline;
    let selection = &options.render.selection;
    let provenance = selection.provenance()?;
    if let Some(p) = provenance.as_ref().filter(|p| p.dirty) {
        let what =
            format!("the working tree has uncommitted changes, so what is applied is not commit {}", &p.commit[..12]);
        if options.require_clean {
            return Err(Error::new(format!("{what} (--require-clean)"))
                .with_help("commit or stash the changes, or apply a commit with --rev"));
        }
        on(Progress::Warning(format!("{what}; the records will say `dirty`")));
    }
    let cluster = connect_sharing(
        options.connect.clone().retrying_within(options.settings.timeout),
        options.servers.as_ref(),
        &offline.env,
        "applying to",
        on,
    )
    .await?;
    let env = Arc::clone(&offline.env);
    // Under the lock: what `lookup` reads must be what this apply builds on, not what a
    // concurrent apply (a first install generating the same password) is about to replace.
    let desired = async {
        let Desired { env, rendered, looked_up, .. } =
            prepared.for_cluster(offline, &cluster, options.settings.concurrency, on).await?;
        let server_version = prepared.server_version(&rendered, &cluster).await?;
        prepared.warn_removed(&rendered, server_version.as_deref(), on);
        let mut releases = rendered.releases;
        let mut apply_options =
            apply_options(&env, &options.settings, provenance.as_ref().map(|p| (p.commit.clone(), p.dirty)), None);
        apply_options.overrides = prepared.overrides();
        apply_options.forget_helm_release = options.forget_helm_release;
        // Sensitive: holding a value decrypted from the environment, which is all the redactor
        // knows until the Secrets below are registered.
        apply_options.sensitive = releases
            .iter()
            .flat_map(|r| &r.manifests)
            .filter(|m| redactor.finds_in(&m.object))
            .map(|m| m.key())
            .collect();
        // What the apply prints quotes the cluster (a hook's pod logs, server messages): the
        // values of the Secrets it applies are not for it, decrypted from the environment or not.
        for secret in releases
            .iter()
            .flat_map(|r| r.manifests.iter().chain(&r.hooks))
            .filter(|m| weaver_plan::diff::is_secret(&m.object))
        {
            redactor.register_secret_data(&secret.object);
        }
        let removed = removed_releases(&cluster, &env, &releases, redactor, &options.prune_releases, on).await?;
        releases.extend(removed);
        Ok(Locked { releases, options: apply_options, looked_up })
    };
    let applied = execute(&cluster, &env, &options.settings, desired, cx).await?;
    if !options.settings.dry_run && worth_telling(&applied) {
        let lock_lost = applied.lock_lost.is_some();
        let message = Message::applied(&applied.report, &applied.options, &cluster.info.context, lock_lost, redactor);
        let keys = (selection.repo.as_path(), &options.render.keys);
        notify(&env, prepared.source(), keys, message, cx).await;
    }
    Ok(applied)
}

/// Whether an apply is news: it changed something, or failed. An apply with nothing to do
/// (a pipeline's usual run) tells no one.
fn worth_telling(applied: &Applied) -> bool {
    let t = applied.report.totals();
    applied.report.failed()
        || applied.lock_lost.is_some()
        || t.created + t.configured + t.pruned + t.failed + t.not_applied + t.hooks_succeeded + t.hooks_failed > 0
}

/// What an apply works on once it holds the environment's lock.
pub(super) struct Locked {
    pub releases: Vec<RenderedRelease>,
    pub options: ApplyOptions,
    /// The LISTs `lookup` made, which the observation reuses.
    pub looked_up: Vec<(ListTarget, Arc<Listing>)>,
}

/// Each rendered release with what apply needs to know from the environment.
fn inputs<'r>(env: &Environment, rendered: &'r [RenderedRelease]) -> Vec<ReleaseInput<'r>> {
    rendered
        .iter()
        .map(|rendered| {
            let release = env.releases.iter().find(|r| r.name == rendered.name);
            ReleaseInput {
                needs: release.map(|r| r.needs.clone()).unwrap_or_default(),
                create_namespace: release.is_none_or(|r| r.create_namespace),
                rendered,
            }
        })
        .collect()
}

pub(super) fn apply_options(
    env: &Environment,
    settings: &Settings,
    provenance: Option<(String, bool)>,
    rollback_of: Option<u32>,
) -> ApplyOptions {
    ApplyOptions {
        environment: env.name.clone(),
        lock_namespace: env.lock_namespace.clone(),
        dry_run: settings.dry_run,
        force_conflicts: settings.force_conflicts,
        prune: settings.prune,
        concurrency: settings.concurrency,
        wait: settings.wait,
        timeout: settings.timeout,
        // As the lock names its holder (the pod, in a pod), so the Lease and the record agree.
        applied_by: settings.applier.clone().unwrap_or_else(weaver_cluster::this_process),
        health_checks: env.releases.iter().map(|r| (r.name.clone(), r.health_checks.clone())).collect(),
        commit: provenance.as_ref().map(|(commit, _)| commit.clone()),
        dirty: provenance.map(|(_, dirty)| dirty),
        rollback_of,
        correction: false,
        overrides: Vec::new(),
        sensitive: Default::default(),
        forget_helm_release: false,
        take_ownership: settings.take_ownership,
        record_key: None,
    }
}

/// An apply interrupted before it wrote anything.
fn abandoned(options: ApplyOptions) -> Applied {
    let report = Report { releases: Vec::new(), interrupted: true, retried_requests: 0, lock_taken_over: None };
    Applied { report, options, lock_lost: None }
}

/// Takes the environment's lock, then makes `desired` (a future, so nothing of it runs before
/// the lock is held), observes the cluster, plans and applies.
pub(super) async fn execute(
    cluster: &Cluster,
    env: &Environment,
    settings: &Settings,
    desired: impl Future<Output = Result<Locked>>,
    cx: Context<'_>,
) -> Result<Applied> {
    let Context { on, interrupted, .. } = cx;
    debug_assert!(
        !std::ptr::eq(interrupted, &super::NEVER),
        "an apply is given a flag of its caller's own: losing its lock sets it (Context::interruptible)"
    );
    // Read where every apply (rollbacks, corrections and the controller's too) passes, before
    // the lock: a missing or short key file is refused with nothing taken or written.
    let record_key = match &settings.record_key {
        Some(key) => Some(key.clone()),
        None => weaver_secrets::record_key::RecordKey::from_environment()?,
    };
    // One apply per environment at a time; a dry run writes nothing, the Lease included.
    let mut taken_over = None;
    let lock = match settings.dry_run {
        true => None,
        false => {
            crate::apply::ensure_lock_namespace(cluster, env, &|event| on(Progress::Apply(event))).await?;
            let file = weaver_project::environment::environment_path(&env.name);
            let mut lock_options =
                LockOptions::environment(&env.name, file, &env.lock_namespace, settings.lock_timeout);
            lock_options.lease_duration = settings.lock_lease;
            if let Some(applier) = &settings.applier {
                lock_options.holder = applier.clone();
            }
            let acquire = cluster.acquire_lock(&lock_options, |event| match event {
                LockEvent::Waiting { holder, since } => on(Progress::Status(format!(
                    "waiting for the lock of environment `{}` (Lease {}/{}), held by {holder} since {since}",
                    env.name,
                    lock_options.namespace,
                    lock_options.subject.lease_name()
                ))),
                LockEvent::TakenOver { holder, renewed } => {
                    let taken = LockTakenOver { holder, renewed };
                    on(Progress::Warning(format!("environment `{}`: {taken}", env.name)));
                    taken_over = Some(taken);
                }
            });
            // Interrupted (an environment of a fleet) before it holds the lock: it applies
            // nothing, as it would once it held it.
            tokio::select! {
                biased;
                () = crate::apply::interruption(interrupted) => {
                    return Ok(abandoned(apply_options(env, settings, None, None)));
                }
                held = acquire => Some(held?),
            }
        }
    };
    let result = async {
        let mut desired = desired.await?;
        desired.options.record_key = record_key;
        // Rendering under the lock blocks its renewal while it runs: a render longer than the
        // Lease lets another apply in, which this one must not write over.
        if let Some(lock) = &lock {
            lock.check()?;
        }
        execute_locked(cluster, env, desired, lock.as_ref(), settings.plan_check.as_ref(), cx).await
    }
    .await;
    if let Some(lock) = lock {
        let released = lock.release().await;
        // A lock lost is the error to report, not that it could not be released.
        if let (Ok((_, None)), Err(err)) = (&result, released) {
            on(Progress::Warning(format!("{err}; the lock expires by itself")));
        }
    }
    let (mut applied, lock_lost) = result?;
    applied.report.lock_taken_over = taken_over;
    Ok(Applied { lock_lost, ..applied })
}

async fn execute_locked(
    cluster: &Cluster,
    env: &Environment,
    desired: Locked,
    lock: Option<&HeldLock>,
    check: Option<&PlanCheck>,
    cx: Context<'_>,
) -> Result<(Applied, Option<Error>)> {
    let Context { on, interrupted, .. } = cx;
    let Locked { mut releases, options, looked_up } = desired;
    let started = Instant::now();
    let unlabelled: Unlabelled = looked_up.iter().map(|(t, listing)| (t.clone(), &listing.items[..])).collect();
    let mut live =
        observe_reusing(cluster, &mut releases, &options.environment, options.concurrency, &unlabelled).await?;
    observe_helm(cluster, &releases, &mut live, options.forget_helm_release, options.concurrency).await?;
    phase(on, "observe", started);
    let started = Instant::now();
    let (plan, releases, live) = super::blocking(move || {
        let plan = plan_adopting(&releases, &live.records, &live.objects, &live.helm, None);
        (plan, releases, live)
    })
    .await;
    let plan = plan?;
    phase(on, "plan", started);
    // Two environments must not take one object from each other, apply after apply.
    if !options.take_ownership {
        plan.refuse_taking(&options.environment, "nothing was applied")?;
    }
    if let Some(PlanCheck(check)) = check {
        check(&plan)
            .await
            .map_err(|err| err.context(format!("environment `{}`: nothing was applied", options.environment)))?;
    }
    // Interrupted before writing (an environment of a fleet, whose interruption is caught from
    // the start): nothing is applied, as a single apply interrupted before it writes.
    if interrupted.load(Ordering::SeqCst) {
        return Ok((abandoned(options), None));
    }
    let inputs = inputs(env, &releases);
    let on_event = |event: crate::apply::Event<'_>| on(Progress::Apply(event));
    on(Progress::Writing);
    let started = Instant::now();
    let applying = async {
        let report = crate::apply::apply(cluster, inputs, &plan, &live, &options, interrupted, &on_event).await;
        phase(on, "apply", started);
        report
    };
    let (report, lost) = match lock {
        None => (applying.await, None),
        Some(lock) => {
            tokio::pin!(applying);
            // Another apply took the lock (this one stopped renewing it): stop starting new work.
            tokio::select! {
                report = &mut applying => (report, None),
                lost = lock.lost() => {
                    interrupted.store(true, Ordering::SeqCst);
                    (applying.await, Some(lost.context("the apply stopped")))
                }
            }
        }
    };
    Ok((Applied { report, options, lock_lost: None }, lost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Fixture, Heard, failure};
    use crate::apply::Outcome;
    use weaver_plan::release::record::Status;

    /// Each object's kind and what the apply did with it, by kind: objects are applied at once.
    fn outcomes(applied: &Applied) -> Vec<(&str, Outcome)> {
        let objects = applied.report.releases.iter().flat_map(|r| &r.objects);
        let mut outcomes: Vec<_> = objects.map(|o| (o.key.kind.as_str(), o.outcome)).collect();
        outcomes.sort_by_key(|(kind, _)| *kind);
        outcomes
    }

    async fn apply_with(options: &ApplyActionOptions) -> Result<Applied> {
        apply(options, Heard::default().cx()).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_apply_creates_the_objects_and_records_revision_1_and_the_next_changes_nothing() {
        let fixture = Fixture::start().await;
        let first = fixture.apply().await;
        assert_eq!(outcomes(&first), [("ConfigMap", Outcome::Created), ("Deployment", Outcome::Created)]);
        let release = &first.report.releases[0];
        assert_eq!((release.name.as_str(), release.revision, release.status), ("web", Some(1), Some(Status::Deployed)));
        let config = fixture.config_map("web-config").await.expect("the ConfigMap was created");
        assert_eq!(config.data.expect("data")["greeting"], "hello");
        assert_eq!(config.metadata.labels.expect("labels")["weaver.example.com/environment"], "dev");
        assert!(fixture.deployment("web").await.is_some(), "the Deployment was not created");
        let records = fixture.records().await;
        assert_eq!(records.iter().map(|r| (r.revision, r.status)).collect::<Vec<_>>(), [(1, Status::Deployed)]);
        assert_eq!(records[0].objects.len(), 2);
        fixture.writes();

        let second = fixture.apply().await;
        assert_eq!(outcomes(&second), [("ConfigMap", Outcome::Unchanged), ("Deployment", Outcome::Unchanged)]);
        assert_eq!(second.report.releases[0].revision, None, "nothing changed, nothing recorded");
        assert_eq!(fixture.writes(), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_changed_value_configures_its_object_and_records_revision_2() {
        let fixture = Fixture::start().await;
        fixture.apply().await;
        fixture.repo.greet("hi");
        let second = fixture.apply().await;
        assert_eq!(outcomes(&second), [("ConfigMap", Outcome::Configured), ("Deployment", Outcome::Unchanged)]);
        assert_eq!(second.report.releases[0].revision, Some(2));
        assert_eq!(fixture.config_map("web-config").await.unwrap().data.unwrap()["greeting"], "hi");
        let records = fixture.records().await;
        let statuses: Vec<_> = records.iter().map(|r| (r.revision, r.status)).collect();
        assert_eq!(statuses, [(1, Status::Superseded), (2, Status::Deployed)]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dry_run_asks_the_server_and_writes_nothing() {
        let fixture = Fixture::start().await;
        let mut options = fixture.apply_options();
        options.settings.dry_run = true;
        let applied = apply_with(&options).await.unwrap();
        assert_eq!(outcomes(&applied), [("ConfigMap", Outcome::Created), ("Deployment", Outcome::Created)]);
        assert_eq!(applied.report.releases[0].revision, None);
        let writes = fixture.writes();
        assert!(!writes.is_empty() && writes.iter().all(|w| w.ends_with("(dry run)")), "{writes:#?}");
        assert!(fixture.config_map("web-config").await.is_none());
        assert!(fixture.records().await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn values_flags_are_applied_only_when_allowed() {
        let fixture = Fixture::start().await;
        let mut options = fixture.apply_options();
        options.render.overrides.set = vec!["greeting=flagged".into()];
        let refused = failure(apply_with(&options).await);
        assert!(refused.starts_with("apply: values flags (--set, --values, …) would apply"), "{refused}");
        assert!(fixture.config_map("web-config").await.is_none());
        options.allow_overrides = true;
        apply_with(&options).await.unwrap();
        assert_eq!(fixture.config_map("web-config").await.unwrap().data.unwrap()["greeting"], "flagged");
        assert_eq!(fixture.records().await[0].overrides.len(), 1);
    }

    /// The controller hands its connection over instead of a kubeconfig: the apply is the same.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_cluster_handed_over_is_applied_to_as_a_kubeconfigs_is() {
        let fixture = Fixture::start().await;
        let mut options = fixture.apply_options();
        options.connect = fixture.given().await;
        options.settings.applier = Some("EnvironmentSync team/dev".into());
        let applied = apply_with(&options).await.unwrap();
        assert_eq!(outcomes(&applied), [("ConfigMap", Outcome::Created), ("Deployment", Outcome::Created)]);
        assert_eq!(fixture.records().await[0].applied_by.as_deref(), Some("EnvironmentSync team/dev"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_object_of_a_kind_the_cluster_does_not_serve_fails_the_apply_before_it_writes() {
        let fixture = Fixture::start().await;
        let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
        fixture.repo.write("charts/app/templates/widget.yaml", widget);
        let result = apply_with(&fixture.apply_options()).await;
        let message = failure(result);
        let unserved = "Widget.example.com w (release web) is of kind Widget (example.com/v1), which the cluster (context `fake`) does not serve";
        assert!(message.starts_with(unserved), "{message}");
        assert!(fixture.config_map("web-config").await.is_none());
        assert!(fixture.records().await.is_empty());
    }
}
