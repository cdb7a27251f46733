//! `weaver sync` and `weaver previews`: EnvironmentSyncs (the GitOps controller's objects) seen
//! and steered from the command line: listed with their state, asked for a reconcile (and waited
//! for), suspended and resumed, their pending plan approved, a preview's deletion asked for. The
//! controller does the work; these only read the objects and patch their spec and annotations.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use super::{OnProgress, Progress};
use weaver_api::environment_sync::EnvironmentSync;
use weaver_api::environment_sync::{APPROVED_BY, PREVIEW_DELETE_PREFIX, RECONCILE_REQUESTED_AT};
use weaver_api::environment_sync::{Approval as ApprovalMode, PendingPlan};
use weaver_api::environment_sync::{PreviewState, PreviewStatus};
use weaver_cluster::{ConnectOptions, Patched, Syncs};
use weaver_core::error::{Error, Result};

/// Which EnvironmentSyncs, where.
#[derive(Debug, Clone)]
pub struct Target {
    pub connect: ConnectOptions,
    /// `-n`; None: the context's namespace.
    pub namespace: Option<String>,
}

/// `weaver sync get`.
#[derive(Debug, Clone)]
pub struct GetOptions {
    pub target: Target,
    /// `-A`: every namespace (never with a name).
    pub all_namespaces: bool,
    /// `-l`.
    pub selector: Option<String>,
    pub name: Option<String>,
}

/// What `sync get` found.
pub struct Listing {
    /// By namespace, then name.
    pub syncs: Vec<EnvironmentSync>,
    /// Where it looked: None for every namespace.
    pub namespace: Option<String>,
}

/// Lists the EnvironmentSyncs (or reads the one named: an error naming it and its namespace
/// when there is none).
pub async fn get(options: &GetOptions, on: OnProgress<'_>) -> Result<Listing> {
    let syncs = connect(&options.target.connect, on).await?;
    let namespace = (!options.all_namespaces).then(|| namespace(&syncs, &options.target));
    let mut found = match (&options.name, &namespace) {
        (Some(name), Some(ns)) => vec![read(&syncs, ns, name).await?],
        (Some(_), None) => {
            return Err(Error::new("a name cannot be looked up in all namespaces (-A)")
                .with_help("give its namespace with -n NAMESPACE instead of -A"));
        }
        (None, _) => syncs.list(namespace.as_deref(), options.selector.as_deref()).await?,
    };
    found.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
    Ok(Listing { syncs: found, namespace })
}

/// `weaver sync reconcile`.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub target: Target,
    pub name: String,
    /// How long to wait for the controller; None: only ask (`--no-wait`).
    pub wait: Option<Duration>,
}

pub struct Reconciled {
    /// The object as the controller left it (or as the request left it, without waiting).
    pub sync: EnvironmentSync,
    /// The annotation's value: when it was asked.
    pub requested_at: String,
    /// Whether the controller handled the request (false: it was not waited for).
    pub handled: bool,
}

/// How often `reconcile` says it is still waiting.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(15);

/// Asks the controller for a reconcile now (the `reconcile-requested-at` annotation), then
/// waits until a status handling that request, at the object's generation, appears.
pub async fn reconcile(options: &ReconcileOptions, on: OnProgress<'_>) -> Result<Reconciled> {
    let syncs = connect(&options.target.connect, on).await?;
    let ns = namespace(&syncs, &options.target);
    let name = &options.name;
    let sync = read(&syncs, &ns, name).await?;
    if sync.spec.suspend {
        return Err(Error::new(format!(
            "EnvironmentSync {ns}/{name} is suspended: the controller would not handle a reconcile request"
        ))
        .with_help(format!("`weaver sync resume {name} -n {ns}` resumes it and asks for a reconcile")));
    }
    let requested_at = now();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: requested_at}}});
    let sync = patched(syncs.merge_patch(&ns, name, &patch, "annotating").await?, &ns, name)?;
    let Some(timeout) = options.wait else {
        return Ok(Reconciled { sync, requested_at, handled: false });
    };
    let asked = Asked { ns: &ns, name, what: "a reconcile", requested_at: &requested_at };
    let sync = wait_handled(&syncs, &asked, timeout, on).await?;
    Ok(Reconciled { sync, requested_at, handled: true })
}

/// A request written on an EnvironmentSync with the `reconcile-requested-at` annotation.
struct Asked<'a> {
    ns: &'a str,
    name: &'a str,
    /// What was asked, for messages: `a reconcile`, `the deletion of preview a`.
    what: &'a str,
    requested_at: &'a str,
}

/// Waits up to `timeout` for a status handling `asked`, at the object's generation.
async fn wait_handled(
    syncs: &Syncs,
    asked: &Asked<'_>,
    timeout: Duration,
    on: OnProgress<'_>,
) -> Result<EnvironmentSync> {
    let Asked { ns, name, what, requested_at } = *asked;
    on(Progress::Status(format!(
        "asked for {what} of EnvironmentSync {ns}/{name}; waiting up to {} for the controller",
        weaver_project::humanize(timeout)
    )));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut changes = std::pin::pin!(syncs.watch(ns, name));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + STILL_WAITING_EVERY, STILL_WAITING_EVERY);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(Ok(Some(seen))) => {
                    last_error = None;
                    if handled(&seen, requested_at) {
                        return Ok(seen);
                    }
                }
                Some(Ok(None)) => {
                    return Err(Error::new(format!("EnvironmentSync {ns}/{name} was deleted while waiting for {what}")));
                }
                Some(Err(err)) => {
                    if last_error.as_ref() != Some(&err) {
                        on(Progress::Warning(format!("watching EnvironmentSync {ns}/{name} failed, trying again: {err}")));
                    }
                    last_error = Some(err);
                }
                None => return Err(Error::new(format!("the watch of EnvironmentSync {ns}/{name} ended"))),
            },
            _ = ticks.tick() => on(Progress::Status(format!(
                "still waiting for the controller ({})",
                weaver_project::humanize(Duration::from_secs(started.elapsed().as_secs()))
            ))),
            _ = tokio::time::sleep_until(deadline) => {
                let why = last_error.map_or_else(String::new, |err| format!(" (the last watch failed: {err})"));
                return Err(Error::new(format!(
                    "the controller did not handle the request for {what} of EnvironmentSync {ns}/{name} within {}{why}",
                    weaver_project::humanize(timeout)
                ))
                .with_help(format!(
                    "is the operator running (`weaver operator run`)? The request stays: the controller \
                     handles it when it can, and `weaver sync get {name} -n {ns}` shows what it did. \
                     Allow more time with --timeout"
                )));
            }
        }
    }
}

/// `weaver previews delete`.
#[derive(Debug, Clone)]
pub struct DeletePreviewOptions {
    pub target: Target,
    /// The EnvironmentSync.
    pub sync: String,
    /// The preview, as its status names it.
    pub name: String,
    /// How long to wait for the controller; None: only ask.
    pub wait: Option<Duration>,
}

/// What became of a preview's deletion.
pub enum PreviewDeletion {
    /// Asked for, not waited for: the preview as the status said it when asked.
    Asked { sync: Box<EnvironmentSync>, preview: PreviewStatus },
    /// The status says it is deleted (or, its branch gone meanwhile, no longer lists it).
    Deleted { sync: Box<EnvironmentSync>, preview: Option<PreviewStatus> },
    /// It already was, at its branch's commit: nothing was written.
    AlreadyDeleted { preview: PreviewStatus },
}

/// Asks the controller to delete a preview: the annotation [`PREVIEW_DELETE_PREFIX`]`<name>` set
/// to the commit the status has it at, with a reconcile request (which wakes the controller, and
/// which `--wait` waits for); requests of previews no longer listed at that commit are removed
/// in the same write. The controller prunes it as it prunes a preview whose branch went.
pub async fn delete_preview(options: &DeletePreviewOptions, on: OnProgress<'_>) -> Result<PreviewDeletion> {
    let syncs = connect(&options.target.connect, on).await?;
    let ns = namespace(&syncs, &options.target);
    let (name, preview) = (&options.sync, &options.name);
    let sync = read(&syncs, &ns, name).await?;
    let listed = sync.status.as_ref().map(|s| s.previews.as_slice()).unwrap_or_default();
    let Some(found) = listed.iter().find(|p| &p.name == preview).cloned() else {
        let known: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
        let help = match known.is_empty() {
            true => format!("its status lists no preview (`weaver sync get {name} -n {ns}`)"),
            false => format!("its previews are: {}", known.join(", ")),
        };
        return Err(Error::new(format!("EnvironmentSync {ns}/{name} has no preview `{preview}`")).with_help(help));
    };
    if found.state == PreviewState::Deleted {
        return Ok(PreviewDeletion::AlreadyDeleted { preview: found });
    }
    if sync.spec.suspend {
        return Err(Error::new(format!(
            "EnvironmentSync {ns}/{name} is suspended: the controller would not delete its preview {preview}"
        ))
        .with_help(format!("`weaver sync resume {name} -n {ns}` resumes it")));
    }
    let requested_at = now();
    let mut annotations = serde_json::Map::new();
    for (key, commit) in sync.metadata.annotations.iter().flatten() {
        let Some(other) = key.strip_prefix(PREVIEW_DELETE_PREFIX) else { continue };
        if !listed.iter().any(|p| p.name == other && &p.commit == commit) {
            annotations.insert(key.clone(), serde_json::Value::Null);
        }
    }
    annotations.insert(format!("{PREVIEW_DELETE_PREFIX}{preview}"), json!(found.commit));
    annotations.insert(RECONCILE_REQUESTED_AT.to_string(), json!(requested_at));
    let patch = json!({"metadata": {"annotations": annotations}});
    let sync = patched(syncs.merge_patch(&ns, name, &patch, "annotating").await?, &ns, name)?;
    let Some(timeout) = options.wait else {
        return Ok(PreviewDeletion::Asked { sync: Box::new(sync), preview: found });
    };
    let what = format!("the deletion of preview {preview}");
    let asked = Asked { ns: &ns, name, what: &what, requested_at: &requested_at };
    let sync = wait_handled(&syncs, &asked, timeout, on).await?;
    let after = sync.status.as_ref().and_then(|s| s.previews.iter().find(|p| &p.name == preview)).cloned();
    match after {
        None => Ok(PreviewDeletion::Deleted { sync: Box::new(sync), preview: None }),
        Some(after) if after.state == PreviewState::Deleted => {
            Ok(PreviewDeletion::Deleted { sync: Box::new(sync), preview: Some(after) })
        }
        Some(after) if after.commit != found.commit => Err(Error::new(format!(
            "preview {preview} of EnvironmentSync {ns}/{name} was not deleted: its branch {} moved from {} to {} \
             meanwhile, and a push makes a preview again",
            after.branch,
            weaver_api::environment_sync::short(&found.commit),
            weaver_api::environment_sync::short(&after.commit)
        ))
        .with_help(format!("delete it at its new commit: weaver previews delete {preview} --sync {name} -n {ns}"))),
        Some(after) => Err(Error::new(format!(
            "preview {preview} of EnvironmentSync {ns}/{name} was not deleted: it is {}{}",
            after.state,
            after.message.map_or_else(String::new, |m| format!(": {m}"))
        ))
        .with_help("the controller tries again at its next reconcile; `weaver previews list` shows where it is")),
    }
}

/// Whether `sync`'s status handled the request made at `requested_at`, at its generation.
pub fn handled(sync: &EnvironmentSync, requested_at: &str) -> bool {
    let status = sync.status.as_ref();
    status.and_then(|s| s.last_handled_reconcile_at.as_deref()) == Some(requested_at)
        && status.and_then(|s| s.observed_generation) == sync.metadata.generation
}

/// `weaver sync suspend` and `resume`.
#[derive(Debug, Clone)]
pub struct SuspendOptions {
    pub target: Target,
    pub name: String,
    /// True: suspend; false: resume (and ask for a reconcile).
    pub suspend: bool,
}

pub struct Suspension {
    pub sync: EnvironmentSync,
    /// Whether `spec.suspend` was already what was asked (then nothing was patched, but a
    /// resume still asks for a reconcile).
    pub already: bool,
    /// Resume: the reconcile-requested-at value set.
    pub requested_at: Option<String>,
}

/// Sets `spec.suspend`; a resume also asks for a reconcile, as `flux resume` does.
pub async fn suspend(options: &SuspendOptions, on: OnProgress<'_>) -> Result<Suspension> {
    let syncs = connect(&options.target.connect, on).await?;
    let ns = namespace(&syncs, &options.target);
    let name = &options.name;
    let sync = read(&syncs, &ns, name).await?;
    let already = sync.spec.suspend == options.suspend;
    if options.suspend && already {
        return Ok(Suspension { sync, already, requested_at: None });
    }
    let (patch, requested_at) = if options.suspend {
        (json!({"spec": {"suspend": true}}), None)
    } else {
        let at = now();
        (json!({"spec": {"suspend": false}, "metadata": {"annotations": {RECONCILE_REQUESTED_AT: at}}}), Some(at))
    };
    let doing = if options.suspend { "suspending" } else { "resuming" };
    let sync = patched(syncs.merge_patch(&ns, name, &patch, doing).await?, &ns, name)?;
    Ok(Suspension { sync, already, requested_at })
}

/// `weaver sync approve`.
#[derive(Debug, Clone)]
pub struct ApproveOptions {
    pub target: Target,
    pub name: String,
    /// `--digest`: the digest the user looked at; refused when the pending plan's differs.
    pub digest: Option<String>,
    /// Who approves, for the approved-by annotation: None for whoever the API server says the
    /// credentials are (the CLI); the controller's UI names its signed-in user.
    pub approver: Option<String>,
}

pub enum Approval {
    /// `spec.approvedPlan` is now the plan's digest.
    Approved { sync: Box<EnvironmentSync>, plan: PendingPlan },
    /// It already was: nothing was patched.
    AlreadyApproved { plan: PendingPlan },
    /// The confirmation said no: nothing was patched.
    Declined,
}

/// Asked before the approval, with the plan: whether to approve it.
pub type Confirm<'a> = &'a (dyn Fn(&EnvironmentSync, &PendingPlan) -> Result<bool> + Sync);

/// The field manager of approvals: its own entry in the managed fields, whose time is the
/// approval's (the controller records it), moved by no reconcile request or suspend.
pub const APPROVAL_MANAGER: &str = "weaver-approve";

/// How many times a write is tried again when only the controller's status changed meanwhile.
const APPROVE_ATTEMPTS: usize = 5;

/// Approves the plan waiting in `status.pendingPlan`: `spec.approvedPlan` set to its digest,
/// once `confirm` says yes, with a merge patch guarded by the resourceVersion read, so a plan
/// that changed in between is never approved.
pub async fn approve(options: &ApproveOptions, confirm: Confirm<'_>, on: OnProgress<'_>) -> Result<Approval> {
    let syncs = connect(&options.target.connect, on).await?;
    let ns = namespace(&syncs, &options.target);
    let name = &options.name;
    let sync = read(&syncs, &ns, name).await?;
    let plan = pending(&sync, &ns, name, options.digest.as_deref())?;
    if sync.spec.approved_plan.as_deref() == Some(plan.digest.as_str()) {
        return Ok(Approval::AlreadyApproved { plan });
    }
    // A closed window holds approvals as it holds applies (its controller would not apply it).
    let windows = weaver_api::windows::Windows::parse(&sync.spec.windows)
        .map_err(|why| Error::new(format!("EnvironmentSync {ns}/{name}: {why}")))?;
    if let Some(hold) = windows.hold(jiff::Timestamp::now()) {
        let until = hold.until.map(|at| format!(" until {at}")).unwrap_or_default();
        return Err(Error::new(format!(
            "EnvironmentSync {ns}/{name} takes no approval now: its {} holds applies and approvals{until}",
            hold.reason
        ))
        .with_help("nothing was approved; approve once the window opens (spec.windows)"));
    }
    if !confirm(&sync, &plan)? {
        return Ok(Approval::Declined);
    }
    // Named in the same write: the chart's admission policy refuses an approval that names no
    // one, or another user than the one writing it.
    let approver = match &options.approver {
        Some(approver) => approver.clone(),
        None => syncs.user_name().await?,
    };
    let mut version = sync.metadata.resource_version.clone();
    for _ in 0..APPROVE_ATTEMPTS {
        let patch = json!({
            "metadata": {"resourceVersion": version, "annotations": {APPROVED_BY: approver}},
            "spec": {"approvedPlan": plan.digest},
        });
        match syncs.merge_patch_as(APPROVAL_MANAGER, &ns, name, &patch, "approving the plan of").await? {
            Patched::Done(sync) => return Ok(Approval::Approved { sync, plan }),
            Patched::Changed => {
                // Changed since it was read: approve still only the plan that was shown.
                let now = read(&syncs, &ns, name).await?;
                pending(&now, &ns, name, Some(&plan.digest))?;
                version = now.metadata.resource_version.clone();
            }
        }
    }
    Err(Error::new(format!("EnvironmentSync {ns}/{name} kept changing while its plan was being approved"))
        .with_help("try again in a moment"))
}

/// The plan waiting for approval, checked against the digest the user gave.
fn pending(sync: &EnvironmentSync, ns: &str, name: &str, digest: Option<&str>) -> Result<PendingPlan> {
    let look = format!("`weaver sync get {name} -n {ns}` shows the pending plan and its digest");
    let Some(plan) = sync.status.as_ref().and_then(|s| s.pending_plan.clone()) else {
        let help = if sync.spec.approval != Some(ApprovalMode::Manual) {
            "its spec.approval is not Manual: its plans are applied without approval".to_string()
        } else {
            format!(
                "a plan waits once the controller has computed one for a new revision \
                 (`weaver sync reconcile {name} -n {ns}` asks for it now)"
            )
        };
        return Err(Error::new(format!("EnvironmentSync {ns}/{name}: nothing waits for approval")).with_help(help));
    };
    if let Some(given) = digest {
        let given = if given.starts_with("sha256:") { given.to_string() } else { format!("sha256:{given}") };
        if given != plan.digest {
            return Err(Error::new(format!(
                "the plan changed since you looked: EnvironmentSync {ns}/{name} now waits for approval of {} \
                 (revision {}), not of {given}",
                plan.digest,
                weaver_api::environment_sync::short(&plan.revision)
            ))
            .with_help(format!("nothing was approved; {look}, then approve its digest")));
        }
    }
    Ok(plan)
}

/// The context's namespace unless `-n` names one.
fn namespace(syncs: &Syncs, target: &Target) -> String {
    target.namespace.clone().unwrap_or_else(|| syncs.default_namespace.clone())
}

async fn connect(options: &ConnectOptions, on: OnProgress<'_>) -> Result<Syncs> {
    let syncs = Syncs::connect(options).await?;
    on(Progress::Info(format!("reading from context `{}` ({})", syncs.info.context, syncs.info.server)));
    Ok(syncs)
}

/// The EnvironmentSync, or an error naming it, its namespace and how to list those there.
async fn read(syncs: &Syncs, ns: &str, name: &str) -> Result<EnvironmentSync> {
    syncs.get(ns, name).await?.ok_or_else(|| not_found(ns, name))
}

fn not_found(ns: &str, name: &str) -> Error {
    Error::new(format!("EnvironmentSync `{name}` not found in namespace `{ns}`"))
        .with_help(format!("`weaver sync get -n {ns}` lists the EnvironmentSyncs there, `weaver sync get -A` all"))
}

fn patched(patched: Patched, ns: &str, name: &str) -> Result<EnvironmentSync> {
    match patched {
        Patched::Done(sync) => Ok(*sync),
        // Only a patch carrying a resourceVersion can conflict.
        Patched::Changed => {
            Err(Error::new(format!("EnvironmentSync {ns}/{name} changed while it was patched")).with_help("try again"))
        }
    }
}

/// Now, RFC 3339 with nanoseconds (UTC): a new value for every request.
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use weaver_api::conditions::READY;
    use weaver_api::environment_sync::state;
    use weaver_api::environment_sync::{EnvironmentSyncSpec, EnvironmentSyncStatus};

    fn sync(generation: i64, status: Option<EnvironmentSyncStatus>) -> EnvironmentSync {
        let spec: EnvironmentSyncSpec = serde_json::from_value(json!({
            "source": {"url": "https://git.example.org/shop.git", "ref": {"branch": "main"}},
        }))
        .unwrap();
        let mut sync = EnvironmentSync::new("shop", spec);
        sync.metadata.generation = Some(generation);
        sync.status = status;
        sync
    }

    fn status(observed: i64, ready: &str, reason: &str, handled: Option<&str>) -> EnvironmentSyncStatus {
        EnvironmentSyncStatus {
            observed_generation: Some(observed),
            conditions: vec![Condition {
                type_: READY.into(),
                status: ready.into(),
                reason: reason.into(),
                message: "m".into(),
                observed_generation: Some(observed),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            }],
            last_handled_reconcile_at: handled.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn up_to_date_is_ready_at_the_generation() {
        assert!(state(&sync(2, Some(status(2, "True", "ReconciliationSucceeded", None)))).up_to_date);
        let behind = state(&sync(3, Some(status(2, "True", "ReconciliationSucceeded", None))));
        assert!(!behind.up_to_date && !behind.observed && behind.ready == "True");
        assert!(!state(&sync(2, Some(status(2, "False", "AwaitingApproval", None)))).up_to_date);
        let none = state(&sync(1, None));
        assert_eq!((none.ready.as_str(), none.up_to_date, none.reason), ("Unknown", false, None));
    }

    #[test]
    fn a_request_is_handled_by_a_status_naming_it_at_the_generation() {
        assert!(handled(&sync(2, Some(status(2, "False", "ApplyFailed", Some("t1")))), "t1"));
        assert!(!handled(&sync(2, Some(status(2, "True", "ReconciliationSucceeded", Some("t0")))), "t1"));
        assert!(!handled(&sync(3, Some(status(2, "True", "ReconciliationSucceeded", Some("t1")))), "t1"));
        assert!(!handled(&sync(1, None), "t1"));
    }
}
