//! One reconcile of an EnvironmentSync: fetch the source (`weaver_source`), check who signed
//! it (`spec.source.verify`), select the environments at the fetched commit, then, for each in
//! `needs` order, the action the CLI runs (`weaver apply`, `weaver drift`, `weaver drift
//! --correct`), as the EnvironmentSync's ServiceAccount; then the promotion and image update
//! that are due (`push`), and the previews (`previews`). What to do is decided by `plan`, the
//! status by `status`; this file observes and carries out.

pub(super) mod credentials;
mod forge;
mod previews;
mod push;
mod verification;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use secrecy::ExposeSecret;

use super::api::{
    Approval, ArtifactStatus, EnvironmentResult, EnvironmentStatus, EnvironmentSync, PendingPlan, Reason,
    ReleaseChanges,
};
use super::plan::{self, Settings as Spec, Work};
use super::renders::Renders;
use super::status::{Done, Outcome, Working, drift_summary};
use super::telemetry::Metrics;
use crate::tenant::Tenants;
use credentials::{chart_pulls, cluster_for, fetch_reason, fetch_request, keys_for, tenant_client, with_secret};
use weaver_cluster::{ClusterInfo, ConnectOptions, GivenCluster};
use weaver_engine::action::apply::{ApplyActionOptions, PlanCheck, Settings as ApplySettings};
use weaver_engine::action::drift::{CorrectOptions, DriftOptions};
use weaver_engine::action::fleet::{
    Ended, EnvironmentSelection, FleetApplied, FleetApplyOptions, FleetContext, select_environments,
};
use weaver_engine::action::manifests::manifest_environments;
use weaver_engine::action::plan::{Against, PlanOptions};
use weaver_engine::action::render::{IfEmpty, RenderOptions, Selection};
use weaver_engine::action::{Context as ActionContext, Keys, Progress, PruneReleases};
use weaver_engine::schedule::{NotRun, Schedule};
use weaver_plan::plan::Action;
use weaver_project::Environment;
use weaver_secrets::Redactor;
use weaver_secrets::record_key::RecordKey;
use weaver_source::artifacts::PullFailure;
use weaver_source::charts::Archives;
use weaver_source::charts::pulls::Pulls;
use weaver_source::images::Registries;
use weaver_source::{ArtifactCache, ChartCache, FetchRequest, Fetched, GitCache, GitRef};

/// Requests in flight at once in one environment's apply.
const CONCURRENCY: usize = 8;
/// How long an apply waits for the environment's lock that another apply (the CLI's, or
/// another EnvironmentSync's) holds, before it fails and is retried.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// Each request's timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An environment's result when the controller stopped (SIGTERM) in the middle of its apply.
const STOPPED: &str = "the apply was interrupted: the controller was stopped (SIGTERM) before every object was \
                       applied (the counts say how many were); the next reconcile, of this replica or the next \
                       leader, applies the rest";

/// What every reconcile shares.
pub struct Shared {
    /// The controller's own identity: Secrets of the EnvironmentSync's namespace, tokens.
    pub client: kube::Client,
    /// The controller's cluster as it reaches it: a tenant's connection keeps its server and CA.
    pub info: ClusterInfo,
    pub tenants: Tenants,
    pub cache: Arc<GitCache>,
    /// Remote charts, by digest, within the git cache's budget.
    pub charts: Arc<ChartCache>,
    /// OCI artifacts of sources (`spec.source.oci`), unpacked by digest, within the same budget.
    pub artifacts: Arc<ArtifactCache>,
    /// The controller's `--default-service-account`.
    pub default_account: Option<String>,
    /// Whether `dependsOn` may name another namespace's EnvironmentSync.
    pub cross_namespace_refs: bool,
    /// Where fetches and reconciles are counted, for `/metrics`.
    pub metrics: Metrics,
    /// Live state from watches, for every EnvironmentSync of this cluster.
    pub live: weaver_cluster::LiveCache,
    /// The key release records are checked with by auto-promotions (`WEAVER_RECORD_KEY_FILE`).
    pub record_key: Option<RecordKey>,
    /// How long an environment's lock stays held without renewal (`--lock-lease-duration`).
    pub lock_lease: Duration,
    /// Set when the process is told to stop (SIGTERM): an apply under way stops between
    /// objects, says so in the status and releases the environment's lock within the pod's
    /// grace period, instead of being killed holding it.
    pub stopping: Arc<AtomicBool>,
    /// The time `spec.windows` are judged at.
    pub clock: Clock,
    /// Each EnvironmentSync's registries (`spec.imageUpdates`), kept between reconciles so that
    /// an unchanged repository costs a `304`, with a digest of the pull Secrets they were made
    /// with: never shared between EnvironmentSyncs, whose credentials differ.
    pub registries: Mutex<HashMap<String, MadeWith>>,
    /// Tenants' renders: their bounds (a tenant's repository is not trusted) and their turns.
    pub renders: Renders,
}

/// An EnvironmentSync's registries, and the digest of the pull Secrets they were made with.
pub type MadeWith = (Vec<u8>, Arc<Registries>);

/// What time it is, for the windows: the system's, or one a test sets.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(jiff::Timestamp::now))
    }

    /// A clock that reads `now`.
    pub fn reading(now: impl Fn() -> jiff::Timestamp + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> jiff::Timestamp {
        (self.0)()
    }
}

/// Runs one reconcile of `sync`, whose spec `plan::gate` let through as `spec`, asked for at
/// `asked`; `others` finds the EnvironmentSyncs it depends on, by namespace and name; `working`
/// hears what an apply is doing while it runs, for the status.
pub async fn reconcile(
    sync: &EnvironmentSync,
    spec: &Spec,
    shared: &Shared,
    others: impl Fn(&str, &str) -> Option<Arc<EnvironmentSync>>,
    working: &(dyn Fn(Working) + Sync),
    asked: Instant,
) -> Outcome {
    let namespace = sync.namespace().unwrap_or_default();
    let failed = |reason, err: String, revision: Option<&str>| Outcome::Failed {
        reason,
        message: err,
        revision: revision.map(str::to_string),
    };
    let dependencies: Vec<(String, String)> = sync
        .spec
        .depends_on
        .iter()
        .map(|d| (d.namespace.clone().unwrap_or_else(|| namespace.clone()), d.name.clone()))
        .collect();
    if let Some((ns, name)) = dependencies.iter().find(|(ns, _)| *ns != namespace && !shared.cross_namespace_refs) {
        return Outcome::Invalid {
            reason: Reason::CrossNamespaceReference,
            message: format!(
                "spec.dependsOn names EnvironmentSync {ns}/{name} of another namespace, which this controller does not allow (--allow-cross-namespace-refs)"
            ),
        };
    }
    if let Some(cycle) = plan::cycle(sync, &others) {
        return Outcome::Invalid {
            reason: Reason::DependencyCycle,
            message: format!("spec.dependsOn goes round in a circle ({cycle}): no EnvironmentSync of it can be first"),
        };
    }
    let found: Vec<Option<Arc<EnvironmentSync>>> = dependencies.iter().map(|(ns, name)| others(ns, name)).collect();
    let named: Vec<plan::Dependency> = dependencies
        .iter()
        .zip(&found)
        .map(|((ns, name), sync)| plan::Dependency { name: format!("{ns}/{name}"), sync: sync.as_deref() })
        .collect();
    // Not ready at all: waiting costs no fetch. (At which revision is checked after it.)
    if let Some(message) = plan::waiting_for(sync, None, &named) {
        return Outcome::Waiting { revision: None, message };
    }
    // The Secrets the EnvironmentSync names are read as its account: naming another's Secret
    // gives nothing its account may not read.
    let tenant = match tenant_client(&namespace, spec, shared).await {
        Ok(tenant) => tenant,
        Err((reason, message)) => return failed(reason, message, None),
    };
    let redactor = Redactor::new();
    // Leased until this reconcile ends: its plan and its apply read the same archives. Their
    // credentials pull an OCI artifact of the source too.
    let pulls = match chart_pulls(sync, &namespace, &tenant, shared, &redactor).await {
        Ok(pulls) => Arc::new(pulls),
        Err((reason, message)) => return failed(reason, message, None),
    };
    // A fetch of the same source (another EnvironmentSync's) started since the reconcile was
    // asked for will do; one started before may predate a push it was asked for after.
    let (fetched, request, artifact) =
        match fetch_source(sync, &namespace, spec, &tenant, shared, &pulls, Fresh::Since(asked)).await {
            Ok(fetched) => fetched,
            Err((reason, message)) => return failed(reason, message, None),
        };
    // A promotion pushes where the fetch fetched from, with its credentials and CA.
    let push_to = |branch: &str| {
        request
            .as_ref()
            .map(|request| FetchRequest { reference: GitRef::Branch(branch.to_string()), ..request.clone() })
    };
    let images_push_to = spec.image_updates.as_ref().and_then(|u| push_to(&u.pushing.branch));
    let push_to = spec.promotion.as_ref().and_then(|p| push_to(&p.branch));
    let verify_request = spec.verify.as_ref().and(request.clone());
    let previews_request = spec.previews.as_ref().and(request);
    shared.metrics.fetched(&fetched);
    let commit = fetched.commit.clone();
    // Before anything reads the commit: one that fails is not rendered, applied or pushed on.
    if let (Some(verify), Some(request)) = (&spec.verify, verify_request) {
        let checked = match verification::trust_list(&tenant, &namespace, &verify.1).await {
            Ok(trust) => {
                let source = (shared.cache.clone(), &fetched, request);
                verification::check(sync, verify, trust, source).await
            }
            Err(failure) => Err(failure),
        };
        match checked {
            Ok(signed) => tracing::info!(commit = %commit, "the commit is {signed}"),
            Err((reason, message)) => return failed(reason, message, Some(&commit)),
        }
    }
    if let Some(message) = plan::waiting_for(sync, Some(&commit), &named) {
        return Outcome::Waiting { revision: Some(commit), message };
    }
    // Each outcome from here on says what the status says of the artifact pulled.
    let artifact = artifact.map(Box::new);
    let done =
        |work, environments| Done { artifact: artifact.clone(), ..Done::new(commit.clone(), work, environments) };
    let selection = EnvironmentSelection {
        envs: sync.spec.environments.clone(),
        selectors: sync.spec.environment_selector.clone().into_iter().collect(),
        max_file_bytes: shared.renders.max_file_bytes(),
        ..EnvironmentSelection::default()
    };
    let repository = weaver_repository(sync, &fetched);
    let rev = fetched.rev().map(str::to_string);
    // Rendered manifests have no environment files: the artifact's tree says its environments.
    let manifests = fetched.manifests.then(|| (namespace.clone(), sync.name_any()));
    let select = move || match manifests {
        Some((namespace, release)) => manifest_environments(&repository, &selection, &namespace, &release),
        None => select_environments(&repository, rev.as_deref(), &selection),
    };
    let environments = match tokio::task::spawn_blocking(select).await {
        Ok(Ok(environments)) => environments,
        Ok(Err(err)) => return failed(Reason::EnvironmentSelectionFailed, redactor.error(&err), Some(&commit)),
        Err(join) => return failed(Reason::EnvironmentSelectionFailed, join.to_string(), Some(&commit)),
    };
    let environments: Vec<Arc<Environment>> = environments.into_iter().map(Arc::new).collect();
    let names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();
    let work = plan::work(sync, &commit, &names);
    let given = match cluster_for(sync, &namespace, spec, shared, &tenant, environments.len()).await {
        Ok(given) => given,
        Err((reason, message)) => return failed(reason, message, Some(&commit)),
    };
    let keys = match keys_for(sync, &namespace, &tenant).await {
        Ok(keys) => keys,
        Err((reason, message)) => return failed(reason, message, Some(&commit)),
    };
    // The replica too: after a failover, who waits for the lock can tell the replica that
    // stopped from one applying now.
    let applier = format!("EnvironmentSync {namespace}/{} on {}", sync.name_any(), weaver_cluster::this_replica());
    let approval_key = match &keys {
        Keys::Given { identities, .. } => identities.expose_secret().as_bytes().to_vec(),
        Keys::Search(_) => Vec::new(),
    };
    let record_key = shared.record_key.clone();
    let run = Run {
        applier,
        approval_key,
        spec,
        fetched: &fetched,
        repository: weaver_repository(sync, &fetched),
        given,
        keys,
        redactor: &redactor,
        pulls,
        working,
        record_key,
        lock_lease: shared.lock_lease,
        stopping: &shared.stopping,
        tenant: &namespace,
        renders: &shared.renders,
        removing: false,
    };
    let previous = sync.status.clone().unwrap_or_default();
    let earlier = |name: &str| previous.environments.iter().find(|e| e.name == name).cloned();
    let manual = sync.spec.approval == Some(Approval::Manual);
    // A closed window (spec.windows) holds the apply: a manual approval's plan is still computed
    // and shown, nothing is applied, and drift is looked at but not put back.
    let held = plan::hold(sync, shared.clock.now()).map(Box::new);
    let work = match (work, &held) {
        (Work::CorrectDrift, Some(_)) => Work::ReportDrift,
        (work, _) => work,
    };
    // Each environment as it was: nothing is applied while held. One that awaited an approval
    // it has now is no longer awaiting (the Ready condition then says the window holds it).
    let as_before: Vec<EnvironmentStatus> = environments
        .iter()
        .map(|env| match earlier(&env.name) {
            Some(before) if before.result != EnvironmentResult::AwaitingApproval => before,
            before => EnvironmentStatus {
                name: env.name.clone(),
                result: EnvironmentResult::Pending,
                ..before.unwrap_or_default()
            },
        })
        .collect();
    let held_back = |pending: Option<PendingPlan>, held: Box<plan::WindowHold>| {
        Outcome::Done(Done { pending, held: Some(held), ..done(work, as_before.clone()) })
    };
    if let (false, Work::Apply, Some(held)) = (manual, work, &held) {
        return held_back(None, held.clone());
    }
    // With a manual approval, the digest of each environment's approved plan, which its apply
    // checks under the lock: a cluster changed since is a new plan, never applied unapproved.
    let mut approved = None;
    let mut approval = None;
    if work == Work::Apply && manual {
        match run.pending_plan(&environments).await {
            // The environment that could not be planned says why; the others keep what they had.
            Err((failed, unrendered)) => {
                let environments = as_before
                    .iter()
                    .map(|env| if env.name == failed.name { failed.clone() } else { env.clone() })
                    .collect();
                let unrendered = unrendered.then(|| failed.name.clone()).into_iter().collect();
                return Outcome::Done(Done { held, unrendered, ..done(work, environments) });
            }
            Ok((plan, _)) if !plan.releases.is_empty() && !plan::approved(sync, &plan.digest) => {
                let waiting = |env: &Arc<Environment>| EnvironmentStatus {
                    name: env.name.clone(),
                    result: EnvironmentResult::AwaitingApproval,
                    ..earlier(&env.name).unwrap_or_default()
                };
                let waiting = environments.iter().map(waiting).collect();
                // What the approval is for may itself come by promotion: those push on.
                let (promotion, images) =
                    run.push_due(&environments, &push_to, &images_push_to, sync, &namespace, &tenant, shared).await;
                return Outcome::Done(Done { pending: Some(plan), promotion, images, held, ..done(work, waiting) });
            }
            // Approved, but in a closed window: it waits, still approved, until the window opens.
            Ok((plan, _)) if !plan.releases.is_empty() && held.is_some() => {
                return held_back(Some(plan), held.unwrap_or_default());
            }
            // Approved, or nothing to change: applied below.
            Ok((plan, digests)) => {
                approved = Some(digests);
                approval = (!plan.releases.is_empty()).then(|| Box::new(plan::approval_of(sync, &plan.digest)));
            }
        }
    }
    // Applied as a fleet apply orders them: by wave, each after the environments it `needs`.
    let tell = |env: &str, progress: Progress<'_>| {
        if let Progress::Status(text) = progress {
            tracing::info!(environment = env, "{text}");
        }
    };
    let (order, waits_for) = match weaver_engine::action::fleet::apply_order(&environments, &tell) {
        Ok(order) => order,
        Err(err) => return failed(Reason::EnvironmentOrderInvalid, redactor.error(&err), Some(&commit)),
    };
    let ran = match work {
        // Applied as `weaver apply` applies a fleet, one environment at a time: every
        // environment rendered first, two that would own one object refused before any writes.
        Work::Apply => match run.apply(&environments, approved.as_ref()) {
            Ok(applied) => applied,
            Err(err) => {
                let message = redactor.error(&err);
                let refused = |env: &Arc<Environment>| EnvironmentStatus {
                    name: env.name.clone(),
                    result: EnvironmentResult::Failed,
                    message: Some(message.clone()),
                    ..Default::default()
                };
                environments.iter().map(|env| (refused(env), false)).collect()
            }
        },
        // One at a time, each after those it waits for, none skipped.
        Work::ReportDrift | Work::CorrectDrift => {
            let schedule = Schedule { blockers: &waits_for, parallel: 1 };
            let started = |position: usize| {
                let env = order[position];
                let (run, earlier, commit) = (&run, &earlier, &commit);
                async move {
                    let name = env.name.clone();
                    let before = earlier(&name).unwrap_or_else(|| unchanged(&name, commit));
                    let looked = match run
                        .drift(env, work == Work::CorrectDrift, (before.drifted, before.missing))
                        .await
                    {
                        Ok((d, m)) => EnvironmentStatus { drifted: d, missing: m, message: None, ..before },
                        // Not known to be applied any more: Ready says so, and the next reconcile
                        // applies again.
                        Err(message) => {
                            EnvironmentStatus { result: EnvironmentResult::Failed, message: Some(message), ..before }
                        }
                    };
                    (looked, false)
                }
            };
            let skipped = |_: usize, _: NotRun| unreachable!("a look at drift waits for no other's success");
            schedule.run(|_| None, started, skipped, |_| None, |_, _| {}).await.results
        }
    };
    let unrendered = ran.iter().filter(|(_, unrendered)| *unrendered).map(|(env, _)| env.name.clone()).collect();
    let mut results: Vec<EnvironmentStatus> = ran.into_iter().map(|(env, _)| env).collect();
    results.sort_by(|a, b| a.name.cmp(&b.name));
    // The environments' drift as this reconcile leaves it, which an apply puts back: the summary
    // of the last look would otherwise say "1 drifted" beside environments that no longer do.
    let drift = Some(drift_summary(results.iter().map(|e| e.drifted).sum(), results.iter().map(|e| e.missing).sum()));
    let (promotion, images) =
        run.push_due(&environments, &push_to, &images_push_to, sync, &namespace, &tenant, shared).await;
    // After the sync's own environments, as the same account, with the same bounds.
    let previews = match (&spec.previews, &previews_request) {
        (Some(settings), Some(request)) => {
            Some(Box::new(previews::reconcile(sync, settings, &run, (request, &tenant, shared), (work, asked)).await))
        }
        (None, _) if sync.status.as_ref().is_some_and(|s| !s.previews.is_empty()) => {
            Some(Box::new(previews::remove_all(sync, &run, &tenant).await))
        }
        _ => None,
    };
    Outcome::Done(Done { drift, promotion, images, approval, unrendered, previews, ..done(work, results) })
}

fn unchanged(name: &str, commit: &str) -> EnvironmentStatus {
    EnvironmentStatus {
        name: name.to_string(),
        revision: Some(commit.to_string()),
        result: EnvironmentResult::Unchanged,
        ..Default::default()
    }
}

/// How recent a git fetch must be to do.
pub(crate) enum Fresh {
    /// Started at or after this.
    Since(Instant),
    /// Within this long before.
    Within(Duration),
}

/// `sync`'s source as `spec.source` says: its git repository at the revision, fetched into the
/// repository's mirror (with the request, which promotions push with and a verification reads
/// history with), or its OCI artifact, pulled with `pulls`' credentials within `spec.timeout`,
/// with `spec.source.oci.verify` only when a key of its Secret signed it, and unpacked (no
/// request then, but what the status says of the artifact).
pub(crate) async fn fetch_source(
    sync: &EnvironmentSync,
    namespace: &str,
    spec: &Spec,
    tenant: &kube::Client,
    shared: &Shared,
    pulls: &Pulls,
    fresh: Fresh,
) -> Result<(Fetched, Option<FetchRequest>, Option<ArtifactStatus>), (Reason, String)> {
    match &spec.source {
        plan::Fetching::Git(kind, value) => {
            let request = fetch_request(sync, namespace, (kind, value), spec, tenant).await?;
            let (cache, asked) = (shared.cache.clone(), request.clone());
            let fetched = tokio::task::spawn_blocking(move || match fresh {
                Fresh::Since(at) => cache.fetch_since(&asked, at),
                Fresh::Within(within) => cache.fetch_within(&asked, within),
            });
            match fetched.await {
                Ok(Ok(fetched)) => Ok((fetched, Some(request), None)),
                Ok(Err(err)) => Err((fetch_reason(err.failure), with_secret(&err, sync, namespace))),
                Err(join) => Err((Reason::GitFetchFailed, format!("the fetch stopped: {join}"))),
            }
        }
        plan::Fetching::Oci(artifact) => {
            let keys = match &spec.cosign_keys {
                Some(name) => Some(verification::cosign_keys(tenant, namespace, name).await?),
                None => None,
            };
            let (artifacts, pulled, machine) = (shared.artifacts.clone(), artifact.clone(), pulls.machine());
            let deadline = std::time::Instant::now() + spec.timeout;
            let pull = tokio::task::spawn_blocking(move || artifacts.pull(&pulled, keys.as_ref(), &machine, deadline));
            match tokio::time::timeout(spec.timeout, pull).await {
                Ok(Ok(Ok(pulled))) => {
                    let status = ArtifactStatus {
                        tag: pulled.tag,
                        digest: pulled.fetched.commit.clone(),
                        signed_by: pulled.signed_by.map(|signer| signer.to_string()),
                    };
                    Ok((pulled.fetched, None, Some(status)))
                }
                Ok(Ok(Err(err))) => {
                    let mut message = err.message;
                    if let (PullFailure::Unverified, Some(keys)) = (err.failure, &spec.cosign_keys) {
                        message.push_str(&format!(
                            "; the keys are Secret {namespace}/{keys} (spec.source.oci.verify.secretRef): nothing of \
                             it is applied"
                        ));
                    }
                    Err((artifact_reason(err.failure), message))
                }
                Ok(Err(join)) => Err((Reason::ArtifactPullFailed, format!("the pull of {artifact} stopped: {join}"))),
                Err(_) => Err((
                    Reason::ArtifactPullFailed,
                    format!("the pull of {artifact} took longer than spec.timeout ({} s)", spec.timeout.as_secs()),
                )),
            }
        }
    }
}

/// The Ready condition's reason for a failed pull of an OCI artifact.
fn artifact_reason(failure: PullFailure) -> Reason {
    match failure {
        PullFailure::Failed => Reason::ArtifactPullFailed,
        PullFailure::NotFound => Reason::ArtifactNotFound,
        PullFailure::TooLarge => Reason::ArtifactTooLarge,
        PullFailure::Invalid => Reason::ArtifactInvalid,
        PullFailure::Unverified => Reason::VerificationFailed,
    }
}

/// The weaver repository in `fetched`'s bare mirror (or an artifact's files): its top, or the directory
/// `spec.source.path` names, which `weaver_git::GitRepo` reads from each commit's tree (the
/// schema lets through no `..` or absolute path, so it stays inside).
pub fn weaver_repository(sync: &EnvironmentSync, fetched: &Fetched) -> PathBuf {
    // The schema refuses what is not a plain relative path. Should a CRD without its pattern
    // let one through, it fails closed: a directory no tree has, named so the error says why
    // (a join with an absolute path would leave the mirror, `..` climb out of it).
    let plain =
        |path: &str| std::path::Path::new(path).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    match sync.spec.source.path.as_deref().filter(|path| !path.is_empty()) {
        Some(path) if plain(path) => fetched.repository.join(path),
        Some(path) => fetched.repository.join(format!("(spec.source.path {path:?} is not a relative path)")),
        None => fetched.repository.clone(),
    }
}

/// What a reconcile's actions share.
struct Run<'a> {
    /// `EnvironmentSync team/shop on weaver-7d9f-x2x`: the lock's holder and the records'
    /// `appliedBy`.
    applier: String,
    /// What the plan digest's Secret values are keyed with (the decryption identities), so the
    /// digest in the status cannot confirm a guessed value.
    approval_key: Vec<u8>,
    spec: &'a Spec,
    fetched: &'a Fetched,
    /// The weaver repository in `fetched`'s mirror (see [`weaver_repository`]).
    repository: PathBuf,
    given: GivenCluster,
    keys: Keys,
    redactor: &'a Redactor,
    /// The remote charts this reconcile pulled or found, leased.
    pulls: Arc<Pulls>,
    /// Hears what an apply is doing, for the status.
    working: &'a (dyn Fn(Working) + Sync),
    /// What promotions check the source's records with.
    record_key: Option<RecordKey>,
    /// How long the environment's lock stays held without renewal.
    lock_lease: Duration,
    /// The process is stopping: see [`Shared::stopping`].
    stopping: &'a Arc<AtomicBool>,
    /// The EnvironmentSync's namespace, whose renders take turns.
    tenant: &'a str,
    renders: &'a Renders,
    /// Only removes what records list (a preview's prune): an environment of no releases is
    /// then no mistake.
    removing: bool,
}

impl<'a> Run<'a> {
    /// This run at another commit of the same repository (`fetched`, its weaver repository
    /// `repository`), with `keys` and `spec`: a preview's.
    fn at<'b>(&'b self, fetched: &'b Fetched, repository: PathBuf, keys: Keys, spec: &'b Spec) -> Run<'b>
    where
        'a: 'b,
    {
        Run {
            applier: self.applier.clone(),
            approval_key: self.approval_key.clone(),
            spec,
            fetched,
            repository,
            given: self.given.clone(),
            keys,
            redactor: self.redactor,
            pulls: self.pulls.clone(),
            working: self.working,
            record_key: self.record_key.clone(),
            lock_lease: self.lock_lease,
            stopping: self.stopping,
            tenant: self.tenant,
            renders: self.renders,
            removing: self.removing,
        }
    }

    fn selection(&self, env: &Arc<Environment>) -> Selection {
        Selection {
            env: env.name.clone(),
            releases: Vec::new(),
            selectors: Vec::new(),
            changed_since: None,
            repo: self.repository.clone(),
            rev: self.fetched.rev().map(str::to_string),
            loaded: Some(Arc::clone(env)),
            project: None,
            // An artifact's files are no git checkout: the records name its digest.
            revision: self.fetched.unpacked.then(|| self.fetched.commit.clone()),
        }
    }

    /// The options of one environment's render, from now: its own `spec.timeout` (its wait for
    /// a turn included), as the API documents it, not what is left of the reconcile's after the
    /// fetch and earlier environments' applies.
    fn render(&self, env: &Arc<Environment>) -> RenderOptions {
        RenderOptions {
            selection: self.selection(env),
            keys: self.keys.clone(),
            if_empty: if self.removing { IfEmpty::Remove } else { IfEmpty::Refuse },
            validate: weaver_validate::Mode::Strict,
            overrides: Default::default(),
            charts: Archives::Pulled(self.pulls.clone()),
            limits: self.renders.limits(self.tenant, self.spec.timeout, self.stopping),
        }
    }

    fn prune_releases(&self) -> PruneReleases {
        prune_releases(self.spec)
    }

    fn connect(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: None,
            context: None,
            request_timeout: REQUEST_TIMEOUT,
            retry_budget: weaver_cluster::DEFAULT_RETRY_BUDGET,
            given: Some(self.given.clone()),
        }
    }

    fn settings(&self, wait: bool) -> ApplySettings {
        ApplySettings {
            dry_run: false,
            wait,
            timeout: self.spec.timeout,
            // Git is the source of truth: fields another manager took are taken back, as Flux's
            // server-side apply forces ownership.
            force_conflicts: true,
            // An object another environment owns is refused, never taken by an interval.
            take_ownership: false,
            prune: self.spec.prune,
            concurrency: CONCURRENCY,
            lock_timeout: LOCK_TIMEOUT,
            lock_lease: self.lock_lease,
            applier: Some(self.applier.clone()),
            plan_check: None,
            record_key: self.record_key.clone(),
        }
    }

    /// What the actions tell, logged: warnings and statuses only, redacted.
    fn on(&self) -> impl Fn(Progress<'_>) + Sync + '_ {
        move |progress| match progress {
            Progress::Warning(text) => tracing::warn!("{}", self.redactor.redact(&text)),
            Progress::Status(text) => tracing::info!("{}", self.redactor.redact(&text)),
            Progress::Notified(delivery) => match &delivery.result {
                Ok(_) => tracing::info!(notification = delivery.name, "sent"),
                Err(failure) => tracing::warn!(
                    notification = delivery.name,
                    at = %delivery.at,
                    "not sent: {}",
                    self.redactor.redact(&failure.reason)
                ),
            },
            _ => {}
        }
    }

    /// Applies `environments` as `weaver apply` applies a fleet, one at a time; with
    /// `approved`, each only the plan of its digest there. Each environment's status after its
    /// apply, and whether it failed in its render (its templates, values, charts: nothing was
    /// sent to the cluster) rather than its apply; an error when nothing was applied, two
    /// environments owning one object.
    fn apply(
        &self,
        environments: &[Arc<Environment>],
        approved: Option<&BTreeMap<String, String>>,
    ) -> weaver_core::error::Result<Vec<(EnvironmentStatus, bool)>> {
        let options = |name: &str| {
            let mut settings = self.settings(self.spec.wait);
            if let Some(expected) = approved.and_then(|digests| digests.get(name)).cloned() {
                let (environment, key) = (name.to_string(), self.approval_key.clone());
                settings.plan_check = Some(PlanCheck(Arc::new(move |planned| {
                    let approved = plan::environment_digest(&environment, planned, &key) == expected;
                    Box::pin(std::future::ready(match approved {
                        true => Ok(()),
                        false => Err(weaver_core::error::Error::new(
                            "the plan made under the lock is not the approved one: the cluster changed",
                        )
                        .with_help(
                            "the plan changed since it was approved: approve the new one (weaver sync approve)",
                        )),
                    }))
                })));
            }
            let env = environments.iter().find(|e| e.name == name).expect("the fleet applies the environments given");
            ApplyActionOptions {
                render: self.render(env),
                connect: self.connect(),
                settings,
                require_clean: false,
                prune_releases: self.prune_releases(),
                allow_overrides: false,
                forget_helm_release: false,
                servers: None,
            }
        };
        let applying =
            |env: &str| format!("applying revision {} to environment `{env}`", plan::short(&self.fetched.commit));
        let tell = |message: String| (self.working)(Working { revision: self.fetched.commit.clone(), message });
        // The render in its tenant's turn; the apply after it (waiting for the lock, for
        // objects to be ready) lets others render.
        let render = |options: &ApplyActionOptions, cx: ActionContext| {
            let (env, limits) = (&options.render.selection.env, &options.render.limits);
            tell(applying(env));
            let turn =
                weaver_engine::action::block_on(self.renders.turn(self.tenant, env, &self.fetched.commit, limits))?;
            // Logged; the status goes on saying `applying` (it is written while this renders).
            tracing::info!("{}: rendering", applying(env));
            let rendered = weaver_engine::action::apply::render_offline(options, cx);
            turn.finished(&rendered);
            rendered
        };
        let logged = self.on();
        // What the apply waits for (another holder of the lock) is told until its next phase.
        let on = |env: &str, progress: Progress<'_>| {
            match &progress {
                Progress::Status(text) => tell(format!("{}: {}", applying(env), self.redactor.redact(text))),
                Progress::Phase(..) | Progress::Writing => tell(applying(env)),
                _ => {}
            }
            logged(progress);
        };
        let fleet = FleetApplyOptions { max_parallel: 1, fail_fast: false };
        // Stopped (SIGTERM), an apply under way stops between objects, and no other starts.
        let cx = FleetContext::new(self.redactor, &on).interruptible(self.stopping);
        let applied = weaver_engine::action::judging_in_place(|| {
            weaver_engine::action::fleet::apply_rendering(environments, options, &render, fleet, cx)
        })?;
        Ok(applied.into_iter().map(|env| self.status_of(env)).collect())
    }

    /// An environment's status after a fleet apply, and whether it failed in its render.
    fn status_of(&self, env: FleetApplied) -> (EnvironmentStatus, bool) {
        let mut status = EnvironmentStatus { name: env.environment, ..Default::default() };
        match env.ended {
            Ended::Ran(Err(err)) => {
                status.result = EnvironmentResult::Failed;
                status.message = Some(self.redactor.error(&err));
            }
            Ended::Skipped(why) | Ended::NotStarted(why) => {
                status.result = EnvironmentResult::Skipped;
                status.message = Some(format!("not applied: {why}"));
            }
            Ended::Ran(Ok(applied)) => {
                let totals = applied.report.totals();
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                status.created = count(totals.created);
                status.configured = count(totals.configured);
                status.unchanged = count(totals.unchanged);
                status.pruned = count(totals.pruned);
                status.failed = count(totals.failed + totals.not_applied);
                let failure = match applied.report.interrupted && self.stopping.load(Ordering::SeqCst) {
                    true => Some(STOPPED.to_string()),
                    false => failure_of(&applied.report),
                };
                let failure = failure.or_else(|| applied.lock_lost.as_ref().map(|e| e.to_string()));
                match failure {
                    Some(message) => {
                        status.result = EnvironmentResult::Failed;
                        status.message = Some(self.redactor.redact(&message).into_owned());
                    }
                    None => {
                        status.revision = Some(self.fetched.commit.clone());
                        let changed = totals.created + totals.configured + totals.pruned > 0;
                        status.result = if changed { EnvironmentResult::Applied } else { EnvironmentResult::Unchanged };
                        // The apply before this one, whose holder was killed under the lock.
                        status.message = applied.report.lock_taken_over.as_ref().map(ToString::to_string);
                    }
                }
            }
        }
        (status, env.unrendered)
    }

    /// The plan of every environment at this revision, as `weaver diff` makes it, summarised
    /// with its digest, and each environment's digest (which the apply checks under the lock);
    /// an environment's failure as its status, and whether it failed in its render.
    async fn pending_plan(
        &self,
        environments: &[Arc<Environment>],
    ) -> Result<(PendingPlan, BTreeMap<String, String>), (EnvironmentStatus, bool)> {
        let mut digests = BTreeMap::new();
        let mut releases = Vec::new();
        for env in environments {
            let options = PlanOptions {
                render: self.render(env),
                against: Against::Cluster(self.connect()),
                server_side: false,
                concurrency: CONCURRENCY,
                prune_releases: self.prune_releases(),
                servers: None,
            };
            let on = self.on();
            let cx = ActionContext::new(self.redactor, &on);
            // The render in its tenant's turn; the plan's API requests after it let others render.
            let offline = async {
                let revision = &self.fetched.commit;
                let turn = self.renders.turn(self.tenant, &env.name, revision, &options.render.limits).await?;
                let owned = options.clone();
                weaver_engine::action::blocking_with(cx, move |cx| {
                    let rendered = weaver_engine::action::plan::render_offline(&owned, cx);
                    turn.finished(&rendered);
                    rendered
                })
                .await
            }
            .await;
            let unrendered = offline.is_err();
            let planned = match offline {
                Ok(offline) => weaver_engine::action::plan::plan_rendered(&options, offline, cx).await,
                Err(err) => Err(err),
            };
            let failed = |err: weaver_core::error::Error| {
                let status = EnvironmentStatus {
                    name: env.name.clone(),
                    result: EnvironmentResult::Failed,
                    message: Some(self.redactor.error(&err)),
                    ..Default::default()
                };
                (status, unrendered)
            };
            let planned = planned.map_err(failed)?;
            let mut counts: BTreeMap<&str, ReleaseChanges> = BTreeMap::new();
            for object in planned.plan.objects.iter().filter(|o| o.action != Action::Unchanged) {
                let entry = counts.entry(&object.release).or_insert_with(|| ReleaseChanges {
                    environment: env.name.clone(),
                    release: object.release.clone(),
                    ..Default::default()
                });
                match object.action {
                    Action::Create => entry.create += 1,
                    Action::Update => entry.update += 1,
                    Action::Delete => entry.delete += 1,
                    Action::Unchanged => {}
                }
            }
            releases.extend(counts.into_values());
            digests.insert(env.name.clone(), plan::environment_digest(&env.name, &planned.plan, &self.approval_key));
        }
        let order: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
        let digest = plan::plan_digest(&self.fetched.commit, order.iter().map(|name| digests[*name].as_str()));
        Ok((PendingPlan { digest, revision: self.fetched.commit.clone(), releases }, digests))
    }

    /// Drift found (drifted, missing), told to the environment's notifications when it differs
    /// from `before` (what the last look found), not on every interval; with `correct`, put back
    /// and told as `weaver drift --correct` tells it.
    async fn drift(&self, env: &Arc<Environment>, correct: bool, before: (u32, u32)) -> Result<(u32, u32), String> {
        let options = DriftOptions {
            selection: self.selection(env),
            connect: self.connect(),
            concurrency: CONCURRENCY,
            servers: None,
            keys: self.keys.clone(),
            notify: correct,
        };
        let on = self.on();
        let cx = ActionContext::new(self.redactor, &on);
        let report = match correct {
            false => weaver_engine::action::drift::drift(&options, cx).await,
            true => {
                let options = CorrectOptions { drift: options.clone(), settings: self.settings(false) };
                let interrupted = AtomicBool::new(false);
                let correcting = weaver_engine::action::drift::correct(&options, cx.interruptible(&interrupted));
                weaver_engine::apply::interrupted_by(self.stopping, &interrupted, correcting)
                    .await
                    .map(|corrected| corrected.report)
            }
        };
        let report = report.map_err(|err| self.redactor.error(&err))?;
        let summary = report.summary();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let found = (count(summary.drifted), count(summary.missing));
        if !correct && report.has_drift() && found != before {
            weaver_engine::action::drift::tell_drift(&options, &report, cx)
                .await
                .map_err(|err| self.redactor.error(&err))?;
        }
        Ok(found)
    }
}

/// The first failure an apply reports: a release's error, else an object's.
fn failure_of(report: &weaver_engine::apply::Report) -> Option<String> {
    if report.interrupted {
        return Some("the apply was interrupted".into());
    }
    report.releases.iter().find_map(|release| {
        if let Some(error) = &release.error {
            return Some(format!("release {}: {error}", release.name));
        }
        release.objects.iter().find(|o| o.outcome == weaver_engine::apply::Outcome::Failed).map(|object| {
            format!(
                "{} {} (release {}): {}",
                object.api_version,
                object.key,
                object.release,
                object.message.as_deref().unwrap_or("failed")
            )
        })
    })
}

/// Releases the environment no longer has are removed with `prune`, found in the
/// environment's namespaces: its tenant's account may not list Secrets across the cluster.
pub(super) fn prune_releases(spec: &Spec) -> PruneReleases {
    match spec.prune {
        true => PruneReleases::InEnvironment,
        false => PruneReleases::No,
    }
}

/// Seconds since `started`, for the history.
pub fn seconds_since(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::gitops::api::{EnvironmentResult, Reason};
    use crate::gitops::testing::{Fixture, NAMESPACE, condition};

    /// The Ready condition's (status, reason) and whether its message has `part`.
    fn ready_with(sync: &super::EnvironmentSync, part: &str) -> (String, String, bool) {
        let (status, reason, message) = condition(sync, "Ready").expect("a Ready condition");
        (status, reason, message.contains(part))
    }

    /// The fixture, its first commit applied by EnvironmentSync `shop`: that commit, and `shop`
    /// after it.
    async fn applied() -> Option<(Fixture, String, super::EnvironmentSync)> {
        let fixture = Fixture::start().await?;
        let first = fixture.source.commit("first");
        fixture.create_sync("shop", json!({})).await;
        let sync = fixture.reconcile("shop").await;
        Some((fixture, first, sync))
    }

    /// The greeting ConfigMap `app` says, None when there is no such ConfigMap.
    async fn greeting(fixture: &Fixture) -> Option<String> {
        let config_map = fixture.config_map(NAMESPACE, "app").await?;
        config_map.data.and_then(|data| data.get("greeting").cloned())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fetched_commit_is_applied_as_the_account_recorded_and_the_status_says_ready_at_it() {
        let Some(fixture) = Fixture::start().await else { return };
        let commit = fixture.source.commit("first");
        fixture.create_sync("shop", json!({})).await;
        fixture.requests();
        let sync = fixture.reconcile("shop").await;

        let short = &commit[..12];
        let message = format!("applied revision {short} to 1 environment(s)");
        assert_eq!(ready_with(&sync, &message), ("True".into(), Reason::ReconciliationSucceeded.as_str().into(), true));
        let status = sync.status.clone().expect("a status");
        assert_eq!(status.last_applied_revision.as_deref(), Some(commit.as_str()));
        assert_eq!(status.observed_generation, sync.metadata.generation);
        assert_eq!(status.environments_ready.as_deref(), Some("1/1"));
        let dev = &status.environments[0];
        assert_eq!(
            (dev.name.as_str(), &dev.result, dev.revision.as_deref()),
            ("dev", &EnvironmentResult::Applied, Some(commit.as_str()))
        );
        assert_eq!((dev.created, dev.configured, dev.failed), (1, 0, 0));
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"));
        // The ConfigMap was written with the account's token, not the controller's.
        let requests = fixture.requests();
        let writes: Vec<&String> =
            requests.iter().filter(|r| r.starts_with("PATCH /api/v1/namespaces/app/configmaps/app")).collect();
        assert!(!writes.is_empty(), "{requests:#?}");
        assert!(writes.iter().all(|w| w.contains("by system:serviceaccount:app:deployer: 2")), "{writes:#?}");
        // Recorded as `weaver apply` records it, naming this EnvironmentSync and replica.
        let records = fixture.records(NAMESPACE).await;
        let applier = format!("EnvironmentSync app/shop on {}", weaver_cluster::this_replica());
        let recorded: Vec<(&str, u32, Option<&str>, Option<&str>)> = records
            .iter()
            .map(|r| (r.release.as_str(), r.revision, r.commit.as_deref(), r.applied_by.as_deref()))
            .collect();
        assert_eq!(recorded, [("app", 1, Some(commit.as_str()), Some(applier.as_str()))]);
        let events = fixture.events("shop").await;
        assert_eq!(events, [format!("Normal ReconciliationSucceeded: {message}")]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unchanged_commit_costs_one_ref_listing_and_no_write_and_a_requested_one_is_applied() {
        let Some((fixture, first, _)) = applied().await else { return };
        // The first reconcile after the apply looks at drift, and says so once (`drift: none`).
        let looked = fixture.reconcile("shop").await;
        assert_eq!(looked.status.as_ref().and_then(|s| s.drift.as_ref()).map(|d| d.summary.as_str()), Some("none"));
        fixture.requests();
        fixture.source.requests();

        let again = fixture.reconcile("shop").await;
        let writes: Vec<String> = fixture.requests().into_iter().filter(|r| !r.starts_with("GET ")).collect();
        assert_eq!(writes, Vec::<String>::new(), "an unchanged commit wrote something");
        assert_eq!(again.metadata.resource_version, looked.metadata.resource_version);
        // Asked for after the last fetch, the reconcile reads the refs again (a push since would
        // be in them); the mirror holds the commit, so nothing is transferred.
        assert_eq!(fixture.source.requests(), ["GET /shop/info/refs"]);

        fixture.source.write("charts/app/values.yaml", "greeting: hi\n");
        let second = fixture.source.commit("second");
        fixture.request_reconcile("shop").await;
        let applied = fixture.reconcile("shop").await;
        let status = applied.status.expect("a status");
        assert_eq!(status.last_applied_revision.as_deref(), Some(second.as_str()));
        assert_eq!(
            (&status.environments[0].result, status.environments[0].configured),
            (&EnvironmentResult::Applied, 1)
        );
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hi"));
        let history: Vec<&str> = status.history.iter().map(|h| h.revision.as_str()).collect();
        assert_eq!(history, [second.as_str(), first.as_str()]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_commit_that_does_not_render_keeps_the_last_applied_revision_and_says_why() {
        let Some((fixture, good, _)) = applied().await else { return };
        let template = "charts/app/templates/configmap.yaml";
        fixture.source.write(template, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name\n");
        let broken = fixture.source.commit("broken template");
        fixture.request_reconcile("shop").await;
        let sync = fixture.reconcile("shop").await;

        // A render's failure, not an apply's; the file is named, at the revision that has it.
        let (status, reason, message) = condition(&sync, "Ready").expect("a Ready condition");
        assert_eq!((status.as_str(), reason.as_str()), ("False", Reason::RenderFailed.as_str()));
        assert!(message.contains(template) && message.contains(&broken[..12]), "{message}");
        assert_eq!(
            condition(&sync, "Reconciling").map(|c| (c.0, c.1)),
            Some(("True".into(), "ProgressingWithRetry".into()))
        );
        let status = sync.status.clone().expect("a status");
        assert_eq!(status.last_applied_revision.as_deref(), Some(good.as_str()));
        assert_eq!(status.last_attempted_revision.as_deref(), Some(broken.as_str()));
        assert_eq!(status.environments[0].result, EnvironmentResult::Failed);
        assert_eq!(status.environments_ready.as_deref(), Some("0/1"));
        // The cluster keeps what was applied.
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"));
        let history: Vec<(&str, &str)> =
            status.history.iter().map(|h| (h.revision.as_str(), h.result.as_str())).collect();
        assert_eq!(history, [(broken.as_str(), "RenderFailed"), (good.as_str(), "ReconciliationSucceeded")]);
        let events = fixture.events("shop").await;
        assert!(events.iter().any(|e| e.starts_with("Warning RenderFailed: ") && e.contains(template)), "{events:#?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_plan_to_approve_that_does_not_render_is_a_render_failure_and_one_the_cluster_refuses_is_not() {
        let Some(fixture) = Fixture::start().await else { return };
        let template = "charts/app/templates/configmap.yaml";
        fixture.source.write(template, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name\n");
        fixture.source.commit("broken template");
        fixture.create_sync("shop", json!({"approval": "Manual"})).await;
        let sync = fixture.reconcile("shop").await;
        let (status, reason, message) = condition(&sync, "Ready").expect("a Ready condition");
        assert_eq!((status.as_str(), reason.as_str()), ("False", Reason::RenderFailed.as_str()));
        assert!(message.contains(template), "{message}");

        // It renders, and names a namespace the account may not read: the plan's failure is the
        // cluster's answer, not the render's.
        fixture.source.write(
            template,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\n  namespace: elsewhere\n",
        );
        fixture.source.commit("an object elsewhere");
        fixture.request_reconcile("shop").await;
        let sync = fixture.reconcile("shop").await;
        let (status, reason, message) = condition(&sync, "Ready").expect("a Ready condition");
        assert_eq!((status.as_str(), reason.as_str()), ("False", Reason::ApplyFailed.as_str()), "{message}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_suspended_sync_fetches_nothing_and_holds_a_new_commit_until_resumed() {
        let Some((fixture, first, applied)) = applied().await else { return };
        fixture.patch_sync("shop", json!({"spec": {"suspend": true}})).await;
        fixture.source.write("charts/app/values.yaml", "greeting: hi\n");
        let second = fixture.source.commit("second");
        fixture.source.requests();

        let suspended = fixture.reconcile("shop").await;
        assert_eq!(fixture.source.requests(), Vec::<String>::new(), "fetched while suspended");
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hello"));
        let status = suspended.status.clone().expect("a status");
        // Seen (its generation), and nothing else said: the last reconcile's conditions stay.
        assert_eq!(status.observed_generation, suspended.metadata.generation);
        assert_ne!(status.observed_generation, applied.status.as_ref().and_then(|s| s.observed_generation));
        assert_eq!(status.last_applied_revision.as_deref(), Some(first.as_str()));
        assert_eq!(status.conditions, applied.status.expect("a status").conditions);

        fixture.patch_sync("shop", json!({"spec": {"suspend": false}})).await;
        let resumed = fixture.reconcile("shop").await;
        assert_eq!(resumed.status.and_then(|s| s.last_applied_revision).as_deref(), Some(second.as_str()));
        assert_eq!(greeting(&fixture).await.as_deref(), Some("hi"));
    }
}
