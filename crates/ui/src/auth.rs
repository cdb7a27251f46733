//! Sign-in to the controller's UI, and what each user may see and do, from the cluster itself:
//! a user pastes a token the API server accepts, which a TokenReview names (user, groups,
//! extra); the token is kept in this process's memory only, under a random session id the
//! cookie carries, and reviewed again every [`SignIn::review_every`] (a revoked token ends its
//! session);
//! every page and action asks SubjectAccessReviews for that user, whose answers are kept
//! [`ACCESS_AGE`]. Sign-in attempts are limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::SignIn;
use weaver_cluster::{Access, Question, Subject, SyncCache, api_message};
use weaver_core::error::{Error, Result};

/// How long a session lasts after sign-in (the cookie's Max-Age).
pub const SESSION_AGE: Duration = Duration::from_secs(8 * 3600);
/// How long an answer of a SubjectAccessReview is kept: a grant or a revocation shows within this.
pub const ACCESS_AGE: Duration = Duration::from_secs(10);
/// Sign-in attempts a client address may make at once, and how often one more is allowed.
pub const SIGN_IN_BURST: u32 = 5;
pub const SIGN_IN_EVERY: Duration = Duration::from_secs(12);
/// Client addresses remembered before those with nothing to remember are dropped.
const MAX_ADDRESSES: usize = 10_000;
/// The UI's actions on an EnvironmentSync, each asked as the RBAC verb of its name (not
/// `patch`: who may approve need not be able to rewrite the source, nor the reverse).
pub const ACTIONS: [&str; 5] = ["approve", "reconcile", "suspend", "resume", "rollback"];
/// The API group and resource of EnvironmentSyncs, as SubjectAccessReviews name them.
const GROUP: &str = "weaver.example.com";
const SYNCS: &str = "environmentsyncs";

struct Session {
    /// Never shown, logged or compared: it is reviewed again, and that is all.
    token: SecretString,
    subject: Subject,
    expires: Instant,
    reviewed: Instant,
}

/// The signed-in users of the controller's UI.
pub struct Auth {
    client: kube::Client,
    pub syncs: SyncCache,
    /// What the EnvironmentSync controller's reconciles share, for the environments' pages.
    pub gitops: Option<std::sync::Arc<weaver_controllers::gitops::reconcile::Shared>>,
    /// Whose `X-Forwarded-For` names the client the sign-in rate limit counts.
    pub trusted_proxies: Vec<super::proxy::Cidr>,
    access: Access,
    review_every: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    attempts: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
}

/// Why a sign-in did not sign anyone in.
pub enum Refused {
    /// Too many attempts from this address: the next is allowed after this.
    TooMany(Duration),
    /// The API server does not accept the token.
    NotAccepted,
    /// The API server could not be asked.
    Unavailable(Error),
}

impl Auth {
    pub fn new(sign_in: SignIn) -> Auth {
        let quota = Quota::with_period(SIGN_IN_EVERY)
            .expect("a period above zero")
            .allow_burst(NonZeroU32::new(SIGN_IN_BURST).expect("a burst above zero"));
        Auth {
            access: Access::new(sign_in.client.clone(), ACCESS_AGE),
            client: sign_in.client,
            syncs: sign_in.syncs,
            gitops: sign_in.gitops,
            review_every: sign_in.review_every,
            trusted_proxies: sign_in.trusted_proxies,
            sessions: Mutex::new(HashMap::new()),
            attempts: RateLimiter::keyed(quota),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session for whoever `token` authenticates, under a new random id (never the one
    /// the browser had before: a session id planted beforehand signs no one in).
    pub async fn sign_in(&self, client: IpAddr, token: &str) -> std::result::Result<String, Refused> {
        // Addresses whose attempts are all forgotten take no memory: many of them are dropped.
        if self.attempts.len() > MAX_ADDRESSES {
            self.attempts.retain_recent();
        }
        if let Err(not_until) = self.attempts.check_key(&client) {
            return Err(Refused::TooMany(not_until.wait_time_from(DefaultClock::default().now())));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(Refused::NotAccepted);
        }
        let subject = self.review(token).await.map_err(Refused::Unavailable)?.ok_or(Refused::NotAccepted)?;
        let id = new_id();
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, session| session.expires > now);
        let session = Session { token: token.into(), subject, expires: now + SESSION_AGE, reviewed: now };
        sessions.insert(id.clone(), session);
        Ok(id)
    }

    async fn review(&self, token: &str) -> Result<Option<Subject>> {
        weaver_cluster::review_token(&self.client, token).await.map_err(|err| {
            Error::new(format!("cannot ask the API server whose token it is (a TokenReview): {}", api_message(&err)))
                .with_help("the controller's ClusterRole needs create on tokenreviews.authentication.k8s.io")
        })
    }

    /// Who the session is, while it has not expired and its token is still accepted.
    pub async fn user(&self, session: &str) -> Result<Option<Subject>> {
        let now = Instant::now();
        let token = {
            let mut sessions = self.sessions();
            match sessions.get(session) {
                None => return Ok(None),
                Some(found) if found.expires <= now => {
                    sessions.remove(session);
                    return Ok(None);
                }
                Some(found) if now.duration_since(found.reviewed) < self.review_every => {
                    return Ok(Some(found.subject.clone()));
                }
                Some(found) => found.token.clone(),
            }
        };
        let reviewed = self.review(token.expose_secret()).await?;
        let mut sessions = self.sessions();
        match reviewed {
            Some(subject) => {
                if let Some(found) = sessions.get_mut(session) {
                    found.reviewed = now;
                    found.subject = subject.clone();
                }
                Ok(Some(subject))
            }
            None => {
                sessions.remove(session);
                Ok(None)
            }
        }
    }

    /// The user name of the session, as last reviewed (for the pages' header and the log).
    pub fn name_of(&self, session: &str) -> Option<String> {
        self.sessions().get(session).map(|found| found.subject.user.clone())
    }

    pub fn sign_out(&self, session: &str) {
        self.sessions().remove(session);
    }

    /// Whether `subject` may read the EnvironmentSync `namespace/name`.
    pub async fn may_read(&self, subject: &Subject, namespace: &str, name: &str) -> Result<bool> {
        self.may(subject, "get", namespace, name).await
    }

    /// Whether `subject` may take `action` (one of [`ACTIONS`], each a verb of its own that
    /// RBAC grants on environmentsyncs) on the EnvironmentSync `namespace/name`. The
    /// controller then writes it as itself: its account holds the verbs.
    pub async fn may_act(&self, subject: &Subject, action: &'static str, namespace: &str, name: &str) -> Result<bool> {
        self.may(subject, action, namespace, name).await
    }

    async fn may(&self, subject: &Subject, verb: &'static str, namespace: &str, name: &str) -> Result<bool> {
        self.may_on(subject, verb, GROUP, SYNCS, namespace, name).await
    }

    /// Whether `subject` may `verb` the `resource` of API `group` named `name` ("" for every
    /// name) in `namespace`: what an environment's and an object's pages ask besides.
    pub async fn may_on(
        &self,
        subject: &Subject,
        verb: &'static str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool> {
        let question = Question {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.access.may(subject, &question).await.map_err(|err| {
            let what = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
            Error::new(format!(
                "cannot ask the API server whether {} may {verb} {what} {namespace}/{name} (a SubjectAccessReview): {}",
                subject.user,
                api_message(&err)
            ))
        })
    }
}

/// 32 random bytes, hex: a session id nobody can guess.
pub fn new_id() -> String {
    let mut id = [0; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// Whether the request came over HTTPS: weaver serves plain HTTP, so only a proxy in front
/// (an Ingress terminating TLS) can say so, in `X-Forwarded-Proto` or `Forwarded`. A client
/// that says so falsely gets a cookie its browser will not send back over HTTP: no one else's.
pub fn over_https(headers: &hyper::HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    value("x-forwarded-proto").split(',').next().is_some_and(|proto| proto.trim() == "https")
        || value("forwarded").split([';', ',']).any(|pair| pair.trim() == "proto=https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_proxy_saying_https_makes_the_cookie_secure() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = hyper::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        assert!(over_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS, http")])));
        assert!(over_https(&headers(&[("forwarded", "for=192.0.2.1;proto=https;by=203.0.113.1")])));
        assert!(!over_https(&headers(&[("x-forwarded-proto", "http")])));
        assert!(!over_https(&headers(&[("forwarded", "for=192.0.2.1;proto=http")])));
        assert!(!over_https(&headers(&[])));
    }

    #[tokio::test]
    async fn sign_in_attempts_are_limited_per_address_before_the_api_server_is_asked() {
        // No API server behind it: an empty token is refused without asking one.
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let (syncs, _) = SyncCache::watch(client.clone(), None);
        let review_every = Duration::from_secs(60);
        let auth = Auth::new(SignIn { client, syncs, gitops: None, trusted_proxies: Vec::new(), review_every });
        let (one, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..SIGN_IN_BURST {
            assert!(matches!(auth.sign_in(one, " ").await, Err(Refused::NotAccepted)));
        }
        match auth.sign_in(one, " ").await {
            Err(Refused::TooMany(wait)) => assert!(wait <= SIGN_IN_EVERY && !wait.is_zero(), "{wait:?}"),
            _ => panic!("the attempt past the burst is not refused"),
        }
        assert!(matches!(auth.sign_in(other, " ").await, Err(Refused::NotAccepted)), "another address is not limited");
        assert_eq!(auth.name_of("no-such-session"), None);
        assert!(auth.user("no-such-session").await.unwrap().is_none());
    }
}
