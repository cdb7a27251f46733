//! Kubernetes Events for the controllers' objects, grouped as client-go's correlator groups them:
//! the same reason *and message* about the same object again within a while bumps the first
//! Event's series; a new message is a new Event. kube-runtime's `Recorder` groups by reason
//! alone, so each apply of a new revision only bumped the count of an Event naming the first
//! (`ReconciliationSucceeded … applied revision 1701fd98dca0 (x4)`).
//!
//! They are written as core/v1 Events, with `firstTimestamp`, `lastTimestamp` and `count`
//! beside the series: `kubectl get events --sort-by=.lastTimestamp` orders them, and kubectl
//! shows when each was last seen. events.k8s.io/v1 refuses those fields (its
//! `deprecatedLastTimestamp`…: "needs to be unset"); it serves the same Events, with them.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event as K8sEvent, EventSeries, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use weaver_api::conditions::TypedReason;

/// How long a published Event may be counted again (kube-runtime's and client-go's
/// correlators keep theirs about as long).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// Publishes Events as `reporter`.
pub struct Recorder {
    client: kube::Client,
    reporter: Reporter,
    published: Mutex<HashMap<Key, K8sEvent>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    type_: &'static str,
    reason: String,
    action: String,
    note: Option<String>,
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
}

impl Recorder {
    pub fn new(client: kube::Client, reporter: Reporter) -> Recorder {
        Recorder { client, reporter, published: Mutex::default() }
    }

    /// Publishes an Event of `type_` and `reason` about `regarding`, saying `note` of `action`:
    /// a new Event, or the series of the one published with the same reason and note within
    /// the last minutes.
    pub async fn publish(
        &self,
        type_: EventType,
        reason: &impl TypedReason,
        action: &str,
        note: &str,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let event = &Event {
            type_,
            reason: reason.as_str().to_string(),
            note: Some(note.to_string()),
            action: action.to_string(),
            secondary: None,
        };
        let now = Timestamp::now();
        let type_ = match event.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let key = Key {
            type_,
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
            regarding: (
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
                regarding.kind.clone(),
            ),
        };
        // The cache is held only between requests: Events of other objects are not kept waiting.
        let earlier = {
            let mut published = self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            published.retain(|_, earlier| {
                let last =
                    earlier.series.as_ref().and_then(|s| s.last_observed_time.as_ref()).or(earlier.event_time.as_ref());
                last.is_some_and(|last| last.0 + SERIES_WINDOW > now)
            });
            published.get(&key).cloned()
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let sent = match earlier {
            Some(mut again) => {
                let count = again.count.map_or(2, |count| count + 1);
                let series = EventSeries { count: Some(count), last_observed_time: Some(MicroTime(now)) };
                // Only the series and what core/v1 clients read of it: a patch of the whole Event
                // would carry the resourceVersion it was created with, which the API server takes
                // as a precondition (409 the second time).
                let patch = serde_json::json!({"series": series, "count": count, "lastTimestamp": Time(now)});
                let name = again.metadata.name.clone().unwrap_or_default();
                match events.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {
                        again.series = Some(series);
                        again.count = Some(count);
                        again.last_timestamp = Some(Time(now));
                        again
                    }
                    // Gone (Events live an hour): a new one.
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        events.create(&PostParams::default(), &self.event(event, type_, regarding, now)).await?
                    }
                    Err(err) => return Err(err),
                }
            }
            None => events.create(&PostParams::default(), &self.event(event, type_, regarding, now)).await?,
        };
        self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key, sent);
        Ok(())
    }

    fn event(&self, event: &Event, type_: &str, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            message: event.note.as_deref().map(within_note_limit),
            type_: Some(type_.to_string()),
            event_time: Some(MicroTime(now)),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            involved_object: regarding.clone(),
            related: event.secondary.clone(),
            reporting_component: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or_else(|| controller.clone())),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // As kube-runtime and client-go name them: the object's name and the time.
                name: Some(format!("{}.{:x}", regarding.name.as_deref().unwrap_or(controller), now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        }
    }
}

/// The most bytes the API server takes in an Event's message (events.k8s.io/v1's note) when it has an
/// `eventTime` (`validation.NoteLengthLimit`).
const NOTE_LIMIT: usize = 1024;

/// `note` cut to what the API server takes, at a character's boundary, marked cut: a long
/// render error would otherwise refuse the whole Event.
fn within_note_limit(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    const CUT: &str = " …";
    let mut end = NOTE_LIMIT - CUT.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_to_what_the_api_server_takes_at_a_characters_boundary() {
        assert_eq!(within_note_limit("short"), "short");
        let long = "é".repeat(1000);
        let cut = within_note_limit(&long);
        assert!(cut.len() <= NOTE_LIMIT && cut.ends_with(" …"), "{}", cut.len());
        assert!(long.starts_with(cut.trim_end_matches(" …")));
    }
}
