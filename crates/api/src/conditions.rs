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

pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
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
