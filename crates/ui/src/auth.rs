//! Sign-in to the controller's UI, and what each user may see and do, from the cluster itself:
//! a user pastes a token the API server accepts, which a TokenReview names (user, groups,
//! extra); the token is kept in this process's memory only, under a random session id the
//! cookie carries, and reviewed again every [`SignIn::review_every`] (a revoked token ends its
//! session). Or (`oidc.rs`) a user signs in at the cluster's OIDC provider, whose ID token's
//! claims name the user and groups as the API server's own OIDC flags would; the provider's
//! refresh token keeps that session alive, asked again every `review_every` (a user the
//! provider signed out is signed out here). No session outlives [`SignIn::max_age`];
//! every page and action asks SubjectAccessReviews for that user, whose answers are kept
//! [`ACCESS_AGE`]. Sign-in attempts are limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::SignIn;
use weaver_cluster::{Access, Question, Subject, SyncCache, api_message};
use weaver_core::error::{Error, Result};

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
    credential: Credential,
    subject: Subject,
    expires: Instant,
    /// When the session ends, for the "who am I" page.
    ends_at: SystemTime,
    reviewed: Instant,
    /// Held while the session is refreshed at its OIDC provider: one refresh at a time, as a
    /// provider that rotates refresh tokens refuses the second use of one (ending the session).
    refreshing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// What a session signed in with, and is asked again by.
#[derive(Clone)]
enum Credential {
    /// A token the API server accepts. Never shown, logged or compared: it is reviewed again,
    /// and that is all.
    Token(SecretString),
    /// The OIDC provider's tokens: refreshed, never shown.
    Oidc(crate::oidc::Tokens),
}

/// Who a session is and how it signed in, for the "who am I" page.
pub struct WhoAmI {
    pub subject: Subject,
    /// The OIDC issuer the user signed in at; None: with a token.
    pub issuer: Option<String>,
    pub ends_at: SystemTime,
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
    pub max_age: Duration,
    /// The OIDC provider users may sign in at; None: tokens only.
    pub oidc: Option<crate::oidc::Provider>,
    sessions: Mutex<HashMap<String, Session>>,
    attempts: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
}

/// Why a sign-in did not sign anyone in.
pub enum Refused {
    /// Too many attempts from this address: the next is allowed after this.
    TooMany(Duration),
    /// The API server does not accept the token.
    NotAccepted,
    /// The OIDC provider did not sign the user in, or its answer failed a check.
    Oidc(crate::oidc::Refused),
    /// The API server could not be asked.
    Unavailable(Error),
}

impl Auth {
    pub fn new(sign_in: SignIn) -> Result<Auth> {
        let quota = Quota::with_period(SIGN_IN_EVERY)
            .expect("a period above zero")
            .allow_burst(NonZeroU32::new(SIGN_IN_BURST).expect("a burst above zero"));
        let oidc = sign_in.oidc.map(crate::oidc::Provider::new).transpose()?;
        Ok(Auth {
            access: Access::new(sign_in.client.clone(), ACCESS_AGE),
            client: sign_in.client,
            syncs: sign_in.syncs,
            gitops: sign_in.gitops,
            review_every: sign_in.review_every,
            max_age: sign_in.max_age,
            oidc,
            trusted_proxies: sign_in.trusted_proxies,
            sessions: Mutex::new(HashMap::new()),
            attempts: RateLimiter::keyed(quota),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session for whoever `token` authenticates, under a new random id (never the one
    /// the browser had before: a session id planted beforehand signs no one in).
    pub async fn sign_in(&self, client: IpAddr, token: &str) -> std::result::Result<String, Refused> {
        self.attempt(client)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(Refused::NotAccepted);
        }
        let subject = self.review(token).await.map_err(Refused::Unavailable)?.ok_or(Refused::NotAccepted)?;
        Ok(self.new_session(Credential::Token(token.into()), subject))
    }

    /// One more sign-in attempt from `client`, unless it made too many.
    pub fn attempt(&self, client: IpAddr) -> std::result::Result<(), Refused> {
        // Addresses whose attempts are all forgotten take no memory: many of them are dropped.
        if self.attempts.len() > MAX_ADDRESSES {
            self.attempts.retain_recent();
        }
        self.attempts
            .check_key(&client)
            .map_err(|not_until| Refused::TooMany(not_until.wait_time_from(DefaultClock::default().now())))
    }

    /// A new session for the user the OIDC provider signed in (sign-in `state`, started by
    /// the browser whose sign-in cookie is `browser`).
    pub async fn sign_in_oidc(&self, state: &str, code: &str, browser: &str) -> std::result::Result<String, Refused> {
        let provider = self.oidc.as_ref().ok_or(Refused::NotAccepted)?;
        let signed_in = provider.finish(state, code, browser).await.map_err(Refused::Oidc)?;
        Ok(self.new_session(Credential::Oidc(signed_in.tokens), oidc_subject(signed_in.identity)))
    }

    /// A session under a new random id (never the one the browser had before: a session id
    /// planted beforehand signs no one in). It ends after [`Auth::max_age`], or with an OIDC
    /// session's ID token when nothing can refresh it.
    fn new_session(&self, credential: Credential, subject: Subject) -> String {
        let id = new_id();
        let now = Instant::now();
        let mut ends_at = SystemTime::now() + self.max_age;
        if let Credential::Oidc(tokens) = &credential
            && !tokens.refreshable()
        {
            ends_at = ends_at.min(tokens.id_token_expires);
        }
        let left = ends_at.duration_since(SystemTime::now()).unwrap_or_default();
        let mut sessions = self.sessions();
        sessions.retain(|_, session| session.expires > now);
        let refreshing = Default::default();
        let session = Session { credential, subject, expires: now + left, ends_at, reviewed: now, refreshing };
        sessions.insert(id.clone(), session);
        id
    }

    /// How long the session `id` has left (the cookie's Max-Age), in whole seconds rounded up:
    /// a session just made has all of [`Auth::max_age`].
    pub fn session_left(&self, id: &str) -> Duration {
        let left = self.sessions().get(id).map(|found| found.expires.saturating_duration_since(Instant::now()));
        let left = left.unwrap_or_default();
        Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    async fn review(&self, token: &str) -> Result<Option<Subject>> {
        weaver_cluster::review_token(&self.client, token).await.map_err(|err| {
            Error::new(format!("cannot ask the API server whose token it is (a TokenReview): {}", api_message(&err)))
                .with_help("the controller's ClusterRole needs create on tokenreviews.authentication.k8s.io")
        })
    }

    /// Who the session is, while it has not expired and its token is still accepted (an OIDC
    /// session's: while its provider refreshes it).
    pub async fn user(&self, session: &str) -> Result<Option<Subject>> {
        let now = Instant::now();
        let (credential, last_reviewed, refreshing) = {
            let mut sessions = self.sessions();
            match sessions.get(session) {
                None => return Ok(None),
                Some(found) if found.expires <= now => {
                    sessions.remove(session);
                    return Ok(None);
                }
                Some(found) if now.duration_since(found.reviewed) < self.review_every && !found.lapsed() => {
                    return Ok(Some(found.subject.clone()));
                }
                Some(found) => (found.credential.clone(), found.reviewed, found.refreshing.clone()),
            }
        };
        let (reviewed, credential) = match credential {
            Credential::Token(token) => (self.review(token.expose_secret()).await?, Credential::Token(token)),
            Credential::Oidc(_) => {
                let _one_at_a_time = refreshing.lock().await;
                // The tokens as they are now: another request may have refreshed them meanwhile.
                let tokens = match self.sessions().get(session) {
                    Some(found) if found.reviewed != last_reviewed && !found.lapsed() => {
                        return Ok(Some(found.subject.clone()));
                    }
                    Some(Session { credential: Credential::Oidc(tokens), .. }) => tokens.clone(),
                    _ => return Ok(None),
                };
                match self.refresh(session, &tokens).await? {
                    Some((subject, tokens)) => (Some(subject), Credential::Oidc(tokens)),
                    None => (None, Credential::Oidc(tokens)),
                }
            }
        };
        let mut sessions = self.sessions();
        match reviewed {
            Some(subject) => {
                if let Some(found) = sessions.get_mut(session) {
                    found.reviewed = now;
                    found.subject = subject.clone();
                    found.credential = credential;
                }
                Ok(Some(subject))
            }
            None => {
                sessions.remove(session);
                Ok(None)
            }
        }
    }

    /// An OIDC session refreshed at its provider: who it is now and its new tokens; None: the
    /// provider ended it, or its ID token expired with nothing to refresh it, or a refreshed
    /// ID token names someone else.
    async fn refresh(
        &self,
        session: &str,
        tokens: &crate::oidc::Tokens,
    ) -> Result<Option<(Subject, crate::oidc::Tokens)>> {
        use crate::oidc::Refused as OidcRefused;
        let Some(provider) = &self.oidc else { return Ok(None) };
        if !tokens.refreshable() {
            // Without a refresh token, the session lasts while its ID token does.
            let subject = self.sessions().get(session).map(|found| found.subject.clone());
            return Ok(subject.filter(|_| tokens.id_token_expires > SystemTime::now()).map(|s| (s, tokens.clone())));
        }
        match provider.refresh(tokens).await {
            Ok((identity, refreshed)) => {
                let before = self.sessions().get(session).map(|found| found.subject.clone());
                let Some(before) = before else { return Ok(None) };
                match identity.map(oidc_subject) {
                    Some(now) if now.user != before.user => Ok(None),
                    Some(now) => Ok(Some((now, refreshed))),
                    None => Ok(Some((before, refreshed))),
                }
            }
            Err(OidcRefused::Unavailable(err)) => Err(err),
            Err(OidcRefused::Provider(_) | OidcRefused::Invalid(_) | OidcRefused::UnknownState) => Ok(None),
        }
    }

    /// The user name of the session, as last reviewed (for the pages' header and the log).
    pub fn name_of(&self, session: &str) -> Option<String> {
        self.sessions().get(session).map(|found| found.subject.user.clone())
    }

    /// Who the session is and how it signed in, as last reviewed.
    pub fn who_am_i(&self, session: &str) -> Option<WhoAmI> {
        let sessions = self.sessions();
        let found = sessions.get(session)?;
        let issuer = match &found.credential {
            Credential::Token(_) => None,
            Credential::Oidc(_) => self.oidc.as_ref().map(|provider| provider.config.issuer.clone()),
        };
        Some(WhoAmI { subject: found.subject.clone(), issuer, ends_at: found.ends_at })
    }

    /// Ends the session here: where the browser goes to end it at its OIDC provider too, when
    /// the provider has an end-session endpoint.
    pub fn sign_out(&self, session: &str) -> Option<String> {
        let ended = self.sessions().remove(session)?;
        match (&ended.credential, &self.oidc) {
            (Credential::Oidc(tokens), Some(provider)) => provider.logout_url(tokens),
            _ => None,
        }
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

impl Session {
    /// Whether an OIDC session's ID token has expired: it is refreshed before the session is
    /// used again, whenever it was last.
    fn lapsed(&self) -> bool {
        matches!(&self.credential, Credential::Oidc(tokens) if tokens.id_token_expires <= SystemTime::now())
    }
}

/// The Kubernetes identity an ID token names, as SubjectAccessReviews ask of it.
fn oidc_subject(identity: crate::oidc::Identity) -> Subject {
    Subject { user: identity.user, uid: None, groups: identity.groups, extra: Default::default() }
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
        let max_age = Duration::from_secs(3600);
        let sign_in =
            SignIn { client, syncs, gitops: None, trusted_proxies: Vec::new(), review_every, max_age, oidc: None };
        let auth = Auth::new(sign_in).unwrap();
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
