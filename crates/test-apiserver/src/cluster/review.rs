//! `authorization.k8s.io/v1` SubjectAccessReview: "may this user do this?", answered by the
//! same authorizer chain that guards requests (kube-apiserver's `subjectaccessreview/rest.go`).
//! Nothing is stored; the review comes back with its `status`.

use super::{ApiRequest, ApiResponse, Cluster};
use crate::auth::{Attributes, User};
use crate::error::{ApiError, field};
use serde_json::{Value, json};

const GROUP: &str = "authorization.k8s.io";

impl Cluster {
    pub(super) fn subject_access_review(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let body = Self::decode(req)?;
        let spec = &body["spec"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
        };
        let user =
            User { name: spec["user"].as_str().unwrap_or_default().to_string(), groups: strings(&spec["groups"]) };
        let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
        let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
        let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
        // `ValidateSubjectAccessReviewSpec`.
        let mut causes = Vec::new();
        let attributes = match (resource, non_resource) {
            (Some(r), None) => Some(Attributes {
                verb: text(r, "verb"),
                resource_request: true,
                path: String::new(),
                group: text(r, "group"),
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
            }),
            (None, Some(n)) => Some(Attributes {
                verb: text(n, "verb"),
                resource_request: false,
                path: text(n, "path"),
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
            }),
            _ => {
                causes.push(field::invalid(
                    "spec.resourceAttributes",
                    resource.unwrap_or(&Value::Null),
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
                None
            }
        };
        if user.name.is_empty() && user.groups.is_empty() {
            causes.push(field::invalid("spec.user", &json!(""), "at least one of user or group must be specified"));
        }
        let Some(attributes) = attributes.filter(|_| causes.is_empty()) else {
            return Err(ApiError::invalid("SubjectAccessReview", GROUP, "", causes));
        };
        let status = match self.decide(&user, &attributes) {
            Ok(()) => json!({"allowed": true}),
            Err(reason) if reason.is_empty() => json!({"allowed": false}),
            Err(reason) => json!({"allowed": false, "reason": reason}),
        };
        let out = json!({
            "kind": "SubjectAccessReview", "apiVersion": format!("{GROUP}/v1"),
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        });
        Ok(ApiResponse::json(201, &out))
    }
}
