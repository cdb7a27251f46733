//! The controller's UI (`weaver operator run --ui-address`): sign-in with a ServiceAccount's
//! token in headless Chromium and over plain HTTP, the session cookie, the sign-in rate limit,
//! and pages and actions filtered by the signed-in user's RBAC; against the fake API server or,
//! unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`. The EnvironmentSyncs are suspended: the
//! controller runs but fetches nothing.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::common::cluster::TestCluster;
use crate::common::{self, browser, eventually};
use crate::sync::{create, setup};
use crate::ui::{Reply, Served};

/// `weaver operator run --ui-address`, stopped with the test; its log kept.
pub(crate) struct Controller {
    child: Child,
    pub(crate) url: String,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    /// The controller's `--cache-dir`, removed with it.
    _cache: tempfile::TempDir,
}

impl Controller {
    /// The controller, with `flags` besides those every test gives.
    pub(crate) fn start(cluster: &TestCluster, flags: &[&str]) -> Controller {
        Controller::start_at(cluster, "127.0.0.1:0", flags)
    }

    /// The controller serving its UI on `address`, with `flags` besides those every test gives.
    pub(crate) fn start_at(cluster: &TestCluster, address: &str, flags: &[&str]) -> Controller {
        let cache = tempfile::Builder::new().prefix("weaver-ui-controller-").tempdir().unwrap();
        let mut child = std::process::Command::new(common::WEAVER)
            .args(["operator", "run", "--controllers", "environmentsync", "--metrics-addr", "127.0.0.1:0"])
            .args(["--ui-address", address, "-l", &format!("test={}", cluster.prefix)])
            .args(flags)
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start weaver operator run");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let url = loop {
            let line = lines.next().expect("the controller says where it serves").expect("UTF-8");
            log.lock().unwrap().push_str(&(line.clone() + "\n"));
            if let Some((_, rest)) = line.split_once("serving the web UI on ") {
                break rest.split('/').take(3).collect::<Vec<_>>().join("/");
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Controller { child, url, log, agent, _cache: cache }
    }

    pub(crate) fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        Served::reply(request.call().expect("the UI answers"))
    }

    /// A form posted as a browser posts it from this server's page, with `headers` besides.
    fn post(&self, path: &str, cookie: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.post(format!("{}{path}", self.url)).header("Origin", &self.url);
        request = request.header("Cookie", cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Served::reply(request.send_form(form.iter().copied()).expect("the UI answers"))
    }

    /// The anonymous session the sign-in page gives, and its CSRF token.
    fn visit(&self) -> (String, String) {
        let page = self.get("/sign-in", None);
        assert_eq!(page.status, 200, "{}", page.body);
        (cookie_of(&page), page.field("csrf"))
    }

    /// A session signed in with `token`, as the cookie sends it.
    pub(crate) fn sign_in(&self, token: &str) -> String {
        let (anonymous, csrf) = self.visit();
        let signed = self.post("/sign-in", &anonymous, &[], &[("csrf", &csrf), ("token", token)]);
        assert_eq!(signed.status, 303, "{}", signed.body);
        cookie_of(&signed)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer's body as a browser shows its text (the templates escape slashes and quotes).
pub(crate) fn text(reply: &Reply) -> String {
    reply.body.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&amp;", "&")
}

/// The cookie an answer sets, as a request sends it back.
pub(crate) fn cookie_of(reply: &Reply) -> String {
    reply.header("set-cookie").split(';').next().unwrap().to_string()
}

/// ServiceAccount `name` of `ns`, which may read the EnvironmentSyncs of `ns` only and take
/// their actions but approving; its token, once the API server's authorizer says so.
fn team_member(cluster: &TestCluster, ns: &str, name: &str) -> String {
    cluster.service_account(ns, name);
    grant(
        cluster,
        ns,
        name,
        &format!("{name}-syncs"),
        json!({"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"],
        "verbs": ["get", "list", "watch", "reconcile", "suspend", "resume", "rollback"]}),
    );
    cluster.token(ns, name)
}

/// Role `role` of `ns` with `rule`, bound to ServiceAccount `name` there, once the API server's
/// authorizer says so (as the account sees it itself: a new binding takes a moment).
pub(crate) fn grant(cluster: &TestCluster, ns: &str, name: &str, role: &str, rule: serde_json::Value) {
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": role, "namespace": ns}, "rules": [rule],
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }));
    let client = cluster.client_for(&cluster.identity(ns, name));
    let reviews: kube::Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> = kube::Api::all(client);
    let review = serde_json::from_value(json!({"spec": {"resourceAttributes": {
        "namespace": ns, "verb": rule["verbs"][0], "group": rule["apiGroups"][0], "resource": rule["resources"][0]}}}))
    .unwrap();
    eventually("the Role to apply", || {
        let answer = cluster.block_on(reviews.create(&Default::default(), &review)).map_err(|e| e.to_string())?;
        answer.status.filter(|s| s.allowed).map(drop).ok_or_else(|| "not allowed yet".to_string())
    });
}

#[test]
fn a_user_signs_in_with_a_token_and_sees_and_does_only_what_rbac_allows() {
    let (cluster, ns, _) = setup();
    let other = cluster.namespace("other");
    let shop = create(&cluster, &ns, "shop", json!({"suspend": true}));
    let blog = create(&cluster, &other, "blog", json!({"suspend": true}));
    let token = team_member(&cluster, &ns, "dev");
    let controller = Controller::start(&cluster, &[]);

    // Nobody signed in: every page leads to the sign-in page.
    let first = controller.get("/", None);
    assert_eq!((first.status, first.header("location")), (303, "/sign-in"), "{}", first.body);
    let (anonymous, csrf) = controller.visit();

    // A token the API server does not accept, and a form without the session's CSRF token.
    let bogus = "not-a-token-of-this-cluster";
    let refused = controller.post("/sign-in", &anonymous, &[], &[("csrf", &csrf), ("token", bogus)]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("does not accept that token") && !refused.body.contains(bogus), "{}", refused.body);
    let forged = controller.post("/sign-in", &anonymous, &[], &[("csrf", "0"), ("token", &token)]);
    assert_eq!(forged.status, 403, "{}", forged.body);

    // The guide's screenshot of the sign-in page, under WEAVER_BLESS=1 only.
    if std::env::var_os("WEAVER_BLESS").is_some() {
        let file = common::project_root().join("docs/src/guides/ui/sign-in.png");
        browser::screenshot(&format!("{}/sign-in", controller.url), &file, &["--window-size=1280,320"]);
    }

    // Signed in: a new session (never the one the browser had), HttpOnly, SameSite=Strict,
    // expiring; Secure when the proxy in front says the request came over HTTPS.
    let https = [("X-Forwarded-Proto", "https")];
    let signed = controller.post("/sign-in", &anonymous, &https, &[("csrf", &csrf), ("token", &token)]);
    assert_eq!((signed.status, signed.header("location")), (303, "/"), "{}", signed.body);
    let set = signed.header("set-cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Max-Age=28800", "Path=/"] {
        assert!(set.contains(flag), "{flag}: {set}");
    }
    let session = cookie_of(&signed);
    assert_ne!(session, anonymous);

    // The fleet: this namespace's EnvironmentSync, not the other's, and who is signed in.
    let fleet = controller.get("/", Some(&session));
    assert_eq!(fleet.status, 200, "{}", fleet.body);
    assert!(fleet.body.contains(&format!("id=\"sync-{ns}-shop\"")), "{}", fleet.body);
    assert!(!fleet.body.contains("blog") && !fleet.body.contains(&other), "{}", fleet.body);
    assert!(fleet.body.contains(&format!("system:serviceaccount:{ns}:dev")), "{}", fleet.body);
    // Read from the controller's watch: a page view LISTs nothing.
    if let Some(server) = cluster.fake("counting the requests of a page view") {
        server.clear_requests();
        assert_eq!(controller.get("/", Some(&session)).status, 200);
        let reads: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("environmentsyncs") && r.method == "GET" && !r.query.contains("watch=true"))
            .map(|r| r.path)
            .collect();
        assert!(reads.is_empty(), "{reads:?}");
    }
    let elsewhere = controller.get(&format!("/syncs/{other}/blog"), Some(&session));
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);

    // Actions: elsewhere 403, nothing written; without the CSRF token 403; here, done.
    let csrf = fleet.field("csrf");
    let suspend = controller.post(&format!("/syncs/{other}/blog/resume"), &session, &[], &[("csrf", &csrf)]);
    assert_eq!(suspend.status, 403, "{}", suspend.body);
    assert_eq!(cluster.get(&blog).unwrap()["spec"]["suspend"], true);
    let resume = format!("/syncs/{ns}/shop/resume");
    assert_eq!(controller.post(&resume, &session, &[], &[]).status, 403);
    let done = controller.post(&resume, &session, &[], &[("csrf", &csrf)]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(cluster.get(&shop).unwrap()["spec"]["suspend"], false);
    assert!(
        controller.log().contains(&format!("resumed EnvironmentSync {ns}/shop (for system:serviceaccount:{ns}:dev)"))
    );

    // Signed out: the session is gone from the server, not only from the browser.
    let out = controller.post("/sign-out", &session, &[], &[("csrf", &csrf)]);
    assert_eq!((out.status, out.header("location")), (303, "/sign-in"));
    assert_eq!(controller.get("/", Some(&session)).status, 303);

    // In a real browser: the token pasted in the form, the fleet shown.
    let chromium = browser::chromium();
    if common::interop_available("chromium", chromium.is_some()) {
        let chromium = chromium.unwrap();
        let mut page = browser::Driven::open(&chromium, &format!("{}/", controller.url));
        let fill = format!(
            "document.getElementById('token').value = {}; document.getElementById('sign-in-button').click(); true",
            serde_json::to_string(&token).unwrap()
        );
        page.evaluate(&fill);
        let dom = page.loaded(|at| !at.ends_with("/sign-in"));
        assert!(dom.contains(&format!("id=\"sync-{ns}-shop\"")) && !dom.contains("blog"), "{dom}");
        assert!(!dom.contains(&token), "{dom}");
        // The cookie is out of script's reach.
        assert_eq!(page.evaluate("document.cookie"), json!(""));
    }

    // Too many attempts from one address: refused before the API server is asked, the right
    // token too.
    let (anonymous, csrf) = controller.visit();
    let statuses: Vec<u16> = (0..8)
        .map(|_| controller.post("/sign-in", &anonymous, &[], &[("csrf", &csrf), ("token", bogus)]).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().take_while(|s| **s == 401).count() <= 5, "{statuses:?}");
    // No proxy trusted: an X-Forwarded-For of a new address per attempt is not believed.
    let forged = controller.post(
        "/sign-in",
        &anonymous,
        &[("X-Forwarded-For", "198.51.100.77")],
        &[("csrf", &csrf), ("token", bogus)],
    );
    assert_eq!(forged.status, 429, "{}", forged.body);
    let late = controller.post("/sign-in", &anonymous, &[], &[("csrf", &csrf), ("token", &token)]);
    assert_eq!(late.status, 429, "{}", late.body);

    // Nothing of the token anywhere: not in the log, not in any answer above.
    let log = controller.log();
    assert!(log.contains(&format!("system:serviceaccount:{ns}:dev signed in")), "{log}");
    assert!(!log.contains(&token) && !log.contains(bogus), "{log}");
    for reply in [&first, &refused, &signed, &fleet, &elsewhere, &suspend, &done, &late] {
        assert!(!reply.body.contains(&token) && !format!("{:?}", reply.headers).contains(&token));
    }
}

/// `n` sign-in attempts with a wrong token, each forwarded for `client(i)`: their statuses.
fn attempts(controller: &Controller, n: usize, client: impl Fn(usize) -> String) -> Vec<u16> {
    let (anonymous, csrf) = controller.visit();
    (0..n)
        .map(|i| {
            let forwarded = [("X-Forwarded-For", client(i))];
            let headers: Vec<(&str, &str)> = forwarded.iter().map(|(k, v)| (*k, v.as_str())).collect();
            controller.post("/sign-in", &anonymous, &headers, &[("csrf", &csrf), ("token", "not-a-token")]).status
        })
        .collect()
}

#[test]
fn behind_a_trusted_proxy_sign_in_attempts_are_limited_per_forwarded_client() {
    let (cluster, _, _) = setup();
    // The test's requests come from 127.0.0.1: the proxy.
    let controller = Controller::start(&cluster, &["--ui-trusted-proxies", "192.0.2.0/24,127.0.0.1/32"]);
    // A client each attempt (the proxy's own address appended, as a proxy chain writes it):
    // none is limited, though they share the proxy's peer address.
    let spread = attempts(&controller, 8, |i| format!("198.51.100.{i}, 192.0.2.10"));
    assert!(spread.iter().all(|s| *s == 401), "{spread:?}");
    // One client through the proxy: limited after the burst.
    let one = attempts(&controller, 8, |_| "203.0.113.9".to_string());
    assert!(one.contains(&429), "{one:?}");
    assert!(one.iter().take_while(|s| **s == 401).count() <= 5, "{one:?}");
    // What the client wrote left of the proxy's entry is the client's claim and not believed
    // past it: the client is the nearest untrusted address.
    let claimed = attempts(&controller, 1, |i| format!("10.9.9.{i}, 203.0.113.9"));
    assert_eq!(claimed, [429]);
}

#[test]
fn a_revoked_token_ends_its_session_once_reviewed_again() {
    let (cluster, ns, _) = setup();
    create(&cluster, &ns, "shop", json!({"suspend": true}));
    let token = team_member(&cluster, &ns, "leaver");
    let controller = Controller::start(&cluster, &["--ui-review-every", "1s"]);
    let session = controller.sign_in(&token);
    assert_eq!(controller.get(&format!("/syncs/{ns}/shop"), Some(&session)).status, 200);

    // The ServiceAccount deleted: its tokens no longer authenticate. Past the review
    // interval, the next page asks again and the session is refused.
    cluster.delete(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "leaver", "namespace": ns}}),
    );
    let gone = eventually("the session to end", || {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let page = controller.get(&format!("/syncs/{ns}/shop"), Some(&session));
        (page.status == 303).then_some(page).ok_or_else(|| "still served".to_string())
    });
    assert_eq!(gone.header("location"), "/sign-in");
    // As the API server says it (the fake as kube-apiserver 1.32): not authenticated, and why.
    let reviews: kube::Api<k8s_openapi::api::authentication::v1::TokenReview> = kube::Api::all(cluster.client());
    let review = serde_json::from_value(json!({"spec": {"token": token}})).unwrap();
    let answer = cluster.block_on(reviews.create(&Default::default(), &review)).unwrap().status.unwrap();
    assert_ne!(answer.authenticated, Some(true));
    assert_eq!(answer.error.as_deref(), Some("[invalid bearer token, serviceaccounts \"leaver\" not found]"));
    // Gone for good: the session is forgotten, not asked about again.
    assert_eq!(controller.get("/", Some(&session)).status, 303);
    assert!(!controller.log().contains(&token));
}

#[test]
fn a_sync_page_hears_of_changes_from_the_controllers_watch() {
    let (cluster, ns, _) = setup();
    let shop = create(&cluster, &ns, "shop", json!({"suspend": true}));
    let token = team_member(&cluster, &ns, "dev");
    let controller = Controller::start(&cluster, &[]);
    let session = controller.sign_in(&token);
    let live = format!("/syncs/{ns}/shop/live");
    let id_of = |reply: &Reply| reply.body.lines().find_map(|l| l.strip_prefix("id: ")).unwrap_or_default().to_string();
    let version = |object: &serde_json::Value| object["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    // Where the page starts from: the EnvironmentSync's resourceVersion, once the watch has it.
    let mark = eventually("the controller's watch to hold the EnvironmentSync", || {
        let first = controller.get(&live, Some(&session));
        let (mark, now) = (id_of(&first), version(&cluster.get(&shop).unwrap()));
        (first.status == 200 && mark == now).then(|| mark.clone()).ok_or(format!("{} {mark} (now {now})", first.status))
    });

    if let Some(server) = cluster.fake("counting the requests of live updates") {
        server.clear_requests();
    }
    // Waiting from there: a change made meanwhile ends the wait, at its new resourceVersion.
    let waiting = {
        let (agent, url, session) = (controller.agent.clone(), format!("{}{live}", controller.url), session.clone());
        let mark = mark.clone();
        std::thread::spawn(move || {
            let request = agent.get(url).header("Cookie", &session).header("Last-Event-ID", &mark);
            Served::reply(request.call().expect("the UI answers"))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Patched without discovery, so that the only requests are the controller's.
    let syncs: kube::Api<weaver_controllers::gitops::EnvironmentSync> = kube::Api::namespaced(cluster.client(), &ns);
    let touch = json!({"metadata": {"annotations": {"test/touched": "yes"}}});
    let patched = cluster.block_on(syncs.patch("shop", &Default::default(), &kube::api::Patch::Merge(&touch))).unwrap();
    let mut changed = waiting.join().unwrap();
    // The controller may write the sync's status meanwhile (a real server showed it): each
    // answer ends at the first change after its mark, so the page asks again from there, as
    // ui.js does, until the test's own change.
    for _ in 0..5 {
        assert_eq!(changed.status, 200, "{}", changed.body);
        assert!(changed.body.contains("event: changed\ndata: EnvironmentSync shop"), "{}", changed.body);
        if Some(id_of(&changed)) == patched.metadata.resource_version {
            break;
        }
        let request = controller.agent.get(format!("{}{live}", controller.url));
        let request = request.header("Cookie", &session).header("Last-Event-ID", &id_of(&changed));
        changed = Served::reply(request.call().expect("the UI answers"));
    }
    assert_eq!(Some(id_of(&changed)), patched.metadata.resource_version);
    // Read from the watch the controller runs anyway: no discovery, no watch of its own.
    if let Some(server) = cluster.fake("counting the requests of live updates") {
        let asked: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| {
                r.method == "GET" && (r.path == "/apis" || r.path == "/api" || r.query.contains("metadata.name"))
            })
            .map(|r| format!("{} ?{}", r.path, r.query))
            .collect();
        assert!(asked.is_empty(), "{asked:?}");
    }
    // Another namespace's EnvironmentSync: refused before anything is waited for.
    let other = cluster.namespace("other");
    create(&cluster, &other, "blog", json!({"suspend": true}));
    assert_eq!(controller.get(&format!("/syncs/{other}/blog/live"), Some(&session)).status, 403);
}

#[test]
fn an_environment_a_sync_applied_is_shown_to_users_who_may_list_where_it_applies() {
    if !crate::gitops::http_or_skip() {
        return;
    }
    let (cluster, _, _) = setup();
    // Namespace `app`, where the sync's account `deployer` applies environment `dev`.
    let app = crate::gitops::tenant(&cluster);
    let source = crate::gitops::Source::new(&app);
    // The demo's age-encrypted secrets, decrypted with a key the EnvironmentSync names.
    let demo = common::project_root();
    for file in ["secrets/dev.yaml", "secrets/dev.agekey"] {
        source.write(file, &std::fs::read_to_string(demo.join(file)).unwrap());
    }
    source.write(
        "environments/dev.yaml",
        &format!("namespace: {app}\ncluster:\n  lockNamespace: {app}\nsecrets: [secrets/dev.yaml]\nreleases:\n  - name: app\n    chart: app\n"),
    );
    source.write(
        "charts/app/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ release.name }}-key\nstringData:\n  password: {{ secrets.redis.password | quote }}\n",
    );
    let commit = source.commit("first");
    let key = std::fs::read_to_string(demo.join("secrets/dev.agekey")).unwrap();
    cluster.create(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "age", "namespace": app},
        "stringData": {"identity": key}}));
    let decryption = json!({"decryption": {"secretRef": {"name": "age"}}});
    let mut sync = crate::gitops::environment_sync(&cluster, &app, "shop", crate::gitops::spec(&source, decryption));
    sync["metadata"]["labels"]["test"] = json!(cluster.prefix);
    cluster.create(&sync);
    let outsider = team_member(&cluster, &app, "outsider");
    let viewer = team_member(&cluster, &app, "viewer");
    grant(
        &cluster,
        &app,
        "viewer",
        "viewer-reads",
        json!({"apiGroups": [""], "resources": ["pods", "configmaps"],
        "verbs": ["list", "get"]}),
    );
    let controller = Controller::start(&cluster, &[]);
    let live = crate::gitops::until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the commit applied");
    assert_eq!(live["status"]["lastAppliedRevision"], commit);
    // Changed by hand since: the page's plan shows it put back.
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": app}});
    cluster.merge_patch(&config_map, &json!({"data": {"greeting": "edited-by-hand"}}), "kubectl-edit");

    let mut replies = Vec::new();
    let env = format!("/syncs/{app}/shop/environments/dev");
    // May get the EnvironmentSync, not list where it applies: refused.
    let session = controller.sign_in(&outsider);
    let refused = controller.get(&env, Some(&session));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("may not list pods in namespace"), "{}", refused.body);
    replies.push(refused);
    let history = controller.get(&format!("{env}/releases/app"), Some(&session));
    assert_eq!(history.status, 403, "{}", history.body);
    replies.push(history);

    // May list there: the objects as a tree with their health, and the plan of the commit the
    // sync applied against the cluster, read as the sync's account.
    let session = controller.sign_in(&viewer);
    let sync_page = controller.get(&format!("/syncs/{app}/shop"), Some(&session));
    // Links as a browser reads them (the templates escape a path's slashes).
    let links = |reply: &Reply| reply.body.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(links(&sync_page).contains(&format!("href=\"{env}\" id=\"environment-dev\"")), "{}", sync_page.body);
    let page = controller.get(&env, Some(&session));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("role=\"alert\""), "every part of the page was read: {}", page.body);
    assert!(page.body.contains("id=\"release-app\""), "{}", page.body);
    assert!(page.body.contains("data-kind=\"ConfigMap\" data-name=\"app\""), "{}", page.body);
    assert!(page.body.contains("data-kind=\"Secret\" data-name=\"app-key\""), "{}", page.body);
    assert!(
        page.body.contains("-  greeting: edited-by-hand") && page.body.contains("+  greeting: hello"),
        "{}",
        page.body
    );
    let object = |kind: &str, name: &str| format!("{env}/object?apiVersion=v1&kind={kind}&namespace={app}&name={name}");
    assert!(links(&page).contains(&object("ConfigMap", "app")), "{}", page.body);
    assert!(links(&page).contains(&format!("href=\"{env}/releases/app\"")), "{}", page.body);
    assert!(links(&page).contains(&format!("data-live=\"{env}/live\"")), "{}", page.body);
    replies.push(page);

    // Live updates: where the page stands, then the first change after it: an object of the
    // environment changed by hand, which the controller's own watches see.
    let first = controller.get(&format!("{env}/live"), Some(&session));
    assert_eq!(first.status, 200, "{}", first.body);
    let marks = first.body.lines().find_map(|l| l.strip_prefix("id: ")).expect(&first.body).to_string();
    if let Some(server) = cluster.fake("counting the requests of live updates") {
        server.clear_requests();
    }
    let waiting = {
        let (agent, url, session) =
            (controller.agent.clone(), format!("{}{env}/live", controller.url), session.clone());
        std::thread::spawn(move || {
            let request = agent.get(url).header("Cookie", &session).header("Last-Event-ID", &marks);
            Served::reply(request.call().expect("the UI answers"))
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Asked before the change: what the wait itself asked of the API server.
    let asked = cluster.fake("counting the requests of live updates").map(|server| server.requests());
    cluster.merge_patch(&config_map, &json!({"data": {"greeting": "edited-again"}}), "kubectl-edit");
    let changed = waiting.join().unwrap();
    assert!(changed.body.contains("event: changed\ndata: ConfigMap app"), "{}", changed.body);
    // No discovery, no Secret (keys, credentials) read, no watch of its own: at most the
    // user's SubjectAccessReviews, which are kept 10 s.
    if let Some(asked) = asked {
        let own: Vec<_> = asked
            .iter()
            .filter(|r| {
                r.path == "/api" || r.path == "/apis" || r.path.contains("/secrets") || r.path.contains("/events")
            })
            .map(|r| format!("{} {} ?{}", r.method, r.path, r.query))
            .collect();
        assert!(own.is_empty(), "{own:?}");
    }
    replies.extend([first, changed]);

    // The release's history, each revision with what it changed; no rollback offered here.
    let release = controller.get(&format!("{env}/releases/app"), Some(&session));
    assert_eq!(release.status, 200, "{}", release.body);
    assert!(
        release.body.contains("id=\"changes-1\"") && release.body.contains(">+  greeting: hello<"),
        "{}",
        release.body
    );
    // No rollback while the EnvironmentSync runs: its next reconcile would undo it.
    assert!(!release.body.contains("confirm/rollback"), "{}", release.body);
    assert!(release.body.contains("id=\"rollback-note\""), "{}", release.body);
    replies.push(release);

    // An object's page: its live YAML, when the user may get it; a Secret redacted, and only
    // for a user who may get Secrets.
    let config = controller.get(&object("ConfigMap", "app"), Some(&session));
    assert_eq!(config.status, 200, "{}", config.body);
    assert!(config.body.contains("greeting: edited-again"), "{}", config.body);
    // The fields each manager owns: the sync's apply and the hand edit.
    for manager in ["weaver", "kubectl-edit"] {
        assert!(config.body.contains(&format!("id=\"manager-{manager}\"")), "{manager}: {}", config.body);
    }
    replies.push(config);
    let secret = controller.get(&object("Secret", "app-key"), Some(&session));
    assert_eq!(secret.status, 403, "{}", secret.body);
    // Refused alike whether it exists or not: a user who may not get Secrets learns nothing.
    let absent = controller.get(&object("Secret", "no-such-secret"), Some(&session));
    assert_eq!(absent.status, 403, "{}", absent.body);
    assert!(secret.body.contains("get on secrets in namespace"), "{}", secret.body);
    replies.push(secret);
    grant(
        &cluster,
        &app,
        "viewer",
        "viewer-secrets",
        json!({"apiGroups": [""], "resources": ["secrets"],
        "verbs": ["get"]}),
    );
    let shown = eventually("the grant to reach the UI (its answers are kept 10 s)", || {
        let page = controller.get(&object("Secret", "app-key"), Some(&session));
        (page.status == 200).then_some(page).ok_or_else(|| "still refused".to_string())
    });
    assert!(shown.body.contains("&lt;redacted&gt;"), "{}", shown.body);
    replies.push(shown);

    // In a real browser: signed in with the form, the environment's page, its release's and
    // the Secret's read, each keyboard-reachable; no decrypted value in any of them.
    let chromium = browser::chromium();
    let mut doms = Vec::new();
    if common::interop_available("chromium", chromium.is_some()) {
        let mut page = browser::Driven::open(&chromium.unwrap(), &format!("{}/", controller.url));
        let fill = format!(
            "document.getElementById('token').value = {}; document.getElementById('sign-in-button').click(); true",
            serde_json::to_string(&viewer).unwrap()
        );
        page.evaluate(&fill);
        page.loaded(|at| !at.ends_with("/sign-in"));
        let mut visit = |path: &str| {
            let url = format!("{}{path}", controller.url);
            page.evaluate(&format!("location.href = {}; true", serde_json::to_string(&url).unwrap()));
            page.loaded(|at| at == url)
        };
        let environment = visit(&env);
        assert!(environment.contains("data-kind=\"Secret\" data-name=\"app-key\""), "{environment}");
        let history = visit(&format!("{env}/releases/app"));
        assert!(history.contains("id=\"running\">Revision 1 runs"), "{history}");
        let secret = visit(&object("Secret", "app-key"));
        assert!(secret.contains("&lt;redacted&gt;") && secret.contains("app-key"), "{secret}");
        let css = controller.get("/ui.css", None).body;
        for dom in [&environment, &history, &secret] {
            crate::ui::assert_keyboard_reachable(dom, &css);
        }
        doms.extend([environment, history, secret]);
    }

    // A sync whose first plan awaits approval has applied nothing: its environment has no page yet.
    let held_spec =
        crate::gitops::spec(&source, json!({"decryption": {"secretRef": {"name": "age"}}, "approval": "Manual"}));
    let mut held = crate::gitops::environment_sync(&cluster, &app, "held", held_spec);
    held["metadata"]["labels"]["test"] = json!(cluster.prefix);
    cluster.create(&held);
    crate::gitops::until_ready_with(&cluster, &held, "AwaitingApproval", "the first plan waiting");
    // The UI reads syncs from its watch: under load it may see the status a moment later.
    let seen = std::time::Instant::now();
    let unapplied = loop {
        let reply = controller.get(&format!("/syncs/{app}/held/environments/dev"), Some(&session));
        if reply.body.contains("has applied nothing yet") || seen.elapsed() > std::time::Duration::from_secs(15) {
            break reply;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(unapplied.status, 404, "{}", unapplied.body);
    assert!(unapplied.body.contains("has applied nothing yet"), "{}", unapplied.body);
    replies.push(unapplied);

    // No decrypted value and no token anywhere.
    let mut secrets = crate::leaks::decrypted_forms_in(&demo);
    // What the sync applied holds one: the pages had one to leak.
    let key =
        cluster.get(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-key", "namespace": app}}));
    let applied = key.unwrap()["data"]["password"].as_str().unwrap().to_string();
    assert!(secrets.contains(&applied), "the Secret holds no decrypted value: {applied}");
    secrets.extend([outsider, viewer]);
    for page in replies.iter().map(|reply| &reply.body).chain(&doms) {
        for secret in &secrets {
            assert!(!page.contains(secret.as_str()), "{secret} in {page}");
        }
    }
}

#[test]
fn a_release_is_rolled_back_from_the_controllers_page_only_while_its_sync_is_suspended() {
    if !crate::gitops::http_or_skip() {
        return;
    }
    let (cluster, _, _) = setup();
    // Namespace `app`, where the sync's account `deployer` applies environment `dev`.
    let app = crate::gitops::tenant(&cluster);
    let source = crate::gitops::Source::new(&app);
    let first = source.commit("first");
    let mut sync = crate::gitops::environment_sync(
        &cluster,
        &app,
        "shop",
        crate::gitops::spec(&source, json!({"interval": "2s"})),
    );
    sync["metadata"]["labels"]["test"] = json!(cluster.prefix);
    cluster.create(&sync);
    // `dev` may patch the EnvironmentSync; `reader` may only read it. Both may list Pods where
    // it applies, which its release pages need.
    let dev = team_member(&cluster, &app, "dev");
    cluster.service_account(&app, "reader");
    let syncs = |verbs: serde_json::Value| json!({"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"], "verbs": verbs});
    grant(&cluster, &app, "reader", "reader-syncs", syncs(json!(["get", "list", "watch"])));
    let reader = cluster.token(&app, "reader");
    for account in ["dev", "reader"] {
        let pods = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]});
        grant(&cluster, &app, account, &format!("{account}-pods"), pods);
    }
    let controller = Controller::start(&cluster, &[]);
    let live = crate::gitops::until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the first commit applied");
    assert_eq!(live["status"]["lastAppliedRevision"], first);
    source.write("charts/app/values.yaml", "greeting: bonjour\n");
    let second = source.commit("second");
    crate::gitops::until_status(&cluster, &sync, "the second commit applied", |live| {
        live["status"]["lastAppliedRevision"] == second
    });
    let greeting = || crate::gitops::config_map(&cluster, &app, "app").unwrap()["data"]["greeting"].clone();
    assert_eq!(greeting(), "bonjour");

    let session = controller.sign_in(&dev);
    let release = format!("/syncs/{app}/shop/environments/dev/releases/app");
    let confirm = format!("{release}/confirm/rollback?revision=1");
    // While the EnvironmentSync runs: the revision running shown, no rollback offered, and one
    // asked for refused (its next reconcile would undo it), nothing applied.
    let running = controller.get(&release, Some(&session));
    assert_eq!(running.status, 200, "{}", running.body);
    assert!(running.body.contains("id=\"running\">Revision 2 runs"), "{}", running.body);
    assert!(
        running.body.contains("is not suspended") && !running.body.contains("confirm/rollback"),
        "{}",
        running.body
    );
    let csrf = running.field("csrf");
    let refused = controller.get(&confirm, Some(&session));
    assert_eq!(refused.status, 409, "{}", refused.body);
    let rollback = format!("{release}/rollback");
    let refused = controller.post(&rollback, &session, &[], &[("csrf", &csrf), ("revision", "1")]);
    assert_eq!(refused.status, 409, "{}", refused.body);
    let said = text(&refused);
    assert!(said.contains(&format!("EnvironmentSync {app}/shop is not suspended")), "{said}");
    assert!(said.contains(&format!("suspend EnvironmentSync {app}/shop first")), "{said}");
    assert_eq!(greeting(), "bonjour");

    // Suspended from its page: the rollback offered, its confirmation saying until when it stays.
    let suspended = controller.post(&format!("/syncs/{app}/shop/suspend"), &session, &[], &[("csrf", &csrf)]);
    assert_eq!(suspended.status, 303, "{}", suspended.body);
    let offered = eventually("the controller's watch to see the EnvironmentSync suspended", || {
        let page = controller.get(&release, Some(&session));
        page.body.contains("id=\"rollback-1\"").then_some(page).ok_or_else(|| "no rollback offered yet".to_string())
    });
    assert!(offered.body.contains("stays until it is resumed"), "{}", offered.body);
    let confirming = controller.get(&confirm, Some(&session));
    assert_eq!(confirming.status, 200, "{}", confirming.body);
    assert!(confirming.body.contains("next reconcile then applies the commit git names again"), "{}", confirming.body);

    // A user who may read the EnvironmentSync but not change it: no rollback offered, the page
    // saying why (what the POST's SubjectAccessReview asks); its confirmation and the POST
    // refused, nothing applied.
    let reading = controller.sign_in(&reader);
    let page = controller.get(&release, Some(&reading));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("confirm/rollback") && !page.body.contains("id=\"rollback-1\""), "{}", page.body);
    let why = text(&page);
    assert!(
        why.contains(&format!("system:serviceaccount:{app}:reader may not rollback EnvironmentSync {app}/shop"))
            && why.contains("needs the verb rollback on environmentsyncs"),
        "{why}"
    );
    let unconfirmed = controller.get(&confirm, Some(&reading));
    assert_eq!(unconfirmed.status, 403, "{}", unconfirmed.body);
    assert!(!unconfirmed.body.contains("id=\"confirm\""), "{}", unconfirmed.body);
    // Nor the EnvironmentSync's own actions: its page says why, their confirmations are refused.
    let sync_page = controller.get(&format!("/syncs/{app}/shop"), Some(&reading));
    assert_eq!(sync_page.status, 200, "{}", sync_page.body);
    assert!(!sync_page.body.contains("id=\"action-"), "{}", sync_page.body);
    assert!(
        text(&sync_page).contains(&format!(
            "reader may not approve, reconcile, suspend or resume EnvironmentSync {app}/shop: that needs the verbs \
             approve, reconcile, suspend and resume"
        )),
        "{}",
        sync_page.body
    );
    let resume = controller.get(&format!("/syncs/{app}/shop/confirm/resume"), Some(&reading));
    assert_eq!(resume.status, 403, "{}", resume.body);
    // Those of a user who may take them are there.
    let acting = controller.get(&format!("/syncs/{app}/shop"), Some(&session));
    assert!(acting.body.contains("id=\"action-resume\""), "{}", acting.body);
    // dev may do all but approve: the page says so of that one alone.
    assert!(
        text(&acting).contains(&format!("dev may not approve EnvironmentSync {app}/shop: that needs the verb approve"))
    );
    let forbidden = controller.post(&rollback, &reading, &[], &[("csrf", &page.field("csrf")), ("revision", "1")]);
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert!(forbidden.body.contains("needs the verb rollback on environmentsyncs"), "{}", forbidden.body);
    assert_eq!(greeting(), "bonjour");

    // Rolled back: the first revision's objects applied again as the sync's account, recorded
    // as a rollback by the user, through the EnvironmentSync.
    let done = controller.post(&rollback, &session, &[], &[("csrf", &csrf), ("revision", "1")]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), format!("{release}?done=rollback"));
    assert_eq!(greeting(), "hello");
    let after = controller.get(&format!("{release}?done=rollback"), Some(&session));
    assert!(after.body.contains("id=\"running\">Revision 3 runs"), "{}", after.body);
    assert!(after.body.contains(", a rollback to 1."), "{}", after.body);
    assert!(text(&after).contains(&format!("system:serviceaccount:{app}:dev through the UI")), "{}", after.body);
    assert!(
        controller.log().contains("ui: rolled release app of environment dev back to revision 1"),
        "{}",
        controller.log()
    );

    // Resumed: the next reconcile applies git's commit again.
    let resumed = controller.post(&format!("/syncs/{app}/shop/resume"), &session, &[], &[("csrf", &csrf)]);
    assert_eq!(resumed.status, 303, "{}", resumed.body);
    eventually("git's commit applied again", || {
        let now = greeting();
        (now == "bonjour").then_some(()).ok_or_else(|| format!("greeting {now}"))
    });

    // Resumed while a rollback waits for the environment's lock (held here as a CLI apply holds
    // it), after the page's check saw the sync suspended: the rollback reads the sync again
    // under the lock and is refused, nothing applied; the reconcile the resume asked for
    // applies git's commit.
    let suspended = controller.post(&format!("/syncs/{app}/shop/suspend"), &session, &[], &[("csrf", &csrf)]);
    assert_eq!(suspended.status, 303, "{}", suspended.body);
    eventually("the controller's watch to see the EnvironmentSync suspended again", || {
        let page = controller.get(&release, Some(&session));
        page.body.contains("id=\"rollback-1\"").then_some(()).ok_or_else(|| "no rollback offered yet".to_string())
    });
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "weaver-lock-dev", "namespace": app}});
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string();
    let held = json!({"holderIdentity": "alice@laptop pid 4242", "leaseDurationSeconds": 60, "acquireTime": now, "renewTime": now});
    cluster.merge_patch(&lease, &json!({"spec": held}), "alice");
    let raced = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| controller.post(&rollback, &session, &[], &[("csrf", &csrf), ("revision", "1")]));
        // Long enough for the page's check and the records read; too short fails below, as
        // the page's own refusal, never passes.
        std::thread::sleep(std::time::Duration::from_secs(5));
        let resumed = controller.post(&format!("/syncs/{app}/shop/resume"), &session, &[], &[("csrf", &csrf)]);
        assert_eq!(resumed.status, 303, "{}", resumed.body);
        cluster.merge_patch(&lease, &json!({"spec": {"holderIdentity": null}}), "alice");
        waiting.join().unwrap()
    });
    assert_eq!(raced.status, 409, "{}", raced.body);
    let said = text(&raced);
    assert!(said.contains("nothing was applied: read again under the environment's lock"), "{said}");
    assert!(said.contains(&format!("EnvironmentSync {app}/shop is not suspended")), "{said}");
    assert_eq!(greeting(), "bonjour");

    for reply in [
        &running,
        &refused,
        &offered,
        &confirming,
        &page,
        &unconfirmed,
        &sync_page,
        &resume,
        &forbidden,
        &done,
        &after,
        &raced,
    ] {
        assert!(!reply.body.contains(&dev) && !reply.body.contains(&reader), "a token in {}", reply.body);
    }
}

/// Whoever holds the verb `approve` (here through a group) approves from the page; the
/// approval names them, not the controller that writes it. Elsewhere they get 403.
#[test]
fn a_group_granted_approve_in_one_namespace_approves_there_only_and_is_named_the_approver() {
    let (cluster, ns, _) = setup();
    let other = cluster.namespace("other");
    let mut syncs = Vec::new();
    for namespace in [&ns, &other] {
        let sync = create(&cluster, namespace, "shop", json!({"suspend": true, "approval": "Manual"}));
        cluster.patch_status(&sync, &crate::sync::awaiting_status(1));
        syncs.push(sync);
    }
    cluster.service_account(&ns, "lead");
    let role = |namespace: &str, name: &str, verbs: serde_json::Value, subject: serde_json::Value| {
        cluster.create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"], "verbs": verbs}],
        }));
        cluster.create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [subject],
        }));
    };
    // Here the Role binds the group of the namespace's ServiceAccounts, not the account itself;
    // elsewhere the account may read, not approve.
    let group = json!({"kind": "Group", "name": format!("system:serviceaccounts:{ns}"), "apiGroup": "rbac.authorization.k8s.io"});
    role(&ns, "approvers", json!(["get", "list", "approve"]), group);
    let lead = json!({"kind": "ServiceAccount", "name": "lead", "namespace": ns});
    role(&other, "readers", json!(["get", "list"]), lead);
    let user = format!("system:serviceaccount:{ns}:lead");
    let token = cluster.token(&ns, "lead");
    let controller = Controller::start(&cluster, &[]);
    let session = controller.sign_in(&token);

    let page = eventually("the group's grant to apply", || {
        let page = controller.get(&format!("/syncs/{ns}/shop"), Some(&session));
        page.body.contains("id=\"action-approve\"").then_some(page).ok_or_else(|| "no approve offered".to_string())
    });
    // Only approving: the others are not offered, and the page says why.
    assert!(!page.body.contains("id=\"action-suspend\"") && !page.body.contains("id=\"action-resume\""));
    assert!(text(&page).contains("lead may not reconcile, suspend or resume EnvironmentSync"), "{}", page.body);
    let csrf = page.field("csrf");
    let digest = crate::sync::DIGEST;

    let elsewhere = controller.get(&format!("/syncs/{other}/shop"), Some(&session));
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert!(!elsewhere.body.contains("id=\"action-approve\""), "{}", elsewhere.body);
    let refused =
        controller.post(&format!("/syncs/{other}/shop/approve"), &session, &[], &[("csrf", &csrf), ("digest", digest)]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        text(&refused).contains(&format!("{user} may not approve EnvironmentSync {other}/shop")),
        "{}",
        refused.body
    );
    assert!(cluster.get(&syncs[1]).unwrap()["spec"].get("approvedPlan").is_none());

    let done =
        controller.post(&format!("/syncs/{ns}/shop/approve"), &session, &[], &[("csrf", &csrf), ("digest", digest)]);
    assert_eq!(done.status, 303, "{}", done.body);
    let live = cluster.get(&syncs[0]).unwrap();
    assert_eq!(live["spec"]["approvedPlan"], digest);
    assert_eq!(live["metadata"]["annotations"]["weaver.example.com/approved-by"], user.as_str());
    assert!(
        controller.log().contains(&format!("approved the plan {digest} of EnvironmentSync {ns}/shop (for {user})"))
    );
    // Suspending is not among its rights: refused, nothing written.
    let suspend = controller.post(&format!("/syncs/{ns}/shop/resume"), &session, &[], &[("csrf", &csrf)]);
    assert_eq!(suspend.status, 403, "{}", suspend.body);
    assert_eq!(cluster.get(&syncs[0]).unwrap()["spec"]["suspend"], true);
}
