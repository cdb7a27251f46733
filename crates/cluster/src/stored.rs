//! Stored versions migration, as the Flux Operator does after an upgrade and Kubernetes'
//! storage version migrator does: every object of a CRD written again, unchanged, so that the API
//! server stores it at the CRD's storage version (it rewrites an object whose stored bytes are of
//! another version, however equal the object), and then `status.storedVersions` narrowed to that
//! version alone, so that an older version can later be removed from the CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use weaver_core::error::{Error, Result};

use crate::error::api_message;

/// What a migration found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub crd: String,
    /// The version every object is stored at now.
    pub storage: String,
    /// `status.storedVersions` before; equal to `[storage]` when nothing was to do.
    pub before: Vec<String>,
    /// Objects written again (or, in a dry run, to write).
    pub rewritten: usize,
}

impl Migrated {
    pub fn changed(&self) -> bool {
        self.before != [self.storage.clone()]
    }
}

/// Migrates the objects of CRD `name` to its storage version; None when the CRD is not there.
/// Objects deleted meanwhile are skipped, and one changed meanwhile is read again (its writer
/// stored it at the storage version already, but the write is cheap and sure). `dry_run`: the
/// objects are counted, nothing is written. `unconverted` tells an object the API server served
/// at the storage version without converting it (its conversion webhook not in effect yet): the
/// migration stops there, naming it, rather than store it in a shape its version does not have.
pub async fn migrate_stored_versions(
    client: &kube::Client,
    name: &str,
    dry_run: bool,
    unconverted: &(dyn Fn(&serde_json::Value) -> bool + Sync),
) -> Result<Option<Migrated>> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let failed = |doing: &str, err: kube::Error| Error::new(format!("{doing}: {}", api_message(&err)));
    let Some(crd) =
        crds.get_opt(name).await.map_err(|e| failed(&format!("reading CustomResourceDefinition {name}"), e))?
    else {
        return Ok(None);
    };
    let storage = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
        .ok_or_else(|| Error::new(format!("CustomResourceDefinition {name} has no storage version")))?;
    let before = crd.status.as_ref().and_then(|s| s.stored_versions.clone()).unwrap_or_default();
    let mut migrated = Migrated { crd: name.to_string(), storage: storage.clone(), before, rewritten: 0 };
    if !migrated.changed() {
        return Ok(Some(migrated));
    }
    let resource = ApiResource {
        group: crd.spec.group.clone(),
        version: storage.clone(),
        api_version: format!("{}/{storage}", crd.spec.group),
        kind: crd.spec.names.kind.clone(),
        plural: crd.spec.names.plural.clone(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.map_err(|e| failed(&format!("listing {}", resource.plural), e))?;
        for object in page.items {
            if serde_json::to_value(&object).is_ok_and(|value| unconverted(&value)) {
                return Err(Error::new(format!(
                    "{} {}{} is served at {storage} unconverted: the API server does not call the conversion \
                     webhook of CustomResourceDefinition {name} yet; {} written so far, storedVersions left as they are",
                    resource.kind,
                    object.metadata.namespace.as_ref().map(|ns| format!("{ns}/")).unwrap_or_default(),
                    object.metadata.name.as_deref().unwrap_or_default(),
                    if dry_run { 0 } else { migrated.rewritten },
                ))
                .with_help(
                    "the controller sets the conversion when it starts (`weaver check` shows it): run again once it has",
                ));
            }
            migrated.rewritten += if dry_run { 1 } else { rewrite(client, &resource, object).await? };
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    if dry_run {
        return Ok(Some(migrated));
    }
    // Only now: an object left at an older version would be unreadable once it is removed.
    let status = serde_json::json!({"status": {"storedVersions": [storage]}});
    crds.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|e| failed(&format!("narrowing the storedVersions of CustomResourceDefinition {name}"), e))?;
    Ok(Some(migrated))
}

/// Writes `object` again unchanged: 1 when written, 0 when it was deleted meanwhile.
async fn rewrite(client: &kube::Client, resource: &ApiResource, mut object: DynamicObject) -> Result<usize> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let namespace = object.metadata.namespace.clone();
    let api: Api<DynamicObject> = match &namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let at = format!("{} {}{name}", resource.kind, namespace.map(|ns| format!("{ns}/")).unwrap_or_default());
    for _ in 0..5 {
        match api.replace(&name, &PostParams::default(), &object).await {
            Ok(_) => return Ok(1),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(0),
            Err(kube::Error::Api(status)) if status.code == 409 => match api.get_opt(&name).await {
                Ok(Some(live)) => object = live,
                Ok(None) => return Ok(0),
                Err(err) => return Err(Error::new(format!("reading {at} again: {}", api_message(&err)))),
            },
            Err(err) => return Err(Error::new(format!("writing {at} at its storage version: {}", api_message(&err)))),
        }
    }
    Err(Error::new(format!("writing {at} at its storage version: it kept changing (5 conflicts)")))
}
