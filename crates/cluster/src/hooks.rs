//! What running a hook needs from the cluster besides applying it: waiting until it is done
//! (helm waits for Jobs to complete and Pods to succeed; other kinds are done once created),
//! waiting until a deleted hook is gone, and the last lines of its pods' logs.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;
use tokio::time::Instant;

use super::ready::Readiness;
use super::{Cluster, ServedKind};
use weaver_core::error::{Error, Result};
use weaver_core::manifest::api_group;

/// How long to wait between reads of a hook that is not done yet.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether a hook object, as the server has it, is done: a Job complete (Failed=True is
/// final), a Pod succeeded (failed is final), anything else at once.
pub fn hook_done(object: &Value) -> Readiness {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    match (api_group(api_version), object["kind"].as_str().unwrap_or_default()) {
        ("batch", "Job") => super::ready::built_in_readiness(object),
        ("", "Pod") => match object.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending") {
            "Succeeded" => Readiness::Ready,
            "Failed" => Readiness::Failed(format!(
                "the pod failed{}",
                object.pointer("/status/message").and_then(Value::as_str).map(|m| format!(": {m}")).unwrap_or_default()
            )),
            phase => Readiness::Pending(format!("the pod is {phase}")),
        },
        _ => Readiness::Ready,
    }
}

/// One pod's last log lines, or why they could not be read.
#[derive(Debug, Clone)]
pub struct PodLog {
    pub pod: String,
    pub lines: std::result::Result<String, String>,
}

impl Cluster {
    /// Reads the hook until it is done, fails for good or `deadline` passes; returns the last
    /// state read (Pending at the deadline).
    pub async fn wait_hook(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        name: &str,
        deadline: Instant,
    ) -> Result<Readiness> {
        loop {
            let state = match self.get(served, namespace, name).await? {
                Some(live) => hook_done(&live),
                None => Readiness::Failed("it was deleted before it was done".to_string()),
            };
            if !matches!(state, Readiness::Pending(_) | Readiness::Unknown(_)) || Instant::now() >= deadline {
                return Ok(state);
            }
            tokio::time::sleep_until((Instant::now() + POLL_INTERVAL).min(deadline)).await;
        }
    }

    /// Reads the object until it no longer exists (a deletion with finalizers or dependents
    /// takes a moment), or `deadline` passes: then false.
    pub async fn wait_gone(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        name: &str,
        deadline: Instant,
    ) -> Result<bool> {
        loop {
            if self.get(served, namespace, name).await?.is_none() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep_until((Instant::now() + POLL_INTERVAL).min(deadline)).await;
        }
    }

    /// The last `lines` lines of the logs of a hook's pods: the Job's (label `job-name`), or
    /// the Pod itself. Err says why there are none to read.
    pub async fn hook_logs(&self, object: &Value, lines: i64) -> std::result::Result<Vec<PodLog>, String> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let (namespace, name) = (text("/metadata/namespace"), text("/metadata/name"));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pods: Vec<String> = match text("/kind") {
            "Pod" => vec![name.to_string()],
            _ => {
                let params = ListParams::default().labels(&format!("job-name={name}"));
                let listed = self
                    .retry
                    .run(|| api.list(&params))
                    .await
                    .map_err(|gave_up| {
                        gave_up.into_error(&format!("listing the pods of Job {namespace}/{name}"), &self.info)
                    })
                    .map_err(|err: Error| err.to_string())?;
                let mut pods: Vec<String> = listed.items.into_iter().filter_map(|p| p.metadata.name).collect();
                pods.sort();
                pods
            }
        };
        if pods.is_empty() {
            return Err(format!("the Job has no pods (label job-name={name} in namespace {namespace})"));
        }
        let params = LogParams { tail_lines: Some(lines), ..LogParams::default() };
        let mut logs = Vec::new();
        for pod in pods {
            let read = self
                .retry
                .run(|| api.logs(&pod, &params))
                .await
                .map_err(|gave_up| {
                    gave_up.into_error(&format!("reading the logs of pod {namespace}/{pod}"), &self.info)
                })
                .map_err(|err: Error| err.to_string());
            logs.push(PodLog { pod, lines: read });
        }
        Ok(logs)
    }
}
