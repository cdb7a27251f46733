//! Running a release's hooks as helm runs them: the hooks of one event one after another in
//! helm's order (`hooks::for_event`), each applied (after deleting the previous one, with
//! `before-hook-creation`) and waited for until done; the first that fails stops the rest
//! and the release, with the last lines of its pods' logs. `hook-succeeded` hooks are deleted
//! once every hook of the event has succeeded, a `hook-failed` one when it fails.

use serde_json::Value;
use tokio::time::Instant;

use super::{ApplyError, Event, Run, describe, interruption};
use weaver_cluster::{Deleted, PodLog, Readiness, ServedKind};
use weaver_core::error::Error;
use weaver_core::manifest::ObjectKey;
use weaver_helm::hooks::{self, DeletePolicy, Spec};
use weaver_plan::release::record::{HookOutcome, HookRun};

/// How many log lines of each pod of a failed hook are shown.
pub const LOG_LINES: i64 = 20;

/// How one hook went.
#[derive(Debug, Clone)]
pub struct HookResult {
    pub release: String,
    pub event: hooks::Event,
    pub api_version: String,
    pub key: ObjectKey,
    pub weight: i64,
    pub outcome: HookOutcome,
    /// Why it failed or did not run; for a failed Job or Pod, its pods' last log lines.
    pub message: Option<String>,
}

impl HookResult {
    pub fn to_record(&self) -> HookRun {
        HookRun {
            event: self.event,
            api_version: self.api_version.clone(),
            kind: self.key.kind.clone(),
            namespace: self.key.namespace.clone(),
            name: self.key.name.clone(),
            outcome: self.outcome,
        }
    }
}

impl Run<'_> {
    /// Runs the hooks among `objects` that `event` fires. Returns what each did and, when
    /// one failed (or the apply was interrupted), why the release stops.
    pub(super) async fn run_hooks(
        &self,
        release: &str,
        event: hooks::Event,
        objects: &[Value],
    ) -> (Vec<HookResult>, Option<String>) {
        let hooks = hooks::for_event(objects, event);
        let mut results = Vec::new();
        let mut error: Option<String> = None;
        for (object, spec) in &hooks {
            let result = |outcome, message| HookResult {
                release: release.to_string(),
                event,
                api_version: object["apiVersion"].as_str().unwrap_or_default().to_string(),
                key: ObjectKey::of(object),
                weight: spec.weight,
                outcome,
                message,
            };
            let result = if let Some(why) = &error {
                result(HookOutcome::NotRun, Some(format!("not run: {why}")))
            } else if self.options.dry_run {
                result(HookOutcome::NotRun, Some("a dry run does not run hooks".to_string()))
            } else if self.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                error = Some("the apply was interrupted".to_string());
                result(HookOutcome::NotRun, Some("not run: the apply was interrupted".to_string()))
            } else {
                let key = ObjectKey::of(object);
                (self.on_event)(Event::HookStarted { release, event, key: &key });
                match self.run_hook(object, spec).await {
                    Ok(()) => result(HookOutcome::Succeeded, None),
                    Err(why) => {
                        error = Some(format!("hook {event} {key} failed"));
                        result(HookOutcome::Failed, Some(why))
                    }
                }
            };
            (self.on_event)(Event::Hook(&result));
            results.push(result);
        }
        if error.is_none() && !self.options.dry_run {
            for (object, _) in hooks.iter().filter(|(_, spec)| spec.has_policy(DeletePolicy::HookSucceeded)) {
                if let Err(why) = self.delete_hook(object).await {
                    error = Some(format!("deleting hook {} (hook-succeeded): {why}", ObjectKey::of(object)));
                    break;
                }
            }
        }
        (results, error)
    }

    /// The hooks `event` would have run, reported as not run because of `why`.
    pub(super) fn hooks_not_run(
        &self,
        release: &str,
        event: hooks::Event,
        objects: &[Value],
        why: &str,
    ) -> Vec<HookResult> {
        hooks::for_event(objects, event)
            .into_iter()
            .map(|(object, spec)| {
                let result = HookResult {
                    release: release.to_string(),
                    event,
                    api_version: object["apiVersion"].as_str().unwrap_or_default().to_string(),
                    key: ObjectKey::of(object),
                    weight: spec.weight,
                    outcome: HookOutcome::NotRun,
                    message: Some(format!("not run: {why}")),
                };
                (self.on_event)(Event::Hook(&result));
                result
            })
            .collect()
    }

    fn hook_kind(&self, object: &Value) -> Result<ServedKind, String> {
        let (api_version, kind) =
            (object["apiVersion"].as_str().unwrap_or_default(), object["kind"].as_str().unwrap_or_default());
        self.served(api_version, kind).ok_or_else(|| format!("the cluster does not serve {api_version} {kind}"))
    }

    /// Deletes a hook object and waits until it is gone (a new one of the same name cannot
    /// be created before).
    async fn delete_hook(&self, object: &Value) -> Result<(), String> {
        let served = self.hook_kind(object)?;
        let key = ObjectKey::of(object);
        let namespace = key.namespace.as_deref();
        let deleted = {
            let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
            self.cluster.delete(&served, namespace, &key.name, false).await.map_err(|e| describe(&e))?
        };
        if deleted == Deleted::Deleted {
            let deadline = Instant::now() + self.options.timeout;
            let gone =
                self.cluster.wait_gone(&served, namespace, &key.name, deadline).await.map_err(|e| describe(&e))?;
            if !gone {
                return Err(format!("still there after {}", weaver_cluster::humanize(self.options.timeout)));
            }
        }
        Ok(())
    }

    /// Creates one hook and waits until it is done; Err says why it failed.
    async fn run_hook(&self, object: &Value, spec: &Spec) -> Result<(), String> {
        let served = self.hook_kind(object)?;
        if spec.has_policy(DeletePolicy::BeforeHookCreation) {
            self.delete_hook(object).await.map_err(|why| format!("deleting the previous one: {why}"))?;
        }
        let applied = {
            let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
            self.cluster.apply(object, &served, false, self.options.force_conflicts).await
        };
        applied.map_err(|err| match err {
            ApplyError::Conflict(m) => format!("{m} (another field manager owns these fields)"),
            ApplyError::NotFound(m) => m,
            ApplyError::Other(err) => describe(&err),
        })?;
        let key = ObjectKey::of(object);
        let deadline = Instant::now() + self.options.timeout;
        let state = tokio::select! {
            state = self.cluster.wait_hook(&served, key.namespace.as_deref(), &key.name, deadline) => state,
            () = interruption(self.interrupted) => Err(Error::new("the apply was interrupted while the hook ran")),
        };
        let why = match state {
            Ok(Readiness::Ready) => return Ok(()),
            Ok(Readiness::Failed(reason)) => reason,
            Ok(Readiness::Pending(reason) | Readiness::Unknown(reason)) => {
                format!("not done after {} (--timeout): {reason}", weaver_cluster::humanize(self.options.timeout))
            }
            Err(err) => describe(&err),
        };
        let logs = logs_text(self.cluster.hook_logs(object, LOG_LINES).await);
        let mut message = format!("{why}\n{logs}");
        if spec.has_policy(DeletePolicy::HookFailed)
            && let Err(also) = self.delete_hook(object).await
        {
            message.push_str(&format!("\ndeleting it (hook-failed) failed too: {also}"));
        }
        Err(message)
    }
}

/// A failed hook's pods' last log lines, or why there are none.
fn logs_text(logs: Result<Vec<PodLog>, String>) -> String {
    match logs {
        Err(why) => format!("no log could be read: {why}"),
        Ok(pods) => pods
            .iter()
            .map(|pod| match &pod.lines {
                Ok(text) if text.trim().is_empty() => format!("pod {} logged nothing", pod.pod),
                Ok(text) => {
                    let lines: Vec<String> = text.trim_end().lines().map(|l| format!("  | {l}")).collect();
                    format!("last {LOG_LINES} lines of pod {}'s log:\n{}", pod.pod, lines.join("\n"))
                }
                Err(why) => format!("the log of pod {} could not be read: {why}", pod.pod),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}
