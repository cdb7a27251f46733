//! Single-object requests apply needs besides server-side apply: reading one object,
//! deleting, and relabelling.

use kube::api::{DeleteParams, Patch, PatchParams, PropagationPolicy};
use serde_json::Value;

use super::retry::GaveUp;
use super::{Cluster, ServedKind, object_value};
use weaver_core::error::Result;
use weaver_core::manifest::MANAGER;

/// What a deletion found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// It was already gone: the goal of a delete is reached either way.
    AlreadyGone,
}

impl Cluster {
    /// The object, or None when it does not exist.
    pub async fn get(&self, served: &ServedKind, namespace: Option<&str>, name: &str) -> Result<Option<Value>> {
        let doing = format!("reading {} {}", served.resource_name(), place(namespace, name));
        let api = self.api(served, namespace);
        match self.retry.run(|| api.get_opt(name)).await {
            Ok(found) => found.map(|object| object_value(object, &served.resource)).transpose(),
            Err(gave_up) => Err(gave_up.into_error(&doing, &self.info)),
        }
    }

    /// Deletes the object, letting the garbage collector remove its dependents in the
    /// background (what `kubectl delete` and `kubectl apply --prune` do).
    pub async fn delete(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<Deleted> {
        let doing = format!("deleting {} {}", served.resource_name(), place(namespace, name));
        let params = DeleteParams {
            dry_run,
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let api = self.api(served, namespace);
        // A retried delete whose first attempt landed answers 404: the object is gone either way.
        match self.retry.run(|| api.delete(name, &params)).await {
            Ok(_) => {
                if !dry_run {
                    self.wrote(served, namespace, name, None);
                }
                Ok(Deleted::Deleted)
            }
            Err(GaveUp { error: kube::Error::Api(status), .. }) if status.code == 404 => Ok(Deleted::AlreadyGone),
            Err(gave_up) => Err(gave_up.into_error(&doing, &self.info)),
        }
    }

    /// The metadata of every object of `served` in `namespace` that `label_selector` selects:
    /// one LIST (`PartialObjectMetadataList`), for objects whose content weaver must not read
    /// (Helm's release records hold the release's values).
    pub async fn list_metadata(
        &self,
        served: &ServedKind,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Value>> {
        let doing = format!("listing {} in namespace {namespace}", served.resource_name());
        let api = self.api(served, Some(namespace));
        let params = kube::api::ListParams::default().labels(label_selector);
        let list = self
            .retry
            .run(|| api.list_metadata(&params))
            .await
            .map_err(|gave_up| gave_up.into_error(&doing, &self.info))?;
        list.items
            .into_iter()
            .map(|item| {
                serde_json::to_value(item).map_err(|err| {
                    weaver_core::Error::new(format!("{doing}: cannot read an object the server sent: {err}"))
                })
            })
            .collect()
    }

    /// Sets labels on an object with a merge patch (the object must exist).
    pub async fn set_labels(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        name: &str,
        labels: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        let patch = serde_json::json!({ "metadata": { "labels": labels } });
        self.merge_patch(served, namespace, name, &patch, "labelling").await.map(|_| ())
    }

    /// Changes an object with a JSON merge patch (the object must exist), as weaver's field
    /// manager; `doing` (`labelling`) starts an error's message. The object as patched.
    pub async fn merge_patch(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        doing: &str,
    ) -> Result<Value> {
        let doing = format!("{doing} {} {}", served.resource_name(), place(namespace, name));
        let api = self.api(served, namespace);
        let params = PatchParams { field_manager: Some(MANAGER.to_string()), ..PatchParams::default() };
        let patch = Patch::Merge(patch);
        let patched = self.retry.run(|| api.patch(name, &params, &patch)).await;
        let patched = patched.map_err(|gave_up| gave_up.into_error(&doing, &self.info))?;
        let patched = object_value(patched, &served.resource)?;
        self.wrote(served, namespace, name, Some(&patched));
        Ok(patched)
    }
}

/// `shop/web`, or `web` for a cluster-scoped object.
fn place(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}
