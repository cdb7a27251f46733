//! Conditions as the API conventions and kstatus read them: a type, True or False, a CamelCase
//! reason and a message, and a `lastTransitionTime` that moves only when the status does, so
//! that an unchanged outcome gives an equal status and needs no write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
/// kstatus: the controller is working towards the spec (True while it retries).
pub const RECONCILING: &str = "Reconciling";
/// kstatus: the controller cannot go on until the spec changes.
pub const STALLED: &str = "Stalled";
/// An EnvironmentSync's last auto-promotion: True when it pushed or found nothing to push.
pub const PROMOTED: &str = "Promoted";
/// An image update's outcome (`spec.imageUpdates`): True when it pushed or nothing was new.
pub const IMAGES_UPDATED: &str = "ImagesUpdated";
/// An EnvironmentSync whose account may not watch some of what it applied (True only; absent
/// otherwise): changes others make to them are found at each interval, not as they happen.
pub const WATCH_REFUSED: &str = "WatchRefused";

/// A condition's or an Event's reason, one of the API's typed reasons (as Flux keeps its own in
/// `api/`): the writers take one, never a string made up where it is written, so every reason
/// weaver writes is one its type lists, and the book's reference with it.
pub trait TypedReason {
    fn as_str(&self) -> &str;
}

/// [`TypedReason`] for types whose inherent `as_str` gives the reason as written.
macro_rules! typed_reasons {
    ($($name:ty),+ $(,)?) => {
        $(impl $crate::conditions::TypedReason for $name {
            fn as_str(&self) -> &str {
                <$name>::as_str(self)
            }
        })+
    };
}

pub(crate) use typed_reasons;

pub fn condition(
    type_: &str,
    status: bool,
    reason: &impl TypedReason,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.as_str().to_string(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// `new` with the previous transition time of its type when its status did not change.
pub fn carry_transition(mut new: Condition, previous: &[Condition]) -> Condition {
    if let Some(old) = previous.iter().find(|c| c.type_ == new.type_)
        && old.status == new.status
    {
        new.last_transition_time = old.last_transition_time.clone();
    }
    new
}

/// The schema of a `conditions` list's items: `meta/v1` Condition's, as the API server publishes
/// it. Written out because k8s-openapi's `schemars` feature, which would derive it, builds a
/// schema impl for every built-in type (9 of the first build's CPU-seconds) for these two.
pub fn condition_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "items": {
            "description": "Condition contains details for one aspect of the current state of this API Resource.",
            "properties": {
                "lastTransitionTime": {
                    "description": "lastTransitionTime is the last time the condition transitioned from one status to another. This should be when the underlying condition changed.  If that is not known, then using the time when the API field changed is acceptable.",
                    "format": "date-time",
                    "type": "string"
                },
                "message": {
                    "description": "message is a human readable message indicating details about the transition. This may be an empty string.",
                    "type": "string"
                },
                "observedGeneration": {
                    "description": "observedGeneration represents the .metadata.generation that the condition was set based upon. For instance, if .metadata.generation is currently 12, but the .status.conditions[x].observedGeneration is 9, the condition is out of date with respect to the current state of the instance.",
                    "format": "int64",
                    "type": "integer"
                },
                "reason": {
                    "description": "reason contains a programmatic identifier indicating the reason for the condition's last transition. Producers of specific condition types may define expected values and meanings for this field, and whether the values are considered a guaranteed API. The value should be a CamelCase string. This field may not be empty.",
                    "type": "string"
                },
                "status": {
                    "description": "status of the condition, one of True, False, Unknown.",
                    "type": "string"
                },
                "type": {
                    "description": "type of condition in CamelCase or in foo.example.com/CamelCase.",
                    "type": "string"
                }
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "type": "object"
        },
        "type": "array"
    })
}
