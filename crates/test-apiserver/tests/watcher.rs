//! kube::runtime's `watcher` against the fake, in its default list-then-watch
//! mode: the initial list, changes as they happen, and the relist after the
//! server answers a watch from a compacted resourceVersion with 410 Gone.

use futures::{Stream, StreamExt};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use std::time::Duration;
use weaver_test_apiserver::TestApiServer;

async fn admin(server: &TestApiServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "watched"}}, "data": {"k": value}}))
        .unwrap()
}

/// The next watcher event, shortened to what the tests compare: `init`,
/// `init-apply NAME`, `init-done`, `apply NAME=VALUE`, `delete NAME`, or the error.
async fn next(stream: &mut (impl Stream<Item = watcher::Result<Event<ConfigMap>>> + Unpin)) -> String {
    // A bound so that a missing event fails the test instead of hanging it.
    let item = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("a watcher event in time");
    let name = |cm: &ConfigMap| cm.metadata.name.clone().unwrap_or_default();
    match item.expect("the watcher stream goes on") {
        Ok(Event::Init) => "init".into(),
        Ok(Event::InitApply(cm)) => format!("init-apply {}", name(&cm)),
        Ok(Event::InitDone) => "init-done".into(),
        Ok(Event::Apply(cm)) => {
            format!("apply {}={}", name(&cm), cm.data.as_ref().and_then(|d| d.get("k")).cloned().unwrap_or_default())
        }
        Ok(Event::Delete(cm)) => format!("delete {}", name(&cm)),
        Err(watcher::Error::WatchError(status)) => format!("error {} {}", status.code, status.reason),
        Err(watcher::Error::InitialListFailed(kube::Error::Api(status))) => {
            format!("list failed {} {}", status.code, status.message)
        }
        Err(e) => format!("error {e}"),
    }
}

#[tokio::test]
async fn the_watcher_lists_follows_changes_and_relists_after_410() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    for ns in ["a", "b"] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(c.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    }
    let (a, b) = (Api::<ConfigMap>::namespaced(c.clone(), "a"), Api::<ConfigMap>::namespaced(c.clone(), "b"));
    a.create(&PostParams::default(), &configmap("one", "1")).await.unwrap();
    // Not selected: kube-root-ca.crt in every namespace, and this one.
    let unlabelled: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap();
    b.create(&PostParams::default(), &unlabelled).await.unwrap();

    // All namespaces, by label; the watch times out every second so that the
    // watcher re-watches from the last resourceVersion it saw.
    let config = watcher::Config::default().labels("app=watched").timeout(1);
    let mut stream = watcher::watcher(Api::<ConfigMap>::all(c.clone()), config).boxed();
    assert_eq!(next(&mut stream).await, "init");
    assert_eq!(next(&mut stream).await, "init-apply one");
    assert_eq!(next(&mut stream).await, "init-done");

    b.create(&PostParams::default(), &configmap("two", "2")).await.unwrap();
    assert_eq!(next(&mut stream).await, "apply two=2");
    b.patch("two", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "3"}}))).await.unwrap();
    assert_eq!(next(&mut stream).await, "apply two=3");
    a.delete("one", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut stream).await, "delete one");

    // Changes the watcher does not select move the server on; a compaction then
    // forgets the history after the last resourceVersion the watcher saw.
    b.patch("other", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "y"}}))).await.unwrap();
    server.compact();
    assert_eq!(next(&mut stream).await, "error 410 Expired");
    assert_eq!(next(&mut stream).await, "init");
    assert_eq!(next(&mut stream).await, "init-apply two");
    assert_eq!(next(&mut stream).await, "init-done");
    b.delete("two", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut stream).await, "delete two");

    // What the watcher sent: pages of lists, then watches from their resourceVersion with bookmarks.
    let requests = server.requests();
    let watches: Vec<_> = requests.iter().filter(|r| r.query.contains("watch=true")).collect();
    assert!(watches.len() >= 2, "{requests:#?}");
    for w in &watches {
        assert_eq!(w.path, "/api/v1/configmaps");
        for part in ["allowWatchBookmarks=true", "timeoutSeconds=1", "labelSelector=app%3Dwatched", "resourceVersion="]
        {
            assert!(w.query.contains(part), "{part} in {}", w.query);
        }
    }
    let lists = requests.iter().filter(|r| r.path == "/api/v1/configmaps" && !r.query.contains("watch=true"));
    assert_eq!(lists.count(), 2, "{requests:#?}");
}

/// An operator's view: a ServiceAccount allowed to watch one ConfigMap by name
/// in one namespace (resourceNames), through a TokenRequest token.
#[tokio::test]
async fn a_service_account_watches_one_object_by_name() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "operator"}})).unwrap();
    Api::<ServiceAccount>::namespaced(c.clone(), "default").create(&PostParams::default(), &sa).await.unwrap();
    let rbac = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "watch-one", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["source"], "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "watch-one", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "watch-one"},
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": "default"}]}),
    ];
    for object in &rbac {
        let gvk =
            kube::core::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", object["kind"].as_str().unwrap());
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(c.clone(), "default", &kube::discovery::ApiResource::from_gvk(&gvk));
        let name = object["metadata"]["name"].as_str().unwrap();
        api.patch(name, &PatchParams::apply("test"), &Patch::Apply(object)).await.unwrap();
    }
    let request: TokenRequest = serde_json::from_value(json!({"spec": {}})).unwrap();
    let issued = Api::<ServiceAccount>::namespaced(c.clone(), "default")
        .create_token_request("operator", &PostParams::default(), &request)
        .await
        .unwrap();
    let token = serde_json::to_value(issued).unwrap()["status"]["token"].as_str().unwrap().to_string();
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.auth_info.token = Some(token.into());
    let operator = Client::try_from(config).unwrap();

    let cms = Api::<ConfigMap>::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &configmap("source", "1")).await.unwrap();
    cms.create(&PostParams::default(), &configmap("unrelated", "1")).await.unwrap();
    let config = watcher::Config::default().fields("metadata.name=source");
    let mut stream = watcher::watcher(Api::<ConfigMap>::namespaced(operator.clone(), "default"), config).boxed();
    assert_eq!(next(&mut stream).await, "init");
    assert_eq!(next(&mut stream).await, "init-apply source");
    assert_eq!(next(&mut stream).await, "init-done");
    cms.patch("unrelated", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    cms.patch("source", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();
    assert_eq!(next(&mut stream).await, "apply source=2");
    assert!(server.requests().iter().any(|r| r.user == "system:serviceaccount:default:operator"
        && r.query.contains("watch=true")
        && r.status == 200));

    // Without a name, the same watch is refused: the watcher reports the 403.
    let mut all =
        watcher::watcher(Api::<ConfigMap>::namespaced(operator, "default"), watcher::Config::default()).boxed();
    assert_eq!(next(&mut all).await, "init");
    assert_eq!(
        next(&mut all).await,
        "list failed 403 configmaps is forbidden: User \"system:serviceaccount:default:operator\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
}

/// The ERROR event a real server sends, byte for byte, in a 200 response that then ends.
#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_the_410_event() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    Api::<ConfigMap>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &configmap("x", "1"))
        .await
        .unwrap();
    server.compact();
    let path = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=101&allowWatchBookmarks=true";
    let request = http::Request::builder().uri(path).body(kube::client::Body::from(Vec::new())).unwrap();
    let response = c.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let event: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap();
    let compacted = event["object"]["message"].as_str().unwrap().rsplit_once('(').unwrap().1.trim_end_matches(')');
    assert!(compacted.parse::<u64>().unwrap() > 101, "{body}");
    assert_eq!(
        body,
        format!(
            "{{\"type\":\"ERROR\",\"object\":{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"too old resource version: 101 ({compacted})\",\"reason\":\"Expired\",\"code\":410}}}}\n"
        )
    );
}
