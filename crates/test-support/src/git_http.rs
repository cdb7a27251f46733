//! A git smart-HTTP server on loopback for tests and benchmarks: git's own `git http-backend`
//! (CGI) behind a hyper server, optionally over TLS and checking Basic or Bearer credentials.
//! It records every request ("GET /r/info/refs") and can delay its answers, so that tests can
//! count what a client sent and make fetches overlap.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// git's http-backend, in the directory `git --exec-path` names (where git keeps its
/// programs: /usr/lib/git-core on Debian, /usr/local/libexec/git-core built from source).
fn http_backend() -> Result<&'static Path, &'static str> {
    static BACKEND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BACKEND.get_or_init(|| {
        let output = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .map_err(|e| format!("git is not installed ({e}), so neither is its http-backend"))?;
        let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let backend = Path::new(&dir).join("git-http-backend");
        match output.status.success() && backend.exists() {
            true => Ok(backend),
            false => Err(format!("git's http-backend is not installed (not in `git --exec-path`: {dir:?})")),
        }
    });
    found.as_deref().map_err(String::as_str)
}

/// Why git's http-backend cannot be used, if it cannot.
pub fn http_backend_missing() -> Option<String> {
    http_backend().err().map(str::to_string)
}

#[derive(Clone, Default)]
pub struct Options {
    /// `Authorization: Basic` the server requires.
    pub basic: Option<(String, String)>,
    /// `Authorization: Bearer` the server requires.
    pub bearer: Option<String>,
    /// The server's certificate chain and private key, PEM: https.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// How long each answer waits.
    pub delay: Duration,
    /// The port to listen on; 0 for any free one. A server started again on its port is the
    /// same server coming back.
    pub port: u16,
    /// The loopback address to listen on (127.0.0.1 when None): another address is another
    /// host to a client.
    pub address: Option<Ipv4Addr>,
    /// Answers every request under the first (a path prefix, `/moved`) with a 302 to the same
    /// path and query under the second (a URL, `http://127.0.0.1:PORT`).
    pub redirect: Option<(String, String)>,
}

pub struct GitHttpServer {
    /// `http(s)://127.0.0.1:PORT`.
    pub base: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl GitHttpServer {
    /// Serves the repositories under `root` (`<base>/<dir>` is `root/<dir>`).
    pub fn start(root: &Path, options: Options) -> GitHttpServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let address = options.address.unwrap_or(Ipv4Addr::LOCALHOST);
        // A server started again on its port may find it held a moment longer by the one
        // dropped, whose runtime shuts down in the background.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match runtime.block_on(tokio::net::TcpListener::bind((address, options.port))) {
                Ok(listener) => break listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("listen on {address}:{}: {e}", options.port),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let acceptor = options.tls.as_ref().map(|(chain, key)| crate::tls::acceptor(chain, key));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new((root.to_path_buf(), options, requests.clone()));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else { return };
                            let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                        None => {
                            let _ = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        GitHttpServer { base: format!("{scheme}://{address}:{port}"), requests, runtime: Some(runtime) }
    }

    /// The requests received so far whose line starts with `prefix` ("POST", "GET").
    pub fn count(&self, prefix: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.starts_with(prefix)).count()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type State = Arc<(PathBuf, Options, Arc<Mutex<Vec<String>>>)>;

async fn handle(state: State, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (root, options, requests) = &*state;
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    requests.lock().unwrap().push(format!("{method} {path}"));
    tokio::time::sleep(options.delay).await;
    if let Some((from, to)) = &options.redirect
        && let Some(rest) = path.strip_prefix(from.as_str())
    {
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::FOUND;
        response.headers_mut().insert("location", format!("{to}{rest}{query}").parse().unwrap());
        return Ok(response);
    }
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let authorization = header("authorization");
    let expected = match (&options.basic, &options.bearer) {
        (Some((user, password)), _) => {
            use base64::Engine;
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
        }
        (None, Some(token)) => Some(format!("Bearer {token}")),
        (None, None) => None,
    };
    if let Some(expected) = expected
        && authorization != expected
    {
        let mut response = Response::new(Full::new(Bytes::from_static(b"authentication required\n")));
        *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
        response.headers_mut().insert("www-authenticate", "Basic realm=\"git\"".parse().unwrap());
        return Ok(response);
    }
    let content_type = header("content-type");
    let protocol = header("git-protocol");
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let root = root.clone();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(http_backend().expect("checked by http_backend_missing"))
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", &path)
            .env("QUERY_STRING", &query)
            .env("REQUEST_METHOD", &method)
            .env("CONTENT_TYPE", &content_type)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_GIT_PROTOCOL", &protocol)
            .env("REMOTE_USER", "tests")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start git http-backend");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        output
    })
    .await
    .unwrap();
    // CGI: headers, a blank line, the body.
    let stdout = output.stdout;
    let split = stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, skip)) = split else {
        let mut response = Response::new(Full::new(Bytes::from(output.stderr)));
        *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(&stdout[end + skip..])));
    for line in String::from_utf8_lossy(&stdout[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("500").parse().unwrap_or(500);
            *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
        } else if let (Ok(name), Ok(value)) =
            (hyper::header::HeaderName::try_from(name), hyper::header::HeaderValue::try_from(value))
        {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}
