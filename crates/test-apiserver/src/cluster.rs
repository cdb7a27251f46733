//! The fake cluster's state and its REST semantics: routing, reads, writes
//! (create / update / patch / server-side apply), deletes and the request
//! pipeline that mirrors kube-apiserver's (decode + default → field manager →
//! strategy → validation → storage).

use crate::auth::{self, IssuedToken, User};
use crate::discovery;
use crate::error::{ApiError, Cause, GroupResource};
use crate::managed::{FieldManager, Managed, Op};
use crate::normalize::{Normalizer, order_keys, zero_object};
use crate::patch;
use crate::resources::{self, Generation, Resource};
use crate::selector::{FieldSelector, LabelSelector, supported_fields};
use crate::store::Store;
use crate::util;
use crate::validate;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// How many events watches can resume from, like the apiserver's watch cache
/// window: a watch from an older resourceVersion gets 410 Gone.
const WATCH_HISTORY: usize = 10_000;

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

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
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

/// A routed resource request.
struct Target {
    res: Resource,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// What a watch request asks for.
pub struct WatchSpec {
    pub res: Resource,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub since: u64,
    pub timeout_seconds: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Per-request context for writes.
struct Ctx {
    res: Resource,
    namespace: Option<String>,
    dry_run: bool,
    manager: String,
    validation: FieldValidation,
    now: String,
    warnings: Vec<String>,
    /// Who writes: RBAC writes are checked for escalation. None for the server's own writes.
    user: Option<User>,
}

impl Ctx {
    fn op<'a>(&'a self, res: &Resource, subresource: &'a str) -> Op<'a> {
        Op { manager: &self.manager, api_version: res.api_version(), subresource, now: &self.now }
    }
}

enum Change {
    /// POST (and PUT of a full object): an Update operation.
    Object(Value),
    /// Server-side apply.
    Apply { config: Value, force: bool },
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

/// The manager recorded when no `fieldManager` is given: the user agent up to
/// the first `/` (`prefixFromUserAgent`).
fn manager_from_user_agent(ua: &str) -> String {
    ua.split('/').next().unwrap_or_default().chars().filter(|c| !c.is_control()).take(128).collect()
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
        ObjKey {
            group: res.group.clone(),
            resource: res.plural.clone(),
            namespace: if res.namespaced { namespace.to_string() } else { String::new() },
            name: name.to_string(),
        }
    }

    /// The object as served at `res`'s version (CRD versions differ only in apiVersion).
    fn present(res: &Resource, obj: &Value) -> Value {
        let mut o = obj.clone();
        if res.is_crd() {
            o["apiVersion"] = json!(res.api_version());
            order_keys(&mut o);
        }
        o
    }

    // ---- routing ----------------------------------------------------------

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
                &json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0-weaver-fake", "gitCommit": "", "gitTreeState": "clean",
                    "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"}),
            ))),
            ["healthz" | "livez" | "readyz"] => get_only(Ok(ApiResponse {
                status: 200,
                content_type: "text/plain; charset=utf-8".into(),
                body: b"ok".to_vec(),
                warnings: Vec::new(),
            })),
            ["api"] | ["apis"] => get_only(Ok(match aggregated {
                Some(v) => {
                    let mut r =
                        ApiResponse::json(200, &discovery::aggregated(&self.all_resources(), segs[0] == "api", v));
                    r.content_type = discovery::aggregated_content_type(v);
                    r
                }
                None if segs[0] == "api" => ApiResponse::json(200, &discovery::api_versions()),
                None => ApiResponse::json(200, &discovery::api_group_list(&self.all_resources())),
            })),
            ["api", "v1"] => get_only(
                discovery::api_resource_list(&self.all_resources(), "", "v1")
                    .map(|v| ApiResponse::json(200, &v))
                    .ok_or_else(ApiError::no_route),
            ),
            ["apis", g] => get_only(
                discovery::api_group(&self.all_resources(), g)
                    .map(|v| ApiResponse::json(200, &v))
                    .ok_or_else(ApiError::no_route),
            ),
            ["apis", g, v] => get_only(
                discovery::api_resource_list(&self.all_resources(), g, v)
                    .map(|v| ApiResponse::json(200, &v))
                    .ok_or_else(ApiError::no_route),
            ),
            ["api", "v1", rest @ ..] => self.resource_request(req, "", "v1", rest),
            ["apis", g, v, rest @ ..] => self.resource_request(req, g, v, rest),
            _ => Err(ApiError::no_route()),
        }
    }

    /// Resolves `…/[namespaces/<ns>/]<plural>[/<name>[/<sub>]]`.
    fn route(&self, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
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
            let ok = (s == "status" && res.status_subresource) || (s == "token" && res.is("", "ServiceAccount"));
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
        let Target { res, ns, name, sub } = self.route(group, version, rest)?;
        let ns_str = ns.clone().unwrap_or_default();
        match (req.method.as_str(), &name, sub.as_deref()) {
            ("GET", None, None) => self.list(req, &res, ns.as_deref()),
            ("GET", Some(n), None | Some("status")) => {
                let obj =
                    self.objects.get(&Self::key(&res, &ns_str, n)).ok_or_else(|| ApiError::not_found(&res.gr(), n))?;
                Ok(ApiResponse::json(200, &metadata_only(req, Self::present(&res, obj))))
            }
            ("POST", None, None) => self.create(req, &res, ns),
            ("POST", Some(n), Some("token")) => self.token_request(req, &res, &ns_str, n),
            ("PUT", Some(n), s) => self.update(req, &res, ns, n, s),
            ("PATCH", Some(n), s) => self.patch(req, &res, ns, n, s),
            ("DELETE", Some(n), None) => self.delete(req, &res, &ns_str, n),
            ("DELETE", None, None) => self.delete_collection(req, &res, ns.as_deref()),
            _ => Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource")),
        }
    }

    // ---- reads ------------------------------------------------------------

    fn selectors(req: &ApiRequest, res: &Resource) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels =
            LabelSelector::parse(req.param("labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(
            req.param("fieldSelector").unwrap_or_default(),
            supported_fields(&res.group, &res.kind),
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    fn matching<'a>(
        &'a self,
        res: &'a Resource,
        ns: Option<&'a str>,
        labels: &'a LabelSelector,
        fields: &'a FieldSelector,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> {
        self.objects
            .of_resource(&res.group, &res.plural, ns)
            .filter(move |(_, o)| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
    }

    fn list(&self, req: &ApiRequest, res: &Resource, ns: Option<&str>) -> Result<ApiResponse, ApiError> {
        let (labels, fields) = Self::selectors(req, res)?;
        let limit: usize = req.param("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
        let start = match req.param("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let all: Vec<(&ObjKey, &Value)> = self
            .matching(res, ns, &labels, &fields)
            .filter(|(k, _)| {
                start.as_ref().is_none_or(|s| (k.namespace.as_str(), k.name.as_str()) > (s.0.as_str(), s.1.as_str()))
            })
            .collect();
        let page = &all[..all.len().min(limit)];
        let items: Vec<Value> = page
            .iter()
            .map(|(_, o)| {
                let mut o = Self::present(res, o);
                if !res.is_crd()
                    && let Some(m) = o.as_object_mut()
                {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        let mut meta = json!({"resourceVersion": self.rv.to_string()});
        if all.len() > page.len()
            && let Some((k, _)) = page.last()
        {
            let token = json!({"rv": self.rv, "start": [k.namespace, k.name]}).to_string();
            meta["continue"] = json!(base64::engine::general_purpose::STANDARD.encode(token));
            meta["remainingItemCount"] = json!(all.len() - page.len());
        }
        let list = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta, "items": items});
        Ok(ApiResponse::json(200, &metadata_only(req, list)))
    }

    /// Resolves a watch request, or `None` if `req` is not one.
    pub fn watch_spec(&self, req: &ApiRequest) -> Result<Option<WatchSpec>, ApiError> {
        if req.method != "GET" || !matches!(req.param("watch"), Some("true" | "1")) {
            return Ok(None);
        }
        let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", "v1", rest @ ..] => ("", "v1", rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return Err(ApiError::no_route()),
        };
        let Target { res, ns, name, .. } = self.route(group, version, rest)?;
        if name.is_some() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let (labels, fields) = Self::selectors(req, &res)?;
        let since = match req.param("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
            Some(v) => {
                Some(v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?)
            }
            None => None,
        };
        // Without a resourceVersion (or with "0") a watch starts with synthetic
        // ADDED events for what exists now, as the apiserver's watch cache does.
        let since = since.unwrap_or(0);
        let timeout_seconds = req.param("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800);
        Ok(Some(WatchSpec { res, namespace: ns, labels, fields, since, timeout_seconds }))
    }

    /// Watch events after `rv` (JSON lines), and the newest rv they cover; or,
    /// when the events after `rv` are no longer kept, the ERROR event that ends
    /// the watch (the watch cache's `410 Expired`, sent in the stream).
    pub fn watch_events(&self, spec: &WatchSpec, rv: u64) -> Result<(Vec<Value>, u64), Value> {
        let mut out = Vec::new();
        if rv == 0 {
            for (_, o) in self.matching(&spec.res, spec.namespace.as_deref(), &spec.labels, &spec.fields) {
                out.push(json!({"type": "ADDED", "object": Self::present(&spec.res, o)}));
            }
            return Ok((out, self.rv));
        }
        if rv < self.compacted {
            let gone = ApiError::expired(format!("too old resource version: {rv} ({})", self.compacted));
            return Err(json!({"type": "ERROR", "object": gone.to_status()}));
        }
        let first = self.events.partition_point(|e| e.rv <= rv);
        for e in self.events.range(first..) {
            if e.key.group == spec.res.group
                && e.key.resource == spec.res.plural
                && spec.namespace.as_deref().is_none_or(|ns| e.key.namespace == ns)
                && spec.labels.matches(&e.object["metadata"]["labels"])
                && spec.fields.matches(&e.object)
            {
                out.push(json!({"type": e.kind, "object": Self::present(&spec.res, &e.object)}));
            }
        }
        Ok((out, self.rv))
    }

    // ---- writes -----------------------------------------------------------

    fn ctx(&self, req: &ApiRequest, res: &Resource, namespace: Option<String>) -> Result<Ctx, ApiError> {
        let dry_run = match req.param("dryRun") {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                )));
            }
        };
        let validation = match req.param("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                )));
            }
        };
        let manager = match req.param("fieldManager") {
            Some(m) => m.to_string(),
            None => manager_from_user_agent(&req.user_agent),
        };
        Ok(Ctx {
            res: res.clone(),
            namespace,
            dry_run,
            manager,
            validation,
            now: util::now(),
            warnings: Vec::new(),
            user: Some(req.user.clone()),
        })
    }

    fn decode(req: &ApiRequest) -> Result<Value, ApiError> {
        let yaml = req.content_type.as_deref().is_some_and(|c| c.contains("yaml"));
        let parsed: Result<Value, String> = if yaml {
            serde_saphyr::from_slice::<Value>(&req.body).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(&req.body).map_err(|e| e.to_string())
        };
        let v =
            parsed.map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::bad_request("couldn't get version/kind; json parse error: expected an object"));
        }
        Ok(v)
    }

    /// apiVersion/kind must name the URL's type; missing ones default to it (not for apply).
    fn check_type_meta(res: &Resource, obj: &mut Value, required: bool) -> Result<(), ApiError> {
        let want_av = res.api_version();
        for (field, want) in [("apiVersion", want_av.as_str()), ("kind", res.kind.as_str())] {
            match obj[field].as_str() {
                Some(got) if got == want => {}
                Some("") | None if !required => obj[field] = json!(want),
                Some("") | None => {
                    return Err(ApiError::bad_request(format!(
                        "{field} must be set in the apply configuration; expected {want:?}"
                    )));
                }
                Some(got) if field == "apiVersion" => {
                    return Err(ApiError::bad_request(format!(
                        "the API version in the data ({got}) does not match the expected API version ({want})"
                    )));
                }
                Some(got) => {
                    return Err(ApiError::bad_request(format!(
                        "the kind in the data ({got}) does not match the expected kind ({want})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// NotFound / Forbidden for creates in a missing or terminating namespace (NamespaceLifecycle).
    fn check_namespace(&self, res: &Resource, ns: &str) -> Result<(), ApiError> {
        if !res.namespaced {
            return Ok(());
        }
        let ns_gr = GroupResource { group: String::new(), resource: "namespaces".into() };
        let key =
            ObjKey { group: String::new(), resource: "namespaces".into(), namespace: String::new(), name: ns.into() };
        match self.objects.get(&key) {
            None => Err(ApiError::not_found(&ns_gr, ns)),
            Some(o) if o["metadata"].get("deletionTimestamp").is_some() => {
                let mut e = ApiError::forbidden(
                    &res.gr(),
                    "",
                    &format!("unable to create new content in namespace {ns} because it is being terminated"),
                );
                e.message = format!(
                    "{} \"\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    res.gr()
                );
                if let Some(d) = e.details.as_mut() {
                    d.insert(
                        "causes".into(),
                        json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]),
                    );
                }
                Err(e)
            }
            Some(_) => Ok(()),
        }
    }

    /// Prunes unknown fields (warning or strict error), normalizes the way
    /// decoding into the Go type would, and converts Secret stringData.
    fn normalize(&self, ctx: &mut Ctx, obj: &mut Value) -> Result<(), ApiError> {
        let mut n = Normalizer::new(ctx.res.schema(), !ctx.res.is_crd());
        n.run(ctx.res.type_id, obj);
        if !n.unknown.is_empty() {
            match ctx.validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = n.unknown.iter().map(|u| format!("unknown field {:?}", u.0)).collect();
                    let kind = &ctx.res.kind;
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {}",
                        ctx.res.version,
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    ctx.warnings.extend(n.unknown.iter().map(|u| format!("unknown field {:?}", u.0)))
                }
                FieldValidation::Ignore => {}
            }
        }
        if ctx.res.is("", "Secret") {
            secret_string_data(obj);
        }
        Ok(())
    }

    /// Apply configurations must fit the schema whatever `fieldValidation`
    /// says: the typed conversion fails, and the apiserver answers 500.
    fn check_apply_config(&self, ctx: &Ctx, config: &mut Value) -> Result<(), ApiError> {
        let mut n = Normalizer::new(ctx.res.schema(), !ctx.res.is_crd());
        n.prune(ctx.res.type_id, config);
        if n.unknown.is_empty() {
            return Ok(());
        }
        let errs: Vec<String> = n.unknown.iter().map(|u| format!("{}: field not declared in schema", u.1)).collect();
        let errs = if errs.len() == 1 { errs[0].clone() } else { format!("errors:\n  {}", errs.join("\n  ")) };
        let group_version =
            if ctx.res.group.is_empty() { format!("/{}", ctx.res.version) } else { ctx.res.api_version() };
        let message = format!(
            "failed to create typed patch object ({}/{}; {group_version}, Kind={}): {errs}",
            meta_str(config, "namespace"),
            meta_str(config, "name"),
            ctx.res.kind
        );
        Err(ApiError { code: 500, reason: "", message, details: None })
    }

    fn create(&mut self, req: &ApiRequest, res: &Resource, ns: Option<String>) -> Result<ApiResponse, ApiError> {
        let mut ctx = self.ctx(req, res, ns)?;
        let mut obj = Self::decode(req)?;
        Self::check_type_meta(res, &mut obj, false)?;
        let meta = meta_mut(&mut obj);
        if meta.get("name").and_then(Value::as_str).unwrap_or_default().is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str).filter(|p| !p.is_empty())
        {
            let name = format!("{prefix}{}", util::name_suffix());
            meta.insert("name".into(), json!(name));
        }
        self.set_namespace(&ctx, &mut obj)?;
        let name = meta_str(&obj, "name").to_string();
        if name.is_empty() {
            let causes = vec![crate::error::field::required("metadata.name", "name or generateName is required")];
            return Err(ApiError::invalid(&res.kind, &res.group, "", causes));
        }
        self.check_namespace(res, meta_str(&obj, "namespace"))?;
        let key = Self::key(res, meta_str(&obj, "namespace"), &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&res.gr(), &name));
        }
        let (obj, code) = self.write(&mut ctx, key, None, Change::Object(obj))?;
        let mut r = ApiResponse::json(code, &obj);
        r.warnings = ctx.warnings;
        Ok(r)
    }

    /// The object's namespace must be empty or the URL's; cluster-scoped objects have none.
    fn set_namespace(&self, ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
        let meta = meta_mut(obj);
        match &ctx.namespace {
            Some(ns) => match meta.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    meta.insert("namespace".into(), json!(ns));
                }
                Some(got) if got == ns => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            },
            None => {
                meta.remove("namespace");
            }
        }
        Ok(())
    }

    fn check_name(obj: &Value, name: &str) -> Result<(), ApiError> {
        let got = meta_str(obj, "name");
        if !got.is_empty() && got != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({got}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    fn update(
        &mut self,
        req: &ApiRequest,
        res: &Resource,
        ns: Option<String>,
        name: &str,
        sub: Option<&str>,
    ) -> Result<ApiResponse, ApiError> {
        let ctx = self.ctx(req, res, ns.clone())?;
        let key = Self::key(res, ns.as_deref().unwrap_or_default(), name);
        let live = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        let obj = Self::decode(req)?;
        self.replace_with(ctx, res, key, live, obj, name, sub)
    }

    /// The common tail of PUT and PATCH: check the new object against the URL, keep only its
    /// status for the status subresource, and store it.
    #[allow(clippy::too_many_arguments)]
    fn replace_with(
        &mut self,
        mut ctx: Ctx,
        res: &Resource,
        key: ObjKey,
        live: Value,
        mut obj: Value,
        name: &str,
        sub: Option<&str>,
    ) -> Result<ApiResponse, ApiError> {
        Self::check_type_meta(res, &mut obj, false)?;
        Self::check_name(&obj, name)?;
        meta_mut(&mut obj).insert("name".into(), json!(name));
        self.set_namespace(&ctx, &mut obj)?;
        let obj = match sub {
            Some(_) => status_only(&live, obj),
            None => obj,
        };
        let (out, code) = self.write_sub(&mut ctx, key, live, Change::Object(obj), sub)?;
        let mut r = ApiResponse::json(code, &out);
        r.warnings = ctx.warnings;
        Ok(r)
    }

    fn patch(
        &mut self,
        req: &ApiRequest,
        res: &Resource,
        ns: Option<String>,
        name: &str,
        sub: Option<&str>,
    ) -> Result<ApiResponse, ApiError> {
        let mut ctx = self.ctx(req, res, ns.clone())?;
        let key = Self::key(res, ns.as_deref().unwrap_or_default(), name);
        let content_type = req.content_type.as_deref().unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let live = self.objects.get(&key).cloned();
        if media == "application/apply-patch+yaml" || media == "application/apply-patch+cbor" {
            if req.param("fieldManager").is_none_or(str::is_empty) {
                let causes = vec![crate::error::field::required("fieldManager", "is required for apply patch")];
                return Err(ApiError::invalid("PatchOptions", "meta.k8s.io", "", causes));
            }
            let force = match req.param("force") {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!("invalid force value {other:?}")));
                }
            };
            let mut config = Self::decode(req)?;
            Self::check_type_meta(res, &mut config, true)?;
            Self::check_name(&config, name)?;
            if config["metadata"].get("managedFields").is_some() {
                return Err(ApiError::bad_request("metadata.managedFields must be nil"));
            }
            meta_mut(&mut config).insert("name".into(), json!(name));
            self.set_namespace(&ctx, &mut config)?;
            let (out, code) = match live {
                Some(live) => self.write_sub(&mut ctx, key, live, Change::Apply { config, force }, sub)?,
                None => {
                    if sub.is_some() {
                        return Err(ApiError::not_found(&res.gr(), name));
                    }
                    self.check_namespace(res, ns.as_deref().unwrap_or_default())?;
                    self.write(&mut ctx, key, None, Change::Apply { config, force })?
                }
            };
            let mut r = ApiResponse::json(code, &out);
            r.warnings = ctx.warnings;
            return Ok(r);
        }
        if req.param("force").is_some() {
            let causes = vec![crate::error::Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: may not be specified for non-apply patch".into(),
                field: "force".into(),
            }];
            return Err(ApiError::invalid("PatchOptions", "meta.k8s.io", "", causes));
        }
        let live = live.ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let patched = match media {
            "application/merge-patch+json" => patch::merge_patch(&live, &body),
            "application/json-patch+json" => {
                if !body.is_array() {
                    return Err(ApiError::bad_request(
                        "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                    ));
                }
                patch::json_patch(&live, &body).map_err(|_| ApiError::generic(422))?
            }
            "application/strategic-merge-patch+json" if !res.is_crd() => {
                patch::strategic_merge_patch(res.schema(), res.type_id, &live, &body).map_err(ApiError::bad_request)?
            }
            _ => {
                let mut accepted =
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                        .to_string();
                if !res.is_crd() {
                    accepted.push_str(", application/strategic-merge-patch+json");
                }
                return Err(ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: {accepted}"
                )));
            }
        };
        self.replace_with(ctx, res, key, live, patched, name, sub)
    }

    fn write_sub(
        &mut self,
        ctx: &mut Ctx,
        key: ObjKey,
        live: Value,
        change: Change,
        sub: Option<&str>,
    ) -> Result<(Value, u16), ApiError> {
        match sub {
            Some(s) => self.write_status(ctx, key, live, change, s),
            None => self.write(ctx, key, Some(live), change),
        }
    }

    /// The write pipeline: decode/default → field manager → strategy →
    /// validation → storage. Returns the stored (or dry-run) object and code.
    fn write(
        &mut self,
        ctx: &mut Ctx,
        key: ObjKey,
        live: Option<Value>,
        change: Change,
    ) -> Result<(Value, u16), ApiError> {
        let res = ctx.res.clone();
        let schema = res.schema();
        let fm = FieldManager { schema, ty: res.type_id };
        let base = match &live {
            Some(l) => without_managed_fields(l),
            None => zero_object(schema, res.type_id),
        };
        // Fields the main resource may not change (status, with a status subresource).
        let reset = |mut v: Value| {
            if res.status_subresource
                && let Some(m) = v.as_object_mut()
            {
                m.remove("status");
            }
            v
        };
        let (mut obj, managed) = match change {
            Change::Object(mut obj) => {
                if let Some(live) = &live {
                    precondition(&res, live, &obj)?;
                }
                self.normalize(ctx, &mut obj)?;
                crate::defaults::apply(&res, &mut obj);
                let mut managed = decode_live_or_new(live.as_ref(), &obj);
                let new = without_managed_fields(&obj);
                fm.update(&reset(base.clone()), &reset(new.clone()), &mut managed, &ctx.op(&res, ""))?;
                (new, managed)
            }
            Change::Apply { mut config, force } => {
                if let Some(live) = &live {
                    precondition(&res, live, &config)?;
                }
                self.check_apply_config(ctx, &mut config)?;
                let mut managed = Managed::decode(live.as_ref().and_then(|l| l["metadata"].get("managedFields")));
                let mut merged =
                    fm.apply(&reset(base.clone()), &reset(config), &mut managed, &ctx.op(&res, ""), force)?;
                self.normalize(ctx, &mut merged)?;
                crate::defaults::apply(&res, &mut merged);
                (merged, managed)
            }
        };
        self.strategy(&res, live.as_ref(), &mut obj, &ctx.now);
        let causes: Vec<Cause> = validate::validate(&res, &obj, live.as_ref());
        if !causes.is_empty() {
            return Err(ApiError::invalid(&res.kind, &res.group, meta_str(&obj, "name"), causes));
        }
        if let Some(user) = &ctx.user {
            self.confirm_no_escalation(user, &res.group, &res.plural, &obj)?;
        }
        self.store_with_managed(ctx.dry_run, key, live, obj, &managed)
    }

    /// The common end of every write: record the managed fields (or none), put keys in the
    /// server's order, and commit.
    fn store_with_managed(
        &mut self,
        dry_run: bool,
        key: ObjKey,
        live: Option<Value>,
        mut obj: Value,
        managed: &Managed,
    ) -> Result<(Value, u16), ApiError> {
        match managed.encode() {
            Some(mf) => {
                meta_mut(&mut obj).insert("managedFields".into(), mf);
            }
            None => {
                meta_mut(&mut obj).remove("managedFields");
            }
        }
        order_keys(&mut obj);
        self.commit(dry_run, key, live, obj)
    }

    /// PUT/PATCH/apply on `/status`: only `.status` changes, recorded with `subresource: status`.
    fn write_status(
        &mut self,
        ctx: &mut Ctx,
        key: ObjKey,
        live: Value,
        change: Change,
        sub: &str,
    ) -> Result<(Value, u16), ApiError> {
        let res = ctx.res.clone();
        let fm = FieldManager { schema: res.schema(), ty: res.type_id };
        let base = without_managed_fields(&live);
        let (obj, managed) = match change {
            Change::Object(mut obj) => {
                precondition(&res, &live, &obj)?;
                self.normalize(ctx, &mut obj)?;
                let mut managed = decode_live_or_new(Some(&live), &obj);
                let new = status_only(&base, without_managed_fields(&obj));
                fm.update(&base, &new, &mut managed, &ctx.op(&res, sub))?;
                (new, managed)
            }
            Change::Apply { mut config, force } => {
                self.check_apply_config(ctx, &mut config)?;
                let mut managed = Managed::decode(live["metadata"].get("managedFields"));
                let keep_status = json!({"status": config.get("status").cloned().unwrap_or(json!({}))});
                let mut merged = fm.apply(&base, &keep_status, &mut managed, &ctx.op(&res, sub), force)?;
                self.normalize(ctx, &mut merged)?;
                (status_only(&base, merged), managed)
            }
        };
        self.store_with_managed(ctx.dry_run, key, Some(live), obj, &managed)
    }

    /// Stores `obj` unless nothing changed or it is a dry run; removes it when
    /// its last finalizer is gone during deletion.
    fn commit(
        &mut self,
        dry_run: bool,
        key: ObjKey,
        live: Option<Value>,
        mut obj: Value,
    ) -> Result<(Value, u16), ApiError> {
        let created = live.is_none();
        if let Some(l) = &live
            && *l == obj
        {
            return Ok((l.clone(), 200));
        }
        if dry_run {
            if created {
                meta_mut(&mut obj).remove("resourceVersion");
            }
            return Ok((obj, if created { 201 } else { 200 }));
        }
        let deleting = obj["metadata"].get("deletionTimestamp").is_some();
        let finalizers_left = obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        order_keys(&mut obj);
        if deleting && !finalizers_left {
            self.remove(&key);
            self.reconcile();
            return Ok((obj, 200));
        }
        self.objects.insert(key.clone(), obj.clone());
        self.record_event(if created { "ADDED" } else { "MODIFIED" }, &key, &obj);
        if key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions" {
            self.refresh_crds();
        }
        self.reconcile();
        Ok((obj, if created { 201 } else { 200 }))
    }

    /// Keeps an event for watches, forgetting the oldest beyond [`WATCH_HISTORY`].
    fn record_event(&mut self, kind: &'static str, key: &ObjKey, obj: &Value) {
        self.events.push_back(Event { rv: self.rv, kind, key: key.clone(), object: obj.clone() });
        while self.events.len() > WATCH_HISTORY {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    /// Forgets every event so far, as an etcd compaction does: watches from an
    /// older resourceVersion get 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.events.clear();
        self.compacted = self.rv;
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

    /// What each kind's REST strategy does on create/update.
    fn strategy(&mut self, res: &Resource, live: Option<&Value>, obj: &mut Value, now: &str) {
        obj["apiVersion"] =
            json!(if res.is_crd() { format!("{}/{}", res.group, res.storage_version) } else { res.api_version() });
        obj["kind"] = json!(res.kind);
        let meta = meta_mut(obj);
        meta.remove("selfLink");
        match live {
            Some(live) => {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ] {
                    match live["metadata"].get(f) {
                        Some(v) => {
                            meta.insert(f.into(), v.clone());
                        }
                        None => {
                            meta.remove(f);
                        }
                    }
                }
                if res.status_subresource {
                    match live.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            if let Some(m) = obj.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                let changed = match res.generation {
                    Generation::None => false,
                    Generation::Spec => live["spec"] != obj["spec"],
                    Generation::SpecOrAnnotations => {
                        live["spec"] != obj["spec"] || live["metadata"]["annotations"] != obj["metadata"]["annotations"]
                    }
                    Generation::AllButMetadata => {
                        let strip = |v: &Value| {
                            let mut v = v.clone();
                            if let Some(m) = v.as_object_mut() {
                                m.remove("metadata");
                                if res.status_subresource {
                                    m.remove("status");
                                }
                            }
                            v
                        };
                        strip(live) != strip(obj)
                    }
                };
                if res.generation != Generation::None {
                    let g = live["metadata"]["generation"].as_i64().unwrap_or(1) + i64::from(changed);
                    meta_mut(obj).insert("generation".into(), json!(g));
                }
                if res.is("", "Namespace") {
                    obj["spec"] = live["spec"].clone();
                }
                if res.is("", "Service") {
                    self.service_carry_over(live, obj);
                }
            }
            None => {
                meta.insert("uid".into(), json!(util::uid()));
                meta.insert("creationTimestamp".into(), json!(now));
                meta.remove("deletionTimestamp");
                meta.remove("deletionGracePeriodSeconds");
                meta.remove("resourceVersion");
                if res.generation != Generation::None {
                    meta.insert("generation".into(), json!(1));
                } else {
                    meta.remove("generation");
                }
                if res.status_subresource {
                    match initial_status(res, obj) {
                        Value::Null => {
                            if let Some(m) = obj.as_object_mut() {
                                m.remove("status");
                            }
                        }
                        s => obj["status"] = s,
                    }
                }
                if res.is("", "Namespace") {
                    let finalizers = obj["spec"]["finalizers"].as_array().cloned().unwrap_or_default();
                    if !finalizers.contains(&json!("kubernetes")) {
                        let mut f = finalizers;
                        f.push(json!("kubernetes"));
                        obj["spec"]["finalizers"] = Value::Array(f);
                    }
                }
                if res.is("", "Service") {
                    self.service_allocate(obj);
                }
                if res.is("batch", "Job") {
                    job_selector(obj);
                }
                if res.is("apiextensions.k8s.io", "CustomResourceDefinition") {
                    let f = meta_mut(obj).entry("finalizers").or_insert(json!([]));
                    if let Some(list) = f.as_array_mut()
                        && !list.contains(&json!("customresourcecleanup.apiextensions.k8s.io"))
                    {
                        list.push(json!("customresourcecleanup.apiextensions.k8s.io"));
                    }
                }
            }
        }
    }

    fn service_allocate(&mut self, obj: &mut Value) {
        let spec = &mut obj["spec"];
        let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
        if ty == "ExternalName" {
            return;
        }
        if spec["clusterIP"].as_str().unwrap_or_default().is_empty() {
            self.next_ip += 1;
            let ip = format!("10.96.{}.{}", self.next_ip / 256, self.next_ip % 256);
            spec["clusterIP"] = json!(ip);
        }
        if spec.get("clusterIPs").is_none() {
            spec["clusterIPs"] = json!([spec["clusterIP"].clone()]);
        }
        if spec.get("ipFamilies").is_none() {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
        if spec.get("ipFamilyPolicy").is_none() {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if (ty == "NodePort" || ty == "LoadBalancer")
            && let Some(ports) = spec["ports"].as_array_mut()
        {
            for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                self.next_node_port += 1;
                p["nodePort"] = json!(self.next_node_port);
            }
        }
    }

    /// `patchAllocatedValues`: allocated IPs and node ports survive updates that omit them.
    fn service_carry_over(&mut self, live: &Value, obj: &mut Value) {
        let old = &live["spec"];
        let spec = &mut obj["spec"];
        if spec["type"] != "ExternalName" {
            for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if spec.get(f).is_none()
                    && let Some(v) = old.get(f)
                {
                    spec[f] = v.clone();
                }
            }
        }
        if let (Some(ports), Some(old_ports)) = (spec["ports"].as_array_mut(), old["ports"].as_array()) {
            for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                if let Some(np) = old_ports.iter().find(|o| o["port"] == p["port"]).and_then(|o| o.get("nodePort")) {
                    p["nodePort"] = np.clone();
                }
            }
        }
        self.service_allocate(obj);
    }

    fn delete(&mut self, req: &ApiRequest, res: &Resource, ns: &str, name: &str) -> Result<ApiResponse, ApiError> {
        let key = Self::key(res, ns, name);
        let live = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
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
        Ok(ApiResponse::json(code, &obj))
    }

    /// Deletes or marks for deletion; returns what the DELETE responds with.
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
                Self::present(res, &live)
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
            return (Self::present(res, &live), 200);
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
            return (Self::present(res, &obj), 200);
        }
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        order_keys(&mut obj);
        self.objects.insert(key.clone(), obj.clone());
        self.record_event("MODIFIED", key, &obj);
        self.reconcile();
        (Self::present(res, &obj), 200)
    }

    fn delete_collection(
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
        let mut items = Vec::new();
        for (key, live) in targets {
            let mut o = self.delete_object(&key, res, live.clone(), &policy, dry_run).0;
            if o["kind"] == "Status" {
                o = Self::present(res, &live);
            }
            if !res.is_crd()
                && let Some(m) = o.as_object_mut()
            {
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(o);
        }
        let list = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {"resourceVersion": self.rv.to_string()}, "items": items});
        Ok(ApiResponse::json(200, &list))
    }

    /// `serviceaccounts/<name>/token`: TokenRequest. The token authenticates as
    /// the ServiceAccount until it expires or the ServiceAccount (by uid) is gone.
    fn token_request(
        &mut self,
        req: &ApiRequest,
        res: &Resource,
        ns: &str,
        name: &str,
    ) -> Result<ApiResponse, ApiError> {
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
            IssuedToken { namespace: ns.into(), name: name.into(), uid, expires, audiences: audiences.clone() },
        );
        let out = json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": util::now()},
            "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": body["spec"]["boundObjectRef"].clone()},
            "status": {"token": token, "expirationTimestamp": expires_at},
        });
        Ok(ApiResponse::json(201, &out))
    }

    // ---- internal writes (controllers, bootstrap) --------------------------

    /// Creates an object on behalf of a system component (Update operation).
    pub(crate) fn system_create(&mut self, res: &Resource, obj: Value, manager: &str) -> Result<Value, ApiError> {
        let ns = if res.namespaced { Some(meta_str(&obj, "namespace").to_string()) } else { None };
        let mut ctx = Ctx {
            res: res.clone(),
            namespace: ns,
            dry_run: false,
            manager: manager.into(),
            validation: FieldValidation::Ignore,
            now: util::now(),
            warnings: Vec::new(),
            user: None,
        };
        let key = Self::key(res, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
        Ok(self.write(&mut ctx, key, None, Change::Object(obj))?.0)
    }

    /// Changes `.status` (or, with `sub == ""`, anything) on behalf of a controller.
    pub(crate) fn system_update(&mut self, key: &ObjKey, manager: &str, sub: &str, f: impl FnOnce(&mut Value)) {
        let Some(live) = self.objects.get(key).cloned() else {
            return;
        };
        let Some(res) = self.storage_resource(&key.group, &key.resource).cloned() else {
            return;
        };
        let mut new = without_managed_fields(&live);
        f(&mut new);
        let base = without_managed_fields(&live);
        if new == base {
            return;
        }
        let fm = FieldManager { schema: res.schema(), ty: res.type_id };
        let mut managed = Managed::decode(live["metadata"].get("managedFields"));
        let now = util::now();
        let op = Op { manager, api_version: res.api_version(), subresource: sub, now: &now };
        if fm.update(&base, &new, &mut managed, &op).is_err() {
            return;
        }
        if let Some(mf) = managed.encode() {
            meta_mut(&mut new).insert("managedFields".into(), mf);
        }
        let _ = self.commit(false, key.clone(), Some(live), new);
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

pub(crate) fn owner_uids(o: &Value) -> impl Iterator<Item = &str> {
    o["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(|r| r["uid"].as_str())
}

fn without_managed_fields(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    o
}

/// `decodeLiveOrNew`: the request's managedFields win when set and valid;
/// `[]` or `[{}]` reset them.
fn decode_live_or_new(live: Option<&Value>, new: &Value) -> Managed {
    match new["metadata"].get("managedFields").and_then(Value::as_array) {
        Some(a) if a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty)) => Managed::default(),
        Some(_) => {
            let m = Managed::decode(new["metadata"].get("managedFields"));
            if m.entries.is_empty() {
                Managed::decode(live.and_then(|l| l["metadata"].get("managedFields")))
            } else {
                m
            }
        }
        None => Managed::decode(live.and_then(|l| l["metadata"].get("managedFields"))),
    }
}

/// Optimistic concurrency: a non-empty resourceVersion must match the live one.
fn precondition(res: &Resource, live: &Value, obj: &Value) -> Result<(), ApiError> {
    let rv = meta_str(obj, "resourceVersion");
    if !rv.is_empty() && rv != meta_str(live, "resourceVersion") {
        return Err(ApiError::stale(&res.gr(), meta_str(live, "name")));
    }
    Ok(())
}

/// `live` with `.status` (and the resourceVersion precondition) taken from `obj`.
fn status_only(live: &Value, obj: Value) -> Value {
    let mut out = live.clone();
    match obj.get("status") {
        Some(s) => out["status"] = s.clone(),
        None => {
            if let Some(m) = out.as_object_mut() {
                m.remove("status");
            }
        }
    }
    let rv = meta_str(&obj, "resourceVersion").to_string();
    meta_mut(&mut out).insert("resourceVersion".into(), json!(rv));
    if let Some(mf) = obj["metadata"].get("managedFields") {
        meta_mut(&mut out).insert("managedFields".into(), mf.clone());
    }
    out
}

/// The status a newly created object starts with (strategies' PrepareForCreate).
fn initial_status(res: &Resource, obj: &Value) -> Value {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "Service") => json!({"loadBalancer": {}}),
        ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        ("", "Pod") => json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])}),
        ("policy", "PodDisruptionBudget") => {
            json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
        }
        ("apiextensions.k8s.io", _) => {
            json!({"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []})
        }
        _ if res.is_crd() => Value::Null,
        _ => json!({}),
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec["containers"].as_array().into_iter().flatten().collect();
    let any = containers.iter().any(|c| c["resources"]["requests"].is_object() || c["resources"]["limits"].is_object());
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let l = &c["resources"]["limits"];
        ["cpu", "memory"]
            .iter()
            .all(|r| l.get(*r).is_some() && c["resources"]["requests"].get(*r).is_none_or(|q| Some(q) == l.get(*r)))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}

/// The Job strategy's generated selector and labels (unless `manualSelector`).
fn job_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"] == json!(true) {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = v.clone();
    }
    if obj["metadata"]["labels"].as_object().is_none_or(Map::is_empty) {
        obj["metadata"]["labels"] = obj["spec"]["template"]["metadata"]["labels"].clone();
    }
}

/// v1 Secret conversion: `stringData` merges into `data` (base64) and is dropped.
fn secret_string_data(obj: &mut Value) {
    let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in sd {
        let s = v.as_str().unwrap_or_default();
        obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
    }
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data at input byte 0");
    let raw = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((v["start"][0].as_str().unwrap_or_default().into(), v["start"][1].as_str().unwrap_or_default().into()))
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
