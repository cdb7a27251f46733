//! `weaver.example.com/v1alpha1`, served beside `v1beta1` and deprecated: its schemas, frozen as
//! 0.1.0 served them (`environmentsyncs.json`, `configmapsyncs.json`: a version's schema never
//! changes once released), and the conversion between it and `v1beta1`, which the controller's
//! conversion webhook answers with and `weaver migrate -f` rewrites documents with.
//!
//! What changed in `v1beta1`:
//! - EnvironmentSync `status.imageUpdates.images` and `.changes` are objects, not sentences
//!   (`dev registry.example/web 1.5.0@sha256:…` is `{environment, image, newest}`);
//! - the values of `status.environments[].result`, `status.history[].result`,
//!   `status.promotion.targets[].gates[].gate` and ConfigMapSync `status.targets[].reason` are
//!   enumerated in the schema (the same strings, so they convert unchanged).
//!
//! - EnvironmentSync `spec.source.verify`, the `signingKey` of `spec.promotion` and
//!   `spec.imageUpdates`, `spec.chartCredentials`, `spec.source.oci` and `spec.previews` are
//!   new, as are `status.artifact`, `status.previews` and `status.history[].signedBy`. `v1alpha1`'s frozen schema has no
//!   place for them, so down to it they are kept in the annotation [`V1BETA1_FIELDS`] and up
//!   from it put back: an update through `v1alpha1` that keeps the object's metadata (an edit, a
//!   patch, an apply) never turns a verification off, or loses credentials, by leaving out what
//!   it cannot say. (An EnvironmentSync of an OCI artifact has no `spec.source.url` to show at
//!   `v1alpha1`, whose schema requires one: it reads there, but cannot be written back there.)
//!
//! Everything else is equal in both. A conversion is lossless both ways for every value the
//! controller writes; a sentence of `v1alpha1` that does not follow the form the controller
//! writes it in (which only another writer of the status could put there) is parsed as far as
//! it goes, and the controller's next status write replaces it.

use serde_json::{Map, Value, json};

use crate::GROUP;
use crate::environment_sync::{ImagePinChange, NewestImage};

pub const VERSION: &str = "v1alpha1";
/// The storage version, which every object is migrated to.
pub const STORAGE_VERSION: &str = "v1beta1";

/// The `v1alpha1` entry of the EnvironmentSync CRD's `spec.versions`: served, deprecated.
pub fn environment_sync_version() -> Value {
    deprecated(include_str!("environmentsyncs.json"), "EnvironmentSync")
}

/// The `v1alpha1` entry of the ConfigMapSync CRD's `spec.versions`: served, deprecated.
pub fn config_map_sync_version() -> Value {
    deprecated(include_str!("configmapsyncs.json"), "ConfigMapSync")
}

fn deprecated(frozen: &str, kind: &str) -> Value {
    let mut version: Value = serde_json::from_str(frozen).expect("a frozen schema is JSON");
    version["storage"] = json!(false);
    version["deprecated"] = json!(true);
    version["deprecationWarning"] = json!(format!(
        "{GROUP}/{VERSION} {kind} is deprecated and will be removed in a later minor release; use \
         {GROUP}/{STORAGE_VERSION} (`weaver migrate -f DIR` rewrites manifests)"
    ));
    version
}

/// Where a `v1alpha1` EnvironmentSync keeps the fields only `v1beta1` has: a JSON object of
/// each field's JSON pointer and value.
pub const V1BETA1_FIELDS: &str = "weaver.example.com/v1beta1-fields";

/// The EnvironmentSync fields `v1alpha1` has no place for, as JSON pointers (and each history
/// entry's `signedBy`: [`newer_fields`]).
const NEWER_FIELDS: [&str; 8] = [
    "/spec/source/verify",
    "/spec/promotion/signingKey",
    "/spec/imageUpdates/signingKey",
    "/spec/chartCredentials",
    "/spec/source/oci",
    "/status/artifact",
    "/spec/previews",
    "/status/previews",
];

/// The pointers of the fields `v1alpha1` has no place for in `object`: [`NEWER_FIELDS`], and
/// the `signedBy` of each of its history entries.
fn newer_fields(object: &Value) -> Vec<String> {
    let entries = object.pointer("/status/history").and_then(Value::as_array).map_or(0, Vec::len);
    let signers = (0..entries).map(|entry| format!("/status/history/{entry}/signedBy"));
    NEWER_FIELDS.iter().map(ToString::to_string).chain(signers).collect()
}

/// `object` (an EnvironmentSync or ConfigMapSync of either version) at `desired`
/// (`weaver.example.com/v1beta1` or `…/v1alpha1`). Only its apiVersion and the fields named in
/// the module's documentation change; of the metadata, only the annotation [`V1BETA1_FIELDS`].
pub fn convert(mut object: Value, desired: &str) -> Result<Value, String> {
    let from = object["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let version = |api_version: &str| {
        api_version
            .strip_prefix(GROUP)
            .and_then(|v| v.strip_prefix('/'))
            .filter(|v| [VERSION, STORAGE_VERSION].contains(v))
            .map(str::to_string)
            .ok_or_else(|| format!("{kind} {api_version:?} is not a version weaver serves ({GROUP}/{VERSION}, {GROUP}/{STORAGE_VERSION})"))
    };
    let (from_version, to_version) = (version(&from)?, version(desired)?);
    if !["EnvironmentSync", "ConfigMapSync"].contains(&kind.as_str()) {
        return Err(format!("kind {kind:?} is not one weaver converts (EnvironmentSync, ConfigMapSync)"));
    }
    if from_version != to_version && kind == "EnvironmentSync" {
        match to_version.as_str() {
            STORAGE_VERSION => newer_fields_up(&mut object),
            _ => newer_fields_down(&mut object),
        }
        if let Some(updates) = object.pointer_mut("/status/imageUpdates").and_then(Value::as_object_mut) {
            match to_version.as_str() {
                STORAGE_VERSION => image_updates_up(updates),
                _ => image_updates_down(updates),
            }
        }
    }
    object["apiVersion"] = json!(desired);
    Ok(object)
}

/// Whether `object`, read at the storage version, still holds what only `v1alpha1` says (the
/// sentences of an EnvironmentSync's `status.imageUpdates`): what the API server serves while it
/// changes the apiVersion alone, its conversion webhook not set or not yet in effect. Written
/// back, it would be stored in a shape its version does not have.
pub fn holds_older_fields(object: &Value) -> bool {
    let updates = object.pointer("/status/imageUpdates");
    ["images", "changes"].iter().any(|key| {
        let items = updates.and_then(|u| u.get(*key)).and_then(Value::as_array);
        items.is_some_and(|items| items.iter().any(Value::is_string))
    })
}

/// The fields only `v1beta1` has, moved into the annotation [`V1BETA1_FIELDS`].
fn newer_fields_down(object: &mut Value) {
    let mut kept = Map::new();
    for pointer in newer_fields(object) {
        let (parent, field) = pointer.rsplit_once('/').expect("a pointer has a parent");
        if let Some(value) = object.pointer_mut(parent).and_then(Value::as_object_mut).and_then(|p| p.remove(field)) {
            kept.insert(pointer, value);
        }
    }
    if kept.is_empty() {
        return;
    }
    let metadata =
        object.as_object_mut().and_then(|o| o.entry("metadata").or_insert_with(|| json!({})).as_object_mut());
    if let Some(metadata) = metadata {
        let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
        annotations[V1BETA1_FIELDS] = json!(Value::Object(kept).to_string());
    }
}

/// The fields the annotation [`V1BETA1_FIELDS`] keeps, put back where the object still has
/// their parent and has not set them itself, and the annotation removed.
fn newer_fields_up(object: &mut Value) {
    let Some(kept) = remove_annotation(object) else { return };
    let kept: Map<String, Value> = kept.as_str().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
    let newer = newer_fields(object);
    for (pointer, value) in kept {
        let Some((parent, field)) = pointer.rsplit_once('/').filter(|_| newer.contains(&pointer)) else {
            continue;
        };
        if let Some(parent) = object.pointer_mut(parent).and_then(Value::as_object_mut) {
            parent.entry(field).or_insert(value);
        }
    }
}

/// Removes the annotation [`V1BETA1_FIELDS`] (and the annotations, when it was the only one):
/// what it held.
fn remove_annotation(object: &mut Value) -> Option<Value> {
    let annotations = object.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)?;
    let kept = annotations.remove(V1BETA1_FIELDS)?;
    if annotations.is_empty()
        && let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
    Some(kept)
}

/// The sentences of `v1alpha1` as `v1beta1`'s objects.
fn image_updates_up(updates: &mut Map<String, Value>) {
    map_items(updates, "images", |item| serde_json::to_value(NewestImage::from_sentence(item.as_str()?)).ok());
    map_items(updates, "changes", |item| serde_json::to_value(ImagePinChange::from_sentence(item.as_str()?)).ok());
}

/// `v1beta1`'s objects as the sentences `v1alpha1` said them in (their `Display`).
fn image_updates_down(updates: &mut Map<String, Value>) {
    map_items(updates, "images", |item| {
        Some(json!(serde_json::from_value::<NewestImage>(item.clone()).ok()?.to_string()))
    });
    map_items(updates, "changes", |item| {
        Some(json!(serde_json::from_value::<ImagePinChange>(item.clone()).ok()?.to_string()))
    });
}

/// Each item of the list `key` mapped, items `convert` cannot read dropped.
fn map_items(object: &mut Map<String, Value>, key: &str, convert: impl Fn(&Value) -> Option<Value>) {
    if let Some(Value::Array(items)) = object.get_mut(key) {
        *items = items.iter().filter_map(&convert).collect();
    }
}

#[cfg(test)]
mod tests;
