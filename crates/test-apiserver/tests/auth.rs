//! TokenRequest tokens and RBAC, as kube-apiserver answers them: ServiceAccount
//! users, 401 for tokens that are unknown, expired or outlived their
//! ServiceAccount, and 403s worded by the RBAC authorizer.

use http_body_util::BodyExt;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery};
use kube::{Client, Error};
use serde_json::{Value, json};
use weaver_test_apiserver::TestApiServer;

async fn admin(server: &TestApiServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn with_token(server: &TestApiServer, token: &str) -> Client {
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.auth_info.token = Some(token.to_string().into());
    Client::try_from(config).unwrap()
}

fn api_error(e: Error) -> kube::core::Status {
    match e {
        Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// GET `path`: the HTTP status and the body.
async fn get(c: &Client, path: &str) -> (u16, Value) {
    let req = http::Request::builder().method("GET").uri(path).body(kube::client::Body::from(Vec::new())).unwrap();
    let res = c.send(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// POSTs a TokenRequest for ServiceAccount `name` with `spec`; the answer as JSON.
async fn request_token(c: &Client, ns: &str, name: &str, spec: Value) -> Result<Value, Error> {
    let request: TokenRequest = serde_json::from_value(json!({"spec": spec})).unwrap();
    let sas = Api::<ServiceAccount>::namespaced(c.clone(), ns);
    let issued = sas.create_token_request(name, &PostParams::default(), &request).await?;
    Ok(serde_json::to_value(issued).unwrap())
}

async fn service_account(admin: &Client, ns: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), ns).create(&PostParams::default(), &sa).await.unwrap();
}

async fn token(admin: &Client, ns: &str, name: &str) -> String {
    let issued = request_token(admin, ns, name, json!({})).await.unwrap();
    issued["status"]["token"].as_str().unwrap().to_string()
}

/// A ServiceAccount and a client holding a token for it.
async fn robot(server: &TestApiServer, admin: &Client, ns: &str, name: &str) -> Client {
    service_account(admin, ns, name).await;
    with_token(server, &token(admin, ns, name).await)
}

async fn namespace(admin: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(admin.clone()).create(&PostParams::default(), &ns).await.unwrap();
}

/// Server-side applies RBAC objects (or anything) as the admin.
async fn apply(c: &Client, objects: &[Value]) -> Result<(), Error> {
    for o in objects {
        let (group, version) = o["apiVersion"].as_str().unwrap().rsplit_once('/').unwrap_or(("", "v1"));
        let kind = o["kind"].as_str().unwrap();
        let plural = format!("{}s", kind.to_lowercase());
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: o["apiVersion"].as_str().unwrap().into(),
            kind: kind.into(),
            plural,
        };
        let api: Api<DynamicObject> = match o["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
            None => Api::all_with(c.clone(), &ar),
        };
        let name = o["metadata"]["name"].as_str().unwrap();
        api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(o)).await?;
    }
    Ok(())
}

fn role(kind: &str, ns: Option<&str>, name: &str, rules: Value) -> Value {
    let mut r =
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "rules": rules});
    if let Some(ns) = ns {
        r["metadata"]["namespace"] = json!(ns);
    }
    r
}

fn binding(kind: &str, ns: Option<&str>, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects});
    if let Some(ns) = ns {
        b["metadata"]["namespace"] = json!(ns);
    }
    b
}

fn sa_subject(ns: &str, name: &str) -> Value {
    json!([{"kind": "ServiceAccount", "name": name, "namespace": ns}])
}

fn configmaps(c: &Client, ns: &str) -> Api<ConfigMap> {
    Api::namespaced(c.clone(), ns)
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

#[tokio::test]
async fn token_request_issues_a_service_account_token() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    service_account(&admin, "default", "robot").await;
    let before = jiff::Timestamp::now();
    let issued = request_token(&admin, "default", "robot", json!({})).await.unwrap();
    assert_eq!(issued["spec"]["expirationSeconds"], 3600);
    assert_eq!(issued["spec"]["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    let expires: jiff::Timestamp = issued["status"]["expirationTimestamp"].as_str().unwrap().parse().unwrap();
    let lifetime = expires.duration_since(before).as_secs();
    assert!((3599..=3601).contains(&lifetime), "{lifetime}");
    // Unguessable: long, and never the same twice.
    let token_a = issued["status"]["token"].as_str().unwrap();
    assert!(token_a.len() >= 40 && !token_a.contains("robot"), "{token_a}");
    assert_ne!(token_a, token(&admin, "default", "robot").await);

    let robot = with_token(&server, token_a);
    let e = api_error(configmaps(&robot, "default").list(&ListParams::default()).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "configmaps is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(server.requests().last().unwrap().user, "system:serviceaccount:default:robot");
    let e = api_error(configmaps(&robot, "default").create(&PostParams::default(), &configmap("x")).await.unwrap_err());
    assert_eq!(
        e.message,
        "configmaps is forbidden: User \"system:serviceaccount:default:robot\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    let e = api_error(configmaps(&robot, "default").get("kube-root-ca.crt").await.unwrap_err());
    assert_eq!(
        e.message,
        "configmaps \"kube-root-ca.crt\" is forbidden: User \"system:serviceaccount:default:robot\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    let e = api_error(Api::<Namespace>::all(robot.clone()).get("default").await.unwrap_err());
    assert_eq!(
        e.message,
        "namespaces \"default\" is forbidden: User \"system:serviceaccount:default:robot\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"default\""
    );
    let e = api_error(Api::<Namespace>::all(robot.clone()).list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    // Its groups: a binding to `system:serviceaccounts:default` reaches it.
    apply(&admin, &[
        role("Role", Some("default"), "read", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}])),
        binding("RoleBinding", Some("default"), "all-sas", "Role", "read",
            json!([{"kind": "Group", "name": "system:serviceaccounts:default", "apiGroup": "rbac.authorization.k8s.io"}])),
    ]).await.unwrap();
    configmaps(&robot, "default").list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn token_request_errors_are_the_real_ones() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let e = api_error(request_token(&admin, "default", "nobody", json!({})).await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "serviceaccounts \"nobody\" not found")
    );
    service_account(&admin, "default", "robot").await;
    let e = api_error(request_token(&admin, "default", "robot", json!({"expirationSeconds": 599})).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let issued = request_token(&admin, "default", "robot", json!({"expirationSeconds": 600})).await.unwrap();
    assert_eq!(issued["spec"]["expirationSeconds"], 600);
}

#[tokio::test]
async fn tokens_stop_working_when_expired_or_their_service_account_is_gone() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let unknown = with_token(&server, "not-a-token");
    let (code, body) = get(&unknown, "/version").await;
    assert_eq!((code, body["message"].as_str()), (401, Some("Unauthorized")));

    service_account(&admin, "default", "robot").await;
    let robot = with_token(&server, &token(&admin, "default", "robot").await);
    assert_eq!(get(&robot, "/version").await.0, 200);
    server.expire_tokens();
    assert_eq!(get(&robot, "/version").await.0, 401);

    // Deleting the ServiceAccount invalidates its tokens, also once one of the same name is back.
    let robot = with_token(&server, &token(&admin, "default", "robot").await);
    assert_eq!(get(&robot, "/version").await.0, 200);
    let sas = Api::<ServiceAccount>::namespaced(admin.clone(), "default");
    sas.delete("robot", &DeleteParams::default()).await.unwrap();
    assert_eq!(get(&robot, "/version").await.0, 401);
    service_account(&admin, "default", "robot").await;
    assert_eq!(get(&robot, "/version").await.0, 401);
    assert_eq!(get(&with_token(&server, &token(&admin, "default", "robot").await), "/version").await.0, 200);

    // A token for another audience is not for this server.
    let elsewhere =
        request_token(&admin, "default", "robot", json!({"audiences": ["https://vault.example.com"]})).await.unwrap();
    assert_eq!(elsewhere["spec"]["audiences"], json!(["https://vault.example.com"]));
    let elsewhere = with_token(&server, elsewhere["status"]["token"].as_str().unwrap());
    assert_eq!(get(&elsewhere, "/version").await.0, 401);
}

#[tokio::test]
async fn discovery_and_version_are_open_to_authenticated_users() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let robot = robot(&server, &admin, "default", "robot").await;
    for path in ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/healthz"] {
        assert_eq!(get(&robot, path).await.0, 200, "{path}");
    }
    Discovery::new(robot.clone()).run_aggregated().await.unwrap();
    Discovery::new(robot.clone()).run().await.unwrap();
    // The anonymous user gets health and version only.
    let anonymous = Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    assert_eq!(get(&anonymous, "/version").await.0, 200);
    let (code, body) = get(&anonymous, "/api").await;
    assert_eq!(code, 403);
    assert_eq!(body["message"], "forbidden: User \"system:anonymous\" cannot get path \"/api\"");
}

#[tokio::test]
async fn roles_and_cluster_roles_through_role_and_cluster_role_bindings() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    for ns in ["a", "b"] {
        namespace(&admin, ns).await;
    }
    let robot = robot(&server, &admin, "a", "robot").await;
    let read = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]);
    // A Role through a RoleBinding: that namespace only. The subject's namespace defaults to the binding's.
    apply(
        &admin,
        &[
            role("Role", Some("a"), "read", read.clone()),
            binding(
                "RoleBinding",
                Some("a"),
                "read",
                "Role",
                "read",
                json!([{"kind": "ServiceAccount", "name": "robot"}]),
            ),
        ],
    )
    .await
    .unwrap();
    configmaps(&robot, "a").list(&ListParams::default()).await.unwrap();
    configmaps(&robot, "a").get("kube-root-ca.crt").await.unwrap();
    assert_eq!(api_error(configmaps(&robot, "b").list(&ListParams::default()).await.unwrap_err()).code, 403);
    assert_eq!(
        api_error(Api::<ConfigMap>::all(robot.clone()).list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
    let e = api_error(configmaps(&robot, "a").create(&PostParams::default(), &configmap("x")).await.unwrap_err());
    assert_eq!(e.code, 403);

    // A ClusterRole through a RoleBinding: still that namespace only.
    apply(
        &admin,
        &[
            role(
                "ClusterRole",
                None,
                "write",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "delete"]}]),
            ),
            binding("RoleBinding", Some("b"), "write", "ClusterRole", "write", sa_subject("a", "robot")),
        ],
    )
    .await
    .unwrap();
    configmaps(&robot, "b").create(&PostParams::default(), &configmap("x")).await.unwrap();
    assert_eq!(
        api_error(configmaps(&robot, "a").create(&PostParams::default(), &configmap("x")).await.unwrap_err()).code,
        403
    );

    // A ClusterRole through a ClusterRoleBinding: every namespace, and all namespaces at once.
    apply(
        &admin,
        &[
            role("ClusterRole", None, "read", read),
            binding("ClusterRoleBinding", None, "read", "ClusterRole", "read", sa_subject("a", "robot")),
        ],
    )
    .await
    .unwrap();
    configmaps(&robot, "b").list(&ListParams::default()).await.unwrap();
    Api::<ConfigMap>::all(robot.clone()).list(&ListParams::default()).await.unwrap();

    // Bindings take effect and stop at once; deleting one takes its grant away.
    let crbs: Api<DynamicObject> = Api::all_with(
        admin.clone(),
        &ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
        )),
    );
    crbs.delete("read", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(configmaps(&robot, "b").list(&ListParams::default()).await.unwrap_err()).code, 403);

    // A plain user, and a binding whose role does not exist (the reason says so).
    let other = {
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
        let options = kube::config::KubeConfigOptions { context: Some("other".into()), ..Default::default() };
        Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap()).unwrap()
    };
    let user = json!([{"kind": "User", "name": "other-user", "apiGroup": "rbac.authorization.k8s.io"}]);
    apply(&admin, &[binding("RoleBinding", Some("b"), "missing", "Role", "missing", user.clone())]).await.unwrap();
    let e = api_error(configmaps(&other, "b").list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        e.message,
        "configmaps is forbidden: User \"other-user\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"b\": RBAC: role.rbac.authorization.k8s.io \"missing\" not found"
    );
    apply(&admin, &[binding("RoleBinding", Some("b"), "read-b", "ClusterRole", "write", user)]).await.unwrap();
    configmaps(&other, "b").delete("x", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn resource_names_subresources_and_wildcards() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let robot = robot(&server, &admin, "default", "robot").await;
    for name in ["mine", "theirs"] {
        configmaps(&admin, "default").create(&PostParams::default(), &configmap(name)).await.unwrap();
    }
    service_account(&admin, "default", "helper").await;
    apply(&admin, &[
        role("Role", Some("default"), "narrow", json!([
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"], "verbs": ["get", "list", "watch", "update"]},
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["helper"], "verbs": ["create"]},
            {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]},
        ])),
        binding("RoleBinding", Some("default"), "narrow", "Role", "narrow", sa_subject("default", "robot")),
    ])
    .await
    .unwrap();
    // resourceNames: that object only; never a plain list, but a list of exactly that name.
    configmaps(&robot, "default").get("mine").await.unwrap();
    let e = api_error(configmaps(&robot, "default").get("theirs").await.unwrap_err());
    assert_eq!(
        e.message,
        "configmaps \"theirs\" is forbidden: User \"system:serviceaccount:default:robot\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(api_error(configmaps(&robot, "default").list(&ListParams::default()).await.unwrap_err()).code, 403);
    let one = configmaps(&robot, "default").list(&ListParams::default().fields("metadata.name=mine")).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(
        api_error(
            configmaps(&robot, "default")
                .list(&ListParams::default().fields("metadata.name=theirs"))
                .await
                .unwrap_err()
        )
        .code,
        403
    );
    // Subresources: `serviceaccounts/token` for one ServiceAccount; `*/status` of any resource.
    request_token(&robot, "default", "helper", json!({})).await.unwrap();
    let e = api_error(request_token(&robot, "default", "robot", json!({})).await.unwrap_err());
    assert_eq!(
        e.message,
        "serviceaccounts \"robot\" is forbidden: User \"system:serviceaccount:default:robot\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(get(&robot, "/apis/apps/v1/namespaces/default/deployments/web/status").await.0, 404);
    let (code, body) = get(&robot, "/apis/apps/v1/namespaces/default/deployments/web").await;
    assert_eq!(code, 403, "{body}");
    // Wildcards: any verb on anything in the namespace, but nothing cluster-wide.
    apply(
        &admin,
        &[
            role("Role", Some("default"), "all", json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])),
            binding("RoleBinding", Some("default"), "all", "Role", "all", sa_subject("default", "robot")),
        ],
    )
    .await
    .unwrap();
    configmaps(&robot, "default").delete("theirs", &DeleteParams::default()).await.unwrap();
    assert_eq!(get(&robot, "/apis/apps/v1/namespaces/default/deployments/web").await.0, 404);
    assert_eq!(
        api_error(Api::<Namespace>::all(robot.clone()).list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
}

#[tokio::test]
async fn granting_rbac_permissions_needs_holding_them() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let robot = robot(&server, &admin, "default", "robot").await;
    apply(&admin, &[
        role("Role", Some("default"), "rbac-admin", json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "create", "patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
        ])),
        binding("RoleBinding", Some("default"), "rbac-admin", "Role", "rbac-admin", sa_subject("default", "robot")),
        role("Role", Some("default"), "writer", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}])),
    ])
    .await
    .unwrap();
    // What it holds, it may grant.
    apply(
        &robot,
        &[default_role("reader", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]))],
    )
    .await
    .unwrap();
    // What it does not hold, it may neither put in a role nor bind. (A binding of it to a
    // missing role shows up in the messages as a 1.32 server words it.)
    apply(&admin, &[bind_robot("missing", "missing")]).await.unwrap();
    let more = default_role(
        "more",
        json!([{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "delete"]}]),
    );
    assert_eq!(
        refused(&robot, &[more]).await,
        "roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"system:serviceaccount:default:robot\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:default\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}; resolution errors: [roles.rbac.authorization.k8s.io \"missing\" not found]"
    );
    assert_eq!(
        refused(&robot, &[bind_robot("writer", "writer")]).await,
        "rolebindings.rbac.authorization.k8s.io \"writer\" is forbidden: user \"system:serviceaccount:default:robot\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:default\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"create\"]}; resolution errors: [rolebindings.rbac.authorization.k8s.io \"missing\" not found]"
    );
    // `escalate` and `bind` lift the check.
    let lift =
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate", "bind"]}]);
    apply(&admin, &[default_role("lift", lift), bind_robot("lift", "lift")]).await.unwrap();
    apply(&robot, &[bind_robot("writer", "writer")]).await.unwrap();
    configmaps(&robot, "default").create(&PostParams::default(), &configmap("x")).await.unwrap();
    apply(&robot, &[default_role("more", json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]))])
        .await
        .unwrap();
}

/// Checked on a 1.32 server: every missing role is in the reason, ClusterRoleBindings first, and
/// a watch by `metadata.name` is refused for that name.
#[tokio::test]
async fn the_reason_lists_every_missing_role() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    let robot = robot(&server, &admin, "default", "robot").await;
    apply(
        &admin,
        &[
            binding("RoleBinding", Some("default"), "m", "ClusterRole", "nope-missing", sa_subject("default", "robot")),
            binding("ClusterRoleBinding", None, "m2", "ClusterRole", "nope-missing2", sa_subject("default", "robot")),
        ],
    )
    .await
    .unwrap();
    let (code, body) =
        get(&robot, "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dx").await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "configmaps \"x\" is forbidden: User \"system:serviceaccount:default:robot\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"default\": RBAC: [clusterrole.rbac.authorization.k8s.io \"nope-missing2\" not found, clusterrole.rbac.authorization.k8s.io \"nope-missing\" not found]"
    );
}

/// A Role in `default`.
fn default_role(name: &str, rules: Value) -> Value {
    role("Role", Some("default"), name, rules)
}

/// A RoleBinding in `default` of Role `role` to the ServiceAccount `robot`.
fn bind_robot(name: &str, role: &str) -> Value {
    binding("RoleBinding", Some("default"), name, "Role", role, sa_subject("default", "robot"))
}

/// Applying `objects` as `client` is refused with 403; the server's message.
async fn refused(client: &Client, objects: &[Value]) -> String {
    let e = api_error(apply(client, objects).await.unwrap_err());
    assert_eq!(e.code, 403, "{}", e.message);
    e.message
}

/// A SubjectAccessReview as `c`: the review's status, or the API error.
async fn review(c: &Client, spec: Value) -> Result<Value, Error> {
    review_of(c, "authorization.k8s.io", "SubjectAccessReview", spec).await
}

/// A review of `kind` (a SubjectAccessReview, a SelfSubjectAccessReview, a TokenReview) as `c`:
/// its status, or the API error.
async fn review_of(c: &Client, group: &str, kind: &str, spec: Value) -> Result<Value, Error> {
    let ar = ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    };
    let reviews: Api<DynamicObject> = Api::all_with(c.clone(), &ar);
    let object: DynamicObject =
        serde_json::from_value(json!({"apiVersion": ar.api_version, "kind": kind, "metadata": {}, "spec": spec}))
            .unwrap();
    let answer = reviews.create(&PostParams::default(), &object).await?;
    Ok(serde_json::to_value(answer).unwrap()["status"].clone())
}

#[tokio::test]
async fn token_reviews_say_whose_token_it_is_and_self_reviews_what_i_may_do() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    namespace(&admin, "team").await;
    service_account(&admin, "team", "dev").await;
    let issued = token(&admin, "team", "dev").await;
    let sa = Api::<ServiceAccount>::namespaced(admin.clone(), "team").get("dev").await.unwrap();
    let token_review = |c: &Client, token: &str| {
        let (c, spec) = (c.clone(), json!({"token": token}));
        async move { review_of(&c, "authentication.k8s.io", "TokenReview", spec).await }
    };
    // As kube-apiserver 1.32 reports a TokenRequest's token.
    let status = token_review(&admin, &issued).await.unwrap();
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "system:serviceaccount:team:dev");
    assert_eq!(status["user"]["uid"], json!(sa.metadata.uid));
    assert_eq!(
        status["user"]["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"])
    );
    let id = status["user"]["extra"]["authentication.kubernetes.io/credential-id"][0].as_str().unwrap();
    assert!(id.starts_with("JTI="), "{status}");
    assert_eq!(status["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    // A token nobody issued authenticates no one; no token is a bad request.
    assert_eq!(token_review(&admin, "bogus").await.unwrap(), json!({"user": {}, "error": "invalid bearer token"}));
    let err = api_error(token_review(&admin, "").await.unwrap_err());
    assert_eq!((err.code, err.message.as_str()), (400, "token is required for TokenReview in authentication"));
    // Reviewing tokens is a right of its own (system:auth-delegator's).
    let dev = with_token(&server, &issued);
    let err = api_error(token_review(&dev, &issued).await.unwrap_err());
    assert_eq!(err.code, 403, "{}", err.message);
    assert!(err.message.contains("cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\""));

    // Anyone signed in may ask what they themselves may do (system:basic-user).
    let may = |verb: &str| json!({"resourceAttributes": {"namespace": "team", "verb": verb, "resource": "configmaps"}});
    let ask = |spec: Value| {
        let dev = dev.clone();
        async move { review_of(&dev, "authorization.k8s.io", "SelfSubjectAccessReview", spec).await }
    };
    assert_eq!(ask(may("get")).await.unwrap()["allowed"], false);
    apply(
        &admin,
        &[
            role(
                "Role",
                Some("team"),
                "reader",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
            binding("RoleBinding", Some("team"), "reader", "Role", "reader", sa_subject("team", "dev")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ask(may("get")).await.unwrap()["allowed"], true);
    assert_eq!(ask(may("delete")).await.unwrap()["allowed"], false);
    let err = api_error(ask(json!({})).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert!(err.message.contains("exactly one of nonResourceAttributes or resourceAttributes"), "{}", err.message);
}

#[tokio::test]
async fn subject_access_reviews_answer_what_rbac_would_decide() {
    let server = TestApiServer::start();
    let admin = admin(&server).await;
    namespace(&admin, "team").await;
    namespace(&admin, "other").await;
    let robot = robot(&server, &admin, "team", "syncer").await;
    apply(
        &admin,
        &[
            role("Role", Some("team"), "reader", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]}])),
            binding("RoleBinding", Some("team"), "reader", "Role", "reader", sa_subject("team", "syncer")),
        ],
    )
    .await
    .unwrap();
    let user = "system:serviceaccount:team:syncer";
    let groups = json!(["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"]);
    let ask = |namespace: &str, verb: &str, name: &str| json!({"user": user, "groups": groups, "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": "configmaps", "name": name}});
    // The ServiceAccount itself can tell: what the review says is what its request meets.
    let (allowed, denied) = (ask("team", "get", "settings"), ask("other", "get", "settings"));
    assert_eq!(review(&admin, allowed).await.unwrap()["allowed"], true);
    configmaps(&admin, "team").create(&PostParams::default(), &configmap("settings")).await.unwrap();
    configmaps(&robot, "team").get("settings").await.unwrap();
    assert_eq!(review(&admin, denied).await.unwrap()["allowed"], false);
    assert_eq!(api_error(configmaps(&robot, "other").get("settings").await.unwrap_err()).code, 403);
    // The name matters (resourceNames), and so does the verb.
    assert_eq!(review(&admin, ask("team", "get", "other")).await.unwrap()["allowed"], false);
    assert_eq!(review(&admin, ask("team", "update", "settings")).await.unwrap()["allowed"], false);
    // Groups are taken as given: without them, a group binding does not apply.
    apply(
        &admin,
        &[
            binding(
                "RoleBinding",
                Some("other"),
                "all-sas",
                "ClusterRole",
                "view-cm",
                json!([{"kind": "Group", "name": "system:serviceaccounts:team"}]),
            ),
            role(
                "ClusterRole",
                None,
                "view-cm",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(review(&admin, ask("other", "get", "x")).await.unwrap()["allowed"], true);
    let no_groups =
        json!({"user": user, "resourceAttributes": {"namespace": "other", "verb": "get", "resource": "configmaps"}});
    assert_eq!(review(&admin, no_groups).await.unwrap()["allowed"], false);

    // Invalid reviews are refused as kube-apiserver's validation refuses them.
    let err = api_error(review(&admin, json!({"user": user})).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("exactly one of nonResourceAttributes or resourceAttributes must be specified"),
        "{}",
        err.message
    );
    let err = api_error(review(&admin, json!({"resourceAttributes": {"verb": "get"}})).await.unwrap_err());
    assert!(err.message.contains("at least one of user or group must be specified"), "{}", err.message);
    // Asking needs the right to ask.
    let err = api_error(review(&robot, ask("team", "get", "settings")).await.unwrap_err());
    assert_eq!(err.code, 403);
    assert!(
        err.message.contains(
            "cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
        ),
        "{}",
        err.message
    );
    // Reviews are not stored: a GET is not allowed.
    let (status, _) = get(&admin, "/apis/authorization.k8s.io/v1/subjectaccessreviews").await;
    assert_eq!(status, 405);
}
