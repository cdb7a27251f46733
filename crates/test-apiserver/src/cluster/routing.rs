//! Routing: a request's path to discovery, or to a resource, namespace, name and subresource,
//! then to the verb's handler (kube-apiserver's `endpoints/installer.go`), and the
//! ServiceAccount `token` subresource (TokenRequest). Authorization is `auth`'s.

use super::auth::{self, IssuedToken};
use super::{ApiRequest, ApiResponse, Cluster, meta_str, metadata_only};
use crate::discovery;
use crate::error::ApiError;
use crate::resources::Resource;
use crate::util;
use serde_json::{Value, json};

/// A routed resource request.
pub(super) struct Target {
    pub(super) res: Resource,
    pub(super) ns: Option<String>,
    pub(super) name: Option<String>,
    pub(super) sub: Option<String>,
}

impl Cluster {
    pub fn handle(&mut self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let get_only = |r: Result<ApiResponse, ApiError>| {
            if req.method == "GET" {
                r
            } else {
                Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"))
            }
        };
        let aggregated = discovery::aggregated_version(req.accept.as_deref());
        match segs.as_slice() {
            ["version"] => get_only(Ok(ApiResponse::json(
                200,
                // The release weaver is checked against for real (1.32): charts reading
                // `.Capabilities.KubeVersion` from the cluster see the same on both.
                &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.13-weaver-fake", "gitCommit": "", "gitTreeState": "clean",
                    "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}),
            ))),
            ["healthz" | "livez" | "readyz"] | ["livez" | "readyz", "ping"] => get_only(Ok(ApiResponse {
                status: 200,
                content_type: "text/plain; charset=utf-8".into(),
                body: b"ok".to_vec(),
                warnings: Vec::new(),
            })),
            ["api" | "apis"]
            | ["openapi", "v3"]
            | ["openapi", "v3", "api", "v1"]
            | ["openapi", "v3", "apis", _, _]
            | ["api", "v1"]
            | ["apis", _]
            | ["apis", _, _] => get_only(self.discovery_document(&req.path, &segs, aggregated)),
            ["api", "v1", rest @ ..] => self.resource_request(req, "", "v1", rest),
            ["apis", g, v, rest @ ..] => self.resource_request(req, g, v, rest),
            _ => Err(ApiError::no_route()),
        }
    }

    /// A discovery document, kept until the CRDs change (`refresh_crds`): every client reads
    /// discovery first, and building it again for each took a large part of the fake's CPU.
    fn discovery_document(
        &mut self,
        path: &str,
        segs: &[&str],
        aggregated: Option<&'static str>,
    ) -> Result<ApiResponse, ApiError> {
        let key = (path.to_string(), aggregated);
        if let Some(kept) = self.discovery.get(&key) {
            return Ok(kept.clone());
        }
        let document = match (segs, aggregated) {
            (["api" | "apis"], Some(version)) => {
                let list = discovery::aggregated(&self.all_resources(), segs[0] == "api", version);
                ApiResponse {
                    content_type: discovery::aggregated_content_type(version),
                    ..ApiResponse::json(200, &list)
                }
            }
            _ => {
                let all = self.all_resources();
                let document = match segs {
                    ["api"] => Some(discovery::api_versions()),
                    ["apis"] => Some(discovery::api_group_list(&all)),
                    ["openapi", "v3"] => Some(discovery::openapi_v3_index(&all)),
                    ["openapi", "v3", "api", "v1"] => discovery::openapi_v3_group_version(&all, "", "v1"),
                    ["openapi", "v3", "apis", g, v] => discovery::openapi_v3_group_version(&all, g, v),
                    ["api", "v1"] => discovery::api_resource_list(&all, "", "v1"),
                    ["apis", g] => discovery::api_group(&all, g),
                    ["apis", g, v] => discovery::api_resource_list(&all, g, v),
                    _ => None,
                };
                ApiResponse::json(200, &document.ok_or_else(ApiError::no_route)?)
            }
        };
        self.discovery.insert(key, document.clone());
        Ok(document)
    }

    /// Resolves `…/[namespaces/<ns>/]<plural>[/<name>[/<sub>]]`.
    pub(super) fn route(&self, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
        let namespace_sub = rest.len() == 3 && rest[0] == "namespaces" && matches!(rest[2], "status" | "finalize");
        let (ns, rest) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespace_sub {
            (Some(rest[1].to_string()), &rest[2..])
        } else {
            (None, rest)
        };
        let (plural, name, sub) = match rest {
            [p] => (*p, None, None),
            [p, n] => (*p, Some(n.to_string()), None),
            [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
            _ => return Err(ApiError::no_route()),
        };
        let res = self.find(group, version, plural).ok_or_else(ApiError::no_route)?.clone();
        if (!res.namespaced && ns.is_some()) || (res.namespaced && ns.is_none() && name.is_some()) {
            return Err(ApiError::no_route());
        }
        if let Some(s) = &sub {
            let ok = (s == "status" && res.status_subresource)
                || (s == "token" && res.is("", "ServiceAccount"))
                || (s == "log" && res.is("", "Pod"))
                || (s == "scale" && res.has_scale());
            if !ok {
                return Err(ApiError::no_route());
            }
        }
        Ok(Target { res, ns, name, sub })
    }

    fn resource_request(
        &mut self,
        req: &ApiRequest,
        group: &str,
        version: &str,
        rest: &[&str],
    ) -> Result<ApiResponse, ApiError> {
        let target = self.route(group, version, rest)?;
        let Target { res, ns, name, sub } = &target;
        let ns_str = ns.clone().unwrap_or_default();
        let review = ["SubjectAccessReview", "SelfSubjectAccessReview", "TokenReview", "SelfSubjectReview"]
            .into_iter()
            .find(|kind| {
                res.kind == *kind && (res.group == "authorization.k8s.io" || res.group == "authentication.k8s.io")
            });
        if let Some(kind) = review {
            return match (req.method.as_str(), &name) {
                ("POST", None) => self.review(kind, req),
                _ => {
                    Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"))
                }
            };
        }
        match (req.method.as_str(), name, sub.as_deref()) {
            ("GET", None, None) => self.list(req, res, ns.as_deref()),
            ("GET", Some(n), None | Some("status")) => {
                let obj =
                    self.objects.get(&Self::key(res, &ns_str, n)).ok_or_else(|| ApiError::not_found(&res.gr(), n))?;
                Ok(ApiResponse::json(200, &metadata_only(req, Self::present(res, obj.clone())?)))
            }
            ("GET", Some(n), Some("scale")) => self.get_scale(res, &ns_str, n),
            ("PUT" | "PATCH", Some(n), Some("scale")) => self.write_scale(req, &target, n),
            ("POST", None, None) => self.create(req, res, ns.clone()),
            ("POST", Some(n), Some("token")) => self.token_request(req, &target, n),
            // No kubelet runs pods, so none has a node or a log: kube-apiserver answers 204 No
            // Content for such a pod's log, unless a test said what its kubelet would answer
            // (the last `tailLines` lines, as the kubelet cuts them).
            ("GET", Some(n), Some("log")) if res.is("", "Pod") => {
                self.objects.get(&Self::key(res, &ns_str, n)).ok_or_else(|| ApiError::not_found(&res.gr(), n))?;
                let Some(log) = self.pod_logs.get(&(ns_str.clone(), n.to_string())) else {
                    return Ok(ApiResponse {
                        status: 204,
                        content_type: "text/plain".into(),
                        body: Vec::new(),
                        warnings: Vec::new(),
                    });
                };
                let lines: Vec<&str> = log.lines().collect();
                let tail = req.param("tailLines").and_then(|t| t.parse::<usize>().ok()).unwrap_or(lines.len());
                let kept = &lines[lines.len().saturating_sub(tail)..];
                let body = kept.iter().map(|line| format!("{line}\n")).collect::<String>().into_bytes();
                Ok(ApiResponse { status: 200, content_type: "text/plain".into(), body, warnings: Vec::new() })
            }
            ("PUT", Some(n), _) => self.update(req, &target, n),
            ("PATCH", Some(n), _) => self.patch(req, &target, n),
            ("DELETE", Some(n), None) => self.delete(req, &target, n),
            ("DELETE", None, None) => self.delete_collection(req, res, ns.as_deref()),
            _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
        }
    }

    /// `serviceaccounts/<name>/token`: TokenRequest. The token authenticates as
    /// the ServiceAccount until it expires or the ServiceAccount (by uid) is gone.
    fn token_request(&mut self, req: &ApiRequest, target: &Target, name: &str) -> Result<ApiResponse, ApiError> {
        let (res, ns) = (&target.res, target.ns.as_deref().unwrap_or_default());
        let body = Self::decode(req)?;
        let expiration = match &body["spec"]["expirationSeconds"] {
            Value::Null => 3600,
            v => v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!("spec.expirationSeconds: expected an integer, got {v}"))
            })?,
        };
        // Validation comes before the ServiceAccount lookup, as in `TokenREST.Create`.
        let detail = if expiration < 600 {
            Some("may not specify a duration less than 10 minutes")
        } else if expiration > 1 << 32 {
            Some("may not specify a duration larger than 2^32 seconds")
        } else {
            None
        };
        if let Some(detail) = detail {
            let cause = crate::error::field::invalid("spec.expirationSeconds", &json!(expiration), detail);
            return Err(ApiError::invalid("TokenRequest", "authentication.k8s.io", "", vec![cause]));
        }
        let sa = self.objects.get(&Self::key(res, ns, name)).ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        let uid = meta_str(sa, "uid").to_string();
        let audiences: Vec<String> = match body["spec"]["audiences"].as_array() {
            Some(a) if !a.is_empty() => a.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => vec![auth::AUDIENCE.to_string()],
        };
        let token = auth::random_token();
        let expires_at = util::in_seconds(expiration);
        let expires = expires_at.parse().map_err(|e| ApiError::internal(format!("token expiry: {e}")))?;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                namespace: ns.into(),
                name: name.into(),
                uid,
                expires,
                audiences: audiences.clone(),
                id: util::uid(),
            },
        );
        let out = json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": util::now()},
            "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": body["spec"]["boundObjectRef"].clone()},
            "status": {"token": token, "expirationTimestamp": expires_at},
        });
        Ok(ApiResponse::json(201, &out))
    }
}
