//! The `scale` subresource of Deployments, ReplicaSets, StatefulSets and ReplicationControllers
//! (what `kubectl scale` and autoscalers write): an `autoscaling/v1` Scale read from the object,
//! whose `spec.replicas` written back changes the object's, recorded in its managed fields with
//! `subresource: scale`, as kube-apiserver's `ScaleREST` does.

use super::routing::Target;
use super::write::{manager_from_user_agent, without_managed_fields};
use super::{ApiRequest, ApiResponse, Cluster, meta_mut, meta_str};
use crate::error::ApiError;
use crate::managed::{FieldManager, Managed, Op};
use crate::patch;
use crate::resources::Resource;
use crate::util;
use serde_json::{Value, json};

/// The Scale of `object`.
fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut metadata = json!({"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                              "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]});
    if let Some(m) = metadata.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    let mut status = json!({"replicas": object["status"]["replicas"].as_i64().unwrap_or(0)});
    let selector = &object["spec"]["selector"];
    if selector.is_object() {
        // A ReplicationController's selector is a plain map of labels.
        let selector = match selector.get("matchLabels").or(selector.get("matchExpressions")) {
            Some(_) => selector.clone(),
            None => json!({"matchLabels": selector}),
        };
        status["selector"] = json!(super::policy::selector_text(&selector));
    }
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": metadata,
           "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)}, "status": status})
}

impl Cluster {
    pub(super) fn get_scale(&self, res: &Resource, ns: &str, name: &str) -> Result<ApiResponse, ApiError> {
        let object = self.objects.get(&Self::key(res, ns, name)).ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        Ok(ApiResponse::json(200, &scale_of(&Self::present(res, object.clone())?)))
    }

    /// PUT or PATCH (merge, JSON or strategic) of a Scale: the object's `spec.replicas` set to
    /// the new Scale's, answered with the Scale of the object stored.
    pub(super) fn write_scale(
        &mut self,
        req: &ApiRequest,
        target: &Target,
        name: &str,
    ) -> Result<ApiResponse, ApiError> {
        let (res, ns) = (&target.res, target.ns.clone().unwrap_or_default());
        let key = Self::key(res, &ns, name);
        let live = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        let live = Self::present(res, live)?;
        let current = scale_of(&live);
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the Scale: {e}")))?;
        let media = req.content_type.as_deref().unwrap_or_default().split(';').next().unwrap_or_default().trim();
        let scale = match (req.method.as_str(), media) {
            ("PUT", _) => body,
            (_, "application/merge-patch+json" | "application/strategic-merge-patch+json") => {
                patch::merge_patch(&current, &body)
            }
            (_, "application/json-patch+json") => {
                patch::json_patch(&current, &body).map_err(|_| ApiError::generic(422))?
            }
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
                ));
            }
        };
        let rv = meta_str(&scale, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&live, "resourceVersion") {
            return Err(ApiError::stale(&res.gr(), name));
        }
        let replicas = match &scale["spec"]["replicas"] {
            Value::Null => 0,
            value => value.as_i64().ok_or_else(|| ApiError::bad_request("spec.replicas: expected an integer"))?,
        };
        if replicas < 0 {
            let cause =
                crate::error::field::invalid("spec.replicas", &json!(replicas), "must be greater than or equal to 0");
            return Err(ApiError::invalid("Scale", "autoscaling", name, vec![cause]));
        }
        let base = without_managed_fields(&live);
        let mut object = base.clone();
        object["spec"]["replicas"] = json!(replicas);
        let manager = match req.param("fieldManager") {
            Some(m) => m.to_string(),
            None => manager_from_user_agent(&req.user_agent),
        };
        let now = util::now();
        let op = Op { manager: &manager, api_version: res.api_version(), subresource: "scale", now: &now };
        let mut managed = Managed::decode(live["metadata"].get("managedFields"));
        FieldManager { schema: res.schema(), ty: res.type_id }.update(&base, &object, &mut managed, &op)?;
        // kube-apiserver 1.32 records the scale subresource's entry without a time.
        for entry in managed.entries.iter_mut().filter(|e| e.subresource == "scale") {
            entry.time = None;
        }
        self.strategy(res, Some(&live), &mut object, &now);
        meta_mut(&mut object).remove("managedFields");
        let dry_run = req.param("dryRun") == Some("All");
        let (stored, _) = self.store_with_managed(res, dry_run, key, Some(live), object, &managed)?;
        Ok(ApiResponse::json(200, &scale_of(&Self::present(res, stored)?)))
    }
}
