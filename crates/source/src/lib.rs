//! Sources: fetching what a deployment is made from, apart from any reconcile (as Flux's
//! source-controller is apart from its kustomize-controller): git repositories, and remote
//! Helm charts.
//!
//! [`GitCache`] keeps one bare mirror per repository URL and fetches one ref at a time into it,
//! shallow, over transports of weaver's own (smart HTTP on ureq and rustls, ssh on russh): see
//! docs/src/architecture/git-sources.md. [`charts`] pins remote charts in `charts.lock` and
//! pulls their archives into a cache by digest (`weaver charts`; the controller's share its
//! disk budget with the mirrors).

pub mod artifacts;
mod budget;
pub mod charts;
pub mod git;
pub mod images;
pub mod manifests;
mod registry_limits;
pub mod signatures;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

pub use artifacts::ArtifactCache;
pub(crate) use budget::Lease;
pub use budget::{Budget, CacheLimits, Usage};
pub use charts::pulls::ChartCache;
pub use git::GitCache;
pub use transport::{generate_deploy_key, public_key_of, scan_host_key};

/// Which commit of the repository to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GitRef {
    /// `refs/heads/<name>` (a full `refs/heads/…` name is taken as is).
    Branch(String),
    /// `refs/tags/<name>`, peeled to its commit.
    Tag(String),
    /// The highest tag whose name (with or without a leading `v`) is a version in this range,
    /// as Helm reads ranges (`>=1.2 <2`, `~1.4`, `^2`).
    Semver(String),
    /// A full 40-hex commit id.
    Commit(String),
    /// A full ref name as the server advertises it, neither a branch nor a tag: the head a
    /// forge keeps of a pull request (`refs/pull/7/head`, `refs/merge-requests/7/head`).
    Ref(String),
}

impl GitRef {
    /// The full name of the ref it names (`refs/heads/main`, `refs/tags/v1`, `refs/pull/7/head`);
    /// None for a version range or a commit, which name no one ref.
    pub fn full_name(&self) -> Option<String> {
        let under = |prefix: &str, name: &str| match name.starts_with("refs/") {
            true => name.to_string(),
            false => format!("{prefix}{name}"),
        };
        match self {
            GitRef::Branch(name) => Some(under("refs/heads/", name)),
            GitRef::Tag(name) => Some(under("refs/tags/", name)),
            GitRef::Ref(name) => Some(name.clone()),
            GitRef::Semver(_) | GitRef::Commit(_) => None,
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Branch(name) => write!(f, "branch {name}"),
            GitRef::Tag(name) => write!(f, "tag {name}"),
            GitRef::Semver(range) => write!(f, "semver {range}"),
            GitRef::Commit(id) => write!(f, "commit {id}"),
            GitRef::Ref(name) => write!(f, "ref {name}"),
        }
    }
}

/// How to authenticate to the repository, from a Secret. Its `Debug` never shows a value.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    /// HTTP Basic.
    Basic { username: String, password: SecretString },
    /// HTTP `Authorization: Bearer`.
    Bearer(SecretString),
    /// An ssh private key (OpenSSH or PEM, unencrypted) and the `known_hosts` lines the server's
    /// host key must be listed in.
    Ssh { identity: SecretString, known_hosts: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"[redacted]").finish()
            }
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
            Credentials::Ssh { known_hosts, .. } => f
                .debug_struct("Ssh")
                .field("identity", &"[redacted]")
                .field("known_hosts", &format!("{} lines", known_hosts.lines().count()))
                .finish(),
        }
    }
}

impl Credentials {
    /// The credentials a source Secret holds (`text` reads one of its keys; `name` says which
    /// Secret, for errors): `username` and `password`, `bearerToken`, or (ssh) `identity` and
    /// `known_hosts`. The format is the EnvironmentSync API's (`spec.source.secretRef`).
    pub fn from_secret(text: impl Fn(&str) -> Option<String>, name: &str) -> Result<Credentials, String> {
        match (text("identity"), text("known_hosts"), text("bearerToken"), text("username"), text("password")) {
            (Some(identity), Some(known_hosts), ..) => {
                Ok(Credentials::Ssh { identity: SecretString::from(identity), known_hosts })
            }
            (Some(_), None, ..) => Err(format!(
                "{name} has an ssh `identity` but no `known_hosts`: add the server's host key (host keys are never trusted on first use)"
            )),
            (None, _, Some(token), ..) => Ok(Credentials::Bearer(SecretString::from(token))),
            (None, _, None, Some(username), Some(password)) => {
                Ok(Credentials::Basic { username, password: SecretString::from(password) })
            }
            _ => Err(format!(
                "{name} holds no credentials: expected `username` and `password`, `bearerToken`, or `identity` and `known_hosts`"
            )),
        }
    }

    /// The keys and values of the source Secret that holds these credentials, as
    /// [`Credentials::from_secret`] reads them.
    pub fn secret_data(&self) -> BTreeMap<&'static str, String> {
        match self {
            Credentials::None => BTreeMap::new(),
            Credentials::Basic { username, password } => {
                BTreeMap::from([("username", username.clone()), ("password", password.expose_secret().to_string())])
            }
            Credentials::Bearer(token) => BTreeMap::from([("bearerToken", token.expose_secret().to_string())]),
            Credentials::Ssh { identity, known_hosts } => BTreeMap::from([
                ("identity", identity.expose_secret().to_string()),
                ("known_hosts", known_hosts.clone()),
            ]),
        }
    }

    /// A digest of the credentials, so that callers with different credentials never share
    /// one fetch's result (each caller's own credentials must pass the server's check).
    fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        let mut put = |part: &str| {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        };
        match self {
            Credentials::None => put("none"),
            Credentials::Basic { username, password } => {
                put("basic");
                put(username);
                put(password.expose_secret());
            }
            Credentials::Bearer(token) => {
                put("bearer");
                put(token.expose_secret());
            }
            Credentials::Ssh { identity, known_hosts } => {
                put("ssh");
                put(identity.expose_secret());
                put(known_hosts);
            }
        }
        hash.finalize().into()
    }
}

/// How a fetch's messages name the parts of its credentials: by a source Secret's keys (`the
/// Secret's identity`), as the controller reads them, unless the caller read a part from
/// elsewhere and named it (`--private-key-file deploy-key`: `weaver bootstrap`'s files).
#[derive(Clone, Debug, Default)]
pub struct CredentialNames(BTreeMap<&'static str, String>);

impl CredentialNames {
    /// The ssh private key.
    pub const IDENTITY: &'static str = "identity";
    /// The ssh server's host keys.
    pub const KNOWN_HOSTS: &'static str = "known_hosts";
    /// An https server's CA certificates.
    pub const CA: &'static str = "ca.crt";
    /// HTTP Basic's username and password (a token).
    pub const PASSWORD: &'static str = "username/password";
    pub const BEARER: &'static str = "bearer token";
    /// Whatever the credentials are, where a message cannot tell which part was refused.
    pub const CREDENTIALS: &'static str = "credentials";

    /// `part` (one of the constants) named `name` in messages.
    pub fn with(mut self, part: &'static str, name: impl Into<String>) -> CredentialNames {
        self.0.insert(part, name.into());
        self
    }

    /// How messages name `part`: as given, else `the Secret's <part>`.
    pub fn name(&self, part: &str) -> String {
        self.0.get(part).cloned().unwrap_or_else(|| format!("the Secret's {part}"))
    }
}

/// One fetch: the repository, the ref, how to authenticate and which CA to trust. Its `Debug`
/// shows the URL without userinfo.
#[derive(Clone)]
pub struct FetchRequest {
    /// `https://host/path`, `ssh://user@host[:port]/path` or `user@host:path`; `http://` only to
    /// a loopback address.
    pub url: String,
    pub reference: GitRef,
    pub credentials: Credentials,
    /// How messages name the credentials' parts (a source Secret's keys by default).
    pub credential_names: CredentialNames,
    /// PEM certificates: the CAs an https server's certificate is checked against, in place of
    /// the public (webpki) roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The longest the fetch may take once it has the mirror (an EnvironmentSync's timeout).
    pub timeout: Duration,
}

impl fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchRequest")
            .field("url", &redact_url(&self.url))
            .field("reference", &self.reference)
            .field("credentials", &self.credentials)
            .field("ca_pem", &self.ca_pem.as_ref().map(|pem| format!("{} bytes", pem.len())))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Checks `url` is one a fetch takes (https, ssh or `user@host:path`), before it is written
/// anywhere: why it is not, its password redacted.
pub fn check_url(url: &str) -> Result<(), String> {
    SourceUrl::parse(url).map(|_| ())
}

/// Whether `url` is reached over ssh (`ssh://…` or scp-like `user@host:path`).
pub fn is_ssh_url(url: &str) -> bool {
    SourceUrl::parse(url).is_ok_and(|url| url.scheme == Scheme::Ssh)
}

/// What a fetch found.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The commit, 40 hex digits.
    pub commit: String,
    /// The bare mirror holding it. It stays on disk while this value (or a clone of it) lives:
    /// eviction skips mirrors that are leased.
    pub repository: PathBuf,
    /// The ref the commit was found through (`refs/tags/v1.2.0`), or the commit id itself.
    pub reference: String,
    /// Whether objects were fetched: false when the mirror already held the commit.
    pub transferred: bool,
    pub bytes_received: u64,
    pub duration: Duration,
    /// `repository` holds the files themselves (an OCI artifact's, unpacked: `commit` is its
    /// manifest's digest), read as they are, not a bare mirror read at `commit`.
    pub unpacked: bool,
    /// `repository` holds rendered manifests (an OCI artifact without the `repository` content
    /// annotation: `weaver hydrate --oci`'s, `flux push artifact`'s), applied as they are.
    pub manifests: bool,
    #[expect(dead_code, reason = "held for its Drop: the mirror is not evicted while a Fetched lives")]
    pub(crate) lease: Arc<Lease>,
}

impl Fetched {
    /// The commit to read `repository` at; None for an artifact's files, read as they are.
    pub fn rev(&self) -> Option<&str> {
        (!self.unpacked).then_some(self.commit.as_str())
    }

    /// When the fetched commit was made (its committer's time); None for an artifact's files,
    /// or a mirror that cannot be read.
    pub fn commit_time(&self) -> Option<jiff::Timestamp> {
        let commit = git2::Oid::from_str(self.rev()?).ok()?;
        let repo = git2::Repository::open_bare(&self.repository).ok()?;
        let seconds = repo.find_commit(commit).ok()?.time().seconds();
        jiff::Timestamp::from_second(seconds).ok()
    }
}

/// Why a fetch failed, as a condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    Unreachable,
    AuthenticationFailed,
    RefNotFound,
    HostKeyMismatch,
    InvalidUrl,
    /// The server sent more than the cache may hold.
    TooLarge,
    /// The fetch did not end within its timeout.
    TimedOut,
    /// A push the server refused, or that is not a fast-forward of its branch.
    PushRejected,
    Other,
}

/// A failed fetch. The message names the URL without its userinfo and says what to do; it
/// never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub failure: FetchFailure,
    pub message: String,
}

impl FetchError {
    pub(crate) fn new(failure: FetchFailure, message: impl Into<String>) -> FetchError {
        FetchError { failure, message: message.into() }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FetchError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Https,
    Http,
    Ssh,
}

/// A repository URL, parsed. `user` is only kept for ssh (the login name); every other form of
/// userinfo is refused, so that no credential travels in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceUrl {
    pub scheme: Scheme,
    pub user: Option<String>,
    /// As written in a URL: an IPv6 address keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    /// From the first `/` for URLs; for scp-like `host:path`, the path as written (relative to
    /// the login's home when it does not start with `/`).
    pub path: String,
}

impl SourceUrl {
    pub fn parse(url: &str) -> Result<SourceUrl, String> {
        let invalid = |why: &str| Err(format!("the source URL {} {why}", redact_url(url)));
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("holds whitespace");
        }
        let (scheme, rest, scp) = match url.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "https" => (Scheme::Https, rest, false),
                "http" => (Scheme::Http, rest, false),
                "ssh" => (Scheme::Ssh, rest, false),
                other => return invalid(&format!("has scheme {other}: use https://, ssh:// or user@host:path")),
            },
            None => (Scheme::Ssh, url, true),
        };
        let (authority, path) = if scp {
            // `user@host:path`: the host's colon is the first after the last `@` before any slash
            // (else it would be a local path), so that `user:password@host:path` keeps its
            // password in the userinfo, which is refused, and out of the host and path shown.
            let before_slash = rest.find('/').map_or(rest, |slash| &rest[..slash]);
            let host_start = before_slash.rfind('@').map_or(0, |at| at + 1);
            match rest[host_start..].split_once(':') {
                Some((host, path)) if !host.contains('/') && !path.is_empty() => {
                    (&rest[..host_start + host.len()], path)
                }
                _ => return invalid("is not a URL: use https://host/path, ssh://host/path or user@host:path"),
            }
        } else {
            match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, authority),
        };
        if let Some(user) = user {
            if scheme != Scheme::Ssh {
                return invalid("carries credentials: give them in the Secret, not in the URL");
            }
            if user.is_empty() || user.contains(':') {
                return invalid("carries a password: an ssh source authenticates with the Secret's identity");
            }
        }
        let (host, port) = if scp {
            (hostport, None)
        } else if let Some(end) = hostport.strip_prefix('[').and_then(|h| h.find(']')) {
            let port = &hostport[end + 2..];
            (&hostport[..end + 2], port.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(port) => match port.parse::<u16>() {
                Ok(port) => Some(port),
                Err(_) => return invalid("has an invalid port"),
            },
        };
        if host.is_empty() {
            return invalid("names no host");
        }
        let path = path.split(['?', '#']).next().unwrap_or_default().to_string();
        if path.trim_matches('/').is_empty() {
            return invalid("names no repository path");
        }
        let parsed = SourceUrl { scheme, user: user.map(str::to_string), host: host.to_ascii_lowercase(), port, path };
        if scheme == Scheme::Http && !parsed.is_loopback() {
            return invalid("is plain http: use https (plain http is only accepted to a loopback address)");
        }
        Ok(parsed)
    }

    fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL given to libgit2 and naming a mirror: never a userinfo.
    pub fn display(&self) -> String {
        self.written(None)
    }

    /// The URL as messages show it: [`SourceUrl::display`] with an ssh URL's login, which
    /// holds no secret (a URL with a password is refused), so that it reads as the URL given.
    pub fn shown(&self) -> String {
        self.written(self.user.as_deref())
    }

    fn written(&self, user: Option<&str>) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
        };
        let user = user.map(|user| format!("{user}@")).unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let slash = if self.path.starts_with('/') { "" } else { "/~/" };
        format!("{scheme}://{user}{}{port}{slash}{}", self.host, self.path)
    }

    /// What names one mirror: scheme, host, port and path, without a trailing `/` or `.git`.
    fn normalized(&self) -> String {
        let default_port = match self.scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
        };
        let mut text = self.display();
        if self.port == Some(default_port) {
            text = SourceUrl { port: None, ..self.clone() }.display();
        }
        let trimmed = text.trim_end_matches('/');
        trimmed.strip_suffix(".git").unwrap_or(trimmed).to_string()
    }
}

/// `url` as it may be shown, without the secrets of its authority's userinfo
/// (`https://ci:token@host/…` is `https://host/…`): in messages about a URL, and for a remote's
/// URL `weaver hydrate` records. An ssh login (`ssh://git@host/…`, an scp-like `git@host:path`)
/// is kept, as ssh needs it and it holds no secret, without a password written after it; an
/// http user is left out, as it may be a token (`https://TOKEN@host/…`), and so is a
/// scheme-less userinfo with a password (`ci:token@host/…`).
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if prefix.eq_ignore_ascii_case("ssh://") => match rest[..at].split(':').next() {
            Some(user) if !user.is_empty() => format!("{prefix}{user}@{}", &rest[at + 1..]),
            _ => format!("{prefix}{}", &rest[at + 1..]),
        },
        Some(at) if !prefix.is_empty() || rest[..at].contains(':') => format!("{prefix}{}", &rest[at + 1..]),
        _ => url.to_string(),
    }
}

/// The TCP port a repository URL is reached on: the one it names, else its scheme's (443 for
/// https, 80 for http, 22 for ssh); None when it is not a repository URL.
pub fn port_of(url: &str) -> Option<u16> {
    let url = SourceUrl::parse(url).ok()?;
    Some(url.port.unwrap_or(match url.scheme {
        Scheme::Https => 443,
        Scheme::Http => 80,
        Scheme::Ssh => 22,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_credentials() {
        assert_eq!(redact_url("https://ci:s3cr3t@git.example.org/shop.git"), "https://git.example.org/shop.git");
        assert_eq!(redact_url("https://git.example.org/shop.git"), "https://git.example.org/shop.git");
        assert_eq!(redact_url("https://ci:s3cr3t@git.example.org"), "https://git.example.org");
        // An ssh login is no secret, and the URL reads as given; a password after it is.
        assert_eq!(redact_url("ssh://git@host"), "ssh://git@host");
        assert_eq!(redact_url("ssh://git@10.244.0.1:2250/srv/fleet.git"), "ssh://git@10.244.0.1:2250/srv/fleet.git");
        assert_eq!(redact_url("ssh://git:s3cr3t@host/r"), "ssh://git@host/r");
        assert_eq!(redact_url("ssh://:s3cr3t@host/r"), "ssh://host/r");
        // An http user may be a token.
        assert_eq!(redact_url("https://ghp_s3cr3t@github.com/org/r"), "https://github.com/org/r");
        assert_eq!(redact_url("git@github.com:org/shop.git"), "git@github.com:org/shop.git");
        assert_eq!(redact_url("ci:s3cr3t@git.example.org/shop.git"), "git.example.org/shop.git");
        // An @ in the path is not userinfo.
        assert_eq!(redact_url("https://host/org/@scope/repo"), "https://host/org/@scope/repo");
    }

    #[test]
    fn urls_parse_with_their_userinfo_kept_out_of_what_is_shown() {
        let url = SourceUrl::parse("ssh://git@Example.COM:2222/org/repo.git").unwrap();
        assert_eq!((url.user.as_deref(), url.host.as_str(), url.port), (Some("git"), "example.com", Some(2222)));
        assert_eq!(url.display(), "ssh://example.com:2222/org/repo.git");
        assert_eq!(url.shown(), "ssh://git@example.com:2222/org/repo.git");
        assert_eq!(port_of("ssh://git@Example.COM:2250/org/repo.git"), Some(2250));
        assert_eq!(port_of("git@github.com:org/repo.git"), Some(22));
        assert_eq!(port_of("https://github.com/org/repo.git"), Some(443));
        assert_eq!(port_of("https://github.com:8443/org/repo.git"), Some(8443));
        assert_eq!(port_of("not a url"), None);
        let scp = SourceUrl::parse("git@github.com:org/repo.git").unwrap();
        assert_eq!((scp.scheme, scp.path.as_str()), (Scheme::Ssh, "org/repo.git"));
        assert_eq!(scp.display(), "ssh://github.com/~/org/repo.git");
        let v6 = SourceUrl::parse("http://[::1]:8080/r").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", Some(8080)));
        assert_eq!(
            SourceUrl::parse("https://h/r.git/").unwrap().normalized(),
            SourceUrl::parse("https://H:443/r").unwrap().normalized()
        );
    }

    #[test]
    fn urls_with_credentials_or_plain_http_elsewhere_are_refused_without_showing_the_password() {
        for url in [
            "https://user:hunter2@host/repo",
            "ssh://git:hunter2@host/repo",
            "https://hunter2@host/r",
            "git:hunter2@host:org/repo.git",
        ] {
            let err = SourceUrl::parse(url).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert!(SourceUrl::parse("http://example.com/repo").is_err());
        assert!(SourceUrl::parse("http://127.0.0.1:9/repo").is_ok());
        assert!(SourceUrl::parse("ftp://host/repo").is_err());
        assert!(SourceUrl::parse("/local/path").is_err());
        assert!(SourceUrl::parse("https://host").is_err());
    }

    #[test]
    fn debug_of_credentials_shows_no_value() {
        let all = [
            Credentials::Basic { username: "alice".into(), password: "pw-hunter2".into() },
            Credentials::Bearer("tok-hunter2".into()),
            Credentials::Ssh { identity: "key-hunter2".into(), known_hosts: "host ssh-ed25519 AAAA".into() },
        ];
        for credentials in all {
            let request = FetchRequest {
                url: "https://h/r".into(),
                reference: GitRef::Branch("main".into()),
                credentials,
                credential_names: CredentialNames::default(),
                ca_pem: None,
                timeout: Duration::from_secs(60),
            };
            let text = format!("{request:?} {:#?}", request);
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
