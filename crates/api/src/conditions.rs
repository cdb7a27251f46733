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
