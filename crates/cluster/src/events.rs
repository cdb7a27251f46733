//! Events: what the cluster's components said of objects (core/v1 Events, as `kubectl
//! describe` reads them), for `weaver ui`'s pages: newest first, a bounded number; and the
//! kubelet's word on a failing probe, for a wait's reason.

use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;
use weaver_core::manifest::ListTarget;

use super::Cluster;
use super::ready::ProbeFailing;
use weaver_core::error::{Error, Result};

/// How many events a page shows: the newest.
pub const EVENTS_SHOWN: usize = 50;

/// One event, as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind_of_event: String,
    pub reason: String,
    pub message: String,
    /// The object it is about: its kind, namespace and name.
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// How many times it happened.
    pub count: u64,
    /// When it last happened, RFC 3339 (empty when the event says nothing of it).
    pub time: String,
    /// Who said it: `deployment-controller`, `kubelet`.
    pub source: String,
}

impl ObjectEvent {
    /// The event as the server has it (either the core/v1 fields or the events.k8s.io ones
    /// it fills in).
    pub fn of(event: &Value) -> ObjectEvent {
        let text = |path: &str| event.pointer(path).and_then(Value::as_str).filter(|s| !s.is_empty());
        let first = |paths: &[&str]| paths.iter().find_map(|p| text(p)).unwrap_or_default().to_string();
        ObjectEvent {
            kind_of_event: first(&["/type"]),
            reason: first(&["/reason"]),
            message: first(&["/message", "/note"]),
            kind: first(&["/involvedObject/kind", "/regarding/kind"]),
            namespace: text("/involvedObject/namespace").or(text("/regarding/namespace")).map(str::to_string),
            name: first(&["/involvedObject/name", "/regarding/name"]),
            count: ["/count", "/series/count"].iter().find_map(|p| event.pointer(p)?.as_u64()).unwrap_or(1),
            time: first(&[
                "/series/lastObservedTime",
                "/lastTimestamp",
                "/eventTime",
                "/firstTimestamp",
                "/metadata/creationTimestamp",
            ]),
            source: first(&["/source/component", "/reportingComponent", "/reportingController"]),
        }
    }
}

/// `events` newest first (by the second: servers write times at different precisions), the
/// first `limit` of them.
pub fn newest_first(mut events: Vec<ObjectEvent>, limit: usize) -> Vec<ObjectEvent> {
    let second = |event: &ObjectEvent| event.time.get(..19).unwrap_or(&event.time).to_string();
    events.sort_by_cached_key(|event| std::cmp::Reverse(second(event)));
    events.truncate(limit);
    events
}

impl Cluster {
    /// The events in `namespace`, only those of the object `about` (kind, name) when given:
    /// one LIST, in no particular order.
    pub async fn events(&self, namespace: &str, about: Option<(&str, &str)>) -> Result<Vec<ObjectEvent>> {
        if about.is_none() {
            let target =
                ListTarget { api_version: "v1".into(), kind: "Event".into(), namespace: Some(namespace.into()) };
            if let Some(events) = self.watched(&target, "", super::ManagedFields::Text).await {
                return Ok(events.iter().map(|event| ObjectEvent::of(event)).collect());
            }
        }
        match about {
            Some((kind, name)) => {
                let fields = format!("involvedObject.kind={kind},involvedObject.name={name}");
                self.events_selected(namespace, &fields, &format!("listing the events of {kind} {namespace}/{name}"))
                    .await
            }
            None => self.events_selected(namespace, "", &format!("listing events in namespace {namespace}")).await,
        }
    }

    /// What the kubelet last said of the failing probe `failing` (its newest `Unhealthy` event
    /// of the container, one of those probes'): `Readiness probe failed: HTTP probe failed with
    /// statuscode: 503`, and how many times it said so. One LIST by field selector; None when
    /// there is none or the events cannot be read (a user may not list them): the trouble is
    /// told without it.
    pub(super) async fn probe_failure(&self, failing: &ProbeFailing) -> Option<(String, u64)> {
        let fields = format!(
            "involvedObject.uid={},involvedObject.fieldPath={},reason=Unhealthy",
            failing.pod_uid, failing.field_path
        );
        let doing = format!("listing the Unhealthy events of Pod {}/{}", failing.namespace, failing.pod_uid);
        let events = self.events_selected(&failing.namespace, &fields, &doing).await.ok()?;
        let of_probe =
            |event: &ObjectEvent| failing.probes.iter().any(|p| event.message.starts_with(&format!("{p} probe ")));
        let newest = newest_first(events.into_iter().filter(of_probe).collect(), 1).pop()?;
        Some((newest.message.trim().to_string(), newest.count))
    }

    /// The events in `namespace` that the field selector `fields` selects (all for ""): one
    /// LIST, in no particular order.
    async fn events_selected(&self, namespace: &str, fields: &str, doing: &str) -> Result<Vec<ObjectEvent>> {
        let served = self
            .resolve("v1", "Event")
            .map_err(|_| Error::new(format!("the cluster of context `{}` serves no v1 Events", self.info.context)))?;
        let params = match fields {
            "" => ListParams::default(),
            fields => ListParams::default().fields(fields),
        };
        let api = self.api(&served, Some(namespace));
        let list =
            self.retry.run(|| api.list(&params)).await.map_err(|gave_up| gave_up.into_error(doing, &self.info))?;
        list.items
            .iter()
            .map(|item| {
                serde_json::to_value(item)
                    .map(|event| ObjectEvent::of(&event))
                    .map_err(|err| Error::new(format!("{doing}: cannot read an event the server sent: {err}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(reason: &str, time: &str) -> ObjectEvent {
        ObjectEvent::of(&json!({"type": "Normal", "reason": reason, "message": "m", "lastTimestamp": time,
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}, "source": {"component": "kubelet"}}))
    }

    #[test]
    fn events_read_either_api_and_come_newest_first_and_bounded() {
        let new_api = ObjectEvent::of(&json!({"type": "Warning", "reason": "BackOff", "note": "restarting",
            "eventTime": "2026-01-01T00:00:05.123456Z", "series": {"count": 4, "lastObservedTime": "2026-01-01T00:00:09.000001Z"},
            "regarding": {"kind": "Pod", "namespace": "shop", "name": "web-1"}, "reportingController": "kubelet"}));
        assert_eq!(
            (new_api.message.as_str(), new_api.count, new_api.time.as_str(), new_api.source.as_str()),
            ("restarting", 4, "2026-01-01T00:00:09.000001Z", "kubelet")
        );
        let events = vec![event("a", "2026-01-01T00:00:01Z"), new_api, event("c", "2026-01-01T00:00:10Z")];
        let reasons: Vec<String> = newest_first(events.clone(), 10).into_iter().map(|e| e.reason).collect();
        assert_eq!(reasons, ["c", "BackOff", "a"]);
        assert_eq!(newest_first(events, 2).len(), 2);
    }
}
