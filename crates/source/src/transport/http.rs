//! Git's smart HTTP protocol over ureq (rustls on aws-lc-rs, weaver's one TLS stack): a GET of
//! `info/refs?service=git-upload-pack`, then a POST to `git-upload-pack` per negotiation round,
//! whose body is what libgit2 writes and whose answer is what it reads (`git-receive-pack` for
//! a push, as `git push` speaks it).
//!
//! Redirects are followed as git follows them by default (`http.followRedirects=initial`): for
//! the GET alone, whose final URL becomes the base of the POSTs. Credentials go to a redirect's
//! target only on the same host, never downgraded from https to http.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream};
use secrecy::ExposeSecret;
use ureq::config::RedirectAuthHeaders;
use ureq::{Agent, ResponseExt};

use super::session::{RECEIVE_PACK, Session, UPLOAD_PACK};
use crate::{CredentialNames, Credentials, FetchFailure, Scheme, SourceUrl};

/// The longest one request (its answer's body included) may take; the fetch's deadline is
/// usually sooner.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Redirects followed for the ref advertisement (git's `http.maxRedirects` is 20; hosting
/// services use one or two).
const MAX_REDIRECTS: u32 = 5;

/// The ref advertisement's path of the session's service.
fn advertisement(service: &str) -> String {
    format!("/info/refs?service={service}")
}

pub(super) struct HttpSubtransport {
    session: Arc<Session>,
    agent: Agent,
    /// The CA given holds no certificate: every https request fails, saying so.
    empty_ca: bool,
    /// Where the GET was redirected to, which the POSTs of this connection go to.
    redirected: Arc<Mutex<Option<SourceUrl>>>,
}

impl HttpSubtransport {
    pub fn new(session: Arc<Session>) -> HttpSubtransport {
        let roots = session.ca_pem.as_deref().map(weaver_net::http::root_certs);
        let empty_ca = matches!(roots, Some(None));
        // No redirect for the POSTs: the GET's are allowed per request.
        let agent = weaver_net::http::agent(roots.flatten(), REQUEST_TIMEOUT, 0);
        HttpSubtransport { session, agent, empty_ca, redirected: Arc::default() }
    }
}

impl SmartSubtransport for HttpSubtransport {
    fn action(&self, _url: &str, action: Service) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let service = match action {
            Service::UploadPackLs | Service::UploadPack => UPLOAD_PACK,
            Service::ReceivePackLs | Service::ReceivePack => RECEIVE_PACK,
        };
        // A fetch's session never pushes (nor a push's fetches): what libgit2 asks must be it.
        if service != self.session.service {
            return Err(git2::Error::from_str(&format!("{}: libgit2 asked for {service}", self.session.what())));
        }
        if self.session.url.scheme == Scheme::Https && self.empty_ca {
            return Err(git2::Error::from_str(
                &self
                    .session
                    .fail(
                        FetchFailure::Other,
                        format!(
                            "{}: the CA (ca.crt) holds no PEM certificate: check {}",
                            self.session.what(),
                            self.session.names.name(CredentialNames::CA)
                        ),
                    )
                    .to_string(),
            ));
        }
        Ok(Box::new(HttpStream {
            session: self.session.clone(),
            agent: self.agent.clone(),
            redirected: self.redirected.clone(),
            list: matches!(action, Service::UploadPackLs | Service::ReceivePackLs),
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
    redirected: Arc<Mutex<Option<SourceUrl>>>,
    /// The ref advertisement (GET), else a negotiation round (POST).
    list: bool,
    request: Vec<u8>,
    response: Option<ureq::BodyReader<'static>>,
}

/// The repository's URL, as requests are made to it.
fn base(url: &SourceUrl) -> String {
    let scheme = if url.scheme == Scheme::Http { "http" } else { "https" };
    let port = url.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{}{port}{}", url.host, url.path.trim_end_matches('/'))
}

/// Whether credentials for `from` may go to `to`: the same host, and https stays https (the
/// rule ureq follows for the redirect itself).
fn may_carry_credentials(from: &SourceUrl, to: &SourceUrl) -> bool {
    from.host == to.host && (from.scheme == to.scheme || to.scheme == Scheme::Https)
}

impl HttpStream {
    /// The repository the GET was redirected to, from the answer's final URL.
    fn follow(&self, final_url: &str) -> std::io::Result<()> {
        let session = &self.session;
        let advertisement = advertisement(session.service);
        if final_url == format!("{}{advertisement}", base(&session.url)) {
            return Ok(());
        }
        let moved = final_url.strip_suffix(advertisement.as_str()).map(SourceUrl::parse);
        let moved = match moved {
            Some(Ok(moved)) if !(session.url.scheme == Scheme::Https && moved.scheme != Scheme::Https) => moved,
            _ => {
                return Err(session.fail(
                    FetchFailure::Other,
                    format!(
                        "{}: the server redirected to {}, which is not a git repository's URL over https: give the \
                         repository's URL",
                        session.what(),
                        crate::redact_url(final_url)
                    ),
                ));
            }
        };
        tracing::debug!("{}: redirected to {}", session.what(), moved.display());
        *self.redirected.lock().unwrap_or_else(PoisonError::into_inner) = Some(moved);
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<ureq::BodyReader<'static>> {
        let session = &self.session;
        let remaining = session.remaining()?;
        let redirected = self.redirected.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let target = redirected.as_ref().unwrap_or(&session.url);
        let credentials = match may_carry_credentials(&session.url, target) {
            true => &session.credentials,
            false => &Credentials::None,
        };
        let authorization = match credentials {
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
                .get(format!("{}{}", base(&session.url), advertisement(session.service)))
                .header("User-Agent", "git/2.0 (weaver)")
                .header("Accept", "*/*");
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request
                .config()
                .timeout_global(Some(remaining))
                .max_redirects(MAX_REDIRECTS)
                .redirect_auth_headers(RedirectAuthHeaders::SameHost)
                .https_only(session.url.scheme == Scheme::Https)
                .build()
                .call()
        } else {
            let mut request = self
                .agent
                .post(format!("{}/{}", base(target), session.service))
                .header("User-Agent", "git/2.0 (weaver)")
                .header("Content-Type", format!("application/x-{}-request", session.service))
                .header("Accept", format!("application/x-{}-result", session.service));
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request.config().timeout_global(Some(remaining)).build().send(&self.request[..])
        };
        let response = result.map_err(|e| {
            if session.expired() {
                return session.timed_out();
            }
            let tls =
                matches!(&e, ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()));
            let private_ca = format!(
                "the TLS handshake failed: a server with a private CA needs it in {}",
                session.names.name(CredentialNames::CA)
            );
            let (failure, what_to_do) = match &e {
                _ if tls => (FetchFailure::Other, private_ca.as_str()),
                ureq::Error::HostNotFound => {
                    (FetchFailure::Unreachable, "the host name does not resolve: check the URL")
                }
                ureq::Error::RequireHttpsOnly(_) => (
                    FetchFailure::Other,
                    "the server redirected from https to plain http, which is refused: give the repository's https URL",
                ),
                ureq::Error::TooManyRedirects => {
                    (FetchFailure::Other, "the server redirected too many times: give the repository's final URL")
                }
                ureq::Error::ConnectionFailed | ureq::Error::Io(_) | ureq::Error::Timeout(_) => (
                    FetchFailure::Unreachable,
                    "check the URL, that the server is up and that the network lets the controller reach it",
                ),
                ureq::Error::Tls(_) | ureq::Error::Rustls(_) => (FetchFailure::Other, private_ca.as_str()),
                _ => (FetchFailure::Other, "check the URL and the server"),
            };
            session.fail(failure, format!("{}: {}: {what_to_do}", session.what(), transport_reason(&e)))
        })?;
        let status = response.status().as_u16();
        let refused = |failure, text: String| Err(session.fail(failure, format!("{}: {text}", session.what())));
        // Where the GET's redirects led, when to a host the credentials are not sent to.
        let landed = self.list.then(|| response.get_uri().to_string());
        let elsewhere = landed
            .as_deref()
            .and_then(|url| SourceUrl::parse(url.strip_suffix(advertisement(session.service).as_str())?).ok())
            .filter(|to| !may_carry_credentials(&session.url, to));
        match status {
            200 => {}
            401 | 403 if elsewhere.is_some() => {
                let to = elsewhere.as_ref().map(SourceUrl::display).unwrap_or_default();
                return refused(
                    FetchFailure::AuthenticationFailed,
                    format!(
                        "the server redirected to {to}, another host, which is never sent the Secret's credentials \
                         (HTTP {status}): give the repository's URL on that host"
                    ),
                );
            }
            401 | 403 => {
                let what_to_do = match session.credentials {
                    Credentials::None => {
                        "the repository needs credentials: name a Secret with username/password or a bearer token"
                            .to_string()
                    }
                    Credentials::Bearer(_) => format!("check {}", session.names.name(CredentialNames::BEARER)),
                    _ => format!("check {}", session.names.name(CredentialNames::PASSWORD)),
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
            300..=399 => {
                return refused(
                    FetchFailure::Other,
                    format!(
                        "the server redirected a request after the first (HTTP {status}), which git does not follow: \
                         give the repository's final URL"
                    ),
                );
            }
            _ => return refused(FetchFailure::Other, format!("the server answered HTTP {status}")),
        }
        if let Some(landed) = &landed {
            self.follow(landed)?;
        }
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let expected = match self.list {
            true => format!("application/x-{}-advertisement", session.service),
            false => format!("application/x-{}-result", session.service),
        };
        if !content_type.starts_with(expected.as_str()) {
            return refused(
                FetchFailure::Other,
                format!(
                    "the server answered {content_type:?}, not {expected}: it is not a smart git HTTP server (or, for a push, it does not take pushes)"
                ),
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
        let Some(response) = self.response.as_mut() else { return Ok(0) };
        match response.read(buf) {
            Ok(n) => self.session.received(n).map(|()| n),
            // ureq ends a request at its timeout, which is the fetch's deadline.
            Err(_) if self.session.expired() => Err(self.session.timed_out()),
            Err(e) => Err(self.session.fail(
                FetchFailure::Unreachable,
                format!("{}: the connection broke: {}: check the network and retry", self.session.what(), e),
            )),
        }
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
