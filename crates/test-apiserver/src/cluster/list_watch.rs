//! Reads: GET of a collection (selectors, `limit`/`continue` paging) and watches, served
//! from a window of recent events like the apiserver's watch cache.

use super::routing::Target;
use super::{ApiRequest, ApiResponse, Cluster, Event, ObjKey, metadata_only};
use crate::error::ApiError;
use crate::resources::Resource;
use crate::selector::{FieldSelector, LabelSelector, supported_fields};
use base64::Engine;
use serde_json::{Value, json};

/// How many events watches can resume from, like the apiserver's watch cache
/// window: a watch from an older resourceVersion gets 410 Gone.
const WATCH_HISTORY: usize = 10_000;

/// What a watch request asks for.
pub struct WatchSpec {
    pub res: Resource,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub since: u64,
    pub timeout_seconds: u64,
}

impl Cluster {
    pub(super) fn selectors(req: &ApiRequest, res: &Resource) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels =
            LabelSelector::parse(req.param("labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(
            req.param("fieldSelector").unwrap_or_default(),
            supported_fields(&res.group, &res.kind),
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    pub(super) fn matching<'a>(
        &'a self,
        res: &'a Resource,
        ns: Option<&'a str>,
        labels: &'a LabelSelector,
        fields: &'a FieldSelector,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> {
        let (group, resource) = res.stored();
        self.objects
            .of_resource(group, resource, ns)
            .filter(move |(_, o)| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
    }

    pub(super) fn list(&self, req: &ApiRequest, res: &Resource, ns: Option<&str>) -> Result<ApiResponse, ApiError> {
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
        let mut items = Self::present_all(res, page.iter().map(|(_, o)| (*o).clone()).collect())?;
        if !res.is_crd() {
            for m in items.iter_mut().filter_map(Value::as_object_mut) {
                m.remove("kind");
                m.remove("apiVersion");
            }
        }
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

    /// Watch events after `rv` (JSON lines), and the newest rv they cover; or the ERROR event
    /// that ends the watch: when the events after `rv` are no longer kept, the watch cache's
    /// `410 Expired`; when their objects cannot be converted to the watched version (a CRD's
    /// conversion webhook fails), the conversion's 500.
    pub fn watch_events(&self, spec: &WatchSpec, rv: u64) -> Result<(Vec<Value>, u64), Value> {
        let (kinds, objects): (Vec<&str>, Vec<Value>) = if rv == 0 {
            self.matching(&spec.res, spec.namespace.as_deref(), &spec.labels, &spec.fields)
                .map(|(_, o)| ("ADDED", o.clone()))
                .unzip()
        } else {
            if rv < self.compacted {
                let gone = ApiError::expired(format!("too old resource version: {rv} ({})", self.compacted));
                return Err(json!({"type": "ERROR", "object": gone.to_status()}));
            }
            let first = self.events.partition_point(|e| e.rv <= rv);
            self.events
                .range(first..)
                .filter(|e| {
                    (e.key.group.as_str(), e.key.resource.as_str()) == spec.res.stored()
                        && spec.namespace.as_deref().is_none_or(|ns| e.key.namespace == ns)
                        && spec.labels.matches(&e.object["metadata"]["labels"])
                        && spec.fields.matches(&e.object)
                })
                .map(|e| (e.kind, e.object.clone()))
                .unzip()
        };
        let objects =
            Self::present_all(&spec.res, objects).map_err(|e| json!({"type": "ERROR", "object": e.to_status()}))?;
        let out =
            kinds.into_iter().zip(objects).map(|(kind, object)| json!({"type": kind, "object": object})).collect();
        Ok((out, self.rv))
    }

    /// Keeps an event for watches, forgetting the oldest beyond [`WATCH_HISTORY`].
    pub(super) fn record_event(&mut self, kind: &'static str, key: &ObjKey, obj: &Value) {
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
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data at input byte 0");
    let raw = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((v["start"][0].as_str().unwrap_or_default().into(), v["start"][1].as_str().unwrap_or_default().into()))
}
