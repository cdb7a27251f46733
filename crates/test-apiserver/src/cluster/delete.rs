//! Deletion: DELETE of one object or a collection, preconditions, propagation policy and
//! finalizers (graceful marking), and removal for good with its watch event.

use super::routing::Target;
use super::{ApiRequest, ApiResponse, Cluster, ObjKey, meta_mut, meta_str};
use crate::error::ApiError;
use crate::normalize::order_keys;
use crate::resources::Resource;
use crate::util;
use serde_json::{Value, json};

impl Cluster {
    pub(super) fn delete(&mut self, req: &ApiRequest, target: &Target, name: &str) -> Result<ApiResponse, ApiError> {
        let (res, ns) = (&target.res, target.ns.as_deref().unwrap_or_default());
        let key = Self::key(res, ns, name);
        let live = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        // A real server reads the object at the request's version before it deletes it: a
        // conversion that fails (a CRD's webhook) fails the delete, before anything changes.
        if res.conversion.is_some() {
            Self::present(res, live.clone())?;
        }
        let opts: Value =
            if req.body.is_empty() { json!({}) } else { serde_json::from_slice(&req.body).unwrap_or(json!({})) };
        let dry_run =
            req.param("dryRun") == Some("All") || opts["dryRun"].as_array().is_some_and(|d| d.contains(&json!("All")));
        if let Some(uid) = opts["preconditions"]["uid"].as_str()
            && uid != meta_str(&live, "uid")
        {
            return Err(ApiError::conflict(
                &res.gr(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&live, "uid")
                ),
            ));
        }
        if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str()
            && rv != meta_str(&live, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &res.gr(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&live, "resourceVersion")
                ),
            ));
        }
        let policy =
            req.param("propagationPolicy").or(opts["propagationPolicy"].as_str()).unwrap_or("Background").to_string();
        let (obj, code) = self.delete_object(&key, res, live, &policy, dry_run);
        let obj = if is_status(&obj) { obj } else { Self::present(res, obj)? };
        Ok(ApiResponse::json(code, &obj))
    }

    /// Deletes or marks for deletion; returns what the DELETE responds with: a `Status`, or
    /// the object as stored (to present at the request's version).
    pub(crate) fn delete_object(
        &mut self,
        key: &ObjKey,
        res: &Resource,
        live: Value,
        policy: &str,
        dry_run: bool,
    ) -> (Value, u16) {
        let mut obj = live.clone();
        let mut finalizers: Vec<Value> = obj["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        let extra = match policy {
            "Foreground" => Some("foregroundDeletion"),
            "Orphan" => Some("orphan"),
            _ => None,
        };
        if let Some(f) = extra
            && !finalizers.contains(&json!(f))
        {
            finalizers.push(json!(f));
        }
        let namespace = res.is("", "Namespace");
        if finalizers.is_empty() && !namespace {
            // Stores with ReturnDeletedObject answer with the object, the rest with a Status.
            let status = if res.is("", "Pod") || res.is("", "ServiceAccount") || res.is("", "PersistentVolumeClaim") {
                live
            } else {
                let mut details =
                    json!({"name": meta_str(&live, "name"), "kind": res.plural, "uid": meta_str(&live, "uid")});
                if !res.group.is_empty() {
                    details["group"] = json!(res.group);
                }
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
            };
            if !dry_run {
                self.remove(key);
                self.reconcile();
            }
            return (status, 200);
        }
        if live["metadata"].get("deletionTimestamp").is_some() {
            return (live, 200);
        }
        let meta = meta_mut(&mut obj);
        meta.insert("deletionTimestamp".into(), json!(util::now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), Value::Array(finalizers));
        }
        if namespace {
            obj["status"]["phase"] = json!("Terminating");
        }
        if dry_run {
            return (obj, 200);
        }
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        order_keys(&mut obj);
        self.objects.insert(key.clone(), obj.clone());
        self.record_event("MODIFIED", key, &obj);
        self.reconcile();
        (obj, 200)
    }

    pub(super) fn delete_collection(
        &mut self,
        req: &ApiRequest,
        res: &Resource,
        ns: Option<&str>,
    ) -> Result<ApiResponse, ApiError> {
        let (labels, fields) = Self::selectors(req, res)?;
        let opts: Value =
            if req.body.is_empty() { json!({}) } else { serde_json::from_slice(&req.body).unwrap_or(json!({})) };
        let dry_run =
            req.param("dryRun") == Some("All") || opts["dryRun"].as_array().is_some_and(|d| d.contains(&json!("All")));
        let policy =
            req.param("propagationPolicy").or(opts["propagationPolicy"].as_str()).unwrap_or("Background").to_string();
        let targets: Vec<(ObjKey, Value)> =
            self.matching(res, ns, &labels, &fields).map(|(k, v)| (k.clone(), v.clone())).collect();
        // Listed at the request's version before anything is deleted, as a real server does: a
        // conversion that fails deletes nothing.
        let listed = Self::present_all(res, targets.iter().map(|(_, live)| live.clone()).collect())?;
        let mut items = Vec::with_capacity(listed.len());
        // The objects only marked for deletion (finalizers), shown as they are now.
        let mut marked = Vec::new();
        for ((key, live), shown) in targets.into_iter().zip(listed) {
            let o = self.delete_object(&key, res, live, &policy, dry_run).0;
            if is_status(&o) {
                items.push(shown);
            } else {
                marked.push(items.len());
                items.push(o);
            }
        }
        let now = Self::present_all(res, marked.iter().map(|&i| items[i].clone()).collect())?;
        for (i, o) in marked.into_iter().zip(now) {
            items[i] = o;
        }
        if !res.is_crd() {
            for m in items.iter_mut().filter_map(Value::as_object_mut) {
                m.remove("kind");
                m.remove("apiVersion");
            }
        }
        let list = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {"resourceVersion": self.rv.to_string()}, "items": items});
        Ok(ApiResponse::json(200, &list))
    }

    /// Removes an object for good, with a DELETED event.
    pub(crate) fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.record_event("DELETED", key, &obj);
        if key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions" {
            self.refresh_crds();
        }
        Some(obj)
    }
}

/// Whether a delete answered with a `Status` rather than the object (a custom resource's
/// apiVersion always has a group, so none of them is taken for one).
fn is_status(o: &Value) -> bool {
    o["kind"] == "Status" && o["apiVersion"] == "v1"
}
