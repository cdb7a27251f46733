//! The fake cluster's state and its REST semantics, split the way kube-apiserver's registry
//! is: `routing` (paths to handlers), `list_watch` (reads and watches), `write` (the
//! request pipeline: decode + default → field manager → strategy → validation → storage),
//! `strategy` (per-kind create/update rules), `delete`, and `auth` (tokens, RBAC and `forbid`
//! rules: who may do what). The objects themselves are `crate::store`'s.

mod admission;
pub(crate) mod auth;
mod delete;
mod list_watch;
mod policy;
mod review;
mod routing;
mod scale;
mod strategy;
mod write;

pub use list_watch::WatchSpec;

use crate::conversion;
use crate::error::ApiError;
use crate::resources::{self, Resource};
pub(crate) use crate::store::ObjKey;
use crate::store::Store;
use auth::{IssuedToken, User};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// A request as the HTTP layer hands it over.
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: String,
    pub user: User,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub warnings: Vec<String>,
}

impl ApiResponse {
    pub fn json(status: u16, v: &Value) -> ApiResponse {
        ApiResponse {
            status,
            content_type: "application/json".into(),
            body: v.to_string().into_bytes(),
            warnings: Vec::new(),
        }
    }

    pub fn error(e: &ApiError) -> ApiResponse {
        ApiResponse::json(e.code, &e.to_status())
    }

    /// `Retry-After` seconds: only throttling (429) carries one.
    pub fn retry_after(&self) -> Option<u64> {
        (self.status == 429).then_some(1)
    }
}

/// One change, kept for watches.
pub struct Event {
    pub rv: u64,
    pub kind: &'static str,
    pub key: ObjKey,
    pub object: Value,
}

/// A `forbid` rule: requests matching it get 403 as if RBAC denied them.
#[derive(Clone, Debug)]
pub struct ForbidRule {
    pub verb: String,
    pub resource: String,
    pub namespace: Option<String>,
}

pub struct Cluster {
    rv: u64,
    objects: Store,
    builtins: Vec<Resource>,
    crd_resources: Vec<Resource>,
    events: VecDeque<Event>,
    /// The newest resourceVersion whose events are no longer kept (compacted).
    compacted: u64,
    /// Tokens issued by TokenRequest.
    pub(crate) tokens: HashMap<String, IssuedToken>,
    pub auto_ready: bool,
    pub forbidden: Vec<ForbidRule>,
    next_ip: u32,
    next_node_port: u32,
    /// Deployment uid → (last template, revision) for the revision annotation.
    revisions: HashMap<String, (Value, u64)>,
    /// Set while controllers run, so their own writes don't recurse.
    pub(crate) reconciling: bool,
    /// What the kubelet running a pod would answer for its log, by (namespace, pod): no
    /// kubelet runs here, so a test says (see `TestApiServer::set_pod_log`).
    pub(crate) pod_logs: HashMap<(String, String), String>,
    /// Discovery documents served, by path and aggregated discovery version (`routing`).
    discovery: HashMap<(String, Option<&'static str>), ApiResponse>,
}

fn meta_str<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or_default()
}

fn meta_mut(o: &mut Value) -> &mut Map<String, Value> {
    if !o["metadata"].is_object() {
        o["metadata"] = json!({});
    }
    o["metadata"].as_object_mut().expect("metadata object")
}

/// `Accept: …;as=PartialObjectMetadata[List]`: metadata-only responses.
fn metadata_only(req: &ApiRequest, v: Value) -> Value {
    let accept = req.accept.as_deref().unwrap_or_default();
    if !accept.contains("as=PartialObjectMetadata") {
        return v;
    }
    let strip = |o: &Value| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"].clone()});
    match v.get("items").and_then(Value::as_array) {
        Some(items) => {
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"].clone(),
            "items": items.iter().map(strip).collect::<Vec<_>>()})
        }
        None => strip(&v),
    }
}

impl Cluster {
    pub fn new() -> Cluster {
        let mut c = Cluster {
            rv: 100,
            objects: Store::default(),
            builtins: resources::builtins(),
            crd_resources: Vec::new(),
            events: VecDeque::new(),
            compacted: 0,
            tokens: HashMap::new(),
            auto_ready: true,
            forbidden: Vec::new(),
            next_ip: 10,
            next_node_port: 30000,
            revisions: HashMap::new(),
            reconciling: false,
            pod_logs: HashMap::new(),
            discovery: HashMap::new(),
        };
        let ns_res = c.find("", "v1", "namespaces").expect("namespaces").clone();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            c.system_create(&ns_res, obj, "kube-apiserver").expect("bootstrap namespace");
        }
        let svc_res = c.find("", "v1", "services").expect("services").clone();
        let kubernetes = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
        c.system_create(&svc_res, kubernetes, "kube-apiserver").expect("bootstrap service");
        // The bootstrap policy's superuser role, which every real cluster has (what `weaver
        // bootstrap`'s own EnvironmentSync is bound to).
        let role_res = c.find("rbac.authorization.k8s.io", "v1", "clusterroles").expect("clusterroles").clone();
        let cluster_admin = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]});
        c.system_create(&role_res, cluster_admin, "kube-apiserver").expect("bootstrap cluster role");
        c.reconcile();
        c
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn all_resources(&self) -> Vec<&Resource> {
        self.builtins.iter().chain(self.crd_resources.iter()).collect()
    }

    fn find(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.all_resources().into_iter().find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    fn storage_resource(&self, group: &str, plural: &str) -> Option<&Resource> {
        self.all_resources()
            .into_iter()
            .find(|r| r.group == group && r.plural == plural && r.version == r.storage_version)
    }

    fn key(res: &Resource, namespace: &str, name: &str) -> ObjKey {
        let (group, resource) = res.stored();
        ObjKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: if res.namespaced { namespace.to_string() } else { String::new() },
            name: name.to_string(),
        }
    }

    /// A stored object as served at `res`'s version: a custom resource converted as its CRD
    /// says (`crate::conversion`: another apiVersion, or its conversion webhook's answer).
    fn present(res: &Resource, obj: Value) -> Result<Value, ApiError> {
        Ok(Self::present_all(res, vec![obj])?.into_iter().next().expect("one object"))
    }

    /// Stored objects as served at `res`'s version, converted together: one webhook call per
    /// version they are stored at, none for those stored at `res`'s.
    fn present_all(res: &Resource, objects: Vec<Value>) -> Result<Vec<Value>, ApiError> {
        if res.stored_as.is_some() {
            return Ok(objects.into_iter().map(|event| conversion::event(event, true)).collect());
        }
        if !res.is_crd() {
            return Ok(objects);
        }
        let target = Some((res.schema(), res.type_id));
        conversion::convert(&res.group, &res.kind, res.conversion.as_deref(), objects, &res.version, target)
    }

    /// An object written at `res`'s version as it is stored: at the storage version.
    fn to_storage(&self, res: &Resource, obj: Value) -> Result<Value, ApiError> {
        if res.stored_as.is_some() {
            return Ok(conversion::event(obj, false));
        }
        if !res.is_crd() {
            return Ok(obj);
        }
        let target = self.storage_resource(&res.group, &res.plural).map(|t| (t.schema(), t.type_id));
        let webhook = res.conversion.as_deref();
        let stored = conversion::convert(&res.group, &res.kind, webhook, vec![obj], &res.storage_version, target)?;
        Ok(stored.into_iter().next().expect("one object"))
    }

    pub(crate) fn objects(&self) -> &Store {
        &self.objects
    }

    /// The keys changed since the controllers last looked.
    pub(crate) fn take_dirty(&mut self) -> BTreeSet<ObjKey> {
        self.objects.take_dirty()
    }

    /// Makes the next reconcile look at every object.
    pub(crate) fn mark_all_dirty(&mut self) {
        self.objects.mark_dirty(None);
    }

    pub(crate) fn resource_for(&self, key: &ObjKey) -> Option<Resource> {
        self.storage_resource(&key.group, &key.resource).cloned()
    }

    pub(crate) fn builtin(&self, group: &str, plural: &str) -> Resource {
        self.builtins.iter().find(|r| r.group == group && r.plural == plural).expect("built-in resource").clone()
    }

    /// Serves the resources of every Established CRD.
    /// Objects of a resource that becomes served again (its CRD was deleted
    /// without them and re-created) get another look from the controllers.
    pub(crate) fn refresh_crds(&mut self) {
        self.discovery.clear();
        let before: Vec<(String, String)> =
            self.crd_resources.iter().map(|r| (r.group.clone(), r.plural.clone())).collect();
        self.crd_resources = self
            .objects
            .of_resource("apiextensions.k8s.io", "customresourcedefinitions", None)
            .filter(|(_, o)| {
                o["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
            .flat_map(|(_, o)| resources::from_crd(o))
            .collect();
        let added: Vec<(String, String)> = self
            .crd_resources
            .iter()
            .map(|r| (r.group.clone(), r.plural.clone()))
            .filter(|gr| !before.contains(gr))
            .collect();
        for (group, plural) in &added {
            self.objects.mark_dirty(Some((group, plural)));
        }
    }

    pub(crate) fn revision(&mut self, uid: &str, template: &Value) -> u64 {
        let entry = self.revisions.entry(uid.to_string()).or_insert_with(|| (template.clone(), 1));
        if entry.0 != *template {
            entry.0 = template.clone();
            entry.1 += 1;
        }
        entry.1
    }
}
