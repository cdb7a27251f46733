//! API errors, rendered as `metav1.Status` bodies exactly like kube-apiserver's
//! `k8s.io/apimachinery/pkg/api/errors` constructors.

use serde_json::{Map, Value, json};

/// `group` + `resource`, printed like `schema.GroupResource.String()`:
/// `deployments.apps`, or `configmaps` for the core group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() { f.write_str(&self.resource) } else { write!(f, "{}.{}", self.resource, self.group) }
    }
}

/// One `details.causes[]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details`, already shaped (name/group/kind/uid/causes/retryAfterSeconds).
    pub details: Option<Map<String, Value>>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> ApiError {
        ApiError { code, reason, message, details: None }
    }

    fn with_details(mut self, gr: Option<&GroupResource>, name: &str) -> ApiError {
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), name.into());
        }
        if let Some(gr) = gr {
            if !gr.group.is_empty() {
                d.insert("group".into(), gr.group.clone().into());
            }
            if !gr.resource.is_empty() {
                d.insert("kind".into(), gr.resource.clone().into());
            }
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(gr: &GroupResource, name: &str) -> ApiError {
        ApiError::new(404, "NotFound", format!("{gr} \"{name}\" not found")).with_details(Some(gr), name)
    }

    /// 404 for a path that names no served resource.
    pub fn no_route() -> ApiError {
        let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource".into());
        e.details = Some(Map::new());
        e
    }

    pub fn already_exists(gr: &GroupResource, name: &str) -> ApiError {
        ApiError::new(409, "AlreadyExists", format!("{gr} \"{name}\" already exists")).with_details(Some(gr), name)
    }

    /// Optimistic-concurrency failure (stale resourceVersion / precondition).
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> ApiError {
        ApiError::new(409, "Conflict", format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"))
            .with_details(Some(gr), name)
    }

    pub fn stale(gr: &GroupResource, name: &str) -> ApiError {
        ApiError::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// Server-side apply conflict (`errors.NewApplyConflict`): details carry only causes.
    pub fn apply_conflict(message: String, causes: Vec<Cause>) -> ApiError {
        let mut e = ApiError::new(409, "Conflict", message);
        let mut d = Map::new();
        d.insert("causes".into(), causes_json(&causes));
        e.details = Some(d);
        e
    }

    /// 422 `errors.NewInvalid`: `Deployment.apps "web" is invalid: ...`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let msgs: Vec<String> = causes.iter().map(cause_error_string).collect();
        let agg = if msgs.len() == 1 { msgs[0].clone() } else { format!("[{}]", msgs.join(", ")) };
        let mut e = ApiError::new(422, "Invalid", format!("{qualified} \"{name}\" is invalid: {agg}"));
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), name.into());
        }
        if !group.is_empty() {
            d.insert("group".into(), group.into());
        }
        d.insert("kind".into(), kind.into());
        d.insert("causes".into(), causes_json(&causes));
        e.details = Some(d);
        e
    }

    /// 410 `errors.NewResourceExpired`, as a watch from a compacted resourceVersion gets.
    pub fn expired(message: String) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message.into())
    }

    pub fn forbidden(gr: &GroupResource, name: &str, why: &str) -> ApiError {
        let message = if gr.resource.is_empty() {
            // Non-resource requests (`/api`, `/version`).
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {why}")
        };
        ApiError::new(403, "Forbidden", message).with_details(Some(gr), name)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(405, "MethodNotAllowed", message.into());
        e.details = Some(Map::new());
        e
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message.into())
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized".into())
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        let mut e = ApiError::new(500, "InternalError", format!("Internal error occurred: {message}"));
        let mut d = Map::new();
        d.insert("causes".into(), json!([{ "message": message }]));
        e.details = Some(d);
        e
    }

    /// `errors.NewGenericServerResponse` without a resource: what the
    /// apiserver answers when it has no better error (a failed JSON patch).
    pub fn generic(code: u16) -> ApiError {
        let (reason, message) = match code {
            400 => ("BadRequest", "the server rejected our request for an unknown reason"),
            401 => ("Unauthorized", "the server has asked for the client to provide credentials"),
            404 => ("NotFound", "the server could not find the requested resource"),
            405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
            409 => ("Conflict", "the server reported a conflict"),
            422 => ("Invalid", "the server rejected our request due to an error in our request"),
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            _ => ("", ""),
        };
        let mut e = ApiError::new(code, reason, message.into());
        if message.is_empty() {
            e.message = format!("the server responded with the status code {code} but did not return more information");
        }
        e.details = Some(Map::new());
        e
    }

    /// What an injected fault answers with: the Status a real server sends
    /// in the situations that produce that code.
    pub fn injected(code: u16) -> ApiError {
        match code {
            403 => ApiError::new(403, "Forbidden", "forbidden: injected fault".into()),
            429 => {
                let mut e = ApiError::new(429, "TooManyRequests", "Too many requests, please try again later.".into());
                let mut d = Map::new();
                d.insert("retryAfterSeconds".into(), 1.into());
                e.details = Some(d);
                e
            }
            500 => ApiError::internal("injected fault"),
            503 => {
                ApiError::new(503, "ServiceUnavailable", "the server is currently unable to handle the request".into())
            }
            504 => {
                let mut e = ApiError::new(
                    504,
                    "Timeout",
                    "Timeout: request did not complete within requested timeout - context deadline exceeded".into(),
                );
                e.details = Some(Map::new());
                e
            }
            _ => ApiError::generic(code),
        }
    }

    pub fn to_status(&self) -> Value {
        let mut s = Map::new();
        s.insert("kind".into(), "Status".into());
        s.insert("apiVersion".into(), "v1".into());
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), "Failure".into());
        s.insert("message".into(), self.message.clone().into());
        if !self.reason.is_empty() {
            s.insert("reason".into(), self.reason.into());
        }
        if let Some(d) = &self.details {
            s.insert("details".into(), Value::Object(d.clone()));
        }
        s.insert("code".into(), self.code.into());
        Value::Object(s)
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("reason".into(), c.reason.clone().into());
                m.insert("message".into(), c.message.clone().into());
                m.insert("field".into(), c.field.clone().into());
                Value::Object(m)
            })
            .collect(),
    )
}

/// `field.Error.Error()`: `<field>: <message>`.
fn cause_error_string(c: &Cause) -> String {
    if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) }
}

/// Builders for `field.Error`s as the validation code formats them.
pub mod field {
    use super::Cause;
    use serde_json::Value;

    /// `field.Required`.
    pub fn required(path: &str, detail: &str) -> Cause {
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Cause { reason: "FieldValueRequired".into(), message, field: path.into() }
    }

    /// `field.Invalid`, value printed like Go's `%q`/`%v`.
    pub fn invalid(path: &str, value: &Value, detail: &str) -> Cause {
        let v = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        let message =
            if detail.is_empty() { format!("Invalid value: {v}") } else { format!("Invalid value: {v}: {detail}") };
        Cause { reason: "FieldValueInvalid".into(), message, field: path.into() }
    }

    /// `field.NotSupported`.
    pub fn not_supported(path: &str, value: &str, valid: &[&str]) -> Cause {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {value:?}: supported values: {}", quoted.join(", ")),
            field: path.into(),
        }
    }

    /// `field.Duplicate`.
    pub fn duplicate(path: &str, value: &Value) -> Cause {
        Cause { reason: "FieldValueDuplicate".into(), message: format!("Duplicate value: {value}"), field: path.into() }
    }
}
