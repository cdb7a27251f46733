//! Waiting until applied objects are ready ([`super::ready`] says what that means for each
//! kind): [`Cluster::wait_ready`] reads the objects again until all are ready, one fails for
//! good, or the deadline passes. Nothing here prints; progress goes to a callback.

use std::fmt;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::error::humanize;
use super::ready::{PodTrouble, Readiness, pod_trouble, readiness, with_trouble, workload_kind, worst_pod_trouble};
use super::{Cluster, ManagedFields, ServedKind};
use weaver_core::error::{Error, Result};
use weaver_core::health::HealthRule;
use weaver_core::manifest::ListTarget;
use weaver_core::manifest::owned_by;

/// How long to wait between reads of the objects not ready yet.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// An object waited on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn of(object: &Value) -> ObjectRef {
        let text = |pointer| object.pointer(pointer).and_then(Value::as_str);
        ObjectRef {
            api_version: text("/apiVersion").unwrap_or_default().to_string(),
            kind: text("/kind").unwrap_or_default().to_string(),
            namespace: text("/metadata/namespace").map(String::from),
            name: text("/metadata/name").unwrap_or_default().to_string(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `apps/v1 Deployment shop/web`, `v1 Namespace shop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.api_version, self.kind)?;
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An object that is not ready, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub object: ObjectRef,
    pub reason: String,
    /// It will not become ready without a change; waiting stopped because of it.
    pub failed: bool,
}

impl fmt::Display for NotReady {
    /// `apps/v1 Deployment shop/web: 1 of 3 updated replicas available (…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = if self.failed { "failed: " } else { "" };
        write!(f, "{}: {failed}{}", self.object, self.reason)
    }
}

/// Where a wait stands, reported after each round of reads.
#[derive(Debug)]
pub struct WaitProgress<'a> {
    /// How many objects are waited on in all.
    pub total: usize,
    /// The objects found ready in this round; in the first, all those ready at once.
    pub became_ready: &'a [ObjectRef],
    /// The objects not ready, in the order given.
    pub not_ready: &'a [NotReady],
    /// Since the wait began.
    pub elapsed: Duration,
}

/// How a wait ended.
#[derive(Debug)]
pub struct WaitOutcome {
    /// In the order they became ready.
    pub ready: Vec<ObjectRef>,
    /// Empty when every object is ready; otherwise every object that is not, with why.
    pub not_ready: Vec<NotReady>,
    pub elapsed: Duration,
}

impl WaitOutcome {
    pub fn all_ready(&self) -> bool {
        self.not_ready.is_empty()
    }

    /// Why the wait did not succeed, listing every object not ready; `None` when all are.
    pub fn error(&self) -> Option<Error> {
        if self.all_ready() {
            return None;
        }
        let total = self.ready.len() + self.not_ready.len();
        let failed = self.not_ready.iter().filter(|n| n.failed).count();
        let (headline, help) = if failed > 0 {
            (
                format!("{failed} of {total} objects will not become ready"),
                "`kubectl describe` shows the object's events",
            )
        } else {
            (
                format!(
                    "timed out after {} waiting for {} of {total} objects to become ready",
                    humanize(self.elapsed),
                    self.not_ready.len()
                ),
                "`kubectl describe` shows the object's events; --timeout allows more time",
            )
        };
        let lines: Vec<String> = self.not_ready.iter().map(|n| format!("  {n}")).collect();
        Some(Error::new(format!("{headline}:\n{}", lines.join("\n"))).with_help(help))
    }
}

impl Cluster {
    /// Reads `objects` until each is ready (`checks`: the environment's health rules), until
    /// one fails for good, or for `timeout` (timed from here, so that a wait that ran out
    /// says it waited as long as it was given), with at most `concurrency` reads at once and a
    /// round of reads about every second.
    /// `on_progress` hears after every round. An object not found is pending (a custom
    /// resource may be created late by its operator); other request errors end the wait.
    pub async fn wait_ready(
        &self,
        objects: &[(ObjectRef, ServedKind)],
        checks: &[impl HealthRule],
        timeout: Duration,
        concurrency: usize,
        mut on_progress: impl FnMut(&WaitProgress),
    ) -> Result<WaitOutcome> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut ready = Vec::new();
        // Indices into `objects` of those not ready, and why, in step.
        let mut pending: Vec<usize> = (0..objects.len()).collect();
        let mut not_ready: Vec<NotReady> = objects
            .iter()
            .map(|(object, _)| NotReady {
                object: object.clone(),
                reason: "not read before the deadline".to_string(),
                failed: false,
            })
            .collect();
        loop {
            let reads = futures::stream::iter(
                pending
                    .iter()
                    .map(|&i| {
                        let (object, served) = &objects[i];
                        async move { Ok::<_, Error>((i, self.readiness_of(object, served, checks).await?)) }
                    })
                    .collect::<Vec<_>>(),
            )
            .buffered(concurrency.max(1))
            .try_collect::<Vec<_>>();
            // A round cut short by the deadline leaves the reasons of the round before.
            let Ok(states) = tokio::time::timeout_at(deadline, reads).await else { break };
            let states = states?;
            let mut became_ready = Vec::new();
            pending.clear();
            not_ready.clear();
            for (i, state) in states {
                let object = objects[i].0.clone();
                let (reason, failed) = match state {
                    Readiness::Ready => {
                        became_ready.push(object);
                        continue;
                    }
                    Readiness::Pending(reason) | Readiness::Unknown(reason) => (reason, false),
                    Readiness::Failed(reason) => (reason, true),
                };
                pending.push(i);
                not_ready.push(NotReady { object, reason, failed });
            }
            on_progress(&WaitProgress {
                total: objects.len(),
                became_ready: &became_ready,
                not_ready: &not_ready,
                elapsed: start.elapsed(),
            });
            ready.extend(became_ready);
            // The apply has failed once one object has; waiting for the rest only delays saying so.
            if pending.is_empty() || not_ready.iter().any(|n| n.failed) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep_until((Instant::now() + POLL_INTERVAL).min(deadline)).await;
        }
        Ok(WaitOutcome { ready, not_ready, elapsed: start.elapsed() })
    }

    /// How ready `object` is; a workload not ready with why its Pods are not (and failed once
    /// one's trouble is lasting), a Pod in trouble the kubelet retries failed only once it is.
    async fn readiness_of(
        &self,
        object: &ObjectRef,
        served: &ServedKind,
        checks: &[impl HealthRule],
    ) -> Result<Readiness> {
        // Through `get`, so a transient failure during a long wait is retried, not fatal.
        let Some(live) = self.get(served, object.namespace.as_deref(), &object.name).await? else {
            return Ok(Readiness::Pending("not found yet".to_string()));
        };
        let now = jiff::Timestamp::now();
        Ok(match readiness(&live, checks) {
            Readiness::Pending(why) if workload_kind(&live).is_some() => match self.pods_of(&live).await {
                Ok(objects) => {
                    let trouble = worst_pod_trouble(&live, &owned_by(&objects), now);
                    let trouble = match trouble {
                        Some(trouble) if trouble.lasting(now) => Some(self.with_probe_failure(trouble).await),
                        trouble => trouble,
                    };
                    with_trouble(why, trouble, now)
                }
                Err(err) => Readiness::Pending(format!("{why} (its Pods could not be read: {err})")),
            },
            Readiness::Failed(why) if object.kind == "Pod" => match pod_trouble(&live) {
                Some(trouble) if !trouble.lasting(now) => Readiness::Pending(why),
                // The Pod's readiness is its trouble: told with the kubelet's word on its probe.
                Some(trouble) if trouble.text == why => Readiness::Failed(self.with_probe_failure(trouble).await.text),
                _ => Readiness::Failed(why),
            },
            judged => judged,
        })
    }

    /// `trouble`, a lasting one that ends a wait, with the kubelet's newest word on the probe
    /// that fails when that is the trouble (read only then: one LIST of the Pod's events).
    async fn with_probe_failure(&self, mut trouble: PodTrouble) -> PodTrouble {
        let said = match &trouble.probe {
            Some(failing) => self.probe_failure(failing).await,
            None => None,
        };
        if let Some((message, count)) = said {
            let times = if count > 1 { format!(" ({count} times)") } else { String::new() };
            trouble.text.push_str(&format!("; Unhealthy{times}: {message}"));
        }
        trouble
    }

    /// The Pods `workload`'s `spec.selector.matchLabels` selects in its namespace, and a
    /// Deployment's ReplicaSets: [`worst_pod_trouble`] keeps those the workload owns.
    async fn pods_of(&self, workload: &Value) -> Result<Vec<Value>> {
        let labels = workload.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
        let selector: Vec<String> = labels
            .into_iter()
            .flatten()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
            .collect();
        let namespace = workload.pointer("/metadata/namespace").and_then(Value::as_str).map(String::from);
        let target = |api_version: &str, kind: &str| ListTarget {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.clone(),
        };
        let mut targets = std::collections::BTreeSet::from([target("v1", "Pod")]);
        if workload_kind(workload) == Some("Deployment") {
            targets.insert(target("apps/v1", "ReplicaSet"));
        }
        self.list(&targets, &selector.join(","), ManagedFields::Text, 2).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_refs_read_like_kubectl_names() {
        let web = ObjectRef::of(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
        );
        assert_eq!(web.to_string(), "apps/v1 Deployment shop/web");
        let ns = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        assert_eq!(ns.to_string(), "v1 Namespace shop");
    }
}
