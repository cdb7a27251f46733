//! What "ready" means for each kind, like helm's `pkg/kube/ready.go`; [`super::wait`] reads
//! the objects again until all are ready.
//!
//! The rules, by kind:
//! - Deployment, StatefulSet, DaemonSet: those of `kubectl rollout status`
//!   (`polymorphichelpers/rollout_status.go`), with helm's extra StatefulSet revision check;
//!   an `OnDelete` StatefulSet or DaemonSet is not waited for (its pods change only when someone
//!   deletes them), nor is a paused Deployment (as helm's `--wait` does).
//! - Job: condition Complete=True; Failed=True is final.
//! - CustomResourceDefinition: Established=True; NamesAccepted=False is final.
//! - Pod: Running with `Ready=True`, or Succeeded (a Job's Pod that completed); phase Failed
//!   failed. Otherwise what the scheduler or the kubelet says (see [`pod_trouble`]): a container
//!   waiting for a reason Argo CD calls degraded (`Err…`, `…Error`, `…BackOff`:
//!   `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerConfigError`,
//!   `InvalidImageName`…) is failed; Pending, unschedulable or a container still being created
//!   is progressing, with the scheduler's or the kubelet's reason and message.
//! - PodDisruptionBudget: once observed, progressing while it selects no Pod
//!   (`status.expectedPods` 0) or fewer are healthy than it needs (`currentHealthy` below
//!   `desiredHealthy`): it would block every voluntary eviction, a node drain included.
//! - PersistentVolumeClaim: phase Bound, as helm's `--wait` (`pkg/kube/ready.go`). A claim of a
//!   `WaitForFirstConsumer` StorageClass stays Pending until a pod uses it; helm waits for it
//!   all the same (a pull request to treat it as ready, helm#11335, was closed), so weaver
//!   waits too, and says why the claim may be Pending.
//! - Anything else: kstatus's rules (`sigs.k8s.io/cli-utils/pkg/kstatus`, what Flux and
//!   kpt wait with): a `status.observedGeneration` below `metadata.generation` is progressing;
//!   then a `Ready` condition decides (True: ready, otherwise progressing: a controller that
//!   gave up says so with `Stalled`). Objects without a readiness signal are ready at once.
//!
//! Before the rules by kind, for every kind, as kstatus does: an object being deleted is
//! progressing; `Reconciling=True` is progressing, `Stalled=True` failed, once the status is
//! of the latest generation. And before all of
//! these, a user's CEL rule for the object's kind (`healthChecks` of its release or its
//! environment, see `weaver_project::health`) decides alone, as Flux's `healthCheckExprs` do:
//! an unobserved generation is progressing, then `inProgress`, `failed`, `current`; none true
//! is progressing, an expression that cannot be evaluated makes the health unknown.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use weaver_core::health::{HealthRule, Verdict};
use weaver_core::manifest::Owned;
use weaver_core::manifest::api_group;

/// Whether an object is ready, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet; the text says what is missing, with the object's own conditions.
    Pending(String),
    /// Will not become ready without a change (a Job failed, a rollout exceeded its deadline).
    Failed(String),
    /// A health rule could not say (its CEL expression could not be evaluated); a wait keeps
    /// reading, as the rule may read fields the controller has not written yet.
    Unknown(String),
}

/// How ready `object` (as the server returned it, with its status) is, `checks` being the
/// user's rules by kind: the rule of its kind decides, else [`built_in_readiness`].
pub fn readiness(object: &Value, checks: &[impl HealthRule]) -> Readiness {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    match checks.iter().find(|c| c.selects(api_version, kind)) {
        Some(check) if being_deleted(object).is_none() => by_rule(object, check),
        _ => built_in_readiness(object),
    }
}

/// How ready `object` is by kstatus's conditions and the built-in kinds' rules alone.
pub fn built_in_readiness(object: &Value) -> Readiness {
    if let Some(deleting) = being_deleted(object) {
        return deleting;
    }
    if let Some(said) = reconciling_or_stalled(object) {
        return said;
    }
    let kind = object["kind"].as_str().unwrap_or_default();
    match (api_group(object["apiVersion"].as_str().unwrap_or_default()), kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("", "Pod") => pod(object),
        ("policy", "PodDisruptionBudget") => disruption_budget(object),
        ("", "PersistentVolumeClaim") => claim(object),
        _ => ready_condition(object),
    }
}

fn being_deleted(object: &Value) -> Option<Readiness> {
    let since = object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str)?;
    Some(Readiness::Pending(format!("being deleted (since {since})")))
}

/// A count from the status or spec; Go's `omitempty` leaves zeros out.
fn count(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// `spec.replicas`, which the server defaults to 1.
fn desired_replicas(object: &Value) -> i64 {
    object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn conditions(object: &Value) -> impl Iterator<Item = &Value> {
    object.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten()
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions(object).find(|c| c["type"] == kind)
}

fn is(condition: Option<&Value>, status: &str) -> bool {
    condition.is_some_and(|c| c["status"] == status)
}

/// `Available=False MinimumReplicasUnavailable: Deployment does not have minimum availability`.
fn describe(condition: &Value) -> String {
    let text = |key: &str| condition[key].as_str().unwrap_or_default().trim();
    let mut out = format!("{}={}", text("type"), text("status"));
    if !text("reason").is_empty() {
        out.push_str(&format!(" {}", text("reason")));
    }
    let message = text("message").trim_end_matches('.');
    if !message.is_empty() {
        out.push_str(&format!(": {message}"));
    }
    out
}

/// `what`, followed by the conditions that explain it: those not True, and the True ones that
/// report trouble or progress (a Deployment's `Progressing` names the new ReplicaSet).
fn with_conditions(what: String, object: &Value) -> String {
    let telling: Vec<String> = conditions(object)
        .filter(|c| match c["type"].as_str().unwrap_or_default() {
            _ if c["status"] != "True" => true,
            "Progressing" => c["reason"] != "NewReplicaSetAvailable",
            "ReplicaFailure" | "Suspended" | "Reconciling" | "Stalled" => true,
            _ => false,
        })
        .map(describe)
        .collect();
    if telling.is_empty() { what } else { format!("{what} ({})", telling.join("; ")) }
}

fn explained(what: String, object: &Value) -> Readiness {
    Readiness::Pending(with_conditions(what, object))
}

/// kstatus's conditions for every kind: `Reconciling=True` is progressing, `Stalled=True`
/// failed, whichever comes first. Not while the status is of an older generation (kstatus
/// checks the generation first): a `Stalled` the applied spec may cure must not end a wait.
fn reconciling_or_stalled(object: &Value) -> Option<Readiness> {
    if stale(object).is_some() {
        return None;
    }
    conditions(object).filter(|c| c["status"] == "True").find_map(|c| match c["type"].as_str() {
        Some("Reconciling") => Some(Readiness::Pending(describe(c))),
        Some("Stalled") => Some(Readiness::Failed(describe(c))),
        _ => None,
    })
}

/// A user's CEL rule decides, after the generation check (Flux's order).
fn by_rule(object: &Value, check: &impl HealthRule) -> Readiness {
    if let Some(pending) = stale(object) {
        return pending;
    }
    let said = |field: &str| format!("`{field}` of the health check at {} is true", check.at());
    match check.evaluate(object) {
        Verdict::Current => Readiness::Ready,
        Verdict::InProgress => explained(said("inProgress"), object),
        Verdict::Failed => Readiness::Failed(with_conditions(said("failed"), object)),
        Verdict::NoneTrue => {
            explained(format!("`current` of the health check at {} is not true yet", check.at()), object)
        }
        Verdict::Error(why) => Readiness::Unknown(why),
    }
}

/// Pending while the controller has not seen the latest spec, when its status says nothing
/// about it yet (kubectl checks this first for every workload).
fn unobserved(object: &Value) -> Option<Readiness> {
    let generation = count(object, "/metadata/generation");
    let observed = count(object, "/status/observedGeneration");
    (observed < generation).then(|| {
        let seen = if observed == 0 { "no status yet".to_string() } else { format!("observed {observed}") };
        Readiness::Pending(format!("waiting for the controller to observe generation {generation} ({seen})"))
    })
}

/// Pending while the status says the controller has not seen the latest spec; an object
/// without `status.observedGeneration` says nothing (kstatus's `checkGeneration`).
fn stale(object: &Value) -> Option<Readiness> {
    object.pointer("/status/observedGeneration")?;
    unobserved(object)
}

fn deployment(object: &Value) -> Readiness {
    if object.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        return Readiness::Ready;
    }
    if let Some(pending) = unobserved(object) {
        return pending;
    }
    let want = desired_replicas(object);
    let replicas = count(object, "/status/replicas");
    let updated = count(object, "/status/updatedReplicas");
    let available = count(object, "/status/availableReplicas");
    let waiting = if updated < want {
        format!("{updated} of {want} replicas updated")
    } else if replicas > updated {
        format!("{} old replicas pending termination", replicas - updated)
    } else if available < updated {
        format!("{available} of {updated} updated replicas available")
    } else {
        String::new()
    };
    // Checked before the counts, as kubectl does: the controller gave up on this rollout.
    if let Some(progressing) = condition(object, "Progressing").filter(|c| c["reason"] == "ProgressDeadlineExceeded") {
        let counts = if waiting.is_empty() { String::new() } else { format!("; {waiting}") };
        return Readiness::Failed(format!("exceeded its progress deadline ({}){counts}", describe(progressing)));
    }
    if waiting.is_empty() { Readiness::Ready } else { explained(waiting, object) }
}

/// Only `RollingUpdate` (the default) rolls pods out by itself.
fn rolls_out(object: &Value) -> bool {
    object.pointer("/spec/updateStrategy/type").and_then(Value::as_str).is_none_or(|t| t == "RollingUpdate")
}

fn stateful_set(object: &Value) -> Readiness {
    if !rolls_out(object) {
        return Readiness::Ready;
    }
    if let Some(pending) = unobserved(object) {
        return pending;
    }
    let want = desired_replicas(object);
    let ready = count(object, "/status/readyReplicas");
    let updated = count(object, "/status/updatedReplicas");
    // Ordinals below the partition keep the old revision on purpose.
    let partition = count(object, "/spec/updateStrategy/rollingUpdate/partition");
    let to_update = (want - partition).max(0);
    let waiting = if ready < want {
        format!("{ready} of {want} replicas ready")
    } else if updated < to_update {
        let partitioned = if partition > 0 { format!(" (partition {partition})") } else { String::new() };
        format!("{updated} of {to_update} replicas updated{partitioned}")
    } else if partition == 0 && object.pointer("/status/currentRevision") != object.pointer("/status/updateRevision") {
        // The controller moves currentRevision once every pod runs the update revision.
        let revision = object.pointer("/status/updateRevision").and_then(Value::as_str).unwrap_or_default();
        format!("rolling update to revision {revision} not finished")
    } else {
        return Readiness::Ready;
    };
    explained(waiting, object)
}

fn daemon_set(object: &Value) -> Readiness {
    if !rolls_out(object) {
        return Readiness::Ready;
    }
    if let Some(pending) = unobserved(object) {
        return pending;
    }
    let desired = count(object, "/status/desiredNumberScheduled");
    let updated = count(object, "/status/updatedNumberScheduled");
    let available = count(object, "/status/numberAvailable");
    let waiting = if updated < desired {
        format!("{updated} of {desired} pods updated")
    } else if available < desired {
        format!("{available} of {desired} updated pods available")
    } else {
        return Readiness::Ready;
    };
    explained(waiting, object)
}

fn job(object: &Value) -> Readiness {
    if let Some(failed) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        return Readiness::Failed(describe(failed));
    }
    if is(condition(object, "Complete"), "True") {
        return Readiness::Ready;
    }
    let completions = object.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
    let waiting = format!(
        "not complete: {} active, {} of {completions} succeeded, {} failed",
        count(object, "/status/active"),
        count(object, "/status/succeeded"),
        count(object, "/status/failed"),
    );
    explained(waiting, object)
}

/// How long a Pod may be in trouble the kubelet retries (an image it cannot pull, a Secret
/// it cannot find) before a wait gives up on it: long enough for the kubelet's second try
/// (its back-off starts at 10 s) and for another controller to create a missing Secret.
pub const TROUBLE_GRACE: SignedDuration = SignedDuration::from_secs(30);

/// Waiting reasons no wait cures: the kubelet has already retried (`CrashLoopBackOff`), or
/// only a change of the Pod's spec can (an image name that does not parse, an image that may
/// not be pulled).
const HOPELESS: [&str; 3] = ["CrashLoopBackOff", "InvalidImageName", "ErrImageNeverPull"];

/// Why a Pod is not Ready, as the scheduler or the kubelet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTrouble {
    /// `Pod shop/web-7d9f-x ImagePullBackOff: Back-off pulling image "web:1" (container web)`.
    pub text: String,
    /// A container waits for a reason Argo CD calls degraded (`Err…`, `…Error`, `…BackOff`).
    pub degraded: bool,
    /// From when a wait stops waiting for the Pod (see [`PodTrouble::lasting`]); None: never,
    /// it may still become Ready by itself (being scheduled, created, started).
    pub hopeless_from: Option<Timestamp>,
    /// The trouble is a probe's: the kubelet's words on it are in the Pod's events.
    pub probe: Option<ProbeFailing>,
}

/// A container whose probe fails: its readiness probe not passed, or a crash loop of a
/// container with a liveness or startup probe (the kubelet restarts it when either fails).
/// The kubelet says why in a Warning event `Unhealthy` of the Pod, `Readiness probe failed:
/// HTTP probe failed with statuscode: 503`; the status does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailing {
    pub namespace: String,
    pub pod_uid: String,
    /// The container as the events name it (`involvedObject.fieldPath`): `spec.containers{web}`.
    pub field_path: String,
    /// The probes that may have failed, as the kubelet's messages begin: `Readiness`;
    /// `Liveness`, `Startup`.
    pub probes: &'static [&'static str],
}

impl PodTrouble {
    /// It will not resolve by waiting any longer at `now`.
    pub fn lasting(&self, now: Timestamp) -> bool {
        self.hopeless_from.is_some_and(|from| now >= from)
    }
}

fn timestamp(object: &Value, pointer: &str) -> Option<Timestamp> {
    object.pointer(pointer).and_then(Value::as_str).and_then(|t| t.parse().ok())
}

/// Why `pod` is not Ready; None when it is Running and Ready or has Succeeded, and for phase
/// Failed (a Pod that ended; [`readiness`] says so). In order: a container (init containers
/// first) waiting for a degraded reason; one that is running but has not passed its readiness
/// probe for longer than the probe allows (`initialDelaySeconds` + `failureThreshold` ×
/// `periodSeconds`) and [`TROUBLE_GRACE`]; not scheduled; any other waiting container; the
/// `Ready` condition.
pub fn pod_trouble(pod: &Value) -> Option<PodTrouble> {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    let ready = is(condition(pod, "Ready"), "True");
    if matches!(phase, "Succeeded" | "Failed") || (phase == "Running" && ready) {
        return None;
    }
    let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let text = |what: String| {
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        format!("Pod {namespace}/{name} {what}")
    };
    let probe_failing = |field_path: String, probes| {
        let pod_uid = pod.pointer("/metadata/uid").and_then(Value::as_str)?;
        Some(ProbeFailing { namespace: namespace.to_string(), pod_uid: pod_uid.to_string(), field_path, probes })
    };
    // Each waiting container with its list in the spec, init containers first.
    let waiting: Vec<(&str, &Value, &str)> =
        [("initContainers", "/status/initContainerStatuses"), ("containers", "/status/containerStatuses")]
            .iter()
            .flat_map(|&(list, pointer)| {
                pod.pointer(pointer).and_then(Value::as_array).into_iter().flatten().map(move |c| (list, c))
            })
            .filter_map(|(list, c)| Some((list, c, c.pointer("/state/waiting/reason").and_then(Value::as_str)?)))
            .collect();
    let said = |container: &Value, reason: &str| {
        let message = container.pointer("/state/waiting/message").and_then(Value::as_str).unwrap_or_default();
        let name = container["name"].as_str().unwrap_or_default();
        let message = if message.is_empty() { String::new() } else { format!(": {}", message.trim()) };
        format!("{reason}{message} (container {name})")
    };
    // Argo CD's rule for degraded waiting reasons, and those no wait cures.
    let degraded = |reason: &str| {
        reason.starts_with("Err")
            || reason.ends_with("Error")
            || reason.ends_with("BackOff")
            || HOPELESS.contains(&reason)
    };
    if let Some(&(list, container, reason)) = waiting.iter().find(|(_, _, reason)| degraded(reason)) {
        // The kubelet has tried since the Pod started on its node.
        let started = timestamp(pod, "/status/startTime").or_else(|| timestamp(pod, "/metadata/creationTimestamp"));
        let hopeless_from = match HOPELESS.contains(&reason) {
            true => Some(Timestamp::MIN),
            false => started.map(|t| t.saturating_add(TROUBLE_GRACE).unwrap_or(t)),
        };
        let name = container["name"].as_str().unwrap_or_default();
        let probed = |spec: &Value| ["livenessProbe", "startupProbe"].iter().any(|p| spec.get(p).is_some());
        let probe = match reason == "CrashLoopBackOff" && container_spec(pod, list, name).is_some_and(probed) {
            true => probe_failing(format!("spec.{list}{{{name}}}"), &["Liveness", "Startup"][..]),
            false => None,
        };
        return Some(PodTrouble { text: text(said(container, reason)), degraded: true, hopeless_from, probe });
    }
    if let Some((container, unready, from)) = phase.eq("Running").then(|| unready_past_probe(pod)).flatten() {
        let probe = probe_failing(format!("spec.containers{{{container}}}"), &["Readiness"][..]);
        return Some(PodTrouble { text: text(unready), degraded: false, hopeless_from: Some(from), probe });
    }
    let progressing =
        |what: String| Some(PodTrouble { text: text(what), degraded: false, hopeless_from: None, probe: None });
    if let Some(unscheduled) = condition(pod, "PodScheduled").filter(|c| c["status"] == "False") {
        return progressing(format!("not scheduled ({})", describe(unscheduled)));
    }
    if let Some((_, container, reason)) = waiting.first() {
        return progressing(said(container, reason));
    }
    let state = match condition(pod, "Ready") {
        Some(ready) => format!("{phase}, not Ready ({})", describe(ready)),
        None => format!("{phase}, not Ready"),
    };
    progressing(state)
}

/// The container `name` of the Pod's spec list `list` (`containers`, `initContainers`).
fn container_spec<'a>(pod: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    let specs = pod.pointer(&format!("/spec/{list}")).and_then(Value::as_array)?;
    specs.iter().find(|spec| spec["name"] == name)
}

/// The first container running without being ready for longer than its readiness probe
/// allows (and [`TROUBLE_GRACE`]), started (a startup probe passed): its name, what the
/// kubelet says of it, and from when it is past the allowance.
fn unready_past_probe(pod: &Value) -> Option<(String, String, Timestamp)> {
    let statuses = pod.pointer("/status/containerStatuses").and_then(Value::as_array)?;
    statuses.iter().find_map(|status| {
        if status["ready"] == true || status["started"] == false {
            return None;
        }
        let since = timestamp(status, "/state/running/startedAt")?;
        let name = status["name"].as_str().unwrap_or_default();
        let probe = container_spec(pod, "containers", name)?.get("readinessProbe")?;
        let seconds = |field: &str, default: i64| probe.get(field).and_then(Value::as_i64).unwrap_or(default);
        let allowed = seconds("initialDelaySeconds", 0) + seconds("failureThreshold", 3) * seconds("periodSeconds", 10);
        let from = since.saturating_add(SignedDuration::from_secs(allowed) + TROUBLE_GRACE).ok()?;
        let ready = condition(pod, "Ready").map(|c| format!(" ({})", describe(c))).unwrap_or_default();
        Some((
            name.to_string(),
            format!("not Ready: container {name} running since {since} has not passed its readiness probe{ready}"),
            from,
        ))
    })
}

fn pod(object: &Value) -> Readiness {
    let phase = object.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    if phase == "Failed" {
        let text = |key: &str| object.pointer(&format!("/status/{key}")).and_then(Value::as_str);
        let why = [text("reason"), text("message")].into_iter().flatten().collect::<Vec<_>>().join(": ");
        return Readiness::Failed(if why.is_empty() {
            "phase Failed".to_string()
        } else {
            format!("phase Failed: {why}")
        });
    }
    match pod_trouble(object) {
        None => Readiness::Ready,
        Some(trouble) if trouble.degraded || trouble.lasting(Timestamp::now()) => Readiness::Failed(trouble.text),
        Some(trouble) => Readiness::Pending(trouble.text),
    }
}

/// The kind of `object` when it is a workload whose Pods [`with_pods`] reads: Deployment,
/// StatefulSet, DaemonSet or Job.
pub fn workload_kind(object: &Value) -> Option<&str> {
    match (api_group(object["apiVersion"].as_str().unwrap_or_default()), object["kind"].as_str()?) {
        ("apps", kind @ ("Deployment" | "StatefulSet" | "DaemonSet")) | ("batch", kind @ "Job") => Some(kind),
        _ => None,
    }
}

/// `readiness` of a Deployment, StatefulSet, DaemonSet or Job (`workload`), with why its Pods
/// are not Ready (`owned`: its ReplicaSets and Pods by owner): the worst Pod's trouble, those
/// of a Deployment's newest ReplicaSet only. A Pod whose trouble is lasting at `now` makes a
/// workload that is not ready failed; other kinds, and a ready workload, are as they are.
pub fn with_pods(readiness: Readiness, workload: &Value, owned: &Owned, now: Timestamp) -> Readiness {
    let Readiness::Pending(why) = readiness else { return readiness };
    with_trouble(why, worst_pod_trouble(workload, owned, now), now)
}

/// A workload's readiness, pending for `why`, with its worst Pod's `trouble`: failed once that is
/// lasting at `now`.
pub fn with_trouble(why: String, trouble: Option<PodTrouble>, now: Timestamp) -> Readiness {
    match trouble {
        Some(trouble) if trouble.lasting(now) => Readiness::Failed(format!("{why}; {}", trouble.text)),
        Some(trouble) => Readiness::Pending(format!("{why}; {}", trouble.text)),
        None => Readiness::Pending(why),
    }
}

/// The trouble of the worst of `workload`'s Pods (see [`with_pods`]): lasting at `now`, then
/// degraded, then by the Pod's name.
pub fn worst_pod_trouble(workload: &Value, owned: &Owned, now: Timestamp) -> Option<PodTrouble> {
    // What `owner` owns of `kind`.
    fn owned_of<'a>(owned: &Owned<'a>, owner: &Value, kind: &str) -> Vec<&'a Value> {
        let uid = owner.pointer("/metadata/uid").and_then(Value::as_str);
        let children = uid.and_then(|uid| owned.get(uid)).map(Vec::as_slice).unwrap_or_default();
        children.iter().copied().filter(|o| o["kind"] == kind).collect()
    }
    let owner = match workload_kind(workload) {
        Some("Deployment") => {
            let revision = |rs: &&Value| {
                let annotation = rs.pointer("/metadata/annotations/deployment.kubernetes.io~1revision");
                annotation.and_then(Value::as_str).and_then(|r| r.parse::<i64>().ok()).unwrap_or(0)
            };
            owned_of(owned, workload, "ReplicaSet").into_iter().max_by_key(revision)
        }
        Some(_) => Some(workload),
        None => None,
    };
    let troubles = owned_of(owned, owner?, "Pod").into_iter().filter_map(pod_trouble);
    // The worst first: lasting, then degraded; then by the Pod's name, for a steady report.
    troubles.min_by(|a, b| (!a.lasting(now), !a.degraded, &a.text).cmp(&(!b.lasting(now), !b.degraded, &b.text)))
}

fn disruption_budget(object: &Value) -> Readiness {
    if let Some(pending) = unobserved(object) {
        return pending;
    }
    let expected = count(object, "/status/expectedPods");
    let healthy = count(object, "/status/currentHealthy");
    let desired = count(object, "/status/desiredHealthy");
    let waiting = if expected == 0 {
        "selects no Pod (status.expectedPods 0)".to_string()
    } else if healthy < desired {
        format!("{healthy} of {desired} desired healthy Pods ({expected} expected)")
    } else {
        return Readiness::Ready;
    };
    explained(waiting, object)
}

fn crd(object: &Value) -> Readiness {
    if let Some(names) = condition(object, "NamesAccepted").filter(|c| c["status"] == "False") {
        return Readiness::Failed(describe(names));
    }
    if is(condition(object, "Established"), "True") {
        return Readiness::Ready;
    }
    explained("not Established yet".to_string(), object)
}

fn claim(object: &Value) -> Readiness {
    match object.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending") {
        "Bound" => Readiness::Ready,
        "Lost" => Readiness::Failed(format!(
            "phase Lost: its PersistentVolume {} is gone",
            object.pointer("/spec/volumeName").and_then(Value::as_str).unwrap_or("(unnamed)")
        )),
        phase => Readiness::Pending(format!(
            "phase {phase}, not Bound yet (a claim of a WaitForFirstConsumer StorageClass binds only once a pod uses it)"
        )),
    }
}

fn ready_condition(object: &Value) -> Readiness {
    let Some(ready) = condition(object, "Ready") else {
        return stale(object).unwrap_or(Readiness::Ready);
    };
    // A Ready=True written for an older generation says nothing about the spec just applied.
    let generation = count(object, "/metadata/generation");
    let stale =
        |pointer: &str, within: &Value| within.pointer(pointer).and_then(Value::as_i64).is_some_and(|g| g < generation);
    if stale("/status/observedGeneration", object) || stale("/observedGeneration", ready) {
        return Readiness::Pending(format!(
            "waiting for the controller to observe generation {generation} ({})",
            describe(ready)
        ));
    }
    if ready["status"] == "True" { Readiness::Ready } else { Readiness::Pending(describe(ready)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weaver_project::HealthCheck;

    /// Without user rules.
    fn readiness_of(object: &Value) -> Readiness {
        built_in_readiness(object)
    }

    fn pending(readiness: Readiness) -> String {
        match readiness {
            Readiness::Pending(why) => why,
            other => panic!("expected Pending, got {other:?}"),
        }
    }

    fn failed(readiness: Readiness) -> String {
        match readiness {
            Readiness::Failed(why) => why,
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    fn deployment(replicas: i64, generation: i64, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": generation},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate"}}, "status": status})
    }

    #[test]
    fn deployment_rolled_out() {
        let status = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
            "availableReplicas": 3, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet \"web-7d9f\" has successfully progressed."}]});
        assert_eq!(readiness_of(&deployment(3, 2, status)), Readiness::Ready);
    }

    #[test]
    fn deployment_not_yet_observed() {
        assert_eq!(
            pending(readiness_of(&deployment(3, 1, json!({})))),
            "waiting for the controller to observe generation 1 (no status yet)"
        );
        let status = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(
            pending(readiness_of(&deployment(3, 2, status))),
            "waiting for the controller to observe generation 2 (observed 1)"
        );
    }

    #[test]
    fn deployment_rolling_says_how_far_and_why() {
        let progressing = json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
            "message": "ReplicaSet \"web-abc\" is progressing."});
        let unavailable = json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
            "message": "Deployment does not have minimum availability."});
        let status = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 3,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}, progressing]});
        assert_eq!(
            pending(readiness_of(&deployment(3, 2, status))),
            "2 of 3 replicas updated (Progressing=True ReplicaSetUpdated: ReplicaSet \"web-abc\" is progressing)"
        );
        let status = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(pending(readiness_of(&deployment(3, 2, status))), "1 old replicas pending termination");
        let status = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1,
            "conditions": [unavailable, progressing]});
        assert_eq!(
            pending(readiness_of(&deployment(3, 2, status))),
            "1 of 3 updated replicas available (Available=False MinimumReplicasUnavailable: Deployment does not have \
             minimum availability; Progressing=True ReplicaSetUpdated: ReplicaSet \"web-abc\" is progressing)"
        );
    }

    #[test]
    fn deployment_replica_failure_is_shown() {
        let status = json!({"observedGeneration": 1, "conditions": [{"type": "ReplicaFailure", "status": "True",
            "reason": "FailedCreate", "message": "pods \"web-abc-x\" is forbidden: exceeded quota: compute"}]});
        assert_eq!(
            pending(readiness_of(&deployment(2, 1, status))),
            "0 of 2 replicas updated (ReplicaFailure=True FailedCreate: pods \"web-abc-x\" is forbidden: exceeded quota: compute)"
        );
    }

    #[test]
    fn deployment_past_its_progress_deadline_fails() {
        let status = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"web-abc\" has timed out progressing."}]});
        assert_eq!(
            failed(readiness_of(&deployment(3, 2, status))),
            "exceeded its progress deadline (Progressing=False ProgressDeadlineExceeded: ReplicaSet \"web-abc\" \
             has timed out progressing); 1 of 3 updated replicas available"
        );
    }

    #[test]
    fn paused_deployment_is_not_waited_for() {
        let mut paused = deployment(3, 2, json!({"observedGeneration": 1}));
        paused["spec"]["paused"] = json!(true);
        assert_eq!(readiness_of(&paused), Readiness::Ready);
    }

    fn stateful_set(strategy: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 3},
            "spec": {"replicas": 3, "updateStrategy": strategy}, "status": status})
    }

    /// The status of `stateful_set` part way from revision db-1 to db-2.
    fn rolling_status(ready: i64, updated: i64) -> Value {
        json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": ready, "updatedReplicas": updated,
            "currentRevision": "db-1", "updateRevision": "db-2"})
    }

    #[test]
    fn stateful_set_rolling_update() {
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let done = json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "db-2", "updateRevision": "db-2"});
        assert_eq!(readiness_of(&stateful_set(rolling.clone(), done)), Readiness::Ready);
        let not_ready = rolling_status(2, 1);
        assert_eq!(pending(readiness_of(&stateful_set(rolling.clone(), not_ready))), "2 of 3 replicas ready");
        let updating = rolling_status(3, 2);
        assert_eq!(pending(readiness_of(&stateful_set(rolling.clone(), updating))), "2 of 3 replicas updated");
        let finishing = rolling_status(3, 3);
        assert_eq!(
            pending(readiness_of(&stateful_set(rolling, finishing))),
            "rolling update to revision db-2 not finished"
        );
    }

    #[test]
    fn stateful_set_partition_keeps_old_pods() {
        let partitioned = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        let one_updated = rolling_status(3, 1);
        assert_eq!(readiness_of(&stateful_set(partitioned.clone(), one_updated)), Readiness::Ready);
        let none_updated = rolling_status(3, 0);
        assert_eq!(
            pending(readiness_of(&stateful_set(partitioned, none_updated))),
            "0 of 1 replicas updated (partition 2)"
        );
    }

    #[test]
    fn on_delete_workloads_are_not_waited_for() {
        let on_delete = json!({"type": "OnDelete"});
        assert_eq!(readiness_of(&stateful_set(on_delete.clone(), json!({}))), Readiness::Ready);
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 2},
            "spec": {"updateStrategy": on_delete}, "status": {"observedGeneration": 1}});
        assert_eq!(readiness_of(&ds), Readiness::Ready);
    }

    fn daemon_set(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 2},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}}, "status": status})
    }

    #[test]
    fn daemon_set_rollout() {
        let done = json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4,
            "numberAvailable": 4, "numberReady": 4});
        assert_eq!(readiness_of(&daemon_set(done)), Readiness::Ready);
        let updating = json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 2,
            "numberAvailable": 3});
        assert_eq!(pending(readiness_of(&daemon_set(updating))), "2 of 4 pods updated");
        let starting = json!({"observedGeneration": 2, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4,
            "numberAvailable": 3});
        assert_eq!(pending(readiness_of(&daemon_set(starting))), "3 of 4 updated pods available");
        // No nodes to run on: nothing to wait for.
        let nowhere = json!({"observedGeneration": 2, "desiredNumberScheduled": 0, "currentNumberScheduled": 0});
        assert_eq!(readiness_of(&daemon_set(nowhere)), Readiness::Ready);
    }

    fn job(status: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
            "spec": {"completions": 1, "backoffLimit": 2}, "status": status})
    }

    #[test]
    fn job_complete_running_and_failed() {
        let complete = json!({"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]});
        assert_eq!(readiness_of(&job(complete)), Readiness::Ready);
        let running = json!({"active": 1, "failed": 1, "startTime": "2025-01-01T00:00:00Z"});
        assert_eq!(pending(readiness_of(&job(running))), "not complete: 1 active, 0 of 1 succeeded, 1 failed");
        let suspended = json!({"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
            "message": "Job suspended"}]});
        assert_eq!(
            pending(readiness_of(&job(suspended))),
            "not complete: 0 active, 0 of 1 succeeded, 0 failed (Suspended=True JobSuspended: Job suspended)"
        );
        let failed_job = json!({"failed": 3, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]});
        assert_eq!(
            failed(readiness_of(&job(failed_job))),
            "Failed=True BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
    }

    fn crd(conditions: Value) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com", "generation": 1}, "status": {"conditions": conditions}})
    }

    #[test]
    fn crd_established_or_not() {
        let established = json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]);
        assert_eq!(readiness_of(&crd(established)), Readiness::Ready);
        let installing = json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "False", "reason": "Installing", "message": "the initial names have not been accepted"}]);
        assert_eq!(
            pending(readiness_of(&crd(installing))),
            "not Established yet (Established=False Installing: the initial names have not been accepted)"
        );
        assert_eq!(pending(readiness_of(&crd(json!([])))), "not Established yet");
        let conflict = json!([
            {"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict",
             "message": "\"WidgetList\" is already in use"},
            {"type": "Established", "status": "False", "reason": "NotAccepted"}]);
        assert_eq!(
            failed(readiness_of(&crd(conflict))),
            "NamesAccepted=False ListKindConflict: \"WidgetList\" is already in use"
        );
    }

    #[test]
    fn claim_bound_pending_or_lost() {
        let claim = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                "spec": {"storageClassName": "local", "volumeName": "pv-1"}, "status": {"phase": phase}})
        };
        assert_eq!(readiness_of(&claim("Bound")), Readiness::Ready);
        assert!(
            pending(readiness_of(&claim("Pending")))
                .starts_with("phase Pending, not Bound yet (a claim of a WaitForFirstConsumer")
        );
        assert_eq!(failed(readiness_of(&claim("Lost"))), "phase Lost: its PersistentVolume pv-1 is gone");
    }

    fn certificate(generation: i64, status: Value) -> Value {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "web-tls", "namespace": "shop", "generation": generation}, "status": status})
    }

    #[test]
    fn ready_condition_of_any_kind() {
        let ready = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
            "message": "Certificate is up to date and has not expired", "observedGeneration": 2}]});
        assert_eq!(readiness_of(&certificate(2, ready.clone())), Readiness::Ready);
        assert_eq!(
            pending(readiness_of(&certificate(3, ready))),
            "waiting for the controller to observe generation 3 (Ready=True Ready: Certificate is up to date and has not expired)"
        );
        let issuing = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False",
            "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist"}]});
        assert_eq!(
            pending(readiness_of(&certificate(2, issuing))),
            "Ready=False DoesNotExist: Issuing certificate as Secret does not exist"
        );
    }

    #[test]
    fn kstatus_conditions_and_generation_for_every_kind() {
        let reconciling = json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready"},
            {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "upgrading to 1.5"}]});
        assert_eq!(
            pending(readiness_of(&certificate(2, reconciling))),
            "Reconciling=True Progressing: upgrading to 1.5"
        );
        let stalled = json!({"observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "False", "reason": "Failed", "message": "quota exceeded"},
            {"type": "Stalled", "status": "True", "reason": "QuotaExceeded", "message": "quota exceeded"}]});
        assert_eq!(
            failed(readiness_of(&certificate(2, stalled.clone()))),
            "Stalled=True QuotaExceeded: quota exceeded"
        );
        // A Stalled of the previous generation: the new spec may cure it, so it is progressing.
        assert_eq!(
            pending(readiness_of(&certificate(3, stalled))),
            "waiting for the controller to observe generation 3 (Ready=False Failed: quota exceeded)"
        );
        // Stalled=False and Reconciling=False say nothing.
        let settled = json!({"observedGeneration": 2, "conditions": [
            {"type": "Reconciling", "status": "False"}, {"type": "Stalled", "status": "False"}]});
        assert_eq!(readiness_of(&certificate(2, settled.clone())), Readiness::Ready);
        // Without a Ready condition, an unobserved generation is still progressing.
        assert_eq!(
            pending(readiness_of(&certificate(3, settled))),
            "waiting for the controller to observe generation 3 (observed 2)"
        );
        // An object being deleted is progressing, whatever its status says.
        let mut deleting = certificate(2, json!({"observedGeneration": 2}));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(pending(readiness_of(&deleting)), "being deleted (since 2026-01-01T00:00:00Z)");
    }

    fn rule(yaml: &str) -> HealthCheck {
        let fields = serde_saphyr::from_str(yaml).expect("a rule's fields");
        HealthCheck::parse(std::path::Path::new("environments/dev.yaml"), fields).unwrap()
    }

    /// The rule the health page gives for an EnvironmentSync whose plan waits for approval.
    #[test]
    fn an_environment_sync_awaiting_approval_is_pending_unless_a_rule_accepts_it() {
        let sync = json!({"apiVersion": "weaver.example.com/v1beta1", "kind": "EnvironmentSync",
            "metadata": {"name": "shop", "namespace": "team", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False",
                "reason": "AwaitingApproval", "message": "the plan of abc1234 waits for approval"}]}});
        assert!(pending(built_in_readiness(&sync)).contains("AwaitingApproval"));
        let check = rule(
            "apiVersion: weaver.example.com/v1beta1\nkind: EnvironmentSync\ncurrent: \"status.?conditions.orValue([]).exists(c, c.type == 'Ready' && (c.status == 'True' || c.reason == 'AwaitingApproval'))\"\n",
        );
        assert_eq!(readiness(&sync, std::slice::from_ref(&check)), Readiness::Ready);
    }

    #[test]
    fn a_cel_rule_decides_alone_after_the_generation() {
        let check = rule(
            "apiVersion: cert-manager.io/v1\nkind: Certificate\ncurrent: status.?phase.orValue('') == 'Issued'\nfailed: status.?phase.orValue('') == 'Denied'\n",
        );
        let checks = std::slice::from_ref(&check);
        let phase = |generation, phase: &str| {
            certificate(
                generation,
                json!({"observedGeneration": 2, "phase": phase, "conditions": [
                {"type": "Ready", "status": "False", "reason": "Pending", "message": "waiting for approval"},
                {"type": "Stalled", "status": "True", "reason": "Ignored"}]}),
            )
        };
        // The rule, not Ready or Stalled, decides.
        assert_eq!(readiness(&phase(2, "Issued"), checks), Readiness::Ready);
        let denied = readiness(&phase(2, "Denied"), checks);
        assert_eq!(
            failed(denied),
            "`failed` of the health check at environments/dev.yaml:1:1 is true (Ready=False Pending: waiting for \
             approval; Stalled=True Ignored)"
        );
        assert!(
            pending(readiness(&phase(2, "Requested"), checks))
                .starts_with("`current` of the health check at environments/dev.yaml:1:1 is not true yet")
        );
        assert_eq!(
            pending(readiness(&phase(3, "Issued"), checks)),
            "waiting for the controller to observe generation 3 (observed 2)"
        );
        // Other kinds keep the built-in rules.
        assert_eq!(readiness(&deployment(1, 1, json!({})), checks), readiness_of(&deployment(1, 1, json!({}))));
        let no_status = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}});
        let strict = rule("apiVersion: cert-manager.io/v1\nkind: Certificate\ncurrent: status.phase == 'Issued'\n");
        let Readiness::Unknown(why) = readiness(&no_status, std::slice::from_ref(&strict)) else { panic!("unknown") };
        assert!(why.contains("could not be evaluated"), "{why}");
    }

    fn pod(name: &str, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
                "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "web", "image": "web:1",
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 5}}]},
            "status": status})
    }

    /// A status with the container `web` waiting for `reason`, the Pod started at `start`.
    fn waiting(reason: &str, message: &str, start: &str) -> Value {
        json!({"phase": "Pending", "startTime": start, "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [web]"}],
            "containerStatuses": [{"name": "web", "ready": false, "started": false, "restartCount": 0,
                "image": "web:1", "state": {"waiting": {"reason": reason, "message": message}}}]})
    }

    #[test]
    fn a_pod_is_ready_only_running_and_ready_or_succeeded() {
        let running = |ready: &str| {
            json!({"phase": "Running", "startTime": "2020-01-01T00:00:00Z", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": ready, "reason": "ContainersNotReady",
                 "message": "containers with unready status: [web]"}],
                "containerStatuses": [{"name": "web", "ready": ready == "True", "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2020-01-01T00:00:01Z"}}}]})
        };
        assert_eq!(readiness_of(&pod("web-1", running("True"))), Readiness::Ready);
        assert_eq!(readiness_of(&pod("job-1", json!({"phase": "Succeeded"}))), Readiness::Ready);
        // Not Ready long past what its probe allows (5 s + 3 × 10 s, and the grace): failed.
        assert_eq!(
            failed(readiness_of(&pod("web-1", running("False")))),
            "Pod shop/web-1 not Ready: container web running since 2020-01-01T00:00:01Z has not passed its readiness \
             probe (Ready=False ContainersNotReady: containers with unready status: [web])"
        );
        let mut starting = running("False");
        starting["containerStatuses"][0]["state"]["running"]["startedAt"] = json!(Timestamp::now().to_string());
        // Within it: progressing, and a wait goes on.
        let why = pending(readiness_of(&pod("web-1", starting)));
        assert!(why.starts_with("Pod shop/web-1 not Ready: container web running since "), "{why}");
        let evicted =
            json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."});
        assert_eq!(
            failed(readiness_of(&pod("web-1", evicted))),
            "phase Failed: Evicted: The node was low on resource: memory."
        );
    }

    #[test]
    fn a_pending_pod_is_progressing_with_the_schedulers_reason() {
        let unschedulable = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]});
        assert_eq!(
            pending(readiness_of(&pod("redis-0", unschedulable))),
            "Pod shop/redis-0 not scheduled (PodScheduled=False Unschedulable: 0/1 nodes are available: 1 \
             Insufficient memory)"
        );
        assert_eq!(pending(readiness_of(&pod("redis-0", json!({})))), "Pod shop/redis-0 Pending, not Ready");
        let creating = waiting("ContainerCreating", "", "2020-01-01T00:00:00Z");
        assert_eq!(
            pending(readiness_of(&pod("redis-0", creating))),
            "Pod shop/redis-0 ContainerCreating (container web)"
        );
    }

    #[test]
    fn a_pod_waiting_for_a_degraded_reason_failed() {
        for reason in
            ["ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName"]
        {
            let now = Timestamp::now().to_string();
            let pod = pod("web-1", waiting(reason, "the kubelet's message", &now));
            assert_eq!(
                failed(readiness_of(&pod)),
                format!("Pod shop/web-1 {reason}: the kubelet's message (container web)")
            );
            // Lasting (a wait gives up) at once when only a change cures it, else after the grace.
            let trouble = pod_trouble(&pod).unwrap();
            assert!(trouble.degraded);
            let hopeless = HOPELESS.contains(&reason);
            assert_eq!(trouble.lasting(Timestamp::now()), hopeless, "{reason}");
            assert!(trouble.lasting(Timestamp::now() + TROUBLE_GRACE + SignedDuration::from_secs(1)), "{reason}");
        }
        // An init container's trouble counts as much.
        let mut init = waiting("PodInitializing", "", "2020-01-01T00:00:00Z");
        init["initContainerStatuses"] = json!([{"name": "migrate", "ready": false,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"migrate:1\""}}}]);
        let trouble = pod_trouble(&pod("web-1", init)).unwrap();
        assert_eq!(
            trouble.text,
            "Pod shop/web-1 ImagePullBackOff: Back-off pulling image \"migrate:1\" (container migrate)"
        );
        assert!(trouble.lasting(Timestamp::now()), "started in 2020: past the grace");
    }

    /// A Deployment `web` rolled to revision 2 (ReplicaSet web-new), revision 1 (web-old) left.
    fn rolled_deployment(pods: &[(&str, &str, Value)]) -> (Value, Vec<Value>) {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "generation": 2},
            "spec": {"replicas": 1}, "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                "availableReplicas": 0}});
        let replica_set = |name: &str, revision: &str| {
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "shop",
                "uid": format!("uid-{name}"), "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"uid": "uid-web", "kind": "Deployment", "name": "web"}]}})
        };
        let mut owned = vec![replica_set("web-new", "2"), replica_set("web-old", "1")];
        for (name, owner, status) in pods {
            let mut pod = pod(name, status.clone());
            pod["metadata"]["ownerReferences"] = json!([{"uid": format!("uid-{owner}"), "kind": "ReplicaSet"}]);
            owned.push(pod);
        }
        (deployment, owned)
    }

    #[test]
    fn a_workload_not_ready_says_why_its_pods_are_not() {
        let pulling = waiting("ImagePullBackOff", "Back-off pulling image \"web:2\"", "2020-01-01T00:00:00Z");
        let old_crashing =
            waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container", "2020-01-01T00:00:00Z");
        let (deployment, objects) =
            rolled_deployment(&[("web-new-a", "web-new", pulling), ("web-old-a", "web-old", old_crashing)]);
        let owned = weaver_core::manifest::owned_by(&objects);
        let judged = with_pods(readiness_of(&deployment), &deployment, &owned, Timestamp::now());
        // Only the newest ReplicaSet's Pods, and past the grace: the wait ends.
        assert_eq!(
            failed(judged),
            "0 of 1 updated replicas available; Pod shop/web-new-a ImagePullBackOff: Back-off pulling image \"web:2\" \
             (container web)"
        );
        // Within the grace: said, still waited for.
        let recent = waiting("ErrImagePull", "rpc error: not found", &Timestamp::now().to_string());
        let (deployment, objects) = rolled_deployment(&[("web-new-a", "web-new", recent)]);
        let owned = weaver_core::manifest::owned_by(&objects);
        assert_eq!(
            pending(with_pods(readiness_of(&deployment), &deployment, &owned, Timestamp::now())),
            "0 of 1 updated replicas available; Pod shop/web-new-a ErrImagePull: rpc error: not found (container web)"
        );
        // A ready workload is ready whatever an old Pod says.
        let mut done = deployment.clone();
        done["status"] = json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert_eq!(with_pods(readiness_of(&done), &done, &owned, Timestamp::now()), Readiness::Ready);
    }

    #[test]
    fn a_disruption_budget_without_pods_is_not_ready() {
        let budget = |status: Value| {
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "shop", "generation": 1},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}, "status": status})
        };
        let none = json!({"observedGeneration": 1, "expectedPods": 0, "currentHealthy": 0, "desiredHealthy": 1,
            "disruptionsAllowed": 0, "conditions": [{"type": "DisruptionAllowed", "status": "False",
            "reason": "InsufficientPods", "message": ""}]});
        assert_eq!(
            pending(readiness_of(&budget(none))),
            "selects no Pod (status.expectedPods 0) (DisruptionAllowed=False InsufficientPods)"
        );
        let short = json!({"observedGeneration": 1, "expectedPods": 2, "currentHealthy": 0, "desiredHealthy": 1});
        assert_eq!(pending(readiness_of(&budget(short))), "0 of 1 desired healthy Pods (2 expected)");
        let fine = json!({"observedGeneration": 1, "expectedPods": 2, "currentHealthy": 2, "desiredHealthy": 1,
            "disruptionsAllowed": 1, "conditions": [{"type": "DisruptionAllowed", "status": "True",
            "reason": "SufficientPods"}]});
        assert_eq!(readiness_of(&budget(fine)), Readiness::Ready);
        assert_eq!(
            pending(readiness_of(&budget(json!({})))),
            "waiting for the controller to observe generation 1 (no status yet)"
        );
    }

    #[test]
    fn no_readiness_signal_is_ready() {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        assert_eq!(readiness_of(&config_map), Readiness::Ready);
        let other_conditions = certificate(1, json!({"conditions": [{"type": "Synced", "status": "False"}]}));
        assert_eq!(readiness_of(&other_conditions), Readiness::Ready);
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "status": {"loadBalancer": {}}});
        assert_eq!(readiness_of(&service), Readiness::Ready);
    }
}
