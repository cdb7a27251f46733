//! Helm's hooks (`helm.sh/hook`): objects a Helm chart's release runs around its lifecycle
//! rather than keeps. What an object's annotations say (events, weight, delete policies), the
//! order hooks of one event run in, and which lifecycle an apply is. Pure: running them is
//! `apply`'s.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const HOOK_ANNOTATION: &str = "helm.sh/hook";
pub const WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
pub const DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// When a hook runs (helm's `release.HookEvent`; test hooks are never rendered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    PreInstall,
    PostInstall,
    PreUpgrade,
    PostUpgrade,
    PreDelete,
    PostDelete,
    PreRollback,
    PostRollback,
}

impl Event {
    const ALL: [Event; 8] = [
        Event::PreInstall,
        Event::PostInstall,
        Event::PreUpgrade,
        Event::PostUpgrade,
        Event::PreDelete,
        Event::PostDelete,
        Event::PreRollback,
        Event::PostRollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::PreInstall => "pre-install",
            Event::PostInstall => "post-install",
            Event::PreUpgrade => "pre-upgrade",
            Event::PostUpgrade => "post-upgrade",
            Event::PreDelete => "pre-delete",
            Event::PostDelete => "post-delete",
            Event::PreRollback => "pre-rollback",
            Event::PostRollback => "post-rollback",
        }
    }

    fn parse(text: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a hook object is deleted (helm's `release.HookDeletePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletePolicy {
    /// Before the hook is created again (helm's default when none is given).
    BeforeHookCreation,
    HookSucceeded,
    HookFailed,
}

impl DeletePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePolicy::BeforeHookCreation => "before-hook-creation",
            DeletePolicy::HookSucceeded => "hook-succeeded",
            DeletePolicy::HookFailed => "hook-failed",
        }
    }

    fn parse(text: &str) -> Option<DeletePolicy> {
        [DeletePolicy::BeforeHookCreation, DeletePolicy::HookSucceeded, DeletePolicy::HookFailed]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// What a hook object's annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub events: Vec<Event>,
    /// `helm.sh/hook-weight`; 0 when absent or not an integer, as helm reads it.
    pub weight: i64,
    /// Never empty: `before-hook-creation` when the object names none, as helm defaults it.
    pub delete_policies: Vec<DeletePolicy>,
}

impl Spec {
    /// The hook `object` is, or None when it is not a lifecycle hook (no `helm.sh/hook`, or
    /// only events helm skips). Unknown delete policies are ignored, as helm ignores them.
    pub fn of(object: &Value) -> Option<Spec> {
        let annotation = |name: &str| {
            object.pointer("/metadata/annotations").and_then(|a| a.get(name)).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let list = |text: String| -> Vec<String> {
            text.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect()
        };
        let events: Vec<Event> = list(annotation(HOOK_ANNOTATION)?).iter().filter_map(|e| Event::parse(e)).collect();
        if events.is_empty() {
            return None;
        }
        let weight = annotation(WEIGHT_ANNOTATION).and_then(|w| w.trim().parse().ok()).unwrap_or(0);
        let mut delete_policies: Vec<DeletePolicy> = annotation(DELETE_POLICY_ANNOTATION)
            .map(list)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| DeletePolicy::parse(p))
            .collect();
        if delete_policies.is_empty() {
            delete_policies.push(DeletePolicy::BeforeHookCreation);
        }
        Some(Spec { events, weight, delete_policies })
    }

    pub fn has_policy(&self, policy: DeletePolicy) -> bool {
        self.delete_policies.contains(&policy)
    }
}

/// Which part of a release's life an apply is, and so which hooks it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// The release has no deployed record.
    Install,
    Upgrade,
    /// `installed: false`: what the release had is removed.
    Delete,
    /// `weaver rollback`.
    Rollback,
}

impl Lifecycle {
    /// The lifecycle of applying a release: `installed`, with a deployed record or not, or a
    /// rollback.
    pub fn of(installed: bool, deployed: bool, rollback: bool) -> Lifecycle {
        match (installed, deployed, rollback) {
            (false, _, _) => Lifecycle::Delete,
            (true, _, true) => Lifecycle::Rollback,
            (true, false, false) => Lifecycle::Install,
            (true, true, false) => Lifecycle::Upgrade,
        }
    }

    /// The events this lifecycle fires: before the release's objects, and after.
    pub fn events(self) -> [Event; 2] {
        match self {
            Lifecycle::Install => [Event::PreInstall, Event::PostInstall],
            Lifecycle::Upgrade => [Event::PreUpgrade, Event::PostUpgrade],
            Lifecycle::Delete => [Event::PreDelete, Event::PostDelete],
            Lifecycle::Rollback => [Event::PreRollback, Event::PostRollback],
        }
    }
}

/// helm's kind order (releaseutil.InstallOrder) as a rank, unknown kinds last.
fn kind_rank(object: &Value) -> usize {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    crate::manifests::install_rank(kind)
}

fn name_of(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

/// The hooks among `objects` that `event` runs, in the order helm runs them: by weight, then
/// name (helm's hookByWeight), hooks of the same weight and name in kind order (helm sorts
/// by kind first and keeps that order).
pub fn for_event<'v>(objects: impl IntoIterator<Item = &'v Value>, event: Event) -> Vec<(&'v Value, Spec)> {
    let mut hooks: Vec<(&Value, Spec)> = objects
        .into_iter()
        .filter_map(|o| Some((o, Spec::of(o)?)))
        .filter(|(_, s)| s.events.contains(&event))
        .collect();
    hooks.sort_by(|(a, sa), (b, sb)| {
        sa.weight.cmp(&sb.weight).then_with(|| name_of(a).cmp(name_of(b))).then_with(|| kind_rank(a).cmp(&kind_rank(b)))
    });
    hooks
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hook(kind: &str, name: &str, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "annotations": annotations}})
    }

    #[test]
    fn reads_events_weight_and_policies_as_helm_does() {
        let spec = Spec::of(&hook(
            "Job",
            "m",
            json!({HOOK_ANNOTATION: "pre-install, Pre-Upgrade", WEIGHT_ANNOTATION: "-5",
                DELETE_POLICY_ANNOTATION: "hook-succeeded,hook-failed"}),
        ))
        .unwrap();
        assert_eq!(spec.events, [Event::PreInstall, Event::PreUpgrade]);
        assert_eq!(spec.weight, -5);
        assert_eq!(spec.delete_policies, [DeletePolicy::HookSucceeded, DeletePolicy::HookFailed]);
        // No policy: before-hook-creation; a weight that is not a number: 0.
        let spec = Spec::of(&hook("Job", "m", json!({HOOK_ANNOTATION: "post-install", WEIGHT_ANNOTATION: "x"})));
        assert_eq!(
            spec.unwrap(),
            Spec {
                events: vec![Event::PostInstall],
                weight: 0,
                delete_policies: vec![DeletePolicy::BeforeHookCreation]
            }
        );
        assert_eq!(Spec::of(&hook("Job", "m", json!({}))), None);
        assert_eq!(Spec::of(&hook("Job", "m", json!({HOOK_ANNOTATION: "test"}))), None);
    }

    #[test]
    fn orders_by_weight_then_name_then_kind() {
        let at = |weight: &str| json!({HOOK_ANNOTATION: "pre-install", WEIGHT_ANNOTATION: weight});
        let objects = [
            hook("Job", "b", at("1")),
            hook("Job", "a", at("1")),
            hook("ConfigMap", "z", at("-1")),
            hook("Job", "same", at("2")),
            hook("ServiceAccount", "same", at("2")),
            hook("Job", "other-event", json!({HOOK_ANNOTATION: "post-install"})),
        ];
        let order: Vec<(&str, &str)> = for_event(&objects, Event::PreInstall)
            .iter()
            .map(|(o, _)| (o["kind"].as_str().unwrap(), name_of(o)))
            .collect();
        assert_eq!(
            order,
            [("ConfigMap", "z"), ("Job", "a"), ("Job", "b"), ("ServiceAccount", "same"), ("Job", "same")]
        );
    }
}
