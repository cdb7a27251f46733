//! `imageUpdates:` against Debian's docker-registry behind a proxy of the tests': token auth
//! (a Bearer challenge whose realm wants the test credentials, as Docker Hub, GHCR and Harbor
//! run it), an `ETag` on tag lists answered `304` to `If-None-Match` (as registries that support
//! conditional requests do: docker-registry itself sends none), pages of 500 tags, a `429` with
//! `Retry-After` on demand, and a log of what was asked.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use crate::common::cluster::TestCluster;
use crate::common::registry::Registry;
use crate::common::{Repo, interop_available};
use crate::remote_charts::{Answer, Request, TestServer, sha256_hex};
use weaver_test_support::cosign::{self, TestSigner};

const USER: &str = "robot";
pub(crate) const PASSWORD: &str = "pa55-for-images";
pub(crate) const TOKEN: &str = "t0ken-for-images";
/// Tags per page of the proxy's tag lists.
const PAGE: usize = 500;
/// The key the controller signs release records with, for the promotions' `signed` gate.
const KEY: &[u8] = b"a record key of more than thirty-two bytes";

/// The registry, the proxy in front of it, what the proxy was asked and how many 429s it owes.
pub(crate) struct Proxied {
    pub(crate) registry: Registry,
    pub(crate) proxy: TestServer,
    address: Ipv4Addr,
    asked: Arc<Mutex<Vec<String>>>,
    throttle: Arc<AtomicUsize>,
}

impl Proxied {
    fn start() -> Option<Proxied> {
        Proxied::start_on(Ipv4Addr::LOCALHOST)
    }

    /// The proxy listening on `address` (the registry behind it stays on loopback).
    pub(crate) fn start_on(address: Ipv4Addr) -> Option<Proxied> {
        let registry = match Registry::start() {
            Ok(registry) => registry,
            Err(why) => {
                interop_available(&format!("docker-registry ({why})"), false);
                return None;
            }
        };
        let (asked, throttle) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let (log, owed, backend) = (asked.clone(), throttle.clone(), registry.port);
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
        let proxy = TestServer::start_on(address, move |port, request| {
            if request.path.starts_with("token?") {
                return match request.authorization == basic {
                    true => ("200 OK", String::new(), format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes()),
                    false => ("401 Unauthorized", String::new(), b"bad credentials".to_vec()),
                };
            }
            if request.authorization != format!("Bearer {TOKEN}") {
                let challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"http://{address}:{port}/token\",service=\"test\",scope=\"repository:shop:pull\"\r\n"
                );
                return ("401 Unauthorized", challenge, b"{}".to_vec());
            }
            log.lock().unwrap().push(format!("{} {}", request.method, request.path));
            if request.path.contains("/tags/list") && owed.load(Ordering::SeqCst) > 0 {
                owed.fetch_sub(1, Ordering::SeqCst);
                return ("429 Too Many Requests", "Retry-After: 1\r\n".into(), b"slow down".to_vec());
            }
            forward(backend, request)
        });
        Some(Proxied { registry, proxy, address, asked, throttle })
    }

    pub(crate) fn image(&self, name: &str) -> String {
        format!("{}:{}/{name}", self.address, self.proxy.port)
    }

    /// What was asked since the last call, `GET v2/shop/web/tags/list` and the like.
    fn take_asked(&self) -> Vec<String> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

/// The request passed to the registry. Tag lists are served in pages of [`PAGE`] with a
/// `Link` to the next (docker-registry 2.8 answers whole lists), each page with an ETag.
fn forward(backend: u16, request: &Request) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let url = format!("http://127.0.0.1:{backend}/{path}");
    let answer = match request.method.as_str() {
        "HEAD" => agent.head(&url).header("Accept", &request.accept).call(),
        _ => agent.get(&url).header("Accept", &request.accept).call(),
    };
    let mut response = answer.unwrap();
    let mut headers = String::new();
    for name in ["docker-content-digest", "content-type"] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let status = response.status().as_u16();
    let mut body = if request.method == "HEAD" { Vec::new() } else { response.body_mut().read_to_vec().unwrap() };
    if path.ends_with("/tags/list") && status == 200 {
        let list: Value = serde_json::from_slice(&body).unwrap();
        let mut tags: Vec<String> = serde_json::from_value(list["tags"].clone()).unwrap_or_default();
        tags.sort();
        let last = query.split('&').find_map(|p| p.strip_prefix("last=")).unwrap_or("");
        let start = if last.is_empty() { 0 } else { tags.iter().position(|t| t.as_str() > last).unwrap_or(tags.len()) };
        let page: Vec<&String> = tags[start..].iter().take(PAGE).collect();
        if start + page.len() < tags.len() {
            let next = page.last().unwrap();
            headers.push_str(&format!("Link: </{path}?n={PAGE}&last={next}>; rel=\"next\"\r\n"));
        }
        body = serde_json::to_vec(&json!({"name": list["name"], "tags": page})).unwrap();
        let etag = format!("\"{}\"", &sha256_hex(&body)[..16]);
        if request.if_none_match == etag {
            return ("304 Not Modified", format!("ETag: {etag}\r\n{headers}"), Vec::new());
        }
        headers.push_str(&format!("ETag: {etag}\r\n"));
    }
    let line = match status {
        200 => "200 OK",
        404 => "404 Not Found",
        _ => "500 Internal Server Error",
    };
    (line, headers, body)
}

/// Pushes straight to the registry (no proxy): blobs, then a manifest; its digest.
fn put_blob(port: u16, repository: &str, data: &[u8]) -> String {
    let agent = ureq::Agent::new_with_defaults();
    let digest = format!("sha256:{}", sha256_hex(data));
    let started = agent.post(format!("http://127.0.0.1:{port}/v2/{repository}/blobs/uploads/")).send_empty().unwrap();
    let location = started.headers().get("location").unwrap().to_str().unwrap().to_string();
    let location = if location.starts_with('/') { format!("http://127.0.0.1:{port}{location}") } else { location };
    let separator = if location.contains('?') { '&' } else { '?' };
    agent
        .put(format!("{location}{separator}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .send(data)
        .unwrap();
    digest
}

fn put_manifest(port: u16, repository: &str, tag: &str, media_type: &str, manifest: &Value) -> (String, usize) {
    let body = serde_json::to_vec(manifest).unwrap();
    ureq::Agent::new_with_defaults()
        .put(format!("http://127.0.0.1:{port}/v2/{repository}/manifests/{tag}"))
        .header("Content-Type", media_type)
        .send(&body[..])
        .unwrap();
    (format!("sha256:{}", sha256_hex(&body)), body.len())
}

const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image built at `created` for linux/`architecture`, tagged `tag`; its manifest's digest and size.
pub(crate) fn push_image(port: u16, repository: &str, tag: &str, created: &str, architecture: &str) -> (String, usize) {
    let config = json!({"created": created, "architecture": architecture, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}, "config": {"Labels": {"tag": tag}}});
    let config = serde_json::to_vec(&config).unwrap();
    let layer = format!("layer of {repository}:{tag}").into_bytes();
    let (config_digest, layer_digest) = (put_blob(port, repository, &config), put_blob(port, repository, &layer));
    let manifest = json!({"schemaVersion": 2, "mediaType": IMAGE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]});
    put_manifest(port, repository, tag, IMAGE_MANIFEST, &manifest)
}

/// A multi-arch index tagged `tag`: amd64 built at `amd64_created`, arm64 at `arm64_created`.
fn push_index(port: u16, repository: &str, tag: &str, amd64_created: &str, arm64_created: &str) -> String {
    let amd64 = push_image(port, repository, &format!("{tag}-amd64"), amd64_created, "amd64");
    let arm64 = push_image(port, repository, &format!("{tag}-arm64"), arm64_created, "arm64");
    let entry = |(digest, size): (String, usize), architecture: &str| {
        json!({"mediaType": IMAGE_MANIFEST, "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": architecture}})
    };
    let index = json!({"schemaVersion": 2, "mediaType": IMAGE_INDEX,
        "manifests": [entry(amd64, "amd64"), entry(arm64, "arm64")]});
    put_manifest(port, repository, tag, IMAGE_INDEX, &index).0
}

/// A docker config (`docker login`'s) for the proxy, with `password`.
fn docker_config(dir: &std::path::Path, port: u16, password: &str) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    let config = json!({"auths": {format!("127.0.0.1:{port}"): {"auth": auth}}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.to_path_buf()
}

/// A docker config with the proxy's credentials, and the base64 of them, to look for where
/// they must not be.
pub(crate) fn pull_secret_data(registry: &Proxied, password: &str) -> (String, String) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    let config = json!({"auths": {format!("{}:{}", registry.address, registry.proxy.port): {"auth": auth}}});
    (config.to_string(), auth)
}

/// Secret `regcred` of `namespace`, [`pull_secret_data`]'s docker config, made or replaced; the
/// base64 of the credentials.
fn pull_secret(cluster: &TestCluster, namespace: &str, registry: &Proxied, password: &str) -> String {
    let (config, auth) = pull_secret_data(registry, password);
    cluster.apply(
        &[json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": namespace},
        "stringData": {".dockerconfigjson": config}})],
        "images-test",
    );
    auth
}

/// Repo::minimal (release `app`) with `imageUpdates:` entries.
fn subscribed(entries: &str) -> Repo {
    let repo = Repo::minimal();
    repo.write(
        "environments/dev.yaml",
        &format!("namespace: apps\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n{entries}"),
    );
    repo
}

fn check_json(repo: &Repo, docker: &std::path::Path) -> (i32, Value) {
    let run = repo.weaver_env(&["images", "check", "-o", "json"], &[("DOCKER_CONFIG", docker.to_str().unwrap())]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    (run.code, serde_json::from_str(&run.stdout).unwrap())
}

/// Each policy takes its tag, written `tag@digest`, and says why it took no other; the tags of
/// a repository named twice are read once.
#[test]
fn each_policy_takes_its_tag_by_digest_and_says_why_not_the_others() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let mut digests = std::collections::HashMap::new();
    for tag in ["1.4.2", "1.5.0", "1.6.0-rc.1", "2.0.0", "main-99", "main-100", "latest"] {
        digests.insert(tag, push_image(port, "shop/web", tag, "2026-11-01T00:00:00Z", "amd64").0);
    }
    // newestBuild, on linux/arm64: `b` is the newer on arm64 though older on amd64.
    push_index(port, "shop/worker", "a", "2026-11-02T00:00:00Z", "2026-11-02T00:00:00Z");
    let b = push_index(port, "shop/worker", "b", "2026-11-03T00:00:00Z", "2026-11-05T00:00:00Z");
    push_index(port, "shop/worker", "c", "2026-11-04T00:00:00Z", "2026-11-04T00:00:00Z");
    let (web, worker) = (registry.image("shop/web"), registry.image("shop/worker"));
    let repo = subscribed(&format!(
        "  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0 <2'}}}}
  - {{image: {web}, releases: [app], plainHttp: true, filterTags: {{pattern: '^main-(?P<n>[0-9]+)$', extract: '$n'}}, policy: {{numerical: asc}}}}
  - {{image: {worker}, releases: [app], plainHttp: true, filterTags: {{pattern: '^[a-z]$'}}, platform: linux/arm64, policy: {{newestBuild: true}}}}
  - {{image: {web}, releases: [app], plainHttp: true, policy: {{digest: latest}}}}
"
    ));
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    registry.take_asked();
    let (code, report) = check_json(&repo, docker.path());
    assert_eq!(code, 2, "new tags: {report}");
    let images = report["environments"][0]["images"].as_array().unwrap();
    let newest: Vec<&str> = images.iter().map(|i| i["newest"].as_str().unwrap()).collect();
    assert_eq!(
        newest,
        [
            format!("1.5.0@{}", digests["1.5.0"]),
            format!("main-100@{}", digests["main-100"]),
            format!("b@{b}"),
            format!("latest@{}", digests["latest"]),
        ]
    );
    assert_eq!(images[0]["current"], json!({"app": null}));
    assert_eq!(images[0]["new"], true);
    let mut reasons: Vec<(&str, u64)> = images[0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["reason"].as_str().unwrap(), s["count"].as_u64().unwrap()))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [("a pre-release (prereleases: true takes them)", 1), ("not a semantic version", 3), ("outside the range", 1)],
        "{report}"
    );
    assert_eq!(images[0]["older"], 1);
    // The web repository's tags were listed once for three subscriptions.
    let asked = registry.take_asked();
    let lists = asked.iter().filter(|a| a.starts_with("GET v2/shop/web/tags/list")).count();
    assert_eq!(lists, 1, "{asked:?}");

    // The text says the same, and why.
    let run = repo.weaver_env(&["images", "check"], &[("DOCKER_CONFIG", docker.path().to_str().unwrap())]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("1.5.0@{}", digests["1.5.0"])), "{}", run.stdout);
    assert!(run.stdout.contains("1 outside the range (2.0.0)"), "{}", run.stdout);
    assert!(!run.stdout.contains(PASSWORD) && !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
}

/// Refused credentials name the registry and where credentials come from, never the password
/// or a token; a `429` is waited out; thousands of tags are read page by page.
#[test]
fn refusals_limits_and_pages_are_met_as_registries_need() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let (digest, _) = push_image(port, "shop/web", "1.0.0", "2026-11-01T00:00:00Z", "amd64");
    let web = registry.image("shop/web");
    let repo =
        subscribed(&format!("  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1'}}}}\n"));
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, "wrong-password");
    let run = repo.weaver_env(&["images", "check"], &[("DOCKER_CONFIG", docker.path().to_str().unwrap())]);
    let err = run.failure();
    assert!(err.contains("answered HTTP 401") && err.contains(&format!("127.0.0.1:{}", registry.proxy.port)), "{err}");
    assert!(err.contains("docker login"), "{err}");
    assert!(!err.contains("wrong-password") && !err.contains(TOKEN), "{err}");

    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    registry.throttle.store(2, Ordering::SeqCst);
    let (code, report) = check_json(&repo, docker.path());
    assert_eq!((code, &report["environments"][0]["images"][0]["newest"]), (2, &json!(format!("1.0.0@{digest}"))));
    let asked = registry.take_asked();
    assert_eq!(asked.iter().filter(|a| a.contains("/tags/list")).count(), 3, "two 429s, then the list: {asked:?}");
    // A registry that keeps refusing: the error says it limits requests.
    registry.throttle.store(100, Ordering::SeqCst);
    let run = repo.weaver_env(&["images", "check"], &[("DOCKER_CONFIG", docker.path().to_str().unwrap())]);
    assert!(run.failure().contains("is limiting requests"), "{}", run.stderr);
    registry.throttle.store(0, Ordering::SeqCst);

    // 1,200 tags of one manifest: three pages, the newest on the last (tagged from four threads:
    // the registry's writes are most of this test's time).
    let manifest = serde_json::from_slice::<Value>(&fetch_manifest(port, "shop/web", "1.0.0")).unwrap();
    std::thread::scope(|scope| {
        for first in 0..4 {
            let (manifest, digest) = (&manifest, &digest);
            scope.spawn(move || {
                for n in (first..1200).step_by(4) {
                    let tagged = put_manifest(port, "shop/web", &format!("1.1.{n}"), IMAGE_MANIFEST, manifest);
                    assert_eq!(&tagged.0, digest);
                }
            });
        }
    });
    registry.take_asked();
    let (_, report) = check_json(&repo, docker.path());
    assert_eq!(report["environments"][0]["images"][0]["newest"], format!("1.1.1199@{digest}"));
    assert_eq!(report["environments"][0]["images"][0]["tags"], 1201);
    let asked = registry.take_asked();
    assert_eq!(asked.iter().filter(|a| a.contains("/tags/list")).count(), 3, "{asked:?}");
}

/// Tags outside the OCI grammar are left out before any policy orders them, and shown escaped:
/// `zzz@sha256:…` is not taken by `alphabetical: asc` (its pin would name another digest), nor
/// the empty tag by `desc` (a bare `@sha256:` pin), and no control byte reaches the terminal.
#[test]
fn tags_outside_the_oci_grammar_are_neither_taken_nor_printed_raw() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let answered = digest.clone();
    let registry = TestServer::start(move |_, request| match request.path.as_str() {
        "v2/shop/web/tags/list" => {
            let tags = ["x\u{1b}[31m\u{7}", "1.0.0", "zzz@sha256:aaaa", "", "a|b **c** `d`", "2.0.0"];
            ("200 OK", String::new(), serde_json::to_vec(&json!({"name": "shop/web", "tags": tags})).unwrap())
        }
        _ => ("200 OK", format!("Docker-Content-Digest: {answered}\r\n"), Vec::new()),
    });
    let web = format!("127.0.0.1:{}/shop/web", registry.port);
    let repo = subscribed(&format!(
        "  - {{image: {web}, releases: [app], plainHttp: true, policy: {{alphabetical: asc}}}}\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{alphabetical: desc}}}}\n"
    ));
    let docker = tempfile::tempdir().unwrap();
    let (_, report) = check_json(&repo, docker.path());
    let images = &report["environments"][0]["images"];
    assert_eq!(images[0]["newest"], format!("2.0.0@{digest}"), "{report}");
    assert_eq!(images[1]["newest"], format!("1.0.0@{digest}"), "{report}");
    let skipped = &images[1]["skipped"][0];
    assert!(skipped["reason"].as_str().unwrap().starts_with("not a tag by the OCI grammar"), "{report}");
    assert_eq!((&skipped["count"], &skipped["examples"]), (&json!(4), &json!(["x\\u{1b}[31m\\u{7}"])));
    let run = repo.weaver_env(&["images", "check"], &[("DOCKER_CONFIG", docker.path().to_str().unwrap())]);
    assert!(run.stdout.contains("4 not a tag by the OCI grammar"), "{}", run.stdout);
    assert!(!run.stdout.contains(['\u{1b}', '\u{7}']) && !run.stderr.contains(['\u{1b}', '\u{7}']), "{}", run.stdout);
}

fn fetch_manifest(port: u16, repository: &str, tag: &str) -> Vec<u8> {
    ureq::Agent::new_with_defaults()
        .get(format!("http://127.0.0.1:{port}/v2/{repository}/manifests/{tag}"))
        .header("Accept", IMAGE_MANIFEST)
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap()
}

/// An unchanged repository costs one `304` per page in a process that asked before; a changed
/// one is read again; a tag moved to a new digest is seen.
#[test]
fn an_unchanged_repository_costs_one_answer_without_a_body() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    push_image(port, "shop/web", "1.0.0", "2026-11-01T00:00:00Z", "amd64");
    let dir = tempfile::tempdir().unwrap();
    let docker = docker_config(dir.path(), registry.proxy.port, PASSWORD);
    let config = docker.join("config.json");
    let var = move |key: &str| match key {
        "DOCKER_CONFIG" => Some(docker.to_str().unwrap().to_string()),
        "HOME" => Some("/nonexistent".to_string()),
        _ => None,
    };
    assert!(config.exists());
    let machine = weaver_source::charts::http::Machine::load(var).unwrap();
    let registries = weaver_source::images::Registries::new(machine, "the test's docker config");
    let web = weaver_source::images::ImageRepository::locate(&registry.image("shop/web"), true);
    let check = registries.check();
    assert_eq!(*registries.tags(&web, &check).unwrap().list, ["1.0.0"]);
    registry.take_asked();
    let before = registries.requests();
    let again = registries.tags(&web, &check).unwrap();
    assert_eq!((again.list.as_slice(), again.unchanged), (&["1.0.0".to_string()][..], true));
    assert_eq!(registries.requests() - before, 1, "one request for an unchanged repository");
    assert_eq!(registry.take_asked(), ["GET v2/shop/web/tags/list"]);
    push_image(port, "shop/web", "1.1.0", "2026-11-02T00:00:00Z", "amd64");
    let changed = registries.tags(&web, &check).unwrap();
    assert!(!changed.unchanged);
    let mut tags = changed.list.to_vec();
    tags.sort();
    assert_eq!(tags, ["1.0.0", "1.1.0"]);

    // The tag moved: its digest now is the new image's.
    let first = registries.digest(&web, "1.1.0", &check).unwrap();
    let (moved, _) = push_image(port, "shop/web", "1.1.0", "2026-11-03T00:00:00Z", "amd64");
    assert_ne!(first, moved);
    assert_eq!(registries.digest(&web, "1.1.0", &check).unwrap(), moved);
}

/// `weaver images update` writes the new pins as a commit on a new branch with the plan (the
/// release's containers get `tag@digest`), and writes nothing when nothing is new.
#[test]
fn update_commits_the_pins_and_nothing_when_nothing_is_new() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let (digest, _) = push_image(port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    let cluster = TestCluster::start();
    let namespace = cluster.namespace("images");
    let web = registry.image("shop/web");
    let repo = Repo::empty();
    repo.write("charts/app/chart.yaml", "name: app\nversion: 0.1.0\n").write(
        "charts/app/templates/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n        - name: web\n          image: {web}:1.4.2\n"
        ),
    );
    repo.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {namespace}\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0'}}}}\n"
        ),
    );
    let git = crate::common::git::init(repo.path());
    let mut config = git.config().unwrap();
    config.set_str("user.name", "Image Updater").unwrap();
    config.set_str("user.email", "images@weaver.invalid").unwrap();
    crate::common::git::commit_all(&git, "first");
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    let env = [("DOCKER_CONFIG", docker.path().to_str().unwrap())];
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_string();
    let run = repo.weaver_env(
        &["--kubeconfig", &kubeconfig, "images", "update", "--env", "dev", "--branch", "images/dev", "-o", "json"],
        &env,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let pin = format!("1.5.0@{digest}");
    assert_eq!(report["changes"][0]["to"], pin.as_str());
    assert_eq!(report["branch"], "images/dev");
    let plan = report["plan"].to_string();
    assert!(plan.contains(&format!("{web}:{pin}")), "the plan sets the image: {plan}");
    let blob = git.revparse_single("images/dev:promotions/dev.yaml").unwrap().peel_to_blob().unwrap();
    let written = String::from_utf8(blob.content().to_vec()).unwrap();
    assert!(written.starts_with("# Written by `weaver images update`"), "{written}");
    assert!(written.contains(&format!("{web}: {pin}")), "{written}");
    assert!(!written.contains("revision") && !written.contains("from:"), "{written}");

    // Merged, the environment renders the pin, and nothing is new: nothing written.
    let branch = git.revparse_single("images/dev").unwrap();
    git.reset(&branch, git2::ResetType::Hard, None).unwrap();
    let rendered = repo.weaver(&["render", "--env", "dev"]).success().to_string();
    assert!(rendered.contains(&format!("image: {web}:{pin}")), "{rendered}");
    let again = repo.weaver_env(&["--kubeconfig", &kubeconfig, "images", "update", "--env", "dev"], &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("Nothing new"), "{}", again.stdout);
    let branches: Vec<String> = git
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_string())
        .collect();
    assert_eq!(branches.len(), 2, "no branch but the first and images/dev: {branches:?}");
}

/// What cannot be subscribed is named with its place.
#[test]
fn a_subscription_that_cannot_be_used_is_named() {
    let repo = subscribed("  - {image: reg.example/web, releases: [api], policy: {semver: '>=1'}}\n");
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(err.contains("environments/dev.yaml:") && err.contains("names release `api`"), "{err}");
    let repo = Repo::minimal();
    let err = repo.weaver(&["images", "check", "--env", "dev"]).failure().to_string();
    assert!(err.contains("environment `dev` has no `imageUpdates:`"), "{err}");
    let repo = subscribed("  - {image: reg.example/web, releases: [app], policy: {semver: '>=1'}}\n");
    repo.write("environments/prod.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\npromotion: {from: dev, pins: [{release: app, image: reg.example/web}]}\nimageUpdates:\n  - {image: reg.example/web, releases: [app], policy: {semver: '>=1'}}\n");
    let err = repo.weaver(&["images", "check", "--env", "prod"]).failure().to_string();
    assert!(err.contains("has both `imageUpdates` and `promotion`"), "{err}");
}

/// Pushes cosign's signature of `digest` (the image `image`) made by `signer`, as `cosign sign
/// --key` pushes one: the payload as a blob, the config, the manifest at `sha256-HEX.sig`.
/// `payload` replaces the payload pushed (not the one signed) when given.
pub(crate) fn push_signature(
    port: u16,
    repository: &str,
    image: &str,
    digest: &str,
    signer: &TestSigner,
    payload: Option<&[u8]>,
) {
    let signed = signer.payload(image, digest);
    let signature = signer.sign(&signed);
    let pushed = payload.unwrap_or(&signed);
    let payload_digest = put_blob(port, repository, pushed);
    let config = cosign::signature_config(std::slice::from_ref(&payload_digest));
    let config_digest = put_blob(port, repository, &config);
    let manifest =
        cosign::signature_manifest((&config_digest, config.len()), &[(payload_digest, pushed.len(), signature)]);
    put_manifest(port, repository, &weaver_verify::cosign::signature_tag(digest), IMAGE_MANIFEST, &manifest);
}

/// With `verify`, the newest tag signed by a key of the subscription's is taken; each newer one
/// says why it was passed over: unsigned, signed by another key, a signature copied from another
/// image, a payload changed after it was signed. A signature pushed later is seen.
#[test]
fn only_tags_a_trusted_key_signed_are_taken_and_the_others_say_why() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let (trusted, other) = (TestSigner::new("release team"), TestSigner::new("someone else"));
    let web = registry.image("shop/web");
    let mut digests = std::collections::HashMap::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"] {
        digests.insert(tag, push_image(port, "shop/web", tag, "2026-11-01T00:00:00Z", "amd64").0);
    }
    push_signature(port, "shop/web", &web, &digests["1.0.0"], &trusted, None);
    push_signature(port, "shop/web", &web, &digests["1.1.0"], &trusted, None);
    push_signature(port, "shop/web", &web, &digests["1.2.0"], &other, None);
    // 1.3.0 carries 1.1.0's signature, copied: it names 1.1.0's digest.
    let copied = fetch_manifest(port, "shop/web", &weaver_verify::cosign::signature_tag(&digests["1.1.0"]));
    let copied: Value = serde_json::from_slice(&copied).unwrap();
    put_manifest(port, "shop/web", &weaver_verify::cosign::signature_tag(&digests["1.3.0"]), IMAGE_MANIFEST, &copied);
    // 1.4.0's payload was changed after it was signed.
    let changed =
        String::from_utf8(trusted.payload(&web, &digests["1.4.0"])).unwrap().replace("null}", r#"{"by":"x"}}"#);
    push_signature(port, "shop/web", &web, &digests["1.4.0"], &trusted, Some(changed.as_bytes()));
    let repo = subscribed(&format!(
        "  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1'}}, verify: {{publicKeyRef: keys/cosign.pub}}}}\n"
    ));
    repo.write("keys/cosign.pub", &trusted.public_pem());
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    let (code, report) = check_json(&repo, docker.path());
    assert_eq!(code, 2, "{report}");
    let image = &report["environments"][0]["images"][0];
    assert_eq!(image["newest"], format!("1.1.0@{}", digests["1.1.0"]), "{report}");
    let signer = image["signedBy"].as_str().unwrap();
    assert!(signer.starts_with("keys/cosign.pub (ECDSA P-256 key SHA256:"), "{signer}");
    let mut reasons: Vec<(&str, u64, Vec<&str>)> = image["passedOver"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let examples = s["examples"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
            (s["reason"].as_str().unwrap(), s["count"].as_u64().unwrap(), examples)
        })
        .collect();
    assert_eq!(
        image["skipped"][0]["reason"],
        "cosign's signature, attestation or SBOM of an image (sha256-DIGEST.sig, .att, .sbom)"
    );
    assert_eq!(image["skipped"][0]["count"], 5, "{report}");
    reasons.sort();
    assert_eq!(
        reasons,
        [
            (
                "its cosign signature holds for no key of verify.publicKeyRef (another key, or changed after signing)",
                2,
                vec!["1.4.0", "1.2.0"]
            ),
            ("its cosign signature is another image's (it names another digest)", 1, vec!["1.3.0"]),
            ("not signed (no cosign signature, sha256-DIGEST.sig)", 1, vec!["1.5.0"]),
        ],
        "{report}"
    );
    assert_eq!(image["older"], 1, "1.0.0 is signed, and older: {report}");
    let run = repo.weaver_env(&["images", "check"], &[("DOCKER_CONFIG", docker.path().to_str().unwrap())]);
    assert!(run.stdout.contains(&format!("1.1.0@{} is signed by keys/cosign.pub", digests["1.1.0"])), "{}", run.stdout);
    assert!(run.stdout.contains("5 cosign's signature, attestation or SBOM"), "{}", run.stdout);

    // Signed at last, 1.5.0 is taken; with another key trusted, nothing is.
    push_signature(port, "shop/web", &web, &digests["1.5.0"], &trusted, None);
    let (_, report) = check_json(&repo, docker.path());
    assert_eq!(report["environments"][0]["images"][0]["newest"], format!("1.5.0@{}", digests["1.5.0"]));

    // Pinned at 1.5.0, the tag re-pushed unsigned: 1.1.0 is the newest that verifies now, but a
    // verified subscription never moves a pin down.
    repo.write(
        "promotions/dev.yaml",
        &format!("releases:\n  app:\n    images:\n      {web}: 1.5.0@{}\n", digests["1.5.0"]),
    );
    push_image(port, "shop/web", "1.5.0", "2026-11-09T00:00:00Z", "amd64");
    let (code, report) = check_json(&repo, docker.path());
    let image = &report["environments"][0]["images"][0];
    assert_eq!((code, &image["new"]), (0, &json!(false)), "{report}");
    assert_eq!(image["newest"], format!("1.1.0@{}", digests["1.1.0"]));
    let held = image["heldBack"].as_str().unwrap();
    assert!(held.starts_with("the pin 1.5.0 ranks above 1.1.0, the newest tag that verifies now"), "{held}");
    repo.write("keys/cosign.pub", &TestSigner::new("nobody").public_pem());
    let (code, report) = check_json(&repo, docker.path());
    let image = &report["environments"][0]["images"][0];
    assert_eq!((code, &image["newest"], &image["signedBy"]), (0, &Value::Null, &Value::Null), "{report}");
    assert_eq!(image["heldBack"], Value::Null);
}

/// A signature manifest over its bound (300,587 bytes: a signed one padded) is that tag's
/// fault alone: the tag is passed over, naming why, an older signed tag is taken, and the other
/// subscription, of another repository, is reported as ever.
#[test]
fn an_oversized_signature_passes_over_its_tag_alone() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let signer = TestSigner::new("release team");
    let (web, api) = (registry.image("shop/web"), registry.image("shop/api"));
    let mut digests = std::collections::HashMap::new();
    for tag in ["1.0.0", "1.1.0"] {
        digests.insert(tag, push_image(port, "shop/web", tag, "2026-11-01T00:00:00Z", "amd64").0);
        push_signature(port, "shop/web", &web, &digests[tag], &signer, None);
    }
    let (api_digest, _) = push_image(port, "shop/api", "2.0.0", "2026-11-01T00:00:00Z", "amd64");
    push_signature(port, "shop/api", &api, &api_digest, &signer, None);
    // 1.1.0's signature manifest, as pushed, padded past 256 KiB by an annotation.
    let tag = weaver_verify::cosign::signature_tag(&digests["1.1.0"]);
    let mut manifest: Value = serde_json::from_slice(&fetch_manifest(port, "shop/web", &tag)).unwrap();
    manifest["annotations"] = json!({"padding": ""});
    let padding = 300_587 - serde_json::to_vec(&manifest).unwrap().len();
    manifest["annotations"]["padding"] = json!("x".repeat(padding));
    assert_eq!(put_manifest(port, "shop/web", &tag, IMAGE_MANIFEST, &manifest).1, 300_587);
    let verified = "plainHttp: true, policy: {semver: '>=1'}, verify: {publicKeyRef: keys/cosign.pub}";
    let repo = subscribed(&format!(
        "  - {{image: {web}, releases: [app], {verified}}}\n  - {{image: {api}, releases: [app], {verified}}}\n"
    ));
    repo.write("keys/cosign.pub", &signer.public_pem());
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    let (code, report) = check_json(&repo, docker.path());
    assert_eq!(code, 2, "{report}");
    let images = &report["environments"][0]["images"];
    assert_eq!(images[0]["newest"], format!("1.0.0@{}", digests["1.0.0"]), "{report}");
    assert_eq!(
        images[0]["passedOver"],
        json!([{"reason": "its cosign signature is larger than a signature's bounds (not read)", "count": 1,
            "examples": ["1.1.0"]}]),
        "{report}"
    );
    assert_eq!(images[1]["newest"], format!("2.0.0@{api_digest}"), "{report}");
    assert!(images[1]["signedBy"].as_str().unwrap().starts_with("keys/cosign.pub (ECDSA P-256"), "{report}");
    let asked = registry.take_asked();
    assert!(asked.contains(&format!("GET v2/shop/web/manifests/{tag}")), "{asked:?}");
}

/// The signatures' request budget counts their requests alone: a `newestBuild` subscription
/// reads each tag's config first (three requests a tag, here more than the budget), and its
/// newest signed image is still taken.
#[test]
fn a_verified_newest_build_subscription_reads_its_configs_outside_the_signature_budget() {
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let signer = TestSigner::new("release team");
    let batch = registry.image("shop/batch");
    let mut newest = String::new();
    for n in 10..50 {
        newest = push_image(port, "shop/batch", &format!("b-{n}"), &format!("2026-11-01T00:00:{n}Z"), "amd64").0;
    }
    push_signature(port, "shop/batch", &batch, &newest, &signer, None);
    let repo = subscribed(&format!(
        "  - {{image: {batch}, releases: [app], plainHttp: true, filterTags: {{pattern: '^b-'}}, policy: {{newestBuild: true}}, verify: {{publicKeyRef: keys/cosign.pub}}}}\n"
    ));
    repo.write("keys/cosign.pub", &signer.public_pem());
    let docker = tempfile::tempdir().unwrap();
    docker_config(docker.path(), registry.proxy.port, PASSWORD);
    let (code, report) = check_json(&repo, docker.path());
    assert!(report["requests"].as_u64().unwrap() > 120, "the configs were read: {report}");
    assert_eq!(
        (code, &report["environments"][0]["images"][0]["newest"]),
        (2, &json!(format!("b-49@{newest}"))),
        "{report}"
    );
}

/// A `verify` whose public key cannot be used is named by its file and line, never quoted.
#[test]
fn a_public_key_that_cannot_be_used_is_named() {
    let repo = subscribed(
        "  - {image: reg.example/web, releases: [app], policy: {semver: '>=1'}, verify: {publicKeyRef: keys/cosign.pub}}\n",
    );
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(
        err.contains("environments/dev.yaml:") && err.contains("`publicKeyRef: keys/cosign.pub`: no such file"),
        "{err}"
    );
    repo.write("keys/cosign.pub", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n");
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(err.contains("keys/cosign.pub:1") && err.contains("this is a private key"), "{err}");
    assert!(!err.contains("c2VjcmV0LWtleQ"), "{err}");
    repo.write("keys/cosign.pub", "-----BEGIN SECRET hunter2-----\nc2VjcmV0LWtleQ==\n-----END SECRET hunter2-----\n");
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(err.contains("keys/cosign.pub:1:1") && err.contains("a PEM block of another kind"), "{err}");
    assert!(!err.contains("SECRET") && !err.contains("hunter2"), "{err}");
    repo.write("keys/cosign.pub", "# no key\n");
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(err.contains("keys/cosign.pub:1") && err.contains("expected `-----BEGIN PUBLIC KEY-----`"), "{err}");
    repo.write("keys/cosign.pub", "\n");
    let err = repo.weaver(&["images", "check"]).failure().to_string();
    assert!(err.contains("keys/cosign.pub") && err.contains("holds no public key"), "{err}");
}

/// The environments are chosen with the fleet's flags: by labels, wave and shard.
#[test]
fn the_environments_checked_are_chosen_with_the_fleets_flags() {
    let repo = Repo::minimal();
    // Neither subscribes: the error names the one environment the flags leave of the two named.
    for (env, labels, wave) in [("dev", "tier: dev", 1), ("prod", "tier: prod", 2)] {
        let file =
            format!("namespace: apps\nlabels: {{{labels}}}\nwave: {wave}\nreleases:\n  - name: app\n    chart: app\n");
        repo.write(&format!("environments/{env}.yaml"), &file);
    }
    // The one environment named and selected.
    let checked = |flags: &[&str]| {
        let err = repo.weaver(&[&["images", "check", "-e", "dev,prod"], flags].concat()).failure().to_string();
        let named: Vec<_> = ["dev", "prod"]
            .into_iter()
            .filter(|env| err.contains(&format!("environment `{env}` has no `imageUpdates:`")))
            .collect();
        assert_eq!(named.len(), 1, "{err}");
        named[0]
    };
    assert_eq!(checked(&["--env-selector", "tier=prod"]), "prod");
    assert_eq!(checked(&["--env-selector", "tier in (dev,prod)", "--wave", "1"]), "dev");
    // Each wave's environments go round-robin to the shards: each wave's only one to shard 1.
    assert_eq!(checked(&["--wave", "2", "--shard", "1/2"]), "prod");
    // A CI runner's shard with nothing subscribed has nothing to check; a wave or a glob that
    // subscribes nothing is an error, as a wave that holds no environment is.
    let repo = subscribed("  - {image: reg.example/web, releases: [app], policy: {semver: '>=1'}}\n");
    repo.write("environments/prod.yaml", "namespace: apps\nreleases:\n  - name: app\n    chart: app\n");
    let run = repo.weaver(&["images", "check", "--shard", "2/2"]);
    assert_eq!((run.code, run.stdout.trim()), (0, ""), "{}", run.stderr);
    repo.write("environments/prod.yaml", "namespace: apps\nwave: 2\nreleases:\n  - name: app\n    chart: app\n");
    let err = repo.weaver(&["images", "check", "--wave", "2"]).failure().to_string();
    assert!(err.contains("no selected environment has `imageUpdates:`"), "{err}");
    let err = repo.weaver(&["images", "check", "-e", "prod*"]).failure().to_string();
    assert!(err.contains("no selected environment has `imageUpdates:`"), "{err}");
}

/// dev's EnvironmentSync of `source`, reconciling and checking images every second as Image
/// Bot with the pull Secret `regcred`, created.
fn image_updating_sync(cluster: &TestCluster, namespace: &str, source: &crate::gitops::Source) -> Value {
    use crate::gitops::{environment_sync, spec};
    let author = json!({"name": "Image Bot", "email": "images@weaver.invalid"});
    let extra = json!({"interval": "1s",
        "imageUpdates": {"interval": "1s", "author": author, "pullSecrets": [{"name": "regcred"}]}});
    let sync = environment_sync(cluster, namespace, "dev", spec(source, extra));
    cluster.create(&sync);
    sync
}

/// The image of Deployment `web` of `namespace` as the cluster has it; None before it exists.
fn web_image(cluster: &TestCluster, namespace: &str) -> Option<Value> {
    let deployment =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace}});
    cluster.get(&deployment).map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
}

/// The tenant's git source (taking pushes to its checked-out branch, which they update) whose
/// chart `app` runs web from the registry at 1.4.2; web's repository.
fn web_source(namespace: &str, registry: &Proxied) -> (crate::gitops::Source, String) {
    let source = crate::gitops::Source::new(namespace);
    weaver_test_support::git::follow_pushes(&source.repo);
    let web = registry.image("shop/web");
    source.write(
        "charts/app/templates/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n        - name: web\n          image: {web}:1.4.2\n"
        ),
    );
    (source, web)
}

/// An EnvironmentSync's `spec.imageUpdates`: a missing pull Secret is named in the condition;
/// with it, the new tag is pushed to the tracked branch as `tag@digest`, and the next
/// reconcile applies it; a newer tag is pushed in turn; no credential is in the status.
#[test]
fn an_environment_sync_pushes_new_image_pins_and_applies_them() {
    use crate::gitops::{Controller, http_or_skip, tenant, until_status};
    if !http_or_skip() {
        return;
    }
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let (first, _) = push_image(port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let (source, web) = web_source(&namespace, &registry);
    source.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0'}}}}\n"
        ),
    );
    source.commit("dev subscribes to web");
    let _controller = Controller::start(&cluster, None);
    let sync = image_updating_sync(&cluster, &namespace, &source);
    let condition = |live: &Value| {
        live["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "ImagesUpdated")).map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
    };
    let live = until_status(&cluster, &sync, "the missing Secret named", |live| {
        condition(live).is_some_and(|(status, reason, _)| status == "False" && reason == "SecretNotFound")
    });
    assert!(condition(&live).unwrap().2.contains(&format!("Secret {namespace}/regcred")), "{live}");

    // Credentials the registry refuses: named by their Secret, never shown.
    let wrong = pull_secret(&cluster, &namespace, &registry, "wrong-password");
    let live = until_status(&cluster, &sync, "the refused Secret named", |live| {
        condition(live).is_some_and(|(status, reason, _)| status == "False" && reason == "ImageUpdateFailed")
    });
    let message = condition(&live).unwrap().2;
    assert!(
        message.contains("answered HTTP 401") && message.contains(&format!("Secret {namespace}/regcred")),
        "{message}"
    );
    assert!(!message.contains("chart"), "the chart repositories' advice: {message}");
    let text = live.to_string();
    assert!(!text.contains("wrong-password") && !text.contains(&wrong), "a refused credential in the status: {text}");

    let auth = pull_secret(&cluster, &namespace, &registry, PASSWORD);
    let pin = format!("{web}:1.5.0@{first}");
    let image = || web_image(&cluster, &namespace);
    let live = until_status(&cluster, &sync, "the pin pushed and applied", |live| {
        condition(live).is_some_and(|(_, reason, _)| reason == "ImagesUpdated" || reason == "UpToDate")
            && image() == Some(json!(pin))
    });
    let status = &live["status"]["imageUpdates"];
    assert_eq!(status["branch"], "main");
    assert!(status["lastPushedCommit"].is_string(), "{status}");
    let pushed = std::fs::read_to_string(source.work().join("promotions/dev.yaml")).unwrap();
    assert!(pushed.contains(&format!("{web}: 1.5.0@{first}")), "{pushed}");

    // A newer tag is pushed in turn, and applied.
    let (second, _) = push_image(port, "shop/web", "1.6.0", "2026-11-02T00:00:00Z", "amd64");
    let newer = format!("{web}:1.6.0@{second}");
    let live = until_status(&cluster, &sync, "the newer pin applied", |_| image() == Some(json!(newer)));
    let text = live.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(TOKEN) && !text.contains(&auth), "a credential in the status");
    // Events are written after the status: waited for.
    crate::common::eventually("the Events of the refusal and the push", || {
        let events = cluster.list("events.k8s.io/v1", "Event", "events", &namespace);
        let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
        let all = ["ImagesUpdated", "SecretNotFound", "ImageUpdateFailed"];
        match all.iter().all(|reason| reasons.contains(reason)) {
            true => Ok(()),
            false => Err(format!("{reasons:?}")),
        }
    });
    let events = cluster.list("events.k8s.io/v1", "Event", "events", &namespace);
    let text: String = events.iter().map(Value::to_string).collect();
    for secret in [PASSWORD, TOKEN, "wrong-password", &wrong, &auth] {
        assert!(!text.contains(secret), "a credential in an Event: {text}");
    }
}

/// `spec.imageUpdates` of a subscription with `verify`: the controller pushes the pin of the
/// newest signed tag, not the newer unsigned one, and its status says who signed what it took
/// and why it passed the other over; once signed, the newer tag is pushed and applied.
#[test]
fn an_environment_sync_pushes_only_the_pins_of_signed_images() {
    use crate::gitops::{Controller, http_or_skip, tenant, until_status};
    if !http_or_skip() {
        return;
    }
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let trusted = TestSigner::new("release team");
    let (signed, _) = push_image(port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    let (unsigned, _) = push_image(port, "shop/web", "1.6.0", "2026-11-02T00:00:00Z", "amd64");
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let (source, web) = web_source(&namespace, &registry);
    push_signature(port, "shop/web", &web, &signed, &trusted, None);
    source.write("keys/cosign.pub", &trusted.public_pem());
    source.write(
        "environments/dev.yaml",
        &format!(
            "namespace: {namespace}\ncluster:\n  lockNamespace: {namespace}\nreleases:\n  - name: app\n    chart: app\nimageUpdates:\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0'}}, verify: {{publicKeyRef: keys/cosign.pub}}}}\n"
        ),
    );
    source.commit("dev subscribes to web's signed tags");
    pull_secret(&cluster, &namespace, &registry, PASSWORD);
    let _controller = Controller::start(&cluster, None);
    let sync = image_updating_sync(&cluster, &namespace, &source);
    let image = || web_image(&cluster, &namespace);
    let pin = format!("{web}:1.5.0@{signed}");
    let live = until_status(&cluster, &sync, "the signed pin applied, the image check in the status", |live| {
        image() == Some(json!(pin)) && live["status"]["imageUpdates"]["images"][0]["passedOver"].is_string()
    });
    let newest = &live["status"]["imageUpdates"]["images"][0];
    assert_eq!(newest["newest"], format!("1.5.0@{signed}"), "{newest}");
    assert!(newest["signedBy"].as_str().unwrap().starts_with("keys/cosign.pub (ECDSA P-256 key SHA256:"), "{newest}");
    assert_eq!(newest["passedOver"], "1 not signed (no cosign signature, sha256-DIGEST.sig) (1.6.0)", "{newest}");
    let pushed = std::fs::read_to_string(source.work().join("promotions/dev.yaml")).unwrap();
    assert!(pushed.contains(&format!("{web}: 1.5.0@{signed}")) && !pushed.contains(&unsigned), "{pushed}");

    // Signed, 1.6.0 is pushed and applied in turn.
    push_signature(port, "shop/web", &web, &unsigned, &trusted, None);
    let newer = format!("{web}:1.6.0@{unsigned}");
    until_status(&cluster, &sync, "the newly signed pin applied", |_| image() == Some(json!(newer)));
}

/// The whole loop: an image pushed to the registry becomes a commit pinning it in `dev`; dev's
/// EnvironmentSync applies it; staging's auto-promotion takes it from dev once the gates pass and
/// applies it; prod's promotion takes it from staging, and prod (`approval: Manual`) waits for an
/// approval of the plan of that commit, whose promotion names the new digest.
#[test]
fn a_pushed_image_is_pinned_in_dev_promoted_to_staging_and_awaits_approval_in_prod() {
    use crate::auto_promote::granted_namespace;
    use crate::gitops::{Controller, environment_sync, http_or_skip, spec, tenant, until_status};
    if !http_or_skip() {
        return;
    }
    let Some(registry) = Proxied::start() else { return };
    let port = registry.registry.port;
    let cluster = TestCluster::start();
    let namespace = tenant(&cluster);
    let (staging_ns, prod_ns) =
        (granted_namespace(&cluster, &namespace, "staging"), granted_namespace(&cluster, &namespace, "prod"));
    let (source, web) = web_source(&namespace, &registry);
    // No node runs the Pods: a Deployment counts as healthy here.
    let health = "healthChecks:\n  - {apiVersion: apps/v1, kind: Deployment, current: 'true'}\n";
    let environment = |env: &str, ns: &str, extra: &str| {
        source.write(
            &format!("environments/{env}.yaml"),
            &format!("namespace: {ns}\ncluster: {{lockNamespace: {ns}}}\n{health}{extra}releases:\n  - name: app\n    chart: app\n"),
        );
    };
    environment(
        "dev",
        &namespace,
        &format!(
            "imageUpdates:\n  - {{image: {web}, releases: [app], plainHttp: true, policy: {{semver: '>=1.4.0'}}}}\n"
        ),
    );
    let promotion = |from: &str| format!("promotion:\n  from: {from}\n  pins: [{{release: app, image: '{web}'}}]\n");
    environment("staging", &staging_ns, &promotion("dev"));
    environment("prod", &prod_ns, &promotion("staging"));
    source.commit("dev, staging and prod");
    let _controller = Controller::start_with_record_key(&cluster, weaver_secrets::record_key::RecordKey::new(KEY));
    pull_secret(&cluster, &namespace, &registry, PASSWORD);
    let author = json!({"name": "Bot", "email": "bot@weaver.invalid"});
    let dev = environment_sync(
        &cluster,
        &namespace,
        "dev",
        spec(
            &source,
            json!({"interval": "1s",
        "imageUpdates": {"interval": "1s", "author": author, "pullSecrets": [{"name": "regcred"}]}}),
        ),
    );
    let staging = environment_sync(
        &cluster,
        &namespace,
        "staging",
        spec(
            &source,
            json!({"interval": "1s",
        "environments": ["staging"], "promotion": {"interval": "1s", "author": author}}),
        ),
    );
    let prod = environment_sync(
        &cluster,
        &namespace,
        "prod",
        spec(
            &source,
            json!({"interval": "1s",
        "environments": ["prod"], "approval": "Manual", "promotion": {"interval": "1s", "author": author}}),
        ),
    );
    for sync in [&dev, &staging, &prod] {
        cluster.create(sync);
    }
    let image_in = |ns: &str| web_image(&cluster, ns);
    until_status(&cluster, &staging, "staging applied", |_| image_in(&staging_ns).is_some());

    // The image is pushed: dev pins it, applies it; staging takes it from dev and applies it.
    let (digest, _) = push_image(port, "shop/web", "1.5.0", "2026-11-01T00:00:00Z", "amd64");
    let pinned = json!(format!("{web}:1.5.0@{digest}"));
    until_status(&cluster, &dev, "dev applying the new image", |_| image_in(&namespace) == Some(pinned.clone()));
    until_status(&cluster, &staging, "staging applying it", |_| image_in(&staging_ns) == Some(pinned.clone()));

    // Prod's promotion takes it from staging (a commit of its own, which names the digest);
    // prod waits for an approval of the plan of a commit that pins it.
    let prod_file = |commit: &str| {
        let oid: git2::Oid = commit.parse().ok()?;
        let tree = source.repo.find_commit(oid).ok()?.tree().ok()?;
        let entry = tree.get_path(std::path::Path::new("promotions/prod.yaml")).ok()?;
        Some(String::from_utf8(source.repo.find_blob(entry.id()).ok()?.content().to_vec()).unwrap())
    };
    let live = until_status(&cluster, &prod, "prod awaiting approval of the new digest", |live| {
        let pending = &live["status"]["pendingPlan"];
        let pins = pending["revision"].as_str().and_then(prod_file).unwrap_or_default();
        pins.contains(&format!("1.5.0@{digest}")) && pending["releases"].as_array().is_some_and(|r| !r.is_empty())
    });
    let pushed = live["status"]["promotion"]["lastPushedCommit"].as_str().unwrap();
    let file = prod_file(pushed).unwrap();
    assert!(file.contains(&format!("1.5.0@{digest}")) && file.contains("from: staging"), "prod's own push: {file}");
    let releases = &live["status"]["pendingPlan"]["releases"];
    // Never approved, prod has nothing yet: the plan creates the release's objects.
    assert_eq!(releases, &json!([{"environment": "prod", "release": "app", "create": 2, "update": 0, "delete": 0}]));
    assert_ne!(image_in(&prod_ns), Some(pinned), "applied in prod without an approval");
}
