//! `weaver ui`: its pages read in headless Chromium, its actions posted as a browser posts them,
//! against the fake API server or, unchanged, the cluster of `WEAVER_TEST_KUBECONFIG`. No
//! controller runs: EnvironmentSync statuses are written as a controller would (tests/sync.rs's).

use std::io::{BufRead, BufReader, Read, Write};

use base64::Engine;
use std::process::Child;
use std::sync::{Arc, Mutex};

use crate::common;
use crate::sync::{COMMIT, DIGEST, awaiting_status, create, ready_status, setup};
use common::browser;
use common::cluster::TestCluster;
use common::demo::Demo;
use common::{Repo, eventually};
use serde_json::json;

/// `weaver ui` serving in the background, stopped with the test.
pub(crate) struct Served {
    child: Child,
    url: String,
    /// What it said on stderr after where it serves.
    said: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// An answer: its status, headers and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: ureq::http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The session cookie it sets, as a request sends it back.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        set.split(';').next().unwrap().to_string()
    }

    /// The value of the form field `name` of the page.
    pub(crate) fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start =
            self.body.find(&marker).unwrap_or_else(|| panic!("no field {name} in:\n{}", self.body)) + marker.len();
        self.body[start..start + self.body[start..].find('"').unwrap()].to_string()
    }
}

impl Served {
    fn start(repo: &Repo, cluster: &TestCluster, args: &[&str]) -> Served {
        Served::start_as(repo, cluster.kubeconfig(), args)
    }

    /// `weaver ui` as the identity of `kubeconfig`.
    fn start_as(repo: &Repo, kubeconfig: &std::path::Path, args: &[&str]) -> Served {
        let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path").to_string();
        let mut all = vec!["--kubeconfig", &kubeconfig, "ui", "--address", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = repo.spawn(&all);
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("weaver ui says where it serves").expect("stderr is UTF-8");
            if let Some(rest) = line.strip_prefix("weaver ui: serving ") {
                break rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            }
        };
        let said = Arc::new(Mutex::new(String::new()));
        let sink = said.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Served { child, url, said, agent }
    }

    /// The page at `path` as headless Chromium has it, or None without Chromium (said skipped).
    fn dom(&self, path: &str) -> Option<String> {
        let chromium = browser::chromium();
        if !common::interop_available("chromium", chromium.is_some()) {
            return None;
        }
        Some(browser::dom(&chromium.unwrap(), &format!("{}{path}", self.url)))
    }

    /// A PNG of the page at `path`, taken by headless Chromium with `args` (window size, theme,
    /// zoom), written to `file`.
    fn screenshot(&self, path: &str, file: &std::path::Path, args: &[&str]) {
        browser::screenshot(&format!("{}{path}", self.url), file, args);
    }

    pub(crate) fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
        let body = response.body_mut().read_to_string().expect("a UTF-8 body");
        Reply { status: response.status().as_u16(), headers: response.headers().clone(), body }
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.get_with(path, cookie.map(|cookie| ("Cookie", cookie)).as_slice())
    }

    fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Served::reply(request.call().expect("weaver ui answers"))
    }

    /// A form posted as a browser posts it from this server's page (`Origin` its own) unless
    /// `origin` says otherwise.
    fn post(&self, path: &str, cookie: Option<&str>, origin: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.post(format!("{}{path}", self.url));
        request = request.header("Origin", origin.unwrap_or(&self.url));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        Served::reply(request.send_form(form.iter().copied()).expect("weaver ui answers"))
    }

    fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page a keyboard reaches whole, in reading order: the skip link first, leading to the main
/// content; nothing taken out of or moved in the tab order (no `tabindex`); no control that
/// only a mouse works (a click handler on something not a control); every field labelled; and
/// the stylesheet outlines whatever has the focus.
pub(crate) fn assert_keyboard_reachable(dom: &str, css: &str) {
    let body = &dom[dom.find("<body").expect(dom)..];
    let controls = ["<a ", "<button", "<input", "<select", "<summary", "<textarea"];
    let first = controls.iter().filter_map(|tag| body.find(tag)).min().expect(dom);
    assert!(body[first..].starts_with("<a class=\"skip\" href=\"#main\""), "the skip link comes first: {dom}");
    assert!(dom.contains("<main id=\"main\""), "{dom}");
    assert!(!dom.contains("tabindex") && !dom.contains("onclick"), "{dom}");
    for field in dom.split("<input").skip(1).chain(dom.split("<select").skip(1)) {
        let tag = &field[..field.find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag.split("id=\"").nth(1).and_then(|rest| rest.split('"').next()).expect(tag);
        assert!(dom.contains(&format!("<label for=\"{id}\"")), "field {id} has a label: {dom}");
    }
    let focus = css.find(":focus{outline:3px solid").expect(css);
    let focused = &css[..focus + ":focus".len()];
    for element in ["a:focus", "button:focus", "input:focus", "select:focus", "summary:focus"] {
        assert!(focused.rsplit('}').next().unwrap().contains(element), "{element} is outlined: {css}");
    }
}

#[test]
fn the_fleet_filters_by_label_and_state_and_a_sync_shows_its_plan() {
    let (cluster, ns, _) = setup();
    let repo = Repo::minimal();
    let ready = create(&cluster, &ns, "ready", json!({}));
    cluster.merge_patch(&ready, &json!({"metadata": {"labels": {"tier": "prod"}}}), "ui-test");
    let waiting = create(&cluster, &ns, "waiting", json!({"approval": "Manual"}));
    cluster.patch_status(&ready, &ready_status(1));
    cluster.patch_status(&waiting, &awaiting_status(1));
    let served = Served::start(&repo, &cluster, &["-n", &ns]);

    let Some(fleet) = served.dom("/") else { return };
    assert!(fleet.contains(&format!("id=\"sync-{ns}-ready\" data-state=\"ready\"")), "{fleet}");
    assert!(fleet.contains(&format!("id=\"sync-{ns}-waiting\" data-state=\"awaiting-approval\"")), "{fleet}");
    assert!(fleet.contains(&COMMIT[..12]) && !fleet.contains(COMMIT), "the revision, shortened: {fleet}");
    assert!(fleet.contains("id=\"env-dev\""), "the repository's environments: {fleet}");

    // The filters over plain HTTP: Chromium read the same HTML above.
    let awaiting = served.get("/?state=awaiting-approval", None).body;
    assert!(awaiting.contains("-waiting\"") && !awaiting.contains("-ready\""), "{awaiting}");
    let prod = served.get("/?label=tier%3Dprod", None).body;
    assert!(prod.contains("-ready\"") && !prod.contains("-waiting\""), "{prod}");
    assert!(!prod.contains("id=\"env-dev\""), "dev has no tier label: {prod}");
    let none = served.get("/?label=tier%3Dnone", None).body;
    assert!(
        none.contains("id=\"no-syncs\"") && !none.contains("role=\"alert\""),
        "nothing matching is no error: {none}"
    );

    let sync = served.dom(&format!("/syncs/{ns}/waiting")).unwrap();
    assert!(browser::text_of(&sync, "digest") == DIGEST, "{sync}");
    let css = served.get("/ui.css", None).body;
    let confirm = served.dom(&format!("/syncs/{ns}/waiting/confirm/approve?digest={DIGEST}")).unwrap();
    for page in [&fleet, &sync, &confirm] {
        assert_keyboard_reachable(page, &css);
    }
    assert!(browser::text_of(&sync, "state") == "awaiting-approval", "{sync}");
    let approve = format!("/syncs/{ns}/waiting/confirm/approve?digest=sha256%3A{}", &DIGEST[7..]);
    assert!(sync.contains(&approve.replace('&', "&amp;")), "the approval names the digest shown: {sync}");
    // A window holding it: the page says which, and until when.
    let mut held = awaiting_status(1);
    held["held"] = json!({"reason": "deny window \"0 22 * * *\" (Europe/Berlin, 8h)", "until": "2026-11-28T05:00:00Z"});
    cluster.patch_status(&waiting, &held);
    let page = served.get(&format!("/syncs/{ns}/waiting"), None).body;
    assert!(
        page.contains(
            "id=\"held\">deny window &quot;0 22 * * *&quot; (Europe&#x2f;Berlin, 8h), until 2026-11-28T05:00:00Z"
        ),
        "{page}"
    );
    // What image updates and auto-promotion last did: their conditions, pushes and pins.
    let mut pushing = ready_status(1);
    pushing["conditions"].as_array_mut().unwrap().push(json!({"type": "ImagesUpdated", "status": "True",
        "reason": "ImagesUpdated", "message": "pushed fedcba987654 to branch main", "observedGeneration": 1,
        "lastTransitionTime": "2025-01-01T00:00:00Z"}));
    pushing["imageUpdates"] = json!({"lastAttemptTime": "2025-01-01T00:02:00Z", "revision": COMMIT, "branch": "main",
        "lastPushedCommit": "fedcba9876543210fedcba9876543210fedcba98", "requests": 2,
        "images": [{"environment": "dev", "image": "registry.example/web", "newest": "1.5.0@sha256:ab"}],
        "changes": [{"environment": "dev", "release": "web", "image": "registry.example/web", "from": "1.4.2", "to": "1.5.0@sha256:ab"}]});
    pushing["promotion"] = json!({"lastAttemptTime": "2025-01-01T00:01:00Z", "revision": COMMIT, "branch": "main",
        "targets": [{"environment": "prod", "from": "dev", "passed": false, "changes": ["web values replicas: 2 -> 1"],
            "gates": [{"gate": "soak", "passed": false, "evidence": []}]}]});
    cluster.patch_status(&ready, &pushing);
    let page = served.get(&format!("/syncs/{ns}/ready"), None).body;
    let part = |id: &str| {
        page.split(&format!("<section id=\"{id}\">")).nth(1).map(|rest| rest.split("</section>").next().unwrap())
    };
    let images = part("image-updates").unwrap_or_else(|| panic!("no image updates part: {page}"));
    assert!(images.contains("ImagesUpdated=True</span> <code>ImagesUpdated</code> pushed fedcba987654"), "{images}");
    assert!(images.contains("<code>fedcba987654</code> to branch <code>main</code>"), "{images}");
    assert!(images.contains("dev registry.example&#x2f;web 1.5.0@sha256:ab"), "{images}");
    assert!(images.contains("Pins the last push changed:"), "{images}");
    let promotion = part("promotion").unwrap_or_else(|| panic!("no promotion part: {page}"));
    assert!(promotion.contains("No outcome yet.") && promotion.contains("prod from dev: failed: soak"), "{promotion}");
    assert!(promotion.contains("nothing pushed to branch <code>main</code> yet"), "{promotion}");
    assert!(promotion.contains("<code>prod: web values replicas: 2 -&gt; 1</code>"), "{promotion}");
    let waiting_page = served.get(&format!("/syncs/{ns}/waiting"), None).body;
    assert!(!waiting_page.contains("<section id=\"image-updates\">"), "{waiting_page}");
    let done = served.get(&format!("/syncs/{ns}/ready?done=%3Cscript%3E"), None).body;
    assert!(!done.contains("id=\"done\"") && !done.contains("<script>"), "only the known actions' words: {done}");

    // The guide's screenshots, under WEAVER_BLESS=1 only (a few seconds each): light and dark by
    // the system's setting, and at 200 % zoom (twice the pixels per CSS pixel, half the width).
    if std::env::var_os("WEAVER_BLESS").is_none() {
        return;
    }
    let dir = common::project_root().join("docs/src/guides/ui");
    std::fs::create_dir_all(&dir).unwrap();
    let sync = format!("/syncs/{ns}/waiting");
    for (file, path, args) in [
        ("fleet.png", "/", &["--window-size=1280,720"][..]),
        ("fleet-dark.png", "/", &["--window-size=1280,720", "--force-dark-mode"][..]),
        ("sync-zoom-200.png", &sync, &["--window-size=640,1000", "--force-device-scale-factor=2"][..]),
    ] {
        served.screenshot(path, &dir.join(file), args);
    }
}

/// The fleet lists every preview of the EnvironmentSyncs shown, and a sync's page its own: each
/// one's branch, commit, state, URL (a link only when http or https) and message.
#[test]
fn the_fleet_and_a_syncs_page_list_its_previews_with_their_urls() {
    let (cluster, ns, _) = setup();
    let repo = Repo::minimal();
    let shop = create(&cluster, &ns, "shop", json!({"previews": {"branches": "preview/*", "environment": "dev"}}));
    let mut status = ready_status(1);
    status["previews"] = json!([
        {"name": "a", "branch": "preview/a", "commit": COMMIT, "namespace": "shop-a", "state": "Ready",
         "url": "https://a.preview.example.org/"},
        {"name": "b", "branch": "preview/b", "commit": COMMIT, "namespace": "shop-b", "state": "Deleted",
         "message": "deleted at 0123456789ab on request"},
        {"name": "x", "branch": "preview/x", "commit": COMMIT, "namespace": "shop-x", "state": "Ready",
         "url": "javascript:alert(1)"},
    ]);
    cluster.patch_status(&shop, &status);
    let plain = create(&cluster, &ns, "plain", json!({}));
    cluster.patch_status(&plain, &ready_status(1));
    let served = Served::start(&repo, &cluster, &["-n", &ns]);

    let fleet = served.get("/", None).body;
    let row = |page: &str, name: &str| -> String {
        let id = format!("<tr id=\"preview-{ns}-shop-{name}\"");
        let rest = page.split(&id).nth(1).unwrap_or_else(|| panic!("no row of preview {name}: {page}"));
        rest.split("</tr>").next().unwrap().to_string()
    };
    let a = row(&fleet, "a");
    assert!(
        a.contains(&format!("href=\"&#x2f;syncs&#x2f;{ns}&#x2f;shop\""))
            || a.contains(&format!("href=\"/syncs/{ns}/shop\"")),
        "{a}"
    );
    assert!(a.contains("<code>preview&#x2f;a</code>") && a.contains(&format!("<code>{}</code>", &COMMIT[..12])), "{a}");
    assert!(a.contains("data-state=\"Ready\"") && a.contains("<td>shop-a</td>"), "{a}");
    assert!(a.contains("<a href=\"https:&#x2f;&#x2f;a.preview.example.org&#x2f;\""), "the URL, a link: {a}");
    let b = row(&fleet, "b");
    assert!(
        b.contains("Deleted") && b.contains("deleted at 0123456789ab on request") && !b.contains("<a href=\"http"),
        "{b}"
    );
    let x = row(&fleet, "x");
    assert!(!x.contains("<a href=\"javascript") && x.contains("<code>javascript:alert(1)</code>"), "only shown: {x}");
    assert_eq!(fleet.matches("<tr id=\"preview-").count(), 3, "plain has none: {fleet}");
    // Filtered out, its previews go with it.
    let failed = served.get("/?state=failed", None).body;
    assert!(!failed.contains("<tr id=\"preview-"), "{failed}");

    let page = served.get(&format!("/syncs/{ns}/shop"), None).body;
    assert!(page.contains("id=\"part-previews\""), "{page}");
    assert!(row(&page, "a").contains("https:&#x2f;&#x2f;a.preview.example.org"), "{page}");
    let plain_page = served.get(&format!("/syncs/{ns}/plain"), None).body;
    assert!(!plain_page.contains("id=\"part-previews\""), "no spec.previews, no section: {plain_page}");
}

#[test]
fn actions_need_the_session_token_and_the_digest_shown() {
    let (cluster, ns, _) = setup();
    let repo = Repo::minimal();
    let object = create(&cluster, &ns, "shop", json!({"approval": "Manual"}));
    cluster.patch_status(&object, &awaiting_status(1));
    let served = Served::start(&repo, &cluster, &["-n", &ns]);
    let spec = || cluster.get(&object).unwrap()["spec"].clone();

    let confirm = served.get(&format!("/syncs/{ns}/shop/confirm/approve?digest={DIGEST}"), None);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    for (header, value) in [
        ("content-security-policy", "default-src 'none'"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert!(confirm.header(header).contains(value), "{header}: {:?}", confirm.headers);
    }
    let cookie = confirm.cookie();
    let csrf = confirm.field("csrf");
    assert_eq!(confirm.field("digest"), DIGEST);
    let approve = format!("/syncs/{ns}/shop/approve");

    // Without the token, with another session's, from another site: refused, nothing patched.
    let other = served.get("/", None).cookie();
    assert_ne!(other, cookie);
    let refused = [
        served.post(&approve, Some(&cookie), None, &[("digest", DIGEST)]),
        served.post(&approve, Some(&other), None, &[("csrf", &csrf), ("digest", DIGEST)]),
        served.post(&approve, None, None, &[("csrf", &csrf), ("digest", DIGEST)]),
        served.post(&approve, Some(&cookie), Some("http://evil.example"), &[("csrf", &csrf), ("digest", DIGEST)]),
    ];
    for reply in refused {
        assert_eq!(reply.status, 403, "{}", reply.body);
    }
    assert_eq!(spec().get("approvedPlan"), None);

    // A name of another site resolving to this port (DNS rebinding) is not answered.
    let port = served.url.rsplit(':').next().unwrap();
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(stream, "GET / HTTP/1.1\r\nHost: evil.example:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");

    // The plan changed since the page was loaded: the digest shown is refused.
    let newer = format!("sha256:{}", "2".repeat(64));
    let mut status = awaiting_status(1);
    status["pendingPlan"]["digest"] = json!(newer);
    cluster.patch_status(&object, &status);
    let stale = served.post(&approve, Some(&cookie), None, &[("csrf", &csrf), ("digest", DIGEST)]);
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("the plan changed since you looked"), "{}", stale.body);
    assert_eq!(spec().get("approvedPlan"), None);

    let approved = served.post(&approve, Some(&cookie), None, &[("csrf", &csrf), ("digest", &newer)]);
    assert_eq!((approved.status, approved.header("location")), (303, &*format!("/syncs/{ns}/shop?done=approve")));
    assert_eq!(spec()["approvedPlan"], json!(newer));
    let said = format!("ui: approved the plan {newer} of EnvironmentSync {ns}/shop");
    eventually("weaver ui tells the approval", || served.said().contains(&said).then_some(()).ok_or(served.said()));

    for (action, check) in [("suspend", true), ("resume", false)] {
        let reply = served.post(&format!("/syncs/{ns}/shop/{action}"), Some(&cookie), None, &[("csrf", &csrf)]);
        assert_eq!(reply.status, 303, "{action}: {}", reply.body);
        assert_eq!(spec()["suspend"], json!(check), "{action}");
    }
    let asked = cluster.get(&object).unwrap()["metadata"]["annotations"][crate::sync::ANNOTATION].clone();
    assert!(asked.is_string(), "resume asks for a reconcile");
    let reconcile = served.post(&format!("/syncs/{ns}/shop/reconcile"), Some(&cookie), None, &[("csrf", &csrf)]);
    assert_eq!(reconcile.status, 303, "{}", reconcile.body);
}

#[test]
fn a_user_whose_rbac_allows_one_namespace_sees_and_acts_there_only() {
    let (cluster, ns, _) = setup();
    let other = cluster.namespace("other");
    let repo = Repo::minimal();
    let mine = create(&cluster, &ns, "mine", json!({"approval": "Manual"}));
    let theirs = create(&cluster, &other, "theirs", json!({"approval": "Manual"}));
    for object in [&mine, &theirs] {
        cluster.patch_status(object, &awaiting_status(1));
    }
    let developer = cluster.service_account(&ns, "developer");
    cluster.apply(
        &[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "syncs", "namespace": ns},
                "rules": [{"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"],
                    "verbs": ["get", "list", "watch", "patch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "syncs", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "syncs"},
                "subjects": [{"kind": "ServiceAccount", "name": "developer", "namespace": ns}]}),
        ],
        "ui-test",
    );
    repo.write("developer-kubeconfig", &developer.kubeconfig);
    let everywhere = Served::start_as(&repo, &repo.path().join("developer-kubeconfig"), &[]);
    let served = Served::start_as(&repo, &repo.path().join("developer-kubeconfig"), &["-n", &ns]);

    // A real server's authorizer learns of the new binding within moments.
    let fleet = eventually("the developer's binding applies", || {
        let reply = served.get("/", None);
        reply.body.contains(&format!("id=\"sync-{ns}-mine\"")).then_some(reply.body.clone()).ok_or(reply.body)
    });
    assert!(!fleet.contains("theirs") && !fleet.contains("role=\"alert\""), "{fleet}");
    let all = everywhere.get("/", None);
    assert!(all.body.contains("role=\"alert\"") && all.body.contains("forbidden"), "{}", all.body);
    assert!(!all.body.contains("id=\"sync-"), "nothing listed that may not be: {}", all.body);
    let elsewhere = served.get(&format!("/syncs/{other}/theirs"), None);
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    assert!(elsewhere.body.contains("forbidden") && !elsewhere.body.contains(DIGEST), "{}", elsewhere.body);

    let confirm = served.get(&format!("/syncs/{ns}/mine/confirm/approve?digest={DIGEST}"), None);
    let (cookie, csrf) = (confirm.cookie(), confirm.field("csrf"));
    let form = [("csrf", csrf.as_str()), ("digest", DIGEST)];
    let refused = served.post(&format!("/syncs/{other}/theirs/approve"), Some(&cookie), None, &form);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("forbidden"), "{}", refused.body);
    assert_eq!(cluster.get(&theirs).unwrap()["spec"].get("approvedPlan"), None);
    let approved = served.post(&format!("/syncs/{ns}/mine/approve"), Some(&cookie), None, &form);
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert_eq!(cluster.get(&mine).unwrap()["spec"]["approvedPlan"], DIGEST);
}

#[test]
fn an_environment_shows_health_plan_and_drift_a_release_rolls_back_and_no_secret_shows() {
    let demo = Demo::new();
    let forms = crate::leaks::decrypted_forms(&demo);
    demo.weaver(&["apply", "--env", "dev"]).success();
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    demo.cluster.merge_patch(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secrets", "namespace": demo.ns}}),
        &json!({"data": {"API_KEY": base64::engine::general_purpose::STANDARD.encode("hand-edited-key-9x")}}),
        "kubectl-edit",
    );
    let served = Served::start(&demo.repo, &demo.cluster, &["-n", &demo.ns]);
    // A decrypted value copied into an object other than a Secret, its page the first one
    // this server shows: the environment's secrets are decrypted for it all the same.
    let copied = forms.iter().max_by_key(|form| form.len()).unwrap();
    demo.cluster.create(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "copied", "namespace": demo.ns}, "data": {"value": copied}}));
    let first = served
        .get(&format!("/environments/dev/object?apiVersion=v1&kind=ConfigMap&namespace={}&name=copied", demo.ns), None);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(!first.body.contains(copied.as_str()), "the object page shows a decrypted value: {}", first.body);

    // A ReplicaSet the Deployment owns (no controller makes one here): drawn under it.
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": demo.ns}});
    let uid = demo.cluster.get(&web).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
    let labels = json!({"tree": "web"});
    demo.cluster.create(&json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": demo.ns,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}));

    let Some(page) = served.dom("/environments/dev") else { return };
    assert!(page.contains("id=\"release-web\""), "{page}");
    let deployment_row = page.find("class=\"depth-1\" data-kind=\"Deployment\" data-name=\"web\"").expect(&page);
    let owned_row = page.find("class=\"depth-2\" data-kind=\"ReplicaSet\" data-name=\"web-5d4f\"").expect(&page);
    assert!(deployment_row < owned_row, "the ReplicaSet under its Deployment: {page}");
    assert!(page.contains("-  replicas: 1") && page.contains("+  replicas: 2"), "the CLI's diff: {page}");
    assert!(page.contains("<code>Secret/") && page.contains("data.API_KEY"), "the Secret drifted: {page}");
    assert!(!page.contains("role=\"alert\""), "every part of the page was read: {page}");

    // Revision 2 applied from the edited tree; the page rolls web back to revision 1.
    demo.weaver(&["apply", "--env", "dev", "-r", "web", "--force-conflicts"]).success();
    assert_eq!(demo.cluster.get(&web).unwrap()["spec"]["replicas"], 2);
    let healed = served.get("/environments/dev", None).body;
    assert!(healed.contains("id=\"no-drift\"") && !healed.contains("data.API_KEY"), "the drift healed: {healed}");
    let release = served.get("/environments/dev/releases/web", None).body;
    assert!(release.contains("id=\"revision-2\" data-status=\"deployed\""), "{release}");
    assert!(release.contains("id=\"rollback-1\"") && !release.contains("id=\"rollback-2\""), "{release}");
    let confirm = served.get("/environments/dev/releases/web/confirm/rollback?revision=1", None);
    assert_eq!((confirm.status, confirm.field("revision")), (200, "1".to_string()), "{}", confirm.body);
    let (cookie, csrf) = (confirm.cookie(), confirm.field("csrf"));
    let rollback = "/environments/dev/releases/web/rollback";
    let refused = served.post(rollback, Some(&cookie), None, &[("revision", "1")]);
    assert_eq!(refused.status, 403, "no CSRF token: {}", refused.body);
    assert_eq!(demo.cluster.get(&web).unwrap()["spec"]["replicas"], 2, "nothing was rolled back");
    let done = served.post(rollback, Some(&cookie), None, &[("csrf", &csrf), ("revision", "1")]);
    assert_eq!(
        (done.status, done.header("location")),
        (303, "/environments/dev/releases/web?done=rollback"),
        "{}",
        done.body
    );
    assert_eq!(demo.cluster.get(&web).unwrap()["spec"]["replicas"], 1, "revision 1 applied again");
    let history = served.dom("/environments/dev/releases/web?done=rollback").unwrap();
    let css = served.get("/ui.css", None).body;
    for dom in [&page, &release, &history] {
        assert_keyboard_reachable(dom, &css);
    }
    assert!(
        history.contains("id=\"revision-3\" data-status=\"deployed\"") && history.contains("rollback to 1"),
        "{history}"
    );
    assert!(history.contains("id=\"done\""), "{history}");

    // Objects: live YAML, fields by manager, a Secret's values never.
    let object = |kind: &str, name: &str| {
        let version = if kind == "Deployment" { "apps%2Fv1" } else { "v1" };
        format!("/environments/dev/object?apiVersion={version}&kind={kind}&namespace={}&name={name}", demo.ns)
    };
    let deployment = served.dom(&object("Deployment", "web")).unwrap();
    assert!(deployment.contains("id=\"manager-weaver\"") && deployment.contains("replicas: 1"), "{deployment}");
    assert!(page.contains(&object("Deployment", "web").replace('&', "&amp;")), "the environment links it: {page}");
    let secret_page = object("Secret", "web-secrets");
    let secret = served.get(&secret_page, None);
    assert_eq!(secret.status, 200, "{}", secret.body);
    assert!(secret.body.contains("API_KEY: &lt;redacted&gt;"), "{}", secret.body);
    // The apply forced above took the hand-edited field back: weaver owns it again.
    assert!(
        secret.body.contains("id=\"manager-weaver\"") && secret.body.contains("<code>data.API_KEY</code>"),
        "{}",
        secret.body
    );
    assert_eq!(served.get(&object("Secret", "nope"), None).status, 404);

    let token = std::fs::read_to_string(demo.cluster.kubeconfig()).unwrap();
    let token = token.lines().find_map(|l| l.trim().strip_prefix("token: ")).map(str::to_string);
    for path in
        ["/", "/environments/dev", "/environments/dev/releases/web", &secret_page, "/ui.css", "/environments/nope"]
    {
        let reply = served.get(path, None);
        for form in forms.iter().chain(["hand-edited-key-9x".to_string()].iter()).chain(token.iter()) {
            assert!(!reply.body.contains(form.as_str()), "{path} shows a secret: {}", reply.body);
        }
    }
    assert!(!served.said().contains("hand-edited"), "{}", served.said());

    // The guide's screenshots, under WEAVER_BLESS=1 only: an environment light, dark and at
    // 200 % zoom, and a release's history side by side.
    if std::env::var_os("WEAVER_BLESS").is_none() {
        return;
    }
    let dir = common::project_root().join("docs/src/guides/ui");
    for (file, path, args) in [
        ("environment.png", "/environments/dev", &["--window-size=1280,1400"][..]),
        ("environment-dark.png", "/environments/dev", &["--window-size=1280,1400", "--force-dark-mode"][..]),
        (
            "environment-zoom-200.png",
            "/environments/dev",
            &["--window-size=640,1400", "--force-device-scale-factor=2"][..],
        ),
        (
            "release-side-by-side.png",
            "/environments/dev/releases/web?diff=side-by-side",
            &["--window-size=1280,1400"][..],
        ),
    ] {
        served.screenshot(path, &dir.join(file), args);
    }
}

#[test]
fn an_environment_shows_its_events_its_history_diffs_its_own_context_and_what_its_user_may_not_list() {
    let demo = Demo::new();
    let forms = crate::leaks::decrypted_forms(&demo);
    demo.weaver(&["apply", "--env", "dev"]).success();
    demo.edit("environments/dev.yaml", "replicas: 1", "replicas: 2");
    demo.weaver(&["apply", "--env", "dev", "-r", "web"]).success();
    let event = |name: &str, kind: &str, object: &str, reason: &str, second: u32| {
        let time = format!("2026-01-01T00:00:{second:02}Z");
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": demo.ns},
            "involvedObject": {"kind": kind, "name": object, "namespace": demo.ns},
            "reason": reason, "message": format!("{reason} happened"), "type": "Normal", "count": 1,
            "firstTimestamp": time, "lastTimestamp": time, "source": {"component": "ui-test"}})
    };
    for object in [
        event("web.older", "Deployment", "web", "OlderReason", 1),
        event("web.newer", "Deployment", "web", "NewerReason", 9),
        event("stranger", "ConfigMap", "not-the-environments", "StrangerReason", 5),
    ] {
        demo.cluster.create(&object);
    }

    // A viewer who may read the environment's objects and events, but not the Pods and
    // ReplicaSets they own; the environment names the viewer's context, the kubeconfig's
    // current one is another.
    let viewer = demo.cluster.service_account(&demo.ns, "viewer");
    let rule = |groups: &[&str], resources: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": ["get", "list", "watch"]});
    demo.cluster.apply(
        &[
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "viewer", "namespace": demo.ns},
            "rules": [
                rule(&[""], &["secrets", "configmaps", "services", "serviceaccounts", "events"]),
                rule(&["apps"], &["deployments", "statefulsets"]),
                rule(&["autoscaling"], &["horizontalpodautoscalers"]),
                rule(&["policy"], &["poddisruptionbudgets"]),
                rule(&["networking.k8s.io"], &["networkpolicies", "ingresses"]),
            ]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "viewer", "namespace": demo.ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": demo.ns}]}),
        ],
        "ui-test",
    );
    let mut kubeconfig: serde_json::Value = serde_json::from_str(&viewer.kubeconfig).unwrap();
    let mut elsewhere = kubeconfig["contexts"][0].clone();
    elsewhere["name"] = json!("elsewhere");
    kubeconfig["contexts"].as_array_mut().unwrap().push(elsewhere);
    kubeconfig["current-context"] = json!("elsewhere");
    demo.repo.write("viewer-kubeconfig", &kubeconfig.to_string());
    demo.edit("environments/dev.yaml", "cluster:\n", "cluster:\n  context: viewer\n");
    let served = Served::start_as(&demo.repo, &demo.repo.path().join("viewer-kubeconfig"), &["-n", &demo.ns]);

    // A real server's authorizer learns of the new binding within moments.
    let page = eventually("the viewer's binding applies", || {
        let reply = served.get("/environments/dev", None);
        reply.body.contains("id=\"release-web\"").then_some(reply.body.clone()).ok_or(reply.body)
    });
    assert!(page.contains("data-kind=\"Deployment\" data-name=\"web\""), "the health rows stay: {page}");
    assert!(
        page.contains("class=\"warning\" role=\"status\">objects&#x27; dependents not shown")
            && page.contains("forbidden"),
        "the tree left out, and why: {page}"
    );
    assert!(page.contains("id=\"server\">viewer ("), "the environment's own context: {page}");
    assert!(served.get("/", None).body.contains("id=\"server\">elsewhere ("), "the fleet's is the kubeconfig's");
    let (newer, older) = (page.find("NewerReason").expect(&page), page.find("OlderReason").expect(&page));
    assert!(newer < older, "newest first: {page}");
    assert!(!page.contains("StrangerReason"), "only the environment's objects' events: {page}");

    let deployment =
        format!("/environments/dev/object?apiVersion=apps%2Fv1&kind=Deployment&namespace={}&name=web", demo.ns);
    // The pages are whole without a browser: read over HTTP, so that no check below waits on
    // Chromium; the browser's reading of the object page is checked where it runs.
    let object = served.get(&deployment, None).body;
    assert!(object.contains("NewerReason happened") && object.contains("OlderReason"), "{object}");
    if let Some(dom) = served.dom(&deployment) {
        assert!(dom.contains("NewerReason happened") && dom.contains("OlderReason"), "{dom}");
    }
    assert!(object.contains("id=\"server\">viewer ("), "{object}");

    // Each revision with what it changed: revision 2 the replicas, revision 1 everything, the
    // values of the Secret (which holds decrypted values) never.
    let release = served.get("/environments/dev/releases/web", None).body;
    let second = release.find("id=\"changes-2\"").expect(&release);
    let first = release.find("id=\"changes-1\"").expect(&release);
    let changed = &release[second..first];
    assert!(changed.contains("-  replicas: 1") && changed.contains("+  replicas: 2"), "{changed}");
    let secret = release[first..].find("web-secrets</code>").expect(&release) + first;
    assert!(release[secret..].split("</details>").next().unwrap().contains("class=\"note withheld\""), "{release}");
    let split = served.get("/environments/dev/releases/web?diff=side-by-side", None).body;
    assert!(
        split.contains("<td class=\"del\">  replicas: 1</td><td class=\"add\">  replicas: 2</td>"),
        "the removed line beside what replaced it: {split}"
    );
    for body in [&page, &object, &release, &split] {
        for form in &forms {
            assert!(!body.contains(form.as_str()), "a decrypted value shows: {body}");
        }
    }
    // Live updates: the page links the script (never inline) and where its events come from.
    assert!(
        page.contains("<script src=\"/ui.js\" defer></script>")
            && page.contains("data-live=\"&#x2f;environments&#x2f;dev&#x2f;live\""),
        "{page}"
    );
    let script = served.get("/ui.js", None);
    assert!(script.header("content-type").starts_with("text/javascript") && script.body.contains("EventSource"));
    let policy = script.header("content-security-policy");
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{policy}");
    let first = served.get("/environments/dev/live", None);
    assert_eq!(first.header("content-type"), "text/event-stream; charset=utf-8", "{}", first.body);
    let marks = first.body.lines().find_map(|l| l.strip_prefix("id: ")).expect(&first.body).to_string();
    assert!(!first.body.contains("event:"), "nothing changed yet: {}", first.body);
    // A change after the marks is told by a wait from them, or from where the waits before it
    // ended (on a real cluster the namespace's Pods say things of their own meanwhile): an
    // event of the environment's namespace here (an apply's record is another).
    demo.cluster.create(&event("web.live", "Deployment", "web", "LiveReason", 30));
    let mut marks = marks;
    let told = (0..30).find_map(|_| {
        let waited = served.get_with("/environments/dev/live", &[("Last-Event-ID", &marks)]);
        assert!(waited.body.contains("event: changed\n"), "a change came before the wait ended: {}", waited.body);
        let next = waited.body.lines().find_map(|l| l.strip_prefix("id: ")).expect(&waited.body).to_string();
        assert_ne!(next, marks, "the next wait starts after the change");
        marks = next;
        waited.body.contains("data: Event web.live\n").then_some(())
    });
    assert!(told.is_some(), "the event was told");
    let refused = served.get_with("/environments/dev/live", &[("Last-Event-ID", "1 event: x")]);
    assert!(refused.body.starts_with("retry: 1000\nid: "), "marks not ours are read again: {}", refused.body);

    // What does not exist is 404, what may not be read 403.
    assert_eq!(served.get("/environments/nope", None).status, 404);
    assert_eq!(served.get("/environments/dev/releases/nope", None).status, 404);
    let secret_elsewhere = "/environments/dev/object?apiVersion=v1&kind=Secret&namespace=kube-system&name=x";
    let forbidden = served.get(secret_elsewhere, None);
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
}

#[test]
fn a_pending_plan_approved_on_its_page_is_applied_by_the_controller_and_the_page_follows_it() {
    use crate::gitops::{
        Controller, Source, config_map, environment_sync, http_or_skip, spec, tenant, until_ready_with,
    };
    if !http_or_skip() {
        return;
    }
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let source = Source::new(&namespace);
    let first = source.commit("first");
    let _controller = Controller::start(&cluster, None);
    let sync =
        environment_sync(&cluster, &namespace, "shop", spec(&source, json!({"interval": "2s", "approval": "Manual"})));
    cluster.create(&sync);
    let waiting = until_ready_with(&cluster, &sync, "AwaitingApproval", "the plan waiting");
    let digest = waiting["status"]["pendingPlan"]["digest"].as_str().unwrap().to_string();
    let served = Served::start(&Repo::minimal(), &cluster, &["-n", &namespace]);
    let page = format!("/syncs/{namespace}/shop");

    // Without a browser (said by `dom`), what the page shows is read over HTTP, and the rest
    // of the test (approval, live updates, the apply) runs all the same.
    let before = served.get(&page, None).body;
    assert_eq!(browser::text_of(&before, "state"), "awaiting-approval", "{before}");
    assert_eq!(browser::text_of(&before, "digest"), digest, "{before}");
    if let Some(dom) = served.dom(&page) {
        // The page's script ran under the Content-Security-Policy, and listens.
        assert_eq!(browser::text_of(&dom, "live-status"), "Live: this page updates itself as the cluster changes.");
    }
    let marks = served.get(&format!("{page}/live"), None).body;
    let marks = marks.lines().find_map(|l| l.strip_prefix("id: ")).expect(&marks).to_string();

    // Approved as a person does it: the confirmation page, then its form.
    let confirm = served.get(&format!("{page}/confirm/approve?digest={digest}"), None);
    let (cookie, csrf) = (confirm.cookie(), confirm.field("csrf"));
    let approved =
        served.post(&format!("{page}/approve"), Some(&cookie), None, &[("csrf", &csrf), ("digest", &digest)]);
    assert_eq!(approved.status, 303, "{}", approved.body);
    // The page hears of the change from its watch (the approval itself, then the controller's
    // status) without being reloaded.
    let heard = served.get_with(&format!("{page}/live"), &[("Last-Event-ID", &marks)]);
    assert!(heard.body.contains("event: changed\ndata: EnvironmentSync shop\n"), "{}", heard.body);

    until_ready_with(&cluster, &sync, "ReconciliationSucceeded", "the approved plan applied");
    assert_eq!(config_map(&cluster, &namespace, "app").unwrap()["data"]["greeting"], "hello");
    let after = served.get(&format!("{page}?done=approve"), None).body;
    assert_eq!(browser::text_of(&after, "state"), "ready", "{after}");
    assert_eq!(browser::text_of(&after, "revision"), &first[..12], "{after}");
    assert!(after.contains("id=\"no-plan\"") && after.contains("id=\"done\""), "{after}");
}

/// An environment's page reads the cluster once for its plan, status and drift (the plan's
/// observation, judged by the other two), its objects from watches after the first view (a
/// change made elsewhere shows as the watch delivers it), and renders the working tree again
/// only when a file it reads changed: a values file edited shows in the next view's plan.
#[test]
fn an_environment_page_reads_its_objects_from_watches_and_renders_again_only_after_an_edit() {
    let demo = Demo::new();
    demo.weaver(&["apply", "--env", "dev"]).success();
    // -vv: the server's log says how long each phase of a view took, `load` among them once
    // per render.
    let served = Served::start(&demo.repo, &demo.cluster, &["-n", &demo.ns, "-vv"]);
    let loads = || served.said().matches("load took").count();
    let ns = format!("/namespaces/{}/", demo.ns);
    let fake = demo.cluster.fake("counting the LISTs of a page view");
    let lists = |resource: &str| {
        let fake = fake.expect("counted on the fake only");
        let path = format!("{ns}{resource}");
        let requests = fake.requests().into_iter().filter(|r| r.method == "GET" && r.path.ends_with(&path));
        requests.map(|r| r.query).collect::<Vec<String>>()
    };
    if let Some(fake) = fake {
        fake.clear_requests();
    }
    let first = served.get("/environments/dev", None);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(!first.body.contains("role=\"alert\""), "every part of the page was read: {}", first.body);
    assert!(first.body.contains("id=\"no-drift\""), "{}", first.body);
    eventually("the first view's phases are logged", || (loads() == 1).then_some(()).ok_or_else(|| served.said()));
    if let Some(fake) = fake {
        // The first view LISTs each resource once (status, plan and drift each listed before
        // they shared one observation), to watch it from there.
        for resource in ["configmaps", "services", "deployments", "secrets", "events", "replicasets", "pods"] {
            let queries = lists(resource);
            let listed = queries.iter().filter(|q| !q.contains("watch=true")).count();
            assert_eq!(listed, 1, "{resource}: {queries:#?}");
        }
        fake.clear_requests();
    }

    assert_eq!(served.get("/environments/dev", None).status, 200);
    if let Some(fake) = fake {
        // Over the first view's connections, but each view sees the kinds served now.
        let discovery = fake.requests().into_iter().filter(|r| r.path == "/apis").count();
        assert_eq!(discovery, 1, "{:#?}", fake.requests());
        // Nor are the objects' dependents and events listed again.
        let listed: Vec<(String, String)> = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.contains(&ns) && !r.query.contains("watch=true"))
            .map(|r| (r.path, r.query))
            .collect();
        assert_eq!(listed, [], "the second view is answered from watches");
    }
    // Changed by someone else: the watch tells the next views.
    demo.cluster.merge_patch(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": demo.ns}}),
        &json!({"data": {"LOG_LEVEL": "changed-by-hand"}}),
        "kubectl-edit",
    );
    // The plan of the page, which views keep per release while nothing it read changed.
    let plan_of = |body: &str| {
        let start = body.find("id=\"part-plan\"").expect("a plan part");
        body[start..start + body[start..].find("id=\"part-drift\"").expect("a drift part")].to_string()
    };
    eventually("a view shows the drift, and plans to put it back", || {
        let body = served.get("/environments/dev", None).body;
        let drifted = body.contains("<code>data.LOG_LEVEL</code>") && !body.contains("id=\"no-drift\"");
        (drifted && plan_of(&body).contains("changed-by-hand")).then_some(()).ok_or(body)
    });
    demo.weaver(&["apply", "--env", "dev", "--force-conflicts"]).success();
    eventually("a view shows the drift healed, and nothing to put back", || {
        let body = served.get("/environments/dev", None).body;
        let plan = plan_of(&body);
        (body.contains("id=\"no-drift\"") && !plan.contains("changed-by-hand") && plan.contains("id=\"no-changes\""))
            .then_some(())
            .ok_or(body)
    });
    // Nothing changed: nothing rendered again.
    let said = |what: &str| served.said().contains(what).then_some(()).ok_or_else(|| served.said());
    eventually("the second view's phases are logged", || said("render (kept: no file changed) took"));
    assert_eq!(loads(), 1, "{}", served.said());

    demo.edit("environments/values/web-dev.yaml", "LOG_LEVEL: debug", "LOG_LEVEL: trace");
    let edited = served.get("/environments/dev", None);
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert!(edited.body.contains("LOG_LEVEL: trace"), "the edit is planned: {}", edited.body);
    eventually("the third view's phases are logged", || (loads() == 2).then_some(()).ok_or_else(|| served.said()));

    // A working tree that does not render has no plan to share: health and drift read the
    // cluster themselves, and show.
    demo.edit("environments/values/web-dev.yaml", "LOG_LEVEL: trace", "LOG_LEVEL: [trace");
    let broken = served.get("/environments/dev", None);
    assert_eq!(broken.status, 200, "{}", broken.body);
    assert!(broken.body.contains("role=\"alert\"") && broken.body.contains("web-dev.yaml"), "{}", broken.body);
    assert!(broken.body.contains("data-kind=\"Deployment\" data-name=\"web\""), "the health: {}", broken.body);
    assert!(broken.body.contains("id=\"no-drift\""), "the drift: {}", broken.body);
}
