//! HTTP(S) for chart repositories and registries: the machine's credentials and CA for each
//! repository, and the challenges servers answer 401 with (Basic, and the OCI distribution
//! spec's Bearer token flow). Credentials never come from the repository and never appear in
//! a message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::Agent;

use super::registry_login;
use crate::registry_limits::{RegistryLimits, TagLimits};
use crate::signatures::Part;
use weaver_core::error::{Error, Result};

/// Most a response may hold: a chart repository's index (bitnami's is about 30 MiB) or an archive.
pub(crate) const MAX_BODY: u64 = 200 << 20;

/// Most a token service's answer may hold (a JWT of a few KiB, in JSON).
const MAX_TOKEN: u64 = 1 << 20;

/// Token services on another host than their registry that receive its credentials without
/// the user's `tokenRealms`: Docker Hub's (`docker login`'s password goes to auth.docker.io)
/// and GitLab.com's (registry.gitlab.com's realm is gitlab.com/jwt/auth).
const KNOWN_TOKEN_REALMS: &[(&str, &str)] = &[
    ("https://registry-1.docker.io", "https://auth.docker.io"),
    ("https://registry.gitlab.com", "https://gitlab.com"),
];

/// What the machine says about a repository: `WEAVER_REPOSITORY_<NAME>_USERNAME`, `_PASSWORD`
/// and `_CA_FILE` for a repository of `repositories:`, else the first entry of the credentials
/// file (`WEAVER_CREDENTIALS`, default `~/.config/weaver/credentials.yaml`) whose `url` the
/// repository's URL starts with, else for an OCI registry, the login helm's or docker's
/// registry config holds for its host (see [`super::registry_login`]).
///
/// In the cluster, an EnvironmentSync's `spec.chartCredentials` give entries of the same kind,
/// read from its Secrets ([`Machine::in_cluster`]): the fields the file has no way to give (a
/// bearer token, a CA and a client certificate held in memory) are theirs.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    /// The prefix of the repository URLs the entry is for.
    #[serde(default)]
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    ca_file: Option<PathBuf>,
    /// Origins (`https://auth.example.com`) of token services on another host than the
    /// registry that may receive these credentials when its Bearer challenge names them.
    #[serde(default)]
    token_realms: Vec<String>,
    /// Sent as `Authorization: Bearer` instead of a username and password.
    #[serde(skip)]
    pub bearer_token: Option<String>,
    /// The CA bundle (PEM) the repository's certificate is checked against, instead of the
    /// public web roots.
    #[serde(skip)]
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its private key (PEM), for a server that asks for one.
    #[serde(skip)]
    pub client_certificate: Option<(Vec<u8>, Vec<u8>)>,
    /// Where they were read (`Secret team/charts (spec.chartCredentials[0])`), for a refusal.
    #[serde(skip)]
    pub from: Option<String>,
}

/// The password, token and key shown as `[redacted]`, as [`crate::Credentials`] shows its secrets.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |given: bool| given.then_some("[redacted]");
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &hidden(self.password.is_some()))
            .field("ca_file", &self.ca_file)
            .field("token_realms", &self.token_realms)
            .field("bearer_token", &hidden(self.bearer_token.is_some()))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_certificate", &hidden(self.client_certificate.is_some()))
            .field("from", &self.from)
            .finish()
    }
}

impl Credentials {
    /// An entry for the repositories whose URL begins `url`, read `from` a Secret, which its
    /// public fields fill.
    pub fn given(url: String, from: String) -> Credentials {
        Credentials { url, from: Some(from), ..Credentials::default() }
    }

    /// Whether they log in (a password or a token), rather than only set a CA or token realms.
    fn log_in(&self) -> bool {
        self.username.is_some() || self.password.is_some() || self.bearer_token.is_some()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    repositories: Vec<Credentials>,
}

/// How a [`Machine`] reads an environment variable.
type Variables = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The credentials file's entries, and how to read environment variables.
pub struct Machine {
    file: Vec<Credentials>,
    registry_configs: Vec<PathBuf>,
    /// Docker configs held in memory (a tenant's pull Secrets), read before the files.
    held: Vec<registry_login::HeldConfig>,
    var: Variables,
    /// [`Machine::in_cluster`] (and [`Machine::anonymous`]): a tenant's Secrets or nothing, never
    /// the machine's; a refusal cannot be mended with this machine's credentials.
    in_cluster: bool,
    /// Bounds on what registries answer (the `WEAVER_REGISTRY_*` variables).
    pub(crate) registry_limits: RegistryLimits,
}

impl Machine {
    /// Reads the credentials file, when there is one, with `var` for environment variables.
    pub fn load(var: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Result<Machine> {
        let (path, explicit) = match var("WEAVER_CREDENTIALS") {
            Some(path) => (PathBuf::from(path), true),
            None => match var("HOME") {
                Some(home) => (Path::new(&home).join(".config/weaver/credentials.yaml"), false),
                None => {
                    let registry_configs = registry_login::config_files(&var);
                    return Ok(Machine {
                        file: Vec::new(),
                        registry_configs,
                        held: Vec::new(),
                        registry_limits: RegistryLimits::from_variables(&var)?,
                        var: Box::new(var),
                        in_cluster: false,
                    });
                }
            },
        };
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => weaver_yaml::from_str_as::<CredentialsFile>(&path, &text, "invalid credentials file")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => CredentialsFile::default(),
            Err(e) => {
                return Err(Error::io("read credentials file", &path, e)
                    .with_help("WEAVER_CREDENTIALS names the chart repositories' credentials file"));
            }
        };
        let registry_configs = registry_login::config_files(&var);
        Ok(Machine {
            file: file.repositories,
            registry_configs,
            held: Vec::new(),
            registry_limits: RegistryLimits::from_variables(&var)?,
            var: Box::new(var),
            in_cluster: false,
        })
    }

    /// No credentials and no CA but the public roots: the controller's, whose machine's
    /// variables and files are not its tenants' to use.
    pub fn anonymous() -> Machine {
        Machine::held(Vec::new())
    }

    /// Only the logins of `configs` (a tenant's pull Secrets); nothing of the machine's.
    pub fn held(configs: Vec<registry_login::HeldConfig>) -> Machine {
        Machine::in_cluster(Vec::new(), configs)
    }

    /// Only what a tenant's Secrets give: `entries` matched by URL prefix as the credentials
    /// file's are, then for an OCI registry none of them names, the logins of `configs`;
    /// nothing of the machine's.
    pub fn in_cluster(entries: Vec<Credentials>, configs: Vec<registry_login::HeldConfig>) -> Machine {
        Machine {
            file: entries,
            registry_configs: Vec::new(),
            held: configs,
            var: Box::new(|_| None),
            in_cluster: true,
            registry_limits: RegistryLimits::of_process(),
        }
    }

    /// The credentials for `repository` (its URL: `https://…` or `oci://host/path`), named
    /// `repository_name` in `repositories:` if it is one of them.
    fn credentials(&self, repository: &str, repository_name: Option<&str>) -> Result<Credentials> {
        if let Some(name) = repository_name {
            let prefix = variable_prefix(name);
            let from_env = Credentials {
                url: repository.to_string(),
                username: (self.var)(&format!("{prefix}USERNAME")),
                password: (self.var)(&format!("{prefix}PASSWORD")),
                ca_file: (self.var)(&format!("{prefix}CA_FILE")).map(PathBuf::from),
                ..Credentials::default()
            };
            if from_env.username.is_some() || from_env.password.is_some() || from_env.ca_file.is_some() {
                return Ok(from_env);
            }
        }
        let url = repository;
        let starts = |prefix: &str| {
            let prefix = prefix.trim_end_matches('/');
            url == prefix || url.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
        };
        let found = self.file.iter().find(|c| !c.url.is_empty() && starts(&c.url));
        // An entry without a username, password or token (its CA, client certificate or
        // `tokenRealms` only) takes the registry's login.
        if let Some(found) = found
            && (found.log_in() || !url.starts_with("oci://"))
        {
            return Ok(found.clone());
        }
        let settings = found.cloned().unwrap_or_default();
        let Some(registry) = url.strip_prefix("oci://") else { return Ok(settings) };
        let host = registry.split('/').next().unwrap_or(registry);
        let mut login = None;
        for held in &self.held {
            login = held.login(host)?.map(|login| (login, Some(held.name().to_string())));
            if login.is_some() {
                break;
            }
        }
        let login = match login {
            Some(login) => Some(login),
            None => registry_login::find(&self.registry_configs, host)?.map(|login| (login, None)),
        };
        Ok(match login {
            None => settings,
            Some((login, from)) => Credentials {
                url: url.to_string(),
                username: Some(login.username),
                password: Some(login.password),
                from: from.or(settings.from.clone()),
                ..settings
            },
        })
    }
}

/// One repository's connection: its agent (with its CA) and credentials, and the tokens its
/// registry handed out, by scope.
pub struct Connection {
    agent: Agent,
    credentials: Credentials,
    /// Where the credentials may be sent: the repository's scheme, host and port.
    origin: String,
    tokens: HashMap<String, String>,
    /// The answer to a challenge that the server last took: sent up front with the next
    /// request, so that a request is not sent twice (an upload's body among them) each time.
    accepted: Option<String>,
    /// The repository, for messages.
    pub repository: String,
    /// Its name in `repositories:`, if it is one of them: where its credentials come from.
    repository_name: Option<String>,
    /// Whether the machine's credentials were out of reach (the controller's pulls): see
    /// [`Machine::in_cluster`].
    in_cluster: bool,
    /// What a refusal (401, 403, the token's included) says to do, when the caller knows
    /// better than the chart repositories' advice (an image registry's pull Secrets).
    refusal_help: Option<String>,
    /// Why the credentials were kept from a token service, told with a refusal.
    withheld: Option<String>,
    /// Bounds on a tag list of this repository.
    pub(crate) tag_limits: TagLimits,
    /// The longest its tag list's pages may take together (a chart's resolution).
    pub(crate) list_time: Duration,
    /// When every request of it must have ended (a controller's pull, within `spec.timeout`):
    /// each is sent with what is left, and none after.
    deadline: Option<Instant>,
}

/// A response, read whole.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The target of a `Link: <…>; rel="next"` header (RFC 8288), as registries paginate.
    pub next: Option<String>,
    /// The `Location` header, a relative one resolved against the repository's origin: where
    /// a registry takes an upload.
    pub location: Option<String>,
    /// The `ETag` header: what a conditional request (`If-None-Match`) sends back.
    pub etag: Option<String>,
    /// The `Docker-Content-Digest` header: the digest of the manifest a registry answered with.
    pub digest: Option<String>,
    /// The wait the `Retry-After` header of a 429 or 503 asks for (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// The body was over the limit [`Connection::send_bounded`] was given, and is not read.
    pub over_limit: bool,
}

impl Response {
    /// A response of which only the status matters, for an error's message.
    pub fn status_only(status: u16) -> Response {
        Response {
            status,
            body: Vec::new(),
            next: None,
            location: None,
            etag: None,
            digest: None,
            retry_after: None,
            over_limit: false,
        }
    }
}

/// What a request does besides GET.
#[derive(Clone, Copy)]
pub enum Method<'a> {
    Get,
    /// Whether a blob or manifest is there, without its content.
    Head,
    /// `(content type, body)`.
    Post(&'a str, &'a [u8]),
    Put(&'a str, &'a [u8]),
}

impl Connection {
    /// `repository` is as `Machine::credentials` takes it; `base_url` is its HTTP(S) URL (an
    /// OCI registry's `https://host`).
    pub fn open(
        machine: &Machine,
        repository: &str,
        repository_name: Option<&str>,
        base_url: &str,
    ) -> Result<Connection> {
        Connection::open_sharing(machine, repository, repository_name, base_url, None)
    }

    /// [`Connection::open`], taking the agent (its pool of connections, whose buffers cost
    /// some 256 KiB each) from `agents` when one for the same origin and CA is there, and
    /// leaving its own there otherwise: the many repositories of one registry share a pool.
    pub fn open_sharing(
        machine: &Machine,
        repository: &str,
        repository_name: Option<&str>,
        base_url: &str,
        agents: Option<&std::sync::Mutex<HashMap<String, Agent>>>,
    ) -> Result<Connection> {
        let credentials = machine.credentials(repository, repository_name)?;
        let key = format!("{} {:?} {}", origin(base_url), credentials.ca_file, held_tls_digest(&credentials));
        let shared = agents.and_then(|agents| agents.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned());
        if let Some(agent) = shared {
            return Ok(Connection::with(agent, credentials, machine, repository, repository_name, base_url));
        }
        let roots = match (&credentials.ca_pem, &credentials.ca_file) {
            (None, None) => None,
            (Some(pem), _) => Some(weaver_net::http::root_certs(pem).ok_or_else(|| {
                Error::new(format!("the CA of repository {repository} holds no PEM certificate"))
                    .with_help(held_help(&credentials, "ca.crt"))
            })?),
            (None, Some(ca_file)) => {
                let pem = std::fs::read(ca_file).map_err(|e| {
                    Error::io("read CA file", ca_file, e).with_help(format!("the CA of repository {repository}"))
                })?;
                let roots = weaver_net::http::root_certs(&pem).ok_or_else(|| {
                    Error::new(format!("CA file {} holds no PEM certificate", ca_file.display()))
                        .with_help(format!("the CA of repository {repository}"))
                })?;
                Some(roots)
            }
        };
        let client_cert = match &credentials.client_certificate {
            None => None,
            Some((certificate, key)) => Some(weaver_net::http::client_cert(certificate, key).ok_or_else(|| {
                Error::new(format!(
                    "the client certificate of repository {repository} is not a PEM certificate and private key"
                ))
                .with_help(held_help(&credentials, "tls.crt` and `tls.key"))
            })?),
        };
        // ureq's default number of redirects, as before.
        let agent = weaver_net::http::agent_presenting(roots, client_cert, Duration::from_secs(300), 10);
        if let Some(agents) = agents {
            agents.lock().unwrap_or_else(|e| e.into_inner()).insert(key, agent.clone());
        }
        Ok(Connection::with(agent, credentials, machine, repository, repository_name, base_url))
    }

    fn with(
        agent: Agent,
        credentials: Credentials,
        machine: &Machine,
        repository: &str,
        repository_name: Option<&str>,
        base_url: &str,
    ) -> Connection {
        Connection {
            agent,
            credentials,
            origin: origin(base_url).to_string(),
            tokens: HashMap::new(),
            accepted: None,
            repository: repository.to_string(),
            repository_name: repository_name.map(str::to_string),
            in_cluster: machine.in_cluster,
            refusal_help: None,
            withheld: None,
            tag_limits: machine.registry_limits.repository,
            list_time: machine.registry_limits.check_time,
            deadline: None,
        }
    }

    /// Every request from now on ended by `deadline`, a slow or trickling server's included.
    pub fn with_deadline(mut self, deadline: Instant) -> Connection {
        self.deadline = Some(deadline);
        self
    }

    /// `timeout`, shortened to what is left before the deadline; an error naming `url` when
    /// nothing is.
    fn within_deadline(&self, url: &str, timeout: Option<Duration>) -> Result<Option<Duration>> {
        let Some(deadline) = self.deadline else { return Ok(timeout) };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(format!(
                "{}: no time is left to ask {} (the pull's deadline passed)",
                self.repository,
                shown(url)
            )));
        }
        Ok(Some(timeout.map_or(left, |timeout| timeout.min(left))))
    }

    /// What a refusal says to do instead of the chart repositories' advice.
    pub fn with_refusal_help(mut self, help: String) -> Connection {
        self.refusal_help = Some(help);
        self
    }

    /// GETs `url` with `accept`, answering a Basic or Bearer challenge once.
    pub fn get(&mut self, url: &str, accept: &str) -> Result<Response> {
        self.send(Method::Get, url, accept)
    }

    /// Sends a request to `url` with `accept`, answering a Basic or Bearer challenge once.
    pub fn send(&mut self, method: Method<'_>, url: &str, accept: &str) -> Result<Response> {
        self.send_with(method, url, accept, &[])
    }

    /// [`Connection::send`] with more request headers (`If-None-Match`).
    pub fn send_with(
        &mut self,
        method: Method<'_>,
        url: &str,
        accept: &str,
        extra: &[(&str, String)],
    ) -> Result<Response> {
        let response = self.send_bounded(method, url, accept, extra, MAX_BODY, None)?;
        match response.over_limit {
            true => Err(self.failed(url, &format!("the answer is over {MAX_BODY} bytes"))),
            false => Ok(response),
        }
    }

    /// What a `GET` of `url` read within a bound ([`Connection::send_bounded`]) found of a
    /// signature: its body, none (404), or a body over the bound, which is the signature's fault
    /// ([`crate::signatures`] refuses it); any other status is the registry's error.
    pub fn found(&self, url: &str, response: Response) -> Result<Part> {
        match response.status {
            200 if response.over_limit => Ok(Part::OverBound),
            200 => Ok(Part::Body(response.body)),
            404 => Ok(Part::Missing),
            _ => Err(self.status_error(url, &response)),
        }
    }

    /// [`Connection::send_with`], not reading a body of more than `max_body` bytes (the
    /// response says it is over), and each request (a token's too) ended after `timeout`
    /// when given, rather than the agent's five minutes. Credentials
    /// go only to the repository's origin, judged at each hop: the agent drops `Authorization`
    /// on a redirect, and a challenge is answered only when both the URL asked (where the
    /// answer is sent) and the URL that answered it (after redirects) are the origin's.
    pub fn send_bounded(
        &mut self,
        method: Method<'_>,
        url: &str,
        accept: &str,
        extra: &[(&str, String)],
        max_body: u64,
        timeout: Option<Duration>,
    ) -> Result<Response> {
        let same_origin = origin(url) == self.origin;
        let mut authorization = self.accepted.clone().filter(|_| same_origin);
        let mut answered = false;
        loop {
            let timeout = self.within_deadline(url, timeout)?;
            let mut headers = vec![("Accept", accept.to_string())];
            headers.extend(extra.iter().cloned());
            if let Some(value) = &authorization {
                headers.push(("Authorization", value.clone()));
            } else if same_origin && let Some(given) = self.authorization() {
                // Chart repositories expect credentials up front, as helm sends them.
                headers.push(("Authorization", given));
            }
            let sent = match method {
                Method::Get => with_headers(self.agent.get(url), &headers, timeout).call(),
                Method::Head => with_headers(self.agent.head(url), &headers, timeout).call(),
                Method::Post(content_type, body) => {
                    with_headers(self.agent.post(url), &headers, timeout).content_type(content_type).send(body)
                }
                Method::Put(content_type, body) => {
                    with_headers(self.agent.put(url), &headers, timeout).content_type(content_type).send(body)
                }
            };
            let mut response = sent.map_err(|e| self.failed(url, &e.to_string()))?;
            let status = response.status().as_u16();
            let answered_at = ureq::ResponseExt::get_uri(&response).to_string();
            // One answer to one challenge: a second 401 is the server's verdict. (A token
            // taken before may lack this request's scope: it is challenged, and answered.)
            // The answer goes to `url`: a foreign host that redirected to the registry would
            // get it.
            if status == 401 && !answered && same_origin && origin(&answered_at) == self.origin {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if let Some(value) = self.answer(&challenge, timeout)? {
                    authorization = Some(value);
                    answered = true;
                    continue;
                }
            }
            if answered && status != 401 && status != 403 {
                self.accepted = authorization;
            }
            let next = response
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(weaver_net::http::next_link)
                .map(|target| resolve_reference(&self.origin, &target));
            let location = (response.headers().get("location").and_then(|v| v.to_str().ok()))
                .map(|target| resolve_reference(&self.origin, target));
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let etag = header("etag");
            let digest = header("docker-content-digest");
            let retry_after =
                header("retry-after").and_then(|v| weaver_net::retry::retry_after(&v, jiff::Timestamp::now()));
            let (body, over_limit) = match response.body_mut().with_config().limit(max_body).read_to_vec() {
                Ok(body) => (body, false),
                Err(ureq::Error::BodyExceedsLimit(_)) => (Vec::new(), true),
                Err(e) => return Err(self.failed(url, &e.to_string())),
            };
            return Ok(Response { status, body, next, location, etag, digest, retry_after, over_limit });
        }
    }

    /// An error for a request that got no usable answer.
    pub fn failed(&self, url: &str, reason: &str) -> Error {
        // The client's reason may quote the URL whole (ureq's "bad uri"): its query goes too.
        let reason = match url.split_once('?') {
            Some((_, query)) if !query.is_empty() => reason.replace(query, "…"),
            _ => reason.to_string(),
        };
        Error::new(format!("cannot fetch {}: {reason}", shown(url))).with_help(format!(
            "repository {}; check its URL, the network, and the machine's credentials for it",
            self.repository
        ))
    }

    /// An error for an answer with an unexpected status.
    pub fn status_error(&self, url: &str, response: &Response) -> Error {
        let help = match response.status {
            401 | 403 if let Some(help) = &self.refusal_help => help.clone(),
            401 | 403 if self.in_cluster => match &self.credentials.from {
                Some(from) if self.credentials.log_in() => format!(
                    "repository {} refused the credentials of {from}: check them (see docs/src/guides/gitops.md, Private charts)",
                    self.repository
                ),
                _ => format!(
                    "repository {} refused an anonymous request: in the cluster, a chart's credentials come from a Secret the EnvironmentSync's spec.chartCredentials names for a prefix of its URL, and none does (see docs/src/guides/gitops.md, Private charts)",
                    self.repository
                ),
            },
            401 | 403 => format!(
                "repository {} refused the credentials (or asked for some): {}",
                self.repository,
                credentials_help(&self.repository, self.repository_name.as_deref())
            ),
            404 => format!(
                "repository {} has no such file: check the repository URL and the chart's name",
                self.repository
            ),
            _ => format!("repository {}", self.repository),
        };
        let help = match (&self.withheld, response.status) {
            (Some(withheld), 401 | 403) => format!("{help}; {withheld}"),
            _ => help,
        };
        Error::new(format!("{} answered HTTP {}", shown(url), response.status)).with_help(help)
    }

    /// What is sent up front: the bearer token, else Basic with the username and password.
    fn authorization(&self) -> Option<String> {
        match &self.credentials.bearer_token {
            Some(token) => Some(format!("Bearer {token}")),
            None => self.basic(),
        }
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine;
        let username = self.credentials.username.as_deref()?;
        let password = self.credentials.password.as_deref().unwrap_or_default();
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))))
    }

    /// The Authorization header that answers `challenge`, if one can: Basic with the
    /// credentials, or a token from a Bearer challenge's realm (anonymous without credentials).
    fn answer(&mut self, challenge: &str, timeout: Option<Duration>) -> Result<Option<String>> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(self.basic());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let params = challenge_params(params);
        let Some(realm) = params.get("realm") else { return Ok(None) };
        let scope = params.get("scope").cloned().unwrap_or_default();
        if let Some(token) = self.tokens.get(&scope) {
            return Ok(Some(format!("Bearer {token}")));
        }
        let mut query: Vec<String> = Vec::new();
        for key in ["service", "scope"] {
            if let Some(value) = params.get(key) {
                query.push(format!("{key}={}", percent_encode(value)));
            }
        }
        let url = if query.is_empty() { realm.clone() } else { format!("{realm}?{}", query.join("&")) };
        let timeout = self.within_deadline(&url, timeout)?;
        let mut request = with_headers(self.agent.get(&url), &[], timeout);
        let refusal = self.realm_refusal(realm);
        if refusal.is_none()
            && let Some(basic) = self.basic()
        {
            request = request.header("Authorization", basic);
        }
        // Else the token is asked for anonymously (enough for a public repository), and a
        // refusal says why the credentials were not sent.
        self.withheld = refusal.filter(|_| self.credentials.username.is_some());
        let mut response = request.call().map_err(|e| self.failed(realm, &e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(self.status_error(realm, &Response::status_only(status)));
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response.body_mut().with_config().limit(MAX_TOKEN).read_to_vec();
        let body = body.map_err(|e| self.failed(realm, &e.to_string()))?;
        let token: Token = serde_json::from_slice(&body)
            .map_err(|_| self.failed(realm, "the token service's answer is not a token (JSON with `token`)"))?;
        let Some(token) = token.token.or(token.access_token) else {
            return Err(self.failed(realm, "the token service's answer has no `token`"));
        };
        self.tokens.insert(scope, token.clone());
        Ok(Some(format!("Bearer {token}")))
    }

    /// Why the credentials may not go to the token service `realm`, if they may not: it is
    /// plain http and the registry https (Docker sends them; weaver does not, as anyone on
    /// the path would read them), or it is on another origin than the registry that neither
    /// the credentials' `tokenRealms` nor [`KNOWN_TOKEN_REALMS`] name (Docker sends them to
    /// any realm; a registry, or whoever answers for it after a redirect, could then collect
    /// them).
    fn realm_refusal(&self, realm: &str) -> Option<String> {
        let realm_origin = origin(realm);
        if realm_origin == self.origin {
            return None;
        }
        if realm_origin.starts_with("http://") && !self.origin.starts_with("http://") {
            return Some(format!(
                "the credentials were not sent to its token service {realm_origin}, which is plain http while the registry is https"
            ));
        }
        let trusted = |allowed: &str| allowed.trim_end_matches('/') == realm_origin;
        let known = KNOWN_TOKEN_REALMS.iter().any(|(registry, realm)| *registry == self.origin && trusted(realm));
        if known || self.credentials.token_realms.iter().any(|allowed| trusted(allowed)) {
            return None;
        }
        if self.in_cluster {
            // The controller's credentials are Secrets: no credentials file to opt in with.
            return Some(format!(
                "the credentials were not sent to its token service {realm_origin}, on another host than the registry: in the cluster, a Secret's password goes only to its registry's origin and the built-in token services (Docker Hub's, GitLab.com's); a Secret cannot name others"
            ));
        }
        Some(format!(
            "the credentials were not sent to its token service {realm_origin}, on another host than the registry: if that service is the registry's, name it in `tokenRealms` of the registry's entry in the credentials file (see docs/src/concepts/remote-charts.md)"
        ))
    }
}

/// What tells apart the CAs and client certificates held in memory (a Secret's), so that
/// connections share an agent only with the same ones: their sha256, or nothing.
fn held_tls_digest(credentials: &Credentials) -> String {
    use sha2::{Digest, Sha256};
    if credentials.ca_pem.is_none() && credentials.client_certificate.is_none() {
        return String::new();
    }
    let (certificate, key) = credentials.client_certificate.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())).unzip();
    let mut digest = Sha256::new();
    for part in [credentials.ca_pem.as_deref(), certificate, key] {
        digest.update(part.map_or(0, <[u8]>::len).to_le_bytes());
        digest.update(part.unwrap_or_default());
    }
    hex::encode(digest.finalize())
}

/// The help of an error in what `credentials` hold: where they were read, and the key.
fn held_help(credentials: &Credentials, key: &str) -> String {
    match &credentials.from {
        Some(from) => format!("the `{key}` of {from}"),
        None => format!("the `{key}` of the repository's credentials"),
    }
}

/// `WEAVER_REPOSITORY_<NAME>_`: how the variables of a repository of `repositories:` begin.
fn variable_prefix(name: &str) -> String {
    let upper: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("WEAVER_REPOSITORY_{upper}_")
}

/// Where the machine's credentials for `repository` (named `repository_name` in
/// `repositories:`, if it is one of them) are looked for, in `Machine::credentials`' order:
/// the help of every error that asks for them.
pub fn credentials_help(repository: &str, repository_name: Option<&str>) -> String {
    let mut places = Vec::new();
    if let Some(name) = repository_name {
        let prefix = variable_prefix(name);
        places.push(format!("{prefix}USERNAME and {prefix}PASSWORD"));
    }
    places.push(format!("an entry of the credentials file (WEAVER_CREDENTIALS) whose url begins {repository}"));
    if let Some(registry) = repository.strip_prefix("oci://") {
        let host = registry.split('/').next().unwrap_or(registry);
        places.push(format!("a login: helm registry login {host} (or docker login {host})"));
    }
    format!("set them in {} (see docs/src/concepts/remote-charts.md)", places.join(", or "))
}

/// `request` with `headers`, ended after `timeout` when given.
fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    headers: &[(&str, String)],
    timeout: Option<Duration>,
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match timeout {
        Some(timeout) => request.config().timeout_global(Some(timeout)).build(),
        None => request,
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// `reference` (absolute, or a path from the root as registries write them) resolved against
/// `base`'s origin: the registry's, even when a CDN it redirected to answered, so that a
/// relative link never makes the next request's URL the CDN's.
fn resolve_reference(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        reference.to_string()
    } else {
        format!("{}/{}", origin(base), reference.trim_start_matches('/'))
    }
}

/// The `key="value"` pairs of a `WWW-Authenticate` challenge (RFC 7235: values quoted or tokens).
fn challenge_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => after.split_once(',').map_or((after, ""), |(v, n)| (v, n)),
        };
        params.insert(key, value.trim().to_string());
        rest = next.trim_start().trim_start_matches(',');
    }
    params
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `url` as errors show it: without its query, where a registry's upload location or a signed
/// download URL carries its credentials (a pre-signed object storage signature).
pub(crate) fn shown(url: &str) -> &str {
    url.split_once('?').map_or(url, |(before, _)| before)
}

#[cfg(test)]
mod tests {
    use super::*;

    use weaver_test_support::http_server::TestServer;

    const PASSWORD: &str = "pa55-of-the-registry";

    /// A machine whose credentials file gives `origin`'s registry a user and [`PASSWORD`],
    /// `token_realms` trusted.
    fn machine_for(origin: &str, token_realms: Vec<String>) -> Machine {
        Machine {
            registry_configs: Vec::new(),
            held: Vec::new(),
            file: vec![Credentials {
                url: format!("oci://{}", origin.trim_start_matches("http://")),
                username: Some("robot".into()),
                password: Some(PASSWORD.into()),
                token_realms,
                ..Credentials::default()
            }],
            var: Box::new(|_| None),
            in_cluster: false,
            registry_limits: RegistryLimits::default(),
        }
    }

    /// Whether any of what `server` received carries the registry's password, or Basic at all.
    fn got_credentials(server: &TestServer) -> bool {
        use base64::Engine;
        let secret = base64::engine::general_purpose::STANDARD.encode(format!("robot:{PASSWORD}"));
        server.received().iter().any(|r| r.authorization.starts_with("Basic") || r.authorization.contains(&secret))
    }

    /// A host that asks for a token of its own realm and serves a tag list with it.
    fn token_host() -> TestServer {
        TestServer::start(|port, request| match request.path.as_str() {
            path if path.starts_with("/token") => ("200 OK", String::new(), br#"{"token":"t0ken"}"#.to_vec()),
            _ if request.authorization == "Bearer t0ken" => ("200 OK", String::new(), br#"{"tags":["1.0"]}"#.to_vec()),
            _ => {
                let challenge =
                    format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"x\"\r\n");
                ("401 Unauthorized", challenge, Vec::new())
            }
        })
    }

    #[test]
    fn a_redirect_to_another_origin_and_its_challenge_get_no_credentials() {
        let foreign = token_host();
        let elsewhere = format!("{}/v2/shop/web/tags/list", foreign.origin());
        let registry =
            TestServer::start(move |_, _| ("307 Temporary Redirect", format!("Location: {elsewhere}\r\n"), Vec::new()));
        let machine = machine_for(&registry.origin(), Vec::new());
        let repository = format!("oci://127.0.0.1:{}/shop/web", registry.port);
        let mut connection = Connection::open(&machine, &repository, None, &registry.origin()).unwrap();
        let url = format!("{}/v2/shop/web/tags/list", registry.origin());
        let response = connection.get(&url, "application/json").unwrap();
        // The foreign host's challenge is not answered: its 401 is the answer.
        assert_eq!(response.status, 401);
        assert!(got_credentials(&registry), "the registry itself gets them: {:?}", registry.received());
        assert!(!got_credentials(&foreign), "{:?}", foreign.received());
        assert!(foreign.received().iter().all(|r| r.authorization.is_empty()), "{:?}", foreign.received());
    }

    #[test]
    fn a_foreign_host_redirecting_to_the_registry_gets_no_answer_to_its_challenge() {
        // The registry challenges (Bearer, its own realm; Basic for the password itself).
        for basic in [false, true] {
            let registry = match basic {
                false => token_host(),
                true => TestServer::start(|_, request| match request.authorization.starts_with("Basic") {
                    true => ("200 OK", String::new(), br#"{"tags":["1.0"]}"#.to_vec()),
                    false => ("401 Unauthorized", "WWW-Authenticate: Basic realm=\"r\"\r\n".into(), Vec::new()),
                }),
            };
            let back = format!("{}/v2/shop/web/tags/list", registry.origin());
            let foreign =
                TestServer::start(move |_, _| ("307 Temporary Redirect", format!("Location: {back}\r\n"), Vec::new()));
            let machine = machine_for(&registry.origin(), Vec::new());
            let repository = format!("oci://127.0.0.1:{}/shop/web", registry.port);
            let mut connection = Connection::open(&machine, &repository, None, &registry.origin()).unwrap();
            let url = format!("{}/v2/shop/web/tags/list", foreign.origin());
            // The registry's challenge is not answered: the answer would go to the foreign host.
            assert_eq!(connection.get(&url, "application/json").unwrap().status, 401);
            assert!(foreign.received().iter().all(|r| r.authorization.is_empty()), "{:?}", foreign.received());
            assert!(!got_credentials(&registry), "{:?}", registry.received());
        }
    }

    #[test]
    fn a_relative_link_from_a_host_the_registry_redirected_to_is_the_registry_s() {
        let cdn = TestServer::start(|_, _| {
            (
                "200 OK",
                "Link: </v2/shop/web/tags/list?last=1.0>; rel=\"next\"\r\n".into(),
                br#"{"tags":["1.0"]}"#.to_vec(),
            )
        });
        let elsewhere = format!("{}/pages/1", cdn.origin());
        let registry =
            TestServer::start(move |_, _| ("307 Temporary Redirect", format!("Location: {elsewhere}\r\n"), Vec::new()));
        let repository = format!("oci://127.0.0.1:{}/shop/web", registry.port);
        let mut connection = Connection::open(&Machine::anonymous(), &repository, None, &registry.origin()).unwrap();
        let response = connection.get(&format!("{}/v2/shop/web/tags/list", registry.origin()), "application/json");
        let next = response.unwrap().next.unwrap();
        assert_eq!(next, format!("{}/v2/shop/web/tags/list?last=1.0", registry.origin()));
    }

    #[test]
    fn a_token_realm_on_another_origin_gets_the_password_only_when_named() {
        let realm = token_host();
        let challenge = format!("WWW-Authenticate: Bearer realm=\"{}/token\",service=\"x\"\r\n", realm.origin());
        let registry = TestServer::start(move |_, request| match request.authorization.as_str() {
            "Bearer t0ken" => ("200 OK", String::new(), br#"{"tags":["1.0"]}"#.to_vec()),
            _ => ("401 Unauthorized", challenge.clone(), Vec::new()),
        });
        let repository = format!("oci://127.0.0.1:{}/shop/web", registry.port);
        let url = format!("{}/v2/shop/web/tags/list", registry.origin());
        let machine = machine_for(&registry.origin(), Vec::new());
        let mut connection = Connection::open(&machine, &repository, None, &registry.origin()).unwrap();
        // Asked anonymously, the token service hands a token (a public repository's).
        assert_eq!(connection.get(&url, "application/json").unwrap().status, 200);
        assert!(!got_credentials(&realm), "{:?}", realm.received());
        // A refusal says why the credentials were kept back, and how to send them.
        let refusal = connection.status_error(&url, &Response::status_only(401)).help.unwrap();
        assert!(refusal.contains(&format!("not sent to its token service {}", realm.origin())), "{refusal}");
        assert!(refusal.contains("tokenRealms") && !refusal.contains(PASSWORD), "{refusal}");

        let machine = machine_for(&registry.origin(), vec![format!("{}/", realm.origin())]);
        let mut connection = Connection::open(&machine, &repository, None, &registry.origin()).unwrap();
        assert_eq!(connection.get(&url, "application/json").unwrap().status, 200);
        assert!(got_credentials(&realm), "named in tokenRealms, the realm gets them: {:?}", realm.received());
    }

    #[test]
    fn plain_http_never_gets_an_https_registry_s_credentials() {
        let machine =
            machine_for("https://reg.example", vec!["http://auth.example".into(), "http://reg.example".into()]);
        let connection = Connection::open(&machine, "oci://reg.example/shop/web", None, "https://reg.example").unwrap();
        for realm in ["http://reg.example/token", "http://auth.example/token"] {
            let refusal = connection.realm_refusal(realm).unwrap();
            assert!(refusal.contains("plain http while the registry is https"), "{refusal}");
        }
        assert_eq!(connection.realm_refusal("https://reg.example/token"), None);
        assert!(connection.realm_refusal("https://auth.example/token").is_some());
    }

    #[test]
    fn docker_hub_s_and_gitlab_s_token_services_are_built_in_and_the_cluster_s_refusal_names_no_credentials_file() {
        for (repository, origin, realm) in [
            ("oci://docker.io/library/nginx", "https://registry-1.docker.io", "https://auth.docker.io/token"),
            ("oci://registry.gitlab.com/group/web", "https://registry.gitlab.com", "https://gitlab.com/jwt/auth"),
        ] {
            let connection = Connection::open(&Machine::anonymous(), repository, None, origin).unwrap();
            assert_eq!(connection.realm_refusal(realm), None, "{origin}'s token service {realm} is its own");
            // Built in for its own registry only.
            let other = Connection::open(&Machine::anonymous(), "oci://reg.example/a", None, "https://reg.example");
            assert!(other.unwrap().realm_refusal(realm).is_some(), "{realm} is not reg.example's");
        }
        // In the cluster there is no credentials file: the refusal does not send the user to one.
        let held = registry_login::HeldConfig::parse(
            "Secret team/regcred",
            br#"{"auths": {"reg.example": {"auth": "cHVsbGVyOnA0c3M="}}}"#,
        )
        .unwrap();
        let machine = Machine::held(vec![held]);
        let cluster = Connection::open(&machine, "oci://reg.example/shop/web", None, "https://reg.example").unwrap();
        let refusal = cluster.realm_refusal("https://auth.example/token").unwrap();
        assert!(refusal.contains("in the cluster, a Secret's password goes only to"), "{refusal}");
        assert!(!refusal.contains("tokenRealms") && !refusal.contains("credentials file"), "{refusal}");
    }

    #[test]
    fn a_secret_s_bearer_token_goes_up_front_to_its_origin_and_never_after_a_redirect() {
        let token = "t0ken-of-the-Secret";
        let foreign = TestServer::start(|_, _| ("200 OK", String::new(), b"elsewhere".to_vec()));
        let elsewhere = format!("{}/charts/index.yaml", foreign.origin());
        let repository = TestServer::start(move |_, request| match request.path.as_str() {
            "/charts/moved.yaml" => ("302 Found", format!("Location: {elsewhere}\r\n"), Vec::new()),
            _ => ("200 OK", String::new(), b"index".to_vec()),
        });
        let mut entry = Credentials::given(format!("{}/charts", repository.origin()), "Secret app/charts".into());
        entry.bearer_token = Some(token.into());
        let machine = Machine::in_cluster(vec![entry], Vec::new());
        let url = format!("{}/charts", repository.origin());
        let mut connection = Connection::open(&machine, &url, None, &url).unwrap();
        assert_eq!(connection.get(&format!("{url}/index.yaml"), "*/*").unwrap().body, b"index");
        assert_eq!(connection.get(&format!("{url}/moved.yaml"), "*/*").unwrap().body, b"elsewhere");
        let sent: Vec<String> = repository.received().into_iter().map(|r| r.authorization).collect();
        assert_eq!(sent, [format!("Bearer {token}"), format!("Bearer {token}")]);
        assert!(foreign.received().iter().all(|r| r.authorization.is_empty()), "{:?}", foreign.received());
        // Matched by prefix at a `/`, as the credentials file's entries.
        let other = format!("{}/chartsmore", repository.origin());
        let connection = Connection::open(&machine, &other, None, &other).unwrap();
        assert_eq!(connection.authorization(), None);
    }

    #[test]
    fn a_secret_s_unusable_ca_or_client_certificate_is_named_by_its_key_and_secret() {
        let mut entry = Credentials::given("https://charts.example".into(), "Secret app/charts".into());
        entry.ca_pem = Some(b"not a certificate".to_vec());
        let machine = Machine::in_cluster(vec![entry.clone()], Vec::new());
        let Err(err) = Connection::open(&machine, "https://charts.example", None, "https://charts.example") else {
            panic!("an unusable CA was taken")
        };
        assert_eq!(err.message, "the CA of repository https://charts.example holds no PEM certificate");
        assert_eq!(err.help.as_deref(), Some("the `ca.crt` of Secret app/charts"));
        entry.ca_pem = None;
        entry.client_certificate = Some((b"no".to_vec(), b"s3cret-key".to_vec()));
        let machine = Machine::in_cluster(vec![entry], Vec::new());
        let Err(err) = Connection::open(&machine, "https://charts.example", None, "https://charts.example") else {
            panic!("an unusable client certificate was taken")
        };
        assert!(err.message.contains("is not a PEM certificate and private key"), "{}", err.message);
        assert_eq!(err.help.as_deref(), Some("the `tls.crt` and `tls.key` of Secret app/charts"));
    }

    #[test]
    fn credentials_debug_never_shows_the_password() {
        let machine = machine_for("http://reg.example", Vec::new());
        let shown = format!("{:?} {:?}", machine.file[0], CredentialsFile { repositories: machine.file.clone() });
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains("robot") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn errors_show_urls_without_their_query() {
        let upload = "https://bucket.example/uploads/1?X-Amz-Signature=abc123&digest=sha256%3A0";
        assert_eq!(shown(upload), "https://bucket.example/uploads/1");
        assert_eq!(shown("https://r.example/v2/x/manifests/1"), "https://r.example/v2/x/manifests/1");
        let connection = Connection::open(&Machine::anonymous(), "r.example", None, "https://r.example").unwrap();
        let err = connection.failed(upload, &format!("bad uri: {upload} is missing host")).to_string();
        assert!(!err.contains("X-Amz-Signature") && !err.contains("secret"), "{err}");
        assert!(err.contains("cannot fetch https://bucket.example/uploads/1"), "{err}");
    }

    #[test]
    fn bearer_challenge_parameters_are_read_quoted_or_not() {
        let params = challenge_params(
            r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:charts/web:pull""#,
        );
        assert_eq!(params["realm"], "https://auth.example.com/token");
        assert_eq!(params["service"], "registry.example.com");
        assert_eq!(params["scope"], "repository:charts/web:pull");
        let params = challenge_params("realm=https://a/token, service=reg");
        assert_eq!((params["realm"].as_str(), params["service"].as_str()), ("https://a/token", "reg"));
    }

    #[test]
    fn the_next_page_is_read_from_a_link_header() {
        let header = r#"</v2/charts/web/tags/list?last=3.0.0&n=2>; rel="next""#;
        let next = weaver_net::http::next_link(header)
            .map(|target| resolve_reference("https://reg:5000/v2/charts/web/tags/list", &target));
        assert_eq!(next.as_deref(), Some("https://reg:5000/v2/charts/web/tags/list?last=3.0.0&n=2"));
    }

    #[test]
    fn the_credentials_help_names_where_this_repository_s_are_looked_for() {
        assert_eq!(
            credentials_help("https://charts.example.com", Some("my-repo")),
            "set them in WEAVER_REPOSITORY_MY_REPO_USERNAME and WEAVER_REPOSITORY_MY_REPO_PASSWORD, or an entry of the credentials file (WEAVER_CREDENTIALS) whose url begins https://charts.example.com (see docs/src/concepts/remote-charts.md)"
        );
        let artifact = credentials_help("oci://127.0.0.1:5000/shop/hydrated", None);
        assert!(!artifact.contains("WEAVER_REPOSITORY_"), "{artifact}");
        assert!(artifact.ends_with("or a login: helm registry login 127.0.0.1:5000 (or docker login 127.0.0.1:5000) (see docs/src/concepts/remote-charts.md)"), "{artifact}");
    }

    #[test]
    fn credentials_come_from_the_environment_first_then_the_file_by_url_prefix() {
        // A pull Secret's config (base64 of `puller:p4ss`).
        let held = registry_login::HeldConfig::parse(
            "Secret team/regcred",
            br#"{"auths": {"reg.example": {"auth": "cHVsbGVyOnA0c3M="}}, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let machine = Machine {
            registry_configs: Vec::new(),
            held: vec![held],
            file: vec![Credentials {
                url: "https://charts.example.com/".into(),
                username: Some("file-user".into()),
                ..Credentials::default()
            }],
            var: Box::new(|key| (key == "WEAVER_REPOSITORY_MY_REPO_USERNAME").then(|| "env-user".to_string())),
            in_cluster: false,
            registry_limits: RegistryLimits::default(),
        };
        let user = |c: Credentials| c.username;
        assert_eq!(user(machine.credentials("https://other", Some("my-repo")).unwrap()).as_deref(), Some("env-user"));
        // A held config gives its registry's login; its credsStore runs no program: none else.
        assert_eq!(user(machine.credentials("oci://reg.example/shop/web", None).unwrap()).as_deref(), Some("puller"));
        assert_eq!(user(machine.credentials("oci://other.example/web", None).unwrap()), None);
        let bad = registry_login::HeldConfig::parse("Secret team/regcred", b"{\"auths\": s3cret").err().unwrap();
        assert!(bad.message.contains("Secret team/regcred is not a docker config") && !bad.message.contains("s3cret"));
        assert_eq!(
            user(machine.credentials("https://charts.example.com/stable", Some("x")).unwrap()).as_deref(),
            Some("file-user")
        );
        assert_eq!(user(machine.credentials("https://charts.example.com.evil", None).unwrap()), None);
        // An entry naming only token realms keeps the registry's login, and adds its realms.
        let realms = vec!["https://auth.reg.example".to_string()];
        let machine = Machine {
            file: vec![Credentials {
                url: "oci://reg.example".into(),
                token_realms: realms.clone(),
                ..Credentials::default()
            }],
            var: Box::new(|_| None),
            ..machine
        };
        let found = machine.credentials("oci://reg.example/shop/web", None).unwrap();
        assert_eq!((found.username.as_deref(), found.token_realms), (Some("puller"), realms));
    }
}
