//! Remote Helm charts: `weaver charts lock` and `fetch` against a chart repository served by a
//! small HTTP server in the test (with basic auth) and a real OCI registry (Debian's
//! `docker-registry`, charts pushed with `helm push --plain-http`; skipped, saying so, without
//! them unless WEAVER_REQUIRE_INTEROP=1); render from the cache only, offline; tampered and
//! re-pinned archives; `weaver changed` for a lock change.

use crate::common;
use weaver_test_support::cosign::TestSigner;
use weaver_test_support::tls::BlockingTls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use common::Repo;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) const USER: &str = "ci-reader";
pub(crate) const PASSWORD: &str = "s3cret-Passw0rd";

/// A credentials file in `dir` giving the test's user and password for `url`.
fn credentials_file(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("credentials.yaml");
    std::fs::write(&path, format!("repositories:\n  - url: {url}\n    username: {USER}\n    password: {PASSWORD}\n"))
        .unwrap();
    path
}

/// The chart directory `dir` (named as its chart), packed as `helm package` packs it.
fn pack(dir: &Path) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(dir.file_name().unwrap(), dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// A Helm chart `web` at `version`, packed as `helm package` packs it.
pub(crate) fn chart_archive(dir: &Path, version: &str) -> PathBuf {
    let src = dir.join(format!("src-{version}/web"));
    std::fs::create_dir_all(src.join("templates")).unwrap();
    std::fs::write(src.join("Chart.yaml"), format!("apiVersion: v2\nname: web\nversion: {version}\n")).unwrap();
    std::fs::write(src.join("values.yaml"), "greeting: hello\n").unwrap();
    std::fs::write(
        src.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  version: {{ .Chart.Version | quote }}\n  greeting: {{ .Values.greeting }}\n",
    )
    .unwrap();
    let archive = dir.join(format!("web-{version}.tgz"));
    std::fs::write(&archive, pack(&src)).unwrap();
    archive
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A request as the test servers see it: the method, the path (without its leading `/`, query
/// kept), the Authorization, Content-Type, Accept and If-None-Match headers and the body.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub content_type: String,
    pub accept: String,
    pub if_none_match: String,
    pub body: Vec<u8>,
}

/// An answer: status line, extra header lines, body.
pub(crate) type Answer = (&'static str, String, Vec<u8>);

/// An HTTP server on a loopback port answering each request with `handler`.
pub(crate) struct TestServer {
    pub(crate) port: u16,
    /// `http` or `https`.
    scheme: &'static str,
    /// Where it listens: its stop is a connection there.
    address: std::net::Ipv4Addr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(handler: impl Fn(u16, &Request) -> Answer + Send + 'static) -> TestServer {
        TestServer::start_on(std::net::Ipv4Addr::LOCALHOST, handler)
    }

    /// [`TestServer::start`] on `address` (where the e2e suite's Pods reach this machine).
    pub(crate) fn start_on(
        address: std::net::Ipv4Addr,
        handler: impl Fn(u16, &Request) -> Answer + Send + 'static,
    ) -> TestServer {
        TestServer::serving(address, None, handler)
    }

    fn serving(
        address: std::net::Ipv4Addr,
        tls: Option<BlockingTls>,
        handler: impl Fn(u16, &Request) -> Answer + Send + 'static,
    ) -> TestServer {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind((address, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                match (stream, &tls) {
                    (Ok(stream), Some(tls)) => serve(tls.accept(stream), |request| handler(port, request)),
                    (Ok(stream), None) => serve(stream, |request| handler(port, request)),
                    (Err(_), _) => {}
                }
            }
        });
        TestServer { port, scheme, address, stop, thread: Some(thread) }
    }

    /// A chart repository on `address`: `root` served under `/`, every request needing basic
    /// auth; over TLS with `tls`.
    pub(crate) fn chart_repository(address: std::net::Ipv4Addr, root: PathBuf, tls: Option<BlockingTls>) -> TestServer {
        let expected =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
        TestServer::serving(address, tls, move |_, request| {
            if request.authorization != expected {
                return (
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"charts\"\r\n".into(),
                    b"unauthorized".to_vec(),
                );
            }
            match std::fs::read(root.join(&request.path)).ok().filter(|_| !request.path.contains("..")) {
                Some(body) => ("200 OK", String::new(), body),
                None => ("404 Not Found", String::new(), b"not found".to_vec()),
            }
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://{}:{}/charts", self.scheme, self.address, self.port)
    }

    /// The environment's `repositories:` entry naming this server `stable`.
    pub(crate) fn as_stable(&self) -> String {
        format!("  - name: stable\n    url: {}\n", self.url())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // On the address it listens on: one given for the e2e suite's Pods is not loopback, and
        // a wake-up sent to loopback never came (a test that returned early hung here).
        let _ = TcpStream::connect((self.address, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: impl Read + Write, handler: impl Fn(&Request) -> Answer) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let (mut authorization, mut content_type, mut length) = (String::new(), String::new(), 0);
    let (mut accept, mut if_none_match) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorization = value,
                "content-type" => content_type = value,
                "accept" => accept = value,
                "if-none-match" => if_none_match = value,
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").trim_start_matches('/').to_string();
    let request = Request { method, path, authorization, content_type, accept, if_none_match, body };
    let (status, headers, body) = handler(&request);
    let head = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let stream = reader.get_mut();
    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body)).and_then(|_| stream.flush());
}

/// [`chart_repository`] in a directory of its own, served by a [`TestServer`] (which asks for
/// the test credentials): the directory, the archives and the server.
pub(crate) fn served_chart_repository() -> (tempfile::TempDir, Vec<(String, Vec<u8>)>, TestServer) {
    let served = tempfile::tempdir().unwrap();
    let archives = chart_repository(served.path());
    let server = TestServer::chart_repository(std::net::Ipv4Addr::LOCALHOST, served.path().to_path_buf(), None);
    (served, archives, server)
}

/// A chart repository holding web 1.0.0, 1.1.0 and 2.0.0, with index.yaml (relative URLs, digests).
pub(crate) fn chart_repository(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    let mut index = String::from("apiVersion: v1\nentries:\n  web:\n");
    let mut archives = Vec::new();
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        let archive = chart_archive(dir, version);
        let data = std::fs::read(&archive).unwrap();
        std::fs::write(charts.join(format!("web-{version}.tgz")), &data).unwrap();
        index.push_str(&format!(
            "  - apiVersion: v2\n    name: web\n    version: {version}\n    digest: {}\n    urls:\n    - web-{version}.tgz\n",
            sha256_hex(&data)
        ));
        archives.push((version.to_string(), data));
    }
    std::fs::write(charts.join("index.yaml"), index).unwrap();
    archives
}

/// `helm push ARCHIVE oci://HOST:PORT/charts --plain-http` to `registry`, helm's config, cache
/// and data under `home`; the digest of the manifest pushed, which helm prints. A `.prov` beside
/// the archive goes as a layer of that manifest.
pub(crate) fn helm_push(helm: &Path, home: &Path, archive: &Path, registry: &common::registry::Registry) -> String {
    let out = weaver_test_support::helm::command(helm, home)
        .args(["push", archive.to_str().unwrap(), &format!("oci://{}/charts", registry.host()), "--plain-http"])
        .output()
        .unwrap();
    assert!(out.status.success(), "helm push: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    said.split_whitespace().find(|w| w.starts_with("sha256:")).expect("helm push names the digest").to_string()
}

fn environment(repositories: &str, releases: &str) -> String {
    format!("namespace: apps\nrepositories:\n{repositories}releases:\n{releases}")
}

fn config_maps(output: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(output).unwrap().into_iter().filter(|v| !v.is_null()).collect()
}

fn locked(repo: &Repo) -> Vec<Value> {
    let text = std::fs::read_to_string(repo.path().join("charts.lock")).unwrap();
    let lock: Value = serde_saphyr::from_str(&text).unwrap();
    lock["charts"].as_array().unwrap().clone()
}

#[test]
fn a_chart_repository_is_locked_fetched_and_rendered_from_the_cache_only() {
    let (_served, archives, server) = served_chart_repository();
    let repo = Repo::empty();
    repo.write(
        "environments/dev.yaml",
        &environment(&server.as_stable(), "  - name: web\n    chart: stable/web\n    version: ^1.0.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let credentials = [
        ("WEAVER_CHART_CACHE", cache_dir),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
    ];

    // Without credentials the repository refuses, and the error says where credentials go.
    let err = repo.weaver_env(&["charts", "lock"], &[("WEAVER_CHART_CACHE", cache_dir)]).failure().to_string();
    assert!(err.contains("answered HTTP 401") && err.contains("WEAVER_REPOSITORY_STABLE_USERNAME"), "{err}");
    let wrong = [credentials[0], credentials[1], ("WEAVER_REPOSITORY_STABLE_PASSWORD", "wrong-Passw0rd")];
    let err = repo.weaver_env(&["charts", "lock"], &wrong).failure().to_string();
    assert!(err.contains("answered HTTP 401") && !err.contains("wrong-Passw0rd"), "{err}");
    assert!(!repo.path().join("charts.lock").exists());

    // Before a lock, render names the command that pins the chart.
    let err = repo.weaver_env(&["render", "--env", "dev"], &credentials).failure().to_string();
    assert!(err.contains("chart `stable/web` version `^1.0.0` of release `web` is not in charts.lock"), "{err}");
    assert!(err.contains("weaver charts lock"), "{err}");

    // The newest version ^1.0.0 allows (not 2.0.0), pinned with its URL and digest.
    let out = repo.weaver_env(&["charts", "lock"], &credentials).success().to_string();
    assert!(out.contains("stable/web@^1.0.0") && out.contains("1.1.0") && out.contains("resolved"), "{out}");
    assert!(!out.contains(PASSWORD));
    let pinned = locked(&repo);
    assert_eq!(pinned.len(), 1);
    let (_, v110) = &archives[1];
    assert_eq!(pinned[0]["repository"], server.url());
    assert_eq!(pinned[0]["name"], "web");
    assert_eq!(pinned[0]["constraint"], "^1.0.0");
    assert_eq!(pinned[0]["version"], "1.1.0");
    assert_eq!(pinned[0]["url"], format!("{}/web-1.1.0.tgz", server.url()));
    assert_eq!(pinned[0]["digest"], format!("sha256:{}", sha256_hex(v110)));
    let cached = cache.path().join(format!("sha256/{}.tgz", sha256_hex(v110)));
    assert_eq!(std::fs::read(&cached).unwrap(), *v110);

    // Locking again keeps the pin and writes nothing.
    let lock_before = std::fs::read_to_string(repo.path().join("charts.lock")).unwrap();
    let out = repo.weaver_env(&["charts", "lock"], &credentials).success().to_string();
    assert!(out.contains("cached") && !out.contains("wrote charts.lock"), "{out}");
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_before);

    // A fresh machine: render fails naming `weaver charts fetch`, which pulls the pinned archive.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_env = [("WEAVER_CHART_CACHE", fresh.path().to_str().unwrap())];
    let err = repo.weaver_env(&["render", "--env", "dev"], &fresh_env).failure().to_string();
    assert!(err.contains("is not in the chart cache") && err.contains("weaver charts fetch"), "{err}");
    let fetch_env = [fresh_env[0], credentials[1], credentials[2]];
    let out = repo.weaver_env(&["charts", "fetch"], &fetch_env).success().to_string();
    assert!(out.contains("pulled"), "{out}");

    // Offline: the server is gone, and render reads the cache only.
    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev"], &fresh_env).success().to_string();
    let objects = config_maps(&out);
    assert_eq!(objects.len(), 1, "{out}");
    assert_eq!(objects[0]["metadata"]["name"], "web");
    assert_eq!(objects[0]["data"]["version"], "1.1.0");
    assert_eq!(objects[0]["data"]["greeting"], "hello");

    // A tampered archive in the cache: an error naming the chart and the fix; nothing rendered.
    let fresh_cached = fresh.path().join(format!("sha256/{}.tgz", sha256_hex(v110)));
    std::fs::write(&fresh_cached, &archives[0].1).unwrap();
    let run = repo.weaver_env(&["render", "--env", "dev"], &fresh_env);
    let err = run.failure();
    assert!(
        err.contains("chart `stable/web` version `^1.0.0` 1.1.0 of release `web`")
            && err.contains(&format!("has digest sha256:{}", sha256_hex(&archives[0].1)))
            && err.contains("weaver charts fetch"),
        "{err}"
    );

    // A changed digest in the lock: the cache has no such archive.
    let changed = lock_before.replace(&sha256_hex(v110), &sha256_hex(&archives[0].1));
    repo.write("charts.lock", &changed);
    let err = repo.weaver_env(&["render", "--env", "dev"], &credentials).failure().to_string();
    assert!(err.contains("is not in the chart cache") && err.contains("weaver charts fetch"), "{err}");
}

/// `charts fetch --rev` pulls what a commit's lock pins, for a CI job that renders that commit.
#[test]
fn fetch_with_rev_pulls_what_that_commits_lock_pins() {
    let (_served, archives, server) = served_chart_repository();
    let repo = Repo::empty();
    let write_environment = |constraint: &str| {
        repo.write(
            "environments/dev.yaml",
            &environment(
                &server.as_stable(),
                &format!("  - name: web\n    chart: stable/web\n    version: {constraint}\n"),
            ),
        );
    };
    let cache = tempfile::tempdir().unwrap();
    let credentials = [
        ("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
    ];
    write_environment("^1.0.0");
    repo.weaver_env(&["charts", "lock"], &credentials).success();
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "web ^1.0.0, pinned at 1.1.0");
    // The working tree moves on to 2.0.0, pinned but not committed.
    write_environment("^2.0.0");
    repo.weaver_env(&["charts", "lock"], &credentials).success();

    let fresh = tempfile::tempdir().unwrap();
    let fetch_env = [("WEAVER_CHART_CACHE", fresh.path().to_str().unwrap()), credentials[1], credentials[2]];
    let out = repo.weaver_env(&["charts", "fetch", "--rev", "HEAD"], &fetch_env).success().to_string();
    assert!(out.contains("1.1.0") && out.contains("pulled") && !out.contains("2.0.0"), "{out}");
    let cached: Vec<String> = std::fs::read_dir(fresh.path().join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached, [format!("{}.tgz", sha256_hex(&archives[1].1))]);
    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev", "--rev", "HEAD"], &fetch_env[..1]).success().to_string();
    assert_eq!(config_maps(&out)[0]["data"]["version"], "1.1.0");
    let err = repo.weaver_env(&["render", "--env", "dev"], &fetch_env[..1]).failure().to_string();
    assert!(err.contains("is not in the chart cache") && err.contains("weaver charts fetch"), "{err}");
}

#[test]
fn fetch_refuses_an_archive_the_repository_changed_and_lock_refuses_an_unmet_constraint() {
    let (served, archives, server) = served_chart_repository();
    let repo = Repo::empty();
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
    ];
    let repositories = server.as_stable();
    repo.write(
        "environments/dev.yaml",
        &environment(&repositories, "  - name: web\n    chart: stable/web\n    version: '>=3.0.0'\n"),
    );
    let err = repo.weaver_env(&["charts", "lock"], &env).failure().to_string();
    assert!(err.contains("no version of `stable/web` version `>=3.0.0` meets the constraint"), "{err}");
    assert!(err.contains("2.0.0, 1.1.0, 1.0.0"), "{err}");
    assert!(!repo.path().join("charts.lock").exists());

    repo.write(
        "environments/dev.yaml",
        &environment(&repositories, "  - name: web\n    chart: stable/web\n    version: 1.0.0\n"),
    );
    // An abstract environment is never rendered: its constraint is neither resolved nor pinned.
    repo.write(
        "environments/template.yaml",
        &format!(
            "abstract: true\n{}",
            environment(&repositories, "  - name: web\n    chart: stable/web\n    version: '>=3.0.0'\n")
        ),
    );
    repo.weaver_env(&["charts", "lock"], &env).success();
    let pinned = locked(&repo);
    assert_eq!((pinned.len(), pinned[0]["version"].as_str()), (1, Some("1.0.0")), "{pinned:?}");
    // The repository now serves other bytes as 1.0.0; a fresh cache must refuse them.
    std::fs::write(served.path().join("charts/web-1.0.0.tgz"), &archives[2].1).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let fresh_env = [("WEAVER_CHART_CACHE", fresh.path().to_str().unwrap()), env[1], env[2]];
    let err = repo.weaver_env(&["charts", "fetch"], &fresh_env).failure().to_string();
    assert!(
        err.contains(&format!(
            "has digest sha256:{}, but charts.lock pins sha256:{}",
            sha256_hex(&archives[2].1),
            sha256_hex(&archives[0].1)
        )),
        "{err}"
    );
    assert!(
        !fresh.path().join("sha256").exists() || std::fs::read_dir(fresh.path().join("sha256")).unwrap().count() == 0
    );
    let err = repo.weaver_env(&["render", "--env", "dev"], &fresh_env[..1]).failure().to_string();
    assert!(err.contains("is not in the chart cache"), "{err}");
    drop(server);
}

#[test]
fn changed_lists_the_releases_whose_lock_entry_changed() {
    let repo = Repo::empty();
    let releases = "  - name: one\n    chart: stable/web\n    version: ~1.0.0\n  - name: two\n    chart: stable/web\n    version: ~1.1.0\n  - name: three\n    chart: stable/web\n    version: ~1.1.0\n  - name: four\n    chart: shop\n  - name: five\n    chart: stable/store\n    version: 0.1.0\n";
    let repositories = "  - name: stable\n    url: https://charts.example.com/stable\n";
    repo.write("environments/dev.yaml", &environment(repositories, releases));
    // A Helm chart of the repository whose subchart is pinned in the lock, not vendored.
    repo.write(
        "charts/shop/Chart.yaml",
        "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: ~1.1.0\n    repository: https://charts.example.com/stable\n",
    );
    // An entry as `charts lock` writes it (`requiredBy`, `[]` for none), or, with None, as a
    // lock from before `requiredBy` has it.
    let entry = |name: &str, constraint: &str, version: &str, digest: char, required_by: Option<&[(&str, &str)]>| {
        let mut entry = format!(
            "- repository: https://charts.example.com/stable\n  name: {name}\n  constraint: {constraint}\n  version: {version}\n  url: https://charts.example.com/stable/{name}-{version}.tgz\n  digest: sha256:{}\n",
            digest.to_string().repeat(64)
        );
        match required_by {
            Some([]) => entry.push_str("  requiredBy: []\n"),
            Some(_) => entry.push_str("  requiredBy:\n"),
            None => {}
        }
        for (name, constraint) in required_by.unwrap_or_default() {
            entry.push_str(&format!(
                "  - repository: https://charts.example.com/stable\n    name: {name}\n    constraint: {constraint}\n"
            ));
        }
        entry
    };
    let store = entry("store", "0.1.0", "0.1.0", 'f', Some(&[]));
    // `web` ~1.1.0 is also what the archive of `store` declares without vendoring it.
    let web = |version: &str, digest: char| entry("web", "~1.1.0", version, digest, Some(&[("store", "0.1.0")]));
    let lock = |web: &str, db: &str, more: &str| {
        format!("charts:\n{more}{db}{store}{}{web}", entry("web", "~1.0.0", "1.0.0", 'a', Some(&[])))
    };
    // `db` is pinned for no release: a subchart that the archive of `web` ~1.0.0 declares, or,
    // in a lock from before `requiredBy`, one that any remote chart's archive may declare.
    let db = |version: &str, digest: char| entry("db", "~2.0.0", version, digest, Some(&[("web", "~1.0.0")]));
    let old_db = |version: &str, digest: char| entry("db", "~2.0.0", version, digest, None);
    repo.write("charts.lock", &lock(&web("1.1.0", 'b'), &db("2.0.0", 'd'), ""));
    let git = common::git::init(repo.path());
    common::git::commit_all(&git, "lock");
    let changed = || {
        let out = repo.weaver(&["changed", "--base", "HEAD", "-o", "json"]).success().to_string();
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["unattributed"], serde_json::json!([]), "{out}");
        let mut releases: Vec<String> = report["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}/{}", r["environment"].as_str().unwrap(), r["release"].as_str().unwrap()))
            .collect();
        releases.sort();
        releases
    };
    // Its own releases, the repository chart declaring it, and the remote chart whose archive does.
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &db("2.0.0", 'd'), ""));
    assert_eq!(changed(), ["dev/five", "dev/four", "dev/three", "dev/two"]);
    // A subchart's entry: the releases of the chart requiring it.
    common::git::commit_all(&git, "web 1.1.1");
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &db("2.0.1", 'e'), ""));
    assert_eq!(changed(), ["dev/one"]);
    // A release with a chart of its own, and its entry: that release only.
    let cache = entry("cache", "1.0.0", "1.0.0", '7', Some(&[]));
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &db("2.0.0", 'd'), &cache));
    let six = "  - name: six\n    chart: stable/cache\n    version: 1.0.0\n";
    repo.write("environments/dev.yaml", &environment(repositories, &format!("{releases}{six}")));
    assert_eq!(changed(), ["dev/six"]);
    repo.write("environments/dev.yaml", &environment(repositories, releases));

    // Only `requiredBy` written (a lock from before it, locked again): nothing is re-pinned.
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &old_db("2.0.0", 'd'), ""));
    common::git::commit_all(&git, "before requiredBy");
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &db("2.0.0", 'd'), ""));
    assert_eq!(changed(), Vec::<String>::new());
    // In a lock from before `requiredBy`, an entry no release names changed: every remote
    // chart's archive may declare it.
    repo.write("charts.lock", &lock(&web("1.1.1", 'c'), &old_db("2.0.1", 'e'), ""));
    assert_eq!(changed(), ["dev/five", "dev/one", "dev/three", "dev/two"]);
}

#[test]
fn a_subchart_declared_in_chart_yaml_and_not_vendored_is_pinned_and_rendered_from_the_cache() {
    let (_served, archives, server) = served_chart_repository();
    let repo = Repo::empty();
    repo.write(
        "charts/shop/Chart.yaml",
        &format!(
            "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: ~1.0.0\n    repository: {}/\n",
            server.url()
        ),
    )
    .write(
        "charts/shop/templates/own.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\ndata:\n  web: {{ .Values.web.greeting }}\n",
    )
    .write("charts/shop/values.yaml", "web:\n  greeting: from-shop\n")
    .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: shop\n    chart: shop\n");
    let cache = tempfile::tempdir().unwrap();
    // A dependency has no repository name: its credentials come from the credentials file.
    let credentials = credentials_file(cache.path(), &format!("http://127.0.0.1:{}", server.port));
    let env =
        [("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()), ("WEAVER_CREDENTIALS", credentials.to_str().unwrap())];

    let err = repo.weaver_env(&["render", "--env", "dev"], &env).failure().to_string();
    assert!(
        err.contains("charts/shop/Chart.yaml: chart `shop` depends on `web`, which is not in its charts/ directory")
            && err.contains("of release `shop` is not in charts.lock")
            && err.contains("weaver charts lock"),
        "{err}"
    );
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("dev/shop") && out.contains("1.0.0"), "{out}");
    let pinned = locked(&repo);
    assert_eq!((pinned[0]["constraint"].as_str(), pinned[0]["version"].as_str()), (Some("~1.0.0"), Some("1.0.0")));
    assert_eq!(pinned[0]["digest"], format!("sha256:{}", sha256_hex(&archives[0].1)));

    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev"], &env[..1]).success().to_string();
    let objects = config_maps(&out);
    let names: Vec<&str> = objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{out}");
    let web = objects.iter().find(|o| o["metadata"]["name"] == "shop").expect("the subchart's ConfigMap");
    assert_eq!((web["data"]["version"].as_str(), web["data"]["greeting"].as_str()), (Some("1.0.0"), Some("from-shop")));
}

/// A remote chart whose archive declares a dependency it does not vendor (as `helm package`
/// leaves a chart packaged before `helm dependency build`): `charts lock` pins that too.
#[test]
fn a_remote_charts_unvendored_subchart_is_pinned_with_it() {
    let (served, archives, server) = served_chart_repository();
    // `shop` 0.1.0, added to the repository, depends on `web` ~1.0.0 from the same repository.
    let src = served.path().join("src-shop/shop");
    std::fs::create_dir_all(src.join("templates")).unwrap();
    let chart_yaml = format!(
        "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: ~1.0.0\n    repository: {}\n",
        server.url()
    );
    std::fs::write(src.join("Chart.yaml"), chart_yaml).unwrap();
    std::fs::write(src.join("values.yaml"), "web:\n  greeting: from-shop\n").unwrap();
    std::fs::write(
        src.join("templates/own.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\n",
    )
    .unwrap();
    let shop = pack(&src);
    std::fs::write(served.path().join("charts/shop-0.1.0.tgz"), &shop).unwrap();
    let index = std::fs::read_to_string(served.path().join("charts/index.yaml")).unwrap();
    let entry = format!(
        "  shop:\n  - apiVersion: v2\n    name: shop\n    version: 0.1.0\n    digest: {}\n    urls:\n    - shop-0.1.0.tgz\n",
        sha256_hex(&shop)
    );
    std::fs::write(served.path().join("charts/index.yaml"), index + &entry).unwrap();

    let repo = Repo::empty();
    repo.write(
        "environments/dev.yaml",
        &environment(&server.as_stable(), "  - name: shop\n    chart: stable/shop\n    version: 0.1.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let credentials = credentials_file(cache.path(), &server.url());
    let env =
        [("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()), ("WEAVER_CREDENTIALS", credentials.to_str().unwrap())];
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    let pinned = locked(&repo);
    let pins: Vec<(&str, &str)> =
        pinned.iter().map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap())).collect();
    assert_eq!(pins, [("shop", "0.1.0"), ("web", "1.0.0")], "{out}");
    assert_eq!(pinned[1]["digest"], format!("sha256:{}", sha256_hex(&archives[0].1)));
    // `weaver changed` learns from the lock which chart's archive declares `web`.
    let required_by =
        serde_json::json!([{"repository": pinned[0]["repository"], "name": "shop", "constraint": "0.1.0"}]);
    assert_eq!((&pinned[0]["requiredBy"], &pinned[1]["requiredBy"]), (&serde_json::json!([]), &required_by));

    // Offline, from the cache: the subchart renders with the values its parent gives it.
    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev"], &env[..1]).success().to_string();
    let objects = config_maps(&out);
    let web = objects.iter().find(|o| o["metadata"]["name"] == "shop").expect("the subchart's ConfigMap");
    assert_eq!((web["data"]["version"].as_str(), web["data"]["greeting"].as_str()), (Some("1.0.0"), Some("from-shop")));
    assert!(objects.iter().any(|o| o["metadata"]["name"] == "shop-own"), "{out}");
}

#[test]
fn a_subchart_from_an_at_named_repository_resolves_through_the_environments_repositories() {
    let (_served, archives, server) = served_chart_repository();
    let repo = Repo::empty();
    repo.write(
        "charts/shop/Chart.yaml",
        "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: ~1.1.0\n    repository: '@stable'\n",
    )
    .write("charts/shop/templates/own.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-own\n")
    .write("environments/dev.yaml", "namespace: apps\nreleases:\n  - name: shop\n    chart: shop\n");
    let cache = tempfile::tempdir().unwrap();
    // Named by the repository, the dependency gets the repository's credentials by its name.
    let env = [
        ("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
    ];
    // Without `stable` among the environment's repositories the dependency is missing, as in helm.
    let err = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(!err.contains("web"), "nothing to pin: {err}");
    let err = repo.weaver_env(&["render", "--env", "dev"], &env).failure().to_string();
    assert!(err.contains("chart `shop` depends on `web`, which is not in its charts/ directory"), "{err}");

    repo.write("environments/dev.yaml", &environment(&server.as_stable(), "  - name: shop\n    chart: shop\n"));
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("dev/shop") && out.contains("1.1.0"), "{out}");
    let pinned = locked(&repo);
    assert_eq!(pinned[0]["repository"], server.url().trim_end_matches('/'));
    assert_eq!(pinned[0]["digest"], format!("sha256:{}", sha256_hex(&archives[1].1)));
    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev"], &env[..1]).success().to_string();
    let web =
        config_maps(&out).into_iter().find(|o| o["metadata"]["name"] == "shop").expect("the subchart's ConfigMap");
    assert_eq!(web["data"]["version"], "1.1.0", "{out}");
}

#[test]
fn remote_chart_syntax_errors_name_the_file_and_line() {
    let repo = Repo::empty();
    let cases = [
        (
            "  - name: web\n    chart: nowhere/web\n",
            "environments/dev.yaml:7:12: `chart: nowhere/web`: no repository `nowhere`",
        ),
        (
            "  - name: web\n    chart: stable/web\n    version: 'one.two'\n",
            "environments/dev.yaml:8:14: `version: one.two` is not a version constraint",
        ),
        ("  - name: web\n    chart: stable/web@sha256:abc\n", "is not an OCI manifest digest"),
        // The repository's own chart, written as its path: the help says how to name it.
        (
            "  - name: web\n    chart: charts/web\n",
            "no repository `charts` in `repositories`\n  help: a chart of this repository's charts/ directory is named by its directory alone: `chart: web`",
        ),
    ];
    for (releases, expected) in cases {
        repo.write(
            "environments/dev.yaml",
            &environment("  - name: stable\n    url: https://charts.example.com\n", releases),
        );
        let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
    repo.write(
        "environments/dev.yaml",
        &environment("  - name: stable\n    url: https://charts.example.com\n    password: x\n", ""),
    );
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("unknown field `password`"), "{err}");
    // Provenance checks: a keyring and verify go together, inside the repository, for chart
    // repositories.
    for (repository, expected) in [
        (
            "    url: https://charts.example.com
    verify: true
",
            "environments/dev.yaml:4:10: repository `stable`: `verify: true` needs a `keyring`",
        ),
        (
            "    url: https://charts.example.com
    keyring: keys.gpg
",
            "environments/dev.yaml:5:14: repository `stable`: a `keyring` without `verify: true` checks nothing",
        ),
        (
            "    url: https://charts.example.com
    verify: true
    keyring: ../keys.gpg
",
            "repository `stable`: keyring `../keys.gpg` is not a path inside the repository",
        ),
        (
            "    url: oci://registry.example.com/charts
    verify: true
    keyring: keys.gpg
    publicKeyRef: cosign.pub
",
            "environments/dev.yaml:7:19: repository `stable`: `keyring` and `publicKeyRef` are two ways to check its charts: name one",
        ),
        (
            "    url: oci://registry.example.com/charts
    verify: true
",
            "environments/dev.yaml:4:10: repository `stable`: `verify: true` needs a `publicKeyRef` or a `keyring`",
        ),
        (
            "    url: https://charts.example.com
    verify: true
    publicKeyRef: cosign.pub
",
            "environments/dev.yaml:6:19: repository `stable`: `publicKeyRef` (cosign) is for oci:// registries",
        ),
        (
            "    url: oci://registry.example.com/charts
    publicKeyRef: cosign.pub
",
            "environments/dev.yaml:5:19: repository `stable`: a `publicKeyRef` without `verify: true` checks nothing",
        ),
        (
            "    url: oci://registry.example.com/charts
    verify: true
    publicKeyRef: /etc/cosign.pub
",
            "repository `stable`: publicKeyRef `/etc/cosign.pub` is not a path inside the repository",
        ),
    ] {
        repo.write("environments/dev.yaml", &environment(&format!("  - name: stable\n{repository}"), ""));
        let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }

    // A damaged charts.lock is an error for a release that needs it, and only then.
    repo.write("charts.lock", "charts: [oops\n");
    repo.write(
        "environments/dev.yaml",
        &environment(
            "  - name: stable\n    url: https://charts.example.com\n",
            "  - name: web\n    chart: stable/web\n",
        ),
    );
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("charts.lock"), "{err}");
    repo.write("charts/local/Chart.yaml", "apiVersion: v2\nname: local\nversion: 0.1.0\n");
    repo.write(
        "charts/local/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
    );
    repo.write(
        "environments/dev.yaml",
        &environment("  - name: stable\n    url: https://charts.example.com\n", "  - name: own\n    chart: local\n"),
    );
    let out = repo.weaver(&["render", "--env", "dev"]).success().to_string();
    assert!(out.contains("name: own"), "{out}");
}

/// The distribution API's token flow, as a registry with token auth (Docker Hub, GHCR, Harbor)
/// runs it: every /v2/ request without the token gets a Bearer challenge naming the realm; the
/// realm hands the token out for the credentials.
#[test]
fn an_oci_registry_with_token_auth_gets_a_token_for_the_credentials() {
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = std::fs::read(chart_archive(archive_dir.path(), "3.1.0")).unwrap();
    let layer = format!("sha256:{}", sha256_hex(&archive));
    let config = br#"{"name":"web","version":"3.1.0","apiVersion":"v2"}"#.to_vec();
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        archive.len()
    );
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let token_requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = token_requests.clone();
    let (served_layer, served_manifest) = (layer.clone(), manifest.clone());
    let server = TestServer::start(move |port, request| {
        let (layer, manifest) = (&served_layer, &served_manifest);
        let ok = |body: Vec<u8>| ("200 OK", String::new(), body);
        if let Some(query) = request.path.strip_prefix("token?") {
            counted.fetch_add(1, Ordering::SeqCst);
            if request.authorization != basic || !query.contains("scope=repository%3Acharts%2Fweb%3Apull") {
                return ("401 Unauthorized", String::new(), b"bad credentials".to_vec());
            }
            return ok(br#"{"token":"t0ken-for-web"}"#.to_vec());
        }
        if request.authorization != "Bearer t0ken-for-web" {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:charts/web:pull\"\r\n"
            );
            return ("401 Unauthorized", challenge, b"{}".to_vec());
        }
        match request.path.as_str() {
            // Two pages, as registries paginate: the newest version is on the second.
            "v2/charts/web/tags/list" => (
                "200 OK",
                "Link: </v2/charts/web/tags/list?last=3.0.0&n=1>; rel=\"next\"\r\n".to_string(),
                br#"{"name":"charts/web","tags":["3.0.0"]}"#.to_vec(),
            ),
            "v2/charts/web/tags/list?last=3.0.0&n=1" => {
                ok(br#"{"name":"charts/web","tags":["3.1.0","4.0.0-rc.1"]}"#.to_vec())
            }
            "v2/charts/web/manifests/3.1.0" => ok(manifest.clone().into_bytes()),
            path if path == format!("v2/charts/web/blobs/{layer}") => ok(archive.clone()),
            _ => ("404 Not Found", String::new(), Vec::new()),
        }
    });
    let repo = Repo::empty();
    repo.write(
        "environments/dev.yaml",
        &environment(
            &format!("  - name: registry\n    url: oci://127.0.0.1:{}/charts\n    plainHttp: true\n", server.port),
            "  - name: web\n    chart: registry/web\n    version: '>=3.0.0'\n",
        ),
    );
    let cache = tempfile::tempdir().unwrap();
    let credentials = credentials_file(cache.path(), &format!("oci://127.0.0.1:{}", server.port));
    let cache_dir = cache.path().join("cache");
    let env =
        [("WEAVER_CHART_CACHE", cache_dir.to_str().unwrap()), ("WEAVER_CREDENTIALS", credentials.to_str().unwrap())];

    // Without credentials the token service refuses: an error, no token, no password shown.
    let err = repo.weaver_env(&["charts", "lock"], &env[..1]).failure().to_string();
    assert!(err.contains("answered HTTP 401"), "{err}");
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("3.1.0") && !out.contains("4.0.0"), "the newest stable version: {out}");
    assert!(!out.contains(PASSWORD) && !out.contains("t0ken"), "{out}");
    let pinned = locked(&repo);
    assert_eq!(pinned[0]["digest"], layer.as_str());
    assert_eq!(
        pinned[0]["url"],
        format!("oci://127.0.0.1:{}/charts/web@sha256:{}", server.port, sha256_hex(manifest.as_bytes()))
    );
    // One token for the run's requests of one scope (tags, manifest, blob), after the refused one.
    assert_eq!(token_requests.load(Ordering::SeqCst), 2);

    // `docker login`'s config (an `auths` entry for the registry's host) serves as well.
    let docker = cache.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let host = format!("127.0.0.1:{}", server.port);
    std::fs::write(docker.join("config.json"), format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#)).unwrap();
    let docker_env = [env[0], ("DOCKER_CONFIG", docker.to_str().unwrap())];
    let out = repo.weaver_env(&["charts", "lock", "--update"], &docker_env).success().to_string();
    assert!(!out.contains(PASSWORD) && !out.contains(&auth), "{out}");
    // And a credential helper that `helm registry login`'s config names, run as docker runs it.
    let helm_config = cache.path().join("helm-registry.json");
    std::fs::write(&helm_config, r#"{"auths": {}, "credsStore": "weavertest"}"#).unwrap();
    let helper = docker.join("docker-credential-weavertest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = {host} ] || {{ echo credentials not found; exit 1; }}\necho '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", docker.display(), std::env::var("PATH").unwrap_or_default());
    let helper_env = [env[0], ("HELM_REGISTRY_CONFIG", helm_config.to_str().unwrap()), ("PATH", &path)];
    let out = repo.weaver_env(&["charts", "lock", "--update"], &helper_env).success().to_string();
    assert!(!out.contains(PASSWORD), "{out}");
    assert_eq!(token_requests.load(Ordering::SeqCst), 4, "one token per run, for the login each found");
    drop(server);
    let out = repo.weaver_env(&["render", "--env", "dev"], &env[..1]).success().to_string();
    assert_eq!(config_maps(&out)[0]["data"]["version"], "3.1.0", "{out}");
}

#[test]
fn an_oci_registry_chart_is_locked_by_tag_or_digest_and_rendered_from_the_cache() {
    let helm = common::tools::helm();
    let registry = common::registry::Registry::start();
    let missing = match (&helm, &registry) {
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        _ => None,
    };
    if !common::skip::interop_or_skip(missing.as_deref()) {
        return;
    }
    let ((helm, _), registry) = (helm.unwrap(), registry.unwrap());
    let work = tempfile::tempdir().unwrap();
    let helm_home = work.path().join("helm");
    let mut pushed = Vec::new();
    for version in ["1.0.0", "1.0.1", "1.1.0"] {
        let archive = chart_archive(work.path(), version);
        helm_push(&helm, &helm_home, &archive, &registry);
        pushed.push(std::fs::read(&archive).unwrap());
    }

    let repo = Repo::empty();
    let repositories =
        format!("  - name: registry\n    url: oci://127.0.0.1:{}/charts\n    plainHttp: true\n", registry.port);
    repo.write(
        "environments/dev.yaml",
        &environment(&repositories, "  - name: web\n    chart: registry/web\n    version: ~1.0.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let env = [("WEAVER_CHART_CACHE", cache.path().to_str().unwrap())];
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("registry/web@~1.0.0") && out.contains("1.0.1"), "{out}");
    let pinned = locked(&repo);
    assert_eq!(pinned[0]["version"], "1.0.1");
    assert_eq!(pinned[0]["digest"], format!("sha256:{}", sha256_hex(&pushed[1])));
    let url = pinned[0]["url"].as_str().unwrap().to_string();
    let manifest = url.split_once('@').expect("the URL names the manifest by digest").1.to_string();

    // Pinned by the manifest's digest instead of a constraint: the same archive.
    repo.write(
        "environments/dev.yaml",
        &environment(
            &repositories,
            &format!("  - name: web\n    chart: registry/web\n    version: ~1.0.0\n  - name: pinned\n    chart: registry/web@{manifest}\n"),
        ),
    );
    repo.weaver_env(&["charts", "lock"], &env).success();
    let pinned = locked(&repo);
    assert_eq!(pinned.len(), 2);
    let by_digest = pinned.iter().find(|c| c["constraint"] == manifest.as_str()).expect("the digest-pinned chart");
    assert_eq!(
        (by_digest["version"].as_str(), by_digest["digest"].as_str()),
        (Some("1.0.1"), pinned[0]["digest"].as_str())
    );

    // Offline: the registry is gone; render reads the cache.
    drop(registry);
    let out = repo.weaver_env(&["render", "--env", "dev"], &env).success().to_string();
    let objects = config_maps(&out);
    assert_eq!(objects.len(), 2, "{out}");
    assert!(objects.iter().all(|o| o["data"]["version"] == "1.0.1"), "{out}");

    // A tampered archive: nothing rendered.
    std::fs::write(cache.path().join(format!("sha256/{}.tgz", sha256_hex(&pushed[1]))), &pushed[0]).unwrap();
    let err = repo.weaver_env(&["render", "--env", "dev"], &env).failure().to_string();
    assert!(err.contains("the cached archive") && err.contains("weaver charts fetch"), "{err}");
}

/// An oci:// registry with `verify: true` and `publicKeyRef`: a chart's manifest signed by
/// cosign's key (`cosign sign --key`, the test-only signer) is locked with its signer and
/// rendered; a newer version unsigned, or signed by another key, is refused by name and the lock
/// stays as it was; a pull checks the signature again.
#[test]
fn an_oci_registry_that_verifies_takes_only_charts_a_trusted_cosign_key_signed() {
    let helm = common::tools::helm();
    let registry = common::registry::Registry::start();
    let missing = match (&helm, &registry) {
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        _ => None,
    };
    if !common::skip::interop_or_skip(missing.as_deref()) {
        return;
    }
    let ((helm, _), registry) = (helm.unwrap(), registry.unwrap());
    let work = tempfile::tempdir().unwrap();
    let helm_home = work.path().join("helm");
    let push = |version: &str| helm_push(&helm, &helm_home, &chart_archive(work.path(), version), &registry);
    let (trusted, other) = (TestSigner::new("chart team"), TestSigner::new("someone else"));
    let reference = format!("127.0.0.1:{}/charts/web", registry.port);
    push("1.0.0");
    let signed = push("1.0.1");
    crate::images::push_signature(registry.port, "charts/web", &reference, &signed, &trusted, None);

    let repo = Repo::empty();
    repo.write("keys/cosign.pub", &trusted.public_pem());
    let repositories = format!(
        "  - name: registry\n    url: oci://127.0.0.1:{}/charts\n    plainHttp: true\n    verify: true\n    publicKeyRef: keys/cosign.pub\n",
        registry.port
    );
    repo.write(
        "environments/dev.yaml",
        &environment(&repositories, "  - name: web\n    chart: registry/web\n    version: ~1.0.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let env = [("WEAVER_CHART_CACHE", cache.path().to_str().unwrap())];
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("keys/cosign.pub (ECDSA P-256 key SHA256:"), "{out}");
    let pinned = locked(&repo);
    assert_eq!(pinned[0]["version"], "1.0.1");
    assert!(pinned[0]["url"].as_str().unwrap().ends_with(&format!("@{signed}")), "{pinned:?}");
    assert!(pinned[0]["signedBy"].as_str().unwrap().starts_with("keys/cosign.pub (ECDSA P-256 key SHA256:"));
    let out = repo.weaver_env(&["render", "--env", "dev"], &env).success().to_string();
    assert!(out.contains("version: '1.0.1'"), "{out}");
    let lock_before = std::fs::read_to_string(repo.path().join("charts.lock")).unwrap();

    // A newer version, unsigned: refused, the lock unchanged.
    let unsigned = push("1.0.2");
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains(&format!("web@{unsigned} is refused: it is not signed")), "{err}");
    assert!(err.contains("keys/cosign.pub lists the keys whose charts are taken"), "{err}");
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_before);
    // Signed by a key the file does not hold: refused, naming the key it holds.
    crate::images::push_signature(registry.port, "charts/web", &reference, &unsigned, &other, None);
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("its cosign signature holds for no trusted key (ECDSA P-256 SHA256:"), "{err}");
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_before);

    // A lock from before `verify`: not rendered until `charts lock` checks it.
    let unverified =
        lock_before.lines().filter(|l| !l.trim_start().starts_with("signedBy")).collect::<Vec<_>>().join("\n");
    repo.write("charts.lock", &format!("{unverified}\n"));
    let err = repo.weaver_env(&["render", "--env", "dev"], &env).failure().to_string();
    assert!(err.contains("records no check"), "{err}");
    repo.weaver_env(&["charts", "lock"], &env).success();
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_before);

    // A lock changed by hand to pair the signed manifest with another archive: refused.
    let other_archive = format!("sha256:{}", sha256_hex(&std::fs::read(work.path().join("web-1.0.0.tgz")).unwrap()));
    let current_digest = locked(&repo)[0]["digest"].as_str().unwrap().to_string();
    repo.write("charts.lock", &lock_before.replace(&current_digest, &other_archive));
    let empty = tempfile::tempdir().unwrap();
    let fresh = [("WEAVER_CHART_CACHE", empty.path().to_str().unwrap())];
    let err = repo.weaver_env(&["charts", "fetch"], &fresh).failure().to_string();
    assert!(
        err.contains(&format!("its chart layer is {current_digest}, but charts.lock pins {other_archive}")),
        "{err}"
    );
    repo.write("charts.lock", &lock_before);

    // `charts fetch` into an empty cache checks the signature again: the signature tag now
    // holds another key's signature only, and the pull is refused.
    crate::images::push_signature(registry.port, "charts/web", &reference, &signed, &other, None);
    let err = repo.weaver_env(&["charts", "fetch"], &fresh).failure().to_string();
    assert!(err.contains("is refused: its cosign signature holds for no trusted key"), "{err}");
}

/// Issue 53.6: every remote chart missing from charts.lock is named at once, each where its
/// release names it, before anything renders (the first one alone was named, without a place).
#[test]
fn every_remote_chart_missing_from_the_lock_is_named_with_its_place() {
    let repo = Repo::empty();
    let releases = "  - name: web\n    chart: stable/web\n    version: ^1.0.0\n  - name: db\n    chart: stable/db\n    version: 2.0.0\n";
    repo.write("environments/dev.yaml", &environment("  - name: stable\n    url: https://charts.invalid\n", releases));
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("error: 2 remote charts are not in charts.lock:\n"), "{err}");
    assert!(
        err.contains("  environments/dev.yaml:7:12: chart `stable/web` version `^1.0.0` of release `web`\n"),
        "{err}"
    );
    assert!(err.contains("  environments/dev.yaml:10:12: chart `stable/db` version `2.0.0` of release `db`"), "{err}");
    assert!(err.contains("help: run `weaver charts lock`"), "{err}");
    // One alone is told at its place.
    repo.write(
        "environments/dev.yaml",
        &environment("  - name: stable\n    url: https://charts.invalid\n", "  - name: web\n    chart: stable/web\n"),
    );
    let err = repo.weaver(&["render", "--env", "dev"]).failure().to_string();
    assert!(err.contains("error: environments/dev.yaml:7:12: chart `stable/web` (newest version) of release `web` is not in charts.lock"), "{err}");
}

/// The controller's chart cache, through its API: archives pulled by digest, anonymously, within
/// a budget smaller than two charts; what a reconcile holds stays, the least recently used goes.
#[test]
fn the_controllers_chart_cache_evicts_the_least_recently_used_archive_that_no_reconcile_holds() {
    use weaver_source::charts::pulls::Pulls;
    use weaver_source::charts::{Lock, LockedChart};
    use weaver_source::{Budget, CacheLimits, ChartCache};

    let served = tempfile::tempdir().unwrap();
    let archives = chart_repository(served.path());
    let root = served.path().to_path_buf();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    let server = TestServer::start(move |_, request| {
        counted.fetch_add(1, Ordering::SeqCst);
        match std::fs::read(root.join(&request.path)) {
            Ok(body) => ("200 OK", String::new(), body),
            Err(_) => ("404 Not Found", String::new(), b"not found".to_vec()),
        }
    });
    let chart = |version: &str| weaver_project::chart::RemoteChart {
        repository: server.url(),
        repository_name: Some("stable".into()),
        name: "web".into(),
        version: version.into(),
        plain_http: false,
        keys: None,
    };
    let data = |version: &str| &archives.iter().find(|(v, _)| v == version).unwrap().1;
    let lock = Lock {
        charts: ["1.0.0", "2.0.0"]
            .iter()
            .map(|version| LockedChart {
                repository: server.url(),
                name: "web".into(),
                constraint: version.to_string(),
                version: version.to_string(),
                url: format!("{}/web-{version}.tgz", server.url()),
                digest: format!("sha256:{}", sha256_hex(data(version))),
                required_by: None,
                signed_by: None,
            })
            .collect(),
    };
    let (one, two) = (data("1.0.0").len() as u64, data("2.0.0").len() as u64);
    let limits = CacheLimits { max_disk_bytes: one.max(two) + one.min(two) / 2, max_repositories: 1 };
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ChartCache::new(dir.path().to_path_buf(), Budget::new(limits)).unwrap());
    let cached = |version: &str| dir.path().join(format!("sha256/{}.tgz", sha256_hex(data(version)))).exists();
    let pull = |pulls: &Pulls, version: &str| {
        let (archive, origin) = pulls.archive(&lock, "release `web`", &chart(version)).unwrap();
        assert_eq!(&archive, data(version));
        assert_eq!(origin, PathBuf::from(format!("stable/web-{version}.tgz")));
    };

    let first = Pulls::new(cache.clone());
    pull(&first, "1.0.0");
    let second = Pulls::new(cache.clone());
    pull(&second, "2.0.0");
    // Over the budget, but both are held by a reconcile in flight.
    assert!(cached("1.0.0") && cached("2.0.0"));
    pull(&first, "1.0.0");
    assert_eq!(sent.load(Ordering::SeqCst), 2, "what a run holds is not pulled again");
    drop((first, second));

    // 1.0.0 again: found in the cache, and 2.0.0, now the least recently used, goes.
    let third = Pulls::new(cache.clone());
    pull(&third, "1.0.0");
    assert_eq!(sent.load(Ordering::SeqCst), 2);
    assert!(cached("1.0.0") && !cached("2.0.0"));
    drop(third);
    let fourth = Pulls::new(cache.clone());
    pull(&fourth, "2.0.0");
    assert_eq!(sent.load(Ordering::SeqCst), 3);
    assert!(!cached("1.0.0") && cached("2.0.0"));
}

/// Chart `web` at `version` packaged and signed by `helm package --sign` with GnuPG key `uid`
/// (its secret keys exported as helm reads them) into `charts`, with its `.prov`; the archive.
fn signed_chart(
    dir: &Path,
    charts: &Path,
    gpg: &weaver_test_support::signing::Gpg,
    uid: &str,
    version: &str,
) -> Vec<u8> {
    let (helm, _) = common::tools::helm().expect("helm");
    let src = dir.join(format!("signed-{version}/web"));
    std::fs::create_dir_all(src.join("templates")).unwrap();
    std::fs::write(src.join("Chart.yaml"), format!("apiVersion: v2\nname: web\nversion: {version}\n")).unwrap();
    std::fs::write(src.join("templates/configmap.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  version: {{ .Chart.Version | quote }}\n").unwrap();
    let secring = dir.join("secring.gpg");
    std::fs::write(&secring, gpg.run_bytes(&["--export-secret-keys"])).unwrap();
    let out = Command::new(helm)
        .args(["package", "--sign", "--key", uid, "--keyring"])
        .arg(&secring)
        .arg("-d")
        .arg(charts)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "helm package --sign: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(charts.join(format!("web-{version}.tgz"))).unwrap()
}

/// An oci:// registry with `verify: true` and a keyring: the provenance file `helm push`
/// uploads as a layer beside a chart `helm package --sign` signed is checked as `helm pull
/// --verify` checks it; a chart pushed without one, or signed by another key, is refused and the
/// lock left as it was.
#[test]
fn an_oci_registry_with_a_keyring_checks_the_provenance_layer_helm_pushes() {
    let helm = common::tools::helm();
    let registry = common::registry::Registry::start();
    let gpg_missing = weaver_test_support::signing::missing(&["gpg"]);
    let missing = match (&helm, &registry, gpg_missing) {
        (Err(e), _, _) | (_, Err(e), _) => Some(e.clone()),
        (_, _, Some(e)) => Some(e),
        _ => None,
    };
    if !common::skip::interop_or_skip(missing.as_deref()) {
        return;
    }
    let ((helm, _), registry) = (helm.unwrap(), registry.unwrap());
    let gpg = weaver_test_support::signing::Gpg::new();
    let signer = gpg.rsa_key("Chart Signer <charts@example.com>");
    gpg.rsa_key("Mallory <mallory@example.com>");
    let work = tempfile::tempdir().unwrap();
    let packaged = work.path().join("packaged");
    std::fs::create_dir_all(&packaged).unwrap();
    let helm_home = work.path().join("helm");
    // Pushed from where `helm package` wrote it: its .prov beside it goes as a layer.
    let push = |archive: &Path| helm_push(&helm, &helm_home, archive, &registry);
    signed_chart(work.path(), &packaged, &gpg, "Chart Signer", "1.0.0");
    push(&packaged.join("web-1.0.0.tgz"));

    let repo = Repo::empty();
    repo.write_bytes("keys/charts.gpg", &gpg.run_bytes(&["--export", &signer]));
    let repositories = format!(
        "  - name: registry\n    url: oci://127.0.0.1:{}/charts\n    plainHttp: true\n    verify: true\n    keyring: keys/charts.gpg\n",
        registry.port
    );
    repo.write(
        "environments/dev.yaml",
        &environment(&repositories, "  - name: web\n    chart: registry/web\n    version: ^1.0.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let env = [("WEAVER_CHART_CACHE", cache.path().to_str().unwrap())];
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("Chart Signer <charts@example.com> (OpenPGP key"), "{out}");
    assert_eq!(locked(&repo)[0]["signedBy"], format!("Chart Signer <charts@example.com> (OpenPGP key {signer})"));
    let out = repo.weaver_env(&["render", "--env", "dev"], &env).success().to_string();
    assert_eq!(config_maps(&out)[0]["data"]["version"], "1.0.0");
    let lock_v1 = std::fs::read_to_string(repo.path().join("charts.lock")).unwrap();

    // A newer version signed by another key: refused by its provenance layer.
    signed_chart(work.path(), &packaged, &gpg, "Mallory", "1.1.0");
    push(&packaged.join("web-1.1.0.tgz"));
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("is refused: its provenance file: it is signed by OpenPGP"), "{err}");
    assert!(err.contains("a key the trust list does not hold"), "{err}");
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_v1);
    // A newer version pushed without its provenance file: refused, naming what is missing.
    let bare = chart_archive(work.path(), "1.2.0");
    push(&bare);
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("is refused: its manifest has no provenance layer"), "{err}");
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_v1);
}

#[test]
fn a_repository_that_verifies_takes_only_charts_its_keyring_signed_and_the_lock_records_who() {
    let helm = common::tools::helm().is_ok();
    let gpg_missing = weaver_test_support::signing::missing(&["gpg"]);
    if !common::interop_available("helm and gpg", helm && gpg_missing.is_none()) {
        return;
    }
    let gpg = weaver_test_support::signing::Gpg::new();
    let signer = gpg.rsa_key("Chart Signer <charts@example.com>");
    let other = gpg.rsa_key("Mallory <mallory@example.com>");
    let served = tempfile::tempdir().unwrap();
    let charts = served.path().join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    let work = tempfile::tempdir().unwrap();
    let v1 = signed_chart(work.path(), &charts, &gpg, "Chart Signer", "1.0.0");
    let index = |versions: &[(&str, &[u8])]| {
        let mut index = String::from("apiVersion: v1\nentries:\n  web:\n");
        for (version, data) in versions {
            index.push_str(&format!(
                "  - apiVersion: v2\n    name: web\n    version: {version}\n    digest: {}\n    urls:\n    - web-{version}.tgz\n",
                sha256_hex(data)
            ));
        }
        std::fs::write(charts.join("index.yaml"), index).unwrap();
    };
    index(&[("1.0.0", &v1)]);
    let server = TestServer::chart_repository(std::net::Ipv4Addr::LOCALHOST, served.path().to_path_buf(), None);
    let repo = Repo::empty();
    repo.write_bytes("keys/charts.gpg", &gpg.run_bytes(&["--export", &signer]));
    let verified =
        format!("  - name: stable\n    url: {}\n    verify: true\n    keyring: keys/charts.gpg\n", server.url());
    repo.write(
        "environments/dev.yaml",
        &environment(&verified, "  - name: web\n    chart: stable/web\n    version: ^1.0.0\n"),
    );
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("WEAVER_CHART_CACHE", cache.path().to_str().unwrap()),
        ("WEAVER_REPOSITORY_STABLE_USERNAME", USER),
        ("WEAVER_REPOSITORY_STABLE_PASSWORD", PASSWORD),
    ];

    // Signed by a key of the keyring: pinned, with who signed it.
    let out = repo.weaver_env(&["charts", "lock"], &env).success().to_string();
    assert!(out.contains("SIGNED BY") && out.contains("Chart Signer <charts@example.com> (OpenPGP key"), "{out}");
    let pinned = locked(&repo);
    assert_eq!(pinned[0]["signedBy"], format!("Chart Signer <charts@example.com> (OpenPGP key {signer})"));
    let out = repo.weaver_env(&["render", "--env", "dev"], &env).success().to_string();
    assert_eq!(config_maps(&out)[0]["data"]["version"], "1.0.0");
    let lock_v1 = std::fs::read_to_string(repo.path().join("charts.lock")).unwrap();

    // Refused, and the lock left as it was: a version signed by another key, one changed after
    // signing, one without a provenance file.
    let refused = |version: &str, data: &[u8], why: &str| {
        index(&[("1.0.0", &v1), (version, data)]);
        let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
        assert!(err.contains(&format!("web-{version}.tgz is refused: ")) && err.contains(why), "{version}: {err}");
        assert!(err.contains("keyring keys/charts.gpg lists the keys whose charts are taken"), "{err}");
        assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_v1, "{version}");
    };
    let by_other = signed_chart(work.path(), &charts, &gpg, "Mallory", "1.1.0");
    // helm's signatures name their key by its id, the fingerprint's last 16 digits.
    let other_id = &other[other.len() - 16..];
    refused("1.1.0", &by_other, &format!("signed by OpenPGP {other_id}, a key the trust list does not hold"));
    let v12 = signed_chart(work.path(), &charts, &gpg, "Chart Signer", "1.2.0");
    let mut changed = v12.clone();
    changed.extend_from_slice(b"appended after signing");
    std::fs::write(charts.join("web-1.2.0.tgz"), &changed).unwrap();
    refused("1.2.0", &changed, "but the archive has sha256:");
    let v13 = signed_chart(work.path(), &charts, &gpg, "Chart Signer", "1.3.0");
    std::fs::remove_file(charts.join("web-1.3.0.tgz.prov")).unwrap();
    let index_v13 = || index(&[("1.0.0", &v1), ("1.3.0", &v13)]);
    index_v13();
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("web-1.3.0.tgz.prov") && err.contains("needs its provenance file"), "{err}");
    // A server that sends far more than a provenance file is not read further.
    std::fs::write(charts.join("web-1.3.0.tgz.prov"), vec![b'x'; 2 << 20]).unwrap();
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("web-1.3.0.tgz.prov is larger than 1024 KiB, which no provenance file is"), "{err}");

    // A lock written before the repository verified: render refuses it until `charts lock`
    // checks the provenance file and records the signer.
    let unchecked = lock_v1.lines().filter(|l| !l.contains("signedBy")).collect::<Vec<_>>().join("\n") + "\n";
    repo.write("charts.lock", &unchecked);
    let err = repo.weaver_env(&["render", "--env", "dev"], &env).failure().to_string();
    assert!(
        err.contains("its repository says `verify: true`, but charts.lock records no check of its provenance file"),
        "{err}"
    );
    index(&[("1.0.0", &v1)]);
    repo.weaver_env(&["charts", "lock"], &env).success();
    assert_eq!(std::fs::read_to_string(repo.path().join("charts.lock")).unwrap(), lock_v1);

    // The keyring is named where it is wrong.
    repo.write("keys/charts.gpg", "not a keyring");
    let err = repo.weaver_env(&["charts", "lock", "--update"], &env).failure().to_string();
    assert!(err.contains("keys/charts.gpg") && err.contains("keyring: an OpenPGP key cannot be read"), "{err}");
}
