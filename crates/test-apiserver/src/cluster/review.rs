//! The reviews kube-apiserver answers without storing anything, each coming back with its
//! `status`: `authorization.k8s.io/v1` SubjectAccessReview ("may this user do this?") and
//! SelfSubjectAccessReview ("may I?"), answered by the same authorizer chain that guards
//! requests (kube-apiserver's `subjectaccessreview/rest.go`, `selfsubjectaccessreview/rest.go`),
//! and `authentication.k8s.io/v1` TokenReview ("whose token is this?", `tokenreview/storage.go`)
//! for the tokens TokenRequest issued, and SelfSubjectReview ("who am I?").

use super::auth::{AUDIENCE, Attributes, User};
use super::{ApiRequest, ApiResponse, Cluster};
use crate::error::{ApiError, Cause, field};
use serde_json::{Value, json};

const GROUP: &str = "authorization.k8s.io";

impl Cluster {
    /// A review of `kind` (`SubjectAccessReview`, `SelfSubjectAccessReview` or `TokenReview`).
    pub(super) fn review(&self, kind: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = Self::decode(req)?;
        let spec = &body["spec"];
        let (group, status) = match kind {
            "TokenReview" => ("authentication.k8s.io", self.token_review(spec)?),
            // Who the request's credentials are (`selfsubjectreview/rest.go`): no spec.
            "SelfSubjectReview" => {
                let user = json!({"username": req.user.name, "groups": req.user.groups});
                let out = json!({
                    "kind": kind, "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": null},
                    "status": {"userInfo": user},
                });
                return Ok(ApiResponse::json(201, &out));
            }
            "SelfSubjectAccessReview" => {
                let attributes = attributes(spec).map_err(|cause| ApiError::invalid(kind, GROUP, "", vec![cause]))?;
                (GROUP, self.access_review(&req.user, &attributes))
            }
            _ => {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
                };
                let user = User {
                    name: spec["user"].as_str().unwrap_or_default().to_string(),
                    groups: strings(&spec["groups"]),
                };
                // `ValidateSubjectAccessReviewSpec`: the attributes' cause, then the user's.
                let attributes = attributes(spec);
                let mut causes: Vec<_> = attributes.as_ref().err().cloned().into_iter().collect();
                if user.name.is_empty() && user.groups.is_empty() {
                    causes.push(field::invalid(
                        "spec.user",
                        &json!(""),
                        "at least one of user or group must be specified",
                    ));
                }
                match attributes {
                    Ok(attributes) if causes.is_empty() => (GROUP, self.access_review(&user, &attributes)),
                    _ => return Err(ApiError::invalid(kind, GROUP, "", causes)),
                }
            }
        };
        let out = json!({
            "kind": kind, "apiVersion": format!("{group}/v1"),
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        });
        Ok(ApiResponse::json(201, &out))
    }

    /// Whether `user` may do what the attributes say: the review's status.
    fn access_review(&self, user: &User, attributes: &Attributes) -> Value {
        match self.decide(user, attributes) {
            Ok(()) => json!({"allowed": true}),
            Err(reason) if reason.is_empty() => json!({"allowed": false}),
            Err(reason) => json!({"allowed": false, "reason": reason}),
        }
    }

    /// Who `spec.token` authenticates as, as kube-apiserver reports a ServiceAccount token:
    /// its user, uid, groups and credential id; `error` when it authenticates no one.
    fn token_review(&self, spec: &Value) -> Result<Value, ApiError> {
        let token = spec["token"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(ApiError::bad_request("token is required for TokenReview in authentication"));
        }
        let Some(issued) = self.tokens.get(token) else {
            return Ok(json!({"user": {}, "error": "invalid bearer token"}));
        };
        let Some(user) = self.authenticate(token) else {
            // A token of a ServiceAccount since deleted: kube-apiserver 1.32 says which.
            let key = super::ObjKey {
                group: String::new(),
                resource: "serviceaccounts".into(),
                namespace: issued.namespace.clone(),
                name: issued.name.clone(),
            };
            let error = match self.objects().get(&key) {
                None => format!("[invalid bearer token, serviceaccounts \"{}\" not found]", issued.name),
                Some(_) => "invalid bearer token".to_string(),
            };
            return Ok(json!({"user": {}, "error": error}));
        };
        Ok(json!({
            "authenticated": true,
            "audiences": [AUDIENCE],
            "user": {
                "username": user.name,
                "uid": issued.uid,
                "groups": user.groups,
                "extra": {"authentication.kubernetes.io/credential-id": [format!("JTI={}", issued.id)]},
            },
        }))
    }
}

/// The request a review asks about: exactly one of `resourceAttributes` and `nonResourceAttributes`.
fn attributes(spec: &Value) -> Result<Attributes, Cause> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    match (resource, non_resource) {
        (Some(r), None) => Ok(Attributes {
            verb: text(r, "verb"),
            resource_request: true,
            path: String::new(),
            group: text(r, "group"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            namespace: text(r, "namespace"),
            name: text(r, "name"),
        }),
        (None, Some(n)) => Ok(Attributes {
            verb: text(n, "verb"),
            resource_request: false,
            path: text(n, "path"),
            group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
        }),
        _ => Err(field::invalid(
            "spec.resourceAttributes",
            resource.unwrap_or(&Value::Null),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}
