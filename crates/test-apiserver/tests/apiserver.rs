//! Exercises the fake the way weaver does, through kube 5. Every assertion
//! encodes kube-apiserver behaviour, so the same expectations hold against a
//! real cluster.

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, Error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weaver_test_apiserver::{Fault, TestApiServer};

async fn client_for(server: &TestApiServer, context: Option<&str>) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let options = kube::config::KubeConfigOptions { context: context.map(String::from), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    Client::try_from(config).unwrap()
}

async fn client(server: &TestApiServer) -> Client {
    client_for(server, None).await
}

fn deployments(c: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), ns, &ApiResource::erase::<Deployment>(&()))
}

/// A started server, a client of it, and its Deployments in namespace `default`.
async fn default_deployments() -> (TestApiServer, Client, Api<DynamicObject>) {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api = deployments(&c, "default");
    (server, c, api)
}

/// Deployment `web` of one container, `nginx:1.25`.
fn web() -> Value {
    deployment("web", json!([{"name": "web", "image": "nginx:1.25"}]))
}

fn configmaps(c: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), ns, &ApiResource::erase::<ConfigMap>(&()))
}

fn deployment(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    })
}

async fn apply(api: &Api<DynamicObject>, manager: &str, obj: &Value) -> Result<Value, Error> {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply(manager), &Patch::Apply(obj)).await.map(|o| serde_json::to_value(o).unwrap())
}

async fn force_apply(api: &Api<DynamicObject>, manager: &str, obj: &Value) -> Result<Value, Error> {
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(obj))
        .await
        .map(|o| serde_json::to_value(o).unwrap())
}

fn api_error(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn managed_entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"].as_array()?.iter().find(|e| e["manager"] == manager && e["operation"] == operation)
}

/// A request's body: JSON (`None`: no body), or bytes as they are.
trait Body {
    fn bytes(self) -> Vec<u8>;
}

impl Body for Option<Value> {
    fn bytes(self) -> Vec<u8> {
        self.map(|b| b.to_string().into_bytes()).unwrap_or_default()
    }
}

impl Body for Vec<u8> {
    fn bytes(self) -> Vec<u8> {
        self
    }
}

/// A raw request: (status, headers, body).
async fn raw(
    c: &Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: impl Body,
) -> (u16, http::HeaderMap, Value) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let res = c.send(req.body(kube::client::Body::from(body.bytes())).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_legacy_and_aggregated() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    for discovery in
        [Discovery::new(c.clone()).run().await.unwrap(), Discovery::new(c.clone()).run_aggregated().await.unwrap()]
    {
        let gvk = kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment");
        let (ar, caps) = discovery.resolve_gvk(&gvk).expect("deployments discovered");
        assert_eq!(ar.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.supports_operation("patch"));
        let ns = kube::core::GroupVersionKind::gvk("", "v1", "Namespace");
        assert_eq!(discovery.resolve_gvk(&ns).unwrap().1.scope, Scope::Cluster);
        for g in [
            "batch",
            "autoscaling",
            "networking.k8s.io",
            "rbac.authorization.k8s.io",
            "policy",
            "coordination.k8s.io",
            "apiextensions.k8s.io",
        ] {
            assert!(discovery.has_group(g), "{g}");
        }
    }
    let (code, _, list) = raw(&c, "GET", "/apis/apps/v1", None, None, None).await;
    assert_eq!(code, 200);
    let deploy = list["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments").unwrap();
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(deploy["singularName"], "deployment");
    assert!(list["resources"].as_array().unwrap().iter().any(|r| r["name"] == "deployments/status"));
    // Accept decides the format: aggregated when asked for, legacy otherwise.
    let (_, headers, agg) = raw(
        &c,
        "GET",
        "/api",
        None,
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"),
        None,
    )
    .await;
    assert_eq!(headers["content-type"], "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert_eq!(agg["kind"], "APIGroupDiscoveryList");
    let (_, headers, legacy) = raw(&c, "GET", "/api", None, Some("application/json"), None).await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(legacy["kind"], "APIVersions");
    assert_eq!(legacy["versions"], json!(["v1"]));
}

#[tokio::test]
async fn list_with_selectors_across_namespaces() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    for ns in ["alpha", "beta"] {
        namespaces
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
            .await
            .unwrap();
    }
    for (ns, name, labels) in [
        ("alpha", "a1", json!({"app": "web", "tier": "fe"})),
        ("alpha", "a2", json!({"app": "db", "tier": "be"})),
        ("beta", "b1", json!({"app": "web"})),
    ] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}});
        apply(&configmaps(&c, ns), "weaver", &cm).await.unwrap();
    }
    let all: Api<DynamicObject> = Api::all_with(c.clone(), &ApiResource::erase::<ConfigMap>(&()));
    let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
        l.items.into_iter().map(|o| format!("{}/{}", o.metadata.namespace.unwrap(), o.metadata.name.unwrap())).collect()
    };
    assert_eq!(names(all.list(&ListParams::default().labels("app=web")).await.unwrap()), ["alpha/a1", "beta/b1"]);
    assert_eq!(names(all.list(&ListParams::default().labels("app==web,tier")).await.unwrap()), ["alpha/a1"]);
    let not_web: Vec<String> = names(all.list(&ListParams::default().labels("app!=web")).await.unwrap())
        .into_iter()
        .filter(|n| n.starts_with("alpha/") || n.starts_with("beta/"))
        .collect();
    assert_eq!(
        not_web,
        ["alpha/a2", "alpha/kube-root-ca.crt", "beta/kube-root-ca.crt"],
        "!= matches objects without the label"
    );
    assert_eq!(
        names(all.list(&ListParams::default().labels("tier in (fe,be)")).await.unwrap()),
        ["alpha/a1", "alpha/a2"]
    );
    assert_eq!(
        names(all.list(&ListParams::default().labels("app,tier notin (fe)")).await.unwrap()),
        ["alpha/a2", "beta/b1"]
    );
    assert_eq!(names(all.list(&ListParams::default().labels("app,!tier")).await.unwrap()), ["beta/b1"]);
    assert_eq!(names(all.list(&ListParams::default().fields("metadata.name=a2")).await.unwrap()), ["alpha/a2"]);
    assert_eq!(
        names(configmaps(&c, "alpha").list(&ListParams::default().labels("app")).await.unwrap()),
        ["alpha/a1", "alpha/a2"]
    );
    // Pagination with continue tokens.
    let page = all.list(&ListParams::default().labels("app").limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let token = page.metadata.continue_.clone().expect("continue token");
    assert_eq!(page.metadata.remaining_item_count, Some(1));
    let rest = all.list(&ListParams::default().labels("app").limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(names(rest), ["beta/b1"]);
    // The raw list shape: kind XList, list resourceVersion, items without kind.
    let (_, _, l) =
        raw(&c, "GET", "/api/v1/namespaces/alpha/configmaps?labelSelector=app%3Dweb", None, None, None).await;
    assert_eq!(l["kind"], "ConfigMapList");
    assert_eq!(l["apiVersion"], "v1");
    assert!(l["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(l["items"][0].get("kind").is_none());
    let e = api_error(all.list(&ListParams::default().fields("spec.foo=x")).await.unwrap_err());
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn apply_creates_with_real_managed_fields_and_unowned_defaults() {
    let (server, _c, api) = default_deployments().await;
    let obj = apply(
        &api,
        "weaver",
        &deployment("web", json!([{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}])),
    )
    .await
    .unwrap();
    assert_eq!(server.requests().last().unwrap().status, 201, "apply that creates answers 201");
    let entry = managed_entry(&obj, "weaver", "Apply").expect("apply entry");
    assert_eq!(entry["apiVersion"], "apps/v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
    );
    let spec = &obj["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["securityContext"], json!({}));
    let ctr = &pod["containers"][0];
    assert_eq!(ctr["imagePullPolicy"], "IfNotPresent");
    assert_eq!(ctr["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(ctr["terminationMessagePolicy"], "File");
    assert_eq!(ctr["ports"][0]["protocol"], "TCP");
    assert_eq!(ctr["resources"], json!({}));
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(obj["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(obj["status"], json!({}), "the apply response predates the controller's status update");
}

#[tokio::test]
async fn update_operation_owns_what_it_set_including_defaults() {
    let (_server, _c, api) = default_deployments().await;
    let pp = PostParams { field_manager: Some("kubectl-create".into()), ..Default::default() };
    let obj: DynamicObject =
        serde_json::from_value(deployment("web", json!([{"name": "web", "image": "nginx"}]))).unwrap();
    let created = serde_json::to_value(api.create(&pp, &obj).await.unwrap()).unwrap();
    let fields = &managed_entry(&created, "kubectl-create", "Update").unwrap()["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:strategy"],
        json!({"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}})
    );
    assert_eq!(fields["f:spec"]["f:revisionHistoryLimit"], json!({}));
    let ctr = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(ctr.get(".").is_none(), "containers is null, not absent, in the zero object");
    assert_eq!(ctr["k:{\"name\":\"web\"}"]["f:imagePullPolicy"], json!({}));
    assert_eq!(ctr["k:{\"name\":\"web\"}"]["f:resources"], json!({}));
    assert_eq!(fields["f:spec"]["f:template"]["f:metadata"]["f:labels"]["."], json!({}));
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always",
        ":latest pulls always"
    );
}

#[tokio::test]
async fn reapply_is_a_no_op() {
    let (_server, _c, api) = default_deployments().await;
    let cfg = web();
    apply(&api, "weaver", &cfg).await.unwrap();
    let before = serde_json::to_value(api.get("web").await.unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = apply(&api, "weaver", &cfg).await.unwrap();
    assert_eq!(again["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
    assert_eq!(again["metadata"]["managedFields"], before["metadata"]["managedFields"]);
    assert_eq!(again, before);
}

#[tokio::test]
async fn apply_removes_fields_it_no_longer_applies() {
    let (_server, _c, api) = default_deployments().await;
    let mut cfg = deployment(
        "web",
        json!([{"name": "web", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
    );
    cfg["metadata"]["labels"] = json!({"team": "x", "tier": "fe"});
    cfg["spec"]["replicas"] = json!(3);
    apply(&api, "weaver", &cfg).await.unwrap();
    cfg["metadata"]["labels"] = json!({"team": "x"});
    cfg["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let obj = apply(&api, "weaver", &cfg).await.unwrap();
    assert_eq!(obj["metadata"]["labels"], json!({"team": "x"}));
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(obj["spec"]["replicas"], 1, "pruned, then defaulted again");
    assert_eq!(obj["metadata"]["generation"], 2);
    assert!(managed_entry(&obj, "weaver", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());
}

#[tokio::test]
async fn conflicts_with_an_update_manager_and_force() {
    let (_server, _c, api) = default_deployments().await;
    let mut cfg = web();
    cfg["spec"]["replicas"] = json!(2);
    apply(&api, "weaver", &cfg).await.unwrap();
    let edit = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
    api.patch("web", &edit, &Patch::Merge(json!({"spec": {"replicas": 5}}))).await.unwrap();
    cfg["spec"]["replicas"] = json!(3);
    let e = api_error(apply(&api, "weaver", &cfg).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(e.message, "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas");
    let causes = e.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].message, "conflict with \"kubectl-edit\" using apps/v1");
    let obj = force_apply(&api, "weaver", &cfg).await.unwrap();
    assert_eq!(obj["spec"]["replicas"], 3);
    assert!(managed_entry(&obj, "kubectl-edit", "Update").is_none(), "the editor owned only replicas and lost it");
    assert!(managed_entry(&obj, "weaver", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());
}

#[tokio::test]
async fn conflicts_between_appliers_and_shared_ownership() {
    let (_server, _c, api) = default_deployments().await;
    let cfg = web();
    apply(&api, "weaver", &cfg).await.unwrap();
    // Same value: no conflict, both own the field.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    let obj = apply(&api, "other", &other).await.unwrap();
    let path = |o: &Value, m: &str| {
        managed_entry(o, m, "Apply").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"].clone()
    };
    assert_eq!(path(&obj, "weaver"), json!({}));
    assert_eq!(path(&obj, "other"), json!({}));
    // A different value conflicts with the other applier (no "using" for appliers).
    let mut changed = other.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    let e = api_error(apply(&api, "other", &changed).await.unwrap_err());
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"weaver\": .spec.template.spec.containers[name=\"web\"].image"
    );
    // weaver stops applying the image; the co-owner keeps it.
    let mut without = cfg.clone();
    without["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    let obj = apply(&api, "weaver", &without).await.unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    assert_eq!(path(&obj, "weaver"), Value::Null);
    assert_eq!(path(&obj, "other"), json!({}));
}

#[tokio::test]
async fn keyed_list_items_have_independent_owners() {
    let (_server, _c, api) = default_deployments().await;
    apply(&api, "team-a", &deployment("web", json!([{"name": "a", "image": "a:1"}]))).await.unwrap();
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:1"}]}}}});
    let obj = apply(&api, "team-b", &b).await.unwrap();
    let names: Vec<&str> = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let owned = |o: &Value, m: &str| -> Vec<String> {
        managed_entry(o, m, "Apply").unwrap()["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(owned(&obj, "team-a"), ["k:{\"name\":\"a\"}"]);
    assert_eq!(owned(&obj, "team-b"), ["k:{\"name\":\"b\"}"]);
    // team-a re-applies without knowing about b: b survives.
    let obj = apply(&api, "team-a", &deployment("web", json!([{"name": "a", "image": "a:2"}]))).await.unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);
    // team-b drops its container: only b goes away.
    let mut none = b.clone();
    none["spec"]["template"]["spec"]["containers"] = json!([]);
    let obj = apply(&api, "team-b", &none).await.unwrap();
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["name"], "a");
    assert_eq!(obj["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let (server, _c, api) = default_deployments().await;
    let cfg = web();
    let mut pp = PatchParams::apply("weaver");
    pp.dry_run = true;
    let would = serde_json::to_value(api.patch("web", &pp, &Patch::Apply(&cfg)).await.unwrap()).unwrap();
    assert_eq!(would["spec"]["revisionHistoryLimit"], 10, "dry run returns the defaulted object");
    assert!(would["metadata"].get("resourceVersion").is_none());
    assert_eq!(api_error(api.get("web").await.unwrap_err()).code, 404);
    apply(&api, "weaver", &cfg).await.unwrap();
    let live = serde_json::to_value(api.get("web").await.unwrap()).unwrap();
    let mut changed = cfg.clone();
    changed["spec"]["replicas"] = json!(4);
    let would = serde_json::to_value(api.patch("web", &pp, &Patch::Apply(&changed)).await.unwrap()).unwrap();
    assert_eq!(would["spec"]["replicas"], 4);
    let now = serde_json::to_value(api.get("web").await.unwrap()).unwrap();
    assert_eq!(now["spec"]["replicas"], 1);
    assert_eq!(now["metadata"]["resourceVersion"], live["metadata"]["resourceVersion"]);
    let dp = DeleteParams { dry_run: true, ..Default::default() };
    api.delete("web", &dp).await.unwrap();
    assert!(api.get("web").await.is_ok());
    let log = server.requests();
    assert!(log.iter().filter(|r| r.dry_run).count() >= 3);
    assert!(log.iter().any(|r| r.method == "DELETE" && r.dry_run));
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let (_server, c, api) = default_deployments().await;
    apply(&api, "weaver", &deployment("web", json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])))
        .await
        .unwrap();
    let pp = PatchParams { field_manager: Some("patcher".into()), ..Default::default() };
    let obj = api.patch("web", &pp, &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}}))).await.unwrap();
    assert_eq!(obj.metadata.labels.unwrap()["x"], "1");
    let path = "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=patcher";
    let ops = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "hi"}},
    ]);
    let (code, _, obj) = raw(&c, "PATCH", path, Some("application/json-patch+json"), None, Some(ops)).await;
    assert_eq!(code, 200);
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["annotations"]["note"], "hi");
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "a", "$patch": "delete"}]}}}});
    let obj = serde_json::to_value(api.patch("web", &pp, &Patch::Strategic(smp)).await.unwrap()).unwrap();
    let ctrs = obj["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(ctrs.len(), 1);
    assert_eq!(ctrs[0]["image"], "b:2");
    assert_eq!(ctrs[0]["terminationMessagePolicy"], "File", "merged into the live item, not replaced");
    let entry = managed_entry(&obj, "patcher", "Update").expect("patches are Update operations");
    assert_eq!(entry["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // A failing JSON patch is a generic 422.
    let bad = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
    let (code, _, e) = raw(&c, "PATCH", path, Some("application/json-patch+json"), None, Some(bad)).await;
    assert_eq!((code, e["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(e["message"], "the server rejected our request due to an error in our request");
    // force is only for apply.
    let forced = format!("{path}&force=true");
    let (code, _, e) = raw(&c, "PATCH", &forced, Some("application/merge-patch+json"), None, Some(json!({}))).await;
    assert_eq!(code, 422);
    assert_eq!(
        e["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
}

#[tokio::test]
async fn put_with_stale_resource_version_conflicts() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}})).unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let mut first = created.clone();
    first.data.as_mut().unwrap().insert("a".into(), "2".into());
    let updated = api.replace("cfg", &PostParams::default(), &first).await.unwrap();
    assert!(
        updated.metadata.resource_version.as_deref().unwrap().parse::<u64>().unwrap()
            > created.metadata.resource_version.as_deref().unwrap().parse::<u64>().unwrap()
    );
    let mut stale = created.clone();
    stale.data.as_mut().unwrap().insert("a".into(), "3".into());
    let e = api_error(api.replace("cfg", &PostParams::default(), &stale).await.unwrap_err());
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let d = e.details.unwrap();
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("cfg", "configmaps"));
    stale.metadata.resource_version = None;
    let forced = api.replace("cfg", &PostParams::default(), &stale).await.unwrap();
    assert_eq!(forced.data.unwrap()["a"], "3", "no resourceVersion means an unconditional update");
    // A no-op PUT keeps the resourceVersion.
    let again = api.replace("cfg", &PostParams::default(), &api.get("cfg").await.unwrap()).await.unwrap();
    assert_eq!(again.metadata.resource_version, api.get("cfg").await.unwrap().metadata.resource_version);
}

#[tokio::test]
async fn delete_waits_for_finalizers() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api = configmaps(&c, "default");
    apply(&api, "weaver", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).await.unwrap();
    let (code, _, body) = raw(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/held",
        Some("application/json"),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "ConfigMap", "a pending deletion answers with the object");
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("held").await.unwrap_err()).code, 404);
    apply(&api, "weaver", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "free"}}))
        .await
        .unwrap();
    let (code, _, body) = raw(&c, "DELETE", "/api/v1/namespaces/default/configmaps/free", None, None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["details"]["name"], "free");
    assert_eq!(body["details"]["kind"], "configmaps");
}

#[tokio::test]
async fn crd_then_custom_resources() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let crds = Api::<DynamicObject>::all_with(
        c.clone(),
        &ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    );
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": 1},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}},
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema}}]}});
    // Discovery read before the CRD: the server's kept documents change with its CRDs.
    let gvk = kube::core::GroupVersionKind::gvk("example.com", "v1", "Widget");
    let discovered = || async {
        let aggregated = Discovery::new(c.clone()).run_aggregated().await.unwrap();
        let legacy = Discovery::new(c.clone()).run().await.unwrap();
        [aggregated.resolve_gvk(&gvk).is_some(), legacy.resolve_gvk(&gvk).is_some()]
    };
    assert_eq!(discovered().await, [false, false], "widgets before their CRD");
    let created = apply(&crds, "weaver", &crd).await.unwrap();
    assert_eq!(created["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(discovered().await, [true, true], "widgets once their CRD is established");
    let got = serde_json::to_value(crds.get("widgets.example.com").await.unwrap()).unwrap();
    let conds = got["status"]["conditions"].as_array().unwrap();
    assert!(conds.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
    assert!(conds.iter().any(|c| c["type"] == "NamesAccepted" && c["status"] == "True"));
    let discovery = Discovery::new(c.clone()).run().await.unwrap();
    let (ar, caps) = discovery.resolve_gvk(&gvk).expect("widgets served");
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let mut w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
        "spec": {"tags": ["a", "b"], "unknown": 1, "extra": {"free": {"form": true}}}, "status": {"ready": true}});
    let e = api_error(apply(&widgets, "weaver", &w).await.unwrap_err());
    assert_eq!(e.code, 500);
    assert_eq!(
        e.message,
        "failed to create typed patch object (default/w1; example.com/v1, Kind=Widget): .spec.unknown: field not declared in schema"
    );
    w["spec"].as_object_mut().unwrap().remove("unknown");
    let obj = apply(&widgets, "weaver", &w).await.unwrap();
    assert_eq!(obj["spec"]["size"], 1, "schema default");
    assert_eq!(obj["spec"]["extra"]["free"]["form"], true, "preserved");
    assert!(obj.get("status").is_none(), "status is a subresource");
    assert_eq!(obj["metadata"]["generation"], 1);
    let fields = &managed_entry(&obj, "weaver", "Apply").unwrap()["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:tags"], json!({"v:\"a\"": {}, "v:\"b\"": {}}));
    let beta = ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("example.com", "v1beta1", "Widget"),
        "widgets",
    );
    let via_beta = Api::<DynamicObject>::namespaced_with(c.clone(), "default", &beta).get("w1").await.unwrap();
    assert_eq!(via_beta.types.unwrap().api_version, "example.com/v1beta1");
    let mut w2 = w.clone();
    w2["spec"]["size"] = json!(3);
    let obj = apply(&widgets, "weaver", &w2).await.unwrap();
    assert_eq!(obj["metadata"]["generation"], 2);
    // Non-apply writes prune unknown fields instead.
    let pp = PatchParams { field_manager: Some("patcher".into()), ..Default::default() };
    let obj = widgets.patch("w1", &pp, &Patch::Merge(json!({"spec": {"unknown": 2, "size": 4}}))).await.unwrap();
    assert!(obj.data["spec"].get("unknown").is_none(), "pruned");
    assert_eq!(obj.data["spec"]["size"], 4);
    assert_eq!(widgets.list(&ListParams::default()).await.unwrap().items.len(), 1);
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(crds.get("widgets.example.com").await.unwrap_err()).code, 404);
    assert_eq!(discovered().await, [false, false], "widgets after their CRD is deleted");
    let (code, _, body) = raw(&c, "GET", "/apis/example.com/v1/namespaces/default/widgets", None, None, None).await;
    assert_eq!(code, 404);
    assert_eq!(body["message"], "the server could not find the requested resource");
}

#[tokio::test]
async fn faults_and_request_log() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api = configmaps(&c, "default");
    server.clear_requests();
    server.inject(Fault::status("GET", "/api/v1/namespaces/default/configmaps", 500));
    let e = api_error(api.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert!(api.list(&ListParams::default()).await.is_ok(), "the fault was used up");
    // kube's default client retries 503s: the log shows every attempt.
    server.clear_requests();
    server.inject(Fault::status("*", "/api/v1/namespaces/default/configmaps", 503).times(2));
    assert!(api.list(&ListParams::default()).await.is_ok());
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    server.inject(Fault::delay("PATCH", "/api/v1/namespaces/default/configmaps/slow", Duration::from_millis(300)));
    let start = Instant::now();
    apply(&api, "weaver", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "slow"}}))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.method, "PATCH");
    assert_eq!(last.path, "/api/v1/namespaces/default/configmaps/slow");
    assert_eq!(last.field_manager.as_deref(), Some("weaver"));
    assert_eq!(last.content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert!(last.query.contains("fieldManager=weaver"));
    assert!(!last.dry_run);
    assert_eq!(last.user, "fake-user");
    assert_eq!(last.status, 201);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn errors_have_real_status_bodies() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let e = api_error(deployments(&c, "default").get("nope").await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "deployments.apps \"nope\" not found")
    );
    let d = e.details.unwrap();
    assert_eq!((d.name.as_str(), d.group.as_str(), d.kind.as_str()), ("nope", "apps", "deployments"));
    let (code, _, body) = raw(&c, "GET", "/apis/nope.example.com/v1/things", None, None, None).await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(body["message"], "the server could not find the requested resource");
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dup"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let e = api_error(api.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (409, "AlreadyExists", "configmaps \"dup\" already exists")
    );
    let missing: Api<ConfigMap> = Api::namespaced(c.clone(), "missing");
    let e = api_error(missing.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((e.code, e.message.as_str()), (404, "namespaces \"missing\" not found"));
    let e = api_error(
        apply(
            &configmaps(&c, "missing"),
            "weaver",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.message.as_str()), (404, "namespaces \"missing\" not found"));
    let bad: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    let e = api_error(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", e.message);
    let cause = &e.details.unwrap().causes[0];
    assert_eq!((cause.reason.as_str(), cause.field.as_str()), ("FieldValueInvalid", "metadata.name"));
    let (code, _, body) = raw(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        Some("application/apply-patch+yaml"),
        None,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let mut wrong = deployment("web", json!([{"name": "web", "image": "nginx"}]));
    wrong["kind"] = json!("StatefulSet");
    assert_eq!(api_error(apply(&deployments(&c, "default"), "weaver", &wrong).await.unwrap_err()).code, 400);
    let e = api_error(apply(&deployments(&c, "default"), "weaver", &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(e.message.contains("spec.template.metadata.labels: Invalid value"), "{}", e.message);
}

#[tokio::test]
async fn forbid_rules_answer_like_rbac() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    server.forbid("patch", "deployments", Some("default"));
    let e = api_error(
        apply(&deployments(&c, "default"), "weaver", &deployment("web", json!([{"name": "web", "image": "nginx"}])))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "deployments.apps \"web\" is forbidden: User \"fake-user\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"default\""
    );
    server.forbid("list", "namespaces", None);
    let e = api_error(Api::<Namespace>::all(c.clone()).list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"fake-user\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert!(deployments(&c, "default").list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn namespaces_bootstrap_and_cascade() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let ns = serde_json::to_value(
        namespaces
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    assert!(configmaps(&c, "team").get("kube-root-ca.crt").await.is_ok());
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(c.clone(), "team");
    assert!(sas.get("default").await.is_ok());
    apply(
        &configmaps(&c, "team"),
        "weaver",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .await
    .unwrap();
    let (code, _, body) = raw(&c, "DELETE", "/api/v1/namespaces/team", None, None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"]["phase"], "Terminating");
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(api_error(namespaces.get("team").await.unwrap_err()).code, 404);
    let all: Api<DynamicObject> = Api::all_with(c.clone(), &ApiResource::erase::<ConfigMap>(&()));
    assert!(
        all.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|o| o.metadata.namespace.as_deref() != Some("team"))
    );
}

/// The deployment controller's ReplicaSets: one per template, named after its hash, owned by
/// the Deployment; the current one has its replicas and revision, the others none, and a
/// rollback reuses the earlier one with a new revision, remembering the old.
#[tokio::test]
async fn a_deployment_rolls_out_through_replica_sets_of_its_revisions() {
    let (_server, c, api) = default_deployments().await;
    let replica_sets: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), "default", &ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()));
    let with_image = |image: &str| {
        let mut web = deployment("web", json!([{"name": "web", "image": image}]));
        web["spec"]["replicas"] = json!(2);
        web
    };
    // The Deployment's revision, the ReplicaSet its Progressing condition names, and each
    // ReplicaSet's (name, revision, replicas, revision-history).
    let rollout = || async {
        let web = serde_json::to_value(api.get("web").await.unwrap()).unwrap();
        let progressing = web["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing");
        let message = progressing.unwrap()["message"].as_str().unwrap().to_string();
        let uid = web["metadata"]["uid"].clone();
        let mut sets: Vec<(String, String, i64, Option<String>)> = Vec::new();
        for rs in replica_sets.list(&ListParams::default()).await.unwrap().items {
            let rs = serde_json::to_value(rs).unwrap();
            let name = rs["metadata"]["name"].as_str().unwrap().to_string();
            let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap();
            assert_eq!(name, format!("web-{hash}"));
            assert_eq!(rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"], hash);
            assert_eq!(rs["spec"]["selector"]["matchLabels"], json!({"app": "web", "pod-template-hash": hash}));
            let owner = &rs["metadata"]["ownerReferences"][0];
            assert_eq!(
                (&owner["kind"], &owner["uid"], &owner["controller"]),
                (&json!("Deployment"), &uid, &json!(true))
            );
            let annotations = &rs["metadata"]["annotations"];
            sets.push((
                name,
                annotations["deployment.kubernetes.io/revision"].as_str().unwrap().to_string(),
                rs["spec"]["replicas"].as_i64().unwrap(),
                annotations["deployment.kubernetes.io/revision-history"].as_str().map(String::from),
            ));
        }
        sets.sort();
        (web["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone(), message, sets)
    };
    apply(&api, "weaver", &with_image("nginx:1.25")).await.unwrap();
    let (revision, message, sets) = rollout().await;
    assert_eq!(revision, "1");
    let [(first, one, 2, None)] = &sets[..] else { panic!("{sets:?}") };
    assert_eq!(one, "1");
    assert!(message.contains(&format!("\"{first}\"")), "{message}");

    apply(&api, "weaver", &with_image("nginx:1.26")).await.unwrap();
    let (revision, message, sets) = rollout().await;
    assert_eq!(revision, "2");
    let second = sets.iter().find(|set| set.0 != *first).expect("a second ReplicaSet").0.clone();
    assert!(message.contains(&format!("\"{second}\"")), "{message}");
    let mut expected = vec![(first.clone(), "1".to_string(), 0, None), (second.clone(), "2".to_string(), 2, None)];
    expected.sort();
    assert_eq!(sets, expected);

    apply(&api, "weaver", &with_image("nginx:1.25")).await.unwrap();
    let (revision, _, sets) = rollout().await;
    assert_eq!(revision, "3");
    let mut expected =
        vec![(first.clone(), "3".to_string(), 2, Some("1".to_string())), (second.clone(), "2".to_string(), 0, None)];
    expected.sort();
    assert_eq!(sets, expected);
}

#[tokio::test]
async fn auto_ready_statuses_and_switching_it_off() {
    let (server, c, api) = default_deployments().await;
    let mut cfg = web();
    cfg["spec"]["replicas"] = json!(2);
    apply(&api, "weaver", &cfg).await.unwrap();
    let d: Deployment = serde_json::from_value(serde_json::to_value(api.get("web").await.unwrap()).unwrap()).unwrap();
    let status = d.status.unwrap();
    assert_eq!(
        (status.ready_replicas, status.available_replicas, status.updated_replicas, status.observed_generation),
        (Some(2), Some(2), Some(2), Some(1))
    );
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
    );
    assert_eq!(d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"], "1");
    let jobs: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), "default", &ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&()));
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    let created = apply(&jobs, "weaver", &job).await.unwrap();
    assert_eq!(created["spec"]["backoffLimit"], 6);
    assert_eq!(created["spec"]["completionMode"], "NonIndexed");
    let uid = created["metadata"]["uid"].as_str().unwrap();
    assert_eq!(created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], uid);
    let done = serde_json::to_value(jobs.get("once").await.unwrap()).unwrap();
    assert_eq!(done["status"]["succeeded"], 1);
    assert!(done["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Complete"));
    server.set_auto_ready(false);
    apply(&api, "weaver", &deployment("slow", json!([{"name": "web", "image": "nginx:1.25"}]))).await.unwrap();
    let slow = serde_json::to_value(api.get("slow").await.unwrap()).unwrap();
    assert_eq!(slow["status"], json!({}));
    server.set_auto_ready(true);
    let slow = serde_json::to_value(api.get("slow").await.unwrap()).unwrap();
    assert_eq!(slow["status"]["readyReplicas"], 1);
}

#[tokio::test]
async fn services_get_allocated_fields_the_applier_does_not_own() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ApiResource::erase::<Service>(&()));
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let obj = apply(&api, "weaver", &svc).await.unwrap();
    let spec = &obj["spec"];
    let ip = spec["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."));
    assert_eq!(spec["clusterIPs"], json!([ip]));
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
    assert_eq!(obj["status"], json!({"loadBalancer": {}}));
    let owned = &managed_entry(&obj, "weaver", "Apply").unwrap()["fieldsV1"]["f:spec"];
    assert_eq!(
        owned,
        &json!({"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}, "f:selector": {}})
    );
    let again = apply(&api, "weaver", &svc).await.unwrap();
    assert_eq!(again["spec"]["clusterIP"], ip.as_str());
    assert_eq!(again["metadata"]["resourceVersion"], obj["metadata"]["resourceVersion"]);
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "default");
    let sapi: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ApiResource::erase::<Secret>(&()));
    apply(&sapi, "weaver", &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})).await.unwrap();
    let s = serde_json::to_value(secrets.get("s").await.unwrap()).unwrap();
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    assert!(s.get("stringData").is_none());
    assert_eq!(s["type"], "Opaque");
}

/// What kube-apiserver 1.32.13 answered for the same objects.
#[tokio::test]
async fn network_policies_and_disruption_budgets_are_defaulted_as_1_32_does() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let resource = |group: &str, kind: &str, plural: &str| ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    };
    let policies: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), "default", &resource("networking.k8s.io", "NetworkPolicy", "networkpolicies"));
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
        "spec": {"podSelector": {"matchLabels": {"a": "b"}}, "ingress": [{"ports": [{"port": 8080}]}],
            "egress": [{"ports": [{"port": 443}, {"port": 53, "protocol": "UDP"}]},
                {"to": [{"namespaceSelector": {"matchLabels": {"k": "v"}}, "podSelector": {}}]}]}});
    let stored = apply(&policies, "weaver", &policy).await.unwrap();
    assert_eq!(
        stored["spec"],
        json!({"egress": [{"ports": [{"port": 443, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"k": "v"}}, "podSelector": {}}]}],
            "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}], "podSelector": {"matchLabels": {"a": "b"}},
            "policyTypes": ["Ingress", "Egress"]})
    );
    assert!(stored.get("status").is_none(), "NetworkPolicy has no status: {stored}");

    let budgets: Api<DynamicObject> =
        Api::namespaced_with(c.clone(), "default", &resource("policy", "PodDisruptionBudget", "poddisruptionbudgets"));
    let budget = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
        "spec": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow", "selector": {"matchLabels": {"a": "b"}}}});
    let stored = apply(&budgets, "weaver", &budget).await.unwrap();
    assert_eq!(stored["spec"], budget["spec"]);
    assert_eq!(
        stored["status"],
        json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
    );
}

#[tokio::test]
async fn watch_streams_changes() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default().timeout(10), &rv).await.unwrap().boxed();
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "watched"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("watched", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap().unwrap() {
        match ev {
            WatchEvent::Added(o) => seen.push(format!("added {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => {
                seen.push(format!("deleted {}", o.metadata.name.unwrap()));
                break;
            }
            other => seen.push(format!("{other:?}")),
        }
    }
    assert_eq!(seen, ["added watched", "deleted watched"]);
}

#[tokio::test]
async fn contexts_select_the_user() {
    let server = TestApiServer::start();
    // `other-user` is a plain user: RBAC grants it nothing, unlike the admin `fake-user`.
    let other = client_for(&server, Some("other")).await;
    let e = api_error(Api::<Namespace>::all(other).list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"other-user\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert_eq!(server.requests().last().unwrap().user, "other-user");
    let c = client(&server).await;
    Api::<Namespace>::all(c).list(&ListParams::default()).await.unwrap();
    assert_eq!(server.requests().last().unwrap().user, "fake-user");
    // No credentials at all is the anonymous user, who may only read health and version.
    let anonymous = Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let e = api_error(Api::<Namespace>::all(anonymous.clone()).list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert_eq!(server.requests().last().unwrap().user, "system:anonymous");
    anonymous.apiserver_version().await.unwrap();
}

#[tokio::test]
async fn foreground_deletion_and_garbage_collection() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api = configmaps(&c, "default");
    let owner = apply(&api, "weaver", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}))
        .await
        .unwrap();
    let uid = owner["metadata"]["uid"].as_str().unwrap();
    let dependent = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})
    };
    apply(&api, "weaver", &dependent("dep")).await.unwrap();
    let (code, _, body) = raw(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/owner",
        Some("application/json"),
        None,
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert_eq!(api_error(api.get("dep").await.unwrap_err()).code, 404, "dependents go first");
    assert_eq!(api_error(api.get("owner").await.unwrap_err()).code, 404);
    // Orphaning keeps the dependent and strips its owner reference.
    let owner =
        apply(&api, "weaver", &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner2"}}))
            .await
            .unwrap();
    let uid2 = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let mut orphan = dependent("orphan");
    orphan["metadata"]["ownerReferences"][0]["uid"] = json!(uid2);
    orphan["metadata"]["ownerReferences"][0]["name"] = json!("owner2");
    apply(&api, "weaver", &orphan).await.unwrap();
    api.delete("owner2", &DeleteParams::orphan()).await.unwrap();
    let kept = api.get("orphan").await.unwrap();
    assert!(kept.metadata.owner_references.is_none());
}

#[tokio::test]
async fn controllers_see_changes_anywhere_in_a_large_store() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let api = configmaps(&c, "default");
    let cm = |name: &str, owners: &[(&str, &str)]| {
        let refs: Vec<Value> = owners
            .iter()
            .map(|(n, uid)| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": uid}))
            .collect();
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        if !refs.is_empty() {
            o["metadata"]["ownerReferences"] = json!(refs);
        }
        o
    };
    let uid = |o: &Value| o["metadata"]["uid"].as_str().unwrap().to_string();
    // Unrelated objects around, so nothing relies on scanning a tiny store.
    for i in 0..40 {
        apply(&api, "weaver", &cm(&format!("filler-{i}"), &[])).await.unwrap();
    }
    // Background deletion cascades down an ownership chain; an object with
    // another owner left survives.
    let a = uid(&apply(&api, "weaver", &cm("a", &[])).await.unwrap());
    let keep = uid(&apply(&api, "weaver", &cm("keep", &[])).await.unwrap());
    let b = uid(&apply(&api, "weaver", &cm("b", &[("a", &a)])).await.unwrap());
    apply(&api, "weaver", &cm("c", &[("b", &b)])).await.unwrap();
    apply(&api, "weaver", &cm("shared", &[("a", &a), ("keep", &keep)])).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    for gone in ["a", "b", "c"] {
        assert_eq!(api_error(api.get(gone).await.unwrap_err()).code, 404, "{gone}");
    }
    assert!(api.get("shared").await.is_ok(), "one owner is still there");
    api.delete("keep", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(api.get("shared").await.unwrap_err()).code, 404);
    // An owner that never existed: collected at once.
    apply(&api, "weaver", &cm("stray", &[("ghost", "00000000-0000-4000-8000-000000000000")])).await.unwrap();
    assert_eq!(api_error(api.get("stray").await.unwrap_err()).code, 404);
    // The root CA ConfigMap comes back when deleted.
    let before = uid(&serde_json::to_value(api.get("kube-root-ca.crt").await.unwrap()).unwrap());
    api.delete("kube-root-ca.crt", &DeleteParams::default()).await.unwrap();
    let after = uid(&serde_json::to_value(api.get("kube-root-ca.crt").await.unwrap()).unwrap());
    assert_ne!(before, after);
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 41);
}

#[tokio::test]
async fn field_validation_yaml_bodies_and_status_subresource() {
    let server = TestApiServer::start();
    let c = client(&server).await;
    let path = "/api/v1/namespaces/default/configmaps/cfg?fieldManager=weaver";
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}, "bogus": true});
    // Apply is always strict: the typed conversion fails with a bare 500.
    let (code, _, e) = raw(
        &c,
        "PATCH",
        &format!("{path}&fieldValidation=Ignore"),
        Some("application/apply-patch+yaml"),
        None,
        Some(cfg.clone()),
    )
    .await;
    assert_eq!(code, 500);
    assert_eq!(
        e["message"],
        "failed to create typed patch object (default/cfg; /v1, Kind=ConfigMap): .bogus: field not declared in schema"
    );
    assert!(e.get("reason").is_none());
    // Other writes follow fieldValidation: Strict rejects, Warn (the default) warns and drops.
    let create = "/api/v1/namespaces/default/configmaps";
    let mut cfg = cfg;
    cfg["metadata"]["name"] = json!("posted");
    let (code, _, e) =
        raw(&c, "POST", &format!("{create}?fieldValidation=Strict"), Some("application/json"), None, Some(cfg.clone()))
            .await;
    assert_eq!((code, e["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        e["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\""
    );
    let (code, headers, obj) = raw(&c, "POST", create, Some("application/json"), None, Some(cfg)).await;
    assert_eq!(code, 201);
    assert_eq!(headers["warning"], "299 - \"unknown field \\\"bogus\\\"\"");
    assert!(obj.get("bogus").is_none());
    // Apply bodies may be YAML proper.
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"2\"\n".to_vec();
    let (code, _, obj) = raw(&c, "PATCH", path, Some("application/apply-patch+yaml"), None, yaml).await;
    assert_eq!(code, 201);
    assert_eq!(obj["data"]["a"], "2");
    // The status subresource changes only status, recorded as such.
    server.set_auto_ready(false);
    let api = deployments(&c, "default");
    apply(&api, "weaver", &web()).await.unwrap();
    let status_path = "/apis/apps/v1/namespaces/default/deployments/web/status?fieldManager=rollout";
    let patch = json!({"spec": {"replicas": 7}, "status": {"replicas": 1, "readyReplicas": 1}});
    let (code, _, obj) = raw(&c, "PATCH", status_path, Some("application/merge-patch+json"), None, Some(patch)).await;
    assert_eq!(code, 200);
    assert_eq!(obj["status"]["readyReplicas"], 1);
    assert_eq!(obj["spec"]["replicas"], 1, "spec is ignored through /status");
    let entry = managed_entry(&obj, "rollout", "Update").unwrap();
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}}));
    // Status sent to the main resource is ignored.
    let (_, _, obj) = raw(
        &c,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=x",
        Some("application/merge-patch+json"),
        None,
        Some(json!({"status": {"readyReplicas": 9}})),
    )
    .await;
    assert_eq!(obj["status"]["readyReplicas"], 1);
    // deletecollection with a selector.
    let cms = configmaps(&c, "default");
    for (n, l) in [("d1", "x"), ("d2", "x"), ("d3", "y")] {
        apply(
            &cms,
            "weaver",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"grp": l}}}),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("grp=x")).await.unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("grp"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["d3"]);
}

/// `kubectl scale`: the scale subresource reads and writes `spec.replicas` as an
/// `autoscaling/v1` Scale, recorded under the scaler with `subresource: scale` and no time, as
/// kube-apiserver 1.32 answers (checked on it with kubectl and curl).
#[tokio::test]
async fn the_scale_subresource_sets_replicas_under_the_scaler_s_name() {
    let (_server, c, api) = default_deployments().await;
    apply(&api, "weaver", &web()).await.unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1), "the defaulted replicas");
    assert_eq!(scale.status.map(|s| s.selector), Some(Some("app=web".to_string())));

    let params = PatchParams { field_manager: Some("kubectl-scale".into()), ..Default::default() };
    let scaled = api.patch_scale("web", &params, &Patch::Merge(json!({"spec": {"replicas": 3}}))).await.unwrap();
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(3));
    let live = serde_json::to_value(api.get("web").await.unwrap()).unwrap();
    assert_eq!((&live["spec"]["replicas"], &live["metadata"]["generation"]), (&json!(3), &json!(2)));
    let entry = managed_entry(&live, "kubectl-scale", "Update").expect("the scaler's entry");
    assert_eq!(entry["subresource"], "scale");
    assert_eq!(entry["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert!(entry.get("time").is_none(), "{entry}");

    let (code, _, status) = raw(
        &c,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        Some("application/merge-patch+json"),
        None,
        Some(json!({"spec": {"replicas": -1}})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let (code, _, resources) = raw(&c, "GET", "/apis/apps/v1", None, None, None::<Value>).await;
    assert_eq!(code, 200);
    let scale = resources["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").cloned();
    assert_eq!(
        scale,
        Some(json!({"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
                    "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}))
    );
}
