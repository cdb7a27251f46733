//! Git's smart HTTP protocol over ureq (rustls on aws-lc-rs, weaver's one TLS stack): a GET of
//! `info/refs?service=git-upload-pack`, then a POST to `git-upload-pack` per negotiation round,
//! whose body is what libgit2 writes and whose answer is what it reads.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};
use secrecy::ExposeSecret;
use ureq::Agent;

use super::transport::Session;
use super::{Credentials, FetchFailure};

/// The longest one request (its answer's body included) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

pub(super) struct HttpSubtransport {
    session: Arc<Session>,
    agent: Agent,
    /// The CA given holds no certificate: every https request fails, saying so.
    empty_ca: bool,
}

impl HttpSubtransport {
    pub fn new(session: Arc<Session>) -> HttpSubtransport {
        let roots = session.ca_pem.as_deref().map(crate::net::http::root_certs);
        let empty_ca = matches!(roots, Some(None));
        let agent = crate::net::http::agent(roots.flatten(), REQUEST_TIMEOUT, 5);
        HttpSubtransport { session, agent, empty_ca }
    }
}

impl SmartSubtransport for HttpSubtransport {
    fn action(&self, _url: &str, action: Service) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        if !matches!(action, Service::UploadPackLs | Service::UploadPack) {
            return Err(git2::Error::from_str("weaver's git sources only fetch"));
        }
        if self.session.url.scheme == super::Scheme::Https && self.empty_ca {
            return Err(git2::Error::from_str(
                &self
                    .session
                    .fail(
                        FetchFailure::Other,
                        format!(
                            "{}: the CA (ca.crt) holds no PEM certificate: check the Secret's ca.crt",
                            self.session.what()
                        ),
                    )
                    .to_string(),
            ));
        }
        Ok(Box::new(HttpStream {
            session: self.session.clone(),
            agent: self.agent.clone(),
            list: action == Service::UploadPackLs,
            request: Vec::new(),
            response: None,
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

struct HttpStream {
    session: Arc<Session>,
    agent: Agent,
    /// The ref advertisement (GET), else a negotiation round (POST).
    list: bool,
    request: Vec<u8>,
    response: Option<ureq::BodyReader<'static>>,
}

impl HttpStream {
    fn base(&self) -> String {
        let url = &self.session.url;
        let scheme = if url.scheme == super::Scheme::Http { "http" } else { "https" };
        let port = url.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{}{port}{}", url.host, url.path.trim_end_matches('/'))
    }

    fn send(&mut self) -> std::io::Result<ureq::BodyReader<'static>> {
        let session = &self.session;
        let authorization = match &session.credentials {
            Credentials::Basic { username, password } => {
                use base64::Engine;
                let pair = format!("{username}:{}", password.expose_secret());
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
            }
            Credentials::Bearer(token) => Some(format!("Bearer {}", token.expose_secret())),
            Credentials::None | Credentials::Ssh { .. } => None,
        };
        let result = if self.list {
            let mut request = self
                .agent
                .get(format!("{}/info/refs?service=git-upload-pack", self.base()))
                .header("User-Agent", "git/2.0 (weaver)")
                .header("Accept", "*/*");
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request.call()
        } else {
            let mut request = self
                .agent
                .post(format!("{}/git-upload-pack", self.base()))
                .header("User-Agent", "git/2.0 (weaver)")
                .header("Content-Type", "application/x-git-upload-pack-request")
                .header("Accept", "application/x-git-upload-pack-result");
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request.send(&self.request[..])
        };
        let response = result.map_err(|e| {
            let tls =
                matches!(&e, ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()));
            let (failure, what_to_do) = match &e {
                _ if tls => (
                    FetchFailure::Other,
                    "the TLS handshake failed: a server with a private CA needs it in the Secret's ca.crt",
                ),
                ureq::Error::HostNotFound => {
                    (FetchFailure::Unreachable, "the host name does not resolve: check the URL")
                }
                ureq::Error::ConnectionFailed | ureq::Error::Io(_) | ureq::Error::Timeout(_) => (
                    FetchFailure::Unreachable,
                    "check the URL, that the server is up and that the network lets the controller reach it",
                ),
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) => (
                    FetchFailure::Other,
                    "the TLS handshake failed: a server with a private CA needs it in the Secret's ca.crt",
                ),
                _ => (FetchFailure::Other, "check the URL and the server"),
            };
            session.fail(failure, format!("{}: {}: {what_to_do}", session.what(), transport_reason(&e)))
        })?;
        let status = response.status().as_u16();
        let refused = |failure, text: String| Err(session.fail(failure, format!("{}: {text}", session.what())));
        match status {
            200 => {}
            401 | 403 => {
                let what_to_do = match session.credentials {
                    Credentials::None => {
                        "the repository needs credentials: name a Secret with username/password or a bearer token"
                    }
                    Credentials::Bearer(_) => "check the Secret's bearer token",
                    _ => "check the Secret's username/password",
                };
                return refused(
                    FetchFailure::AuthenticationFailed,
                    format!("the server refused the credentials (HTTP {status}): {what_to_do}"),
                );
            }
            404 => {
                return refused(
                    FetchFailure::Other,
                    "no git repository at this URL (HTTP 404): check the URL (a private repository may answer 404 to \
                     missing credentials)"
                        .to_string(),
                );
            }
            _ => return refused(FetchFailure::Other, format!("the server answered HTTP {status}")),
        }
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let expected = if self.list {
            "application/x-git-upload-pack-advertisement"
        } else {
            "application/x-git-upload-pack-result"
        };
        if !content_type.starts_with(expected) {
            return refused(
                FetchFailure::Other,
                format!("the server answered {content_type:?}, not {expected}: it is not a smart git HTTP server"),
            );
        }
        Ok(response.into_body().into_with_config().limit(u64::MAX).reader())
    }
}

/// ureq's reason, which names no credential (requests carry them in a header, never the URL).
fn transport_reason(err: &ureq::Error) -> String {
    match err {
        ureq::Error::ConnectionFailed => "the connection failed".to_string(),
        ureq::Error::HostNotFound => "unknown host".to_string(),
        other => other.to_string(),
    }
}

impl Read for HttpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.response.is_none() {
            self.response = Some(self.send()?);
        }
        let response = self.response.as_mut().expect("sent above");
        let read = response.read(buf);
        if let Ok(n) = read {
            self.session.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        }
        read.map_err(|e| {
            self.session.fail(
                FetchFailure::Unreachable,
                format!("{}: the connection broke: {}: check the network and retry", self.session.what(), e),
            )
        })
    }
}

impl Write for HttpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.list || self.response.is_some() {
            return Err(std::io::Error::other("git smart HTTP: a request is written before its answer is read"));
        }
        self.request.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
