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
//! environment, see `crate::project::health`) decides alone, as Flux's `healthCheckExprs` do:
//! an unobserved generation is progressing, then `inProgress`, `failed`, `current`; none true
//! is progressing, an expression that cannot be evaluated makes the health unknown.

use serde_json::Value;

use crate::manifest::api_group;
use crate::project::HealthCheck;
use crate::project::health::Verdict;

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
/// user's rules by kind.
pub fn readiness(object: &Value, checks: &[HealthCheck]) -> Readiness {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Some(since) = object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str) {
        return Readiness::Pending(format!("being deleted (since {since})"));
    }
    if let Some(check) = checks.iter().find(|c| c.selects(api_version, kind)) {
        return by_rule(object, check);
    }
    if let Some(said) = reconciling_or_stalled(object) {
        return said;
    }
    match (api_group(api_version), kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("", "PersistentVolumeClaim") => claim(object),
        _ => ready_condition(object),
    }
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
fn by_rule(object: &Value, check: &HealthCheck) -> Readiness {
    if let Some(pending) = stale(object) {
        return pending;
    }
    let said = |field: &str| format!("`{field}` of the health check at {} is true", check.at);
    match check.evaluate(object) {
        Verdict::Current => Readiness::Ready,
        Verdict::InProgress => explained(said("inProgress"), object),
        Verdict::Failed => Readiness::Failed(with_conditions(said("failed"), object)),
        Verdict::NoneTrue => {
            explained(format!("`current` of the health check at {} is not true yet", check.at), object)
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

    /// Without user rules.
    fn readiness_of(object: &Value) -> Readiness {
        readiness(object, &[])
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
        crate::project::health::parse_for_tests(yaml).unwrap()
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
