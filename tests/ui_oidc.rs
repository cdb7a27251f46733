//! OIDC sign-in to the controller's UI (`--ui-oidc-*`): the whole redirect flow in Chromium
//! against a real provider on loopback (PyPI's oidc-provider-mock: sign-in, refresh, sign-out
//! at the provider, a revoked session ending), the groups claim deciding what RBAC lets the
//! user; and, against a provider whose ID tokens the test crafts
//! (tests/fixtures/oidc_crafted_provider.py), every bad ID token and a replayed `state` refused,
//! with no token or client secret in any page or the log.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::common::cluster::TestCluster;
use crate::common::{self, browser, eventually};
use crate::sync::{create, setup};
use crate::ui::{Reply, Served};
use crate::ui_controller::{Controller, text};

/// A provider process on loopback, stopped with the test.
struct Provider {
    child: Child,
    url: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether python3 can import `module`: what the providers need.
fn python_has(module: &str) -> bool {
    Command::new(common::tools::python3()).args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success())
}

/// A free port on 127.0.0.1 (the UI's and the mock provider's URLs must be known before they start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Served::reply(request.call().expect("an answer"))
}

/// oidc-provider-mock with user `alice` in group `team-a`; None when it is not installed.
fn mock_provider() -> Option<Provider> {
    if !common::interop_available(
        "oidc-provider-mock (pip install oidc-provider-mock)",
        python_has("oidc_provider_mock"),
    ) {
        return None;
    }
    let port = free_port().to_string();
    let alice = json!({"sub": "alice", "email": "alice@example.com", "groups": ["team-a"]}).to_string();
    let child = Command::new(common::tools::python3())
        .args(["-m", "oidc_provider_mock", "--port", &port, "--user-claims", &alice])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oidc-provider-mock");
    let provider = Provider { child, url: format!("http://127.0.0.1:{port}") };
    eventually("oidc-provider-mock to serve its discovery document", || {
        let url = format!("{}/.well-known/openid-configuration", provider.url);
        match agent().get(&url).call() {
            Ok(answer) if answer.status() == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    Some(provider)
}

/// The provider whose ID tokens the test crafts, its token endpoint requiring `secret`.
fn crafted_provider(secret: &str) -> Option<Provider> {
    if !common::interop_available(
        "python3 with cryptography (oidc-provider-mock brings it)",
        python_has("cryptography"),
    ) {
        return None;
    }
    let script = common::project_root().join("tests/fixtures/oidc_crafted_provider.py");
    let mut child = Command::new(common::tools::python3())
        .arg(script)
        .arg(secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the crafted provider");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("listening on ").expect("the provider says where it listens").to_string();
    Some(Provider { child, url })
}

/// Role `role` of `ns` with `rule`, bound to group `group`, once the API server says a member
/// may.
fn grant_group(cluster: &TestCluster, ns: &str, group: &str, role: &str, rule: serde_json::Value) {
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": role, "namespace": ns}, "rules": [rule],
    }));
    cluster.create(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    }));
    let reviews: kube::Api<k8s_openapi::api::authorization::v1::SubjectAccessReview> = kube::Api::all(cluster.client());
    let review = serde_json::from_value(json!({"spec": {"user": "someone", "groups": [group], "resourceAttributes": {
        "namespace": ns, "verb": rule["verbs"][0], "group": rule["apiGroups"][0], "resource": rule["resources"][0]}}}))
    .unwrap();
    eventually("the group's Role to apply", || {
        let answer = cluster.block_on(reviews.create(&Default::default(), &review)).map_err(|e| e.to_string())?;
        answer.status.filter(|s| s.allowed).map(drop).ok_or_else(|| "not allowed yet".to_string())
    });
}

/// The cookie `name` an answer sets, as a request sends it back (`name=value`).
fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    let set = reply.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok());
    set.map(|cookie| cookie.split(';').next().unwrap_or_default().to_string())
        .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
}

/// What the crafted provider issued and counted (GET /issued).
fn issued(provider: &Provider) -> serde_json::Value {
    serde_json::from_str(&get(&format!("{}/issued", provider.url), &[]).body).unwrap()
}

fn jwks_fetches(provider: &Provider) -> u64 {
    issued(provider)["jwks_fetches"].as_u64().unwrap()
}

/// A sign-in at the crafted provider without a browser, as client `client` (forwarded by the
/// trusted proxy the test is): the callback's answer, its path, and the browser's cookies.
fn sign_in_crafted(controller: &Controller, client: &str) -> (Reply, String, String) {
    let start = get(&format!("{}/sign-in/oidc", controller.url), &[("X-Forwarded-For", client)]);
    assert_eq!(start.status, 303, "{}", start.body);
    let flow = start
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("weaver-ui-oidc="));
    let flow = flow.expect("the sign-in's cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/oidc/callback", "Max-Age=600"] {
        assert!(flow.contains(flag), "{flag}: {flow}");
    }
    let cookies = ["weaver-ui", "weaver-ui-oidc"].map(|name| set_cookie(&start, name).expect(name)).join("; ");
    let authorize = get(start.header("location"), &[]);
    assert_eq!(authorize.status, 302, "{}", authorize.body);
    let back = authorize.header("location");
    let path = back.strip_prefix(&controller.url).unwrap_or_else(|| panic!("back to the UI: {back}")).to_string();
    assert!(path.starts_with("/oidc/callback?"), "{path}");
    (controller.get(&path, Some(&cookies)), path, cookies)
}

#[test]
fn every_id_token_that_fails_a_check_and_a_replayed_state_are_refused() {
    // Form-encoded in the Basic credentials (RFC 6749 §2.3.1): `/`, space, `+`, `:` and `%`.
    let secret = "crafted/client secret+7c:1e%9a";
    let Some(provider) = crafted_provider(secret) else { return };
    let (cluster, ns, _) = setup();
    create(&cluster, &ns, "shop", json!({"suspend": true}));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let port = free_port();
    let ui = format!("http://127.0.0.1:{port}");
    // The test is the proxy: each sign-in is another client's, under the rate limit.
    let flags = format!(
        "--ui-url {ui} --ui-oidc-issuer {} --ui-oidc-client-id weaver-ui --ui-oidc-client-secret-file {} \
         --ui-oidc-username-claim email --ui-oidc-groups-claim groups --ui-oidc-groups-prefix oidc: \
         --ui-trusted-proxies 127.0.0.1/32 --ui-review-every 1s",
        provider.url,
        secret_file.display()
    );
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let controller = Controller::start_at(&cluster, &format!("127.0.0.1:{port}"), &flags);
    let mut replies = Vec::new();

    // The sign-in page offers both ways in.
    let page = controller.get("/sign-in", None);
    assert!(page.body.contains("id=\"sign-in-oidc\"") && page.body.contains("id=\"token\""), "{}", page.body);

    // A good ID token: signed in (the email as the user, no prefix; the groups prefixed), and
    // who that is on the "who am I" page.
    let (signed, callback, cookies) = sign_in_crafted(&controller, "198.51.100.1");
    assert_eq!(signed.status, 200, "{}", signed.body);
    let session = set_cookie(&signed, "weaver-ui").expect("a session cookie");
    // The session cookie as a token's (Strict, and --ui-session-max-age's 8 h at most: the
    // refresh token keeps it that long); the sign-in's cookie cleared.
    let set: Vec<&str> = signed.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    let session_set = set.iter().find(|c| c.starts_with("weaver-ui=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=28800", "Path=/"] {
        assert!(session_set.contains(flag), "{flag}: {session_set}");
    }
    assert!(set.iter().any(|c| c.starts_with("weaver-ui-oidc=;") && c.contains("Max-Age=0")), "{set:?}");
    assert!(!cookies.contains(&session), "a new session id, not the browser's before");
    let whoami = controller.get("/whoami", Some(&session));
    let shown = text(&whoami);
    for wanted in ["carol@example.com", "oidc:team-a", &provider.url, "claim <code>email</code>", "Session ends"] {
        assert!(shown.contains(wanted), "{wanted}: {shown}");
    }
    replies.extend([signed, whoami]);

    // Past --ui-review-every, pages asked at once refresh the session once: the provider
    // rotates refresh tokens and refuses a second use of one, which would end the session.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..4).map(|_| scope.spawn(|| controller.get("/whoami", Some(&session)).status)).collect();
        asks.into_iter().map(|ask| ask.join().unwrap()).collect()
    });
    assert_eq!(statuses, [200; 4]);
    let after = issued(&provider);
    assert_eq!((&after["refreshes"], &after["reused"]), (&json!(1), &json!(0)), "{after}");
    // The refreshed ID token (no nonce) was checked and names the same user.
    assert!(text(&controller.get("/whoami", Some(&session))).contains("carol@example.com"));
    // A refresh answered without an ID token keeps the session for the access token's life (300
    // s), refreshed again at --ui-review-every, not at every request.
    agent().post(format!("{}/scenario", provider.url)).send("refresh-without-id-token").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = issued(&provider)["refreshes"].as_u64().unwrap();
    for _ in 0..3 {
        assert_eq!(controller.get("/whoami", Some(&session)).status, 200);
    }
    let refreshed = issued(&provider)["refreshes"].as_u64().unwrap() - before;
    assert_eq!(refreshed, 1, "one refresh for three requests within --ui-review-every");
    // The provider's outage (a proxy's 502 page, no OAuth error in it) is not its refusal: the
    // page says so and the session stands for the next refresh.
    agent().post(format!("{}/scenario", provider.url)).send("token-unavailable").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let outage = controller.get("/whoami", Some(&session));
    assert_eq!(outage.status, 503, "{}", outage.body);
    agent().post(format!("{}/scenario", provider.url)).send("good").unwrap();
    assert_eq!(controller.get("/whoami", Some(&session)).status, 200, "the session outlived the outage");

    // A token still signs in beside OIDC (machines, break-glass), and says so.
    cluster.service_account(&ns, "robot");
    let robot = controller.sign_in(&cluster.token(&ns, "robot"));
    let robot_page = text(&controller.get("/whoami", Some(&robot)));
    assert!(robot_page.contains(&format!("system:serviceaccount:{ns}:robot")), "{robot_page}");
    assert!(robot_page.contains("a token the API server accepts") && !robot_page.contains("Username"), "{robot_page}");

    // The same callback again: its state is used up.
    let replayed = controller.get(&callback, Some(&cookies));
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(text(&replayed).contains("unknown, expired or already used"), "{}", replayed.body);
    // A state started by another browser (another sign-in cookie) is refused, and used up.
    let start = get(&format!("{}/sign-in/oidc", controller.url), &[("X-Forwarded-For", "198.51.100.2")]);
    let authorize = get(start.header("location"), &[]);
    let path = authorize.header("location").strip_prefix(&controller.url).unwrap().to_string();
    let elsewhere =
        controller.get(&path, Some("weaver-ui-oidc=00000000000000000000000000000000000000000000000000000000000000ff"));
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.body);
    let mine = ["weaver-ui", "weaver-ui-oidc"].map(|name| set_cookie(&start, name).unwrap()).join("; ");
    assert_eq!(controller.get(&path, Some(&mine)).status, 400, "used up by the other browser's try");

    // The provider's own refusal: its error code shown, nothing else of its answer.
    let denied = controller.get("/oidc/callback?error=access_denied&error_description=%3Cb%3Eleaked%3C%2Fb%3E", None);
    assert_eq!(denied.status, 401, "{}", denied.body);
    assert!(denied.body.contains("access_denied") && !denied.body.contains("leaked"), "{}", denied.body);

    // Keys rotated: the new key's token is accepted once the JWKS is fetched again.
    assert_eq!(jwks_fetches(&provider), 1, "discovery's fetch");
    agent().post(format!("{}/scenario", provider.url)).send("rotate").unwrap();
    let (rotated, ..) = sign_in_crafted(&controller, "198.51.100.3");
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(jwks_fetches(&provider), 2);

    // Each bad ID token: refused, saying which check it failed.
    let bad = [
        ("tampered", "its signature does not verify"),
        ("expired", "it has expired"),
        ("wrong-audience", "it is not meant for this client"),
        ("wrong-issuer", "another issuer made it"),
        ("alg-none", "its signature algorithm is not allowed"),
        ("hs256-public-key", "its signature algorithm is not allowed"),
        ("unpublished-key", "no key of the provider's JWKS signed it"),
    ];
    for (i, (scenario, why)) in bad.iter().enumerate() {
        agent().post(format!("{}/scenario", provider.url)).send(*scenario).unwrap();
        let (refused, ..) = sign_in_crafted(&controller, &format!("198.51.100.{}", 10 + i));
        assert_eq!(refused.status, 401, "{scenario}: {}", refused.body);
        assert!(text(&refused).contains(why), "{scenario}: {}", refused.body);
        assert!(set_cookie(&refused, "weaver-ui").is_none(), "{scenario}: no session");
        replies.push(refused);
    }
    // The unknown key and the tampered signature had the JWKS fetched again at most once a
    // minute: not again.
    assert_eq!(jwks_fetches(&provider), 2);

    // No token and no client secret in any page or in the log.
    let log = controller.log();
    assert!(log.contains("carol@example.com signed in with OIDC"), "{log}");
    assert!(log.contains("an OIDC sign-in was refused"), "{log}");
    let issued = issued(&provider);
    let tokens = issued["tokens"].as_array().unwrap();
    assert!(tokens.len() >= 2 + bad.len(), "{issued}");
    let mut secrets: Vec<String> = vec![secret.to_string()];
    for issued in tokens {
        // (A refresh answered without an ID token has none.)
        for kind in ["access_token", "refresh_token", "id_token"] {
            secrets.extend(issued[kind].as_str().map(str::to_string));
        }
    }
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log has a secret: {log}");
        for reply in replies.iter().chain([&replayed, &elsewhere, &denied, &rotated, &outage]) {
            assert!(!reply.body.contains(secret.as_str()), "a page has a secret: {}", reply.body);
        }
    }
}

#[test]
fn a_sign_in_after_the_provider_rotated_keys_its_tokens_do_not_name_succeeds_without_a_restart() {
    let secret = "rotating-client-secret";
    let Some(provider) = crafted_provider(secret) else { return };
    let (cluster, ..) = setup();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, secret).unwrap();
    let port = free_port();
    let flags = format!(
        "--ui-url http://127.0.0.1:{port} --ui-oidc-issuer {} --ui-oidc-client-id weaver-ui \
         --ui-oidc-client-secret-file {} --ui-trusted-proxies 127.0.0.1/32",
        provider.url,
        secret_file.display()
    );
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let controller = Controller::start_at(&cluster, &format!("127.0.0.1:{port}"), &flags);
    let scenario = |name: &str| agent().post(format!("{}/scenario", provider.url)).send(name).unwrap();

    // ID tokens without `kid`: each key of the JWKS is tried.
    scenario("no-kid");
    let (first, ..) = sign_in_crafted(&controller, "198.51.100.1");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(jwks_fetches(&provider), 1, "discovery's fetch");
    // The provider signs with a new key: the JWKS known fails the token as it would a forged
    // one, and is fetched again.
    scenario("rotate");
    let (second, ..) = sign_in_crafted(&controller, "198.51.100.2");
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(jwks_fetches(&provider), 2);

    // Forged signatures within the minute: refused, the JWKS not fetched again for each.
    scenario("tampered");
    for client in ["198.51.100.3", "198.51.100.4", "198.51.100.5"] {
        let (forged, ..) = sign_in_crafted(&controller, client);
        assert_eq!(forged.status, 401, "{}", forged.body);
        assert!(text(&forged).contains("its signature does not verify"), "{}", forged.body);
    }
    assert_eq!(jwks_fetches(&provider), 2);
}

#[test]
fn a_user_signs_in_at_the_provider_in_a_browser_and_their_groups_decide_what_they_see() {
    let Some(provider) = mock_provider() else { return };
    let chromium = browser::chromium();
    if !common::interop_available("chromium", chromium.is_some()) {
        return;
    }
    let chromium = chromium.unwrap();
    let (cluster, ns, _) = setup();
    let other = cluster.namespace("other");
    let shop = create(&cluster, &ns, "shop", json!({"suspend": true}));
    create(&cluster, &other, "blog", json!({"suspend": true}));
    // `resume`: the verb of its own that resuming needs once approvals' verbs are enforced.
    let rule = json!({"apiGroups": ["weaver.example.com"], "resources": ["environmentsyncs"],
        "verbs": ["get", "list", "watch", "patch", "resume"]});
    grant_group(&cluster, &ns, "oidc:team-a", "team-a-syncs", rule);
    // oidc-provider-mock serves confidential clients only (any secret).
    let secret = "mock-client-secret-52b0d4";
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, secret).unwrap();
    let port = free_port();
    // The UI by name, the provider by address: two sites, as in production, so the session
    // cookie (SameSite=Strict) and the sign-in's (Lax) are tested across a site's boundary.
    let ui = format!("http://localhost:{port}");
    let flags = format!(
        "--ui-url {ui} --ui-oidc-issuer {} --ui-oidc-client-id weaver-ui --ui-oidc-client-secret-file {} \
         --ui-oidc-groups-claim groups --ui-oidc-groups-prefix oidc: --ui-review-every 1s",
        provider.url,
        secret_file.display()
    );
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let controller = Controller::start_at(&cluster, &format!("127.0.0.1:{port}"), &flags);
    let user = format!("{}#alice", provider.url);

    // Signed in through the provider's page: the fleet, of the group's namespace only.
    let sign_in = |page: &mut browser::Driven| {
        page.go(&format!("{ui}/sign-in"));
        page.evaluate("document.getElementById('sign-in-oidc').click(); true");
        let form = page.loaded(|at| at.starts_with(&provider.url));
        assert!(form.contains("alice"), "{form}");
        page.evaluate("document.querySelector('button[value=\"alice\"]').click(); true");
        page.loaded(|at| at == format!("{ui}/"))
    };
    let mut page = browser::Driven::open(&chromium, &format!("{ui}/"));
    let fleet = sign_in(&mut page);
    assert!(fleet.contains(&format!("id=\"sync-{ns}-shop\"")), "{fleet}");
    assert!(!fleet.contains("blog") && !fleet.contains(&other), "{fleet}");
    assert!(fleet.contains(&user), "the user's name, prefixed with the issuer as the API server does: {fleet}");
    let whoami = page.go(&format!("{ui}/whoami"));
    for wanted in [&user, "oidc:team-a", "OIDC, at", "claim <code>sub</code>", "claim <code>groups</code>"] {
        assert!(whoami.contains(wanted), "{wanted}: {whoami}");
    }
    assert_eq!(page.evaluate("document.cookie"), json!(""), "no cookie in script's reach");

    // What RBAC gives the group: this namespace's sync, and its actions; elsewhere 403.
    let cookie = page.cookie_header();
    assert_eq!(controller.get(&format!("/syncs/{ns}/shop"), Some(&cookie)).status, 200);
    let elsewhere = controller.get(&format!("/syncs/{other}/blog"), Some(&cookie));
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    assert!(
        text(&elsewhere).contains(&format!("{user} may not see EnvironmentSync {other}/blog")),
        "{}",
        elsewhere.body
    );
    page.go(&format!("{ui}/syncs/{ns}/shop/confirm/resume"));
    page.evaluate("document.getElementById('confirm-button').click(); true");
    page.loaded(|at| at.starts_with(&format!("{ui}/syncs/{ns}/shop")) && !at.contains("confirm"));
    eventually("the resume to be written", || {
        let suspended = cluster.get(&shop).unwrap()["spec"]["suspend"] == true;
        (!suspended).then_some(()).ok_or("still suspended".to_string())
    });
    assert!(controller.log().contains(&format!("(for {user})")), "{}", controller.log());

    // Past --ui-review-every the session is refreshed at the provider, and goes on.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(controller.get("/", Some(&cookie)).status, 200);

    // Signed out: here, then at the provider (its end-session page), which sends the browser
    // back to the sign-in page; the old session is gone.
    page.go(&format!("{ui}/"));
    page.evaluate("document.querySelector('#sign-out button').click(); true");
    let ending = page.loaded(|at| at.starts_with(&format!("{}/oauth2/end_session", provider.url)));
    assert!(ending.contains("id_token_hint") && ending.contains(&format!("{ui}/sign-in")), "{ending}");
    page.evaluate("document.querySelector('form button[type=submit]').click(); true");
    page.loaded(|at| at == format!("{ui}/sign-in"));
    assert_eq!(controller.get("/", Some(&cookie)).status, 303, "the session ended here");

    // Signed in again, then the provider revokes the user's tokens: the next refresh fails and
    // the session ends.
    sign_in(&mut page);
    let cookie = page.cookie_header();
    assert_eq!(controller.get("/", Some(&cookie)).status, 200);
    let revoked = agent().post(format!("{}/users/alice/revoke-tokens", provider.url)).send_empty().unwrap();
    assert_eq!(revoked.status(), 204);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let ended = controller.get("/", Some(&cookie));
    assert_eq!((ended.status, ended.header("location")), (303, "/sign-in"), "{}", ended.body);
    let log = controller.log();
    assert!(log.contains(&format!("{user} signed in with OIDC")), "{log}");
    assert!(!log.contains(secret) && !whoami.contains(secret) && !fleet.contains(secret), "{log}");
}
