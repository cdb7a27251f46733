//! PodSecurity admission as kube-apiserver 1.32 answers it. Every expected message and warning
//! here was copied from a kube-apiserver v1.32.13 given the same requests.

use http_body_util::BodyExt;
use kube::Client;
use serde_json::{Value, json};
use weaver_test_apiserver::TestApiServer;

async fn admin(server: &TestApiServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

/// The server's answer: HTTP status, the text of each `Warning` header, and the body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn send(c: &Client, method: &str, path: &str, content_type: &str, body: &Value) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(kube::client::Body::from(body.to_string().into_bytes()))
        .unwrap();
    let response = c.send(request).await.unwrap();
    let status = response.status().as_u16();
    // `299 - "text"`, the text quoted.
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap();
            let quoted = v.strip_prefix("299 - ").unwrap_or_else(|| panic!("not a 299 warning: {v}"));
            serde_json::from_str::<String>(quoted).unwrap()
        })
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, warnings, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

async fn create(c: &Client, path: &str, object: &Value) -> Answer {
    send(c, "POST", path, "application/json", object).await
}

async fn namespace(c: &Client, name: &str, labels: Value) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    let answer = create(c, "/api/v1/namespaces", &ns).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

/// Violates every restricted check it can at once, baseline ones included.
fn bad_pod() -> Value {
    pod(
        "bad",
        json!({
            "hostNetwork": true,
            "initContainers": [{"name": "init", "image": "busybox",
                "securityContext": {"privileged": true, "capabilities": {"add": ["NET_RAW", "SYS_ADMIN"]}}}],
            "containers": [
                {"name": "a", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 80}]},
                {"name": "b", "image": "busybox", "securityContext": {"runAsUser": 0, "runAsNonRoot": false,
                    "seccompProfile": {"type": "Unconfined"}}},
            ],
            "volumes": [{"name": "h", "hostPath": {"path": "/tmp"}}, {"name": "nf", "nfs": {"server": "x", "path": "/"}}],
        }),
    )
}

fn compliant_pod(name: &str) -> Value {
    pod(
        name,
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "a", "image": "busybox",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        }),
    )
}

/// A Deployment whose one container `c` sets nothing.
fn bare_deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

const BARE_RESTRICTED: &str = "allowPrivilegeEscalation != false (container \"c\" must set \
    securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set \
    securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set \
    securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set \
    securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

#[tokio::test]
async fn an_enforced_level_refuses_pods_and_names_every_violation() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    namespace(&c, "strict", json!({"pod-security.kubernetes.io/enforce": "restricted"})).await;
    let pods = "/api/v1/namespaces/strict/pods?dryRun=All";

    let refused = create(&c, pods, &bad_pod()).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["message"],
        "pods \"bad\" is forbidden: violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true), \
         hostPort (container \"a\" uses hostPort 80), privileged (container \"init\" must not set \
         securityContext.privileged=true), allowPrivilegeEscalation != false (containers \"init\", \"a\", \"b\" must \
         set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers \"init\", \"a\", \
         \"b\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"init\" must not include \"NET_RAW\", \
         \"SYS_ADMIN\" in securityContext.capabilities.add), restricted volume types (volumes \"h\", \"nf\" use \
         restricted volume types \"hostPath\", \"nfs\"), runAsNonRoot != true (container \"b\" must not set \
         securityContext.runAsNonRoot=false), runAsUser=0 (container \"b\" must not set runAsUser=0), \
         seccompProfile (container \"b\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
    assert_eq!(refused.body["reason"], "Forbidden");
    assert_eq!(refused.body["details"], json!({"name": "bad", "kind": "pods"}));
    assert!(refused.warnings.is_empty(), "a refused request carries no warnings: {:?}", refused.warnings);

    let admitted = create(&c, pods, &compliant_pod("ok")).await;
    assert_eq!(admitted.status, 201, "{}", admitted.body);
    assert!(admitted.warnings.is_empty(), "{:?}", admitted.warnings);
}

#[tokio::test]
async fn workloads_are_only_warned_about_even_where_pods_are_refused() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    namespace(&c, "strict", json!({"pod-security.kubernetes.io/enforce": "restricted"})).await;
    let created = create(&c, "/apis/apps/v1/namespaces/strict/deployments?dryRun=All", &bare_deployment()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.warnings, [format!("would violate PodSecurity \"restricted:latest\": {BARE_RESTRICTED}")]);
    // Server-side apply (weaver's way) too.
    let applied = send(
        &c,
        "PATCH",
        "/apis/apps/v1/namespaces/strict/deployments/d?dryRun=All&fieldManager=test",
        "application/apply-patch+yaml",
        &bare_deployment(),
    )
    .await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    assert_eq!(applied.warnings, created.warnings);
    // Nothing to say in a namespace without labels.
    namespace(&c, "open", json!({})).await;
    let open = create(&c, "/apis/apps/v1/namespaces/open/deployments", &bare_deployment()).await;
    assert_eq!((open.status, open.warnings.len()), (201, 0));
}

#[tokio::test]
async fn the_warn_level_is_checked_separately_from_the_enforced_one() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    namespace(
        &c,
        "mixed",
        json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "v1.24"}),
    )
    .await;
    let pods = "/api/v1/namespaces/mixed/pods?dryRun=All";
    let plain = pod("plain", json!({"containers": [{"name": "c", "image": "busybox"}]}));
    let warned = create(&c, pods, &plain).await;
    assert_eq!(warned.status, 201, "baseline admits it: {}", warned.body);
    assert_eq!(warned.warnings, [format!("would violate PodSecurity \"restricted:v1.24\": {BARE_RESTRICTED}")]);
    let privileged = pod(
        "priv",
        json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}),
    );
    let refused = create(&c, pods, &privileged).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["message"],
        "pods \"priv\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not \
         set securityContext.privileged=true)"
    );
}

#[tokio::test]
async fn namespace_labels_must_name_a_level_and_a_version() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "zz-x", "labels": {
        "pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/warn-version": "v2.0"}}});
    let refused = create(&c, "/api/v1/namespaces", &ns).await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.body["message"],
        "Namespace \"zz-x\" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \
         \"strict\": must be one of privileged, baseline, restricted, \
         metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"v2.0\": must be \"latest\" or \
         \"v1.x\"]"
    );
    assert_eq!(refused.body["details"]["causes"][0]["field"], "metadata.labels[pod-security.kubernetes.io/enforce]");
}

#[tokio::test]
async fn a_stricter_enforce_level_warns_about_the_pods_already_there() {
    let server = TestApiServer::start();
    let c = admin(&server).await;
    namespace(&c, "two", json!({})).await;
    for (name, privileged) in [("p1", false), ("p2", true), ("p3", false)] {
        let p = pod(
            name,
            json!({"containers": [{"name": name, "image": "busybox", "securityContext": {"privileged": privileged}}]}),
        );
        assert_eq!(create(&c, "/api/v1/namespaces/two/pods", &p).await.status, 201);
    }
    let label = |level: &str| json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}});
    let relabel = |level| {
        let body = label(level);
        let c = c.clone();
        async move { send(&c, "PATCH", "/api/v1/namespaces/two", "application/merge-patch+json", &body).await }
    };
    let restricted = relabel("restricted").await;
    assert_eq!(restricted.status, 200, "{}", restricted.body);
    assert_eq!(
        restricted.warnings,
        [
            "existing pods in namespace \"two\" violate the new PodSecurity enforce level \"restricted:latest\"",
            "p1 (and 1 other pod): allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != \
             true, seccompProfile",
            "p2: privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, \
             seccompProfile",
        ]
    );
    assert!(relabel("privileged").await.warnings.is_empty(), "privileged checks nothing");
    assert_eq!(
        relabel("baseline").await.warnings,
        [
            "existing pods in namespace \"two\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "p2: privileged"
        ]
    );
    assert_eq!(relabel("restricted").await.status, 200);
    // The pods stay; an update that leaves their images alone is not checked, one that changes
    // an image is.
    let p2 = "/api/v1/namespaces/two/pods/p2";
    let labelled =
        send(&c, "PATCH", p2, "application/merge-patch+json", &json!({"metadata": {"labels": {"x": "y"}}})).await;
    assert_eq!(labelled.status, 200, "{}", labelled.body);
    let new_image = json!({"spec": {"containers": [{"name": "p2", "image": "busybox:1.36"}]}});
    let refused = send(&c, "PATCH", p2, "application/strategic-merge-patch+json", &new_image).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.body["message"],
        "pods \"p2\" is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"p2\" must not \
         set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"p2\" must set \
         securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"p2\" must set \
         securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"p2\" must set \
         securityContext.runAsNonRoot=true), seccompProfile (pod or container \"p2\" must set \
         securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}
