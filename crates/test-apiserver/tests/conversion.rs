//! CRD conversion webhooks (`spec.conversion.strategy: Webhook`): the fake calls them as
//! kube-apiserver does, over HTTPS trusting the CRD's `caBundle`, whenever an object changes
//! version, and refuses the answers a real server refuses. The webhook here is served by the
//! test, with a fixed self-signed certificate for 127.0.0.1 (tests/data/webhook-*.pem).

use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::ApiResource;
use kube::{Client, Error};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use weaver_test_apiserver::TestApiServer;

const CERT: &[u8] = include_bytes!("data/webhook-cert.pem");
const KEY: &[u8] = include_bytes!("data/webhook-key.pem");

/// What the test webhook answers.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    /// Converts: v1alpha1 `spec.foo` is v1 `spec.bar`.
    Rename,
    /// `result.status: Failure` with this message.
    Fail(String),
    /// Converts, but renames the objects.
    ChangeName,
    /// Converts, but leaves the apiVersion as it was.
    KeepVersion,
    /// Converts, and labels the objects `converted: "yes"` (labels may change).
    Label,
}

/// A conversion webhook on 127.0.0.1, served from its own runtime.
struct Webhook {
    url: String,
    mode: Arc<Mutex<Mode>>,
    /// The `request` of every review received, in order.
    reviews: Arc<Mutex<Vec<Value>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

type State = (Arc<Mutex<Mode>>, Arc<Mutex<Vec<Value>>>);

impl Webhook {
    fn start() -> Webhook {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        // Bound here, served by the runtime: a test's own runtime may not block on another.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}/convert", listener.local_addr().unwrap());
        let acceptor = weaver_test_support::tls::acceptor(CERT, KEY);
        let (mode, reviews) = (Arc::new(Mutex::new(Mode::Rename)), Arc::new(Mutex::new(Vec::new())));
        let state: State = (mode.clone(), reviews.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (acceptor, state) = (acceptor.clone(), state.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Webhook { url, mode, reviews, runtime: Some(runtime) }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn reviews(&self) -> Vec<Value> {
        self.reviews.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.reviews.lock().unwrap().clear();
    }

    /// `spec.conversion` calling this webhook, trusting its certificate.
    fn conversion(&self) -> Value {
        json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
            "clientConfig": {"url": self.url, "caBundle": base64::engine::general_purpose::STANDARD.encode(CERT)}}})
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn handle(state: State, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let request = review["request"].clone();
    state.1.lock().unwrap().push(request.clone());
    let mode = state.0.lock().unwrap().clone();
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let converted: Vec<Value> =
        request["objects"].as_array().into_iter().flatten().map(|o| convert(o, desired, &mode)).collect();
    let result = match &mode {
        Mode::Fail(message) => json!({"status": "Failure", "message": message}),
        _ => json!({"status": "Success"}),
    };
    let answer = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": request["uid"], "convertedObjects": converted, "result": result}});
    let response = Response::builder()
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap();
    Ok(response)
}

/// v1alpha1 `spec.foo` ↔ v1 `spec.bar`, spoilt as `mode` says.
fn convert(object: &Value, desired: &str, mode: &Mode) -> Value {
    let mut o = object.clone();
    let (from, to) = if desired.ends_with("/v1") { ("foo", "bar") } else { ("bar", "foo") };
    if let Some(spec) = o["spec"].as_object_mut()
        && let Some(v) = spec.remove(from)
    {
        spec.insert(to.into(), v);
    }
    if *mode != Mode::KeepVersion {
        o["apiVersion"] = json!(desired);
    }
    match mode {
        Mode::ChangeName => o["metadata"]["name"] = json!("renamed"),
        Mode::Label => o["metadata"]["labels"] = json!({"converted": "yes"}),
        _ => {}
    }
    o
}

async fn client(server: &TestApiServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn api_error(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// CRD `gadgets.example.com`: v1 (`spec.bar`) and v1alpha1 (`spec.foo`), both served, `storage`
/// the one stored, converted as `conversion` says (no `spec.conversion` if None).
fn gadget_crd(storage: &str, conversion: Option<Value>) -> Value {
    let schema = |field: &str| json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {field: {"type": "string"}}}}});
    let mut crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {"name": "v1", "served": true, "storage": storage == "v1", "schema": {"openAPIV3Schema": schema("bar")}},
                {"name": "v1alpha1", "served": true, "storage": storage == "v1alpha1", "schema": {"openAPIV3Schema": schema("foo")}}]}});
    if let Some(conversion) = conversion {
        crd["spec"]["conversion"] = conversion;
    }
    crd
}

async fn apply_crd(c: &Client, crd: &Value) {
    let crds = Api::<CustomResourceDefinition>::all(c.clone());
    crds.patch("gadgets.example.com", &PatchParams::apply("test").force(), &Patch::Apply(crd)).await.unwrap();
}

/// Gadgets of namespace `default` at `version`.
fn gadgets(c: &Client, version: &str) -> Api<DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk("example.com", version, "Gadget");
    Api::namespaced_with(c.clone(), "default", &ApiResource::from_gvk_with_plural(&gvk, "gadgets"))
}

fn gadget(name: &str, version: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": format!("example.com/{version}"), "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

/// A gadget's apiVersion and spec.
fn shown(o: &DynamicObject) -> (String, Value) {
    (o.types.as_ref().unwrap().api_version.clone(), o.data["spec"].clone())
}

/// (desired apiVersion, names of the objects sent) of each review.
fn sent(webhook: &Webhook) -> Vec<(String, Vec<String>)> {
    webhook
        .reviews()
        .iter()
        .map(|r| {
            let names =
                r["objects"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_string());
            (r["desiredAPIVersion"].as_str().unwrap().to_string(), names.collect())
        })
        .collect()
}

/// A fake API server whose Gadgets are stored at v1 and converted by a test webhook, with the
/// APIs of both versions.
struct Converting {
    webhook: Webhook,
    _server: TestApiServer,
    v1: Api<DynamicObject>,
    alpha: Api<DynamicObject>,
}

async fn converting() -> Converting {
    let webhook = Webhook::start();
    let server = TestApiServer::start();
    let c = client(&server).await;
    apply_crd(&c, &gadget_crd("v1", Some(webhook.conversion()))).await;
    let (v1, alpha) = (gadgets(&c, "v1"), gadgets(&c, "v1alpha1"));
    Converting { webhook, _server: server, v1, alpha }
}

#[tokio::test]
async fn conversion_webhook_converts_between_versions() {
    let Converting { webhook, _server, v1, alpha } = converting().await;

    // Written at v1alpha1: converted to v1 for storage, and back for the answer.
    let created = alpha.create(&PostParams::default(), &gadget("g1", "v1alpha1", json!({"foo": "x"}))).await.unwrap();
    assert_eq!(shown(&created), ("example.com/v1alpha1".into(), json!({"foo": "x"})));
    let review = &webhook.reviews()[0];
    assert_eq!(review["desiredAPIVersion"], "example.com/v1");
    assert_eq!(review["objects"][0]["apiVersion"], "example.com/v1alpha1");
    assert_eq!(review["objects"][0]["spec"], json!({"foo": "x"}));
    assert_eq!(
        sent(&webhook),
        [("example.com/v1".into(), vec!["g1".into()]), ("example.com/v1alpha1".into(), vec!["g1".into()])]
    );

    // At the storage version, nothing is sent.
    webhook.clear();
    assert_eq!(shown(&v1.get("g1").await.unwrap()), ("example.com/v1".into(), json!({"bar": "x"})));
    assert_eq!(sent(&webhook), []);

    let got = alpha.get("g1").await.unwrap();
    assert_eq!(shown(&got), ("example.com/v1alpha1".into(), json!({"foo": "x"})));
    assert_eq!(got.metadata.uid, created.metadata.uid, "metadata is the stored object's");
    let listed = alpha.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed.items.iter().map(shown).collect::<Vec<_>>(),
        [("example.com/v1alpha1".into(), json!({"foo": "x"}))]
    );

    // A merge patch at v1alpha1 applies to the object converted to v1alpha1.
    let pp = PatchParams::default();
    let patched = alpha.patch("g1", &pp, &Patch::Merge(json!({"spec": {"foo": "y"}}))).await.unwrap();
    assert_eq!(shown(&patched), ("example.com/v1alpha1".into(), json!({"foo": "y"})));
    assert_eq!(v1.get("g1").await.unwrap().data["spec"], json!({"bar": "y"}));

    // Server-side apply at v1alpha1 too.
    let applied = alpha
        .patch("g1", &PatchParams::apply("test").force(), &Patch::Apply(gadget("g1", "v1alpha1", json!({"foo": "z"}))))
        .await
        .unwrap();
    assert_eq!(shown(&applied), ("example.com/v1alpha1".into(), json!({"foo": "z"})));
    assert_eq!(v1.get("g1").await.unwrap().data["spec"], json!({"bar": "z"}));

    // A watch at v1alpha1 shows v1alpha1 objects.
    let mut stream = alpha.watch(&WatchParams::default().timeout(5), "0").await.unwrap().boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(o)) => assert_eq!(shown(&o), ("example.com/v1alpha1".into(), json!({"foo": "z"}))),
        other => panic!("expected ADDED, got {other:?}"),
    }

    // Labels and annotations are the webhook's to change.
    webhook.set(Mode::Label);
    assert_eq!(alpha.get("g1").await.unwrap().metadata.labels.unwrap()["converted"], "yes");
}

#[tokio::test]
async fn conversion_webhook_converts_a_list_in_one_review() {
    let Converting { webhook, _server, v1, alpha } = converting().await;
    for name in ["a", "b", "c"] {
        v1.create(&PostParams::default(), &gadget(name, "v1", json!({"bar": name}))).await.unwrap();
    }
    assert_eq!(sent(&webhook), [], "written and answered at the storage version");
    let listed = alpha.list(&ListParams::default()).await.unwrap();
    let specs: Vec<Value> = listed.items.iter().map(|o| o.data["spec"].clone()).collect();
    assert_eq!(specs, [json!({"foo": "a"}), json!({"foo": "b"}), json!({"foo": "c"})]);
    assert_eq!(sent(&webhook), [("example.com/v1alpha1".into(), vec!["a".into(), "b".into(), "c".into()])]);
}

#[tokio::test]
async fn conversion_webhook_failure_is_a_500() {
    let Converting { webhook, _server, v1, alpha } = converting().await;
    v1.create(&PostParams::default(), &gadget("g1", "v1", json!({"bar": "x"}))).await.unwrap();
    webhook.set(Mode::Fail("cannot convert bar".into()));
    let e = api_error(alpha.get("g1").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, ""));
    assert_eq!(e.message, "conversion webhook for example.com/v1, Kind=Gadget failed: cannot convert bar");
    let e = api_error(alpha.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(e.message, "conversion webhook for example.com/v1, Kind=Gadget failed: cannot convert bar");
    let e = api_error(alpha.delete("g1", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(e.code, 500);
    assert!(v1.get("g1").await.is_ok(), "a delete whose conversion fails deletes nothing");

    // A write at v1alpha1 cannot be converted for storage: nothing is stored.
    let e = api_error(
        alpha.create(&PostParams::default(), &gadget("g2", "v1alpha1", json!({"foo": "y"}))).await.unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "conversion webhook for example.com/v1alpha1, Kind=Gadget failed: cannot convert bar")
    );
    assert_eq!(api_error(v1.get("g2").await.unwrap_err()).code, 404);

    // A watch at v1alpha1 ends with the error.
    let mut stream = alpha.watch(&WatchParams::default().timeout(5), "0").await.unwrap().boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 500),
        Err(Error::Api(e)) => assert_eq!(e.code, 500),
        other => panic!("expected the conversion's error, got {other:?}"),
    }
}

#[tokio::test]
async fn conversion_webhook_answers_are_checked() {
    let Converting { webhook, _server, v1, alpha } = converting().await;
    v1.create(&PostParams::default(), &gadget("g1", "v1", json!({"bar": "x"}))).await.unwrap();
    v1.create(&PostParams::default(), &gadget("g2", "v1", json!({"bar": "y"}))).await.unwrap();

    webhook.set(Mode::ChangeName);
    let e = api_error(alpha.get("g1").await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            500,
            "conversion webhook for example.com/v1, Kind=Gadget returned invalid object: must have the same name: g1 != renamed"
        )
    );
    let e = api_error(alpha.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "conversion webhook for example.com/v1, Kind=Gadget returned invalid converted object at index 1: must have the same name: g1 != renamed"
    );

    webhook.set(Mode::KeepVersion);
    let e = api_error(alpha.get("g1").await.unwrap_err());
    assert_eq!(
        e.message,
        "conversion webhook for example.com/v1, Kind=Gadget returned invalid object at index 0: invalid groupVersion (expected example.com/v1alpha1, received example.com/v1)"
    );

    webhook.set(Mode::Rename);
    assert_eq!(alpha.get("g1").await.unwrap().data["spec"], json!({"foo": "x"}));
}

#[tokio::test]
async fn objects_stored_at_an_older_version_are_converted_on_read() {
    let webhook = Webhook::start();
    let server = TestApiServer::start();
    let c = client(&server).await;
    let (v1, alpha) = (gadgets(&c, "v1"), gadgets(&c, "v1alpha1"));
    apply_crd(&c, &gadget_crd("v1alpha1", Some(webhook.conversion()))).await;
    alpha.create(&PostParams::default(), &gadget("old", "v1alpha1", json!({"foo": "x"}))).await.unwrap();
    assert_eq!(sent(&webhook), [], "written at the storage version");

    apply_crd(&c, &gadget_crd("v1", Some(webhook.conversion()))).await;
    v1.create(&PostParams::default(), &gadget("new", "v1", json!({"bar": "y"}))).await.unwrap();
    assert_eq!(sent(&webhook), []);

    // Each object is converted from the version it is stored at, and only when that is not
    // the version read.
    assert_eq!(shown(&v1.get("old").await.unwrap()), ("example.com/v1".into(), json!({"bar": "x"})));
    assert_eq!(shown(&alpha.get("old").await.unwrap()), ("example.com/v1alpha1".into(), json!({"foo": "x"})));
    assert_eq!(sent(&webhook), [("example.com/v1".into(), vec!["old".into()])]);
    webhook.clear();
    let specs = |list: kube::core::ObjectList<DynamicObject>| list.items.iter().map(shown).collect::<Vec<_>>();
    assert_eq!(
        specs(v1.list(&ListParams::default()).await.unwrap()),
        [("example.com/v1".into(), json!({"bar": "y"})), ("example.com/v1".into(), json!({"bar": "x"}))]
    );
    assert_eq!(
        specs(alpha.list(&ListParams::default()).await.unwrap()),
        [("example.com/v1alpha1".into(), json!({"foo": "y"})), ("example.com/v1alpha1".into(), json!({"foo": "x"}))]
    );
    assert_eq!(
        sent(&webhook),
        [("example.com/v1".into(), vec!["old".into()]), ("example.com/v1alpha1".into(), vec!["new".into()])]
    );
}

#[tokio::test]
async fn conversion_webhook_trusts_only_its_ca_bundle() {
    let webhook = Webhook::start();
    let server = TestApiServer::start();
    let c = client(&server).await;
    let mut conversion = webhook.conversion();
    conversion["webhook"]["clientConfig"].as_object_mut().unwrap().remove("caBundle");
    apply_crd(&c, &gadget_crd("v1", Some(conversion))).await;
    let alpha = gadgets(&c, "v1alpha1");
    let e = api_error(
        alpha.create(&PostParams::default(), &gadget("g1", "v1alpha1", json!({"foo": "x"}))).await.unwrap_err(),
    );
    let prefix = format!("conversion webhook for example.com/v1alpha1, Kind=Gadget failed: Post \"{}\": ", webhook.url);
    assert_eq!(e.code, 500);
    assert!(e.message.starts_with(&prefix), "{}", e.message);
    assert!(e.message.contains("invalid peer certificate: UnknownIssuer"), "{}", e.message);
    assert_eq!(sent(&webhook), [], "the certificate is refused before anything is sent");
}

#[tokio::test]
async fn service_conversion_webhooks_cannot_be_reached() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let conversion = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "default", "name": "converter", "path": "/convert", "port": 443}}}});
    apply_crd(&c, &gadget_crd("v1", Some(conversion))).await;
    let (v1, alpha) = (gadgets(&c, "v1"), gadgets(&c, "v1alpha1"));
    v1.create(&PostParams::default(), &gadget("g1", "v1", json!({"bar": "x"}))).await.unwrap();
    assert_eq!(v1.get("g1").await.unwrap().data["spec"], json!({"bar": "x"}), "no conversion needed");
    let e = api_error(alpha.get("g1").await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            500,
            "conversion webhook for example.com/v1, Kind=Gadget failed: the fake apiserver serves only clientConfig.url conversion webhooks: it cannot reach service default/converter (clientConfig.service)"
        )
    );
}

#[tokio::test]
async fn none_conversion_changes_only_the_api_version() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    for conversion in [Some(json!({"strategy": "None"})), None] {
        // Both versions declare `spec.foo` here: the other version's schema would prune it.
        let mut crd = gadget_crd("v1", conversion);
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["foo"] =
            json!({"type": "string"});
        apply_crd(&c, &crd).await;
        let (v1, alpha) = (gadgets(&c, "v1"), gadgets(&c, "v1alpha1"));
        let created =
            alpha.create(&PostParams::default(), &gadget("g1", "v1alpha1", json!({"foo": "x"}))).await.unwrap();
        assert_eq!(shown(&created), ("example.com/v1alpha1".into(), json!({"foo": "x"})));
        assert_eq!(shown(&v1.get("g1").await.unwrap()), ("example.com/v1".into(), json!({"foo": "x"})));
        let patched =
            alpha.patch("g1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"foo": "y"}}))).await.unwrap();
        assert_eq!(shown(&patched), ("example.com/v1alpha1".into(), json!({"foo": "y"})));
        let listed = v1.list(&ListParams::default()).await.unwrap();
        assert_eq!(
            listed.items.iter().map(shown).collect::<Vec<_>>(),
            [("example.com/v1".into(), json!({"foo": "y"}))]
        );
        v1.delete("g1", &DeleteParams::default()).await.unwrap();
    }
}
