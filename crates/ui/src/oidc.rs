//! OIDC sign-in to the controller's UI: the authorization code flow with PKCE, `state` and
//! `nonce` (OpenID Connect Core 1.0 §3.1, RFC 7636), against a provider found by discovery. ID
//! tokens are checked for an asymmetric signature by a key of the provider's JWKS, issuer,
//! audience, expiry and nonce; the JWKS is fetched again (at most once a minute) when no key of
//! it verifies a token's signature: the provider rotated its keys (as go-oidc does). Their claims name a Kubernetes user and groups as
//! kube-apiserver's `--oidc-*` flags map them ([`ClaimMapping`]); the UI then asks
//! SubjectAccessReviews for that user, as for a token's.
//!
//! The flow is written here over weaver's HTTP client, its signatures checked by aws-lc (already
//! built for TLS): the openidconnect crate built a second generation of RustCrypto's crates
//! for the same checks, a sixth of a minute of a fresh build's two cores. The signatures are
//! those kube-apiserver's OIDC accepts: RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA.
//!
//! Tokens and the client secret are kept as secrets: no error here quotes one, nor a provider's
//! answer beyond its OAuth `error` code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};
use weaver_core::error::{Error, Result};

/// The path the provider sends the browser back to, under the UI's URL.
pub const CALLBACK_PATH: &str = "/oidc/callback";
/// How long a sign-in started may take at the provider before its `state` is forgotten.
pub const FLOW_AGE: Duration = Duration::from_secs(600);
/// Sign-ins started and not finished that are kept at most (each is rate-limited per address).
const MAX_PENDING: usize = 10_000;
/// The provider's JWKS is fetched again for a signature it does not verify at most this often:
/// forged tokens cost the provider one request a minute, not one each.
const JWKS_EVERY: Duration = Duration::from_secs(60);
/// Each request to the provider ends after this.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (a discovery document, a JWKS, tokens).
const MAX_ANSWER: u64 = 1024 * 1024;

/// The OIDC provider the controller's UI signs users in with, as its flags name it.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the ID tokens' `iss` (discovery is under it).
    pub issuer: String,
    pub client_id: String,
    /// None: a public client, PKCE only.
    pub client_secret: Option<SecretString>,
    /// The UI's URL as browsers reach it: the redirect URI is under it (`CALLBACK_PATH`).
    pub ui_url: String,
    /// Scopes asked besides `openid`.
    pub scopes: Vec<String>,
    pub mapping: ClaimMapping,
    /// A private CA's certificates (PEM) the provider's TLS is checked against; None: the
    /// public web's roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// How an ID token's claims name a Kubernetes user, as kube-apiserver's `--oidc-username-claim`,
/// `--oidc-username-prefix`, `--oidc-groups-claim`, `--oidc-groups-prefix` and
/// `--oidc-required-claim` do.
#[derive(Clone, Debug)]
pub struct ClaimMapping {
    pub username_claim: String,
    /// None: the API server's default, `ISSUER#` unless the claim is `email`; `-`: no prefix.
    pub username_prefix: Option<String>,
    /// None: no groups.
    pub groups_claim: Option<String>,
    pub groups_prefix: String,
    /// Claims that must be present with these values.
    pub required_claims: Vec<(String, String)>,
}

/// A Kubernetes identity named by an ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl ClaimMapping {
    /// The prefix the user name gets from `issuer`'s tokens.
    pub fn username_prefix(&self, issuer: &str) -> String {
        match self.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(prefix) => prefix.to_string(),
            None if self.username_claim == "email" => String::new(),
            None => format!("{issuer}#"),
        }
    }

    /// The user and groups `claims` (an ID token's, verified) name; Err: why they name none.
    /// The reasons quote claim names, never their values.
    pub fn identity(&self, issuer: &str, claims: &Map<String, Value>) -> std::result::Result<Identity, String> {
        for (name, wanted) in &self.required_claims {
            match claims.get(name) {
                Some(Value::String(value)) if value == wanted => {}
                Some(_) => return Err(format!("the required claim {name} does not have the value required")),
                None => return Err(format!("the required claim {name} is missing")),
            }
        }
        let claim = &self.username_claim;
        let user = match claims.get(claim) {
            Some(Value::String(user)) if !user.is_empty() => user,
            Some(_) => return Err(format!("the username claim {claim} is not a non-empty string")),
            None => return Err(format!("the ID token has no {claim} claim (the username claim)")),
        };
        // As the API server: an email is a user name only when the provider has not said it is
        // unverified.
        if claim == "email" {
            match claims.get("email_verified") {
                None | Some(Value::Bool(true)) => {}
                Some(_) => return Err("the email is not verified (email_verified is not true)".to_string()),
            }
        }
        let groups = match self.groups_claim.as_ref().and_then(|name| claims.get(name).map(|value| (name, value))) {
            None => Vec::new(),
            Some((_, Value::String(group))) => vec![group.clone()],
            Some((name, Value::Array(groups))) => groups
                .iter()
                .map(|group| group.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("the groups claim {name} is not a string or a list of strings"))?,
            Some((name, _)) => return Err(format!("the groups claim {name} is not a string or a list of strings")),
        };
        let groups = groups.into_iter().map(|group| format!("{}{group}", self.groups_prefix)).collect();
        Ok(Identity { user: format!("{}{user}", self.username_prefix(issuer)), groups })
    }
}

/// What a session signed in with OIDC keeps of the provider's answer.
#[derive(Clone)]
pub struct Tokens {
    /// The last ID token: the logout's `id_token_hint`.
    id_token: SecretString,
    /// When the last ID token expires.
    pub id_token_expires: SystemTime,
    /// What keeps the session alive past that; None: the session ends with the ID token.
    refresh_token: Option<SecretString>,
}

impl Tokens {
    /// Whether a refresh token can keep the session alive past its ID token.
    pub fn refreshable(&self) -> bool {
        self.refresh_token.is_some()
    }
}

/// A sign-in the provider accepted.
pub struct SignedIn {
    pub identity: Identity,
    pub tokens: Tokens,
}

/// Why a sign-in did not sign anyone in, as the callback page says it.
#[derive(Debug)]
pub enum Refused {
    /// The `state` is unknown: never issued, already used, expired, or another browser's.
    UnknownState,
    /// The provider said no: its OAuth `error` code.
    Provider(String),
    /// The ID token, or the provider's answer, failed a check: which one.
    Invalid(String),
    /// The provider could not be reached or answered nonsense.
    Unavailable(Error),
}

/// A sign-in started and not finished, under its `state`.
struct Pending {
    /// The random value of the sign-in's own cookie: only the browser that started the
    /// sign-in may finish it.
    browser: String,
    /// The PKCE code verifier (RFC 7636), sent with the code.
    verifier: SecretString,
    nonce: String,
    started: Instant,
}

/// The provider's discovery document (OIDC Discovery 1.0 §3): the fields the flow uses.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: Option<String>,
    jwks_uri: String,
    /// RP-initiated logout's endpoint, when the provider has one.
    end_session_endpoint: Option<String>,
}

/// A JSON Web Key (RFC 7517) of the provider's JWKS: the members of RSA, EC and OKP public keys.
#[derive(Clone, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// A JWKS as fetched: keys this module cannot read (another type, odd members) are left out,
/// not a reason to refuse the set.
#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}

impl JwkSet {
    fn readable(self) -> Vec<Jwk> {
        self.keys.into_iter().filter_map(|key| serde_json::from_value(key).ok()).collect()
    }
}

/// What discovery found, and the JWKS as last fetched.
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
    /// The keys, and when a signature they did not verify last had them fetched again (None:
    /// never since discovery).
    jwks: Mutex<(Vec<Jwk>, Option<Instant>)>,
}

/// The token endpoint's answer (RFC 6749 §5.1): `access_token` and `token_type` must be there,
/// though the UI uses neither. No Debug: it holds tokens.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(rename = "access_token")]
    _access_token: IgnoredAny,
    #[serde(rename = "token_type")]
    _token_type: IgnoredAny,
    /// Seconds; a number, or a string of one as some providers send it.
    expires_in: Option<Value>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

impl TokenAnswer {
    fn expires_in(&self) -> Option<Duration> {
        let seconds = self.expires_in.as_ref()?;
        seconds.as_u64().or_else(|| seconds.as_str()?.parse().ok()).map(Duration::from_secs)
    }
}

/// The token endpoint's refusal (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenError {
    error: String,
}

/// The UI's OIDC provider.
pub struct Provider {
    pub config: OidcConfig,
    http: ureq::Agent,
    /// Found once, at the first sign-in (the operator starts while its provider is down).
    discovered: tokio::sync::OnceCell<Arc<Discovered>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Provider {
    pub fn new(config: OidcConfig) -> Result<Provider> {
        let roots = match &config.ca_pem {
            Some(pem) => Some(weaver_net::http::root_certs(pem).ok_or_else(|| {
                Error::new("--ui-oidc-ca-file holds no PEM certificate")
                    .with_help("give the provider's CA, PEM-encoded")
            })?),
            None => None,
        };
        // No redirects: a provider's endpoint that redirects elsewhere is not followed.
        let http = weaver_net::http::agent(roots, PROVIDER_TIMEOUT, 0);
        Ok(Provider { config, http, discovered: Default::default(), pending: Default::default() })
    }

    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.config.ui_url.trim_end_matches('/'))
    }

    /// Where the provider sends the browser after its sign-out: the sign-in page.
    pub fn post_logout_uri(&self) -> String {
        format!("{}/sign-in", self.config.ui_url.trim_end_matches('/'))
    }

    /// Sends one request to the provider on a blocking thread (ureq is weaver's HTTP client):
    /// the answer's status and body, or the transport's reason (no URL query, no body).
    async fn send(
        &self,
        request: impl FnOnce(&ureq::Agent) -> std::result::Result<http::Response<ureq::Body>, ureq::Error> + Send + 'static,
    ) -> std::result::Result<(http::StatusCode, Vec<u8>), String> {
        let agent = self.http.clone();
        let sent = tokio::task::spawn_blocking(move || {
            let (parts, mut body) = request(&agent).map_err(|err| err.to_string())?.into_parts();
            let body = body.with_config().limit(MAX_ANSWER).read_to_vec().map_err(|err| err.to_string())?;
            Ok((parts.status, body))
        });
        sent.await.map_err(|err| format!("the request stopped: {err}"))?
    }

    /// A JSON document of the provider's (discovery, the JWKS): public, so its parse error may
    /// be quoted.
    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> std::result::Result<T, String> {
        let owned = url.to_string();
        let (status, body) =
            self.send(move |agent| agent.get(&owned).header("accept", "application/json").call()).await?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|err| format!("{url} is not the JSON document expected: {err}"))
    }

    async fn discovered(&self) -> Result<Arc<Discovered>> {
        let issuer = &self.config.issuer;
        let discover = || async {
            if !is_http_url(issuer) {
                return Err(Error::new(format!("--ui-oidc-issuer is not an http or https URL: {issuer}")));
            }
            let cannot = |why: String| {
                Error::new(format!(
                    "cannot discover the OIDC provider {issuer} (its /.well-known/openid-configuration and JWKS): {why}"
                ))
            };
            // OIDC Discovery §4: a terminating slash is removed before the well-known path.
            let url = format!("{}/.well-known/openid-configuration", issuer.strip_suffix('/').unwrap_or(issuer));
            let metadata: Metadata = self.get_json(&url).await.map_err(cannot)?;
            if metadata.issuer != *issuer {
                return Err(cannot(format!("its discovery document names another issuer, {}", metadata.issuer)));
            }
            let Some(token_endpoint) = metadata.token_endpoint else {
                return Err(Error::new(format!("the OIDC provider {issuer} has no token endpoint")));
            };
            let endpoints = [
                ("authorization_endpoint", Some(&metadata.authorization_endpoint)),
                ("token_endpoint", Some(&token_endpoint)),
                ("jwks_uri", Some(&metadata.jwks_uri)),
                ("end_session_endpoint", metadata.end_session_endpoint.as_ref()),
            ];
            for (field, url) in endpoints {
                if let Some(url) = url.filter(|url| !is_http_url(url)) {
                    return Err(cannot(format!("its {field} is not an http or https URL: {url}")));
                }
            }
            let keys = self.get_json::<JwkSet>(&metadata.jwks_uri).await.map_err(cannot)?.readable();
            Ok(Arc::new(Discovered {
                authorization_endpoint: metadata.authorization_endpoint,
                token_endpoint,
                jwks_uri: metadata.jwks_uri,
                end_session_endpoint: metadata.end_session_endpoint,
                jwks: Mutex::new((keys, None)),
            }))
        };
        self.discovered.get_or_try_init(discover).await.cloned()
    }

    /// Starts a sign-in for the browser whose sign-in cookie is `browser`: the provider's URL
    /// to send it to.
    pub async fn start(&self, browser: &str) -> Result<String> {
        let discovered = self.discovered().await?;
        let (state, nonce, verifier) = (random_token(16), random_token(16), random_token(32));
        let challenge = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        let mut scopes = vec!["openid"];
        for scope in &self.config.scopes {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("state", &state)
            .append_pair("code_challenge", &URL_SAFE_NO_PAD.encode(challenge))
            .append_pair("code_challenge_method", "S256")
            .append_pair("redirect_uri", &self.redirect_uri())
            .append_pair("scope", &scopes.join(" "))
            .append_pair("nonce", &nonce)
            .finish();
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, flow| now.duration_since(flow.started) < FLOW_AGE);
        // Full: the oldest started sign-in gives way (refusing new ones would let anyone with a
        // few hundred addresses keep everyone out).
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending.iter().min_by_key(|(_, flow)| flow.started).map(|(state, _)| state.clone())
        {
            pending.remove(&oldest);
        }
        let flow = Pending { browser: browser.to_string(), verifier: verifier.into(), nonce, started: now };
        pending.insert(state, flow);
        Ok(with_query(&discovered.authorization_endpoint, &query))
    }

    /// Finishes the sign-in `state` names, for the browser whose sign-in cookie is `browser`:
    /// the state is used up whatever the outcome.
    pub async fn finish(&self, state: &str, code: &str, browser: &str) -> std::result::Result<SignedIn, Refused> {
        let flow = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(state);
        let flow = match flow {
            Some(flow) if flow.browser == browser && flow.started.elapsed() < FLOW_AGE => flow,
            _ => return Err(Refused::UnknownState),
        };
        let discovered = self.discovered().await.map_err(Refused::Unavailable)?;
        let grant = vec![
            ("grant_type", SecretString::from("authorization_code")),
            ("code", SecretString::from(code)),
            ("code_verifier", flow.verifier),
            ("redirect_uri", SecretString::from(self.redirect_uri())),
        ];
        let answer = self.token(&discovered, grant).await?;
        let id_token =
            answer.id_token.as_deref().ok_or_else(|| Refused::Invalid("the provider sent no ID token".into()))?;
        let (identity, expires) = self.verified(&discovered, id_token, Some(&flow.nonce)).await?;
        Ok(SignedIn { identity, tokens: kept_tokens(&answer, id_token, expires, None) })
    }

    /// The session's tokens refreshed: the identity the new ID token names (None: the provider
    /// sent none, the identity stays) and the new tokens. Err(Refused::Provider): the provider
    /// ended the session (the refresh token revoked or expired).
    pub async fn refresh(&self, tokens: &Tokens) -> std::result::Result<(Option<Identity>, Tokens), Refused> {
        let Some(refresh_token) = &tokens.refresh_token else {
            return Err(Refused::Provider("no refresh token".into()));
        };
        let discovered = self.discovered().await.map_err(Refused::Unavailable)?;
        let grant = vec![("grant_type", SecretString::from("refresh_token")), ("refresh_token", refresh_token.clone())];
        let answer = self.token(&discovered, grant).await?;
        match answer.id_token.as_deref() {
            // A refreshed ID token has no nonce to check (OIDC Core 12.2).
            Some(id_token) => {
                let (identity, expires) = self.verified(&discovered, id_token, None).await?;
                Ok((Some(identity), kept_tokens(&answer, id_token, expires, Some(tokens))))
            }
            // The provider may keep the ID token (OIDC Core 12.2): the refresh itself says the
            // session stands, until the access token it gave expires (else a minute), when it is
            // refreshed again; not at every request after the first ID token's expiry.
            None => {
                let mut kept = tokens.clone();
                if let Some(rotated) = &answer.refresh_token {
                    kept.refresh_token = Some(rotated.as_str().into());
                }
                let now = SystemTime::now();
                let lasts = answer.expires_in().and_then(|lasts| now.checked_add(lasts));
                kept.id_token_expires = lasts.unwrap_or(now + Duration::from_secs(60));
                Ok((None, kept))
            }
        }
    }

    /// Asks the token endpoint for tokens with `grant`, the client authenticated with HTTP
    /// Basic (RFC 6749 §2.3.1) when it has a secret, else named in the form (a public client).
    async fn token(
        &self,
        discovered: &Discovered,
        mut grant: Vec<(&'static str, SecretString)>,
    ) -> std::result::Result<TokenAnswer, Refused> {
        let basic = match &self.config.client_secret {
            Some(secret) => {
                let encoded = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encoded(&self.config.client_id), encoded(secret.expose_secret()));
                Some(SecretString::from(format!("Basic {}", STANDARD.encode(pair))))
            }
            None => {
                grant.push(("client_id", self.config.client_id.as_str().into()));
                None
            }
        };
        let url = discovered.token_endpoint.clone();
        let sent = self.send(move |agent| {
            let mut request = agent.post(&url).header("accept", "application/json");
            if let Some(basic) = &basic {
                request = request.header("authorization", basic.expose_secret());
            }
            request.send_form(grant.iter().map(|(name, value)| (*name, value.expose_secret())))
        });
        let (status, body) = sent.await.map_err(|why| {
            Refused::Unavailable(Error::new(format!("cannot reach the OIDC provider's token endpoint: {why}")))
        })?;
        let not_a_token =
            || Refused::Invalid("the provider's token endpoint answered something that is not a token".into());
        if status != http::StatusCode::OK {
            // Its OAuth error code, never its description (a provider may echo what it was sent).
            // A server error without one (a proxy's 502 page) is an outage, not the provider
            // ending the session.
            return Err(match serde_json::from_slice::<TokenError>(&body) {
                Ok(refusal) => Refused::Provider(refusal.error),
                Err(_) if status.is_server_error() => {
                    Refused::Unavailable(Error::new(format!("the OIDC provider's token endpoint answered {status}")))
                }
                Err(_) => not_a_token(),
            });
        }
        serde_json::from_slice(&body).map_err(|_| not_a_token())
    }

    /// Where the browser goes to end its session at the provider too (RP-initiated logout),
    /// when the provider advertises an `end_session_endpoint`.
    pub fn logout_url(&self, tokens: &Tokens) -> Option<String> {
        let endpoint = self.discovered.get()?.end_session_endpoint.as_deref()?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", tokens.id_token.expose_secret())
            .append_pair("client_id", &self.config.client_id)
            .append_pair("post_logout_redirect_uri", &self.post_logout_uri())
            .finish();
        Some(with_query(endpoint, &query))
    }

    /// The origin of the provider's end-session endpoint, once discovery found one: where a
    /// sign-out's answer sends the browser.
    pub fn logout_origin(&self) -> Option<String> {
        origin(self.discovered.get()?.end_session_endpoint.as_deref()?)
    }

    /// The identity `id_token` names, once it passes every check, and when it expires. A
    /// signature no key of the JWKS verifies has the JWKS fetched again, at most once a minute,
    /// and is checked once more: the provider may have rotated its keys, and a token without a
    /// `kid` fails against the old key as a forged one would.
    async fn verified(
        &self,
        discovered: &Discovered,
        id_token: &str,
        nonce: Option<&str>,
    ) -> std::result::Result<(Identity, SystemTime), Refused> {
        let expected = Expected { issuer: &self.config.issuer, client_id: &self.config.client_id, nonce };
        let check = || {
            let jwks = discovered.jwks.lock().unwrap_or_else(|e| e.into_inner());
            checked_claims(&jwks.0, &expected, id_token, SystemTime::now())
        };
        let checked = match check() {
            Err(Failed::NoMatchingKey | Failed::BadSignature)
                if self.refetch_jwks(discovered).await.map_err(Refused::Unavailable)? =>
            {
                check()
            }
            checked => checked,
        };
        let (claims, expires) = checked.map_err(|failed| Refused::Invalid(failed.to_string()))?;
        let identity = self.config.mapping.identity(&self.config.issuer, &claims).map_err(Refused::Invalid)?;
        Ok((identity, expires))
    }

    /// Fetches the JWKS again unless a failed signature had it fetched within [`JWKS_EVERY`]:
    /// whether it was (forged tokens make one request a minute at most).
    async fn refetch_jwks(&self, discovered: &Discovered) -> Result<bool> {
        {
            let mut jwks = discovered.jwks.lock().unwrap_or_else(|e| e.into_inner());
            if jwks.1.is_some_and(|fetched| fetched.elapsed() < JWKS_EVERY) {
                return Ok(false);
            }
            // Claimed before the request: sign-ins at once refetch once.
            jwks.1 = Some(Instant::now());
        }
        let fetched = self.get_json::<JwkSet>(&discovered.jwks_uri).await;
        let keys = fetched.map_err(|why| Error::new(format!("cannot fetch the OIDC provider's JWKS again: {why}")))?;
        discovered.jwks.lock().unwrap_or_else(|e| e.into_inner()).0 = keys.readable();
        Ok(true)
    }
}

/// What a session keeps of a token answer: a refresh token sent, else the one it had.
fn kept_tokens(answer: &TokenAnswer, id_token: &str, expires: SystemTime, before: Option<&Tokens>) -> Tokens {
    Tokens {
        id_token: id_token.into(),
        id_token_expires: expires,
        // A provider that does not rotate refresh tokens sends none with a refresh.
        refresh_token: answer
            .refresh_token
            .as_deref()
            .map(SecretString::from)
            .or_else(|| before.and_then(|tokens| tokens.refresh_token.clone())),
    }
}

/// `bytes` random bytes, base64url: a `state`, a `nonce` or a PKCE verifier (32 bytes: 43
/// characters, RFC 7636 §4.1).
fn random_token(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut random);
    URL_SAFE_NO_PAD.encode(random)
}

/// `url` with `query` appended to the query it may have (an endpoint may carry parameters).
fn with_query(url: &str, query: &str) -> String {
    match url.contains('?') {
        true if url.ends_with(['?', '&']) => format!("{url}{query}"),
        true => format!("{url}&{query}"),
        false => format!("{url}?{query}"),
    }
}

/// Whether `url` is an absolute http or https URL with a host and no fragment, as an issuer
/// and endpoints must be.
fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
            && valid_port(&uri)
    }) && !url.contains('#')
}

/// Whether `uri`'s port, when it names one, is a port number: `http::Uri` parses any digits,
/// or none, and then says it has no port.
fn valid_port(uri: &http::Uri) -> bool {
    let Some(authority) = uri.authority() else { return true };
    // After the user information and an IPv6 address's brackets, a colon begins the port.
    let host_and_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    let after_host = host_and_port.rsplit_once(']').map_or(host_and_port, |(_, rest)| rest);
    after_host.split_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_ok())
}

/// `url`'s origin (`scheme://host[:port]`, the default port left out), for a
/// Content-Security-Policy source; None unless it is an http or https URL whose host is a
/// name or an address.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if !valid_port(&uri) {
        return None;
    }
    let host = uri.host()?.to_ascii_lowercase();
    let name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let address = |c: char| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '[' | ']');
    if host.is_empty() || !(host.chars().all(name) || host.starts_with('[') && host.chars().all(address)) {
        return None;
    }
    match uri.port_u16() {
        Some(port) if port != default_port => Some(format!("{scheme}://{host}:{port}")),
        _ => Some(format!("{scheme}://{host}")),
    }
}

/// What an ID token must say for this sign-in.
struct Expected<'a> {
    issuer: &'a str,
    client_id: &'a str,
    /// The sign-in's nonce; None for a refreshed token (OIDC Core 12.2).
    nonce: Option<&'a str>,
}

/// Why an ID token is refused, in words that quote nothing of the token.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    /// No key of the JWKS can have signed it (it names another, or none of its type): the
    /// JWKS may be fetched again.
    NoMatchingKey,
    AlgNotAllowed,
    /// A key of its type did not verify it: forged, or signed by a key rotated in since the
    /// JWKS was fetched (a token without `kid` is tried with every key), which may be fetched
    /// again.
    BadSignature,
    Issuer,
    Audience,
    Expired,
    Nonce,
    /// Not a JWT, or a claim OIDC requires is missing or of the wrong type.
    Malformed,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            Failed::NoMatchingKey => "no key of the provider's JWKS signed it",
            Failed::AlgNotAllowed => "its signature algorithm is not allowed (only asymmetric ones are)",
            Failed::BadSignature => "its signature does not verify",
            Failed::Issuer => "another issuer made it",
            Failed::Audience => "it is not meant for this client (its audience)",
            Failed::Expired => "it has expired",
            Failed::Nonce => "its nonce is not this sign-in's",
            Failed::Malformed => "its claims do not verify",
        };
        write!(f, "the ID token is refused: {what}")
    }
}

/// The claims of `id_token` (a JWS in compact form) and when it expires, once its signature is
/// one of `keys`' and its claims are what `expected` and OIDC Core §3.1.3.7 say they must be.
fn checked_claims(
    keys: &[Jwk],
    expected: &Expected<'_>,
    id_token: &str,
    now: SystemTime,
) -> std::result::Result<(Map<String, Value>, SystemTime), Failed> {
    let mut parts = id_token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Failed::Malformed);
    };
    let header = json_part(header).ok_or(Failed::Malformed)?;
    // `none`, HMAC (keyed with the client secret, or with a public key by an attacker who
    // swapped the algorithm) and anything unknown are refused.
    let alg = header.get("alg").and_then(Value::as_str).and_then(Alg::named).ok_or(Failed::AlgNotAllowed)?;
    // RFC 7515 §4.1.11: extensions that must be understood, of which weaver knows none. A
    // `typ` other than a JWT's (an access token's `at+jwt`, say) or any `cty` (a nested JWT) is
    // not an ID token, as openidconnect refused them too.
    let typ = header.get("typ").map(|typ| typ.as_str().map(str::to_ascii_lowercase));
    let a_jwt = typ.is_none_or(|typ| matches!(typ.as_deref(), Some("jwt" | "application/jwt")));
    if header.contains_key("crit") || header.contains_key("cty") || !a_jwt {
        return Err(Failed::Malformed);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let signature = base64url(signature).ok_or(Failed::BadSignature)?;
    // The signing input: the header and payload as sent, with the dot between them.
    let signed = id_token.rsplit_once('.').map_or("", |(signed, _)| signed).as_bytes();
    let candidates = keys.iter().filter(|key| {
        kid.is_none_or(|kid| key.kid.as_deref() == Some(kid))
            && key.usage.as_deref().is_none_or(|usage| usage == "sig")
            && key.alg.as_deref().is_none_or(|named| named == alg.name())
    });
    let mut a_key_of_its_type = false;
    for key in candidates {
        match alg.verify(key, signed, &signature) {
            Some(true) => return checked_payload(payload, expected, now),
            Some(false) => a_key_of_its_type = true,
            None => {}
        }
    }
    Err(if a_key_of_its_type { Failed::BadSignature } else { Failed::NoMatchingKey })
}

/// The claims of a signed payload, checked (OIDC Core §3.1.3.7): the issuer, this client as
/// the only audience (and the authorized party, when named), not expired, the sign-in's nonce.
fn checked_payload(
    payload: &str,
    expected: &Expected<'_>,
    now: SystemTime,
) -> std::result::Result<(Map<String, Value>, SystemTime), Failed> {
    let claims = json_part(payload).ok_or(Failed::Malformed)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // Exactly, as OIDC Core §3.1.3.7 and kube-apiserver compare it.
    if text("iss") != Some(expected.issuer) {
        return Err(Failed::Issuer);
    }
    // Another audience beside this client is one the UI does not trust (openidconnect's and
    // go-oidc's default).
    let only_this_client = match claims.get("aud") {
        Some(Value::String(audience)) => audience == expected.client_id,
        Some(Value::Array(audiences)) => {
            !audiences.is_empty() && audiences.iter().all(|audience| audience.as_str() == Some(expected.client_id))
        }
        _ => false,
    };
    if !only_this_client || text("azp").is_some_and(|party| party != expected.client_id) {
        return Err(Failed::Audience);
    }
    if text("sub").is_none_or(str::is_empty) || !claims.get("iat").is_some_and(Value::is_number) {
        return Err(Failed::Malformed);
    }
    let expires = claims
        .get("exp")
        .and_then(Value::as_f64)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .and_then(|since_epoch| SystemTime::UNIX_EPOCH.checked_add(since_epoch))
        .ok_or(Failed::Malformed)?;
    if now >= expires {
        return Err(Failed::Expired);
    }
    if let Some(nonce) = expected.nonce
        && text("nonce") != Some(nonce)
    {
        return Err(Failed::Nonce);
    }
    Ok((claims, expires))
}

/// A JWS part: base64url of a JSON object.
fn json_part(part: &str) -> Option<Map<String, Value>> {
    serde_json::from_slice(&base64url(part)?).ok()
}

/// The signature algorithms an ID token may have (RFC 7518 §3.1, RFC 8037): asymmetric ones,
/// whose keys the provider publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

impl Alg {
    const ALL: [Alg; 10] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
    ];

    fn named(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Whether `key` signed `message` with `signature`; None: `key` is not a key of this
    /// algorithm (another type or curve) or not a well-formed one.
    fn verify(self, key: &Jwk, message: &[u8], signature: &[u8]) -> Option<bool> {
        let rsa = |params: &'static sig::RsaParameters| {
            let n = unsigned(key.n.as_deref()?)?;
            let e = unsigned(key.e.as_deref()?)?;
            (key.kty == "RSA").then(|| RsaPublicKeyComponents { n, e }.verify(params, message, signature).is_ok())
        };
        let ec = |curve: &str, size: usize, algorithm: &'static sig::EcdsaVerificationAlgorithm| {
            let (x, y) = (base64url(key.x.as_deref()?)?, base64url(key.y.as_deref()?)?);
            let fits = key.kty == "EC" && key.crv.as_deref() == Some(curve) && x.len() == size && y.len() == size;
            // The uncompressed point (SEC 1 §2.3.3).
            let point = [&[4][..], &x, &y].concat();
            fits.then(|| UnparsedPublicKey::new(algorithm, point).verify(message, signature).is_ok())
        };
        match self {
            Alg::Rs256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
            Alg::Rs384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
            Alg::Rs512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
            Alg::Ps256 => rsa(&sig::RSA_PSS_2048_8192_SHA256),
            Alg::Ps384 => rsa(&sig::RSA_PSS_2048_8192_SHA384),
            Alg::Ps512 => rsa(&sig::RSA_PSS_2048_8192_SHA512),
            Alg::Es256 => ec("P-256", 32, &sig::ECDSA_P256_SHA256_FIXED),
            Alg::Es384 => ec("P-384", 48, &sig::ECDSA_P384_SHA384_FIXED),
            Alg::Es512 => ec("P-521", 66, &sig::ECDSA_P521_SHA512_FIXED),
            Alg::EdDsa => {
                let x = base64url(key.x.as_deref()?)?;
                let fits = key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519") && x.len() == 32;
                fits.then(|| UnparsedPublicKey::new(&sig::ED25519, x).verify(message, signature).is_ok())
            }
        }
    }
}

/// A base64url member or JWS part (RFC 7515 §2: unpadded; padding is tolerated).
fn base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// An RSA modulus or exponent: big-endian, without the leading zeros aws-lc refuses.
fn unsigned(text: &str) -> Option<Vec<u8>> {
    let bytes = base64url(text)?;
    let first = bytes.iter().position(|byte| *byte != 0)?;
    Some(bytes[first..].to_vec())
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            username_claim: "sub".into(),
            username_prefix: None,
            groups_claim: None,
            groups_prefix: String::new(),
            required_claims: Vec::new(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const ISSUER: &str = "https://id.example.com";

    #[test]
    fn the_username_prefix_defaults_as_the_api_servers() {
        let by_sub = mapping().identity(ISSUER, &claims(json!({"sub": "alice"}))).unwrap();
        assert_eq!(by_sub.user, "https://id.example.com#alice");
        let email = ClaimMapping { username_claim: "email".into(), ..mapping() };
        let by_email = email.identity(ISSUER, &claims(json!({"sub": "1", "email": "a@example.com"}))).unwrap();
        assert_eq!(by_email.user, "a@example.com");
        let none = ClaimMapping { username_prefix: Some("-".into()), ..mapping() };
        assert_eq!(none.identity(ISSUER, &claims(json!({"sub": "alice"}))).unwrap().user, "alice");
        let given = ClaimMapping { username_prefix: Some("oidc:".into()), ..mapping() };
        assert_eq!(given.identity(ISSUER, &claims(json!({"sub": "alice"}))).unwrap().user, "oidc:alice");
    }

    #[test]
    fn an_email_is_a_user_name_unless_it_is_unverified() {
        let email = ClaimMapping { username_claim: "email".into(), ..mapping() };
        let verified = claims(json!({"email": "a@example.com", "email_verified": true}));
        assert_eq!(email.identity(ISSUER, &verified).unwrap().user, "a@example.com");
        let unverified = claims(json!({"email": "a@example.com", "email_verified": false}));
        let err = email.identity(ISSUER, &unverified).unwrap_err();
        assert!(err.contains("not verified") && !err.contains("a@example.com"), "{err}");
        let odd = claims(json!({"email": "a@example.com", "email_verified": "true"}));
        assert!(email.identity(ISSUER, &odd).is_err(), "only the boolean true verifies");
        assert!(email.identity(ISSUER, &claims(json!({"sub": "alice"}))).is_err(), "no email claim");
        let number = claims(json!({"sub": 7}));
        assert!(mapping().identity(ISSUER, &number).unwrap_err().contains("not a non-empty string"));
    }

    #[test]
    fn groups_are_a_string_or_a_list_of_strings_each_prefixed() {
        let groups = ClaimMapping { groups_claim: Some("groups".into()), groups_prefix: "oidc:".into(), ..mapping() };
        let list = claims(json!({"sub": "a", "groups": ["dev", "ops"]}));
        assert_eq!(groups.identity(ISSUER, &list).unwrap().groups, ["oidc:dev", "oidc:ops"]);
        let one = claims(json!({"sub": "a", "groups": "dev"}));
        assert_eq!(groups.identity(ISSUER, &one).unwrap().groups, ["oidc:dev"]);
        let missing = claims(json!({"sub": "a"}));
        assert!(groups.identity(ISSUER, &missing).unwrap().groups.is_empty());
        for bad in [json!({"sub": "a", "groups": ["dev", 3]}), json!({"sub": "a", "groups": {"dev": true}})] {
            let err = groups.identity(ISSUER, &claims(bad)).unwrap_err();
            assert!(err.contains("groups claim groups"), "{err}");
        }
        // Not asked for: a groups claim is ignored.
        assert!(mapping().identity(ISSUER, &list).unwrap().groups.is_empty());
    }

    #[test]
    fn every_required_claim_must_be_present_and_equal() {
        let required = vec![("hd".to_string(), "example.com".to_string()), ("tier".to_string(), "staff".to_string())];
        let strict = ClaimMapping { required_claims: required, ..mapping() };
        let both = claims(json!({"sub": "a", "hd": "example.com", "tier": "staff"}));
        assert!(strict.identity(ISSUER, &both).is_ok());
        let other = claims(json!({"sub": "a", "hd": "evil.example", "tier": "staff"}));
        let err = strict.identity(ISSUER, &other).unwrap_err();
        assert!(err.contains("required claim hd") && !err.contains("evil"), "{err}");
        let missing = claims(json!({"sub": "a", "hd": "example.com"}));
        assert!(strict.identity(ISSUER, &missing).unwrap_err().contains("tier is missing"));
        let not_a_string = claims(json!({"sub": "a", "hd": "example.com", "tier": ["staff"]}));
        assert!(strict.identity(ISSUER, &not_a_string).is_err());
    }

    /// A key pair of each algorithm's kind, under `kid`, and its public JWK.
    enum Signer {
        Rsa(sig::RsaKeyPair),
        Ec(sig::EcdsaKeyPair, &'static str),
        Ed(sig::Ed25519KeyPair),
    }

    impl Signer {
        fn jwk(&self, kid: &str) -> Jwk {
            use sig::KeyPair;
            let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
            let blank = Jwk {
                kty: String::new(),
                kid: Some(kid.into()),
                usage: None,
                alg: None,
                crv: None,
                n: None,
                e: None,
                x: None,
                y: None,
            };
            match self {
                Signer::Rsa(key) => {
                    let public = key.public_key();
                    Jwk {
                        kty: "RSA".into(),
                        n: b64(public.modulus().big_endian_without_leading_zero()),
                        e: b64(public.exponent().big_endian_without_leading_zero()),
                        ..blank
                    }
                }
                Signer::Ec(key, curve) => {
                    let point = key.public_key().as_ref();
                    let size = (point.len() - 1) / 2;
                    Jwk {
                        kty: "EC".into(),
                        crv: Some(curve.to_string()),
                        x: b64(&point[1..1 + size]),
                        y: b64(&point[1 + size..]),
                        ..blank
                    }
                }
                Signer::Ed(key) => {
                    Jwk { kty: "OKP".into(), crv: Some("Ed25519".into()), x: b64(key.public_key().as_ref()), ..blank }
                }
            }
        }

        /// A compact JWS of `claims` with header `header`, signed as `alg` says.
        fn token(&self, alg: &str, header: Value, claims: &Value) -> String {
            self.token_as(alg, alg, header, claims)
        }

        /// A compact JWS whose header says `alg`, signed as `signed_as` (RSA: the padding).
        fn token_as(&self, alg: &str, signed_as: &str, header: Value, claims: &Value) -> String {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let mut header = header;
            header["alg"] = json!(alg);
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = match self {
                Signer::Rsa(key) => {
                    let padding: &'static dyn sig::RsaEncoding = match signed_as {
                        "RS256" => &sig::RSA_PKCS1_SHA256,
                        "RS384" => &sig::RSA_PKCS1_SHA384,
                        "RS512" => &sig::RSA_PKCS1_SHA512,
                        "PS256" => &sig::RSA_PSS_SHA256,
                        "PS384" => &sig::RSA_PSS_SHA384,
                        _ => &sig::RSA_PSS_SHA512,
                    };
                    let mut signature = vec![0; key.public_modulus_len()];
                    key.sign(padding, &rng, input.as_bytes(), &mut signature).unwrap();
                    signature
                }
                Signer::Ec(key, _) => key.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
                Signer::Ed(key) => key.sign(input.as_bytes()).as_ref().to_vec(),
            };
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }
    }

    fn rsa() -> Signer {
        Signer::Rsa(sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
    }

    fn ec(curve: &'static str) -> Signer {
        let algorithm = match curve {
            "P-256" => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            "P-384" => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            _ => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
        };
        Signer::Ec(sig::EcdsaKeyPair::generate(algorithm).unwrap(), curve)
    }

    fn ed25519() -> Signer {
        Signer::Ed(sig::Ed25519KeyPair::generate().unwrap())
    }

    const CLIENT: &str = "weaver-ui";

    fn expected(nonce: Option<&str>) -> Expected<'_> {
        Expected { issuer: ISSUER, client_id: CLIENT, nonce }
    }

    /// Good claims for `expected(Some("n-1"))`, expiring in a minute.
    fn good_claims() -> Value {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        json!({"iss": ISSUER, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 60, "nonce": "n-1"})
    }

    fn check(keys: &[Jwk], token: &str) -> std::result::Result<(Map<String, Value>, SystemTime), Failed> {
        checked_claims(keys, &expected(Some("n-1")), token, SystemTime::now())
    }

    #[test]
    fn every_algorithm_verifies_with_its_own_key_and_no_other() {
        let signers =
            [("rsa", rsa()), ("p256", ec("P-256")), ("p384", ec("P-384")), ("p521", ec("P-521")), ("ed", ed25519())];
        let keys: Vec<Jwk> = signers.iter().map(|(kid, signer)| signer.jwk(kid)).collect();
        let claims = good_claims();
        let cases = [
            ("rsa", "RS256"),
            ("rsa", "RS384"),
            ("rsa", "RS512"),
            ("rsa", "PS256"),
            ("rsa", "PS384"),
            ("rsa", "PS512"),
            ("p256", "ES256"),
            ("p384", "ES384"),
            ("p521", "ES512"),
            ("ed", "EdDSA"),
        ];
        for (kid, alg) in cases {
            let signer = &signers.iter().find(|(name, _)| *name == kid).unwrap().1;
            let token = signer.token(alg, json!({"kid": kid}), &claims);
            let (read, _) = check(&keys, &token).unwrap_or_else(|failed| panic!("{alg}: {failed}"));
            assert_eq!(read["sub"], "alice", "{alg}");
            // Without a kid, every key of the JWKS of its type is tried.
            assert!(check(&keys, &signer.token(alg, json!({}), &claims)).is_ok(), "{alg} without a kid");
            // The payload changed after signing.
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let (header, _) = signed.split_once('.').unwrap();
            let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string());
            assert_eq!(check(&keys, &format!("{header}.{forged}.{signature}")), Err(Failed::BadSignature), "{alg}");
            // Another key's kid: of another type (or curve) it matches nothing, of the same it
            // does not verify.
            let others = signers.iter().filter(|(name, _)| *name != kid);
            for (other, _) in others {
                let relabelled = signer.token(alg, json!({"kid": other}), &claims);
                assert_eq!(check(&keys, &relabelled), Err(Failed::NoMatchingKey), "{alg} as {other}'s");
            }
        }
        // The padding is the one the header names: PKCS #1 v1.5 under PS256, PSS under RS256,
        // or another hash, do not verify.
        let rsa = &signers[0].1;
        for (named, signed_as) in [("RS256", "PS256"), ("PS256", "RS256"), ("RS256", "RS384"), ("PS512", "PS256")] {
            let mislabelled = rsa.token_as(named, signed_as, json!({"kid": "rsa"}), &claims);
            assert_eq!(check(&keys, &mislabelled), Err(Failed::BadSignature), "{named} signed as {signed_as}");
        }
    }

    #[test]
    fn jwks_members_are_read_as_rfc_7518_encodes_them() {
        let claims = good_claims();
        // An RSA modulus with a leading zero byte (some providers send them) is the same key.
        let rsa = rsa();
        let mut padded = rsa.jwk("k1");
        let n = URL_SAFE_NO_PAD.decode(padded.n.as_deref().unwrap()).unwrap();
        padded.n = Some(URL_SAFE_NO_PAD.encode([&[0][..], &n].concat()));
        assert!(check(&[padded], &rsa.token("RS256", json!({"kid": "k1"}), &claims)).is_ok());
        // EC coordinates and Ed25519 keys of the wrong length are no key of their type.
        let p256 = ec("P-256");
        let token = p256.token("ES256", json!({"kid": "k1"}), &claims);
        assert!(check(&[p256.jwk("k1")], &token).is_ok());
        let x = URL_SAFE_NO_PAD.decode(p256.jwk("k1").x.unwrap()).unwrap();
        for wrong in [x[1..].to_vec(), [&[0][..], &x].concat()] {
            let key = Jwk { x: Some(URL_SAFE_NO_PAD.encode(&wrong)), ..p256.jwk("k1") };
            assert_eq!(check(&[key], &token), Err(Failed::NoMatchingKey), "x of {} bytes", wrong.len());
        }
        let ed = ed25519();
        let token = ed.token("EdDSA", json!({"kid": "k1"}), &claims);
        let x = URL_SAFE_NO_PAD.decode(ed.jwk("k1").x.unwrap()).unwrap();
        let short = Jwk { x: Some(URL_SAFE_NO_PAD.encode(&x[1..])), ..ed.jwk("k1") };
        assert_eq!(check(&[short], &token), Err(Failed::NoMatchingKey));
    }

    #[test]
    fn unsafe_algorithms_unusable_keys_and_critical_extensions_are_refused() {
        let signer = ed25519();
        let key = signer.jwk("k1");
        let claims = good_claims();
        let body = |header: Value| {
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
        };
        let keys = [key.clone()];
        assert_eq!(check(&keys, &body(json!({"alg": "none"}))), Err(Failed::AlgNotAllowed));
        assert_eq!(
            check(&keys, &format!("{}c2ln", body(json!({"alg": "HS256", "kid": "k1"})))),
            Err(Failed::AlgNotAllowed)
        );
        assert_eq!(check(&keys, &body(json!({"kid": "k1"}))), Err(Failed::AlgNotAllowed), "no alg");
        let critical = signer.token("EdDSA", json!({"kid": "k1", "crit": ["exp"], "exp": 1}), &claims);
        assert_eq!(check(&keys, &critical), Err(Failed::Malformed));
        // Another kind of JWT, or a nested one, is not an ID token; a JWT's `typ` is.
        for header in [json!({"typ": "at+jwt"}), json!({"typ": 1}), json!({"cty": "JWT"})] {
            assert_eq!(
                check(&keys, &signer.token("EdDSA", header.clone(), &claims)),
                Err(Failed::Malformed),
                "{header}"
            );
        }
        for typ in ["JWT", "jwt", "application/jwt"] {
            assert!(check(&keys, &signer.token("EdDSA", json!({"typ": typ}), &claims)).is_ok(), "{typ}");
        }
        assert_eq!(check(&keys, "a.b"), Err(Failed::Malformed));
        assert_eq!(check(&keys, "a.b.c.d"), Err(Failed::Malformed));
        let token = signer.token("EdDSA", json!({"kid": "k1"}), &claims);
        assert!(check(&keys, &token).is_ok());
        // A key for encryption, or named for another algorithm, does not check signatures.
        let encryption = Jwk { usage: Some("enc".into()), ..key.clone() };
        assert_eq!(check(&[encryption], &token), Err(Failed::NoMatchingKey));
        let other_alg = Jwk { alg: Some("ES256".into()), ..key.clone() };
        assert_eq!(check(&[other_alg], &token), Err(Failed::NoMatchingKey));
        let named = Jwk { alg: Some("EdDSA".into()), usage: Some("sig".into()), ..key };
        assert!(check(&[named], &token).is_ok());
    }

    #[test]
    fn claims_are_checked_as_oidc_core_says() {
        let signer = ed25519();
        let keys = [signer.jwk("k1")];
        let with = |change: &dyn Fn(&mut Value)| {
            let mut claims = good_claims();
            change(&mut claims);
            check(&keys, &signer.token("EdDSA", json!({"kid": "k1"}), &claims)).map(|(claims, _)| claims)
        };
        assert!(with(&|_| {}).is_ok());
        assert_eq!(
            with(&|c| c["iss"] = json!(format!("{ISSUER}/"))).unwrap_err(),
            Failed::Issuer,
            "exactly the issuer"
        );
        assert_eq!(with(&|c| c["iss"] = json!("https://evil.example.com")).unwrap_err(), Failed::Issuer);
        assert_eq!(with(&|c| c.as_object_mut().unwrap().remove("iss").map(drop).unwrap()).unwrap_err(), Failed::Issuer);
        assert!(with(&|c| c["aud"] = json!([CLIENT])).is_ok());
        assert!(with(&|c| c["azp"] = json!(CLIENT)).is_ok());
        for audience in [json!("other"), json!([CLIENT, "other"]), json!([]), json!(7)] {
            assert_eq!(with(&|c| c["aud"] = audience.clone()).unwrap_err(), Failed::Audience, "{audience}");
        }
        assert_eq!(with(&|c| c["azp"] = json!("other")).unwrap_err(), Failed::Audience);
        assert_eq!(with(&|c| c["exp"] = json!(1_000)).unwrap_err(), Failed::Expired);
        assert_eq!(with(&|c| c["exp"] = json!("soon")).unwrap_err(), Failed::Malformed);
        // Past what a SystemTime holds: refused, not a panic.
        assert_eq!(with(&|c| c["exp"] = json!(1e19)).unwrap_err(), Failed::Malformed);
        assert_eq!(with(&|c| c["sub"] = json!("")).unwrap_err(), Failed::Malformed);
        assert_eq!(
            with(&|c| c.as_object_mut().unwrap().remove("iat").map(drop).unwrap()).unwrap_err(),
            Failed::Malformed
        );
        assert_eq!(with(&|c| c["nonce"] = json!("n-2")).unwrap_err(), Failed::Nonce);
        // A refreshed token has no nonce to check.
        let mut refreshed = good_claims();
        refreshed.as_object_mut().unwrap().remove("nonce");
        let token = signer.token("EdDSA", json!({"kid": "k1"}), &refreshed);
        assert!(checked_claims(&keys, &expected(None), &token, SystemTime::now()).is_ok());
        assert_eq!(check(&keys, &token).unwrap_err(), Failed::Nonce);
        // The expiry returned is the token's.
        let (_, expires) = check(&keys, &signer.token("EdDSA", json!({}), &good_claims())).unwrap();
        let exp = good_claims()["exp"].as_u64().unwrap();
        assert_eq!(expires, SystemTime::UNIX_EPOCH + Duration::from_secs(exp));
        // The refusals name the check, never a claim's value.
        assert_eq!(Failed::Issuer.to_string(), "the ID token is refused: another issuer made it");
    }

    #[test]
    fn urls_are_read_and_made_as_browsers_and_providers_need() {
        assert_eq!(origin("https://id.example.com:443/logout?x=1").as_deref(), Some("https://id.example.com"));
        assert_eq!(origin("HTTPS://ID.Example.com:8443/logout").as_deref(), Some("https://id.example.com:8443"));
        assert_eq!(origin("http://[::1]:8080/end").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(origin("http://127.0.0.1/end").as_deref(), Some("http://127.0.0.1"));
        for refused in
            ["ftp://id.example.com/", "/logout", "https://id;example.com/", "https://id'x/", "https://id:99999/x"]
        {
            assert_eq!(origin(refused), None, "{refused}");
        }
        assert_eq!(with_query("https://id/auth", "a=1"), "https://id/auth?a=1");
        assert_eq!(with_query("https://id/auth?p=x", "a=1"), "https://id/auth?p=x&a=1");
        assert_eq!(with_query("https://id/auth?", "a=1"), "https://id/auth?a=1");
        assert!(is_http_url("https://id.example.com") && is_http_url("http://127.0.0.1:5556/dex"));
        for refused in
            ["id.example.com", "file:///etc/passwd", "https://id/#frag", "https:///x", "https://id:70000", ""]
        {
            assert!(!is_http_url(refused), "{refused}");
        }
        // RFC 7636's verifier: 43 characters of base64url from 32 random bytes.
        let verifier = random_token(32);
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, random_token(32));
    }
}
