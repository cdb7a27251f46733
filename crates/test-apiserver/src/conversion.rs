//! Custom resources between the versions of their CRD (`spec.conversion`), as kube-apiserver
//! 1.32's apiextensions-apiserver converts them. `strategy: None` (or none): a version is the
//! stored object with another apiVersion. `strategy: Webhook`: the objects that must change
//! version are sent to the CRD's conversion webhook in a `ConversionReview`, and its answer is
//! checked as `conversion/webhook_converter.go` checks it (the uid, the number of objects, each
//! one's apiVersion, kind, name, namespace and uid; only labels and annotations may change in
//! metadata, the rest is restored), then pruned by the schema of the version it is at.
//!
//! Only `clientConfig.url` webhooks are called: a `clientConfig.service` names a Service of the
//! cluster, and no Service of the fake has anything behind it.

use crate::error::ApiError;
use crate::normalize::{Normalizer, order_keys};
use crate::schema::{Schema, TypeId};
use crate::util;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::time::Duration;
use weaver_kube_schema::apimachinery::{TOTAL_ANNOTATION_SIZE_LIMIT, label_value_errors, qualified_name_errors};
use weaver_net::http::{agent, root_certs};

/// How long a webhook call may take. A real server gives a conversion webhook 30 s (the CRD
/// webhook's default), longer than a test should wait for a webhook that never answers.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The conversion webhook of a CRD with `spec.conversion.strategy: Webhook`.
#[derive(Debug)]
pub struct Webhook {
    /// `clientConfig.url`.
    url: Option<String>,
    /// `clientConfig.caBundle`: base64 of PEM certificates, the only roots trusted when given.
    ca_bundle: Option<String>,
    /// `clientConfig.service`, which the fake cannot reach.
    service: Option<Value>,
    /// `conversionReviewVersions`: the first of them the server speaks is sent.
    review_versions: Vec<String>,
}

impl Webhook {
    /// The webhook of a CRD's `spec`; None unless its conversion strategy is `Webhook`.
    pub fn from_crd(spec: &Value) -> Option<Webhook> {
        let conversion = &spec["conversion"];
        if conversion["strategy"].as_str() != Some("Webhook") {
            return None;
        }
        let webhook = &conversion["webhook"];
        let client = &webhook["clientConfig"];
        Some(Webhook {
            url: client["url"].as_str().map(String::from),
            ca_bundle: client["caBundle"].as_str().filter(|b| !b.is_empty()).map(String::from),
            service: client.get("service").filter(|s| !s.is_null()).cloned(),
            review_versions: webhook["conversionReviewVersions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        })
    }
}

/// `objects` of `kind` in `group`, each at the version its apiVersion names, at `version`, in
/// the same order: converted by `webhook`, or (None) given that apiVersion. With a webhook,
/// those already at `version` are kept as they are (a real server never sends them), and the
/// others are sent in one review per version they are at; what it answers is pruned by
/// `target`, the schema served at `version` (none when that version is not served).
pub fn convert(
    group: &str,
    kind: &str,
    webhook: Option<&Webhook>,
    mut objects: Vec<Value>,
    version: &str,
    target: Option<(&Schema, TypeId)>,
) -> Result<Vec<Value>, ApiError> {
    let desired = format!("{group}/{version}");
    let Some(webhook) = webhook else {
        for o in &mut objects {
            o["apiVersion"] = json!(desired);
            order_keys(o);
        }
        return Ok(objects);
    };
    let mut batches: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let from = o["apiVersion"].as_str().unwrap_or_default();
        if from == desired {
            continue;
        }
        match batches.iter_mut().find(|(v, _)| v == from) {
            Some((_, batch)) => batch.push(i),
            None => batches.push((from.to_string(), vec![i])),
        }
    }
    for (from, batch) in batches {
        // `GroupVersionKind.String()` of the objects converted.
        let gvk = format!("{from}, Kind={kind}");
        let originals: Vec<&Value> = batch.iter().map(|&i| &objects[i]).collect();
        let converted = webhook.review(&gvk, &originals, &desired)?;
        for (i, mut o) in batch.into_iter().zip(converted) {
            if let Some((schema, ty)) = target {
                Normalizer::new(schema, false).prune(ty, &mut o);
            }
            order_keys(&mut o);
            objects[i] = o;
        }
    }
    Ok(objects)
}

/// The fields an Event has under another name in events.k8s.io/v1 than in core/v1, as
/// kube-apiserver's `pkg/apis/events/v1` conversion maps them: (core, events.k8s.io).
const EVENT_FIELDS: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// An Event as stored (core/v1) served as events.k8s.io/v1 (`to_events: true`), or one written
/// at events.k8s.io/v1 as stored: one object, two groups, as a real server keeps them.
pub fn event(mut event: Value, to_events: bool) -> Value {
    if let Some(fields) = event.as_object_mut() {
        for (core, events) in EVENT_FIELDS {
            let (from, to) = if to_events { (core, events) } else { (events, core) };
            if let Some(value) = fields.remove(from) {
                fields.insert(to.to_string(), value);
            }
        }
        let api_version = if to_events { "events.k8s.io/v1" } else { "v1" };
        fields.insert("apiVersion".into(), json!(api_version));
    }
    order_keys(&mut event);
    event
}

/// What a failed conversion answers: the error the converter returns, which reaches the
/// client as a `Status` 500 without a reason (`ErrorToAPIStatus` of a plain error).
fn failure(message: String) -> ApiError {
    ApiError { code: 500, reason: "", message, details: None }
}

/// Why a converted object is refused, worded by where `webhookConverter.Convert` finds it.
enum Refused {
    /// Not an object (`getRawExtensionObject`).
    Decode(String),
    /// The wrong apiVersion or kind.
    Type(String),
    /// `validateConvertedObject`: another name, namespace or uid.
    Object(String),
    /// `restoreObjectMeta`: metadata, labels or annotations that are not what they must be.
    Metadata(String),
}

impl Webhook {
    /// One `ConversionReview` of `objects` (all at the version of `gvk`) to `desired`.
    fn review(&self, gvk: &str, objects: &[&Value], desired: &str) -> Result<Vec<Value>, ApiError> {
        let review_version = self
            .review_versions
            .iter()
            .find(|v| *v == "v1" || *v == "v1beta1")
            .ok_or_else(|| failure("no supported conversion review versions".into()))?;
        let review_api = format!("apiextensions.k8s.io/{review_version}");
        let uid = util::uid();
        let request = json!({"kind": "ConversionReview", "apiVersion": review_api,
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
            "response": {"uid": "", "convertedObjects": null, "result": {"metadata": {}}}});
        let failed = |e: String| failure(format!("conversion webhook for {gvk} failed: {e}"));
        let answer = self.post(&request).map_err(failed)?;
        let converted = converted_objects(&review_api, &uid, &answer).map_err(failed)?;
        if converted.len() != objects.len() {
            return Err(failure(format!(
                "conversion webhook for {gvk} returned {} objects, expected {}",
                converted.len(),
                objects.len()
            )));
        }
        // One object is worded as kube-apiserver words a single object; several as a list, whose
        // index (1-based once the object could be read: `convertedIndex` has been counted) it names.
        let single = objects.len() == 1;
        objects
            .iter()
            .zip(converted)
            .enumerate()
            .map(|(i, (original, converted))| {
                checked(original, converted, desired).map_err(|refused| {
                    failure(match (refused, single) {
                        (Refused::Decode(e), true) => e,
                        (Refused::Type(e), true) => {
                            format!("conversion webhook for {gvk} returned invalid object at index 0: {e}")
                        }
                        (Refused::Object(e), true) => {
                            format!("conversion webhook for {gvk} returned invalid object: {e}")
                        }
                        (Refused::Metadata(e), true) => {
                            format!("conversion webhook for {gvk} returned invalid metadata: {e}")
                        }
                        (Refused::Decode(e), false) => {
                            format!("conversion webhook for {gvk} returned invalid converted object at index {i}: {e}")
                        }
                        (Refused::Type(e) | Refused::Object(e), false) => format!(
                            "conversion webhook for {gvk} returned invalid converted object at index {}: {e}",
                            i + 1
                        ),
                        (Refused::Metadata(e), false) => format!(
                            "conversion webhook for {gvk} returned invalid metadata in object at index {}: {e}",
                            i + 1
                        ),
                    })
                })
            })
            .collect()
    }

    /// POSTs the review and reads the answer, as the webhook's REST client does.
    ///
    /// The call is made with the cluster locked (every request to the fake waits for it, and
    /// the server's one thread is blocked meanwhile). That is fine: a conversion webhook only
    /// converts, and weaver's never calls back the API server, so nothing waits on the lock
    /// held here; one that did would hang until [`TIMEOUT`] and fail the request.
    fn post(&self, review: &Value) -> Result<Value, String> {
        if let Some(service) = &self.service {
            let (ns, name) =
                (service["namespace"].as_str().unwrap_or_default(), service["name"].as_str().unwrap_or_default());
            return Err(format!(
                "the fake apiserver serves only clientConfig.url conversion webhooks: it cannot reach service {ns}/{name} (clientConfig.service)"
            ));
        }
        let Some(url) = self.url.as_deref() else {
            return Err("the CRD's conversion webhook has no clientConfig".into());
        };
        if !url.starts_with("https://") {
            // A real server refuses such a CRD: `'https' is the only allowed URL scheme`.
            return Err(format!("Post {url:?}: 'https' is the only allowed URL scheme"));
        }
        let roots = match &self.ca_bundle {
            Some(bundle) => {
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(bundle)
                    .map_err(|e| format!("clientConfig.caBundle is not base64: {e}"))?;
                Some(root_certs(&pem).ok_or("clientConfig.caBundle holds no PEM certificate")?)
            }
            None => None,
        };
        let mut response = agent(roots, TIMEOUT, 0)
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, */*")
            .header("User-Agent", "kube-apiserver-admission")
            .send(review.to_string())
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = response.body_mut().read_to_string().map_err(|e| format!("Post {url:?}: {e}"))?;
        if !(200..=206).contains(&status) {
            let status_message = serde_json::from_str::<Value>(&body)
                .ok()
                .filter(|v| v["kind"] == "Status")
                .and_then(|v| v["message"].as_str().filter(|m| !m.is_empty()).map(String::from));
            return Err(status_message.unwrap_or_else(|| {
                format!("the server responded with the status code {status} but did not return more information")
            }));
        }
        if body.is_empty() {
            return Err(format!("0-length response with status code: {status} and content type: {content_type}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))
    }
}

/// `getConvertedObjectsFromResponse`: the converted objects of a successful answer.
fn converted_objects(review_api: &str, uid: &str, answer: &Value) -> Result<Vec<Value>, String> {
    // v1beta1 answers were never checked for their type or uid, and still are not.
    let v1 = review_api == "apiextensions.k8s.io/v1";
    if v1 {
        let (api, kind) =
            (answer["apiVersion"].as_str().unwrap_or_default(), answer["kind"].as_str().unwrap_or_default());
        if api != review_api || kind != "ConversionReview" {
            let group_version = if api.contains('/') { api.to_string() } else { format!("/{api}") };
            return Err(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {group_version}, Kind={kind}"
            ));
        }
    }
    let response = match answer.get("response") {
        None | Some(Value::Null) => return Err("no response provided".into()),
        Some(r) => r,
    };
    if v1 {
        let got = response["uid"].as_str().unwrap_or_default();
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
    }
    let status = response["result"]["status"].as_str().unwrap_or_default();
    if status != "Success" {
        let message = response["result"]["message"].as_str().unwrap_or_default();
        return Err(if message.is_empty() {
            format!("response.result.status was '{status}', not 'Success'")
        } else {
            message.to_string()
        });
    }
    Ok(response["convertedObjects"].as_array().cloned().unwrap_or_default())
}

/// A converted object checked against its original, with the original's metadata back but
/// for its labels and annotations.
fn checked(original: &Value, mut converted: Value, desired: &str) -> Result<Value, Refused> {
    let Some(fields) = converted.as_object() else {
        return Err(Refused::Decode(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&converted)
        )));
    };
    let kind = fields.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind.is_empty() {
        return Err(Refused::Decode(format!("Object 'Kind' is missing in '{converted}'")));
    }
    let got = group_version(fields.get("apiVersion").and_then(Value::as_str).unwrap_or_default());
    if got != desired {
        return Err(Refused::Type(format!("invalid groupVersion (expected {desired}, received {got})")));
    }
    let want = original["kind"].as_str().unwrap_or_default();
    if kind != want {
        return Err(Refused::Type(format!("invalid kind (expected {want}, received {kind})")));
    }
    for (field, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (was, is) = (meta_str(original, field), meta_str(&converted, field));
        if was != is {
            return Err(Refused::Object(format!("must have the same {what}: {was} != {is}")));
        }
    }
    restore_object_meta(original, &mut converted).map_err(Refused::Metadata)?;
    Ok(converted)
}

fn meta_str<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or_default()
}

/// `schema.ParseGroupVersion(apiVersion).String()`: empty when it does not parse.
fn group_version(api_version: &str) -> &str {
    match api_version.split('/').count() {
        1 => api_version,
        2 => api_version.strip_prefix('/').unwrap_or(api_version),
        _ => "",
    }
}

/// `restoreObjectMeta`: the original's metadata, with the labels and annotations the webhook
/// answered (checked as labels and annotations are when they changed; dropped when it dropped them).
fn restore_object_meta(original: &Value, converted: &mut Value) -> Result<(), String> {
    let answered = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("invalid metadata of type {} in converted object", go_type(other))),
    };
    let mut meta = original["metadata"].as_object().cloned().unwrap_or_default();
    for field in ["labels", "annotations"] {
        let given = match answered.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(format!("invalid metadata.{field} of type {} in converted object", go_type(other)));
            }
        };
        let had = match meta.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(format!("invalid metadata.{field} of type {} in original object", go_type(other)));
            }
        };
        let mut changed = had.map_or(0, Map::len) != given.len();
        for (k, v) in given {
            if !v.is_string() {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            }
            changed |= had.and_then(|h| h.get(k)) != Some(v);
        }
        if changed {
            let errors = if field == "labels" { label_errors(given) } else { annotation_errors(given) };
            if !errors.is_empty() {
                return Err(aggregate(errors));
            }
        }
        meta.insert(field.into(), Value::Object(given.clone()));
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

/// `ValidateLabels` at `metadata.labels`.
fn label_errors(labels: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    for (k, v) in labels {
        let v = v.as_str().unwrap_or_default();
        errors.extend(
            qualified_name_errors(k).into_iter().map(|e| format!("metadata.labels: Invalid value: {k:?}: {e}")),
        );
        errors.extend(label_value_errors(v).into_iter().map(|e| format!("metadata.labels: Invalid value: {v:?}: {e}")));
    }
    errors
}

/// `ValidateAnnotations`, at the path `restoreObjectMeta` gives it (`metadata.annotation`).
fn annotation_errors(annotations: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut size = 0;
    for (k, v) in annotations {
        size += k.len() + v.as_str().unwrap_or_default().len();
        errors.extend(
            qualified_name_errors(&k.to_lowercase())
                .into_iter()
                .map(|e| format!("metadata.annotation: Invalid value: {k:?}: {e}")),
        );
    }
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        errors.push(format!("metadata.annotation: Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"));
    }
    errors
}

/// `utilerrors.Aggregate`'s message: one error alone, several (once each) in brackets.
fn aggregate(errors: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 { seen.remove(0) } else { format!("[{}]", seen.join(", ")) }
}

/// Go's `%T` of a JSON value decoded into `interface{}` by unstructured JSON.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// encoding/json's name of a JSON value's type in an unmarshal error.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_restored_but_labels_and_annotations() {
        let original = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}, "annotations": {"k": "v"},
            "finalizers": ["f"]}});
        let mut converted = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "2", "y": "3"}}});
        restore_object_meta(&original, &mut converted).unwrap();
        assert_eq!(
            converted["metadata"],
            json!({"name": "a", "uid": "u", "labels": {"x": "2", "y": "3"}, "finalizers": ["f"]}),
            "other metadata restored, annotations dropped as the webhook dropped them"
        );
        let mut bad = json!({"metadata": {"labels": {"x": "not valid!"}}});
        assert_eq!(
            restore_object_meta(&original, &mut bad).unwrap_err(),
            format!("metadata.labels: Invalid value: \"not valid!\": {}", label_value_errors("not valid!")[0])
        );
        let mut typed = json!({"metadata": {"annotations": {"n": 1}}});
        assert_eq!(
            restore_object_meta(&original, &mut typed).unwrap_err(),
            "metadata.annotations[n] must be a string, but is int64 in converted object"
        );
        assert_eq!(
            restore_object_meta(&original, &mut json!({"spec": {}})).unwrap_err(),
            "missing metadata in converted object"
        );
    }

    #[test]
    fn answers_are_checked_as_the_real_server_checks_them() {
        let ok = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u1", "result": {"status": "Success"}, "convertedObjects": [{"a": 1}]}});
        assert_eq!(converted_objects("apiextensions.k8s.io/v1", "u1", &ok).unwrap(), vec![json!({"a": 1})]);
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u2", &ok).unwrap_err(),
            "expected response.uid=\"u2\", got \"u1\""
        );
        assert!(converted_objects("apiextensions.k8s.io/v1beta1", "u2", &ok).is_ok(), "v1beta1: no uid check");
        let beta = json!({"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "ConversionReview", "response": {}});
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u1", &beta).unwrap_err(),
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got apiextensions.k8s.io/v1beta1, Kind=ConversionReview"
        );
        let failed = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "u1", "result": {"status": "Failure"}}});
        assert_eq!(
            converted_objects("apiextensions.k8s.io/v1", "u1", &failed).unwrap_err(),
            "response.result.status was 'Failure', not 'Success'"
        );
        assert_eq!(group_version("example.com/v1"), "example.com/v1");
        assert_eq!(group_version("a/b/c"), "");
    }
}
