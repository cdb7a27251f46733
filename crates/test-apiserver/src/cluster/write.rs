//! The write pipeline, as kube-apiserver's generic registry store runs it: decode + default
//! → field manager → strategy → validation → admission → storage, for create, update, patch, server-side
//! apply, the status subresource and the server's own writes (controllers, bootstrap).

use super::auth::User;
use super::policy::Admitted;
use super::routing::Target;
use super::{ApiRequest, ApiResponse, Cluster, ObjKey, meta_mut, meta_str};
use crate::error::{ApiError, Cause, GroupResource};
use crate::managed::{FieldManager, Managed, Op};
use crate::normalize::{Normalizer, order_keys, zero_object};
use crate::patch;
use crate::resources::Resource;
use crate::util;
use crate::validate;
use base64::Engine;
use serde_json::{Map, Value, json};

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

/// The manager recorded when no `fieldManager` is given: the user agent up to
/// the first `/` (`prefixFromUserAgent`).
pub(super) fn manager_from_user_agent(ua: &str) -> String {
    ua.split('/').next().unwrap_or_default().chars().filter(|c| !c.is_control()).take(128).collect()
}

impl Cluster {
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

    pub(super) fn decode(req: &ApiRequest) -> Result<Value, ApiError> {
        let yaml = req.content_type.as_deref().is_some_and(|c| c.contains("yaml"));
        let protobuf =
            req.content_type.as_deref().is_some_and(|c| c.starts_with("application/vnd.kubernetes.protobuf"));
        let parsed: Result<Value, String> = if protobuf {
            crate::protobuf::decode(&req.body)
        } else if yaml {
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
    /// decoding into the Go type would, refuses what the schema does, and
    /// converts Secret stringData.
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
        // What decoding refuses (types, formats, quantities), before stringData becomes data.
        let causes = crate::validate::schema_causes(&ctx.res, obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&ctx.res.kind, &ctx.res.group, meta_str(obj, "name"), causes));
        }
        if ctx.res.is("", "Secret") {
            secret_string_data(obj);
        }
        weaver_kube_schema::integral_floats(obj);
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

    pub(super) fn create(
        &mut self,
        req: &ApiRequest,
        res: &Resource,
        ns: Option<String>,
    ) -> Result<ApiResponse, ApiError> {
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
        let mut r = ApiResponse::json(code, &Self::present(res, obj)?);
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

    pub(super) fn update(&mut self, req: &ApiRequest, target: &Target, name: &str) -> Result<ApiResponse, ApiError> {
        let (res, ns, sub) = (&target.res, target.ns.clone(), target.sub.as_deref());
        let ctx = self.ctx(req, res, ns.clone())?;
        let key = Self::key(res, ns.as_deref().unwrap_or_default(), name);
        let live = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&res.gr(), name))?;
        let live = Self::present(res, live)?;
        let obj = Self::decode(req)?;
        self.replace_with(ctx, res, key, live, obj, name, sub)
    }

    /// The common tail of PUT and PATCH: check the new object against the URL, keep only its
    /// status for the status subresource, and store it. `live` is at the request's version.
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
        let mut r = ApiResponse::json(code, &Self::present(res, out)?);
        r.warnings = ctx.warnings;
        Ok(r)
    }

    pub(super) fn patch(&mut self, req: &ApiRequest, target: &Target, name: &str) -> Result<ApiResponse, ApiError> {
        let (res, ns, sub) = (&target.res, target.ns.clone(), target.sub.as_deref());
        let mut ctx = self.ctx(req, res, ns.clone())?;
        let key = Self::key(res, ns.as_deref().unwrap_or_default(), name);
        let content_type = req.content_type.as_deref().unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        // The live object at the request's version, which the patch applies to (a real server
        // reads it through the version's storage, converting it).
        let live = self.objects.get(&key).cloned().map(|live| Self::present(res, live)).transpose()?;
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
            let mut r = ApiResponse::json(code, &Self::present(res, out)?);
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
    /// validation → admission → storage. `live` and the change are at the request's version;
    /// returns the stored (or dry-run) object, at the storage version, and the code.
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
        self.admit(&res, &obj, live.as_ref(), &mut ctx.warnings)?;
        if let Some(user) = &ctx.user {
            let request = Admitted { res: &res, obj: &obj, old: live.as_ref(), user, dry_run: ctx.dry_run };
            self.admit_policies(&request, &mut ctx.warnings)?;
        }
        self.store_with_managed(&res, ctx.dry_run, key, live, obj, &managed)
    }

    /// The common end of every write: record the managed fields (or none), put keys in the
    /// server's order, convert the object from `res`'s version to the storage version (a
    /// custom resource: `crate::conversion`; a dry run too, as a real server encodes it for
    /// storage), and commit it over the object stored, of which `live` is the request's view.
    pub(super) fn store_with_managed(
        &mut self,
        res: &Resource,
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
        let obj = self.to_storage(res, obj)?;
        // A custom resource's live object (an events.k8s.io Event's) was converted to the
        // request's version: the commit compares the new one with the object as stored.
        let stored = match live {
            Some(_) if res.is_crd() || res.stored_as.is_some() => self.objects.get(&key).cloned(),
            live => live,
        };
        self.commit(dry_run, key, stored, obj)
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
        self.store_with_managed(&res, ctx.dry_run, key, Some(live), obj, &managed)
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
}

pub(super) fn without_managed_fields(o: &Value) -> Value {
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
